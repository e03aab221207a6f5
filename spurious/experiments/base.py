"""The contract between a paper's experiment and the study machinery.

An experiment is declarative: `default_config(size)` gives its grid and settings (plain JSON data);
`cells(config)` splits the work into independent cells (each a JSON dict that includes its own seed,
so a cell is recomputed identically anywhere); `run_cell(cell)` computes one cell and returns
JSON-able results (numbers, short curves); `evaluate(config, results)` turns all stored cell results
into the report: the claim, a verdict with the measured numbers, a table and figures. The verdict is
one of four kinds (`Verdict`); an experiment states each prediction of its claim as a `Check` (how
many cases of the grid it covers, which of them speak against it, which only failed where the
optimizer had not converged) and `judge` turns the checks into the verdict and the words saying why,
so every experiment decides "not tested" and "inconclusive" by the same rules. Figures are
plain data (Figure -> Panel -> Series below); spurious.report.figures draws them, so no experiment
touches a plotting library. The study runner stores each cell's result atomically, so experiments
never touch the store.
"""
from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field

from ..core.errors import SpuriousError

#: what a Series draws: a polyline, markers, a horizontal or vertical line at y[0] / x[0], a shaded
#: band between y_low and y (x: its ends for a horizontal band), markers with downward error bars
SERIES_KINDS = ("line", "scatter", "hline", "vline", "band", "errorbar")
SCALES = ("linear", "log", "symlog")


def _floats(values) -> tuple:
    """A tuple of floats, NaN for None or non-finite values (a gap in the drawing)."""
    out = []
    for v in values:
        v = math.nan if v is None else float(v)
        out.append(v if math.isfinite(v) else math.nan)
    return tuple(out)


@dataclass(frozen=True)
class Series:
    """One thing drawn on a panel. x, y: numbers (None/NaN: a gap). color: a name or a 'C<i>' cycle
    colour; style: line style ('-', '--', ':', '-.', 'none'); marker: a matplotlib-style marker letter
    or None; y_low: the band's lower edge or the error bars' lower ends."""

    x: tuple
    y: tuple
    label: str | None = None
    kind: str = "line"
    color: str | None = None
    style: str = "-"
    marker: str | None = None
    width: float = 1.0
    size: float = 12.0
    alpha: float = 1.0
    y_low: tuple | None = None

    def __post_init__(self):
        if self.kind not in SERIES_KINDS:
            raise SpuriousError(f"unknown series kind {self.kind!r}: choose one of {', '.join(SERIES_KINDS)}")
        object.__setattr__(self, "x", _floats(self.x))
        object.__setattr__(self, "y", _floats(self.y))
        if self.y_low is not None:
            object.__setattr__(self, "y_low", _floats(self.y_low))
        if self.kind in ("line", "scatter", "errorbar") and len(self.x) != len(self.y):
            raise SpuriousError(f"series {self.label!r}: {len(self.x)} x values but {len(self.y)} y values")

    def has_data(self) -> bool:
        return any(math.isfinite(v) for v in self.y + self.x)


@dataclass(frozen=True)
class Panel:
    """One set of axes: its series, labels, scales (symlog is linear within `linthresh` of 0) and
    optional categorical x tick labels (at 0, 1, ...)."""

    series: tuple
    title: str = ""
    xlabel: str = ""
    ylabel: str = ""
    xscale: str = "linear"
    yscale: str = "linear"
    linthresh: float = 1e-3
    xticklabels: tuple | None = None
    legend: bool = True

    def __post_init__(self):
        object.__setattr__(self, "series", tuple(self.series))
        for scale in (self.xscale, self.yscale):
            if scale not in SCALES:
                raise SpuriousError(f"unknown axis scale {scale!r}: choose one of {', '.join(SCALES)}")

    def has_data(self) -> bool:
        return any(s.has_data() for s in self.series if s.kind in ("line", "scatter", "errorbar", "band"))


@dataclass(frozen=True)
class Figure:
    """A figure: panels side by side, saved as <stem>.png and <stem>.svg."""

    stem: str
    panels: tuple
    title: str = ""
    panel_width: float = 5.4
    height: float = 4.0
    sharey: bool = False

    def __post_init__(self):
        object.__setattr__(self, "panels", tuple(self.panels))
        if not self.stem.replace("_", "").isalnum():
            raise SpuriousError(f"figure stem {self.stem!r} must be letters, digits and underscores")
        if not self.panels:
            raise SpuriousError(f"figure {self.stem!r} has no panels")


class Verdict(str, enum.Enum):
    """What the measurement says about a claim (or a published number): exactly one of four kinds.
    The value is the kind in words, as reports print it."""

    REPRODUCED = "reproduced"
    NOT_REPRODUCED = "not reproduced"  # with the evidence against
    NOT_TESTED = "not tested"  # no case of the claim was in the grid
    INCONCLUSIVE = "inconclusive"  # it failed only where the optimizer had not converged

    def __str__(self) -> str:
        return self.value


def describe_norms(norms) -> str:
    """'gradient norms max 2.6e-01, median 3.1e-03' ('not recorded' when none are known)."""
    known = sorted(float(v) for v in norms if v is not None and math.isfinite(float(v)))
    missing = sum(1 for v in norms if v is None or not math.isfinite(float(v)))
    if not known:
        return "gradient norms not recorded" if not missing else f"gradient norms non-finite ({missing} diverged)"
    median = known[len(known) // 2] if len(known) % 2 else 0.5 * (known[len(known) // 2 - 1] + known[len(known) // 2])
    text = f"gradient norm {known[0]:.1e}" if len(known) == 1 else \
        f"gradient norms max {known[-1]:.1e}, median {median:.1e}"
    return text + (f", {missing} non-finite" if missing else "")


@dataclass(frozen=True)
class Check:
    """One prediction of a claim as the grid measured it.

    cases: how many cases of the grid (runs, seeds, settings: `unit`) the prediction applies to; 0
    means the grid does not test it, and `missing` says what case it lacks. against: cases that
    contradict it where the optimizer had converged (or where convergence is not the question, e.g.
    a bound that holds at every step); `evidence` gives their numbers. unconverged: cases that fail
    it only where the optimizer had not converged (a run still moving at the step cap is no local
    minimum, so it is no evidence either way); `gradient_norms` are theirs where recorded, and
    `evidence` may add what else shows it (a loss still falling, a duality gap)."""

    prediction: str
    cases: int
    against: int = 0
    unconverged: int = 0
    gradient_norms: tuple = ()
    evidence: str = ""
    missing: str = ""
    unit: str = "runs"

    def __post_init__(self):
        object.__setattr__(self, "gradient_norms", tuple(self.gradient_norms))
        if not 0 <= self.against + self.unconverged <= self.cases:
            raise SpuriousError(f"check {self.prediction!r}: {self.against} against and {self.unconverged} "
                                f"unconverged out of {self.cases} cases")

    @property
    def verdict(self) -> Verdict:
        if not self.cases:
            return Verdict.NOT_TESTED
        if self.against:
            return Verdict.NOT_REPRODUCED
        if self.unconverged:
            return Verdict.INCONCLUSIVE
        return Verdict.REPRODUCED

    def describe(self) -> str:
        """The check in words, with what decided it."""
        verdict = self.verdict
        if verdict is Verdict.NOT_TESTED:
            return f"not tested: {self.prediction} (the grid has no case of it: {self.missing or 'none run'})"
        if verdict is Verdict.NOT_REPRODUCED:
            return (f"not reproduced: {self.prediction}: {self.against} of {self.cases} {self.unit} against it"
                    + (f" ({self.evidence})" if self.evidence else ""))
        if verdict is Verdict.INCONCLUSIVE:
            return (f"inconclusive: {self.prediction}: {self.unconverged} of {self.cases} {self.unit} fail it where "
                    f"the optimizer had not converged ({describe_norms(self.gradient_norms)}"
                    + (f"; {self.evidence}" if self.evidence else "") + ")")
        return f"reproduced: {self.prediction}: all {self.cases} {self.unit}"


def judge(checks) -> tuple[Verdict, str]:
    """The claim's verdict from the checks of its predictions, and the words saying why.

    Evidence against any prediction makes it NOT_REPRODUCED; otherwise a prediction that failed only
    where the optimizer had not converged makes it INCONCLUSIVE; otherwise a prediction the grid did
    not test makes it NOT_TESTED (the claim was not tested in full: no case of it at all when every
    check is untested); REPRODUCED only when every prediction was tested and held. The words name
    the predictions that were not reproduced, not tested or inconclusive ("" when all held)."""
    checks = list(checks)
    kinds = {c.verdict for c in checks}
    if not checks or kinds == {Verdict.NOT_TESTED}:
        verdict = Verdict.NOT_TESTED
    else:
        verdict = next(k for k in (Verdict.NOT_REPRODUCED, Verdict.INCONCLUSIVE, Verdict.NOT_TESTED,
                                   Verdict.REPRODUCED) if k in kinds)
    order = {Verdict.NOT_REPRODUCED: 0, Verdict.INCONCLUSIVE: 1, Verdict.NOT_TESTED: 2}
    shown = sorted((c for c in checks if c.verdict is not Verdict.REPRODUCED), key=lambda c: order[c.verdict])
    words = "; ".join(c.describe() for c in shown)
    if not checks:
        words = "not tested: the grid has no cells"
    return verdict, words + ("." if words else "")


@dataclass(frozen=True)
class ExperimentReport:
    claim: str  # the paper's claim and the prediction tested, one paragraph
    verdict: Verdict  # reproduced, not reproduced, not tested or inconclusive
    summary: str  # why, with the measured numbers against the thresholds (the kind is printed beside it)
    table: list[dict] = field(default_factory=list)  # rows of the evidence table (same keys per row)
    figures: list[Figure] = field(default_factory=list)  # plain data, drawn by spurious.report.figures

    def __post_init__(self):
        try:
            object.__setattr__(self, "verdict", Verdict(self.verdict))
        except ValueError:
            raise SpuriousError(f"verdict {self.verdict!r} is none of {', '.join(v.value for v in Verdict)}") from None


class Experiment:
    name: str = ""  # study name used on the command line, e.g. "du-lee-2018"
    title: str = ""  # paper, authors, year
    claim: str = ""
    #: sizes accepted by default_config; "quick" for tests, "cpu" the default, "gpu" large
    sizes: tuple[str, ...] = ("quick", "cpu", "gpu")

    def default_config(self, size: str = "cpu") -> dict:
        raise NotImplementedError

    def cells(self, config: dict) -> list[dict]:
        raise NotImplementedError

    def run_cell(self, cell: dict) -> dict:
        raise NotImplementedError

    def evaluate(self, config: dict, results: list[tuple[dict, dict]]) -> ExperimentReport:
        raise NotImplementedError

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

A user's study file may override any key of the default config, so every experiment also states
what each key may be (`limits`: key -> a Limit such as Count(), Positive(), Between(0, 1)) and what
one cell holds in memory (`cell_memory`). `check_config` and `memory_need` are what the study
configuration asks, in that order around `cells`, before anything runs: a negative width, a
probability above one or an absurd size is refused in one line naming the key and the value, or
the estimate and the machine's limit.
"""
from __future__ import annotations

import enum
import math
import numbers
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


# -- what a configuration key may be -----------------------------------------------------------
#: sizes of the built-in experiments; "quick" for tests, "cpu" the default, "gpu" large
SIZES = ("quick", "cpu", "gpu")
#: the largest seed: jax.random.PRNGKey takes a signed 64-bit integer
MAX_SEED = 2**63 - 1
#: the largest value jax.random.fold_in takes (an unsigned 32-bit integer)
MAX_FOLD_IN = 2**32 - 1
#: cells of one study: each is planned, run and stored on its own, so more is a mistake, not a plan
MAX_CELLS = 100_000


def _is_integer(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_finite_number(value) -> bool:
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer beyond any float
        return False


class Limit:
    """What one configuration key may be. `fault(key, value)` is None for an allowed value, else one
    line starting with the key that says what is wrong and shows the value."""

    def fault(self, key: str, value) -> str | None:
        raise NotImplementedError


@dataclass(frozen=True)
class Count(Limit):
    """An integer in minimum..maximum (a size, a width, a number of steps or seeds), a multiple of
    `multiple_of` where that matters (balanced signs need an even width)."""

    minimum: int = 1
    maximum: int | None = None
    multiple_of: int = 1
    why: str = ""  # what the maximum protects, for the message

    def describe(self) -> str:
        kind = {1: "integer", 2: "even integer"}.get(self.multiple_of, f"multiple of {self.multiple_of}")
        if self.maximum is not None:
            return f"{'an' if kind[0] in 'aeiou' else 'a'} {kind} in {self.minimum}..{self.maximum:,}"
        if self.minimum == 1:
            return f"a positive {kind}"
        return f"{'an' if kind[0] in 'aeiou' else 'a'} {kind} >= {self.minimum}"

    def fault(self, key, value):
        if (not _is_integer(value) or value < self.minimum or value % self.multiple_of
                or (self.maximum is not None and value > self.maximum)):
            return f"{key} must be {self.describe()}, got {value!r}" + (f" ({self.why})" if self.why and
                                                                         _is_integer(value) else "")
        return None


@dataclass(frozen=True)
class Seed(Limit):
    """A seed: an integer in 0..maximum (2^63-1 for a PRNG key; 2^32-1 where it is folded into one)."""

    maximum: int = MAX_SEED

    def fault(self, key, value):
        if not _is_integer(value) or not 0 <= value <= self.maximum:
            bound = {MAX_SEED: "2^63-1", MAX_FOLD_IN: "2^32-1"}.get(self.maximum, f"{self.maximum:,}")
            return f"{key} must be a seed, an integer in 0..{bound}, got {value!r}"
        return None


@dataclass(frozen=True)
class Real(Limit):
    """A finite number between low and high (each end included unless open)."""

    low: float = -math.inf
    high: float = math.inf
    low_open: bool = False
    high_open: bool = False

    def describe(self) -> str:
        if self.low == 0 and self.low_open and self.high == math.inf:
            return "a positive finite number"
        if self.high == math.inf:
            return f"a finite number {'>' if self.low_open else '>='} {self.low:g}"
        if self.low == -math.inf:
            return f"a finite number {'<' if self.high_open else '<='} {self.high:g}"
        return (f"a number in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}"
                f"{')' if self.high_open else ']'}")

    def fault(self, key, value):
        if not _is_finite_number(value):
            return f"{key} must be {self.describe()}, got {value!r}"
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return None if above and below else f"{key} must be {self.describe()}, got {value!r}"


def Positive() -> Real:
    """A positive finite number (a step size, a tolerance, a scale)."""
    return Real(0.0, low_open=True)


def Between(low: float, high: float, low_open: bool = False, high_open: bool = False) -> Real:
    """A number in [low, high] (a probability, a fraction), ends open where asked."""
    return Real(low, high, low_open, high_open)


def AtLeast(low: float) -> Real:
    return Real(low)


@dataclass(frozen=True)
class Choice(Limit):
    """One of a few strings."""

    options: tuple

    def __init__(self, *options):
        object.__setattr__(self, "options", tuple(options))

    def fault(self, key, value):
        if value not in self.options or not isinstance(value, str):
            return f"{key} must be one of {', '.join(map(repr, self.options))}, got {value!r}"
        return None


@dataclass(frozen=True)
class ListOf(Limit):
    """A list whose every element is allowed by `item`: non-empty unless `empty`, without repeats
    unless not `distinct`."""

    item: Limit
    empty: bool = False
    distinct: bool = True

    def fault(self, key, value):
        if not isinstance(value, list):
            return f"{key} must be a list, got {value!r}"
        if not value and not self.empty:
            return f"{key} must not be empty"
        for i, element in enumerate(value):
            problem = self.item.fault(f"{key}[{i}]", element)
            if problem:
                return problem
        if self.distinct and len({repr(v) for v in value}) != len(value):
            return f"{key} has repeated values {value!r}"
        return None


@dataclass(frozen=True)
class Band(Limit):
    """[low, high]: two values allowed by `item`, low <= high (an acceptance band)."""

    item: Limit

    def fault(self, key, value):
        if not isinstance(value, list) or len(value) != 2:
            return f"{key} must be a pair [low, high], got {value!r}"
        for i, element in enumerate(value):
            problem = self.item.fault(f"{key}[{i}]", element)
            if problem:
                return problem
        return None if value[0] <= value[1] else f"{key} must be [low, high] with low <= high, got {value!r}"


@dataclass(frozen=True)
class MapOf(Limit):
    """A table whose every value is allowed by `item` (keys are strings)."""

    item: Limit

    def fault(self, key, value):
        if not isinstance(value, dict) or not value:
            return f"{key} must be a non-empty table, got {value!r}"
        for name, element in value.items():
            problem = self.item.fault(f"{key}.{name}", element)
            if problem:
                return problem
        return None


@dataclass(frozen=True)
class OrNone(Limit):
    """None (the default's way of saying 'off'), or a value allowed by `item`."""

    item: Limit

    def fault(self, key, value):
        return None if value is None else self.item.fault(key, value)


@dataclass(frozen=True)
class Text(Limit):
    """A non-empty string (a name whose meaning is checked where it is used)."""

    def fault(self, key, value):
        return None if isinstance(value, str) and value else f"{key} must be a non-empty string, got {value!r}"


@dataclass(frozen=True)
class Table(Limit):
    """A table (e.g. an optimizer spec) with `required` entries; the entries named in `fields` are
    checked by their limits, the others are left to the code that reads them."""

    fields: tuple  # ((name, Limit), ...)
    required: tuple = ()

    def fault(self, key, value):
        if not isinstance(value, dict):
            return f"{key} must be a table, got {value!r}"
        for name in self.required:
            if name not in value:
                return f"{key} needs {name!r}, got {value!r}"
        for name, limit in self.fields:
            if name in value:
                problem = limit.fault(f"{key}.{name}", value[name])
                if problem:
                    return problem
        return None


def check_seed_block(config: dict, first: str = "seed", count: str = "seeds"):
    """Seeds first .. first + count - 1 (experiments that number their seeds from one) must all be seeds."""
    last = config[first] + config[count] - 1
    if last > MAX_SEED:
        raise SpuriousError(f"{first} + {count} - 1 = {last} exceeds the largest seed 2^63-1")


class Experiment:
    name: str = ""  # study name used on the command line, e.g. "du-lee-2018"
    title: str = ""  # paper, authors, year
    claim: str = ""
    #: sizes accepted by default_config; "quick" for tests, "cpu" the default, "gpu" large
    sizes: tuple[str, ...] = SIZES
    #: key of the config -> what it may be (checked by `check_config`; keys without one are not checked)
    limits: dict[str, Limit] = {}

    def default_config(self, size: str = "cpu") -> dict:
        raise NotImplementedError

    def check_config(self, config: dict) -> None:
        """Refuse a key outside its limits (SpuriousError, one line naming the key and the value).
        Checks between keys (batch <= samples, ...) belong to `cells`, which calls this first."""
        for key, limit in self.limits.items():
            if key in config:
                problem = limit.fault(key, config[key])
                if problem:
                    raise SpuriousError(problem)

    def cells(self, config: dict) -> list[dict]:
        raise NotImplementedError

    def cell_memory(self, cell: dict) -> tuple[int, str] | None:
        """An upper estimate, within a small factor, of the bytes one cell holds at once, and what
        dominates it (a few words); None where the experiment gives none (every built-in one does)."""
        return None

    def memory_need(self, config: dict) -> tuple[int, str] | None:
        """The estimate of the study's largest cell (a process runs its cells one after the other),
        and which cell that is; None where the experiment gives no estimate."""
        largest = None
        for cell in self.cells(config):
            estimate = self.cell_memory(cell)
            if estimate is None:
                return None
            if largest is None or estimate[0] > largest[0]:
                largest = estimate
        return largest

    def run_cell(self, cell: dict) -> dict:
        raise NotImplementedError

    def evaluate(self, config: dict, results: list[tuple[dict, dict]]) -> ExperimentReport:
        raise NotImplementedError

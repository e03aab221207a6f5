"""The contract between a paper's experiment and the study machinery.

An experiment is declarative: `default_config(size)` gives its grid and settings (plain JSON data);
`cells(config)` splits the work into independent cells (each a JSON dict that includes its own seed,
so a cell is recomputed identically anywhere); `run_cell(cell)` computes one cell and returns
JSON-able results (numbers, short curves); `evaluate(config, results)` turns all stored cell results
into the report: the claim, a verdict with the measured numbers, a table and figures. Figures are
plain data (Figure -> Panel -> Series below); spurious.report.figures draws them, so no experiment
touches a plotting library. The study runner stores each cell's result atomically, so experiments
never touch the store.
"""
from __future__ import annotations

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


@dataclass(frozen=True)
class ExperimentReport:
    claim: str  # the paper's claim and the prediction tested, one paragraph
    passed: bool  # verdict: does the measurement reproduce the claim?
    summary: str  # the verdict in words, with the measured numbers against the thresholds
    table: list[dict] = field(default_factory=list)  # rows of the evidence table (same keys per row)
    figures: list[Figure] = field(default_factory=list)  # plain data, drawn by spurious.report.figures


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

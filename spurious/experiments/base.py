"""The contract between a paper's experiment and the study machinery.

An experiment is declarative: `default_config(size)` gives its grid and settings (plain JSON data);
`cells(config)` splits the work into independent cells (each a JSON dict that includes its own seed,
so a cell is recomputed identically anywhere); `run_cell(cell)` computes one cell and returns
JSON-able results (numbers, short curves); `evaluate(config, results)` turns all stored cell results
into the report: the claim, a verdict with the measured numbers, a table and matplotlib figures.
The study runner stores each cell's result atomically, so experiments never touch the store.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ExperimentReport:
    claim: str  # the paper's claim and the prediction tested, one paragraph
    passed: bool  # verdict: does the measurement reproduce the claim?
    summary: str  # the verdict in words, with the measured numbers against the thresholds
    table: list[dict] = field(default_factory=list)  # rows of the evidence table (same keys per row)
    figures: list[tuple[str, Any]] = field(default_factory=list)  # (file stem, matplotlib Figure)


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

"""problem -> optimize -> analyze, as one call (the CLI's `spurious run`)."""
from __future__ import annotations

from dataclasses import dataclass

from .analyze import Analysis, Tolerances, analyze
from .optimize import Endpoints, GradientDescent, multistart
from .problems.base import Problem


@dataclass(frozen=True)
class RunResult:
    problem: Problem
    endpoints: Endpoints
    analysis: Analysis


def run(problem: Problem, runs: int, seed: int = 0, optimizer: GradientDescent | None = None,
        tolerances: Tolerances | None = None, device: str = "auto", first_run: int = 0,
        progress=None) -> RunResult:
    endpoints = multistart(problem, runs, seed=seed, optimizer=optimizer, device=device,
                           first_run=first_run, progress=progress)
    return RunResult(problem, endpoints, analyze(problem, endpoints, tolerances))

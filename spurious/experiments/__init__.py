"""Built-in experiment studies: each module defines one `Experiment` (see base.py) for a claim of a
seed paper. `EXPERIMENTS` maps study names to them; the study runner (spurious.studies) runs their
cells through the store and renders their reports."""
from __future__ import annotations

from .base import Check, Experiment, ExperimentReport, Figure, Panel, Series, Verdict, judge

EXPERIMENTS: dict[str, Experiment] = {}


def register(experiment: Experiment) -> Experiment:
    EXPERIMENTS[experiment.name] = experiment
    return experiment


def load_all() -> dict[str, Experiment]:
    """Import every built-in experiment module (each calls `register`)."""
    import importlib
    import pkgutil

    for info in pkgutil.iter_modules(__path__):
        if info.name not in ("base",):
            importlib.import_module(f"{__name__}.{info.name}")
    return EXPERIMENTS


__all__ = ["EXPERIMENTS", "Check", "Experiment", "ExperimentReport", "Figure", "Panel", "Series", "Verdict", "judge",
           "register", "load_all"]

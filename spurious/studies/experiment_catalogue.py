"""The registered experiments (spurious.experiments), imported module by module so that one broken
experiment module does not hide the others (its error is kept for `spurious study list`)."""
from __future__ import annotations

import importlib
import pkgutil

from .. import experiments

_LOAD_ERRORS: dict[str, str] = {}


def experiment_studies() -> dict:
    """{name: Experiment} of every importable experiment module."""
    for info in pkgutil.iter_modules(experiments.__path__):
        if info.name == "base" or info.name.startswith("_"):
            continue
        try:
            importlib.import_module(f"{experiments.__name__}.{info.name}")
        except Exception as error:  # noqa: BLE001  (reported by `spurious study list`)
            _LOAD_ERRORS[info.name] = f"{type(error).__name__}: {error}"
    return dict(sorted(experiments.EXPERIMENTS.items()))


def find_experiment(name: str):
    """The registered experiment `name` (importing the experiment modules if needed), or None."""
    if name not in experiments.EXPERIMENTS:
        experiment_studies()
    return experiments.EXPERIMENTS.get(name)


def experiment_load_errors() -> dict[str, str]:
    return dict(_LOAD_ERRORS)

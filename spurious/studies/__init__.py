"""Studies: declarative, resumable sweeps whose cells are committed to the store one by one.

    config   TOML -> validated StudyConfig (spurious.studies.config); any problem, a grid over any of its parameters
    kinds    study kinds as types (landscape sweep, experiment): plan cells, execute one (plain data in and out)
    executors   where cells run: in-process, or RayExecutor (spurious.studies.executors; docs/ray.md)
    runner   the driver: skip stored cells, run the rest, commit each atomically
    certification   certify a stored study's families in bulk (spurious study certify)
    builtin  studies runnable by name (TOML files here, and the registered experiments)
    published   the papers' numbers that built-in studies are compared with
"""
from .builtin import catalogue, load_study
from .config import ConfigError, StudyConfig, parse
from .executors import Executor, InProcessExecutor
from .kinds import KINDS, execute_cell, kind_of, merge_families, plan
from .runner import StudyRun, run_study

__all__ = ["ConfigError", "Executor", "InProcessExecutor", "KINDS", "StudyConfig", "StudyRun", "catalogue",
           "execute_cell", "kind_of", "load_study", "merge_families", "parse", "plan", "run_study"]

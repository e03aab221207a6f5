"""Study kinds, and their unit of work, the cell (plain data in, plain data out).

A cell is a JSON-able dict that says everything needed to compute it anywhere (this process, a
worker process, a Ray task). Each kind of study plans its cells and computes one:

  LandscapeStudy   one problem of the grid (any registered or user problem), its optimizer settings
                   and tolerances, a seed and a chunk of run indices (first_run, runs): multistart
                   gradient descent, then analysis; the result is every run's class and the families
  ExperimentStudy  one cell of a registered experiment (spurious.experiments), computed by it

`execute_cell(cell)` returns a JSON-able dict. Only the driver writes results to the store
(spurious.studies.runner), so workers never touch it. `merge_families` joins the families found in
separate cells of one problem (the one grouping rule of spurious.analyze), independently of the
order the cells finished.
"""
from __future__ import annotations

import time
from typing import Callable

import numpy as np

from ..core.version import __version__
from ..analyze import Tolerances, analyze, group_families
from ..core.errors import SpuriousError
from ..core.jsonable import canonical_json, digest, numbers
from ..optimize import GradientDescent, multistart
from ..problems import build_shared
from ..stats import wilson_interval
from .config import StudyConfig
from .experiment_catalogue import find_experiment


class StudyKind:
    name = ""
    #: what progress counts: "runs" or "cells"
    unit = "cells"

    def cells(self, config: StudyConfig) -> list[dict]:
        raise NotImplementedError

    def execute(self, cell: dict, device: str, progress) -> dict:
        raise NotImplementedError

    def units(self, cell: dict) -> int:
        """How much of the study's progress one cell is."""
        return 1

    def describe(self, cell: dict, result: dict) -> str:
        """One line about a finished cell, for logs."""
        return f"{result.get('seconds', 0):.1f} s"


class LandscapeStudy(StudyKind):
    name = "landscape"
    unit = "runs"

    def cells(self, config: StudyConfig) -> list[dict]:
        out = []
        for problem in config.problems():
            for seed in config.seeds:
                for first in range(0, config.runs, config.runs_per_cell):
                    out.append({"kind": self.name, "problem_key": problem["key"], "problem": problem["name"],
                                "params": problem["params"], "optimizer": problem["optimizer"],
                                "tolerances": problem["tolerances"], "seed": seed, "first_run": first,
                                "runs": min(config.runs_per_cell, config.runs - first)})
        return out

    def units(self, cell: dict) -> int:
        return cell["runs"]

    def describe(self, cell: dict, result: dict) -> str:
        what = " ".join(f"{k}={v}" for k, v in cell["params"].items())
        return (f"{what} seed {cell['seed']} runs {cell['first_run']}..{cell['first_run'] + cell['runs'] - 1}: "
                f"{result['seconds']['total']:.1f} s")

    def execute(self, cell: dict, device: str, progress) -> dict:
        started = time.perf_counter()
        problem = build_shared(cell["problem"], cell["params"])
        settings = GradientDescent(**cell["optimizer"])
        tolerances = Tolerances(**cell["tolerances"])
        endpoints = multistart(problem, cell["runs"], seed=cell["seed"], optimizer=settings, device=device,
                               first_run=cell["first_run"], progress=progress)
        analysis = analyze(problem, endpoints, tolerances)
        runs = {
            "run": numbers(endpoints.run), "status": endpoints.status.tolist(), "class": analysis.cls.tolist(),
            "loss": numbers(analysis.loss), "grad_norm": numbers(endpoints.grad_norm),
            "polished_grad_norm": numbers(analysis.grad_norm), "polished": analysis.polished.tolist(),
            "steps": numbers(endpoints.steps), "halvings": numbers(endpoints.halvings),
            "newton": endpoints.newton.tolist(), "morse_index": numbers(analysis.morse_index),
            "lambda_min": numbers(analysis.lambda_min), "lambda_max": numbers(analysis.lambda_max),
            "family": numbers(analysis.family), "loss_rise": numbers(endpoints.loss_rise),
        }
        families = [{"id": f.id, "run": f.run, "loss": f.loss, "class": f.cls, "morse_index": f.morse_index,
                     "lambda_min": f.lambda_min, "lambda_max": f.lambda_max, "count": f.count,
                     "spectrum": numbers(f.spectrum), "representative": np.asarray(f.representative).tolist()}
                    for f in analysis.families]
        return {"runs": runs, "families": families, "device": endpoints.device, "version": __version__,
                "seconds": {"optimize": endpoints.seconds, "analyze": analysis.seconds,
                            "total": time.perf_counter() - started}}


class ExperimentStudy(StudyKind):
    name = "experiment"

    def cells(self, config: StudyConfig) -> list[dict]:
        experiment = _experiment(config.experiment)
        out = []
        for cell in experiment.cells(config.experiment_config):
            canonical_json(cell)  # must be plain data
            out.append({"kind": self.name, "experiment": config.experiment, "cell": cell})
        return out

    def execute(self, cell: dict, device: str, progress) -> dict:
        started = time.perf_counter()
        result = _experiment(cell["experiment"]).run_cell(cell["cell"])
        canonical_json(result)  # must be plain data
        return {"result": result, "seconds": time.perf_counter() - started, "version": __version__}


def _experiment(name: str):
    experiment = find_experiment(name)
    if experiment is None:
        raise SpuriousError(f"experiment {name!r} is not installed here")
    return experiment


KINDS: dict[str, StudyKind] = {k.name: k for k in (LandscapeStudy(), ExperimentStudy())}


def kind_of(config_or_cell) -> StudyKind:
    name = config_or_cell["kind"] if isinstance(config_or_cell, dict) else config_or_cell.kind
    try:
        return KINDS[name]
    except KeyError:
        raise SpuriousError(f"unknown study kind {name!r} (kinds: {', '.join(KINDS)})") from None


def plan(config: StudyConfig) -> list[dict]:
    """Every cell of the study, in a fixed order; each with its index and a content key."""
    out = kind_of(config).cells(config)
    for index, cell in enumerate(out):
        cell["key"] = digest(cell)
        cell["index"] = index
    return out


def execute_cell(cell: dict, device: str = "auto", progress: Callable[[int, int], None] | None = None) -> dict:
    """Compute one cell (plain dict) and return its result (plain dict). Safe to run anywhere."""
    return kind_of(cell).execute(cell, device, progress)


def merge_families(problem_name: str, params: dict, tolerances: dict, cell_families: list[dict],
                   total_runs: int) -> list[dict]:
    """Join the cell-level families of one problem into problem-level families.

    cell_families: dicts with cell (index), local (id in its cell), run, seed, loss, class, morse_index,
    lambda_min, lambda_max, count, spectrum, representative. They are visited in (cell, local) order,
    so the result does not depend on the order cells finished. All global minima are one family; the
    others are grouped by spurious.analyze.group_families. Returns families ordered like analyze's
    (global first, then by loss), with ids 0.. and members.
    """
    tolerances = Tolerances(**tolerances)
    problem = build_shared(problem_name, params)
    ordered = sorted(cell_families, key=lambda f: (f["cell"], f["local"]))
    global_group = [i for i, f in enumerate(ordered) if f["class"] == "global_minimum"]
    others = [i for i, f in enumerate(ordered) if f["class"] != "global_minimum"]
    loss = [f["loss"] for f in ordered]
    points = [np.asarray(f["representative"]) for f in ordered]
    groups = [[ordered[i] for i in g] for g in group_families(others, loss, points, problem, tolerances)]
    if global_group:
        groups.insert(0, [ordered[i] for i in global_group])
    groups.sort(key=lambda g: (g[0]["class"] != "global_minimum", g[0]["loss"], g[0]["cell"], g[0]["local"]))
    out = []
    for fid, group in enumerate(groups):
        rep = group[0]
        count = sum(f["count"] for f in group)
        low, high = wilson_interval(count, total_runs)
        out.append({"id": fid, "class": rep["class"], "loss": rep["loss"], "morse_index": rep["morse_index"],
                    "lambda_min": rep["lambda_min"], "lambda_max": rep["lambda_max"], "count": count,
                    "fraction": count / total_runs if total_runs else 0.0, "ci_low": low, "ci_high": high,
                    "run": rep["run"], "seed": rep["seed"], "spectrum": rep["spectrum"],
                    "representative": rep["representative"],
                    "members": [(f["cell"], f["local"]) for f in group]})
    return out

"""Cells: the unit of work of a study, as plain data in and plain data out.

A cell is a JSON-able dict that says everything needed to compute it anywhere (in this process, a
worker process, a Ray task): a landscape cell names one problem, its optimizer settings and
tolerances, a seed and a chunk of run indices (first_run, runs); an experiment cell carries the
experiment's own cell dict. `execute_cell(cell)` returns a JSON-able dict. Only the driver writes
the results to the store (spurious.studies.runner), so workers never touch it.

`merge_families` joins the families found in separate cells of one problem into the problem's
families (endpoints equal up to the problem's symmetry), independently of the order cells finished.
"""
from __future__ import annotations

import math
import time
from typing import Callable

import numpy as np

from ..errors import SpuriousError
from .config import StudyConfig, canonical_json, digest

#: problems built in this process, by key (so chunks of one problem share compiled kernels)
_PROBLEMS: dict[str, object] = {}


def build_problem(name: str, params: dict):
    from ..problems import EmpiricalTeacherStudent, ReLUTeacherStudent

    key = canonical_json({"name": name, "params": params})
    if key not in _PROBLEMS:
        if name == "relu-teacher-student":
            _PROBLEMS[key] = ReLUTeacherStudent(**params)
        elif name == "empirical-teacher-student":
            _PROBLEMS[key] = EmpiricalTeacherStudent(**params)
        else:
            raise SpuriousError(f"unknown problem {name!r}")
        if len(_PROBLEMS) > 64:
            _PROBLEMS.pop(next(iter(_PROBLEMS)))
    return _PROBLEMS[key]


def check_problem(problem: dict):
    """Raise SpuriousError if a planned problem cannot be built (checked before anything runs)."""
    from ..analyze import Tolerances
    from ..optimize import GradientDescent

    params = problem["params"]
    dim = params.get("dim", params.get("teacher"))
    if dim is not None and params.get("teacher", 0) > dim:
        raise SpuriousError(f"problem {problem['key']}: dim ({dim}) must be at least teacher ({params['teacher']})")
    if problem["name"] == "empirical-teacher-student" and "activation" in params:
        from ..problems.empirical import activation

        activation(params["activation"])
    GradientDescent(**problem["optimizer"])
    Tolerances(**problem["tolerances"])


def plan(config: StudyConfig) -> list[dict]:
    """Every cell of the study, in a fixed order; each with its index and a content key."""
    out = []
    if config.kind == "experiment":
        from .builtin import find_experiment

        experiment = find_experiment(config.experiment)
        for cell in experiment.cells(config.experiment_config):
            canonical_json(cell)  # must be plain data
            out.append({"kind": "experiment", "experiment": config.experiment, "cell": cell})
    else:
        for problem in config.problems():
            for seed in config.seeds:
                for first in range(0, config.runs, config.runs_per_cell):
                    out.append({"kind": "landscape", "problem_key": problem["key"], "problem": problem["name"],
                                "params": problem["params"], "optimizer": problem["optimizer"],
                                "tolerances": problem["tolerances"], "seed": seed, "first_run": first,
                                "runs": min(config.runs_per_cell, config.runs - first)})
    for index, cell in enumerate(out):
        cell["key"] = digest(cell)
        cell["index"] = index
    return out


def _clean(values) -> list:
    """A numeric array as a JSON list (NaN and infinities as None)."""
    out = []
    for v in np.asarray(values).tolist():
        out.append(None if isinstance(v, float) and not math.isfinite(v) else v)
    return out


def execute_cell(cell: dict, device: str = "auto", progress: Callable[[int, int], None] | None = None) -> dict:
    """Compute one cell (plain dict) and return its result (plain dict). Safe to run anywhere."""
    from .. import __version__

    started = time.perf_counter()
    if cell["kind"] == "experiment":
        from .builtin import find_experiment

        experiment = find_experiment(cell["experiment"])
        if experiment is None:
            raise SpuriousError(f"experiment {cell['experiment']!r} is not installed here")
        result = experiment.run_cell(cell["cell"])
        canonical_json(result)  # must be plain data
        return {"result": result, "seconds": time.perf_counter() - started, "version": __version__}
    return _landscape_cell(cell, device, progress, started, __version__)


def _landscape_cell(cell, device, progress, started, version) -> dict:
    from ..analyze import Tolerances, analyze
    from ..optimize import GradientDescent, multistart

    problem = build_problem(cell["problem"], cell["params"])
    settings = GradientDescent(**cell["optimizer"])
    tol = Tolerances(**cell["tolerances"])
    endpoints = multistart(problem, cell["runs"], seed=cell["seed"], optimizer=settings, device=device,
                           first_run=cell["first_run"], progress=progress)
    analysis = analyze(problem, endpoints, tol)
    runs = {
        "run": _clean(endpoints.run), "status": endpoints.status.tolist(), "class": analysis.cls.tolist(),
        "loss": _clean(analysis.loss), "grad_norm": _clean(endpoints.grad_norm),
        "polished_grad_norm": _clean(analysis.grad_norm), "polished": analysis.polished.tolist(),
        "steps": _clean(endpoints.steps), "halvings": _clean(endpoints.halvings), "newton": endpoints.newton.tolist(),
        "index": _clean(analysis.index), "lambda_min": _clean(analysis.lambda_min),
        "lambda_max": _clean(analysis.lambda_max), "family": _clean(analysis.family),
    }
    families = [{"id": f.id, "run": f.run, "loss": f.loss, "class": f.cls, "index": f.index,
                 "lambda_min": f.lambda_min, "lambda_max": f.lambda_max, "count": f.count,
                 "spectrum": _clean(f.spectrum), "representative": np.asarray(f.representative).tolist()}
                for f in analysis.families]
    return {"runs": runs, "families": families, "device": endpoints.device, "version": version,
            "seconds": {"optimize": endpoints.seconds, "analyze": analysis.seconds,
                        "total": time.perf_counter() - started}}


def merge_families(problem_name: str, params: dict, tolerances: dict, cell_families: list[dict],
                   total_runs: int) -> list[dict]:
    """Join the cell-level families of one problem into problem-level families.

    cell_families: dicts with cell (index), local (id in its cell), run, seed, loss, class, index,
    lambda_min, lambda_max, count, spectrum, representative. They are visited in (cell, local) order,
    so the result does not depend on the order cells finished. Rules as in spurious.analyze: all
    global minima are one family; other endpoints are one family when their losses agree within
    tolerances.family_loss (relative) and their distance up to symmetry is <= tolerances.family.
    Returns families ordered like analyze's (global first, then by loss), with ids 0.. and members.
    """
    from ..analyze import Tolerances
    from ..stats import wilson_interval

    tol = Tolerances(**tolerances)
    problem = build_problem(problem_name, params)
    groups: list[list[dict]] = []
    global_group: list[dict] = []
    for fam in sorted(cell_families, key=lambda f: (f["cell"], f["local"])):
        if fam["class"] == "global_minimum":
            global_group.append(fam)
            continue
        rep_params = np.asarray(fam["representative"])
        for group in groups:
            rep = group[0]
            if abs(fam["loss"] - rep["loss"]) <= tol.family_loss * max(1.0, abs(rep["loss"])) and \
                    problem.symmetry.distance(np.asarray(rep["representative"]), rep_params) <= tol.family:
                group.append(fam)
                break
        else:
            groups.append([fam])
    if global_group:
        groups.insert(0, global_group)
    groups.sort(key=lambda g: (g[0]["class"] != "global_minimum", g[0]["loss"], g[0]["cell"], g[0]["local"]))
    out = []
    for fid, group in enumerate(groups):
        rep = group[0]
        count = sum(f["count"] for f in group)
        low, high = wilson_interval(count, total_runs)
        out.append({"id": fid, "class": rep["class"], "loss": rep["loss"], "index": rep["index"],
                    "lambda_min": rep["lambda_min"], "lambda_max": rep["lambda_max"], "count": count,
                    "fraction": count / total_runs if total_runs else 0.0, "ci_low": low, "ci_high": high,
                    "run": rep["run"], "seed": rep["seed"], "spectrum": rep["spectrum"],
                    "representative": rep["representative"],
                    "members": [(f["cell"], f["local"]) for f in group]})
    return out

"""Shamir (NeurIPS 2018): are ResNets provably better than linear predictors?

Residual unit x -> w.(x + V relu(Ux + c)) with squared loss: every local minimum is at least as good
as the best linear predictor (F_lin, by least squares). Experiment (ours): x ~ N(0, I_10),
y = sin(2 a.x) + 0.5 b.x + 0.1 eps, N = 2000, branch width 32; full-batch gradient descent from the
standard init and from a "dead branch" init (c = -5 and U scaled by 0.1, so relu(Ux + c) = 0 on all
data); control: the
plain network x -> v.relu(Ux + c) with the same starts. Every run's final loss is compared with its
own data set's F_lin. Variant: readout decoupled from the skip, x -> w.x + u.relu(Ux + c), trained
by SGD (optax, mini-batches drawn without replacement): the running average of the online losses should come
within O(1/sqrt(T)) of F_lin (or below).
The landscape is the registered `residual-unit-regression`, one data set per seed. Full-batch GD is
the engine's `multistart` (pure gradient descent, a fixed number of steps; its endpoints are the
evidence; the loss curves of the figure retrace the same descent with `sgd.train_many`), SGD is `sgd.train_many` (batches without replacement, a fresh permutation per epoch; it
records the running average of the online losses). All endpoints go through `spurious.analyze`.
"""
from __future__ import annotations

import math
import time

import jax.numpy as jnp
import numpy as np

from ..core import setup as _setup  # noqa: F401  (float64 before any array)
from .. import sgd
from ..analyze import analyze
from ..core.errors import SpuriousError
from ..optimize import GradientDescent, multistart, run_key
from ..problems import residual as res
from ..problems.residual import ResidualUnitRegression
from . import register
from ._curves import classes_and_families, describe_classes, describe_families, flat, merge_classes, num, nums, section
from ._memory import FLOAT, analysis_bytes, count, multistart_bytes, training_bytes
from .base import (SIZES, AtLeast, Check, Choice, Count, Experiment, ExperimentReport, Figure, ListOf, Panel, Positive,
                   Seed, Series, judge)

#: a gradient this small (Frobenius) stops gradient descent: the endpoint is a critical point
GRAD_TOL = 1e-10


def curve_records(steps: int, search: int | None = None) -> int:
    """How many evenly spaced records the figure's curves take (about 100): the smallest divisor of
    `steps` that is >= 100 (steps itself below 100). With `search`, at most that many candidates are
    tried before giving up with steps, an upper bound (what an estimate needs, quickly)."""
    stop = steps if search is None else min(steps, 100 + search)
    return next((r for r in range(100, stop + 1) if steps % r == 0), steps)


def _loss_curves(cell: dict, problems: list[ResidualUnitRegression]) -> tuple[list[int], list[list]]:
    """The training loss along full-batch gradient descent from each seed's start (the same starts
    and steps as the multistart above, recorded ~100 times by `sgd.train_many`), for the figure."""
    steps = cell["steps"]
    every = steps // curve_records(steps)
    starts = jnp.stack([p.init(run_key(seed, 0)) for p, seed in zip(problems, cell["seeds"])])
    data = (jnp.stack([p.inputs for p in problems]), jnp.stack([p.targets for p in problems]))
    blocks, architecture = problems[0].blocks, cell["architecture"]
    training = sgd.train_many(lambda th, X, y: res.loss(th, X, y, architecture, blocks), starts, data,
                              sgd.optimizer({"name": "sgd", "learning_rate": cell["step"]}), steps, None,
                              data_axis=0, record_every=every)
    return training.steps.tolist(), [nums(curve) for curve in training.losses]


def problem(cell: dict, seed: int) -> ResidualUnitRegression:
    return ResidualUnitRegression(cell["architecture"], dim=cell["dim"], width=cell["width"], samples=cell["samples"],
                                  init=cell["init"], noise_std=cell["noise_std"], dead_bias=cell["dead_bias"],
                                  data_seed=seed)


def _active_fraction(p: ResidualUnitRegression, theta) -> float:
    """Share of (sample, unit) pairs where the ReLU branch is active."""
    return float(jnp.mean(res.branch(p.unpack(jnp.asarray(theta)), p.inputs) > 0))


class Shamir2018(Experiment):
    name = "shamir-2018"
    title = "Shamir, Are ResNets provably better than linear predictors? (NeurIPS 2018)"
    claim = ("For residual units x -> w.(x + V f_theta(x)) with a convex loss, every local minimum is at least as "
             "good as the best linear predictor; with a small change of the architecture (readout decoupled from "
             "the skip), SGD provably gets within O(1/sqrt(T)) of (or below) the best linear predictor's loss. "
             "Predictions tested (ours): on x ~ N(0, I_10), y = sin(2a.x) + 0.5 b.x + 0.1 eps, N = 2000, ReLU "
             "branch of width 32, every full-batch GD run of the residual net (standard and dead-branch inits) "
             "ends at <= F_lin + 1e-3; the plain net from the dead start can stall above F_lin; the decoupled net "
             "trained by SGD has running-average loss <= F_lin + 1/sqrt(T).")

    def default_config(self, size: str = "cpu") -> dict:
        base = dict(dim=10, width=32, samples=2000, noise_std=0.1, dead_bias=5.0, tolerance=1e-3, bound_constant=1.0)
        if size == "quick":
            return dict(base, size=size, width=8, samples=200, seeds=[0, 1],
                        **flat("gd", dict(step=0.2, steps=600)),
                        **flat("sgd", dict(learning_rate=0.05, steps=2000, batch=8, record_every=100)))
        if size == "cpu":
            return dict(base, size=size, seeds=list(range(6)),
                        **flat("gd", dict(step=0.2, steps=3000)),
                        **flat("sgd", dict(learning_rate=0.02, steps=20000, batch=1, record_every=500)))
        if size == "gpu":
            return dict(base, size=size, seeds=list(range(64)),
                        **flat("gd", dict(step=0.2, steps=20000)),
                        **flat("sgd", dict(learning_rate=0.02, steps=200000, batch=1, record_every=5000)))
        raise SpuriousError(f"unknown size {size!r}: choose one of {', '.join(self.sizes)}")

    limits = {
        "size": Choice(*SIZES), "dim": Count(), "width": Count(), "samples": Count(), "noise_std": AtLeast(0.0),
        "dead_bias": AtLeast(0.0), "tolerance": Positive(), "bound_constant": Positive(), "seeds": ListOf(Seed()),
        **flat("gd", dict(step=Positive(), steps=Count())),
        **flat("sgd", dict(learning_rate=Positive(), steps=Count(), batch=Count(), record_every=Count())),
    }

    def cells(self, config: dict) -> list[dict]:
        self.check_config(config)
        if config["sgd_steps"] % config["sgd_record_every"]:
            raise SpuriousError(f"sgd_record_every ({config['sgd_record_every']}) must divide sgd_steps "
                                f"({config['sgd_steps']})")
        if config["sgd_batch"] > config["samples"]:
            raise SpuriousError(f"sgd_batch ({config['sgd_batch']}) exceeds samples ({config['samples']})")
        common = {k: config[k] for k in ("dim", "width", "samples", "noise_std")}
        out = []
        for architecture in ("residual", "plain"):
            for init in ("standard", "dead"):
                out.append(dict(part="gd", architecture=architecture, init=init, seeds=list(config["seeds"]),
                                dead_bias=config["dead_bias"], **section(config, "gd"), **common))
        out.append(dict(part="sgd", architecture="decoupled", init="standard", seeds=list(config["seeds"]),
                        dead_bias=config["dead_bias"], **section(config, "sgd"), **common))
        return out

    def cell_memory(self, cell: dict) -> tuple[int, str]:
        seeds, n, d, width = len(cell["seeds"]), cell["samples"], cell["dim"], cell["width"]
        parameters = sum(math.prod(shape) for shape in res.layout(cell["architecture"], d, width).values())
        activations = 2 * n * width  # the branch's pre-activations and ReLU outputs
        data = FLOAT * seeds * 3 * n * (d + 1)  # every seed's data set, with the least-squares copies
        if cell["part"] == "gd":
            # one engine run per seed (its own reserve), its analysis, then the curves retraced by train_many
            records = curve_records(cell["steps"], search=10 ** 6)
            need = data + multistart_bytes(parameters, activations) + analysis_bytes(parameters, 1, activations) \
                + training_bytes(seeds, parameters, n * (d + 1), activations, records + 1, cell["steps"] // records)
        else:
            records = cell["steps"] // cell["record_every"]
            need = data + training_bytes(seeds, parameters, n * (d + 1), 2 * cell["batch"] * width, records + 1,
                                         cell["record_every"], evaluation=activations) \
                + analysis_bytes(parameters, 1, activations)
        return need, (f"{cell['part']} of the {cell['architecture']} net: {seeds} seeds of {count(parameters)} "
                      f"parameters on {count(n)} samples, their dense Hessians")

    def run_cell(self, cell: dict) -> dict:
        started = time.perf_counter()
        problems = [problem(cell, seed) for seed in cell["seeds"]]
        if cell["part"] == "gd":
            optimizer = GradientDescent(step=cell["step"], grad_tol=GRAD_TOL, stop_norm="frobenius",
                                        max_steps=cell["steps"], newton_switch=None)
            out = dict(linear_loss=[], final_loss=[], final_grad_norm=[], steps=[], active_at_init=[], analysis=[])
            for p, seed in zip(problems, cell["seeds"]):
                ends = multistart(p, 1, seed=seed, optimizer=optimizer)
                out["linear_loss"].append(num(p.linear_loss))
                out["final_loss"].append(num(ends.loss[0]))
                out["final_grad_norm"].append(num(ends.grad_norm[0]))
                out["steps"].append(int(ends.steps[0]))
                out["active_at_init"].append(_active_fraction(p, p.init(run_key(seed, 0))))
                out["analysis"].append(classes_and_families(analyze(p, ends)))
            out["curve_steps"], out["curves"] = _loss_curves(cell, problems)
            return dict(out, seconds=time.perf_counter() - started)
        blocks = problems[0].blocks
        starts = jnp.stack([p.init(run_key(seed, 0)) for p, seed in zip(problems, cell["seeds"])])
        data = (jnp.stack([p.inputs for p in problems]), jnp.stack([p.targets for p in problems]))
        spec = {"name": "sgd", "learning_rate": cell["learning_rate"]}
        training = sgd.train_many(lambda th, X, y: res.loss(th, X, y, "decoupled", blocks), starts, data,
                                  sgd.optimizer(spec), cell["steps"], cell["batch"],
                                  sgd.stream_key(0, "batches-decoupled"), data_axis=0,
                                  record_every=cell["record_every"])
        analyses = [classes_and_families(analyze(p, sgd.endpoints(p, training.params[i:i + 1], seed=seed,
                                                                  grad_tol=GRAD_TOL, steps=cell["steps"],
                                                                  optimizer=spec)))
                    for i, (p, seed) in enumerate(zip(problems, cell["seeds"]))]
        return dict(linear_loss=nums([p.linear_loss for p in problems]), final_loss=nums(training.losses[:, -1]),
                    running_average=nums(training.online[:, -1]),
                    checkpoint_average=[nums(a[1:]) for a in training.online],
                    checkpoint_steps=training.steps[1:].tolist(),
                    active_at_init=[_active_fraction(p, x) for p, x in zip(problems, starts)], analysis=analyses,
                    seconds=time.perf_counter() - started)

    def evaluate(self, config: dict, results: list[tuple[dict, dict]]) -> ExperimentReport:
        tol, const = config["tolerance"], config["bound_constant"]
        rows = []
        gd = {(c["architecture"], c["init"]): (c, r) for c, r in results if c["part"] == "gd"}
        sgd = [(c, r) for c, r in results if c["part"] == "sgd"]
        inf = lambda v: math.inf if v is None else v
        for (arch, init), (c, r) in sorted(gd.items()):
            for i, seed in enumerate(c["seeds"]):
                rows.append(dict(architecture=arch, init=init, optimizer=f"GD step {c['step']}, {c['steps']} steps",
                                 seed=seed, linear_loss=r["linear_loss"][i], final_loss=r["final_loss"][i],
                                 excess=num(inf(r["final_loss"][i]) - r["linear_loss"][i]),
                                 running_average_excess=None, bound=None, final_grad_norm=r["final_grad_norm"][i],
                                 active_at_init=r["active_at_init"][i], endpoint=_endpoint(r["analysis"][i])))
        for c, r in sgd:
            bound = const / math.sqrt(c["steps"])
            for i, seed in enumerate(c["seeds"]):
                rows.append(dict(architecture=c["architecture"], init=c["init"],
                                 optimizer=f"SGD lr {c['learning_rate']}, batch {c['batch']}, T={c['steps']}",
                                 seed=seed, linear_loss=r["linear_loss"][i], final_loss=r["final_loss"][i],
                                 excess=num(inf(r["final_loss"][i]) - r["linear_loss"][i]),
                                 running_average_excess=num(inf(r["running_average"][i]) - r["linear_loss"][i]),
                                 bound=bound, final_grad_norm=None, active_at_init=r["active_at_init"][i],
                                 endpoint=_endpoint(r["analysis"][i])))
        residual = [r for r in rows if r["architecture"] == "residual"]
        plain_dead = [r for r in rows if r["architecture"] == "plain" and r["init"] == "dead"]
        decoupled = [r for r in rows if r["architecture"] == "decoupled"]
        above = [r for r in residual if inf(r["excess"]) > tol]
        # a run above F_lin + tol whose gradient is still above GRAD_TOL is no local minimum: no evidence
        moving = [r for r in above if not (r["final_grad_norm"] is not None and r["final_grad_norm"] <= GRAD_TOL)]
        exceeded = [r for r in decoupled if inf(r["running_average_excess"]) > r["bound"]]
        sgd_ok = bool(decoupled) and not exceeded
        stalled = sum(inf(r["excess"]) > tol for r in plain_dead)
        verdict, decided = judge([
            Check(f"every residual-net GD run ends at <= F_lin + {tol:g}", cases=len(residual),
                  against=len(above) - len(moving), unconverged=len(moving),
                  gradient_norms=[r["final_grad_norm"] for r in moving],
                  evidence="excess over F_lin " + ", ".join(f"{inf(r['excess']):+.2e}" for r in above)
                           + f"; converged means gradient norm <= {GRAD_TOL:g}",
                  missing="no residual GD runs (no seeds)"),
            Check(f"the decoupled net's SGD running-average loss is <= F_lin + {const:g}/sqrt(T)", cases=len(decoupled),
                  against=len(exceeded), unit="seeds",
                  evidence="running average - F_lin " + ", ".join(
                      f"{inf(r['running_average_excess']):+.2e} vs bound {r['bound']:.2e}" for r in exceeded),
                  missing="no SGD runs (no seeds)"),
        ])

        def span(rs, key):
            vals = [r[key] for r in rs if r[key] is not None]
            return (min(vals), max(vals)) if vals else (float("nan"), float("nan"))

        groups = "; ".join(
            f"{a}/{i}: final - F_lin in [{span([r for r in rows if r['architecture'] == a and r['init'] == i], 'excess')[0]:+.2e}, "
            f"{span([r for r in rows if r['architecture'] == a and r['init'] == i], 'excess')[1]:+.2e}]"
            for a, i in sorted({(r["architecture"], r["init"]) for r in rows}))
        sgd_span = span(decoupled, "running_average_excess")
        T = sgd[0][0]["steps"] if sgd else 0
        summary = (
            (decided + " " if decided else "")
            + (f"{sum(inf(r['excess']) <= tol for r in residual)}/{len(residual)} residual GD runs end at <= F_lin + "
               f"{tol:g} (worst excess {span(residual, 'excess')[1]:+.2e}); " if residual else "")
            + (f"SGD on the decoupled net: running-average loss - F_lin in [{sgd_span[0]:+.3e}, {sgd_span[1]:+.3e}] at "
               f"T = {T} against the bound {const:g}/sqrt(T) = {const / math.sqrt(T) if T else float('nan'):.2e} "
               f"({'ok' if sgd_ok else 'EXCEEDED'}). " if decoupled else "")
            + (f"Control: {stalled}/{len(plain_dead)} plain nets from the dead start stall above F_lin + {tol:g}. "
               if plain_dead else "")
            + (f"Per group: {groups}. F_lin per data set in [{span(rows, 'linear_loss')[0]:.4f}, "
               f"{span(rows, 'linear_loss')[1]:.4f}]. " if rows else "")
            + ("Analysis of the endpoints: " + "; ".join(
                [f"{a}/{i}: " + describe_classes(merge_classes(r["analysis"])) for (a, i), (c, r) in sorted(gd.items())]
                + ["decoupled/SGD: " + describe_classes(merge_classes(p for c, r in sgd for p in r["analysis"]))] * bool(sgd))
               + "." if rows else "")).strip()

        labels = sorted({(r["architecture"], r["init"]) for r in rows})
        points = []
        for j, lab in enumerate(labels):
            vals = [inf(r["excess"]) for r in rows if (r["architecture"], r["init"]) == lab]
            jitter = (np.random.default_rng(j).random(len(vals)) - 0.5) * 0.3
            points.append(Series(np.full(len(vals), j) + jitter, vals, None, kind="scatter", color=f"C{j}", size=14))
        figs = [Figure("final_excess_per_run", [Panel(
            points + [Series([], [0.0], None, kind="hline", color="k", width=0.8),
                      Series([], [tol], f"F_lin + {tol:g}", kind="hline", color="k", style=":", width=0.8)],
            title="every run's endpoint against the best linear predictor", ylabel="final loss - F_lin (every run)",
            yscale="symlog", linthresh=1e-4, xticklabels=[f"{a}\n{i}" for a, i in labels])])]
        styles = {("residual", "standard"): ("C0", "-"), ("residual", "dead"): ("C0", "--"),
                  ("plain", "standard"): ("C3", "-"), ("plain", "dead"): ("C3", "--")}
        curves = []
        for (arch, init), (c, r) in sorted(gd.items()):
            color, style = styles.get((arch, init), (None, "-"))
            for i, curve in enumerate(r.get("curves", [])):
                curves.append(Series(np.array(r["curve_steps"]),
                                     np.array([np.nan if v is None else v for v in curve]) - r["linear_loss"][i],
                                     f"{arch}, {init} start" if i == 0 else None, color=color, style=style,
                                     alpha=0.7, width=1))
        if curves:
            figs.insert(0, Figure("gd_loss_minus_linear", [Panel(
                curves + [Series([], [0.0], None, kind="hline", color="k", width=0.8),
                          Series([], [tol], None, kind="hline", color="k", style=":", width=0.8)],
                title="Residual unit vs plain net vs the best linear predictor (full-batch GD)",
                xlabel="gradient step", ylabel="loss - F_lin", yscale="symlog", linthresh=1e-4)]))
        if sgd:
            c, r = sgd[0]
            steps = np.array(r["checkpoint_steps"])
            series = [Series(steps, np.array([np.nan if v is None else v for v in avg]) - r["linear_loss"][i],
                             f"seed {c['seeds'][i]}", alpha=0.8) for i, avg in enumerate(r["checkpoint_average"])]
            series += [Series(steps, const / np.sqrt(steps), f"{const:g}/sqrt(T)", color="k", style="--"),
                       Series([], [0.0], None, kind="hline", color="k", width=0.8)]
            figs.append(Figure("sgd_running_average", [Panel(
                series, title="Decoupled readout x -> w.x + u.relu(Ux+c), SGD", xlabel="SGD steps T",
                ylabel="running-average online loss - F_lin", xscale="log", yscale="symlog", linthresh=1e-3)]))
        return ExperimentReport(claim=self.claim, verdict=verdict, summary=summary, table=rows, figures=figs)


def _endpoint(analysis: dict) -> str:
    return describe_families(analysis["families"]) if analysis["families"] else describe_classes(analysis["classes"])


EXPERIMENT = register(Shamir2018())

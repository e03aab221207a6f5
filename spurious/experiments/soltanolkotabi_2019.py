"""Soltanolkotabi, Javanmard & Lee (IEEE TIT 2019): over-parameterized quadratic networks.

(a) Arbitrary data: x -> sum_j a_j (w_j.x)^2 with k = 2d hidden units (a = +-1, equal numbers) fits
    n < d(d+1)/2 arbitrary labels: gradient descent drives the training loss to zero in every seed.
(b) Planted model y = sum_{j<=k*} (w*_j.x)^2 with Gaussian inputs: gradient descent from a small
    random start; the exactly sized student (k = k*) converges at a linear rate and recovers
    W*^T W*; over-sized students (k > k*) reach zero loss only sublinearly (their extra units die
    out like a power of t, since the loss is quartic in them).
(c) The same planted experiment with a smooth activation (tanh), started near the planted weights
    (W* + 0.1 noise): "suitably initialized" gradient descent converges linearly and recovers W*.
The landscapes are the registered `quadratic-network` (a, b) and `empirical-teacher-student` (c),
one data set per seed; full-batch gradient descent is `sgd.train_many` with optax.sgd (all seeds of
a quadratic setting in one program), which records the loss curves the rates are fitted to. The
endpoints of (a) and (b) then go through `spurious.analyze` (classes and families per setting).
"""
from __future__ import annotations

import itertools
import math
import time

import jax
import jax.numpy as jnp
import numpy as np

from ..core import setup as _setup  # noqa: F401  (float64 before any array)
from .. import sgd
from ..analyze import analyze
from ..core.errors import SpuriousError
from ..problems import quadratic as q
from ..problems.empirical import ACTIVATIONS, EmpiricalTeacherStudent
from ..problems.quadratic import QuadraticNetwork
from . import register
from ._curves import (classes_and_families, describe_classes, describe_families, fit_rate, flat, merge_classes, num,
                      nums, section)
from ._memory import FLOAT, RESULT_NUMBER, analysis_bytes, count, training_bytes
from .base import (SIZES, Check, Choice, Count, Experiment, ExperimentReport, Figure, ListOf, Panel, Positive, Seed,
                   Series, judge)

#: a gradient this small (Frobenius) makes an endpoint 'converged' for the analysis
GRAD_TOL = 1e-8


def quadratic_problem(cell: dict, seed: int) -> QuadraticNetwork:
    planted = cell["part"] == "planted"
    return QuadraticNetwork(dim=cell["dim"], hidden=cell["hidden"], samples=cell["samples"],
                            signs="positive" if planted else "balanced", targets="planted" if planted else "gaussian",
                            planted=cell["teacher"] if planted else None, data_seed=seed, init_std=cell["init_std"])


def _start_key(seed: int):
    return jax.random.fold_in(jax.random.PRNGKey(seed), 2)


def _train_quadratic(cell: dict):
    """Full-batch GD on every seed's quadratic-network landscape at once (data per member)."""
    problems = [quadratic_problem(cell, s) for s in cell["seeds"]]
    signs = jnp.asarray(problems[0].signs)
    starts = jnp.stack([p.init(_start_key(s)) for p, s in zip(problems, cell["seeds"])])
    data = (jnp.stack([p.inputs for p in problems]), jnp.stack([p.targets for p in problems]))
    training = sgd.train_many(lambda W, X, y: q.loss(W, X, y, signs, 0.0), starts, data,
                              sgd.optimizer({"name": "sgd", "learning_rate": cell["step"]}), cell["steps"], None,
                              data_axis=0, record_every=cell["record_every"])
    analyses = []
    for i, (p, s) in enumerate(zip(problems, cell["seeds"])):
        ends = sgd.endpoints(p, training.params[i:i + 1], seed=s, grad_tol=GRAD_TOL, steps=cell["steps"],
                             optimizer={"name": "sgd", "learning_rate": cell["step"]})
        analyses.append(dict(classes_and_families(analyze(p, ends)), grad_norm=num(ends.grad_norm[0])))
    planted = [p.planted if p.planted is not None else np.zeros((1, cell["dim"])) for p in problems]
    return training, planted, [p.signs for p in problems], [p.targets for p in problems], analyses


def _train_smooth(cell: dict):
    """Full-batch GD on each seed's tanh teacher-student landscape from W* + noise."""
    trainings, planted, targets = [], [], []
    for s in cell["seeds"]:
        key = jax.random.PRNGKey(s)
        teacher = np.asarray(jax.random.normal(jax.random.fold_in(key, 1), (cell["teacher"], cell["dim"]),
                                               dtype=jnp.float64)) / math.sqrt(cell["dim"])
        p = EmpiricalTeacherStudent(teacher=cell["teacher"], student=cell["teacher"], dim=cell["dim"],
                                    samples=cell["samples"], activation=cell["activation"], data_seed=s,
                                    teacher_weights=teacher)
        start = teacher + cell["init_std"] * jax.random.normal(_start_key(s), teacher.shape, dtype=jnp.float64)
        trainings.append(sgd.train_many(p.loss, start[None], (), sgd.optimizer({"name": "sgd", "learning_rate": cell["step"]}),
                                        cell["steps"], None, record_every=cell["record_every"]))
        planted.append(teacher)
        targets.append(p.targets)
    return trainings, planted, targets


def _recovery(W, Wstar, signs, part):
    """Quadratic: ||W^T diag(a) W - W*^T W*||_F / ||W*^T W*||_F. Smooth: max-abs error of W against
    W* after the best permutation of the student's units."""
    if part == "smooth":
        k = Wstar.shape[0]
        return min(float(np.max(np.abs(W[list(p)] - Wstar))) for p in itertools.permutations(range(k)))
    M = W.T @ (signs[:, None] * W)
    Mstar = Wstar.T @ Wstar
    return float(np.linalg.norm(M - Mstar) / np.linalg.norm(Mstar))


class Soltanolkotabi2019(Experiment):
    name = "soltanolkotabi-2019"
    title = ("Soltanolkotabi, Javanmard & Lee, Theoretical insights into the optimization landscape of "
             "over-parameterized shallow neural networks (IEEE TIT 2019)")
    claim = ("With quadratic activations and about k >= 2d hidden units, all local minima are global for "
             "arbitrary data; in a planted model with Gaussian inputs, suitably initialized gradient descent "
             "converges at a linear rate. Predictions tested: (a) d = 20, n = 150, N(0,1) labels, k = 2d: relative "
             "training loss <= 1e-12 in every seed; (b) planted y = sum_{j<=3} (w*_j.x)^2, n = 300, step 0.05: the "
             "exactly sized student is linear (log-loss a straight line) down to <= 1e-25 and recovers W*^T W* "
             "to 1e-12, over-sized students converge only sublinearly; (c) tanh from W* + 0.1 noise converges "
             "linearly and recovers W* (thresholds 1e-20 loss and 1e-8 weights: ours).")

    def default_config(self, size: str = "cpu") -> dict:
        if size == "quick":
            return dict(size=size, seeds=[0, 1],
                        **flat("arbitrary", dict(dim=6, samples=10, hidden=12, step=0.05, steps=3000, record_every=100,
                                       init_scale=0.5, rel_loss_threshold=1e-12)),
                        **flat("planted", dict(dim=6, samples=60, teacher=2, students=[2, 6], step=0.05, steps=3000,
                                     record_every=25, init_scale=0.1, loss_threshold=1e-25, recovery_threshold=1e-12)),
                        **flat("smooth", dict(activation="tanh", dim=6, samples=60, teacher=2, step=0.5, steps=3000,
                                    record_every=25, noise=0.1, loss_threshold=1e-20, recovery_threshold=1e-8)))
        if size in ("cpu", "gpu"):
            big = size == "gpu"
            return dict(size=size, seeds=list(range(32 if big else 6)),
                        **flat("arbitrary", dict(dim=20, samples=150, hidden=40, step=0.02, steps=20000, record_every=100,
                                       init_scale=0.5, rel_loss_threshold=1e-12)),
                        **flat("planted", dict(dim=20, samples=300, teacher=3, students=[3, 4, 6, 20, 40] if big else [3, 6, 20],
                                     step=0.05, steps=40000 if big else 20000, record_every=50, init_scale=0.1,
                                     loss_threshold=1e-25, recovery_threshold=1e-12)),
                        **flat("smooth", dict(activation="tanh", dim=20, samples=300, teacher=3, step=0.05, steps=30000,
                                    record_every=50, noise=0.1, loss_threshold=1e-20, recovery_threshold=1e-8)))
        raise SpuriousError(f"unknown size {size!r}: choose one of {', '.join(self.sizes)}")

    limits = {
        "size": Choice(*SIZES), "seeds": ListOf(Seed()),
        **flat("arbitrary", dict(dim=Count(), samples=Count(), hidden=Count(multiple_of=2),  # k/2 of each sign
                                 step=Positive(), steps=Count(), record_every=Count(), init_scale=Positive(),
                                 rel_loss_threshold=Positive())),
        **flat("planted", dict(dim=Count(), samples=Count(), teacher=Count(), students=ListOf(Count()), step=Positive(),
                               steps=Count(), record_every=Count(), init_scale=Positive(), loss_threshold=Positive(),
                               recovery_threshold=Positive())),
        # the recovery error tries every permutation of the student's units: k! of them
        **flat("smooth", dict(activation=Choice(*sorted(ACTIVATIONS)), dim=Count(), samples=Count(),
                              teacher=Count(maximum=8, why="the recovery error tries all k! unit permutations"),
                              step=Positive(), steps=Count(), record_every=Count(), noise=Positive(),
                              loss_threshold=Positive(), recovery_threshold=Positive())),
    }

    def cells(self, config: dict) -> list[dict]:
        self.check_config(config)
        for part in ("arbitrary", "planted", "smooth"):  # the loss curves are recorded every record_every steps
            steps, every = config[f"{part}_steps"], config[f"{part}_record_every"]
            if steps % every:
                raise SpuriousError(f"{part}_record_every ({every}) must divide {part}_steps ({steps})")
        seeds = list(config["seeds"])
        a, p, s = section(config, "arbitrary"), section(config, "planted"), section(config, "smooth")
        out = [dict(part="arbitrary", seeds=seeds, dim=a["dim"], samples=a["samples"], hidden=a["hidden"],
                    width=a["hidden"], teacher=1, step=a["step"], steps=a["steps"], record_every=a["record_every"],
                    init_std=a["init_scale"] / math.sqrt(a["dim"]), activation="quadratic")]
        width = max(p["students"])
        for k in p["students"]:
            out.append(dict(part="planted", seeds=seeds, dim=p["dim"], samples=p["samples"], hidden=k, width=width,
                            teacher=p["teacher"], step=p["step"], steps=p["steps"], record_every=p["record_every"],
                            init_std=p["init_scale"] / math.sqrt(p["dim"]), activation="quadratic"))
        out.append(dict(part="smooth", seeds=seeds, dim=s["dim"], samples=s["samples"], hidden=s["teacher"],
                        width=s["teacher"], teacher=s["teacher"], step=s["step"], steps=s["steps"],
                        record_every=s["record_every"], init_std=s["noise"], activation=s["activation"]))
        return out

    def cell_memory(self, cell: dict) -> tuple[int, str]:
        seeds, n, d, k = len(cell["seeds"]), cell["samples"], cell["dim"], cell["hidden"]
        parameters, activations, records = k * d, n * k, cell["steps"] // cell["record_every"] + 1  # X W^T
        if cell["part"] == "smooth":
            # one seed at a time; the curves of all of them are kept
            need = training_bytes(1, parameters, n * (d + 1), activations, records, cell["record_every"]) \
                + seeds * records * (FLOAT + RESULT_NUMBER)
        else:
            # every seed at once, then each endpoint's analysis (dense Hessians)
            need = training_bytes(seeds, parameters, n * (d + 1), activations, records, cell["record_every"]) \
                + analysis_bytes(parameters, 1, activations)
        return need, (f"{cell['part']} at k = {count(k)}, d = {count(d)}: {seeds} seeds of {count(parameters)} "
                      f"parameters on {count(n)} samples, {count(records)} records")

    def run_cell(self, cell: dict) -> dict:
        started = time.perf_counter()
        part = cell["part"]
        if part == "smooth":
            trainings, planted, targets = _train_smooth(cell)
            losses = np.concatenate([t.losses for t in trainings])
            finals = np.concatenate([t.params for t in trainings])
            signs = [np.ones(cell["hidden"])] * len(planted)
            analyses = None
        else:
            training, planted, signs, targets, analyses = _train_quadratic(cell)
            losses, finals = training.losses, training.params
        recovery = [None if part == "arbitrary" else num(_recovery(finals[i], planted[i], signs[i], part))
                    for i in range(len(cell["seeds"]))]
        out = dict(curves=[nums(c[1:]) for c in losses], initial_loss=nums(losses[:, 0]),
                   label_scale=nums([0.5 * float(jnp.mean(y * y)) for y in targets]), recovery=recovery,
                   seconds=time.perf_counter() - started)
        if analyses is not None:
            out["analysis"] = analyses
        return out

    def evaluate(self, config: dict, results: list[tuple[dict, dict]]) -> ExperimentReport:
        rows, checks, curves_by, endpoint_class = [], {}, {}, {}
        for cell, res in results:
            part, k = cell["part"], cell["hidden"]
            steps = cell["record_every"] * np.arange(1, len(res["curves"][0]) + 1)
            key = (part, k)
            curves_by[key] = (cell, steps, res)
            for i, seed in enumerate(cell["seeds"]):
                if "analysis" in res and len(res["analysis"][i]["classes"]) == 1:
                    endpoint_class[(part, k, seed)] = next(iter(res["analysis"][i]["classes"]))
                c = np.array([np.nan if v is None else v for v in res["curves"][i]])
                c0 = res["initial_loss"][i]
                fit = fit_rate(np.concatenate([[0], steps]), np.concatenate([[c0], c]))
                final = c[-1]
                best = np.nanmin(c) if np.isfinite(c).any() else np.nan
                rows.append(dict(part=part, activation=cell["activation"], hidden=k, teacher=cell["teacher"] if part != "arbitrary" else None,
                                 seed=seed, final_loss=num(final), min_loss=num(best),
                                 relative_loss=num(final / res["label_scale"][i]) if part == "arbitrary" else None,
                                 rate_class=fit["class"], rate_per_step=fit["rate"], power_exponent=fit["exponent"],
                                 recovery_error=res["recovery"][i],
                                 final_grad_norm=res["analysis"][i].get("grad_norm") if "analysis" in res else None,
                                 endpoint=(describe_families(res["analysis"][i]["families"]) if res["analysis"][i]["families"]
                                           else describe_classes(res["analysis"][i]["classes"]))
                                 if "analysis" in res else "not analyzed (tanh)"))
        a, p, s = section(config, "arbitrary"), section(config, "planted"), section(config, "smooth")
        arb = [r for r in rows if r["part"] == "arbitrary"]
        exact = [r for r in rows if r["part"] == "planted" and r["hidden"] == p["teacher"]]
        over = [r for r in rows if r["part"] == "planted" and r["hidden"] > p["teacher"]]
        smooth = [r for r in rows if r["part"] == "smooth"]
        fin = lambda v, default=math.inf: default if v is None else v
        arb_failed = [r for r in arb if not fin(r["relative_loss"]) <= a["rel_loss_threshold"]]
        checks["a"] = bool(arb) and not arb_failed
        checks["b_exact"] = bool(exact) and all(
            fin(r["min_loss"]) <= p["loss_threshold"] and fin(r["recovery_error"]) <= p["recovery_threshold"]
            and r["rate_class"] == "linear" for r in exact)
        checks["b_over"] = bool(over) and all(r["rate_class"] == "sublinear" for r in over)
        checks["c"] = bool(smooth) and all(
            fin(r["min_loss"]) <= s["loss_threshold"] and fin(r["recovery_error"]) <= s["recovery_threshold"]
            and r["rate_class"] == "linear" for r in smooth)

        def rate_check(prediction, rs, ok, missing):
            # a curve that never fell far enough to fit a rate ("undetermined") had not converged
            failed = [r for r in rs if not ok(r)]
            moving = [r for r in failed if r["rate_class"] == "undetermined"]
            return Check(prediction, cases=len(rs), against=len(failed) - len(moving), unconverged=len(moving),
                         unit="seeds", gradient_norms=[r["final_grad_norm"] for r in moving],
                         evidence="; ".join(f"k={r['hidden']} seed {r['seed']}: {r['rate_class']}, min loss "
                                            f"{fin(r['min_loss']):.1e}, recovery error {fin(r['recovery_error']):.1e}"
                                            for r in failed),
                         missing=missing)

        # (a): a seed above the threshold whose endpoint the analysis calls not_converged stopped short
        moving = [r for r in arb_failed
                  if endpoint_class.get((r["part"], r["hidden"], r["seed"])) in ("not_converged", "diverged")]
        verdict, decided = judge([
            Check(f"(a) relative training loss <= {a['rel_loss_threshold']:g} in every seed", cases=len(arb),
                  against=len(arb_failed) - len(moving), unconverged=len(moving), unit="seeds",
                  gradient_norms=[r["final_grad_norm"] for r in moving],
                  evidence="relative losses " + ", ".join(f"{fin(r['relative_loss']):.1e}" for r in arb_failed),
                  missing="no seeds"),
            rate_check(f"(b) the exactly sized student (k = {p['teacher']}) converges linearly to loss <= "
                       f"{p['loss_threshold']:g} and recovers W*^T W* to {p['recovery_threshold']:g}", exact,
                       lambda r: fin(r["min_loss"]) <= p["loss_threshold"]
                       and fin(r["recovery_error"]) <= p["recovery_threshold"] and r["rate_class"] == "linear",
                       f"no student k = {p['teacher']} in planted_students = {p['students']}"),
            rate_check(f"(b) over-sized students (k > {p['teacher']}) converge only sublinearly", over,
                       lambda r: r["rate_class"] == "sublinear",
                       f"no student k > {p['teacher']} in planted_students = {p['students']}"),
            rate_check(f"(c) {s['activation']} from W* + noise converges linearly to loss <= {s['loss_threshold']:g} "
                       f"and recovers W* to {s['recovery_threshold']:g}", smooth,
                       lambda r: fin(r["min_loss"]) <= s["loss_threshold"]
                       and fin(r["recovery_error"]) <= s["recovery_threshold"] and r["rate_class"] == "linear",
                       "no seeds"),
        ])

        def worst(rs, key, fn=max):
            vals = [r[key] for r in rs if r[key] is not None]
            return fn(vals) if vals else float("nan")

        over_ks = sorted({r["hidden"] for r in over})
        over_txt = "; ".join(
            f"k={k}: {sum(r['rate_class'] == 'sublinear' for r in over if r['hidden'] == k)}/"
            f"{sum(1 for r in over if r['hidden'] == k)} sublinear, loss ~ t^-p with p in "
            f"[{worst([r for r in over if r['hidden'] == k], 'power_exponent', min):.2f}, "
            f"{worst([r for r in over if r['hidden'] == k], 'power_exponent'):.2f}], final loss <= "
            f"{worst([r for r in over if r['hidden'] == k], 'final_loss'):.1e}" for k in over_ks)
        mark = lambda ok: "ok" if ok else "FAILED"
        parts = [decided] if decided else []
        parts.append(f"(a) arbitrary labels, d={a['dim']}, n={a['samples']}, k={a['hidden']}: " + (
            f"worst relative training loss {worst(arb, 'relative_loss'):.1e} (threshold {a['rel_loss_threshold']:g}; "
            f"{mark(checks['a'])})." if arb else "not run."))
        parts.append(f"(b) planted k*={p['teacher']}, n={p['samples']}, step {p['step']}: " + (
            f"exact student {sum(r['rate_class'] == 'linear' for r in exact)}/{len(exact)} linear (rate >= "
            f"{worst(exact, 'rate_per_step', min):.3g}/step), worst min loss {worst(exact, 'min_loss'):.1e} "
            f"(<= {p['loss_threshold']:g}), worst recovery of W*^T W* {worst(exact, 'recovery_error'):.1e} "
            f"(<= {p['recovery_threshold']:g}) [{mark(checks['b_exact'])}]" if exact else "no exact student")
            + (f"; over-sized: {over_txt} [{mark(checks['b_over'])}]." if over else "; no over-sized student."))
        parts.append(f"(c) {s['activation']} from W* + {s['noise']} noise: " + (
            f"{sum(r['rate_class'] == 'linear' for r in smooth)}/{len(smooth)} linear, worst min loss "
            f"{worst(smooth, 'min_loss'):.1e} (<= {s['loss_threshold']:g}), worst weight error "
            f"{worst(smooth, 'recovery_error'):.1e} (<= {s['recovery_threshold']:g}) [{mark(checks['c'])}]."
            if smooth else "not run."))
        analysed = [f"{part} k={k}: " + describe_classes(merge_classes(res["analysis"]))
                    for (part, k), (cell, _, res) in sorted(curves_by.items()) if "analysis" in res]
        if analysed:
            parts.append("Analysis of the endpoints: " + "; ".join(analysed) + ".")
        summary = " ".join(parts)

        def curve(values, floor=1e-32):
            return [None if v is None else max(v, floor) for v in values]

        figs = []
        series = []
        if ("arbitrary", a["hidden"]) in curves_by:
            cell, steps, res = curves_by[("arbitrary", a["hidden"])]
            series = [Series(steps, curve(c), f"seed {cell['seeds'][i]}") for i, c in enumerate(res["curves"])]
        figs.append(Figure("arbitrary_loss_curves", [Panel(
            series, title=f"(a) arbitrary labels, d={a['dim']}, n={a['samples']}, k={a['hidden']}",
            xlabel="gradient step", ylabel="training loss", yscale="log")]))
        planted = []
        for j, k in enumerate(sorted(k for (part, k) in curves_by if part == "planted")):
            cell, steps, res = curves_by[("planted", k)]
            planted += [Series(steps, curve(c), f"k={k}" if i == 0 else None, color=f"C{j}", alpha=0.7)
                        for i, c in enumerate(res["curves"])]
        level = Series([], [p["loss_threshold"]], None, kind="hline", color="k", style=":", width=0.8)
        figs.append(Figure("planted_loss_curves", [
            Panel(planted + [level], title=f"(b) planted quadratic, k*={p['teacher']}", xlabel="gradient step",
                  ylabel="training loss", yscale="log"),
            Panel(planted, title="same, log-log: power laws are straight", xlabel="gradient step (log)",
                  xscale="log", yscale="log", legend=False)]))
        series = []
        if ("smooth", s["teacher"]) in curves_by:
            cell, steps, res = curves_by[("smooth", s["teacher"])]
            series = [Series(steps, curve(c), f"seed {cell['seeds'][i]}") for i, c in enumerate(res["curves"])]
        series.append(Series([], [s["loss_threshold"]], None, kind="hline", color="k", style=":", width=0.8))
        figs.append(Figure("smooth_loss_curves", [Panel(
            series, title=f"(c) {s['activation']} planted, start W* + {s['noise']} noise", xlabel="gradient step",
            ylabel="training loss", yscale="log")]))
        return ExperimentReport(claim=self.claim, verdict=verdict, summary=summary, table=rows, figures=figs)


EXPERIMENT = register(Soltanolkotabi2019())

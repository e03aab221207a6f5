"""Bartlett, Helmbold & Long (ICML 2018): deep linear residual networks from the identity.

Exact gradient descent on F = 1/2 ||Theta_L ... Theta_1 - Phi||_F^2 from Theta_l = I, for symmetric
Phi = Q diag(lambda) Q^T with a random rotation Q per seed (all seeds in one vmapped program).
Main experiment: d = 10, L = 10, lambda = linspace(0.5, 2, 10), step 0.01, 5000 steps; PD Phi must
reach loss <= 1e-10, while Phi with lambda_1 = -0.5 must never go below lambda_1^2/2 = 0.125
(checked at every step). Sweep: steps until loss <= eps against the depth L and the condition
number kappa (spectrum geomspace(kappa^-1/2, kappa^1/2, d)), with the step size scaled as
c / (L max(1, lambda_max)^(2(L-1)/L)) (ours: the inverse curvature at the balanced solution), and
power laws fitted to the counts.
The landscape is the registered `deep-linear-residual` (one target per seed); gradient descent is
`sgd.train_many` with optax.sgd (all seeds in one program), recording the loss after every step (the
floor is checked at every step) and stopping each seed once its loss is <= eps (the hitting time).
The endpoints of the main runs go through `spurious.analyze` (classes and families).
"""
from __future__ import annotations

import math
import time

import jax
import jax.numpy as jnp
import numpy as np

from ..core import setup as _setup  # noqa: F401  (float64 before any array)
from .. import sgd
from ..analyze import analyze
from ..core.errors import SpuriousError
from ..problems import deep_linear as dl
from ..problems.deep_linear import DeepLinearResidual
from . import register
from ._curves import classes_and_families, describe_classes, flat, merge_classes, num, nums, section
from ._memory import analysis_bytes, count, training_bytes
from .base import (MAX_CELLS, SIZES, AtLeast, Check, Choice, Count, Experiment, ExperimentReport, Figure, ListOf, Panel,
                   Positive, Seed, Series, judge)

#: a gradient this small (Frobenius) makes a main-run endpoint 'converged' for the analysis
GRAD_TOL = 1e-9


def main_eigenvalues(dim: int, negative: bool) -> np.ndarray:
    return dl.default_eigenvalues(dim, negative)


def sweep_eigenvalues(dim: int, condition: float) -> np.ndarray:
    return np.geomspace(condition ** -0.5, condition ** 0.5, dim)


def sweep_step(depth: int, eigenvalues, scale: float) -> float:
    top = max(1.0, float(np.max(np.abs(eigenvalues))))
    return scale / (depth * top ** (2.0 * (depth - 1) / depth))


def _descend(problems, step: float, steps: int, stop_below=None):
    """Full-batch GD from each problem's identity start, the loss recorded after every step."""
    starts = jnp.stack([p.init(jax.random.PRNGKey(0)) for p in problems])  # init_std 0: the identity
    targets = jnp.stack([p.target for p in problems])
    return sgd.train_many(dl.loss, starts, (targets,), sgd.optimizer({"name": "sgd", "learning_rate": step}), steps,
                          None, data_axis=0, record_every=1, stop_below=stop_below)


def _power_fit(x_cols, y):
    """Least squares y = c + sum_j b_j x_j; returns (coefficients, R^2)."""
    A = np.column_stack([np.ones(len(y))] + list(x_cols))
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    resid = y - A @ coef
    total = np.sum((y - y.mean()) ** 2)
    return coef, (1.0 - np.sum(resid ** 2) / total) if total > 0 else 1.0


def _endpoint_classes(result: dict) -> list[str | None]:
    """The analysis's class of each main run's endpoint (one run per analysis), None where absent."""
    classes = [next(iter(a["classes"])) if len(a["classes"]) == 1 else None for a in result.get("analysis", [])]
    return classes + [None] * (len(result["final_loss"]) - len(classes))


class Bartlett2018(Experiment):
    name = "bartlett-2018"
    title = ("Bartlett, Helmbold & Long, Gradient descent with identity initialization efficiently learns "
             "positive definite linear transformations by deep residual networks (ICML 2018)")
    claim = ("Gradient descent from Theta_1 = ... = Theta_L = I on 1/2 ||Theta_L...Theta_1 - Phi||_F^2 learns "
             "symmetric positive-definite Phi in polynomially many steps, and fails when Phi is symmetric with a "
             "negative eigenvalue (each layer stays a polynomial in Phi, so that eigen-direction's product stays "
             ">= 0 and the loss can never go below lambda_neg^2/2). Predictions tested: d = 10, L = 10, "
             "lambda = linspace(0.5, 2, 10), step 0.01, 5000 steps: PD -> final loss <= 1e-10; lambda_1 = -0.5 -> "
             "loss >= 0.125 at every step; steps-to-eps grow polynomially in L and the condition number (a power law fits each slice of the sweep at "
             "least as well as an exponential; ours).")

    def default_config(self, size: str = "cpu") -> dict:
        if size == "quick":
            return dict(size=size, seeds=[0, 1], **flat("main", dict(dim=4, depth=4, step=0.01, steps=2000, record_every=20,
                                                           pd_threshold=1e-10)),
                        **flat("sweep", dict(dim=4, depths=[3], conditions=[2, 4, 8], eps=1e-8, step_scale=0.5,
                                   max_steps=20000)))
        if size == "cpu":
            return dict(size=size, seeds=list(range(8)), **flat("main", dict(dim=10, depth=10, step=0.01, steps=5000,
                                                                   record_every=10, pd_threshold=1e-10)),
                        **flat("sweep", dict(dim=10, depths=[1, 2, 4, 8, 16, 32], conditions=[2, 4, 8, 16, 32], eps=1e-8,
                                   step_scale=0.5, max_steps=100000)))
        if size == "gpu":
            return dict(size=size, seeds=list(range(32)), **flat("main", dict(dim=10, depth=10, step=0.01, steps=5000,
                                                                    record_every=10, pd_threshold=1e-10)),
                        **flat("sweep", dict(dim=64, depths=[1, 2, 4, 8, 16, 32, 64, 100], conditions=[2, 4, 8, 16, 32, 64],
                                   eps=1e-8, step_scale=0.5, max_steps=400000)))
        raise SpuriousError(f"unknown size {size!r}: choose one of {', '.join(self.sizes)}")

    limits = {
        "size": Choice(*SIZES), "seeds": ListOf(Seed()),
        **flat("main", dict(dim=Count(), depth=Count(), step=Positive(), steps=Count(), record_every=Count(),
                            pd_threshold=Positive())),
        # empty depths or conditions: no sweep (the report says the sweep was not tested)
        **flat("sweep", dict(dim=Count(), depths=ListOf(Count(), empty=True),
                             conditions=ListOf(AtLeast(1.0), empty=True),  # condition numbers
                             eps=Positive(), step_scale=Positive(), max_steps=Count())),
    }

    def cells(self, config: dict) -> list[dict]:
        self.check_config(config)
        m, s = section(config, "main"), section(config, "sweep")
        if m["record_every"] > m["steps"]:
            raise SpuriousError(f"main_record_every ({m['record_every']}) exceeds main_steps ({m['steps']}): "
                                f"the loss curves would be empty")
        if len(s["depths"]) * len(s["conditions"]) > MAX_CELLS:  # before building them
            raise SpuriousError(f"sweep_depths x sweep_conditions plans {len(s['depths']) * len(s['conditions']):,} "
                                f"cells; a study holds at most {MAX_CELLS:,}")
        out = [dict(part="main", variant=v, seeds=list(config["seeds"]), dim=m["dim"], depth=m["depth"], step=m["step"],
                    steps=m["steps"], record_every=m["record_every"]) for v in ("pd", "negative")]
        for depth in s["depths"]:
            for kappa in s["conditions"]:
                out.append(dict(part="sweep", seeds=list(config["seeds"]), dim=s["dim"], depth=depth, condition=kappa,
                                eps=s["eps"], step_scale=s["step_scale"], max_steps=s["max_steps"]))
        return out

    def cell_memory(self, cell: dict) -> tuple[int, str]:
        # every seed descends at once, with the loss recorded after every step (the floor is checked at
        # every step); the main runs' endpoints are then analyzed one by one (dense Hessians)
        seeds, dim, depth = len(cell["seeds"]), cell["dim"], cell["depth"]
        parameters, activations = depth * dim ** 2, 2 * depth * dim ** 2  # the layers' prefix products
        steps = cell["steps"] if cell["part"] == "main" else cell["max_steps"]
        kept = steps // cell["record_every"] if cell["part"] == "main" else 0  # the sweep keeps hitting times only
        need = training_bytes(seeds, parameters, dim ** 2, activations, records=steps + 1, block=1, kept=kept)
        if cell["part"] == "main":
            need += analysis_bytes(parameters, 1, activations)
        return need, (f"{cell['part']} at d = {count(dim)}, L = {count(depth)}: {seeds} seeds of {count(parameters)} "
                      f"parameters, the loss at each of {count(steps)} steps")

    def run_cell(self, cell: dict) -> dict:
        started = time.perf_counter()
        seeds = cell["seeds"]
        if cell["part"] == "main":
            negative = cell["variant"] == "negative"
            problems = [DeepLinearResidual(dim=cell["dim"], depth=cell["depth"], negative=negative, data_seed=s)
                        for s in seeds]
            training = _descend(problems, cell["step"], cell["steps"])
            analyses, along, grad_norms = [], [], []
            for i, (p, s) in enumerate(zip(problems, seeds)):
                ends = sgd.endpoints(p, training.params[i:i + 1], seed=s, grad_tol=GRAD_TOL, steps=cell["steps"],
                                     optimizer={"name": "sgd", "learning_rate": cell["step"]})
                analyses.append(classes_and_families(analyze(p, ends)))
                grad_norms.append(num(ends.grad_norm[0]))
                q = np.asarray(dl.random_orthogonal(jax.random.PRNGKey(s), cell["dim"]))  # eigenvectors of Phi
                product = np.asarray(dl.end_to_end(jnp.asarray(training.params[i])))
                along.append(np.einsum("ij,jk,ki->i", q.T, product, q))  # q_i^T P q_i for every eigenvector
            every = cell["record_every"]
            return dict(eigenvalues=nums(problems[0].eigenvalues),
                        curves=[nums(c[every::every]) for c in training.losses],
                        min_loss=nums(np.min(training.losses, axis=1)), final_loss=nums(training.losses[:, -1]),
                        product_along_eigenvectors=[nums(a) for a in along], analysis=analyses,
                        final_grad_norm=grad_norms,
                        seconds=time.perf_counter() - started)
        lam = sweep_eigenvalues(cell["dim"], cell["condition"])
        step = sweep_step(cell["depth"], lam, cell["step_scale"])
        problems = [DeepLinearResidual(dim=cell["dim"], depth=cell["depth"], eigenvalues=lam.tolist(), data_seed=s)
                    for s in seeds]
        training = _descend(problems, step, cell["max_steps"], stop_below=cell["eps"])
        final = training.losses[:, -1]
        return dict(step=step, steps_to_eps=[int(h) if f <= cell["eps"] else None
                                             for h, f in zip(training.stopped, final)],
                    final_loss=nums(final), seconds=time.perf_counter() - started)

    def evaluate(self, config: dict, results: list[tuple[dict, dict]]) -> ExperimentReport:
        m, s = section(config, "main"), section(config, "sweep")
        rows = []
        main = {c["variant"]: (c, r) for c, r in results if c["part"] == "main"}
        floor = 0.5 * 0.5 ** 2
        pd_ok = neg_ok = False
        pd_final = neg_min = neg_final = float("nan")
        pd_check = Check(f"PD Phi: final loss <= {m['pd_threshold']:g} after {m['steps']} steps", cases=0,
                         missing="no PD run")
        neg_check = Check("Phi with a negative eigenvalue: loss >= lambda_1^2/2 at every step", cases=0,
                          missing="no negative-eigenvalue run")
        if "pd" in main:
            c, r = main["pd"]
            finals = [math.inf if v is None else v for v in r["final_loss"]]
            pd_final = max(finals)
            pd_ok = pd_final <= m["pd_threshold"]
            norms = r.get("final_grad_norm", [None] * len(finals))  # older results lack them
            failed = [(f, cls, g) for f, cls, g in zip(finals, _endpoint_classes(r), norms) if f > m["pd_threshold"]]
            # a seed still descending at the step cap (or diverged) is no counterexample to "GD learns PD Phi"
            moving = [(f, cls, g) for f, cls, g in failed if cls in ("not_converged", "diverged")]
            pd_check = Check(pd_check.prediction, cases=len(finals), against=len(failed) - len(moving),
                             unconverged=len(moving), unit="seeds", gradient_norms=[g for _, _, g in moving],
                             evidence="final losses " + ", ".join(f"{f:.2e} ({cls})" for f, cls, _ in failed))
            for seed, f, lo, cls in zip(c["seeds"], r["final_loss"], r["min_loss"], _endpoint_classes(r)):
                rows.append(dict(part="main", variant="pd", depth=c["depth"], condition=4.0, seed=seed, step=c["step"],
                                 final_loss=f, min_loss=lo, floor=0.0, endpoint=cls, steps_to_eps=None,
                                 steps_to_eps_max=None))
        if "negative" in main:
            c, r = main["negative"]
            lam = np.array(r["eigenvalues"])
            floor = float(0.5 * np.sum(np.minimum(lam, 0) ** 2))
            lows = [-math.inf if v is None else v for v in r["min_loss"]]
            neg_min = min(lows)
            neg_final = max(math.inf if v is None else v for v in r["final_loss"])
            neg_ok = neg_min >= floor - 1e-12 * max(1.0, floor)
            below_floor = [v for v in lows if v < floor - 1e-12 * max(1.0, floor)]
            neg_check = Check(neg_check.prediction, cases=len(lows), against=len(below_floor), unit="seeds",
                              evidence=f"lowest losses {', '.join(f'{v:.6f}' for v in below_floor)} below the floor "
                                       f"{floor:.6f}")
            for seed, f, lo, cls in zip(c["seeds"], r["final_loss"], r["min_loss"], _endpoint_classes(r)):
                rows.append(dict(part="main", variant="negative", depth=c["depth"], condition=None, seed=seed,
                                 step=c["step"], final_loss=f, min_loss=lo, floor=floor, endpoint=cls,
                                 steps_to_eps=None, steps_to_eps_max=None))
            along = [a[int(np.argmin(lam))] for a in r["product_along_eigenvectors"]]
            neg_along = min((-math.inf if v is None else v) for v in along) if along else float("nan")
        sweep = sorted(((c, r) for c, r in results if c["part"] == "sweep"), key=lambda cr: (cr[0]["depth"], cr[0]["condition"]))
        grid = []
        all_hit = True
        for c, r in sweep:
            hits = [h for h in r["steps_to_eps"] if h is not None]
            all_hit &= len(hits) == len(r["steps_to_eps"])
            med = float(np.median(hits)) if len(hits) == len(r["steps_to_eps"]) else None
            grid.append((c["depth"], c["condition"], med))
            rows.append(dict(part="sweep", variant="pd", depth=c["depth"], condition=c["condition"],
                             seed=f"{len(c['seeds'])} seeds", step=r["step"],
                             final_loss=num(max((math.inf if f is None else f) for f in r["final_loss"])), min_loss=None,
                             floor=0.0, endpoint=None, steps_to_eps=med, steps_to_eps_max=max(hits) if len(hits) == len(r["steps_to_eps"]) else None))
        for row in rows:
            row.setdefault("steps_to_eps_max", None)
        fit_txt, sweep_ok = "no sweep", True
        sweep_prediction = "steps to eps grow polynomially in L and kappa (a power law fits each slice of the sweep at " \
                           "least as well as an exponential)"
        sweep_check = Check(sweep_prediction, cases=0, unit="sweep settings",
                            missing="no sweep settings (sweep_depths x sweep_conditions is empty)")
        if grid and all_hit:
            depths = sorted({g[0] for g in grid})
            conds = sorted({g[1] for g in grid})
            steps_at = {(g[0], g[1]): g[2] for g in grid}
            slices, wins = [], 0
            for depth in depths:  # steps vs kappa at fixed depth
                if len(conds) >= 3:
                    y = np.log([steps_at[(depth, k)] for k in conds])
                    (_, b), r2p = _power_fit([np.log(conds)], y)
                    _, r2e = _power_fit([np.array(conds, float)], y)
                    slices.append(f"L={depth}: kappa^{b:.2f} (predicted {2 * (depth - 1) / depth:.2f})")
                    wins += r2p >= r2e
            l_slices = []
            for k in conds:  # steps vs depth at fixed kappa
                if len(depths) >= 3:
                    y = np.log([steps_at[(d, k)] for d in depths])
                    (_, b), r2p = _power_fit([np.log(depths)], y)
                    _, r2e = _power_fit([np.array(depths, float)], y)
                    l_slices.append(f"kappa={k:g}: L^{b:.2f}")
                    wins += r2p >= r2e
            n_slices = len(slices) + len(l_slices)
            sweep_ok = n_slices == 0 or wins == n_slices
            sweep_check = Check(sweep_prediction, cases=n_slices, against=n_slices - wins, unit="slices",
                                evidence=f"an exponential fits better in {n_slices - wins} of them",
                                missing="no slice of three or more points (three depths or three conditions)")
            fit_txt = (f"steps to loss <= {s['eps']:g} range {min(g[2] for g in grid):.0f}..{max(g[2] for g in grid):.0f} "
                       f"over L in {depths}, kappa in {conds}; power law in kappa per depth: {', '.join(slices)}; "
                       f"in L per kappa: {', '.join(l_slices)}; the power law fits at least as well as an exponential "
                       f"in {wins}/{n_slices} slices")
        elif grid:
            sweep_ok = False
            fit_txt = f"{sum(g[2] is None for g in grid)} sweep settings had runs that never reached eps"
            # without every hitting time the growth cannot be fitted: runs that never reached eps within
            # max_steps were still descending (their final losses say how far)
            missed = [(c, r) for c, r in sweep if any(h is None for h in r["steps_to_eps"])]
            sweep_check = Check(sweep_prediction, cases=len(grid), unconverged=len(missed), unit="sweep settings",
                                evidence=f"loss still above eps = {s['eps']:g} after {s['max_steps']} steps at "
                                         + ", ".join(f"L={c['depth']}, kappa={c['condition']:g} (final loss up to "
                                                     f"{max(math.inf if f is None else f for f in r['final_loss']):.1e})"
                                                     for c, r in missed))
        verdict, decided = judge([pd_check, neg_check, sweep_check])
        analysis_txt = "; ".join(f"{variant} Phi: " + describe_classes(merge_classes(r.get("analysis", [])))
                                 for variant, (c, r) in sorted(main.items()))
        along_txt = "n/a"
        if "negative" in main:
            along_txt = (f"{neg_along:.2e} (>= 0, as predicted: it never crosses zero)" if neg_along >= -1e-12
                         else f"{neg_along:.2e} (NEGATIVE: the invariance argument fails)")
        parts = [decided] if decided else []
        if "pd" in main:
            parts.append(f"PD Phi (d={m['dim']}, L={m['depth']}, step {m['step']}, {m['steps']} steps): worst final loss "
                         f"{pd_final:.2e} (threshold {m['pd_threshold']:g}) over {pd_check.cases} seeds"
                         f" ({'ok' if pd_ok else 'FAIL'}).")
        if "negative" in main:
            parts.append(f"Phi with lambda_1 = -0.5: lowest loss at any step {neg_min:.6f} >= floor lambda_1^2/2 = "
                         f"{floor:.6f} ({'ok' if neg_ok else 'VIOLATED'}), final {neg_final:.6f}; the end-to-end product "
                         f"along the negative eigenvector ends at {along_txt}.")
        parts.append(f"Sweep: {fit_txt}" + (f"; every run {'reached' if all_hit else 'did NOT reach'} eps; growth is "
                                            f"{'polynomial' if sweep_ok else 'not clearly polynomial'}" if grid else "")
                     + ".")
        if main:
            parts.append(f"Analysis of the main endpoints: {analysis_txt}.")
        summary = " ".join(parts)

        series = []
        for variant, color in (("pd", "C0"), ("negative", "C3")):
            if variant in main:
                c, r = main[variant]
                steps = c["record_every"] * np.arange(1, len(r["curves"][0]) + 1)
                series += [Series(steps, [None if v is None else max(v, 1e-32) for v in curve],
                                  ("PD Phi" if variant == "pd" else "lambda_1 = -0.5") if i == 0 else None,
                                  color=color, alpha=0.6) for i, curve in enumerate(r["curves"])]
        series += [Series([], [floor], r"$\lambda_1^2/2$", kind="hline", color="k", style="--", width=0.8),
                   Series([], [m["pd_threshold"]], f"{m['pd_threshold']:g}", kind="hline", color="C0", style=":",
                          width=0.8)]
        figs = [Figure("main_loss_curves", [Panel(
            series, title=f"Deep linear residual net from the identity, d={m['dim']}, L={m['depth']}",
            xlabel="gradient step", ylabel="loss", yscale="log")])]
        if grid:
            depths = sorted({g[0] for g in grid})
            conds = sorted({g[1] for g in grid})
            by_depth, by_kappa = [], []
            for j, kappa in enumerate(conds):
                pts = [(g[0], g[2]) for g in grid if g[1] == kappa and g[2] is not None]
                if pts:
                    by_depth.append(Series(*zip(*pts), f"kappa={kappa:g}", color=f"C{j}", marker="o"))
            for j, depth in enumerate(depths):
                pts = [(g[1], g[2]) for g in grid if g[0] == depth and g[2] is not None]
                if pts:
                    by_kappa.append(Series(*zip(*pts), f"L={depth}", color=f"C{j}", marker="o"))
            figs.append(Figure("steps_to_eps", [
                Panel(by_depth, xlabel="depth L", ylabel=f"median steps to loss <= {s['eps']:g}", xscale="log",
                      yscale="log"),
                Panel(by_kappa, xlabel="condition number kappa", xscale="log", yscale="log",
                      title="step = %.2g / (L max(1,lambda_max)^(2(L-1)/L))" % s["step_scale"])]))
        return ExperimentReport(claim=self.claim, verdict=verdict, summary=summary, table=rows, figures=figs)


EXPERIMENT = register(Bartlett2018())

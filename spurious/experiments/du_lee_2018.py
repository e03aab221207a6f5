"""Du & Lee (ICML 2018): quadratic activations have no spurious local minima once k >= sqrt(2n).

Network x -> sum_j a_j (w_j.x)^2 with a_j = +-1 in equal numbers, trained on n points with
F(W) = 1/(2n) sum (yhat - y)^2 + (lambda/2)||W||_F^2 (the registered landscape `quadratic-network`).
The exact global optimum comes from the convex twin over M = W^T diag(a) W with the nuclear-norm
penalty (spurious.problems.quadratic), solved by accelerated proximal gradient to a duality-gap
certificate. For each number of hidden units k, many random starts (several data sets x several
inits, one program through `sgd.train_many`) run a local search, full-batch L-BFGS (optax, zoom line
search: plain gradient descent with a fixed step needs well over 1e5 steps here, the landscape being
ill-conditioned with lambda = 1e-2); the measured quantity is each run's relative gap (F - G*)/G*.
Every endpoint then goes through `spurious.analyze` (Newton polish, Hessian, class, families), so the
report also shows how many runs end at global minima, spurious minima or saddles.
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
from ..problems import quadratic as q
from ..problems.quadratic import QuadraticNetwork
from . import register
from ._curves import classes_and_families, describe_classes, describe_families, merge_classes, num, nums
from ._memory import FLOAT, analysis_bytes, count, lbfgs_state, training_bytes
from .base import (MAX_FOLD_IN, SIZES, Check, Choice, Count, Experiment, ExperimentReport, Figure, ListOf, Panel,
                   Positive, Seed, Series, judge)

GAP_THRESHOLD = 1e-5


def twin_bytes(samples: int, dim: int) -> int:
    """The convex twin's solver: the n x n kernel (X X^T)^2 and its eigensolver's copies, the data
    and its products, and the d x d iterates with their eigendecompositions."""
    return FLOAT * (3 * samples ** 2 + 4 * samples * dim + 10 * dim ** 2)


def problem(cell: dict, data_seed: int, hidden: int) -> QuadraticNetwork:
    return QuadraticNetwork(dim=cell["dim"], hidden=hidden, samples=cell["samples"],
                            weight_decay=cell["weight_decay"], data_seed=data_seed,
                            init_std=cell.get("init_scale", 1.0) / math.sqrt(cell["dim"]))


class DuLee2018(Experiment):
    name = "du-lee-2018"
    title = "Du & Lee, On the power of over-parametrization in neural networks with quadratic activation (ICML 2018)"
    claim = ("A shallow network with k quadratic hidden units and weight decay, trained on n points with a "
             "smooth convex loss, has no spurious local minima once k >= sqrt(2n): local search finds global "
             "optima. Prediction tested: with a_j = +-1 in equal numbers, n = 100 Gaussian inputs in d = 20 and "
             "arbitrary N(0,1) labels, lambda = 1e-2, every run with k >= ceil(sqrt(2n)) ends within relative "
             "gap 1e-5 of the exact global optimum, certified by the convex nuclear-norm twin; below the "
             "threshold gaps may stay open (the bound is sufficient, not tight).")

    def default_config(self, size: str = "cpu") -> dict:
        if size == "quick":
            return dict(size=size, dim=6, samples=12, weight_decay=1e-2, hidden=[2, 4, 6, 8], data_seeds=[0, 1],
                        runs_per_data=2, seed=0, init_scale=1.0, steps=1000, memory_size=20, grad_tol=1e-6,
                        twin_rel_gap=1e-11, gap_threshold=GAP_THRESHOLD)
        if size == "cpu":
            return dict(size=size, dim=20, samples=100, weight_decay=1e-2, hidden=list(range(2, 25, 2)),
                        data_seeds=[0, 1, 2, 3], runs_per_data=4, seed=0, init_scale=1.0, steps=3000,
                        memory_size=20, grad_tol=1e-6, twin_rel_gap=1e-11, gap_threshold=GAP_THRESHOLD)
        if size == "gpu":
            return dict(size=size, dim=20, samples=100, weight_decay=1e-2, hidden=list(range(2, 33, 2)),
                        data_seeds=list(range(16)), runs_per_data=32, seed=0, init_scale=1.0, steps=10000,
                        memory_size=20, grad_tol=1e-6, twin_rel_gap=1e-11, gap_threshold=GAP_THRESHOLD)
        raise SpuriousError(f"unknown size {size!r}: choose one of {', '.join(self.sizes)}")

    limits = {
        "size": Choice(*SIZES), "dim": Count(), "samples": Count(),
        "weight_decay": Positive(),  # the convex twin's nuclear-norm penalty needs lambda > 0
        "hidden": ListOf(Count(multiple_of=2)),  # k/2 units of each sign
        "data_seeds": ListOf(Seed(MAX_FOLD_IN)),  # folded into the start keys
        "runs_per_data": Count(), "seed": Seed(), "init_scale": Positive(), "steps": Count(), "memory_size": Count(),
        "grad_tol": Positive(), "twin_rel_gap": Positive(), "gap_threshold": Positive(),
    }

    def cells(self, config: dict) -> list[dict]:
        self.check_config(config)
        common = {k: config[k] for k in ("dim", "samples", "weight_decay")}
        twins = [dict(kind="twin", data_seed=s, rel_gap=config["twin_rel_gap"], **common) for s in config["data_seeds"]]
        train = [dict(kind="train", hidden=k, data_seeds=list(config["data_seeds"]), runs_per_data=config["runs_per_data"],
                      seed=config["seed"], init_scale=config["init_scale"], steps=config["steps"],
                      memory_size=config["memory_size"], grad_tol=config["grad_tol"], **common)
                 for k in config["hidden"]]
        return twins + train

    def cell_memory(self, cell: dict) -> tuple[int, str]:
        n, d = cell["samples"], cell["dim"]
        if cell["kind"] == "twin":
            return twin_bytes(n, d), f"convex twin of data set {cell['data_seed']}: {count(n)} samples in d = {d}"
        # every run trains on its own copy of its data set, L-BFGS for all at once; then the analysis of
        # each data set's runs (dense Hessians) and its convex twin (the global value)
        k, runs = cell["hidden"], cell["runs_per_data"]
        members, parameters, activations = len(cell["data_seeds"]) * runs, k * d, n * k  # X W^T
        need = (training_bytes(members, parameters, n * (d + 1), activations, records=2, block=cell["steps"],
                               state=lbfgs_state(cell["memory_size"]))
                + analysis_bytes(parameters, runs, activations) + twin_bytes(n, d))
        return need, (f"training at k = {count(k)}: {count(members)} runs of {count(parameters)} parameters on "
                      f"{count(n)} samples, then their dense Hessians")

    def run_cell(self, cell: dict) -> dict:
        started = time.perf_counter()
        if cell["kind"] == "twin":
            X, y = q.make_data(jax.random.PRNGKey(cell["data_seed"]), cell["dim"], cell["samples"])
            sol = q.solve_convex_twin(X, y, cell["weight_decay"], rel_gap=cell["rel_gap"])
            return dict(value=num(sol.value), dual_value=num(sol.dual_value), gap=num(sol.gap),
                        relative_gap=num(sol.relative_gap), iterations=sol.iterations,
                        rank_positive=sol.rank_positive, rank_negative=sol.rank_negative,
                        eigenvalues=nums(sol.eigenvalues), seconds=time.perf_counter() - started)
        k, runs = cell["hidden"], cell["runs_per_data"]
        problems = [problem(cell, s, k) for s in cell["data_seeds"]]
        base = jax.random.PRNGKey(cell["seed"])
        starts = jnp.stack([p.init(jax.random.fold_in(jax.random.fold_in(base, s), r))
                            for p, s in zip(problems, cell["data_seeds"]) for r in range(runs)])
        inputs = jnp.repeat(jnp.stack([p.inputs for p in problems]), runs, axis=0)  # one data set per member
        targets = jnp.repeat(jnp.stack([p.targets for p in problems]), runs, axis=0)
        signs, weight_decay = jnp.asarray(problems[0].signs), cell["weight_decay"]

        def loss(W, X, y):  # the landscape's own loss (QuadraticNetwork.loss), data per member
            return q.loss(W, X, y, signs, weight_decay)

        spec = {"name": "lbfgs", "memory_size": cell["memory_size"]}
        training = sgd.train_many(loss, starts, (inputs, targets), sgd.optimizer(spec), cell["steps"], None,
                                  data_axis=0)
        final = training.params.reshape(len(problems), runs, *problems[0].shape)
        analyses = []
        for i, p in enumerate(problems):
            ends = sgd.endpoints(p, final[i], seed=cell["seed"], grad_tol=cell["grad_tol"], steps=cell["steps"],
                                 optimizer=spec)
            analyses.append(dict(classes_and_families(analyze(p, ends)), loss=nums(ends.loss),
                                 grad_norm=nums(ends.grad_norm)))
        return dict(loss=[a["loss"] for a in analyses], grad_norm=[a["grad_norm"] for a in analyses],
                    analysis=[{"classes": a["classes"], "families": a["families"]} for a in analyses],
                    train_seconds=training.seconds, seconds=time.perf_counter() - started)

    def evaluate(self, config: dict, results: list[tuple[dict, dict]]) -> ExperimentReport:
        n, threshold_gap = config["samples"], config.get("gap_threshold", GAP_THRESHOLD)
        grad_tol = config["grad_tol"]
        k_star = math.ceil(math.sqrt(2 * n))
        twins = {c["data_seed"]: r for c, r in results if c["kind"] == "twin"}
        rows, points, unconverged_norms = [], [], {}
        for cell, res in sorted(((c, r) for c, r in results if c["kind"] == "train"), key=lambda cr: cr[0]["hidden"]):
            k = cell["hidden"]
            gaps, grads = [], []
            for i, s in enumerate(cell["data_seeds"]):
                opt = twins[s]["value"]
                for f, g in zip(res["loss"][i], res["grad_norm"][i]):
                    gap = (f - opt) / opt if f is not None else math.inf
                    gaps.append(gap)
                    grads.append(g if g is not None else math.inf)
                    points.append((k, gap))
            gaps = np.array(gaps)
            # a run outside the gap whose gradient is still above grad_tol stopped short of a critical
            # point: it says nothing about spurious minima
            unconverged_norms[k] = [num(g) for gap, g in zip(gaps, grads) if gap > threshold_gap and not g <= grad_tol]
            families = [f for part in res["analysis"] for f in part["families"]]
            rows.append(dict(hidden=k, per_sign=k // 2, above_threshold=k >= k_star, runs=len(gaps),
                             max_rel_gap=num(np.max(gaps)), median_rel_gap=num(np.median(gaps)),
                             min_rel_gap=num(np.min(gaps)),
                             within_threshold=int(np.sum(gaps <= threshold_gap)),
                             max_grad_norm=num(np.max(grads)), outside_not_converged=len(unconverged_norms[k]),
                             classes=describe_classes(merge_classes(res["analysis"])),
                             families=f"{len(families)} over {len(res['analysis'])} data sets: "
                                      + describe_families(families, limit=4)))
        twin_gaps = [t["relative_gap"] for t in twins.values()]
        ranks = [max(t["rank_positive"], t["rank_negative"]) for t in twins.values()]
        above = [r for r in rows if r["above_threshold"]]
        all_ok = [r for r in rows if r["within_threshold"] == r["runs"]]
        first_ok = None
        for r in rows:  # smallest k from which every larger k has every run within the threshold
            if all(rr["within_threshold"] == rr["runs"] for rr in rows if rr["hidden"] >= r["hidden"]):
                first_ok = r["hidden"]
                break
        certified = [g is not None and g <= 1e-9 for g in twin_gaps]
        gap_of = lambda r: math.inf if r["max_rel_gap"] is None else r["max_rel_gap"]
        worst_above = max((gap_of(r) for r in above), default=float("nan"))
        below = [r for r in rows if not r["above_threshold"]]
        outside = sum(r["runs"] - r["within_threshold"] for r in above)
        unconverged = sum(r["outside_not_converged"] for r in above)
        checks = [
            Check(f"every run with k >= ceil(sqrt(2n)) = {k_star} ends within relative gap {threshold_gap:g} of the "
                  f"convex optimum", cases=sum(r["runs"] for r in above), against=outside - unconverged,
                  unconverged=unconverged,
                  gradient_norms=[g for r in above for g in unconverged_norms[r["hidden"]]],
                  evidence=f"worst gap {worst_above:.2e}; a run counts as converged at gradient norm <= {grad_tol:g}",
                  missing=f"no run with k >= {k_star} (hidden = {config['hidden']})"),
            # the reference optimum itself comes from an optimizer: uncertified, the gaps mean nothing
            Check("the convex twin's optimum is certified (relative duality gap <= 1e-9)", cases=len(twins),
                  unconverged=sum(not c for c in certified), unit="data sets",
                  evidence="duality gaps " + ", ".join("-" if g is None else f"{g:.1e}" for g in twin_gaps),
                  missing="no data sets"),
        ]
        verdict, decided = judge(checks)
        words = []
        if above:
            words.append(f"for k >= ceil(sqrt(2n)) = {k_star} (n = {n}), {sum(r['within_threshold'] for r in above)}/"
                         f"{sum(r['runs'] for r in above)} runs end within relative gap {threshold_gap:g} of the convex "
                         f"optimum (worst {worst_above:.2e}, over k = {', '.join(str(r['hidden']) for r in above)})")
        if twins:
            words.append(f"convex twin certified to relative duality gap <= "
                         f"{max(math.inf if g is None else g for g in twin_gaps):.1e} on {len(twins)} data sets; its "
                         f"optimum has rank <= {max(ranks)} per sign, so k >= {2 * max(ranks)} can represent it")
        if below:
            words.append("below the threshold the worst gaps are "
                         + ", ".join(f"k={r['hidden']}: {gap_of(r):.1e}" for r in below))
        if rows:
            words.append((f"all runs are within {threshold_gap:g} from k = {first_ok} on (the sqrt(2n) bound is "
                          f"sufficient, not tight)" if first_ok is not None else
                          f"no k from which on all runs are within {threshold_gap:g}")
                         + f"; {len(all_ok)}/{len(rows)} values of k have every run within the threshold")
            words.append(f"analysis of the endpoints (Newton polish, Hessian): k >= {k_star}: "
                         + describe_classes(merge_classes(p for c, r in results if c["kind"] == "train"
                                                          and c["hidden"] >= k_star for p in r["analysis"]))
                         + f"; k < {k_star}: "
                         + describe_classes(merge_classes(p for c, r in results if c["kind"] == "train"
                                                          and c["hidden"] < k_star for p in r["analysis"])))
        text = "; ".join(words)
        summary = " ".join(filter(None, [decided, text[:1].upper() + text[1:] + "." if text else ""]))

        ks = np.array([p[0] for p in points], dtype=float)
        gs = np.array([p[1] for p in points])
        jitter = (np.random.default_rng(0).random(len(ks)) - 0.5) * 0.6
        gap_figure = Figure("relative_gap_vs_k", [Panel(
            [Series(ks + jitter, np.clip(np.where(np.isfinite(gs), gs, 1e3), 1e-16, None), "runs", kind="scatter",
                    size=10, alpha=0.6),
             Series([r["hidden"] for r in rows], [min(max(gap_of(r), 1e-16), 1e3) for r in rows], "worst run",
                    color="k"),
             Series([math.sqrt(2 * n)], [], r"$\sqrt{2n}$", kind="vline", color="C3", style="--"),
             Series([], [threshold_gap], f"gap {threshold_gap:g}", kind="hline", color="C2", style=":")],
            title=f"Quadratic network, d={config['dim']}, n={n}, lambda={config['weight_decay']:g}",
            xlabel="hidden units k (k/2 of each sign)", ylabel=r"relative gap $(F - G^*)/G^*$ (clipped at 1e-16)",
            yscale="log")])
        spectra = []
        for i, (s, t) in enumerate(sorted(twins.items())):
            e = np.sort(np.array([v for v in t["eigenvalues"] if v is not None]))[::-1]
            spectra.append(Series(np.arange(1, len(e) + 1) + 0.08 * i, e,
                                  f"data {s}: rank +{t['rank_positive']}/-{t['rank_negative']}", marker="o", size=9))
        spectra.append(Series([], [0.0], None, kind="hline", color="k", width=0.5))
        spectrum_figure = Figure("convex_twin_spectrum", [Panel(
            spectra, title="Convex twin optimum: spectrum (nuclear-norm soft-thresholding)",
            xlabel="eigenvalue index", ylabel="eigenvalue of the convex optimum M*")])
        return ExperimentReport(claim=self.claim, verdict=verdict, summary=summary, table=rows,
                                figures=[gap_figure, spectrum_figure])


EXPERIMENT = register(DuLee2018())

"""Du & Lee (ICML 2018): quadratic activations have no spurious local minima once k >= sqrt(2n).

Network x -> sum_j a_j (w_j.x)^2 with a_j = +-1 in equal numbers, trained on n points with
F(W) = 1/(2n) sum (yhat - y)^2 + (lambda/2)||W||_F^2. The exact global optimum comes from the
convex twin over M = W^T diag(a) W with the nuclear-norm penalty (spurious.problems.quadratic),
solved by accelerated proximal gradient to a duality-gap certificate. For each number of hidden
units k, many random starts (several data sets x several inits, all in one vmapped program) run a
first-order local search; the measured quantity is each run's relative gap (F - G*)/G*.
"""
from __future__ import annotations

import math
import time
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from ..problems import quadratic as q
from . import register
from ._curves import figure, num, nums, safeguarded_descent
from ..errors import SpuriousError
from .base import Experiment, ExperimentReport

GAP_THRESHOLD = 1e-5


@partial(jax.jit, static_argnames=("dim", "samples", "warm_steps", "steps"))
def _train_kernel(signs, data_seeds, keys, weight_decay, init_std, momentum, *, dim, samples, warm_steps, steps):
    """All runs of one k in one program: data sets vmapped, random starts vmapped within each.
    `signs` has length k_max with zeros for unused units, whose rows start at 0 and stay there
    (their gradient is lambda * 0), so every k up to k_max shares one compiled program."""
    live = (signs != 0).astype(jnp.float64)[:, None]

    def per_data(data_seed, keys):
        X, y = q.make_data(jax.random.PRNGKey(data_seed), dim, samples)

        def per_start(key):
            W0 = live * init_std * jax.random.normal(key, (signs.shape[0], dim), dtype=jnp.float64)
            fg = lambda W: q.loss_and_grad(W, X, y, signs, weight_decay)
            W, f, eta_w, eta, restarts, halvings, _ = safeguarded_descent(fg, W0, warm_steps, steps, momentum)
            g = q.grad(W, X, y, signs, weight_decay)
            return f, jnp.sqrt(jnp.sum(g * g)), eta_w, eta, restarts, halvings

        return jax.vmap(per_start)(keys)

    return jax.vmap(per_data)(data_seeds, keys)


def _train(hidden, pad_to, dim, samples, weight_decay, init_std, warm_steps, steps, momentum, data_seeds, seed, runs):
    signs = np.zeros(max(pad_to, hidden))
    signs[:hidden] = q.signs_vector(hidden, "balanced")
    base = jax.random.PRNGKey(seed)
    keys = jnp.stack([jnp.stack([jax.random.fold_in(jax.random.fold_in(base, int(s)), r) for r in range(runs)])
                      for s in data_seeds])
    return _train_kernel(jnp.asarray(signs), jnp.asarray(data_seeds), keys, weight_decay, init_std, momentum,
                         dim=dim, samples=samples, warm_steps=warm_steps, steps=steps)


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
                        runs_per_data=2, seed=0, init_scale=1.0, warm_steps=1000, steps=3000, momentum=0.99,
                        twin_rel_gap=1e-11, gap_threshold=GAP_THRESHOLD)
        if size == "cpu":
            return dict(size=size, dim=20, samples=100, weight_decay=1e-2, hidden=list(range(2, 25, 2)),
                        data_seeds=[0, 1, 2, 3], runs_per_data=4, seed=0, init_scale=1.0, warm_steps=4000,
                        steps=20000, momentum=0.99, twin_rel_gap=1e-11, gap_threshold=GAP_THRESHOLD)
        if size == "gpu":
            return dict(size=size, dim=20, samples=100, weight_decay=1e-2, hidden=list(range(2, 33, 2)),
                        data_seeds=list(range(16)), runs_per_data=32, seed=0, init_scale=1.0, warm_steps=10000,
                        steps=60000, momentum=0.99, twin_rel_gap=1e-11, gap_threshold=GAP_THRESHOLD)
        raise SpuriousError(f"unknown size {size!r}: choose one of {', '.join(self.sizes)}")

    def cells(self, config: dict) -> list[dict]:
        common = {k: config[k] for k in ("dim", "samples", "weight_decay")}
        twins = [dict(kind="twin", data_seed=s, rel_gap=config["twin_rel_gap"], **common) for s in config["data_seeds"]]
        train = [dict(kind="train", hidden=k, pad_to=max(config["hidden"]), data_seeds=list(config["data_seeds"]), runs_per_data=config["runs_per_data"],
                      seed=config["seed"], init_scale=config["init_scale"], warm_steps=config["warm_steps"],
                      steps=config["steps"], momentum=config["momentum"], **common) for k in config["hidden"]]
        return twins + train

    def run_cell(self, cell: dict) -> dict:
        started = time.perf_counter()
        if cell["kind"] == "twin":
            X, y = q.make_data(jax.random.PRNGKey(cell["data_seed"]), cell["dim"], cell["samples"])
            sol = q.solve_convex_twin(X, y, cell["weight_decay"], rel_gap=cell["rel_gap"])
            return dict(value=num(sol.value), dual_value=num(sol.dual_value), gap=num(sol.gap),
                        relative_gap=num(sol.relative_gap), iterations=sol.iterations,
                        rank_positive=sol.rank_positive, rank_negative=sol.rank_negative,
                        eigenvalues=nums(sol.eigenvalues), seconds=time.perf_counter() - started)
        f, gnorm, eta_w, eta, restarts, halvings = _train(
            cell["hidden"], cell["pad_to"], cell["dim"], cell["samples"], cell["weight_decay"],
            cell["init_scale"] / math.sqrt(cell["dim"]), cell["warm_steps"], cell["steps"], cell["momentum"],
            cell["data_seeds"], cell["seed"], cell["runs_per_data"])
        return dict(loss=[nums(row) for row in f], grad_norm=[nums(row) for row in gnorm],
                    step_warm=[nums(row) for row in eta_w], step=[nums(row) for row in eta],
                    restarts=np.asarray(restarts).tolist(), halvings=np.asarray(halvings).tolist(),
                    seconds=time.perf_counter() - started)

    def evaluate(self, config: dict, results: list[tuple[dict, dict]]) -> ExperimentReport:
        n, threshold_gap = config["samples"], config.get("gap_threshold", GAP_THRESHOLD)
        k_star = math.ceil(math.sqrt(2 * n))
        twins = {c["data_seed"]: r for c, r in results if c["kind"] == "twin"}
        rows, points = [], []
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
            rows.append(dict(hidden=k, per_sign=k // 2, above_threshold=k >= k_star, runs=len(gaps),
                             max_rel_gap=num(np.max(gaps)), median_rel_gap=num(np.median(gaps)),
                             min_rel_gap=num(np.min(gaps)),
                             within_threshold=int(np.sum(gaps <= threshold_gap)),
                             max_grad_norm=num(np.max(grads))))
        twin_gaps = [t["relative_gap"] for t in twins.values()]
        ranks = [max(t["rank_positive"], t["rank_negative"]) for t in twins.values()]
        above = [r for r in rows if r["above_threshold"]]
        all_ok = [r for r in rows if r["within_threshold"] == r["runs"]]
        first_ok = None
        for r in rows:  # smallest k from which every larger k has every run within the threshold
            if all(rr["within_threshold"] == rr["runs"] for rr in rows if rr["hidden"] >= r["hidden"]):
                first_ok = r["hidden"]
                break
        certified = all(g is not None and g <= 1e-9 for g in twin_gaps)
        passed = bool(above) and certified and all(r["within_threshold"] == r["runs"] for r in above)
        gap_of = lambda r: math.inf if r["max_rel_gap"] is None else r["max_rel_gap"]
        worst_above = max((gap_of(r) for r in above), default=float("nan"))
        below = [r for r in rows if not r["above_threshold"]]
        summary = (
            f"{'PASS' if passed else 'FAIL'}: for k >= ceil(sqrt(2n)) = {k_star} (n = {n}), "
            f"{sum(r['within_threshold'] for r in above)}/{sum(r['runs'] for r in above)} runs end within relative "
            f"gap {threshold_gap:g} of the convex optimum (worst {worst_above:.2e}, over k = "
            f"{', '.join(str(r['hidden']) for r in above)}). Convex twin certified to relative duality gap "
            f"<= {max(twin_gaps):.1e} on {len(twins)} data sets; its optimum has rank <= {max(ranks)} per sign, "
            f"so k >= {2 * max(ranks)} can represent it. Below the threshold the worst gaps are "
            + ", ".join(f"k={r['hidden']}: {gap_of(r):.1e}" for r in below)
            + f"; all runs are within {threshold_gap:g} from k = {first_ok} on (the sqrt(2n) bound is sufficient, "
            f"not tight). {len(all_ok)}/{len(rows)} values of k have every run within the threshold.")

        fig, ax = figure()
        ks = np.array([p[0] for p in points], dtype=float)
        gs = np.array([p[1] for p in points])
        jitter = (np.random.default_rng(0).random(len(ks)) - 0.5) * 0.6
        ax.scatter(ks + jitter, np.clip(np.where(np.isfinite(gs), gs, 1e3), 1e-16, None), s=10, alpha=0.6,
                   label="runs")
        ax.plot([r["hidden"] for r in rows], [min(max(gap_of(r), 1e-16), 1e3) for r in rows], "k-", lw=1,
                label="worst run")
        ax.axvline(math.sqrt(2 * n), color="C3", ls="--", label=r"$\sqrt{2n}$")
        ax.axhline(threshold_gap, color="C2", ls=":", label=f"gap {threshold_gap:g}")
        ax.set_yscale("log")
        ax.set_xlabel("hidden units k (k/2 of each sign)")
        ax.set_ylabel(r"relative gap $(F - G^*)/G^*$ (clipped at 1e-16)")
        ax.set_title(f"Quadratic network, d={config['dim']}, n={n}, lambda={config['weight_decay']:g}")
        ax.legend(fontsize=8)

        fig2, ax2 = figure()
        for i, (s, t) in enumerate(sorted(twins.items())):
            e = np.sort(np.array([v for v in t["eigenvalues"] if v is not None]))[::-1]
            ax2.plot(np.arange(1, len(e) + 1) + 0.08 * i, e, "o-", ms=3, label=f"data {s}: rank +{t['rank_positive']}/-{t['rank_negative']}")
        ax2.axhline(0.0, color="k", lw=0.5)
        ax2.set_xlabel("eigenvalue index")
        ax2.set_ylabel("eigenvalue of the convex optimum M*")
        ax2.set_title("Convex twin optimum: spectrum (nuclear-norm soft-thresholding)")
        ax2.legend(fontsize=7)
        return ExperimentReport(claim=self.claim, passed=passed, summary=summary, table=rows,
                                figures=[("relative_gap_vs_k", fig), ("convex_twin_spectrum", fig2)])


EXPERIMENT = register(DuLee2018())

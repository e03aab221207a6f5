"""Soltanolkotabi, Javanmard & Lee (IEEE TIT 2019): over-parameterized quadratic networks.

(a) Arbitrary data: x -> sum_j a_j (w_j.x)^2 with k = 2d hidden units (a = +-1, equal numbers) fits
    n < d(d+1)/2 arbitrary labels: gradient descent drives the training loss to zero in every seed.
(b) Planted model y = sum_{j<=k*} (w*_j.x)^2 with Gaussian inputs: gradient descent from a small
    random start; the exactly sized student (k = k*) converges at a linear rate and recovers
    W*^T W*; over-sized students (k > k*) reach zero loss only sublinearly (their extra units die
    out like a power of t, since the loss is quartic in them).
(c) The same planted experiment with a smooth activation (tanh), started near the planted weights
    (W* + 0.1 noise): "suitably initialized" gradient descent converges linearly and recovers W*.
All seeds of one setting run as one vmapped, compiled program (jax.lax.scan over steps).
"""
from __future__ import annotations

import itertools
import math
import time
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from ..problems import quadratic as q
from ..problems.empirical import ACTIVATIONS
from . import register
from ._curves import figure, flat, section, fit_rate, num, nums
from ..errors import SpuriousError
from .base import Experiment, ExperimentReport


def _planted_weights(key, teacher, dim):
    return jax.random.normal(jax.random.fold_in(key, 1), (teacher, dim), dtype=jnp.float64) / math.sqrt(dim)


@partial(jax.jit, static_argnames=("part", "dim", "samples", "width", "teacher", "steps", "record_every", "activation"))
def _kernel(seeds, signs, step, init_std, *, part, dim, samples, width, teacher, steps, record_every, activation):
    """Gradient descent for every seed at once. `signs` has length `width` (zeros for unused units
    of a padded quadratic student: those rows start at 0 and stay there)."""
    live = (signs != 0).astype(jnp.float64)[:, None]

    def one(seed):
        key = jax.random.PRNGKey(seed)
        start_key = jax.random.fold_in(key, 2)
        if part == "arbitrary":
            X, y = q.make_data(key, dim, samples)
            Wstar = jnp.zeros((teacher, dim))
        else:
            Wstar = _planted_weights(key, teacher, dim)
            X, y = q.make_data(key, dim, samples, "planted", Wstar)
        if part == "smooth":
            sigma = ACTIVATIONS[activation]
            y = jnp.sum(sigma(X @ Wstar.T), axis=1)
            W0 = Wstar + init_std * jax.random.normal(start_key, Wstar.shape, dtype=jnp.float64)
            fg = jax.value_and_grad(lambda W: 0.5 * jnp.mean((jnp.sum(sigma(X @ W.T), axis=1) - y) ** 2))
        else:
            W0 = live * init_std * jax.random.normal(start_key, (width, dim), dtype=jnp.float64)
            fg = lambda W: q.loss_and_grad(W, X, y, signs, 0.0)

        def inner(W, _):
            _, g = fg(W)
            return W - step * g, None

        def outer(W, _):
            W, _ = jax.lax.scan(inner, W, None, length=record_every)
            return W, fg(W)[0]

        W, curve = jax.lax.scan(outer, W0, None, length=steps // record_every)
        return W, Wstar, curve, fg(W0)[0], 0.5 * jnp.mean(y * y)

    return jax.vmap(one)(seeds)


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

    def cells(self, config: dict) -> list[dict]:
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

    def run_cell(self, cell: dict) -> dict:
        started = time.perf_counter()
        part = cell["part"]
        signs = np.zeros(cell["width"])
        signs[: cell["hidden"]] = q.signs_vector(cell["hidden"], "balanced" if part == "arbitrary" else "positive")
        W, Wstar, curves, loss0, scale = _kernel(
            jnp.asarray(cell["seeds"]), jnp.asarray(signs), cell["step"], cell["init_std"], part=part,
            dim=cell["dim"], samples=cell["samples"], width=cell["width"], teacher=cell["teacher"],
            steps=cell["steps"], record_every=cell["record_every"], activation=cell["activation"])
        W, Wstar, curves = np.asarray(W), np.asarray(Wstar), np.asarray(curves)
        recovery = [None if part == "arbitrary" else num(_recovery(W[i], Wstar[i], signs, part))
                    for i in range(len(cell["seeds"]))]
        return dict(curves=[nums(c) for c in curves], initial_loss=nums(loss0), label_scale=nums(scale),
                    recovery=recovery, seconds=time.perf_counter() - started)

    def evaluate(self, config: dict, results: list[tuple[dict, dict]]) -> ExperimentReport:
        rows, checks, curves_by = [], {}, {}
        for cell, res in results:
            part, k = cell["part"], cell["hidden"]
            steps = cell["record_every"] * np.arange(1, len(res["curves"][0]) + 1)
            key = (part, k)
            curves_by[key] = (cell, steps, res["curves"])
            for i, seed in enumerate(cell["seeds"]):
                c = np.array([np.nan if v is None else v for v in res["curves"][i]])
                c0 = res["initial_loss"][i]
                fit = fit_rate(np.concatenate([[0], steps]), np.concatenate([[c0], c]))
                final = c[-1]
                best = np.nanmin(c) if np.isfinite(c).any() else np.nan
                rows.append(dict(part=part, activation=cell["activation"], hidden=k, teacher=cell["teacher"] if part != "arbitrary" else None,
                                 seed=seed, final_loss=num(final), min_loss=num(best),
                                 relative_loss=num(final / res["label_scale"][i]) if part == "arbitrary" else None,
                                 rate_class=fit["class"], rate_per_step=fit["rate"], power_exponent=fit["exponent"],
                                 recovery_error=res["recovery"][i]))
        a, p, s = section(config, "arbitrary"), section(config, "planted"), section(config, "smooth")
        arb = [r for r in rows if r["part"] == "arbitrary"]
        exact = [r for r in rows if r["part"] == "planted" and r["hidden"] == p["teacher"]]
        over = [r for r in rows if r["part"] == "planted" and r["hidden"] > p["teacher"]]
        smooth = [r for r in rows if r["part"] == "smooth"]
        fin = lambda v, default=math.inf: default if v is None else v
        checks["a"] = all(fin(r["relative_loss"]) <= a["rel_loss_threshold"] for r in arb)
        checks["b_exact"] = bool(exact) and all(
            fin(r["min_loss"]) <= p["loss_threshold"] and fin(r["recovery_error"]) <= p["recovery_threshold"]
            and r["rate_class"] == "linear" for r in exact)
        checks["b_over"] = bool(over) and all(r["rate_class"] == "sublinear" for r in over)
        checks["c"] = bool(smooth) and all(
            fin(r["min_loss"]) <= s["loss_threshold"] and fin(r["recovery_error"]) <= s["recovery_threshold"]
            and r["rate_class"] == "linear" for r in smooth)
        passed = all(checks.values())

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
        summary = (
            f"{'PASS' if passed else 'FAIL'}. (a) arbitrary labels, d={a['dim']}, n={a['samples']}, k={a['hidden']}: "
            f"worst relative training loss {worst(arb, 'relative_loss'):.1e} (threshold {a['rel_loss_threshold']:g}; "
            f"{'ok' if checks['a'] else 'FAILED'}). (b) planted k*={p['teacher']}, n={p['samples']}, step {p['step']}: "
            f"exact student {sum(r['rate_class'] == 'linear' for r in exact)}/{len(exact)} linear (rate >= "
            f"{worst(exact, 'rate_per_step', min):.3g}/step), worst min loss {worst(exact, 'min_loss'):.1e} "
            f"(<= {p['loss_threshold']:g}), worst recovery of W*^T W* {worst(exact, 'recovery_error'):.1e} "
            f"(<= {p['recovery_threshold']:g}) [{'ok' if checks['b_exact'] else 'FAILED'}]; over-sized: {over_txt} "
            f"[{'ok' if checks['b_over'] else 'FAILED'}]. (c) {s['activation']} from W* + {s['noise']} noise: "
            f"{sum(r['rate_class'] == 'linear' for r in smooth)}/{len(smooth)} linear, worst min loss "
            f"{worst(smooth, 'min_loss'):.1e} (<= {s['loss_threshold']:g}), worst weight error "
            f"{worst(smooth, 'recovery_error'):.1e} (<= {s['recovery_threshold']:g}) [{'ok' if checks['c'] else 'FAILED'}].")

        figs = []
        fig, ax = figure()
        for key, title in ((("arbitrary", a["hidden"]), "arbitrary labels"),):
            if key in curves_by:
                cell, steps, cs = curves_by[key]
                for i, c in enumerate(cs):
                    ax.semilogy(steps, [np.nan if v is None else v for v in c], lw=1, label=f"seed {cell['seeds'][i]}")
        ax.set_xlabel("gradient step")
        ax.set_ylabel("training loss")
        ax.set_title(f"(a) arbitrary labels, d={a['dim']}, n={a['samples']}, k={a['hidden']}")
        ax.legend(fontsize=7)
        figs.append(("arbitrary_loss_curves", fig))

        fig, axes = figure(ncols=2)
        for j, k in enumerate(sorted(k for (part, k) in curves_by if part == "planted")):
            cell, steps, cs = curves_by[("planted", k)]
            for i, c in enumerate(cs):
                axes[0].semilogy(steps, [np.nan if v is None else max(v, 1e-32) for v in c], color=f"C{j}", lw=1,
                                 alpha=0.7, label=f"k={k}" if i == 0 else None)
        axes[0].axhline(p["loss_threshold"], color="k", ls=":", lw=0.8)
        axes[0].set_xlabel("gradient step")
        axes[0].set_ylabel("training loss")
        axes[0].set_title(f"(b) planted quadratic, k*={p['teacher']}")
        axes[0].legend(fontsize=8)
        for j, k in enumerate(sorted(k for (part, k) in curves_by if part == "planted")):
            cell, steps, cs = curves_by[("planted", k)]
            for i, c in enumerate(cs):
                axes[1].loglog(steps, [np.nan if v is None else max(v, 1e-32) for v in c], color=f"C{j}", lw=1,
                               alpha=0.7, label=f"k={k}" if i == 0 else None)
        axes[1].set_xlabel("gradient step (log)")
        axes[1].set_title("same, log-log: power laws are straight")
        figs.append(("planted_loss_curves", fig))

        fig, ax = figure()
        key = ("smooth", s["teacher"])
        if key in curves_by:
            cell, steps, cs = curves_by[key]
            for i, c in enumerate(cs):
                ax.semilogy(steps, [np.nan if v is None else max(v, 1e-32) for v in c], lw=1, label=f"seed {cell['seeds'][i]}")
        ax.axhline(s["loss_threshold"], color="k", ls=":", lw=0.8)
        ax.set_xlabel("gradient step")
        ax.set_ylabel("training loss")
        ax.set_title(f"(c) {s['activation']} planted, start W* + {s['noise']} noise")
        ax.legend(fontsize=7)
        figs.append(("smooth_loss_curves", fig))
        return ExperimentReport(claim=self.claim, passed=passed, summary=summary, table=rows, figures=figs)


EXPERIMENT = register(Soltanolkotabi2019())

"""Wide layers make critical points global (Nguyen & Hein, "Optimization Landscape and Expressivity of
Deep CNNs", ICML 2018).

Claim: if a convolutional layer of a CNN has at least as many neurons as there are training samples
(n1 = channels x output positions >= N), its feature matrix has full rank N for almost every weight
setting (analytic, strictly increasing activation, distinct patches), and then almost every critical
point of the training loss is a global minimum with zero training error.

Experiment: N random 8x8 single-channel images (pixels N(0, 1)); a 3x3 convolution (stride 1, no
padding: 6x6 = 36 positions) with C channels, bias and softplus, so n1 = 36 C neurons, C swept so n1
runs from about 0.5 N to 2 N; filters N(0, filter_std^2), biases 0.
1. Rank of the N x n1 feature matrix at the random filters, float64 SVD, singular values above
   rank_rtol x the largest counted. Prediction: rank = min(n1, N).
2. Training: conv -> softplus -> fully connected (fc_width) -> softplus -> linear output, random
   labels in {-1, +1}, square loss 1/2 mean (f - y)^2, all layers trained by full-batch L-BFGS
   (optax.lbfgs with its zoom line search), each seed stopped once its loss is <= stop_below.
   Prediction: training loss <= 1e-8 for every seed whenever n1 >= N. Runs with n1 < N are shown
   for contrast (the claim says nothing about them: the layers above can still fit), as is the
   least-squares loss of a linear readout of the frozen random features (zero iff rank = N).
(The optional max-pooling layer of the reference is not included.)
"""
from __future__ import annotations

import math
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from ..core import setup as _setup  # noqa: F401  (float64 before any array)
from .. import sgd
from ..core.errors import SpuriousError
from . import register
from ..problems.conv import conv_features, images, init_network, mse, network, patches, training_set  # noqa: F401
from ._memory import FLOAT, count, lbfgs_state, training_bytes
from .base import (SIZES, Between, Check, Choice, Count, Experiment, ExperimentReport, Figure, ListOf, Panel, Positive,
                   Seed, Series, Table, Text, check_seed_block, judge)

#: a run above loss_tol whose gradient norm is at most this stopped at a critical point that is no
#: global minimum (evidence against the claim); with a larger gradient it was still descending
CRITICAL_GRAD = 1e-6


def numerical_rank(matrix, rtol: float) -> tuple[int | None, float | None]:
    """Rank (singular values > rtol x largest, float64 SVD) and the smallest singular value ratio
    (None, None for a matrix with NaN/inf entries, e.g. after a diverged run)."""
    matrix = np.asarray(matrix, dtype=np.float64)
    if not np.all(np.isfinite(matrix)):
        return None, None
    s = np.linalg.svd(matrix, compute_uv=False)
    return int(np.sum(s > rtol * s[0])), float(s[-1] / s[0])


def _worst(values) -> float:
    """The largest value, a missing (non-finite) one counting as inf."""
    return max(math.inf if v is None else v for v in values)


class WideCNN2018(Experiment):
    name = "wide-cnn-2018"
    title = "Optimization Landscape and Expressivity of Deep CNNs (Nguyen & Hein, ICML 2018)"
    claim = ("A CNN layer with at least as many neurons as training samples (analytic strictly increasing "
             "activation, distinct patches) produces linearly independent features for almost all weights, and "
             "then almost every critical point of the empirical loss is a global minimum with zero training error. "
             "Prediction: the N x n1 feature matrix of a random softplus conv layer has rank min(n1, N) (float64 SVD, "
             "relative tolerance 1e-10), and with fully connected layers on top and random labels, training drives "
             "the loss to <= 1e-8 whenever n1 >= N.")

    def default_config(self, size: str = "cpu") -> dict:
        base = {"side": 8, "kernel": 3, "filter_std": 1.0, "fc_width": 16, "rank_rtol": 1e-10, "loss_tol": 1e-8,
                "stop_below": 1e-10,
                "seed": 0, "optimizer": {"name": "lbfgs", "memory_size": 20}}
        if size == "quick":
            return {**base, "size": size, "samples": 40, "channels": [2], "seeds": 2, "steps": 100,
                    "record_every": 20}
        if size == "cpu":
            # N = 500 as in the reference; n1 = 36 C from 252 (0.5 N) to 1008 (2 N)
            return {**base, "size": size, "samples": 500, "channels": [7, 10, 13, 14, 20, 28], "seeds": 3,
                    "steps": 1500, "record_every": 20}
        if size == "gpu":
            return {**base, "size": size, "samples": 2000, "channels": [28, 42, 55, 56, 84, 112], "seeds": 10,
                    "steps": 3000, "record_every": 20}
        raise SpuriousError(f"unknown size {size!r}: choose one of {', '.join(self.sizes)}")

    limits = {
        "size": Choice(*SIZES), "side": Count(), "kernel": Count(), "filter_std": Positive(), "fc_width": Count(),
        "rank_rtol": Between(0, 1, low_open=True), "loss_tol": Positive(), "stop_below": Positive(), "seed": Seed(),
        # an optax spec (checked by sgd.optimizer in `cells`); its L-BFGS memory is part of the estimate
        "optimizer": Table((("name", Text()), ("memory_size", Count())), required=("name",)),
        "samples": Count(), "channels": ListOf(Count()), "seeds": Count(), "steps": Count(), "record_every": Count(),
    }

    def cells(self, config: dict) -> list[dict]:
        self.check_config(config)
        check_seed_block(config)
        if config["kernel"] > config["side"]:
            raise SpuriousError(f"kernel ({config['kernel']}) is larger than the image side ({config['side']})")
        if config["steps"] % config["record_every"]:
            raise SpuriousError(f"record_every ({config['record_every']}) must divide steps ({config['steps']})")
        sgd.optimizer(config["optimizer"])  # a clear error now for a bad optimizer spec
        keys = ("side", "kernel", "filter_std", "fc_width", "rank_rtol", "seed", "optimizer", "samples", "seeds",
                "steps", "record_every", "stop_below")
        return [{"channels": c, **{k: config[k] for k in keys}} for c in config["channels"]]

    def cell_memory(self, cell: dict) -> tuple[int, str]:
        # every seed at once: its images and their patches, the N x n1 feature matrix and the layer above
        # it (kept for the gradient and the line search), the optimizer's state; the feature matrices of
        # all seeds before and after training, and per seed their SVD and least-squares readout (float64,
        # a few copies of N x n1)
        n, k, side, fc, seeds = cell["samples"], cell["kernel"], cell["side"], cell["fc_width"], cell["seeds"]
        positions = (side - k + 1) ** 2
        n1 = cell["channels"] * positions
        parameters = cell["channels"] * (k * k + 1) + fc * (n1 + 2) + 1
        spec = cell["optimizer"]
        state = lbfgs_state(spec.get("memory_size", 10)) if spec["name"] == "lbfgs" else 2  # 10: optax's default
        need = training_bytes(seeds, parameters, n * (positions * k * k + side * side + 1), 2 * n * (n1 + fc),
                              cell["steps"] // cell["record_every"] + 1, cell["record_every"], state) \
            + FLOAT * (3 * seeds + 8) * n * n1
        return need, (f"n1 = {count(n1)} neurons on N = {count(n)} images: {seeds} seeds of {count(parameters)} "
                      f"parameters, the {count(n)} x {count(n1)} feature matrices")

    def run_cell(self, cell: dict) -> dict:
        started = time.perf_counter()
        n, c, k = cell["samples"], cell["channels"], cell["kernel"]
        positions = (cell["side"] - k + 1) ** 2
        seeds = [cell["seed"] + i for i in range(cell["seeds"])]
        p, y = (jnp.stack(a) for a in zip(*(training_set(s, n, cell["side"], k) for s in seeds)))  # cnn-random-labels
        params = jax.tree_util.tree_map(lambda *a: jnp.stack(a), *(
            init_network(s, c, k, positions, cell["fc_width"], cell["filter_std"]) for s in seeds))

        def features(ps):
            return sgd.per_member(lambda q, x: conv_features(q["conv"], x), ps, p, data_axis=0)

        def ranks(ps):
            return [numerical_rank(f, cell["rank_rtol"]) for f in features(ps)]

        initial = ranks(params)
        # the best a linear readout of the frozen random features can do (least squares, float64)
        readout = []
        for f, labels in zip(features(params), np.asarray(y)):
            coef = np.linalg.lstsq(f, labels, rcond=None)[0]
            readout.append(float(0.5 * np.mean((f @ coef - labels) ** 2)))
        training = sgd.train_many(mse, params, (p, y), sgd.optimizer(cell["optimizer"]), cell["steps"], None, 0,
                                  data_axis=0, record_every=cell["record_every"], stop_below=cell["stop_below"])
        final = ranks(training.params)
        grad_norm = sgd.per_member(lambda q, xs, ys: jnp.linalg.norm(ravel_pytree(jax.grad(mse)(q, xs, ys))[0]),
                                   training.params, p, y, data_axis=0)
        return {
            "channels": c, "n1": c * positions, "samples": n, "seeds": seeds,
            "rank": [r for r, _ in initial], "min_singular_ratio": [s for _, s in initial],
            "rank_trained": [r for r, _ in final], "readout_min_loss": readout,
            "final_loss": sgd.jsonable(training.losses[:, -1]), "iterations": training.stopped.tolist(),
            "final_grad_norm": sgd.jsonable(grad_norm),
            "curve_steps": training.steps.tolist(), "loss_curves": sgd.jsonable(training.losses),
            "seconds": time.perf_counter() - started,
        }

    def evaluate(self, config: dict, results: list[tuple[dict, dict]]) -> ExperimentReport:
        rows = sorted((r for _, r in results), key=lambda r: r["n1"])
        n = config["samples"]
        table, rank_ok, train_ok = [], [], []
        wrong_rank, failed_runs = [], []  # (n1, seed's rank) / (n1, final loss, gradient norm, converged)
        for r in rows:
            expected = min(r["n1"], n)
            ranks_match = all(v == expected for v in r["rank"])
            rank_ok.append(ranks_match)
            wrong_rank += [(r["n1"], v) for v in r["rank"] if v != expected]
            final = np.asarray(r["final_loss"], dtype=float)  # NaN where a run diverged
            wide = r["n1"] >= n
            zero = bool(np.all(np.isfinite(final) & (final <= config["loss_tol"])))
            if wide:
                train_ok.append(zero)
                norms = r.get("final_grad_norm") or [None] * len(final)  # older results lack them
                for loss, norm, iterations in zip(final, norms, r["iterations"]):
                    if not (np.isfinite(loss) and loss <= config["loss_tol"]):
                        # without a stored gradient norm, a run that ran to the iteration cap was still going
                        converged = (norm is not None and norm <= CRITICAL_GRAD) if "final_grad_norm" in r \
                            else iterations < config["steps"] and np.isfinite(loss)
                        failed_runs.append((r["n1"], loss, norm, converged))
            table.append({"channels C": r["channels"], "n1": r["n1"], "N": n, "n1/N": r["n1"] / n,
                          "expected rank": expected, "ranks (seeds)": "/".join(map(str, r["rank"])),
                          "min sigma/sigma_max": min(r["min_singular_ratio"]),
                          "ranks after training": "/".join(map(str, r["rank_trained"])),
                          "linear readout of frozen features, min loss": max(r["readout_min_loss"]),
                          "final loss max": float(final.max()), "final loss min": float(final.min()),
                          "loss <= tol": zero, "L-BFGS iterations (max over seeds)": max(r["iterations"]), "in verdict": "rank, loss" if wide else "rank",
                          "seconds": round(r["seconds"], 1)})
        wide_rows = [r for r in rows if r["n1"] >= n]
        moving = [f for f in failed_runs if not f[3]]
        verdict, decided = judge([
            Check("the feature matrix has rank min(n1, N) at random filters", cases=sum(len(r["rank"]) for r in rows),
                  against=len(wrong_rank), unit="seeds", missing="no widths (channels)",
                  evidence=", ".join(f"n1={n1}: rank {v}" for n1, v in wrong_rank)),
            Check(f"training reaches loss <= {config['loss_tol']:g} whenever n1 >= N = {n}",
                  cases=sum(len(r["final_loss"]) for r in wide_rows), against=len(failed_runs) - len(moving),
                  unconverged=len(moving), unit="seeds", gradient_norms=[f[2] for f in moving],
                  evidence="final losses " + ", ".join(f"n1={n1}: {loss:.2e}" for n1, loss, _, _ in failed_runs)
                           + f"; a run counts as stopped at a critical point at gradient norm <= {CRITICAL_GRAD:g}",
                  missing=f"no channels C with n1 = {(config['side'] - config['kernel'] + 1) ** 2} C >= N = {n}"),
        ])
        words = [] if not rows else [
            "rank = min(n1, N) for every width and seed: " + ("yes" if all(rank_ok) else "NO (" + ", ".join(
                f"n1={r['n1']}: {r['rank']}" for r, ok in zip(rows, rank_ok) if not ok) + ")"),
            f"n1 >= N = {n}: max final loss " + (", ".join(f"n1={r['n1']}: {_worst(r['final_loss']):.2e}" for r in wide_rows)
                                                 or "none run") + f" (need <= {config['loss_tol']:g}) -> "
            + ("ok" if wide_rows and all(train_ok) else "FAIL" if wide_rows else "not tested"),
        ]
        narrow = [r for r in rows if r["n1"] < n]
        if narrow:
            words.append("for contrast, n1 < N (not in the verdict; the claim is a sufficient condition): max final "
                         "loss " + ", ".join(f"n1={r['n1']}: {_worst(r['final_loss']):.2e}" for r in narrow))
        if rows:
            words.append("a linear readout of the frozen random features reaches min loss " + ", ".join(
                f"n1={r['n1']}: {max(r['readout_min_loss']):.1e}" for r in rows) + " (zero exactly when rank = N)")
        summary = " ".join(filter(None, [decided, "; ".join(words) + "." if words else ""]))
        return ExperimentReport(claim=self.claim, verdict=verdict, summary=summary, table=table,
                                figures=[_figure(rows, n, config["loss_tol"])])


def _figure(rows, n, tol):
    n1 = [r["n1"] for r in rows]
    rank = [Series(n1, [min(v, n) for v in n1], "min(n1, N)", color="k", style="--")]
    rank += [Series([r["n1"]] * len(r["rank"]), r["rank"], None, kind="scatter", color="C0") for r in rows]
    rank.append(Series([n], [], None, kind="vline", color="grey"))
    loss = []
    for i, r in enumerate(rows):
        steps = np.asarray(r["curve_steps"])
        curves = np.maximum(np.asarray(r["loss_curves"], dtype=float), 1e-33)
        for j, (curve, stop) in enumerate(zip(curves, r["iterations"])):
            shown = steps <= stop  # up to the record at which the seed stopped
            loss.append(Series(steps[shown], curve[shown], f"n1 = {r['n1']}" if j == 0 else None, color=f"C{i}",
                               alpha=0.8, style="-" if r["n1"] >= n else ":"))
    loss.append(Series([], [tol], None, kind="hline", color="grey", style="--"))
    return Figure("wide_cnn", [
        Panel(rank, title=f"feature rank (N = {n})", xlabel="conv-layer neurons n1", ylabel="rank of feature matrix"),
        Panel(loss, title="training (dotted: n1 < N)", xlabel="L-BFGS iteration", ylabel="training loss",
              yscale="log")])


register(WideCNN2018())

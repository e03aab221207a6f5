"""Parities defeat gradient-based learning (Shalev-Shwartz, Shamir & Shammah, "Failures of
Gradient-Based Deep Learning", ICML 2017, arXiv 1703.07950, section 2.1).

Two parts.

SGD: x uniform on {-1,+1}^d, y = chi_S(x) = prod_{j in S} x_j for a random non-empty subset S
(one per seed); one ReLU hidden layer of width 10d, linear output, hinge loss, SGD (optax.sgd)
lr 0.01, batch 128, initialised like PyTorch's nn.Linear (weights and biases U(+-1/sqrt(fan_in))).
Training samples are a finite set (`train_samples`, drawn once per seed); accuracy is measured on
fresh test points.

Exact companion: for every d, enumerate all 2^d inputs and compute, at one fixed network (drawn with
the SGD part's initialisation, from its own random stream), the full-population gradient g_S of the hinge loss for EVERY parity target S
(all 2^d subsets, the empty one included, as in the paper's Theorem 1), then
    Var = mean_S || g_S - mean_S' g_S' ||^2,    G^2 = E_x || d p_w(x) / dw ||^2,
and the paper's bound Var <= G^2 / 2^d. All 2^d gradients come from one Walsh-Hadamard transform:
with labels y in {-1,+1}, the per-example gradient is G(x, y) = (G(x,+1)+G(x,-1))/2 +
y (G(x,+1)-G(x,-1))/2 exactly, so g_S = E_x[(G_+ + G_-)/2] + E_x[chi_S(x) (G_+ - G_-)/2], and the
second term for all S at once is the Walsh-Hadamard transform of the rows (G_+ - G_-)/2 / 2^d.
Parameters are processed in column chunks so memory stays bounded at d = 16 and beyond.
At a freshly initialised network |p_w(x)| < 1 on (nearly) every input, where the hinge loss is linear
in p, so (G_+ - G_-)/2 = -grad p and Var = G^2/2^d - ||grad p(1,...,1)||^2/4^d: the bound is
nearly attained, and Var 2^d / G^2 comes out just below 1.
"""
from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from ..core import setup as _setup  # noqa: F401  (float64 before any array)
from .. import sgd
from ..core.errors import SpuriousError
from . import register
from ..problems.parity import accuracy, hinge, hinge_loss, init_network, network, training_set
from ._memory import FLOAT, count, training_bytes
from .base import (SIZES, Band, Between, Check, Choice, Count, Experiment, ExperimentReport, Figure, ListOf, Panel,
                   Positive, Real, Seed, Series, check_seed_block, judge)

#: points of the cube whose per-example gradients `_gradient_parts` computes at once
CUBE_BLOCK = 2048


# -- exact gradient variance over all parity targets ----------------------------------------------
def walsh_hadamard(a) -> np.ndarray:
    """Unnormalised Walsh-Hadamard transform along axis 0 (length 2^d), in float64 numpy:
    out[s] = sum_i (-1)^{popcount(s & i)} a[i]."""
    a = np.array(a, dtype=np.float64)  # a copy, transformed in place
    n, rest = a.shape[0], a.shape[1:]
    if n & (n - 1):
        raise ValueError(f"length {n} is not a power of two")
    h = 1
    while h < n:
        view = a.reshape((n // (2 * h), 2, h) + rest)
        top = view[:, 0].copy()
        view[:, 0] += view[:, 1]
        np.subtract(top, view[:, 1], out=view[:, 1])
        h *= 2
    return a


def _per_example(model, loss, unravel):
    """Compiled, vmapped over points x: the label-even and label-odd halves of loss'(p_w(x), y) for
    y = +-1, grad_w p_w(x), and ||grad_w p_w(x)||^2 (G_y = loss'(p_w(x), y) grad_w p_w(x): one backward
    pass per point; `model` is scalar-valued)."""
    def one(flat, x):
        prediction, dp = jax.value_and_grad(lambda f: model(unravel(f), x))(flat)
        slope = jax.grad(loss)
        plus, minus = slope(prediction, 1.0), slope(prediction, -1.0)
        return 0.5 * (plus + minus), 0.5 * (plus - minus), dp, jnp.sum(dp * dp)

    return jax.jit(jax.vmap(one, in_axes=(None, 0)))


def _gradient_parts(kernel, flat, dim: int, columns: slice, block: int = CUBE_BLOCK):
    """Over all 2^d inputs (rows ordered as `sgd.cube_points`), restricted to the flattened-parameter
    `columns`: the label-independent mean E_x[(G_+ + G_-)/2], the rows (G_+ - G_-)/2 / 2^d, and
    G^2 = E_x ||grad_w p_w(x)||^2."""
    points = sgd.cube_points(dim)
    sums, odd, g2 = 0.0, [], 0.0
    for lo in range(0, points.shape[0], block):
        even_slope, odd_slope, dp, dp2 = kernel(flat, points[lo: lo + block])
        dp = dp[:, columns]
        sums = sums + even_slope @ dp
        odd.append(odd_slope[:, None] * dp)
        g2 = g2 + jnp.sum(dp2)
    count = points.shape[0]
    return np.asarray(sums) / count, np.asarray(jnp.concatenate(odd)) / count, float(g2) / count


def parity_gradients(model, loss, params, dim: int) -> np.ndarray:
    """The full-population gradient for every parity target: row s (a bit mask of the subset S,
    bit j <-> coordinate j) is grad_w E_x[loss(model(w, x), chi_S(x))] for x uniform on {-1,+1}^d.
    Shape (2^d, number of parameters), parameters flattened as jax.flatten_util.ravel_pytree."""
    flat, unravel = ravel_pytree(params)
    mean, odd, _ = _gradient_parts(_per_example(model, loss, unravel), flat, dim, slice(None))
    return mean[None, :] + walsh_hadamard(odd)


def parity_gradient_variance(model, loss, params, dim: int, chunk_bytes: int = 2 ** 28) -> dict:
    """Var = mean_S ||g_S - mean g||^2 over all 2^d parity targets, exactly (columns of the
    gradient processed in chunks of at most `chunk_bytes`), with G^2 = E_x ||grad_w p(x)||^2,
    the ratio Var 2^d / G^2 (Theorem 1: <= 1) and the largest single deviation max_S ||g_S - mean||."""
    flat, unravel = ravel_pytree(params)
    kernel = _per_example(model, loss, unravel)
    size, count = flat.size, 2 ** dim
    width = max(1, min(size, chunk_bytes // (8 * count)))
    deviation = np.zeros(count)
    for lo in range(0, size, width):
        _, odd, g2 = _gradient_parts(kernel, flat, dim, slice(lo, min(size, lo + width)))
        coeffs = walsh_hadamard(odd)  # g_S minus the label-independent part, this chunk of parameters
        coeffs -= coeffs.mean(axis=0)
        deviation += np.einsum("ij,ij->i", coeffs, coeffs)
    variance = float(np.mean(deviation))
    return {"d": dim, "parameters": int(size), "variance": variance, "g2": g2,
            "ratio": variance * count / g2, "max_deviation": float(np.sqrt(deviation.max())),
            "chunks": -(-size // width)}


# -- the experiment -------------------------------------------------------------------------------
class Parity2017(Experiment):
    name = "parity-2017"
    title = "Failures of Gradient-Based Deep Learning: parities (Shalev-Shwartz, Shamir & Shammah, ICML 2017)"
    claim = ("The gradient carries exponentially little information about which parity is the target: "
             "over all 2^d parity targets, the variance of the population gradient at any fixed network is "
             "at most G^2/2^d (G^2 = E||dp_w(x)/dw||^2). Prediction: SGD on a one-hidden-layer ReLU network "
             "(width 10d, hinge loss, lr 0.01, batch 128) learns the parity of a random subset for d <= 10 "
             "(test accuracy >= 0.99) but stays at chance for d = 30 (accuracy in [0.45, 0.55]); the exact "
             "gradient variance over all targets satisfies Var 2^d / G^2 <= 1 and log2 Var falls with slope "
             "about -1 per dimension.")

    def default_config(self, size: str = "cpu") -> dict:
        base = {"width_factor": 10, "lr": 0.01, "batch": 128, "test_samples": 10_000, "seed": 0,
                "easy_max_d": 10, "easy_min_accuracy": 0.99, "hard_min_d": 30, "chance_band": [0.45, 0.55],
                "slope_band": [-1.25, -0.75], "chunk_bytes": 2 ** 28}
        if size == "quick":
            return {**base, "size": size, "sgd_dims": [4, 30], "seeds": 2, "steps": 2000, "record_every": 500,
                    "train_samples": 1000, "test_samples": 1000, "exact_dims": [3, 4, 5]}
        if size == "cpu":
            # the reference's CPU default: 20,000 iterations (50,000 on GPU)
            return {**base, "size": size, "sgd_dims": [5, 10, 20, 30], "seeds": 3, "steps": 20_000,
                    "record_every": 1000, "train_samples": 50_000, "exact_dims": list(range(4, 17))}
        if size == "gpu":
            return {**base, "size": size, "sgd_dims": [5, 10, 15, 20, 25, 30], "seeds": 10, "steps": 50_000,
                    "record_every": 2500, "train_samples": 200_000, "exact_dims": list(range(4, 19)),
                    "chunk_bytes": 2 ** 30}
        raise SpuriousError(f"unknown size {size!r}: choose one of {', '.join(self.sizes)}")

    limits = {
        "size": Choice(*SIZES), "width_factor": Count(), "lr": Positive(), "batch": Count(), "test_samples": Count(),
        "seed": Seed(), "easy_max_d": Count(), "easy_min_accuracy": Between(0, 1), "hard_min_d": Count(),
        "chance_band": Band(Between(0, 1)), "slope_band": Band(Real()), "chunk_bytes": Count(),
        "sgd_dims": ListOf(Count()), "seeds": Count(), "steps": Count(), "record_every": Count(),
        "train_samples": Count(),
        # 2^d points x (parameters per chunk) floats: beyond d = 24, hours and gigabytes
        "exact_dims": ListOf(Count(maximum=24, why="the exact enumeration of all 2^d inputs allows d <= 24")),
    }

    def cells(self, config: dict) -> list[dict]:
        self.check_config(config)
        check_seed_block(config)
        if config["steps"] % config["record_every"]:
            raise SpuriousError(f"record_every ({config['record_every']}) must divide steps ({config['steps']})")
        if config["batch"] > config["train_samples"]:
            raise SpuriousError(f"batch ({config['batch']}) exceeds train_samples ({config['train_samples']})")
        shared = {k: config[k] for k in ("width_factor", "seed")}
        out = [{"part": "sgd", "d": d, **shared, **{k: config[k] for k in (
            "seeds", "steps", "record_every", "lr", "batch", "train_samples", "test_samples")}}
            for d in config["sgd_dims"]]
        out += [{"part": "exact", "d": d, "chunk_bytes": config["chunk_bytes"], **shared}
                for d in config["exact_dims"]]
        return out

    def cell_memory(self, cell: dict) -> tuple[int, str]:
        d, width = cell["d"], cell["width_factor"] * cell["d"]
        parameters = width * (d + 2) + 1
        if cell["part"] == "exact":
            # all 2^d inputs (and the bits they are made from); one block's per-example gradients; one
            # chunk of columns of the gradient rows, with the copies of the concatenation and the transform
            points = 2 ** d
            columns = max(1, min(parameters, cell["chunk_bytes"] // (FLOAT * points)))
            need = FLOAT * (3 * points * d + 2 * min(points, CUBE_BLOCK) * parameters + 7 * points * columns + points)
            return need, f"exact enumeration at d = {d}: {count(points)} inputs x {count(columns)} gradient columns"
        # every seed at once: its training and test points; the hidden layer on a mini-batch for a step,
        # on all training (or test) points for the recorded loss (and the accuracy)
        samples, tests = cell["train_samples"], cell["test_samples"]
        need = training_bytes(cell["seeds"], parameters, (samples + tests) * (d + 1), 2 * cell["batch"] * width,
                              cell["steps"] // cell["record_every"] + 1, cell["record_every"],
                              evaluation=2 * max(samples, tests) * width)
        return need, (f"SGD at d = {d}: {cell['seeds']} seeds of {count(parameters)} parameters on {count(samples)} "
                      f"training points")

    def run_cell(self, cell: dict) -> dict:
        started = time.perf_counter()
        d, width = cell["d"], cell["width_factor"] * cell["d"]
        if cell["part"] == "exact":
            params = init_network(sgd.stream_key(cell["seed"], f"exact-network-{d}"), d, width)
            result = parity_gradient_variance(network, hinge, params, d, cell["chunk_bytes"])
            return {**result, "seconds": time.perf_counter() - started}

        seeds = [cell["seed"] + i for i in range(cell["seeds"])]
        masks, x, y = (np.stack(a) if i == 0 else jnp.stack(a) for i, a in enumerate(zip(
            *(training_set(s, d, cell["train_samples"]) for s in seeds))))  # the parity-network landscapes
        x_test = jnp.stack([sgd.cube(s, cell["test_samples"], d, "test") for s in seeds])
        y_test = jax.vmap(sgd.parity)(x_test, masks)
        params = jax.tree_util.tree_map(lambda *a: jnp.stack(a), *(
            init_network(sgd.stream_key(s, "init"), d, width) for s in seeds))
        training = sgd.train_many(hinge_loss, params, (x, y), sgd.optimizer({"name": "sgd", "learning_rate": cell["lr"]}),
                                  cell["steps"], cell["batch"], sgd.stream_key(cell["seed"], f"batches-{d}"),
                                  data_axis=0, record_every=cell["record_every"])
        return {
            "d": d, "width": width, "seeds": seeds, "subset_sizes": masks.sum(axis=1).tolist(),
            "test_accuracy": sgd.per_member(accuracy, training.params, x_test, y_test, data_axis=0).tolist(),
            "train_accuracy": sgd.per_member(accuracy, training.params, x, y, data_axis=0).tolist(),
            "steps": training.steps.tolist(), "loss_curves": sgd.jsonable(training.losses),
            "train_seconds": training.seconds, "seconds": time.perf_counter() - started,
        }

    def evaluate(self, config: dict, results: list[tuple[dict, dict]]) -> ExperimentReport:
        sgd_rows = sorted((r for c, r in results if c["part"] == "sgd"), key=lambda r: r["d"])
        exact = sorted((r for c, r in results if c["part"] == "exact"), key=lambda r: r["d"])
        lo, hi = config["chance_band"]
        table, checks, words = [], [], []

        easy = [r for r in sgd_rows if r["d"] <= config["easy_max_d"]]
        hard = [r for r in sgd_rows if r["d"] >= config["hard_min_d"]]
        for r in sgd_rows:
            acc = r["test_accuracy"]
            table.append({"part": "SGD", "d": r["d"], "seeds": len(acc), "subset sizes": str(r["subset_sizes"]),
                          "test acc min": min(acc), "test acc mean": float(np.mean(acc)), "test acc max": max(acc),
                          "train acc mean": float(np.mean(r["train_accuracy"])),
                          "Var·2^d/G²": "", "log2 Var": "", "G²": "", "max_S |g_S - mean g|": "",
                          "seconds": round(r["seconds"], 1)})
        easy_low = [(r["d"], a) for r in easy for a in r["test_accuracy"] if not a >= config["easy_min_accuracy"]]
        hard_out = [(r["d"], a) for r in hard for a in r["test_accuracy"] if not lo <= a <= hi]
        easy_ok, hard_ok = bool(easy) and not easy_low, bool(hard) and not hard_out
        checks += [
            Check(f"SGD learns the parity for d <= {config['easy_max_d']} (test accuracy >= "
                  f"{config['easy_min_accuracy']})", cases=sum(len(r["test_accuracy"]) for r in easy),
                  against=len(easy_low), unit="seeds",
                  evidence=", ".join(f"d={d}: {a:.4f}" for d, a in easy_low),
                  missing=f"no d <= {config['easy_max_d']} in sgd_dims"),
            Check(f"SGD stays at chance for d >= {config['hard_min_d']} (test accuracy in [{lo}, {hi}])",
                  cases=sum(len(r["test_accuracy"]) for r in hard), against=len(hard_out), unit="seeds",
                  evidence=", ".join(f"d={d}: {a:.4f}" for d, a in hard_out),
                  missing=f"no d >= {config['hard_min_d']} in sgd_dims"),
        ]
        words.append("SGD: d <= {} min test accuracy {} (need >= {}) -> {}".format(
            config["easy_max_d"], ", ".join(f"d={r['d']}: {min(r['test_accuracy']):.4f}" for r in easy) or "none run",
            config["easy_min_accuracy"], "ok" if easy_ok else "FAIL" if easy else "not tested"))
        words.append("d >= {} test accuracies {} (need all in [{}, {}]) -> {}".format(
            config["hard_min_d"], ", ".join(f"d={r['d']}: " + "/".join(f"{a:.3f}" for a in r["test_accuracy"])
                                            for r in hard) or "none run", lo, hi,
            "ok" if hard_ok else "FAIL" if hard else "not tested"))

        for r in exact:
            table.append({"part": "exact", "d": r["d"], "seeds": 1, "subset sizes": f"all {2 ** r['d']}",
                          "test acc min": "", "test acc mean": "", "test acc max": "", "train acc mean": "",
                          "Var·2^d/G²": r["ratio"], "log2 Var": float(np.log2(r["variance"])), "G²": r["g2"],
                          "max_S |g_S - mean g|": r["max_deviation"], "seconds": round(r["seconds"], 1)})
        if len(exact) >= 2:
            dims = np.array([r["d"] for r in exact], dtype=float)
            log_var = np.log2([r["variance"] for r in exact])
            log_norm = np.log2([r["variance"] / r["g2"] for r in exact])
            slope, intercept = np.polyfit(dims, log_var, 1)
            slope_norm = float(np.polyfit(dims, log_norm, 1)[0])
            ratio_ok = all(r["ratio"] <= 1.0 for r in exact)
            s_lo, s_hi = config["slope_band"]
            slope_ok = bool(s_lo <= slope <= s_hi)
            checks += [
                Check("Var 2^d / G^2 <= 1 at every d (exact, all 2^d targets)", cases=len(exact),
                      against=sum(r["ratio"] > 1.0 for r in exact), unit="dimensions",
                      evidence=", ".join(f"d={r['d']}: {r['ratio']:.4f}" for r in exact if r["ratio"] > 1.0)),
                Check(f"log2 Var falls with slope in [{s_lo}, {s_hi}] per dimension", cases=1,
                      against=0 if slope_ok else 1, unit="fits", evidence=f"slope {slope:.3f}"),
            ]
            words.append(f"exact (d = {int(dims[0])}..{int(dims[-1])}, all 2^d targets): Var·2^d/G² in "
                         f"[{min(r['ratio'] for r in exact):.4f}, {max(r['ratio'] for r in exact):.6f}] (need <= 1) -> "
                         f"{'ok' if ratio_ok else 'FAIL'}; slope of log2 Var vs d = {slope:.3f} (need in [{s_lo}, {s_hi}], "
                         f"ours) -> {'ok' if slope_ok else 'FAIL'}; slope of log2(Var/G²) = {slope_norm:.3f} (G² grows with "
                         f"the width 10d, from {exact[0]['g2']:.3g} to {exact[-1]['g2']:.3g})")
        else:
            slope = intercept = None
            checks += [
                Check("Var 2^d / G^2 <= 1 at every d (exact, all 2^d targets)", cases=len(exact),
                      against=sum(r["ratio"] > 1.0 for r in exact), unit="dimensions",
                      evidence=", ".join(f"d={r['d']}: {r['ratio']:.4f}" for r in exact if r["ratio"] > 1.0),
                      missing="no exact_dims"),
                Check("log2 Var falls with slope about -1 per dimension", cases=0,
                      missing=f"a slope needs two or more exact_dims, the grid has {len(exact)}"),
            ]
            words.append(f"exact: {len(exact)} dimension computed, no slope to fit" if exact else "exact: none run")

        verdict, decided = judge(checks)
        summary = " ".join(filter(None, [decided, "; ".join(words)[:1].upper() + "; ".join(words)[1:] + "."]))
        figures = [_sgd_figure(sgd_rows, config)] if sgd_rows else []
        if exact:
            figures.append(_variance_figure(exact, slope, intercept))
        return ExperimentReport(claim=self.claim, verdict=verdict, summary=summary, table=table, figures=figures)


def _sgd_figure(rows, config):
    accuracy = [Series([r["d"]] * len(r["test_accuracy"]), r["test_accuracy"], None, kind="scatter", color="C0",
                       alpha=0.6) for r in rows]
    accuracy += [Series([r["d"] for r in rows], [np.mean(r["test_accuracy"]) for r in rows], None, color="C0"),
                 Series([rows[0]["d"], rows[-1]["d"]], [config["chance_band"][1]], "chance band", kind="band",
                        color="grey", alpha=0.2, y_low=[config["chance_band"][0]]),
                 Series([], [config["easy_min_accuracy"]], "learned threshold", kind="hline", color="C2", style="--")]
    curves = [Series(r["steps"], np.asarray(r["loss_curves"], dtype=float).mean(axis=0), f"d = {r['d']}")
              for r in rows]
    return Figure("sgd", [
        Panel(accuracy, title="SGD on parities", xlabel="d", ylabel="test accuracy"),
        Panel(curves, title=f"loss curves ({config['train_samples']:,} training points)", xlabel="SGD step",
              ylabel="hinge loss on the training set (mean over seeds)")])


def _variance_figure(rows, slope, intercept):
    dims = np.array([r["d"] for r in rows])
    series = [Series(dims, np.log2([r["variance"] for r in rows]), "exact Var over all 2^d targets", kind="scatter"),
              Series(dims, np.log2([r["g2"] / 2 ** r["d"] for r in rows]), "bound G²/2^d", color="k", style="--")]
    if slope is not None:
        series.append(Series(dims, intercept + slope * dims, f"fit: slope {slope:.2f}", color="C1"))
    return Figure("gradient_variance", [Panel(series, title="Gradient variance across parity targets", xlabel="d",
                                              ylabel="log2 Var")], panel_width=5.5)


register(Parity2017())

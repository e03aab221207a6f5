"""Width needed for global convergence (Song, Ramezani-Kebrya, Pethick, Eftekhari & Cevher,
"Subquadratic Overparameterization for Shallow Neural Networks", NeurIPS 2021).

Experiment (ours, as in the reference): x ~ N(0, I_d/d), d = 32, labels uniform in {-1, +1};
f(x) = sum_j a_j gelu(w_j . x), He initialisation (w_j ~ N(0, 2 I/d), a_j ~ N(0, 2/m)), both layers
trained by full-batch gradient descent (optax.sgd) on the square loss 1/2 mean (f - y)^2.
Step size: lr = lr_factor / lambda_max, lambda_max the largest eigenvalue of the Gauss-Newton
matrix J^T J / N at the initialisation (power iteration), the largest over the seeds of the cell
(ours: GD has no scale-free default step; lr_factor 0.3 because the sharpness grows during training
and 1.0 diverged in calibration, at N = 64..256 and small widths). A seed succeeds when its training loss reaches <= tol x its initial loss within T steps
(a diverged run fails). m*(N) is the smallest width of the grid at which >= 90% of the seeds succeed.

Prediction: log m* grows with log N with slope < 2 (the earlier theory needed quadratic width; we
expect about 1). Intervals for the slope: a bootstrap over seeds (resampling each N's seeds, the same
resample for every width), the grid bracket (each m* either its grid value or one grid step lower,
where the true threshold lies) and the ordinary least-squares 95% interval. The verdict needs the
slope, the upper ends of the bootstrap interval and of the grid bracket, and the local slope between
the two largest N all below 2.
m* depends on T (a larger step budget lowers it at large N): it is a property of (N, T).

Range of N (measured while calibrating, not part of the study). The cpu size stops at N = 256. In
d = 32, full-batch GD slows sharply as N approaches d(d+1)/2 + d + 1 = 561 (the number of
polynomial directions of degree <= 2, which carry the well-conditioned part of the network's
kernel): at N = 512 with T = 10,000, m = 16..91 reach none of 10 seeds and m = 128 (8 parameters
per sample) 1 of 10 (relative losses 4e-4..4e-3); with T = 40,000, m = 64 reaches 1 of 10 (3e-3..1e-2).
So the fixed-T m*(512) lies above 128, far above m*(256) = 16: the cpu verdict (slope < 2 over
N = 32..256) says nothing about larger N, which needs the gpu size (N up to 1024, T = 100,000).
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
from ..problems.gelu_width import dataset, gauss_newton_top, gelu, init_network, mse, network  # noqa: F401
from ._memory import count, training_bytes
from .base import (SIZES, Between, Check, Choice, Count, Experiment, ExperimentReport, Figure, ListOf, MapOf, Panel,
                   Positive, Seed, Series, check_seed_block, judge)


def log_slope(x, y) -> tuple[float, float, tuple[float, float]]:
    """Least-squares fit of log y = a + b log x (any log base, the slope does not depend on it):
    returns slope b, intercept a (natural log) and the 95% t-interval of b (nan with < 3 points)."""
    from scipy import stats

    lx, ly = np.log(np.asarray(x, dtype=float)), np.log(np.asarray(y, dtype=float))
    fit = stats.linregress(lx, ly)
    if len(lx) < 3:
        return float(fit.slope), float(fit.intercept), (math.nan, math.nan)
    t = float(stats.t.ppf(0.975, len(lx) - 2))
    return float(fit.slope), float(fit.intercept), (fit.slope - t * fit.stderr, fit.slope + t * fit.stderr)


def critical_width(widths, success, threshold: float) -> float:
    """Smallest width whose success fraction is >= threshold (inf if none)."""
    for m, frac in sorted(zip(widths, success)):
        if frac >= threshold:
            return float(m)
    return math.inf


class WidthScaling2021(Experiment):
    name = "width-scaling-2021"
    title = "Subquadratic Overparameterization for Shallow Neural Networks (Song et al., NeurIPS 2021)"
    claim = ("With standard initialisation and all layers trained, a shallow network reaches zero training loss "
             "when its width grows subquadratically with the number of samples N (earlier theory: quadratically). "
             "Prediction: for a two-layer GELU network (He init, full-batch GD) on N random-label Gaussian samples, "
             "the smallest width m*(N) at which >= 90% of seeds reach training MSE <= 1e-4 x initial within T steps "
             "grows like N^s with fitted log-log slope s < 2 (we expect about 1).")

    def default_config(self, size: str = "cpu") -> dict:
        base = {"dim": 32, "lr_factor": 0.3, "tol": 1e-4, "success_fraction": 0.9, "seed": 0,
                "max_slope": 2.0, "bootstrap": 2000, "record_every": 500}
        # widths on a sqrt(2) grid (rounded); m*(N) is known to within one grid step
        sqrt2 = [1, 2, 3, 4, 6, 8, 11, 16, 23, 32, 45, 64, 91, 128, 181, 256, 362, 512, 724, 1024]
        if size == "quick":
            return {**base, "size": size, "samples": [16, 32], "seeds": 3, "steps": 500, "record_every": 250,
                    "widths": {"16": [2, 4], "32": [2, 4]}, "bootstrap": 200}
        if size == "cpu":
            # Reduced from the reference's N = 64..1024 (see the module notes): in d = 32, GD slows
            # sharply as N nears 512, so N <= 256 is what T = 10,000 steps on 2 cores can resolve;
            # the gpu size runs N up to 1024 with a 10x larger T.
            samples = [32, 64, 128, 256]
            return {**base, "size": size, "samples": samples, "seeds": 10, "steps": 10_000,
                    "widths": {str(n): [m for m in sqrt2 if n / 32 <= m <= n / 4] for n in samples}}
        if size == "gpu":
            samples = [64, 128, 256, 512, 1024]
            return {**base, "size": size, "samples": samples, "seeds": 20, "steps": 100_000, "record_every": 1000,
                    "widths": {str(n): [m for m in sqrt2 if n / 32 <= m <= n] for n in samples}}
        raise SpuriousError(f"unknown size {size!r}: choose one of {', '.join(self.sizes)}")

    limits = {
        "size": Choice(*SIZES), "dim": Count(), "lr_factor": Positive(), "tol": Positive(),
        "success_fraction": Between(0, 1, low_open=True), "seed": Seed(), "max_slope": Positive(),
        "bootstrap": Count(), "record_every": Count(), "samples": ListOf(Count()), "seeds": Count(), "steps": Count(),
        "widths": MapOf(ListOf(Count())),  # N (as a string) -> its widths
    }

    def cells(self, config: dict) -> list[dict]:
        self.check_config(config)
        check_seed_block(config)
        if config["steps"] % config["record_every"]:
            raise SpuriousError(f"record_every ({config['record_every']}) must divide steps ({config['steps']})")
        widths = config["widths"]
        if set(widths) != {str(n) for n in config["samples"]}:
            raise SpuriousError(f"widths must map every N in samples (as a string) to its list of widths, got {widths!r}")
        keys = ("dim", "lr_factor", "tol", "seed", "seeds", "steps", "record_every")
        return [{"samples": n, "width": m, **{k: config[k] for k in keys}}
                for n in config["samples"] for m in config["widths"][str(n)]]

    def cell_memory(self, cell: dict) -> tuple[int, str]:
        # every seed at once: its data set, the hidden layer on all samples (also in the Gauss-Newton
        # power iteration's forward and backward passes)
        n, m, dim, seeds = cell["samples"], cell["width"], cell["dim"], cell["seeds"]
        parameters = m * (dim + 1)
        need = training_bytes(seeds, parameters, n * (dim + 1), 4 * n * m, cell["steps"] // cell["record_every"] + 1,
                              cell["record_every"])
        return need, f"N = {count(n)}, m = {count(m)}: {seeds} seeds of {count(parameters)} parameters"

    def run_cell(self, cell: dict) -> dict:
        started = time.perf_counter()
        n, m, dim = cell["samples"], cell["width"], cell["dim"]
        seeds = [cell["seed"] + i for i in range(cell["seeds"])]
        x, y = (jnp.stack(a) for a in zip(*(dataset(s, n, dim) for s in seeds)))
        params = jax.tree_util.tree_map(lambda *a: jnp.stack(a), *(init_network(s, dim, m) for s in seeds))
        curvature = np.asarray(jax.jit(jax.vmap(gauss_newton_top))(params, x))
        lr = cell["lr_factor"] / float(curvature.max())
        initial = sgd.per_member(mse, params, x, y, data_axis=0)
        # a seed stops once it meets the criterion (its later records repeat that loss)
        training = sgd.train_many(mse, params, (x, y), sgd.optimizer({"name": "sgd", "learning_rate": lr}),
                                  cell["steps"], None, 0, data_axis=0, record_every=cell["record_every"],
                                  stop_below=cell["tol"] * initial)
        relative = training.losses / training.losses[:, :1]
        finite = np.isfinite(relative)
        reached = finite & (relative <= cell["tol"])
        median = _nanmedian(relative, finite)  # over the seeds that have not diverged (None where all have)
        # where each seed stopped: is a seed that missed the tolerance still descending (not converged)?
        grad_norm = sgd.per_member(lambda q, xs, ys: jnp.linalg.norm(ravel_pytree(jax.grad(mse)(q, xs, ys))[0]),
                                   training.params, x, y, data_axis=0)
        return {
            "samples": n, "width": m, "parameters": m * (dim + 1), "seeds": seeds, "lr": lr,
            "gauss_newton_top": curvature.tolist(),
            "initial_loss": training.losses[:, 0].tolist(),
            "final_relative_loss": sgd.jsonable(relative[:, -1]),
            "success": [bool(v) for v in reached[:, -1]],
            "diverged": [not bool(np.all(r)) for r in finite],
            "steps_to_tol": [int(t) if ok else None for t, ok in zip(training.stopped, reached[:, -1])],
            "final_grad_norm": sgd.jsonable(grad_norm),
            "curve_steps": training.steps.tolist(),
            "median_relative_curve": sgd.jsonable(median),
            "seconds": time.perf_counter() - started,
        }

    def evaluate(self, config: dict, results: list[tuple[dict, dict]]) -> ExperimentReport:
        threshold = config["success_fraction"]
        dim = config["dim"]
        by_n: dict[int, list[dict]] = {}
        for _, r in results:
            by_n.setdefault(r["samples"], []).append(r)
        sizes = sorted(by_n)
        table = []
        m_star = {}
        for n in sizes:
            rows = sorted(by_n[n], key=lambda r: r["width"])
            fractions = [float(np.mean(r["success"])) for r in rows]
            m_star[n] = critical_width([r["width"] for r in rows], fractions, threshold)
            for r, frac in zip(rows, fractions):
                finite = [v for v in r["final_relative_loss"] if v is not None]
                done = [v for v in r["steps_to_tol"] if v is not None]
                table.append({"N": n, "width m": r["width"], "parameters": r["parameters"],
                              "parameters / N": r["parameters"] / n, "seeds": len(r["success"]),
                              "success fraction": frac, "diverged": int(sum(r["diverged"])),
                              "median final loss / initial": float(np.median(finite)) if finite else math.nan,
                              "max steps to tol (successes)": max(done) if done else "",
                              "lr": r["lr"], "m*(N)": m_star[n] if r["width"] == m_star[n] else "",
                              "seconds": round(r["seconds"], 1)})

        found = [n for n in sizes if math.isfinite(m_star[n])]
        unreached = [n for n in sizes if not math.isfinite(m_star[n])]
        edge = [n for n in found if m_star[n] == min(r["width"] for r in by_n[n])]
        words = ["m*(N): " + ", ".join(
            f"N={n}: {m_star[n]:g} ({m_star[n] * (dim + 1) / n:.2g} parameters per sample)" if math.isfinite(m_star[n])
            else f"N={n}: > {max(r['width'] for r in by_n[n])}" for n in sizes)] if sizes else []
        diverged = {n: sum(sum(r["diverged"]) for r in by_n[n]) for n in sizes}
        if any(diverged.values()):
            words.append("diverged runs: " + ", ".join(f"N={n}: {d}" for n, d in diverged.items() if d))
        cap = config["max_slope"]
        prediction = f"m*(N) grows like N^s with fitted slope s < {cap:g}"
        slope = intercept = None
        if len(sizes) < 2:
            check = Check(prediction, cases=0, unit="sample sizes N",
                          missing=f"a slope needs two or more N, the grid has {'N = ' + str(sizes[0]) if sizes else 'none'}")
        elif unreached:
            # no width reached the tolerance within T steps there: m*(N) is unknown, not measured large
            widest = [max(by_n[n], key=lambda r: r["width"]) for n in unreached]
            missed = [(r, i) for r in widest for i, ok in enumerate(r["success"]) if not ok]
            norms = [r["final_grad_norm"][i] if "final_grad_norm" in r else None for r, i in missed]
            losses = [r["final_relative_loss"][i] for r, i in missed if r["final_relative_loss"][i] is not None]
            check = Check(prediction, cases=len(sizes), unconverged=len(unreached), unit="sample sizes N",
                          gradient_norms=norms,
                          evidence=f"no width reached loss <= {config['tol']:g} x initial within T = {config['steps']} "
                                   f"steps at N = {', '.join(map(str, unreached))}, so m* is unknown there; final "
                                   f"loss / initial at the widest width "
                                   + (f"{min(losses):.2g}..{max(losses):.2g}" if losses else "non-finite (diverged)"))
        else:
            widths = [m_star[n] for n in found]
            slope, intercept, (ols_lo, ols_hi) = log_slope(found, widths)
            boot = _bootstrap(by_n, threshold, config["bootstrap"], config["seed"])
            boot_lo, boot_hi = (np.percentile(boot, [2.5, 97.5]) if len(boot) else (math.nan, math.nan))
            grid_lo, grid_hi = _grid_range(by_n, m_star, found)
            local = np.diff(np.log(widths)) / np.diff(np.log(found))
            held = bool(slope < cap and np.isfinite(boot_hi) and boot_hi < cap and grid_hi < cap and local[-1] < cap)
            words.append(f"fitted slope of log m* vs log N = {slope:.3f}; intervals: bootstrap over seeds (95%, "
                         f"{len(boot)} of {config['bootstrap']} resamples with m* found for every N) "
                         f"[{boot_lo:.3f}, {boot_hi:.3f}], grid bracket [{grid_lo:.3f}, {grid_hi:.3f}] (every m* "
                         f"either its grid value or one grid step lower, as m* is known only to within a grid step), "
                         f"OLS 95% t-interval [{ols_lo:.3f}, {ols_hi:.3f}] ({len(found)} points); local slopes between "
                         f"consecutive N: {', '.join(f'{v:.2f}' for v in local)}; need the slope, the upper ends of "
                         f"the bootstrap interval and of the grid bracket, and the last local slope < {cap:g} -> "
                         f"{'ok' if held else 'FAIL'}")
            if edge:
                words.append(f"note: m* equals the smallest width of the grid at N = {edge} (an upper bound there)")
            check = Check(prediction, cases=len(sizes), against=0 if held else len(sizes), unit="sample sizes N",
                          evidence=f"slope {slope:.3f}, bootstrap upper end {boot_hi:.3f}, grid bracket upper end "
                                   f"{grid_hi:.3f}, last local slope {local[-1]:.2f}")
        verdict, decided = judge([check])
        summary = " ".join(filter(None, [decided, "; ".join(words) + "." if words else ""])) + (
            f" T = {config['steps']} steps, tol {config['tol']:g} x initial, {config['seeds']} seeds per (N, m), "
            f"N = {', '.join(map(str, sizes)) or 'none'}, d = {dim}; m* is a property of (N, T): "
            f"a fixed T also measures how fast GD converges, which slows as N grows"
            + (" (in d = 32 sharply near N = 512)" if dim == 32 else "") + ", so this verdict covers only the N measured.")
        return ExperimentReport(claim=self.claim, verdict=verdict, summary=summary, table=table,
                                figures=[_figure(by_n, m_star, slope, intercept, threshold, dim)])


def _nanmedian(values, finite):
    """Column medians over the finite entries only (NaN for a column without any)."""
    out = np.full(values.shape[1], np.nan)
    for j in range(values.shape[1]):
        if finite[:, j].any():
            out[j] = np.median(values[finite[:, j], j])
    return out


def _grid_range(by_n, m_star, found):
    """Smallest and largest fitted slope when each m*(N) is either its grid value or the next smaller
    grid width (the true threshold lies between them)."""
    import itertools

    options = []
    for n in found:
        below = [r["width"] for r in by_n[n] if r["width"] < m_star[n]]
        options.append([m_star[n]] + ([max(below)] if below else []))
    slopes = [np.polyfit(np.log(found), np.log(choice), 1)[0] for choice in itertools.product(*options)]
    return float(min(slopes)), float(max(slopes))


def _bootstrap(by_n, threshold, resamples, seed):
    """Slopes refitted on seed resamples (each N's seeds resampled with replacement, one resample shared
    by all widths of that N); resamples in which some N has no m* are dropped."""
    rng = np.random.default_rng(seed)
    slopes = []
    for _ in range(resamples):
        sizes, widths = [], []
        for n, rows in sorted(by_n.items()):
            seeds = len(rows[0]["success"])
            pick = rng.integers(0, seeds, seeds)
            fractions = [float(np.mean(np.asarray(r["success"])[pick])) for r in rows]
            m = critical_width([r["width"] for r in rows], fractions, threshold)
            sizes.append(n)
            widths.append(m)
        if all(math.isfinite(m) for m in widths) and len(set(sizes)) >= 2:
            slopes.append(np.polyfit(np.log(sizes), np.log(widths), 1)[0])
    return np.asarray(slopes)


def _figure(by_n, m_star, slope, intercept, threshold, dim):
    """Left: fraction of seeds reaching the tolerance against width, per N. Right: m*(N) with the grid
    step below it (the threshold lies in that bracket), the fit, reference slopes 1 and 2, and the
    parameter-counting line m (d + 1) = N below which interpolation is generically impossible."""
    fractions = []
    for i, (n, rows) in enumerate(sorted(by_n.items())):
        rows = sorted(rows, key=lambda r: r["width"])
        fractions.append(Series([r["width"] for r in rows], [np.mean(r["success"]) for r in rows], f"N = {n}",
                                color=f"C{i}", marker="o"))
    fractions.append(Series([], [threshold], None, kind="hline", color="grey", style="--"))
    found = sorted(n for n in m_star if math.isfinite(m_star[n]))
    fit = []
    if found:
        ns = np.array(found, dtype=float)
        star = np.array([m_star[n] for n in found])
        below = np.array([max([r["width"] for r in by_n[n] if r["width"] < m_star[n]], default=m_star[n]) for n in found])
        fit.append(Series(ns, star, "m*(N) (bar: one grid step below)", kind="errorbar", color="k", y_low=below))
        if slope is not None:
            fit.append(Series(ns, np.exp(intercept) * ns ** slope, f"fit: slope {slope:.2f}", color="C1"))
            for ref, style in ((1, ":"), (2, "--")):
                fit.append(Series(ns, star[0] * (ns / ns[0]) ** ref, f"slope {ref}", color="k", style=style))
        fit.append(Series(ns, ns / (dim + 1), "m(d+1) = N (parameter count)", color="grey"))
    return Figure("width_scaling", [
        Panel(fractions, title="success vs width", xlabel="width m", ylabel="fraction of seeds reaching tol",
              xscale="log"),
        Panel(fit, title="width needed vs N" if found else "width needed vs N: no m* found", xlabel="samples N",
              ylabel="m*", xscale="log", yscale="log")])


register(WidthScaling2021())

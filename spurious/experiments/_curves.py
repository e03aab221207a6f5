"""Small shared pieces of the landscape studies: convergence-rate fits, JSON-safe numbers, figures,
and a batched accelerated local search with a monotone safeguard."""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np


def num(x) -> float | None:
    """A JSON-safe float (None for NaN/inf)."""
    x = float(x)
    return x if math.isfinite(x) else None


def nums(values) -> list:
    return [num(v) for v in np.asarray(values, dtype=np.float64).reshape(-1)]


def flat(prefix: str, section: dict) -> dict:
    """{prefix_key: value}: configs stay flat, so a study file can override any single setting."""
    return {f"{prefix}_{k}": v for k, v in section.items()}


def section(config: dict, prefix: str) -> dict:
    """The settings of one part of a flat config: {key: value} for every prefix_key."""
    start = prefix + "_"
    return {k[len(start):]: v for k, v in config.items() if k.startswith(start)}


def figure(width: float = 6.4, height: float = 4.2, ncols: int = 1):
    """A matplotlib Figure without pyplot's global state (safe in worker threads)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols, height), layout="constrained")
    axes = fig.subplots(1, ncols)
    return fig, axes


def fit_rate(steps, losses, floor: float = 1e-24, start: float = 1e-3) -> dict:
    """Classify the tail of a loss curve as a linear (geometric) or sublinear (power-law) rate.

    The fitted segment runs from the first point with loss <= start * loss[0] (past the initial
    transient) to the last point with loss >= floor (above the float64 round-off floor). Two models
    are fitted by least squares: log L = a - r t (linear convergence, rate r per step) and
    log L = a - p log t (sublinear, exponent p). The class is the model with the smaller residual.
    """
    t = np.asarray(steps, dtype=np.float64)
    L = np.asarray(losses, dtype=np.float64)
    ok = np.isfinite(L) & (L > 0)
    out = {"class": "undetermined", "rate": None, "exponent": None, "points": 0,
           "r2_linear": None, "r2_power": None}
    if not ok.all() or len(L) < 4:
        return out
    below = np.flatnonzero(L <= start * L[0])
    if not len(below):
        return out
    first = below[0]
    above = np.flatnonzero(L >= floor)
    last = above[-1] if len(above) else -1
    seg = np.arange(first, last + 1)
    seg = seg[t[seg] > 0]
    if len(seg) < 4:
        return out
    ts, ls = t[seg], np.log(L[seg])

    def r2(x):
        A = np.stack([np.ones_like(x), x], axis=1)
        coef, *_ = np.linalg.lstsq(A, ls, rcond=None)
        resid = ls - A @ coef
        total = np.sum((ls - ls.mean()) ** 2)
        return coef, (1.0 - np.sum(resid ** 2) / total) if total > 0 else 1.0

    lin, r2_lin = r2(ts)
    pw, r2_pow = r2(np.log(ts))
    out.update(points=int(len(seg)), r2_linear=float(r2_lin), r2_power=float(r2_pow),
               rate=float(-lin[1]), exponent=float(-pw[1]),
               segment=[float(ts[0]), float(ts[-1])])
    out["class"] = "linear" if r2_lin >= r2_pow else "sublinear"
    return out


def top_hessian_eigenvalue(grad_fn, x, iterations: int = 30):
    """Largest Hessian eigenvalue at x by power iteration on Hessian-vector products (jvp of grad)."""
    v = jnp.ones_like(x) / math.sqrt(x.size)

    def body(_, carry):
        v, _ = carry
        hv = jax.jvp(grad_fn, (x,), (v,))[1]
        norm = jnp.sqrt(jnp.sum(hv * hv))
        return hv / jnp.maximum(norm, 1e-300), norm

    _, top = jax.lax.fori_loop(0, iterations, body, (v, jnp.array(0.0)))
    return top


def safeguarded_descent(loss_and_grad, x0, warm_steps: int, steps: int, momentum: float,
                        record_every: int | None = None):
    """Local search: gradient descent for `warm_steps`, then Nesterov's accelerated gradient.

    Steps are 1/L with L the top Hessian eigenvalue (power iteration) at the start of each phase.
    Monotone safeguard: a step that raises the loss is rejected; with momentum, the velocity is
    reset (O'Donoghue & Candes function restart); without, the step size is halved. Hence the loss
    never increases, and every accepted move is a descent-type first-order step.
    Returns (x, loss, step sizes of both phases, restarts, halvings, curve) where curve samples
    the loss every `record_every` iterations of the accelerated phase (empty when None).
    """
    grad_only = lambda x: loss_and_grad(x)[1]

    def step_size(x):
        return 1.0 / jnp.maximum(top_hessian_eigenvalue(grad_only, x), 1e-12)

    def gd_body(_, carry):
        x, f, eta, halvings = carry
        _, g = loss_and_grad(x)
        x_new = x - eta * g
        f_new, _ = loss_and_grad(x_new)
        accept = f_new <= f
        return (jnp.where(accept, x_new, x), jnp.where(accept, f_new, f),
                jnp.where(accept, eta, 0.5 * eta), halvings + (~accept))

    f0, _ = loss_and_grad(x0)
    eta_warm = step_size(x0)
    x, f, _, halvings = jax.lax.fori_loop(0, warm_steps, gd_body, (x0, f0, eta_warm, 0))
    eta = step_size(x)

    def nag_body(carry, _):
        x, v, f, eta, restarts, halvings = carry
        look = x + momentum * v
        _, g = loss_and_grad(look)
        v_new = momentum * v - eta * g
        x_new = x + v_new
        f_new, _ = loss_and_grad(x_new)
        accept = f_new <= f
        plain = jnp.sum(v * v) == 0
        x = jnp.where(accept, x_new, x)
        v = jnp.where(accept, v_new, jnp.zeros_like(v))
        f = jnp.where(accept, f_new, f)
        eta = jnp.where(~accept & plain, 0.5 * eta, eta)
        return (x, v, f, eta, restarts + (~accept & ~plain), halvings + (~accept & plain)), None

    carry = (x, jnp.zeros_like(x), f, eta, 0, halvings)
    if record_every:
        def outer(carry, _):
            carry, _ = jax.lax.scan(nag_body, carry, None, length=record_every)
            return carry, carry[2]

        carry, curve = jax.lax.scan(outer, carry, None, length=steps // record_every)
    else:
        carry, _ = jax.lax.scan(nag_body, carry, None, length=steps)
        curve = jnp.zeros((0,))
    x, _, f, _, restarts, halvings = carry
    return x, f, eta_warm, eta, restarts, halvings, curve

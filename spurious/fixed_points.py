"""Critical points in fixed-point spaces of diagonal Young subgroups, at any k.

For the ReLU teacher-student loss with V = I and n = d = k, a point with isotropy
H = Delta(S_p1 x ... x S_pr) has one coordinate per orbit of H on the matrix entries, so its dimension
depends on the number of blocks, not on k (`spurious.verify_symmetric` derives the formulas). Here:
Newton's method on the restricted loss in float64 (JAX) and in high precision (Arb), continuation of a
family in k, and the symmetry-adapted Hessian spectrum: every distinct eigenvalue with its exact
multiplicity, from blocks whose size does not grow with k.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np
from flint import arb, arb_mat, ctx, fmpq

from .core import setup as _setup  # noqa: F401  (float64 before any array)
from .core.errors import SpuriousError
from . import verify_symmetric as vs
from .problems.relu_fixed_space import SpectrumBlock, SymmetricSpectrum, symmetric_spectrum  # noqa: F401

JAX_OPS = vs.Operations(sqrt=jnp.sqrt, atan2=jnp.arctan2, pi=jnp.pi)


class NotAFixedPoint(SpuriousError):
    """A point that the claimed group does not fix."""


def partition_for(k: int, small_blocks) -> tuple:
    """The partition (k - sum(small), *small) of an isotropy type given by its small blocks."""
    small = tuple(int(p) for p in small_blocks)
    if any(p < 1 for p in small):
        raise SpuriousError(f"block sizes must be positive, got {list(small)}")
    head = k - sum(small)
    if head < 1 or (small and head < max(small)):
        raise SpuriousError(f"the isotropy type with small blocks {list(small)} does not fit k = {k} "
                            f"(the largest block would have {head} points)")
    return vs.check_partition([head, *small], k)


def _structure(sizes) -> tuple:
    """What a compiled loss depends on besides numbers: the blocks, and which have off-diagonal entries."""
    return tuple(min(p, 2) for p in sizes)


@lru_cache(maxsize=None)
def _compiled_for(structure: tuple):
    def loss(values, counts):
        return vs.fixed_space_loss(structure, [values[i] for i in range(values.shape[0])], JAX_OPS,
                                   [counts[a] for a in range(len(structure))])
    return jax.jit(loss), jax.jit(jax.grad(loss)), jax.jit(jax.hessian(loss))


def _compiled(sizes: tuple):
    """Loss, gradient and Hessian of the restricted loss as functions of the coordinates alone (one
    compiled program per block structure; k enters as a number, so continuation in k compiles once)."""
    counts = jnp.asarray(sizes, dtype=jnp.float64)
    loss, grad, hessian = _compiled_for(_structure(sizes))
    return (lambda x: loss(x, counts)), (lambda x: grad(x, counts)), (lambda x: hessian(x, counts))


def restricted_loss(sizes, values) -> float:
    return float(_compiled(tuple(sizes))[0](jnp.asarray(values, dtype=jnp.float64)))


def restricted_gradient(sizes, values) -> np.ndarray:
    return np.asarray(_compiled(tuple(sizes))[1](jnp.asarray(values, dtype=jnp.float64)))


@dataclass(frozen=True)
class FixedPoint:
    """A critical point of the restricted loss: its partition, coordinates and what Newton reached."""

    sizes: tuple
    values: np.ndarray
    loss: float
    gradient_norm: float
    iterations: int

    @property
    def k(self) -> int:
        return sum(self.sizes)

    @property
    def name(self) -> str:
        return vs.isotropy_name(self.sizes)

    def matrix(self) -> np.ndarray:
        return vs.to_matrix(self.sizes, self.values)


def newton(sizes, start, tol: float = 1e-13, iterations: int = 60, max_step: float = 0.5) -> FixedPoint:
    """Newton's method on grad L = 0 in float64, with steps capped at max_step (max-norm)."""
    sizes = vs.check_partition(list(sizes))
    _, grad, hessian = _compiled(sizes)
    x = jnp.asarray(start, dtype=jnp.float64)
    if x.shape != (len(vs.coordinates(sizes)),):
        raise SpuriousError(f"a point of Fix({vs.block_name(sizes)}) has {len(vs.coordinates(sizes))} coordinates, "
                            f"got {x.shape}")
    scale = _gradient_scale(sizes)
    done = 0
    for done in range(1, iterations + 1):
        g = np.asarray(grad(x))
        if not np.all(np.isfinite(g)):
            raise SpuriousError("Newton left the smooth region (a neuron vanished or two became parallel)")
        if np.max(np.abs(g / scale)) <= tol:
            break
        step = np.linalg.solve(np.asarray(hessian(x)), g)
        largest = np.max(np.abs(step))
        if largest <= 4e-16 * max(1.0, float(np.max(np.abs(x)))):  # at rounding level: float64 is done
            x = x - step
            break
        if largest > max_step:
            step *= max_step / largest
        x = x - step
    g = np.asarray(grad(x))
    return FixedPoint(sizes, np.asarray(x), restricted_loss(sizes, x), float(np.max(np.abs(g / scale))), done)


def _gradient_scale(sizes) -> np.ndarray:
    """Orbit sizes: grad L_c = sum over the orbit of grad F, so grad L / size is a gradient entry of F."""
    return np.array([vs.orbit_size(sizes, c) for c in vs.coordinates(sizes)], dtype=np.float64)


def high_precision_newton(point: FixedPoint, bits: int = 256, iterations: int = 8) -> FixedPoint:
    """Newton in Arb at `bits` bits (gradient and Hessian from second-order jets), rounded to float64.

    Float64 arithmetic cannot resolve the restricted gradient at large k (its terms are of size k^2 and
    cancel); the rounded result is the float64 point nearest the critical point."""
    old = ctx.prec
    ctx.prec = bits
    try:
        x = [arb(fmpq(*float(v).as_integer_ratio())) for v in point.values]
        for _ in range(iterations):
            jet = vs.jet_of_loss(point.sizes, x)
            if not all(h.is_finite() for row in jet.h for h in row):
                raise SpuriousError("high-precision Newton left the smooth region")
            try:
                step = arb_mat(jet.h).solve(arb_mat([[g] for g in jet.g]))
            except ZeroDivisionError:
                raise SpuriousError("high-precision Newton: the restricted Hessian is singular (to the working "
                                    "precision) at the point") from None
            x = [(xi - step[i, 0]).mid() for i, xi in enumerate(x)]
        values = np.array([float(v) for v in x])
        jet = vs.jet_of_loss(point.sizes, [arb(fmpq(*float(v).as_integer_ratio())) for v in values])
        gradient = max(abs(float(g.mid())) / s for g, s in zip(jet.g, _gradient_scale(point.sizes)))
        loss = float(jet.v.mid())
    finally:
        ctx.prec = old
    return FixedPoint(point.sizes, values, loss, gradient, point.iterations)


def precise_loss(sizes, values, bits: int = 256, digits: int = 16) -> str:
    """L at the float64 coordinates, evaluated in Arb (float64 loses digits at large k), as a decimal."""
    old = ctx.prec
    ctx.prec = bits
    try:
        ops = vs.Operations(sqrt=lambda x: x.sqrt(), atan2=arb.atan2, pi=arb.pi())
        loss = vs.fixed_space_loss(tuple(sizes), [arb(fmpq(*float(v).as_integer_ratio())) for v in values], ops)
        return loss.mid().str(digits, radius=False)
    finally:
        ctx.prec = old


def extrapolate_loss(ks, losses, fit_points: int = 8, times_k: bool = True) -> dict | None:
    """k x loss (or, with times_k=False, the loss) extrapolated to k -> infinity: least squares in powers
    of 1/sqrt(k) (Arjevani & Field's families are power series in 1/sqrt(k)) on the `fit_points` largest
    k, degrees 2 and 3; the limit is the degree-3 value and the error estimate the difference."""
    ks = np.asarray(ks, dtype=np.float64)
    scaled = (ks if times_k else 1.0) * np.array([float(v) for v in losses])
    order = np.argsort(ks)[-fit_points:]
    if len(order) < 6:
        return None
    t = 1 / np.sqrt(ks[order])
    limits = []
    for degree in (2, 3):
        coefficients = np.polynomial.polynomial.polyfit(t, scaled[order], degree)
        limits.append(float(coefficients[0]))
    return {"limit": limits[1], "error": abs(limits[1] - limits[0]), "of": "k x loss" if times_k else "loss",
            "method": f"fits in 1/sqrt(k) of degree 2 and 3 on k = {int(ks[order][0])}..{int(ks[order][-1])}"}


#: the ladder of k a family is continued along: every k up to here, then steps of at most this ratio
LADDER_EVERY_K_UP_TO = 20
LADDER_RATIO = 1.25


def ladder(start: int, targets) -> list[int]:
    """Every k from start + 1 to 20, then steps of at most 25%, through every target above start."""
    ks, k = [], start
    for target in sorted(set(targets)):
        while k < target:
            k = k + 1 if k < LADDER_EVERY_K_UP_TO else min(target, max(k + 1, int(k * LADDER_RATIO)))
            ks.append(k)
    return ks


def continue_in_k(point: FixedPoint, ks, small_blocks=None, previous: FixedPoint | None = None) -> list:
    """Follow a family to each k in `ks` (increasing), keeping the small blocks and growing the largest.

    The start at each new k extrapolates the last two solutions linearly in 1/k (the coordinates are
    smooth in 1/k along the families; a plain restart from the last solution also converges, slower).
    `previous`: the solution before `point` on the same family, for that extrapolation at the first step."""
    small = tuple(point.sizes[1:]) if small_blocks is None else tuple(small_blocks)
    if point.sizes[0] < max(small, default=0):
        raise SpuriousError("continuation grows the first block; put the largest block first")
    out, history = [], ([previous] if previous is not None else []) + [point]
    for k in ks:
        sizes = partition_for(k, small)
        if len(history) >= 2:
            (k1, x1), (k2, x2) = [(h.k, h.values) for h in history[-2:]]
            t1, t2, t = 1 / k1, 1 / k2, 1 / k
            start = x2 + (x2 - x1) * (t - t2) / (t2 - t1)
        else:
            start = history[-1].values
        solved = newton(sizes, start)
        if solved.gradient_norm > 1e-8:
            solved = newton(sizes, history[-1].values)
        if 1e-13 < solved.gradient_norm <= 1e-6:  # float64 cannot resolve the gradient at large k
            solved = high_precision_newton(solved)
        if solved.gradient_norm > 1e-8:
            raise SpuriousError(f"the family was lost at k = {k} (Newton's gradient {solved.gradient_norm:.1e})")
        out.append(solved)
        history.append(solved)
    return out

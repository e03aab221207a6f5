"""Multistart gradient descent: thousands of independent runs as one compiled JAX program.

Runs live in a fixed-size pool of slots. The pool advances `sync_steps` gradient steps at a time in
a compiled loop in which every slot applies its own stop rule; between syncs the host harvests the
slots that stopped and refills them with new starts, so finished runs cost no further work
(compaction), and shrinks the pool to a smaller power of two once no starts are left. Memory is
bounded by the pool, so any number of runs works.

Run r always starts from `problem.init(fold_in(PRNGKey(seed), r))`, whatever the pool size or the
chunk of runs it is computed in, so any subset of runs can be recomputed exactly.

Optional Newton switch: a run whose gradient is small and whose Hessian is positive definite is
finished by Newton's method (the point is then in a strongly convex basin, where gradient descent
would converge to the same minimizer, only slowly); see `GradientDescent.newton_switch`.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, replace
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from .core import setup as _jax
from .core.errors import SpuriousError
from .core.kernels import compiled
from .core.resources import format_bytes, require_memory
from .problems.base import Problem

STOP_NORMS = ("frobenius", "max_neuron_2pi")
#: how a run ended: the gradient criterion; the loss reached the problem's known global value (descent
#: monotone so far); still moving after max_steps; given up after max_halvings restarts
CONVERGED, AT_GLOBAL, NOT_CONVERGED, DIVERGED = "converged", "global", "not_converged", "diverged"


@dataclass(frozen=True)
class GradientDescent:
    """Plain gradient descent (step 0.1, stop at 1e-9, restart with half the step above 1e4 by default).

    step: step size; grad_tol: stop once the stop norm of the gradient is <= grad_tol;
    stop_norm: 'frobenius' = ||grad F||_F or 'max_neuron_2pi' = max_i ||2 pi grad_{w_i} F|| over the
    rows of a matrix parameter (the 2018 ReLU code's measure); None: the problem's own `stop_norm`
    (`for_problem` fills it in; results always record the norm used). divergence_threshold: a gradient norm above it restarts the run
    from its start with the step halved (at most max_halvings times, then 'diverged');
    max_steps: a run still moving after this many steps is 'not_converged'.
    newton_switch: once a run's stop norm is below this value and gradient descent has settled
    into steady linear convergence (the norm shrinks by the same factor over two successive
    syncs, as it does near a nondegenerate minimum), try chord-Newton (`newton_iterations`
    steps with the Hessian of the starting point); it finishes the run only if that Hessian is
    positive definite, the stop norm reaches grad_tol, and the point moves at most
    `newton_radius`. A failed try is repeated once the norm has shrunk by `newton_retry`. Ready
    runs go on descending until a chunk of them is ready (`_newton_now`), and are tried together.
    None: pure gradient descent, as in the papers.
    global_stop: a run whose loss comes within global_stop of the problem's known global value, its
    descent monotone so far, stops there ('global'): it ends in the set of global minima, whose points
    the analysis calls global minima by their loss (Tolerances.global_loss, which must not be smaller).
    Where that set is not isolated (a student wider than the teacher) gradient descent approaches it
    sublinearly and the gradient criterion may take 10^6 steps. None: follow every run to the
    gradient criterion, as in the papers. Ignored where the global value is unknown.
    monotone_tol: a step counts as raising the loss when the loss grows by more than monotone_tol *
    max(1, F(start)) (rounding of the loss is about 1e-16 of its terms); each run records its largest
    rise (`Endpoints.loss_rise`), and only monotone runs are stopped at the global value.
    pool, sync_steps: engine sizes (slots advanced together, steps between host checks); pool None
    picks one for the device and problem (see `pool_size`).
    """

    step: float = 0.1
    grad_tol: float = 1e-9
    stop_norm: str | None = None
    max_steps: int = 1_000_000
    divergence_threshold: float = 1e4
    max_halvings: int = 30
    newton_switch: float | None = 1e-4
    newton_radius: float = 1e-2
    newton_iterations: int = 10
    newton_retry: float = 0.1
    global_stop: float | None = 1e-8
    monotone_tol: float = 1e-12
    pool: int | None = None
    sync_steps: int = 250

    def __post_init__(self):
        positive = {"step": self.step, "grad_tol": self.grad_tol, "divergence_threshold": self.divergence_threshold,
                    "newton_radius": self.newton_radius, "monotone_tol": self.monotone_tol}
        for name, value in positive.items():
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise SpuriousError(f"{name} must be a positive finite number, got {value!r}")
        for name in ("max_steps", "pool", "sync_steps", "newton_iterations"):
            value = getattr(self, name)
            if name == "pool" and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SpuriousError(f"{name} must be a positive integer, got {value!r}")
        if self.stop_norm is not None and self.stop_norm not in STOP_NORMS:
            raise SpuriousError(f"unknown stop_norm {self.stop_norm!r}: choose one of {', '.join(STOP_NORMS)}")
        if self.newton_switch is not None and not (math.isfinite(self.newton_switch) and self.newton_switch > 0):
            raise SpuriousError(f"newton_switch must be positive or None, got {self.newton_switch!r}")
        if self.global_stop is not None and not (isinstance(self.global_stop, (int, float)) and not isinstance(
                self.global_stop, bool) and math.isfinite(self.global_stop) and self.global_stop > 0):
            raise SpuriousError(f"global_stop must be a positive number or None, got {self.global_stop!r}")

    def for_problem(self, problem: Problem) -> "GradientDescent":
        """These settings with the stop norm filled in from the problem where none is named."""
        if self.stop_norm is not None:
            return self
        if problem.stop_norm not in STOP_NORMS:
            raise SpuriousError(f"{problem.name}: unknown stop_norm {problem.stop_norm!r} "
                                f"(choose one of {', '.join(STOP_NORMS)})")
        return replace(self, stop_norm=problem.stop_norm)

    def to_dict(self) -> dict:
        return asdict(self)


def protocol(problem: Problem, name: str | None = None, **overrides) -> GradientDescent:
    """The optimizer of one of the problem's named protocols (default: its `default_protocol`), with
    any GradientDescent field overridden; `newton_switch=False` and `global_stop=False` mean None
    (pure gradient descent, followed to the gradient criterion)."""
    name = problem.default_protocol if name is None else name
    protocols = problem.protocols()
    if name not in protocols:
        raise SpuriousError(f"{problem.name} has no protocol {name!r} (protocols: {', '.join(protocols)})")
    for setting in ("newton_switch", "global_stop"):
        if overrides.get(setting) is False:
            overrides[setting] = None
    fields = {f for f in GradientDescent.__dataclass_fields__}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise SpuriousError(f"unknown optimizer setting {unknown[0]!r} (settings: {', '.join(sorted(fields))})")
    try:
        return GradientDescent(**{**protocols[name], **overrides}).for_problem(problem)
    except TypeError as error:
        raise SpuriousError(f"optimizer settings: {error}") from None


@dataclass(frozen=True)
class Endpoints:
    """Where each run stopped. Arrays are indexed like `run` (global run indices)."""

    run: np.ndarray
    params: np.ndarray
    loss: np.ndarray
    grad_norm: np.ndarray  # in the optimizer's stop norm
    steps: np.ndarray
    halvings: np.ndarray
    newton: np.ndarray  # bool: finished by the Newton switch
    status: np.ndarray  # 'converged' | 'global' | 'not_converged' | 'diverged'
    seed: int | None  # None: descended from given points
    optimizer: GradientDescent
    seconds: float
    device: str = "cpu"
    #: largest single-step rise of the loss over the (last restart of the) run, relative to
    #: max(1, F(start)); -inf if it never rose, nan where not recorded (e.g. SGD endpoints)
    loss_rise: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.run)

    @property
    def monotone(self) -> np.ndarray:
        """bool per run: gradient descent never raised the loss beyond rounding (optimizer.monotone_tol)."""
        if self.loss_rise is None:
            return np.zeros(len(self.run), dtype=bool)
        return np.asarray(self.loss_rise) <= self.optimizer.monotone_tol


def stop_norm_fn(name: str) -> Callable:
    if name == "frobenius":
        return lambda g: jnp.sqrt(jnp.sum(g * g))
    return lambda g: 2.0 * math.pi * jnp.max(jnp.sqrt(jnp.sum(g.reshape(g.shape[0], -1) ** 2, axis=-1)))


def global_stop_value(settings: GradientDescent, problem: Problem) -> float | None:
    """The loss at or below which a monotone run stops at the global value (None: never)."""
    if settings.global_stop is None or problem.global_min_value is None:
        return None
    return float(problem.global_min_value) + settings.global_stop


def run_key(seed, run) -> jax.Array:
    """The random key of run `run` of seed `seed` (traceable: the start kernel compiles it)."""
    return jax.random.fold_in(jax.random.PRNGKey(seed), run)


def starts(problem: Problem, seed: int, runs) -> np.ndarray:
    """The starting points of the given run indices (deterministic in seed and run index)."""
    runs = np.asarray(runs, dtype=np.int64)
    # one compiled kernel from run index to start, always on 256 runs (padded): refills come in many
    # sizes, and compiling each (with the eager key derivation) cost 9 s of a 1000-run k = 20 call
    init = _kernel(problem, "init")
    return chunked(lambda rr: init(seed, rr), runs.astype(np.uint32), chunk=256, pad_to_chunk=True)


def hessian_kernel(problem: Problem) -> Callable:
    """The compiled batched Hessian: points (B, *shape) -> (B, *shape, *shape); reshape to (B, P, P)
    in the consuming program (see _build)."""
    return _kernel(problem, "hessians")


def _kernel(problem: Problem, what: str, *static):
    """The engine's jitted, vmapped kernels for this problem (built once, in the one kernel cache)."""
    return compiled(problem, ("optimize", what, *static), lambda: _build(problem, what, *static))


def _build(problem: Problem, what: str, *static):
    if what == "init":
        return jax.jit(jax.vmap(lambda seed, run: problem.init(run_key(seed, run)), in_axes=(None, 0)))
    if what == "loss":
        return _step_jit(problem, jax.vmap(problem.loss))
    if what == "advance":
        settings, steps_per_call = static
        return _advance_kernel(problem, settings, steps_per_call)
    if what == "hessians":
        # shaped shape + shape, in a program of its own: with the reshape to (P, P) fused into the code
        # that computes the entries, XLA:CPU emits a much slower loop (the ReLU Hessian below k = 16,
        # benchmarks/RESULTS.md); a consumer's reshape of this program's output moves nothing
        return jax.jit(jax.vmap(lambda x: problem.hessian(x).reshape(problem.shape + problem.shape)))
    if what == "newton":
        iterations, stop_norm, grad_tol, matrix_free = static
        build = _newton_cg_kernel if matrix_free else _newton_kernel
        return build(problem, iterations, stop_norm_fn(stop_norm), grad_tol)
    raise KeyError(what)


def _step_jit(problem: Problem, fn):
    """jit with the problem's compiler options for its step (those this jaxlib knows)."""
    return jax.jit(fn, compiler_options=_jax.known_compiler_options(problem.step_compiler_options))


def _advance_kernel(problem: Problem, settings: GradientDescent, steps_per_call: int):
    """Up to steps_per_call gradient steps of every live slot. Each step evaluates the loss with the
    gradient: `previous` is the loss before the last step (inf right after a start or restart),
    `rise` the largest increase so far relative to `scale` = max(1, F(start)). A slot stops
    ('done') when its gradient meets the criterion (reason 1) or, with monotone descent, its loss
    reaches the global value (reason 2)."""
    norm = stop_norm_fn(settings.stop_norm)
    batched = problem.loss_and_grad_batch
    batched_norm = jax.vmap(norm)
    expand = (slice(None),) + (None,) * len(problem.shape)
    global_value = global_stop_value(settings, problem)

    def body(carry):
        i, params, start, step, steps, halvings, done, reason, gnorm, previous, rise, scale = carry
        value, grads = batched(params)
        gnorm = batched_norm(grads)
        active = ~done & (steps < settings.max_steps) & (halvings <= settings.max_halvings)
        blown_up = ~jnp.isfinite(gnorm) | (gnorm > settings.divergence_threshold) | ~jnp.isfinite(value)
        fresh = jnp.isinf(previous)
        scale = jnp.where(active & fresh, jnp.maximum(1.0, jnp.abs(value)), scale)
        rise = jnp.where(active & ~fresh & ~blown_up, jnp.maximum(rise, (value - previous) / scale), rise)
        converged = ~done & (gnorm <= settings.grad_tol)
        at_global = jnp.zeros_like(converged) if global_value is None else (
            ~done & ~converged & ~blown_up & (value <= global_value) & (rise <= settings.monotone_tol))
        stop = converged | at_global
        restart = active & blown_up
        move = active & ~blown_up & ~stop
        params = jnp.where(move[expand], params - step[expand] * grads,
                           jnp.where(restart[expand], start, params))
        step = jnp.where(restart, 0.5 * step, step)
        halvings = halvings + restart
        steps = steps + move
        previous = jnp.where(restart, jnp.inf, jnp.where(move, value, previous))
        rise = jnp.where(restart, -jnp.inf, rise)
        reason = jnp.where(converged, 1, jnp.where(at_global, 2, reason))
        done = done | stop
        return i + 1, params, start, step, steps, halvings, done, reason, gnorm, previous, rise, scale

    def cond(carry):
        i, _, _, _, steps, halvings, done = carry[:7]
        live = ~done & (steps < settings.max_steps) & (halvings <= settings.max_halvings)
        return (i < steps_per_call) & jnp.any(live)

    def advance(params, start, step, steps, halvings, done, reason, gnorm, previous, rise, scale):
        carry = (0, params, start, step, steps, halvings, done, reason, gnorm, previous, rise, scale)
        _, params, _, *rest = jax.lax.while_loop(cond, body, carry)
        return (params, *rest)

    return _step_jit(problem, advance)


def _newton_kernel(problem: Problem, iterations: int, norm, grad_tol: float):
    """Batched chord-Newton: one Hessian and Cholesky factor at the start, then up to `iterations`
    steps x <- x - H(x0)^{-1} grad F(x). Once the stop norm is <= grad_tol it goes on while each
    step still halves the norm, so an accepted point is a critical point to rounding and the
    analysis has nothing left to polish (its polish would build and factor the Hessian again).
    A failed factorization (Hessian not positive definite) takes no step and reports pd = False.
    Above MATRIX_FREE_LIMIT parameters the engine takes `_newton_cg_kernel` instead."""
    size = problem.size
    shape = problem.shape

    def one(params, hessian):
        factor = jnp.linalg.cholesky(hessian.reshape(size, size))
        pd = jnp.all(jnp.isfinite(factor))
        factor = jnp.where(pd, factor, jnp.eye(size))

        def cond(carry):
            i, _, _, gnorm, previous = carry
            return pd & (i < iterations) & ((gnorm > grad_tol) | (gnorm <= 0.5 * previous))

        def body(carry):
            i, x, moved, gnorm, _ = carry
            delta = jax.scipy.linalg.cho_solve((factor, True), problem.grad(x).reshape(size))
            x = x - delta.reshape(shape)
            return i + 1, x, moved + jnp.sqrt(jnp.sum(delta * delta)), norm(problem.grad(x)), gnorm

        start = (0, params, jnp.array(0.0), norm(problem.grad(params)), jnp.array(jnp.inf))
        _, x, moved, gnorm, _ = jax.lax.while_loop(cond, body, start)
        return x, pd, moved, gnorm

    finish = jax.jit(jax.vmap(one))
    hessians = hessian_kernel(problem)
    return lambda params: finish(params, hessians(params))


#: inexact Newton: each step solves H delta = g to this relative residual by conjugate gradients
#: (the gradient norm then shrinks by about this factor a step, from 1e-4 to rounding in 2-3 steps)
NEWTON_CG_TOL = 1e-6
NEWTON_CG_MAXITER = 2000


def _newton_cg_kernel(problem: Problem, iterations: int, norm, grad_tol: float):
    """Batched Newton with conjugate-gradient steps on Hessian-vector products (JAX's cg): no P x P
    matrix, for problems too large for dense Hessians. The Hessian is taken at each iterate (a fresh
    Krylov space costs what a chord step would). Conjugate gradients presume a positive definite
    Hessian; pd is False (and the point left as it was) unless every step has g . delta > 0 and
    delta . H delta > 0, i.e. positive curvature along the steps taken. That is weaker than a
    factorization: the engine only calls this in steady linear convergence, where gradient descent
    itself shows the basin to be a minimum's, and the analysis classifies every endpoint by its own
    spectrum (Lanczos)."""
    size = problem.size
    shape = problem.shape

    def one(params):
        def hvp(x):
            return lambda v: jax.jvp(problem.grad, (x,), (v.reshape(shape),))[1].reshape(size)

        def cond(carry):
            i, _, _, gnorm, previous, pd = carry
            return pd & (i < iterations) & ((gnorm > grad_tol) | (gnorm <= 0.5 * previous))

        def body(carry):
            i, x, moved, gnorm, _, pd = carry
            g = problem.grad(x).reshape(size)
            product = hvp(x)
            delta, _ = jax.scipy.sparse.linalg.cg(product, g, tol=NEWTON_CG_TOL, maxiter=NEWTON_CG_MAXITER)
            curved = (jnp.dot(g, delta) > 0) & (jnp.dot(delta, product(delta)) > 0) & jnp.all(jnp.isfinite(delta))
            x = jnp.where(curved, x - delta.reshape(shape), x)
            return (i + 1, x, moved + jnp.sqrt(jnp.sum(delta * delta)), norm(problem.grad(x)), gnorm, pd & curved)

        start = (0, params, jnp.array(0.0), norm(problem.grad(params)), jnp.array(jnp.inf), jnp.array(True))
        _, x, moved, gnorm, _, pd = jax.lax.while_loop(cond, body, start)
        return jnp.where(pd, x, params), pd, moved, gnorm

    return jax.jit(jax.vmap(one))


def chunked(fn, array: np.ndarray, chunk: int = 32, pad_to_chunk: bool = False):
    """Apply a batched kernel in chunks of at most `chunk` (padded to a power of two, or to
    `chunk` itself, so few distinct sizes are compiled, and memory stays bounded)."""
    if not pad_to_chunk:
        chunk = min(chunk, _bucket(len(array), chunk, smallest=1))
    outs = []
    for lo in range(0, len(array), chunk):
        part = array[lo: lo + chunk]
        padded = np.concatenate([part, np.repeat(part[-1:], chunk - len(part), axis=0)])
        result = fn(padded)  # NumPy goes straight to the device; jnp.asarray compiled a copy per shape
        outs.append(jax.tree_util.tree_map(lambda a: np.asarray(a)[: len(part)], result))
    return jax.tree_util.tree_map(lambda *parts: np.concatenate(parts), *outs)


#: points whose losses `losses` takes at once
LOSS_CHUNK = 256


def losses(problem: Problem, points: np.ndarray, chunk: int = LOSS_CHUNK) -> np.ndarray:
    """The loss at each point, by the engine's compiled loss kernel in chunks of `chunk` (padded: the
    engine and the analysis share one compiled size). Chunked, because one batched call over all R
    points would hold every point's pairwise intermediates at once (about 20x the points at k = 6)."""
    points = np.asarray(points, dtype=np.float64)
    if not len(points):
        return np.zeros(0)
    return chunked(_kernel(problem, "loss"), points, chunk=chunk, pad_to_chunk=True)


def _bucket(count: int, pool: int, smallest: int = 8) -> int:
    """Smallest power of two >= count (at least `smallest`, at most pool): few compiled sizes."""
    size = smallest
    while size < count:
        size *= 2
    return min(size, pool)


def _newton_now(waited: np.ndarray, live: int) -> np.ndarray:
    """The slots to try Newton on now, given how many syncs each has waited since it became ready
    (-1: not ready) and the number of live runs. A try costs about the same for one point as for a
    full chunk (padded to HESSIAN_CHUNK), and a waiting run goes on descending in a slot that the pool
    steps anyway; so tries wait for full chunks, but at most NEWTON_WAIT syncs, and not once half of
    the live runs are waiting (then nothing else keeps the pool busy)."""
    ready = np.flatnonzero(waited >= 0)
    if len(ready) % HESSIAN_CHUNK and waited.max() < NEWTON_WAIT and 2 * len(ready) < live:
        ready = ready[: len(ready) - len(ready) % HESSIAN_CHUNK]
    return ready


def _shrunk(pool: int, live: int, smallest: int = 4, factor: int = 4) -> int:
    """Pool size once no starts are left: divide by `factor` while `live` runs still fit (not below
    `smallest`). Finished runs left in the pool cost a full step each until it shrinks; each new
    size costs a compile (about 0.3 s at k = 6, 0.6 s at k = 20)."""
    while pool // factor >= max(live, smallest):
        pool //= factor
    return pool


def pool_size(settings: GradientDescent, problem: Problem, platform: str) -> int:
    """The pool: settings.pool when given; else 1024 slots, or 256 on the CPU once a run has >= 300
    parameters. There the rate per slot is flat from 256 slots up (k = n = 20: 1.9e5 slot-steps/s
    at 256, 1.8e5 at 1024), and a pool smaller than the number of runs refills finished slots
    instead of carrying them: 1000 runs at k = 20 take 70 s instead of 80 s (equal at k = 16)."""
    if settings.pool is not None:
        return settings.pool
    return 256 if platform == "cpu" and problem.size >= 300 else 1024


def _shrink_factor(problem: Problem) -> int:
    """Halve the pool when a step is costly (k = n = 20: 29% -> 16% idle slot-steps, about 15% less
    time), quarter it when compiles dominate (k = n = 6: one run-step costs about a tenth)."""
    return 2 if problem.size >= 100 else 4


#: seeds are 64-bit signed integers (the random key's seed)
MAX_SEED = 2**63
#: run indices are 32-bit (the key of run r is derived from (seed, r))
MAX_RUNS = 2**32
#: newton tries and the analysis's spectra take Hessians in chunks of this many points
HESSIAN_CHUNK = 16
#: syncs a run ready for a Newton try may wait for others to fill a chunk
NEWTON_WAIT = 4
#: above this many parameters no dense Hessian is formed: the engine's Newton steps (conjugate gradients),
#: the analysis's polish (MINRES) and spectra (Lanczos) use Hessian-vector products (at 4000 a chunk of
#: dense Hessians holds 2 GiB)
MATRIX_FREE_LIMIT = 4000
#: vectors the analysis's Krylov methods hold for one point (Lanczos basis and deflated vectors)
KRYLOV_VECTORS = 64
#: parameter-sized arrays one point of a batched conjugate-gradient Newton step holds
NEWTON_CG_VECTORS = 8


def memory_need(problem: Problem, runs: int, pool: int) -> tuple[int, str]:
    """An upper estimate of the bytes a multistart and its analysis hold at once, and how it is made
    up: per run, the endpoint, its polished copy and its start (8 bytes a parameter) and about 256
    bytes of records; per pool slot, about eight parameter-sized arrays; the dense Hessians of one
    chunk, with the eigensolver's workspace (three times), or above MATRIX_FREE_LIMIT the Krylov vectors:
    a chunk's conjugate-gradient Newton steps and one point's Lanczos basis."""
    size = int(problem.size)
    per_run = 3 * 8 * size + 256
    per_slot = 8 * 8 * size
    if size > MATRIX_FREE_LIMIT:
        hessians = (HESSIAN_CHUNK * NEWTON_CG_VECTORS + KRYLOV_VECTORS) * 8 * size
        what = f"{format_bytes(hessians)} for the Krylov vectors"
    else:
        hessians = 3 * HESSIAN_CHUNK * 8 * size * size
        what = f"{format_bytes(hessians)} for the dense Hessians of {HESSIAN_CHUNK} points"
    need = runs * per_run + min(pool, runs) * per_slot + hessians
    return need, f"{size:,} parameters: {format_bytes(per_run)} per run, {what}"


def check_fits(problem: Problem, runs: int, first_run: int = 0, optimizer: GradientDescent | None = None,
               device=None):
    """Refuse, before anything is allocated, runs whose indices cannot be represented or whose
    endpoints and Hessians cannot be held by the machine, or by `device` (a jax.Device) where it is an
    accelerator (SpuriousError: the estimate and the limit)."""
    settings = (optimizer or protocol(problem)).for_problem(problem)
    platform = "cpu" if device is None else device.platform
    need, detail = memory_need(problem, runs, pool_size(settings, problem, platform))
    require_memory(need, f"{runs:,} runs of {problem.name} ({detail})", device)
    if first_run < 0 or first_run + runs > MAX_RUNS:
        raise SpuriousError(f"runs {first_run}..{first_run + runs - 1}: run indices must lie in 0..{MAX_RUNS - 1} "
                            f"(each run's start is keyed by a 32-bit index)")


def multistart(
    problem: Problem,
    runs: int,
    seed: int = 0,
    optimizer: GradientDescent | None = None,
    device: str = "auto",
    first_run: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> Endpoints:
    """Optimize `runs` random starts (run indices first_run .. first_run+runs-1) to their endpoints."""
    settings = (optimizer or protocol(problem)).for_problem(problem)
    if isinstance(runs, bool) or not isinstance(runs, (int, np.integer)) or runs < 1:
        raise SpuriousError(f"runs must be a positive integer, got {runs!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < MAX_SEED:
        raise SpuriousError(f"seed must be an integer in 0..2^63-1, got {seed!r}")
    jax_device = _jax.resolve_device(device)
    check_fits(problem, int(runs), int(first_run), settings, jax_device)
    run_ids = np.arange(first_run, first_run + runs, dtype=np.int64)
    started = time.perf_counter()
    with jax.default_device(jax_device):
        result = _descend(problem, lambda positions: starts(problem, int(seed), run_ids[positions]), int(runs),
                          settings, progress, jax_device.platform)
    return Endpoints(run=run_ids, **result, seed=int(seed), optimizer=settings,
                     seconds=time.perf_counter() - started, device=jax_device.platform)


def descend(problem: Problem, points, optimizer: GradientDescent | None = None, device: str = "auto",
            progress: Callable[[int, int], None] | None = None) -> Endpoints:
    """Gradient descent from the given starting points (an array of shape (R, *problem.shape)), by the
    same engine and stop rules as `multistart`; runs are numbered 0..R-1 and `seed` is None."""
    settings = (optimizer or protocol(problem)).for_problem(problem)
    try:
        points = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError):
        raise SpuriousError("starting points must be a numeric array") from None
    if points.ndim != 1 + len(problem.shape) or tuple(points.shape[1:]) != tuple(problem.shape) or not len(points):
        raise SpuriousError(f"starting points must have shape (R, {', '.join(map(str, problem.shape))}) with R >= 1, "
                            f"got {points.shape}")
    if not np.all(np.isfinite(points)):
        raise SpuriousError("starting points contain NaN or infinity")
    jax_device = _jax.resolve_device(device)
    check_fits(problem, len(points), 0, settings, jax_device)
    started = time.perf_counter()
    with jax.default_device(jax_device):
        result = _descend(problem, lambda positions: points[positions], len(points), settings, progress,
                          jax_device.platform)
    return Endpoints(run=np.arange(len(points), dtype=np.int64), **result, seed=None, optimizer=settings,
                     seconds=time.perf_counter() - started, device=jax_device.platform)


def _descend(problem, start_points, runs, settings, progress, platform):
    """The pool driver: runs 0..runs-1 start from start_points(positions) (an array of positions in
    0..runs-1), advance in a pool of slots, and end by the settings' stop rules."""
    shape = problem.shape
    out_params = np.zeros((runs, *shape))
    out_gnorm = np.full(runs, np.inf)
    out_steps = np.zeros(runs, dtype=np.int64)
    out_halvings = np.zeros(runs, dtype=np.int64)
    out_newton = np.zeros(runs, dtype=bool)
    out_status = np.empty(runs, dtype=object)
    out_rise = np.full(runs, -np.inf)

    largest_pool = pool_size(settings, problem, platform)
    pool = _bucket(runs, largest_pool)
    shrink_factor = _shrink_factor(problem)
    slot_run = np.full(pool, -1, dtype=np.int64)  # position in this call's run list, -1 = empty
    params = np.zeros((pool, *shape))
    start = np.zeros((pool, *shape))
    step = np.full(pool, settings.step)
    steps = np.zeros(pool, dtype=np.int64)
    halvings = np.zeros(pool, dtype=np.int64)
    done = np.ones(pool, dtype=bool)
    reason = np.zeros(pool, dtype=np.int32)  # why a slot stopped: 1 gradient criterion, 2 global value
    gnorm = np.full(pool, np.inf)
    previous = np.full(pool, np.inf)  # loss before the last step (inf: none since the start)
    rise = np.full(pool, -np.inf)  # largest relative rise of the loss so far
    scale = np.ones(pool)  # max(1, F(start))
    newton_tried_at = np.full(pool, np.inf)
    previous_gnorm = np.full(pool, np.inf)  # stop norm at the last sync
    previous_rate = np.full(pool, np.inf)  # its shrink factor over the sync before
    waited = np.full(pool, -1)  # syncs since the run became ready for a Newton try (-1: not ready)
    next_run, finished = 0, 0

    def refill(slots):
        nonlocal next_run
        take = slots[: max(0, min(len(slots), runs - next_run))]
        if len(take):
            fresh = start_points(np.arange(next_run, next_run + len(take)))
            params[take] = fresh
            start[take] = fresh
            slot_run[take] = np.arange(next_run, next_run + len(take))
            step[take] = settings.step
            steps[take] = 0
            halvings[take] = 0
            done[take] = False
            reason[take] = 0
            gnorm[take] = np.inf
            previous[take] = np.inf
            rise[take] = -np.inf
            scale[take] = 1.0
            newton_tried_at[take] = np.inf
            previous_gnorm[take] = np.inf
            previous_rate[take] = np.inf
            waited[take] = -1
            next_run += len(take)

    def harvest(slots, status, by_newton=False):
        nonlocal finished
        for slot in slots:
            r = slot_run[slot]
            out_params[r] = params[slot]
            out_gnorm[r] = gnorm[slot]
            out_steps[r] = steps[slot]
            out_halvings[r] = halvings[slot]
            out_newton[r] = by_newton
            out_status[r] = status
            out_rise[r] = rise[slot]
            slot_run[slot] = -1
            done[slot] = True
            waited[slot] = -1
        finished += len(slots)

    refill(np.arange(pool))
    while finished < runs:
        advance = _kernel(problem, "advance", settings, settings.sync_steps)
        result = advance(params, start, step, steps, halvings, done, reason, gnorm, previous, rise, scale)
        params, step, steps, halvings, new_done, reason, gnorm, previous, rise, scale = (np.array(a) for a in result)
        occupied = slot_run >= 0
        converged = occupied & new_done & (reason == 1)
        at_global = occupied & new_done & (reason == 2)
        diverged = occupied & ~new_done & (halvings > settings.max_halvings)
        exhausted = occupied & ~new_done & ~diverged & (steps >= settings.max_steps)
        done = ~occupied | new_done
        harvest(np.flatnonzero(converged), CONVERGED)
        harvest(np.flatnonzero(at_global), AT_GLOBAL)
        harvest(np.flatnonzero(diverged), DIVERGED)
        harvest(np.flatnonzero(exhausted), NOT_CONVERGED)

        if settings.newton_switch is not None:
            live = slot_run >= 0
            # Steady linear convergence: the cheap sign (no Hessian) that a run sits in the basin of a
            # nondegenerate minimum, where a Newton try almost always succeeds; on plateaus and near
            # saddles the rate wanders, and a try would waste a Hessian factorization.
            with np.errstate(invalid="ignore", divide="ignore"):
                rate = np.where(np.isfinite(previous_gnorm), gnorm / previous_gnorm, np.inf)
                steady = (rate < 1.0) & (np.abs(rate - previous_rate) <= 0.05 * rate)
            previous_rate = np.where(np.isfinite(rate), rate, np.inf)
            previous_gnorm = gnorm.copy()
            waited[waited >= 0] += 1
            waited[(waited < 0) & live & steady & (gnorm <= settings.newton_switch)
                   & (gnorm <= settings.newton_retry * newton_tried_at)] = 0
            ready = _newton_now(waited, int(live.sum()))
            if len(ready):
                waited[ready] = -1
                newton_tried_at[ready] = gnorm[ready]
                newton = _kernel(problem, "newton", settings.newton_iterations, settings.stop_norm, settings.grad_tol,
                                 problem.size > MATRIX_FREE_LIMIT)
                # always in chunks of HESSIAN_CHUNK (padded): one compiled size, and on the CPU XLA compiles
                # the Hessians of a batch of 16 into vectorized code, 2-4x faster per point than batches of 1-8
                x, pd, moved, final_norm = chunked(newton, params[ready], chunk=HESSIAN_CHUNK, pad_to_chunk=True)
                accept = pd & np.isfinite(final_norm) & (final_norm <= settings.grad_tol) & (
                    moved <= settings.newton_radius)
                accepted = ready[accept]
                params[accepted] = x[accept]
                gnorm[accepted] = final_norm[accept]
                harvest(accepted, CONVERGED, by_newton=True)

        free = np.flatnonzero(slot_run < 0)
        if next_run < runs:
            refill(free)
        else:
            live = np.flatnonzero(slot_run >= 0)
            target = _shrunk(len(slot_run), len(live), factor=shrink_factor)
            if len(live) and target < len(slot_run):
                keep = np.concatenate([live, free[: target - len(live)]])
                (slot_run, params, start, step, steps, halvings, done, reason, gnorm, previous, rise, scale,
                 newton_tried_at, previous_gnorm, previous_rate, waited) = (
                    a[keep] for a in (slot_run, params, start, step, steps, halvings, done, reason, gnorm, previous,
                                      rise, scale, newton_tried_at, previous_gnorm, previous_rate, waited))
        if progress is not None:
            progress(finished, runs)

    # a pool chosen smaller than LOSS_CHUNK (to fit memory) bounds the losses' batch too
    return dict(params=out_params, loss=losses(problem, out_params, chunk=min(LOSS_CHUNK, largest_pool)),
                grad_norm=out_gnorm, steps=out_steps, halvings=out_halvings, newton=out_newton,
                status=out_status.astype(str), loss_rise=out_rise)

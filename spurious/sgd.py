"""Learning from samples: many seeds (or configurations) trained at once by mini-batch SGD or
full-batch GD, as one compiled JAX program.

Everything here is a pure function of its arguments:

* data makers turn a seed into arrays (`stream_key(seed, name)` gives independent, reproducible
  random streams per purpose: "train", "test", "init", "labels", ...);
* `train_many(loss_fn, params, data, optimizer, steps, batch, key)` trains a batch of parameter
  pytrees (leading member axis) with an optax optimizer: a `jax.vmap` over members inside a jitted
  `lax.scan` over steps. Mini-batches are drawn without replacement, a fresh permutation per epoch,
  from each member's own key stream; `batch=None` is full-batch gradient descent. The full training
  loss is recorded every `record_every` steps (the loss curve). Members differ by their start, their
  data (`data_axis=0`) and, through optax.inject_hyperparams, their optimizer settings
  (`hyperparams`), so a grid of seeds and configurations is one program.

Optimizers come from optax (`optimizer(spec)` builds one from a JSON-able spec such as
{"name": "sgd", "learning_rate": 0.05}); any optax transformation works, including ones that need
the loss value and a value function at each step (optax.lbfgs).
"""
from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .core import setup as _jax  # noqa: F401  (float64)
from .core.errors import SpuriousError


# -- randomness and data: defined with the landscapes they build (spurious.problems.samples) -----
from .problems.samples import cube, cube_points, gaussian, parity, random_signs, random_subset, stream_key  # noqa: E402,F401


# -- settings checks (experiment configs can be overridden from a study file) ----------------------
def positive_int(config: dict, *names: str) -> None:
    for name in names:
        value = config[name]
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise SpuriousError(f"{name} must be a positive integer, got {value!r}")


def positive_number(config: dict, *names: str) -> None:
    for name in names:
        value = config[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0 < value < float("inf")):
            raise SpuriousError(f"{name} must be a positive finite number, got {value!r}")


def non_negative_int(config: dict, *names: str) -> None:
    for name in names:
        value = config[name]
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise SpuriousError(f"{name} must be a non-negative integer, got {value!r}")


def number_list(config: dict, name: str, integer: bool = False, minimum: float = 0.0) -> None:
    """config[name] is a non-empty list of numbers >= minimum (integers if `integer`), without repeats."""
    values = config[name]
    kinds = (int,) if integer else (int, float)
    if (not isinstance(values, list) or not values or len(set(values)) != len(values)
            or any(isinstance(v, bool) or not isinstance(v, kinds) or not (minimum <= v < float("inf")) for v in values)):
        what = "integers" if integer else "numbers"
        raise SpuriousError(f"{name} must be a non-empty list of distinct {what} >= {minimum:g}, got {values!r}")


# -- optimizers ----------------------------------------------------------------------------------
def optimizer(spec: dict) -> optax.GradientTransformation:
    """An optax optimizer from a JSON-able spec: {"name": <optax function>, **its keyword arguments}."""
    if not isinstance(spec, dict) or "name" not in spec:
        raise SpuriousError(f"an optimizer spec is a dict with a 'name', got {spec!r}")
    settings = dict(spec)
    name = settings.pop("name")
    factory = getattr(optax, str(name), None) if not str(name).startswith("_") else None
    if not callable(factory):
        raise SpuriousError(f"optax has no optimizer {name!r}")
    try:
        transformation = factory(**settings)
    except (TypeError, ValueError) as error:  # wrong or missing keyword arguments
        raise SpuriousError(f"optimizer spec {spec!r}: {error}") from None
    if not isinstance(transformation, optax.GradientTransformation):
        raise SpuriousError(f"optax.{name} is not an optimizer (it returned {type(transformation).__name__})")
    return transformation


def jsonable(values) -> list | float | None:
    """An array as nested lists of floats with None for NaN/inf (study results are strict JSON)."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 0:
        return float(array) if np.isfinite(array) else None
    return [jsonable(v) for v in array] if array.ndim > 1 else [float(v) if np.isfinite(v) else None for v in array]


# -- training ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Training:
    """What `train_many` returns. Arrays have a leading member axis (one row per trained member)."""

    params: Any  # pytree of final parameters
    losses: np.ndarray  # (members, records): full training loss at `steps`
    steps: np.ndarray  # (records,): step count of each record (0 = initial point)
    seconds: float
    stopped: np.ndarray  # (members,): steps each member took (< steps: stopped by stop_below)
    #: (members, records): running mean of the mini-batch losses seen so far, each taken before its
    #: update (the online loss of SGD; NaN at step 0); with batch None, of the full losses
    online: np.ndarray | None = None


def members_of(params) -> int:
    leaves = jax.tree_util.tree_leaves(params)
    if not leaves:
        raise SpuriousError("params must be a non-empty pytree of arrays")
    sizes = {np.shape(leaf)[0] if np.ndim(leaf) else None for leaf in leaves}
    if len(sizes) != 1 or None in sizes:
        raise SpuriousError(f"every params leaf needs the same leading member axis, got sizes {sizes}")
    return sizes.pop()


def train_many(
    loss_fn: Callable[..., jax.Array],
    params,
    data: Sequence[jax.Array],
    optimizer: optax.GradientTransformation,
    steps: int,
    batch: int | None = None,
    key: int | jax.Array = 0,
    *,
    data_axis: int | None = None,
    record_every: int | None = None,
    stop_below=None,
    hyperparams: dict | None = None,
) -> Training:
    """Train every member of a batch of parameter pytrees with `optimizer` for `steps` steps.

    loss_fn(p, *arrays) -> scalar: the mean loss of one member's parameters on samples (arrays with a
    leading sample axis). params: pytree whose leaves have a leading member axis. data: tuple of
    arrays, shared by all members (data_axis=None, leading axis = samples) or one dataset per member
    (data_axis=0, leading axes = members, samples). batch: mini-batch size (each epoch a fresh
    permutation, the last incomplete batch dropped), or None for full-batch gradient descent.
    key: int seed or PRNG key for the mini-batch order; member i uses fold_in(key, i).
    record_every: record the full training loss every this many steps (default: only at the
    start and the end); it must divide `steps`.
    stop_below: a member stops (its parameters freeze) at the first record where its full training
    loss is <= stop_below (a number, or one per member); later records repeat that loss, and
    `Training.stopped` gives the step. The whole batch ends once every member has stopped.
    hyperparams: {name: one value per member} for an optimizer built with optax.inject_hyperparams
    (e.g. {"learning_rate": [0.01, 0.1]}), so members with different settings train in one program.
    """
    for name, value in (("steps", steps),) + ((("batch", batch),) if batch is not None else ()):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise SpuriousError(f"{name} must be a positive integer, got {value!r}")
    record_every = int(steps if record_every is None else record_every)
    if record_every < 1 or steps % record_every:
        raise SpuriousError(f"record_every ({record_every}) must be a positive divisor of steps ({steps})")
    if data_axis not in (None, 0):
        raise SpuriousError(f"data_axis must be None (shared data) or 0 (one dataset per member), got {data_axis!r}")
    data = tuple(jnp.asarray(a) for a in data)
    if not data and batch is not None:
        raise SpuriousError("mini-batches need data arrays to draw from (data is empty)")
    members = members_of(params)
    sample_axis = 0 if data_axis is None else 1
    samples = {a.shape[sample_axis] for a in data} or {1}  # no data: loss_fn(p) alone, full batch
    if len(samples) != 1:
        raise SpuriousError(f"data arrays disagree on the number of samples: {samples}")
    samples = samples.pop()
    if data_axis == 0 and any(a.shape[0] != members for a in data):
        raise SpuriousError(f"data_axis=0 needs {members} datasets (one per member)")
    if batch is not None and batch > samples:
        raise SpuriousError(f"batch ({batch}) exceeds the number of samples ({samples})")
    if not isinstance(key, jax.Array):
        key = jax.random.PRNGKey(int(key))
    keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.arange(members, dtype=jnp.uint32))

    stop = jnp.broadcast_to(jnp.asarray(-jnp.inf if stop_below is None else stop_below, dtype=jnp.float64),
                            (members,))

    hyper = {}
    for name, values in (hyperparams or {}).items():
        values = jnp.asarray(values, dtype=jnp.float64)
        if values.shape != (members,):
            raise SpuriousError(f"hyperparams[{name!r}] needs one value per member ({members}), got shape {values.shape}")
        hyper[str(name)] = values
    if hyper:
        state = jax.eval_shape(optimizer.init, jax.tree_util.tree_map(lambda a: a[0], params))
        known = getattr(state, "hyperparams", None)
        if not isinstance(known, dict) or not set(hyper) <= set(known):
            raise SpuriousError(f"hyperparams {sorted(hyper)} need an optimizer from optax.inject_hyperparams "
                                f"with those settings (it has {sorted(known) if isinstance(known, dict) else 'none'})")

    run = _trainer(loss_fn, optimizer, int(steps), batch, samples, record_every, data_axis)
    started = time.perf_counter()
    final, curve, blocks, online = run(params, data, keys, stop, hyper)
    curve = np.asarray(curve)  # blocks until the computation is done
    return Training(params=jax.tree_util.tree_map(np.asarray, final), losses=curve,
                    steps=np.arange(0, steps + 1, record_every), seconds=time.perf_counter() - started,
                    stopped=np.asarray(blocks) * record_every, online=np.asarray(online))


@functools.lru_cache(maxsize=16)
def _trainer(loss_fn, optimizer, steps, batch, samples, record_every, data_axis):
    """The compiled program: a while loop over blocks of `record_every` steps (ending early once every
    member has stopped), each block a lax.scan over steps of the vmapped single-member update.
    Cached, so calls with the same loss function and optimizer object reuse the compiled program."""
    opt = optax.with_extra_args_support(optimizer)
    per_epoch = None if batch is None else samples // batch
    blocks = steps // record_every

    def member_step(p, state, perm, data, key, t):
        if batch is None:
            part = data
        else:  # t is not batched, so this stays a real branch under vmap
            epoch, i = t // per_epoch, t % per_epoch
            perm = jax.lax.cond(
                i == 0, lambda: jax.random.permutation(jax.random.fold_in(key, epoch), samples), lambda: perm)
            index = jax.lax.dynamic_slice_in_dim(perm, i * batch, batch)
            part = tuple(jnp.take(a, index, axis=0) for a in data)

        def value_fn(q):
            return loss_fn(q, *part)

        value, grad = jax.value_and_grad(value_fn)(p)
        updates, state = opt.update(grad, state, p, value=value, grad=grad, value_fn=value_fn)
        return optax.apply_updates(p, updates), state, perm, value

    step_all = jax.vmap(member_step, in_axes=(0, 0, 0, data_axis, 0, None))
    loss_all = jax.vmap(lambda p, d: loss_fn(p, *d), in_axes=(0, data_axis))

    def run(params, data, keys, stop, hyper):
        members = keys.shape[0]
        first = loss_all(params, data)
        curve = jnp.full((members, blocks + 1), jnp.nan).at[:, 0].set(first)
        state = jax.vmap(opt.init)(params)
        if hyper:  # per-member settings of an inject_hyperparams optimizer
            state = state._replace(hyperparams={**state.hyperparams, **hyper})
        carry = (params, state, jnp.broadcast_to(jnp.arange(samples), (members, samples)))
        # running sum of the losses of the batches stepped on (the online loss), per member
        online = jnp.full((members, blocks + 1), jnp.nan)

        def keep_going(loop):
            r, _, _, active, _, _, _ = loop
            return (r < blocks) & jnp.any(active)

        def block(loop):
            r, carry, curve, active, done, seen, online = loop

            def step(c, t):
                p, state, perm, total = c
                p, state, perm, value = step_all(p, state, perm, data, keys, t)
                return (p, state, perm, total + value), None

            (*moved, total), _ = jax.lax.scan(step, (*carry, seen), r * record_every + jnp.arange(record_every))
            carry = jax.tree_util.tree_map(
                lambda new, old: jnp.where(active.reshape((-1,) + (1,) * (new.ndim - 1)), new, old), tuple(moved), carry)
            seen = jnp.where(active, total, seen)
            value = loss_all(carry[0], data)
            curve = curve.at[:, r + 1].set(jnp.where(active, value, curve[:, r]))
            online = online.at[:, r + 1].set(jnp.where(active, seen / ((r + 1) * record_every), online[:, r]))
            return r + 1, carry, curve, active & ~(value <= stop), done + active, seen, online

        loop = (0, carry, curve, ~(first <= stop), jnp.zeros(members, dtype=jnp.int32), jnp.zeros(members), online)
        r, (final, _, _), curve, _, done, _, online = jax.lax.while_loop(keep_going, block, loop)
        stay = jnp.arange(blocks + 1) > r  # stopped members stay put
        curve = jnp.where(stay, curve[:, r][:, None], curve)
        online = jnp.where(stay, online[:, r][:, None], online)
        return final, curve, done, online

    return jax.jit(run)


def per_member(fn: Callable, params, *arrays, data_axis: int | None = None) -> np.ndarray:
    """fn(p, *arrays) evaluated for every member of a params batch (e.g. test loss or accuracy)."""
    return np.asarray(jax.jit(jax.vmap(fn, in_axes=(0,) + (data_axis,) * len(arrays)))(params, *arrays))


def endpoints(problem, params, *, seed: int, grad_tol: float, steps, optimizer=None, runs=None, seconds: float = 0.0):
    """Trained points of one Problem as `spurious.optimize.Endpoints`, so `spurious.analyze.analyze`
    classifies them (and groups them into families) exactly as it does multistart's endpoints.

    params: (members, *problem.shape) final points; grad_tol decides the status (the Frobenius norm
    of the gradient at or below it: 'converged'; a non-finite point: 'diverged'; else 'not_converged');
    steps: steps each member took (an int or one per member); optimizer: what trained them (recorded,
    e.g. an optax spec); runs: run indices (default 0..members-1)."""
    from .optimize import CONVERGED, DIVERGED, NOT_CONVERGED, Endpoints

    params = np.asarray(params, dtype=np.float64).reshape((-1,) + tuple(problem.shape))
    members = params.shape[0]
    value_and_grad = jax.jit(jax.vmap(lambda x: (problem.loss(x), problem.grad(x))))
    loss, grad = value_and_grad(jnp.asarray(params))
    loss, grad = np.asarray(loss), np.asarray(grad).reshape(members, -1)
    grad_norm = np.sqrt(np.sum(grad * grad, axis=1))
    finite = np.isfinite(loss) & np.isfinite(grad_norm) & np.all(np.isfinite(params.reshape(members, -1)), axis=1)
    status = np.where(~finite, DIVERGED, np.where(grad_norm <= grad_tol, CONVERGED, NOT_CONVERGED))
    return Endpoints(run=np.arange(members) if runs is None else np.asarray(runs, dtype=np.int64), params=params,
                     loss=loss, grad_norm=grad_norm,
                     steps=np.broadcast_to(np.asarray(steps, dtype=np.int64), (members,)).copy(),
                     halvings=np.zeros(members, dtype=np.int64), newton=np.zeros(members, dtype=bool),
                     status=status.astype(str), seed=int(seed), optimizer=optimizer, seconds=float(seconds))


__all__ = [
    "Training", "endpoints", "cube", "cube_points", "gaussian", "jsonable", "members_of", "non_negative_int", "number_list",
    "optimizer", "parity", "per_member", "positive_int", "positive_number", "random_signs", "random_subset",
    "stream_key", "train_many",
]

"""Reproducible training samples for the finite-sample landscapes: `stream_key(seed, name)` gives
independent random streams per purpose ("train", "test", "init", "labels", ...), and the data makers
turn a seed into arrays. The landscapes of the sample-based studies draw their data here, and
spurious.sgd re-exports these for the experiments' own streams (test sets, starts)."""
from __future__ import annotations

import zlib
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ..core import setup as _jax  # noqa: F401  (float64)
from ..core.errors import SpuriousError


def stream_key(seed: int, stream: str) -> jax.Array:
    """The PRNG key of one named random stream of a seed (stable across runs and machines)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise SpuriousError(f"seed must be a non-negative integer, got {seed!r}")
    return jax.random.fold_in(jax.random.PRNGKey(int(seed)), zlib.crc32(stream.encode()) & 0x7FFFFFFF)


def gaussian(seed: int, shape: Sequence[int], stream: str = "train", scale: float = 1.0) -> jax.Array:
    """i.i.d. N(0, scale^2) array of the given shape."""
    return scale * jax.random.normal(stream_key(seed, stream), tuple(shape), dtype=jnp.float64)


def cube(seed: int, samples: int, dim: int, stream: str = "train") -> jax.Array:
    """`samples` points uniform on {-1, +1}^dim."""
    return jax.random.rademacher(stream_key(seed, stream), (samples, dim), dtype=jnp.float64)


def cube_points(dim: int) -> jax.Array:
    """All 2^dim points of {-1, +1}^dim; row i has x_j = +1 where bit j of i is 0, -1 where it is 1
    (the ordering of the Walsh-Hadamard transform, so row s of the transform is the parity chi_s)."""
    bits = (np.arange(2 ** dim)[:, None] >> np.arange(dim)[None, :]) & 1
    return jnp.asarray(1.0 - 2.0 * bits, dtype=jnp.float64)


def random_signs(seed: int, samples: int, stream: str = "labels") -> jax.Array:
    """`samples` i.i.d. uniform labels in {-1, +1}."""
    return jax.random.rademacher(stream_key(seed, stream), (samples,), dtype=jnp.float64)


def random_subset(seed: int, dim: int, stream: str = "subset") -> np.ndarray:
    """A uniformly random non-empty subset of {0..dim-1}, as a boolean mask (redrawn while empty)."""
    key = stream_key(seed, stream)
    for attempt in range(1000):
        mask = np.asarray(jax.random.bernoulli(jax.random.fold_in(key, attempt), 0.5, (dim,)))
        if mask.any():
            return mask
    raise SpuriousError("could not draw a non-empty subset")  # pragma: no cover (probability 2^-1000d)


def parity(x: jax.Array, mask) -> jax.Array:
    """chi_S(x) = prod_{j in S} x_j for points x in {-1, +1}^d and the subset S given as a mask."""
    mask = jnp.asarray(mask, dtype=bool)
    return jnp.prod(jnp.where(mask, x, 1.0), axis=-1)



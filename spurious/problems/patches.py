"""Filters on non-overlapping patches, the landscape of "Weight sharing is crucial to successful
optimization" (Shalev-Shwartz, Shamir & Shammah 2017).

Input: P patches x_1..x_P in R^m, i.i.d. N(0, I). A teacher filter u0 (||u0|| = filter_norm,
direction from the seed) gives h_i = tanh(u0.x_i) and the target y = (C h_1 + prod_i h_i)/(C + 1).
The model knows this readout and learns the filters: 'shared' (one filter w for every patch) or
'separate' (one w_i per patch): f(x) = (C tanh(w_1.x_1) + prod_i tanh(w_i.x_i))/(C + 1). Loss:
1/(2N) sum (f - y)^2 on N training samples. w = u0 (every w_i = u0) fits y exactly, so the global
minimum value is 0 for either model.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from ..core import setup as _setup  # noqa: F401  (float64 before any array)
from ..core.errors import SpuriousError
from . import samples as data
from .base import Problem
from .relu import _check_size

ARCHITECTURES = ("shared", "separate")


def teacher_filter(seed: int, dim: int, norm: float) -> jax.Array:
    u = data.gaussian(seed, (dim,), "filter")
    return norm * u / jnp.linalg.norm(u)


def patch_data(seed: int, samples: int, patches: int, dim: int, norm: float, c: float):
    """(x, y, low, high) for one seed: x (samples, patches, dim) Gaussian, y = (c low + high)/(c + 1)."""
    x = data.gaussian(seed, (samples, patches, dim), "train")
    h = jnp.tanh(x @ teacher_filter(seed, dim, norm))
    low, high = h[:, 0], jnp.prod(h, axis=1)
    return x, (c * low + high) / (c + 1.0), low, high


def model(filters: jax.Array, x: jax.Array, c: float) -> jax.Array:
    """f(x) for filters of shape (dim,) (shared) or (patches, dim) (separate); x (n, patches, dim)."""
    t = jnp.tanh(jnp.einsum("npm,pm->np", x, jnp.broadcast_to(filters, x.shape[1:])))
    return (c * t[:, 0] + jnp.prod(t, axis=1)) / (c + 1.0)


def loss(filters, x, y, c: float):
    return 0.5 * jnp.mean((model(filters, x, c) - y) ** 2)


def filter_shape(architecture: str, patches: int, dim: int) -> tuple[int, ...]:
    if architecture not in ARCHITECTURES:
        raise SpuriousError(f"unknown architecture {architecture!r}: choose one of {', '.join(ARCHITECTURES)}")
    return (dim,) if architecture == "shared" else (patches, dim)


def initial_filters(seed: int, shape, init_scale: float, dim: int) -> jax.Array:
    """The start of a seed: N(0, init_scale^2 I/m) filters from its 'init' stream."""
    return data.gaussian(seed, shape, "init", init_scale / math.sqrt(dim))


class WeightSharingPatches(Problem):
    """F(w) = 1/(2N) sum (f_w(x) - y)^2 for the shared or separate-filter model on patch data."""

    name = "weight-sharing-patches"
    global_min_value = 0.0

    def __init__(self, architecture: str = "shared", c: float = 1.0, patches: int = 8, dim: int = 10,
                 samples: int = 1000, filter_norm: float = 3.0, init_scale: float = 0.25, data_seed: int = 0):
        self.architecture = architecture
        self.patches = _check_size("patches", patches)
        self.dim = _check_size("dim", dim)
        self.samples = _check_size("samples", samples)
        self.shape = filter_shape(architecture, self.patches, self.dim)
        for name, value in (("c", c), ("filter_norm", filter_norm), ("init_scale", init_scale)):
            if not (math.isfinite(value) and value >= (0 if name == "c" else 1e-300)):
                raise SpuriousError(f"{name} must be {'>= 0' if name == 'c' else 'positive'} and finite, got {value!r}")
        self.c, self.filter_norm, self.init_scale = float(c), float(filter_norm), float(init_scale)
        self.data_seed = int(data_seed)
        self.inputs, self.targets, _, _ = patch_data(self.data_seed, self.samples, self.patches, self.dim,
                                                     self.filter_norm, self.c)
        self.init_std = self.init_scale / math.sqrt(self.dim)

    def loss(self, params):
        return loss(params, self.inputs, self.targets, self.c)

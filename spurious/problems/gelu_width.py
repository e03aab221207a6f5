"""A two-layer GELU network on random labels, the landscape of "Subquadratic overparameterization
for shallow neural networks" (Song et al. 2021).

x ~ N(0, I_d/d), labels uniform in {-1, +1}; f(x) = sum_j a_j gelu(w_j.x), He initialisation
(w_j ~ N(0, 2 I/d), a_j ~ N(0, 2/m)); square loss F = 1/(2N) sum (f - y)^2, both layers trained.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from ..core import setup as _setup  # noqa: F401  (float64 before any array)
from . import samples as data
from .base import Problem
from .relu import _check_size


def gelu(z):
    return jax.nn.gelu(z, approximate=False)


def network(params: dict, x: jax.Array) -> jax.Array:
    return gelu(x @ params["W"].T) @ params["a"]


def mse(params, x, y):
    return 0.5 * jnp.mean((network(params, x) - y) ** 2)


def init_network(seed: int, dim: int, width: int) -> dict:
    """He initialisation of a seed (its own streams per width): Var = 2 / fan_in for both layers."""
    return {"W": data.gaussian(seed, (width, dim), f"init-W-{width}", math.sqrt(2.0 / dim)),
            "a": data.gaussian(seed, (width,), f"init-a-{width}", math.sqrt(2.0 / width))}


def dataset(seed: int, samples: int, dim: int):
    return (data.gaussian(seed, (samples, dim), f"train-{samples}", 1.0 / math.sqrt(dim)),
            data.random_signs(seed, samples, f"labels-{samples}"))


def gauss_newton_top(params, x, iterations: int = 60) -> jax.Array:
    """Largest eigenvalue of J^T J / N (J: Jacobian of the N outputs w.r.t. all parameters), by power
    iteration with Jacobian-vector products (never forming J)."""
    flat, unravel = ravel_pytree(params)

    def outputs(f):
        return network(unravel(f), x)

    _, vjp = jax.vjp(outputs, flat)

    def apply(v):
        return vjp(jax.jvp(outputs, (flat,), (v,))[1])[0] / x.shape[0]

    def body(_, v):
        w = apply(v)
        return w / jnp.linalg.norm(w)

    v = jax.random.normal(jax.random.PRNGKey(0), flat.shape, dtype=flat.dtype)
    v = jax.lax.fori_loop(0, iterations, body, v / jnp.linalg.norm(v))
    return v @ apply(v)


class GeluRandomLabels(Problem):
    """F = 1/(2N) sum (f(x) - y)^2 for the GELU network of width m on one seed's random-label data
    (parameters flattened a, W as jax.flatten_util.ravel_pytree orders them)."""

    name = "gelu-random-labels"

    def __init__(self, dim: int = 32, samples: int = 64, width: int = 16, data_seed: int = 0):
        self.dim = _check_size("dim", dim)
        self.samples = _check_size("samples", samples)
        self.width = _check_size("width", width)
        self.data_seed = int(data_seed)
        self.inputs, self.targets = dataset(self.data_seed, self.samples, self.dim)
        flat, self._unravel = ravel_pytree(init_network(0, self.dim, self.width))
        self.shape = flat.shape

    def loss(self, params):
        return mse(self._unravel(params), self.inputs, self.targets)

    def init(self, key):
        k_w, k_a = jax.random.split(key)
        start = {"W": math.sqrt(2.0 / self.dim) * jax.random.normal(k_w, (self.width, self.dim), dtype=jnp.float64),
                 "a": math.sqrt(2.0 / self.width) * jax.random.normal(k_a, (self.width,), dtype=jnp.float64)}
        return ravel_pytree(start)[0]

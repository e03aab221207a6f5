"""A one-hidden-layer ReLU network learning a parity, the landscape of "Failures of gradient-based
deep learning" (Shalev-Shwartz, Shamir & Shammah 2017, section 2.1).

x uniform on {-1,+1}^d, y = chi_S(x) = prod_{j in S} x_j for a random non-empty subset S (drawn
from the seed); p_w(x) = a.relu(W x + b) + c of width m (default 10 d), hinge loss
F(w) = 1/N sum max(0, 1 - y p_w(x)) on N training points; starts as PyTorch's nn.Linear (weights and
biases U(+-1/sqrt(fan_in))). The parity of s = |S| bits is a function of t = sum_{j in S} x_j, and a
piecewise-linear interpolant of +-1 at the s + 1 values of t takes at most s + 1 ReLUs, so the
global minimum value is 0 once m >= d + 1.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from ..core import setup as _setup  # noqa: F401  (float64 before any array)
from . import samples as data
from .base import Problem
from .relu import _check_size


def init_network(key: jax.Array, dim: int, width: int) -> dict:
    """PyTorch nn.Linear default initialisation: weights and biases U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    k1, k2, k3, k4 = jax.random.split(key, 4)

    def uniform(k, shape, fan_in):
        return jax.random.uniform(k, shape, jnp.float64, -1.0, 1.0) / np.sqrt(fan_in)

    return {"W": uniform(k1, (width, dim), dim), "b": uniform(k2, (width,), dim),
            "a": uniform(k3, (width,), width), "c": uniform(k4, (), width)}


def network(params: dict, x: jax.Array) -> jax.Array:
    """p_w(x) = a . relu(W x + b) + c, for one point (d,) or a batch (n, d)."""
    return jax.nn.relu(x @ params["W"].T + params["b"]) @ params["a"] + params["c"]


def hinge(prediction, label):
    return jax.nn.relu(1.0 - label * prediction)


def hinge_loss(params, x, y):
    return jnp.mean(hinge(network(params, x), y))


def accuracy(params, x, y):
    return jnp.mean(jnp.where(network(params, x) >= 0, 1.0, -1.0) == y)


def training_set(seed: int, dim: int, samples: int):
    """(mask of S, x, y) of one seed: the subset and `samples` training points with their parity."""
    mask = data.random_subset(seed, dim)
    x = data.cube(seed, samples, dim, "train")
    return mask, x, data.parity(x, mask)


class ParityNetwork(Problem):
    """Hinge loss of a ReLU network on the parity of a random subset (parameters flattened W, a, b, c
    as jax.flatten_util.ravel_pytree orders them)."""

    name = "parity-network"

    def __init__(self, dim: int = 4, width: int | None = None, samples: int = 1000, data_seed: int = 0):
        self.dim = _check_size("dim", dim)
        self.width = 10 * self.dim if width is None else _check_size("width", width)
        self.samples = _check_size("samples", samples)
        self.data_seed = int(data_seed)
        self.mask, self.inputs, self.targets = training_set(self.data_seed, self.dim, self.samples)
        flat, self._unravel = ravel_pytree(init_network(jax.random.PRNGKey(0), self.dim, self.width))
        self.shape = flat.shape
        self.global_min_value = 0.0 if self.width >= self.dim + 1 else None

    def unravel(self, params) -> dict:
        return self._unravel(params)

    def loss(self, params):
        return hinge_loss(self._unravel(params), self.inputs, self.targets)

    def init(self, key):
        return ravel_pytree(init_network(key, self.dim, self.width))[0]

    def nonsmooth_reason(self, params, tol: float = 1e-12):
        p = {k: np.asarray(v) for k, v in self._unravel(jnp.asarray(params)).items()}
        x, y = np.asarray(self.inputs), np.asarray(self.targets)
        if np.any(np.abs(x @ p["W"].T + p["b"]) <= tol):
            return "a ReLU pre-activation is zero on a training point"
        if np.any(np.abs(1.0 - y * np.asarray(network(p, x))) <= tol):
            return "a hinge margin is exactly 1 on a training point"
        return None

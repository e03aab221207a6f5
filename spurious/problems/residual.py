"""Residual units versus linear predictors (Shamir 2018, "Are ResNets provably better than linear
predictors?").

Data (ours): x ~ N(0, I_d), y = sin(2 a.x) + 0.5 b.x + noise_std * eps with unit vectors a, b.
Squared loss F(theta) = 1/(2N) sum_i (p_theta(x_i) - y_i)^2 for three predictors with a ReLU branch
f(x) = relu(U x + c) of width m:

    residual   p(x) = w.(x + V f(x))          (Shamir's residual unit; params w, V, U, c)
    plain      p(x) = v.f(x)                  (control: the same branch without the skip)
    decoupled  p(x) = w.x + u.f(x)            (readout decoupled from the skip; trained by SGD)

F_lin = min_w F(x -> w.x) comes from least squares. Shamir's theorem: every local minimum of the
residual architecture has F <= F_lin. Parameters of each architecture are packed into one flat
vector (`unpack` splits it); inits are 'standard' (U ~ N(0, 1/d), c = 0, readouts N(0, 1/fan-in))
or 'dead' (c = -dead_bias and U scaled by 0.1, so that the branch is exactly zero on all data and
gradient descent can never revive it).
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from ..core import setup as _setup  # noqa: F401  (float64 before any array)
from ..core.errors import SpuriousError
from .base import Problem
from .relu import _check_size

ARCHITECTURES = ("residual", "plain", "decoupled")
#: the dead init scales U by this, so that u.x - dead_bias < 0 on all data (50 standard deviations)
DEAD_U_SCALE = 0.1
INITS = ("standard", "dead")


def layout(architecture: str, dim: int, width: int) -> dict[str, tuple[int, ...]]:
    """Names and shapes of the parameter blocks, in packing order."""
    if architecture == "residual":
        return {"w": (dim,), "V": (dim, width), "U": (width, dim), "c": (width,)}
    if architecture == "plain":
        return {"v": (width,), "U": (width, dim), "c": (width,)}
    if architecture == "decoupled":
        return {"w": (dim,), "u": (width,), "U": (width, dim), "c": (width,)}
    raise SpuriousError(f"unknown architecture {architecture!r}: choose one of {', '.join(ARCHITECTURES)}")


def unpack(flat, blocks: dict) -> dict:
    out, start = {}, 0
    for name, shape in blocks.items():
        size = math.prod(shape)
        out[name] = flat[start: start + size].reshape(shape)
        start += size
    return out


def pack(parts: dict, blocks: dict):
    return jnp.concatenate([jnp.asarray(parts[name]).reshape(-1) for name in blocks])


def branch(p, X):
    return jax.nn.relu(X @ p["U"].T + p["c"])


def predict(p: dict, X, architecture: str):
    f = branch(p, X)
    if architecture == "residual":
        return (X + f @ p["V"].T) @ p["w"]
    if architecture == "plain":
        return f @ p["v"]
    return X @ p["w"] + f @ p["u"]


def make_data(key, dim: int, samples: int, noise_std: float = 0.1):
    """x ~ N(0, I_d), y = sin(2 a.x) + 0.5 b.x + noise_std * eps; a, b unit vectors from the key.
    (One Gaussian draw, sliced: a single random-number kernel keeps compilation fast.)"""
    z = jax.random.normal(key, (2 * dim + samples * (dim + 1),), dtype=jnp.float64)
    a, b = z[:dim], z[dim: 2 * dim]
    a, b = a / jnp.linalg.norm(a), b / jnp.linalg.norm(b)
    X = z[2 * dim: 2 * dim + samples * dim].reshape(samples, dim)
    eps = z[2 * dim + samples * dim:]
    y = jnp.sin(2.0 * X @ a) + 0.5 * X @ b + noise_std * eps
    return X, y


def squared_loss(pred, y):
    r = pred - y
    return 0.5 * jnp.mean(r * r)


def loss(theta, X, y, architecture: str, blocks: dict):
    """F(theta) on the samples (X, y): the one definition of the loss, for the Problem and for training."""
    return squared_loss(predict(unpack(theta, blocks), X, architecture), y)


def zero_modes(theta, architecture: str, blocks: dict) -> np.ndarray:
    """relu(a z) = a relu(z) for a > 0: scaling unit i's input weights (U_i, c_i) by a and its readout
    (a column of V, or v_i, u_i) by 1/a leaves the predictor unchanged. Tangent at a = 1:
    (delta U_i, delta c_i, delta readout_i) = (U_i, c_i, -readout_i), one per unit."""
    parts = unpack(np.asarray(theta, dtype=np.float64), blocks)
    readout = {"residual": "V", "plain": "v", "decoupled": "u"}[architecture]
    width = parts["c"].shape[0]
    modes = []
    for i in range(width):
        delta = {name: np.zeros(shape) for name, shape in blocks.items()}
        delta["U"][i] = parts["U"][i]
        delta["c"][i] = parts["c"][i]
        if readout == "V":
            delta["V"][:, i] = -parts["V"][:, i]
        else:
            delta[readout][i] = -parts[readout][i]
        modes.append(np.concatenate([delta[name].reshape(-1) for name in blocks]))
    return np.array(modes).reshape(width, -1)


def linear_optimum(X, y):
    """(w_lin, F_lin): the best linear predictor x -> w.x by least squares."""
    w, *_ = jnp.linalg.lstsq(X, y)
    return w, squared_loss(X @ w, y)


def init_params(key, architecture: str, dim: int, width: int, init: str = "standard", dead_bias: float = 5.0):
    blocks = layout(architecture, dim, width)
    if init not in INITS:
        raise SpuriousError(f"unknown init {init!r}: choose one of {', '.join(INITS)}")
    z = unpack(jax.random.normal(key, (sum(math.prod(s) for s in blocks.values()),), dtype=jnp.float64), blocks)
    parts = {}
    for name, shape in blocks.items():
        if name == "c":
            parts[name] = jnp.full(shape, -dead_bias if init == "dead" else 0.0)
        else:
            fan_in = dim if name in ("w", "U") else width
            parts[name] = z[name] / math.sqrt(fan_in)
            if name == "U" and init == "dead":  # U.x ~ N(0, 0.01): relu(U.x - 5) is 0 on every sample
                parts[name] = DEAD_U_SCALE * parts[name]
    return pack(parts, blocks)


class ResidualUnitRegression(Problem):
    """F(theta) = 1/(2N) sum_i (p_theta(x_i) - y_i)^2 for one of the architectures above, on data
    drawn from `data_seed`. Starts are the 'standard' or 'dead' init. `linear_optimum` gives F_lin."""

    name = "residual-unit-regression"

    def __init__(self, architecture: str = "residual", dim: int = 10, width: int = 32, samples: int = 2000,
                 init: str = "standard", noise_std: float = 0.1, dead_bias: float = 5.0, data_seed: int = 0):
        self.architecture = architecture
        self.dim = _check_size("dim", dim)
        self.width = _check_size("width", width)
        self.samples = _check_size("samples", samples)
        self.blocks = layout(architecture, self.dim, self.width)
        if init not in INITS:
            raise SpuriousError(f"unknown init {init!r}: choose one of {', '.join(INITS)}")
        self.init_kind = init
        for name, value in (("noise_std", noise_std), ("dead_bias", dead_bias)):
            if not (value >= 0 and math.isfinite(value)):
                raise SpuriousError(f"{name} must be >= 0 and finite, got {value!r}")
        self.noise_std = float(noise_std)
        self.dead_bias = float(dead_bias)
        self.data_seed = int(data_seed)
        self.inputs, self.targets = make_data(jax.random.PRNGKey(self.data_seed), self.dim, self.samples, noise_std)
        self.shape = (sum(math.prod(s) for s in self.blocks.values()),)
        w, f_lin = linear_optimum(self.inputs, self.targets)
        self.linear_weights, self.linear_loss = np.asarray(w), float(f_lin)

    def params(self) -> dict:
        # `init` names the start; the attribute of that name is the Problem's init method
        return {"architecture": self.architecture, "dim": self.dim, "width": self.width, "samples": self.samples,
                "init": self.init_kind, "noise_std": self.noise_std, "dead_bias": self.dead_bias,
                "data_seed": self.data_seed}

    def zero_modes(self, params) -> np.ndarray:
        return zero_modes(params, self.architecture, self.blocks)

    def unpack(self, params) -> dict:
        return unpack(params, self.blocks)

    def predict(self, params, X=None):
        return predict(self.unpack(params), self.inputs if X is None else X, self.architecture)

    def loss(self, params):
        return loss(params, self.inputs, self.targets, self.architecture, self.blocks)

    def init(self, key):
        return init_params(key, self.architecture, self.dim, self.width, self.init_kind, self.dead_bias)

    def nonsmooth_reason(self, params, tol: float = 1e-12):
        p = self.unpack(np.asarray(params))
        pre = np.asarray(self.inputs) @ p["U"].T + p["c"]
        if np.any(np.abs(pre) <= tol):
            return "a ReLU pre-activation is zero on a data point"
        return None

"""A small CNN on random labels, the landscape of "Optimization landscape and expressivity of deep
CNNs" (Nguyen & Hein 2018).

N random side x side single-channel images (pixels N(0, 1)), labels uniform in {-1, +1}; a
kernel x kernel convolution (stride 1, no padding) with C channels, bias and softplus (n1 = C x
positions neurons), a fully connected softplus layer of fc_width units and a linear output; square
loss F = 1/(2N) sum (f - y)^2, every layer trained.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from ..core import setup as _setup  # noqa: F401  (float64 before any array)
from ..core.errors import SpuriousError
from . import samples as data
from .base import Problem
from .relu import _check_size


def images(seed: int, samples: int, side: int) -> jax.Array:
    return data.gaussian(seed, (samples, side, side), f"images-{samples}-{side}")


def patches(x: jax.Array, kernel: int) -> jax.Array:
    """(n, positions, kernel^2): every kernel x kernel patch of each image (stride 1, no padding)."""
    side = x.shape[-1] - kernel + 1
    rows = [x[:, i: i + side, j: j + side] for i in range(kernel) for j in range(kernel)]
    return jnp.stack(rows, axis=-1).reshape(x.shape[0], side * side, kernel * kernel)


def conv_features(conv: dict, p: jax.Array) -> jax.Array:
    """Softplus conv-layer outputs flattened to (n, positions x channels): the n1 neurons."""
    out = jax.nn.softplus(p @ conv["w"].T + conv["b"])
    return out.reshape(p.shape[0], -1)


def network(params: dict, p: jax.Array) -> jax.Array:
    h = conv_features(params["conv"], p)
    h = jax.nn.softplus(h @ params["fc"]["w"].T + params["fc"]["b"])
    return h @ params["out"]["w"] + params["out"]["b"]


def mse(params, p, y):
    return 0.5 * jnp.mean((network(params, p) - y) ** 2)


def training_set(seed: int, samples: int, side: int, kernel: int):
    """(patches of the images, labels) of one seed."""
    return patches(images(seed, samples, side), kernel), data.random_signs(seed, samples, f"labels-{samples}")


def init_network(seed: int, channels: int, kernel: int, positions: int, fc_width: int, filter_std: float) -> dict:
    n1 = channels * positions
    return {"conv": {"w": data.gaussian(seed, (channels, kernel * kernel), f"filters-{channels}", filter_std),
                     "b": jnp.zeros(channels)},
            "fc": {"w": data.gaussian(seed, (fc_width, n1), f"fc-{channels}", 1.0 / math.sqrt(n1)),
                   "b": jnp.zeros(fc_width)},
            "out": {"w": data.gaussian(seed, (fc_width,), f"out-{channels}", 1.0 / math.sqrt(fc_width)),
                    "b": jnp.zeros(())}}


class CNNRandomLabels(Problem):
    """F = 1/(2N) sum (f(x) - y)^2 for the conv -> fc -> linear network on one seed's random images
    and labels (parameters flattened as jax.flatten_util.ravel_pytree orders the layers)."""

    name = "cnn-random-labels"

    def __init__(self, channels: int = 2, samples: int = 40, side: int = 8, kernel: int = 3, fc_width: int = 16,
                 filter_std: float = 1.0, data_seed: int = 0):
        self.channels = _check_size("channels", channels)
        self.samples = _check_size("samples", samples)
        self.side = _check_size("side", side)
        self.kernel = _check_size("kernel", kernel)
        if self.kernel > self.side:
            raise SpuriousError(f"kernel ({self.kernel}) is larger than the image side ({self.side})")
        self.fc_width = _check_size("fc_width", fc_width)
        if not (filter_std > 0 and math.isfinite(filter_std)):
            raise SpuriousError(f"filter_std must be positive and finite, got {filter_std!r}")
        self.filter_std = float(filter_std)
        self.data_seed = int(data_seed)
        self.positions = (self.side - self.kernel + 1) ** 2
        self.inputs, self.targets = training_set(self.data_seed, self.samples, self.side, self.kernel)
        flat, self._unravel = ravel_pytree(self._network(self.data_seed))
        self.shape = flat.shape

    def _network(self, seed: int) -> dict:
        return init_network(seed, self.channels, self.kernel, self.positions, self.fc_width, self.filter_std)

    def unravel(self, params) -> dict:
        return self._unravel(params)

    def loss(self, params):
        return mse(self._unravel(params), self.inputs, self.targets)

    def init(self, key):
        # the study's start distribution (filters N(0, filter_std^2), the layers above 1/sqrt(fan_in), biases 0)
        n1 = self.channels * self.positions
        k1, k2, k3 = jax.random.split(key, 3)
        start = {"conv": {"w": self.filter_std * jax.random.normal(k1, (self.channels, self.kernel ** 2), dtype=jnp.float64),
                          "b": jnp.zeros(self.channels)},
                 "fc": {"w": jax.random.normal(k2, (self.fc_width, n1), dtype=jnp.float64) / math.sqrt(n1),
                        "b": jnp.zeros(self.fc_width)},
                 "out": {"w": jax.random.normal(k3, (self.fc_width,), dtype=jnp.float64) / math.sqrt(self.fc_width),
                         "b": jnp.zeros(())}}
        return ravel_pytree(start)[0]

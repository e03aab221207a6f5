"""The Problem: everything a landscape supplies to the pipeline.

Like pele's BaseSystem, one object gives the loss, gradient, Hessian, random start, known global
minimum value and symmetry; optimize/analyze/certify are written against this interface only.
All methods take one point (an array of `shape`); the engine vmaps them over many starts.
A subclass that defines only `loss` gets gradient and Hessian from JAX autodiff.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from .. import _jax  # noqa: F401  (float64)
from ..errors import SpuriousError
from ..symmetry import Trivial


class Problem:
    name: str = "problem"
    shape: tuple[int, ...] = ()
    #: loss value of a global minimum when it is known (None: unknown, minima are not called spurious)
    global_min_value: float | None = None
    symmetry: Any = Trivial()
    #: standard deviation of the i.i.d. Gaussian start
    init_std: float = 1.0

    # -- landscape -----------------------------------------------------------------
    def loss(self, params: jax.Array) -> jax.Array:
        raise NotImplementedError

    def grad(self, params: jax.Array) -> jax.Array:
        return jax.grad(self.loss)(params)

    def hessian(self, params: jax.Array) -> jax.Array:
        """Hessian of the loss w.r.t. the flattened parameters, shape (P, P)."""
        size = math.prod(self.shape)
        flat_loss = lambda flat: self.loss(flat.reshape(self.shape))
        return jax.hessian(flat_loss)(params.reshape(size))

    def init(self, key: jax.Array) -> jax.Array:
        return self.init_std * jax.random.normal(key, self.shape, dtype=jnp.float64)

    # -- bookkeeping -----------------------------------------------------------------
    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def nonsmooth_reason(self, params: np.ndarray) -> str | None:
        """Why the loss is not twice differentiable at params (None where it is)."""
        return None

    def describe(self) -> dict:
        """Plain-data description stored with every result."""
        return {"name": self.name, "shape": list(self.shape), "global_min_value": self.global_min_value}

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v}" for k, v in self.describe().items() if k != "name")
        return f"{type(self).__name__}({fields})"

    @staticmethod
    def from_loss(
        loss: Callable[[jax.Array], jax.Array],
        shape: tuple[int, ...],
        *,
        name: str = "custom",
        init_std: float = 1.0,
        global_min_value: float | None = None,
        symmetry: Any = None,
    ) -> "Problem":
        """A landscape from a loss function alone (gradient and Hessian by autodiff)."""
        return LossProblem(loss, shape, name=name, init_std=init_std,
                           global_min_value=global_min_value, symmetry=symmetry)


class LossProblem(Problem):
    def __init__(self, loss, shape, *, name="custom", init_std=1.0, global_min_value=None, symmetry=None):
        if not callable(loss):
            raise SpuriousError("loss must be a function of the parameter array")
        shape = tuple(int(s) for s in shape)
        if not shape or any(s < 1 for s in shape):
            raise SpuriousError(f"shape must be a tuple of positive sizes, got {shape}")
        if not (init_std > 0 and math.isfinite(init_std)):
            raise SpuriousError(f"init_std must be positive and finite, got {init_std}")
        self._loss = loss
        self.shape = shape
        self.name = name
        self.init_std = float(init_std)
        self.global_min_value = global_min_value
        self.symmetry = symmetry if symmetry is not None else Trivial()

    def loss(self, params):
        return self._loss(params)

"""The Problem: everything a landscape supplies to every stage of the pipeline.

Like pele's BaseSystem, one object gives all a stage needs to know about a landscape; optimize,
analyze, certify, studies and reports are written against this interface only:

    loss, grad, hessian        the landscape (grad and hessian by JAX autodiff unless overridden;
                               loss_and_grad, which the engine calls every step, from the two)
    init(key)                  a random start
    global_min_value           the loss of a global minimum when known (None: minima are not called spurious)
    symmetry                   a group action with `align` and `distance` (families are orbits)
    zero_modes(point)          directions of continuous symmetry at a point (flat by construction)
    stop_norm                  the natural norm of the gradient for a stop rule
    protocols()                named optimizer settings (e.g. a paper's), `default_protocol` first
    nonsmooth_reason(point)    where the loss is not twice differentiable (nonsmooth_distance: how far)
    rigorous()                 data for the ball-arithmetic evaluator, or None: cannot be certified
    split, splitting_blocks    one more neuron by splitting one in two, and the curvature of that split
                               (two-layer networks of a homogeneous activation; others refuse)
    params()                   plain JSON data that rebuilds it: registry.build(name, params()) == problem
    step_compiler_options      XLA options for the engine's compiled step (None: XLA's defaults)

All landscape methods take one point (an array of `shape`); the engine vmaps them over many starts.
A subclass that defines only `shape` and `loss` is a complete problem.
"""
from __future__ import annotations

import inspect
import math
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from ..core import setup as _jax  # noqa: F401  (float64)
from ..core.errors import SpuriousError
from ..core.jsonable import canonical_json
from .symmetry import Trivial


class Problem:
    #: registry name, or the user's spec (`path/file.py:NAME`) when built from one
    name: str = "problem"
    shape: tuple[int, ...] = ()
    #: loss value of a global minimum when it is known (None: unknown, minima are not called spurious)
    global_min_value: float | None = None
    symmetry: Any = Trivial()
    #: standard deviation of the i.i.d. Gaussian start
    init_std: float = 1.0
    #: the stop norm of the gradient the engine uses unless an optimizer names another
    stop_norm: str = "frobenius"
    #: the protocol (a key of `protocols()`) used when none is asked for
    default_protocol: str = "default"
    #: XLA compiler options for the engine's step kernels where they make this problem's step faster
    #: (e.g. core.setup.OWN_REDUCTIONS); options this jaxlib does not know are dropped. None: defaults
    step_compiler_options: dict | None = None

    # -- landscape -----------------------------------------------------------------
    def loss(self, params: jax.Array) -> jax.Array:
        raise NotImplementedError(f"{type(self).__name__} defines no loss")

    def grad(self, params: jax.Array) -> jax.Array:
        return jax.grad(self.loss)(params)

    def loss_and_grad(self, params: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(loss, gradient) at one point: what the engine evaluates at every step (the loss for its
        record of monotone descent and its stop at a known global value). Override with a fused closed
        form where the two share work."""
        if type(self).grad is Problem.grad:
            return jax.value_and_grad(self.loss)(params)
        return self.loss(params), self.grad(params)

    def loss_and_grad_batch(self, params: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(losses, gradients) of a batch of points (leading axis), inside the engine's compiled loop.
        Default: `loss_and_grad` mapped over the batch. Override where a whole batch allows a faster
        computation than each point alone (e.g. a fast path with a fallback decided once per batch)."""
        return jax.vmap(self.loss_and_grad)(params)

    def hessian(self, params: jax.Array) -> jax.Array:
        """Hessian of the loss w.r.t. the flattened parameters, shape (P, P)."""
        size = math.prod(self.shape)
        flat_loss = lambda flat: self.loss(flat.reshape(self.shape))
        return jax.hessian(flat_loss)(params.reshape(size))

    def init(self, key: jax.Array) -> jax.Array:
        return self.init_std * jax.random.normal(key, self.shape, dtype=jnp.float64)

    # -- what the stages ask of a landscape ------------------------------------------------
    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def zero_modes(self, params: np.ndarray) -> np.ndarray:
        """Tangent directions (m, size) of the orbit of a continuous symmetry through params.

        The loss is constant along them, so the Hessian has m zero eigenvalues there by construction;
        the analysis takes the spectrum on their orthogonal complement (a minimum whose only flat
        directions are these is not degenerate). Default: none."""
        return np.zeros((0, self.size))

    def split(self, params: np.ndarray, neuron: int, alpha: float) -> tuple["Problem", np.ndarray]:
        """The problem with one more hidden neuron, and its point that computes the same function as
        params: neuron `neuron` replaced by alpha w and (1 - alpha) w appended as the last one (a two-layer
        network of a positively homogeneous activation). Default: refused."""
        raise SpuriousError(f"problem {self.name}: its neurons cannot be split (it defines no split)")

    def splitting_blocks(self, params: np.ndarray) -> np.ndarray:
        """The second variation of the loss along splits of each neuron (n matrices over a neuron's
        weights): at a critical point, moving the two halves of a split of neuron i apart along +-a changes
        the loss by t^2 a^T B_i a / (2 alpha (1 - alpha)) to second order. Default: refused."""
        raise SpuriousError(f"problem {self.name}: its neurons cannot be split (it defines no splitting_blocks)")

    def protocols(self) -> dict[str, dict]:
        """Named optimizer settings (GradientDescent fields); 'default' is the engine's defaults."""
        return {"default": {}}

    def nonsmooth_reason(self, params: np.ndarray) -> str | None:
        """Why the loss is not twice differentiable at params (None where it is)."""
        return None

    def nonsmooth_distance(self, params: np.ndarray) -> float:
        """How far params is from the points where the loss is not twice differentiable (inf: none).
        Among points of a non-isolated set of global minima, the analysis takes the Hessian spectrum at
        the one farthest from that set. Default: inf."""
        return math.inf

    def isotypic_spectrum(self, params: np.ndarray):
        """Every Hessian eigenvalue at params from the isotypic blocks of its isotropy (an object with
        `full()`, `distinct()`, `smallest`, `morse_index`), at a cost independent of the problem's size;
        None where the landscape knows no such decomposition or the point has too little symmetry.
        The analysis takes it instead of a dense spectrum where the dense one is out of reach
        (spurious.analyze.DENSE_SPECTRUM_LIMIT). Default: None."""
        return None

    def rigorous(self) -> dict | None:
        """What the ball-arithmetic evaluator needs to certify critical points of this loss (plain
        data, checked by spurious.certify), or None when the landscape has no rigorous evaluation."""
        return None

    @property
    def certifiable(self) -> bool:
        return self.rigorous() is not None

    # -- identity ------------------------------------------------------------------------
    def params(self) -> dict:
        """The keyword arguments that rebuild this problem (plain JSON data).

        Default: the constructor's parameters read back from attributes of the same name, which fits
        a class that stores what it is given; override where it does not."""
        out = {}
        for name, parameter in inspect.signature(type(self).__init__).parameters.items():
            if name == "self" or parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
                continue
            if not hasattr(self, name):
                raise SpuriousError(f"{type(self).__name__}.params(): no attribute {name!r} to read the "
                                    f"parameter back from (define params() on the class)")
            value = getattr(self, name)
            out[name] = value.tolist() if isinstance(value, np.ndarray) else value
        return out

    def describe(self) -> dict:
        """Plain-data description stored with every result: name, parameters, shape, global value."""
        return {"name": self.name, **self.params(), "shape": list(self.shape),
                "global_min_value": self.global_min_value}

    def _identity(self):
        return type(self), self.name, canonical_json(self.params())

    def __eq__(self, other) -> bool:
        if self is other:
            return True
        if not isinstance(other, Problem) or type(other) is not type(self):
            return NotImplemented
        return self._identity() == other._identity()

    def __hash__(self) -> int:
        return hash(self._identity())

    def __repr__(self) -> str:
        try:
            fields = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        except SpuriousError:
            fields = f"shape={self.shape}"
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
    """A problem around a Python function: usable from Python (sp.run), not rebuilt by name."""

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

    def params(self) -> dict:
        return {"shape": list(self.shape), "init_std": self.init_std, "global_min_value": self.global_min_value}

    def _identity(self):
        return (id(self),)  # a function has no plain-data identity

"""Finite-sample two-layer teacher-student networks with any activation (autodiff)."""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from ..core import setup as _setup  # noqa: F401  (float64 before any array)
from ..core.errors import SpuriousError
from .symmetry import NeuronPermutations
from .base import Problem
from .relu import _check_size

ACTIVATIONS = {
    "relu": jax.nn.relu,
    "quadratic": lambda z: z * z,
    "tanh": jnp.tanh,
    "sigmoid": jax.nn.sigmoid,
    "softplus": jax.nn.softplus,
    "gelu": lambda z: jax.nn.gelu(z, approximate=False),
    "erf": jax.scipy.special.erf,
    "linear": lambda z: z,
}


def activation(name: str):
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise SpuriousError(f"unknown activation {name!r}: choose one of {', '.join(sorted(ACTIVATIONS))}") from None


def _identity_teacher(teacher: int, dim: int) -> np.ndarray:
    weights = np.zeros((teacher, dim))
    weights[:, :teacher] = np.eye(teacher)
    return weights


class EmpiricalTeacherStudent(Problem):
    """F_N(W) = 1/(2N) sum_s (sum_i sigma(w_i.x_s) - sum_j sigma(v_j.x_s))^2, x_s ~ N(0, I_d).

    Samples are drawn from `data_seed`, so the landscape is a deterministic function of its settings.
    The global minimum value 0 is attained at W = V when n >= k.
    """

    name = "empirical-teacher-student"
    global_min_value = 0.0
    symmetry = NeuronPermutations()

    def __init__(self, teacher: int, student: int, dim: int | None = None, samples: int = 1000,
                 activation: str = "relu", data_seed: int = 0, teacher_weights=None,
                 init_std: float | None = None):
        self.teacher = _check_size("teacher", teacher)
        self.student = _check_size("student", student)
        self.dim = self.teacher if dim is None else _check_size("dim", dim)
        self.samples = _check_size("samples", samples)
        self.activation = activation
        self._sigma = globals()["activation"](activation)
        if teacher_weights is None:
            if self.dim < self.teacher:
                raise SpuriousError(f"dim ({self.dim}) must be at least teacher ({self.teacher}) for the default teacher V = I")
            weights = _identity_teacher(self.teacher, self.dim)
        else:
            weights = np.asarray(teacher_weights, dtype=np.float64)
            if weights.shape != (self.teacher, self.dim):
                raise SpuriousError(f"teacher weights must have shape ({self.teacher}, {self.dim}), got {weights.shape}")
            if not np.all(np.isfinite(weights)):
                raise SpuriousError("teacher weights contain NaN or infinity")
        self.teacher_weights = weights
        self.data_seed = int(data_seed)
        x = jax.random.normal(jax.random.PRNGKey(self.data_seed), (self.samples, self.dim), dtype=jnp.float64)
        self.inputs = x
        self.targets = jnp.sum(self._sigma(x @ jnp.asarray(weights).T), axis=1)
        self.shape = (self.student, self.dim)
        # 0 is attained (at W = V) only when the student has at least the teacher's neurons
        self.global_min_value = 0.0 if self.student >= self.teacher else None
        self.init_std = 1.0 / math.sqrt(self.dim) if init_std is None else float(init_std)

    def loss(self, params):
        outputs = jnp.sum(self._sigma(self.inputs @ params.T), axis=1)
        return 0.5 * jnp.mean((outputs - self.targets) ** 2)

    def params(self) -> dict:
        out = {"teacher": self.teacher, "student": self.student, "dim": self.dim, "samples": self.samples,
               "activation": self.activation, "data_seed": self.data_seed, "init_std": self.init_std}
        if not np.array_equal(self.teacher_weights, _identity_teacher(self.teacher, self.dim)):
            out["teacher_weights"] = self.teacher_weights.tolist()
        return out

    def nonsmooth_reason(self, params) -> str | None:
        if self.activation != "relu":
            return None
        # relu is not differentiable where a pre-activation w_i.x_s is exactly 0
        pre = np.asarray(self.inputs) @ np.asarray(params).T
        if np.any(np.abs(pre) <= 1e-12 * max(1.0, float(np.max(np.abs(pre))))):
            return "a ReLU pre-activation is 0 on a sample: F_N is not differentiable there"
        return None

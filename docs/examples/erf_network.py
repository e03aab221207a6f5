"""A user's landscape: a two-layer erf network learning an erf teacher from Gaussian inputs.

    F(W) = 1/2 E[(sum_i erf(w_i.x) - sum_j erf(v_j.x))^2],   x ~ N(0, I_d),   teacher V = I (k x d)

in closed form, since for jointly Gaussian u = a.x, v = b.x (Williams 1997)
    E[erf(a.x) erf(b.x)] = (2/pi) arcsin(2 a.b / sqrt((1 + 2|a|^2)(1 + 2|b|^2))).
The arcsin argument is below 1 in absolute value everywhere (Cauchy-Schwarz), so F is smooth.
See docs/your-landscape.md for the three ways to run it.
"""
import jax.numpy as jnp

import spurious as sp
from spurious.problems.symmetry import NeuronPermutations


def erf_kernel(A, B):
    """E[erf(a.x) erf(b.x)] for every row a of A and row b of B."""
    scale = jnp.sqrt(1 + 2 * jnp.sum(A * A, 1))[:, None] * jnp.sqrt(1 + 2 * jnp.sum(B * B, 1))[None, :]
    return (2 / jnp.pi) * jnp.arcsin(2 * (A @ B.T) / scale)


class ErfNetwork(sp.Problem):
    symmetry = NeuronPermutations()  # relabelling hidden neurons leaves F unchanged

    def __init__(self, teacher: int, student: int, dim: int | None = None):
        d = teacher if dim is None else dim
        if min(teacher, student) < 1 or d < teacher:
            raise sp.SpuriousError(f"erf network needs teacher, student >= 1 and dim >= teacher, got {teacher}, {student}, {d}")
        self.teacher, self.student, self.dim = teacher, student, dim
        self.shape, self.init_std, self.V = (student, d), 1 / d ** 0.5, jnp.eye(teacher, d)
        self.global_min_value = 0.0 if student >= teacher else None  # extra neurons at zero fit V exactly

    def loss(self, W):
        K = erf_kernel
        return 0.5 * (K(W, W).sum() - 2 * K(W, self.V).sum() + K(self.V, self.V).sum())

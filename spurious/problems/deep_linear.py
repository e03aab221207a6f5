"""Deep linear residual networks (Bartlett, Helmbold & Long 2018).

    F(Theta) = 1/2 || Theta_L ... Theta_1 - Phi ||_F^2,   Theta_l in R^{d x d}

Parameters are stored as one array of shape (L, d, d) with params[0] = Theta_1 (the layer applied
first). The gradient has the closed form

    dF/dTheta_l = (Theta_L ... Theta_{l+1})^T E (Theta_{l-1} ... Theta_1)^T,   E = Theta_L ... Theta_1 - Phi,

computed from prefix and suffix products (O(L) matrix products, no autodiff tape over the depth).
Gradient descent starts from the identity, Theta_l = I. The global minimum value is 0 for every Phi
(Theta_1 = Phi, the other layers I), but from the identity with symmetric Phi every layer stays a
polynomial in Phi, so an eigen-direction with a negative eigenvalue lambda keeps a product >= 0 and
the loss never drops below lambda^2/2.
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


# -- pure functions -------------------------------------------------------------------------------
def end_to_end(thetas):
    """Theta_L ... Theta_1 for thetas of shape (L, d, d)."""
    eye = jnp.eye(thetas.shape[-1], dtype=thetas.dtype)
    product, _ = jax.lax.scan(lambda p, t: (t @ p, None), eye, thetas)
    return product


def loss(thetas, target):
    e = end_to_end(thetas) - target
    return 0.5 * jnp.sum(e * e)


def grad(thetas, target):
    """Closed-form gradient from prefix products A_l = Theta_{l-1}...Theta_1 and suffix products
    B_l = Theta_L...Theta_{l+1}: dF/dTheta_l = B_l^T E A_l^T."""
    eye = jnp.eye(thetas.shape[-1], dtype=thetas.dtype)
    # prefixes[l] = Theta_{l-1} ... Theta_1 (prefixes[0] = I); product = Theta_L ... Theta_1
    product, prefixes = jax.lax.scan(lambda p, t: (t @ p, p), eye, thetas)
    # suffixes[l] = Theta_L ... Theta_{l+1} (suffixes[L-1] = I), by a reverse scan
    _, suffixes = jax.lax.scan(lambda s, t: (s @ t, s), eye, thetas, reverse=True)
    error = product - target
    return jnp.einsum("lji,jk,lmk->lim", suffixes, error, prefixes)


def loss_and_grad(thetas, target):
    eye = jnp.eye(thetas.shape[-1], dtype=thetas.dtype)
    product, prefixes = jax.lax.scan(lambda p, t: (t @ p, p), eye, thetas)
    _, suffixes = jax.lax.scan(lambda s, t: (s @ t, s), eye, thetas, reverse=True)
    error = product - target
    return 0.5 * jnp.sum(error * error), jnp.einsum("lji,jk,lmk->lim", suffixes, error, prefixes)


def random_orthogonal(key, dim: int):
    """Haar-distributed orthogonal matrix (QR of a Gaussian matrix with the sign fix)."""
    q, r = jnp.linalg.qr(jax.random.normal(key, (dim, dim), dtype=jnp.float64))
    return q * jnp.sign(jnp.diag(r))[None, :]


def symmetric_target(key, eigenvalues):
    """Phi = Q diag(eigenvalues) Q^T with Q Haar-random."""
    eigenvalues = jnp.asarray(eigenvalues, dtype=jnp.float64)
    q = random_orthogonal(key, eigenvalues.shape[0])
    return (q * eigenvalues[None, :]) @ q.T


def default_eigenvalues(dim: int, negative: bool = False) -> np.ndarray:
    """Bartlett et al.'s spectrum: linspace(0.5, 2, d), the smallest set to -0.5 when `negative`."""
    lam = np.linspace(0.5, 2.0, dim)
    if negative:
        lam[0] = -0.5
    return lam


def zero_modes(thetas) -> np.ndarray:
    """Tangent directions of Theta_{j+1} -> Theta_{j+1} A, Theta_j -> A^{-1} Theta_j (A invertible, one
    A per junction j): for A = I + t X, (delta Theta_{j+1}, delta Theta_j) = (Theta_{j+1} X, -X Theta_j),
    X over the basis E_ab of gl(d). (depth - 1) d^2 rows; they may be linearly dependent."""
    thetas = np.asarray(thetas, dtype=np.float64)
    depth, dim, _ = thetas.shape
    modes = np.zeros((depth - 1, dim, dim) + thetas.shape)
    for j in range(depth - 1):
        for a in range(dim):
            for b in range(dim):
                # Theta_{j+1} E_ab has column b equal to column a of Theta_{j+1}; E_ab Theta_j has row a = row b of Theta_j
                modes[j, a, b, j + 1][:, b] = thetas[j + 1][:, a]
                modes[j, a, b, j][a, :] = -thetas[j][b, :]
    return modes.reshape((depth - 1) * dim * dim, thetas.size)


def identity_start(depth: int, dim: int):
    return jnp.broadcast_to(jnp.eye(dim), (depth, dim, dim))


# -- the Problem ------------------------------------------------------------------------------------
class DeepLinearResidual(Problem):
    """F(Theta) = 1/2 ||Theta_L ... Theta_1 - Phi||_F^2 with symmetric Phi = Q diag(lambda) Q^T.

    eigenvalues: the spectrum of Phi (default linspace(0.5, 2, d), Bartlett et al.'s PD case;
    negative=True sets the smallest to -0.5). Q is drawn from `data_seed`; `target` overrides Phi.
    Starts are the identity (init_std = 0) or the identity plus init_std * N(0, 1) noise.
    """

    name = "deep-linear-residual"
    global_min_value = 0.0

    def __init__(self, dim: int = 10, depth: int = 10, eigenvalues: list | None = None, negative: bool = False,
                 target: list | None = None, data_seed: int = 0, init_std: float = 0.0):
        self.dim = _check_size("dim", dim)
        self.depth = _check_size("depth", depth)
        self.data_seed = int(data_seed)
        self.negative = bool(negative)
        self._eigenvalues_spec = None if eigenvalues is None else np.asarray(eigenvalues, dtype=np.float64).tolist()
        self._target_spec = None
        if target is not None:
            if eigenvalues is not None or negative:
                raise SpuriousError("give the target, or its eigenvalues (or negative=true), not both")
            target = np.asarray(target, dtype=np.float64)
            if target.shape != (self.dim, self.dim) or not np.all(np.isfinite(target)):
                raise SpuriousError(f"target must be a finite ({self.dim}, {self.dim}) matrix, got shape {target.shape}")
            self._target_spec = target.tolist()
            self.eigenvalues = None
            self.target = jnp.asarray(target)
        else:
            if eigenvalues is None:
                eigenvalues = default_eigenvalues(self.dim, self.negative)
            elif negative:
                raise SpuriousError("negative=true sets the default spectrum; give eigenvalues or negative, not both")
            eigenvalues = np.asarray(eigenvalues, dtype=np.float64)
            if eigenvalues.shape != (self.dim,) or not np.all(np.isfinite(eigenvalues)):
                raise SpuriousError(f"need {self.dim} finite eigenvalues, got shape {eigenvalues.shape}")
            self.eigenvalues = eigenvalues
            self.target = symmetric_target(jax.random.PRNGKey(self.data_seed), eigenvalues)
        if not (init_std >= 0 and math.isfinite(init_std)):
            raise SpuriousError(f"init_std must be >= 0 and finite, got {init_std}")
        self.init_std = float(init_std)
        self.shape = (self.depth, self.dim, self.dim)

    def params(self) -> dict:
        return {"dim": self.dim, "depth": self.depth, "eigenvalues": self._eigenvalues_spec, "negative": self.negative,
                "target": self._target_spec, "data_seed": self.data_seed, "init_std": self.init_std}

    def zero_modes(self, params) -> np.ndarray:
        return zero_modes(params)

    def loss(self, params):
        return loss(params, self.target)

    def grad(self, params):
        return grad(params, self.target)

    def init(self, key):
        return identity_start(self.depth, self.dim) + self.init_std * jax.random.normal(key, self.shape, dtype=jnp.float64)

    def floor(self) -> float:
        """lambda_neg^2 / 2 summed over the negative eigenvalues: the loss GD from the identity can't beat."""
        if self.eigenvalues is None:
            lam = np.linalg.eigvalsh(np.asarray(self.target))
        else:
            lam = self.eigenvalues
        return float(0.5 * np.sum(np.minimum(lam, 0.0) ** 2))

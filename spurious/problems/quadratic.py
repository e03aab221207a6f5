"""Shallow networks with quadratic activations (Du & Lee 2018; Soltanolkotabi, Javanmard & Lee 2019).

    F(W) = 1/(2n) sum_i (sum_j a_j (w_j.x_i)^2 - y_i)^2 + (lambda/2) ||W||_F^2,   W in R^{k x d}

The output weights a_j are fixed signs (+1/-1 in equal numbers, or all +1). The network output is
x^T M x with M = W^T diag(a) W, so the loss depends on W only through M and ||W||_F; with
P = W_+^T W_+ and N = W_-^T W_- (the rows of each sign), min ||W||_F^2 over the W giving one M is
tr P + tr N >= ||M||_*, with equality when rank(M_+) <= k_+ and rank(M_-) <= k_-. Hence the
*convex twin*

    G(M) = 1/(2n) sum_i (x_i^T M x_i - y_i)^2 + (lambda/2) ||M||_*   over symmetric M

is a lower bound for F everywhere, and equals min F once k_+ and k_- exceed the ranks of the
positive and negative parts of its minimizer. `solve_convex_twin` minimizes G to a duality-gap
certificate, which makes it the exact global optimum the nonconvex runs are judged against.

The pure functions (`outputs`, `loss`, `grad`, `make_data`) take the data explicitly, so experiments
can vmap over data seeds; `QuadraticNetwork` is the Problem built on them for one data set.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from ..core import setup as _setup  # noqa: F401  (float64 before any array)
from ..core.errors import SpuriousError
from ..core.jsonable import canonical_json
from .base import Problem
from .relu import _check_size


# -- pure functions of (W, data) -----------------------------------------------------------------
def signs_vector(hidden: int, signs="balanced") -> np.ndarray:
    """Output weights a: 'balanced' (+1 for the first k/2 units, -1 for the rest; k even),
    'positive' (all +1), or an explicit array of +-1."""
    if isinstance(signs, str):
        if signs == "balanced":
            if hidden % 2:
                raise SpuriousError(f"balanced signs need an even number of hidden units, got {hidden}")
            return np.concatenate([np.ones(hidden // 2), -np.ones(hidden // 2)])
        if signs == "positive":
            return np.ones(hidden)
        raise SpuriousError(f"unknown signs {signs!r}: choose 'balanced', 'positive' or pass an array")
    a = np.asarray(signs, dtype=np.float64)
    if a.shape != (hidden,) or not np.all(np.abs(a) == 1):
        raise SpuriousError(f"signs must be {hidden} values of +1/-1, got {a}")
    return a


def outputs(W, X, a):
    """Network outputs sum_j a_j (w_j.x_i)^2 for all rows x_i of X."""
    Z = X @ W.T
    return (Z * Z) @ a


def loss(W, X, y, a, weight_decay=0.0):
    r = outputs(W, X, a) - y
    return 0.5 * jnp.mean(r * r) + 0.5 * weight_decay * jnp.sum(W * W)


def grad(W, X, y, a, weight_decay=0.0):
    """Hand-written gradient: (2/n) diag(a) [(X W^T) * r]^T X + lambda W."""
    Z = X @ W.T
    r = (Z * Z) @ a - y
    return (2.0 / X.shape[0]) * a[:, None] * ((Z * r[:, None]).T @ X) + weight_decay * W


def loss_and_grad(W, X, y, a, weight_decay=0.0):
    """(loss, grad) sharing the forward pass."""
    Z = X @ W.T
    r = (Z * Z) @ a - y
    value = 0.5 * jnp.mean(r * r) + 0.5 * weight_decay * jnp.sum(W * W)
    return value, (2.0 / X.shape[0]) * a[:, None] * ((Z * r[:, None]).T @ X) + weight_decay * W


def gram_matrix(W, a):
    """M = W^T diag(a) W: the function the network computes is x -> x^T M x."""
    return W.T @ (a[:, None] * W)


def make_data(key, dim: int, samples: int, targets: str = "gaussian", planted=None, planted_signs=None):
    """x_i ~ N(0, I_d); targets 'gaussian' (y ~ N(0, 1), arbitrary labels) or 'planted'
    (y_i = sum_j s_j (w*_j.x_i)^2 with the given planted weights and signs, default all +1)."""
    z = jax.random.normal(key, (samples * (dim + 1),), dtype=jnp.float64)  # one draw: fast to compile
    X = z[: samples * dim].reshape(samples, dim)
    if targets == "gaussian":
        y = z[samples * dim:]
    elif targets == "planted":
        planted = jnp.asarray(planted, dtype=jnp.float64)
        s = jnp.ones(planted.shape[0]) if planted_signs is None else jnp.asarray(planted_signs, dtype=jnp.float64)
        y = outputs(planted, X, s)
    else:
        raise SpuriousError(f"unknown targets {targets!r}: choose 'gaussian' or 'planted'")
    return X, y


# -- the convex twin ----------------------------------------------------------------------------
@dataclass(frozen=True)
class ConvexTwinSolution:
    """Minimizer of the convex twin with its certificate: value - dual_value = gap >= 0 bounds the
    suboptimality of `value` (weak duality), so value - gap <= min G <= value."""

    M: np.ndarray
    value: float  # primal objective G(M)
    dual_value: float  # dual objective at a feasible dual point
    gap: float  # value - dual_value
    iterations: int
    rank_positive: int  # eigenvalues of M above eig_tol (positive part)
    rank_negative: int
    eigenvalues: np.ndarray

    @property
    def relative_gap(self) -> float:
        return self.gap / max(abs(self.value), 1e-300)

    def min_hidden(self) -> int:
        """Smallest balanced k (k/2 units of each sign) whose network can represent M."""
        return 2 * max(self.rank_positive, self.rank_negative, 1)


def convex_twin_value(M, X, y, weight_decay):
    r = jnp.einsum("ni,ij,nj->n", X, M, X) - y
    return 0.5 * jnp.mean(r * r) + 0.5 * weight_decay * jnp.sum(jnp.abs(jnp.linalg.eigvalsh(M)))


def _dual_value(M, X, y, weight_decay):
    """Fenchel dual of min_M g(A M) + h(M), g(z) = |z - y|^2/(2n), h = (lambda/2)||.||_*:
    max_u -u.y - (n/2)|u|^2  s.t. ||sum_i u_i x_i x_i^T||_op <= lambda/2,
    evaluated at u = (A M - y)/n scaled into the feasible set."""
    n = X.shape[0]
    u = (jnp.einsum("ni,ij,nj->n", X, M, X) - y) / n
    op = jnp.max(jnp.abs(jnp.linalg.eigvalsh(X.T @ (u[:, None] * X))))
    u = u * jnp.minimum(1.0, 0.5 * weight_decay / jnp.maximum(op, 1e-300))
    return -jnp.dot(u, y) - 0.5 * n * jnp.dot(u, u)


@jax.jit
def _fista_chunk(state, X, y, weight_decay, step):
    """300 iterations of FISTA with eigenvalue soft-thresholding and adaptive (gradient) restart."""
    n = X.shape[0]

    def prox(Z):
        e, V = jnp.linalg.eigh(0.5 * (Z + Z.T))
        e = jnp.sign(e) * jnp.maximum(jnp.abs(e) - 0.5 * weight_decay * step, 0.0)
        return (V * e) @ V.T

    def body(_, carry):
        M, Y, t = carry
        r = jnp.einsum("ni,ij,nj->n", X, Y, X) - y
        G = X.T @ (r[:, None] * X) / n
        M_new = prox(Y - step * G)
        t_new = 0.5 * (1.0 + jnp.sqrt(1.0 + 4.0 * t * t))
        restart = jnp.sum((Y - M_new) * (M_new - M)) > 0  # O'Donoghue & Candes gradient restart
        t_new = jnp.where(restart, 1.0, t_new)
        Y_new = jnp.where(restart, M_new, M_new + ((t - 1.0) / t_new) * (M_new - M))
        return M_new, Y_new, t_new

    return jax.lax.fori_loop(0, 300, body, state)


def solve_convex_twin(X, y, weight_decay: float, rel_gap: float = 1e-11, max_iter: int = 100_000,
                      eig_tol: float = 1e-8) -> ConvexTwinSolution:
    """Minimize the convex twin G by accelerated proximal gradient (FISTA with restart; the prox of
    the nuclear norm on symmetric matrices soft-thresholds the eigenvalues) until the duality gap
    is at most rel_gap * G (or max_iter iterations; the returned gap says how far it got)."""
    if not weight_decay > 0:
        raise SpuriousError("the convex twin needs weight_decay > 0")
    X = jnp.asarray(X, dtype=jnp.float64)
    y = jnp.asarray(y, dtype=jnp.float64)
    n, d = X.shape
    K = (X @ X.T) ** 2
    lipschitz = float(jnp.linalg.eigvalsh(K)[-1]) / n  # ||A^* A|| / n, A M = (x_i^T M x_i)_i
    step = 1.0 / lipschitz
    state = (jnp.zeros((d, d)), jnp.zeros((d, d)), jnp.array(1.0))
    iterations = 0
    value = dual = float("nan")
    while iterations < max_iter:
        state = _fista_chunk(state, X, y, weight_decay, step)
        iterations += 300
        M = state[0]
        value = float(convex_twin_value(M, X, y, weight_decay))
        dual = float(_dual_value(M, X, y, weight_decay))
        if value - dual <= rel_gap * abs(value):
            break
    M = np.asarray(state[0])
    eig = np.linalg.eigvalsh(M)
    scale = max(1.0, float(np.max(np.abs(eig))))
    return ConvexTwinSolution(M=M, value=value, dual_value=dual, gap=max(0.0, value - dual),
                              iterations=iterations, rank_positive=int(np.sum(eig > eig_tol * scale)),
                              rank_negative=int(np.sum(eig < -eig_tol * scale)), eigenvalues=eig)


def factor_from_matrix(M, hidden: int) -> np.ndarray:
    """A W (balanced signs, hidden rows) with W^T diag(a) W = M and ||W||_F^2 = ||M||_*, when the
    ranks fit: rows sqrt(e) v for the positive eigenpairs, then for the negative ones."""
    e, V = np.linalg.eigh(np.asarray(M))
    half = hidden // 2
    pos = np.argsort(-e)[:half]
    neg = np.argsort(e)[:half]
    W = np.zeros((hidden, M.shape[0]))
    W[: len(pos)] = (np.sqrt(np.maximum(e[pos], 0.0))[:, None] * V[:, pos].T)
    W[half: half + len(neg)] = (np.sqrt(np.maximum(-e[neg], 0.0))[:, None] * V[:, neg].T)
    return W


# -- symmetry -----------------------------------------------------------------------------------
def _random_orthogonal(rng: np.random.Generator, size: int) -> np.ndarray:
    """Haar-random orthogonal matrix (QR of a Gaussian matrix with the sign fix)."""
    q, r = np.linalg.qr(rng.standard_normal((size, size)))
    return q * np.sign(np.diag(r))[None, :]


@dataclass(frozen=True)
class SignGroupRotations:
    """W -> diag(Q_+, Q_-) W with Q_+ in O(k_+), Q_- in O(k_-): rotations within each sign group
    leave M = W^T diag(a) W and ||W||_F unchanged. The best alignment is orthogonal Procrustes per
    group (exact), so a small distance is a witness of equivalence."""

    signs: tuple
    name: str = "sign-group-rotations"

    def align(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        a, b = np.asarray(a), np.asarray(b)
        s = np.asarray(self.signs)
        out = b.copy()
        for group in (s > 0, s < 0):
            if group.any():
                U, _, Vt = np.linalg.svd(a[group] @ b[group].T)
                out[group] = (U @ Vt) @ b[group]
        return out

    def distance(self, a: np.ndarray, b: np.ndarray) -> float:
        return float(np.max(np.abs(np.asarray(a) - self.align(a, b))))

    def random_image(self, point: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The point under a Haar-random element of O(k_+) x O(k_-)."""
        out = np.array(point, dtype=np.float64)
        s = np.asarray(self.signs)
        for group in (s > 0, s < 0):
            if group.any():
                out[group] = _random_orthogonal(rng, int(group.sum())) @ out[group]
        return out


def zero_modes(W: np.ndarray, signs: np.ndarray, weight_decay: float) -> np.ndarray:
    """Tangent directions X W of the orbit of W under W -> Q W with Q^T D Q = D (D = diag(signs)):
    X = D S for S antisymmetric, one per pair of units. The data term depends on W only through
    M = W^T D W, so every such Q is a symmetry of it; weight decay keeps only the orthogonal Q
    (pairs of equal sign: rotations; pairs of opposite sign are hyperbolic and change ||W||_F)."""
    W = np.asarray(W, dtype=np.float64)
    k = W.shape[0]
    modes = []
    for i in range(k):
        for j in range(i + 1, k):
            if weight_decay > 0 and signs[i] != signs[j]:
                continue
            X = np.zeros((k, k))
            X[i, j], X[j, i] = signs[i], -signs[j]  # D (E_ij - E_ji)
            modes.append((X @ W).reshape(-1))
    return np.array(modes).reshape(len(modes), W.size)


#: convex-twin solutions by data set (the twin does not depend on the width or the signs)
_TWINS: dict = {}


# -- the Problem ----------------------------------------------------------------------------------
class QuadraticNetwork(Problem):
    """F(W) = 1/(2n) sum_i (sum_j a_j (w_j.x_i)^2 - y_i)^2 + (lambda/2)||W||_F^2 on x_i ~ N(0, I_d).

    targets='gaussian': y ~ N(0, 1) (arbitrary labels, Du & Lee 2018; SJL 2019 experiment a);
    targets='planted': y = sum_j (w*_j.x)^2 with `planted` (a (k*, d) array or an int k*, then
    w*_j ~ N(0, I_d/d)). Data come from `data_seed`. The global minimum value is 0 for planted
    targets without weight decay (k >= k*), and otherwise the convex twin's optimum when the
    network is wide enough to represent it (computed on first use); else unknown (None).
    """

    name = "quadratic-network"

    def __init__(self, dim: int, hidden: int, samples: int, weight_decay: float = 0.0,
                 signs: str | list | None = None, targets: str = "gaussian", planted: int | list | None = None,
                 data_seed: int = 0, init_std: float | None = None):
        self.dim = _check_size("dim", dim)
        self.hidden = _check_size("hidden", hidden)
        self.samples = _check_size("samples", samples)
        if not (weight_decay >= 0 and math.isfinite(weight_decay)):
            raise SpuriousError(f"weight_decay must be >= 0 and finite, got {weight_decay}")
        self.weight_decay = float(weight_decay)
        # what was asked for, so params() gives back the constructor's arguments
        self._signs_spec = "balanced" if signs is None else (signs if isinstance(signs, str) else
                                                            np.asarray(signs, dtype=np.float64).tolist())
        self.signs = signs_vector(self.hidden, self._signs_spec)
        if targets not in ("gaussian", "planted"):
            raise SpuriousError(f"unknown targets {targets!r}: choose 'gaussian' or 'planted'")
        self.targets_kind = targets
        self.data_seed = int(data_seed)
        key = jax.random.PRNGKey(self.data_seed)
        self.planted = None
        self._planted_spec = None
        if targets == "planted":
            if planted is None:
                raise SpuriousError("planted targets need `planted` (weights or a number of units)")
            if isinstance(planted, (int, np.integer)) and not isinstance(planted, bool):
                self._planted_spec = _check_size("planted", int(planted))
                planted = np.asarray(jax.random.normal(jax.random.fold_in(key, 1), (int(planted), self.dim),
                                                       dtype=jnp.float64)) / math.sqrt(self.dim)
            planted = np.asarray(planted, dtype=np.float64)
            if planted.ndim != 2 or planted.shape[1] != self.dim:
                raise SpuriousError(f"planted weights must have shape (k*, {self.dim}), got {planted.shape}")
            self.planted = planted
            if self._planted_spec is None:
                self._planted_spec = planted.tolist()
        elif planted is not None:
            raise SpuriousError("`planted` is only used with targets='planted'")
        self.inputs, self.targets = make_data(key, self.dim, self.samples, targets, planted)
        self._a = jnp.asarray(self.signs)
        self.shape = (self.hidden, self.dim)
        self.init_std = 1.0 / math.sqrt(self.dim) if init_std is None else float(init_std)
        if not (self.init_std > 0 and math.isfinite(self.init_std)):
            raise SpuriousError(f"init_std must be positive and finite, got {init_std}")
        self.symmetry = SignGroupRotations(tuple(self.signs.tolist()))
        self._twin = None

    def params(self) -> dict:
        return {"dim": self.dim, "hidden": self.hidden, "samples": self.samples, "weight_decay": self.weight_decay,
                "signs": self._signs_spec, "targets": self.targets_kind, "planted": self._planted_spec,
                "data_seed": self.data_seed, "init_std": self.init_std}

    def zero_modes(self, params) -> np.ndarray:
        return zero_modes(params, self.signs, self.weight_decay)

    def protocols(self) -> dict[str, dict]:
        # The loss is quartic with curvature ~ mean ||x||^4 at unit-norm neurons, so the engine's
        # step 0.1 settles into a 2-cycle already at d = 3; 1/(3 mean ||x||^4) converges from the
        # default starts (benchmarks/RESULTS.md, "quadratic-network default step").
        fourth_moment = float(np.mean(np.sum(np.asarray(self.inputs) ** 2, axis=1) ** 2))
        return {"default": {"step": 1.0 / (3.0 * fourth_moment)}}

    def loss(self, params):
        return loss(params, self.inputs, self.targets, self._a, self.weight_decay)

    def grad(self, params):
        return grad(params, self.inputs, self.targets, self._a, self.weight_decay)

    def convex_twin(self, rel_gap: float = 1e-11) -> ConvexTwinSolution:
        """The convex twin's certified optimum on this problem's data (solved once per data set and
        rel_gap: networks of every width on the same data share it)."""
        if self._twin is None:
            key = (self.dim, self.samples, self.weight_decay, self.targets_kind, canonical_json(self._planted_spec),
                   self.data_seed, rel_gap)
            if key not in _TWINS:
                _TWINS[key] = solve_convex_twin(self.inputs, self.targets, self.weight_decay, rel_gap=rel_gap)
            self._twin = _TWINS[key]
        return self._twin

    @property
    def global_min_value(self):
        if self.weight_decay == 0.0:
            if self.planted is not None and np.all(self.signs > 0) and self.hidden >= self.planted.shape[0]:
                return 0.0
            return None
        twin = self.convex_twin()
        k_pos, k_neg = int(np.sum(self.signs > 0)), int(np.sum(self.signs < 0))
        if twin.rank_positive <= k_pos and twin.rank_negative <= k_neg:
            return twin.value
        return None

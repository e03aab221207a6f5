"""Two-layer ReLU teacher-student with Gaussian inputs (Safran & Shamir 2018), in closed form.

F(W) = 1/2 E_x[(sum_i [w_i.x]_+ - sum_j [v_j.x]_+)^2],  x ~ N(0, I_d),
evaluated exactly through the arc-cosine kernel f(w, v) = |w||v|(sin t + (pi - t) cos t)/(2 pi).

Angles are computed as t = 2 atan2(|u - u'|, |u + u'|) from unit vectors, which stays accurate
when two neurons are nearly parallel (arccos of a dot product loses half the digits there, and
its derivative is infinite, which is why autodiff through arccos gives NaN at parallel pairs).
"""
from __future__ import annotations

import math
import os

import jax
import jax.numpy as jnp
import numpy as np

from ..core import native
from ..core import setup as _setup  # noqa: F401  (float64 before any array)
from ..core.setup import OWN_REDUCTIONS
from ..core.errors import NonSmoothPoint, SpuriousError
from .symmetry import NeuronAndCoordinatePermutations, NeuronPermutations
from .base import Problem

TWO_PI = 2.0 * math.pi
#: student neurons whose unit vectors differ by at most this are parallel (see ReLUTeacherStudent.zero_modes)
PARALLEL_TOLERANCE = 1e-6


# atan(z) = z + z^3 P(z^2) on |z| <= tan(pi/8): least-squares fit on Chebyshev nodes against Arb's
# atan (relative error 2.2e-16, i.e. 1 ulp). XLA's float64 atan2 on the CPU is a scalar libm call
# (~17 ns, about half of a gradient step at k = 20); this polynomial vectorizes.
_ATAN_COEFFS = (-0.3333333333333333, 0.19999999999996226, -0.1428571428477097, 0.11111111021692283,
                -0.09090904792335651, 0.07692187444123813, -0.06664564143554898, 0.058585599466550994,
                -0.05087411111317858, 0.03928395012800903, -0.019236554484123612)
_TAN_PI_8 = math.tan(math.pi / 8)


def atan2_upper(y, x):
    """atan2(y, x) in [0, pi] for y >= 0, accurate to a few ulp, built from +, *, / only.

    With r = small/big in [0, 1]: atan(r) = z + z^3 P(z^2) for r <= tan(pi/8), else pi/4 + the same at
    z = (small - big)/(small + big); the branch is chosen without dividing, so each value costs one
    division (float64 division and square root are the slow vector operations of a gradient step),
    and the whole evaluation is one fused pass."""
    ax = jnp.abs(x)
    big, small = jnp.maximum(y, ax), jnp.minimum(y, ax)
    upper = small > _TAN_PI_8 * big
    numerator = jnp.where(upper, small - big, small)
    denominator = jnp.where(upper, small + big, jnp.where(big > 0, big, 1.0))
    # times a reciprocal rather than divided: XLA fuses a division only into its sole user, and z has
    # several, so z / den split the angle into four passes over memory; 1/den has one user (1 ulp more)
    z = numerator * (1.0 / denominator)  # |z| <= tan(pi/8)
    s = z * z
    poly = _ATAN_COEFFS[-1]
    for c in _ATAN_COEFFS[-2::-1]:
        poly = poly * s + c
    angle = z + z * s * poly
    angle = jnp.where(upper, 0.25 * math.pi + angle, angle)
    angle = jnp.where(y > ax, 0.5 * math.pi - angle, angle)
    return jnp.where(x < 0, math.pi - angle, angle)


def _safe_sqrt(x):
    """sqrt whose derivative at 0 is 0 instead of inf, so masked self-pairs give no NaN under autodiff."""
    positive = x > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, x, 1.0)), 0.0)


def _units(rows):
    norms = _safe_sqrt(jnp.sum(rows * rows, axis=-1))
    safe = jnp.where(norms > 0, norms, 1.0)
    return rows / safe[:, None], norms


def _pair_geometry(units_a, units_b):
    """Angles between all rows of a and b, plus the difference vectors b_j - a_i (unit rows)."""
    diff = units_b[None, :, :] - units_a[:, None, :]
    total = units_b[None, :, :] + units_a[:, None, :]
    diff_norm = _safe_sqrt(jnp.sum(diff * diff, axis=-1))
    sum_norm = _safe_sqrt(jnp.sum(total * total, axis=-1))
    theta = 2.0 * atan2_upper(diff_norm, sum_norm)
    return theta, diff, diff_norm


def kernel(norm_a, norm_b, theta):
    """f(w, v) = E[[w.x]_+ [v.x]_+] from norms and angle."""
    return norm_a * norm_b * (jnp.sin(theta) + (math.pi - theta) * jnp.cos(theta)) / TWO_PI


def population_loss(student, teacher):
    us, ns = _units(student)
    ut, nt = _units(teacher)
    t_ss, _, _ = _pair_geometry(us, us)
    t_st, _, _ = _pair_geometry(us, ut)
    t_tt, _, _ = _pair_geometry(ut, ut)
    return (
        0.5 * jnp.sum(kernel(ns[:, None], ns[None, :], t_ss))
        - jnp.sum(kernel(ns[:, None], nt[None, :], t_st))
        + 0.5 * jnp.sum(kernel(nt[:, None], nt[None, :], t_tt))
    )


def _angles(units_a, units_b):
    """Angle and its sine for all row pairs: t = 2 atan2(|a-b|, |a+b|), sin t = |a-b||a+b|/2.

    Only |a - b| is formed from differences (that is where accuracy is needed); |a + b| follows
    from |a+b|^2 = 4 - |a-b|^2 for unit vectors, and sin t needs no transcendental call.
    """
    diff = units_a[:, None, :] - units_b[None, :, :]
    diff_sq = jnp.sum(diff * diff, axis=-1)
    diff_norm = _safe_sqrt(diff_sq)
    sum_norm = _safe_sqrt(4.0 - diff_sq)
    return 2.0 * atan2_upper(diff_norm, sum_norm), 0.5 * diff_norm * sum_norm


def _identity_teacher_angles(units):
    """Angles between unit rows u_i and the coordinate vectors e_j, j < k, for V = I.

    sin^2 t_ij = sum_{l != j} u_il^2, a sum of non-negative terms, so nothing cancels when u_i is
    nearly parallel to e_j (1 - u_ij^2 would lose every digit there). Where u_ij^2 <= |u_i|^2 / 2,
    |u_i|^2 - u_ij^2 loses at most one bit; at most one entry of a row is larger, and its sum is
    taken without it. O(nd) work (the product with the all-ones-but-diagonal matrix used before was
    O(nd^2), a third of the matmul work of a gradient step at k = 100).
    """
    squares = units * units
    total = jnp.sum(squares, axis=-1, keepdims=True)
    largest = squares > 0.5 * total
    rest_of_largest = jnp.sum(jnp.where(largest, 0.0, squares), axis=-1, keepdims=True)
    sin = _safe_sqrt(jnp.where(largest, rest_of_largest, jnp.maximum(total - squares, 0.0)))
    return atan2_upper(sin, units), sin


#: the Gram-matrix step pays from this many parameters up (k = n = d >= 14): below, the difference
#: form with XLA's own reductions is as fast or faster, and compiles once instead of twice (the
#: batch-level conditional holds both forms)
GRAM_MIN_SIZE = 196
#: pairs of student neurons with |u_i - u_j|^2 below this (an angle under 18.2 degrees) need the
#: difference form of their angle; the Gram form's few-ulp absolute error is 1e-14 relative above it
NEAR_PARALLEL = 0.1


def _gram_angles(units):
    """Angles (and sines) between all pairs of unit rows from their Gram matrix, cos t = u_i.u_j:
    a matmul instead of n^2 d differences (half the time of a gradient step at k = 100), and one
    square root per pair instead of two. Its absolute error is a few ulp, so it is accurate only for
    pairs that are not nearly parallel; also returns the smallest off-diagonal |u_i - u_j|^2 =
    2 - 2 cos t so that a caller can fall back on `_angles` below NEAR_PARALLEL."""
    diagonal = jnp.eye(units.shape[0], dtype=bool)
    cos = jnp.where(diagonal, 1.0, jnp.clip(units @ units.T, -1.0, 1.0))
    sin = _safe_sqrt(jnp.maximum((1.0 - cos) * (1.0 + cos), 0.0))
    closest = jnp.min(jnp.where(diagonal, jnp.inf, 2.0 - 2.0 * cos))
    return atan2_upper(sin, cos), sin, closest


def population_grad(student, teacher, identity_teacher: bool = False):
    """grad_i = w_i/2 + sum_{i'!=i} g(w_i, w_i') - sum_j g(w_i, v_j),
    g(w, v) = (|v| sin t  w/|w| + (pi - t) v) / (2 pi)."""
    return _loss_and_grad(student, teacher, identity_teacher, None)[1]


def population_loss_and_grad(student, teacher, teacher_self_loss, identity_teacher: bool = False):
    """(F, grad F) sharing the angles: F = 1/2 sum_{i,i'} f(w_i, w_i') - sum_{i,j} f(w_i, v_j) + the
    teacher's constant `teacher_self_loss` (1/2 sum_{j,j'} f(v_j, v_j'))."""
    return _loss_and_grad(student, teacher, identity_teacher, teacher_self_loss)


def population_loss_and_grad_fast(student, teacher, teacher_self_loss, identity_teacher: bool = False):
    """(F, grad F, closest) with the student pairs' angles from their Gram matrix (`_gram_angles`):
    exact to rounding only where closest (the smallest |u_i - u_j|^2) is >= NEAR_PARALLEL."""
    return _loss_and_grad(student, teacher, identity_teacher, teacher_self_loss, gram=True)


def _loss_and_grad(student, teacher, identity_teacher, teacher_self_loss, gram=False):
    us, ns = _units(student)
    n, k = student.shape[0], teacher.shape[0]
    off_diagonal = 1.0 - jnp.eye(n)
    if gram:
        t_ss, s_ss, closest = _gram_angles(us)
    else:
        t_ss, s_ss = _angles(us, us)
    if identity_teacher:
        t_st, s_st = _identity_teacher_angles(us)
        t_st, s_st = t_st[:, :k], s_st[:, :k]
        teacher_pull = jnp.pad(math.pi - t_st, ((0, 0), (0, student.shape[1] - k)))
        teacher_radial = jnp.sum(s_st, axis=1)
    else:
        ut, nt = _units(teacher)
        t_st, s_st = _angles(us, ut)
        teacher_pull = (math.pi - t_st) @ teacher
        teacher_radial = jnp.sum(nt[None, :] * s_st, axis=1)
    radial = jnp.sum(off_diagonal * ns[None, :] * s_ss, axis=1) - teacher_radial
    pull = off_diagonal * (math.pi - t_ss)
    grad = 0.5 * student + (radial[:, None] * us + pull @ student - teacher_pull) / TWO_PI
    if teacher_self_loss is None:
        return None, grad
    # F = 1/2 A(W) - B(W) + C with A (student pairs) of degree 2 and B (student-teacher pairs) of degree 1
    # in W, so W . grad F = A - B (Euler) and F = (W . grad F - B) / 2 + C: O(nd) work on top of the
    # gradient. B = sum_ij f(w_i, v_j) = sum_i (|w_i| sum_j |v_j| sin t_ij + w_i . sum_j (pi - t_ij) v_j) / 2pi.
    student_teacher = jnp.sum(ns * teacher_radial + jnp.sum(student * teacher_pull, axis=1)) / TWO_PI
    loss = 0.5 * (jnp.sum(student * grad) - student_teacher) + teacher_self_loss
    return (loss, grad, closest) if gram else (loss, grad)


#: the native kernel's source (see its header for why it is faster than the JAX step)
NATIVE_SOURCE = os.path.join(os.path.dirname(__file__), "relu_native.cc")


def native_target() -> str | None:
    """The registered name of the native kernel, None where it is off or cannot be built here."""
    return native.ffi_target(NATIVE_SOURCE, "SpuriousReluLossAndGrad", "spurious_relu_loss_and_grad")


def native_loss_and_grad_batch(students, teacher, teacher_self_loss, identity_teacher: bool = False):
    """(F, grad F) of a float64 batch of students (runs, n, d) by the native CPU kernel, with every
    angle in the difference form (full relative accuracy for nearly parallel pairs too). CPU only;
    needs `native_target()`."""
    call = jax.ffi.ffi_call(native_target(), (jax.ShapeDtypeStruct(students.shape[:1], jnp.float64),
                                              jax.ShapeDtypeStruct(students.shape, jnp.float64)),
                            vmap_method="sequential")
    return call(students, jnp.asarray(teacher, jnp.float64), identity=np.int64(identity_teacher),
                teacher_self_loss=np.float64(teacher_self_loss))


def _normal_directions(units_a, diff, diff_norm, theta):
    """Unit vector n_ij orthogonal to a_i in the plane of (a_i, b_j), pointing towards b_j.

    b - cos t a = (b - a) + (1 - cos t) a with 1 - cos t = |b - a|^2 / 2, which keeps the
    direction accurate for nearly parallel pairs; it is multiplied by sin t wherever it is used,
    so its value at exactly parallel pairs (set to 0 here) does not matter.
    """
    raw = diff + 0.5 * (diff_norm ** 2)[..., None] * units_a[:, None, :]
    raw_norm = _safe_sqrt(jnp.sum(raw * raw, axis=-1))
    return raw / jnp.where(raw_norm > 0, raw_norm, 1.0)[..., None]


def _self_curvature(units_a, norms_a, units_b, norms_b, mask):
    """sum_j mask_ij * grad^2_w f(a_i, b_j) for every i: (n, d, d).

    grad^2_w f(w, v) = |v| sin t / (2 pi |w|) (I - w_hat w_hat^T + n n^T)."""
    d = units_a.shape[1]
    theta, diff, diff_norm = _pair_geometry(units_a, units_b)
    normals = _normal_directions(units_a, diff, diff_norm, theta)
    safe_norms_a = jnp.where(norms_a > 0, norms_a, 1.0)
    coef = mask * norms_b[None, :] * jnp.sin(theta) / (TWO_PI * safe_norms_a[:, None])
    total = jnp.sum(coef, axis=1)
    eye = jnp.eye(d)
    projector = eye[None] - units_a[:, :, None] * units_a[:, None, :]
    return total[:, None, None] * projector + jnp.einsum("ij,ijp,ijq->ipq", coef, normals, normals)


def population_hessian(student, teacher):
    """Closed-form Hessian, shape (n*d, n*d), blocks ordered like student.reshape(-1)."""
    n, d = student.shape
    us, ns = _units(student)
    ut, nt = _units(teacher)
    off_diagonal = 1.0 - jnp.eye(n)
    diag_blocks = (0.5 * jnp.eye(d)[None]
                   + _self_curvature(us, ns, us, ns, off_diagonal)
                   - _self_curvature(us, ns, ut, nt, jnp.ones((n, teacher.shape[0]))))
    # Cross blocks d/dw_i' g(w_i, w_i') = ((pi - t) I + sin t [cos t (a a^T - m m^T) + sin t (a m^T + m a^T)]) / 2pi
    # with a = u_i and m the normal towards u_i'. sin t [...] = a x^T + m y^T with x = s (c a + s m),
    # y = s (s a - c m): two outer products instead of four (the (n, n, d, d) arrays dominate the cost).
    theta, diff, diff_norm = _pair_geometry(us, us)
    normals = _normal_directions(us, diff, diff_norm, theta)
    s, c = jnp.sin(theta), jnp.cos(theta)
    a = us[:, None, :]
    sc = (off_diagonal * s * c / TWO_PI)[..., None]
    ss = (off_diagonal * s * s / TWO_PI)[..., None]
    x = sc * a + ss * normals
    y = ss * a - sc * normals
    pull = off_diagonal * (math.pi - theta) / TWO_PI
    cross = (a[..., :, None] * x[..., None, :] + normals[..., :, None] * y[..., None, :]
             + pull[..., None, None] * jnp.eye(d))
    blocks = cross + jnp.eye(n)[..., None, None] * diag_blocks[:, None]
    return jnp.transpose(blocks, (0, 2, 1, 3)).reshape(n * d, n * d)


def teacher_self_loss(teacher: np.ndarray, identity: bool = False) -> float:
    """1/2 sum_{j,j'} f(v_j, v_j'), the loss of the empty student: a constant of the problem, in O(k^2)
    memory. V = I: f(e_j, e_j) = 1/2 and f(e_j, e_j') = 1/(2 pi), so it is k/4 + k(k-1)/(4 pi)."""
    k = teacher.shape[0]
    if identity:
        return k / 4 + k * (k - 1) / (4 * math.pi)
    norms = np.linalg.norm(teacher, axis=1)
    cos = np.clip((teacher @ teacher.T) / np.outer(norms, norms), -1.0, 1.0)
    sin = np.sqrt(np.maximum(0.0, (1.0 - cos) * (1.0 + cos)))
    theta = np.arctan2(sin, cos)
    # near parallel and antiparallel pairs h(t) = sin t + (pi - t) cos t is flat in t, so the angle's
    # rounding there (about 1e-8) moves it by about 1e-16
    pairs = np.outer(norms, norms) * (sin + (math.pi - theta) * cos) / TWO_PI
    np.fill_diagonal(pairs, norms ** 2 / 2)
    return float(0.5 * np.sum(pairs))


def _check_size(name, value, minimum=1):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise SpuriousError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise SpuriousError(f"{name} must be at least {minimum}, got {value}")
    return int(value)


class ReLUTeacherStudent(Problem):
    """Exact population loss of a two-layer ReLU student (n neurons) fitting a teacher (k neurons).

    teacher = k, student = n, dim = d (default d = k); `teacher_weights` (k, d) defaults to V = I
    (padded with zeros when d > k). Start: W_ij ~ N(0, init_std^2), init_std = 1/sqrt(d) ("Xavier",
    the 2018 protocol). The global minimum value is 0 (W = V when n = k).
    """

    name = "relu-teacher-student"
    global_min_value = 0.0
    #: the 2018 code's measure, max_i ||2 pi grad_{w_i} F||
    stop_norm = "max_neuron_2pi"
    default_protocol = "2018"

    def __init__(self, teacher: int, student: int, dim: int | None = None, teacher_weights=None,
                 init_std: float | None = None):
        self.teacher = _check_size("teacher", teacher)
        self.student = _check_size("student", student)
        self.dim = self.teacher if dim is None else _check_size("dim", dim)
        if self.dim < self.teacher and teacher_weights is None:
            raise SpuriousError(f"dim ({self.dim}) must be at least teacher ({self.teacher}) for the default teacher V = I")
        if teacher_weights is None:
            weights = np.zeros((self.teacher, self.dim))
            weights[:, : self.teacher] = np.eye(self.teacher)
            self.identity_teacher = True
        else:
            weights = np.asarray(teacher_weights, dtype=np.float64)
            if weights.shape != (self.teacher, self.dim):
                raise SpuriousError(f"teacher weights must have shape ({self.teacher}, {self.dim}), got {weights.shape}")
            if not np.all(np.isfinite(weights)):
                raise SpuriousError("teacher weights contain NaN or infinity")
            if np.any(np.linalg.norm(weights, axis=1) == 0):
                raise SpuriousError("teacher weights have a zero row (a teacher neuron that is identically 0)")
            self.identity_teacher = bool(
                weights.shape[1] >= self.teacher
                and np.array_equal(weights[:, : self.teacher], np.eye(self.teacher))
                and not np.any(weights[:, self.teacher:]))
        self.teacher_weights = weights
        # F = 0 is reached (at W = V) only when the student has at least as many neurons;
        # below that the global value is unknown, so no minimum is called spurious.
        self.global_min_value = 0.0 if self.student >= self.teacher else None
        self.shape = (self.student, self.dim)
        if init_std is None:
            init_std = 1.0 / math.sqrt(self.dim)
        if not (init_std > 0 and math.isfinite(init_std)):
            raise SpuriousError(f"init_std must be positive and finite, got {init_std}")
        self.init_std = float(init_std)
        self.symmetry = (NeuronAndCoordinatePermutations(self.teacher) if self.identity_teacher
                         else NeuronPermutations())
        self._teacher = jnp.asarray(weights)
        self._teacher_self_loss = teacher_self_loss(weights, self.identity_teacher)

    def loss(self, params):
        return population_loss(params, self._teacher)

    def grad(self, params):
        return population_grad(params, self._teacher, self.identity_teacher)

    def loss_and_grad(self, params):
        return population_loss_and_grad(params, self._teacher, self._teacher_self_loss, self.identity_teacher)

    def loss_and_grad_batch(self, params):
        """On the CPU, the native kernel where it can be built (core.native; faster than the JAX
        step, figures in benchmarks/RESULTS.md); elsewhere the JAX path below."""
        params = jnp.asarray(params)
        if params.dtype != jnp.float64 or native_target() is None:
            return self._jax_loss_and_grad_batch(params)

        def native_step(students):
            return native_loss_and_grad_batch(students, self._teacher, self._teacher_self_loss, self.identity_teacher)

        if jax.default_backend() == "cpu":
            # no accelerator in this process: tracing the JAX path too would cost time for nothing
            return native_step(params)
        return jax.lax.platform_dependent(params, cpu=native_step, default=self._jax_loss_and_grad_batch)

    def _jax_loss_and_grad_batch(self, params):
        """The student pairs' angles from Gram matrices (a matmul), unless some pair in the batch is
        nearly parallel (an over-parameterized student's neurons merging, rare for n <= k): then the
        whole batch takes the difference form, which keeps full relative accuracy there. Below
        GRAM_MIN_SIZE parameters, the difference form alone."""
        if self.size < GRAM_MIN_SIZE:
            return jax.vmap(self.loss_and_grad)(params)
        loss, grad, closest = jax.vmap(lambda w: population_loss_and_grad_fast(
            w, self._teacher, self._teacher_self_loss, self.identity_teacher))(params)
        return jax.lax.cond(jnp.min(closest) < NEAR_PARALLEL,
                            lambda: jax.vmap(self.loss_and_grad)(params), lambda: (loss, grad))

    @property
    def step_compiler_options(self):
        """The difference form's step (below GRAM_MIN_SIZE) sums over d for every pair: XLA's own
        fused loops do that faster than YNNPACK's; the Gram form's dots are faster fused by YNNPACK
        with their neighbours, XLA's defaults (measured in benchmarks/RESULTS.md)."""
        return None if self.size >= GRAM_MIN_SIZE else OWN_REDUCTIONS

    def hessian(self, params):
        return population_hessian(params, self._teacher)

    def nonsmooth_reason(self, params, tol: float = 1e-12) -> str | None:
        params = np.asarray(params)
        norms = np.linalg.norm(params, axis=1)
        if np.any(norms <= tol):
            return f"student neuron {int(np.argmin(norms))} is zero: F is not differentiable there"
        return None

    def isotypic_spectrum(self, params, tolerance: float = 1e-9):
        """With V = I and n = d = k, at a point fixed (to `tolerance`) by a diagonal group
        Delta(S_p1 x ... x S_pr) with a block of 2 or more: the spectrum from its isotypic blocks
        (spurious.problems.relu_fixed_space), at the point's projection onto the fixed space."""
        if not (self.identity_teacher and self.student == self.teacher == self.dim):
            return None
        from .relu_fixed_space import symmetric_spectrum
        from ..verify_symmetric import from_matrix

        W = np.asarray(params, dtype=np.float64).reshape(self.shape)
        try:
            found = self.symmetry.isotropy(W, tolerance)
        except SpuriousError:  # too many coordinates to search
            return None
        if not found.diagonal or max(found.sizes) < 2:
            return None
        values, _ = from_matrix(found.sizes, W[np.ix_(found.rows, found.columns)])
        return symmetric_spectrum(found.sizes, values)

    def nonsmooth_distance(self, params) -> float:
        """The smallest student neuron norm: the distance to the points where F is not differentiable."""
        return float(np.min(np.linalg.norm(np.asarray(params), axis=1)))

    def zero_modes(self, params) -> np.ndarray:
        """Moving weight between two parallel student neurons: w_i = a u, w_m = b u with a, b > 0 compute
        (a + b)[u.x]_+ for every split of a + b, so F is constant along (u at i, -u at m), a line of
        critical points wherever one of them is critical (a neuron split in two). Pairs whose unit
        vectors differ by at most PARALLEL_TOLERANCE count as parallel."""
        params = np.asarray(params, dtype=np.float64)
        norms = np.linalg.norm(params, axis=1)
        if np.any(norms == 0):
            return np.zeros((0, self.size))
        units = params / norms[:, None]
        chords = np.linalg.norm(units[:, None, :] - units[None, :, :], axis=-1)
        modes = []
        for i, m in zip(*np.nonzero(np.triu(chords <= PARALLEL_TOLERANCE, k=1))):
            direction = units[i] + units[m]
            direction /= np.linalg.norm(direction)
            mode = np.zeros(self.shape)
            mode[i], mode[m] = direction, -direction
            modes.append(mode.reshape(-1) / math.sqrt(2.0))
        return np.array(modes) if modes else np.zeros((0, self.size))

    def split(self, params, neuron: int, alpha: float):
        """(the problem with student + 1 neurons, params with row `neuron` replaced by alpha w and (1 - alpha) w
        appended): [.]_+ is positively homogeneous, so the two compute the same function."""
        params = np.asarray(params, dtype=np.float64)
        if params.shape != self.shape:
            raise SpuriousError(f"the point must have shape {self.shape}, got {params.shape}")
        if isinstance(neuron, bool) or not isinstance(neuron, (int, np.integer)) or not 0 <= neuron < self.student:
            raise SpuriousError(f"neuron must be a student neuron 0..{self.student - 1}, got {neuron!r}")
        if not 0 < float(alpha) < 1:
            raise SpuriousError(f"alpha must lie strictly between 0 and 1, got {alpha}")
        wider = ReLUTeacherStudent(self.teacher, self.student + 1, self.dim,
                                   None if self.identity_teacher else self.teacher_weights, self.init_std)
        embedded = np.vstack([params, (1.0 - float(alpha)) * params[neuron][None]])
        embedded[neuron] = float(alpha) * params[neuron]
        return wider, embedded

    def splitting_blocks(self, params) -> np.ndarray:
        """H_ii - I/2 for every student i, (n, d, d): the diagonal Hessian blocks without their Gauss-Newton
        term E[1{w.x > 0} x x^T] = I/2, i.e. sum_{m != i} h(w_i, w_m) - sum_j h(w_i, v_j) (Safran, Yehudai &
        Shamir 2021's H'_ii; see spurious.verify's annihilation theorem)."""
        n, d = self.shape
        hessian = np.asarray(population_hessian(jnp.asarray(params, dtype=jnp.float64), self._teacher))
        blocks = hessian.reshape(n, d, n, d)[np.arange(n), :, np.arange(n), :]
        return blocks - 0.5 * np.eye(d)[None]

    def check_smooth(self, params):
        reason = self.nonsmooth_reason(params)
        if reason:
            raise NonSmoothPoint(reason)

    def params(self) -> dict:
        out = {"teacher": self.teacher, "student": self.student, "dim": self.dim, "init_std": self.init_std}
        if not self.identity_teacher:
            out["teacher_weights"] = self.teacher_weights.tolist()
        return out

    def protocols(self) -> dict[str, dict]:
        """2018: step 0.1, stop at max_i ||2 pi grad_i F|| <= 1e-9, restart with half the step above
        1e4 (Safran & Shamir 2018); 2021: step 5/k, stop at ||grad F||_F <= 1e-12 (Safran, Yehudai &
        Shamir 2021)."""
        the_2018 = {"step": 0.1, "grad_tol": 1e-9, "stop_norm": "max_neuron_2pi", "divergence_threshold": 1e4}
        return {"2018": the_2018, "2021": {"step": 5.0 / self.teacher, "grad_tol": 1e-12, "stop_norm": "frobenius"},
                "default": {}}

    def rigorous(self) -> dict:
        """The exact loss is evaluated in ball arithmetic from the teacher weights (spurious.verify)."""
        return {"landscape": "relu-teacher-student", "teacher": self.teacher, "student": self.student,
                "teacher_weights": self.teacher_weights.tolist()}

"""What each endpoint is: polish, Hessian spectrum, class, and families up to symmetry.

Classes (in the order they are decided):
  diverged         the optimizer gave up after max_halvings step halvings
  global_minimum   loss - global_min_value <= tolerances.global_loss (problems with a known global value),
                   whether or not the gradient criterion was met: where the global minima are not
                   isolated (a student wider than the teacher) descent approaches them sublinearly, and
                   the engine stops such runs at the global value (status 'global')
  not_converged    still moving after max_steps, and no critical point found by the rule below
  nonsmooth        the loss is not twice differentiable at the analyzed point (e.g. a zero ReLU neuron)
  saddle           some Hessian eigenvalue < -tolerances.eigenvalue (index = how many)
  degenerate       smallest |eigenvalue| <= tolerances.eigenvalue (second-order test inconclusive)
  spurious_minimum positive definite Hessian and loss above the global value
  local_minimum    positive definite Hessian, global value unknown

Polish: every converged endpoint, and every endpoint still moving after max_steps, is polished by
Newton's method with pseudo-inverse steps (directions of near-zero curvature are left alone, so a
degenerate critical point, e.g. a split neuron, is reached too). A polish is kept only if it lowers
the gradient, moves the point by at most polish_radius and does not reach the non-smooth set; the
non-smooth check is made on the point that is analyzed. The rule for runs stopped at max_steps: when
the polish reaches a critical point (gradient <= polish_grad) the run takes that point's class
(`Analysis.by_rule`); otherwise it stays not_converged.

Families: endpoints equal up to the problem's symmetry (distance after alignment <= tolerances.family,
not counting differences along the problem's zero modes at the first member) form one family; all
global minima form one family. Spectra are computed once per family on its representative, since
symmetric images share their spectrum; the global family's representative is the member farthest
from the non-smooth set (`Problem.nonsmooth_distance`), where the Hessian means most.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import jax
import jax.numpy as jnp
import numpy as np

from .core import setup as _setup  # noqa: F401  (float64 before any array)
from .core.errors import SpuriousError
from .core.kernels import compiled
from . import optimize as _optimize
from .optimize import AT_GLOBAL, CONVERGED, DIVERGED, NOT_CONVERGED, Endpoints, chunked
from .problems.base import Problem
from .stats import wilson_interval

CLASSES = ("global_minimum", "spurious_minimum", "local_minimum", "saddle", "degenerate", "nonsmooth",
           "not_converged", "diverged")
MINIMA = ("global_minimum", "spurious_minimum", "local_minimum")


@dataclass(frozen=True)
class Tolerances:
    """Named tolerances of the analysis; recorded with every result.

    polish_grad: Newton polish target for ||grad F||_F; polish_iterations: Newton steps at most;
    polish_radius: a polish that moves the point further than this is rejected (the endpoint is
    kept as the optimizer left it); eigenvalue: |lambda| at or below it counts as zero;
    global_loss: a point within this of the known global value is a global minimum;
    family: max-abs distance, after the best symmetry alignment, for two endpoints to be one family;
    family_loss: endpoints whose losses differ by more are never compared.
    """

    polish_grad: float = 1e-12
    polish_iterations: int = 12
    polish_radius: float = 1e-3
    eigenvalue: float = 1e-6
    global_loss: float = 1e-6
    family: float = 1e-5
    family_loss: float = 1e-9

    def __post_init__(self):
        for name, value in asdict(self).items():
            if not (value > 0):
                raise SpuriousError(f"tolerance {name} must be positive, got {value!r}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Family:
    id: int
    representative: np.ndarray
    run: int  # run index of the representative
    loss: float
    cls: str
    morse_index: int
    lambda_min: float
    lambda_max: float
    spectrum: np.ndarray
    count: int
    fraction: float
    ci_low: float
    ci_high: float
    members: np.ndarray  # run indices
    zero_modes: int = 0  # flat directions of continuous symmetries, left out of the spectrum
    #: the representative's isotropy (e.g. "Δ(S_19 × S_1)") where the problem's group names it, else ""
    isotropy: str = ""
    isotropy_type: str = ""  # the same with k symbolic ("Δ(S_{k−1} × S_1)"): one type across k

    def to_dict(self, with_params: bool = True) -> dict:
        out = {"id": self.id, "loss": self.loss, "class": self.cls, "morse_index": self.morse_index,
               "lambda_min": self.lambda_min, "lambda_max": self.lambda_max, "count": self.count,
               "fraction": self.fraction, "ci_low": self.ci_low, "ci_high": self.ci_high,
               "representative_run": self.run, "zero_modes": self.zero_modes, "isotropy": self.isotropy,
               "isotropy_type": self.isotropy_type}
        if with_params:
            out["representative"] = self.representative.tolist()
        return out


@dataclass(frozen=True)
class Analysis:
    """Per-run arrays (indexed like endpoints.run) and the families."""

    run: np.ndarray
    params: np.ndarray  # polished where the polish succeeded
    loss: np.ndarray
    grad_norm: np.ndarray  # ||grad F||_F at the analyzed point (after polishing, where polished)
    polished: np.ndarray
    cls: np.ndarray
    morse_index: np.ndarray  # -1 where unknown
    lambda_min: np.ndarray
    lambda_max: np.ndarray
    family: np.ndarray  # family id (-1 for none)
    families: tuple[Family, ...]
    tolerances: Tolerances
    seconds: float = 0.0
    #: bool per run: stopped at max_steps and classified by the polish rule (see the module docstring)
    by_rule: np.ndarray | None = None

    def counts(self) -> dict[str, int]:
        return {c: int(np.sum(self.cls == c)) for c in CLASSES if np.any(self.cls == c)}

    def fraction(self, classes) -> tuple[int, float, float, float]:
        """(count, fraction, ci_low, ci_high) of runs whose class is in `classes`."""
        classes = (classes,) if isinstance(classes, str) else tuple(classes)
        hits = int(np.isin(self.cls, classes).sum())
        low, high = wilson_interval(hits, len(self.cls))
        return hits, hits / max(1, len(self.cls)), low, high


#: eigenvalues below this fraction of the largest |eigenvalue| are left out of a polish step
PSEUDO_INVERSE_CUTOFF = 1e-10


def _newton_polish(problem: Problem, iterations: int, grad_tol: float):
    size, shape = problem.size, problem.shape

    def one(x0):
        def cond(carry):
            i, x, gnorm = carry
            return (i < iterations) & (gnorm > grad_tol)

        def body(carry):
            i, x, _ = carry
            g = problem.grad(x).reshape(size)
            values, vectors = jnp.linalg.eigh(problem.hessian(x))
            keep = jnp.abs(values) > PSEUDO_INVERSE_CUTOFF * jnp.max(jnp.abs(values))
            inverse = jnp.where(keep, 1.0 / jnp.where(keep, values, 1.0), 0.0)
            x = x - (vectors @ (inverse * (vectors.T @ g))).reshape(shape)
            g = problem.grad(x)
            return i + 1, x, jnp.sqrt(jnp.sum(g * g))

        g0 = problem.grad(x0)
        _, x, gnorm = jax.lax.while_loop(cond, body, (0, x0, jnp.sqrt(jnp.sum(g0 * g0))))
        return x, gnorm

    return jax.jit(jax.vmap(one))


#: the smallest eigenvalues Lanczos finds first; doubled while all of them are negative
LANCZOS_COUNT = 8
#: the relative accuracy asked of each Lanczos eigenvalue
LANCZOS_TOL = 1e-11


def _hessian_vector_product(problem: Problem):
    shape, size = problem.shape, problem.size

    def product(x, v):
        return jax.jvp(problem.grad, (x,), (v.reshape(shape),))[1].reshape(size)
    return compiled(problem, ("analyze", "hvp"), lambda: jax.jit(product))


def _operator(problem: Problem, x, modes: np.ndarray | None = None, lift: float = 0.0):
    """The Hessian at x as a scipy LinearOperator of Hessian-vector products; with orthonormal `modes`
    (size, m), restricted to their complement and with `lift` on their span (so flat directions of a
    continuous symmetry are moved out of the way of the smallest eigenvalues)."""
    from scipy.sparse.linalg import LinearOperator

    product = _hessian_vector_product(problem)
    x = jnp.asarray(x)

    def matvec(v):
        v = np.asarray(v, dtype=np.float64).reshape(-1)
        if modes is None or not modes.shape[1]:
            return np.asarray(product(x, jnp.asarray(v)))
        inside = modes.T @ v
        outside = v - modes @ inside
        hv = np.asarray(product(x, jnp.asarray(outside)))
        return hv - modes @ (modes.T @ hv) + lift * (modes @ inside)
    return LinearOperator((problem.size, problem.size), matvec=matvec, dtype=np.float64)


def polish_matrix_free(problem: Problem, params: np.ndarray, iterations: int, grad_tol: float):
    """Newton's method with MINRES steps on Hessian-vector products (its minimum-norm answer on the
    range of a singular Hessian plays the pseudo-inverse of the dense polish); (params, grad norms)."""
    from scipy.sparse.linalg import minres

    grad = compiled(problem, ("analyze", "grad"), lambda: jax.jit(problem.grad))
    out, norms = [], []
    for x0 in np.asarray(params, dtype=np.float64):
        x = x0
        g = np.asarray(grad(jnp.asarray(x))).reshape(-1)
        for _ in range(iterations):
            if not np.all(np.isfinite(g)) or np.linalg.norm(g) <= grad_tol:
                break
            step, _ = minres(_operator(problem, x), g, rtol=1e-12, maxiter=10 * problem.size)
            x = x - step.reshape(problem.shape)
            g = np.asarray(grad(jnp.asarray(x))).reshape(-1)
        out.append(x)
        norms.append(float(np.linalg.norm(g)))
    return np.array(out), np.array(norms)


def _eigsh(operator, count: int, which: str):
    """scipy's eigsh, keeping the eigenpairs that converged when not all did (ARPACK gives up on an
    operator that is not quite linear, e.g. Hessian-vector products where the loss is only C^1)."""
    from scipy.sparse.linalg import ArpackNoConvergence, eigsh

    size = operator.shape[0]
    try:
        # relative accuracy 1e-11 (ARPACK's default, machine precision, can take 10^5 iterations where
        # the spectrum clusters, e.g. near the largest eigenvalues of a symmetric point); a wider basis
        return eigsh(operator, k=count, which=which, tol=LANCZOS_TOL, ncv=min(size, max(2 * count + 1, 40)))
    except ArpackNoConvergence as error:
        if len(error.eigenvalues):
            return error.eigenvalues, error.eigenvectors
        raise SpuriousError(f"Lanczos found no eigenvalue of the Hessian ({which}) to full precision") from None


def lanczos_spectrum(problem: Problem, x: np.ndarray, count: int = LANCZOS_COUNT) -> np.ndarray:
    """The negative eigenvalues of the Hessian at x, its smallest non-negative ones and its largest,
    ascending, on the complement of the problem's zero modes, by Lanczos (scipy's eigsh, ARPACK) on
    Hessian-vector products. Enough to classify: the index, the eigenvalues nearest 0 on both sides,
    and the largest. A single Krylov space can miss copies of a repeated eigenvalue (symmetric critical
    points have many), so the eigenvectors of the negative eigenvalues found are deflated (lifted above
    the spectrum) and the search repeated until the smallest eigenvalue left is not negative."""
    modes = _orthonormal_span(problem.zero_modes(np.asarray(x)), problem.size)
    free = problem.size - modes.shape[1]
    largest = float(_eigsh(_operator(problem, x, modes, 0.0), 1, "LA")[0][-1])
    lift = abs(largest) + 1.0
    negative, vectors = [], modes
    while True:
        wanted = min(count, free - len(negative) - 1)
        if wanted < 1:
            return np.append(np.sort(negative), largest)
        values, found = _eigsh(_operator(problem, x, vectors, lift), wanted, "SA")
        order = np.argsort(values)
        values, found = values[order], found[:, order]
        below = values < 0
        if not np.any(below):
            return np.concatenate([np.sort(negative), values, [largest]])
        negative += values[below].tolist()
        vectors = _orthonormal_span(np.concatenate([vectors.T, found[:, below].T]), problem.size)


def _grad_norm_kernel(problem: Problem):
    return compiled(problem, ("analyze", "grad_norm"), lambda: jax.jit(jax.vmap(
        lambda x: jnp.sqrt(jnp.sum(problem.grad(x) ** 2)))))


#: points a compiled polish takes at once (fewer are padded to the next power of two)
POLISH_CHUNK = 32


def polish(problem: Problem, params: np.ndarray, tolerances: Tolerances = Tolerances()):
    """Newton-polish points (pseudo-inverse steps); returns (params, grad_norm, polished) with rejected
    polishes undone: one that does not lower the gradient norm, moves the point further than
    polish_radius (max-abs), or lands where the loss is not twice differentiable."""
    params = np.asarray(params, dtype=np.float64)
    if not len(params):
        return params, np.zeros(0), np.zeros(0, dtype=bool)
    # always whole chunks: one compiled size for any number of points (a gradient costs little)
    old_norm = chunked(_grad_norm_kernel(problem), params, chunk=POLISH_CHUNK, pad_to_chunk=True)
    # a point already at the target would take no Newton step: only the others go through the polish
    # (in the 2018 protocol the engine's Newton finish leaves none, and the polish is never compiled)
    todo = np.flatnonzero(~(old_norm <= tolerances.polish_grad))
    new, gnorm = params.copy(), old_norm.copy()
    if len(todo) and problem.size > _optimize.MATRIX_FREE_LIMIT:
        new[todo], gnorm[todo] = polish_matrix_free(problem, params[todo], tolerances.polish_iterations,
                                                    tolerances.polish_grad)
    elif len(todo):
        newton = compiled(problem, ("analyze", "polish", tolerances.polish_iterations, tolerances.polish_grad),
                          lambda: _newton_polish(problem, tolerances.polish_iterations, tolerances.polish_grad))
        new[todo], gnorm[todo] = chunked(newton, params[todo], chunk=POLISH_CHUNK)
    moved = np.max(np.abs(new - params).reshape(len(params), -1), axis=1)
    ok = np.isfinite(gnorm) & (moved <= tolerances.polish_radius) & np.all(np.isfinite(new).reshape(len(params), -1), axis=1)
    ok &= gnorm <= np.maximum(old_norm, tolerances.polish_grad)
    for i in np.flatnonzero(ok & (moved > 0)):
        if problem.nonsmooth_reason(new[i]):  # Newton reached a kink: its Hessian there is noise
            ok[i] = False
    out = np.where(ok.reshape((-1,) + (1,) * (params.ndim - 1)), new, params)
    return out, np.where(ok, gnorm, old_norm), ok


#: above this many parameters a point's spectrum comes from the problem's isotypic blocks where it
#: offers them (Problem.isotypic_spectrum), not from a dense P x P eigendecomposition
DENSE_SPECTRUM_LIMIT = 1600


def hessian_spectra(problem: Problem, params: np.ndarray, dense_limit: int | None = None) -> list[np.ndarray]:
    """Eigenvalues (ascending) of the Hessian at each point, on the orthogonal complement of the
    problem's zero modes there (its continuous symmetries: P - m values for m independent modes), so
    the flat directions a symmetry forces are not mistaken for degeneracy. Without zero modes this is
    the full spectrum, P values per point. Above `dense_limit` parameters (DENSE_SPECTRUM_LIMIT), a point
    whose isotypic spectrum the problem knows gets that instead (all P values, from small blocks); above
    spurious.optimize.MATRIX_FREE_LIMIT the others get `lanczos_spectrum` (the smallest eigenvalues and the largest)."""
    params = np.asarray(params, dtype=np.float64)
    limit = DENSE_SPECTRUM_LIMIT if dense_limit is None else dense_limit
    if len(params) and (problem.size > limit or problem.size > _optimize.MATRIX_FREE_LIMIT):
        spectra = [problem.isotypic_spectrum(x) if problem.size > limit else None for x in params]
        spectra = [None if s is None else s.full() for s in spectra]
        rest = [i for i, s in enumerate(spectra) if s is None]
        if problem.size > _optimize.MATRIX_FREE_LIMIT:
            filled = [_lanczos_or_unknown(problem, params[i]) for i in rest]
        else:
            filled = hessian_spectra(problem, params[rest], dense_limit=problem.size) if rest else []
        for i, spectrum in zip(rest, filled):
            spectra[i] = spectrum
        return spectra
    modes = [_orthonormal_span(problem.zero_modes(x), problem.size) for x in params]
    if not any(m.shape[1] for m in modes):
        eigenvalues = compiled(problem, ("analyze", "eigenvalues"), lambda: jax.jit(jax.vmap(
            lambda hessian: jnp.linalg.eigvalsh(hessian.reshape(problem.size, problem.size)))))
        hessians = _optimize.hessian_kernel(problem)
        return list(chunked(lambda points: eigenvalues(hessians(points)), params, chunk=_optimize.HESSIAN_CHUNK)) \
            if len(params) else []
    hessian = compiled(problem, ("analyze", "hessian"), lambda: jax.jit(jax.vmap(problem.hessian)))
    out = []
    for x, basis in zip(params, modes):
        H = np.asarray(hessian(jnp.asarray(x[None])))[0]
        complement = _complement(basis, problem.size)
        out.append(np.linalg.eigvalsh(complement.T @ H @ complement))
    return out


def _lanczos_or_unknown(problem: Problem, x: np.ndarray) -> np.ndarray:
    """lanczos_spectrum, or [nan] where Lanczos cannot converge: where the loss is only C^1 (e.g. W = V
    for the ReLU loss, neurons parallel to teachers) a Hessian-vector product is not linear in the
    vector. classify_point makes such a point 'nonsmooth' unless its loss makes it a global minimum."""
    try:
        return lanczos_spectrum(problem, x)
    except SpuriousError:
        return np.array([np.nan])


def hessian_spectrum(problem: Problem, params: np.ndarray) -> np.ndarray:
    """`hessian_spectra` stacked, (R, P - m); all points must have the same number m of zero modes."""
    spectra = hessian_spectra(problem, params)
    if len({len(e) for e in spectra}) > 1:
        raise SpuriousError(f"{problem.name}: points with different numbers of zero modes; use hessian_spectra")
    return np.array(spectra) if spectra else np.zeros((0, problem.size))


def _orthonormal_span(vectors, size: int) -> np.ndarray:
    """An orthonormal basis (size, r) of the span of the rows of `vectors` (rank by SVD)."""
    vectors = np.asarray(vectors, dtype=np.float64).reshape(-1, size)
    if not len(vectors):
        return np.zeros((size, 0))
    u, sv, _ = np.linalg.svd(vectors.T, full_matrices=False)
    rank = int(np.sum(sv > sv[0] * size * np.finfo(float).eps * 16)) if sv[0] > 0 else 0
    return u[:, :rank]


def _complement(basis: np.ndarray, size: int) -> np.ndarray:
    """An orthonormal basis (size, size - r) of the orthogonal complement of `basis` (size, r)."""
    if basis.shape[1] == 0:
        return np.eye(size)
    u, _, _ = np.linalg.svd(basis, full_matrices=True)
    return u[:, basis.shape[1]:]


def zero_mode_count(problem: Problem, point: np.ndarray) -> int:
    """How many independent flat directions the problem's continuous symmetries give at point."""
    return _orthonormal_span(problem.zero_modes(np.asarray(point)), problem.size).shape[1]


def family_distance(symmetry, first: np.ndarray, point: np.ndarray, modes: np.ndarray) -> float:
    """Max-abs distance from `first` to the best symmetric image of `point`, not counting the part of
    the difference along `modes` (an orthonormal basis (P, m) of the zero modes at `first`): points that
    differ only along a flat direction of the problem (a continuous symmetry, or moving weight between
    two parallel ReLU neurons) are one critical set."""
    difference = (np.asarray(first) - symmetry.align(first, point)).reshape(-1)
    if modes.shape[1]:
        difference = difference - modes @ (modes.T @ difference)
    return float(np.max(np.abs(difference)))


def group_families(order, loss, points, problem: Problem, tolerances: "Tolerances") -> list[list[int]]:
    """Group items (indices, visited in `order`) into families: an item joins the first family whose
    first member has a loss within tolerances.family_loss (relative) and a family_distance <= tolerances.family;
    otherwise it starts one. The one grouping rule, used for the runs of one call (analyze) and for
    the families of a study's cells (studies.merge_families)."""
    groups: list[list[int]] = []
    modes: list[np.ndarray] = []
    for i in order:
        for group, basis in zip(groups, modes):
            rep = group[0]
            if abs(loss[i] - loss[rep]) <= tolerances.family_loss * max(1.0, abs(loss[rep])) and \
                    family_distance(problem.symmetry, points[rep], points[i], basis) <= tolerances.family:
                group.append(i)
                break
        else:
            groups.append([i])
            modes.append(_orthonormal_span(problem.zero_modes(np.asarray(points[i])), problem.size))
    return groups


def isotropy_of(problem: Problem, point: np.ndarray, tolerances: "Tolerances"):
    """The isotropy of a (polished) point under the problem's group, where the group can name it.

    Tolerance: the family tolerance (what counts as the same point counts as fixed)."""
    finder = getattr(problem.symmetry, "isotropy", None)
    if finder is None:
        return None
    try:
        return finder(np.asarray(point, dtype=np.float64).reshape(problem.shape), tolerances.family)
    except SpuriousError:  # beyond the size the search handles: left unnamed
        return None


def classify_point(loss: float, spectrum: np.ndarray, global_min_value, tolerances: Tolerances) -> tuple[str, int]:
    negative = int(np.sum(spectrum < -tolerances.eigenvalue))
    if global_min_value is not None and loss - global_min_value <= tolerances.global_loss:
        return "global_minimum", negative
    if np.any(np.isnan(spectrum)):  # no second-order information (see _lanczos_or_unknown)
        return "nonsmooth", -1
    if negative:
        return "saddle", negative
    if np.min(np.abs(spectrum)) <= tolerances.eigenvalue:
        return "degenerate", 0
    return ("spurious_minimum" if global_min_value is not None else "local_minimum"), 0


#: members of a non-isolated global family whose spectra are tried, farthest from the non-smooth set first
GLOBAL_REPRESENTATIVE_TRIES = 8


def _global_candidates(problem: Problem, members: list[int], params: np.ndarray, loss: np.ndarray,
                       tolerances: Tolerances) -> tuple[list[int], np.ndarray]:
    """The global family's candidates for its representative and their polished points: up to
    GLOBAL_REPRESENTATIVE_TRIES members, farthest from the non-smooth set first (ties: lowest loss).
    Runs stopped at the global value were not polished: where the minimum is isolated Newton takes a
    candidate onto it (exact spectrum); elsewhere the polish is rejected and nothing changes."""
    ranked = sorted(members, key=lambda i: (-problem.nonsmooth_distance(params[i]), loss[i], i))
    tries = ranked[:GLOBAL_REPRESENTATIVE_TRIES]
    points, _, _ = polish(problem, params[tries], tolerances)
    return tries, points


def _global_representative(tries: list[int], points: np.ndarray, spectra: list[np.ndarray],
                           tolerances: Tolerances) -> tuple[int, np.ndarray, np.ndarray]:
    """The global family's representative among its candidates (`_global_candidates`), its point and
    its spectrum: the first whose Hessian has no eigenvalue below -tolerances.eigenvalue; near the
    non-smooth part of a non-isolated set of global minima (a vanishing ReLU neuron) the Hessian of a
    point that has not reached the set can have negative eigenvalues. If none qualifies, the first is
    kept and its spectrum reported as it is."""
    for i, point, spectrum in zip(tries, points, spectra):
        if spectrum[0] >= -tolerances.eigenvalue:
            return i, point, spectrum
    return tries[0], points[0], spectra[0]


def analyze(problem: Problem, endpoints: Endpoints, tolerances: Tolerances | None = None) -> Analysis:
    """Polish, classify and group the endpoints, on the device they were computed on where this process
    has it: the kernels the engine compiled there (the losses) are then reused, not traced again."""
    try:
        device = jax.devices(endpoints.device)[0]
    except RuntimeError:  # recorded on a platform this process lacks: JAX's default device
        device = None
    with jax.default_device(device):
        return _analyze(problem, endpoints, tolerances)


def _analyze(problem: Problem, endpoints: Endpoints, tolerances: Tolerances | None) -> Analysis:
    started = time.perf_counter()
    tolerances = tolerances or Tolerances()
    total = len(endpoints)
    params = np.array(endpoints.params, dtype=np.float64)
    status = np.asarray(endpoints.status)
    cls = np.array(["" for _ in range(total)], dtype=object)
    cls[status == DIVERGED] = "diverged"
    grad_norm = np.full(total, np.nan)
    polished = np.zeros(total, dtype=bool)
    morse_index = np.full(total, -1)
    lam_min = np.full(total, np.nan)
    lam_max = np.full(total, np.nan)
    family_of = np.full(total, -1)

    # Runs stopped at the global value are decided by their loss: no polish (near a non-isolated set of
    # minima Newton has nothing to converge to). Converged runs, and runs stopped at max_steps (the
    # rule), are polished.
    polishable = np.flatnonzero((status == CONVERGED) | (status == NOT_CONVERGED))
    if len(polishable):
        params[polishable], grad_norm[polishable], polished[polishable] = polish(problem, params[polishable],
                                                                             tolerances)
    unpolished = np.flatnonzero(status == AT_GLOBAL)
    if len(unpolished):
        grad_norm[unpolished] = chunked(_grad_norm_kernel(problem), params[unpolished], chunk=POLISH_CHUNK,
                                        pad_to_chunk=True)  # the size `polish` compiled
    loss = _optimize.losses(problem, params)

    gmin = problem.global_min_value
    candidates = np.flatnonzero(cls == "")
    is_global = np.zeros(total, dtype=bool)
    if gmin is not None:
        is_global[candidates] = loss[candidates] - gmin <= tolerances.global_loss
    capped = (status == NOT_CONVERGED) & ~is_global
    reached = grad_norm <= tolerances.polish_grad
    by_rule = capped & polished & reached
    cls[capped & ~by_rule] = "not_converged"
    for i in np.flatnonzero((cls == "") & ~is_global):
        if problem.nonsmooth_reason(params[i]):
            cls[i] = "nonsmooth"

    # Families: global minima together; the rest by symmetry distance, compared within equal loss.
    groups: list[list[int]] = []
    global_group = [int(i) for i in np.flatnonzero(is_global)]
    others = sorted((int(i) for i in np.flatnonzero((cls == "") & ~is_global)), key=lambda j: loss[j])
    groups.extend(group_families(others, loss, params, problem, tolerances))
    rep_ids = [g[0] for g in groups]
    tries, tried_points = _global_candidates(problem, global_group, params, loss, tolerances)
    # the global candidates' spectra in the same batched call as the representatives': one compiled size
    spectra = hessian_spectra(problem, np.concatenate([params[rep_ids], tried_points]))
    spectra, tried_spectra = spectra[: len(rep_ids)], spectra[len(rep_ids):]
    if global_group:
        rep, params[rep], spectrum = _global_representative(tries, tried_points, tried_spectra, tolerances)
        loss[rep] = _optimize.losses(problem, params[rep][None])[0]
        groups.insert(0, [rep] + [i for i in global_group if i != rep])
        spectra.insert(0, spectrum)
    families = []
    for fid, (members, spectrum) in enumerate(zip(groups, spectra)):
        rep = members[0]
        family_cls, family_index = classify_point(float(loss[rep]), spectrum, gmin, tolerances)
        members = np.array(members)
        cls[members] = family_cls
        morse_index[members] = family_index
        lam_min[members], lam_max[members] = spectrum[0], spectrum[-1]
        family_of[members] = fid
        low, high = wilson_interval(len(members), total)
        named = isotropy_of(problem, params[rep], tolerances)
        families.append(Family(
            id=fid, representative=params[rep], run=int(endpoints.run[rep]), loss=float(loss[rep]),
            cls=family_cls, morse_index=family_index, lambda_min=float(spectrum[0]), lambda_max=float(spectrum[-1]),
            spectrum=spectrum, count=len(members), fraction=len(members) / total, ci_low=low, ci_high=high,
            members=endpoints.run[members], zero_modes=zero_mode_count(problem, params[rep]),
            isotropy=named.name if named else "", isotropy_type=named.type if named else ""))
    # Order: global minima first, then by loss.
    families.sort(key=lambda f: (f.cls != "global_minimum", f.loss))
    renumber = {f.id: new for new, f in enumerate(families)}
    families = [Family(**{**f.__dict__, "id": renumber[f.id]}) for f in families]
    family_of = np.array([renumber.get(f, -1) for f in family_of])
    return Analysis(run=endpoints.run, params=params, loss=loss, grad_norm=grad_norm, polished=polished,
                    cls=cls.astype(str), morse_index=morse_index, lambda_min=lam_min, lambda_max=lam_max,
                    family=family_of, families=tuple(families), tolerances=tolerances,
                    seconds=time.perf_counter() - started, by_rule=by_rule)

"""What each endpoint is: polish, Hessian spectrum, class, and families up to symmetry.

Classes (in the order they are decided):
  diverged         the optimizer gave up after max_halvings step halvings
  not_converged    still moving after max_steps
  nonsmooth        the loss is not twice differentiable at the endpoint (e.g. a zero ReLU neuron)
  global_minimum   loss - global_min_value <= tolerances.global_loss (problems with a known global value)
  saddle           some Hessian eigenvalue < -tolerances.eigenvalue (index = how many)
  degenerate       smallest |eigenvalue| <= tolerances.eigenvalue (second-order test inconclusive)
  spurious_minimum positive definite Hessian and loss above the global value
  local_minimum    positive definite Hessian, global value unknown

Families: endpoints equal up to the problem's symmetry (distance after alignment <= tolerances.family)
form one family; all global minima form one family. Spectra are computed once per family on its
representative, since symmetric images share their spectrum.
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
from .optimize import CONVERGED, DIVERGED, NOT_CONVERGED, Endpoints, chunked
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

    def to_dict(self, with_params: bool = True) -> dict:
        out = {"id": self.id, "loss": self.loss, "class": self.cls, "morse_index": self.morse_index,
               "lambda_min": self.lambda_min, "lambda_max": self.lambda_max, "count": self.count,
               "fraction": self.fraction, "ci_low": self.ci_low, "ci_high": self.ci_high,
               "representative_run": self.run, "zero_modes": self.zero_modes}
        if with_params:
            out["representative"] = self.representative.tolist()
        return out


@dataclass(frozen=True)
class Analysis:
    """Per-run arrays (indexed like endpoints.run) and the families."""

    run: np.ndarray
    params: np.ndarray  # polished where the polish succeeded
    loss: np.ndarray
    grad_norm: np.ndarray  # ||grad F||_F after polishing
    polished: np.ndarray
    cls: np.ndarray
    morse_index: np.ndarray  # -1 where unknown
    lambda_min: np.ndarray
    lambda_max: np.ndarray
    family: np.ndarray  # family id (-1 for none)
    families: tuple[Family, ...]
    tolerances: Tolerances
    seconds: float = 0.0

    def counts(self) -> dict[str, int]:
        return {c: int(np.sum(self.cls == c)) for c in CLASSES if np.any(self.cls == c)}

    def fraction(self, classes) -> tuple[int, float, float, float]:
        """(count, fraction, ci_low, ci_high) of runs whose class is in `classes`."""
        classes = (classes,) if isinstance(classes, str) else tuple(classes)
        hits = int(np.isin(self.cls, classes).sum())
        low, high = wilson_interval(hits, len(self.cls))
        return hits, hits / max(1, len(self.cls)), low, high


def _newton_polish(problem: Problem, iterations: int, grad_tol: float):
    size, shape = problem.size, problem.shape

    def one(x0):
        def cond(carry):
            i, x, gnorm = carry
            return (i < iterations) & (gnorm > grad_tol)

        def body(carry):
            i, x, _ = carry
            g = problem.grad(x).reshape(size)
            x = x - jnp.linalg.solve(problem.hessian(x), g).reshape(shape)
            g = problem.grad(x)
            return i + 1, x, jnp.sqrt(jnp.sum(g * g))

        g0 = problem.grad(x0)
        _, x, gnorm = jax.lax.while_loop(cond, body, (0, x0, jnp.sqrt(jnp.sum(g0 * g0))))
        return x, gnorm

    return jax.jit(jax.vmap(one))


def polish(problem: Problem, params: np.ndarray, tolerances: Tolerances = Tolerances()):
    """Newton-polish points; returns (params, grad_norm, polished) with rejected polishes undone."""
    params = np.asarray(params, dtype=np.float64)
    newton = compiled(problem, ("analyze", "polish", tolerances.polish_iterations, tolerances.polish_grad),
                      lambda: _newton_polish(problem, tolerances.polish_iterations, tolerances.polish_grad))
    new, gnorm = chunked(newton, params)
    moved = np.max(np.abs(new - params).reshape(len(params), -1), axis=1)
    ok = np.isfinite(gnorm) & (moved <= tolerances.polish_radius) & np.all(np.isfinite(new).reshape(len(params), -1), axis=1)
    grad_norm = compiled(problem, ("analyze", "grad_norm"), lambda: jax.jit(jax.vmap(
        lambda x: jnp.sqrt(jnp.sum(problem.grad(x) ** 2)))))
    old_norm = chunked(grad_norm, params)
    ok &= gnorm <= np.maximum(old_norm, tolerances.polish_grad)
    out = np.where(ok.reshape((-1,) + (1,) * (params.ndim - 1)), new, params)
    return out, np.where(ok, gnorm, old_norm), ok


def hessian_spectra(problem: Problem, params: np.ndarray) -> list[np.ndarray]:
    """Eigenvalues (ascending) of the Hessian at each point, on the orthogonal complement of the
    problem's zero modes there (its continuous symmetries: P - m values for m independent modes), so
    the flat directions a symmetry forces are not mistaken for degeneracy. Without zero modes this is
    the full spectrum, P values per point."""
    params = np.asarray(params, dtype=np.float64)
    modes = [_orthonormal_span(problem.zero_modes(x), problem.size) for x in params]
    if not any(m.shape[1] for m in modes):
        spectrum = compiled(problem, ("analyze", "spectrum"), lambda: jax.jit(jax.vmap(
            lambda x: jnp.linalg.eigvalsh(problem.hessian(x)))))
        return list(chunked(spectrum, params, chunk=16)) if len(params) else []
    hessian = compiled(problem, ("analyze", "hessian"), lambda: jax.jit(jax.vmap(problem.hessian)))
    out = []
    for x, basis in zip(params, modes):
        H = np.asarray(hessian(jnp.asarray(x[None])))[0]
        complement = _complement(basis, problem.size)
        out.append(np.linalg.eigvalsh(complement.T @ H @ complement))
    return out


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


def group_families(order, loss, points, symmetry, tolerances: "Tolerances") -> list[list[int]]:
    """Group items (indices, visited in `order`) into families: an item joins the first family whose
    first member has a loss within tolerances.family_loss (relative) and a symmetry distance <= tolerances.family;
    otherwise it starts one. The one grouping rule, used for the runs of one call (analyze) and for
    the families of a study's cells (studies.merge_families)."""
    groups: list[list[int]] = []
    for i in order:
        for group in groups:
            rep = group[0]
            if abs(loss[i] - loss[rep]) <= tolerances.family_loss * max(1.0, abs(loss[rep])) and \
                    symmetry.distance(points[rep], points[i]) <= tolerances.family:
                group.append(i)
                break
        else:
            groups.append([i])
    return groups


def classify_point(loss: float, spectrum: np.ndarray, global_min_value, tolerances: Tolerances) -> tuple[str, int]:
    negative = int(np.sum(spectrum < -tolerances.eigenvalue))
    if global_min_value is not None and loss - global_min_value <= tolerances.global_loss:
        return "global_minimum", negative
    if negative:
        return "saddle", negative
    if np.min(np.abs(spectrum)) <= tolerances.eigenvalue:
        return "degenerate", 0
    return ("spurious_minimum" if global_min_value is not None else "local_minimum"), 0


def analyze(problem: Problem, endpoints: Endpoints, tolerances: Tolerances | None = None) -> Analysis:
    started = time.perf_counter()
    tolerances = tolerances or Tolerances()
    total = len(endpoints)
    params = np.array(endpoints.params, dtype=np.float64)
    cls = np.array(["" for _ in range(total)], dtype=object)
    cls[endpoints.status == DIVERGED] = "diverged"
    cls[endpoints.status == NOT_CONVERGED] = "not_converged"
    grad_norm = np.full(total, np.nan)
    polished = np.zeros(total, dtype=bool)
    morse_index = np.full(total, -1)
    lam_min = np.full(total, np.nan)
    lam_max = np.full(total, np.nan)
    family_of = np.full(total, -1)

    converged = np.flatnonzero(endpoints.status == CONVERGED)
    for i in converged:
        if problem.nonsmooth_reason(params[i]):
            cls[i] = "nonsmooth"
    smooth = converged[cls[converged] == ""]
    if len(smooth):
        params[smooth], grad_norm[smooth], polished[smooth] = polish(problem, params[smooth], tolerances)
    batched_loss = compiled(problem, ("analyze", "loss"), lambda: jax.jit(jax.vmap(problem.loss)))
    loss = np.asarray(batched_loss(jnp.asarray(params)))

    # Families: global minima together; the rest by symmetry distance, compared within equal loss.
    gmin = problem.global_min_value
    is_global = np.zeros(total, dtype=bool)
    if gmin is not None:
        is_global[smooth] = loss[smooth] - gmin <= tolerances.global_loss
    groups: list[list[int]] = []
    global_group = [int(i) for i in smooth if is_global[i]]
    if global_group:
        groups.append(global_group)
    others = sorted((int(i) for i in smooth if not is_global[i]), key=lambda j: loss[j])
    groups.extend(group_families(others, loss, params, problem.symmetry, tolerances))

    rep_ids = [g[0] for g in groups]
    spectra = hessian_spectra(problem, params[rep_ids])
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
        families.append(Family(
            id=fid, representative=params[rep], run=int(endpoints.run[rep]), loss=float(loss[rep]),
            cls=family_cls, morse_index=family_index, lambda_min=float(spectrum[0]), lambda_max=float(spectrum[-1]),
            spectrum=spectrum, count=len(members), fraction=len(members) / total, ci_low=low, ci_high=high,
            members=endpoints.run[members], zero_modes=problem.size - len(spectrum)))
    # Order: global minima first, then by loss.
    families.sort(key=lambda f: (f.cls != "global_minimum", f.loss))
    renumber = {f.id: new for new, f in enumerate(families)}
    families = [Family(**{**f.__dict__, "id": renumber[f.id]}) for f in families]
    family_of = np.array([renumber.get(f, -1) for f in family_of])
    return Analysis(run=endpoints.run, params=params, loss=loss, grad_norm=grad_norm, polished=polished,
                    cls=cls.astype(str), morse_index=morse_index, lambda_min=lam_min, lambda_max=lam_max,
                    family=family_of, families=tuple(families), tolerances=tolerances,
                    seconds=time.perf_counter() - started)

"""What each endpoint is: polish, Hessian spectrum, class, and families up to symmetry.

Classes (in the order they are decided):
  diverged         the optimizer gave up after max_halvings step halvings
  not_converged    still moving after max_steps
  nonsmooth        the loss is not twice differentiable at the endpoint (e.g. a zero ReLU neuron)
  global_minimum   loss - global_min_value <= tol.global_loss (problems with a known global value)
  saddle           some Hessian eigenvalue < -tol.eigenvalue (index = how many)
  degenerate       smallest |eigenvalue| <= tol.eigenvalue (second-order test inconclusive)
  spurious_minimum positive definite Hessian and loss above the global value
  local_minimum    positive definite Hessian, global value unknown

Families: endpoints equal up to the problem's symmetry (distance after alignment <= tol.family)
form one family; all global minima form one family. Spectra are computed once per family on its
representative, since symmetric images share their spectrum.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from .errors import SpuriousError
from .optimize import CONVERGED, DIVERGED, NOT_CONVERGED, Endpoints, _compiled, chunked
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
    index: int
    lambda_min: float
    lambda_max: float
    spectrum: np.ndarray
    count: int
    fraction: float
    ci_low: float
    ci_high: float
    members: np.ndarray  # run indices

    def to_dict(self, with_params: bool = True) -> dict:
        out = {"id": self.id, "loss": self.loss, "class": self.cls, "index": self.index,
               "lambda_min": self.lambda_min, "lambda_max": self.lambda_max, "count": self.count,
               "fraction": self.fraction, "ci_low": self.ci_low, "ci_high": self.ci_high,
               "representative_run": self.run}
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
    index: np.ndarray  # Morse index (-1 where unknown)
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


def _newton_polish(problem: Problem, iterations: int, tol: float):
    size, shape = problem.size, problem.shape

    def one(x0):
        def cond(carry):
            i, x, gnorm = carry
            return (i < iterations) & (gnorm > tol)

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


def polish(problem: Problem, params: np.ndarray, tol: Tolerances = Tolerances()):
    """Newton-polish points; returns (params, grad_norm, polished) with rejected polishes undone."""
    params = np.asarray(params, dtype=np.float64)
    key = ("polish", tol.polish_iterations, tol.polish_grad)
    cache = problem.__dict__.setdefault("_spurious_kernels", {})
    if key not in cache:
        cache[key] = _newton_polish(problem, tol.polish_iterations, tol.polish_grad)
    new, gnorm = chunked(cache[key], params)
    moved = np.max(np.abs(new - params).reshape(len(params), -1), axis=1)
    ok = np.isfinite(gnorm) & (moved <= tol.polish_radius) & np.all(np.isfinite(new).reshape(len(params), -1), axis=1)
    grad = jax.jit(jax.vmap(problem.grad))
    old_norm = chunked(lambda x: jnp.sqrt(jnp.sum(grad(x).reshape(len(x), -1) ** 2, axis=1)), params)
    ok &= gnorm <= np.maximum(old_norm, tol.polish_grad)
    out = np.where(ok.reshape((-1,) + (1,) * (params.ndim - 1)), new, params)
    return out, np.where(ok, gnorm, old_norm), ok


def hessian_spectrum(problem: Problem, params: np.ndarray) -> np.ndarray:
    """Eigenvalues (ascending) of the Hessian at each point: (R, P)."""
    params = np.asarray(params, dtype=np.float64)
    cache = problem.__dict__.setdefault("_spurious_kernels", {})
    if "spectrum" not in cache:
        cache["spectrum"] = jax.jit(jax.vmap(lambda x: jnp.linalg.eigvalsh(problem.hessian(x))))
    return chunked(cache["spectrum"], params, chunk=16)


def classify_point(loss: float, spectrum: np.ndarray, global_min_value, tol: Tolerances) -> tuple[str, int]:
    negative = int(np.sum(spectrum < -tol.eigenvalue))
    if global_min_value is not None and loss - global_min_value <= tol.global_loss:
        return "global_minimum", negative
    if negative:
        return "saddle", negative
    if np.min(np.abs(spectrum)) <= tol.eigenvalue:
        return "degenerate", 0
    return ("spurious_minimum" if global_min_value is not None else "local_minimum"), 0


def analyze(problem: Problem, endpoints: Endpoints, tol: Tolerances | None = None) -> Analysis:
    import time

    started = time.perf_counter()
    tol = tol or Tolerances()
    total = len(endpoints)
    params = np.array(endpoints.params, dtype=np.float64)
    cls = np.array(["" for _ in range(total)], dtype=object)
    cls[endpoints.status == DIVERGED] = "diverged"
    cls[endpoints.status == NOT_CONVERGED] = "not_converged"
    grad_norm = np.full(total, np.nan)
    polished = np.zeros(total, dtype=bool)
    index = np.full(total, -1)
    lam_min = np.full(total, np.nan)
    lam_max = np.full(total, np.nan)
    family_of = np.full(total, -1)

    converged = np.flatnonzero(endpoints.status == CONVERGED)
    for i in converged:
        if problem.nonsmooth_reason(params[i]):
            cls[i] = "nonsmooth"
    smooth = converged[cls[converged] == ""]
    if len(smooth):
        params[smooth], grad_norm[smooth], polished[smooth] = polish(problem, params[smooth], tol)
    loss = np.asarray(_compiled(problem, "loss")(jnp.asarray(params)))

    # Families: global minima together; the rest by symmetry distance, compared within equal loss.
    gmin = problem.global_min_value
    is_global = np.zeros(total, dtype=bool)
    if gmin is not None:
        is_global[smooth] = loss[smooth] - gmin <= tol.global_loss
    groups: list[list[int]] = []
    global_group = [int(i) for i in smooth if is_global[i]]
    if global_group:
        groups.append(global_group)
    representatives: list[int] = []
    others: list[list[int]] = []
    for i in sorted((int(i) for i in smooth if not is_global[i]), key=lambda j: loss[j]):
        for g, rep in enumerate(representatives):
            if abs(loss[i] - loss[rep]) <= tol.family_loss * max(1.0, abs(loss[rep])) and \
                    problem.symmetry.distance(params[rep], params[i]) <= tol.family:
                others[g].append(i)
                break
        else:
            representatives.append(i)
            others.append([i])
    groups.extend(others)

    rep_ids = [g[0] for g in groups]
    spectra = hessian_spectrum(problem, params[rep_ids]) if rep_ids else np.zeros((0, problem.size))
    families = []
    for fid, (members, spectrum) in enumerate(zip(groups, spectra)):
        rep = members[0]
        family_cls, family_index = classify_point(float(loss[rep]), spectrum, gmin, tol)
        members = np.array(members)
        cls[members] = family_cls
        index[members] = family_index
        lam_min[members], lam_max[members] = spectrum[0], spectrum[-1]
        family_of[members] = fid
        low, high = wilson_interval(len(members), total)
        families.append(Family(
            id=fid, representative=params[rep], run=int(endpoints.run[rep]), loss=float(loss[rep]),
            cls=family_cls, index=family_index, lambda_min=float(spectrum[0]), lambda_max=float(spectrum[-1]),
            spectrum=spectrum, count=len(members), fraction=len(members) / total, ci_low=low, ci_high=high,
            members=endpoints.run[members]))
    # Order: global minima first, then by loss.
    families.sort(key=lambda f: (f.cls != "global_minimum", f.loss))
    renumber = {f.id: new for new, f in enumerate(families)}
    families = [Family(**{**f.__dict__, "id": renumber[f.id]}) for f in families]
    family_of = np.array([renumber.get(f, -1) for f in family_of])
    return Analysis(run=endpoints.run, params=params, loss=loss, grad_norm=grad_norm, polished=polished,
                    cls=cls.astype(str), index=index, lambda_min=lam_min, lambda_max=lam_max,
                    family=family_of, families=tuple(families), tolerances=tol,
                    seconds=time.perf_counter() - started)

"""Annihilation of spurious minima by one more student neuron: split a neuron of a critical point in two
and prove that the wider point is not a local minimum.

    import spurious as sp
    from spurious.annihilation import annihilate

    problem = sp.ReLUTeacherStudent(teacher=8, student=8)
    minimum = ...                                   # a spurious minimum, e.g. a family's representative
    result = annihilate(problem, minimum, alpha=0.5)
    result.criterion            # the 2021 criterion per neuron: smallest eigenvalue of H_ii - I/2
    result.certificate.write("split.json")          # spurious verify split.json
    result.descent.counts()     # where gradient descent goes from just off the split point

If W is a critical point with n neurons, replacing neuron w by alpha w and (1 - alpha) w gives a critical
point of n + 1 neurons with the same loss (a positively homogeneous activation computes the same
function). Moving the two halves apart, +t a and -t a, changes the loss by t^2 a^T S a / (2 alpha (1 -
alpha)) + o(t^2), with S = H_ww - I/2 the neuron's diagonal Hessian block without its Gauss-Newton term
(spurious.verify states and proves it). Safran, Yehudai & Shamir (COLT 2021) check that this block has a
negative eigenvalue at the spurious minima they found, which makes the split a saddle; Arjevani & Field
(2022) call it the annihilation of the minimum. Here, per split:

- the 2021 criterion: the smallest eigenvalue of S on the complement of w (the problem's
  `splitting_blocks`), and its eigenvector a;
- the same curvature read from the wider problem's own Hessian at the split point, D^T H D for D =
  (a in the neuron's row, -a in the new one), which must equal a^T S a / (alpha (1 - alpha));
- a certificate (spurious.certify.certify_split) that bounds a^T S a below 0 over a ball that holds the
  exact critical point: the split of the exact critical point is not a local minimum, for every alpha;
- where gradient descent of the wider problem goes from the split point moved by +-offset along D and
  by small random perturbations: the global minimum, or another spurious point.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from .analyze import Analysis, Tolerances, analyze
from .core import setup as _setup  # noqa: F401  (float64 before any array)
from .certify import AnnihilationCertificate, CertificationRefused, NotNearCriticalPoint, certify_split, exact_alpha
from .core.errors import SpuriousError
from .core.kernels import compiled
from .optimize import GradientDescent, descend, protocol
from .problems import build_shared

#: relative agreement required between a^T S a / (alpha (1 - alpha)) and the wider problem's D^T H D
AGREEMENT = 1e-8


@dataclass(frozen=True)
class SplitCurvature:
    """One neuron's split: the smallest eigenvalue of S = H_ww - I/2 on the complement of w (the 2021
    criterion: negative means the split is a saddle), its unit eigenvector, and the second derivative
    along D = (a, -a) read from the wider problem's Hessian at the split point (should equal
    criterion / (alpha (1 - alpha)))."""

    neuron: int
    criterion: float
    direction: np.ndarray
    embedded_curvature: float
    alpha: float

    @property
    def agrees(self) -> bool:
        expected = self.criterion / (self.alpha * (1 - self.alpha))
        return abs(self.embedded_curvature - expected) <= AGREEMENT * max(1.0, abs(expected))


@dataclass(frozen=True)
class Annihilation:
    """The outcome of splitting one neuron of a critical point (see the module docstring)."""

    point: np.ndarray
    loss: float
    alpha: float
    splits: tuple[SplitCurvature, ...]  # every neuron's
    neuron: int  # the one split: most negative criterion
    certificate: AnnihilationCertificate | None
    refusal: str | None  # why it could not be certified
    descent: Analysis | None  # where gradient descent of the wider problem goes from near the split point
    offsets: tuple[float, ...]
    seconds: float

    @property
    def chosen(self) -> SplitCurvature:
        return self.splits[self.neuron]

    @property
    def certified(self) -> bool:
        return self.certificate is not None

    def to_dict(self, with_certificate: bool = False) -> dict:
        chosen = self.chosen
        out = {"loss": self.loss, "alpha": self.alpha, "neuron": self.neuron, "criterion": chosen.criterion,
               "criteria": [s.criterion for s in self.splits], "direction": chosen.direction.tolist(),
               "embedded_curvature": chosen.embedded_curvature, "agrees": all(s.agrees for s in self.splits),
               "certified": self.certified, "refusal": self.refusal, "seconds": self.seconds}
        if self.certificate is not None:
            out["curvature_upper"] = self.certificate.data["claim"]["curvature_upper"]
            out["splitting_curvature_upper"] = self.certificate.data["bounds"]["splitting_curvature_upper"]
            out["loss_lower"] = self.certificate.data["claim"]["loss_lower"]
            out["loss_upper"] = self.certificate.data["claim"]["loss_upper"]
            if with_certificate:
                out["certificate"] = self.certificate.data
        if self.descent is not None:
            out["descent"] = {"runs": len(self.descent.cls), "counts": self.descent.counts(),
                              "families": [{"class": f.cls, "loss": f.loss, "count": f.count}
                                           for f in self.descent.families]}
        return out


#: the gradient norm (Frobenius) above which a point is refused as not a critical point
CRITICAL_GRADIENT = 1e-8


def check_critical(problem, point: np.ndarray):
    """Refuse (one line) a point whose gradient is too large for it to be a critical point."""
    norm = float(np.linalg.norm(np.asarray(problem.grad(jnp.asarray(point)))))
    if not norm <= CRITICAL_GRADIENT:
        raise NotNearCriticalPoint(f"not a critical point: |grad F| = {norm:.3g} at the point (above "
                                   f"{CRITICAL_GRADIENT:g}); polish it first (--polish), or give a family's representative")


def splitting_curvatures(problem, point: np.ndarray, alpha: float) -> tuple[SplitCurvature, ...]:
    """Every neuron's split curvature (the 2021 criterion and the wider problem's Hessian along it)."""
    point = np.asarray(point, dtype=np.float64)
    blocks = np.asarray(problem.splitting_blocks(point))
    wider = widened(problem, point, alpha)
    hessian = compiled(wider, ("annihilation", "hessian"), lambda: jax.jit(wider.hessian))
    out = []
    for neuron, block in enumerate(blocks):
        w = point[neuron] / np.linalg.norm(point[neuron])
        # S w = 0 (homogeneity): the eigenvalue along w itself is the exact zero of moving weight between
        # the halves, so the criterion is taken on the complement of w
        complement = np.linalg.svd(np.eye(len(w)) - np.outer(w, w))[0][:, : len(w) - 1]
        values, vectors = np.linalg.eigh(complement.T @ block @ complement)
        direction = complement @ vectors[:, 0]
        _, embedded = problem.split(point, neuron, alpha)
        D = np.zeros(wider.shape)
        D[neuron], D[-1] = direction, -direction
        H = np.asarray(hessian(jnp.asarray(embedded)))
        out.append(SplitCurvature(neuron, float(values[0]), direction, float(D.reshape(-1) @ H @ D.reshape(-1)),
                                  float(alpha)))
    return tuple(out)


def widened(problem, point, alpha):
    """The problem with one more neuron, one object per parameters in this process (its compiled kernels
    are shared by every split of every point)."""
    wider, _ = problem.split(point, 0, alpha)
    try:
        return build_shared(wider.name, wider.params())
    except SpuriousError:  # a user's problem that the registry cannot rebuild: its own object
        return wider


def annihilate(problem, point, alpha=0.5, neuron: int | None = None, *, certify: bool = True,
               offsets=(1e-3,), random_starts: int = 6, seed: int = 0, optimizer: GradientDescent | None = None,
               tolerances: Tolerances | None = None, precision: int | None = None, radius_factor: int = 2,
               device: str = "auto") -> Annihilation:
    """Split a neuron of the critical point near `point` (the one with the most negative criterion unless
    `neuron` is given), certify that the split is not a local minimum, and run gradient descent of the
    wider problem from the split point moved by +-offset along the split direction and by
    `random_starts` random perturbations of each offset's size (the wider problem's protocol unless
    `optimizer` is given). Refusals of the certificate are recorded in `refusal`; bad input (a student
    narrower than the teacher, alpha outside (0, 1), a problem that cannot split) raises SpuriousError."""
    started = time.perf_counter()
    value = exact_alpha(alpha)
    alpha = float(value)
    point = np.asarray(point, dtype=np.float64)
    if point.shape != tuple(problem.shape):
        raise SpuriousError(f"the point must have the problem's shape {tuple(problem.shape)}, got {point.shape}")
    if problem.global_min_value is None:
        raise SpuriousError(f"problem {problem.name}: its global value is unknown (for the ReLU problem: a student "
                            f"narrower than the teacher), so no minimum of it is spurious; annihilation needs n >= k")
    if neuron is not None and (isinstance(neuron, bool) or not isinstance(neuron, (int, np.integer))
                               or not 0 <= neuron < point.shape[0]):
        raise SpuriousError(f"neuron must be a student neuron 0..{point.shape[0] - 1}, got {neuron!r}")
    check_critical(problem, point)
    splits = splitting_curvatures(problem, point, alpha)
    chosen = min(splits, key=lambda s: s.criterion) if neuron is None else splits[neuron]
    certificate, refusal = None, None
    if certify:
        if chosen.criterion >= 0:
            refusal = (f"no descent to certify: the smallest eigenvalue of the splitting block of neuron "
                       f"{chosen.neuron} is {chosen.criterion:.3g} >= 0")
        else:
            try:
                certificate = certify_split(problem, point, chosen.neuron, value, chosen.direction,
                                            precision=precision, radius_factor=radius_factor)
            except CertificationRefused as refusal_error:
                refusal = f"{type(refusal_error).__name__}: {refusal_error}"
    descent = None
    if offsets:
        wider = widened(problem, point, alpha)
        _, embedded = problem.split(point, chosen.neuron, alpha)
        D = np.zeros(wider.shape)
        D[chosen.neuron], D[-1] = chosen.direction, -chosen.direction
        rng = np.random.default_rng(seed)
        starts = []
        for offset in offsets:
            starts += [embedded + offset * D, embedded - offset * D]
            for _ in range(random_starts):
                noise = rng.normal(size=wider.shape)
                starts.append(embedded + offset * noise / np.linalg.norm(noise))
        endpoints = descend(wider, np.array(starts), optimizer or protocol(wider), device=device)
        descent = analyze(wider, endpoints, tolerances)
    loss = float(problem.loss(jnp.asarray(point)))
    return Annihilation(point, loss, alpha, splits, chosen.neuron, certificate, refusal, descent,
                        tuple(float(o) for o in offsets), time.perf_counter() - started)

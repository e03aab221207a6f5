"""Certified critical points: rigorous, re-checkable proofs that a spurious minimum (or a saddle) exists.

    import spurious as sp
    from spurious.certify import certify, certify_families

    problem = sp.problems.build("relu-teacher-student", {"teacher": 8, "student": 8})
    result = sp.run(problem, runs=100, seed=0)
    cert = certify(problem, result.analysis.families[1].representative)
    cert.kind, cert.morse_index, cert.radius, cert.loss_lower, cert.spurious
    cert.write("cert.json")          # re-check later:  spurious verify cert.json

Any Problem can be passed: one whose `rigorous()` names a landscape that spurious.verify evaluates in
ball arithmetic (RIGOROUS_LANDSCAPES; today the ReLU teacher-student population loss) is certified,
any other is refused (NotCertifiable, one line naming the problem) before any work starts.

What is proved (the exact ReLU teacher-student population loss F, x ~ N(0, I)): in the Euclidean
ball B of radius `radius` around the float64 point there is exactly one critical point x* of F; it
lies within `distance_upper` of the point; every Hessian eigenvalue anywhere in B has |lambda| >=
`eigenvalue_abs_lower`, so x* is a nondegenerate minimum (Morse index 0) or a saddle whose index is
`morse_index`; F(x*) lies in [`loss_lower`, `loss_upper`]. When student >= teacher the global minimum
value is 0, so a minimum with `loss_lower` > 0 is a certified spurious local minimum.

The theorem (a contraction / Newton-Kantorovich argument) and how each of its hypotheses is
established in Arb ball arithmetic are stated in full in `spurious.verify`, the small self-contained
module that both derives the bounds and re-checks certificates; this module adds what a user needs
around it: input checks, an optional Newton polish, automatic precision, refusals with a reason, and
the bulk API `certify_families` for studies. See docs/certify.md.

Refusals (all SpuriousError subclasses, so the CLI prints one line and exits 2):
  NotCertifiable         the problem has no rigorous evaluation (raised for the problem, never recorded
                         as a family's outcome)
  TooCloseToNonSmooth    the point (or the smallest ball the proof needs) meets a zero neuron or a
                         parallel / antiparallel pair, where F is not twice differentiable
  DegenerateHessian      Hessian eigenvalues cannot be separated from 0
  NotNearCriticalPoint   the gradient is too large for the proof (or a requested polish failed)
  PrecisionInsufficient  rounding at the highest allowed precision still hides the answer
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from . import verify as _verify
from .core.errors import NonSmoothPoint, SpuriousError
from .core.resources import require_memory
from .core.jsonable import numbers

#: precisions tried in turn (bits) when a proof fails only because of rounding
PRECISIONS = (128, 256, 512)
#: a point whose proof ball (radius = radius_factor * |grad| / gap) is below this fraction of the largest
#: neuron norm counts as "at a critical point"; if that ball still meets the non-smooth set, the refusal
#: says the point is too close to a non-smooth point, otherwise that it is not near a critical point
NEAR_CRITICAL_RELATIVE_RADIUS = 1e-6
#: families of these classes are certified by `certify_families` unless told otherwise
CERTIFIABLE_CLASSES = ("spurious_minimum", "local_minimum", "saddle", "degenerate")


#: landscapes (the `landscape` entry of Problem.rigorous()) that spurious.verify evaluates in ball arithmetic
RIGOROUS_LANDSCAPES = (_verify.PROBLEM_NAME,)
#: how a certificate's summary names each of them
LANDSCAPE_WORDS = {_verify.PROBLEM_NAME: "the ReLU teacher-student loss"}


class NotCertifiable(SpuriousError):
    """The problem has no rigorous evaluation: no point of it can be certified (refused before any work)."""


class CertificationRefused(SpuriousError):
    """The point cannot be certified; the message says why."""


class TooCloseToNonSmooth(CertificationRefused, NonSmoothPoint):
    """The point, or the ball around it that the proof needs, meets a point where F is not C^2."""


class DegenerateHessian(CertificationRefused):
    """Some Hessian eigenvalue cannot be separated from 0."""


class NotNearCriticalPoint(CertificationRefused):
    """The gradient at the point is too large for the proof."""


class PrecisionInsufficient(CertificationRefused):
    """Rounding error at the highest allowed precision hides the answer."""


class NotAnnihilated(CertificationRefused):
    """The curvature of the split along its direction is not bounded below 0 (the embedded point may be a
    local minimum, or the bound is not sharp enough)."""


@dataclass(frozen=True)
class Certificate:
    """A certificate (the JSON-ready dict `data`, exactly what `write` stores) and how long it took."""

    data: dict
    seconds: float = 0.0

    # -- the claim -----------------------------------------------------------------------------
    @property
    def kind(self) -> str:
        """'minimum' or 'saddle'."""
        return self.data["claim"]["kind"]

    @property
    def morse_index(self) -> int:
        return self.data["claim"]["morse_index"]

    @property
    def spurious(self) -> bool | None:
        """True: a certified non-global minimum; None: global value unknown (student < teacher)."""
        return self.data["claim"]["spurious"]

    @property
    def radius(self) -> Fraction:
        return Fraction(self.data["bounds"]["radius"])

    @property
    def eigenvalue_abs_lower(self) -> Fraction:
        return Fraction(self.data["claim"]["eigenvalue_abs_lower"])

    @property
    def distance_upper(self) -> Fraction:
        return Fraction(self.data["claim"]["distance_upper"])

    @property
    def loss_lower(self) -> Fraction:
        return Fraction(self.data["claim"]["loss_lower"])

    @property
    def loss_upper(self) -> Fraction:
        return Fraction(self.data["claim"]["loss_upper"])

    @property
    def point(self) -> np.ndarray:
        return np.array([[float(x) for x in row] for row in self.data["point"]])

    @property
    def precision(self) -> int:
        return self.data["settings"]["precision_bits"]

    # -- files -----------------------------------------------------------------------------------
    def to_json(self) -> str:
        return json.dumps(self.data, indent=1) + "\n"

    def write(self, path) -> None:
        from .core.files import write_atomic

        write_atomic(path, self.to_json())

    @staticmethod
    def read(path) -> "Certificate":
        data = _verify.load_certificate(path)
        if isinstance(data, dict) and data.get("format") == _verify.ANNIHILATION_FORMAT:
            return AnnihilationCertificate(data)
        return Certificate(data)

    def verify(self) -> _verify.VerifiedClaim:
        """Re-check with spurious.verify (raises spurious.verify.InvalidCertificate)."""
        return _verify.verify_certificate(json.loads(self.to_json()))

    def summary(self) -> str:
        claim, bounds = self.data["claim"], self.data["bounds"]
        if claim["kind"] == "minimum":
            what = {True: "spurious local minimum", False: "local minimum (not shown spurious)",
                    None: "local minimum"}[claim["spurious"]]
        else:
            what = f"saddle of Morse index {claim['morse_index']}"
        return (f"certified {what} of {_landscape_text(self.data['problem'])}:\n"
                f"  unique critical point in the ball of radius {bounds['radius']} around the point, "
                f"within {claim['distance_upper']} of it\n"
                f"  every Hessian eigenvalue in the ball has |lambda| >= {claim['eigenvalue_abs_lower']}"
                f" ({claim['morse_index']} negative)\n"
                f"  loss in [{claim['loss_lower']}, {claim['loss_upper']}]\n"
                f"  gradient norm at the point <= {bounds['gradient_norm_upper']}, Hessian variation over the "
                f"ball <= {bounds['hessian_variation_upper']}; {self.precision}-bit ball arithmetic, {self.seconds:.2f} s")


class AnnihilationCertificate(Certificate):
    """A certificate that one more neuron turns a critical point into a non-minimum (see certify_split)."""

    @property
    def neuron(self) -> int:
        return self.data["split"]["neuron"]

    @property
    def alpha(self) -> Fraction:
        return Fraction(self.data["split"]["alpha"])

    @property
    def direction(self) -> np.ndarray:
        return np.array([float(x) for x in self.data["split"]["direction"]])

    @property
    def curvature_upper(self) -> Fraction:
        """The second derivative of the loss along the split direction at the embedded point is at most this."""
        return Fraction(self.data["claim"]["curvature_upper"])

    @property
    def splitting_curvature_upper(self) -> Fraction:
        """a^T (H_ii - I/2) a <= this on the whole ball (negative: annihilated for every alpha)."""
        return Fraction(self.data["bounds"]["splitting_curvature_upper"])

    def summary(self) -> str:
        claim, split = self.data["claim"], self.data["split"]
        base = Certificate(self.data, self.seconds).summary().split("\n", 1)[1]
        return (f"certified: with neuron {split['neuron']} split into alpha = {split['alpha']} and 1 - alpha, the "
                f"critical point of {_landscape_text(self.data['problem'])} below is a critical point of n = "
                f"{claim['embedded_student']} neurons that is not a local minimum:\n"
                f"  along the split direction (a in row {split['neuron']}, -a in the new row) the second derivative "
                f"is <= {claim['curvature_upper']} (a^T S a <= {self.data['bounds']['splitting_curvature_upper']} on "
                f"the ball, S = H_ii - I/2: negative for every alpha in (0, 1))\n{base}")


def _landscape_text(problem: dict) -> str:
    """The certificate's problem section in words: its landscape and its sizes (the scalar entries;
    matrices such as teacher weights are in the file)."""
    name = problem.get("name", "?")
    if name == _verify.PROBLEM_NAME:
        return f"{LANDSCAPE_WORDS[name]} (k={problem['teacher']}, n={problem['student']}, d={problem['dim']})"
    sizes = ", ".join(f"{key}={value}" for key, value in problem.items()
                      if key != "name" and isinstance(value, (int, float, str)) and not isinstance(value, bool))
    return f"{LANDSCAPE_WORDS.get(name, f'the {name} loss')}" + (f" ({sizes})" if sizes else "")


def problem_label(problem) -> str:
    """The problem in one line: its name and parameters (long values abbreviated)."""
    try:
        params = problem.params()
    except SpuriousError:  # a user's class whose parameters cannot be read back
        return f"{problem.name} (shape {tuple(problem.shape)})"
    parts = []
    for key, value in params.items():
        text = _short_text(value)
        parts.append(f"{key}={text if len(text) <= 40 else text[:37] + '...'}")
    return f"{problem.name} ({', '.join(parts)})" if parts else problem.name


def _short_text(value) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, separators=(",", ":"))
    except (TypeError, ValueError):  # params() should be plain data; an array still gets a readable label
        return json.dumps(numbers(value), separators=(",", ":")) if hasattr(value, "shape") else repr(value)


def rigorous_data(problem) -> dict:
    """What spurious.verify needs to certify points of `problem` (its `rigorous()`, checked).

    Raises NotCertifiable (one line naming the problem) when the problem has no rigorous evaluation
    or names a landscape verify cannot evaluate, and SpuriousError when its data is malformed."""
    from .problems.base import Problem

    if not isinstance(problem, Problem):
        raise SpuriousError(f"certify needs a spurious.Problem, got {type(problem).__name__}")
    data = problem.rigorous()
    supported = ", ".join(RIGOROUS_LANDSCAPES)
    if data is None:
        raise NotCertifiable(f"problem {problem_label(problem)} cannot be certified: it has no rigorous "
                             f"(ball-arithmetic) evaluation; certificates exist for: {supported}")
    landscape = data.get("landscape") if isinstance(data, dict) else None
    if landscape not in RIGOROUS_LANDSCAPES:
        raise NotCertifiable(f"problem {problem_label(problem)} cannot be certified: its rigorous data names "
                             f"landscape {landscape!r}, which spurious.verify does not evaluate "
                             f"(it evaluates: {supported})")
    # the ReLU landscape: teacher k, student n and the k x d teacher weights, consistent with the shape
    where = f"problem {problem_label(problem)}: rigorous()"
    try:
        teacher, student = int(data["teacher"]), int(data["student"])
        weights = np.asarray(data["teacher_weights"], dtype=np.float64)
    except (KeyError, TypeError, ValueError):
        raise SpuriousError(f"{where} must give teacher, student and teacher_weights (a matrix)") from None
    if weights.ndim != 2 or weights.shape[0] != teacher or not np.all(np.isfinite(weights)):
        raise SpuriousError(f"{where}: teacher_weights must be a finite {teacher} x d matrix, "
                            f"got shape {weights.shape}")
    if tuple(problem.shape) != (student, weights.shape[1]):
        raise SpuriousError(f"{where} describes points of shape {(student, weights.shape[1])}, but the problem's "
                            f"shape is {tuple(problem.shape)}")
    return {"landscape": landscape, "teacher": teacher, "student": student, "teacher_weights": weights}


def _as_point(problem, point) -> np.ndarray:
    try:
        array = np.asarray(point, dtype=np.float64)
    except (TypeError, ValueError):
        raise SpuriousError("the point must be a numeric matrix") from None
    if array.shape != tuple(problem.shape):
        raise SpuriousError(f"the point must have the problem's shape {tuple(problem.shape)}, got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise SpuriousError("the point contains NaN or infinity")
    return array


def newton_polish(problem, point: np.ndarray, max_move: float = 1e-3) -> np.ndarray:
    """Newton's method in float64 from `point` (the engine's polish, run to its limit of iterations).

    Refuses (NotNearCriticalPoint) when Newton's method does not converge within `max_move` (max-abs)."""
    from .analyze import Tolerances, polish

    tolerances = Tolerances(polish_grad=1e-15, polish_iterations=12, polish_radius=max_move)
    polished, grad_norm, ok = polish(problem, point[None], tolerances)
    if not bool(ok[0]):
        raise NotNearCriticalPoint(
            f"not near a critical point: Newton's method from the point did not converge within {max_move:g} of it")
    return polished[0]


def _refusal(failure: _verify.ProofFailed, point: np.ndarray, precision: int) -> CertificationRefused:
    cause, message = failure.cause, str(failure)
    if cause == "not_annihilated":
        return NotAnnihilated(f"not annihilated: {message}")
    if cause == "split":
        return CertificationRefused(message)
    if cause == "nonsmooth_point":
        return TooCloseToNonSmooth(f"too close to a non-smooth point: {message}")
    if cause == "degenerate":
        return DegenerateHessian(f"degenerate Hessian: {message}")
    if cause == "precision":
        return PrecisionInsufficient(f"precision insufficient at {precision} bits: {message}")
    if cause == "nonsmooth_ball":
        radius = float(failure.data.get("radius", "inf"))
        scale = float(np.max(np.linalg.norm(point, axis=1)))
        if radius <= NEAR_CRITICAL_RELATIVE_RADIUS * scale:
            return TooCloseToNonSmooth(f"too close to a non-smooth point: {message}")
        return NotNearCriticalPoint(
            f"not near a critical point: the proof needs a ball of radius {failure.data.get('radius')} "
            f"(radius factor x |gradient| / eigenvalue gap), and there {message}")
    return NotNearCriticalPoint(f"not near a critical point: {message}")


def certify(problem, point, *, precision: int | None = None, radius_factor: int = _verify.DEFAULT_RADIUS_FACTOR,
            polish: bool = False) -> Certificate:
    """Prove that a unique nondegenerate critical point of F lies near `point`; see the module docstring.

    problem: a certifiable Problem (see `rigorous_data`; others are refused with NotCertifiable before any
    work); point: an array of the problem's shape. precision: bits of the ball arithmetic
    (default: 128, raised to 256 and 512 only when rounding is what stops the proof). radius_factor:
    the ball radius is radius_factor * |grad F| / (eigenvalue gap), rounded up. polish: run Newton's
    method in float64 first (the certificate is then about the polished point).
    Raises a CertificationRefused subclass with the reason when it cannot prove.
    """
    started = time.perf_counter()
    rigorous, point = _prepare(problem, point, precision, radius_factor, polish)
    data = _prove(rigorous, point, precision, int(radius_factor))
    return Certificate(data, time.perf_counter() - started)


def _prepare(problem, point, precision, radius_factor, polish):
    """The checks every certificate makes before any work; returns (rigorous data, the point to prove)."""
    rigorous = rigorous_data(problem)
    point = _as_point(problem, point)
    if isinstance(radius_factor, bool) or not isinstance(radius_factor, (int, np.integer)) or radius_factor < 2:
        raise SpuriousError(f"radius_factor must be an integer >= 2, got {radius_factor!r}")
    if precision is not None and (isinstance(precision, bool) or not isinstance(precision, (int, np.integer))
                                  or not 53 <= precision <= 4096):
        raise SpuriousError(f"precision must be an integer number of bits in [53, 4096], got {precision!r}")
    require_memory(_verify.BYTES_PER_ENTRY * problem.size ** 2,
                   f"certifying a point of {problem.size:,} parameters (its Hessian in ball arithmetic, about "
                   f"{_verify.BYTES_PER_ENTRY} bytes an entry)")
    if polish:
        point = newton_polish(problem, point)
    return rigorous, point


def _prove(rigorous: dict, point: np.ndarray, precision: int | None, radius_factor: int, split=None) -> dict:
    """Derive the bounds and the claim at the working precisions in turn; the certificate's data.
    split: (neuron, alpha, direction) for an annihilation certificate."""
    teacher = [[Fraction(float(x)) for x in row] for row in rigorous["teacher_weights"]]
    values = point.tolist()
    precisions = (int(precision),) if precision is not None else PRECISIONS
    for attempt, bits in enumerate(precisions):
        try:
            if split is None:
                bounds = _verify.derive_bounds(teacher, values, bits, radius_factor)
                claim = _verify.conclude(rigorous["teacher"], rigorous["student"], bounds)
            else:
                neuron, alpha, direction = split
                bounds = _verify.derive_bounds(teacher, values, bits, radius_factor, (neuron, list(direction)))
                claim = _verify.conclude_annihilation(rigorous["teacher"], rigorous["student"], bounds, alpha)
        except _verify.ProofFailed as failure:
            if failure.cause == "precision" and attempt + 1 < len(precisions):
                continue
            raise _refusal(failure, point, bits) from None
        if split is None:
            return _verify.build_certificate(rigorous["teacher_weights"].tolist(), values, bounds, claim, bits,
                                             radius_factor)
        return _verify.build_annihilation_certificate(rigorous["teacher_weights"].tolist(), values, neuron, alpha,
                                                      list(direction), bounds, claim, bits, radius_factor)
    raise AssertionError("unreachable")


def exact_alpha(alpha) -> Fraction:
    """The split ratio as an exact fraction in (0, 1) with a decimal form (0.5, 0.25, '0.3'); SpuriousError
    (one line) otherwise."""
    if isinstance(alpha, bool):
        raise SpuriousError(f"alpha must be a number strictly between 0 and 1, got {alpha!r}")
    try:
        value = Fraction(alpha if isinstance(alpha, (str, Fraction)) else repr(float(alpha)))
    except (TypeError, ValueError, ZeroDivisionError):
        raise SpuriousError(f"alpha must be a number strictly between 0 and 1, got {alpha!r}") from None
    if not 0 < value < 1:
        raise SpuriousError(f"alpha must lie strictly between 0 and 1, got {alpha}")
    try:
        _verify.alpha_text(value)
    except _verify.ProofFailed as failure:
        raise SpuriousError(str(failure)) from None
    return value


def certify_split(problem, point, neuron: int, alpha, direction, *, precision: int | None = None,
                  radius_factor: int = _verify.DEFAULT_RADIUS_FACTOR, polish: bool = False) -> "AnnihilationCertificate":
    """Prove that splitting student `neuron` of the critical point near `point` into alpha w and (1 - alpha) w
    gives a critical point of one more neuron that is not a local minimum (spurious.verify's
    ANNIHILATION_THEOREM): the critical point is certified as by `certify`, and the curvature along
    `direction` (a in the neuron's row, -a in the new one) is bounded below 0 over the whole ball.
    Refused (NotAnnihilated) when that bound is not negative, NotCertifiable for a problem without a
    rigorous evaluation, SpuriousError for a student narrower than the teacher or a bad split."""
    started = time.perf_counter()
    rigorous, point = _prepare(problem, point, precision, radius_factor, polish)
    if rigorous["student"] < rigorous["teacher"]:
        raise SpuriousError(f"annihilation needs a student at least as wide as the teacher (n >= k), got "
                            f"n = {rigorous['student']} < k = {rigorous['teacher']}: below that the global value is "
                            f"unknown and no minimum is called spurious")
    if isinstance(neuron, bool) or not isinstance(neuron, (int, np.integer)) or not 0 <= neuron < len(point):
        raise SpuriousError(f"neuron must be a student neuron 0..{len(point) - 1}, got {neuron!r}")
    value = exact_alpha(alpha)
    direction = np.asarray(direction, dtype=np.float64).reshape(-1)
    if direction.shape != (point.shape[1],) or not np.all(np.isfinite(direction)) or not np.any(direction):
        raise SpuriousError(f"the split direction must be a nonzero finite vector of {point.shape[1]} numbers")
    data = _prove(rigorous, point, precision, int(radius_factor), (int(neuron), value, direction.tolist()))
    return AnnihilationCertificate(data, time.perf_counter() - started)


# ---------------------------------------------------------------------------------------------------
# Families of an analysis


@dataclass(frozen=True)
class FamilyCertification:
    """The outcome of certifying one family's representative.

    status: 'certified' or 'refused'; refusal: the refusal class name (e.g. 'DegenerateHessian');
    reason: its one-line message; certificate: the Certificate when certified.
    """

    family_id: int
    family_class: str
    family_loss: float
    status: str
    certificate: Certificate | None
    refusal: str | None
    reason: str | None
    seconds: float

    @property
    def certified(self) -> bool:
        return self.status == "certified"

    def to_dict(self, with_certificate: bool = True) -> dict:
        out = {"family_id": self.family_id, "family_class": self.family_class, "family_loss": self.family_loss,
               "status": self.status, "refusal": self.refusal, "reason": self.reason, "seconds": self.seconds}
        if self.certificate is not None:
            claim = self.certificate.data["claim"]
            out.update(kind=claim["kind"], morse_index=claim["morse_index"], spurious=claim["spurious"],
                       radius=self.certificate.data["bounds"]["radius"],
                       eigenvalue_abs_lower=claim["eigenvalue_abs_lower"], loss_lower=claim["loss_lower"],
                       loss_upper=claim["loss_upper"])
            if with_certificate:
                out["certificate"] = self.certificate.data
        return out


def certify_families(problem, analysis, classes=CERTIFIABLE_CLASSES, *, precision: int | None = None,
                     radius_factor: int = _verify.DEFAULT_RADIUS_FACTOR, polish: bool = False) -> list:
    """Certify the representative of every family of `analysis` whose class is in `classes`.

    Returns one FamilyCertification per such family, in the analysis' order; refusals are recorded,
    not raised (bad arguments, and a problem that cannot be certified, still raise SpuriousError).
    """
    rigorous_data(problem)
    classes = (classes,) if isinstance(classes, str) else tuple(classes)
    results = []
    for family in analysis.families:
        if family.cls not in classes:
            continue
        started = time.perf_counter()
        try:
            certificate = certify(problem, family.representative, precision=precision, radius_factor=radius_factor,
                                  polish=polish)
        except CertificationRefused as refusal:
            results.append(FamilyCertification(family.id, family.cls, float(family.loss), "refused", None,
                                               type(refusal).__name__, str(refusal), time.perf_counter() - started))
            continue
        results.append(FamilyCertification(family.id, family.cls, float(family.loss), "certified", certificate,
                                           None, None, certificate.seconds))
    return results


def choose_family(analysis, which="lowest-spurious"):
    """The family to certify: 'lowest-spurious' (lowest-loss spurious minimum), 'lowest-saddle', or an id."""
    families = analysis.families
    if isinstance(which, (int, np.integer)) or (isinstance(which, str) and which.isdigit()):
        wanted = int(which)
        for family in families:
            if family.id == wanted:
                return family
        raise SpuriousError(f"no family with id {wanted} (ids 0..{len(families) - 1})")
    wanted_class = {"lowest-spurious": "spurious_minimum", "lowest-saddle": "saddle"}.get(which)
    if wanted_class is None:
        raise SpuriousError(f"unknown family {which!r}: use lowest-spurious, lowest-saddle or a family id")
    matching = [f for f in families if f.cls == wanted_class]
    if not matching:
        counts = ", ".join(f"{c}: {n}" for c, n in analysis.counts().items())
        raise SpuriousError(f"no {wanted_class.replace('_', ' ')} family among the runs ({counts}); "
                            f"try more runs or another seed")
    return min(matching, key=lambda f: f.loss)


def read_point(path, problem=None) -> np.ndarray:
    """A point from a .npy file, a JSON file (a matrix, or an object with 'point' or 'representative'),
    or a text file (rows of numbers separated by spaces or commas)."""
    path = str(path)
    if path.endswith(".npy"):
        try:
            array = np.load(path, allow_pickle=False)
        except ValueError as error:
            raise SpuriousError(f"cannot read {path} as .npy: {error}") from None
    else:
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
        except UnicodeDecodeError:
            raise SpuriousError(f"cannot read {path}: not UTF-8 text (give a .npy file, JSON or plain numbers)") from None
        except IsADirectoryError:
            raise SpuriousError(f"cannot read {path}: is a folder") from None
        stripped = text.lstrip()
        if stripped.startswith(("[", "{")):
            try:
                data = json.loads(text)
            except json.JSONDecodeError as error:
                raise SpuriousError(f"cannot read {path} as JSON: {error.msg} at line {error.lineno}") from None
            if isinstance(data, dict):
                for key in ("point", "representative"):
                    if key in data:
                        data = data[key]
                        break
                else:
                    raise SpuriousError(f"{path}: a JSON object needs a 'point' or 'representative' entry")
            try:
                array = np.array([[float(x) for x in row] for row in data], dtype=np.float64)
            except (TypeError, ValueError):
                raise SpuriousError(f"{path}: the point must be a matrix of numbers") from None
        else:
            rows = [line.replace(",", " ").split() for line in text.splitlines()
                    if line.strip() and not line.lstrip().startswith("#")]
            try:
                array = np.array([[float(x) for x in row] for row in rows], dtype=np.float64)
            except ValueError:
                raise SpuriousError(f"{path}: not a matrix of numbers") from None
    if array.ndim == 1 and problem is not None and array.size == math.prod(problem.shape):
        array = array.reshape(problem.shape)
    if array.ndim != 2:
        raise SpuriousError(f"{path}: expected a matrix (student x dim), got an array of shape {array.shape}")
    return array


# ---------------------------------------------------------------------------------------------
# Critical points with diagonal symmetry, at any k (checked by spurious.verify_symmetric)

#: radii tried for the Krawczyk box, smallest first (per coordinate divided by isqrt of its orbit size)
SYMMETRIC_RADII = tuple(Fraction(1, 10 ** e) for e in (14, 13, 12, 11, 10, 9, 8))


def certify_symmetric(point, precision: int = 256) -> dict:
    """A certificate (dict) for the critical point of the fixed-space loss near `point` (a
    spurious.fixed_points.FixedPoint): polished by Newton in Arb at `precision` bits, then proven in a
    box whose radius is the smallest of SYMMETRIC_RADII for which the Krawczyk test passes."""
    from . import verify_symmetric
    from .fixed_points import high_precision_newton

    try:
        polished = high_precision_newton(point, bits=precision)
    except SpuriousError as error:
        raise CertificationRefused(f"no certificate for the {verify_symmetric.isotropy_name(point.sizes, False)} "
                                   f"point at k = {point.k}: {error}") from None
    failure = None
    for radius in SYMMETRIC_RADII:
        try:
            return verify_symmetric.build_certificate(polished.sizes, polished.values, radius, precision)
        except _verify.ProofFailed as error:
            failure = error
            if error.cause not in ("not_critical", "precision"):
                break
    raise CertificationRefused(f"no certificate for the {verify_symmetric.isotropy_name(point.sizes, False)} point "
                               f"at k = {point.k}: {failure}")

"""Transition states between minima: minimum-energy paths by a nudged elastic band with a climbing
image, many pairs in one compiled program, refined to index-1 saddles and confirmed by descent.

A pair of minima is first aligned by the problem's symmetry (`problem.symmetry.align`: the image of
the second end closest to the first), so the band joins the two orbits where they are nearest. The
band's interior images move along the force perpendicular to the path (the gradient with its
component along the tangent removed) plus a spring force along it that keeps them evenly spaced; the
tangent is Henkelman & Jonsson's upwind estimate (J. Chem. Phys. 113, 9978, 2000). After
`climb_after` iterations the highest image climbs: it feels the gradient with its tangent component
reversed, and so converges to the saddle on the path (Henkelman, Uberuaga & Jonsson, J. Chem. Phys.
113, 9901, 2000). The climbing image is then refined by eigenvector following (`Following`) and
the analysis's Newton polish, its Hessian spectrum gives its Morse index, and descent from it along
+- its negative eigenvector must reach the two minima (up to symmetry) for the transition to count as
connecting them. Single-ended searches (`gentlest_ascent`) start from one minimum; index reduction
(`lower_saddles`) goes from a critical point of higher index to the index-1 saddles below it.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import jax
import jax.numpy as jnp
import numpy as np

from .analyze import PSEUDO_INVERSE_CUTOFF, Tolerances, hessian_spectra, polish
from .core import setup as _setup  # noqa: F401  (float64 before any array)
from .core.errors import SpuriousError
from .core.kernels import compiled
from .optimize import MATRIX_FREE_LIMIT, GradientDescent, chunked, descend, protocol
from .problems.base import Problem


@dataclass(frozen=True)
class Band:
    """Settings of the nudged elastic band.

    images: points on the path, the two minima included (at least 3); step: the step of the
    steepest-descent update of the interior images; spring: the spring constant along the tangent;
    climb_after: iterations before the highest image starts to climb; force_tol: the band has
    converged once every interior image's force (the climbing image's full force) has at most this
    Euclidean norm; max_iterations: the band stops there, converged or not.
    """

    images: int = 16
    step: float = 0.05
    spring: float = 1.0
    climb_after: int = 200
    force_tol: float = 1e-7
    max_iterations: int = 50_000

    def __post_init__(self):
        if not _is_integer(self.images, 3):
            raise SpuriousError(f"a path needs at least 3 images (the two ends and one between), got {self.images!r}")
        _check_settings(self, "band", ("step", "spring", "force_tol"), {"climb_after": 0, "max_iterations": 0})


def _is_integer(value, smallest: int) -> bool:
    return not isinstance(value, bool) and isinstance(value, int) and value >= smallest


def _check_settings(settings, what: str, positive: tuple, integers: dict) -> None:
    """Refuse a setting that is not a positive finite number (`positive`) or an integer at least its
    smallest value (`integers`: name -> smallest)."""
    for name in positive:
        value = getattr(settings, name)
        if not (isinstance(value, (int, float)) and np.isfinite(value) and value > 0):
            raise SpuriousError(f"{what} {name} must be a positive finite number, got {value!r}")
    for name, smallest in integers.items():
        value = getattr(settings, name)
        if not _is_integer(value, smallest):
            kind = "a positive" if smallest == 1 else "a non-negative"
            raise SpuriousError(f"{what} {name} must be {kind} integer, got {value!r}")


@dataclass(frozen=True)
class Path:
    """A relaxed band: its images (the ends included) and their losses."""

    images: np.ndarray  # (M, *problem.shape)
    losses: np.ndarray  # (M,)
    iterations: int
    force: float  # the largest force norm on an interior image at the end
    converged: bool

    @property
    def highest(self) -> int:
        """Index of the highest interior image (the climbing image)."""
        return 1 + int(np.argmax(self.losses[1:-1]))


@dataclass(frozen=True)
class Transition:
    """What the band found between two minima.

    saddle: the polished climbing image; morse_index: its number of negative Hessian eigenvalues (-1
    where the polish did not reach a critical point, gradient above tolerances.polish_grad, or
    reached one where the loss is not twice differentiable); descends_to: the two points descent reaches from the saddle along
    +- its negative eigenvector (None where the index is not 1); connects: those are the two minima,
    up to symmetry, one each. barriers: saddle loss minus each minimum's loss."""

    start: np.ndarray
    end: np.ndarray  # the aligned image of the second minimum
    path: Path | None  # None for a single-ended search (gentlest_ascent)
    saddle: np.ndarray
    saddle_loss: float
    grad_norm: float
    morse_index: int
    spectrum: np.ndarray = field(repr=False)
    descends_to: tuple | None
    connects: bool
    kind: str = "band"  # or "ascent" (gentlest_ascent) or "reduction" (lower_saddles)

    @property
    def barriers(self) -> tuple[float, float]:
        return (self.saddle_loss - float(self.path.losses[0]), self.saddle_loss - float(self.path.losses[-1]))


def _check_point(problem: Problem, point, what: str) -> np.ndarray:
    try:
        point = np.asarray(point, dtype=np.float64)
    except (TypeError, ValueError):
        raise SpuriousError(f"{what} must be a numeric array") from None
    if point.shape != tuple(problem.shape):
        raise SpuriousError(f"{what} has shape {point.shape}, but {problem.name} has points of shape {tuple(problem.shape)}")
    if not np.all(np.isfinite(point)):
        raise SpuriousError(f"{what} contains NaN or infinity")
    return point


def check_minima(problem: Problem, points, tolerances: Tolerances = Tolerances()) -> None:
    """Refuse (SpuriousError) any point that is not a local minimum to the tolerances: its gradient
    norm above 1e-6 or a Hessian eigenvalue below -tolerances.eigenvalue."""
    points = np.asarray(points, dtype=np.float64)
    grad = compiled(problem, ("transitions", "grad_norm"), lambda: jax.jit(jax.vmap(
        lambda x: jnp.sqrt(jnp.sum(problem.grad(x) ** 2)))))
    norms = chunked(grad, points)
    for i, norm in enumerate(norms):
        if not norm <= 1e-6:
            raise SpuriousError(f"point {i} is not a critical point (gradient norm {norm:.3g} > 1e-6): "
                                f"a path joins two minima")
    for i, spectrum in enumerate(hessian_spectra(problem, points)):
        if np.any(np.isnan(spectrum)) or spectrum[0] < -tolerances.eigenvalue:
            raise SpuriousError(f"point {i} is not a minimum (smallest Hessian eigenvalue {spectrum[0]:.3g}): "
                                f"a path joins two minima")


def align(problem: Problem, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """The image of `second` under the problem's symmetry that is closest to `first`."""
    return np.asarray(problem.symmetry.align(np.asarray(first), np.asarray(second)), dtype=np.float64)


def _band_kernel(problem: Problem, band: Band):
    """One compiled program relaxing P bands of M images each: (P, M, size) -> images, losses,
    iterations, largest force per band."""
    shape, size = tuple(problem.shape), problem.size

    def forces(x, climbing):
        pairs, images = x.shape[0], x.shape[1]
        loss, grad = problem.loss_and_grad_batch(x.reshape((pairs * images, *shape)))
        loss, grad = loss.reshape(pairs, images), grad.reshape(pairs, images, size)
        plus, minus = x[:, 2:] - x[:, 1:-1], x[:, 1:-1] - x[:, :-2]
        before, here, after = loss[:, :-2], loss[:, 1:-1], loss[:, 2:]
        up, down = (after > here) & (here > before), (after < here) & (here < before)
        larger = jnp.maximum(jnp.abs(after - here), jnp.abs(before - here))[..., None]
        smaller = jnp.minimum(jnp.abs(after - here), jnp.abs(before - here))[..., None]
        mixed = jnp.where((after > before)[..., None], plus * larger + minus * smaller, plus * smaller + minus * larger)
        tangent = jnp.where(up[..., None], plus, jnp.where(down[..., None], minus, mixed))
        tangent = tangent / jnp.maximum(jnp.linalg.norm(tangent, axis=-1, keepdims=True), 1e-300)
        g = grad[:, 1:-1]
        along = jnp.sum(g * tangent, axis=-1, keepdims=True)
        stretch = band.spring * (jnp.linalg.norm(plus, axis=-1) - jnp.linalg.norm(minus, axis=-1))[..., None]
        force = -(g - along * tangent) + stretch * tangent
        top = jnp.argmax(here, axis=1)
        is_top = (jnp.arange(images - 2)[None, :] == top[:, None]) & climbing
        force = jnp.where(is_top[..., None], -g + 2.0 * along * tangent, force)
        return force, loss

    def largest(force):
        return jnp.max(jnp.linalg.norm(force, axis=-1), axis=1)

    def cond(carry):
        i, _, _, done = carry
        return (i < band.max_iterations) & ~jnp.all(done)

    def body(carry):
        i, x, _, done = carry
        climbing = i >= band.climb_after
        force, loss = forces(x, climbing)
        done = done | (climbing & (largest(force) <= band.force_tol))
        moved = x.at[:, 1:-1].add(band.step * force)
        x = jnp.where(done[:, None, None], x, moved)
        return i + 1, x, loss, done

    @jax.jit
    def relax(x):
        pairs, images = x.shape[0], x.shape[1]
        start = (0, x, jnp.zeros((pairs, images)), jnp.zeros(pairs, dtype=bool))
        iterations, x, _, done = jax.lax.while_loop(cond, body, start)
        force, loss = forces(x, jnp.array(True))
        return x, loss, iterations, largest(force), done

    return relax


def elastic_bands(problem: Problem, starts, ends, band: Band = Band()) -> list[Path]:
    """Minimum-energy paths between starts[p] and ends[p] (taken as given: align them first), all
    pairs relaxed together in one compiled program, each from the straight segment."""
    starts = np.asarray(starts, dtype=np.float64).reshape(-1, problem.size)
    ends = np.asarray(ends, dtype=np.float64).reshape(-1, problem.size)
    if starts.shape != ends.shape or not len(starts):
        raise SpuriousError(f"elastic bands need as many ends as starts, got {len(starts)} and {len(ends)}")
    fraction = np.linspace(0.0, 1.0, band.images)[None, :, None]
    straight = starts[:, None, :] * (1.0 - fraction) + ends[:, None, :] * fraction
    relax = compiled(problem, ("transitions", "band", band), lambda: _band_kernel(problem, band))
    x, loss, iterations, force, done = (np.asarray(a) for a in relax(jnp.asarray(straight)))
    return [Path(images=x[p].reshape((band.images, *problem.shape)), losses=loss[p], iterations=int(iterations),
                 force=float(force[p]), converged=bool(done[p])) for p in range(len(x))]


def segment_losses(problem: Problem, first, second, points: int = 64) -> np.ndarray:
    """The loss along the straight segment from `first` to `second` (points evenly spaced, ends included)."""
    fraction = np.linspace(0.0, 1.0, points)[:, None]
    flat = np.asarray(first).reshape(1, -1) * (1.0 - fraction) + np.asarray(second).reshape(1, -1) * fraction
    loss = compiled(problem, ("transitions", "loss"), lambda: jax.jit(jax.vmap(problem.loss)))
    return chunked(loss, flat.reshape((points, *problem.shape)), chunk=64)


#: descent from a saddle starts this far along its negative eigenvector (relative to the point's norm)
DISPLACEMENT = 1e-3
#: descent from a saddle reached a given minimum when it ends this close to it (max-abs, up to symmetry):
#: distinct minima lie O(1) apart, and descent to a minimum where the loss is only C^1 (a global
#: minimum W = V) converges sublinearly, so it stops a little short of it
SAME_MINIMUM = 1e-3


@dataclass(frozen=True)
class Following:
    """Settings of eigenvector following (Cerjan & Miller 1981; Wales's bounded form), which refines a
    candidate to an index-1 saddle: in the Hessian's eigenbasis the step goes uphill along one mode
    (the lowest, or the one closest to a given direction, followed from step to step) and downhill
    along every other, 2 g_i / (|lambda_i| + sqrt(lambda_i^2 + 4 g_i^2)) along mode i (Newton's step
    near a saddle, at most 1 in size far from one), the whole step at most max_step times max(1, |x0|)
    for a start x0. Modes of near-zero curvature (relative 1e-10, the polish's cutoff) and the
    problem's zero modes at the start (a continuous symmetry's orbit, whose curvature off the critical
    set need not be small) are left alone. It stops at ||grad F|| <= grad_tol, when its step vanishes,
    or after max_iterations; a start from which it ends with a larger gradient, or not finite, is
    kept as it was. The analysis's Newton polish then finishes. Unlike a Newton polish it does not
    stop at a critical point of higher index that it is not already on, and it converges where the
    softest mode makes a band's climbing image or a gentlest ascent slow."""

    max_step: float = 0.05
    grad_tol: float = 1e-12
    max_iterations: int = 500

    def __post_init__(self):
        _check_settings(self, "eigenvector following", ("max_step", "grad_tol"), {"max_iterations": 1})


def _following_kernel(problem: Problem, following: Following, flat_count: int):
    shape, size = tuple(problem.shape), problem.size

    def one(packed):
        # packed: the start, the uphill direction to follow (zero: the lowest mode), the zero modes' basis
        x0, direction, flat = packed[:size], packed[size:2 * size], packed[2 * size:].reshape(size, flat_count)
        limit = following.max_step * jnp.maximum(1.0, jnp.linalg.norm(x0))
        tracking = jnp.linalg.norm(direction) > 0

        def gradient_norm(x):
            return jnp.linalg.norm(problem.grad(x.reshape(shape)))

        def cond(carry):
            i, _, _, gnorm, moving = carry
            return (i < following.max_iterations) & (gnorm > following.grad_tol) & jnp.isfinite(gnorm) & moving

        def body(carry):
            i, x, direction, _, _ = carry
            g = problem.grad(x.reshape(shape)).reshape(size)
            values, vectors = jnp.linalg.eigh(problem.hessian(x.reshape(shape)).reshape(size, size))
            keep = (jnp.abs(values) > PSEUDO_INVERSE_CUTOFF * jnp.max(jnp.abs(values))) & \
                (jnp.sum((flat.T @ vectors) ** 2, axis=0) < 0.5)
            overlap = vectors.T @ direction
            chosen = jnp.where(tracking, jnp.argmax(jnp.where(keep, jnp.abs(overlap), -1.0)), jnp.argmax(keep))
            uphill = jnp.arange(size) == chosen
            direction = jnp.where(tracking, vectors[:, chosen] * jnp.where(overlap[chosen] < 0, -1.0, 1.0), direction)
            along = vectors.T @ g
            denominator = jnp.abs(values) + jnp.sqrt(values ** 2 + 4.0 * along ** 2)
            step = jnp.where(keep & (denominator > 0), 2.0 * along / jnp.where(denominator > 0, denominator, 1.0), 0.0)
            step = vectors @ jnp.where(uphill, step, -step)
            length = jnp.linalg.norm(step)
            step = step * jnp.minimum(1.0, limit / jnp.maximum(length, 1e-300))
            x = x + step
            return i + 1, x, direction, gradient_norm(x), length > 0

        start_norm = gradient_norm(x0)
        _, x, _, gnorm, _ = jax.lax.while_loop(cond, body, (0, x0, direction, start_norm, jnp.array(True)))
        worse = ~(gnorm <= start_norm)  # larger, or not finite
        return jnp.where(worse, x0, x), jnp.where(worse, start_norm, gnorm)

    return jax.jit(jax.vmap(one))


def follow_eigenvectors(problem: Problem, points, following: Following = Following(),
                        uphill=None) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvector following from each point (see Following), all in one compiled program; uphill:
    per point, the direction whose mode to climb (followed by overlap from step to step), or None for
    the lowest mode everywhere. Returns (points reached, their gradient norms)."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, problem.size)
    if not len(points):
        return points.reshape((0, *problem.shape)), np.zeros(0)
    directions = np.zeros_like(points) if uphill is None else np.asarray(uphill, dtype=np.float64).reshape(points.shape)
    bases = [_zero_mode_basis(problem, point) for point in points]
    flat_count = max(1, max(b.shape[1] for b in bases))
    flat = np.zeros((len(points), problem.size, flat_count))
    for p, basis in enumerate(bases):
        flat[p, :, : basis.shape[1]] = basis
    packed = np.concatenate([points, directions, flat.reshape(len(points), -1)], axis=1)
    kernel = compiled(problem, ("transitions", "following", following, flat_count),
                      lambda: _following_kernel(problem, following, flat_count))
    x, norms = chunked(kernel, packed)
    return np.asarray(x).reshape((-1, *problem.shape)), np.asarray(norms)


def _zero_mode_basis(problem: Problem, point: np.ndarray) -> np.ndarray:
    """An orthonormal basis (size, m) of the problem's zero modes at the point (m may be 0)."""
    zero = np.asarray(problem.zero_modes(np.asarray(point).reshape(problem.shape)), dtype=float).reshape(-1, problem.size)
    if not len(zero):
        return np.zeros((problem.size, 0))
    basis, _ = np.linalg.qr(zero.T)
    return basis


def _finish(problem: Problem, candidates: np.ndarray, tolerances: Tolerances, optimizer,
            following: Following = Following(), uphill=None) -> list[dict]:
    """Refine candidate saddles by eigenvector following (climbing the lowest mode, or the modes
    `uphill` gives) and the Newton polish, take their spectra and, from each of index 1, descend
    along +- its negative eigenvector (both sides of all of them in one call)."""
    refined, _ = follow_eigenvectors(problem, candidates, following, uphill)
    loose = Tolerances(**{**tolerances.to_dict(), "polish_radius": max(tolerances.polish_radius, 1e-2)})
    saddles, norms, _ = polish(problem, refined, loose)
    spectra = hessian_spectra(problem, saddles)
    loss = compiled(problem, ("transitions", "loss"), lambda: jax.jit(jax.vmap(problem.loss)))
    losses = chunked(loss, saddles)
    # a point the polish left off the critical set, or on the non-smooth one, is no transition state:
    # counting its negative curvature would join minima through a slope
    critical = [bool(n <= tolerances.polish_grad) and not problem.nonsmooth_reason(x) for n, x in zip(norms, saddles)]
    indices = [int(np.sum(s < -tolerances.eigenvalue)) if ok and not np.any(np.isnan(s)) else -1
               for s, ok in zip(spectra, critical)]
    starts, owners = [], []
    hessian = compiled(problem, ("transitions", "hessian"), lambda: jax.jit(problem.hessian))
    for p, (saddle, index) in enumerate(zip(saddles, indices)):
        if index != 1:
            continue
        _, vectors = np.linalg.eigh(np.asarray(hessian(jnp.asarray(saddle))))
        direction = vectors[:, 0].reshape(problem.shape) * DISPLACEMENT * max(1.0, float(np.linalg.norm(saddle)))
        starts += [saddle + direction, saddle - direction]
        owners.append(p)
    curvature = max((float(np.max(np.abs(spectra[p]))) for p in owners), default=0.0)
    reached = descend_from(problem, np.stack(starts), optimizer, curvature) if starts else None
    out = []
    for p in range(len(saddles)):
        descends_to = None
        if p in owners:
            j = owners.index(p)
            descends_to = (reached[2 * j], reached[2 * j + 1])
        out.append({"saddle": saddles[p], "saddle_loss": float(losses[p]), "grad_norm": float(norms[p]),
                    "morse_index": indices[p], "spectrum": spectra[p], "descends_to": descends_to})
    return out


#: how often descent from a saddle goes on with a step 4 times smaller where it has not converged and
#: the step is too large for the curvature where it stopped
STEP_REDUCTIONS = 3


def descend_from(problem: Problem, points, optimizer: GradientDescent | None = None,
                 curvature: float | None = None) -> np.ndarray:
    """Where gradient descent from each point ends (by `optimizer`; default the problem's protocol to
    the gradient criterion with its step at most 1 / curvature, the largest |Hessian eigenvalue| over
    the points, taken from their dense spectra when not given: a step the protocol chose for another
    scale can settle into a two-cycle across a steep valley and never reach the minimum). A run that
    has not converged where its step times the curvature at its end exceeds 1 goes on with the step
    divided by 4, up to STEP_REDUCTIONS times."""
    points = np.asarray(points, dtype=np.float64)
    if optimizer is not None:
        return descend(problem, points, optimizer).params
    optimizer = protocol(problem, global_stop=False)
    if curvature is None:
        curvature = max(float(np.nanmax(np.abs(s))) for s in hessian_spectra(problem, points))
    if curvature > 0 and optimizer.step * curvature > 1.0:
        optimizer = replace(optimizer, step=1.0 / curvature)
    ends = descend(problem, points, optimizer)
    params, status = np.array(ends.params), np.array(ends.status, dtype=object)
    for _ in range(STEP_REDUCTIONS):
        moving = np.flatnonzero(status == "not_converged")
        if len(moving):
            steep = [float(np.nanmax(np.abs(s))) * optimizer.step > 1.0 for s in hessian_spectra(problem, params[moving])]
            moving = moving[np.asarray(steep, dtype=bool)]
        if not len(moving):
            break
        optimizer = replace(optimizer, step=optimizer.step / 4.0)
        again = descend(problem, params[moving], optimizer)
        params[moving], status[moving] = again.params, again.status
    return params


def _check_size(problem: Problem):
    if problem.size > MATRIX_FREE_LIMIT:
        raise SpuriousError(f"{problem.name} has {problem.size:,} parameters: transition states take dense Hessians, "
                            f"at most {MATRIX_FREE_LIMIT:,} parameters")


def transitions(problem: Problem, pairs, band: Band = Band(), tolerances: Tolerances = Tolerances(),
                optimizer: GradientDescent | None = None, check: bool = True) -> list[Transition]:
    """For each pair (a, b) of minima: align b to a, relax a band between them, polish its climbing
    image to a critical point, take its spectrum, and descend from it along +- its negative
    eigenvector (by `optimizer`, default the problem's protocol to the gradient criterion) to see
    which minima it joins."""
    _check_size(problem)
    pairs = list(pairs)
    if not pairs:
        raise SpuriousError("no pairs of minima given")
    firsts = np.stack([_check_point(problem, a, f"pair {i} first point") for i, (a, _) in enumerate(pairs)])
    seconds = np.stack([_check_point(problem, b, f"pair {i} second point") for i, (_, b) in enumerate(pairs)])
    if check:
        check_minima(problem, np.concatenate([firsts, seconds]), tolerances)
    aligned = np.stack([align(problem, a, b) for a, b in zip(firsts, seconds)])
    paths = elastic_bands(problem, firsts, aligned, band)
    finished = _finish(problem, np.stack([path.images[path.highest] for path in paths]), tolerances, optimizer)

    def same(a, b):
        return problem.symmetry.distance(a, b) <= SAME_MINIMUM

    out = []
    for p, (path, found) in enumerate(zip(paths, finished)):
        ends = found["descends_to"]
        connects = ends is not None and bool((same(firsts[p], ends[0]) and same(seconds[p], ends[1]))
                                             or (same(firsts[p], ends[1]) and same(seconds[p], ends[0])))
        out.append(Transition(start=firsts[p], end=aligned[p], path=path, connects=connects, **found))
    return out


@dataclass(frozen=True)
class Ascent:
    """Settings of the single-ended search (gentlest ascent dynamics, E & Zhou 2011): from a minimum,
    `modes` softest Hessian modes are followed uphill in both directions, from `displacement` along
    each; the point x moves along -grad F with its component along the unit direction v reversed,
    while v turns towards the softest mode of the Hessian at x (x' = -g + 2 (g.v) v, v' = -Hv +
    (v.Hv) v), which converges to an index-1 saddle. step: the time step of both; the search stops
    at ||grad F|| <= grad_tol or after max_iterations."""

    modes: int = 4
    step: float = 0.05
    displacement: float = 1e-2
    grad_tol: float = 1e-7
    max_iterations: int = 50_000

    def __post_init__(self):
        _check_settings(self, "ascent", ("step", "displacement", "grad_tol"), {"modes": 1, "max_iterations": 1})


def _ascent_kernel(problem: Problem, ascent: Ascent):
    shape, size = tuple(problem.shape), problem.size

    def one(x, v):
        def hvp(point, direction):
            return jax.jvp(problem.grad, (point.reshape(shape),), (direction.reshape(shape),))[1].reshape(size)

        def cond(carry):
            i, _, _, gnorm = carry
            return (i < ascent.max_iterations) & (gnorm > ascent.grad_tol) & jnp.isfinite(gnorm)

        def body(carry):
            i, x, v, _ = carry
            g = problem.grad(x.reshape(shape)).reshape(size)
            hv = hvp(x, v)
            x = x + ascent.step * (-g + 2.0 * jnp.dot(g, v) * v)
            v = v + ascent.step * (-hv + jnp.dot(v, hv) * v)
            v = v / jnp.linalg.norm(v)
            return i + 1, x, v, jnp.linalg.norm(g)

        start = (0, x, v, jnp.linalg.norm(problem.grad(x.reshape(shape))))
        i, x, v, _ = jax.lax.while_loop(cond, body, start)
        return x, i, jnp.linalg.norm(problem.grad(x.reshape(shape)))

    return jax.jit(jax.vmap(one))


def gentlest_ascent(problem: Problem, minima, ascent: Ascent = Ascent(), tolerances: Tolerances = Tolerances(),
                    optimizer: GradientDescent | None = None) -> list[list[Transition]]:
    """Single-ended search from each minimum: index-1 saddles reached by following its softest
    Hessian modes uphill (see Ascent), polished and confirmed by descent like the bands' saddles.
    Returns, per minimum, one Transition per search (path None; end: the start of the ascent;
    connects: descent from the saddle reaches this minimum on one side)."""
    _check_size(problem)
    minima = np.stack([_check_point(problem, m, f"minimum {i}") for i, m in enumerate(minima)])
    check_minima(problem, minima, tolerances)
    hessian = compiled(problem, ("transitions", "hessian"), lambda: jax.jit(problem.hessian))
    starts, directions, owners = [], [], []
    for i, minimum in enumerate(minima):
        _, vectors = np.linalg.eigh(np.asarray(hessian(jnp.asarray(minimum))))
        modes = _orthonormal_modes(problem, minimum, vectors)[: ascent.modes]
        for mode in modes:
            for sign in (1.0, -1.0):
                starts.append(minimum.reshape(-1) + sign * ascent.displacement * mode)
                directions.append(sign * mode)
                owners.append(i)
    climb = compiled(problem, ("transitions", "ascent", ascent), lambda: _ascent_kernel(problem, ascent))
    ends, _, _ = (np.asarray(a) for a in climb(jnp.asarray(np.stack(starts)), jnp.asarray(np.stack(directions))))
    finished = _finish(problem, ends.reshape((-1, *problem.shape)), tolerances, optimizer)
    out: list[list[Transition]] = [[] for _ in minima]
    for start, owner, found in zip(starts, owners, finished):
        ends = found["descends_to"]
        connects = ends is not None and any(problem.symmetry.distance(minima[owner], e) <= SAME_MINIMUM for e in ends)
        out[owner].append(Transition(start=minima[owner], end=start.reshape(problem.shape), path=None,
                                     connects=bool(connects), kind="ascent", **found))
    return out


#: index reduction climbs each of at most this many of a critical point's lowest negative modes
REDUCTION_MODES = 4


def lower_saddles(problem: Problem, points, tolerances: Tolerances = Tolerances(),
                  optimizer: GradientDescent | None = None) -> list[list[Transition]]:
    """Index reduction: from each critical point of Morse index m >= 2 (where a band can peak when its
    path crosses a higher ridge), eigenvector following that climbs one of its negative modes (each
    of the REDUCTION_MODES lowest in turn, followed by overlap) and starts DISPLACEMENT away along +-
    each of the other negative modes goes down those while staying at the top of the one it climbs,
    to the index-1 saddles below the point whose unstable direction is that mode; they are polished
    and confirmed by descent like the bands' saddles. Returns, per point, the Transitions found (path
    None, kind "reduction"; start and end: the point; connects False); none for a point of index 0 or 1."""
    _check_size(problem)
    points = np.stack([_check_point(problem, p, f"point {i}") for i, p in enumerate(points)])
    hessian = compiled(problem, ("transitions", "hessian"), lambda: jax.jit(problem.hessian))
    starts, climbed, owners = [], [], []
    for i, point in enumerate(points):
        values, vectors = np.linalg.eigh(np.asarray(hessian(jnp.asarray(point))))
        modes = _orthonormal_modes(problem, point, vectors[:, values < -tolerances.eigenvalue])[:REDUCTION_MODES]
        scale = DISPLACEMENT * max(1.0, float(np.linalg.norm(point)))
        for up, mode in enumerate(modes):
            for down, other in enumerate(modes):
                if down == up or len(modes) < 2:
                    continue
                for sign in (1.0, -1.0):
                    starts.append(point + sign * scale * other.reshape(problem.shape))
                    climbed.append(mode)
                    owners.append(i)
    out: list[list[Transition]] = [[] for _ in points]
    if not starts:
        return out
    found = _finish(problem, np.stack(starts), tolerances, optimizer, uphill=np.stack(climbed))
    for owner, result in zip(owners, found):
        out[owner].append(Transition(start=points[owner], end=points[owner], path=None, connects=False,
                                     kind="reduction", **result))
    return out


def _orthonormal_modes(problem: Problem, point: np.ndarray, vectors: np.ndarray) -> list[np.ndarray]:
    """The Hessian's eigenvectors (ascending eigenvalue order) outside the span of the problem's zero
    modes at the point (flat directions of a continuous symmetry lead to no saddle)."""
    basis = _zero_mode_basis(problem, point)
    return [v for v in vectors.T if np.linalg.norm(basis.T @ v) < 0.5]

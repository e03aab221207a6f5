"""The landscape between minima: transition states from each minimum to a target (or between all
pairs), their certificates, and the disconnectivity tree of the network (`spurious.transitions`
finds the paths and saddles; this layer adds the ball-arithmetic proofs)."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import jax
import numpy as np

from .analyze import Tolerances, isotropy_of
from .core import setup as _setup  # noqa: F401  (float64 before any array)
from .certify import CertificationRefused, certify as prove
from .core.disconnectivity import disconnectivity, lowest_levels
from .core.errors import SpuriousError
from .core.kernels import compiled
from .optimize import chunked
from .problems.base import Problem
from .transitions import SAME_MINIMUM, Ascent, Band, _check_point, check_minima, descend_from, gentlest_ascent
from .transitions import lower_saddles, transitions


@dataclass(frozen=True)
class Network:
    """Minima and the transition states found between them.

    minima: (label, loss, point) per minimum, the given ones first, then those found on the way;
    searches: (i, j, Transition) for every pair a band joined and every index reduction below the
    higher-index point where that band peaked (kind "reduction", path None), and (i, None, Transition)
    for every single-ended search from minimum i (kind "ascent", path None); edges: (a, b, search) for every saddle
    of index 1 whose descent reached two distinct known minima a and b (not necessarily the pair
    searched); certificates: search position -> the saddle's Certificate, or the refusal's text."""

    minima: tuple
    searches: tuple
    edges: tuple
    certificates: dict = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict:
        """JSON-ready: the minima (label, loss, point), each band's pair and what it found (saddle, its
        index and loss, the path's losses, the certificate's loss enclosure or the refusal), the edges."""
        searches = []
        for position, (i, j, found) in enumerate(self.searches):
            certificate = self.certificates.get(position)
            proof = {"certified": None}
            if isinstance(certificate, str):
                proof = {"certified": False, "refusal": certificate}
            elif certificate is not None:
                proof = {"certified": True, "certified_index": certificate.morse_index,
                         "loss_lower": str(certificate.loss_lower), "loss_upper": str(certificate.loss_upper)}
            path = found.path
            searches.append({"from": i, "to": j, "kind": found.kind,
                             "saddle_loss": found.saddle_loss, "morse_index": found.morse_index,
                             "grad_norm": found.grad_norm, "connects": found.connects,
                             "iterations": None if path is None else path.iterations,
                             "converged": None if path is None else path.converged,
                             "force": None if path is None else path.force,
                             "path_losses": None if path is None else path.losses.tolist(),
                             "saddle": found.saddle.tolist(), **proof})
        return {"minima": [{"label": label, "loss": loss, "point": np.asarray(point).tolist()}
                           for label, loss, point in self.minima],
                "searches": searches, "edges": [{"a": a, "b": b, "search": s} for a, b, s in self.edges],
                "seconds": self.seconds}

    def connected(self) -> list[tuple[int, int, float]]:
        """(a, b, saddle loss) of every edge."""
        return [(a, b, self.searches[search][2].saddle_loss) for a, b, search in self.edges]

    def merges(self) -> list[tuple[float, int, int, int]]:
        """The disconnectivity tree over the edges (see `disconnectivity`)."""
        return disconnectivity([m[1] for m in self.minima], self.connected())

    def lowest_barriers(self, target: int) -> dict[int, float | None]:
        """For each minimum, the lowest saddle level at which it joins `target` over the edges (a
        minimax path in the network), minus its own loss; None where no path was found."""
        levels = lowest_levels(len(self.minima), self.merges(), target)
        return {i: None if level is None else level - self.minima[i][1] for i, level in levels.items()}


def explore(problem: Problem, minima, target: int, band: Band = Band(), tolerances: Tolerances = Tolerances(),
            certify: bool = True, all_pairs: bool = False, rounds: int = 8, ascent: Ascent | None = Ascent(modes=2),
            single_ended: bool = False) -> Network:
    """Transition states from every minimum to minima[target] (all_pairs: between every pair), the
    bands of a round relaxed together. A saddle joins the two minima its descent reaches (found ones
    are added); where a band does not join its own pair, the minima it passes (descent from its
    interior local minima, its saddle, or the index-1 saddles below a critical point of higher index
    where it peaked: `lower_saddles`) are searched against both ends in the next round. A
    minimum still not joined to the target after a round's bands gets a single-ended search (`ascent`:
    gentlest ascent from its softest modes; None: bands only), and the minima beyond the saddles it
    reaches are searched against the target in the next round; up to `rounds` rounds. single_ended:
    a single-ended search from every given minimum first. Each edge's saddle is certified by ball
    arithmetic where the problem is certifiable. minima: (label, point) pairs."""
    started = time.perf_counter()
    given = [(str(label), _check_point(problem, point, f"minimum {label!r}")) for label, point in minima]
    if len(given) < 2:
        raise SpuriousError(f"exploring needs at least two minima, got {len(given)}")
    if isinstance(target, bool) or not isinstance(target, (int, np.integer)) or not 0 <= target < len(given):
        raise SpuriousError(f"target {target!r} is not one of the {len(given)} minima")
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise SpuriousError(f"rounds must be a positive integer, got {rounds!r}")
    points = np.stack([p for _, p in given])
    check_minima(problem, points, tolerances)
    loss = compiled(problem, ("transitions", "loss"), lambda: jax.jit(jax.vmap(problem.loss)))
    known = [[label, float(value), point] for (label, point), value in zip(given, chunked(loss, points))]

    def identify(candidates) -> list[int | None]:
        """The known minimum each point is (up to symmetry), adding new minima; None for a point that
        is not a minimum."""
        out = []
        for point in candidates:
            index = next((m for m, (_, _, q) in enumerate(known)
                          if problem.symmetry.distance(q, point) <= SAME_MINIMUM), None)
            if index is None:
                try:
                    check_minima(problem, point[None], tolerances)
                except SpuriousError:
                    out.append(None)
                    continue
                named = isotropy_of(problem, point, tolerances)
                label = f"found {len(known) - len(given) + 1}" + (f" {named.name}" if named else "")
                known.append([label, float(chunked(loss, point[None])[0]), point])
                index = len(known) - 1
            out.append(index)
        return out

    if all_pairs:
        pending = [(i, j) for i in range(len(given)) for j in range(i + 1, len(given))]
    else:
        pending = [(i, target) for i in range(len(given)) if i != target]
    searched = set(pending)
    searches, edges = [], []

    def record(i, j, transition) -> list[int]:
        """Add a search and its edge; the minima its saddle's descent reached."""
        position = len(searches)
        searches.append((i, j, transition))
        if transition.morse_index != 1 or transition.descends_to is None:
            return []
        a, b = identify(transition.descends_to)
        # one edge per saddle orbit: symmetric images and repeated finds of a saddle join the same minima
        repeated = any({a, b} == {c, d} and abs(searches[s][2].saddle_loss - transition.saddle_loss) <= 1e-10
                       for c, d, s in edges)
        if a is not None and b is not None and a != b and not repeated:
            edges.append((a, b, position))
        return [m for m in (a, b) if m is not None]

    def joined_levels():
        edges_now = [(a, b, searches[s][2].saddle_loss) for a, b, s in edges]
        return lowest_levels(len(known), disconnectivity([m[1] for m in known], edges_now), target)

    def climb(sources) -> list[tuple[int, int]]:
        """Single-ended searches from the sources; the pairs to search next: each minimum beyond a saddle
        with the target and with the (at most 3) minima already joined to the target closest below it in loss."""
        ascended.update(sources)
        beyond = []
        for i, found in zip(sources, gentlest_ascent(problem, [known[i][2] for i in sources], ascent, tolerances)):
            for transition in found:
                beyond += [m for m in record(i, None, transition) if m != i]
        levels = joined_levels()
        anchors = [m for m in range(len(known)) if m == target or levels[m] is not None]
        following = []
        for middle in dict.fromkeys(beyond):
            below = sorted((m for m in anchors if known[m][1] < known[middle][1] and m != target),
                           key=lambda m: known[middle][1] - known[m][1])[:3]
            for other in [target] + below:
                pair = (middle, other)
                if middle != other and pair not in searched and pair[::-1] not in searched:
                    searched.add(pair)
                    following.append(pair)
        return following

    ascended: set[int] = set()
    if single_ended and ascent is not None:
        pending += climb(list(range(len(given))))
    for _ in range(rounds):
        if not pending:
            break
        found = transitions(problem, [(known[i][2], known[j][2]) for i, j in pending], band, tolerances, check=False)
        following = []

        def between(i, j, passed):
            for middle in dict.fromkeys(passed):
                for pair in ((i, middle), (middle, j)):
                    if middle not in (i, j) and pair not in searched and pair[::-1] not in searched:
                        searched.add(pair)
                        following.append(pair)

        higher = []
        for (i, j), transition in zip(pending, found):
            passed = record(i, j, transition)
            if not transition.connects:
                losses = transition.path.losses
                dips = [m for m in range(1, len(losses) - 1) if losses[m - 1] > losses[m] <= losses[m + 1]]
                if dips:
                    ends = descend_from(problem, transition.path.images[dips])
                    passed += [m for m in identify(ends) if m is not None]
                if transition.morse_index >= 2:
                    higher.append((i, j, transition.saddle))
            between(i, j, passed)
        # a band that peaked at a critical point of higher index: the index-1 saddles below it
        if higher:
            for (i, j, _), below in zip(higher, lower_saddles(problem, [p for _, _, p in higher], tolerances)):
                between(i, j, [m for transition in below for m in record(i, j, transition)])
        if ascent is not None:
            joined = joined_levels()
            stranded = [m for m in range(len(known)) if m != target and joined[m] is None and m not in ascended]
            if stranded:
                following += climb(stranded)
        pending = following
    certificates = {}
    if certify and problem.certifiable:
        for position in dict.fromkeys(search for _, _, search in edges):
            try:
                certificates[position] = prove(problem, searches[position][2].saddle)
            except CertificationRefused as refusal:
                certificates[position] = str(refusal)
    return Network(minima=tuple((label, value, point) for label, value, point in known),
                   searches=tuple(searches), edges=tuple(edges), certificates=certificates,
                   seconds=time.perf_counter() - started)

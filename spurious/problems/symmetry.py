"""Symmetry groups of landscapes, as distances between points up to the group.

Two endpoints belong to one family when some group element maps one onto the other. Each group
here answers `distance(a, b)`: the max-abs entry difference after the best alignment it finds
(Hungarian assignment), so a small distance is a witness that the points are equivalent.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from ..core.errors import SpuriousError

#: the most coordinates whose isotropy is searched (one assignment problem of size n per coordinate)
ISOTROPY_LIMIT = 400


def _row_assignment(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Permutation p minimising sum_i ||a_i - b_p(i)||^2."""
    cost = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
    _, cols = linear_sum_assignment(cost)
    return cols


@dataclass(frozen=True)
class Trivial:
    """No symmetry: plain max-abs distance."""

    name: str = "trivial"

    def align(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """b itself: the identity is the only alignment."""
        return np.asarray(b)

    def distance(self, a: np.ndarray, b: np.ndarray) -> float:
        return float(np.max(np.abs(np.asarray(a) - np.asarray(b))))

    def random_image(self, point: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The image of point under a random group element: the only element is the identity."""
        return np.array(point, dtype=np.float64)

    def isotropy(self, point, tolerance: float = 1e-6):
        """No group to speak of: None."""
        return None


@dataclass(frozen=True)
class NeuronPermutations:
    """Permutations of the rows (hidden neurons) of a weight matrix."""

    name: str = "neuron-permutations"

    def align(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """b with its rows permuted to best match a."""
        return b[_row_assignment(a, b)]

    def distance(self, a: np.ndarray, b: np.ndarray) -> float:
        a, b = np.asarray(a), np.asarray(b)
        return float(np.max(np.abs(a - self.align(a, b))))

    def random_image(self, point: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """point with its rows in a uniformly random order."""
        point = np.array(point, dtype=np.float64)
        return point[rng.permutation(point.shape[0])]

    def isotropy(self, point, tolerance: float = 1e-6):
        """Not named for this group (only the teacher-student group with V = I has named types): None."""
        return None


@dataclass(frozen=True)
class NeuronAndCoordinatePermutations:
    """W -> P W Q^T: P permutes neurons (rows), Q permutes the first `coordinates` columns.

    This is the symmetry of the ReLU teacher-student loss with teacher V = I: permuting input
    coordinates together with teacher neurons leaves V, hence F, unchanged. Finding the best
    (P, Q) is a quadratic assignment problem; we alternate Hungarian steps from several starts
    (column matching by sorted-column signatures, and by row-aligned columns), which is exact
    whenever the two points are in fact equivalent and not too close to extra symmetry.
    """

    coordinates: int
    name: str = "neuron-and-coordinate-permutations"

    def _align(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        k = self.coordinates
        best, best_dist = b, np.inf
        # Start: match columns by their sorted entries (invariant under row permutations).
        sig_a, sig_b = np.sort(a[:, :k], axis=0).T, np.sort(b[:, :k], axis=0).T
        starts = [_row_assignment(sig_a, sig_b), np.arange(k)]
        for cols in starts:
            current = b.copy()
            current[:, :k] = b[:, :k][:, cols]
            for _ in range(6):
                current = current[_row_assignment(a, current)]
                col_perm = _row_assignment(a[:, :k].T, current[:, :k].T)
                if np.array_equal(col_perm, np.arange(k)):
                    break
                current[:, :k] = current[:, :k][:, col_perm]
            dist = float(np.max(np.abs(a - current)))
            if dist < best_dist:
                best, best_dist = current, dist
        return best

    def align(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return self._align(np.asarray(a), np.asarray(b))

    def distance(self, a: np.ndarray, b: np.ndarray) -> float:
        a, b = np.asarray(a), np.asarray(b)
        return float(np.max(np.abs(a - self.align(a, b))))

    def random_image(self, point: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """P point Q^T for a random row permutation P and a random permutation Q of the first
        `coordinates` columns (the remaining columns stay in place)."""
        point = np.array(point, dtype=np.float64)
        k = self.coordinates
        if not 0 <= k <= point.shape[1]:
            raise SpuriousError(f"{self.name}: {k} permuted coordinates, but the point has {point.shape[1]} columns")
        image = point[rng.permutation(point.shape[0])]
        image[:, :k] = image[:, :k][:, rng.permutation(k)]
        return image

    def isotropy(self, point, tolerance: float = 1e-6) -> "Isotropy":
        """The subgroup fixing `point` (see coordinate_isotropy)."""
        return coordinate_isotropy(point, self.coordinates, tolerance)


@dataclass(frozen=True)
class Isotropy:
    """The subgroup of S_n x S_k that fixes a point (to `tolerance`), as found from its transpositions.

    `blocks`: the orbits of input coordinates under the group generated by the coordinate transpositions
    that lift to an element fixing the point (each lifts with some neuron permutation). When every lift
    is a transposition of two neurons matched to the two coordinates (and n = k), the group is the
    diagonal Young subgroup Delta(S_p1 x ... x S_pr) of `sizes`, and `rows`, `columns` reorder the point
    so that its blocks are consecutive, largest first, with neuron i matched to coordinate i.
    """

    sizes: tuple  # coordinate blocks, largest first
    diagonal: bool
    name: str  # e.g. "Δ(S_19 × S_1)"
    type: str  # the same with k symbolic, e.g. "Δ(S_{k−1} × S_1)": one name for a family continued in k
    deviation: float  # largest entry-wise distance from the fixed-point space (diagonal types), else tolerance
    rows: tuple | None = None
    columns: tuple | None = None


def _components(count: int, edges) -> list[list[int]]:
    from scipy.cluster.hierarchy import DisjointSet

    groups = DisjointSet(range(count))
    for a, b in edges:
        groups.merge(a, b)
    return sorted((sorted(group) for group in groups.subsets()), key=lambda g: (-len(g), g[0]))


def coordinate_isotropy(point, coordinates: int, tolerance: float = 1e-6) -> Isotropy:
    """The isotropy of `point` (n x d) under W -> P W Q^T, Q acting on the first `coordinates` columns.

    A coordinate transposition (a b) belongs to the group's projection when swapping columns a and b can
    be undone by a permutation of the rows (found by assignment, checked to `tolerance`). Only pairs whose
    columns hold the same sorted entries are tried (a necessary condition)."""
    from ..verify_symmetric import from_matrix, isotropy_name

    W = np.asarray(point, dtype=np.float64)
    n, k = W.shape[0], int(coordinates)
    if k > ISOTROPY_LIMIT:
        raise SpuriousError(f"isotropy of a point with {k} coordinates: found for at most {ISOTROPY_LIMIT} "
                            f"(one assignment problem per coordinate)")
    signatures = np.sort(W[:, :k], axis=0).T
    lifts = {}

    def lift(a, b):
        swapped = W.copy()
        swapped[:, [a, b]] = swapped[:, [b, a]]
        rows = _row_assignment(W, swapped)
        return rows if np.max(np.abs(swapped[rows] - W)) <= tolerance else None

    # The transpositions in the group's projection generate a Young subgroup whose blocks are cliques
    # ((a c) = (a b)(b c)(a b)), so each coordinate is tried against one member of each block found so
    # far among those with the same sorted column (a necessary condition): O(k) assignments, not O(k^2).
    members: list[list[int]] = []
    for c in range(k):
        for block in members:
            a = block[0]
            if np.max(np.abs(signatures[a] - signatures[c])) > tolerance:
                continue
            rows = lift(a, c)
            if rows is not None:
                lifts[(a, c)] = rows
                block.append(c)
                break
        else:
            members.append([c])
    # the other transpositions of each block, for the matching of neurons (a lift per pair is needed
    # only for blocks of size >= 3, where it identifies the neuron of each coordinate)
    for block in members:
        if len(block) >= 3:
            a, b = block[1], block[2]
            rows = lift(a, b)
            if rows is None:
                return _undiagonal(tuple(sorted((len(m) for m in members), reverse=True)), tolerance)
            lifts[(a, b)] = rows
    blocks = _components(k, lifts)
    sizes = tuple(len(b) for b in blocks)
    matched = _diagonal_matching(W, k, blocks, lifts)
    if matched is not None:
        rows = [matched[c] for block in blocks for c in block]
        rows += [i for i in range(n) if i not in set(rows)]
        columns = [c for block in blocks for c in block] + list(range(k, W.shape[1]))
        if n == k and W.shape[1] == k:
            _, deviation = from_matrix(sizes, W[np.ix_(rows, columns)])
            if deviation <= tolerance:
                return Isotropy(sizes, True, isotropy_name(sizes, symbolic=False), isotropy_name(sizes), deviation,
                                tuple(rows), tuple(columns))
        elif n > k and W.shape[1] == k:
            # every lift swaps two matched neurons and fixes the n - k others: the diagonal group acts on
            # k of the neurons (the fixed-point solver covers n = k only, so this is not `diagonal`)
            extra = f" on {k} neurons, {n - k} more fixed"
            return Isotropy(sizes, False, isotropy_name(sizes, symbolic=False) + extra, isotropy_name(sizes) + extra,
                            float(tolerance), tuple(rows), tuple(columns))
    return _undiagonal(sizes, tolerance)


def _undiagonal(sizes, tolerance) -> "Isotropy":
    plain = " × ".join(f"S_{p}" for p in sizes)
    return Isotropy(tuple(sizes), False, f"{plain} (on coordinates)", f"{plain} (on coordinates)", float(tolerance))


def _diagonal_matching(W, k, blocks, lifts):
    """Neuron matched to each coordinate when every lift of (a b) swaps exactly two neurons consistently."""
    n = W.shape[0]
    moved = {}
    for (a, b), rows in lifts.items():
        changed = np.flatnonzero(rows != np.arange(n))
        if len(changed) != 2:
            return None
        moved[(a, b)] = set(int(i) for i in changed)
    matched = {}
    for block in blocks:
        if len(block) == 1:
            continue
        first = block[0]
        if len(block) == 2:  # either neuron serves: the two matchings give the same point
            pair = sorted(moved[(first, block[1])])
            matched[first], matched[block[1]] = pair
            continue
        # (first c) swaps the neurons of first and c; (block[1] block[2]) those of block[1] and block[2]
        common = moved[(first, block[1])] & moved[(first, block[2])]
        if len(common) != 1:
            return None
        matched[first] = common.pop()
        for c in block[1:]:
            other = moved[(first, c)] - {matched[first]}
            if len(other) != 1:
                return None
            matched[c] = other.pop()
    used = set(matched.values())
    if len(used) != len(matched):
        return None
    # singletons: the unmoved neurons, assigned to the remaining coordinates by the largest entries
    singles = [block[0] for block in blocks if len(block) == 1]
    free = [i for i in range(n) if i not in used]
    if len(free) < len(singles):
        return None
    if singles:  # any bijection gives a valid layout; take the one with the largest diagonal entries
        cost = -np.abs(W[np.ix_(free, singles)]).T  # rows: coordinates, columns: free neurons
        _, assigned = linear_sum_assignment(cost)
        for c, j in zip(singles, assigned):
            matched[c] = free[j]
    return matched

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

"""Critical points with diagonal symmetry at any k: the fixed-point space, its loss, the isotypic
blocks of the Hessian, and the stand-alone checker of their certificates.

Like `spurious.verify`, this module is trusted code: it imports only the standard library, numpy and
python-flint (and the decimal helpers of `spurious.verify`), never JAX, so a certificate is re-checked
from the file alone. The solver (`spurious.fixed_points`) evaluates the same loss formula in JAX.

The setting (ReLU teacher-student, teacher V = I, d = k, n = k)
---------------------------------------------------------------
The loss F(W) is invariant under W -> P_s W P_t^T for permutations s (student neurons) and t (input
coordinates together with teacher neurons). For a partition k = p_1 + ... + p_r into consecutive blocks,
the diagonal Young subgroup H = Delta(S_p1 x ... x S_pr) = {(s, s) : s preserves each block} fixes W
exactly when W_ij depends only on the blocks of i and j and on whether i = j. Fix(H) therefore has one
coordinate per orbit of H on the entries (i, j):
    ('D', A) the diagonal entries of block A (orbit size p_A),
    ('O', A) the off-diagonal entries inside block A, when p_A >= 2 (size p_A (p_A - 1)),
    ('X', A, B) the entries with i in A, j in B, A != B (size p_A p_B),
so its dimension depends on r, not on k. L(x) = F(E x), where E x is the matrix with those values, is a
sum over O(r^2) orbits of neuron pairs and neuron-teacher pairs of (orbit size) x (kernel term); the
norms and inner products are sums over blocks with multiplicities. Its cost is independent of k.

Symmetric criticality: grad F at a point of Fix(H) lies in Fix(H) (F is H-invariant) and grad L = E^T
grad F, so grad L(x) = 0 implies grad F(E x) = 0.

The Hessian at a point of Fix(H) commutes with H. The irreducible representations of H that occur in
R^{k x k} are products over the blocks with at most two points moved: the trivial one; for each block A,
the standard [p_A - 1, 1] (dimension p_A - 1), [p_A - 2, 2] (p_A (p_A - 3) / 2) and [p_A - 2, 1, 1]
((p_A - 1)(p_A - 2) / 2); for each pair of blocks the product of their standards ((p_A - 1)(p_B - 1)).
For each irreducible rho a Young subgroup K_rho <= H with a one-dimensional space of K_rho-fixed vectors
in rho (Kostka number 1) is taken: H itself (trivial); one point split off A (standard of A); two points
a, b split off A ([p-2,2] is the part even, [p-2,1,1] the part odd, under swapping a and b); one point
split off each of A and B (the product). Fix(K_rho) is again a diagonal-Young fixed space (a refinement
of the partition, coordinates as above), and Fix(K_rho) intersected with the isotypic component of rho
is the orthogonal complement (Frobenius inner product: the metric M = diag(orbit sizes) in coordinates)
of the fixed spaces of the Young subgroups just above K_rho (the refinements with one split point
fewer), restricted to the even or odd part for the two-point splits. Let Q_rho be an exact rational
basis of it (in the coordinates of Fix(K_rho)). The Hessian acts on the isotypic component of rho as
(identity on rho) x (a matrix on the multiplicity space), and its eigenvalues there are those of the
pencil (Q^T grad^2 L_rho Q, Q^T M Q), where L_rho is the loss on Fix(K_rho), each with multiplicity
dim rho. The components exhaust R^{k x k}: sum_rho dim(rho) rank(Q_rho) = k^2 (checked every time).
"""
from __future__ import annotations

import hashlib
import json
import math
import sys
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from flint import arb, ctx, fmpq

try:
    from .verify import (InvalidCertificate, ProofFailed, decimal_down, decimal_up, float_text, lower_fraction,
                         parse_decimal, parse_float_text, upper_fraction)
except ImportError:  # run as a script (python spurious/verify_symmetric.py CERT): verify.py lies beside it
    from verify import (InvalidCertificate, ProofFailed, decimal_down, decimal_up, float_text,  # type: ignore
                        lower_fraction, parse_decimal, parse_float_text, upper_fraction)

# The largest k whose certificate we read (the loss's cost does not grow with k; this keeps sizes sane).
MAX_TEACHER = 10 ** 7
MAX_BLOCKS = 12


# ---------------------------------------------------------------------------------------------
# Partitions and the coordinates of their fixed spaces


def check_partition(sizes, k=None) -> tuple:
    """The block sizes as a tuple of positive ints (with sum k when k is given); ValueError otherwise."""
    if not isinstance(sizes, (list, tuple)) or not sizes:
        raise ValueError("a partition is a non-empty list of block sizes")
    if any(not isinstance(p, int) or isinstance(p, bool) or p < 1 for p in sizes):
        raise ValueError(f"block sizes must be positive integers, got {list(sizes)}")
    if len(sizes) > MAX_BLOCKS:
        raise ValueError(f"{len(sizes)} blocks: at most {MAX_BLOCKS} are supported")
    if k is not None and sum(sizes) != k:
        raise ValueError(f"the block sizes {list(sizes)} add up to {sum(sizes)}, not k = {k}")
    return tuple(sizes)


def coordinates(sizes) -> list:
    """The orbits of Delta(S_p1 x ... x S_pr) on the entries (i, j), in a fixed order."""
    r = len(sizes)
    coords = []
    for a in range(r):
        coords.append(("D", a))
        if sizes[a] >= 2:
            coords.append(("O", a))
    coords += [("X", a, b) for a in range(r) for b in range(r) if a != b]
    return coords


def orbit_size(sizes, coord) -> int:
    if coord[0] == "D":
        return sizes[coord[1]]
    if coord[0] == "O":
        return sizes[coord[1]] * (sizes[coord[1]] - 1)
    return sizes[coord[1]] * sizes[coord[2]]


def block_starts(sizes) -> list:
    starts, total = [], 0
    for p in sizes:
        starts.append(total)
        total += p
    return starts


def to_matrix(sizes, values) -> np.ndarray:
    """The k x k matrix E x (blocks laid out consecutively, block 0 first)."""
    k = sum(sizes)
    starts = block_starts(sizes)
    label = np.repeat(np.arange(len(sizes)), sizes)
    W = np.empty((k, k))
    for coord, value in zip(coordinates(sizes), values):
        if coord[0] == "D":
            s = starts[coord[1]]
            idx = np.arange(s, s + sizes[coord[1]])
            W[idx, idx] = value
        elif coord[0] == "O":
            s, p = starts[coord[1]], sizes[coord[1]]
            block = W[s:s + p, s:s + p]
            diagonal = block.diagonal().copy()
            block[:] = value
            np.fill_diagonal(block, diagonal)
        else:
            W[np.ix_(label == coord[1], label == coord[2])] = value
    return W


def from_matrix(sizes, W) -> tuple[np.ndarray, float]:
    """The orbit averages of W (its orthogonal projection onto Fix(H), in coordinates) and the largest
    entry-wise distance of W from that projection."""
    W = np.asarray(W, dtype=np.float64)
    starts = block_starts(sizes)
    label = np.repeat(np.arange(len(sizes)), sizes)
    values = []
    for coord in coordinates(sizes):
        if coord[0] == "D":
            s, p = starts[coord[1]], sizes[coord[1]]
            values.append(float(np.mean(np.diag(W)[s:s + p])))
        elif coord[0] == "O":
            s, p = starts[coord[1]], sizes[coord[1]]
            block = W[s:s + p, s:s + p]
            values.append(float((block.sum() - np.trace(block)) / (p * (p - 1))))
        else:
            values.append(float(np.mean(W[np.ix_(label == coord[1], label == coord[2])])))
    values = np.array(values)
    return values, float(np.max(np.abs(W - to_matrix(sizes, values))))


# ---------------------------------------------------------------------------------------------
# The loss on a fixed space, for any number type


@dataclass(frozen=True)
class Operations:
    """What the loss formula needs of a number type: sqrt, atan2 and pi."""

    sqrt: object
    atan2: object
    pi: object


def fixed_space_loss(sizes, values, ops: Operations, counts=None):
    """L(x) = F(E x) for the teacher V = I (k = n = d = sum(sizes)), as a sum over orbits.

    `values` are the coordinates in the order of `coordinates(sizes)`; any type with + - * / and the
    operations works (floats, JAX tracers, Arb balls, jets of Arb balls). `counts` (default: the sizes)
    are the block sizes as numbers in the formulas, so that a compiled version can take them as inputs;
    `sizes` decides only which blocks have off-diagonal entries (size >= 2)."""
    r = len(sizes)
    n = sizes if counts is None else counts
    value = dict(zip(coordinates(sizes), values))
    zero = values[0] * 0

    def entry(a, b, same):
        """W_ij for i in block a, j in block b; same: i == j."""
        if a != b:
            return value[("X", a, b)]
        return value[("D", a)] if same else value.get(("O", a), zero)

    def kernel(norm2_u, norm2_v, dot):
        """2 pi f(u, v) from |u|^2, |v|^2 and u.v (the sine from the Gram determinant)."""
        sine_times_norms = ops.sqrt(norm2_u * norm2_v - dot * dot)
        return sine_times_norms + (ops.pi - ops.atan2(sine_times_norms, dot)) * dot

    # |w_i|^2 for i in block a: one diagonal entry, p_a - 1 entries of its own block, p_b of block b
    norm2 = []
    for a in range(r):
        total = entry(a, a, True) * entry(a, a, True)
        if sizes[a] >= 2:
            total = total + (n[a] - 1) * entry(a, a, False) * entry(a, a, False)
        for b in range(r):
            if b != a:
                total = total + n[b] * entry(a, b, False) * entry(a, b, False)
        norm2.append(total)

    def dot_same_block(a):
        """w_i . w_i' for i != i' in block a (columns i, i', the other p_a - 2 of a, then other blocks)."""
        d, o = entry(a, a, True), entry(a, a, False)
        total = 2 * d * o + (n[a] - 2) * o * o
        for c in range(r):
            if c != a:
                total = total + n[c] * entry(a, c, False) * entry(a, c, False)
        return total

    def dot_two_blocks(a, b):
        """w_i . w_i' for i in a, i' in b (columns i, i', the rest of a, the rest of b, other blocks)."""
        total = entry(a, a, True) * entry(b, a, False) + entry(a, b, False) * entry(b, b, True)
        if sizes[a] >= 2:
            total = total + (n[a] - 1) * entry(a, a, False) * entry(b, a, False)
        if sizes[b] >= 2:
            total = total + (n[b] - 1) * entry(a, b, False) * entry(b, b, False)
        for c in range(r):
            if c != a and c != b:
                total = total + n[c] * entry(a, c, False) * entry(b, c, False)
        return total

    k = sum(n[a] for a in range(r))
    students = zero
    teachers = zero
    for a in range(r):
        students = students + n[a] * norm2[a] * ops.pi  # the i = i' terms: 2 pi * |w_i|^2 / 2
        if sizes[a] >= 2:
            students = students + n[a] * (n[a] - 1) * kernel(norm2[a], norm2[a], dot_same_block(a))
        for b in range(a + 1, r):
            students = students + 2 * n[a] * n[b] * kernel(norm2[a], norm2[b], dot_two_blocks(a, b))
        # teacher e_j: w_i . e_j = W_ij, |e_j| = 1
        teachers = teachers + n[a] * kernel(norm2[a], 1, entry(a, a, True))
        if sizes[a] >= 2:
            teachers = teachers + n[a] * (n[a] - 1) * kernel(norm2[a], 1, entry(a, a, False))
        for b in range(r):
            if b != a:
                teachers = teachers + n[a] * n[b] * kernel(norm2[a], 1, entry(a, b, False))
    # F = 1/2 sum f(w, w') - sum f(w, v) + 1/2 sum f(v, v'), and 2 pi f(e_i, e_j) = 1 (i != j), pi (i = j)
    teacher_self = (k * ops.pi + k * (k - 1)) / 2
    return (students / 2 - teachers + teacher_self) / (2 * ops.pi)


# ---------------------------------------------------------------------------------------------
# Second-order jets of Arb balls: value, gradient and Hessian of an expression in m variables


class Jet:
    """f, grad f, grad^2 f at a point (or enclosures of them over a box, when the inputs are balls)."""

    __slots__ = ("v", "g", "h")

    def __init__(self, v, g, h):
        self.v, self.g, self.h = v, g, h

    @staticmethod
    def variables(values) -> list:
        m = len(values)
        zero = arb(0)
        out = []
        for i, x in enumerate(values):
            g = [zero] * m
            g[i] = arb(1)
            out.append(Jet(arb(x), g, [[zero] * m for _ in range(m)]))
        return out

    def _lift(self, other):
        if isinstance(other, Jet):
            return other
        m = len(self.g)
        zero = arb(0)
        return Jet(arb(other), [zero] * m, [[zero] * m for _ in range(m)])

    def __add__(self, other):
        if not isinstance(other, Jet):
            return Jet(self.v + other, self.g, self.h)
        return Jet(self.v + other.v, [x + y for x, y in zip(self.g, other.g)],
                   [[x + y for x, y in zip(r, s)] for r, s in zip(self.h, other.h)])

    __radd__ = __add__

    def __neg__(self):
        return Jet(-self.v, [-x for x in self.g], [[-x for x in r] for r in self.h])

    def __sub__(self, other):
        return self + (-other if isinstance(other, Jet) else -arb(other))

    def __rsub__(self, other):
        return (-self) + other

    def __mul__(self, other):
        if not isinstance(other, Jet):
            c = arb(other)
            return Jet(self.v * c, [x * c for x in self.g], [[x * c for x in r] for r in self.h])
        a, b = self, other
        g = [a.v * y + b.v * x for x, y in zip(a.g, b.g)]
        h = [[a.v * b.h[i][j] + b.v * a.h[i][j] + a.g[i] * b.g[j] + b.g[i] * a.g[j]
              for j in range(len(g))] for i in range(len(g))]
        return Jet(a.v * b.v, g, h)

    __rmul__ = __mul__

    def _unary(self, value, first, second):
        g = [first * x for x in self.g]
        h = [[first * self.h[i][j] + second * self.g[i] * self.g[j] for j in range(len(g))] for i in range(len(g))]
        return Jet(value, g, h)

    def reciprocal(self):
        if not (self.v.is_finite() and (self.v > 0 or self.v < 0)):
            raise ProofFailed("nonsmooth_ball", "a division by a ball that contains 0")
        inv = 1 / self.v
        return self._unary(inv, -inv * inv, 2 * inv * inv * inv)

    def __truediv__(self, other):
        if not isinstance(other, Jet):
            return self * (1 / arb(other))
        return self * other.reciprocal()

    def __rtruediv__(self, other):
        return self.reciprocal() * other


def _jet_sqrt(x):
    if isinstance(x, Jet):
        if not (x.v.is_finite() and x.v > 0):
            raise ProofFailed("nonsmooth_ball", "the box reaches a point where two neurons (or a neuron and a "
                                                "teacher) are parallel or a neuron vanishes: F is not smooth there")
        root = x.v.sqrt()
        return x._unary(root, 1 / (2 * root), -1 / (4 * root * x.v))
    if not (x.is_finite() and x > 0):
        raise ProofFailed("nonsmooth_ball", "a square root of a ball that is not positive")
    return x.sqrt()


def _jet_atan2(y, x):
    """atan2(y, x) for y > 0 (a sine times norms): partials x/q, -y/q; second (y^2 - x^2)/q^2 mixed."""
    if not isinstance(y, Jet):
        return arb.atan2(y, x)
    x = y._lift(x)
    q = x.v * x.v + y.v * y.v
    value = arb.atan2(y.v, x.v)
    dy, dx = x.v / q, -y.v / q
    q2 = q * q
    dyy, dxx, dxy = -2 * x.v * y.v / q2, 2 * x.v * y.v / q2, (y.v * y.v - x.v * x.v) / q2
    m = len(y.g)
    g = [dy * a + dx * b for a, b in zip(y.g, x.g)]
    h = [[dy * y.h[i][j] + dx * x.h[i][j] + dyy * y.g[i] * y.g[j] + dxx * x.g[i] * x.g[j]
          + dxy * (y.g[i] * x.g[j] + x.g[i] * y.g[j]) for j in range(m)] for i in range(m)]
    return Jet(value, g, h)


def _jet_operations() -> Operations:
    return Operations(sqrt=_jet_sqrt, atan2=_jet_atan2, pi=arb.pi())  # pi at the current precision


def jet_of_loss(sizes, balls) -> Jet:
    """Value, gradient and Hessian of L over the box of `balls` (Arb), in the coordinates of `sizes`."""
    return fixed_space_loss(sizes, Jet.variables(balls), _jet_operations())


# ---------------------------------------------------------------------------------------------
# Refinements and the isotypic blocks


@dataclass(frozen=True)
class Refinement:
    """A finer partition (a Young subgroup K <= H) and, per fine block, the coarse block it lies in."""

    sizes: tuple
    parent: tuple


def refine(sizes, splits) -> Refinement:
    """Split `count` single points off block `a`, for each (a, count) in splits: the blocks in order,
    each followed by its split points."""
    split = dict(splits)
    fine, parent = [], []
    for a, p in enumerate(sizes):
        s = split.get(a, 0)
        fine.append(p - s)
        parent.append(a)
        fine += [1] * s
        parent += [a] * s
    return Refinement(tuple(fine), tuple(parent))


def embedding(fine_sizes, coarse_sizes, parent) -> list:
    """The 0/1 matrix (fine coordinates x coarse coordinates) of Fix(coarse) inside Fix(fine)."""
    coarse = {c: j for j, c in enumerate(coordinates(coarse_sizes))}
    rows = []
    for coord in coordinates(fine_sizes):
        if coord[0] in ("D", "O"):
            target = (coord[0], parent[coord[1]])
        else:
            a, b = parent[coord[1]], parent[coord[2]]
            target = ("O", a) if a == b else ("X", a, b)
        row = [0] * len(coarse)
        row[coarse[target]] = 1
        rows.append(row)
    return rows


def _nullspace(rows, columns) -> list:
    """A basis (exact Fractions) of {q : rows q = 0}."""
    matrix = [[Fraction(x) for x in row] for row in rows]
    pivots, r = [], 0
    for c in range(columns):
        pivot = next((i for i in range(r, len(matrix)) if matrix[i][c] != 0), None)
        if pivot is None:
            continue
        matrix[r], matrix[pivot] = matrix[pivot], matrix[r]
        lead = matrix[r][c]
        matrix[r] = [x / lead for x in matrix[r]]
        for i in range(len(matrix)):
            if i != r and matrix[i][c] != 0:
                factor = matrix[i][c]
                matrix[i] = [x - factor * y for x, y in zip(matrix[i], matrix[r])]
        pivots.append(c)
        r += 1
    basis = []
    for free in (c for c in range(columns) if c not in pivots):
        q = [Fraction(0)] * columns
        q[free] = Fraction(1)
        for i, c in enumerate(pivots):
            q[c] = -matrix[i][free]
        basis.append(q)
    return basis


def _complement(fine_sizes, embeddings) -> list:
    """Basis of the M-orthogonal complement in Fix(fine) of the sum of the ranges of the embeddings."""
    metric = [orbit_size(fine_sizes, c) for c in coordinates(fine_sizes)]
    rows = []
    for matrix in embeddings:  # q orthogonal to every column e: sum_p e_p M_p q_p = 0
        for j in range(len(matrix[0])):
            rows.append([matrix[p][j] * metric[p] for p in range(len(matrix))])
    return _nullspace(rows, len(metric))


@dataclass(frozen=True)
class IsotypicBlock:
    """One irreducible of H: its label, dimension, the Young subgroup K (a refinement) and the exact
    basis Q (columns, in Fix(K) coordinates) of Fix(K) within its isotypic component."""

    label: str
    dimension: int
    refinement: Refinement
    basis: tuple

    @property
    def size(self) -> int:
        return len(self.basis)


def isotypic_blocks(sizes) -> list:
    """Every isotypic block of R^{k x k} under Delta(S_p1 x ... x S_pr) with a non-zero multiplicity."""
    sizes = check_partition(list(sizes))
    r = len(sizes)
    blocks = []
    identity = Refinement(sizes, tuple(range(r)))
    n_coarse = len(coordinates(sizes))
    blocks.append(IsotypicBlock("trivial", 1, identity,
                                tuple(tuple(Fraction(int(i == j)) for i in range(n_coarse)) for j in range(n_coarse))))

    def add(label, dimension, refinement, basis):
        if basis and dimension > 0:
            blocks.append(IsotypicBlock(label, dimension, refinement, tuple(tuple(q) for q in basis)))

    for a, p in enumerate(sizes):
        if p < 2:
            continue
        one = refine(sizes, [(a, 1)])
        add(f"[{p}-1,1] of block {a}", p - 1, one,
            _complement(one.sizes, [embedding(one.sizes, sizes, one.parent)]))
        if p < 3:
            continue
        two = refine(sizes, [(a, 2)])
        # the two split points are fine blocks s and s + 1 right after block a's remainder
        s = two.parent.index(a) + 1
        # one point split: point s kept apart (and s + 1 merged back into the remainder), or point s + 1
        keep_first = tuple(list(range(s + 1)) + [s - 1] + [i - 1 for i in range(s + 2, len(two.sizes))])
        keep_second = tuple(list(range(s)) + [s - 1, s] + [i - 1 for i in range(s + 2, len(two.sizes))])
        onto_first = embedding(two.sizes, one.sizes, keep_first)
        onto_second = embedding(two.sizes, one.sizes, keep_second)
        both = _complement(two.sizes, [onto_first, onto_second])
        swap = _swap_permutation(two.sizes, s, s + 1)
        for label, sign, dimension in ((f"[{p}-2,2] of block {a}", 1, p * (p - 3) // 2),
                                       (f"[{p}-2,1,1] of block {a}", -1, (p - 1) * (p - 2) // 2)):
            # vectors q in span(both) with q[swap] = sign q
            rows = []
            for i, j in enumerate(swap):
                if i <= j:
                    rows.append([(1 if t == i else 0) - sign * (1 if t == j else 0) for t in range(len(swap))])
            # q = both^T c; constraint rows (both^T c) = 0
            constraint = [[sum(row[t] * q[t] for t in range(len(swap))) for q in both] for row in rows]
            coefficients = _nullspace(constraint, len(both)) if both else []
            basis = [[sum(c[m] * both[m][t] for m in range(len(both))) for t in range(len(swap))]
                     for c in coefficients]
            add(label, dimension, two, basis)
    for a in range(r):
        for b in range(a + 1, r):
            if sizes[a] < 2 or sizes[b] < 2:
                continue
            cross = refine(sizes, [(a, 1), (b, 1)])
            only_a, only_b = refine(sizes, [(a, 1)]), refine(sizes, [(b, 1)])
            point_a = cross.parent.index(a) + 1
            point_b = cross.parent.index(b) + 1
            # fine block -> block of only_a (b's point merges back) and of only_b (a's point merges back)
            to_a = tuple(i if i < point_b else (point_b - 1 if i == point_b else i - 1) for i in range(len(cross.sizes)))
            to_b = tuple((point_a - 1 if i == point_a else (i if i < point_a else i - 1))
                         for i in range(len(cross.sizes)))
            basis = _complement(cross.sizes, [embedding(cross.sizes, only_a.sizes, to_a),
                                              embedding(cross.sizes, only_b.sizes, to_b)])
            add(f"[{sizes[a]}-1,1]x[{sizes[b]}-1,1] of blocks {a},{b}", (sizes[a] - 1) * (sizes[b] - 1), cross, basis)
    total = sum(block.dimension * block.size for block in blocks)
    k = sum(sizes)
    if total != k * k:
        raise AssertionError(f"isotypic blocks cover {total} dimensions, not k^2 = {k * k}")
    return blocks


def _swap_permutation(sizes, s, t) -> list:
    """The coordinate permutation of Fix(sizes) induced by exchanging the single-point blocks s and t."""
    def relabel(x):
        return t if x == s else (s if x == t else x)
    index = {c: i for i, c in enumerate(coordinates(sizes))}
    out = []
    for coord in coordinates(sizes):
        image = (coord[0],) + tuple(relabel(x) for x in coord[1:])
        out.append(index[image])
    return out


def block_embedding(sizes, block: IsotypicBlock) -> list:
    """The fine coordinates of a coarse point: Fix(H) inside Fix(K) (K the block's Young subgroup)."""
    return embedding(block.refinement.sizes, sizes, block.refinement.parent)


# ---------------------------------------------------------------------------------------------
# Ball-arithmetic linear algebra on small matrices


def ldl_pivots(matrix) -> list:
    """The pivots of the LDL^T factorization (no pivoting) of a symmetric matrix of Arb balls; every
    matrix in the box has them in these balls. ProofFailed if a pivot's ball contains 0."""
    a = [list(row) for row in matrix]
    m = len(a)
    pivots = []
    for j in range(m):
        d = a[j][j]
        if not (d.is_finite() and (d > 0 or d < 0)):
            raise ProofFailed("degenerate", "a pivot of the block's LDL^T factorization is not separated from 0")
        pivots.append(d)
        for i in range(j + 1, m):
            factor = a[i][j] / d
            for t in range(j + 1, m):
                a[i][t] = a[i][t] - factor * a[j][t]
    return pivots


def _arb_of(q: Fraction) -> arb:
    return arb(fmpq(q.numerator, q.denominator))


def _center_jet(values, directions):
    """Jets in t (one variable per direction) of the fine coordinates values + sum_c t_c directions_c."""
    size = len(directions)
    zero = arb(0)
    out = []
    for p, value in enumerate(values):
        g = [_arb_of(directions[c][p]) if directions[c][p] != 0 else zero for c in range(size)]
        out.append(Jet(value, g, [[zero] * size for _ in range(size)]))
    return out


def block_matrix(sizes, block: IsotypicBlock, balls) -> list:
    """Q^T grad^2 L_K Q over the box of `balls` (coarse coordinates), as Arb balls: the Hessian of the
    fine loss along the block's basis, computed as the second-order jet of t -> L_K(E x + Q t) at t = 0."""
    fine = [balls[[j for j, e in enumerate(row) if e][0]] for row in block_embedding(sizes, block)]
    jet = fixed_space_loss(block.refinement.sizes, _center_jet(fine, block.basis), _jet_operations())
    return jet.h


def block_name(sizes) -> str:
    return "Delta(" + " x ".join(f"S_{p}" for p in sizes) + ")"


def isotropy_name(sizes, symbolic: bool = True) -> str:
    """The papers' name of Delta(S_p1 x ... x S_pr), blocks largest first; with `symbolic`, the largest
    block written as S_{k-c} (so one type at different k has one name), equal small blocks as powers."""
    ordered = sorted(sizes, reverse=True)
    k = sum(sizes)
    if ordered[0] == 1:
        return "trivial"
    if len(ordered) == 1:
        return "ΔS_k" if symbolic else f"ΔS_{k}"
    head, rest = ordered[0], ordered[1:]
    parts = [f"S_{{k−{k - head}}}" if symbolic else f"S_{head}"]
    for p in sorted(set(rest), reverse=True):
        count = rest.count(p)
        parts.append(f"S_{p}" + (f"^{count}" if count > 1 else ""))
    return "Δ(" + " × ".join(parts) + ")"


# ---------------------------------------------------------------------------------------------
# The proof


FORMAT = "spurious-symmetric-certificate"
VERSION = 1
PROBLEM_NAME = "relu-teacher-student"
THEOREM = (
    "Let W* = E x*, where E maps the coordinates of Fix(H), H = Delta(S_p1 x ... x S_pr) the diagonal Young "
    "subgroup of the stated partition of k, to k x k matrices, and L = F o E for the ReLU teacher-student loss "
    "F with teacher V = I_k, n = d = k. Let X be the box of the stated radius around the stated "
    "point x0 (half-width radius / isqrt(orbit size) in each coordinate) and Y the float64 inverse of the midpoint Hessian of L at x0. If the Krawczyk set "
    "x0 - Y grad L(x0) + (I - Y grad^2 L(X))(X - x0) lies in the interior of X, L has exactly one critical "
    "point x* in X, and W* is a critical point of F (symmetric criticality). The Hessian of F at W* is block "
    "diagonal over the isotypic components of H; on the component of the irreducible rho its eigenvalues are "
    "those of the pencil (Q_rho^T grad^2 L_rho(E_rho x*) Q_rho, Q_rho^T M_rho Q_rho), each with multiplicity "
    "dim rho, where L_rho is the loss on the fixed space of the Young subgroup K_rho <= H chosen for rho and "
    "Q_rho an exact basis of its part in that component (see spurious/verify_symmetric.py); the components "
    "add up to k^2 dimensions. A block's negative eigenvalues are counted by the signs of the LDL^T pivots "
    "of its matrix over X (Sylvester's law of inertia), and eigenvalue_lower holds when Q^T grad^2 L_rho Q - "
    "eigenvalue_lower Q^T M Q has positive pivots over X. The loss F(W*) = L(x*) lies in L(x0) + "
    "grad L(x0).(X - x0) + 1/2 (X - x0)^T grad^2 L(X) (X - x0) (Taylor). inf F = 0, so a minimum whose loss "
    "enclosure is above 0 is a spurious local minimum."
)
SECTIONS = ("format", "version", "theorem", "problem", "isotropy", "point", "settings", "blocks", "claim", "digest")
CLAIM_KEYS = ("kind", "morse_index", "eigenvalue_lower", "loss_lower", "loss_upper", "spurious")
BLOCK_KEYS = ("irreducible", "eigenvalue_multiplicity", "copies", "negative", "eigenvalue_lower")
LOSS_DIGITS = 15
EIGENVALUE_DIGITS = 6
DEFAULT_PRECISION = 256


def box_radii(sizes, radius: Fraction) -> list:
    """Per coordinate: radius / isqrt(orbit size). A coordinate stands for that many matrix entries, so
    the box has about the same extent in every direction of R^{k x k} (Frobenius norm)."""
    return [radius / math.isqrt(orbit_size(sizes, c)) for c in coordinates(sizes)]


def krawczyk(sizes, center, radius: Fraction):
    """The Krawczyk test on grad L over the box center +- box_radii; returns (the jet at the center, the
    jet over the box, the box) or raises ProofFailed."""
    m = len(center)
    exact = [arb(fmpq(*float(x).as_integer_ratio())) for x in center]
    at_center = jet_of_loss(sizes, exact)
    radii = [_arb_of(q) for q in box_radii(sizes, radius)]
    box = [x + arb(0, r) for x, r in zip(exact, radii)]
    over_box = jet_of_loss(sizes, box)
    middle = np.array([[float(h.mid()) for h in row] for row in at_center.h])
    if not np.all(np.isfinite(middle)):
        raise ProofFailed("precision", "the Hessian at the point is not finite")
    try:
        inverse = np.linalg.inv(middle)
    except np.linalg.LinAlgError:
        raise ProofFailed("degenerate", "the Hessian of the restricted loss is singular at the point") from None
    Y = [[arb(fmpq(*float(v).as_integer_ratio())) for v in row] for row in inverse]
    for i in range(m):
        step = -sum((Y[i][j] * at_center.g[j] for j in range(m)), arb(0))
        spread = arb(0)
        for j in range(m):
            entry = (1 if i == j else 0) - sum((Y[i][t] * over_box.h[t][j] for t in range(m)), arb(0))
            spread += entry * arb(0, radii[j])
        offset = step + spread
        if not (offset.is_finite() and abs(offset) < radii[i]):
            raise ProofFailed("not_critical", f"the Krawczyk set leaves the box of radius {float(radius):.2e} "
                                              f"(coordinate {i}: offset up to {float(abs(offset).upper()):.2e}, "
                                              f"half-width {float(radii[i].mid()):.2e})")
    return at_center, over_box, box


def loss_enclosure(sizes, at_center: Jet, over_box: Jet, radius: Fraction) -> arb:
    m = len(at_center.g)
    delta = [arb(0, _arb_of(q)) for q in box_radii(sizes, radius)]
    linear = sum((g * d for g, d in zip(at_center.g, delta)), arb(0))
    quadratic = sum((over_box.h[i][j] * delta[i] * delta[j] for i in range(m) for j in range(m)), arb(0)) / 2
    return at_center.v + linear + quadratic


def block_bounds(sizes, blocks, box, claimed_lower=None) -> list:
    """Per block: (negative eigenvalues, certified lower bound of its smallest eigenvalue as a decimal).

    With claimed_lower (decimal strings per block) the claims are checked instead of found."""
    out = []
    for index, block in enumerate(blocks):
        matrix = block_matrix(sizes, block, box)
        metric = [orbit_size(block.refinement.sizes, c) for c in coordinates(block.refinement.sizes)]
        basis = [list(q) for q in block.basis]
        gram = [[sum((basis[c][p] * metric[p] * basis[e][p] for p in range(len(metric))), Fraction(0))
                 for e in range(len(basis))] for c in range(len(basis))]
        pivots = ldl_pivots(matrix)
        negative = sum(1 for d in pivots if d < 0)
        if claimed_lower is None:
            mid = np.array([[float(x.mid()) for x in row] for row in matrix])
            g = np.array([[float(x) for x in row] for row in gram])
            chol = np.linalg.cholesky(g)
            inv = np.linalg.inv(chol)
            smallest = float(np.linalg.eigvalsh(inv @ mid @ inv.T)[0])
            margin = max(abs(smallest) * 1e-5, 1e-300)
            lower = None
            for _ in range(6):
                text = decimal_down(Fraction(smallest - margin), EIGENVALUE_DIGITS)
                if _pencil_positive(matrix, gram, parse_decimal(text, "eigenvalue_lower")):
                    lower = text
                    break
                margin *= 10
            if lower is None:
                raise ProofFailed("precision", f"no lower bound of block {block.label}'s eigenvalues could be proven")
        else:
            lower = claimed_lower[index]
            if not _pencil_positive(matrix, gram, parse_decimal(lower, "eigenvalue_lower")):
                raise ProofFailed("eigenvalue", f"block {block.label}: its eigenvalues are not all above {lower}")
        out.append((negative, lower))
    return out


def _pencil_positive(matrix, gram, mu: Fraction) -> bool:
    shifted = [[matrix[i][j] - _arb_of(mu * gram[i][j]) for j in range(len(gram))] for i in range(len(gram))]
    try:
        return all(d > 0 for d in ldl_pivots(shifted))
    except ProofFailed:
        return False


def prove(sizes, values, radius: Fraction, precision: int = DEFAULT_PRECISION, claimed_lower=None) -> dict:
    """Everything the certificate states, derived in ball arithmetic (ProofFailed when a step fails)."""
    sizes = check_partition(list(sizes))
    old = ctx.prec
    ctx.prec = precision
    try:
        at_center, over_box, box = krawczyk(sizes, values, radius)
        blocks = isotypic_blocks(sizes)
        bounds = block_bounds(sizes, blocks, box, claimed_lower)
        loss = loss_enclosure(sizes, at_center, over_box, radius)
        loss_lower, loss_upper = lower_fraction(loss), upper_fraction(loss)
    finally:
        ctx.prec = old
    index = sum(block.dimension * negative for block, (negative, _) in zip(blocks, bounds))
    block_rows = [{"irreducible": block.label, "eigenvalue_multiplicity": block.dimension, "copies": block.size,
                   "negative": negative, "eigenvalue_lower": lower} for block, (negative, lower) in zip(blocks, bounds)]
    lowest = min((parse_decimal(lower, "eigenvalue_lower") for _, lower in bounds))
    claim = {"kind": "minimum" if index == 0 else "saddle", "morse_index": index,
             "eigenvalue_lower": decimal_down(lowest, EIGENVALUE_DIGITS),
             "loss_lower": decimal_down(loss_lower, LOSS_DIGITS), "loss_upper": decimal_up(loss_upper, LOSS_DIGITS),
             "spurious": bool(loss_lower > 0)}
    return {"blocks": block_rows, "claim": claim}


def digest(certificate: dict) -> str:
    body = {key: value for key, value in certificate.items() if key != "digest"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=True).encode()).hexdigest()


def build_certificate(sizes, values, radius: Fraction, precision: int = DEFAULT_PRECISION) -> dict:
    sizes = check_partition(list(sizes))
    k = sum(sizes)
    proven = prove(sizes, values, radius, precision)
    certificate = {
        "format": FORMAT, "version": VERSION, "theorem": THEOREM,
        "problem": {"name": PROBLEM_NAME, "teacher": k, "student": k, "dim": k, "teacher_weights": "identity"},
        "isotropy": {"partition": list(sizes), "name": isotropy_name(sizes, symbolic=False)},
        "point": {"coordinates": ["".join(str(x) for x in c) for c in coordinates(sizes)],
                  "values": [float_text(v) for v in values]},
        "settings": {"precision_bits": precision, "radius": decimal_up(radius, 2)},
        "blocks": proven["blocks"], "claim": proven["claim"],
    }
    certificate["digest"] = digest(certificate)
    return certificate


@dataclass(frozen=True)
class VerifiedSymmetric:
    teacher: int
    partition: tuple
    kind: str
    morse_index: int
    eigenvalue_lower: str
    loss_lower: str
    loss_upper: str
    spurious: bool
    radius: str

    def summary(self) -> str:
        what = ("spurious local minimum" if self.spurious else "local minimum") if self.kind == "minimum" else \
            f"saddle of index {self.morse_index}"
        return (f"valid: a {what} of the ReLU teacher-student loss (k = n = d = {self.teacher}, V = I) fixed by "
                f"{isotropy_name(self.partition, symbolic=False)} (its isotropy contains that group), in the box of radius {self.radius} "
                f"(radius / isqrt(orbit size) per fixed-space coordinate) around the point; Hessian eigenvalues >= {self.eigenvalue_lower}; loss in "
                f"[{self.loss_lower}, {self.loss_upper}]")


def _require(condition, message):
    if not condition:
        raise InvalidCertificate(message)


def _integer(value, name, minimum):
    _require(isinstance(value, int) and not isinstance(value, bool) and value >= minimum,
             f"{name} must be an integer >= {minimum}")
    return value


def verify_certificate(certificate) -> VerifiedSymmetric:
    _require(isinstance(certificate, dict), "not a certificate: the top level is not an object")
    _require(certificate.get("format") == FORMAT, f"not a certificate: format is not {FORMAT!r}")
    _require(type(certificate.get("version")) is int and certificate.get("version") == VERSION,
             f"unsupported certificate version {certificate.get('version')!r}")
    _require(set(certificate) == set(SECTIONS), f"unexpected or missing sections: {sorted(set(certificate) ^ set(SECTIONS))}")
    _require(certificate["digest"] == digest(certificate), "digest mismatch: the certificate was altered after it was written")
    _require(certificate["theorem"] == THEOREM, "the theorem statement is not the one this verifier checks")
    problem = certificate["problem"]
    _require(isinstance(problem, dict) and set(problem) == {"name", "teacher", "student", "dim", "teacher_weights"}
             and problem.get("name") == PROBLEM_NAME and problem.get("teacher_weights") == "identity",
             f"problem must be {PROBLEM_NAME!r} with teacher identity (name, teacher, student, dim, teacher_weights)")
    k = _integer(problem.get("teacher"), "teacher", 2)
    _require(k <= MAX_TEACHER, f"teacher {k} above {MAX_TEACHER}")
    _require(problem.get("student") == k and problem.get("dim") == k, "student and dim must equal teacher")
    isotropy = certificate["isotropy"]
    _require(isinstance(isotropy, dict) and set(isotropy) == {"partition", "name"}, "isotropy must hold partition and name")
    try:
        sizes = check_partition(isotropy["partition"], k)
    except ValueError as error:
        raise InvalidCertificate(f"isotropy: {error}") from None
    _require(isotropy["name"] == isotropy_name(sizes, symbolic=False), "isotropy name does not match its partition")
    point = certificate["point"]
    names = ["".join(str(x) for x in c) for c in coordinates(sizes)]
    _require(isinstance(point, dict) and point.get("coordinates") == names and isinstance(point.get("values"), list)
             and len(point["values"]) == len(names), f"point must give the {len(names)} coordinates {names}")
    values = [parse_float_text(x) for x in point["values"]]
    settings = certificate["settings"]
    _require(isinstance(settings, dict) and set(settings) == {"precision_bits", "radius"},
             "settings must hold precision_bits and radius")
    precision = _integer(settings["precision_bits"], "precision_bits", 53)
    _require(precision <= 4096, "precision_bits above 4096")
    radius = parse_decimal(settings["radius"], "radius")
    _require(radius > 0, "radius must be positive")
    blocks, claim = certificate["blocks"], certificate["claim"]
    _require(isinstance(claim, dict) and set(claim) == set(CLAIM_KEYS), "claim section has unexpected or missing keys")
    expected = isotypic_blocks(sizes)
    _require(isinstance(blocks, list) and len(blocks) == len(expected)
             and all(isinstance(b, dict) and set(b) == set(BLOCK_KEYS) for b in blocks),
             f"blocks must list the {len(expected)} isotypic blocks of {isotropy_name(sizes, symbolic=False)}")
    for stated, block in zip(blocks, expected):
        _require(stated["irreducible"] == block.label, f"block {stated['irreducible']!r}: expected {block.label!r}")
        _require(all(type(stated[key]) is int for key in ("eigenvalue_multiplicity", "copies", "negative")),
                 f"block {block.label}: multiplicity, copies and negative must be integers")
        _require(stated["eigenvalue_multiplicity"] == block.dimension and stated["copies"] == block.size,
                 f"block {block.label}: multiplicity {stated['eigenvalue_multiplicity']!r} x {stated['copies']!r} copies, "
                 f"but the representation gives {block.dimension} x {block.size}")
        parse_decimal(stated["eigenvalue_lower"], "eigenvalue_lower")
    try:
        proven = prove(sizes, values, radius, precision, [b["eigenvalue_lower"] for b in blocks])
    except ProofFailed as failure:
        raise InvalidCertificate(f"the proof does not go through: {failure}") from None
    for stated, derived in zip(blocks, proven["blocks"]):
        _require(stated["negative"] == derived["negative"],
                 f"block {stated['irreducible']}: {stated['negative']!r} negative eigenvalues claimed, "
                 f"{derived['negative']} proven")
    for key in ("kind", "morse_index", "eigenvalue_lower", "spurious"):
        _require(claim[key] == proven["claim"][key] and type(claim[key]) is type(proven["claim"][key]),
                 f"claim {key} = {claim[key]!r} is not what the proof gives ({proven['claim'][key]!r})")
    lower, upper = parse_decimal(claim["loss_lower"], "loss_lower"), parse_decimal(claim["loss_upper"], "loss_upper")
    _require(lower <= parse_decimal(proven["claim"]["loss_lower"], "loss")
             and parse_decimal(proven["claim"]["loss_upper"], "loss") <= upper,
             f"the loss enclosure [{proven['claim']['loss_lower']}, {proven['claim']['loss_upper']}] is not inside the "
             f"claimed [{claim['loss_lower']}, {claim['loss_upper']}]")
    _require(claim["spurious"] == bool(lower > 0), "claim spurious does not follow from the claimed loss enclosure")
    return VerifiedSymmetric(k, sizes, claim["kind"], claim["morse_index"], claim["eigenvalue_lower"],
                             claim["loss_lower"], claim["loss_upper"], claim["spurious"], settings["radius"])


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or argv[0].startswith("-"):
        sys.stderr.write("usage: python -m spurious.verify_symmetric CERTIFICATE.json\n")
        return 2
    try:
        with open(argv[0], encoding="utf-8") as handle:
            certificate = json.load(handle)
        verified = verify_certificate(certificate)
    except OSError as error:
        sys.stderr.write(f"verify: error: cannot read {argv[0]}: {error.strerror}\n")
        return 2
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        sys.stderr.write("verify: invalid certificate: not JSON\n")
        return 1
    except InvalidCertificate as error:
        sys.stderr.write(f"verify: invalid certificate: {error}\n")
        return 1
    print(verified.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())

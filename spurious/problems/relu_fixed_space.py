"""The Hessian spectrum of the ReLU teacher-student loss (V = I, n = d = k) at a point with diagonal
symmetry, from its isotypic blocks (spurious.verify_symmetric derives them): every distinct eigenvalue
with its exact multiplicity, at a cost independent of k. Part of the landscape's knowledge, so the
problem can offer it (`ReLUTeacherStudent.isotypic_spectrum`) to the stages that take spectra.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from flint import arb, ctx, fmpq

from .. import verify_symmetric as vs


@dataclass(frozen=True)
class SpectrumBlock:
    """The eigenvalues of one isotypic block: each has multiplicity `multiplicity` in the full Hessian."""

    irreducible: str
    multiplicity: int
    eigenvalues: np.ndarray


@dataclass(frozen=True)
class SymmetricSpectrum:
    blocks: tuple

    def distinct(self) -> list:
        """(eigenvalue, multiplicity) for every eigenvalue of every block, ascending."""
        pairs = [(float(v), b.multiplicity) for b in self.blocks for v in b.eigenvalues]
        return sorted(pairs)

    @property
    def smallest(self) -> float:
        return min(float(b.eigenvalues[0]) for b in self.blocks)

    @property
    def morse_index(self) -> int:
        return int(sum(b.multiplicity * int(np.sum(b.eigenvalues < 0)) for b in self.blocks))

    def full(self) -> np.ndarray:
        """Every eigenvalue repeated by its multiplicity (k^2 numbers; for checks at small k)."""
        return np.sort(np.concatenate([np.repeat(b.eigenvalues, b.multiplicity) for b in self.blocks]))


@lru_cache(maxsize=64)
def _blocks_with_grams(sizes: tuple):
    """The isotypic blocks of Fix(sizes) and, per block, the Cholesky inverse of its Gram matrix Q^T M Q."""
    out = []
    for block in vs.isotypic_blocks(sizes):
        fine_sizes = block.refinement.sizes
        Q = np.array([[float(x) for x in q] for q in block.basis]).T
        metric = np.array([vs.orbit_size(fine_sizes, c) for c in vs.coordinates(fine_sizes)], dtype=np.float64)
        out.append((block, np.linalg.inv(np.linalg.cholesky(Q.T @ (metric[:, None] * Q)))))
    return out


def symmetric_spectrum(sizes, values, bits: int = 128) -> SymmetricSpectrum:
    """All Hessian eigenvalues of F at E x with their multiplicities, from the isotypic blocks.

    Each block matrix Q^T grad^2 L_K Q is the second-order jet of t -> L_K(E x + Q t), formed in Arb at
    `bits` bits (its entries are sums of terms of size up to k^2 that cancel, so float64 loses digits
    at large k; a jet in the few block variables also costs far less than compiling a Hessian) and
    rounded to float64 for the eigenvalues."""
    sizes = vs.check_partition(list(sizes))
    exact = [arb(fmpq(*float(v).as_integer_ratio())) for v in values]
    out = []
    old = ctx.prec
    ctx.prec = bits
    try:
        blocks = [(block, chol_inv, np.array([[float(h.mid()) for h in row]
                                              for row in vs.block_matrix(sizes, block, exact)]))
                  for block, chol_inv in _blocks_with_grams(sizes)]
    finally:
        ctx.prec = old
    for block, chol_inv, matrix in blocks:
        eigenvalues = np.linalg.eigvalsh(chol_inv @ matrix @ chol_inv.T)
        out.append(SpectrumBlock(block.label, block.dimension, eigenvalues))
    return SymmetricSpectrum(tuple(out))

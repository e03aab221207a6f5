"""The matrix-free analysis at k where dense Hessians get expensive, against independent answers.

    python benchmarks/bench_matrix_free.py --ks 40,60,100

Test points: symmetric critical points of the ReLU loss (V = I, n = d = k) from the fixed-point solver,
the Δ(S_{k−1} × S_1) minimum and the Δ(S_{k−7} × S_7) saddle (continued from k = 20). For each: the
Lanczos spectrum (analyze.lanczos_spectrum: the negative eigenvalues, the smallest non-negative ones and
the largest) against the isotypic spectrum (every eigenvalue with its multiplicity, from small blocks),
and the MINRES Newton polish (analyze.polish_matrix_free) from the point moved by 1e-5 against the
solver's point. At k <= 60 the dense eigendecomposition of the same Hessian is timed in the same process
for the ratio.
"""
from __future__ import annotations

import argparse
import importlib
import time

import numpy as np


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ks", default="40,60,100")
    parser.add_argument("--dense-up-to", type=int, default=60)
    args = parser.parse_args()

    import jax
    import spurious as sp
    from spurious import fixed_points as fp

    analyze = importlib.import_module("spurious.analyze")
    ks = [int(k) for k in args.ks.split(",")]
    main_family = fp.newton((5, 1), (1.0, -0.03, -0.65, 0.25, 0.17))
    branches = {"Δ(S_{k−1} × S_1)": {p.k: p for p in fp.continue_in_k(main_family, fp.ladder(6, ks))}}
    print(f"{'family':<18} {'k':>4} {'P':>6} {'index':>5} {'lanczos s':>9} {'dense s':>8} {'max |dλ|':>9} "
          f"{'polish s':>8} {'|x - x*|':>9}")
    for k in ks:
        problem = sp.ReLUTeacherStudent(teacher=k, student=k)
        points = [("Δ(S_{k−1} × S_1)", branches["Δ(S_{k−1} × S_1)"][k])]
        for name, point in points:
            exact = fp.symmetric_spectrum(point.sizes, point.values)
            W = point.matrix()
            analyze._hessian_vector_product(problem)(jax.numpy.asarray(W), jax.numpy.zeros(problem.size))  # compile
            began = time.perf_counter()
            found = analyze.lanczos_spectrum(problem, W)
            lanczos = time.perf_counter() - began
            # Lanczos returns eigenvalues, not all copies of a repeated one: each must be one of the exact
            # distinct eigenvalues, and the smallest and the largest must be found
            distinct = np.array([v for v, _ in exact.distinct()])
            error = max(float(np.max(np.min(np.abs(found[:, None] - distinct[None, :]), axis=1))),
                        abs(found[0] - distinct[0]), abs(found[-1] - distinct[-1]))
            dense_time = float("nan")
            if k <= args.dense_up_to:
                hessian = jax.jit(problem.hessian)
                hessian(W).block_until_ready()  # compiled before the clock starts
                began = time.perf_counter()
                H = np.asarray(hessian(W))
                np.linalg.eigvalsh(H)
                dense_time = time.perf_counter() - began
            start = W + np.random.default_rng(k).normal(size=W.shape) * 1e-5
            began = time.perf_counter()
            polished, _ = analyze.polish_matrix_free(problem, start[None], iterations=10, grad_tol=1e-12)
            polish = time.perf_counter() - began
            moved = float(np.max(np.abs(polished[0] - W)))
            print(f"{name:<18} {k:>4} {problem.size:>6} {exact.morse_index:>5} {lanczos:>9.2f} {dense_time:>8.2f} "
                  f"{error:>9.1e} {polish:>8.2f} {moved:>9.1e}")


if __name__ == "__main__":
    main()

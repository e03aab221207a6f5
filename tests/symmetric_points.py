"""Critical points of the ReLU teacher-student loss (V = I, n = k) with the symmetry of the families
found by gradient descent (Arjevani & Field): isotropy Delta(S_{k-1} x S_1), i.e. W unchanged when rows
and columns 0..k-2 are permuted together. Such W has five free entries,

    W_ii = a (i < k-1),  W_ij = b (i != j < k-1),  W_i,k-1 = c,  W_k-1,j = e (j < k-1),  W_k-1,k-1 = f,

and by the principle of symmetric criticality a zero of the gradient restricted to that subspace is a
critical point of F. Newton's method in the five coordinates (with the closed-form gradient and Hessian
of the problem) finds them from a nearby start in a few steps; tests use them instead of running the
engine. Which critical point a start leads to is decided by the computation, never assumed.
"""
import numpy as np
import jax

import spurious as sp


def symmetric_basis(k):
    """(k*k, 5) matrix whose columns span the Delta(S_{k-1} x S_1)-fixed matrices."""
    columns = np.zeros((5, k, k))
    last = k - 1
    for i in range(k):
        for j in range(k):
            if i < last and j < last:
                columns[0 if i == j else 1, i, j] = 1
            elif i < last:
                columns[2, i, j] = 1
            elif j < last:
                columns[3, i, j] = 1
            else:
                columns[4, i, j] = 1
    return columns.reshape(5, -1).T


def symmetric_critical_point(k, start, iterations=40, tol=1e-14):
    """Newton's method on grad F restricted to the symmetric subspace, from parameters `start` (a, b, c, e, f).

    Returns the float64 point W (k x k) and ||grad F(W)||; then one full-space Newton step polishes it."""
    problem = sp.ReLUTeacherStudent(teacher=k, student=k)
    grad, hessian = jax.jit(problem.grad), jax.jit(problem.hessian)
    basis = symmetric_basis(k)
    params = np.asarray(start, dtype=np.float64)
    for _ in range(iterations):
        W = (basis @ params).reshape(k, k)
        g = np.asarray(grad(W)).reshape(-1)
        if np.linalg.norm(g) <= tol:
            break
        params = params - np.linalg.solve(basis.T @ np.asarray(hessian(W)) @ basis, basis.T @ g)
    W = (basis @ params).reshape(k, k)
    return W, float(np.linalg.norm(np.asarray(grad(W))))


def fixed_space_saddle(sizes=(5, 1), seed=11, tries=200, min_index=2):
    """A critical point of the loss restricted to Fix(Delta(sizes)) with Morse index >= min_index in the
    full problem, found by Newton in the fixed space from random starts (spurious.fixed_points)."""
    from spurious import fixed_points as fp

    rng = np.random.default_rng(seed)
    for _ in range(tries):
        try:
            point = fp.newton(sizes, rng.normal(size=5) * 0.7)
        except sp.SpuriousError:
            continue
        if point.gradient_norm < 1e-12 and fp.symmetric_spectrum(point.sizes, point.values).morse_index >= min_index:
            return point
    raise AssertionError(f"no saddle of index >= {min_index} in Fix({sizes}) from {tries} starts")

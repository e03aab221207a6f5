"""The matrix-free paths (the engine's conjugate-gradient Newton, the analysis's MINRES Newton steps and
Lanczos eigenvalues, all on Hessian-vector products, used above optimize.MATRIX_FREE_LIMIT parameters)
against the dense ones on small problems: the same endpoints, classes, Morse indices and families."""
import importlib

import numpy as np
import pytest

import spurious as sp
from spurious import fixed_points as fp

from symmetric_points import fixed_space_saddle

analyze = importlib.import_module("spurious.analyze")  # the module (sp.analyze is its function)
optimize = importlib.import_module("spurious.optimize")


def test_the_engine_s_conjugate_gradient_newton_ends_where_the_dense_newton_does(monkeypatch):
    """The same starts, Newton switch on: the Newton-CG runs finish at the dense chord-Newton's
    endpoints (to rounding) with the same classes."""
    problem = sp.ReLUTeacherStudent(teacher=8, student=8)
    to_the_gradient = optimize.protocol(problem, global_stop=False)  # global minima finish by Newton too
    dense = sp.run(problem, runs=24, seed=0, optimizer=to_the_gradient)
    monkeypatch.setattr(optimize, "MATRIX_FREE_LIMIT", 0)
    free = sp.run(problem, runs=24, seed=0, optimizer=to_the_gradient)
    assert dense.endpoints.newton.sum() >= 12 and free.endpoints.newton.sum() >= 12
    assert list(free.analysis.cls) == list(dense.analysis.cls)
    np.testing.assert_allclose(free.endpoints.params, dense.endpoints.params, atol=1e-8)
    np.testing.assert_allclose(free.endpoints.loss, dense.endpoints.loss, atol=1e-12)


def test_the_matrix_free_analysis_gives_the_dense_one(monkeypatch):
    problem = sp.ReLUTeacherStudent(teacher=8, student=8)
    result = sp.run(problem, runs=24, seed=0)
    dense = result.analysis
    monkeypatch.setattr(optimize, "MATRIX_FREE_LIMIT", 0)
    free = analyze.analyze(problem, result.endpoints)
    assert list(free.cls) == list(dense.cls)
    np.testing.assert_array_equal(free.morse_index, dense.morse_index)
    np.testing.assert_allclose(free.params, dense.params, atol=1e-9)
    assert len(free.families) == len(dense.families) >= 2
    for a, b in zip(free.families, dense.families):
        assert (a.cls, a.morse_index, a.count, a.isotropy) == (b.cls, b.morse_index, b.count, b.isotropy)
        assert a.loss == pytest.approx(b.loss, abs=1e-12)
        if a.cls != "global_minimum":  # W = I up to symmetry: on the set where F is only C^1, the
            # Hessian-vector product (a derivative of the gradient) is not linear, so only the dense
            # closed form's one-sided Hessian is defined there
            assert a.lambda_min == pytest.approx(b.lambda_min, abs=1e-8)
            assert a.lambda_max == pytest.approx(b.lambda_max, abs=1e-8)


def test_lanczos_finds_the_index_and_the_eigenvalues_around_zero_of_a_saddle():
    """A critical point of Fix(Delta(S_5 x S_1)) with several negative directions: Lanczos gives the
    dense spectrum's smallest eigenvalues (past the negative ones) and its largest."""
    point = fixed_space_saddle()
    problem = sp.ReLUTeacherStudent(teacher=6, student=6)
    dense = np.linalg.eigvalsh(np.asarray(problem.hessian(point.matrix())))
    found = analyze.lanczos_spectrum(problem, point.matrix(), count=2)
    index = int(np.sum(dense < 0))
    assert int(np.sum(found[:-1] < 0)) == index > 1 and found[-2] > 0
    np.testing.assert_allclose(found[:-1], dense[:len(found) - 1], atol=1e-9)
    assert found[-1] == pytest.approx(dense[-1], abs=1e-9)


def test_lanczos_leaves_out_the_zero_modes_like_the_dense_spectrum():
    """A split neuron (one more student) has a flat direction; both spectra are taken on its complement."""
    point = fp.continue_in_k(fp.newton((5, 1), (1.0, -0.03, -0.65, 0.25, 0.17)), [7])[-1]
    wider, split = sp.ReLUTeacherStudent(teacher=7, student=7).split(point.matrix(), 6, 0.4)
    assert len(wider.zero_modes(split)) == 1
    dense = analyze.hessian_spectra(wider, split[None])[0]
    found = analyze.lanczos_spectrum(wider, split, count=6)
    assert len(dense) == wider.size - 1
    np.testing.assert_allclose(found[:-1], dense[:len(found) - 1], atol=1e-8)
    assert found[-1] == pytest.approx(dense[-1], abs=1e-8)


def test_minres_newton_polishes_like_the_dense_newton():
    point = fp.continue_in_k(fp.newton((5, 1), (1.0, -0.03, -0.65, 0.25, 0.17)), [7, 8])[-1]
    problem = sp.ReLUTeacherStudent(teacher=8, student=8)
    start = point.matrix() + np.random.default_rng(0).normal(size=(8, 8)) * 1e-4
    polished, norms = analyze.polish_matrix_free(problem, start[None], iterations=10, grad_tol=1e-13)
    np.testing.assert_allclose(polished[0], point.matrix(), atol=1e-11)
    assert norms[0] < 1e-12

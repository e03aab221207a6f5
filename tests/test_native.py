"""The native CPU kernel of the ReLU step (spurious/problems/relu_native.cc) against the JAX path it
replaces, and the engine's classes with it against the engine's classes without it."""
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import spurious as sp
from spurious.core import native
from spurious.problems import relu

needs_native = pytest.mark.skipif(relu.native_target() is None, reason="no C++ compiler: the native kernel is off")


def _teacher(k, d, seed):
    return np.random.default_rng(seed).normal(size=(k, d))


CASES = [  # teacher k, student n, dim d, general teacher?
    (6, 6, 6, False), (20, 20, 20, False), (5, 8, 7, False), (6, 4, 6, False), (3, 3, 9, False),
    (4, 3, 6, True), (7, 9, 7, True), (1, 1, 1, False), (2, 5, 1, True),
]


@needs_native
@pytest.mark.parametrize("k,n,d,general,runs", [case + (9,) for case in CASES] + [(6, 6, 6, False, runs) for runs in (1, 7, 37)])
def test_native_loss_and_grad_match_the_difference_form(k, n, d, general, runs):
    """Every shape of batch (runs not a multiple of the 8 lanes), identity and general teachers,
    students narrower and wider than the teacher: the same loss and gradient as relu.py's
    difference form, run by run, to rounding."""
    problem = sp.ReLUTeacherStudent(k, n, d, teacher_weights=_teacher(k, d, 1) if general else None)
    students = jnp.asarray(np.random.default_rng(runs).normal(size=(runs, n, d)) / np.sqrt(d))
    loss, grad = jax.jit(lambda w: relu.native_loss_and_grad_batch(
        w, problem._teacher, problem._teacher_self_loss, problem.identity_teacher))(students)
    expected_loss, expected_grad = jax.jit(jax.vmap(problem.loss_and_grad))(students)
    scale = 1.0 + np.abs(np.asarray(expected_loss))
    assert np.all(np.abs(np.asarray(loss - expected_loss)) <= 1e-14 * n * max(n, k) * scale)
    np.testing.assert_allclose(grad, expected_grad, rtol=0, atol=1e-14 * max(n, k))
    assert np.all(np.isfinite(grad))


@needs_native
def test_native_kernel_is_accurate_where_the_gram_form_is_not():
    """Nearly parallel student neurons (angle 1e-9), a zero neuron, a neuron on a teacher's axis: the
    native kernel keeps the difference form's full accuracy. The loss is checked against the
    closed form in 200-bit ball arithmetic (Arb), the gradient against relu.py's difference form."""
    from flint import arb, ctx

    k = n = d = 4
    problem = sp.ReLUTeacherStudent(k, n, d)
    rng = np.random.default_rng(2)
    w = rng.normal(size=(n, d))
    w[1] = w[0] * 1.3 + 1e-9 * rng.normal(size=d)
    w[2] = 0.0
    w[3] = [0.0, 0.7, 0.0, 0.0]
    loss, grad = relu.native_loss_and_grad_batch(jnp.asarray(w[None]), problem._teacher, problem._teacher_self_loss, True)

    old_precision, ctx.prec = ctx.prec, 200
    try:
        def f(a, b):
            norm_a, norm_b = sum(x * x for x in a).sqrt(), sum(x * x for x in b).sqrt()
            if norm_a == 0 or norm_b == 0:
                return arb(0)
            cos = sum(x * y for x, y in zip(a, b)) / (norm_a * norm_b)
            angle = cos.acos() if abs(cos.mid()) < 1 else arb(0)
            return norm_a * norm_b * (angle.sin() + (arb.pi() - angle) * cos) / (2 * arb.pi())

        rows = [[arb(float(x)) for x in row] for row in w]
        teacher = [[arb(float(x)) for x in row] for row in np.eye(k)]
        exact = (sum((f(a, b) for a in rows for b in rows), arb(0)) / 2
                 - sum((f(a, v) for a in rows for v in teacher), arb(0))
                 + sum((f(a, b) for a in teacher for b in teacher), arb(0)) / 2)
        exact = float(exact.mid())
    finally:
        ctx.prec = old_precision
    assert abs(float(loss[0]) - exact) <= 1e-14 * (1 + abs(exact))
    expected = np.asarray(problem.grad(jnp.asarray(w)))
    np.testing.assert_allclose(np.asarray(grad[0]), expected, rtol=0, atol=1e-14)


@needs_native
def test_the_problem_step_takes_the_native_kernel_on_the_cpu_only(monkeypatch):
    problem = sp.ReLUTeacherStudent(5, 5)
    students = jnp.asarray(sp.starts(problem, 0, np.arange(4)))
    lowered = jax.jit(problem.loss_and_grad_batch).lower(students).as_text()
    assert relu.native_target() in lowered
    monkeypatch.setenv(native.NATIVE_VARIABLE, "off")
    assert relu.native_target() is None
    assert "spurious_relu" not in jax.jit(sp.ReLUTeacherStudent(5, 5).loss_and_grad_batch).lower(students).as_text()


@needs_native
@pytest.mark.parametrize("k,n", [(6, 6), (5, 7)])
def test_engine_classes_are_the_same_with_and_without_the_native_kernel(monkeypatch, k, n):
    """The whole pipeline (descent, Newton, analysis) on the same starts: the same class, Morse
    index and status in every run, and losses equal to rounding."""
    with_native = sp.run(sp.ReLUTeacherStudent(k, n), runs=32, seed=4)
    monkeypatch.setenv(native.NATIVE_VARIABLE, "off")
    without = sp.run(sp.ReLUTeacherStudent(k, n), runs=32, seed=4)
    np.testing.assert_array_equal(with_native.analysis.cls, without.analysis.cls)
    np.testing.assert_array_equal(with_native.analysis.morse_index, without.analysis.morse_index)
    np.testing.assert_array_equal(with_native.endpoints.status, without.endpoints.status)
    np.testing.assert_allclose(with_native.analysis.loss, without.analysis.loss, rtol=0, atol=1e-10)


def test_a_failed_build_warns_once_and_keeps_the_jax_path(monkeypatch, tmp_path):
    monkeypatch.setattr(native, "_registered", {})
    monkeypatch.setenv("SPURIOUS_COMPILE_CACHE", str(tmp_path))
    monkeypatch.setenv("CXX", "/bin/false")
    with pytest.warns(RuntimeWarning, match="unavailable"):
        assert relu.native_target() is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert relu.native_target() is None  # decided once per process
    problem = sp.ReLUTeacherStudent(4, 4)
    students = jnp.asarray(sp.starts(problem, 0, np.arange(3)))
    loss, grad = jax.jit(problem.loss_and_grad_batch)(students)
    expected_loss, expected_grad = jax.vmap(problem.loss_and_grad)(students)
    np.testing.assert_allclose(grad, expected_grad, atol=1e-15)
    # nothing half-built is left behind
    assert not [f for f in tmp_path.rglob("*") if f.is_file()]


def test_native_kernels_can_be_turned_off(monkeypatch):
    monkeypatch.setenv(native.NATIVE_VARIABLE, "off")
    assert not native.enabled()
    assert relu.native_target() is None

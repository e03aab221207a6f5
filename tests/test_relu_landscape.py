import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from spurious import NonSmoothPoint, ReLUTeacherStudent, SpuriousError

from oracles import finite_difference_grad, monte_carlo_loss, naive_relu_loss


def random_point(problem, seed):
    return np.random.default_rng(seed).standard_normal(problem.shape) / math.sqrt(problem.dim)


@pytest.mark.parametrize("k,n,d", [(3, 3, 3), (3, 4, 3), (2, 3, 4)])
def test_closed_form_matches_autodiff_of_independent_formula(k, n, d):
    p = ReLUTeacherStudent(teacher=k, student=n, dim=d)
    W = jnp.asarray(random_point(p, 1))
    V = jnp.asarray(p.teacher_weights)
    assert abs(float(p.loss(W)) - float(naive_relu_loss(W, V))) < 1e-13
    np.testing.assert_allclose(p.grad(W), jax.grad(naive_relu_loss)(W, V), atol=1e-13)
    oracle_h = jax.hessian(lambda x: naive_relu_loss(x.reshape(n, d), V))(W.reshape(-1))
    np.testing.assert_allclose(p.hessian(W), oracle_h, atol=1e-12)


def test_general_teacher_matches_autodiff():
    rng = np.random.default_rng(3)
    V = rng.standard_normal((3, 5))
    p = ReLUTeacherStudent(teacher=3, student=4, dim=5, teacher_weights=V)
    assert not p.identity_teacher
    W = jnp.asarray(rng.standard_normal((4, 5)))
    np.testing.assert_allclose(p.grad(W), jax.grad(naive_relu_loss)(W, jnp.asarray(V)), atol=1e-13)
    oracle_h = jax.hessian(lambda x: naive_relu_loss(x.reshape(4, 5), jnp.asarray(V)))(W.reshape(-1))
    np.testing.assert_allclose(p.hessian(W), oracle_h, atol=1e-12)


def test_gradient_and_hessian_match_finite_differences():
    p = ReLUTeacherStudent(teacher=4, student=4)
    W = random_point(p, 7)
    np.testing.assert_allclose(p.grad(jnp.asarray(W)), finite_difference_grad(p.loss, W), atol=1e-8)
    hess_fd = np.stack([finite_difference_grad(lambda x: p.grad(jnp.asarray(x))[idx], W).reshape(-1)
                        for idx in np.ndindex(W.shape)])
    np.testing.assert_allclose(p.hessian(jnp.asarray(W)), hess_fd, atol=1e-7)


@pytest.mark.parametrize("seed", [0, 1])
def test_population_loss_matches_monte_carlo(seed):
    p = ReLUTeacherStudent(teacher=5, student=6)
    W = random_point(p, seed + 10)
    mean, stderr = monte_carlo_loss(W, p.teacher_weights, 400_000, seed=seed)
    assert abs(float(p.loss(jnp.asarray(W))) - mean) < 4 * stderr


@pytest.mark.parametrize("k", [2, 6, 11])
def test_smallest_eigenvalue_at_global_minimum(k):
    p = ReLUTeacherStudent(teacher=k, student=k)
    eye = jnp.eye(k)
    assert float(p.loss(eye)) == pytest.approx(0.0, abs=1e-14)
    assert float(jnp.max(jnp.abs(p.grad(eye)))) < 1e-15
    lam = np.linalg.eigvalsh(np.asarray(p.hessian(eye)))
    assert lam[0] == pytest.approx(0.25 - 1 / (2 * math.pi), abs=1e-13)


def test_no_nan_at_parallel_neurons_and_gradient_accurate_near_teacher():
    p = ReLUTeacherStudent(teacher=3, student=4)
    W = np.array([[1.0, 0, 0], [2.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]])  # rows 0, 1 parallel
    for value in (p.loss(jnp.asarray(W)), p.grad(jnp.asarray(W)), p.hessian(jnp.asarray(W))):
        assert np.all(np.isfinite(value))
    # Near W = V the gradient must shrink with the distance (arccos-based angles stall at ~1e-8).
    for eps in (1e-6, 1e-9, 1e-12):
        q = ReLUTeacherStudent(teacher=3, student=3)
        point = np.eye(3) + eps * np.array([[0, 1.0, 0], [0, 0, 1.0], [1.0, 0, 0]])
        assert float(jnp.max(jnp.abs(q.grad(jnp.asarray(point))))) < 10 * eps


def test_zero_neuron_is_flagged():
    p = ReLUTeacherStudent(teacher=2, student=2)
    W = np.array([[0.0, 0.0], [1.0, 0.5]])
    assert "neuron 0 is zero" in p.nonsmooth_reason(W)
    with pytest.raises(NonSmoothPoint):
        p.check_smooth(W)


@pytest.mark.parametrize("kwargs,message", [
    (dict(teacher=0, student=3), "teacher must be at least 1"),
    (dict(teacher=3, student=-1), "student must be at least 1"),
    (dict(teacher=4, student=4, dim=3), "dim (3) must be at least teacher (4)"),
    (dict(teacher=2, student=2, teacher_weights=[[np.nan, 0], [0, 1]]), "NaN"),
    (dict(teacher=2, student=2, teacher_weights=[[1, 0]]), "shape"),
    (dict(teacher=2.5, student=2), "integer"),
])
def test_bad_input_is_refused(kwargs, message):
    with pytest.raises(SpuriousError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ReLUTeacherStudent(**kwargs)


@settings(max_examples=4, deadline=None)  # each example compiles its own Hessian
@given(k=st.integers(1, 3), n=st.integers(1, 3), extra=st.integers(0, 1), seed=st.integers(0, 10_000))
def test_hessian_is_symmetric_and_matches_gradient_jacobian(k, n, extra, seed):
    # dim >= 2: in one dimension every neuron is parallel to the teacher, where F is not C^2
    p = ReLUTeacherStudent(teacher=k, student=n, dim=max(k, 2) + extra)
    W = jnp.asarray(random_point(p, seed))
    H = np.asarray(p.hessian(W))
    np.testing.assert_allclose(H, H.T, atol=1e-13)
    jac = jax.jacfwd(lambda x: p.grad(x.reshape(p.shape)).reshape(-1))(W.reshape(-1))
    np.testing.assert_allclose(H, jac, atol=1e-10)


def test_polynomial_atan2_matches_libm_to_a_few_ulp():
    from spurious.problems.relu import atan2_upper

    rng = np.random.default_rng(1)
    y = np.concatenate([rng.uniform(0, 2, 100_000), 10 ** rng.uniform(-300, 3, 20_000), [0.0, 0.0, 1.0, 5e-324]])
    x = np.concatenate([rng.uniform(-2, 2, 100_000), rng.normal(size=20_000) * 10 ** rng.uniform(-3, 3, 20_000),
                        [0.0, -1.0, 0.0, -1.0]])
    got = np.asarray(jax.jit(atan2_upper)(jnp.asarray(y), jnp.asarray(x)))
    ref = np.arctan2(y, x)
    assert np.all((got >= 0) & (got <= np.pi))
    assert np.max(np.abs(got - ref) / np.spacing(np.maximum(np.abs(ref), 1e-300))) <= 4
    # derivatives, used by autodiff of the closed-form gradient
    dy, dx = jax.grad(atan2_upper, argnums=(0, 1))(0.3, -0.7)
    assert (dy, dx) == pytest.approx((-0.7 / 0.58, -0.3 / 0.58), rel=1e-14)


def test_the_batched_gram_step_matches_the_difference_form_and_falls_back_near_parallel_pairs():
    """k = n = d = 16 (the Gram path's size): random starts, points near the global minimum, and a batch
    with two nearly parallel student neurons (which must take the difference form), against the
    per-point difference form."""
    from spurious.problems import relu

    problem = ReLUTeacherStudent(teacher=16, student=16)
    assert problem.size >= relu.GRAM_MIN_SIZE
    rng = np.random.default_rng(5)
    random = np.asarray(jax.vmap(problem.init)(jax.random.split(jax.random.PRNGKey(0), 8)))
    near_global = np.eye(16)[None] + 1e-9 * rng.normal(size=(8, 16, 16))
    parallel = random.copy()
    parallel[3, 1] = parallel[3, 0] * 1.5 + 1e-7 * rng.normal(size=16)
    for batch in (random, near_global, parallel):
        fast_loss, fast_grad = problem.loss_and_grad_batch(batch)
        loss, grad = jax.vmap(problem.loss_and_grad)(batch)
        np.testing.assert_allclose(fast_grad, grad, rtol=0, atol=1e-14)
        np.testing.assert_allclose(fast_loss, loss, rtol=0, atol=1e-13)
    _, _, closest = relu.population_loss_and_grad_fast(parallel[3], problem._teacher, 0.0, True)
    assert closest < relu.NEAR_PARALLEL

"""The Problem contract, checked on every registered landscape and on the docs' user example.

A new landscape is covered by registering it (with a small `example`): each check below runs on
every `registry.entries()` item. The oracles are independent of the problem's own derivatives:
central finite differences of the loss, forward-mode Jacobians of the gradient, exact
permutation images of a point, and the JSON text a store would keep.
"""
from __future__ import annotations

import functools
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import minimize

import spurious as sp
from spurious.core.jsonable import canonical_json
from spurious.problems import registry

ROOT = Path(__file__).resolve().parents[1]
#: the docs' user landscape, by an absolute file spec so the test does not depend on the working directory
USER_SPEC = f"{ROOT / 'docs' / 'examples' / 'erf_network.py'}:ErfNetwork"
USER_PARAMS = {"teacher": 2, "student": 3}

CASES = [(e.name, dict(e.example)) for e in registry.entries()] + [(USER_SPEC, USER_PARAMS)]
IDS = [e.name for e in registry.entries()] + ["user:erf_network"]
POINT_SEEDS = (11, 12)


@functools.lru_cache(maxsize=None)
def _problem(spec: str, params_json: str) -> sp.Problem:
    return registry.build(spec, json.loads(params_json))


def problem_of(case) -> sp.Problem:
    spec, params = case
    return _problem(spec, json.dumps(params, sort_keys=True))


def random_points(problem: sp.Problem) -> list[np.ndarray]:
    """Generic points near the starts: a start plus independent noise, so no point sits on a special
    set (zero rows, parallel rows, the identity start of a residual network)."""
    points = []
    for seed in POINT_SEEDS:
        start = np.asarray(problem.init(jax.random.PRNGKey(seed)))
        noise = np.random.default_rng(seed).standard_normal(problem.shape)
        points.append(start + 0.1 * noise)
    return points


def smooth_points(problem: sp.Problem) -> list[np.ndarray]:
    points = random_points(problem)
    for x in points:
        # the derivative checks below need a twice-differentiable point (ReLU-type losses are not everywhere)
        assert problem.nonsmooth_reason(x) is None, f"random point is non-smooth: {problem.nonsmooth_reason(x)}"
    return points


class Compiled:
    """The problem's functions compiled once per problem (eager JAX Hessians are slow)."""

    def __init__(self, problem: sp.Problem):
        self.loss = jax.jit(problem.loss)
        self.losses = jax.jit(jax.vmap(problem.loss))
        self.grad = jax.jit(problem.grad)
        self.hessian = jax.jit(problem.hessian)
        self.jacobian = jax.jit(jax.jacfwd(problem.grad))
        self.loss_and_grad = jax.jit(problem.loss_and_grad)


@functools.lru_cache(maxsize=None)
def compiled(problem: sp.Problem) -> Compiled:
    return Compiled(problem)


@pytest.fixture(params=CASES, ids=IDS)
def problem(request) -> sp.Problem:
    return problem_of(request.param)


# -- derivatives ---------------------------------------------------------------------------------
def test_hessian_is_symmetric_and_the_jacobian_of_the_gradient(problem):
    fns = compiled(problem)
    for x in smooth_points(problem):
        H = np.asarray(fns.hessian(jnp.asarray(x)))
        assert H.shape == (problem.size, problem.size)
        assert H.dtype == np.float64
        scale = max(1.0, float(np.max(np.abs(H))))
        np.testing.assert_allclose(H, H.T, rtol=0, atol=1e-10 * scale, err_msg="Hessian not symmetric")
        J = np.asarray(fns.jacobian(jnp.asarray(x))).reshape(problem.size, problem.size)
        np.testing.assert_allclose(H, J, rtol=1e-8, atol=1e-10 * scale,
                                   err_msg="Hessian differs from the Jacobian of the gradient")


def test_gradient_matches_central_differences_of_the_loss_and_loss_and_grad_agrees(problem):
    h = 1e-5
    fns = compiled(problem)
    for x in smooth_points(problem):
        g = np.asarray(fns.grad(jnp.asarray(x)))
        assert g.shape == problem.shape and g.dtype == np.float64
        steps = h * np.eye(problem.size).reshape((problem.size,) + problem.shape)
        plus = np.asarray(fns.losses(jnp.asarray(x + steps)))
        minus = np.asarray(fns.losses(jnp.asarray(x - steps)))
        fd = ((plus - minus) / (2 * h)).reshape(problem.shape)
        # truncation O(h^2 |F'''|) plus rounding O(eps |F| / h): both far below 1e-6 at these scales
        value = abs(float(fns.loss(jnp.asarray(x))))
        tol = 1e-6 * max(1.0, value, float(np.max(np.abs(g))))
        assert np.max(np.abs(fd - g)) <= tol, f"grad vs finite differences: max error {np.max(np.abs(fd - g)):.3e}"
        # what the engine evaluates every step: the same loss and gradient at once
        value_at, grad_at = fns.loss_and_grad(jnp.asarray(x))
        assert abs(float(value_at) - float(fns.loss(jnp.asarray(x)))) <= 1e-12 * max(1.0, value)
        np.testing.assert_allclose(np.asarray(grad_at), g, rtol=1e-10, atol=1e-12 * max(1.0, float(np.max(np.abs(g)))))


# -- identity ------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_params_rebuild_the_same_problem(case):
    spec, _ = case
    problem = problem_of(case)
    params = problem.params()
    text = canonical_json(params)  # what a store keeps
    again = registry.build(spec, json.loads(text))
    assert again == problem and hash(again) == hash(problem)
    assert canonical_json(again.params()) == text
    assert again.shape == problem.shape
    x = random_points(problem)[0]
    # compiled afresh: the cache keys on equality, which is what is under test here
    assert float(jax.jit(again.loss)(jnp.asarray(x))) == float(compiled(problem).loss(jnp.asarray(x)))


def test_params_are_plain_json(problem):
    params = problem.params()
    assert isinstance(params, dict)
    json.dumps(params, allow_nan=False)  # plain data: no arrays, tuples of arrays, NaN or objects
    assert json.loads(canonical_json(params)) == json.loads(json.dumps(params))


# -- starts --------------------------------------------------------------------------------------
def test_starts_are_reproducible_float64_and_of_the_right_shape(problem):
    a = np.asarray(problem.init(jax.random.PRNGKey(3)))
    b = np.asarray(problem.init(jax.random.PRNGKey(3)))
    c = np.asarray(problem.init(jax.random.PRNGKey(4)))
    assert a.shape == tuple(problem.shape) and a.dtype == np.float64
    assert np.array_equal(a, b), "the same key gave different starts"
    assert not np.array_equal(a, c), "different keys gave the same start"
    assert np.all(np.isfinite(a))


# -- symmetry ------------------------------------------------------------------------------------
def test_loss_is_invariant_under_its_symmetry(problem):
    rng = np.random.default_rng(5)
    loss = compiled(problem).loss
    for x in random_points(problem):
        value = float(loss(jnp.asarray(x)))
        for _ in range(3):
            y = np.asarray(problem.symmetry.random_image(x, rng))
            assert y.shape == x.shape
            image_value = float(loss(jnp.asarray(y)))
            assert abs(image_value - value) <= 1e-12 * max(1.0, abs(value)), \
                f"loss {value!r} at a point, {image_value!r} at its symmetric image"
            # the family grouping relies on `distance` recognising an image as the same point
            distance = problem.symmetry.distance(x, y)
            assert distance <= 1e-12 * max(1.0, float(np.max(np.abs(x)))), \
                f"symmetry.distance {distance:.3e} between a point and its image"


# -- zero modes ----------------------------------------------------------------------------------
def check_zero_modes(problem, x: np.ndarray, critical: bool):
    """Each tangent v of a continuous symmetry orbit: grad . v = 0 everywhere (F is constant on the
    orbit), and H v = 0 at a critical point (there d/dt grad F(exp(t xi) x) = H xi x + xi^T grad = H v)."""
    modes = np.asarray(problem.zero_modes(x), dtype=np.float64)
    assert modes.ndim == 2 and modes.shape[1] == problem.size
    fns = compiled(problem)
    g = np.asarray(fns.grad(jnp.asarray(x))).reshape(-1)
    H = np.asarray(fns.hessian(jnp.asarray(x)))
    h_norm = np.linalg.norm(H, 2)
    for v in modes:
        v_norm = np.linalg.norm(v)
        assert v_norm > 0, "a zero mode is the zero vector"
        assert abs(g @ v) <= 1e-8 * max(np.linalg.norm(g), 1e-300) * v_norm + 1e-14 * v_norm, \
            f"zero mode not orthogonal to the gradient: g.v = {g @ v:.3e}"
        if critical:
            assert np.linalg.norm(H @ v) <= 1e-8 * h_norm * v_norm, \
                f"zero mode not in the Hessian's kernel: |Hv| = {np.linalg.norm(H @ v):.3e}"
    return len(modes)


def nearby_critical_point(problem, x0: np.ndarray) -> np.ndarray:
    """A critical point found without the package's optimizer: BFGS, then pseudo-inverse Newton steps
    (the zero modes make H singular) until the gradient is at rounding level."""
    fns, shape = compiled(problem), problem.shape
    loss = lambda z: float(fns.loss(jnp.asarray(z.reshape(shape))))
    grad = lambda z: np.asarray(fns.grad(jnp.asarray(z.reshape(shape)))).reshape(-1)
    result = minimize(loss, x0.reshape(-1), jac=grad, method="BFGS", options={"gtol": 1e-9, "maxiter": 5000})
    z = result.x
    for _ in range(20):
        g = grad(z)
        if np.linalg.norm(g) <= 1e-13:
            break
        z = z - np.linalg.pinv(np.asarray(fns.hessian(jnp.asarray(z.reshape(shape)))), rcond=1e-10) @ g
    assert np.linalg.norm(grad(z)) <= 1e-10, "no critical point found near the start"
    return z.reshape(problem.shape)


def test_zero_modes_are_flat_directions(problem):
    points = smooth_points(problem)
    counts = [check_zero_modes(problem, x, critical=False) for x in points]
    if max(counts) > 0:
        x = nearby_critical_point(problem, points[0])
        assert problem.nonsmooth_reason(x) is None
        check_zero_modes(problem, x, critical=True)


class _Ring(sp.Problem):
    """F(x) = (|x|^2 - 1)^2 on R^3: rotation invariant, zero modes A x for the rotation generators A;
    a wrong mode (x itself, the radial direction) must be caught."""

    shape = (3,)

    def __init__(self, wrong: bool = False):
        self.wrong = wrong

    def loss(self, x):
        return (jnp.sum(x * x) - 1.0) ** 2

    def zero_modes(self, x):
        x = np.asarray(x)
        if self.wrong:
            return x[None, :]
        generators = [np.array([[0, -1, 0], [1, 0, 0], [0, 0, 0]]), np.array([[0, 0, -1], [0, 0, 0], [1, 0, 0]]),
                      np.array([[0, 0, 0], [0, 0, -1], [0, 1, 0]])]
        return np.stack([A @ x for A in generators])


def test_the_zero_mode_check_accepts_true_modes_and_catches_a_wrong_one():
    x = np.array([0.3, -0.7, 1.1])
    assert check_zero_modes(_Ring(), x, critical=False) == 3
    critical = nearby_critical_point(_Ring(), x)
    assert abs(np.sum(critical ** 2) - 1.0) < 1e-10
    check_zero_modes(_Ring(), critical, critical=True)
    with pytest.raises(AssertionError):
        check_zero_modes(_Ring(wrong=True), x, critical=False)


def test_every_registered_problem_is_covered():
    # an entry without an example would be built with no parameters; every shipped one must have one
    for e in registry.entries():
        assert e.example or not any(p.required for p in e.parameters), f"{e.name} registers no example"

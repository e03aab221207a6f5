"""Quadratic networks, deep linear residual networks and residual units: each loss and gradient
against independent oracles (plain NumPy forward passes, autodiff of separately written losses,
central finite differences), the convex twin against an independent solver and its optimality
conditions, params() round trips, zero modes of the continuous symmetries, each experiment's report
at quick size (through the engine), and the rule that experiments neither plot nor loop."""
import ast
import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.linalg import expm
from scipy.optimize import minimize

from spurious.experiments import EXPERIMENTS, ExperimentReport, Figure, Verdict, load_all
from spurious.problems import build, registry
from spurious.experiments._curves import fit_rate
from spurious.problems import DeepLinearResidual, QuadraticNetwork, ResidualUnitRegression, solve_convex_twin
from spurious.problems import deep_linear as dl
from spurious.problems import quadratic as q
from spurious.problems import residual as res

from oracles import finite_difference_grad


# -- quadratic networks -----------------------------------------------------------------------------
def numpy_quadratic_loss(W, X, y, a, lam):
    total = 0.0
    for i in range(X.shape[0]):
        yhat = sum(a[j] * float(W[j] @ X[i]) ** 2 for j in range(W.shape[0]))
        total += (yhat - y[i]) ** 2
    return total / (2 * X.shape[0]) + 0.5 * lam * float(np.sum(W * W))


@pytest.mark.parametrize("signs,targets", [("balanced", "gaussian"), ("positive", "planted")])
def test_quadratic_loss_and_hand_gradient(signs, targets):
    p = QuadraticNetwork(dim=5, hidden=4, samples=9, weight_decay=0.03, signs=signs, targets=targets,
                         planted=2 if targets == "planted" else None, data_seed=3)
    X, y, a = np.asarray(p.inputs), np.asarray(p.targets), p.signs
    W = np.asarray(p.init(jax.random.PRNGKey(1)))
    assert float(p.loss(W)) == pytest.approx(numpy_quadratic_loss(W, X, y, a, 0.03), rel=1e-12)
    independent = lambda V: (0.5 * jnp.mean((jnp.einsum("j,nj->n", jnp.asarray(a), (jnp.asarray(X) @ V.T) ** 2)
                                             - jnp.asarray(y)) ** 2) + 0.015 * jnp.sum(V * V))
    g = np.asarray(p.grad(jnp.asarray(W)))
    np.testing.assert_allclose(g, np.asarray(jax.grad(independent)(jnp.asarray(W))), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(g, finite_difference_grad(lambda V: numpy_quadratic_loss(V, X, y, a, 0.03), W),
                               rtol=1e-6, atol=1e-7)
    value, g2 = q.loss_and_grad(jnp.asarray(W), p.inputs, p.targets, jnp.asarray(a), 0.03)
    assert float(value) == pytest.approx(float(p.loss(W)), rel=1e-14)
    np.testing.assert_allclose(np.asarray(g2), g, rtol=1e-13, atol=1e-15)
    if targets == "planted":  # planted weights give zero loss without weight decay
        p0 = QuadraticNetwork(dim=5, hidden=2, samples=9, signs="positive", targets="planted", planted=p.planted,
                              data_seed=3)
        assert float(p0.loss(jnp.asarray(p.planted))) < 1e-28
        assert p0.global_min_value == 0.0


def test_sign_group_rotations_are_symmetries():
    p = QuadraticNetwork(dim=4, hidden=6, samples=8, weight_decay=0.1, data_seed=0)
    W = np.asarray(p.init(jax.random.PRNGKey(0)))
    Q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((3, 3)))
    V = W.copy()
    V[:3] = Q @ W[:3]
    assert float(p.loss(V)) == pytest.approx(float(p.loss(W)), rel=1e-12)
    assert p.symmetry.distance(W, V) < 1e-12
    assert p.symmetry.distance(W, W + 0.1) > 1e-3


@pytest.fixture(scope="module")
def small_twin():
    X, y = q.make_data(jax.random.PRNGKey(7), 4, 8)
    return np.asarray(X), np.asarray(y), 0.05, solve_convex_twin(X, y, 0.05)


def test_convex_twin_certificate_and_optimality_conditions(small_twin):
    X, y, lam, sol = small_twin
    assert sol.gap >= 0 and sol.relative_gap <= 1e-11
    M = sol.M
    # value recomputed independently in NumPy
    r = np.einsum("ni,ij,nj->n", X, M, X) - y
    assert sol.value == pytest.approx(0.5 * np.mean(r ** 2) + 0.5 * lam * np.abs(np.linalg.eigvalsh(M)).sum(),
                                      rel=1e-12)
    # KKT: S = -grad f(M) lies in (lam/2) * subdifferential of the nuclear norm at M
    S = -(X.T * r) @ X / len(y)
    e, V = np.linalg.eigh(M)
    assert np.max(np.abs(np.linalg.eigvalsh(S))) <= 0.5 * lam * (1 + 1e-6)
    for value, vec in zip(e, V.T):
        if abs(value) > 1e-7:
            np.testing.assert_allclose(S @ vec, 0.5 * lam * np.sign(value) * vec, atol=1e-6)
    # weak duality: every symmetric M has primal value >= the certified lower bound
    rng = np.random.default_rng(0)
    for _ in range(5):
        B = rng.standard_normal((4, 4))
        assert float(q.convex_twin_value(jnp.asarray(M + 0.1 * (B + B.T)), X, y, lam)) >= sol.value - sol.gap - 1e-15


def test_convex_twin_matches_independent_factorized_solver(small_twin):
    """min over M = A A^T - B B^T (P, N >= 0, full rank d) of f(M) + (lam/2)(|A|^2 + |B|^2) by
    scipy L-BFGS from many random starts equals the nuclear-norm optimum."""
    X, y, lam, sol = small_twin
    d = X.shape[1]

    def objective(flat):
        A, B = flat[: d * d].reshape(d, d), flat[d * d:].reshape(d, d)
        M = A @ A.T - B @ B.T
        r = np.einsum("ni,ij,nj->n", X, M, X) - y
        G = (X.T * r) @ X / len(y)  # gradient of f w.r.t. M
        value = 0.5 * np.mean(r ** 2) + 0.5 * lam * (np.sum(A * A) + np.sum(B * B))
        return value, np.concatenate([(2 * G @ A + lam * A).ravel(), (-2 * G @ B + lam * B).ravel()])

    rng = np.random.default_rng(1)
    best = min(minimize(objective, 0.5 * rng.standard_normal(2 * d * d), jac=True, method="L-BFGS-B",
                        options=dict(maxiter=20000, ftol=1e-16, gtol=1e-13)).fun for _ in range(12))
    assert best == pytest.approx(sol.value, rel=1e-8)
    assert best >= sol.value - sol.gap - 1e-14  # never below the certified bound


def test_network_is_bounded_by_twin_and_attains_it_when_wide(small_twin):
    X, y, lam, sol = small_twin
    wide = 2 * max(sol.rank_positive, sol.rank_negative)
    a = jnp.asarray(q.signs_vector(wide))
    W = q.factor_from_matrix(sol.M, wide)
    np.testing.assert_allclose(np.asarray(q.gram_matrix(jnp.asarray(W), a)), sol.M, atol=1e-12)
    assert float(q.loss(jnp.asarray(W), X, y, a, lam)) == pytest.approx(sol.value, rel=1e-12)
    narrow = jnp.asarray(q.signs_vector(2))
    rng = np.random.default_rng(2)
    for _ in range(20):
        V = jnp.asarray(rng.standard_normal((2, X.shape[1])))
        assert float(q.loss(V, X, y, narrow, lam)) >= sol.value - sol.gap - 1e-15


# -- deep linear residual networks --------------------------------------------------------------------
def numpy_deep_linear_loss(thetas, target):
    product = np.eye(target.shape[0])
    for theta in thetas:  # thetas[0] applied first
        product = theta @ product
    return 0.5 * np.sum((product - target) ** 2)


def test_deep_linear_loss_and_closed_form_gradient():
    p = DeepLinearResidual(dim=3, depth=4, negative=True, data_seed=2, init_std=0.3)
    th = np.asarray(p.init(jax.random.PRNGKey(5)))
    target = np.asarray(p.target)
    np.testing.assert_allclose(np.linalg.eigvalsh(target), np.sort(p.eigenvalues), atol=1e-12)
    assert float(p.loss(th)) == pytest.approx(numpy_deep_linear_loss(th, target), rel=1e-12)
    g = np.asarray(p.grad(jnp.asarray(th)))
    independent = lambda t: 0.5 * jnp.sum((t[3] @ t[2] @ t[1] @ t[0] - jnp.asarray(target)) ** 2)
    np.testing.assert_allclose(g, np.asarray(jax.grad(independent)(jnp.asarray(th))), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(g, finite_difference_grad(lambda t: numpy_deep_linear_loss(t, target), th),
                               rtol=1e-6, atol=1e-7)
    f, g2 = dl.loss_and_grad(jnp.asarray(th), p.target)
    assert float(f) == pytest.approx(float(p.loss(th)), rel=1e-14)
    np.testing.assert_allclose(np.asarray(g2), g, rtol=1e-12, atol=1e-14)


def test_deep_linear_identity_start_and_negative_floor():
    p = DeepLinearResidual(dim=4, depth=3, negative=True, data_seed=0)
    th = p.init(jax.random.PRNGKey(0))
    np.testing.assert_array_equal(np.asarray(th), np.broadcast_to(np.eye(4), (3, 4, 4)))
    assert p.floor() == pytest.approx(0.125)
    target = p.target

    @jax.jit
    def descend(th):
        def body(th, _):
            f, g = dl.loss_and_grad(th, target)
            return th - 0.05 * g, f
        return jax.lax.scan(body, th, None, length=300)

    th, losses = descend(th)
    assert float(jnp.min(losses)) >= p.floor() - 1e-13  # at every step
    assert float(losses[-1]) < float(losses[0])
    # the global minimum 0 exists all the same (first layer = Phi)
    assert float(p.loss(jnp.concatenate([p.target[None], jnp.broadcast_to(jnp.eye(4), (2, 4, 4))]))) < 1e-28


# -- residual units -----------------------------------------------------------------------------------
def numpy_predict(parts, X, architecture):
    f = np.maximum(X @ parts["U"].T + parts["c"], 0.0)
    if architecture == "residual":
        return np.array([parts["w"] @ (x + parts["V"] @ fx) for x, fx in zip(X, f)])
    if architecture == "plain":
        return f @ parts["v"]
    return X @ parts["w"] + f @ parts["u"]


@pytest.mark.parametrize("architecture", ["residual", "plain", "decoupled"])
def test_residual_losses_and_gradients(architecture):
    p = ResidualUnitRegression(architecture, dim=4, width=5, samples=30, data_seed=1)
    theta = np.asarray(p.init(jax.random.PRNGKey(2)))
    parts = {k: np.asarray(v) for k, v in p.unpack(theta).items()}
    X, y = np.asarray(p.inputs), np.asarray(p.targets)
    expected = 0.5 * np.mean((numpy_predict(parts, X, architecture) - y) ** 2)
    assert float(p.loss(theta)) == pytest.approx(expected, rel=1e-12)
    assert p.nonsmooth_reason(theta) is None
    fd = finite_difference_grad(lambda t: 0.5 * np.mean(
        (numpy_predict({k: np.asarray(v) for k, v in p.unpack(t).items()}, X, architecture) - y) ** 2), theta)
    np.testing.assert_allclose(np.asarray(p.grad(jnp.asarray(theta))), fd, rtol=1e-6, atol=1e-8)


def test_linear_optimum_and_dead_branch():
    p = ResidualUnitRegression("residual", dim=4, width=6, samples=200, init="dead", data_seed=0)
    X, y = np.asarray(p.inputs), np.asarray(p.targets)
    w = np.linalg.solve(X.T @ X, X.T @ y)  # normal equations
    np.testing.assert_allclose(p.linear_weights, w, rtol=1e-10)
    assert p.linear_loss == pytest.approx(0.5 * np.mean((X @ w - y) ** 2), rel=1e-12)
    theta = p.init(jax.random.PRNGKey(0))
    parts = p.unpack(theta)
    assert float(jnp.max(res.branch(parts, p.inputs))) == 0.0  # the branch is dead on every sample
    # with a dead branch the residual unit is the linear predictor x -> w.x
    parts = dict(parts, w=jnp.asarray(w))
    assert float(p.loss(res.pack(parts, p.blocks))) == pytest.approx(p.linear_loss, rel=1e-12)


# -- rate fits ------------------------------------------------------------------------------------------
def test_fit_rate_tells_linear_from_sublinear():
    t = np.arange(0, 5001, 50.0)
    linear = fit_rate(t, 3.0 * np.exp(-0.01 * t))
    assert linear["class"] == "linear" and linear["rate"] == pytest.approx(0.01, rel=1e-6)
    power = fit_rate(t, 3.0 / (1 + t) ** 2)
    assert power["class"] == "sublinear" and power["exponent"] == pytest.approx(2.0, rel=0.05)


# -- experiments at quick size ---------------------------------------------------------------------------
OURS = ("du-lee-2018", "soltanolkotabi-2019", "bartlett-2018", "shamir-2018")


# the two longest run with the reproductions (-m slow), to keep the default suite under 10 minutes on 2 cores
@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in ("du-lee-2018", "shamir-2018")
                                  else n for n in OURS])
def test_experiment_quick_report_is_well_formed(name):
    load_all()
    exp = EXPERIMENTS[name]
    assert exp.name == name and exp.title and exp.claim
    config = exp.default_config("quick")
    json.dumps(config, allow_nan=False)
    cells = exp.cells(config)
    results = []
    for cell in cells:
        json.dumps(cell, allow_nan=False)
        result = exp.run_cell(cell)
        json.dumps(result, allow_nan=False)  # plain JSON, no NaN/inf
        results.append((cell, result))
    report = exp.evaluate(config, results)
    assert isinstance(report, ExperimentReport)
    assert isinstance(report.verdict, Verdict) and report.summary
    assert report.table and all(set(row) == set(report.table[0]) for row in report.table)
    json.dumps(report.table, allow_nan=False, default=str)
    assert report.figures
    for figure in report.figures:  # plain data; drawn in spurious.report
        assert isinstance(figure, Figure) and any(panel.has_data() for panel in figure.panels)
    from spurious.report.figures import render
    for figure in report.figures:
        drawn = render(figure)
        assert len(drawn.axes) >= len(figure.panels) and any(ax.has_data() for ax in drawn.axes)
    # every cell's endpoints went through the analysis: its classes count the cell's runs
    analysed = [(c, r) for c, r in results if "analysis" in r]
    assert analysed
    for cell, result in analysed:
        parts = result["analysis"]
        assert all(sum(p["classes"].values()) >= 1 for p in parts)
        for p in parts:
            assert sum(f["count"] for f in p["families"]) <= sum(p["classes"].values())
    # quick sizes are small, but they already reproduce each claim
    assert report.verdict is Verdict.REPRODUCED, report.summary


def test_problems_satisfy_the_problem_contract():
    """describe() is plain JSON; the autodiff Hessian is symmetric and matches finite differences
    of the (hand-written or autodiff) gradient, so the engine and analysis can use these problems."""
    problems = [QuadraticNetwork(dim=3, hidden=2, samples=5, weight_decay=0.1, data_seed=0),
                DeepLinearResidual(dim=2, depth=2, data_seed=0, init_std=0.2),
                ResidualUnitRegression("decoupled", dim=2, width=2, samples=12, data_seed=0)]
    for p in problems:
        json.dumps(p.describe(), allow_nan=False)
        x = np.asarray(p.init(jax.random.PRNGKey(3)))
        H = np.asarray(jax.jit(p.hessian)(jnp.asarray(x)))
        assert H.shape == (p.size, p.size)
        np.testing.assert_allclose(H, H.T, atol=1e-10)
        h = 1e-6
        shifts = (h * np.eye(p.size)).reshape((p.size,) + p.shape)
        grads = jax.jit(jax.vmap(p.grad))
        fd = (np.asarray(grads(jnp.asarray(x + shifts))) - np.asarray(grads(jnp.asarray(x - shifts)))) / (2 * h)
        np.testing.assert_allclose(H, fd.reshape(p.size, p.size).T, rtol=1e-5, atol=1e-6)


# -- params() round trips, zero modes, random images -----------------------------------------------------
def test_every_registered_problem_rebuilds_from_its_params():
    for entry in registry.entries():
        problem = entry.build(entry.example)
        params = problem.params()
        assert json.loads(json.dumps(params, allow_nan=False)) == params  # plain JSON
        assert build(entry.name, params) == problem, entry.name
        assert all(p.doc for p in entry.parameters), entry.name  # every parameter is documented


@pytest.mark.parametrize("problem", [
    QuadraticNetwork(dim=3, hidden=4, samples=7, signs=[1, -1, -1, 1], targets="planted", planted=2, data_seed=4),
    QuadraticNetwork(dim=3, hidden=2, samples=7, signs="positive", targets="planted",
                     planted=[[1.0, 0.0, 0.5], [0.0, -1.0, 0.2]], weight_decay=0.2, init_std=0.3),
    DeepLinearResidual(dim=3, depth=2, eigenvalues=[0.5, -1.0, 2.0], data_seed=3, init_std=0.2),
    DeepLinearResidual(dim=2, depth=3, target=[[1.0, 2.0], [0.0, 1.0]]),
    DeepLinearResidual(dim=3, depth=2, negative=True),
    ResidualUnitRegression("plain", dim=2, width=3, samples=9, init="dead", noise_std=0.0, dead_bias=3.0, data_seed=2),
], ids=lambda p: p.name)
def test_params_round_trip_with_explicit_arguments(problem):
    rebuilt = build(problem.name, problem.params())
    assert rebuilt == problem and hash(rebuilt) == hash(problem)
    x = problem.init(jax.random.PRNGKey(0))
    assert float(rebuilt.loss(x)) == float(problem.loss(x))  # the same data, not only the same description


def _hessian_on_modes(problem, x):
    H = np.asarray(jax.jit(problem.hessian)(jnp.asarray(x)))
    modes = problem.zero_modes(np.asarray(x))
    return H, modes, np.asarray(problem.grad(jnp.asarray(x))).reshape(-1)


def test_quadratic_zero_modes():
    for weight_decay, expected in ((0.0, 6), (0.1, 2)):  # k = 4, 2 of each sign: all pairs / same-sign pairs
        p = QuadraticNetwork(dim=3, hidden=4, samples=10, weight_decay=weight_decay, data_seed=1)
        rng = np.random.default_rng(0)
        W = rng.standard_normal(p.shape)
        H, modes, g = _hessian_on_modes(p, W)
        assert modes.shape == (expected, p.size) and np.linalg.matrix_rank(modes) == expected
        np.testing.assert_allclose(modes @ g, 0.0, atol=1e-12)  # the loss is flat along each
        # each mode is X W for X = D S (S antisymmetric on a pair of units), and the loss is constant
        # along the finite orbit curve exp(t X) W (a check independent of derivatives)
        D = np.diag(p.signs)
        generators = []
        for i in range(4):
            for j in range(i + 1, 4):
                if weight_decay > 0 and p.signs[i] != p.signs[j]:
                    continue
                S = np.zeros((4, 4))
                S[i, j], S[j, i] = 1.0, -1.0
                generators.append(D @ S)
        assert len(generators) == expected
        for X in generators:
            assert np.linalg.matrix_rank(np.vstack([modes, (X @ W).reshape(1, -1)])) == expected  # in their span
            assert float(p.loss(jnp.asarray(expm(0.3 * X) @ W))) == pytest.approx(float(p.loss(jnp.asarray(W))),
                                                                                  rel=1e-10)
    # at a critical point (the convex twin's optimum, factored) every zero mode is a null vector of H
    p = QuadraticNetwork(dim=3, hidden=6, samples=10, weight_decay=0.05, data_seed=2)
    twin = p.convex_twin()
    W = q.factor_from_matrix(twin.M, 6)
    H, modes, g = _hessian_on_modes(p, W)
    assert np.linalg.norm(g) < 1e-6
    assert np.max(np.abs(H @ modes.T)) < 1e-6 * max(1.0, np.max(np.abs(H)))


def test_deep_linear_zero_modes():
    p = DeepLinearResidual(dim=3, depth=3, data_seed=1)
    rng = np.random.default_rng(1)
    th = rng.standard_normal(p.shape)
    H, modes, g = _hessian_on_modes(p, th)
    assert modes.shape == (2 * 9, p.size)
    np.testing.assert_allclose(modes @ g, 0.0, atol=1e-10)
    # a finite element of the group: Theta_2 -> Theta_2 A, Theta_1 -> A^-1 Theta_1 leaves the loss unchanged
    A = np.eye(3) + 0.3 * rng.standard_normal((3, 3))
    moved = th.copy()
    moved[1], moved[0] = th[1] @ A, np.linalg.solve(A, th[0])
    assert float(p.loss(jnp.asarray(moved))) == pytest.approx(float(p.loss(jnp.asarray(th))), rel=1e-11)
    # at a global minimum (Theta_1 = Phi, the others random invertible with product I) H v = 0
    B = np.eye(3) + 0.2 * rng.standard_normal((3, 3))
    star = np.stack([np.asarray(p.target), np.linalg.inv(B), B])
    H, modes, g = _hessian_on_modes(p, star)
    assert float(p.loss(jnp.asarray(star))) < 1e-25
    assert np.max(np.abs(H @ modes.T)) < 1e-10


def test_residual_zero_modes():
    for architecture in ("residual", "plain", "decoupled"):
        p = ResidualUnitRegression(architecture, dim=3, width=4, samples=25, data_seed=0)
        theta = np.asarray(p.init(jax.random.PRNGKey(4)))
        modes = p.zero_modes(theta)
        g = np.asarray(p.grad(jnp.asarray(theta)))
        assert modes.shape == (4, p.size)
        np.testing.assert_allclose(modes @ g, 0.0, atol=1e-12)
        parts = {k: np.array(v) for k, v in p.unpack(theta).items()}
        readout = {"residual": "V", "plain": "v", "decoupled": "u"}[architecture]
        parts["U"][1] *= 2.5  # unit 1 scaled by 2.5, its readout by 1/2.5: the same predictor
        parts["c"][1] *= 2.5
        if readout == "V":
            parts["V"][:, 1] /= 2.5
        else:
            parts[readout][1] /= 2.5
        assert float(p.loss(res.pack(parts, p.blocks))) == pytest.approx(float(p.loss(jnp.asarray(theta))), rel=1e-12)


def test_sign_group_random_image_is_a_symmetry():
    p = QuadraticNetwork(dim=4, hidden=6, samples=9, weight_decay=0.1, data_seed=3)
    W = np.asarray(p.init(jax.random.PRNGKey(2)))
    rng = np.random.default_rng(5)
    V = p.symmetry.random_image(W, rng)
    assert np.max(np.abs(V - W)) > 1e-2  # it moved
    assert float(p.loss(jnp.asarray(V))) == pytest.approx(float(p.loss(jnp.asarray(W))), rel=1e-12)
    assert p.symmetry.distance(W, V) < 1e-12


# -- experiments neither plot nor run gradient loops of their own --------------------------------------------
def test_experiments_import_no_matplotlib_and_no_lax():
    """Plotting lives in spurious.report and gradient loops in the engine: no experiment module imports
    matplotlib or jax.lax, or calls a lax loop (while_loop, scan, fori_loop) under any name."""
    folder = pathlib.Path(__file__).resolve().parent.parent / "spurious" / "experiments"
    files = sorted(folder.glob("*.py"))
    assert len(files) >= 9
    for path in files:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
            else:
                names = []
            for name in names:
                assert not name.startswith("matplotlib"), f"{path.name} imports {name}"
                assert not name.startswith("jax.lax") and name != "jax.lax", f"{path.name} imports {name}"
            if isinstance(node, ast.Attribute):
                assert node.attr not in ("while_loop", "scan", "fori_loop"), f"{path.name} calls lax.{node.attr}"
                assert not (node.attr == "lax" and isinstance(node.value, ast.Name)), f"{path.name} uses jax.lax"

import json
import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import pytest

import spurious as sp
from spurious import GradientDescent, ReLUTeacherStudent, SpuriousError
from spurious.stats import wilson_interval


@pytest.fixture(scope="module")
def k7_result():
    return sp.run(ReLUTeacherStudent(7, 7), runs=48, seed=3)


def test_same_seed_same_result_and_runs_independent_of_batching():
    p = ReLUTeacherStudent(4, 4)
    a = sp.multistart(p, 24, seed=5)
    b = sp.multistart(p, 24, seed=5, optimizer=GradientDescent(pool=8, sync_steps=37))
    c = sp.multistart(p, 8, seed=5, first_run=16)  # the last 8 runs alone
    np.testing.assert_array_equal(a.status, b.status)
    np.testing.assert_allclose(a.params, b.params, atol=1e-8)
    np.testing.assert_allclose(a.params[16:], c.params, atol=1e-8)
    np.testing.assert_array_equal(sp.starts(p, 5, [3, 4]), sp.starts(p, 5, [3, 4]))
    assert not np.allclose(sp.starts(p, 5, [3]), sp.starts(p, 6, [3]))


def test_every_converged_run_meets_its_stop_rule():
    p = ReLUTeacherStudent(5, 5)
    for norm, tol in (("max_neuron_2pi", 1e-9), ("frobenius", 1e-11)):
        e = sp.multistart(p, 16, seed=1, optimizer=GradientDescent(stop_norm=norm, grad_tol=tol, newton_switch=None,
                                                                   global_stop=None))
        g = np.stack([np.asarray(p.grad(jnp.asarray(w))) for w in e.params])
        measured = (2 * np.pi * np.linalg.norm(g, axis=2).max(1)) if norm != "frobenius" else np.linalg.norm(g.reshape(16, -1), axis=1)
        assert np.all(e.status == "converged")
        assert np.all(measured <= tol * 1.0001)


def test_divergence_restarts_with_halved_step():
    p = ReLUTeacherStudent(3, 3)
    e = sp.multistart(p, 6, seed=0, optimizer=GradientDescent(step=5e4))
    assert np.all(e.halvings > 0)
    assert np.all(np.isin(e.status, ("converged", "global")))
    stuck = sp.multistart(p, 4, seed=0, optimizer=GradientDescent(step=5e4, max_halvings=2))
    assert np.all(stuck.status == "diverged")
    assert np.all(sp.analyze(p, stuck).cls == "diverged")


def test_step_cap_gives_not_converged():
    p = ReLUTeacherStudent(4, 4)
    e = sp.multistart(p, 5, seed=0, optimizer=GradientDescent(max_steps=10, newton_switch=None))
    assert np.all(e.status == "not_converged") and np.all(e.steps == 10)


def test_more_runs_than_pool_are_chunked():
    p = ReLUTeacherStudent(3, 3)
    e = sp.multistart(p, 70, seed=2, optimizer=GradientDescent(pool=16))
    assert len(e) == 70 and np.all(np.isin(e.status, ("converged", "global")))
    np.testing.assert_array_equal(e.run, np.arange(70))


def test_newton_switch_keeps_classification(k7_result):
    pure = sp.run(ReLUTeacherStudent(7, 7), runs=48, seed=3, optimizer=GradientDescent(newton_switch=None))
    np.testing.assert_array_equal(pure.analysis.cls, k7_result.analysis.cls)
    np.testing.assert_allclose(pure.analysis.loss, k7_result.analysis.loss, atol=1e-10)


def test_analysis_polishes_and_classifies(k7_result):
    a, e = k7_result.analysis, k7_result.endpoints
    ok = np.isin(a.cls, ("global_minimum", "spurious_minimum"))
    assert ok.all()
    # critical points are polished to rounding; runs stopped at the global value are decided by their loss
    assert np.all(a.grad_norm[e.status == "converged"] <= 1e-12)
    assert np.all(a.loss[e.status == "global"] <= 1e-8) and np.all(a.cls[e.status == "global"] == "global_minimum")
    fam = {f.cls: f for f in a.families}
    assert fam["global_minimum"].lambda_min == pytest.approx(0.25 - 1 / (2 * np.pi), abs=1e-9)
    assert sum(f.count for f in a.families) == 48
    for f in a.families:
        assert (f.ci_low, f.ci_high) == pytest.approx(wilson_interval(f.count, 48))


def test_permuted_endpoint_lands_in_same_family(k7_result):
    a = k7_result.analysis
    spurious_family = next(f for f in a.families if f.cls == "spurious_minimum")
    rep = spurious_family.representative
    rng = np.random.default_rng(0)
    rows, cols = rng.permutation(7), rng.permutation(7)
    image = rep[rows][:, cols]  # neuron permutation and simultaneous coordinate/teacher permutation
    p = ReLUTeacherStudent(7, 7)
    assert float(p.loss(jnp.asarray(image))) == pytest.approx(spurious_family.loss, abs=1e-14)
    assert p.symmetry.distance(rep, image) < 1e-12
    endpoints = sp.Endpoints(run=np.arange(2), params=np.stack([rep, image]), loss=np.zeros(2),
                             grad_norm=np.zeros(2), steps=np.zeros(2, int), halvings=np.zeros(2, int),
                             newton=np.zeros(2, bool), status=np.array(["converged"] * 2), seed=0,
                             optimizer=GradientDescent(), seconds=0.0)
    again = sp.analyze(p, endpoints)
    assert len(again.families) == 1 and again.families[0].count == 2
    assert again.families[0].cls == "spurious_minimum"


def test_user_problem_from_loss_finds_minima_and_saddles():
    # f(x, y) = (x^2 - 1)^2 + y^2 - 0.3 x: two minima (one global) and one saddle
    problem = sp.Problem.from_loss(lambda p: (p[0] ** 2 - 1) ** 2 + p[1] ** 2 - 0.3 * p[0], shape=(2,),
                                   init_std=1.0, name="tilted-double-well")
    e = sp.multistart(problem, 64, seed=0, optimizer=GradientDescent(step=0.05, stop_norm="frobenius", grad_tol=1e-10))
    a = sp.analyze(problem, e)
    assert set(a.cls) == {"local_minimum"}
    assert len(a.families) == 2
    losses = sorted(f.loss for f in a.families)
    assert losses[0] < losses[1]
    # a point near the saddle (x ~ -0.0748, y = 0) polishes onto it: index 1
    saddle = sp.Endpoints(run=np.arange(1), params=np.array([[-0.0748, 0.0]]), loss=np.zeros(1), grad_norm=np.zeros(1),
                          steps=np.zeros(1, int), halvings=np.zeros(1, int), newton=np.zeros(1, bool),
                          status=np.array(["converged"]), seed=0, optimizer=GradientDescent(), seconds=0.0)
    b = sp.analyze(problem, saddle)
    assert b.cls[0] == "saddle" and b.morse_index[0] == 1 and b.grad_norm[0] < 1e-12


def test_empirical_problem_any_activation():
    p = sp.EmpiricalTeacherStudent(teacher=2, student=2, samples=200, activation="tanh", data_seed=1)
    assert float(p.loss(jnp.asarray(p.teacher_weights))) == 0.0
    with pytest.raises(SpuriousError, match="unknown activation 'swish'"):
        sp.EmpiricalTeacherStudent(teacher=2, student=2, activation="swish")


PUBLISHED_2018 = {6: (0.003, 0.025081), 7: (0.055, 0.023203), 8: (0.126, 0.021508), 10: (0.346, 0.018702)}


def check_against_2018(k, runs):
    published_fraction, published_lowest = PUBLISHED_2018[k]
    result = sp.run(ReLUTeacherStudent(k, k), runs=runs, seed=0)
    hits = int(np.sum(result.analysis.loss >= 1e-3))
    low, high = wilson_interval(hits, runs)
    assert low <= published_fraction <= high
    spurious = [f.loss for f in result.analysis.families if f.cls == "spurious_minimum"]
    if spurious:
        assert min(spurious) == pytest.approx(published_lowest, abs=1e-6)


@pytest.mark.parametrize("k,runs", [(6, 120), (8, 200)])
def test_reproduces_2018_small(k, runs):
    check_against_2018(k, runs)


@pytest.mark.slow
@pytest.mark.parametrize("k", [6, 7, 8, 10])
def test_reproduces_2018_full_1000_runs(k):
    check_against_2018(k, 1000)


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "spurious", *args], capture_output=True, text=True)


def test_cli_json_summary():
    # n > k converges sublinearly; the cap keeps the test short and the summary must still be whole
    out = run_cli("run", "--teacher", "4", "--student", "5", "--runs", "12", "--seed", "1", "--max-steps", "5000",
                  "--json", "-", "-q")
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["runs"] == 12 and summary["problem"]["student"] == 5
    assert sum(summary["counts"].values()) == 12
    for family in summary["families"]:
        for key in ("loss", "class", "morse_index", "lambda_min", "lambda_max", "count", "fraction", "ci_low", "ci_high"):
            assert key in family


@pytest.mark.parametrize("args,message", [
    (("--teacher", "0", "--student", "3"), "teacher must be at least 1"),
    (("--teacher", "3", "--student", "-2"), "student must be at least 1"),
    (("--teacher", "4", "--student", "4", "--dim", "2"), "dim (2) must be at least teacher (4)"),
    (("--teacher", "3", "--student", "3", "--runs", "0"), "--runs must be a positive integer"),
    (("--teacher", "3", "--student", "3", "--device", "tpu"), "unknown device 'tpu'"),
    (("--teacher", "3", "--student", "3", "--step", "-1"), "step must be a positive finite number"),
])
def test_cli_bad_input_one_line_exit_2(args, message):
    out = run_cli("run", *args)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and message in out.stderr


def test_pool_shrinks_to_fit_the_live_runs():
    from spurious.optimize import _shrink_factor, _shrunk

    assert _shrunk(1024, 1000) == 1024
    assert _shrunk(1024, 256) == 256 and _shrunk(1024, 255) == 256 and _shrunk(1024, 64) == 64
    assert _shrunk(1024, 1) == 4 and _shrunk(512, 3) == 8
    assert _shrunk(1024, 500, factor=2) == 512 and _shrunk(1024, 200, factor=2) == 256
    assert _shrunk(1024, 1, factor=2) == 4 and _shrunk(4, 1, factor=2) == 4
    assert _shrink_factor(ReLUTeacherStudent(20, 20)) == 2 and _shrink_factor(ReLUTeacherStudent(6, 6)) == 4


def test_pool_size_by_device_and_problem():
    from spurious.optimize import pool_size

    auto, fixed = GradientDescent(), GradientDescent(pool=64)
    big, small = ReLUTeacherStudent(20, 20), ReLUTeacherStudent(6, 6)
    assert pool_size(auto, big, "cpu") == 256 and pool_size(auto, small, "cpu") == 1024
    assert pool_size(auto, big, "gpu") == 1024
    assert pool_size(fixed, big, "cpu") == 64 and pool_size(fixed, small, "gpu") == 64
    with pytest.raises(sp.SpuriousError, match="pool"):
        GradientDescent(pool=0)


def test_newton_finishes_runs_to_rounding_so_polish_has_nothing_left(k7_result):
    """An accepted Newton try iterates past grad_tol while each step still halves the norm: the
    endpoint is already a critical point to the polish tolerance, which the analysis then keeps."""
    e, a = k7_result.endpoints, k7_result.analysis
    converged = e.status == "converged"
    assert converged.any() and e.newton[converged].all()
    p = ReLUTeacherStudent(7, 7)
    frobenius = np.array([np.linalg.norm(np.asarray(p.grad(w))) for w in e.params[converged]])
    assert np.all(frobenius <= 1e-12)
    np.testing.assert_allclose(a.params[converged], e.params[converged], atol=1e-14)


def test_polish_steps_only_the_points_above_its_target(k7_result):
    """Endpoints already at the polish target are kept bit for bit (and, with no other point, the
    polish kernel is never built); a point moved off a minimum in the same batch is polished back."""
    from spurious.analyze import polish
    from spurious.core.kernels import cached_kernels

    e = k7_result.endpoints
    finished = e.params[e.status == "converged"][:1]
    p = ReLUTeacherStudent(7, 7)
    points, norms, polished = polish(p, finished)
    np.testing.assert_array_equal(points, finished)
    assert polished.all() and np.all(norms <= 1e-12)
    assert cached_kernels(p) == 1  # the gradient norms' kernel alone
    moved = finished[0] + 1e-7 * np.random.default_rng(0).standard_normal(finished[0].shape)
    points, norms, polished = polish(p, np.stack([finished[0], moved]))
    np.testing.assert_array_equal(points[0], finished[0])
    assert polished.all() and np.all(norms <= 1e-12)
    assert np.max(np.abs(points[1] - finished[0])) < 1e-12
    assert cached_kernels(p) == 2


def test_newton_tries_wait_for_full_chunks_but_not_for_long():
    from spurious.optimize import HESSIAN_CHUNK, NEWTON_WAIT, _newton_now

    waited = np.full(64, -1)
    waited[:5] = 0
    assert len(_newton_now(waited, live=64)) == 0  # 5 ready of 64 live: wait for a full chunk
    waited[:HESSIAN_CHUNK + 3] = 1
    assert list(_newton_now(waited, live=64)) == list(range(HESSIAN_CHUNK))  # one full chunk, 3 wait on
    waited[:3] = NEWTON_WAIT
    assert len(_newton_now(waited, live=64)) == HESSIAN_CHUNK + 3  # waited long enough: all of them
    waited[:] = -1
    waited[:4] = 0
    assert len(_newton_now(waited, live=8)) == 4  # half the live runs wait: nothing to wait for
    assert len(_newton_now(np.full(8, -1), live=8)) == 0


def test_gathered_newton_tries_keep_every_class_of_pure_descent():
    """A small pool refilled many times: Newton tries are gathered across syncs, and every run ends
    in the class (and at the loss) that gradient descent alone reaches."""
    problem, settings = ReLUTeacherStudent(7, 7), dict(pool=16, sync_steps=50, global_stop=None)
    pure = sp.run(problem, runs=48, seed=3, optimizer=GradientDescent(newton_switch=None, **settings))
    gathered = sp.run(problem, runs=48, seed=3, optimizer=GradientDescent(**settings))
    assert gathered.endpoints.newton.sum() >= 16
    np.testing.assert_array_equal(pure.analysis.cls, gathered.analysis.cls)
    np.testing.assert_allclose(pure.analysis.loss, gathered.analysis.loss, atol=1e-10)


def test_batched_hessian_kernel_matches_autodiff():
    """The engine's Hessian kernel (shape + shape, for Newton tries and spectra) against jax.hessian of
    the loss, and its reshape against the problem's own (P, P) Hessian compiled alike, bit for bit."""
    import jax

    from spurious.optimize import hessian_kernel

    p = ReLUTeacherStudent(5, 4, dim=6)
    points = sp.starts(p, 0, np.arange(3))
    blocks = np.asarray(hessian_kernel(p)(points))
    assert blocks.shape == (3, 4, 6, 4, 6)
    flat = blocks.reshape(3, p.size, p.size)
    np.testing.assert_array_equal(flat, np.asarray(jax.jit(jax.vmap(p.hessian))(points)))
    autodiff = np.stack([np.asarray(jax.hessian(p.loss)(jnp.asarray(x))) for x in points])
    np.testing.assert_allclose(blocks, autodiff, atol=1e-12)

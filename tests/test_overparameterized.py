"""Students wider than the teacher: runs stopped at the global value, the record of monotone descent,
honest classes near non-isolated and non-smooth minima, and the rule for runs stopped at max_steps."""
import jax.numpy as jnp
import numpy as np
import pytest

import spurious as sp
from spurious import GradientDescent, ReLUTeacherStudent, Tolerances
from spurious.analyze import polish
from spurious.optimize import protocol

from symmetric_points import symmetric_critical_point

#: a Delta(S_5 x S_1) spurious minimum of k = n = 6 (Newton's method in its fixed subspace converges to it)
MINIMUM_START_K6 = (1.0, -0.03, 0.25, 0.17, -0.65)


def double_well():
    """f(x) = x^4/4 - x^2/2, minima at +-1 with f = -1/4. With step 0.9 gradient descent from x = 1.3
    jumps to x = 0.493, where f is higher (-0.131 -> -0.107), then settles at 1; from x = 0.3 every
    step lowers f."""
    return sp.Problem.from_loss(lambda p: p[0] ** 4 / 4 - p[0] ** 2 / 2, shape=(1,), global_min_value=-0.25)


def test_a_rise_of_the_loss_is_recorded_and_stops_no_run_at_the_global_value():
    problem = double_well()
    settings = GradientDescent(step=0.9, stop_norm="frobenius", grad_tol=1e-12, newton_switch=None)
    e = sp.descend(problem, np.array([[1.3], [0.3]]), settings)
    f = lambda x: x ** 4 / 4 - x ** 2 / 2
    assert e.loss_rise[0] == pytest.approx(f(0.493) - f(1.3), abs=5e-3)  # relative to max(1, |f(1.3)|) = 1
    assert e.loss_rise[1] < 0 and list(e.monotone) == [False, True]
    # the run that rose is followed to the gradient criterion; the monotone one stops at the global value
    assert list(e.status) == ["converged", "global"]
    assert e.loss[1] <= -0.25 + settings.global_stop and abs(e.params[0, 0] - 1) < 1e-12
    followed = sp.descend(problem, np.array([[0.3]]), GradientDescent(step=0.9, stop_norm="frobenius",
                                                                       grad_tol=1e-12, newton_switch=None,
                                                                       global_stop=None))
    assert followed.status[0] == "converged" and followed.steps[0] > e.steps[1]


def test_wider_student_runs_end_at_the_global_value_with_consistent_classes():
    problem = ReLUTeacherStudent(5, 6)
    result = sp.run(problem, runs=40, seed=0)
    e, a = result.endpoints, result.analysis
    assert "not_converged" not in set(a.cls)
    assert np.all(e.monotone)
    glob = a.cls == "global_minimum"
    assert glob.sum() >= 30 and np.all(a.loss[glob] <= a.tolerances.global_loss)
    assert np.all(e.status[glob] == "global")
    minima = np.isin(a.cls, ("global_minimum", "spurious_minimum"))
    assert np.all(a.lambda_min[minima] >= -a.tolerances.eigenvalue), "a minimum with a negative eigenvalue"
    family = a.families[0]
    assert family.cls == "global_minimum" and family.morse_index == 0
    # the representative is the member farthest from a zero neuron
    norms = [problem.nonsmooth_distance(e.params[i]) for i in np.flatnonzero(glob)]
    assert problem.nonsmooth_distance(family.representative) >= np.sort(norms)[-9] - 1e-9


@pytest.mark.slow  # the followed runs take about 10^6 steps each (sublinear convergence at n > k): 45-75 s
def test_early_decisions_change_no_outcome_of_the_2018_statistic():
    """k = 6, n = 7: the same runs with the stop at the global value and followed to the 2018 stop
    criterion (max_i |2 pi grad_i F| <= 1e-9) end on the same side of 1e-3, in the same class."""
    problem = ReLUTeacherStudent(6, 7)
    early = sp.run(problem, runs=10, seed=4)
    followed = sp.run(problem, runs=10, seed=4, optimizer=protocol(problem, global_stop=False))
    assert (early.endpoints.status == "global").sum() >= 8
    assert np.all(followed.endpoints.status == "converged")
    np.testing.assert_array_equal(early.analysis.loss >= 1e-3, followed.analysis.loss >= 1e-3)
    np.testing.assert_array_equal(early.analysis.cls, followed.analysis.cls)
    assert np.all(early.endpoints.monotone) and np.all(followed.endpoints.monotone)
    # what the early decision saves
    assert early.endpoints.steps.sum() < 0.2 * followed.endpoints.steps.sum()


def split(point, neuron, alpha):
    return np.vstack([np.where(np.arange(len(point))[:, None] == neuron, alpha * point, point),
                      (1 - alpha) * point[neuron][None]])


def test_a_capped_run_near_a_split_saddle_is_classified_by_the_rule():
    """A spurious minimum of k = n = 6 with one neuron split in two is a critical point of n = 7 on a
    line of critical points (the split ratio): a run stopped at max_steps close to it polishes onto
    that line, its flat direction is a zero mode, and the class comes from the rest of the spectrum."""
    W, grad_norm = symmetric_critical_point(6, MINIMUM_START_K6)
    assert grad_norm < 1e-13
    wide = ReLUTeacherStudent(6, 7)
    embedded = split(W, 5, 0.3)
    assert np.linalg.norm(np.asarray(wide.grad(jnp.asarray(embedded)))) < 1e-12
    assert len(wide.zero_modes(embedded)) == 1
    rng = np.random.default_rng(0)
    near = embedded + 1e-6 * rng.normal(size=embedded.shape)
    endpoints = sp.Endpoints(run=np.arange(2), params=np.stack([near, split(W, 5, 0.6)]), loss=np.zeros(2),
                             grad_norm=np.zeros(2), steps=np.full(2, 10), halvings=np.zeros(2, int),
                             newton=np.zeros(2, bool), status=np.array(["not_converged", "converged"]), seed=0,
                             optimizer=GradientDescent(), seconds=0.0)
    a = sp.analyze(wide, endpoints)
    assert list(a.by_rule) == [True, False] and a.polished[0]
    assert a.grad_norm[0] <= Tolerances().polish_grad
    # one critical set: the two split ratios are one family, whose flat direction is left out
    assert len(a.families) == 1 and a.families[0].count == 2 and a.families[0].zero_modes == 1
    assert a.cls[0] == a.cls[1] == "saddle" and a.morse_index[0] >= 1
    assert a.loss[0] == pytest.approx(float(ReLUTeacherStudent(6, 6).loss(jnp.asarray(W))), abs=1e-13)


class KinkAtOne(sp.Problem):
    """f(x) = (x - 1)^2, declared not twice differentiable at x = 1 (as a ReLU loss is at a zero neuron)."""
    name = "kink-at-one"
    shape = (1,)

    def loss(self, params):
        return (params[0] - 1.0) ** 2

    def nonsmooth_reason(self, params):
        return "the kink at 1" if abs(float(params[0]) - 1.0) < 1e-9 else None


def test_a_polish_that_lands_on_the_non_smooth_set_is_undone():
    """Newton's method from 1.2 lands on x = 1 in one step; there the Hessian means nothing, so the
    polish is rejected and the point analyzed is the one the optimizer left (at which the non-smooth
    check is then made)."""
    problem = KinkAtOne()
    polished, _, ok = polish(problem, np.array([[1.2], [1.0 + 1e-3]]), Tolerances(polish_radius=1.0))
    assert not ok.any()
    np.testing.assert_array_equal(polished, [[1.2], [1.0 + 1e-3]])
    endpoints = sp.Endpoints(run=np.arange(1), params=np.array([[1.2]]), loss=np.zeros(1), grad_norm=np.zeros(1),
                             steps=np.ones(1, int), halvings=np.zeros(1, int), newton=np.zeros(1, bool),
                             status=np.array(["converged"]), seed=0, optimizer=GradientDescent(), seconds=0.0)
    a = sp.analyze(problem, endpoints, Tolerances(polish_radius=1.0))
    assert not a.polished[0] and a.params[0, 0] == 1.2


def test_loss_and_grad_of_the_relu_problem_agree_with_loss_and_grad():
    rng = np.random.default_rng(1)
    for problem in (ReLUTeacherStudent(4, 6), ReLUTeacherStudent(3, 3, dim=5),
                    ReLUTeacherStudent(3, 4, teacher_weights=rng.normal(size=(3, 3)))):
        for _ in range(3):
            W = jnp.asarray(rng.normal(size=problem.shape))
            value, grad = problem.loss_and_grad(W)
            assert float(value) == pytest.approx(float(problem.loss(W)), abs=1e-14)
            np.testing.assert_allclose(np.asarray(grad), np.asarray(problem.grad(W)), atol=1e-15)

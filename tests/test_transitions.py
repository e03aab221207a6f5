"""Nudged elastic bands between minima (spurious.transitions) on the ReLU problem at k = 7: the path
against the straight segment, the saddle against its own dense spectrum and against descent, the
barrier against symmetric images of the ends, and refusals of bad input."""
import numpy as np
import pytest

import spurious as sp
from spurious import fixed_points as fp
from spurious import transitions as tr

K = 7


@pytest.fixture(scope="module")
def problem():
    return sp.ReLUTeacherStudent(teacher=K, student=K)


@pytest.fixture(scope="module")
def spurious_minimum():
    """The 2018 table's k = 7 family, Delta(S_6 x S_1), by Newton in its fixed-point space."""
    return fp.continue_in_k(fp.newton((5, 1), (1.0, -0.03, -0.65, 0.25, 0.17)), [K])[-1].matrix()


@pytest.fixture(scope="module")
def to_the_global(problem, spurious_minimum):
    return tr.transitions(problem, [(spurious_minimum, np.eye(K))])[0]


def test_the_spurious_end_is_the_published_minimum(problem, spurious_minimum):
    assert float(problem.loss(spurious_minimum)) == pytest.approx(0.023203, abs=1e-6)  # Safran & Shamir 2018


def test_the_band_lies_below_the_straight_segment_and_peaks_at_an_index_one_saddle(problem, to_the_global):
    found = to_the_global
    assert found.path.converged
    segment = tr.segment_losses(problem, found.start, found.end)
    assert found.path.losses.max() <= segment.max()
    assert found.morse_index == 1 and found.grad_norm < 1e-10
    dense = np.linalg.eigvalsh(np.asarray(problem.hessian(found.saddle)))  # the closed form, not the band's
    assert int(np.sum(dense < -1e-8)) == 1 and np.all(np.abs(dense) > 1e-8)
    ends = found.path.losses[[0, -1]]
    assert ends.max() < found.saddle_loss <= found.path.losses.max() + 1e-10
    # the band's losses and problem.loss are two evaluations of F, each exact to the rounding of its O(k)
    # terms (the teacher's constant is 5.1 at k = 7, an ulp of 8.9e-16)
    assert found.barriers[0] == pytest.approx(found.saddle_loss - float(problem.loss(found.start)), abs=1e-14)


def test_descent_from_the_saddle_reaches_the_two_minima(problem, to_the_global, spurious_minimum):
    found = to_the_global
    assert found.connects
    losses = sorted(float(problem.loss(x)) for x in found.descends_to)
    assert losses[0] < 1e-8 and losses[1] == pytest.approx(float(problem.loss(spurious_minimum)), abs=1e-10)


def test_the_barrier_is_the_same_from_symmetric_images_of_either_end(problem, spurious_minimum, to_the_global):
    rng = np.random.default_rng(3)
    image = problem.symmetry.random_image
    pairs = [(image(spurious_minimum, rng), np.eye(K)), (spurious_minimum, image(np.eye(K), rng)),
             (image(spurious_minimum, rng), image(np.eye(K), rng))]
    for found in tr.transitions(problem, pairs):
        assert found.morse_index == 1 and found.connects
        assert found.saddle_loss == pytest.approx(to_the_global.saddle_loss, abs=1e-12)
        assert problem.symmetry.distance(found.saddle, to_the_global.saddle) < 1e-8


@pytest.mark.parametrize("case, message", [
    ("two images", "at least 3 images"),
    ("not a minimum", "is not a critical point"),
    ("a saddle", "is not a minimum"),
    ("other problem", "has shape (8, 8)"),
    ("no pairs", "no pairs of minima"),
])
def test_bad_input_is_refused_in_one_line(problem, spurious_minimum, to_the_global, case, message):
    with pytest.raises(sp.SpuriousError, match=message.replace("(", r"\(").replace(")", r"\)")):
        if case == "two images":
            tr.Band(images=2)
        elif case == "not a minimum":
            tr.transitions(problem, [(spurious_minimum + 0.01, np.eye(K))])
        elif case == "a saddle":
            tr.transitions(problem, [(to_the_global.saddle, np.eye(K))])
        elif case == "other problem":
            tr.transitions(problem, [(np.eye(K + 1), np.eye(K))])
        else:
            tr.transitions(problem, [])


def test_the_batched_band_moves_like_a_per_image_numpy_band(problem, spurious_minimum):
    """Fifty iterations (climbing from the twentieth) of the compiled band against the independent
    NumPy band of benchmarks/numpy_baseline.py, image by image, on the same aligned pair."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from numpy_baseline import nudged_elastic_band

    end = tr.align(problem, spurious_minimum, np.eye(K))
    band = tr.Band(images=8, climb_after=20, max_iterations=50)
    path, = tr.elastic_bands(problem, spurious_minimum[None], end[None], band)
    expected = nudged_elastic_band(spurious_minimum, end, problem.teacher_weights, images=8, step=band.step,
                                   spring=band.spring, climb_after=20, iterations=50)
    assert path.iterations == 50 and not path.converged
    np.testing.assert_allclose(path.images, expected, atol=1e-12)


def test_the_single_ended_search_finds_the_band_s_saddle_from_the_spurious_minimum(problem, spurious_minimum,
                                                                                   to_the_global):
    """Gentlest ascent from the spurious minimum's softest modes, knowing nothing of the global
    minimum, reaches the saddle the band found between the two (up to symmetry)."""
    found, = tr.gentlest_ascent(problem, [spurious_minimum], tr.Ascent(modes=1))
    assert len(found) == 2 and all(t.morse_index == 1 and t.connects for t in found)
    for transition in found:
        assert transition.saddle_loss == pytest.approx(to_the_global.saddle_loss, abs=1e-12)
        assert problem.symmetry.distance(transition.saddle, to_the_global.saddle) < 1e-8
    with pytest.raises(sp.SpuriousError, match="ascent modes must be a positive integer"):
        tr.Ascent(modes=0)


def test_index_reduction_goes_from_a_maximum_to_every_saddle_below_it():
    # f = cos x + 2 cos y: a maximum (index 2) at 0 with Hessian diag(-1, -2). Below it: the index-1
    # saddles (+-pi, 0) at f = 1 (unstable along y; descent reaches the minima (pi, +-pi) at f = -3)
    # and (0, +-pi) at f = -1 (unstable along x; descent reaches the same minima)
    import jax.numpy as jnp
    problem = sp.Problem.from_loss(lambda p: jnp.cos(p[0]) + 2 * jnp.cos(p[1]), shape=(2,), name="cosines")
    found, = tr.lower_saddles(problem, [np.zeros(2)])
    assert len(found) == 4 and {t.kind for t in found} == {"reduction"}
    saddles = sorted((round(float(t.saddle[0]), 8), round(float(t.saddle[1]), 8)) for t in found)
    pi = round(np.pi, 8)
    assert saddles == [(-pi, 0.0), (0.0, -pi), (0.0, pi), (pi, 0.0)]
    for transition in found:
        assert transition.morse_index == 1 and transition.grad_norm <= 1e-12
        expected = 1.0 if abs(transition.saddle[1]) < 1e-8 else -1.0
        assert transition.saddle_loss == pytest.approx(expected, abs=1e-14)
        for end in transition.descends_to:  # a minimum (odd multiples of pi in both coordinates)
            assert np.all(np.abs(np.abs(np.asarray(end)) - np.pi) < 1e-5)
    assert tr.lower_saddles(problem, [np.array([np.pi, 0.0])]) == [[]]  # already index 1: nothing below


def test_a_candidate_that_reaches_no_critical_point_is_no_saddle():
    # f = x - y^2 has no critical point: whatever the refinement does, the candidate joins nothing
    problem = sp.Problem.from_loss(lambda p: p[0] - p[1] ** 2, shape=(2,), name="slope")
    found, = tr._finish(problem, np.array([[0.3, 0.2]]), sp.Tolerances(), None)
    assert found["morse_index"] == -1 and found["descends_to"] is None and found["grad_norm"] >= 1.0


def test_eigenvector_following_ignores_the_flat_directions_of_a_continuous_symmetry():
    # f = (x^2 + y^2 - 1)^2 - 0.01 z^2 + z^4: rotations about z are a symmetry; its index-1 saddles form
    # the ring x^2 + y^2 = 1, z = 0. Off the ring the rotation direction has negative curvature; it must
    # not take the uphill slot from the true unstable mode z
    from spurious.problems.base import LossProblem

    class Ring(LossProblem):
        def zero_modes(self, params):
            x, y, _ = np.asarray(params, dtype=float)
            return np.array([[-y, x, 0.0]])

    problem = Ring(lambda p: (p[0] ** 2 + p[1] ** 2 - 1) ** 2 - 0.01 * p[2] ** 2 + p[2] ** 4, shape=(3,), name="ring")
    reached, norms = tr.follow_eigenvectors(problem, np.array([[0.7, 0.0, 0.01]]))
    assert norms[0] <= 1e-12
    np.testing.assert_allclose(reached[0], [1.0, 0.0, 0.0], atol=1e-10)

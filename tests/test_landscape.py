"""The network of minima and transition states (spurious.landscape): the disconnectivity tree against
an independent minimax-path computation on random graphs, and an exploration at k = 7 whose saddles
are certified with index 1."""
import json

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import spurious as sp
from spurious import fixed_points as fp
from spurious import landscape as ls
from spurious.core import disconnectivity as tree
from spurious import verify
from spurious.report.landscape import disconnectivity_figure


def minimax_levels(count, edges, target):
    """Floyd-Warshall on (min, max): the lowest possible highest saddle on a path to target."""
    level = np.full((count, count), np.inf)
    for i, j, value in edges:
        level[i, j] = level[j, i] = min(level[i, j], value)
    for middle in range(count):
        level = np.minimum(level, np.maximum(level[:, [middle]], level[[middle], :]))
    return {i: (None if not np.isfinite(level[i, target]) else float(level[i, target]))
            for i in range(count) if i != target}


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 9).flatmap(lambda n: st.tuples(
    st.just(n), st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1), st.floats(0, 10)), max_size=20))))
def test_the_tree_joins_each_minimum_to_the_target_at_its_minimax_saddle(case):
    count, edges = case
    edges = [(i, j, level) for i, j, level in edges if i != j]
    merges = tree.disconnectivity(np.zeros(count), edges)
    assert [m[0] for m in merges] == sorted(m[0] for m in merges)
    assert len(merges) == count - len({frozenset(g) for g in _components(count, edges)})
    found = tree.lowest_levels(count, merges, 0)
    expected = minimax_levels(count, edges, 0)
    for i, level in expected.items():
        assert found[i] == level


def _components(count, edges):
    groups = [{i} for i in range(count)]
    for i, j, _ in edges:
        a = next(g for g in groups if i in g)
        b = next(g for g in groups if j in g)
        if a is not b:
            a |= b
            groups.remove(b)
    return groups


@pytest.fixture(scope="module")
def network():
    k = 7
    problem = sp.ReLUTeacherStudent(teacher=k, student=k)
    spurious_minimum = fp.continue_in_k(fp.newton((5, 1), (1.0, -0.03, -0.65, 0.25, 0.17)), [k])[-1].matrix()
    return problem, ls.explore(problem, [("global", np.eye(k)), ("Δ(S_6 × S_1)", spurious_minimum)], target=0)


def test_the_exploration_joins_the_spurious_minimum_to_the_global_one_through_a_certified_saddle(network):
    problem, found = network
    assert [a for a, b, _ in found.edges] and found.connected()
    (a, b, search), = found.edges
    assert {a, b} == {0, 1}
    saddle = found.searches[search][2]
    certificate = found.certificates[search]
    assert not isinstance(certificate, str), certificate
    assert certificate.morse_index == 1 and certificate.kind == "saddle"
    checked = verify.verify_certificate(json.loads(json.dumps(certificate.data)))  # the stand-alone checker
    assert checked.morse_index == 1
    assert float(certificate.loss_lower) <= saddle.saddle_loss <= float(certificate.loss_upper)
    barrier = found.lowest_barriers(0)[1]
    assert barrier == pytest.approx(saddle.saddle_loss - found.minima[1][1], abs=1e-14) and 0 < barrier < 1e-3


def test_the_disconnectivity_figure_draws_every_minimum(network):
    _, found = network
    figure = disconnectivity_figure([m[1] for m in found.minima], [m[0] for m in found.minima], found.merges(), 0)
    labels = [t.get_text() for t in figure.axes[0].get_xticklabels()]
    assert sorted(labels) == sorted(m[0] for m in found.minima)


def test_exploring_refuses_bad_input():
    problem = sp.ReLUTeacherStudent(teacher=6, student=6)
    with pytest.raises(sp.SpuriousError, match="at least two minima"):
        ls.explore(problem, [("global", np.eye(6))], target=0)
    with pytest.raises(sp.SpuriousError, match="target 5 is not one of the 2 minima"):
        ls.explore(problem, [("a", np.eye(6)), ("b", np.eye(6))], target=5)


def muller_brown(p):
    """The Muller-Brown potential (Theor. Chim. Acta 53, 75, 1979), scaled by 1/100."""
    import jax.numpy as jnp
    height = jnp.array([-200.0, -100.0, -170.0, 15.0])
    a, b, c = jnp.array([-1.0, -1.0, -6.5, 0.7]), jnp.array([0.0, 0.0, 11.0, 0.6]), jnp.array([-10.0, -10.0, -6.5, 0.7])
    dx, dy = p[0] - jnp.array([1.0, 0.0, -0.5, -1.0]), p[1] - jnp.array([0.0, 0.5, 1.5, 1.0])
    return jnp.sum(height * jnp.exp(a * dx * dx + b * dx * dy + c * dy * dy)) / 100.0


def test_a_user_landscape_s_saddles_are_the_published_muller_brown_transition_states():
    # the potential's stationary points as tabulated in the literature (to the digits given there):
    # minima A, B, C and the saddles A-C and C-B with their energies (unscaled)
    problem = sp.Problem.from_loss(muller_brown, shape=(2,), name="muller-brown")
    minima = {"A": (-0.558224, 1.441726), "B": (0.623499, 0.028038), "C": (-0.050011, 0.466694)}
    saddles = {("A", "C"): ((-0.822002, 0.624313), -40.66484), ("B", "C"): ((0.212487, 0.292988), -72.24894)}
    start = sp.polish(problem, np.array(list(minima.values())))[0]
    network = ls.explore(problem, list(zip(minima, start)), target=0)
    labels = [m[0] for m in network.minima]
    assert labels == ["A", "B", "C"]  # no minimum beyond the three
    found = {tuple(sorted((labels[a], labels[b]))): network.searches[s][2] for a, b, s in network.edges}
    assert set(found) == set(saddles)
    for pair, (point, energy) in saddles.items():
        assert found[pair].morse_index == 1 and found[pair].grad_norm <= 1e-12
        np.testing.assert_allclose(found[pair].saddle, point, atol=2e-6)
        assert abs(100 * found[pair].saddle_loss - energy) < 1e-4
    barriers = network.lowest_barriers(0)
    assert abs(100 * (network.minima[1][1] + barriers[1]) - saddles[("A", "C")][1]) < 1e-4  # B climbs past C


def test_eigenvector_following_reaches_a_saddle_a_newton_polish_misses():
    from spurious import transitions as tr
    problem = sp.Problem.from_loss(muller_brown, shape=(2,), name="muller-brown")
    near = np.array([[-0.822002 + 0.1, 0.624313 - 0.1], [0.212487 + 0.1, 0.292988 - 0.1]])
    reached, norms = tr.follow_eigenvectors(problem, near)
    assert np.all(norms <= 1e-12)
    np.testing.assert_allclose(reached, [[-0.822002, 0.624313], [0.212487, 0.292988]], atol=2e-6)
    # from the first point Newton's method does not reach the A-C saddle (it is rejected or goes elsewhere)
    polished = sp.polish(problem, near[:1], sp.Tolerances(polish_radius=1.0))[0]
    assert np.max(np.abs(polished[0] - reached[0])) > 1e-3


def test_a_barrier_set_by_a_single_ended_search_has_a_table_row_and_no_path_curve():
    from spurious.report.landscape import path_profiles_figure
    from spurious.report.tables import lowest_barriers

    network = {"minima": [{"label": "global", "loss": 0.0}, {"label": "F1", "loss": 0.5}],
               "searches": [{"from": 1, "to": None, "kind": "ascent", "saddle_loss": 0.75, "morse_index": 1,
                             "path_losses": None, "certified": None}],
               "edges": [{"a": 1, "b": 0, "search": 0}]}
    barrier, search = lowest_barriers(network)[1]
    assert barrier == 0.25 and search["kind"] == "ascent"
    assert path_profiles_figure(network) is None

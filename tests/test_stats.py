"""Statistics behind the report's verdicts, against closed forms and exact enumeration."""
import math

import pytest
from hypothesis import given, settings, strategies as st

from spurious.stats import chance_of_misses, two_sample_p_value, wilson_interval


def test_chance_of_misses_matches_the_binomial_closed_form():
    assert chance_of_misses(1, 15) == pytest.approx(1 - 0.95 ** 15)
    assert chance_of_misses(2, 15) == pytest.approx(1 - 0.95 ** 15 - 15 * 0.05 * 0.95 ** 14)
    assert chance_of_misses(0, 15) == pytest.approx(1.0)


def _fisher_by_enumeration(a, n_a, b, n_b):
    """Two-sided Fisher p-value summed over all tables with the same margins (hypergeometric)."""
    total = a + b

    def weight(x):
        return math.comb(n_a, x) * math.comb(n_b, total - x)

    observed = weight(a)
    tables = [weight(x) for x in range(max(0, total - n_b), min(n_a, total) + 1)]
    return sum(w for w in tables if w <= observed * (1 + 1e-7)) / sum(tables)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 40), st.integers(1, 40), st.data())
def test_two_sample_p_value_is_fishers_exact_test(n_a, n_b, data):
    a = data.draw(st.integers(0, n_a))
    b = data.draw(st.integers(0, n_b))
    p = two_sample_p_value(a, n_a, b, n_b)
    assert p == pytest.approx(_fisher_by_enumeration(a, n_a, b, n_b), rel=1e-9, abs=1e-12)
    assert p == pytest.approx(two_sample_p_value(b, n_b, a, n_a), rel=1e-9)


def test_equal_samples_do_not_differ_and_far_ones_do():
    assert two_sample_p_value(346, 1000, 346, 1000) == pytest.approx(1.0)
    assert two_sample_p_value(600, 1000, 218, 1000) < 1e-30


def test_wilson_interval_contains_the_estimate():
    low, high = wilson_interval(346, 1000)
    assert low < 0.346 < high and high - low == pytest.approx(0.0589, abs=2e-3)


def test_wilson_interval_is_exact_at_the_ends():
    assert wilson_interval(0, 1000)[0] == 0.0 and wilson_interval(1000, 1000)[1] == 1.0
    assert 0 < wilson_interval(0, 1000)[1] < 0.004

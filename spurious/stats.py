"""Small statistics used across reports."""
from __future__ import annotations


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (well behaved at 0 and 1; SciPy's)."""
    if trials <= 0:
        return (0.0, 1.0)
    from scipy.stats import binomtest

    ci = binomtest(int(successes), int(trials)).proportion_ci(confidence, method="wilson")
    # exact at the ends: the formula leaves a rounding residue of ~1e-18 there
    low = 0.0 if successes == 0 else max(0.0, float(ci.low))
    high = 1.0 if successes == trials else min(1.0, float(ci.high))
    return (low, high)


def share(count: int, total: int, confidence: float = 0.95) -> dict:
    """{count, total, fraction, ci_low, ci_high}: a count out of a total with its Wilson interval."""
    low, high = wilson_interval(count, total, confidence)
    return {"count": int(count), "total": int(total), "fraction": count / total if total else float("nan"),
            "ci_low": low, "ci_high": high}


def two_sample_p_value(count_a: int, total_a: int, count_b: int, total_b: int) -> float:
    """Two-sided p-value of Fisher's exact test that two binomial samples share one proportion.

    The right test when a published fraction is itself a finite-sample estimate: whether a
    published value lies inside *our* interval ignores the sampling error of theirs."""
    from scipy.stats import fisher_exact

    table = [[count_a, total_a - count_a], [count_b, total_b - count_b]]
    return float(fisher_exact(table, alternative="two-sided").pvalue)


def chance_of_misses(misses: int, comparisons: int, confidence: float = 0.95) -> float:
    """Probability that at least `misses` of `comparisons` correct values fall outside their
    `confidence` intervals by chance alone (independent intervals)."""
    from scipy.stats import binom

    return float(binom.sf(misses - 1, comparisons, 1 - confidence))

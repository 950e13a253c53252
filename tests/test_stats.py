"""Shared statistics: Kendall trends with ties, normal tails, the best-correlation permutation test."""

from __future__ import annotations

from math import factorial, sqrt

import numpy as np
import pytest
from scipy import stats as scipy_stats

from core import stats


def test_a_trend_without_ties_gets_the_exact_kendall_p_value():
    """1, 2, 3, 4 rises in every pair: tau = 1, and only 1 of the 4! orderings does as well, p = 1/24."""
    trend = stats.kendall_trend([1.0, 2.0, 3.0, 4.0])
    assert trend.tau == pytest.approx(1.0)
    assert trend.p_rising == pytest.approx(1 / factorial(4))
    assert trend.p_falling == pytest.approx(1.0)
    # The old hand-written normal approximation, (S − 1) / sd with S = 6 and var = 4·3·13/18, said 0.0447.
    assert scipy_stats.norm.sf((6 - 1) / sqrt(4 * 3 * 13 / 18)) == pytest.approx(0.0447, abs=1e-4)


def test_ties_shrink_the_kendall_variance():
    """1, 2, 3, 2, 5: 8 concordant pairs, 1 discordant, one tie among the values.

    S = 7; tau-b = 7 / √(10 · 9); var S = (5·4·15 − 2·1·9) / 18 = 282 / 18, so z = 7 / √(282/18). The old
    hand-written test kept the tie-free variance 300 / 18 and a continuity correction: z = 6 / √(300/18).
    """
    trend = stats.kendall_trend([1.0, 2.0, 3.0, 2.0, 5.0])
    assert trend.tau == pytest.approx(7 / sqrt(90))
    assert trend.p_rising == pytest.approx(scipy_stats.norm.sf(7 / sqrt(282 / 18)))
    assert trend.p_rising == pytest.approx(0.0385, abs=1e-4)
    assert scipy_stats.norm.sf(6 / sqrt(300 / 18)) == pytest.approx(0.0708, abs=1e-4)


def test_a_trend_is_judged_against_the_weeks_given():
    """Values observed in weeks 0, 1, 5: the test is scipy's on those weeks."""
    trend = stats.kendall_trend([3.0, 1.0, 4.0], times=[0, 1, 5])
    expected = scipy_stats.kendalltau([0, 1, 5], [3.0, 1.0, 4.0], alternative="greater")
    assert trend.p_rising == pytest.approx(expected.pvalue)
    assert trend.tau == pytest.approx(1 / 3)


def test_normal_score_is_the_one_sided_critical_value():
    assert stats.normal_score(0.01) == pytest.approx(2.326348, abs=1e-6)
    assert stats.normal_score(0.5) == pytest.approx(0.0)


def test_a_perfect_correlation_is_matched_only_by_itself_and_its_reverse():
    """Six points, r = 1 at the only pairing: of the 6! = 720 orderings two reach |r| = 1, so p ≈ 2/720 (+ 1/1000)."""
    result = stats.best_correlation_test([np.arange(6.0) * 2 + 1], [(0, np.arange(6), np.arange(6.0))])
    assert (result.index, result.r, result.permutations) == (0, pytest.approx(1.0), 999)
    assert result.p_value == pytest.approx(2 / 720 + 1 / 1000, abs=0.004)


def test_the_best_pairing_wins_and_a_constant_one_counts_as_no_correlation():
    series = np.array([3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0])
    flat = (0, np.arange(4), series[:4])
    lagged = (1, np.arange(7), series[1:])  # the second outcome is the series itself, one week on
    outcomes = [np.full(4, 7.0), series[1:] * 3]
    result = stats.best_correlation_test(outcomes, [flat, lagged], seed=3)
    assert (result.index, result.r) == (1, pytest.approx(1.0))
    alone = stats.best_correlation_test(outcomes[:1], [flat], seed=3)
    assert (alone.r, alone.p_value) == (0.0, 1.0)
    assert stats.best_correlation_test(outcomes, [flat, lagged], seed=3) == result, "a seed gives the same p-value"


def test_on_one_outcome_and_one_lag_the_permutation_test_agrees_with_scipys():
    """The same statistic and shuffles as ``scipy.stats.permutation_test``: p-values within Monte Carlo error."""
    rng = np.random.default_rng(5)
    series = np.linspace(10, 20, 12) + rng.normal(0, 2, 12)
    outcome = 0.3 * series + rng.normal(0, 2, 12)
    ours = stats.best_correlation_test([outcome], [(0, np.arange(12), series)], permutations=9999, seed=1)
    theirs = scipy_stats.permutation_test(
        (outcome,),
        lambda shuffled, axis=-1: np.abs(stats._pearson(np.moveaxis(shuffled, axis, -1), series)),
        permutation_type="pairings",
        n_resamples=9999,
        vectorized=True,
        alternative="greater",
        rng=np.random.default_rng(2),
    )
    assert ours.r == pytest.approx(scipy_stats.pearsonr(outcome, series).statistic)
    assert ours.p_value == pytest.approx(theirs.pvalue, abs=0.01)


def test_the_permutation_test_takes_noise_for_a_correlation_at_its_level_where_a_fixed_bar_does_not():
    """Noise beside a rising Poisson count, searched over 9 lags: best |r| ≥ 0.30 nearly always, p < 0.05 rarely."""
    rng = np.random.default_rng(2026)
    draws, over_bar, significant = 200, 0, 0
    for _ in range(draws):
        series = rng.poisson(20 * np.linspace(0.8, 1.3, 20)).astype(float)
        outcome = rng.normal(5.0, 0.2, 12)
        pairings = [(0, np.arange(12), series[np.arange(8, 20) - lag]) for lag in range(9)]
        result = stats.best_correlation_test([outcome], pairings, permutations=199, seed=int(rng.integers(2**31)))
        over_bar += abs(result.r) >= 0.30
        significant += result.p_value < 0.05
    assert over_bar >= 0.9 * draws
    assert significant <= 0.09 * draws  # 5% expected; 9% is about three standard errors above it

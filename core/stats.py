"""The trend and test statistics the measures share: Kendall trend tests, normal tails, a permutation test.

Every p-value comes from scipy (``scipy.stats.kendalltau``, ``scipy.stats.norm``,
``scipy.stats.permutation_test``); this module only shapes their inputs and outputs in the
measures' terms, so costs and flags judge a trend the same way.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from scipy import stats


class Trend(NamedTuple):
    """Kendall's tau of a series against time, with its one-sided p-values (falling, rising)."""

    tau: float | None
    p_falling: float | None
    p_rising: float | None


class BestCorrelation(NamedTuple):
    """The candidate pairing with the largest |Pearson r|, and how often chance alone does as well."""

    index: int
    r: float
    p_value: float
    permutations: int


def kendall_trend(values: Sequence[float], times: Sequence[float] | None = None) -> Trend:
    """Kendall's tau-b of ``values`` against ``times`` (default: their order), with one-sided p-values.

    The Mann–Kendall trend test: ``scipy.stats.kendalltau`` with its default method, so the
    p-value is exact for fewer than 34 points without ties and tie-corrected (normal
    approximation) otherwise. Fewer than 3 values, or all equal: no trend can be judged (None).
    """
    if len(values) < 3 or len(set(values)) < 2:
        return Trend(None, None, None)
    order = list(range(len(values))) if times is None else list(times)
    falling = stats.kendalltau(order, values, alternative="less")
    rising = stats.kendalltau(order, values, alternative="greater")
    tau = float(falling.statistic)
    if math.isnan(tau):
        return Trend(None, None, None)
    return Trend(tau, float(falling.pvalue), float(rising.pvalue))


def normal_score(p: float) -> float:
    """The z whose upper tail is ``p`` (P(Z ≥ z) = p for a standard normal Z): a one-sided test's critical value."""
    return float(stats.norm.isf(p))


def best_correlation_test(
    series: np.ndarray,
    pairings: Sequence[tuple[np.ndarray, np.ndarray]],
    permutations: int = 999,
    seed: int = 0,
) -> BestCorrelation:
    """The pairing of ``series`` with the largest |r|, and its p-value over the same search.

    Each pairing is (positions in ``series``, the values those positions are paired with), for
    example one outcome at one lag. The statistic is the largest |Pearson r| over all pairings
    (a pairing whose values or series part is constant counts as r = 0; ties go to the first
    pairing). Its null distribution shuffles the order of ``series`` (``scipy.stats.permutation_test``,
    ``permutation_type='pairings'``, every shuffle exact when there are no more than
    ``permutations``) and repeats the whole search each time, so searching many lags and outcomes
    does not by itself make a correlation look real. ``seed`` makes the p-value reproducible.
    """
    series = np.asarray(series, dtype=float)
    observed = np.array([_pearson(series[at], values) for at, values in pairings])
    best = int(np.argmax(np.abs(observed)))

    def largest_abs_r(shuffled: np.ndarray, axis: int = -1) -> np.ndarray:
        shuffled = np.moveaxis(shuffled, axis, -1)
        return np.max(np.abs(np.stack([_pearson(shuffled[..., at], values) for at, values in pairings])), axis=0)

    result = stats.permutation_test(
        (series,),
        largest_abs_r,
        permutation_type="pairings",
        n_resamples=permutations,
        vectorized=True,
        alternative="greater",
        rng=np.random.default_rng(seed),
    )
    drawn = int(np.size(result.null_distribution))
    return BestCorrelation(best, float(observed[best]), float(result.pvalue), drawn)


def _pearson(series: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Pearson's r along the last axis of ``series`` against ``values``; 0 where either side is constant."""
    x = series - series.mean(axis=-1, keepdims=True)
    y = np.asarray(values, dtype=float) - np.mean(values)
    spread = np.sqrt((x**2).sum(axis=-1) * (y**2).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(spread > 0, (x * y).sum(axis=-1) / spread, 0.0)

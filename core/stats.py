"""The trend and test statistics the measures share: Kendall trend tests, normal tails, a permutation test.

The Kendall trend test, the normal and Student tails come from scipy (``scipy.stats.kendalltau``,
``scipy.stats.norm``, ``scipy.stats.t``) and the false-discovery-rate adjustment from statsmodels
(``multipletests``); this module shapes their inputs and outputs in the measures' terms, so
costs and flags judge a trend the same way. The best-correlation permutation test shuffles several
outcomes independently, which ``scipy.stats.permutation_test`` cannot do for samples of unequal
length; a test checks it against scipy's on one outcome.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from scipy import stats
from statsmodels.stats.multitest import multipletests


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


def upper_tail(z: np.ndarray, df: np.ndarray | None = None) -> np.ndarray:
    """P(Z ≥ z) for a standard normal Z, or for Student's t with ``df`` degrees of freedom: one-sided p-values.

    NaN in, NaN out (a test that could not be run has no p-value).
    """
    z = np.asarray(z, dtype=float)
    if df is None:
        return stats.norm.sf(z)
    return stats.t.sf(z, np.asarray(df, dtype=float))


def fdr_adjust(p_values: np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values (``statsmodels`` ``multipletests``, method ``fdr_bh``); NaN stays NaN.

    A test is significant at a false-discovery rate q when its adjusted p-value is at most q. When
    no effect is real (every null true) that is also the chance of any false discovery among them.
    """
    p_values = np.asarray(p_values, dtype=float)
    adjusted = np.full(p_values.shape, np.nan)
    tested = ~np.isnan(p_values)
    if tested.any():
        adjusted[tested] = multipletests(p_values[tested], method="fdr_bh")[1]
    return adjusted


def clustered_mean_rise_test(
    before: tuple[np.ndarray, np.ndarray],
    after: tuple[np.ndarray, np.ndarray],
    permutations: int = 9999,
    seed: int = 0,
) -> float:
    """One-sided permutation p-value that a mean per item rose from ``before`` to ``after``, items moving in clusters.

    Each side is (per cluster the sum of its items' values, per cluster its item count), for
    example a window's features with their story points and work items. The statistic is the
    rise of the mean per item, Σ values / Σ items after minus before. Its null distribution
    reassigns whole clusters between the two sides (the numbers of clusters on each side kept):
    under "nothing changed" which cluster fell in which window is chance. Every reassignment is
    enumerated when there are at most ``permutations`` of them, so the p-value is exact; otherwise
    ``permutations`` random ones (seeded by ``seed``) and p = (at least as large + 1) / (permutations + 1).
    """
    values = np.concatenate([np.asarray(before[0], dtype=float), np.asarray(after[0], dtype=float)])
    items = np.concatenate([np.asarray(before[1], dtype=float), np.asarray(after[1], dtype=float)])
    first, total = len(before[0]), len(values)
    observed = _cluster_mean_rise(values, items, np.arange(total)[None, first:])[0]
    if math.comb(total, total - first) <= permutations:
        afters = np.array(list(itertools.combinations(range(total), total - first)), dtype=np.int64)
        rises = _cluster_mean_rise(values, items, afters.reshape(len(afters), total - first))
        return float(np.count_nonzero(rises >= observed - 1e-12) / len(rises))
    rng = np.random.default_rng(seed)
    shuffled = rng.permuted(np.tile(np.arange(total), (permutations, 1)), axis=1)[:, first:]
    rises = _cluster_mean_rise(values, items, shuffled)
    return float((np.count_nonzero(rises >= observed - 1e-12) + 1) / (permutations + 1))


def _cluster_mean_rise(values: np.ndarray, items: np.ndarray, afters: np.ndarray) -> np.ndarray:
    """Per row of cluster positions ``afters`` (the "after" side, the rest "before"), the rise of the mean per item."""
    after_values, after_items = values[afters].sum(axis=1), items[afters].sum(axis=1)
    before_values, before_items = values.sum() - after_values, items.sum() - after_items
    with np.errstate(invalid="ignore", divide="ignore"):
        return after_values / after_items - before_values / before_items


def best_correlation_test(
    outcomes: Sequence[np.ndarray],
    pairings: Sequence[tuple[int, np.ndarray, np.ndarray]],
    permutations: int = 999,
    seed: int = 0,
) -> BestCorrelation:
    """The pairing with the largest |Pearson r| between an outcome and a series, and its p-value over the same search.

    Each pairing is (which outcome, positions in that outcome's values, the series values paired
    with them), for example one outcome against the series at one lag. The statistic is the
    largest |r| over all pairings (a pairing with a constant side counts as r = 0; ties go to the
    first pairing). Its null distribution shuffles each outcome's values ``permutations`` times,
    each independently, and repeats the whole search every time, so searching many lags and
    outcomes does not by itself make a correlation look real, while the series keeps the
    smoothness that makes its lags alike. p = (shuffles at least as extreme + 1) / (permutations + 1);
    ``seed`` makes it reproducible.
    """
    rng = np.random.default_rng(seed)
    values = [np.asarray(outcome, dtype=float) for outcome in outcomes]
    observed = np.array([_pearson(values[k][at], series) for k, at, series in pairings])
    best = int(np.argmax(np.abs(observed)))
    shuffled = [v[rng.permuted(np.tile(np.arange(v.size), (permutations, 1)), axis=1)] for v in values]
    null = np.max(np.abs(np.stack([_pearson(shuffled[k][:, at], series) for k, at, series in pairings])), axis=0)
    extreme = int(np.count_nonzero(null >= abs(observed[best]) * (1 - 1e-9)))
    return BestCorrelation(best, float(observed[best]), (extreme + 1) / (permutations + 1), permutations)


def _pearson(series: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Pearson's r along the last axis of ``series`` against ``values``; 0 where either side is constant."""
    x = series - series.mean(axis=-1, keepdims=True)
    y = np.asarray(values, dtype=float) - np.mean(values)
    spread = np.sqrt((x**2).sum(axis=-1) * (y**2).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(spread > 0, (x * y).sum(axis=-1) / spread, 0.0)

"""Impact verdicts: did each delivered feature move its outcome metric as its hypothesis predicted?

Stage 1 (pure Polars, ``LazyFrame -> LazyFrame``): ``judging_schedule`` places each hypothesis
in time (pre-period, lag, judged window, the date it can be judged), ``neighbours`` finds the other
features aimed at the same metric whose effect starts inside that span, ``metric_series`` lays out
the daily series each joint fit runs on and ``series_members`` the features whose steps it holds.

Stage 2 (numpy, batched over series of similar size): one segmented regression per metric and
segment over the metric's history, from the earliest pre-period of its features to the latest
judging day (or ``as_of``):

* Interrupted time series (features without a control segment), on segment 'all':
  ``y = a + trend + weekday + Σ_f c_f·s_f(t) + e``. Every feature f aimed at the metric, judged or
  pending, has its own effect column s_f: 0 before delivery, rising linearly over the lag days to 1
  on the effect start, 1 after. The launches are estimated jointly, so an earlier launch is modelled,
  not a reason to give up, and back-to-back launches stay separable through their ramps.
* Difference-in-differences (features naming a control segment): the same model on the daily
  difference "all − control", on days both are observed, so ``c_f`` is the change in that gap; its
  trend absorbs a slow drift of the gap over the history.

The trend is linear over the whole history, bending by a hinge every ``KNOT_DAYS`` (two years) on
longer histories. It is global on purpose: every launch's step frees the level, so the trend is
identified only by the slope inside the stretches between launches, and a trend local enough to bend
within a few months competes with the steps (on the simulation, knots every 180 days widen the
intervals by half: power 60% instead of 80%). The steps keep the fit local in level; a trend whose
slope bends within the two years biases a step by about the slope's error times the days between
the launches around it.

After its judged window a feature's effect is taken to persist: its step carries on, and each later
launch's step measures the change from there. A step is therefore measured on the days between the
launches on either side of it (the window and any days after it up to the next launch), and an
effect that fades after its window reads smaller than at its peak. Once judged, a verdict can
still be refined a little by the metric's later history (the trend, the noise and the days up to
the next launch); the numbers shown are always those of the whole history as of ``as_of``.

A feature is confounded only when its step cannot be told apart from another's: no observed day
falls between the two (the design is singular: found by a Cholesky pass over X'X in column order,
the later step is dropped and the earlier, most correlated one stands for both), or the two
estimates are correlated beyond ``SEPARABLE_CORRELATION``. The explanation names the other feature.

Errors: the series is first quasi-differenced with its estimated AR(1) coefficient (Prais–Winsten,
using ρ^g across a gap of g days, so missing days are respected), then each step's standard error is
Newey–West (HAC, Bartlett kernel) — the estimator of statsmodels' ``OLS(...).fit(cov_type="HAC",
cov_kwds={"maxlags": L, "use_correction": True})`` — corrected so that it is unbiased under white
noise, with the HAC estimate's equivalent degrees of freedom. The tests run the whole pipeline
against statsmodels; ``python -m bench.bench_verdicts`` measures the coverage on simulated
organisations with AR(1) noise up to ρ = 0.6 (0.93–0.95 at each ρ).

The verdict compares the 95% interval with the hypothesis's minimum meaningful change (MMC, half
the predicted change unless the hypothesis sets one): confirmed when the whole interval lies beyond
it in the predicted direction, refuted when it falls short of it, inconclusive when it straddles it.
Across a delivery quarter's verdicts a Benjamini–Hochberg adjustment says whether each confirmation
or refutation still holds when all of them are judged together.

Relative changes divide by the counterfactual level: the mean the metric would have had over
the window without the feature (observed mean minus the effect), taken as known. A relative
``predicted_change`` is a fraction (0.05 means +5%).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from typing import NamedTuple

import numpy as np
import polars as pl
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.sandwich_covariance import weights_bartlett

PRE_DAYS = 120
"""Days before delivery that form the pre-period."""
MIN_PRE_DAYS = 14
"""Fewest observed pre-period days a verdict needs."""
MIN_POST_DAYS = 7
"""Fewest observed days inside the judged window a verdict needs."""
LEVEL = 0.95
SEPARABLE_CORRELATION = 0.8
"""Beyond this |correlation| between two launches' step estimates, their effects cannot be told apart."""
FALSE_DISCOVERY_RATE = 0.05
"""Benjamini–Hochberg level at which a quarter's confirmations and refutations are judged together."""
MMC_SHARE = 0.5
"""Default minimum meaningful change: this share of the predicted change."""

VERDICTS = ("confirmed", "refuted", "inconclusive", "confounded", "pending")
"""Every verdict a delivered feature's hypothesis can get, in the order they are reported."""
JUDGED = ("confirmed", "refuted", "inconclusive")
"""What "judged" means on every page, CLI report and file: the judging window has ended and the change was
measured free of other features on the same metric, so the verdict is final. Pending (window still open)
and confounded (another feature moved the same metric) hypotheses are not judged."""

ITS = "interrupted time series"
DID = "difference-in-differences"

KNOT_DAYS = 730
"""Spacing of the trend's knots: the trend is piecewise linear, bending at most every this many days."""
_TREND_SCALE = 100.0
_BATCH = 64
_SINGULAR = 1e-9
"""Below this share of its sum of squares left unexplained by the columns before it, a step's column is singular."""

VERDICT_COLUMNS = (
    "feature_id",
    "metric_id",
    "predicted_change",
    "change_kind",
    "min_meaningful_change",
    "retrospective",
    "method",
    "estimate_abs",
    "ci_low_abs",
    "ci_high_abs",
    "estimate_rel",
    "ci_low_rel",
    "ci_high_rel",
    "verdict",
    "judge_on",
    "estimated_with",
    "confounded_by",
    "q_value",
    "judged_together",
    "holds_together",
    "explanation",
)


def judge_hypotheses(
    features: pl.LazyFrame,
    hypotheses: pl.LazyFrame,
    metrics: pl.LazyFrame,
    metric_observations: pl.LazyFrame,
    as_of: date,
    pre_days: int = PRE_DAYS,
) -> pl.DataFrame:
    """One verdict per delivered feature with a hypothesis, as of ``as_of``, with its explanation.

    Columns are ``VERDICT_COLUMNS`` plus ``delivered_on``, ``baseline_level``, ``pre_days_observed``
    and ``post_days_observed``.
    """
    schedule = judging_schedule(features, hypotheses, as_of, pre_days).collect()
    plan = schedule.lazy()
    # The plans explode a small schedule into rows held in memory anyway: the in-memory engine runs
    # them faster than the streaming one.
    nearby, rows, members = pl.collect_all(
        [neighbours(plan), metric_series(plan, metric_observations, as_of), series_members(plan, as_of)],
        engine="in-memory",
    )
    fits = _fit_series(schedule, rows, members, nearby, as_of)
    names = metrics.select("metric_id", "name", "unit").collect()
    judged = (
        schedule.join(fits, on="feature_id", how="left")
        .join(names, on="metric_id", how="left")
        .with_columns(
            pl.col("confounded_by").fill_null(pl.lit([], dtype=pl.List(pl.String))),
            pl.col("estimated_with").fill_null(pl.lit([], dtype=pl.List(pl.String))),
            pl.col("pre_days_observed").fill_null(0),
            pl.col("post_days_observed").fill_null(0),
        )
        .with_columns(_in_kind_interval())
        .with_columns(_verdict().alias("verdict"))
    )
    return (
        _judged_together(judged)
        .with_columns(_explanation(pre_days).alias("explanation"))
        .select(
            *VERDICT_COLUMNS,
            "delivered_on",
            "baseline_level",
            "pre_days_observed",
            "post_days_observed",
        )
        .sort("feature_id")
    )


def judging_schedule(
    features: pl.LazyFrame, hypotheses: pl.LazyFrame, as_of: date, pre_days: int = PRE_DAYS
) -> pl.LazyFrame:
    """Per delivered feature with a hypothesis: pre-period start, effect start, window end, judge date.

    The pre-period is the ``pre_days`` before the delivery day; over the ``lag_days`` from delivery
    the effect ramps up; the judged window is the ``window_days`` from the effect start. ``pending`` is true
    while the window has not ended by ``as_of``. ``min_meaningful_change`` is the hypothesis's own
    (as a magnitude, in the prediction's kind), else half the predicted change; ``retrospective`` is
    true when the prediction was recorded after delivery.
    """
    delivered = features.filter((pl.col("status") == "delivered") & pl.col("delivered_at").is_not_null()).select(
        "feature_id", "delivered_at", "control_segment"
    )
    present = hypotheses.collect_schema().names()
    own_mmc = pl.col("min_meaningful_change").abs() if "min_meaningful_change" in present else pl.lit(None, pl.Float64)
    retrospective = (
        (pl.col("created_at") > pl.col("delivered_at")).fill_null(False) if "created_at" in present else pl.lit(False)
    )
    lag = pl.duration(days=pl.col("lag_days").fill_null(0))
    return (
        hypotheses.join(delivered, on="feature_id", how="inner")
        .with_columns(pl.col("delivered_at").dt.date().alias("delivered_on"))
        .with_columns(
            (pl.col("delivered_on") - pl.duration(days=pre_days)).alias("pre_start"),
            (pl.col("delivered_on") + lag).alias("effect_start"),
            pl.coalesce(own_mmc, pl.col("predicted_change").abs() * MMC_SHARE).alias("min_meaningful_change"),
            retrospective.alias("retrospective"),
        )
        .with_columns(
            (pl.col("effect_start") + pl.duration(days=pl.col("window_days") - 1)).alias("judge_on"),
        )
        .with_columns(
            (pl.col("judge_on") > pl.lit(as_of)).alias("pending"),
            pl.when(pl.col("control_segment").is_not_null()).then(pl.lit(DID)).otherwise(pl.lit(ITS)).alias("method"),
        )
        .select(
            "feature_id",
            "metric_id",
            "predicted_change",
            "change_kind",
            "min_meaningful_change",
            "retrospective",
            pl.col("lag_days").fill_null(0),
            "window_days",
            "control_segment",
            "method",
            "delivered_on",
            "pre_start",
            "effect_start",
            "judge_on",
            "pending",
        )
    )


def neighbours(schedule: pl.LazyFrame) -> pl.LazyFrame:
    """Per feature, the other scheduled features on the same metric whose effect starts inside its span.

    The span runs from the day after the pre-period starts (a step on its first day is constant over
    the span) to the judging day, both inclusive. These are the launches a verdict names as estimated
    jointly with it, and whose steps' correlation with its own is checked (all of the metric's
    launches are in its fit). One row per pair: feature_id, other_id and the other's effect_start,
    ordered by feature and effect start.
    """
    coded = schedule.with_columns(pl.col("metric_id").rank("dense").cast(pl.Int64).alias("_metric"))
    # One integer axis per metric, far apart, turns "same metric and inside the span" into one range
    # of the features sorted on that axis: found by binary search, not by comparing every pair.
    spread = pl.col("_metric") * 10_000_000
    starts = (
        coded.select(
            "feature_id",
            "effect_start",
            (spread + pl.col("effect_start").cast(pl.Int64)).alias("_starts"),
            (spread + pl.col("pre_start").cast(pl.Int64)).alias("_from"),
            (spread + pl.col("judge_on").cast(pl.Int64)).alias("_to"),
        )
        .sort("_starts", "feature_id")
        .with_row_index("_j")
    )
    on_axis = pl.col("_starts")
    inside = pl.int_ranges(
        on_axis.search_sorted(pl.col("_from"), side="right"),
        on_axis.search_sorted(pl.col("_to"), side="right"),
        dtype=pl.get_index_type(),
    )
    return (
        starts.select("feature_id", inside.alias("_j"))
        .explode("_j")
        .join(
            starts.select("_j", pl.col("feature_id").alias("other_id"), pl.col("effect_start").alias("other_start")),
            on="_j",
        )
        .filter(pl.col("other_id") != pl.col("feature_id"))
        .select("feature_id", "other_id", "other_start")
        .sort("feature_id", "other_start", "other_id")
    )


def fitted_series(
    feature_id: str,
    features: pl.LazyFrame,
    hypotheses: pl.LazyFrame,
    metric_observations: pl.LazyFrame,
    as_of: date,
    pre_days: int = PRE_DAYS,
) -> pl.DataFrame:
    """The chart of one feature's verdict: observed values with fitted lines and the counterfactual.

    Columns: date, phase ('before', 'lag', 'after'), observed (segment 'all'), control (the control
    segment, difference-in-differences only), fitted_pre, fitted_post, counterfactual (the fitted
    pre-delivery line carried through the lag and window, with the other launches' steps fitted
    jointly). Lines are drawn at the average weekday. Uses what has been observed by ``as_of``, so a
    pending feature shows its window so far.
    """
    every = judging_schedule(features, hypotheses, as_of, pre_days).collect()
    schedule = every.filter(pl.col("feature_id") == feature_id)
    if schedule.height == 0:
        return pl.DataFrame(schema=_CHART_SCHEMA)
    plan = schedule.row(0, named=True)
    metric = every.filter(pl.col("metric_id") == plan["metric_id"]).lazy()
    own_series = _series_keys(metric, as_of).filter(pl.col("control_segment").eq_missing(plan["control_segment"]))
    rows = (
        metric_series(metric, metric_observations, as_of)
        .join(own_series.select("series"), on="series")
        .sort("series", "date")
        .collect()
    )
    members = series_members(metric, as_of).join(rows.lazy().select("series").unique(), on="series").collect()
    observed = _chart_observations(plan, metric_observations, as_of)
    before = rows["date"].is_between(plan["pre_start"], plan["delivered_on"], closed="left").sum()
    if before < MIN_PRE_DAYS:
        return observed.with_columns(
            pl.lit(None, pl.Float64).alias(name) for name in ("fitted_pre", "fitted_post", "counterfactual")
        ).select(*_CHART_SCHEMA)
    batches = _SeriesBatches(rows, members)
    x, y, mask, gap, first_step, _, twin = batches.batch(0, 1)
    coef = _fit_batch(x, y, mask, gap, np.arange(first_step, x.shape[2])).beta[0]
    own = int(batches.members.filter(pl.col("feature_id") == feature_id)["_col"][0])
    day = observed["date"].cast(pl.Int64).to_numpy()
    width = twin.shape[1]
    chart, _ = design(
        day[None],
        np.ones((1, day.size), bool),
        batches.first[:1],
        batches.last[:1],
        batches.delivered[:1, :width],
        batches.lag[:1, :width],
    )
    chart = chart[0]
    # Lines are drawn at the average weekday; the feature's own step (and a twin standing for it) is left out.
    chart[:, first_step - 6 : first_step] = 1.0 / 7.0
    effect = coef[first_step + twin[0, own]] * chart[:, first_step + own]
    chart[:, first_step + own] = 0.0
    chart[:, first_step + twin[0, own]] = 0.0
    base = chart @ coef
    is_did = plan["method"] == DID
    offset = observed["control"].to_numpy() if is_did else 0.0
    phase = observed["phase"]
    has_post = bool((rows["date"] >= plan["effect_start"]).sum() > 0)
    return (
        observed.with_columns(
            pl.Series("fitted_pre", base + offset),
            pl.Series("fitted_post", base + effect + offset),
            pl.Series("counterfactual", base + offset),
        )
        .with_columns(
            pl.when(phase == "before").then(pl.col("fitted_pre")).alias("fitted_pre"),
            pl.when((phase == "after") & has_post).then(pl.col("fitted_post")).alias("fitted_post"),
            pl.when(phase != "before").then(pl.col("counterfactual")).alias("counterfactual"),
        )
        .select(*_CHART_SCHEMA)
    )


_CHART_SCHEMA = pl.Schema(
    {
        "date": pl.Date,
        "phase": pl.String,
        "observed": pl.Float64,
        "control": pl.Float64,
        "fitted_pre": pl.Float64,
        "fitted_post": pl.Float64,
        "counterfactual": pl.Float64,
    }
)


def _chart_observations(plan: dict, metric_observations: pl.LazyFrame, as_of: date) -> pl.DataFrame:
    end = min(plan["judge_on"], as_of)
    rows = metric_observations.filter(
        (pl.col("metric_id") == plan["metric_id"]) & pl.col("date").is_between(plan["pre_start"], end)
    )
    observed = rows.filter(pl.col("segment") == "all").select("date", pl.col("value").alias("observed"))
    control = rows.filter(pl.col("segment").eq_missing(plan["control_segment"])).select(
        "date", pl.col("value").alias("control")
    )
    return (
        observed.join(control, on="date", how="left")
        .with_columns(
            pl.when(pl.col("date") < plan["delivered_on"])
            .then(pl.lit("before"))
            .when(pl.col("date") < plan["effect_start"])
            .then(pl.lit("lag"))
            .otherwise(pl.lit("after"))
            .alias("phase"),
            pl.col("control").cast(pl.Float64),
        )
        .sort("date")
        .collect()
    )


def metric_series(schedule: pl.LazyFrame, metric_observations: pl.LazyFrame, as_of: date) -> pl.LazyFrame:
    """The daily series each joint fit runs on, with the features whose steps it holds in ``series_members``.

    One series per metric for its features without a control segment (segment 'all'), and one per
    control segment named on it ('all' minus that segment, on days both are observed). A series runs
    from the earliest pre-period start of the metric's features to its latest judging day or ``as_of``,
    whichever is earlier. Columns: series (the index of ``_series_keys``), date, day (days since
    1970-01-01), y and treated (segment 'all'); ordered by series and date.
    """
    is_did = pl.col("method") == DID
    observed = metric_observations.select("metric_id", "date", "segment", "value")
    overall = observed.filter(pl.col("segment") == "all").select("metric_id", "date", pl.col("value").alias("treated"))
    control = observed.filter(pl.col("segment") != "all").select(
        "metric_id", "date", pl.col("segment").alias("control_segment"), pl.col("value").alias("control")
    )
    return (
        _series_keys(schedule, as_of)
        .join(overall, on="metric_id")
        .filter(pl.col("date").is_between(pl.col("_from"), pl.col("_to")))
        .join(control, on=["metric_id", "date", "control_segment"], how="left")
        .filter(~is_did | pl.col("control").is_not_null())
        .select(
            "series",
            "date",
            pl.col("date").cast(pl.Int64).alias("day"),
            pl.when(is_did).then(pl.col("treated") - pl.col("control")).otherwise(pl.col("treated")).alias("y"),
            "treated",
        )
        .sort("series", "date")
    )


def _series_keys(schedule: pl.LazyFrame, as_of: date) -> pl.LazyFrame:
    """One row per fitted series: index, metric, control segment (null for 'all'), method and date span."""
    span = schedule.group_by("metric_id").agg(
        pl.col("pre_start").min().alias("_from"),
        pl.min_horizontal(pl.col("judge_on").max(), pl.lit(as_of)).alias("_to"),
    )
    return (
        schedule.select("metric_id", "control_segment", "method")
        .unique()
        .join(span, on="metric_id")
        .sort("metric_id", "control_segment", nulls_last=False)
        .with_row_index("series")
        .with_columns(pl.col("series").cast(pl.Int64))
    )


def series_members(schedule: pl.LazyFrame, as_of: date) -> pl.LazyFrame:
    """Per series, every scheduled feature on its metric (each gets a step), and whether it is judged there.

    A feature is judged on the series of its own control segment ('all' when it names none); its step
    is in every series of its metric, since it moved the metric whichever way the metric is read.
    Ordered by series, delivery, lag and feature.
    """
    keys = _series_keys(schedule, as_of).select("series", "metric_id", pl.col("control_segment").alias("_segment"))
    return (
        keys.join(
            schedule.select("feature_id", "metric_id", "delivered_on", "lag_days", "control_segment"),
            on="metric_id",
        )
        .select(
            "series",
            "feature_id",
            pl.col("delivered_on").cast(pl.Int64).alias("delivered"),
            pl.col("lag_days").cast(pl.Int64).alias("lag"),
            pl.col("control_segment").eq_missing(pl.col("_segment")).alias("judged_here"),
        )
        .sort("series", "delivered", "lag", "feature_id")
    )


def design(
    day: np.ndarray,
    mask: np.ndarray,
    first: np.ndarray,
    last: np.ndarray,
    delivered: np.ndarray,
    lag: np.ndarray,
) -> tuple[np.ndarray, int]:
    """The joint design of a batch of series and the index of its first step column.

    ``day`` and ``mask`` are (series, rows), ``first`` and ``last`` each series' span (days since
    1970), ``delivered`` and ``lag`` (series, features) its features (padding: a delivery far in the
    future). Columns: const; trend (days since the span start / 100); one hinge per knot, every
    ``KNOT_DAYS`` from the span start while at least half that is left (so the trend bends at most
    every two years); six weekday dummies (Tuesday to Sunday); then per feature its effect's
    shape: 0 before delivery, rising linearly over the lag days to 1 on the effect start, 1 after.
    """
    t = (day - first[:, None]).astype(float)
    span = (last - first).astype(float)
    count = max(int(np.floor((span.max(initial=0.0) - KNOT_DAYS / 2) / KNOT_DAYS)), 0)
    knots = KNOT_DAYS * np.arange(1, count + 1, dtype=float)
    used = knots[None, :] <= span[:, None] - KNOT_DAYS / 2
    hinges = np.maximum(t[..., None] - knots, 0.0) / _TREND_SCALE * used[:, None, :]
    weekday = (day + 3) % 7  # 1970-01-01 was a Thursday; Monday is 0
    dummies = (weekday[..., None] == np.arange(1, 7)).astype(float)
    # One pass per feature column: (day − start)/lag clipped to [0, 1]; a lag of 0 is a step on delivery.
    start = (delivered - (lag == 0)).astype(float)
    ramp = day[..., None] - start[:, None, :]
    ramp *= 1.0 / np.maximum(lag, 1)[:, None, :]
    np.clip(ramp, 0.0, 1.0, out=ramp)
    base = np.stack([np.ones_like(t), t / _TREND_SCALE], axis=-1)
    x = np.concatenate([base, hinges, dummies, ramp], axis=2)
    x *= mask[..., None]
    return x, 2 + count + 6


def _separable_steps(x: np.ndarray, mask: np.ndarray, first_step: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per step column: whether it varies and its twin (itself when separable); per other column: redundant.

    The columns are taken in order (const, trend, weekdays, then the steps by delivery) and each is
    tested against those kept before it by a Cholesky factorisation of X'X: a step whose share of its
    own sum of squares left unexplained is below ``_SINGULAR`` adds nothing (no observed day falls
    between it and an earlier launch, or it is a combination of earlier ones) and is left out; its twin
    is the kept step it is most correlated with, which then stands for both.
    """
    xtx = x.transpose(0, 2, 1) @ x
    dependent = _dependent_columns(xtx)
    n = mask.sum(axis=1).astype(float)
    mean = xtx[:, 0, first_step:] / n[:, None]
    cov = xtx[:, first_step:, first_step:] / n[:, None, None] - mean[:, :, None] * mean[:, None, :]
    spread = np.sqrt(np.maximum(np.diagonal(cov, axis1=1, axis2=2), 0.0))
    varies = spread > 1e-9
    steps = dependent[:, first_step:]
    width = steps.shape[1]
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = np.abs(cov / spread[:, :, None] / spread[:, None, :])
    kept = varies & ~steps
    corr = np.where(kept[:, None, :] & ~np.eye(width, dtype=bool)[None], np.nan_to_num(corr), -1.0)
    twin = np.where(varies & steps, corr.argmax(axis=2), np.arange(width)[None, :])
    return varies, twin, dependent[:, :first_step]


def _dependent_columns(xtx: np.ndarray) -> np.ndarray:
    """Per series and column of X'X (in order): whether the column adds less than ``_SINGULAR`` of its own.

    The Cholesky factor of X'X scaled to a unit diagonal has, squared on its diagonal, the share of
    each column's sum of squares left unexplained by the columns before it. When every series' X'X is
    positive definite numpy's factorisation gives it at once; otherwise the factorisation runs column
    by column, skipping the dependent columns.
    """
    own = np.diagonal(xtx, axis1=1, axis2=2)
    scale = 1.0 / np.sqrt(np.where(own > 0, own, 1.0))
    unit = xtx * scale[:, :, None] * scale[:, None, :]
    diagonal = np.arange(xtx.shape[1])
    unit[:, diagonal, diagonal] = 1.0
    try:
        factor = np.linalg.cholesky(unit)
    except np.linalg.LinAlgError:
        factor = None
    if factor is not None:
        left = np.diagonal(factor, axis1=1, axis2=2) ** 2
        return (left <= _SINGULAR) | (own <= 0)
    count, k = xtx.shape[0], xtx.shape[1]
    factor = np.zeros_like(unit)
    dependent = np.zeros((count, k), bool)
    for j in range(k):
        done = factor[:, j, :j]
        left = 1.0 - np.einsum("bi,bi->b", done, done)
        bad = (left <= _SINGULAR) | (own[:, j] <= 0)
        dependent[:, j] = bad
        pivot = np.sqrt(np.where(bad, 1.0, left))
        below = (unit[:, j + 1 :, j] - (factor[:, j + 1 :, :j] @ done[..., None])[..., 0]) / pivot[:, None]
        factor[:, j + 1 :, j] = np.where(bad[:, None], 0.0, below)
        factor[:, j, j] = np.where(bad, 0.0, pivot)
    return dependent


class _SeriesBatches:
    """Series of similar size, zero-padded, with their features' steps; fitted batch by batch."""

    def __init__(self, rows: pl.DataFrame, members: pl.DataFrame) -> None:
        sizes = rows.group_by("series", maintain_order=True).agg(
            pl.len().alias("n"), pl.col("day").first().alias("first"), pl.col("day").last().alias("last")
        )
        sizes = sizes.with_columns((pl.col("n").cum_sum() - pl.col("n")).alias("start"))
        width = members.group_by("series").agg(pl.len().alias("m"))
        self.order = (
            sizes.join(width, on="series", how="left")
            .with_columns(pl.col("m").fill_null(0))
            .sort("m", "n", "series")
            .with_row_index("_pos")
            .with_columns(pl.col("_pos").cast(pl.Int64))
        )
        self.members = (
            members.join(self.order.select("series", "_pos"), on="series")
            .sort("_pos", "delivered", "lag", "feature_id")
            .with_columns(pl.int_range(pl.len()).over("_pos").alias("_col"))
        )
        self.day_rows = rows["day"].to_numpy()
        self.y_rows = rows["y"].to_numpy().astype(float)
        self.starts = self.order["start"].to_numpy()
        self.lengths = self.order["n"].to_numpy()
        self.first = self.order["first"].to_numpy()
        self.last = self.order["last"].to_numpy()
        self.widths = self.order["m"].to_numpy()
        count = self.order.height
        most = int(self.widths.max(initial=0))
        self.delivered = np.full((count, max(most, 1)), 10**9, dtype=np.int64)
        self.lag = np.zeros((count, max(most, 1)), dtype=np.int64)
        pos, col = self.members["_pos"].to_numpy(), self.members["_col"].to_numpy()
        self.delivered[pos, col] = self.members["delivered"].to_numpy()
        self.lag[pos, col] = self.members["lag"].to_numpy()
        self.member_bounds = np.searchsorted(pos, np.arange(count + 1))

    def batch(self, begin: int, stop: int) -> tuple[np.ndarray, ...]:
        """Design, outcome, mask, day gaps, first step column, and per step: varies and twin."""
        lengths = self.lengths[begin:stop, None]
        places = np.arange(int(lengths.max()))[None, :]
        mask = places < lengths
        rows = self.starts[begin:stop, None] + np.minimum(places, lengths - 1)
        day = self.day_rows[rows]
        y = np.where(mask, self.y_rows[rows], 0.0)
        gap = np.diff(day, axis=1, prepend=day[:, :1])
        width = max(int(self.widths[begin:stop].max(initial=0)), 1)
        x, first_step = design(
            day,
            mask,
            self.first[begin:stop],
            self.last[begin:stop],
            self.delivered[begin:stop, :width],
            self.lag[begin:stop, :width],
        )
        varies, twin, redundant = _separable_steps(x, mask, first_step)
        kept = varies & (twin == np.arange(width)[None, :])
        x[:, :, first_step:] *= kept[:, None, :]
        x[:, :, :first_step] *= ~redundant[:, None, :]
        return x, y, mask, gap, first_step, varies, twin


def _fit_series(
    schedule: pl.DataFrame, rows: pl.DataFrame, members: pl.DataFrame, nearby: pl.DataFrame, as_of: date
) -> pl.DataFrame:
    """Effect, interval, the launches estimated jointly and the confounders per feature, from its series' fit."""
    batches = _SeriesBatches(rows, members)
    listed = batches.members
    total = listed.height
    effect, std_error, dof_all = (np.full(total, np.nan) for _ in range(3))
    twin_col = np.arange(total)
    pos_all, col_all = listed["_pos"].to_numpy(), listed["_col"].to_numpy()
    bounds = batches.member_bounds
    # Pairs of a judged feature and a neighbour (both on its series), to read the two steps' correlation.
    judged_on = listed.filter(pl.col("judged_here")).select("feature_id", "_pos", pl.col("_col").alias("_own"))
    pairs = (
        nearby.join(judged_on, on="feature_id")
        .join(
            listed.select("_pos", pl.col("feature_id").alias("other_id"), pl.col("_col").alias("_other")),
            on=["_pos", "other_id"],
        )
        .sort("_pos")
    )
    pair_pos, pair_own, pair_other = (pairs[c].to_numpy() for c in ("_pos", "_own", "_other"))
    pair_bounds = np.searchsorted(pair_pos, np.arange(batches.order.height + 1))
    correlation = np.zeros(pairs.height)
    pair_twins = np.zeros(pairs.height, bool)

    def fit(begin: int) -> None:
        stop = min(begin + _BATCH, batches.order.height)
        x, y, mask, gap, first_step, varies, twin = batches.batch(begin, stop)
        width = twin.shape[1]
        fitted = _fit_batch(x, y, mask, gap, np.arange(first_step, first_step + width))
        se = np.sqrt(np.maximum(fitted.variance * fitted.correction, 0.0))
        steps = fitted.bread[:, first_step:, first_step:]
        scale = np.sqrt(np.maximum(np.diagonal(steps, axis1=1, axis2=2), 1e-300))
        corr = steps / scale[:, :, None] / scale[:, None, :]
        lo, hi = bounds[begin], bounds[stop]
        p, c = pos_all[lo:hi] - begin, col_all[lo:hi]
        t = twin[p, c]
        ok = varies[p, c]
        usable = ok
        effect[lo:hi] = np.where(usable, fitted.beta[p, first_step + t], np.nan)
        std_error[lo:hi] = np.where(usable, se[p, t], np.nan)
        dof_all[lo:hi] = np.where(usable, fitted.dof[p], np.nan)
        twin_col[lo:hi] = np.where(ok, t, c)
        a, b = pair_bounds[begin], pair_bounds[stop]
        q = pair_pos[a:b] - begin
        own, other = twin[q, pair_own[a:b]], twin[q, pair_other[a:b]]
        pair_twins[a:b] = own == other
        correlation[a:b] = np.where(own == other, 1.0, corr[q, own, other])

    # NumPy's matrix products release the GIL, so the batches fit side by side on every core.
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        list(pool.map(fit, range(0, batches.order.height, _BATCH)))
    return _fit_frame(
        schedule, rows, listed, pairs, effect, std_error, dof_all, twin_col, correlation, pair_twins, as_of
    )


def _fit_frame(
    schedule: pl.DataFrame,
    rows: pl.DataFrame,
    listed: pl.DataFrame,
    pairs: pl.DataFrame,
    effect: np.ndarray,
    std_error: np.ndarray,
    dof: np.ndarray,
    twin_col: np.ndarray,
    correlation: np.ndarray,
    pair_twins: np.ndarray,
    as_of: date,
) -> pl.DataFrame:
    """Per feature: days observed, estimate, interval, neighbours estimated jointly, confounders and why."""
    fitted = listed.with_columns(
        pl.Series("estimate_abs", effect).fill_nan(None),
        pl.Series("_se_abs", std_error).fill_nan(None),
        pl.Series("_dof", dof).fill_nan(None),
        pl.Series("_twin", twin_col),
    ).filter(pl.col("judged_here"))
    names = listed.select("_pos", "_col", pl.col("feature_id").alias("other_id"))
    # Steps that are one column: each names the other.
    twins = fitted.filter(pl.col("_twin") != pl.col("_col")).join(names.rename({"_col": "_twin"}), on=["_pos", "_twin"])
    shared = fitted.join(names.rename({"_col": "_twin", "other_id": "_kept"}), on=["_pos", "_twin"]).filter(
        pl.col("_twin") != pl.col("_col")
    )
    kept_side = shared.select(pl.col("_kept").alias("feature_id"), pl.col("feature_id").alias("other_id"))
    flags = pl.concat(
        [
            pairs.select(
                "feature_id",
                "other_id",
                "other_start",
                pl.Series("_corr", correlation),
                pl.Series("_inseparable", pair_twins),
            ),
            pl.concat([twins.select("feature_id", "other_id"), kept_side]).with_columns(
                pl.lit(None, pl.Date).alias("other_start"),
                pl.lit(1.0).alias("_corr"),
                pl.lit(True).alias("_inseparable"),
            ),
        ]
    )
    flags = (
        flags.sort("feature_id", "_inseparable", descending=[False, True])
        .unique(["feature_id", "other_id"], keep="first", maintain_order=True)
        .sort("feature_id", "other_start", "other_id", nulls_last=True)
    )
    confounding = pl.col("_inseparable") | (pl.col("_corr").abs() > SEPARABLE_CORRELATION)
    reason = (
        pl.when(pl.col("_inseparable"))
        .then(pl.format("{} (no observed day falls between the two launches)", pl.col("other_id")))
        .otherwise(
            pl.format("{} (the two estimates are correlated at {})", pl.col("other_id"), pl.col("_corr").round(2))
        )
    )
    joint = flags.group_by("feature_id", maintain_order=True).agg(
        pl.col("other_id").filter(~confounding).alias("estimated_with"),
        pl.col("other_id").filter(confounding).alias("confounded_by"),
        reason.filter(confounding).str.join("; ").alias("confounded_reason"),
    )
    counts = _days_observed(schedule, rows, as_of)
    estimates = fitted.select("feature_id", "estimate_abs", "_se_abs", "_dof")
    level = pl.col("_treated_after") - pl.col("estimate_abs")
    usable_level = level.abs() > 1e-12
    enough = (pl.col("pre_days_observed") >= MIN_PRE_DAYS) & (pl.col("post_days_observed") >= MIN_POST_DAYS)
    rel = {
        "estimate_rel": pl.col("estimate_abs"),
        "ci_low_rel": pl.col("ci_low_abs"),
        "ci_high_rel": pl.col("ci_high_abs"),
    }
    frame = (
        counts.join(estimates, on="feature_id", how="left")
        .join(joint, on="feature_id", how="left")
        .with_columns(
            [pl.when(enough & ~pl.col("pending")).then(pl.col(c)).alias(c) for c in ("estimate_abs", "_se_abs", "_dof")]
        )
    )
    quantile = stats.t.ppf(0.5 + LEVEL / 2, frame["_dof"].fill_null(np.nan).to_numpy())
    return (
        frame.with_columns(pl.Series("_half", quantile).fill_nan(None) * pl.col("_se_abs"))
        .with_columns(
            (pl.col("estimate_abs") - pl.col("_half")).alias("ci_low_abs"),
            (pl.col("estimate_abs") + pl.col("_half")).alias("ci_high_abs"),
            pl.when(usable_level).then(level).alias("baseline_level"),
        )
        .with_columns([pl.when(usable_level).then(expr / level.abs()).alias(name) for name, expr in rel.items()])
        .drop("_treated_after", "_half", "pending")
    )


def _days_observed(schedule: pl.DataFrame, rows: pl.DataFrame, as_of: date) -> pl.DataFrame:
    """Per feature, on its own series: observed days in the pre-period and the window, and the window's mean level."""
    keys = schedule.join(
        _series_keys(schedule.lazy(), as_of).select("series", "metric_id", "control_segment").collect(),
        on=["metric_id", "control_segment"],
        how="left",
        nulls_equal=True,
    )
    spread = 10_000_000
    axis = rows["series"].to_numpy() * spread + rows["day"].to_numpy()
    total = np.concatenate([[0.0], np.cumsum(rows["treated"].to_numpy().astype(float))])
    series = keys["series"].fill_null(-1).to_numpy() * spread

    def place(column: str, side: str) -> np.ndarray:
        return np.searchsorted(axis, series + keys[column].cast(pl.Int64).to_numpy(), side=side)

    pre_from, pre_to = place("pre_start", "left"), place("delivered_on", "left")
    post_from, post_to = place("effect_start", "left"), place("judge_on", "right")
    after = post_to - post_from
    found = keys["series"].is_not_null().to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_after = (total[post_to] - total[post_from]) / after
    return keys.select(
        "feature_id",
        "pending",
        pl.Series("pre_days_observed", np.where(found, pre_to - pre_from, 0)),
        pl.Series("post_days_observed", np.where(found, after, 0)),
        pl.Series("_treated_after", np.where(found & (after > 0), mean_after, np.nan)).fill_nan(None),
    )


class _Fit(NamedTuple):
    """One batch's fit: coefficients, the effects' HAC variances and white-noise corrections, dof, ρ, bread."""

    beta: np.ndarray
    variance: np.ndarray
    correction: np.ndarray
    dof: np.ndarray
    rho: np.ndarray
    bread: np.ndarray


def _fit_batch(x: np.ndarray, y: np.ndarray, mask: np.ndarray, gap: np.ndarray, effects: np.ndarray) -> _Fit:
    """Prais–Winsten segmented regression with Newey–West errors for a batch of zero-padded series.

    ``x`` is (series, days, columns), ``y``, ``mask`` and ``gap`` (series, days); ``gap`` is the
    number of days since the previous observed row; ``effects`` the columns whose variances are wanted.
    Each series' AR(1) coefficient is estimated from its OLS residuals on consecutive days, corrected
    for its small-sample bias ((1 + 3ρ)/n as for a mean, plus 1/n per regressor), and the series is
    quasi-differenced with it (Prais–Winsten, ρ^g across a gap of g days), so the HAC estimator only
    has to mop up what autocorrelation is left. Degrees of freedom are the HAC estimate's equivalent
    ones, 3n / (2(L + 1)) for the Bartlett kernel, at most n − k. An effect's variance is
    ``variance * correction``.
    """
    present = (x != 0).any(axis=1)
    first, _ = _ols(x, y, present)
    resid = np.where(mask, y - (x @ first[..., None])[..., 0], 0.0)
    n = mask.sum(axis=1)
    k = present.sum(axis=1)
    pairs = (gap[:, 1:] == 1) & mask[:, 1:]
    lagged = (resid[:, 1:] * resid[:, :-1] * pairs).sum(axis=1)
    spread = ((resid[:, 1:] ** 2 + resid[:, :-1] ** 2) / 2.0 * pairs).sum(axis=1)
    rho = lagged / np.maximum(spread, 1e-300)
    rho = np.clip(rho + (1.0 + 3.0 * rho + k) / n, -0.95, 0.95)
    x_white = _quasi_difference(x, rho, mask, gap)
    y_white = _quasi_difference(y[..., None], rho, mask, gap)[..., 0]
    beta, variance, dof, correction, bread = _ols_hac(x_white, y_white, mask, effects)
    dof = np.maximum(np.minimum(dof, np.floor(3.0 * n / (2.0 * (_lags(n) + 1)))), 1)
    return _Fit(beta, variance, correction, dof, rho, bread)


def _quasi_difference(values: np.ndarray, rho: np.ndarray, mask: np.ndarray, gap: np.ndarray) -> np.ndarray:
    """Prais–Winsten transform of (series, days, columns) respecting gaps of g days between rows.

    Row t becomes (v_t − ρ^g·v_{t−1})·√((1 − ρ²)/(1 − ρ^2g)), so every row's AR(1) innovation has the
    same variance; the first row is scaled by √(1 − ρ²). Padding rows stay zero.
    """
    carried = rho[:, None] ** np.maximum(gap, 1)
    scale = np.sqrt((1.0 - rho[:, None] ** 2) / np.maximum(1.0 - carried**2, 1e-12)) * mask
    out = np.empty_like(values)
    rest = out[:, 1:]
    np.multiply(carried[:, 1:, None], values[:, :-1], out=rest)
    np.subtract(values[:, 1:], rest, out=rest)
    rest *= scale[:, 1:, None]
    out[:, 0] = values[:, 0] * (np.sqrt(1.0 - rho**2) * mask[:, 0])[:, None]
    return out


def _ols(x: np.ndarray, y: np.ndarray, present: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares coefficients and (X'X)⁻¹ per series; a column absent from a series gets coefficient 0."""
    xt = x.transpose(0, 2, 1)
    xtx = xt @ x
    diagonal = np.arange(x.shape[2])
    xtx[:, diagonal, diagonal] += ~present
    try:
        bread = np.linalg.inv(xtx)
    except np.linalg.LinAlgError:  # a singular design the step checks did not catch: least-norm solution
        bread = np.linalg.pinv(xtx, hermitian=True)
    return (bread @ (xt @ y[..., None]))[..., 0], bread


def _ols_hac(
    x: np.ndarray, y: np.ndarray, mask: np.ndarray, effects: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """OLS with the effects' Newey–West variances for a batch of zero-padded series.

    Matches the effects' diagonal entries of statsmodels' ``OLS(y, x).fit(cov_type="HAC",
    cov_kwds={"maxlags": L, "use_correction": True}).cov_params()`` series by series. A column that is
    zero throughout a series is left out of that series' model (its coefficient is 0). The lag count
    per series follows Newey and West (1994): floor(4·(n/100)^(2/9)), with Bartlett weights. Only the
    effects' variances are needed, so each sandwich b'·Ω·b collapses onto one series per effect,
    z_t = (x_t·b)·e_t with b the effect's row of (X'X)⁻¹: Σ_|l|≤L w_l·Σ_t z_t·z_{t−l}. Returns
    coefficients, the effects' variances (with the n/(n−k) small-sample correction), residual degrees
    of freedom, the white-noise correction of those variances, and (X'X)⁻¹.
    """
    n = mask.sum(axis=1)
    present = (x != 0).any(axis=1)
    k = present.sum(axis=1)
    beta, bread = _ols(x, y, present)
    resid = np.where(mask, y - (x @ beta[..., None])[..., 0], 0.0)
    projected = x @ bread
    influence = projected[:, :, effects]
    lags = _lags(n)
    kernel = _bartlett(lags)
    dof = np.maximum(n - k, 1)
    long_run, shrink = _lagged_sums(x, projected, influence, resid, lags, kernel)
    variance = long_run * (n / dof)[:, None]
    own = bread[:, effects, effects]
    correction = own / np.maximum(own - shrink, 1e-12 * own) * (dof / n)[:, None]
    return beta, variance, dof, correction, bread


def _bartlett(lags: np.ndarray) -> np.ndarray:
    """Bartlett weights per lag count (rows) and lag (columns)."""
    most = int(lags.max(initial=0))
    kernel = np.zeros((most + 1, most + 1))
    for count in np.unique(lags):
        kernel[count, : count + 1] = weights_bartlett(int(count))
    return kernel


def _lagged_sums(
    x: np.ndarray,
    projected: np.ndarray,
    influence: np.ndarray,
    resid: np.ndarray,
    lags: np.ndarray,
    kernel: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Per series and effect, the Newey–West long-run variance of z_t = a_t·e_t and its white-noise shrinkage.

    ``projected`` is X·(X'X)⁻¹ and ``influence`` its effect columns (the a_t). The long-run
    variance is Σ_|l|≤L w_l·Σ_t z_t·z_{t−l}. The HAC variance is a quadratic form in the residuals;
    with white-noise errors its expectation is σ²·(B_cc − Σ_|t−s|≤L w_|t−s|·a_t·a_s·h_ts), where h is
    the hat matrix, while the true variance is σ²·B_cc: the second sum is the shrinkage. (The
    n/(n−k) factor corrects only the lag-0 part; with a persistent regressor such as a step, the lag
    terms matter as much.) Both sums share a_t·a_{t−l}, so each lag takes one product and one matrix
    product against [e_t·e_{t−l}, h_{t,t−l}].
    """
    long_run = np.zeros(influence.shape[::2])
    shrink = np.zeros_like(long_run)
    days = influence.shape[1]
    pair = np.empty_like(influence)
    both = np.empty((*resid.shape, 2))
    for lag in range(kernel.shape[0]):
        weight = np.where(lag == 0, 1.0, 2.0 * kernel[lags, lag])[:, None]
        end = days - lag
        np.multiply(influence[:, lag:], influence[:, :end], out=pair[:, :end])
        np.multiply(resid[:, lag:], resid[:, :end], out=both[:, :end, 0])
        # Row-by-row dot products as einsum: no (series, days, columns) temporary per lag.
        np.einsum("fdk,fdk->fd", projected[:, lag:], x[:, :end], out=both[:, :end, 1])
        sums = pair[:, :end].transpose(0, 2, 1) @ both[:, :end]
        long_run += weight * sums[..., 0]
        shrink += weight * sums[..., 1]
    return long_run, shrink


def _lags(n: np.ndarray) -> np.ndarray:
    return np.floor(4.0 * (n / 100.0) ** (2.0 / 9.0)).astype(int)


def _in_kind_interval() -> list[pl.Expr]:
    """Estimate, interval and standard error in the prediction's own kind (fraction or metric units)."""
    relative = pl.col("change_kind") == "relative"
    level = pl.col("baseline_level").abs()
    return [
        pl.when(relative).then(pl.col("estimate_rel")).otherwise(pl.col("estimate_abs")).alias("_est"),
        pl.when(relative).then(pl.col("ci_low_rel")).otherwise(pl.col("ci_low_abs")).alias("_low"),
        pl.when(relative).then(pl.col("ci_high_rel")).otherwise(pl.col("ci_high_abs")).alias("_high"),
        pl.when(relative).then(pl.col("_se_abs") / level).otherwise(pl.col("_se_abs")).alias("_se"),
    ]


def _verdict() -> pl.Expr:
    """Pending, confounded, or the interval against the minimum meaningful change (monotone in the evidence).

    In the predicted direction, confirmed when the whole interval lies beyond the minimum meaningful
    change, refuted when it lies short of it, inconclusive when it straddles it. A prediction of no
    change is confirmed when the interval lies within ± that change and refuted when it lies beyond.
    """
    low, high, mmc = pl.col("_low"), pl.col("_high"), pl.col("min_meaningful_change")
    predicted = pl.col("predicted_change")
    nearest = pl.when(predicted > 0).then(low).otherwise(-high)
    farthest = pl.when(predicted > 0).then(high).otherwise(-low)
    no_change = predicted == 0
    confirmed = pl.when(no_change).then((low > -mmc) & (high < mmc)).otherwise(nearest > mmc)
    refuted = pl.when(no_change).then((low > mmc) | (high < -mmc)).otherwise(farthest < mmc)
    return (
        pl.when(pl.col("pending"))
        .then(pl.lit("pending"))
        .when(pl.col("confounded_by").list.len() > 0)
        .then(pl.lit("confounded"))
        .when(low.is_null() | high.is_null())
        .then(pl.lit("inconclusive"))
        .when(confirmed)
        .then(pl.lit("confirmed"))
        .when(refuted)
        .then(pl.lit("refuted"))
        .otherwise(pl.lit("inconclusive"))
    )


def _judged_together(judged: pl.DataFrame) -> pl.DataFrame:
    """Each judged verdict's Benjamini–Hochberg q-value among its delivery quarter's, and whether it still holds.

    A verdict's p-value tests its estimate against the minimum meaningful change, two-sided on the
    t distribution of its interval, so a confirmation or refutation is exactly p < 0.05 on its own;
    ``holds_together`` says whether it still is once the ``judged_together`` verdicts of the quarter
    are adjusted for the false discovery rate (null for other verdicts).
    """
    estimate, mmc = judged["_est"].to_numpy(), judged["min_meaningful_change"].to_numpy()
    predicted, se = judged["predicted_change"].to_numpy(), judged["_se"].to_numpy()
    dof = judged["_dof"].to_numpy()
    distance = np.where(predicted == 0, mmc - np.abs(estimate), np.sign(predicted) * estimate - mmc)
    with np.errstate(invalid="ignore", divide="ignore"):
        statistic = np.abs(distance / se)
    ok = judged["verdict"].is_in(JUDGED).to_numpy() & np.isfinite(statistic) & np.isfinite(dof)
    p = np.full(judged.height, np.nan)
    p[ok] = 2.0 * stats.t.sf(statistic[ok], dof[ok])
    quarter = (judged["delivered_on"].dt.year() * 4 + judged["delivered_on"].dt.quarter()).to_numpy()
    q = np.full(judged.height, np.nan)
    together = np.zeros(judged.height, np.int64)
    for key in np.unique(quarter[ok]):
        same = ok & (quarter == key)
        q[same] = multipletests(p[same], alpha=FALSE_DISCOVERY_RATE, method="fdr_bh")[1]
        together[same] = same.sum()
    decided = pl.col("verdict").is_in(("confirmed", "refuted"))
    return judged.with_columns(
        pl.Series("q_value", q, dtype=pl.Float64).fill_nan(None),
        pl.when(pl.Series(ok)).then(pl.Series("judged_together", together)).alias("judged_together"),
    ).with_columns(pl.when(decided).then(pl.col("q_value") <= FALSE_DISCOVERY_RATE).alias("holds_together"))


def _explanation(pre_days: int) -> pl.Expr:
    relative = pl.col("change_kind") == "relative"
    name = pl.col("name").fill_null(pl.col("metric_id"))
    unit = pl.when(pl.col("unit").is_not_null()).then(pl.lit(" ") + pl.col("unit")).otherwise(pl.lit(""))
    on = pl.col("delivered_on").dt.strftime("%-d %b %Y")
    estimate = pl.col("_est")
    moved = (
        pl.when(estimate > 0)
        .then(pl.lit("rose by "))
        .when(estimate < 0)
        .then(pl.lit("fell by "))
        .otherwise(pl.lit("changed by "))
    )
    measured = (
        pl.when(relative)
        .then(
            pl.format(
                "{}{}% (95% interval {}% to {}%)",
                moved,
                _number((pl.col("estimate_rel") * 100).abs()),
                _number(pl.col("ci_low_rel") * 100),
                _number(pl.col("ci_high_rel") * 100),
            )
        )
        .otherwise(
            pl.format(
                "{}{}{} (95% interval {} to {}{})",
                moved,
                _number(pl.col("estimate_abs").abs()),
                unit,
                _number(pl.col("ci_low_abs")),
                _number(pl.col("ci_high_abs")),
                unit,
            )
        )
    )
    sign = pl.when(pl.col("predicted_change") > 0).then(pl.lit("+")).otherwise(pl.lit(""))
    prediction = (
        pl.when(relative)
        .then(pl.format("{}{}%", sign, _number(pl.col("predicted_change") * 100)))
        .otherwise(pl.format("{}{}{}", sign, _number(pl.col("predicted_change")), unit))
    )
    smallest = (
        pl.when(relative)
        .then(pl.format("{}%", _number(pl.col("min_meaningful_change") * 100)))
        .otherwise(pl.format("{}{}", _number(pl.col("min_meaningful_change")), unit))
    )
    against = (
        pl.when(pl.col("method") == DID)
        .then(pl.format("against control segment '{}'", pl.col("control_segment")))
        .otherwise(pl.lit("against its own trend"))
    )
    jointly = (
        pl.when(pl.col("estimated_with").list.len() > 0)
        .then(
            pl.format(
                ", estimated jointly with {} (launched on the same metric in this span)",
                pl.col("estimated_with").list.join(", "),
            )
        )
        .otherwise(pl.lit(""))
    )
    measured_sentence = pl.format(
        "{} {} after delivery on {}, {} ({}{}); the prediction was {} (smallest change that matters {})",
        name,
        measured,
        on,
        against,
        pl.col("method"),
        jointly,
        prediction,
        smallest,
    )
    together = (
        pl.when(pl.col("holds_together"))
        .then(pl.format("; holds when {} features are judged together", pl.col("judged_together")))
        .when(~pl.col("holds_together"))
        .then(
            pl.format(
                "; does not hold when {} features are judged together (false discovery rate 5%)",
                pl.col("judged_together"),
            )
        )
        .otherwise(pl.lit(""))
    )
    retrospective = (
        pl.when(pl.col("retrospective"))
        .then(pl.lit("Retrospective (the prediction was recorded after delivery and earns no calibration credit). "))
        .otherwise(pl.lit(""))
    )
    verdict = pl.col("verdict")
    cannot_measure = pl.col("estimate_abs").is_null() | (relative & pl.col("estimate_rel").is_null())
    sentence = (
        pl.when(verdict == "pending")
        .then(
            pl.format(
                "Pending: judged on {}, when the {}-day window after delivery on {} ends; the prediction is {}.",
                pl.col("judge_on").dt.strftime("%-d %b %Y"),
                pl.col("window_days"),
                on,
                prediction,
            )
        )
        .when((verdict == "confounded") & cannot_measure)
        .then(pl.format("{} cannot be judged: {}: confounded.", name, pl.col("confounded_reason")))
        .when(verdict == "confounded")
        .then(
            pl.format(
                "{}; but its step cannot be told apart from that of {}, aimed at the same metric: confounded.",
                measured_sentence,
                pl.col("confounded_reason"),
            )
        )
        .when(cannot_measure)
        .then(
            pl.format(
                "{} cannot be judged: {} days observed in the {} days before delivery and {} in the window "
                "(at least {} and {} needed); the prediction was {}: {}.",
                name,
                pl.col("pre_days_observed"),
                pl.lit(pre_days),
                pl.col("post_days_observed"),
                pl.lit(MIN_PRE_DAYS),
                pl.lit(MIN_POST_DAYS),
                prediction,
                verdict,
            )
        )
        .otherwise(pl.format("{}: {}{}.", measured_sentence, verdict, together))
    )
    return pl.concat_str(retrospective, sentence)


def _number(expr: pl.Expr) -> pl.Expr:
    """A value with three significant figures as text, without a trailing '.0'."""
    return expr.round_sig_figs(3).cast(pl.String).str.replace(r"\.0$", "")

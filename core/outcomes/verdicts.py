"""Impact verdicts: did each delivered feature move its outcome metric as its hypothesis predicted?

Stage 1 (pure Polars, ``LazyFrame -> LazyFrame``): ``judging_schedule`` places each hypothesis
in time (pre-period, lag, judged window, the date it can be judged), ``neighbours`` finds the other
features aimed at the same metric whose effect starts inside that span, and ``observation_windows``
lays out each feature's daily series with its regression design (trend, step, weekday dummies).

Stage 2 (numpy over the small per-feature series, batched over features of similar length):

* Interrupted time series (no control segment): segmented regression
  ``y = a + b·t + c·after + Σ d_j·after_j + weekday + e``; ``c`` is the step at the effect start,
  measured against the metric's own trend, and every other launch on the metric inside the span
  gets its own step ``d_j``: the launches are estimated jointly, so a neighbour is modelled, not a
  reason to give up. The span is the feature's own slice of the metric's history (pre-period to the
  end of its window), so the trend stays local.
* Difference-in-differences (the feature names a control segment): the same model on the daily
  difference "all − control" without the trend, so ``c`` is the change in that gap.

A feature is confounded only when its step cannot be told apart from a neighbour's: no observed day
falls between the two steps (the design is singular), or the two estimates are correlated beyond
``SEPARABLE_CORRELATION``.

Errors: the series is first quasi-differenced with its estimated AR(1) coefficient (Prais–Winsten,
using ρ^g across a gap of g days, so missing days and the left-out lag are respected), then the
coefficient's standard error is Newey–West (HAC, Bartlett kernel) — the estimator of statsmodels'
``OLS(...).fit(cov_type="HAC", cov_kwds={"maxlags": L, "use_correction": True})`` — corrected so
that it is unbiased under white noise, with the HAC estimate's equivalent degrees of freedom. The
tests run the whole pipeline against statsmodels; ``python -m bench.bench_verdicts`` measures the
coverage on simulated organisations with AR(1) noise up to ρ = 0.6.

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
MAX_NEIGHBOURS = 24
"""Most other launches on one metric a feature's span can hold and still be estimated jointly."""
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
JUDGED = ("confirmed", "refuted", "inconclusive")

DESIGN = (
    "const",
    "trend",
    "after",
    "wd_tue",
    "wd_wed",
    "wd_thu",
    "wd_fri",
    "wd_sat",
    "wd_sun",
)
"""Regression columns in order (each neighbour's step follows them); ``after`` is the effect estimated."""
_EFFECT = DESIGN.index("after")
_WEEKDAYS = tuple(range(DESIGN.index("wd_tue"), len(DESIGN)))
_TREND_SCALE = 100.0
_BATCH = 512
_SINGULAR = 1e-9
"""Below this share of its variance left unexplained by the other columns, the effect's column is singular."""

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
    # Both plans explode a small schedule into rows held in memory anyway: the in-memory engine runs
    # them faster than the streaming one.
    nearby, windows = pl.collect_all(
        [neighbours(schedule.lazy()), observation_windows(schedule.lazy(), metric_observations, as_of)],
        engine="in-memory",
    )
    fits = _fit_windows(windows, nearby)
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

    The pre-period is the ``pre_days`` before the delivery day; the ``lag_days`` from delivery are
    left out; the judged window is the ``window_days`` from the effect start. ``pending`` is true
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
    the span) to the judging day, both inclusive. One row per pair: feature_id, other_id and the
    other's effect_start, ordered by feature and effect start.
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


def observation_windows(
    schedule: pl.LazyFrame,
    metric_observations: pl.LazyFrame,
    as_of: date,
    include_pending: bool = False,
) -> pl.LazyFrame:
    """Each feature's daily series over its pre-period and judged window, with its design columns.

    ``y`` is the segment 'all' (minus the control segment for difference-in-differences),
    ``treated`` the segment 'all' alone, ``t`` the day relative to the effect start; lag days
    and days after ``as_of`` are left out. Rows are ordered by feature and date.
    """
    plan = (schedule if include_pending else schedule.filter(~pl.col("pending"))).sort("feature_id")
    observed = metric_observations.select("metric_id", "date", "segment", "value")
    overall = observed.filter(pl.col("segment") == "all").select("metric_id", "date", pl.col("value").alias("treated"))
    control = observed.select(
        "metric_id", "date", pl.col("segment").alias("control_segment"), pl.col("value").alias("control")
    )
    days = (
        plan.select(
            "feature_id",
            "metric_id",
            "control_segment",
            "method",
            "delivered_on",
            "effect_start",
            pl.date_ranges("pre_start", pl.min_horizontal("judge_on", pl.lit(as_of))).alias("date"),
        )
        .explode("date")
        .filter((pl.col("date") < pl.col("delivered_on")) | (pl.col("date") >= pl.col("effect_start")))
    )
    is_did = pl.col("method") == DID
    t = (pl.col("date") - pl.col("effect_start")).dt.total_days()
    after = pl.col("date") >= pl.col("effect_start")
    series = (
        # Joins keep the exploded order (feature, then date): sorting a few features is cheaper than every day.
        days.join(overall, on=["metric_id", "date"], how="inner", maintain_order="left")
        .join(control, on=["metric_id", "date", "control_segment"], how="left", maintain_order="left")
        .filter(~is_did | pl.col("control").is_not_null())
        .with_columns(
            t.alias("t"),
            after.alias("after_flag"),
            pl.when(is_did).then(pl.col("treated") - pl.col("control")).otherwise(pl.col("treated")).alias("y"),
        )
    )
    trend_on = pl.when(is_did).then(0.0).otherwise(1.0)
    weekday = pl.col("date").dt.weekday()
    return series.select(
        "feature_id",
        "date",
        "t",
        "y",
        "treated",
        "control",
        pl.lit(1.0).alias("const"),
        (trend_on * pl.col("t") / _TREND_SCALE).alias("trend"),
        pl.col("after_flag").cast(pl.Float64).alias("after"),
        *[(weekday == day).cast(pl.Float64).alias(DESIGN[c]) for day, c in zip(range(2, 8), _WEEKDAYS, strict=True)],
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
    nearby = neighbours(every.lazy()).filter(pl.col("feature_id") == feature_id).collect()
    windows = observation_windows(schedule.lazy(), metric_observations, as_of, include_pending=True).collect()
    observed = _chart_observations(plan, metric_observations, as_of)
    if (windows["after"] == 0).sum() < MIN_PRE_DAYS or nearby.height > MAX_NEIGHBOURS:
        return observed.with_columns(
            pl.lit(None, pl.Float64).alias(name) for name in ("fitted_pre", "fitted_post", "counterfactual")
        ).select(*_CHART_SCHEMA)
    launches = nearby["other_start"].cast(pl.Int64).to_numpy()
    design = _Designs(windows, np.array([0]), np.array([windows.height]), launches[None, :])
    x, y, mask, gap, kept, _, _ = design.batch(0, 1)
    coef = _fit_batch(x, y, mask, gap).beta[0]
    weekday_mean = coef[list(_WEEKDAYS)].sum() / 7.0
    t = (observed["date"] - plan["effect_start"]).dt.total_days().to_numpy().astype(float)
    is_did = plan["method"] == DID
    day = observed["date"].cast(pl.Int64).to_numpy()
    others = ((day[:, None] >= launches[None, :]) * kept[0][None, :]) @ coef[len(DESIGN) :] if launches.size else 0.0
    base = coef[0] + weekday_mean + (0.0 if is_did else coef[1] * t / _TREND_SCALE) + others
    after = (t >= 0).astype(float)
    effect = coef[_EFFECT] * after
    offset = observed["control"].to_numpy() if is_did else 0.0
    phase = observed["phase"]
    has_post = bool(windows["after"].sum() > 0)
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


class _Designs:
    """Zero-padded batches of feature windows with a step column per neighbouring launch.

    A neighbour's step is 1 from its effect start on. On the observed days the steps are nested, so
    two steps (or a step and the feature's own) coincide exactly when they count the same number of
    days: a neighbour whose step coincides with the feature's own cannot be separated from it; one
    constant over the window, or coinciding with another neighbour's, adds nothing and is left out.
    """

    def __init__(self, windows: pl.DataFrame, starts: np.ndarray, lengths: np.ndarray, launches: np.ndarray) -> None:
        self.x_rows = windows.select(DESIGN).to_numpy()
        self.y_rows = windows["y"].to_numpy()
        self.day_rows = windows["date"].cast(pl.Int64).to_numpy()
        self.starts, self.lengths, self.launches = starts, lengths, launches

    def batch(
        self, begin: int, stop: int, width: int | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Design, outcome, mask, day gaps, and per neighbour: kept, inseparable and its twin among the kept."""
        lengths = self.lengths[begin:stop, None]
        pos = np.arange(int(lengths.max()))[None, :]
        mask = pos < lengths
        rows = self.starts[begin:stop, None] + np.minimum(pos, lengths - 1)
        base = np.where(mask[..., None], self.x_rows[rows], 0.0)
        y = np.where(mask, self.y_rows[rows], 0.0)
        day = self.day_rows[rows]
        gap = np.diff(day, axis=1, prepend=day[:, :1])
        launches = self.launches[begin:stop, :width]
        steps = (day[:, :, None] >= launches[:, None, :]) & mask[..., None]
        ones = steps.sum(axis=1)
        n, post = mask.sum(axis=1)[:, None], base[:, :, _EFFECT].sum(axis=1)[:, None]
        varies = (ones > 0) & (ones < n)
        inseparable = varies & (ones == post)
        kept = varies & ~inseparable
        twin = np.tile(np.arange(launches.shape[1]), (launches.shape[0], 1))
        for j in range(1, launches.shape[1]):
            earlier = kept[:, :j] & (ones[:, :j] == ones[:, j : j + 1])
            twin[:, j] = np.where(earlier.any(axis=1), earlier.argmax(axis=1), j)
            kept[:, j] &= ~earlier.any(axis=1)
        x = np.concatenate([base, steps * kept[:, None, :]], axis=2)
        return x, y, mask, gap, kept, inseparable & ~kept, np.where(varies, twin, -1)


def _fit_windows(windows: pl.DataFrame, nearby: pl.DataFrame) -> pl.DataFrame:
    """Effect, interval, the launches estimated jointly and the confounders per feature from its window."""
    counts = (
        windows.group_by("feature_id", maintain_order=True)
        .agg(
            (pl.col("after") == 0).sum().alias("pre_days_observed"),
            (pl.col("after") > 0).sum().alias("post_days_observed"),
            pl.col("treated").filter(pl.col("after") > 0).mean().alias("_treated_after"),
            pl.len().alias("_n"),
        )
        .with_columns(
            (pl.col("_n").cum_sum() - pl.col("_n")).alias("_start"),
            ((pl.col("pre_days_observed") >= MIN_PRE_DAYS) & (pl.col("post_days_observed") >= MIN_POST_DAYS)).alias(
                "_fit"
            ),
        )
    )
    ranked = nearby.with_columns(pl.int_range(pl.len()).over("feature_id").alias("_j"))
    crowd = ranked.group_by("feature_id").agg(pl.len().alias("_k"))
    candidates = counts.filter(pl.col("_fit")).join(crowd, on="feature_id", how="left")
    crowded = candidates.filter(pl.col("_k") > MAX_NEIGHBOURS)
    fittable = candidates.filter(pl.col("_k").fill_null(0) <= MAX_NEIGHBOURS).sort("_n").with_row_index("_pos")
    most = int(fittable["_k"].max() or 0)
    launches = np.full((fittable.height, most), np.iinfo(np.int64).max // 2)
    placed = ranked.join(fittable.select("feature_id", "_pos"), on="feature_id")
    launches[placed["_pos"].to_numpy(), placed["_j"].to_numpy()] = placed["other_start"].cast(pl.Int64).to_numpy()
    k_counts = fittable["_k"].fill_null(0).to_numpy()
    designs = _Designs(windows, fittable["_start"].to_numpy(), fittable["_n"].to_numpy(), launches)
    effect = np.full(fittable.height, np.nan)
    half_width = np.full(fittable.height, np.nan)
    std_error = np.full(fittable.height, np.nan)
    dof_all = np.full(fittable.height, np.nan)
    correlation = np.zeros((fittable.height, most))
    inseparable_all = np.zeros((fittable.height, most), bool)
    twin_all = np.full((fittable.height, most), -1)

    def fit(begin: int) -> None:
        stop = min(begin + _BATCH, fittable.height)
        width = int(k_counts[begin:stop].max(initial=0))
        x, y, mask, gap, _, inseparable, twin = designs.batch(begin, stop, width)
        fitted = _fit_batch(x, y, mask, gap)
        variance = fitted.variance * fitted.correction
        se = np.sqrt(np.maximum(variance, 0.0))
        effect[begin:stop] = fitted.beta[:, _EFFECT]
        std_error[begin:stop] = se
        dof_all[begin:stop] = fitted.dof
        half_width[begin:stop] = stats.t.ppf(0.5 + LEVEL / 2, fitted.dof) * se
        bread = fitted.bread
        own = bread[:, _EFFECT, _EFFECT]
        steps = slice(len(DESIGN), len(DESIGN) + width)
        joint = bread[:, _EFFECT, steps] / np.sqrt(own[:, None] * np.diagonal(bread, axis1=1, axis2=2)[:, steps])
        rows = np.arange(stop - begin)[:, None]
        correlation[begin:stop, :width] = np.where(twin >= 0, joint[rows, np.maximum(twin, 0)], 0.0)
        inseparable_all[begin:stop, :width] = inseparable
        twin_all[begin:stop, :width] = twin

    # NumPy's matrix products release the GIL, so the batches fit side by side on every core.
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        list(pool.map(fit, range(0, fittable.height, _BATCH)))
    return _fit_frame(
        counts,
        fittable,
        crowded,
        ranked,
        effect,
        half_width,
        std_error,
        dof_all,
        correlation,
        inseparable_all,
        twin_all,
    )


def _fit_frame(
    counts: pl.DataFrame,
    fittable: pl.DataFrame,
    crowded: pl.DataFrame,
    ranked: pl.DataFrame,
    effect: np.ndarray,
    half_width: np.ndarray,
    std_error: np.ndarray,
    dof: np.ndarray,
    correlation: np.ndarray,
    inseparable: np.ndarray,
    twin: np.ndarray,
) -> pl.DataFrame:
    """The per-feature fit as a frame: estimate, interval, neighbours estimated jointly, confounders and why."""
    fitted = fittable.select("feature_id", "_treated_after").with_columns(
        pl.Series("estimate_abs", effect),
        pl.Series("_half", half_width),
        pl.Series("_se_abs", std_error),
        pl.Series("_dof", dof),
    )
    pos, rank = np.nonzero(twin >= 0)
    flags = (
        pl.DataFrame(
            {
                "_pos": pos.astype(np.int64),
                "_j": rank.astype(np.int64),
                "_corr": correlation[pos, rank],
                "_inseparable": inseparable[pos, rank],
            }
        )
        .join(fittable.select(pl.col("_pos").cast(pl.Int64), "feature_id"), on="_pos")
        .join(ranked.select("feature_id", pl.col("_j").cast(pl.Int64), "other_id"), on=["feature_id", "_j"])
        .sort("feature_id", "_j")
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
    too_many = (
        crowded.join(ranked, on="feature_id")
        .group_by("feature_id", maintain_order=True)
        .agg(
            pl.col("other_id").alias("confounded_by"),
            pl.format(
                "{} other launches on this metric inside its span, more than the {} that can be estimated together",
                pl.len(),
                pl.lit(MAX_NEIGHBOURS),
            ).alias("confounded_reason"),
        )
        .with_columns(pl.lit([], dtype=pl.List(pl.String)).alias("estimated_with"))
    )
    level = pl.col("_treated_after") - pl.col("estimate_abs")
    usable_level = level.abs() > 1e-12
    rel = {
        "estimate_rel": pl.col("estimate_abs"),
        "ci_low_rel": pl.col("ci_low_abs"),
        "ci_high_rel": pl.col("ci_high_abs"),
    }
    return (
        counts.select("feature_id", "pre_days_observed", "post_days_observed")
        .join(fitted, on="feature_id", how="left")
        .join(pl.concat([joint, too_many.select(joint.columns)]), on="feature_id", how="left")
        .with_columns(
            (pl.col("estimate_abs") - pl.col("_half")).alias("ci_low_abs"),
            (pl.col("estimate_abs") + pl.col("_half")).alias("ci_high_abs"),
            pl.when(usable_level).then(level).alias("baseline_level"),
        )
        .with_columns([pl.when(usable_level).then(expr / level.abs()).alias(name) for name, expr in rel.items()])
        .drop("_treated_after", "_half")
    )


class _Fit(NamedTuple):
    """One batch's fit: coefficients, the effect's HAC variance and its white-noise correction, dof, ρ, bread."""

    beta: np.ndarray
    variance: np.ndarray
    correction: np.ndarray
    dof: np.ndarray
    rho: np.ndarray
    bread: np.ndarray


def _fit_batch(x: np.ndarray, y: np.ndarray, mask: np.ndarray, gap: np.ndarray) -> _Fit:
    """Prais–Winsten segmented regression with Newey–West errors for a batch of zero-padded series.

    ``x`` is (series, days, columns), ``y``, ``mask`` and ``gap`` (series, days); ``gap`` is the
    number of days since the previous observed row. Each series' AR(1) coefficient is estimated
    from its OLS residuals on consecutive days, corrected for its small-sample bias ((1 + 3ρ)/n as
    for a mean, plus 1/n per regressor), and the series is quasi-differenced with it (Prais–Winsten,
    ρ^g across a gap of g days), so the HAC estimator only has to mop up what autocorrelation is
    left. Degrees of freedom are the HAC estimate's equivalent ones, 3n / (2(L + 1)) for the
    Bartlett kernel, at most n − k. The effect's variance is ``variance * correction``.
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
    beta, variance, dof, correction, bread = _ols_hac(x_white, y_white, mask)
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
    bread = np.linalg.inv(xtx)
    return (bread @ (xt @ y[..., None]))[..., 0], bread


def _ols_hac(
    x: np.ndarray, y: np.ndarray, mask: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """OLS with the effect's Newey–West variance for a batch of zero-padded series.

    Matches the effect's entry of statsmodels' ``OLS(y, x).fit(cov_type="HAC", cov_kwds={"maxlags":
    L, "use_correction": True}).cov_params()`` series by series. A column that is zero throughout a
    series is left out of that series' model (its coefficient is 0). The lag count per series follows
    Newey and West (1994): floor(4·(n/100)^(2/9)), with Bartlett weights. Only the effect's variance
    is needed, so the sandwich b'·Ω·b collapses onto one series per feature, z_t = (x_t·b)·e_t with b
    the effect's row of (X'X)⁻¹: Σ_|l|≤L w_l·Σ_t z_t·z_{t−l}. Returns coefficients, the effect's
    variance (with the n/(n−k) small-sample correction), residual degrees of freedom, the white-noise
    correction of that variance, and (X'X)⁻¹.
    """
    n = mask.sum(axis=1)
    present = (x != 0).any(axis=1)
    k = present.sum(axis=1)
    beta, bread = _ols(x, y, present)
    resid = np.where(mask, y - (x @ beta[..., None])[..., 0], 0.0)
    influence = (x @ bread[:, :, _EFFECT : _EFFECT + 1])[..., 0]
    lags = _lags(n)
    kernel = _bartlett(lags)
    dof = np.maximum(n - k, 1)
    variance = _long_run(influence * resid, lags, kernel) * (n / dof)
    return beta, variance, dof, _white_noise_correction(x, bread, influence, lags, kernel, n, dof), bread


def _bartlett(lags: np.ndarray) -> np.ndarray:
    """Bartlett weights per lag count (rows) and lag (columns)."""
    most = int(lags.max(initial=0))
    kernel = np.zeros((most + 1, most + 1))
    for count in np.unique(lags):
        kernel[count, : count + 1] = weights_bartlett(int(count))
    return kernel


def _long_run(z: np.ndarray, lags: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Σ_t z_t² + 2·Σ_l w_l·Σ_t z_t·z_{t−l} per series: the Newey–West long-run variance of a sum."""
    total = (z * z).sum(axis=1)
    for lag in range(1, kernel.shape[0]):
        total += 2.0 * kernel[lags, lag] * (z[:, lag:] * z[:, :-lag]).sum(axis=1)
    return total


def _white_noise_correction(
    x: np.ndarray,
    bread: np.ndarray,
    influence: np.ndarray,
    lags: np.ndarray,
    kernel: np.ndarray,
    n: np.ndarray,
    dof: np.ndarray,
) -> np.ndarray:
    """Factor making the effect's HAC variance unbiased when the errors are white noise.

    The HAC variance is a quadratic form in the residuals; with white-noise errors its expectation
    is σ²·(B_cc − Σ_|t−s|≤L w_|t−s|·a_t·a_s·h_ts), where a_t is the effect's influence of day t
    and h the hat matrix, while the true variance is σ²·B_cc. The n/(n−k) factor corrects only
    the lag-0 part; with a persistent regressor such as a step, the lag terms matter as much.
    Returned relative to n/(n−k), so multiplying the variance above by it gives the corrected one.
    """
    projected = x @ bread
    # Row-by-row dot products as einsum: no (series, days, columns) temporary per lag.
    shrink = (influence * influence * np.einsum("fdk,fdk->fd", projected, x)).sum(axis=1)
    for lag in range(1, kernel.shape[0]):
        hat = np.einsum("fdk,fdk->fd", projected[:, lag:], x[:, :-lag])
        shrink += 2.0 * kernel[lags, lag] * (influence[:, lag:] * influence[:, :-lag] * hat).sum(axis=1)
    variance = bread[:, _EFFECT, _EFFECT]
    return variance / np.maximum(variance - shrink, 1e-12 * variance) * dof / n


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

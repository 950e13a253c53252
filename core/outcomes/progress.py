"""The outcome tree: outcome metrics, how far each is from its target, and the work under it.

Progress to target is (current − baseline) / (target − baseline), where current is the mean of
the last ``CURRENT_DAYS`` days of the metric (segment 'all'). The projected date is where the
straight line fitted to the last ``TREND_DAYS`` days reaches the target; there is none when
the line moves away from it.
"""

from __future__ import annotations

from datetime import date

import polars as pl

CURRENT_DAYS = 28
TREND_DAYS = 90
OPEN_STATUSES = ("planned", "in_progress")


def current_levels(metric_observations: pl.LazyFrame, as_of: date, days: int = CURRENT_DAYS) -> pl.LazyFrame:
    """Per metric, the mean of segment 'all' over the ``days`` days up to and including ``as_of``."""
    return (
        _recent(metric_observations, as_of, days)
        .group_by("metric_id")
        .agg(pl.col("value").mean().alias("current"), pl.len().alias("current_days_observed"))
    )


def outcome_progress(metrics: pl.LazyFrame, metric_observations: pl.LazyFrame, as_of: date) -> pl.LazyFrame:
    """Per outcome metric: current level, progress to target, trend, projected date and status.

    ``status`` is one of: no target (baseline or target missing), no data, reached, on track
    (projected by the target date, or no target date), late, moving away.
    """
    days = (pl.col("date") - pl.lit(as_of)).dt.total_days().cast(pl.Float64)
    trend = (
        _recent(metric_observations, as_of, TREND_DAYS)
        .with_columns(days.alias("x"))
        .group_by("metric_id")
        .agg(
            (pl.cov("x", "value", ddof=0) / pl.col("x").var(ddof=0)).alias("slope_per_day"),
            pl.col("x").mean().alias("_x_bar"),
            pl.col("value").mean().alias("_y_bar"),
        )
        .with_columns((pl.col("_y_bar") - pl.col("slope_per_day") * pl.col("_x_bar")).alias("trend_today"))
    )
    gap = pl.col("target") - pl.col("trend_today")
    toward = (pl.col("slope_per_day") * gap > 0) | (gap == 0)
    days_needed = (gap / pl.col("slope_per_day")).fill_nan(0.0).clip(lower_bound=0.0).ceil().cast(pl.Int64)
    has_target = (
        pl.col("target").is_not_null() & pl.col("baseline").is_not_null() & (pl.col("target") != pl.col("baseline"))
    )
    progress = (pl.col("current") - pl.col("baseline")) / (pl.col("target") - pl.col("baseline"))
    return (
        metrics.filter(pl.col("level") == "outcome")
        .select("metric_id", "name", "unit", "direction", "baseline", "target", "target_date")
        .join(current_levels(metric_observations, as_of), on="metric_id", how="left")
        .join(trend, on="metric_id", how="left")
        .with_columns(pl.when(has_target).then(progress).alias("progress"))
        .with_columns(
            pl.when(has_target & toward & pl.col("slope_per_day").is_not_null())
            .then(pl.lit(as_of) + pl.duration(days=days_needed))
            .cast(pl.Date)
            .alias("projected_date")
        )
        .with_columns(
            pl.when(~has_target)
            .then(pl.lit("no target"))
            .when(pl.col("current").is_null())
            .then(pl.lit("no data"))
            .when(pl.col("progress") >= 1)
            .then(pl.lit("reached"))
            .when(pl.col("projected_date").is_null())
            .then(pl.lit("moving away"))
            .when(pl.col("target_date").is_null() | (pl.col("projected_date") <= pl.col("target_date")))
            .then(pl.lit("on track"))
            .otherwise(pl.lit("late"))
            .alias("status")
        )
        .select(
            "metric_id",
            "name",
            "unit",
            "direction",
            "baseline",
            "target",
            "target_date",
            "current",
            "progress",
            "slope_per_day",
            "trend_today",
            "projected_date",
            "status",
        )
        .sort("metric_id")
    )


def outcome_tree(
    metrics: pl.LazyFrame,
    capabilities: pl.LazyFrame,
    features: pl.LazyFrame,
    work_items: pl.LazyFrame,
    hypotheses: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """One row per outcome metric × capability × feature, with the feature's work-item progress.

    A feature sits under its capability's metric; a feature without a capability sits directly
    under the metric its hypothesis names (capability empty), when ``hypotheses`` is given.
    Outcomes and capabilities with nothing under them keep a row with empty feature columns.
    Work items count as done once resolved.
    """
    outcomes = metrics.filter(pl.col("level") == "outcome").select("metric_id", pl.col("name").alias("metric_name"))
    caps = capabilities.select("capability_id", pl.col("name").alias("capability_name"), "metric_id")
    feats = features.select("feature_id", pl.col("name").alias("feature_name"), "team_id", "capability_id", "status")
    by_capability = caps.join(feats, on="capability_id", how="left")
    placed = [by_capability]
    if hypotheses is not None:
        direct = (
            feats.filter(pl.col("capability_id").is_null())
            .join(hypotheses.select("feature_id", "metric_id"), on="feature_id", how="inner")
            .with_columns(pl.lit(None, pl.String).alias("capability_name"))
        )
        placed.append(direct.select(by_capability.collect_schema().names()))
    work = work_items.group_by("feature_id").agg(
        pl.len().cast(pl.Int64).alias("work_items"),
        pl.col("resolved_at").is_not_null().sum().cast(pl.Int64).alias("work_items_done"),
    )
    return (
        outcomes.join(pl.concat(placed), on="metric_id", how="left")
        .join(work, on="feature_id", how="left")
        .with_columns(
            pl.when(pl.col("feature_id").is_not_null()).then(pl.col(c).fill_null(0)).alias(c)
            for c in ("work_items", "work_items_done")
        )
        .with_columns(
            pl.col("status").is_in(OPEN_STATUSES).alias("is_open"),
            pl.when(pl.col("work_items") > 0)
            .then(pl.col("work_items_done") / pl.col("work_items"))
            .alias("work_progress"),
        )
        .select(
            "metric_id",
            "metric_name",
            "capability_id",
            "capability_name",
            "feature_id",
            "feature_name",
            "team_id",
            "status",
            "is_open",
            "work_items",
            "work_items_done",
            "work_progress",
        )
        .sort("metric_id", "capability_id", "feature_id", nulls_last=True)
    )


def open_features(tree: pl.LazyFrame) -> pl.LazyFrame:
    """Per outcome metric: features under it, how many are still open, and which."""
    return (
        tree.group_by("metric_id")
        .agg(
            pl.col("feature_id").drop_nulls().n_unique().alias("features"),
            pl.col("feature_id").filter(pl.col("is_open")).unique().sort().alias("open_feature_ids"),
        )
        .with_columns(pl.col("open_feature_ids").list.len().alias("open_features"))
        .select("metric_id", "features", "open_features", "open_feature_ids")
        .sort("metric_id")
    )


def _recent(metric_observations: pl.LazyFrame, as_of: date, days: int) -> pl.LazyFrame:
    start = pl.lit(as_of) - pl.duration(days=days - 1)
    return metric_observations.filter(
        (pl.col("segment") == "all") & (pl.col("date") >= start) & (pl.col("date") <= pl.lit(as_of))
    )

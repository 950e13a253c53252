"""The small series behind one vanity flag, for its chart on the flags page."""

from __future__ import annotations

import json
from collections.abc import Mapping

import polars as pl

from core.flags.rollups import PRS_MERGED


def flag_chart(flag: Mapping[str, object], periods: pl.LazyFrame, weekly: pl.LazyFrame) -> pl.LazyFrame:
    """The small series behind one flag: period (a date), measure (a label), value, role ('activity' or 'value').

    Window flags show every window of the team (``team_periods``, dated by the window's last day) up
    to the flag's end: the measures it compares and the value beside them. A decoupled metric shows
    the rising series and the outcome it was compared with, week by week over the window; a
    leadership-view flag shows the metric's last 26 weekly levels.
    """
    detector = str(flag["detector"])
    team, start, end = flag.get("team_id"), flag["window_start"], flag["window_end"]
    if detector in _CHART_MEASURES:
        measures = _CHART_MEASURES[detector]
        rows = periods.filter(pl.col("period_end") <= end)
        rows = rows.filter(pl.col("team_id").is_null() if team is None else pl.col("team_id") == team)
        return (
            rows.select(
                pl.col("period_end").cast(pl.Date).alias("period"), *[pl.col(m).cast(pl.Float64) for m in measures]
            )
            .unpivot(index="period", variable_name="column", value_name="value")
            .select(
                "period",
                pl.col("column").replace_strict(_MEASURE_LABELS, return_dtype=pl.String).alias("measure"),
                "value",
                pl.col("column").replace_strict(measures, return_dtype=pl.String).alias("role"),
            )
            .sort("measure", "period")
        )
    series = str(flag.get("metric_id") or PRS_MERGED)
    is_series = pl.col("series_id") == series
    if team is not None:
        is_series = is_series & (pl.col("team_id") == team)
    if detector == "decoupled_metric":
        outcome = json.loads(str(flag["evidence"])).get("outcome_metric_id")
        shown = weekly.filter(pl.col("week").is_between(start, end), is_series | (pl.col("series_id") == outcome))
    else:
        shown = weekly.filter(is_series, pl.col("week") <= end).sort("week").tail(26)
    return (
        shown.select(
            pl.col("week").cast(pl.Date).alias("period"),
            pl.col("label").alias("measure"),
            "value",
            pl.when(pl.col("kind") == "outcome").then(pl.lit("value")).otherwise(pl.lit("activity")).alias("role"),
        )
        .unique(["period", "measure"], keep="first")
        .sort("measure", "period")
    )


_MEASURE_LABELS: dict[str, str] = {
    "prs_merged": "PRs merged",
    "prs_unlinked": "PRs merged without a feature",
    "story_points_resolved": "story points resolved",
    "deployments": "production deployments",
    "features_delivered": "features delivered",
    "features_confirmed": "features confirmed",
    "realised_value": "realised value",
    "cost": "cost",
    "cost_unlinked": "cost without a feature",
    "points_per_item": "story points per item",
    "cycle_days_median": "median cycle time (days)",
    "pr_size_median": "median PR size (lines)",
    "prs_per_feature": "PRs per delivered feature",
    "agent_prs": "agent PRs",
    "agent_merged_share": "share of agent PRs merged",
    "agent_linked_share": "share of agent PRs linked",
}
"""Labels of the ``team_periods`` columns a flag chart shows."""

_CHART_MEASURES: dict[str, dict[str, str]] = {
    "activity_up_value_flat": {
        "prs_merged": "activity",
        "story_points_resolved": "activity",
        "deployments": "activity",
        "features_confirmed": "value",
        "realised_value": "value",
    },
    "unlinked_work": {"prs_merged": "activity", "prs_unlinked": "activity", "cost": "value", "cost_unlinked": "value"},
    "story_point_inflation": {
        "points_per_item": "activity",
        "cycle_days_median": "value",
        "pr_size_median": "value",
    },
    "pr_splitting": {"prs_per_feature": "activity", "pr_size_median": "activity", "features_delivered": "value"},
    "agent_churn": {"agent_prs": "activity", "agent_merged_share": "value", "agent_linked_share": "value"},
}

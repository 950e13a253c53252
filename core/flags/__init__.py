"""Vanity flags: activity that looks like progress while the value it should create does not move.

Stage 1 rolls the fact tables up to one row per team × window of calendar quarters (``team_periods``) and
one row per series × week (``weekly_series``); ``outcomes_to_watch`` names the outcome metric each
team's features aim at. Stage 2 is one detector per pattern, each a pure function of those small
roll-ups returning flags (``FLAG_COLUMNS``):

1. ``activity_up_value_flat`` — PRs merged, story points resolved or deployments up on the
   previous window (beyond count noise) while features confirmed and realised value did not rise.
2. ``unlinked_work`` — the share of merged PRs, or of cost, linked to no feature in a window.
3. ``story_point_inflation`` — points per work item up while cycle time and PR size held steady.
4. ``pr_splitting`` — more PRs per delivered feature and smaller PRs; ``agent_churn`` — agent PRs
   rising while fewer of them are merged or linked to a feature.
5. ``leadership_vanity`` — an activity-level metric configured on an executive view or an OKR.
6. ``decoupled_metric`` — an activity or output series rising for weeks (Kendall trend test)
   while no outcome metric of the team's features follows it at any lag (cross-correlation).

Every flag carries its window, the exact numbers behind it (``evidence``, JSON), a sentence with
those numbers and the outcome metric to watch instead. A flag's id is built from the detector,
its subject and its window, so an acknowledgement stays attached to it across recomputes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from math import sqrt
from typing import ClassVar, TypeVar

import polars as pl
from scipy import stats

from core.costs import pull_request_features
from core.delivery.dora import PRODUCTION_ENVIRONMENTS
from core.delivery.throughput import daily_throughput
from core.model.records import ACK_SCHEMA


@dataclass(frozen=True)
class FlagSettings:
    """The thresholds of every detector; changes are relative (0.30 means 30%) unless stated."""

    GROUP: ClassVar[str] = "flags"
    """The name these settings are kept under in the workspace."""

    window_quarters: int = 2
    activity_rise: float = 0.30
    activity_alpha: float = 0.01
    min_activity: int = 20
    unlinked_share: float = 0.25
    min_prs: int = 20
    points_inflation: float = 0.25
    steady_band: float = 0.10
    min_pointed_items: int = 10
    prs_per_feature_rise: float = 0.30
    pr_size_drop: float = 0.20
    min_features: int = 3
    agent_pr_rise: float = 0.30
    agent_share_drop: float = 0.10
    min_agent_prs: int = 20
    executive_view_metrics: tuple[str, ...] = ()
    rising_weeks: int = 12
    trend_alpha: float = 0.01
    min_trend_rise: float = 0.20
    max_lag_weeks: int = 8
    max_abs_correlation: float = 0.30

    def __post_init__(self) -> None:
        if self.window_quarters < 1:
            raise ValueError("window_quarters must be at least 1")
        if self.rising_weeks < 4:
            raise ValueError("rising_weeks must be at least 4 for a trend test")
        if not 0.0 < self.trend_alpha < 0.5:
            raise ValueError("trend_alpha must be between 0 and 0.5")
        if self.max_lag_weeks < 0:
            raise ValueError("max_lag_weeks cannot be negative")


DEFAULT_FLAG_SETTINGS = FlagSettings()

FLAG_DEFAULTS_TEXT: dict[str, str] = {
    "window_quarters": "Detectors 1–4 compare windows of 2 calendar quarters (a half-year) with the 2 quarters "
    "before, re-evaluated at the end of every quarter; 1 compares plain quarter over quarter.",
    "activity_rise": "Activity up, value flat: a team's PRs merged, story points resolved or production "
    "deployments rose by 30% or more over the previous window while its features confirmed and realised value "
    "did not rise ...",
    "activity_alpha": "... and the rise is beyond noise: a one-sided z-test at 1% (Poisson for PRs and "
    "deployments; story points as lumps of whole features). The same test guards the rise in points per item "
    "(detector 3) and in agent PRs (detector 4).",
    "min_activity": "Activity up, value flat: an activity measure is compared only when the previous window "
    "had at least 20 of it (commits are approximated by PRs merged).",
    "unlinked_share": "Unlinked work: more than 25% of a team's merged PRs, or of its cost, in a window is not "
    "linked to any feature (PRs link through their feature, work-item key, or a key in title or branch).",
    "min_prs": "Unlinked work: the PR share is judged only for a window with at least 20 merged PRs.",
    "points_inflation": "Story-point inflation: story points per resolved work item rose by 25% or more over the "
    "previous window ...",
    "steady_band": "... while median work-item cycle time and median PR size each stayed within ±10%.",
    "min_pointed_items": "Story-point inflation: each window needs at least 10 resolved, pointed work items of "
    "features (points per item is taken over planned work, so more small bugs do not read as deflation).",
    "prs_per_feature_rise": "PR splitting: merged PRs per delivered feature rose by 30% or more ...",
    "pr_size_drop": "... and the median PR size (lines added + deleted) fell by 20% or more.",
    "min_features": "PR splitting: each window needs at least 3 delivered features.",
    "agent_pr_rise": "Agent churn: PRs opened by AI agents rose by 30% or more over the previous window ...",
    "agent_share_drop": "... while the share of them merged (of those merged or closed) or linked to a feature "
    "fell by 10 percentage points or more.",
    "min_agent_prs": "Agent churn: the previous window needs at least 20 agent PRs.",
    "executive_view_metrics": "Leadership-view vanity: every activity-level metric listed as shown on an "
    "executive view or an OKR is flagged (none listed by default).",
    "rising_weeks": "Decoupled metric: an activity or output series is tested over the last 12 full weeks of "
    "each quarter ...",
    "trend_alpha": "... and counts as rising when a one-sided Kendall trend test is significant at 1% ...",
    "min_trend_rise": "... and its Theil–Sen trend over the window adds at least 20% of its median level ...",
    "max_lag_weeks": "... while no outcome metric of the team's features follows it at any lag of 0–8 weeks ...",
    "max_abs_correlation": "... that is, the best cross-correlation at those lags stays below 0.30 in absolute value.",
}
"""Each default in words, for the settings panel of the flags page."""

DETECTORS: dict[str, str] = {
    "activity_up_value_flat": "Activity up, value flat",
    "unlinked_work": "Unlinked work",
    "story_point_inflation": "Story-point inflation",
    "pr_splitting": "PR splitting",
    "agent_churn": "Agent churn",
    "leadership_vanity": "Activity metric on a leadership view",
    "decoupled_metric": "Metric decoupled from outcomes",
}
"""Every detector id with its label."""

FLAG_SCHEMA = pl.Schema(
    {
        "flag_id": pl.String,
        "detector": pl.String,
        "severity": pl.String,
        "severity_score": pl.Float64,
        "team_id": pl.String,
        "metric_id": pl.String,
        "window_start": pl.Date,
        "window_end": pl.Date,
        "evidence": pl.String,
        "explanation": pl.String,
        "suggestion": pl.String,
        "detected_at": pl.Date,
    }
)
"""The columns of every detector's output; ``evidence`` is a JSON object of the numbers behind the flag."""

FLAG_COLUMNS = tuple(FLAG_SCHEMA.names())

SEVERITY_BANDS: tuple[tuple[str, float], ...] = (("high", 2.0), ("medium", 1.5), ("low", 0.0))
"""A flag's severity from its score: how far past its threshold the evidence lies (1.0 = at it)."""

_ACTIVITY = {
    "prs_merged": "PRs merged",
    "story_points_resolved": "story points resolved",
    "deployments": "production deployments",
}
_VARIANCE = {"prs_merged": "prs_merged", "story_points_resolved": "story_points_var", "deployments": "deployments"}
"""The column holding each activity total's variance under chance alone (a Poisson count is its own variance)."""
_PRS_MERGED = "prs_merged"
_FALLBACK_WATCH = "features confirmed per quarter (business value throughput)"

Frame = TypeVar("Frame", pl.DataFrame, pl.LazyFrame)


# ---------------------------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------------------------


def detect_all(
    frames: Mapping[str, pl.LazyFrame],
    verdicts: pl.LazyFrame,
    cost_lines: pl.LazyFrame | None = None,
    settings: FlagSettings = DEFAULT_FLAG_SETTINGS,
    as_of: date | None = None,
) -> pl.DataFrame:
    """Every vanity flag as of ``as_of`` (default: today), newest and most severe first.

    ``frames`` holds the canonical entities by name (teams, features, hypotheses, work_items,
    pull_requests, deployments, metrics, metric_observations); ``verdicts`` has feature_id,
    verdict and, when known, metric_id and estimate_abs (or realised_value); ``cost_lines`` are
    attributed cost lines (occurred_at, team_id, feature_id — null when unattributed — and amount).
    """
    as_of = as_of or date.today()
    # The roll-ups are small (a row per team window, per series week, per team) but costly to build
    # from the fact tables, and each detector reads them once or twice (``_period_pairs`` joins the
    # windows to themselves). Collected once together, the fact tables are scanned once for all of
    # them, not once per detector.
    periods, weekly, watch = (
        frame.lazy()
        for frame in pl.collect_all(
            [
                team_periods(frames, verdicts, cost_lines, as_of, settings.window_quarters),
                weekly_series(frames, as_of),
                outcomes_to_watch(frames["features"], frames["hypotheses"], frames["metrics"]),
            ]
        )
    )
    teams = frames["teams"]
    flags = [
        activity_up_value_flat(periods, teams, watch, settings),
        unlinked_work(periods, teams, watch, settings),
        story_point_inflation(periods, teams, watch, settings),
        pr_splitting(periods, teams, watch, settings),
        agent_churn(periods, teams, watch, settings),
        leadership_vanity(frames["metrics"], watch, settings, as_of),
        decoupled_metric(weekly, teams, watch, settings, as_of),
    ]
    return pl.concat(pl.collect_all(flags)).pipe(sort_flags)


def sort_flags(flags: Frame) -> Frame:
    """``flags`` newest first, then most severe, then by id (a stable order)."""
    return flags.sort(["detected_at", "severity_score", "flag_id"], descending=[True, True, False])


def apply_acknowledgements(flags: Frame, acks: Frame) -> Frame:
    """``flags`` with ``acknowledged`` (bool) and the latest acknowledgement of each: by, at and comment."""
    latest = acks.select(ACK_SCHEMA.names()).sort("acknowledged_at").unique("flag_id", keep="last")
    return flags.join(latest, on="flag_id", how="left").with_columns(
        pl.col("acknowledged_at").is_not_null().alias("acknowledged")
    )


def acknowledge(
    acks: pl.DataFrame, flag_id: str, acknowledged_by: str, comment: str, acknowledged_at: datetime
) -> pl.DataFrame:
    """``acks`` with one more acknowledgement; earlier ones of the same flag stay as its history."""
    if not flag_id.strip():
        raise ValueError("Choose a flag to acknowledge.")
    if not acknowledged_by.strip():
        raise ValueError("An acknowledgement needs the name of who made it.")
    row = pl.DataFrame(
        [
            {
                "flag_id": flag_id,
                "acknowledged_by": acknowledged_by.strip(),
                "acknowledged_at": acknowledged_at,
                "comment": comment.strip(),
            }
        ],
        schema=ACK_SCHEMA,
    )
    return pl.concat([acks.select(ACK_SCHEMA.names()).cast(dict(ACK_SCHEMA)), row])


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
            rows.select(pl.col("period_end").alias("period"), *[pl.col(m).cast(pl.Float64) for m in measures])
            .unpivot(index="period", variable_name="column", value_name="value")
            .select(
                "period",
                pl.col("column").replace_strict(_MEASURE_LABELS, return_dtype=pl.String).alias("measure"),
                "value",
                pl.col("column").replace_strict(measures, return_dtype=pl.String).alias("role"),
            )
            .sort("measure", "period")
        )
    series = str(flag.get("metric_id") or _PRS_MERGED)
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
            pl.col("week").alias("period"),
            pl.col("label").alias("measure"),
            "value",
            pl.when(pl.col("kind") == "outcome").then(pl.lit("value")).otherwise(pl.lit("activity")).alias("role"),
        )
        .unique(["period", "measure"], keep="first")
        .sort("measure", "period")
    )


# ---------------------------------------------------------------------------------------------
# Stage 1: team × quarter and series × week roll-ups
# ---------------------------------------------------------------------------------------------


def team_periods(
    frames: Mapping[str, pl.LazyFrame],
    verdicts: pl.LazyFrame,
    cost_lines: pl.LazyFrame | None,
    as_of: date,
    quarters: int = DEFAULT_FLAG_SETTINGS.window_quarters,
) -> pl.LazyFrame:
    """Per team and window of ``quarters`` calendar quarters, the measures the detectors compare.

    A window is evaluated at the end of every complete quarter (so with 2 quarters, windows
    overlap by one); it counts when the data covers it whole: it starts on or after the first
    week with any PR, work item or deployment, and ends before ``as_of``. Columns: team_id,
    period_start, period_end, prs_merged, prs_unlinked, features_delivered, features_confirmed,
    realised_value, story_points_resolved, story_points_var, pointed_items, points_per_item,
    points_mean_var, cycle_days_median, pr_size_median, deployments, prs_per_feature, agent_prs,
    agent_merged_share, agent_linked_share, cost, cost_unlinked. Work arrives in lumps (a
    feature's items close together; an item without a feature is its own lump), so the chance
    variances are taken over lumps: ``story_points_var`` of the points total (Σ per lump of its
    points squared) and ``points_mean_var`` of points per item (cluster-robust: Σ per lump of its
    summed deviations from the mean, squared, over the item count squared). ``pointed_items`` and
    ``points_per_item`` cover the pointed items of features (planned work), so a shift between
    feature work and loose bugs and chores is not read as inflation.
    """
    features, prs, items = frames["features"], frames["pull_requests"], frames["work_items"]
    deployments, metrics = frames["deployments"], frames["metrics"]
    judged = verdicts.select("feature_id", "verdict")
    daily = daily_throughput(features, prs, judged, realised_value(verdicts, metrics))
    by = ["team_id", "period_last"]
    throughput = (
        _in_windows(daily, pl.col("day"), quarters)
        .group_by(by)
        .agg(
            pl.col("prs_merged").sum().cast(pl.Int64),
            pl.col("features_delivered").sum().cast(pl.Int64),
            pl.col("features_confirmed").sum().cast(pl.Int64),
            pl.col("realised_value").sum(),
        )
    )
    pr_groups = _pull_request_groups(prs, items, features)
    merged = (  # PRs never merged fall in no window (period_last null) and find no team window
        _in_windows(pr_groups, pl.col("merged_quarter"), quarters)
        .group_by(by)
        .agg(pl.col("prs").filter(~pl.col("linked")).sum().cast(pl.Int64).alias("prs_unlinked"))
    )
    sized = prs.filter(pl.col("merged_at").is_not_null(), pl.col("additions").is_not_null()).select(
        "team_id", "merged_at", (pl.col("additions") + pl.col("deletions").fill_null(0)).alias("size")
    )
    sizes = (
        _in_windows(sized, pl.col("merged_at").dt.date(), quarters)
        .group_by(by)
        .agg(pl.col("size").median().alias("pr_size_median"))
    )
    settled = _agent_prs(pl.col("state").is_in(["merged", "closed"]))
    agents = (
        _in_windows(pr_groups, pl.col("created_quarter"), quarters)
        .group_by(by)
        .agg(
            _agent_prs().cast(pl.Int64).alias("agent_prs"),
            pl.when(settled > 0).then(_agent_prs(pl.col("state") == "merged") / settled).alias("agent_merged_share"),
            pl.when(_agent_prs() > 0).then(_agent_prs(pl.col("linked")) / _agent_prs()).alias("agent_linked_share"),
        )
    )
    feature_team = features.select("feature_id", pl.col("team_id").alias("feature_team"))
    resolved = _in_windows(
        items.filter(pl.col("resolved_at").is_not_null())
        .join(feature_team, on="feature_id", how="left")
        .with_columns(pl.coalesce("team_id", "feature_team").alias("team_id")),
        pl.col("resolved_at").dt.date(),
        quarters,
    )
    planned = pl.when(pl.col("feature_id").is_not_null()).then(pl.col("story_points"))
    deviation = planned - pl.col("__window_mean")
    lumps = (
        resolved.with_columns(planned.mean().over(by).alias("__window_mean"))
        .group_by(*by, pl.coalesce("feature_id", "work_item_key").alias("lump"))
        .agg(
            pl.col("story_points").sum().alias("points"),
            deviation.sum().alias("deviation"),
            planned.count().alias("items"),
        )
        .group_by(by)
        .agg(
            (pl.col("points") ** 2).sum().alias("story_points_var"),
            ((pl.col("deviation") ** 2).sum() / pl.col("items").sum() ** 2).alias("points_mean_var"),
        )
    )
    resolved = resolved.group_by(by).agg(
        pl.col("story_points").sum().alias("story_points_resolved"),
        planned.count().cast(pl.Int64).alias("pointed_items"),
        planned.mean().alias("points_per_item"),
        ((pl.col("resolved_at") - pl.col("started_at")).dt.total_seconds() / 86_400)
        .median()
        .alias("cycle_days_median"),
    )
    shipped = (
        _in_windows(
            deployments.filter(pl.col("environment").str.to_lowercase().is_in(list(PRODUCTION_ENVIRONMENTS))),
            pl.col("finished_at").dt.date(),
            quarters,
        )
        .group_by(by)
        .agg(pl.len().cast(pl.Int64).alias("deployments"))
    )
    prs_of_feature = pr_groups.group_by(pl.col("linked_feature").alias("feature_id")).agg(
        pl.col("prs")
        .filter(pl.col("merged_quarter").is_not_null())
        .sum()
        .cast(pl.get_index_type())
        .alias("feature_prs")
    )
    per_feature = (
        _in_windows(
            features.filter(pl.col("status") == "delivered", pl.col("delivered_at").is_not_null()).join(
                prs_of_feature, on="feature_id", how="left"
            ),
            pl.col("delivered_at").dt.date(),
            quarters,
        )
        .group_by(by)
        .agg(pl.col("feature_prs").fill_null(0).mean().alias("prs_per_feature"))
    )
    parts = [throughput, merged, sizes, agents, resolved, lumps, shipped, per_feature]
    if cost_lines is not None:
        # Cost lines can run to millions: summed per team and quarter first, each window adds up its quarters.
        quarterly = (
            cost_lines.filter(pl.col("amount").is_not_null())
            .group_by("team_id", pl.col("occurred_at").dt.date().dt.truncate("1q").alias("quarter"))
            .agg(
                pl.col("amount").sum().alias("cost"),
                pl.col("amount").filter(pl.col("feature_id").is_null()).sum().alias("cost_unlinked"),
            )
        )
        parts.append(
            _in_windows(quarterly, pl.col("quarter"), quarters)
            .group_by(by)
            .agg(pl.col("cost").sum(), pl.col("cost_unlinked").sum())
        )
    grid = _window_grid(frames, as_of, quarters)
    for part in parts:
        grid = grid.join(part, on=by, how="left", nulls_equal=True)
    counts = ["prs_merged", "prs_unlinked", "features_delivered", "features_confirmed", "agent_prs", "pointed_items"]
    counts += ["deployments"]
    return grid.with_columns(
        *[pl.col(c).fill_null(0) for c in counts],
        *[pl.col(c).fill_null(0.0) for c in ("story_points_resolved", "story_points_var", "realised_value")],
        *([] if cost_lines is not None else [pl.lit(None, pl.Float64).alias(c) for c in ("cost", "cost_unlinked")]),
    ).select(
        "team_id",
        "period_start",
        "period_end",
        "prs_merged",
        "prs_unlinked",
        "features_delivered",
        "features_confirmed",
        "realised_value",
        "story_points_resolved",
        "story_points_var",
        "pointed_items",
        "points_per_item",
        "points_mean_var",
        "cycle_days_median",
        "pr_size_median",
        "deployments",
        "prs_per_feature",
        "agent_prs",
        "agent_merged_share",
        "agent_linked_share",
        "cost",
        "cost_unlinked",
    )


def realised_value(verdicts: pl.LazyFrame, metrics: pl.LazyFrame) -> pl.LazyFrame:
    """Per confirmed feature, the money its measured effect is worth: feature_id, realised_value.

    Taken from the verdicts' own ``realised_value`` when they carry one; else the absolute
    effect × the metric's money value per unit, signed so an improvement in the metric's
    direction is positive. Features without a money value are left out.
    """
    names = verdicts.collect_schema().names()
    confirmed = verdicts.filter(pl.col("verdict") == "confirmed")
    if "realised_value" in names:
        return confirmed.select("feature_id", pl.col("realised_value").cast(pl.Float64)).drop_nulls()
    if "estimate_abs" not in names or "metric_id" not in names:
        return pl.LazyFrame(schema={"feature_id": pl.String, "realised_value": pl.Float64})
    worth = metrics.select("metric_id", "value_per_unit", "direction")
    sign = pl.when(pl.col("direction") == "lower").then(-1.0).otherwise(1.0)
    return (
        confirmed.join(worth, on="metric_id", how="inner")
        .select("feature_id", (pl.col("estimate_abs") * pl.col("value_per_unit") * sign).alias("realised_value"))
        .drop_nulls()
    )


def outcomes_to_watch(features: pl.LazyFrame, hypotheses: pl.LazyFrame, metrics: pl.LazyFrame) -> pl.LazyFrame:
    """Per team, the outcome metric most of its features' hypotheses aim at (else one the team owns).

    Columns: team_id, watch_metric_id, watch_name, outcome_metric_ids (every outcome metric of the team).
    """
    outcome = metrics.filter(pl.col("level") == "outcome").select("metric_id", "name")
    aimed = (
        hypotheses.select("feature_id", "metric_id")
        .join(features.select("feature_id", "team_id"), on="feature_id")
        .join(outcome, on="metric_id")
        .group_by("team_id", "metric_id", "name")
        .agg(pl.len().alias("features"))
    )
    owned = (
        metrics.filter(pl.col("level") == "outcome", pl.col("team_id").is_not_null())
        .select("team_id", "metric_id", "name")
        .with_columns(pl.lit(0, pl.UInt32).alias("features"))
    )
    return (
        pl.concat([aimed, owned])
        .group_by("team_id", "metric_id", "name")
        .agg(pl.col("features").max())
        .sort(["team_id", "features", "metric_id"], descending=[False, True, False])
        .group_by("team_id", maintain_order=True)
        .agg(
            pl.col("metric_id").first().alias("watch_metric_id"),
            pl.col("name").first().alias("watch_name"),
            pl.col("metric_id").sort().alias("outcome_metric_ids"),
        )
    )


def weekly_series(frames: Mapping[str, pl.LazyFrame], as_of: date) -> pl.LazyFrame:
    """Weekly series the decoupling detector compares: team PRs merged, and every metric's weekly mean.

    Columns: series_id (metric_id, or ``prs_merged``), team_id, kind (count for PRs, else the metric's
    level), direction, label, week (Monday), value. PR weeks without merges are 0; weeks from the
    first PR to the last full week before ``as_of`` are present.
    """
    prs = frames["pull_requests"]
    metrics = frames["metrics"]
    last_week = _last_full_week(as_of)
    merged = prs.filter(pl.col("merged_at").is_not_null()).select(
        "team_id", pl.col("merged_at").dt.date().dt.truncate("1w").alias("week")
    )
    calendar = prs.select(
        pl.date_ranges(pl.col("created_at").min().dt.date().dt.truncate("1w"), pl.lit(last_week), "1w").alias("week")
    ).explode("week")
    teams = prs.select(pl.col("team_id").unique())
    counts = (
        teams.join(calendar, how="cross")
        .join(merged.group_by("team_id", "week").agg(pl.len().alias("value")), on=["team_id", "week"], how="left")
        .drop_nulls("week")
        .select(
            pl.lit(_PRS_MERGED).alias("series_id"),
            "team_id",
            pl.lit("count").alias("kind"),
            pl.lit("higher").alias("direction"),
            pl.lit("PRs merged").alias("label"),
            "week",
            pl.col("value").fill_null(0).cast(pl.Float64),
        )
    )
    observed = (
        frames["metric_observations"]
        .filter(pl.col("segment") == "all", pl.col("date") < pl.lit(last_week) + timedelta(days=7))
        .group_by("metric_id", pl.col("date").dt.truncate("1w").alias("week"))
        .agg(pl.col("value").mean())
        .join(metrics.select("metric_id", "team_id", "level", "direction", "name"), on="metric_id")
        .select(
            pl.col("metric_id").alias("series_id"),
            "team_id",
            pl.col("level").alias("kind"),
            "direction",
            pl.col("name").alias("label"),
            "week",
            pl.col("value").cast(pl.Float64),
        )
    )
    return pl.concat([counts, observed]).sort("series_id", "team_id", "week", nulls_last=True)


# ---------------------------------------------------------------------------------------------
# Stage 2: the detectors
# ---------------------------------------------------------------------------------------------


def activity_up_value_flat(
    periods: pl.LazyFrame, teams: pl.LazyFrame, watch: pl.LazyFrame, settings: FlagSettings = DEFAULT_FLAG_SETTINGS
) -> pl.LazyFrame:
    """Detector 1: a team's activity up ≥ ``activity_rise`` over the previous window while its value did not rise."""
    pairs = _period_pairs(periods)
    z_crit = float(stats.norm.isf(settings.activity_alpha))
    rises = {
        m: pl.when(pl.col(f"{m}_prev") >= settings.min_activity).then(_change(pl.col(m), pl.col(f"{m}_prev")))
        for m in _ACTIVITY
    }
    noise = {
        m: (pl.col(m) - pl.col(f"{m}_prev")) / (pl.col(_VARIANCE[m]) + pl.col(f"{_VARIANCE[m]}_prev")).sqrt()
        for m in _ACTIVITY
    }
    risen = [(pl.col(f"{m}_rise") >= settings.activity_rise) & (pl.col(f"{m}_z") >= z_crit) for m in _ACTIVITY]
    value_flat = (pl.col("features_confirmed") <= pl.col("features_confirmed_prev")) & (
        pl.col("realised_value") <= pl.col("realised_value_prev")
    )
    value_fell = (pl.col("features_confirmed") < pl.col("features_confirmed_prev")) | (
        pl.col("realised_value") < pl.col("realised_value_prev")
    )
    found = (
        pairs.with_columns(
            *[rise.alias(f"{m}_rise") for m, rise in rises.items()], *[z.alias(f"{m}_z") for m, z in noise.items()]
        )
        .filter(pl.any_horizontal(risen).fill_null(False) & value_flat)
        .with_columns(
            pl.max_horizontal(pl.when(pl.col(f"{m}_z") >= z_crit).then(pl.col(f"{m}_rise")) for m in _ACTIVITY).alias(
                "top_rise"
            )
        )
    )
    rose_text = pl.concat_str(
        [
            pl.when((pl.col(f"{m}_rise") >= settings.activity_rise) & (pl.col(f"{m}_z") >= z_crit)).then(
                pl.format(
                    "{} {} ({} → {})", pl.lit(label), _signed_pct(pl.col(f"{m}_rise")), _num(f"{m}_prev"), _num(m)
                )
            )
            for m, label in _ACTIVITY.items()
        ],
        separator=", ",
        ignore_nulls=True,
    )
    explanation = pl.format(
        "{}: {} from {} to {} (commits approximated by PRs), while features confirmed went {} → {} "
        "and realised value {} → {}.",
        _team_name(),
        rose_text,
        _period_label("period_start_prev", "period_end_prev"),
        _period_label("period_start", "period_end"),
        _num("features_confirmed_prev"),
        _num("features_confirmed"),
        _num("realised_value_prev"),
        _num("realised_value"),
    )
    evidence = [
        *[pl.col(c) for m in _ACTIVITY for c in (f"{m}_prev", m)],
        *[pl.col(f"{m}_rise").round(4) for m in _ACTIVITY],
        *[pl.col(f"{m}_z").round(3) for m in _ACTIVITY],
        "features_delivered_prev",
        "features_delivered",
        "features_confirmed_prev",
        "features_confirmed",
        pl.col("realised_value_prev").round(2),
        pl.col("realised_value").round(2),
        pl.lit(settings.activity_rise).alias("threshold"),
        pl.lit(settings.activity_alpha).alias("alpha"),
    ]
    suggestion = _watch_sentence(
        "instead of activity counts: features confirmed per quarter is the value it should move"
    )
    return _flags(
        found.join(teams.select("team_id", pl.col("name").alias("team_name")), on="team_id", how="left").join(
            watch, on="team_id", how="left"
        ),
        "activity_up_value_flat",
        score=pl.col("top_rise") / settings.activity_rise + pl.when(value_fell).then(0.5).otherwise(0.0),
        window_start=pl.col("period_start_prev"),
        window_end=pl.col("period_end"),
        evidence=evidence,
        explanation=explanation,
        suggestion=suggestion,
    )


def unlinked_work(
    periods: pl.LazyFrame, teams: pl.LazyFrame, watch: pl.LazyFrame, settings: FlagSettings = DEFAULT_FLAG_SETTINGS
) -> pl.LazyFrame:
    """Detector 2: more than ``unlinked_share`` of a team's merged PRs or cost in a quarter is linked to no feature."""
    pr_share = pl.when(pl.col("prs_merged") >= settings.min_prs).then(pl.col("prs_unlinked") / pl.col("prs_merged"))
    cost_share = pl.when(pl.col("cost") > 0).then(pl.col("cost_unlinked").fill_null(0.0) / pl.col("cost"))
    found = periods.with_columns(pr_share.alias("pr_unlinked_share"), cost_share.alias("cost_unlinked_share")).filter(
        (pl.col("pr_unlinked_share") > settings.unlinked_share).fill_null(False)
        | (pl.col("cost_unlinked_share") > settings.unlinked_share).fill_null(False)
    )
    parts = pl.concat_str(
        [
            pl.when(pl.col("pr_unlinked_share").is_not_null()).then(
                pl.format(
                    "{} of its {} merged PRs ({})",
                    _pct(pl.col("pr_unlinked_share")),
                    _num("prs_merged"),
                    _num("prs_unlinked"),
                )
            ),
            pl.when(pl.col("cost_unlinked_share").is_not_null()).then(
                pl.format(
                    "{} of its cost of {} ({})",
                    _pct(pl.col("cost_unlinked_share")),
                    _num("cost"),
                    _num("cost_unlinked"),
                )
            ),
        ],
        separator=" and ",
        ignore_nulls=True,
    )
    explanation = pl.format(
        "{} in {}: {} not linked to any feature, so neither its cost nor its effect can be traced to an outcome.",
        _team_name(),
        _period_label("period_start", "period_end"),
        parts,
    )
    evidence = [
        "prs_merged",
        "prs_unlinked",
        pl.col("pr_unlinked_share").round(4),
        pl.col("cost").round(2),
        pl.col("cost_unlinked").round(2),
        pl.col("cost_unlinked_share").round(4),
        pl.lit(settings.unlinked_share).alias("threshold"),
    ]
    return _flags(
        found.join(teams.select("team_id", pl.col("name").alias("team_name")), on="team_id", how="left").join(
            watch, on="team_id", how="left"
        ),
        "unlinked_work",
        score=pl.max_horizontal("pr_unlinked_share", "cost_unlinked_share") / settings.unlinked_share,
        window_start=pl.col("period_start"),
        window_end=pl.col("period_end"),
        evidence=evidence,
        explanation=explanation,
        suggestion=_watch_sentence("once PRs carry a work-item key or feature, so the work shows up against it"),
    )


def story_point_inflation(
    periods: pl.LazyFrame, teams: pl.LazyFrame, watch: pl.LazyFrame, settings: FlagSettings = DEFAULT_FLAG_SETTINGS
) -> pl.LazyFrame:
    """Detector 3: points per resolved work item up ≥ ``points_inflation`` while cycle time and PR size held steady."""
    pairs = _period_pairs(periods).filter(
        pl.col("pointed_items") >= settings.min_pointed_items,
        pl.col("pointed_items_prev") >= settings.min_pointed_items,
    )
    found = pairs.with_columns(
        _change(pl.col("points_per_item"), pl.col("points_per_item_prev")).alias("points_change"),
        (
            (pl.col("points_per_item") - pl.col("points_per_item_prev"))
            / (pl.col("points_mean_var") + pl.col("points_mean_var_prev")).sqrt()
        ).alias("points_z"),
        _change(pl.col("cycle_days_median"), pl.col("cycle_days_median_prev")).alias("cycle_change"),
        _change(pl.col("pr_size_median"), pl.col("pr_size_median_prev")).alias("size_change"),
    ).filter(
        pl.col("points_change") >= settings.points_inflation,
        pl.col("points_z") >= float(stats.norm.isf(settings.activity_alpha)),
        pl.col("cycle_change").abs() <= settings.steady_band,
        pl.col("size_change").abs() <= settings.steady_band,
    )
    explanation = pl.format(
        "{}: story points per resolved work item rose {} ({} → {}) from {} to {}, while median cycle time "
        "({} → {} days, {}) and median PR size ({} → {} lines, {}) hardly changed — the same work is being "
        "estimated bigger.",
        _team_name(),
        _signed_pct(pl.col("points_change")),
        _num("points_per_item_prev", 2),
        _num("points_per_item", 2),
        _period_label("period_start_prev", "period_end_prev"),
        _period_label("period_start", "period_end"),
        _num("cycle_days_median_prev", 1),
        _num("cycle_days_median", 1),
        _signed_pct(pl.col("cycle_change")),
        _num("pr_size_median_prev"),
        _num("pr_size_median"),
        _signed_pct(pl.col("size_change")),
    )
    evidence = [
        "pointed_items_prev",
        "pointed_items",
        pl.col("points_per_item_prev").round(4),
        pl.col("points_per_item").round(4),
        pl.col("points_change").round(4),
        pl.col("points_z").round(3),
        pl.col("cycle_days_median_prev").round(3),
        pl.col("cycle_days_median").round(3),
        pl.col("cycle_change").round(4),
        "pr_size_median_prev",
        "pr_size_median",
        pl.col("size_change").round(4),
        pl.lit(settings.points_inflation).alias("threshold"),
        pl.lit(settings.steady_band).alias("steady_band"),
    ]
    return _flags(
        found.join(teams.select("team_id", pl.col("name").alias("team_name")), on="team_id", how="left").join(
            watch, on="team_id", how="left"
        ),
        "story_point_inflation",
        score=pl.col("points_change") / settings.points_inflation,
        window_start=pl.col("period_start_prev"),
        window_end=pl.col("period_end"),
        evidence=evidence,
        explanation=explanation,
        suggestion=_watch_sentence("instead of velocity; features delivered and cycle time show the flow"),
    )


def pr_splitting(
    periods: pl.LazyFrame, teams: pl.LazyFrame, watch: pl.LazyFrame, settings: FlagSettings = DEFAULT_FLAG_SETTINGS
) -> pl.LazyFrame:
    """Detector 4a: PRs per delivered feature up ≥ ``prs_per_feature_rise``, median PR size down ≥ ``pr_size_drop``."""
    found = (
        _period_pairs(periods)
        .filter(
            pl.col("features_delivered") >= settings.min_features,
            pl.col("features_delivered_prev") >= settings.min_features,
        )
        .with_columns(
            _change(pl.col("prs_per_feature"), pl.col("prs_per_feature_prev")).alias("per_feature_change"),
            _change(pl.col("pr_size_median"), pl.col("pr_size_median_prev")).alias("size_change"),
        )
        .filter(
            pl.col("per_feature_change") >= settings.prs_per_feature_rise,
            pl.col("size_change") <= -settings.pr_size_drop,
        )
    )
    explanation = pl.format(
        "{}: merged PRs per delivered feature rose {} ({} → {}) from {} to {} while the median PR shrank {} "
        "({} → {} lines) — the same features cut into more, smaller PRs.",
        _team_name(),
        _signed_pct(pl.col("per_feature_change")),
        _num("prs_per_feature_prev", 1),
        _num("prs_per_feature", 1),
        _period_label("period_start_prev", "period_end_prev"),
        _period_label("period_start", "period_end"),
        _pct(-pl.col("size_change")),
        _num("pr_size_median_prev"),
        _num("pr_size_median"),
    )
    evidence = [
        "features_delivered_prev",
        "features_delivered",
        pl.col("prs_per_feature_prev").round(4),
        pl.col("prs_per_feature").round(4),
        pl.col("per_feature_change").round(4),
        "pr_size_median_prev",
        "pr_size_median",
        pl.col("size_change").round(4),
        pl.lit(settings.prs_per_feature_rise).alias("threshold_prs_per_feature"),
        pl.lit(settings.pr_size_drop).alias("threshold_size_drop"),
    ]
    score = (
        pl.col("per_feature_change") / settings.prs_per_feature_rise - pl.col("size_change") / settings.pr_size_drop
    ) / 2
    return _flags(
        found.join(teams.select("team_id", pl.col("name").alias("team_name")), on="team_id", how="left").join(
            watch, on="team_id", how="left"
        ),
        "pr_splitting",
        score=score,
        window_start=pl.col("period_start_prev"),
        window_end=pl.col("period_end"),
        evidence=evidence,
        explanation=explanation,
        suggestion=_watch_sentence("instead of PR counts; features delivered per quarter is the output that matters"),
    )


def agent_churn(
    periods: pl.LazyFrame, teams: pl.LazyFrame, watch: pl.LazyFrame, settings: FlagSettings = DEFAULT_FLAG_SETTINGS
) -> pl.LazyFrame:
    """Detector 4b: agent PRs up ≥ ``agent_pr_rise`` while the share merged or linked fell ≥ ``agent_share_drop``."""
    found = (
        _period_pairs(periods)
        .filter(pl.col("agent_prs_prev") >= settings.min_agent_prs)
        .with_columns(
            _change(pl.col("agent_prs"), pl.col("agent_prs_prev")).alias("agent_change"),
            (
                (pl.col("agent_prs") - pl.col("agent_prs_prev"))
                / (pl.col("agent_prs") + pl.col("agent_prs_prev")).cast(pl.Float64).sqrt()
            ).alias("agent_z"),
            (pl.col("agent_merged_share") - pl.col("agent_merged_share_prev")).alias("merged_share_change"),
            (pl.col("agent_linked_share") - pl.col("agent_linked_share_prev")).alias("linked_share_change"),
        )
        .filter(
            pl.col("agent_change") >= settings.agent_pr_rise,
            pl.col("agent_z") >= float(stats.norm.isf(settings.activity_alpha)),
            (pl.col("merged_share_change") <= -settings.agent_share_drop).fill_null(False)
            | (pl.col("linked_share_change") <= -settings.agent_share_drop).fill_null(False),
        )
    )
    explanation = pl.format(
        "{}: PRs opened by AI agents rose {} ({} → {}) from {} to {}, while the share of them merged went {} → {} "
        "and the share linked to a feature {} → {} — more agent output, less of it landing on planned work.",
        _team_name(),
        _signed_pct(pl.col("agent_change")),
        _num("agent_prs_prev"),
        _num("agent_prs"),
        _period_label("period_start_prev", "period_end_prev"),
        _period_label("period_start", "period_end"),
        _pct(pl.col("agent_merged_share_prev")),
        _pct(pl.col("agent_merged_share")),
        _pct(pl.col("agent_linked_share_prev")),
        _pct(pl.col("agent_linked_share")),
    )
    evidence = [
        "agent_prs_prev",
        "agent_prs",
        pl.col("agent_change").round(4),
        pl.col("agent_z").round(3),
        pl.col("agent_merged_share_prev").round(4),
        pl.col("agent_merged_share").round(4),
        pl.col("agent_linked_share_prev").round(4),
        pl.col("agent_linked_share").round(4),
        pl.lit(settings.agent_pr_rise).alias("threshold_agent_rise"),
        pl.lit(settings.agent_share_drop).alias("threshold_share_drop"),
    ]
    drop = -pl.min_horizontal("merged_share_change", "linked_share_change")
    score = (pl.col("agent_change") / settings.agent_pr_rise + drop / settings.agent_share_drop) / 2
    return _flags(
        found.join(teams.select("team_id", pl.col("name").alias("team_name")), on="team_id", how="left").join(
            watch, on="team_id", how="left"
        ),
        "agent_churn",
        score=score,
        window_start=pl.col("period_start_prev"),
        window_end=pl.col("period_end"),
        evidence=evidence,
        explanation=explanation,
        suggestion=_watch_sentence("and the cost per delivered feature, instead of agent PR counts"),
    )


def leadership_vanity(
    metrics: pl.LazyFrame,
    watch: pl.LazyFrame,
    settings: FlagSettings = DEFAULT_FLAG_SETTINGS,
    as_of: date | None = None,
    executive_view_metrics: Iterable[str] | pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """Detector 5: each activity-level metric configured on an executive view or an OKR, in the quarter of ``as_of``.

    The configured metric ids come from ``executive_view_metrics`` (a list, or a frame with a
    metric_id column) or, when not given, from ``settings.executive_view_metrics``.
    """
    as_of = as_of or date.today()
    if executive_view_metrics is None:
        executive_view_metrics = settings.executive_view_metrics
    if isinstance(executive_view_metrics, pl.LazyFrame):
        configured = executive_view_metrics.select(pl.col("metric_id").cast(pl.String)).unique()
    else:
        configured = pl.LazyFrame({"metric_id": sorted(set(executive_view_metrics))}, schema={"metric_id": pl.String})
    quarter_start = date(as_of.year, 3 * ((as_of.month - 1) // 3) + 1, 1)
    quarter_end = _quarter_end(quarter_start)
    found = metrics.join(configured, on="metric_id", how="semi").filter(pl.col("level") == "activity")
    explanation = pl.format(
        "{} ({}) is an activity-level metric, yet it is on an executive view or an OKR: once activity becomes a "
        "target it gets gamed and says nothing about what customers got.",
        pl.col("name"),
        pl.col("metric_id"),
    )
    evidence = ["metric_id", "name", "level", pl.lit("executive view or OKR").alias("configured_on")]
    return _flags(
        found.with_columns(
            pl.lit(quarter_start).alias("window_start"),
            pl.lit(quarter_end).alias("window_end"),
            pl.lit(min(quarter_end, as_of)).alias("detected_at"),
        ).join(watch, on="team_id", how="left"),
        "leadership_vanity",
        score=pl.lit(1.5),
        window_start=pl.col("window_start"),
        window_end=pl.col("window_end"),
        evidence=evidence,
        explanation=explanation,
        suggestion=_watch_sentence("on the executive view in its place; keep activity metrics inside the team"),
        metric_id=pl.col("metric_id"),
        detected_at=pl.col("detected_at"),
    )


def decoupled_metric(
    weekly: pl.LazyFrame,
    teams: pl.LazyFrame,
    watch: pl.LazyFrame,
    settings: FlagSettings = DEFAULT_FLAG_SETTINGS,
    as_of: date | None = None,
) -> pl.LazyFrame:
    """Detector 6: an activity or output series rising over ``rising_weeks`` while the team's outcomes do not follow.

    Windows are the last ``rising_weeks`` full weeks of each complete quarter. Rising: a one-sided
    Kendall test (normal approximation with continuity correction) significant at ``trend_alpha``
    and a Theil–Sen rise over the window of at least ``min_trend_rise`` of the series' median
    (direction-adjusted: a "lower is better" metric rises by falling). Not followed: for every
    outcome metric of the team's features, the best Pearson correlation between the outcome in
    week t and the series in week t − lag, lag 0…``max_lag_weeks``, stays below
    ``max_abs_correlation`` in absolute value (a constant outcome counts as r = 0). A metric with
    no team, or a team with no observed outcome metric, is not judged.
    """
    as_of = as_of or date.today()
    n = settings.rising_weeks
    z_crit = float(stats.norm.isf(settings.trend_alpha))
    windows = _weekly_windows(weekly, n, as_of)
    candidates = weekly.filter(pl.col("kind").is_in(["count", "activity", "output"]), pl.col("team_id").is_not_null())
    sign = pl.when(pl.col("direction") == "lower").then(-1.0).otherwise(1.0)
    keys = ["series_id", "team_id", "window_start"]
    inside = (
        candidates.join(windows, how="cross")
        .filter(pl.col("week") >= pl.col("window_start"), pl.col("week") <= pl.col("window_end"))
        .drop_nulls("value")
        .with_columns(
            ((pl.col("week") - pl.col("window_start")).dt.total_days() // 7).alias("i"),
            (pl.col("value") * sign).alias("v"),
        )
    )
    pairs = inside.join(inside.select(*keys, pl.col("i").alias("j"), pl.col("v").alias("w")), on=keys).filter(
        pl.col("i") < pl.col("j")
    )
    trend = pairs.group_by(keys).agg(
        (pl.col("w") - pl.col("v")).sign().sum().alias("kendall_s"),
        ((pl.col("w") - pl.col("v")) / (pl.col("j") - pl.col("i"))).median().alias("slope"),
    )
    level = inside.group_by(keys).agg(
        pl.len().alias("weeks"),
        pl.col("value").median().alias("median_level"),
        pl.col("value").first().alias("first_value"),
        pl.col("value").last().alias("last_value"),
        pl.col(["label", "kind", "window_end", "quarter_end"]).first(),
    )
    n_obs = pl.col("weeks").cast(pl.Float64)
    variance = n_obs * (n_obs - 1) * (2 * n_obs + 5) / 18
    rising = (
        level.join(trend, on=keys)
        .filter(pl.col("weeks") >= n - 1)
        .with_columns(
            (pl.col("kendall_s") / (n_obs * (n_obs - 1) / 2)).alias("kendall_tau"),
            ((pl.col("kendall_s") - pl.col("kendall_s").sign()) / variance.sqrt()).alias("kendall_z"),
            (pl.col("slope") * (n_obs - 1) / pl.col("median_level").abs()).alias("trend_rise"),
        )
        .filter(pl.col("kendall_z") >= z_crit, pl.col("trend_rise") >= settings.min_trend_rise)
    )
    best = _best_lagged_correlation(rising, weekly, watch, settings)
    found = rising.join(best, on=keys, how="inner").filter(pl.col("best_abs_r") < settings.max_abs_correlation)
    explanation = pl.format(
        "{}: {} rose for {} weeks to {} ({} → {}, Kendall τ = {}, one-sided p = {}), while {} did not follow it: "
        "the best correlation over lags 0–{} weeks is r = {} at a lag of {} weeks.",
        _team_name(),
        pl.col("label"),
        pl.col("weeks"),
        pl.col("window_end").dt.to_string("%Y-%m-%d"),
        _num("first_value", 1),
        _num("last_value", 1),
        _num("kendall_tau", 2),
        pl.when(pl.col("kendall_p") < 0.0001).then(pl.lit("< 0.0001")).otherwise(_num("kendall_p", 4)),
        pl.col("outcome_name"),
        pl.lit(settings.max_lag_weeks),
        _num("best_r", 2),
        pl.col("best_lag"),
    )
    evidence = [
        "series_id",
        "label",
        "weeks",
        pl.col("first_value").round(4),
        pl.col("last_value").round(4),
        pl.col("kendall_tau").round(4),
        pl.col("kendall_z").round(4),
        pl.col("kendall_p").round(6),
        pl.col("trend_rise").round(4),
        "outcome_metric_id",
        "outcome_name",
        "best_lag",
        pl.col("best_r").round(4),
        "outcomes_compared",
        pl.lit(settings.trend_alpha).alias("alpha"),
        pl.lit(settings.max_abs_correlation).alias("max_abs_correlation"),
    ]
    return _flags(
        found.with_columns(_normal_sf(pl.col("kendall_z")).alias("kendall_p"))
        .join(teams.select("team_id", pl.col("name").alias("team_name")), on="team_id", how="left")
        .join(watch, on="team_id", how="left"),
        "decoupled_metric",
        score=pl.col("kendall_z") / z_crit,
        window_start=pl.col("window_start"),
        window_end=pl.col("window_end"),
        evidence=evidence,
        explanation=explanation,
        suggestion=_watch_sentence("instead of this series; it has not moved with it"),
        metric_id=pl.when(pl.col("kind") != "count").then(pl.col("series_id")),
        subject=pl.col("series_id"),
        detected_at=pl.min_horizontal(pl.col("quarter_end"), pl.lit(as_of)),
    )


# ---------------------------------------------------------------------------------------------
# Building blocks
# ---------------------------------------------------------------------------------------------

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


def _flags(
    found: pl.LazyFrame,
    detector: str,
    *,
    score: pl.Expr,
    window_start: pl.Expr,
    window_end: pl.Expr,
    evidence: list[str | pl.Expr],
    explanation: pl.Expr,
    suggestion: pl.Expr,
    metric_id: pl.Expr | None = None,
    subject: pl.Expr | None = None,
    detected_at: pl.Expr | None = None,
) -> pl.LazyFrame:
    """The found rows shaped as flags (``FLAG_SCHEMA``)."""
    metric = metric_id if metric_id is not None else pl.lit(None, pl.String)
    team = pl.col("team_id") if "team_id" in found.collect_schema().names() else pl.lit(None, pl.String)
    shaped = found.with_columns(
        team.cast(pl.String).alias("__team"),
        metric.cast(pl.String).alias("__metric"),
        (subject if subject is not None else metric).cast(pl.String).alias("__subject"),
        window_start.cast(pl.Date).alias("__start"),
        window_end.cast(pl.Date).alias("__end"),
        score.cast(pl.Float64).round(4).alias("__score"),
    )
    flag_id = pl.concat_str(
        pl.lit(detector),
        pl.col("__team").fill_null("-"),
        pl.col("__subject").fill_null("-"),
        pl.col("__start").dt.to_string("%Y-%m-%d"),
        pl.col("__end").dt.to_string("%Y-%m-%d"),
        separator="|",
    )
    severity = pl.when(pl.col("__score") >= SEVERITY_BANDS[0][1]).then(pl.lit(SEVERITY_BANDS[0][0]))
    for name, floor in SEVERITY_BANDS[1:]:
        severity = severity.when(pl.col("__score") >= floor).then(pl.lit(name))
    return shaped.select(
        flag_id.alias("flag_id"),
        pl.lit(detector).alias("detector"),
        severity.otherwise(pl.lit(SEVERITY_BANDS[-1][0])).alias("severity"),
        pl.col("__score").alias("severity_score"),
        pl.col("__team").alias("team_id"),
        pl.col("__metric").alias("metric_id"),
        pl.col("__start").alias("window_start"),
        pl.col("__end").alias("window_end"),
        pl.struct(
            pl.lit(detector).alias("detector"),
            pl.col("__start").dt.to_string("%Y-%m-%d").alias("window_start"),
            pl.col("__end").dt.to_string("%Y-%m-%d").alias("window_end"),
            *evidence,
        )
        .struct.json_encode()
        .alias("evidence"),
        explanation.cast(pl.String).alias("explanation"),
        suggestion.cast(pl.String).alias("suggestion"),
        (detected_at if detected_at is not None else pl.col("__end")).cast(pl.Date).alias("detected_at"),
    )


def _window_grid(frames: Mapping[str, pl.LazyFrame], as_of: date, quarters: int) -> pl.LazyFrame:
    """Every team × window of ``quarters`` complete quarters covered by the data, keyed by its last quarter."""
    days = pl.concat(
        [
            frames["pull_requests"].select(pl.col("created_at").dt.date().alias("day")),
            frames["work_items"].select(pl.col("created_at").dt.date().alias("day")),
            frames["deployments"].select(pl.col("finished_at").dt.date().alias("day")),
        ]
    ).drop_nulls()
    first_week = pl.col("day").min().dt.truncate("1w")
    windows = (
        days.select(pl.date_ranges(first_week.dt.truncate("1q"), pl.lit(as_of), "1q").alias("period_last"))
        .explode("period_last")
        .drop_nulls()
        .join(days.select(first_week.alias("first_week")), how="cross")
        .with_columns(
            pl.col("period_last").dt.offset_by(f"-{quarters - 1}q").alias("period_start"),
            (pl.col("period_last").dt.offset_by("1q") - pl.duration(days=1)).alias("period_end"),
        )
        .filter(pl.col("period_start") >= pl.col("first_week"), pl.col("period_end") < as_of)
        .select("period_last", "period_start", "period_end")
    )
    teams = pl.concat(
        [
            frames["teams"].select("team_id"),
            frames["pull_requests"].select("team_id"),
            frames["work_items"].select("team_id"),
        ]
    ).unique()
    return teams.join(windows, how="cross")


def _pull_request_groups(pull_requests: pl.LazyFrame, work_items: pl.LazyFrame, features: pl.LazyFrame) -> pl.LazyFrame:
    """Pull requests counted per team, merge and creation quarter, agent or not, state and linked feature.

    Columns: team_id, merged_quarter (null when not merged), created_quarter, agent, state,
    linked_feature (``core.costs.pull_request_features``; null when unlinked), linked, prs (the count).
    Every PR count, share and per-feature count of ``team_periods`` is a sum over these groups, so the
    PRs are linked to features and scanned once, and what is spread over windows is thousands of
    groups rather than every PR. Its readers select rows inside their aggregations, not with a
    filter on the frame: a filter on a grouping column would be pushed down to the PRs and give each
    reader its own scan and linking instead of the one shared plan.
    """
    links = pull_request_features(pull_requests, work_items, features).select(
        "pr_id", pl.col("feature_id").alias("linked_feature")
    )
    return (
        pull_requests.select("pr_id", "team_id", "author_kind", "state", "created_at", "merged_at")
        .join(links, on="pr_id", how="left")
        .group_by(
            "team_id",
            pl.col("merged_at").dt.date().dt.truncate("1q").alias("merged_quarter"),
            pl.col("created_at").dt.date().dt.truncate("1q").alias("created_quarter"),
            (pl.col("author_kind") == "agent").fill_null(False).alias("agent"),
            "state",
            "linked_feature",
        )
        .agg(pl.len().alias("prs"))
        .with_columns(pl.col("linked_feature").is_not_null().alias("linked"))
    )


def _in_windows(frame: pl.LazyFrame, day: pl.Expr, quarters: int) -> pl.LazyFrame:
    """``frame`` with each row repeated for every window of ``quarters`` quarters holding ``day`` (``period_last``).

    Quarters are counted as integers (year × 4 + quarter) so that the repeated rows need no date
    arithmetic beyond building each window's first day once; rows keep their order.
    """
    start = day.dt.truncate("1q")
    index = start.dt.year().cast(pl.Int32) * 4 + (start.dt.month().cast(pl.Int32) - 1) // 3
    return (
        frame.with_columns((index + pl.int_ranges(0, quarters, dtype=pl.Int32)).alias("__quarter"))
        .explode("__quarter")
        .with_columns(pl.date(pl.col("__quarter") // 4, pl.col("__quarter") % 4 * 3 + 1, 1).alias("period_last"))
        .drop("__quarter")
    )


def _period_pairs(periods: pl.LazyFrame) -> pl.LazyFrame:
    """Each team window beside the team's window just before it (its columns end in ``_prev``)."""
    previous = periods.rename({c: f"{c}_prev" for c in periods.collect_schema().names() if c != "team_id"})
    previous = previous.with_columns((pl.col("period_end_prev") + pl.duration(days=1)).alias("__next"))
    return periods.join(
        previous, left_on=["team_id", "period_start"], right_on=["team_id", "__next"], how="inner", nulls_equal=True
    )


def _weekly_windows(weekly: pl.LazyFrame, n: int, as_of: date) -> pl.LazyFrame:
    """Per complete quarter, the window of its last ``n`` full weeks (Monday to Sunday)."""
    first = weekly.select(pl.col("week").min().alias("first_week"))
    return (
        first.select(pl.date_ranges(pl.col("first_week").dt.truncate("1q"), pl.lit(as_of), "1q").alias("quarter_start"))
        .explode("quarter_start")
        .drop_nulls()
        .with_columns((pl.col("quarter_start").dt.offset_by("1q") - pl.duration(days=1)).alias("quarter_end"))
        .filter(pl.col("quarter_end") < as_of)
        .with_columns((pl.col("quarter_end") - pl.duration(days=6)).dt.truncate("1w").alias("__last_monday"))
        .with_columns(
            (pl.col("__last_monday") - pl.duration(weeks=n - 1)).alias("window_start"),
            (pl.col("__last_monday") + pl.duration(days=6)).alias("window_end"),
        )
        .join(first, how="cross")
        .filter(pl.col("window_start") >= pl.col("first_week"))
        .select("window_start", "window_end", "quarter_end")
    )


def _best_lagged_correlation(
    rising: pl.LazyFrame, weekly: pl.LazyFrame, watch: pl.LazyFrame, settings: FlagSettings
) -> pl.LazyFrame:
    """Per rising series, the team outcome metric and lag with the largest |r| over all outcomes and lags."""
    keys = ["series_id", "team_id", "window_start"]
    outcomes = watch.select("team_id", pl.col("outcome_metric_ids").alias("outcome_metric_id")).explode(
        "outcome_metric_id"
    )
    outcome_weeks = (
        weekly.filter(pl.col("kind") == "outcome")
        .select(
            pl.col("series_id").alias("outcome_metric_id"),
            pl.col("label").alias("outcome_name"),
            pl.col("week"),
            pl.col("value").alias("outcome_value"),
        )
        .unique(["outcome_metric_id", "week"])
    )
    lags = pl.LazyFrame({"lag": list(range(settings.max_lag_weeks + 1))}, schema={"lag": pl.Int64})
    targets = (
        rising.select(*keys, "window_end")
        .join(outcomes, on="team_id")
        .join(outcome_weeks, on="outcome_metric_id")
        .filter(pl.col("week") >= pl.col("window_start"), pl.col("week") <= pl.col("window_end"))
        .join(lags, how="cross")
        .with_columns((pl.col("week") - pl.duration(weeks=pl.col("lag"))).alias("series_week"))
    )
    series = weekly.select("series_id", "team_id", pl.col("week").alias("series_week"), "value")
    paired = targets.join(series, on=["series_id", "team_id", "series_week"], how="inner")
    correlation = (
        paired.group_by(*keys, "outcome_metric_id", "outcome_name", "lag")
        .agg(
            pl.len().alias("n"),
            pl.corr("value", "outcome_value").alias("r"),
            pl.col("outcome_value").std().alias("outcome_sd"),
            pl.col("value").std().alias("series_sd"),
        )
        .filter(pl.col("n") >= 4)
        .with_columns(
            pl.when((pl.col("outcome_sd") == 0) | (pl.col("series_sd") == 0))
            .then(0.0)
            .otherwise(pl.col("r").fill_nan(0.0))
            .alias("r")
        )
    )
    return (
        correlation.with_columns(pl.col("r").abs().alias("abs_r"))
        .sort([*keys, "abs_r", "lag", "outcome_metric_id"], descending=[False, False, False, True, False, False])
        .group_by(keys, maintain_order=True)
        .agg(
            pl.col("outcome_metric_id").first(),
            pl.col("outcome_name").first(),
            pl.col("lag").first().alias("best_lag"),
            pl.col("r").first().alias("best_r"),
            pl.col("abs_r").first().alias("best_abs_r"),
            pl.col("outcome_metric_id").n_unique().alias("outcomes_compared"),
        )
    )


def _quarter_end(start: date) -> date:
    month = start.month + 3
    following = date(start.year + (month > 12), (month - 1) % 12 + 1, 1)
    return following - timedelta(days=1)


def _last_full_week(as_of: date) -> date:
    """The Monday of the last full week (Monday to Sunday) ending before ``as_of``."""
    this_monday = as_of - timedelta(days=as_of.weekday())
    return this_monday - timedelta(days=7)


def _change(current: pl.Expr, previous: pl.Expr) -> pl.Expr:
    """The relative change, rounded to 9 places so that 160 against 200 is exactly −20% at a threshold."""
    return pl.when(previous > 0).then((current / previous - 1).round(9))


def _agent_prs(*conditions: pl.Expr) -> pl.Expr:
    """The number of agent PRs in ``_pull_request_groups`` rows, of those meeting ``conditions``."""
    return pl.col("prs").filter(pl.col("agent"), *conditions).sum()


def _team_name() -> pl.Expr:
    return pl.coalesce("team_name", "team_id", pl.lit("Teams without a team"))


def _period_label(start: str, end: str) -> pl.Expr:
    """``2026 Q3`` for one quarter, ``2026 Q2–Q3`` or ``2025 Q4–2026 Q1`` for several."""
    first, last = pl.col(start), pl.col(end)
    return (
        pl.when(first.dt.truncate("1q") == last.dt.truncate("1q"))
        .then(pl.format("{} Q{}", last.dt.year(), last.dt.quarter()))
        .when(first.dt.year() == last.dt.year())
        .then(pl.format("{} Q{}–Q{}", last.dt.year(), first.dt.quarter(), last.dt.quarter()))
        .otherwise(pl.format("{} Q{}–{} Q{}", first.dt.year(), first.dt.quarter(), last.dt.year(), last.dt.quarter()))
    )


def _watch_sentence(tail: str) -> pl.Expr:
    return pl.format(
        "Watch {} {}.",
        pl.when(pl.col("watch_name").is_not_null())
        .then(pl.format("{} (the outcome this team's features aim at)", pl.col("watch_name")))
        .otherwise(pl.lit(_FALLBACK_WATCH)),
        pl.lit(tail),
    )


def _pct(share: pl.Expr) -> pl.Expr:
    return pl.format("{}%", (share * 100).round(0).cast(pl.Int64))


def _signed_pct(change: pl.Expr) -> pl.Expr:
    percent = (change * 100).round(0).cast(pl.Int64)
    return pl.format("{}{}%", pl.when(percent > 0).then(pl.lit("+")).otherwise(pl.lit("")), percent)


def _num(column: str, decimals: int = 0) -> pl.Expr:
    """A number as text: thousands separated when whole, else with ``decimals`` places."""
    value = pl.col(column).cast(pl.Float64)
    if decimals:
        return value.round(decimals).cast(pl.String).fill_null("none")
    whole = value.round(0).abs().cast(pl.Int64).cast(pl.String)
    grouped = whole.str.reverse().str.replace_all(r"(\d{3})", "$1,").str.reverse().str.strip_chars_start(",")
    return pl.concat_str(pl.when(value.round(0) < 0).then(pl.lit("−")).otherwise(pl.lit("")), grouped).fill_null("none")


def _normal_sf(z: pl.Expr) -> pl.Expr:
    """P(Z ≥ z) for a standard normal Z (Abramowitz–Stegun 26.2.17, error below 1e-7)."""
    x = z.abs()
    t = 1 / (1 + 0.2316419 * x)
    poly = t * (0.319381530 + t * (-0.356563782 + t * (1.781477937 + t * (-1.821255978 + t * 1.330274429))))
    upper = (-(x**2) / 2).exp() / sqrt(2 * 3.141592653589793) * poly
    return pl.when(z >= 0).then(upper).otherwise(1 - upper)

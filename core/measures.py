"""The workspace's measures wired together: one place that feeds each engine the canonical frames.

Pages, CLI reports and the benchmark all call these functions, so the same inputs always give
the same numbers everywhere. Everything here is pure: frames in, frames out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

import polars as pl

from core import costs
from core.costs import CostSettings
from core.delivery import throughput
from core.flags import detectors, rollups
from core.flags.settings import FlagSettings
from core.outcomes import verdicts

Frames = Mapping[str, pl.LazyFrame]


def as_of(frames: Frames) -> date:
    """The date the workspace's data runs up to: its latest observation, else its latest event."""
    candidates = [
        frames["metric_observations"].select(pl.col("date").max()),
        frames["pull_requests"].select(pl.col("created_at").max().dt.date().alias("date")),
        frames["cost_events"].select(pl.col("occurred_at").max().dt.date().alias("date")),
    ]
    latest = pl.concat(candidates, how="vertical_relaxed").select(pl.col("date").max()).collect().item()
    return latest if latest is not None else date.today()


def judged_hypotheses(frames: Frames, as_of_date: date) -> pl.DataFrame:
    """Every delivered feature's hypothesis verdict as of ``as_of_date`` (see ``core.outcomes.verdicts``)."""
    return verdicts.judge_hypotheses(
        frames["features"], frames["hypotheses"], frames["metrics"], frames["metric_observations"], as_of_date
    )


def realised_values(judged: pl.LazyFrame, metrics: pl.LazyFrame) -> pl.LazyFrame:
    """Per confirmed feature: the measured change in metric units × the metric's money value per unit.

    Only confirmed features realise value; the change counts in the metric's good direction, so a
    lower-is-better metric that fell yields a positive value.
    """
    good_direction = pl.when(pl.col("direction") == "lower").then(-1.0).otherwise(1.0)
    return (
        judged.filter(pl.col("verdict") == "confirmed")
        .join(metrics.select("metric_id", "direction", "value_per_unit"), on="metric_id", how="inner")
        .filter(pl.col("value_per_unit").is_not_null())
        .select(
            "feature_id",
            (pl.col("estimate_abs") * good_direction * pl.col("value_per_unit")).alias("realised_value"),
        )
    )


def cost_lines(frames: Frames, settings: CostSettings) -> pl.LazyFrame:
    """Every cost event priced and attributed to features (see ``core.costs.attribute_costs``)."""
    return costs.attribute_costs(
        frames["cost_events"],
        frames["pull_requests"],
        frames["work_items"],
        frames["features"],
        frames["people"],
        settings,
        frames.get("cost_keys"),
    )


def cost_rollup(frames: Frames, settings: CostSettings) -> pl.LazyFrame:
    """Attributed money per feature, team, source, rule and quarter: the cost lines summed, never expanded.

    Every aggregate measure (cost per feature, summaries, throughput, flags) gives the same numbers
    from this as from ``cost_lines`` at a fraction of the memory at scale; lines are for drill-downs.
    """
    return costs.attribute_cost_rollup(
        frames["cost_events"],
        frames["pull_requests"],
        frames["work_items"],
        frames["features"],
        frames["people"],
        settings,
        frames.get("cost_keys"),
    )


@dataclass(frozen=True)
class CostLinks:
    """What resolving single cost events looks up: PR and work-item links, split groups, branch keys.

    ``pr_links`` keeps each PR's ``link`` text (the path a line names); ``activity`` is the person,
    repository and team activity that splits share by (``core.costs.feature_activity``).
    """

    pr_links: pl.DataFrame
    work_item_links: pl.DataFrame
    activity: pl.DataFrame
    branch_items: pl.DataFrame


def cost_links(frames: Frames) -> CostLinks:
    """The links and split groups of the workspace's cost events (``CostLinks``)."""
    pr_links = costs.pull_request_features(frames["pull_requests"], frames["work_items"], frames["features"])
    pr_links = pr_links.collect()
    reviews = costs.review_counts(frames["cost_events"])
    activity, items, branches = pl.collect_all(
        [
            costs.feature_activity(pr_links.lazy().drop("link"), reviews).drop("link"),
            costs.work_item_features(frames["work_items"], frames["features"]),
            costs.branch_work_items(frames["cost_events"]),
        ]
    )
    return CostLinks(pr_links=pr_links, work_item_links=items, activity=activity, branch_items=branches)


def resolved_cost_events(
    events: pl.LazyFrame, frames: Frames, links: CostLinks, settings: CostSettings
) -> pl.LazyFrame:
    """``events`` (some of the cost events) priced and resolved to their rule, as attribution resolves each."""
    priced = costs.price_cost_events(events, frames["people"], settings)
    return costs.resolve_cost_events(
        priced,
        links.pr_links.lazy(),
        links.work_item_links.lazy(),
        links.activity.lazy(),
        frames["features"],
        settings,
        frames.get("cost_keys"),
    )


def unattributed_events(frames: Frames, links: CostLinks, settings: CostSettings) -> pl.DataFrame:
    """The cost events no enabled rule reaches, resolved (``core.costs.unreached_cost_events``)."""
    unreached = costs.unreached_cost_events(
        frames["cost_events"],
        links.pr_links.lazy(),
        links.work_item_links.lazy(),
        links.activity.lazy(),
        frames["features"],
        settings,
        frames.get("cost_keys"),
    )
    return resolved_cost_events(unreached, frames, links, settings).collect()


def feature_cost_lines(frames: Frames, links: CostLinks, feature_id: str, settings: CostSettings) -> pl.DataFrame:
    """Every described cost line of one feature, resolved from its candidate events only.

    The candidates and their resolution are collected before the next step reads them: in one lazy plan
    Polars scanned every cost event again for each use of the candidates (6–9 s per feature at M under
    load, against under 2 s collected step by step, the same lines).
    """
    candidates = costs.feature_candidate_events(
        frames["cost_events"],
        links.pr_links.lazy(),
        links.work_item_links.lazy(),
        links.activity.lazy(),
        links.branch_items.lazy(),
        feature_id,
        frames.get("cost_keys"),
    ).collect()
    resolved = resolved_cost_events(candidates.lazy(), frames, links, settings).collect()
    return costs.feature_cost_lines(
        resolved.lazy(), links.activity.lazy(), frames["features"], links.pr_links.lazy(), feature_id, settings
    ).collect()


def feature_costs(lines: pl.LazyFrame) -> pl.LazyFrame:
    """Total attributed cost per feature over all time."""
    return (
        lines.filter(pl.col("feature_id").is_not_null())
        .group_by("feature_id")
        .agg(pl.col("amount").sum().alias("cost"))
    )


def daily_throughput(frames: Frames, judged: pl.LazyFrame, lines: pl.LazyFrame | None) -> pl.LazyFrame:
    """Per day and team: features delivered and confirmed, realised value, attributed cost, PRs merged."""
    return throughput.daily_throughput(
        frames["features"],
        frames["pull_requests"],
        judged,
        realised_value=realised_values(judged, frames["metrics"]),
        costs=None if lines is None else feature_costs(lines),
    )


def vanity_flags(
    frames: Frames, judged: pl.LazyFrame, lines: pl.LazyFrame | None, settings: FlagSettings, as_of_date: date
) -> pl.DataFrame:
    """Every vanity flag as of ``as_of_date`` under ``settings``, newest and most severe first (``core.flags``)."""
    return detectors.detect_all(frames, judged, lines, settings, as_of_date)


def flag_roll_ups(
    frames: Frames, judged: pl.LazyFrame, lines: pl.LazyFrame | None, settings: FlagSettings, as_of_date: date
) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    """The team windows and weekly series the flags were found in, for their charts (``flags.charts``)."""
    periods = rollups.team_periods(frames, judged, lines, as_of_date, settings.window_quarters)
    return periods, rollups.weekly_series(frames, as_of_date)


def similar_feature_costs(features: pl.LazyFrame, lines: pl.LazyFrame) -> pl.LazyFrame:
    """Per undelivered feature: the median attributed cost of its team's delivered features (feature_id, cost).

    'Similar' means delivered by the same team; a team with no delivered, costed feature gives no row,
    so the backlog falls back to the feature's estimate.
    """
    delivered = feature_costs(lines).join(
        features.filter(pl.col("status") == "delivered").select("feature_id", "team_id"), on="feature_id"
    )
    team_median = delivered.group_by("team_id").agg(pl.col("cost").median())
    return (
        features.filter(pl.col("status").is_in(("planned", "in_progress")))
        .select("feature_id", "team_id")
        .join(team_median, on="team_id", how="inner")
        .select("feature_id", "cost")
    )

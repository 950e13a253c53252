"""The small roll-ups the vanity-flag detectors read: team × window of quarters, series × week, outcomes to watch.

Built once from the fact tables (``detect_all`` collects them together), so each detector reads a row per
team window or per series week rather than the PRs, work items and deployments themselves.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta

import polars as pl

from core.costs import pull_request_features
from core.delivery.dora import PRODUCTION_ENVIRONMENTS
from core.delivery.throughput import daily_throughput
from core.flags.settings import DEFAULT_FLAG_SETTINGS

PRS_MERGED = "prs_merged"
"""The series id of a team's weekly PRs merged in ``weekly_series``."""


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
    points_mean_var, pointed_lumps, cycle_days_median, pr_size_median, deployments, weeks,
    prs_merged_chi2, deployments_chi2, agent_prs_chi2, prs_per_feature, agent_prs, agent_merged_share,
    agent_linked_share, cost, cost_unlinked. Work arrives in lumps (a
    feature's items close together; an item without a feature is its own lump), so the chance
    variances are taken over lumps: ``story_points_var`` of the points total (Σ per lump of its
    points squared) and ``points_mean_var`` of points per item (cluster-robust: Σ per lump of its
    summed deviations from the mean, squared, over the item count squared). ``pointed_items`` and
    ``points_per_item`` cover the pointed items of features (planned work), so a shift between
    feature work and loose bugs and chores is not read as inflation; ``pointed_lumps`` counts the
    features those items belong to (the independent units behind ``points_mean_var``), and
    ``lump_points`` and ``lump_items`` list per such feature its pointed items' points and their
    number (by feature id), for the permutation test of points per item.

    PRs and deployments arrive in bursts too, so each window is cut into ``weeks`` consecutive
    weeks from its first day (the last one takes the 1–6 days left over) and ``prs_merged_chi2`` and
    ``deployments_chi2`` (and ``agent_prs_chi2``, of agent PRs by the day they were opened) are
    Pearson's χ² of those weekly counts against a steady rate (each week's expectation in
    proportion to its days): about ``weeks`` − 1 for Poisson counts, more when
    the counts are bursty (``_weekly_chi2``). The detectors turn them into a dispersion factor.
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
            planned.sum().alias("planned_points"),
        )
        .sort(*by, "lump")
        .group_by(by, maintain_order=True)
        .agg(
            (pl.col("points") ** 2).sum().alias("story_points_var"),
            (pl.col("items") > 0).sum().cast(pl.Int64).alias("pointed_lumps"),
            pl.col("planned_points").filter(pl.col("items") > 0).alias("lump_points"),
            pl.col("items").filter(pl.col("items") > 0).cast(pl.Int64).alias("lump_items"),
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
    production = deployments.filter(pl.col("environment").str.to_lowercase().is_in(list(PRODUCTION_ENVIRONMENTS)))
    bursts = _weekly_chi2(daily, pl.col("day"), pl.col("prs_merged"), quarters, "prs_merged_chi2").join(
        _weekly_chi2(production, pl.col("finished_at").dt.date(), pl.lit(1), quarters, "deployments_chi2"),
        on=by,
        how="full",
        coalesce=True,
        nulls_equal=True,
    )
    opened_by_agents = prs.filter((pl.col("author_kind") == "agent").fill_null(False))
    bursts = bursts.join(
        _weekly_chi2(opened_by_agents, pl.col("created_at").dt.date(), pl.lit(1), quarters, "agent_prs_chi2"),
        on=by,
        how="full",
        coalesce=True,
        nulls_equal=True,
    )
    parts = [throughput, merged, sizes, agents, resolved, lumps, shipped, per_feature, bursts]
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
    counts += ["deployments", "pointed_lumps"]
    days = (pl.col("period_end") - pl.col("period_start")).dt.total_days() + 1
    return grid.with_columns(
        *[pl.col(c).fill_null(0) for c in counts],
        *[pl.col(c).fill_null(0.0) for c in ("story_points_resolved", "story_points_var", "realised_value")],
        *[pl.col(c).fill_null(0.0) for c in ("prs_merged_chi2", "deployments_chi2", "agent_prs_chi2")],
        (days // 7).cast(pl.Int64).alias("weeks"),
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
        "pointed_lumps",
        "lump_points",
        "lump_items",
        "cycle_days_median",
        "pr_size_median",
        "deployments",
        "weeks",
        "prs_merged_chi2",
        "deployments_chi2",
        "agent_prs_chi2",
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
            pl.lit(PRS_MERGED).alias("series_id"),
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


def _weekly_chi2(events: pl.LazyFrame, day: pl.Expr, count: pl.Expr, quarters: int, name: str) -> pl.LazyFrame:
    """Per team and window, Pearson's χ² of the weekly counts of ``events`` against a steady rate (``name``).

    The window of D days is cut into W = D // 7 weeks from its first day, the last one holding the
    days left over (d_w = 7, or 7 to 13 for the last). With y_w events in week w and T in all, a
    steady rate expects T·d_w/D in week w, and χ² = Σ_w (y_w − T·d_w/D)² / (T·d_w/D), which is
    (D/T)·Σ_w y_w²/d_w − T, so weeks without events need no row. Under Poisson counts χ² has
    about W − 1 degrees of freedom; its ratio to them is the counts' dispersion. Columns: team_id,
    period_last, ``name`` (null for a window without events).
    """
    windowed = _in_windows(events.with_columns(day.alias("__day"), count.alias("__count")), pl.col("__day"), quarters)
    start = pl.col("period_last").dt.offset_by(f"-{quarters - 1}q")
    days = (pl.col("period_last").dt.offset_by("1q") - start).dt.total_days()
    weeks = days // 7
    week = pl.min_horizontal((pl.col("__day") - start).dt.total_days() // 7, weeks - 1)
    week_days = pl.when(week < weeks - 1).then(7).otherwise(days - 7 * (weeks - 1))
    return (
        windowed.group_by("team_id", "period_last", week.alias("__week"))
        .agg(
            pl.col("__count").sum().cast(pl.Float64).alias("__y"),
            week_days.first().alias("__d"),
            days.first().alias("__days"),
        )
        .group_by("team_id", "period_last")
        .agg(
            pl.when(pl.col("__y").sum() > 0)
            .then(
                pl.col("__days").first() * (pl.col("__y") ** 2 / pl.col("__d")).sum() / pl.col("__y").sum()
                - pl.col("__y").sum()
            )
            .alias(name)
        )
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

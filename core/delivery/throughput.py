"""Business value throughput: features delivered and confirmed per period, beside PRs merged.

Stage 1 (``daily_throughput``) rolls the fact tables up to one row per day × team; stage 2
(``throughput_series``, ``milestone_markers``, ``period_changes``) turns that small roll-up into
a full-calendar weekly, monthly or quarterly series, milestone annotations and the comparison
behind the summary line. Levels: features delivered is output, features confirmed and realised
value are outcome, PRs merged is activity (hidden from executives by the caller).
"""

from __future__ import annotations

from datetime import date
from typing import Literal

import polars as pl

Period = Literal["week", "month", "quarter"]

VERDICTS = ("confirmed", "refuted", "inconclusive", "pending", "confounded")
"""Hypothesis verdicts, as written by the verdict engine."""

INTERVALS: dict[str, str] = {"week": "1w", "month": "1mo", "quarter": "1q"}

COUNTS = (
    "features_delivered",
    *(f"features_{v}" for v in VERDICTS),
    "prs_merged",
)
"""Count columns of the roll-up and the series; a period without activity has 0 in each."""

LEVELS = {
    "features_delivered": "output",
    **{f"features_{v}": "outcome" for v in VERDICTS},
    "realised_value": "outcome",
    "cost": "outcome",
    "value_to_cost": "outcome",
    "prs_merged": "activity",
}
"""The level of every series column, for the access layer."""

SUMMARY_MEASURES = {
    "prs_merged": "PRs merged",
    "features_delivered": "features delivered",
    "features_confirmed": "features confirmed",
    "realised_value": "realised value",
}


def daily_throughput(
    features: pl.LazyFrame,
    pull_requests: pl.LazyFrame,
    verdicts: pl.LazyFrame,
    realised_value: pl.LazyFrame | None = None,
    costs: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """Stage 1: per day and team, features delivered (by verdict), their value and cost, and PRs merged.

    A feature counts on the day it was delivered, with the verdict on its hypothesis (``verdicts``:
    feature_id, verdict) and, when given, its realised value (feature_id, realised_value) and
    attributed cost (feature_id, cost), both summed per feature. A PR counts on the day it merged.
    Returns day, team_id, features_delivered, features_<verdict> for each verdict, realised_value,
    cost (null when that input is not given) and prs_merged.
    """
    delivered = features.filter((pl.col("status") == "delivered") & pl.col("delivered_at").is_not_null()).select(
        "feature_id", "team_id", pl.col("delivered_at").dt.date().alias("day")
    )
    judged = verdicts.select("feature_id", "verdict").unique("feature_id", keep="first", maintain_order=True)
    facts = delivered.join(judged, on="feature_id", how="left")
    facts = facts.join(_per_feature(realised_value, "realised_value"), on="feature_id", how="left")
    facts = facts.join(_per_feature(costs, "cost"), on="feature_id", how="left")
    feature_days = facts.group_by("day", "team_id").agg(
        pl.len().alias("features_delivered"),
        *[(pl.col("verdict") == v).sum().alias(f"features_{v}") for v in VERDICTS],
        _sum_if_given("realised_value", realised_value is not None),
        _sum_if_given("cost", costs is not None),
    )
    pr_days = (
        pull_requests.filter(pl.col("merged_at").is_not_null())
        .group_by(pl.col("merged_at").dt.date().alias("day"), "team_id")
        .agg(pl.len().alias("prs_merged"))
    )
    return (
        feature_days.join(pr_days, on=["day", "team_id"], how="full", coalesce=True, nulls_equal=True)
        .with_columns(pl.col(c).fill_null(0).cast(pl.UInt32) for c in COUNTS)
        .select("day", "team_id", *COUNTS[:-1], "realised_value", "cost", "prs_merged")
        .sort("day", "team_id", nulls_last=True)
    )


def throughput_series(
    daily: pl.LazyFrame,
    period: Period = "week",
    team_id: str | None = None,
    start: date | None = None,
    end: date | None = None,
) -> pl.LazyFrame:
    """Stage 2: the throughput of the organisation (or one team) per calendar period, every period present.

    Weeks start on Monday; quarters are calendar quarters. The calendar runs from ``start`` to ``end``
    (default: the first to the last day with activity). Returns period_start, period_end, the count
    columns (0 in a period without activity), realised_value, cost and value_to_cost (realised value ÷
    cost of the features delivered in the period; null without both).
    """
    interval = INTERVALS[period]
    rows = daily if team_id is None else daily.filter(pl.col("team_id") == team_id)
    rows = _in_period(rows, start, end)
    rolled = rows.group_by(pl.col("day").dt.truncate(interval).alias("period_start")).agg(
        *[pl.col(c).sum() for c in COUNTS],
        *[pl.when(pl.col(c).is_not_null().any()).then(pl.col(c).sum()).alias(c) for c in ("realised_value", "cost")],
    )
    return (
        _calendar(rows, interval, start, end)
        .join(rolled, on="period_start", how="left")
        .with_columns(
            (pl.col("period_start").dt.offset_by(interval) - pl.duration(days=1)).alias("period_end"),
            *[pl.col(c).fill_null(0).cast(pl.UInt32) for c in COUNTS],
            pl.when(pl.col("cost") > 0).then(pl.col("realised_value") / pl.col("cost")).alias("value_to_cost"),
        )
        .select("period_start", "period_end", *COUNTS, "realised_value", "cost", "value_to_cost")
        .sort("period_start")
    )


def milestone_markers(
    milestones: pl.LazyFrame,
    features: pl.LazyFrame,
    period: Period = "week",
    team_id: str | None = None,
) -> pl.LazyFrame:
    """Each milestone with the period it falls in and the features it carried (of one team, if given).

    Returns milestone_id, name, date, period_start, features (count), feature_ids (sorted list).
    """
    carried = features.filter(pl.col("milestone_id").is_not_null())
    if team_id is not None:
        carried = carried.filter(pl.col("team_id") == team_id)
    by_milestone = carried.group_by("milestone_id").agg(pl.col("feature_id").sort().alias("feature_ids"))
    return (
        milestones.select("milestone_id", "name", "date")
        .join(by_milestone, on="milestone_id", how="left")
        .select(
            "milestone_id",
            "name",
            "date",
            pl.col("date").dt.truncate(INTERVALS[period]).alias("period_start"),
            pl.col("feature_ids").list.len().fill_null(0).cast(pl.UInt32).alias("features"),
            pl.col("feature_ids").fill_null([]),
        )
        .sort("date", "milestone_id")
    )


def period_changes(series: pl.LazyFrame, include_activity: bool = True) -> pl.LazyFrame:
    """The last period of a series against the one before it, one row per summary measure.

    Returns measure, label, previous_start, current_start, previous, current, change (relative, null
    when the previous value is 0 or missing). PRs merged is left out unless ``include_activity``.
    """
    measures = {k: v for k, v in SUMMARY_MEASURES.items() if include_activity or LEVELS[k] != "activity"}
    last_two = series.sort("period_start").tail(2)
    return pl.concat(
        [
            last_two.select(
                pl.lit(measure).alias("measure"),
                pl.lit(label).alias("label"),
                pl.col("period_start").first().alias("previous_start"),
                pl.col("period_start").last().alias("current_start"),
                pl.col(measure).first().cast(pl.Float64).alias("previous"),
                pl.col(measure).last().cast(pl.Float64).alias("current"),
            )
            .filter(pl.col("previous_start") != pl.col("current_start"))
            .filter(pl.col("previous").is_not_null() | pl.col("current").is_not_null())
            for measure, label in measures.items()
        ]
    ).with_columns(pl.when(pl.col("previous") != 0).then(pl.col("current") / pl.col("previous") - 1).alias("change"))


def summary_line(changes: pl.DataFrame, period: Period = "quarter") -> str:
    """One sentence from ``period_changes`` output, e.g. "2026 Q3 vs Q2: PRs merged +40%, features confirmed −10%"."""
    if changes.is_empty():
        return "Not enough history for a comparison yet."
    rows = changes.to_dicts()
    parts = [f"{row['label']} {_change_text(row['previous'], row['current'], row['change'])}" for row in rows]
    return f"{_period_label(rows[0]['current_start'], rows[0]['previous_start'], period)}: {', '.join(parts)}"


def _per_feature(frame: pl.LazyFrame | None, column: str) -> pl.LazyFrame:
    if frame is None:
        return pl.LazyFrame(schema={"feature_id": pl.String, column: pl.Float64})
    return frame.group_by("feature_id").agg(pl.col(column).cast(pl.Float64).sum())


def _sum_if_given(column: str, given: bool) -> pl.Expr:
    return pl.col(column).sum() if given else pl.lit(None, dtype=pl.Float64).alias(column)


def _in_period(frame: pl.LazyFrame, start: date | None, end: date | None) -> pl.LazyFrame:
    if start is not None:
        frame = frame.filter(pl.col("day") >= start)
    if end is not None:
        frame = frame.filter(pl.col("day") <= end)
    return frame


def _calendar(rows: pl.LazyFrame, interval: str, start: date | None, end: date | None) -> pl.LazyFrame:
    first = pl.lit(start) if start is not None else pl.col("day").min()
    last = pl.lit(end) if end is not None else pl.col("day").max()
    return (
        rows.select(pl.date_ranges(first.dt.truncate(interval), last, interval).alias("period_start"))
        .explode("period_start")
        .drop_nulls()
    )


def _change_text(previous: float | None, current: float | None, change: float | None) -> str:
    if change is not None:
        percent = round(change * 100)
        sign = "+" if percent > 0 else "−" if percent < 0 else "±"
        return f"{sign}{abs(percent)}%"
    return f"{_number(previous)} → {_number(current)}"


def _number(value: float | None) -> str:
    if value is None:
        return "none"
    return f"{value:,.0f}" if value == int(value) else f"{value:,.2f}"


def _period_label(current: date, previous: date, period: Period) -> str:
    if period == "quarter":
        now = f"{current.year} Q{(current.month - 1) // 3 + 1}"
        before = f"Q{(previous.month - 1) // 3 + 1}"
        return f"{now} vs {before if previous.year == current.year else f'{previous.year} {before}'}"
    if period == "month":
        return f"{current:%Y-%m} vs {previous:%Y-%m}"
    return f"Week of {current:%Y-%m-%d} vs week of {previous:%Y-%m-%d}"

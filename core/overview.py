"""Headline figures for the home page: the last complete quarter against the one before it."""

from __future__ import annotations

from datetime import date

import polars as pl


def quarter_bounds(as_of: date) -> tuple[date, date]:
    """Start and end (exclusive) of the last complete calendar quarter before ``as_of``."""
    this_quarter = date(as_of.year, 3 * ((as_of.month - 1) // 3) + 1, 1)
    start_month = this_quarter.month - 3
    start = date(this_quarter.year, start_month, 1) if start_month > 0 else date(this_quarter.year - 1, 10, 1)
    return start, this_quarter


def quarter_label(start: date) -> str:
    """``2026 Q3`` for a quarter starting on ``start``."""
    return f"{start.year} Q{(start.month - 1) // 3 + 1}"


def feature_lead_times(features: pl.LazyFrame, start: date, end: date) -> pl.LazyFrame:
    """Features delivered in ``[start, end)`` with their days from start of work to delivery."""
    return features.filter(
        (pl.col("status") == "delivered")
        & pl.col("delivered_at").is_between(
            pl.lit(start).cast(pl.Datetime("us")), pl.lit(end).cast(pl.Datetime("us")), closed="left"
        )
    ).select(
        "feature_id",
        "name",
        "team_id",
        "delivered_at",
        ((pl.col("delivered_at") - pl.col("started_at")).dt.total_hours() / 24).alias("lead_days"),
    )


def team_features(features: pl.LazyFrame, judged: pl.LazyFrame, team_id: str) -> pl.LazyFrame:
    """A team's open and delivered features, newest first, with the verdict on each hypothesis."""
    return (
        features.filter((pl.col("team_id") == team_id) & (pl.col("status") != "cancelled"))
        .join(judged.select("feature_id", "verdict", "explanation"), on="feature_id", how="left")
        .select("feature_id", "name", "status", "started_at", "delivered_at", "verdict", "explanation")
        .sort(pl.coalesce("delivered_at", "started_at"), descending=True, nulls_last=True)
    )

"""Measures over cost lines or their roll-up: cost per feature, summaries, by source, trends, activity contrast."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

import polars as pl

from core.costs.rules import DEFAULT_SETTINGS, CostSettings
from core.model.schema import COST_SOURCES
from core.stats import kendall_trend

SOURCE_LABELS: dict[str, str] = {
    "llm": "AI agents / LLM",
    "ci": "CI",
    "review": "Code review",
    "people": "People time",
    "other": "Other",
}
"""What each cost source is called on screen and in reports, in the order they are shown."""


ALL = "(all)"
"""The team or source label of a row that covers every team or every source."""


NO_TEAM = "(no team)"


@dataclass(frozen=True)
class Period:
    """A half-open span of time ``[start, end)`` with the label a user typed."""

    label: str
    start: datetime
    end: datetime


def parse_period(text: str) -> Period:
    """The quarter (``2026Q3``, ``2026-Q3``) or year (``2026``) named by ``text``."""
    cleaned = text.strip().upper()
    quarter = re.fullmatch(r"(\d{4})[- ]?Q([1-4])", cleaned)
    if quarter:
        year, q = int(quarter.group(1)), int(quarter.group(2))
        start = datetime(year, 3 * q - 2, 1)
        end = datetime(year + 1, 1, 1) if q == 4 else datetime(year, 3 * q + 1, 1)
        return Period(f"{year}Q{q}", start, end)
    if re.fullmatch(r"\d{4}", cleaned):
        year = int(cleaned)
        return Period(cleaned, datetime(year, 1, 1), datetime(year + 1, 1, 1))
    raise ValueError(f"`{text}` is not a period: expected a quarter such as 2026Q3 or a year such as 2026")


def cost_per_feature(lines: pl.LazyFrame, features: pl.LazyFrame, period: Period | str | None = None) -> pl.LazyFrame:
    """Each feature's attributed cost, in total and by source, with its delivery stage.

    ``lines`` are cost lines (``attribute_costs``) or their roll-up (``attribute_cost_rollup``), as for every
    measure below; periods are quarters or years, the roll-up's grain.

    With a period: the features delivered in it (``delivered`` true, ``stage`` ``delivered``)
    and the features not delivered by its end that carry cost (``work in progress`` or
    ``cancelled``); cost is every line attributed to the feature up to the period's end.
    Without one: every feature that is delivered or carries cost, with all its cost.
    Columns: ``feature_id, name, team_id, status, delivered_at, delivered, stage, cost,
    cost_llm, cost_ci, cost_review, cost_people, cost_other, lines, events``.
    """
    window = _as_period(period)
    attributed = rollup_cost_lines(lines).filter(pl.col("feature_id").is_not_null())
    if window is not None:
        attributed = attributed.filter(pl.col("occurred_at") < window.end)
    totals = attributed.group_by("feature_id").agg(
        pl.col("amount").sum().alias("cost"),
        *[pl.col("amount").filter(pl.col("source") == s).sum().alias(f"cost_{s}") for s in COST_SOURCES],
        pl.col("lines").sum(),
        pl.col("lines").sum().alias("events"),
    )
    cost_columns = ["cost", *[f"cost_{s}" for s in COST_SOURCES]]
    delivered = (pl.col("status") == "delivered") & pl.col("delivered_at").is_not_null()
    if window is not None:
        delivered = delivered & pl.col("delivered_at").is_between(window.start, window.end, closed="left")
        delivered_before = (pl.col("status") == "delivered") & (pl.col("delivered_at") < window.start)
    else:
        delivered_before = pl.lit(False)
    stage = (
        pl.when(pl.col("delivered"))
        .then(pl.lit("delivered"))
        .when(pl.col("status") == "cancelled")
        .then(pl.lit("cancelled"))
        .when(delivered_before)
        .then(pl.lit("delivered earlier"))
        .otherwise(pl.lit("work in progress"))
    )
    return (
        features.select("feature_id", "name", "team_id", "status", "delivered_at")
        .join(totals, on="feature_id", how="left")
        .with_columns(
            pl.col(cost_columns).fill_null(0.0),
            pl.col("lines", "events").fill_null(0).cast(pl.Int64),
            delivered.fill_null(False).alias("delivered"),
        )
        .with_columns(stage.alias("stage"))
        .filter(pl.col("delivered") | ((pl.col("stage") != "delivered earlier") & (pl.col("lines") > 0)))
        .sort(["delivered", "cost"], descending=[True, True])
    )


def cost_summary(
    lines: pl.LazyFrame,
    features: pl.LazyFrame,
    period: Period | str,
    settings: CostSettings = DEFAULT_SETTINGS,
) -> pl.LazyFrame:
    """One row: cost per delivered feature (median, mean), money in the period and its coverage.

    ``delivered_features``, ``median_cost_per_delivered_feature`` and
    ``mean_cost_per_delivered_feature`` cover features delivered in the period (cost as in
    ``cost_per_feature``); ``wip_features``/``wip_cost`` the work in progress. ``total_cost``,
    ``attributed_cost``, ``unattributed_cost``, ``coverage_pct`` and ``attributed_<source>``
    cover cost events occurring in the period; ``unpriced_events`` counts events with no money.
    ``rules_on`` names the enabled rules.
    """
    window = _as_period(period)
    assert window is not None
    lines = rollup_cost_lines(lines)
    per_feature = cost_per_feature(lines, features, window)
    delivered = per_feature.filter(pl.col("delivered")).select(
        pl.len().cast(pl.Int64).alias("delivered_features"),
        pl.col("cost").median().alias("median_cost_per_delivered_feature"),
        pl.col("cost").mean().alias("mean_cost_per_delivered_feature"),
    )
    wip = per_feature.filter(pl.col("stage") == "work in progress").select(
        pl.len().cast(pl.Int64).alias("wip_features"), pl.col("cost").sum().alias("wip_cost")
    )
    attributed = pl.col("feature_id").is_not_null()
    money = (
        _within(lines, window)
        .select(
            pl.col("amount").sum().alias("total_cost"),
            pl.col("amount").filter(attributed).sum().alias("attributed_cost"),
            pl.col("amount").filter(~attributed).sum().alias("unattributed_cost"),
            *[
                pl.col("amount").filter(attributed & (pl.col("source") == s)).sum().alias(f"attributed_{s}")
                for s in COST_SOURCES
            ],
            pl.col("unpriced_events").sum().round(0).cast(pl.Int64),
        )
        .with_columns(_coverage_pct("attributed_cost", "total_cost"))
    )
    return (
        delivered.join(wip, how="cross")
        .join(money, how="cross")
        .select(
            pl.lit(window.label).alias("period"),
            pl.lit(window.start).alias("start"),
            pl.lit(window.end).alias("end"),
            pl.all(),
            pl.lit(settings.rules_on).alias("rules_on"),
            pl.lit(settings.currency).alias("currency"),
        )
    )


def cost_by_source(lines: pl.LazyFrame, period: Period | str | None = None) -> pl.LazyFrame:
    """Money per cost source in the period: total, attributed, unattributed and coverage %."""
    window = _as_period(period)
    lines = rollup_cost_lines(lines)
    scoped = lines if window is None else _within(lines, window)
    attributed = pl.col("feature_id").is_not_null()
    sums = scoped.group_by("source").agg(
        pl.col("amount").sum().alias("total"),
        pl.col("amount").filter(attributed).sum().alias("attributed"),
        pl.col("amount").filter(~attributed).sum().alias("unattributed"),
    )
    return (
        pl.LazyFrame({"source": list(COST_SOURCES)})
        .join(sums, on="source", how="left", maintain_order="left")
        .with_columns(pl.col("total", "attributed", "unattributed").fill_null(0.0))
        .with_columns(_coverage_pct("attributed", "total"))
    )


def quarterly_cost_trend(lines: pl.LazyFrame, features: pl.LazyFrame) -> pl.LazyFrame:
    """Cost per delivered feature per quarter, by team and source, with % change on the quarter before.

    A feature counts in the quarter it was delivered, with the cost attributed to it up to that
    quarter's end. Rows for every team and for ``(all)`` teams; for every source and ``(all)``.
    Columns: ``quarter, quarter_start, team_id, source, delivered_features, cost,
    cost_per_delivered_feature, previous_quarter, pct_change``.
    """
    delivered = features.filter((pl.col("status") == "delivered") & pl.col("delivered_at").is_not_null()).select(
        "feature_id",
        pl.col("team_id").fill_null(NO_TEAM),
        pl.col("delivered_at").dt.truncate("1q").alias("quarter_start"),
    )
    feature_costs = (
        rollup_cost_lines(lines)
        .filter(pl.col("feature_id").is_not_null())
        .join(delivered.select("feature_id", "quarter_start"), on="feature_id", how="inner")
        .filter(pl.col("occurred_at") < pl.col("quarter_start").dt.offset_by("1q"))
        .group_by("feature_id", "source")
        .agg(pl.col("amount").sum().alias("cost"))
    )
    sources = pl.LazyFrame({"source": [*COST_SOURCES, ALL]})
    grid = delivered.join(sources, how="cross").join(
        pl.concat(
            [
                feature_costs,
                feature_costs.group_by("feature_id").agg(pl.lit(ALL).alias("source"), pl.col("cost").sum()),
            ],
            how="vertical_relaxed",
        ),
        on=["feature_id", "source"],
        how="left",
    )
    by_team = pl.concat([grid, grid.with_columns(pl.lit(ALL).alias("team_id"))])
    keys = ["team_id", "source"]
    return (
        by_team.group_by("quarter_start", *keys)
        .agg(pl.len().cast(pl.Int64).alias("delivered_features"), pl.col("cost").fill_null(0.0).sum())
        .with_columns((pl.col("cost") / pl.col("delivered_features")).alias("cost_per_delivered_feature"))
        .sort([*keys, "quarter_start"])
        .with_columns(
            _quarter_label(pl.col("quarter_start")).alias("quarter"),
            _quarter_label(pl.col("quarter_start").shift(1).over(keys)).alias("previous_quarter"),
            (
                (pl.col("cost_per_delivered_feature") / pl.col("cost_per_delivered_feature").shift(1).over(keys) - 1)
                * 100
            ).alias("pct_change"),
        )
        .select(
            "quarter",
            "quarter_start",
            *keys,
            "delivered_features",
            "cost",
            "cost_per_delivered_feature",
            "previous_quarter",
            "pct_change",
        )
    )


TREND_METHOD = (
    "Mann–Kendall test: Kendall's tau between quarter order and cost per delivered feature, "
    "one-sided exact p-value (scipy.stats.kendalltau); the trend is declining when tau < 0 and "
    "p < {alpha:g}, rising when tau > 0 and p < {alpha:g}, over at least {min_quarters} quarters "
    "with delivered features."
)


MIN_TREND_QUARTERS = 4
"""Fewest quarters with delivered features a trend verdict needs."""

TOO_FEW_QUARTERS = "too few quarters to call a trend"
"""The verdict of a series shorter than ``MIN_TREND_QUARTERS``."""


def trend_verdicts(trend: pl.DataFrame, alpha: float = 0.05, min_quarters: int = MIN_TREND_QUARTERS) -> pl.DataFrame:
    """Per team and source, whether cost per delivered feature is declining quarter over quarter.

    Takes the collected ``quarterly_cost_trend`` (a few rows per team and source). Columns:
    ``team_id, source, quarters, first_quarter, last_quarter, first_cost, last_cost,
    change_pct, tau, p_declining, p_rising, verdict, method``.
    """
    method = TREND_METHOD.format(alpha=alpha, min_quarters=min_quarters)
    rows: list[dict[str, object]] = []
    series = trend.filter(pl.col("cost_per_delivered_feature").is_not_null()).sort("quarter_start")
    for (team, source), group in series.group_by(["team_id", "source"], maintain_order=True):
        values = group["cost_per_delivered_feature"].to_list()
        tau, p_down, p_up = kendall_trend(values)
        if len(values) < min_quarters:
            verdict = TOO_FEW_QUARTERS
        elif tau is not None and tau < 0 and p_down is not None and p_down < alpha:
            verdict = "declining"
        elif tau is not None and tau > 0 and p_up is not None and p_up < alpha:
            verdict = "rising"
        else:
            verdict = "no clear trend"
        first, last = values[0], values[-1]
        rows.append(
            {
                "team_id": team,
                "source": source,
                "quarters": len(values),
                "first_quarter": group["quarter"][0],
                "last_quarter": group["quarter"][-1],
                "first_cost": first,
                "last_cost": last,
                "change_pct": (last / first - 1) * 100 if first else None,
                "tau": tau,
                "p_declining": p_down,
                "p_rising": p_up,
                "verdict": verdict,
                "method": method,
            }
        )
    return pl.DataFrame(rows, schema=_VERDICT_SCHEMA)


def activity_contrast(lines: pl.LazyFrame, pr_links: pl.LazyFrame, features: pl.LazyFrame) -> pl.LazyFrame:
    """Activity-level figures per quarter and team: cost per PR merged and PRs per delivered feature.

    ``cost`` is all money of the quarter (attributed or not); ``cost_per_pr`` divides it by
    PRs merged that quarter; ``prs_per_delivered_feature`` counts the merged PRs linked to the
    features delivered that quarter. ``level`` is ``activity``: these are not outcome figures.
    Columns: ``quarter, quarter_start, team_id, level, prs_merged, agent_prs_merged, cost,
    cost_per_pr, delivered_features, linked_prs, prs_per_delivered_feature``.
    """
    merged = pr_links.filter(pl.col("merged_at").is_not_null())
    prs = (
        _with_all_teams(
            merged.select(
                pl.col("merged_at").dt.truncate("1q").alias("quarter_start"),
                pl.col("team_id").fill_null(NO_TEAM),
                (pl.col("author_kind") == "agent").alias("agent"),
            )
        )
        .group_by("quarter_start", "team_id")
        .agg(
            pl.len().cast(pl.Int64).alias("prs_merged"), pl.col("agent").sum().cast(pl.Int64).alias("agent_prs_merged")
        )
    )
    money = (
        _with_all_teams(
            rollup_cost_lines(lines).select(
                pl.col("occurred_at").dt.truncate("1q").alias("quarter_start"),
                pl.col("team_id").fill_null(NO_TEAM),
                "amount",
            )
        )
        .group_by("quarter_start", "team_id")
        .agg(pl.col("amount").sum().alias("cost"))
    )
    delivered = features.filter((pl.col("status") == "delivered") & pl.col("delivered_at").is_not_null()).select(
        "feature_id",
        pl.col("delivered_at").dt.truncate("1q").alias("quarter_start"),
        pl.col("team_id").fill_null(NO_TEAM),
    )
    linked = merged.filter(pl.col("feature_id").is_not_null()).group_by("feature_id").agg(pl.len().alias("prs"))
    outputs = (
        _with_all_teams(delivered.join(linked, on="feature_id", how="left"))
        .group_by("quarter_start", "team_id")
        .agg(
            pl.len().cast(pl.Int64).alias("delivered_features"),
            pl.col("prs").fill_null(0).sum().cast(pl.Int64).alias("linked_prs"),
        )
    )
    keys = ["quarter_start", "team_id"]
    return (
        prs.join(money, on=keys, how="full", coalesce=True)
        .join(outputs, on=keys, how="full", coalesce=True)
        .with_columns(
            pl.col("prs_merged", "agent_prs_merged", "delivered_features", "linked_prs").fill_null(0),
            pl.col("cost").fill_null(0.0),
        )
        .with_columns(
            _quarter_label(pl.col("quarter_start")).alias("quarter"),
            pl.lit("activity").alias("level"),
            _ratio("cost", "prs_merged").alias("cost_per_pr"),
            _ratio("linked_prs", "delivered_features").alias("prs_per_delivered_feature"),
        )
        .select(
            "quarter",
            "quarter_start",
            "team_id",
            "level",
            "prs_merged",
            "agent_prs_merged",
            "cost",
            "cost_per_pr",
            "delivered_features",
            "linked_prs",
            "prs_per_delivered_feature",
        )
        .sort("team_id", "quarter_start")
    )


def rollup_cost_lines(lines: pl.LazyFrame) -> pl.LazyFrame:
    """Cost lines (``attribute_costs``) summed as ``rollup_cost_groups`` sums them; a roll-up passes through."""
    if _is_rollup(lines):
        return lines
    return lines.group_by(
        pl.col("occurred_at").dt.truncate("1q").alias("occurred_at"), "source", "rule", "feature_id", "team_id"
    ).agg(
        pl.col("amount").sum(),
        pl.len().cast(pl.Int64).alias("lines"),
        pl.col("share").filter(pl.col("event_amount").is_null()).sum().cast(pl.Float64).alias("unpriced_events"),
    )


def _is_rollup(lines: pl.LazyFrame) -> bool:
    names = lines.collect_schema().names()
    return "lines" in names and "event_id" not in names


_VERDICT_SCHEMA = pl.Schema(
    {
        "team_id": pl.String,
        "source": pl.String,
        "quarters": pl.Int64,
        "first_quarter": pl.String,
        "last_quarter": pl.String,
        "first_cost": pl.Float64,
        "last_cost": pl.Float64,
        "change_pct": pl.Float64,
        "tau": pl.Float64,
        "p_declining": pl.Float64,
        "p_rising": pl.Float64,
        "verdict": pl.String,
        "method": pl.String,
    }
)


def _quarter_label(start: pl.Expr) -> pl.Expr:
    return pl.concat_str(start.dt.year().cast(pl.String), pl.lit("Q"), start.dt.quarter().cast(pl.String))


def _coverage_pct(attributed: str, total: str) -> pl.Expr:
    return pl.when(pl.col(total) != 0).then(pl.col(attributed) / pl.col(total) * 100).alias("coverage_pct")


def _ratio(numerator: str, denominator: str) -> pl.Expr:
    return pl.when(pl.col(denominator) > 0).then(pl.col(numerator) / pl.col(denominator))


def _within(lines: pl.LazyFrame, period: Period) -> pl.LazyFrame:
    return lines.filter(pl.col("occurred_at").is_between(period.start, period.end, closed="left"))


def _with_all_teams(frame: pl.LazyFrame) -> pl.LazyFrame:
    return pl.concat([frame, frame.with_columns(pl.lit(ALL).alias("team_id"))])


def _as_period(period: Period | str | None) -> Period | None:
    return parse_period(period) if isinstance(period, str) else period

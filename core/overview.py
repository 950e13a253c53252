"""Headline figures for Home and the quarterly review: the last complete quarter against the one before it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from functools import partial

import polars as pl

from core import costs, formatting, measures
from core.costs import Period
from core.outcomes.verdicts import JUDGED, VERDICTS


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


# -- The executive's question: did last quarter's work change anything for customers, and what did it cost? --

MOVED_BY = 0.02
"""An outcome metric moved when its quarter mean differs from the quarter before's by at least 2%."""

TREND_QUARTERS = 8
"""Quarters the cost trend looks back over, up to and including the chosen one."""

NO_HYPOTHESIS = "no hypothesis"
"""The verdict column of a delivered feature that was shipped with no stated hypothesis."""


@dataclass(frozen=True)
class QuarterlyAnswer:
    """The quarterly review's figures for one quarter and scope; every page, CLI report and file shows these.

    Costs are every cost attributed to a feature delivered in the quarter up to the quarter's end
    (``core.costs.cost_per_feature``), so ``delivered_cost`` is the total of exactly the features counted
    in ``delivered`` and the median and mean are over that same set. ``spend`` is all money of cost events
    occurring in the quarter; ``unlinked_spend`` the part no attribution rule tied to a feature. "Judged"
    is ``core.outcomes.verdicts.JUDGED``. No activity-level figure (PRs, commits, story points) is here.
    """

    period: Period
    previous: Period
    team_id: str | None
    scope: str
    currency: str
    delivered: int
    with_hypothesis: int
    verdicts: dict[str, int]
    realised_value: float
    delivered_cost: float
    median_cost: float | None
    mean_cost: float | None
    previous_delivered: int
    previous_median_cost: float | None
    previous_mean_cost: float | None
    spend: float
    unlinked_spend: float
    features: pl.DataFrame
    metrics: pl.DataFrame
    trend: pl.DataFrame
    trend_statistics: pl.DataFrame

    @property
    def judged(self) -> int:
        """Delivered features whose hypothesis got a final verdict (confirmed, refuted or inconclusive)."""
        return sum(self.verdicts[v] for v in JUDGED)

    @property
    def unlinked_share(self) -> float | None:
        """The share of the quarter's spend linked to no feature; None when nothing was spent."""
        return self.unlinked_spend / self.spend if self.spend else None

    @property
    def without_hypothesis(self) -> pl.DataFrame:
        """The delivered features shipped with no hypothesis: the first next step."""
        return self.features.filter(pl.col("verdict") == NO_HYPOTHESIS)

    @property
    def moved(self) -> pl.DataFrame:
        """The outcome metrics whose quarter mean moved by ``MOVED_BY`` or more against the quarter before."""
        return self.metrics.filter(pl.col("change_pct").abs() >= MOVED_BY)

    def sentences(self) -> list[str]:
        """The answer in plain sentences, in the order an executive asks."""
        money = partial(formatting.money, currency=self.currency)
        counts = self.verdicts
        words = [
            f"In {self.period.label}, {self.scope} delivered {formatting.count(self.delivered, 'feature')}; "
            f"{self.with_hypothesis} of them had a hypothesis.",
            f"{counts['confirmed']} confirmed, {counts['refuted']} refuted, {counts['inconclusive']} inconclusive, "
            f"{counts['pending']} pending"
            + (
                f", {counts['confounded']} confounded by another feature on the same metric."
                if counts["confounded"]
                else "."
            ),
            f"Realised value {money(self.realised_value)} against a cost of {money(self.delivered_cost)} "
            f"for the {formatting.count(self.delivered, 'delivered feature')}.",
        ]
        if self.delivered:
            words.append(
                f"Median cost per delivered feature {money(self.median_cost)} "
                f"({_against(self.median_cost, self.previous_median_cost, self.previous.label, money)}); "
                f"mean cost per delivered feature {money(self.mean_cost)} "
                f"({_against(self.mean_cost, self.previous_mean_cost, self.previous.label, money)})."
            )
        words.append(
            f"{formatting.percent(self.unlinked_share, 'nothing was spent')} of the quarter's spend of "
            f"{money(self.spend)} is linked to no feature ({money(self.unlinked_spend)})."
        )
        return words

    def trend_sentence(self) -> str:
        """The mean cost per delivered feature's trend over the quarters up to this one, in one sentence."""
        if self.trend.height < 2:
            return f"Too little history for a trend: {formatting.count(self.trend.height, 'quarter')} with deliveries."
        first, last = self.trend.row(0, named=True), self.trend.row(-1, named=True)
        verdict = self.trend_statistics["verdict"][0] if self.trend_statistics.height else "no clear trend"
        how = {
            "declining": "is declining",
            "rising": "is rising",
            "no clear trend": "shows no clear trend",
        }.get(verdict, f"cannot be called a trend yet (a trend needs {costs.MIN_TREND_QUARTERS} quarters)")
        return (
            f"Mean cost per delivered feature {how} over the {self.trend.height} quarters "
            f"{first['quarter']}–{last['quarter']}: from {formatting.money(first['mean_cost'], self.currency)} "
            f"to {formatting.money(last['mean_cost'], self.currency)}."
        )

    def figures(self) -> pl.DataFrame:
        """The headline figures, one a row (``figure, label, value, unit``): the CSV report and its tests."""
        rows: list[tuple[str, str, float | None, str]] = [
            ("delivered", "features delivered", self.delivered, "features"),
            ("with_hypothesis", "with a hypothesis", self.with_hypothesis, "features"),
            *[(v, v, self.verdicts[v], "features") for v in VERDICTS],
            ("judged", "judged (confirmed, refuted or inconclusive)", self.judged, "features"),
            ("realised_value", "realised value", self.realised_value, self.currency),
            ("delivered_cost", "cost of the delivered features", self.delivered_cost, self.currency),
            ("median_cost", "median cost per delivered feature", self.median_cost, self.currency),
            ("mean_cost", "mean cost per delivered feature", self.mean_cost, self.currency),
            ("previous_delivered", f"features delivered in {self.previous.label}", self.previous_delivered, "features"),
            (
                "previous_median_cost",
                f"median cost per delivered feature in {self.previous.label}",
                self.previous_median_cost,
                self.currency,
            ),
            (
                "previous_mean_cost",
                f"mean cost per delivered feature in {self.previous.label}",
                self.previous_mean_cost,
                self.currency,
            ),
            ("spend", "spend in the quarter", self.spend, self.currency),
            ("unlinked_spend", "spend linked to no feature", self.unlinked_spend, self.currency),
            ("unlinked_share", "share of spend linked to no feature", self.unlinked_share, "fraction"),
        ]
        return pl.DataFrame(
            {
                "period": [self.period.label] * len(rows),
                "team_id": [self.team_id] * len(rows),
                "figure": [r[0] for r in rows],
                "label": [r[1] for r in rows],
                "value": [None if r[2] is None else float(r[2]) for r in rows],
                "unit": [r[3] for r in rows],
            },
            schema={
                "period": pl.String,
                "team_id": pl.String,
                "figure": pl.String,
                "label": pl.String,
                "value": pl.Float64,
                "unit": pl.String,
            },
        )


def last_complete_quarter(as_of: date) -> Period:
    """The last calendar quarter that ended on or before ``as_of``."""
    start, _ = quarter_bounds(as_of)
    return costs.parse_period(f"{start.year}Q{(start.month - 1) // 3 + 1}")


def review_quarters(features: pl.LazyFrame, as_of: date) -> list[str]:
    """Every complete quarter from the first delivery up to ``as_of``, newest first (the last complete one alone
    when nothing was delivered yet)."""
    latest = last_complete_quarter(as_of)
    first = features.select(pl.col("delivered_at").min()).collect().item()
    quarters = [latest]
    while first is not None and quarters[-1].start > first and len(quarters) < 40:
        quarters.append(previous_quarter(quarters[-1]))
    return [q.label for q in quarters]


def previous_quarter(period: Period) -> Period:
    """The quarter before ``period``."""
    start = period.start.date()
    return last_complete_quarter(start)


def quarterly_answer(
    frames: Mapping[str, pl.LazyFrame],
    judged: pl.LazyFrame,
    cost_lines: pl.LazyFrame,
    period: Period,
    currency: str,
    team_id: str | None = None,
) -> QuarterlyAnswer:
    """The quarterly review of ``period`` for the organisation (or ``team_id``).

    ``judged`` is ``core.measures.judged_hypotheses``; ``cost_lines`` the cost lines or their roll-up
    (``core.measures.cost_rollup``) under the workspace's cost settings.
    """
    features, lines = frames["features"], cost_lines
    if team_id is not None:
        features = features.filter(pl.col("team_id") == team_id)
        lines = lines.filter(pl.col("team_id") == team_id)
    teams = frames["teams"].select("team_id", pl.col("name").alias("team"))
    previous = previous_quarter(period)
    metrics = frames["metrics"].filter(pl.col("level") == "outcome")
    realised = measures.realised_values(judged, frames["metrics"])
    hypotheses = judged.select("feature_id", "metric_id", "verdict").join(
        metrics.select("metric_id", pl.col("name").alias("outcome_metric")), on="metric_id", how="left"
    )
    delivered = (
        costs.cost_per_feature(lines, features, period)
        .filter(pl.col("delivered"))
        .join(teams, on="team_id", how="left")
        .join(hypotheses, on="feature_id", how="left")
        .join(realised, on="feature_id", how="left")
        .select(
            "feature_id",
            "name",
            "team_id",
            pl.coalesce("team", "team_id").alias("team"),
            "delivered_at",
            "cost",
            pl.lit(currency).alias("currency"),
            "outcome_metric",
            pl.col("verdict").fill_null(NO_HYPOTHESIS),
            pl.col("realised_value").fill_null(0.0),
        )
        .sort("cost", descending=True)
    )
    summaries = [
        costs.cost_summary(lines, features, p).select(
            "delivered_features",
            "median_cost_per_delivered_feature",
            "mean_cost_per_delivered_feature",
            "total_cost",
            "unattributed_cost",
        )
        for p in (period, previous)
    ]
    moved = metric_movement(metrics, frames["metric_observations"], delivered.lazy(), period, previous, team_id)
    trend = cost_trend(lines, features, period)
    shown, now, before, movement, history = pl.collect_all([delivered, *summaries, moved, trend])
    now_row, before_row = now.row(0, named=True), before.row(0, named=True)
    tally = shown["verdict"].value_counts()
    verdict_counts = {v: 0 for v in VERDICTS} | dict(zip(tally["verdict"], tally["count"], strict=True))
    verdict_counts.pop(NO_HYPOTHESIS, None)
    team_names = dict(teams.collect().iter_rows())
    statistics = costs.trend_verdicts(
        history.select(
            "quarter",
            "quarter_start",
            pl.lit(team_id or costs.ALL).alias("team_id"),
            pl.lit(costs.ALL).alias("source"),
            pl.col("mean_cost").alias("cost_per_delivered_feature"),
        )
    )
    return QuarterlyAnswer(
        period=period,
        previous=previous,
        team_id=team_id,
        scope="the organisation" if team_id is None else f"team {team_names.get(team_id, team_id)}",
        currency=currency,
        delivered=shown.height,
        with_hypothesis=int((shown["verdict"] != NO_HYPOTHESIS).sum()),
        verdicts=verdict_counts,
        realised_value=float(shown["realised_value"].sum()),
        delivered_cost=float(shown["cost"].sum()),
        median_cost=now_row["median_cost_per_delivered_feature"],
        mean_cost=now_row["mean_cost_per_delivered_feature"],
        previous_delivered=before_row["delivered_features"],
        previous_median_cost=before_row["median_cost_per_delivered_feature"],
        previous_mean_cost=before_row["mean_cost_per_delivered_feature"],
        spend=float(now_row["total_cost"] or 0.0),
        unlinked_spend=float(now_row["unattributed_cost"] or 0.0),
        features=shown,
        metrics=movement,
        trend=history,
        trend_statistics=statistics,
    )


def metric_movement(
    metrics: pl.LazyFrame,
    observations: pl.LazyFrame,
    delivered: pl.LazyFrame,
    period: Period,
    previous: Period,
    team_id: str | None = None,
) -> pl.LazyFrame:
    """Each outcome metric's mean over ``period`` against ``previous``, better or worse in its good direction.

    For a team: the metrics it owns and those its delivered features aimed at. Columns: ``metric_id,
    name, unit, direction, previous_level, level, change_pct, better, features_aimed, features_confirmed``.
    """
    aimed = delivered.filter(pl.col("outcome_metric").is_not_null()).join(
        metrics.select("metric_id", pl.col("name").alias("outcome_metric")), on="outcome_metric", how="inner"
    )
    aims = aimed.group_by("metric_id").agg(
        pl.len().cast(pl.Int64).alias("features_aimed"),
        (pl.col("verdict") == "confirmed").sum().cast(pl.Int64).alias("features_confirmed"),
    )
    if team_id is not None:
        metrics = metrics.filter(
            (pl.col("team_id") == team_id)
            | pl.col("metric_id").is_in(aims.select("metric_id").collect().to_series().to_list())
        )

    def mean_over(window: Period, alias: str) -> pl.LazyFrame:
        inside = pl.col("date").is_between(window.start.date(), window.end.date(), closed="left")
        return (
            observations.filter((pl.col("segment") == "all") & inside)
            .group_by("metric_id")
            .agg(pl.col("value").mean().alias(alias))
        )

    relative = pl.col("level") / pl.col("previous_level") - 1
    good = pl.when(pl.col("direction") == "lower").then(-relative).otherwise(relative)
    return (
        metrics.select("metric_id", "name", "unit", "direction")
        .join(mean_over(previous, "previous_level"), on="metric_id", how="inner")
        .join(mean_over(period, "level"), on="metric_id", how="inner")
        .join(aims, on="metric_id", how="left")
        .with_columns(
            pl.when(pl.col("previous_level") != 0).then(relative).alias("change_pct"),
            (good > 0).alias("better"),
            pl.col("features_aimed", "features_confirmed").fill_null(0),
        )
        .sort(pl.col("change_pct").abs(), descending=True, nulls_last=True)
    )


def cost_trend(lines: pl.LazyFrame, features: pl.LazyFrame, period: Period) -> pl.LazyFrame:
    """Median and mean cost per delivered feature in each of the ``TREND_QUARTERS`` quarters up to ``period``.

    Each quarter as ``core.costs.cost_summary`` counts it; quarters with no delivered feature are left out.
    Columns: ``quarter, quarter_start, delivered_features, median_cost, mean_cost``.
    """
    quarters = [period]
    for _ in range(TREND_QUARTERS - 1):
        quarters.insert(0, previous_quarter(quarters[0]))
    return pl.concat(
        [
            costs.cost_summary(lines, features, q).select(
                pl.col("period").alias("quarter"),
                pl.col("start").alias("quarter_start"),
                "delivered_features",
                pl.col("median_cost_per_delivered_feature").alias("median_cost"),
                pl.col("mean_cost_per_delivered_feature").alias("mean_cost"),
            )
            for q in quarters
        ]
    ).filter(pl.col("delivered_features") > 0)


def _against(value: float | None, before: float | None, label: str, money: Callable[[float | None], str]) -> str:
    """``+12% on 2026Q2's 40,000 USD``, or why there is nothing to compare with."""
    if value is None or before is None:
        return f"nothing delivered in {label} to compare with"
    return f"{formatting.change(value / before - 1 if before else None, 'no cost then')} on {label}'s {money(before)}"

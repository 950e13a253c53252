"""Cost per feature: every cost event priced, attributed to the feature it served, and trended.

Stage 1 rolls the fact tables up: each cost event gets its money (the amount given, else its
quantity times the rate that applies), each pull request its feature and link path, and each
person, repository and team its feature-linked activity per ISO week. Stage 2 attributes each
event by the first rule that reaches a feature, in this order of trust:

1. ``direct`` — the event names a feature.
2. ``pull_request`` — the event's PR belongs to a feature (directly, or through the work-item
   key on the PR, in its title, or in its branch name).
3. ``work_item`` — the event's work-item key, else a key in the event's branch name, belongs
   to a feature.
4. ``time_allocation`` — the event names only a person or agent: split across the features
   they touched that week by their share of activity (PRs authored and open, reviews done).
5. ``repo_activity`` — the event names only a repository or team: split across the features
   with PRs open in that repository (else that team) that week, by PR count.

Every rule can be switched off in ``CostSettings``. An event no enabled rule reaches stays
unattributed with the reason, so attributed plus unattributed money is always the money in.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import ClassVar

import polars as pl
from scipy import stats

from core.model.schema import COST_SOURCES
from core.model.work_item_keys import first_work_item_key

RULES: tuple[str, ...] = ("direct", "pull_request", "work_item", "time_allocation", "repo_activity")
"""The attribution rules in order of trust."""

RULE_LABELS: dict[str, str] = {
    "direct": "explicit feature on the event",
    "pull_request": "the event's PR → its feature",
    "work_item": "the event's work-item key → its feature",
    "time_allocation": "person or agent time split by their weekly activity",
    "repo_activity": "repository or team cost split by features active that week",
}

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

DEFAULT_CI_RATES: tuple[tuple[str, float], ...] = (
    ("ubuntu", 0.008),
    ("linux", 0.008),
    ("windows", 0.016),
    ("macos", 0.08),
    ("default", 0.008),
)
"""Money per CI minute by runner type (GitHub-hosted list prices); ``default`` for any other runner."""

DEFAULT_MODEL_PRICES: tuple[tuple[str, float, float], ...] = (
    ("gpt-5", 1.25, 10.0),
    ("gpt-5-mini", 0.25, 2.0),
    ("gpt-5-nano", 0.05, 0.4),
    ("gpt-4.1", 2.0, 8.0),
    ("gpt-4.1-mini", 0.4, 1.6),
    ("gpt-4.1-nano", 0.1, 0.4),
    ("gpt-4o", 2.5, 10.0),
    ("gpt-4o-mini", 0.15, 0.6),
    ("o3", 2.0, 8.0),
    ("o4-mini", 1.1, 4.4),
    ("claude-opus-4-5", 5.0, 25.0),
    ("claude-opus-4-1", 15.0, 75.0),
    ("claude-opus-4", 15.0, 75.0),
    ("claude-sonnet-4-5", 3.0, 15.0),
    ("claude-sonnet-4", 3.0, 15.0),
    ("claude-3-7-sonnet", 3.0, 15.0),
    ("claude-3-5-sonnet", 3.0, 15.0),
    ("claude-haiku-4-5", 1.0, 5.0),
    ("claude-3-5-haiku", 0.8, 4.0),
)
"""Model, input and output price in money per million tokens (provider list prices)."""


@dataclass(frozen=True)
class CostSettings:
    """Rates that turn quantities into money, and which attribution rules are on."""

    GROUP: ClassVar[str] = "cost"
    """The name these settings are kept under in the workspace."""

    ci_rates: tuple[tuple[str, float], ...] = DEFAULT_CI_RATES
    model_prices: tuple[tuple[str, float, float], ...] = DEFAULT_MODEL_PRICES
    input_token_share: float = 0.75
    rules: tuple[str, ...] = RULES
    currency: str = "USD"

    def __post_init__(self) -> None:
        unknown = [r for r in self.rules if r not in RULES]
        if unknown:
            raise ValueError(f"unknown attribution rule {unknown[0]!r}; known rules: {', '.join(RULES)}")
        if not 0.0 <= self.input_token_share <= 1.0:
            raise ValueError("input_token_share must be between 0 and 1")

    def without(self, *rules: str) -> CostSettings:
        """These settings with ``rules`` switched off."""
        return replace(self, rules=tuple(r for r in self.rules if r not in rules))

    @property
    def rules_on(self) -> str:
        """The enabled rules in order of trust, as a sentence for a caption."""
        if not self.rules:
            return "no attribution rule is on"
        return "; ".join(f"{i}. {RULE_LABELS[r]}" for i, r in enumerate(RULES, start=1) if r in self.rules)


DEFAULT_SETTINGS = CostSettings()


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


# ---------------------------------------------------------------------------------------------
# Stage 2 entry points: attribution and the measures over cost lines
# ---------------------------------------------------------------------------------------------


def attribute_costs(
    cost_events: pl.LazyFrame,
    pull_requests: pl.LazyFrame,
    work_items: pl.LazyFrame,
    features: pl.LazyFrame,
    people: pl.LazyFrame,
    settings: CostSettings = DEFAULT_SETTINGS,
) -> pl.LazyFrame:
    """Cost lines: each event's money split over the features it served, or left unattributed.

    Columns: ``event_id, occurred_at, source, detail, quantity, unit, pricing, event_amount,
    share, amount, feature_id, team_id, rule, link, reason``. The shares of one event sum to 1;
    ``amount`` is ``event_amount × share`` and is null only for an event that could not be
    priced (``pricing`` says why). ``rule`` is the rule that attributed the line or
    ``unattributed``; ``link`` is the path (``direct tag``, ``via PR api#12``, ``via work item
    PAY-123``, ``via time allocation (...)``, ``via repo activity (...)``); ``reason`` says why
    an unattributed line was not reached. ``team_id`` is the feature's team, else the event's
    or its person's team.
    """
    priced = price_cost_events(cost_events, people, settings)
    pr_links = pull_request_features(pull_requests, work_items, features)
    activity = feature_activity(pr_links, review_counts(cost_events))
    items = work_item_features(work_items, features)
    return attribute_priced_events(priced, pr_links, items, activity, features, settings)


def attribute_cost_rollup(
    cost_events: pl.LazyFrame,
    pull_requests: pl.LazyFrame,
    work_items: pl.LazyFrame,
    features: pl.LazyFrame,
    people: pl.LazyFrame,
    settings: CostSettings = DEFAULT_SETTINGS,
) -> pl.LazyFrame:
    """The money ``attribute_costs`` attributes, summed per feature, team, source, rule and quarter.

    Same rules and the same totals as the cost lines, without expanding split events into one
    line per feature; every measure below takes either. The events are grouped first
    (``group_cost_events``), so pricing and every rule's lookup run once per group, and each
    rule looks up only the groups it can still reach (``rollup_cost_groups``).
    """
    groups = group_cost_events(cost_events).cache()
    pr_links = pull_request_features(pull_requests, work_items, features).drop("link").cache()
    activity = feature_activity(pr_links, review_counts(groups, grouped=True)).drop("link").cache()
    priced = price_cost_groups(groups, people, settings)
    items = work_item_features(work_items, features)
    return rollup_cost_groups(priced, pr_links, items, activity, features, settings)


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
        tau, p_down, p_up = _kendall(values)
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


# ---------------------------------------------------------------------------------------------
# Stage 1: fact roll-ups
# ---------------------------------------------------------------------------------------------


def price_cost_events(
    cost_events: pl.LazyFrame, people: pl.LazyFrame, settings: CostSettings = DEFAULT_SETTINGS
) -> pl.LazyFrame:
    """Each cost event with its money: the amount given, else its quantity times the rate that applies.

    LLM tokens × the model's price per million tokens (input, output, or blended by
    ``input_token_share`` for plain ``tokens``); CI minutes × the runner type's rate; review
    minutes and people hours × the person's loaded hourly cost. Adds ``money`` (null when no
    rate applies), ``pricing`` (how it was priced, or why not), ``person_team_id`` and ``week``.
    """
    quantity = pl.col("quantity")
    from_quantity = _money_from_quantity()
    pricing = (
        pl.when(pl.col("amount").is_not_null())
        .then(pl.lit("amount given"))
        .when(quantity.is_null())
        .then(pl.lit("no amount or quantity"))
        .otherwise(pl.col("__pricing"))
    )
    return (
        cost_events.join(_kind_rates(cost_events, people, settings), on=_KIND_KEYS, how="left", nulls_equal=True)
        .with_columns(
            pl.coalesce(pl.col("amount"), from_quantity).alias("money"),
            pricing.alias("pricing"),
            pl.col("occurred_at").dt.truncate("1w").dt.date().alias("week"),
        )
        .drop("__per_unit", "__hours_per_unit", "__pricing", "hourly_cost")
    )


_KIND_KEYS = ["source", "detail", "unit", "person_id"]
"""What an event's rate depends on: its kind (source, detail, unit) and its person's hourly cost."""

_GROUP_KEYS = (
    "source",
    "detail",
    "unit",
    "person_id",
    "team_id",
    "feature_id",
    "pr_id",
    "work_item_key",
    "repo",
    "branch",
)
"""Everything an event's money and attribution depend on besides its time (``group_cost_events``)."""


def group_cost_events(cost_events: pl.LazyFrame) -> pl.LazyFrame:
    """Cost events summed per kind, link keys, week and quarter: what the roll-up needs of them.

    Events that share every column pricing and attribution read (``_GROUP_KEYS``), their week
    and their quarter get the same rate and reach the same features by the same rule, so they
    are priced and attributed once as a group (at size L, 10M events become about 2M groups).
    Columns: the keys, ``week``, ``occurred_at`` (the quarter's first instant), ``amount`` (the
    amounts given, summed), ``quantity`` (summed over the events without an amount),
    ``quantity_events`` (how many those are), ``blank_events`` (neither amount nor quantity)
    and ``events``.
    """
    amount, quantity = pl.col("amount"), pl.col("quantity")
    by_quantity = amount.is_null() & quantity.is_not_null()
    # Plain sums of precomputed columns: a filtered aggregation in the group-by costs about as
    # much as the grouping itself at 10M events.
    return (
        cost_events.select(
            *_GROUP_KEYS,
            pl.col("occurred_at").dt.truncate("1w").dt.date().alias("week"),
            pl.col("occurred_at").dt.truncate("1q").alias("occurred_at"),
            amount,
            pl.when(by_quantity).then(quantity).alias("quantity"),
            by_quantity.cast(pl.Int64).alias("quantity_events"),
            (amount.is_null() & quantity.is_null()).cast(pl.Int64).alias("blank_events"),
        )
        .group_by(*_GROUP_KEYS, "week", "occurred_at")
        .agg(
            pl.col("amount", "quantity", "quantity_events", "blank_events").sum(),
            pl.len().cast(pl.Int64).alias("events"),
        )
    )


def price_cost_groups(
    groups: pl.LazyFrame, people: pl.LazyFrame, settings: CostSettings = DEFAULT_SETTINGS
) -> pl.LazyFrame:
    """Grouped events (``group_cost_events``) with their money, as ``price_cost_events`` prices each event.

    ``money`` is the amounts given plus the group's quantity times its rate; ``unpriced`` counts
    the events left without money (no amount and no quantity, or a quantity with no rate).
    Adds ``person_team_id``.
    """
    from_quantity = _money_from_quantity()
    # Only groups holding events without an amount need a rate (a fifth of them at size L); the
    # others need their person's team alone, a much smaller join.
    needs_rate = pl.col("quantity_events") > 0
    by_rate = groups.filter(needs_rate)
    priced = (
        by_rate.join(_kind_rates(by_rate, people, settings), on=_KIND_KEYS, how="left", nulls_equal=True)
        .with_columns(
            (pl.col("amount") + from_quantity.fill_null(0.0)).alias("money"),
            (pl.col("blank_events") + pl.when(from_quantity.is_null()).then(pl.col("quantity_events")).otherwise(0))
            .cast(pl.Float64)
            .alias("unpriced"),
        )
        .drop("__per_unit", "__hours_per_unit", "__pricing", "hourly_cost")
    )
    given = (
        groups.filter(~needs_rate)
        .join(people.select("person_id", pl.col("team_id").alias("person_team_id")), on="person_id", how="left")
        .with_columns(pl.col("amount").alias("money"), pl.col("blank_events").cast(pl.Float64).alias("unpriced"))
    )
    return pl.concat([priced, given])


def _money_from_quantity() -> pl.Expr:
    """``quantity`` times the kind's rate per unit, or its hours per unit times the hourly cost (null: no rate)."""
    quantity = pl.col("quantity")
    return pl.coalesce(quantity * pl.col("__per_unit"), quantity * pl.col("__hours_per_unit") * pl.col("hourly_cost"))


def _kind_rates(events: pl.LazyFrame, people: pl.LazyFrame, settings: CostSettings) -> pl.LazyFrame:
    """Per distinct kind and person of ``events``: the rate, the hourly cost and how such an event is priced.

    Everything that depends only on the event's kind (source, detail, unit) and person is worked
    out once per distinct kind and person (a few thousand rows) and reaches the events in one
    join, instead of joining people and rates onto every event separately.
    """
    rates = _rate_table(events.select(_KIND_KEYS).unique(), settings).join(
        people.select("person_id", "hourly_cost", pl.col("team_id").alias("person_team_id")),
        on="person_id",
        how="left",
    )
    per_unit, hours_per_unit, hourly = pl.col("__per_unit"), pl.col("__hours_per_unit"), pl.col("hourly_cost")
    kind_pricing = (
        pl.when(per_unit.is_not_null() | (hours_per_unit.is_not_null() & hourly.is_not_null()))
        .then(pl.col("__priced_by"))
        .when(hours_per_unit.is_not_null() & pl.col("person_id").is_null())
        .then(pl.lit("no person to take an hourly cost from"))
        .when(hours_per_unit.is_not_null())
        .then(pl.lit("no hourly cost for the person"))
        .otherwise(pl.col("__not_priced_by"))
    )
    return rates.select(
        *_KIND_KEYS, "__per_unit", "__hours_per_unit", "hourly_cost", "person_team_id", kind_pricing.alias("__pricing")
    )


def _rate_table(kinds: pl.LazyFrame, settings: CostSettings) -> pl.LazyFrame:
    """Per distinct (source, detail, unit): money per unit, or hours per unit for hourly-cost sources.

    Also the label of how such an event is priced and of why it is not. Computed on the few
    distinct combinations, not on every event.
    """
    detail = pl.col("detail")
    model = _model_name(detail)
    price_in = model.replace_strict({m: i for m, i, _ in settings.model_prices}, default=None, return_dtype=pl.Float64)
    price_out = model.replace_strict({m: o for m, _, o in settings.model_prices}, default=None, return_dtype=pl.Float64)
    unit = pl.col("unit").str.to_lowercase().str.strip_chars()
    share = settings.input_token_share
    token_price = (
        pl.when(unit.str.contains("output"))
        .then(price_out)
        .when(unit.str.contains("input|cache"))
        .then(price_in)
        .otherwise(price_in * share + price_out * (1 - share))
    )
    is_tokens = unit.is_null() | unit.str.contains("token")
    runner = _runner_type(detail, [name for name, _ in settings.ci_rates])
    ci_rate = runner.replace_strict(dict(settings.ci_rates), default=None, return_dtype=pl.Float64)
    source = pl.col("source")
    per_unit = (
        pl.when(source == "llm")
        .then(pl.when(is_tokens).then(token_price / 1_000_000))
        .when(source == "ci")
        .then(_minutes_per_unit(unit, default_unit=1.0) * ci_rate)
    )
    hours_per_unit = (
        pl.when(source == "review")
        .then(_minutes_per_unit(unit, default_unit=1.0) / 60)
        .when(source == "people")
        .then(_minutes_per_unit(unit, default_unit=60.0) / 60)
    )
    unit_text = pl.col("unit").fill_null("(none)")
    priced_by = (
        pl.when(source == "llm")
        .then(pl.concat_str(pl.lit("tokens × price of "), model))
        .when(source == "ci")
        .then(pl.concat_str(pl.lit("minutes × CI rate for "), runner))
        .when(source == "review")
        .then(pl.lit("minutes × the reviewer's hourly cost"))
        .otherwise(pl.lit("hours × the person's hourly cost"))
    )
    not_priced_by = (
        pl.when((source == "llm") & ~is_tokens)
        .then(pl.concat_str(pl.lit("unit not understood: "), unit_text))
        .when(source == "llm")
        .then(pl.concat_str(pl.lit("no token price for model "), detail.fill_null("(none)")))
        .when((source == "ci") & ci_rate.is_null())
        .then(pl.concat_str(pl.lit("no CI rate for runner "), detail.fill_null("(none)")))
        .when(source == "other")
        .then(pl.lit("no amount given"))
        .otherwise(pl.concat_str(pl.lit("unit not understood: "), unit_text))
    )
    return kinds.with_columns(
        per_unit.alias("__per_unit"),
        hours_per_unit.alias("__hours_per_unit"),
        priced_by.alias("__priced_by"),
        not_priced_by.alias("__not_priced_by"),
    )


def pull_request_features(
    pull_requests: pl.LazyFrame, work_items: pl.LazyFrame, features: pl.LazyFrame
) -> pl.LazyFrame:
    """Each PR with the known feature it serves and the path that links them, and its active weeks.

    The feature is the PR's own ``feature_id``, else that of its ``work_item_key``, else of the
    first key in its title, else of the first key in its branch name (read case-insensitively).
    Columns: ``pr_id, repo, author_id, author_kind, team_id, created_at, merged_at, feature_id,
    link, first_week, last_week`` (``team_id`` falls back to the feature's team).
    """
    known = features.select("feature_id", pl.col("team_id").alias("__feature_team"))
    items = work_item_features(work_items, features).select("work_item_key", "feature_id")

    def look_up(prs: pl.LazyFrame, key: str, alias: str) -> pl.LazyFrame:
        return prs.join(items.rename({"work_item_key": key, "feature_id": f"{alias}_feature"}), on=key, how="left")

    prs = look_up(
        pull_requests.join(known.select("feature_id", pl.lit(True).alias("__own_known")), on="feature_id", how="left"),
        "work_item_key",
        "__wi",
    ).with_columns(pl.col("__own_known").fill_null(False))
    own = pl.col("__own_known")
    # Only PRs their own feature and work item leave unlinked need their title and branch read.
    settled = own | pl.col("__wi_feature").is_not_null()
    unsettled = prs.filter(~settled).with_columns(
        first_work_item_key(pl.col("title")).alias("__title_key"),
        first_work_item_key(pl.col("branch"), case_insensitive=True).alias("__branch_key"),
    )
    prs = pl.concat(
        [prs.filter(settled), look_up(look_up(unsettled, "__title_key", "__title"), "__branch_key", "__branch")],
        how="diagonal",
    )
    via = pl.concat_str(pl.lit("via PR "), pl.col("pr_id"))
    feature = (
        pl.when(own)
        .then(pl.col("feature_id"))
        .otherwise(pl.coalesce("__wi_feature", "__title_feature", "__branch_feature"))
    )
    link = (
        pl.when(own)
        .then(via)
        .when(pl.col("__wi_feature").is_not_null())
        .then(pl.concat_str(via, pl.lit(" → work item "), pl.col("work_item_key")))
        .when(pl.col("__title_feature").is_not_null())
        .then(pl.concat_str(via, pl.lit(" → work item "), pl.col("__title_key"), pl.lit(" (title)")))
        .when(pl.col("__branch_feature").is_not_null())
        .then(pl.concat_str(via, pl.lit(" → work item "), pl.col("__branch_key"), pl.lit(" (branch)")))
    )
    first = pl.coalesce("first_commit_at", "created_at").dt.truncate("1w").dt.date()
    last = pl.coalesce("merged_at", "created_at").dt.truncate("1w").dt.date()
    return (
        prs.with_columns(feature.alias("feature_id"), link.alias("link"))
        .join(known, on="feature_id", how="left")
        .select(
            "pr_id",
            "repo",
            "author_id",
            "author_kind",
            pl.coalesce("team_id", "__feature_team").alias("team_id"),
            "created_at",
            "merged_at",
            "feature_id",
            "link",
            pl.min_horizontal(first, last).alias("first_week"),
            pl.max_horizontal(first, last).alias("last_week"),
        )
    )


def work_item_features(work_items: pl.LazyFrame, features: pl.LazyFrame) -> pl.LazyFrame:
    """Each work item with its feature when that feature is known (null otherwise)."""
    known = features.select("feature_id", pl.lit(True).alias("__known"))
    return (
        work_items.select("work_item_key", "feature_id")
        .join(known, on="feature_id", how="left")
        .select("work_item_key", pl.when(pl.col("__known")).then(pl.col("feature_id")).alias("feature_id"))
    )


def review_counts(cost_events: pl.LazyFrame, grouped: bool = False) -> pl.LazyFrame:
    """Review cost events per PR, reviewer and ISO week: ``pr_id, person_id, week, reviews``.

    ``grouped``: ``cost_events`` are grouped events (``group_cost_events``), each standing for
    its ``events``.
    """
    reviews = cost_events.filter(
        (pl.col("source") == "review") & pl.col("person_id").is_not_null() & pl.col("pr_id").is_not_null()
    )
    if grouped:
        return reviews.select("pr_id", "person_id", "week", pl.col("events").alias("reviews"))
    week = pl.col("occurred_at").dt.truncate("1w").dt.date().alias("week")
    return reviews.group_by("pr_id", "person_id", week).agg(pl.len().cast(pl.Int64).alias("reviews"))


def feature_activity(pr_links: pl.LazyFrame, reviews: pl.LazyFrame) -> pl.LazyFrame:
    """Feature-linked activity per ISO week of each person, repository and team.

    A PR counts once in every week from its first commit (or creation) to its merge, for its
    author, its repository and its team; a review cost event on a PR (``reviews``, from
    ``review_counts``) counts once for the reviewer in its week. Columns: ``kind`` (person,
    repo, team), ``key``, ``week``, ``feature_id``, ``weight``, ``total`` (the key's weight that
    week over all features) and ``link``, the path a cost line split by this row reports.
    """
    linked = pr_links.filter(pl.col("feature_id").is_not_null())
    # Most PRs start and merge in one week: only the others need their weeks listed out.
    one_week = pl.col("first_week").eq_missing(pl.col("last_week"))
    pr_weeks = pl.concat(
        [
            linked.filter(one_week).with_columns(pl.col("first_week").alias("week")),
            linked.filter(~one_week)
            .with_columns(pl.date_ranges("first_week", "last_week", "1w").alias("week"))
            .explode("week"),
        ]
    ).cache()
    people = pl.concat(
        [
            pr_weeks.select(pl.col("author_id").alias("key"), "week", "feature_id", pl.lit(1, pl.Int64).alias("count")),
            reviews.join(linked.select("pr_id", "feature_id"), on="pr_id").select(
                pl.col("person_id").alias("key"), "week", "feature_id", pl.col("reviews").cast(pl.Int64).alias("count")
            ),
        ]
    )
    parts = [
        _weights(people, "person", pl.col("count").sum()),
        _weights(pr_weeks.rename({"repo": "key"}), "repo", pl.len()),
        _weights(pr_weeks.rename({"team_id": "key"}), "team", pl.len()),
    ]
    return (
        pl.concat(parts)
        .with_columns(pl.col("weight").sum().over("kind", "key", "week").alias("total"))
        .with_columns(
            pl.concat_str(
                pl.col("kind").replace_strict(_SPLIT_LINKS, return_dtype=pl.String),
                pl.lit(" ("),
                pl.col("key"),
                pl.lit(", "),
                _iso_week(pl.col("week")),
                pl.lit(": "),
                pl.col("weight").cast(pl.String),
                pl.lit(" of "),
                pl.col("total").cast(pl.String),
                pl.lit(")"),
            ).alias("link")
        )
    )


def _weights(rows: pl.LazyFrame, kind: str, weight: pl.Expr) -> pl.LazyFrame:
    """One kind's activity: ``weight`` per key, week and feature (rows without a key count nowhere)."""
    return (
        rows.filter(pl.col("key").is_not_null())
        .group_by("key", "week", "feature_id")
        .agg(weight.cast(pl.Int64).alias("weight"))
        .select(pl.lit(kind).alias("kind"), "key", "week", "feature_id", "weight")
    )


_SPLIT_LINKS = {"person": "via time allocation", "repo": "via repo activity", "team": "via team activity"}


def attribute_priced_events(
    priced_events: pl.LazyFrame,
    pr_links: pl.LazyFrame,
    work_item_links: pl.LazyFrame,
    activity: pl.LazyFrame,
    features: pl.LazyFrame,
    settings: CostSettings = DEFAULT_SETTINGS,
) -> pl.LazyFrame:
    """Cost lines from the stage-1 roll-ups; see ``attribute_costs`` for the columns."""
    events = resolve_cost_events(priced_events, pr_links, work_item_links, activity, features, settings)
    return describe_cost_lines(split_cost_lines(events, activity, features), pr_links, settings).select(LINE_COLUMNS)


LINE_COLUMNS: tuple[str, ...] = (
    "event_id",
    "occurred_at",
    "source",
    "detail",
    "quantity",
    "unit",
    "pricing",
    "event_amount",
    "share",
    "amount",
    "feature_id",
    "team_id",
    "rule",
    "link",
    "reason",
)
"""The columns of a described cost line (``attribute_costs``)."""


def resolve_cost_events(
    priced_events: pl.LazyFrame,
    pr_links: pl.LazyFrame,
    work_item_links: pl.LazyFrame,
    activity: pl.LazyFrame,
    features: pl.LazyFrame,
    settings: CostSettings = DEFAULT_SETTINGS,
) -> pl.LazyFrame:
    """One row per priced event: the rule that reaches it and where it goes, with compact link keys.

    ``feature_id`` is the feature of a ``direct``, ``pull_request`` or ``work_item`` event; a
    split event has ``split`` (person, repo, team) and ``split_key`` instead, resolved to lines by
    ``split_cost_lines``. The link keys (``tagged_feature_id, pr_id, work_item_key, branch_key,
    person_id, repo, event_team_id, week`` and the ``*_found``/``wi_hit`` flags) are what
    ``describe_cost_lines`` turns into link and reason text for the rows a reader looks at.
    """
    resolved = _resolve(priced_events, pr_links, work_item_links, activity, features, settings)
    return resolved.select(
        "event_id",
        "occurred_at",
        "week",
        "source",
        "detail",
        "quantity",
        "unit",
        "pricing",
        pl.col("money").alias("event_amount"),
        "rule",
        "feature_id",
        "split",
        "split_key",
        "tagged_feature_id",
        "pr_id",
        "work_item_key",
        "branch_key",
        "person_id",
        "repo",
        pl.col("team_id").alias("event_team_id"),
        "person_team_id",
        pl.col("pr_found").fill_null(False),
        pl.col("wi_found").fill_null(False),
        pl.col("bk_found").fill_null(False),
        pl.col("__wi_feature").is_not_null().alias("wi_hit"),
    )


def _resolve(
    priced: pl.LazyFrame,
    pr_links: pl.LazyFrame,
    work_item_links: pl.LazyFrame,
    activity: pl.LazyFrame,
    features: pl.LazyFrame,
    settings: CostSettings,
) -> pl.LazyFrame:
    """``priced`` events with ``rule``, the line's ``feature_id``, ``split`` and ``split_key``.

    The event's own feature moves to ``tagged_feature_id``; the joins' findings stay as
    ``pr_found``, ``wi_found``, ``bk_found`` and ``__wi_feature``, and ``branch_key`` is added.
    """
    on = set(settings.rules)
    known = features.select("feature_id", pl.lit(True).alias("__direct_known"))
    items = work_item_links.select("work_item_key", pl.lit(True).alias("__found"), "feature_id")
    totals = activity.select("kind", "key", "week").unique()
    events = (
        priced.with_columns(first_work_item_key(pl.col("branch"), case_insensitive=True).alias("branch_key"))
        .join(known, on="feature_id", how="left")
        .join(
            pr_links.select("pr_id", pl.lit(True).alias("pr_found"), pl.col("feature_id").alias("__pr_feature")),
            on="pr_id",
            how="left",
        )
        .join(items.rename({"__found": "wi_found", "feature_id": "__wi_feature"}), on="work_item_key", how="left")
        .join(
            items.rename({"work_item_key": "branch_key", "__found": "bk_found", "feature_id": "__bk_feature"}),
            on="branch_key",
            how="left",
        )
    )
    for kind, column in (("person", "person_id"), ("repo", "repo"), ("team", "team_id")):
        events = events.join(
            totals.filter(pl.col("kind") == kind).select(
                pl.col("key").alias(column), "week", pl.lit(True).alias(f"__{kind}_active")
            ),
            on=[column, "week"],
            how="left",
        )
    choices: list[tuple[str, pl.Expr]] = [
        ("direct", pl.col("__direct_known").fill_null(False)),
        ("pull_request", pl.col("__pr_feature").is_not_null()),
        ("work_item", pl.col("__wi_feature").is_not_null() | pl.col("__bk_feature").is_not_null()),
        ("time_allocation", pl.col("__person_active").is_not_null()),
        ("repo_activity", pl.col("__repo_active").is_not_null() | pl.col("__team_active").is_not_null()),
    ]
    rule: pl.Expr = pl.lit("unattributed")
    for name, reached in reversed(choices):
        if name in on:
            rule = pl.when(reached).then(pl.lit(name)).otherwise(rule)
    rule_is = pl.col("rule").eq
    feature = (
        pl.when(rule_is("direct"))
        .then(pl.col("feature_id"))
        .when(rule_is("pull_request"))
        .then(pl.col("__pr_feature"))
        .when(rule_is("work_item"))
        .then(pl.coalesce("__wi_feature", "__bk_feature"))
    )
    split = (
        pl.when(rule_is("time_allocation"))
        .then(pl.lit("person"))
        .when(rule_is("repo_activity") & pl.col("__repo_active").is_not_null())
        .then(pl.lit("repo"))
        .when(rule_is("repo_activity"))
        .then(pl.lit("team"))
    )
    split_key = (
        pl.when(pl.col("split") == "person")
        .then(pl.col("person_id"))
        .when(pl.col("split") == "repo")
        .then(pl.col("repo"))
        .when(pl.col("split") == "team")
        .then(pl.col("team_id"))
    )
    return (
        events.with_columns(rule.alias("rule"))
        .with_columns(split.alias("split"), pl.col("feature_id").alias("tagged_feature_id"))
        .with_columns(feature.alias("feature_id"), split_key.alias("split_key"))
    )


def split_cost_lines(events: pl.LazyFrame, activity: pl.LazyFrame, features: pl.LazyFrame) -> pl.LazyFrame:
    """Resolved events as cost lines: a split event becomes one line per feature it served.

    Adds ``share`` (``split_weight / split_total`` for a split line, else 1), ``amount`` and
    ``team_id`` (the feature's team, else the event's, else its person's) to the event columns.
    """
    split_rows = activity.select(
        pl.col("kind").alias("split"),
        pl.col("key").alias("split_key"),
        "week",
        pl.col("feature_id").alias("__split_feature"),
        pl.col("weight").alias("split_weight"),
        pl.col("total").alias("split_total"),
    )
    teams = features.select("feature_id", pl.col("team_id").alias("__feature_team"))
    return (
        events.join(split_rows, on=["split", "split_key", "week"], how="left")
        .with_columns(
            pl.coalesce("feature_id", "__split_feature").alias("feature_id"),
            (pl.col("split_weight") / pl.col("split_total")).fill_null(1.0).alias("share"),
        )
        .with_columns((pl.col("event_amount") * pl.col("share")).alias("amount"))
        .join(teams, on="feature_id", how="left")
        .with_columns(pl.coalesce("__feature_team", "event_team_id", "person_team_id").alias("team_id"))
        .drop("__split_feature", "__feature_team")
    )


def describe_cost_lines(
    lines: pl.LazyFrame, pr_links: pl.LazyFrame, settings: CostSettings = DEFAULT_SETTINGS, *, generic: bool = False
) -> pl.LazyFrame:
    """``lines`` (from ``split_cost_lines``) with ``link``, the path that attributed each, and ``reason``.

    Meant for the rows a reader looks at (one feature's lines, the unattributed ones): the text
    is built per row. ``generic`` words the reason without naming a person, PR, work item,
    repository or team, for readers who may see only aggregates.
    """
    rule_is = pl.col("rule").eq
    via_pr = pr_links.select("pr_id", pl.col("link").alias("__pr_link"))
    split_text = pl.col("split").replace_strict(_SPLIT_LINKS, default=None, return_dtype=pl.String)
    link = (
        pl.when(rule_is("direct"))
        .then(pl.lit("direct tag"))
        .when(rule_is("pull_request"))
        .then(pl.col("__pr_link"))
        .when(rule_is("work_item") & pl.col("wi_hit"))
        .then(pl.concat_str(pl.lit("via work item "), pl.col("work_item_key")))
        .when(rule_is("work_item"))
        .then(pl.concat_str(pl.lit("via work item "), pl.col("branch_key"), pl.lit(" (branch)")))
        .otherwise(
            pl.concat_str(
                split_text,
                pl.lit(" ("),
                pl.col("split_key"),
                pl.lit(", "),
                _iso_week(pl.col("week")),
                pl.lit(": "),
                pl.col("split_weight").cast(pl.String),
                pl.lit(" of "),
                pl.col("split_total").cast(pl.String),
                pl.lit(")"),
            )
        )
    )
    return (
        lines.join(via_pr, on="pr_id", how="left")
        .with_columns(
            link.alias("link"),
            pl.when(rule_is("unattributed")).then(_unattributed_reason(set(settings.rules), generic)).alias("reason"),
        )
        .drop("__pr_link")
    )


def rollup_cost_groups(
    priced_groups: pl.LazyFrame,
    pr_links: pl.LazyFrame,
    work_item_links: pl.LazyFrame,
    activity: pl.LazyFrame,
    features: pl.LazyFrame,
    settings: CostSettings = DEFAULT_SETTINGS,
) -> pl.LazyFrame:
    """Priced groups (``price_cost_groups``) attributed and summed per quarter, source, rule, feature and team.

    The same rules in the same order of trust as ``resolve_cost_events`` applies to each event,
    run in stages so that each rule looks up only the groups it can still reach:

    * the groups are split once by the first link key an enabled explicit rule reads (the
      event's feature, its PR, its work-item key or branch);
    * each explicit rule looks up its own groups plus those the rule before could not place,
      and sums the ones it placed per quarter, source, feature and fallback team at once;
    * what no explicit rule placed meets the person, repository and team splits: it is summed
      per split group (kind, key and week) and shared over the group's features by their
      activity weights, or stays unattributed.

    One row per ``_ROLLUP_KEYS``: ``occurred_at`` (the quarter's first instant), ``source, rule,
    feature_id, team_id`` (the feature's team, else the event's or its person's), ``amount``,
    ``lines`` (the cost lines behind the row: events, one per feature a split reached) and
    ``unpriced_events`` (events with no money, counted by their shares). Equal to the cost
    lines summed (``rollup_cost_lines``).
    """
    on = set(settings.rules)
    rows = priced_groups.select(
        "occurred_at",
        "week",
        "source",
        "money",
        "events",
        "unpriced",
        pl.coalesce("team_id", "person_team_id").alias("__fallback_team"),
        "feature_id",
        "pr_id",
        "work_item_key",
        "branch",
        "person_id",
        "repo",
        "team_id",
    ).cache()
    found = pl.col("__found")
    placed: list[pl.LazyFrame] = []
    pending: pl.LazyFrame | None = None
    earlier = pl.lit(False)
    for rule in _explicit_rules(on, pr_links, work_item_links, features):
        own = rows.filter(rule.has_key & ~earlier)
        candidates = rule.look_up(own if pending is None else pl.concat([own, pending])).cache()
        placed.append(
            candidates.filter(found.is_not_null())
            .group_by("occurred_at", "source", found.alias("feature_id"), "__fallback_team")
            .agg(*_ROLLUP_SUMS)
            .with_columns(pl.lit(rule.name).alias("rule"))
        )
        pending = candidates.filter(found.is_null()).drop("__found")
        earlier = earlier | rule.has_key
    rest = rows.filter(~earlier)
    placed.append(_split_rollup(rest if pending is None else pl.concat([rest, pending]), activity, on))
    teams = features.select("feature_id", pl.col("team_id").alias("__feature_team"))
    return (
        pl.concat(placed, how="diagonal_relaxed")
        .join(teams, on="feature_id", how="left")
        .group_by(
            "occurred_at",
            "source",
            "rule",
            "feature_id",
            pl.coalesce("__feature_team", "__fallback_team").alias("team_id"),
        )
        .agg(
            pl.col("__money").sum().alias("amount"),
            pl.col("lines").sum(),
            pl.col("__unpriced").sum().alias("unpriced_events"),
        )
    )


_ROLLUP_SUMS = (
    pl.col("money").sum().alias("__money"),
    pl.col("events").sum().cast(pl.Int64).alias("lines"),
    pl.col("unpriced").sum().cast(pl.Float64).alias("__unpriced"),
)
"""What a stage of ``rollup_cost_groups`` sums of the groups it placed."""


@dataclass(frozen=True)
class _ExplicitRule:
    """An explicit rule: its name, whether an event carries a key it reads, and its lookups in order.

    Each lookup is a key column and a table of that key with ``__found``, the feature it
    reaches. The work-item rule reads the event's key, then the first key in its branch
    (``__branch_key``, added by ``look_up`` and ``take_reached``).
    """

    name: str
    has_key: pl.Expr
    lookups: tuple[tuple[str, pl.LazyFrame], ...]

    def look_up(self, frame: pl.LazyFrame) -> pl.LazyFrame:
        """``frame`` with ``__found``: the feature the rule reaches (null when it reaches none)."""
        found = [f"__found_{i}" for i in range(len(self.lookups))]
        for (key, table), name in zip(self.lookups, found, strict=True):
            frame = _with_branch_key(frame, key).join(table.rename({"__found": name}), on=key, how="left")
        return frame.with_columns(pl.coalesce(found).alias("__found")).drop(*found, "__branch_key", strict=False)

    def take_reached(self, frame: pl.LazyFrame) -> pl.LazyFrame:
        """``frame`` without the rows the rule reaches (anti-joins: nothing is gathered for them)."""
        for key, table in self.lookups:
            frame = _with_branch_key(frame, key).join(table.select(key), on=key, how="anti")
        return frame.drop("__branch_key", strict=False)


def _with_branch_key(frame: pl.LazyFrame, key: str) -> pl.LazyFrame:
    if key != "__branch_key":
        return frame
    return frame.with_columns(first_work_item_key(pl.col("branch"), case_insensitive=True).alias("__branch_key"))


def _explicit_rules(
    on: set[str], pr_links: pl.LazyFrame, work_item_links: pl.LazyFrame, features: pl.LazyFrame
) -> list[_ExplicitRule]:
    """The enabled explicit rules in order of trust, with the lookups ``_resolve`` makes for each event."""
    rules: list[_ExplicitRule] = []
    if "direct" in on:
        known = features.select("feature_id", pl.col("feature_id").alias("__found"))
        rules.append(_ExplicitRule("direct", pl.col("feature_id").is_not_null(), (("feature_id", known),)))
    if "pull_request" in on:
        linked = pr_links.filter(pl.col("feature_id").is_not_null()).select(
            "pr_id", pl.col("feature_id").alias("__found")
        )
        rules.append(_ExplicitRule("pull_request", pl.col("pr_id").is_not_null(), (("pr_id", linked),)))
    if "work_item" in on:
        items = work_item_links.filter(pl.col("feature_id").is_not_null()).select(
            "work_item_key", pl.col("feature_id").alias("__found")
        )
        by_branch = items.rename({"work_item_key": "__branch_key"})
        has_key = pl.col("work_item_key").is_not_null() | pl.col("branch").is_not_null()
        rules.append(_ExplicitRule("work_item", has_key, (("work_item_key", items), ("__branch_key", by_branch))))
    return rules


def _active_weeks(activity: pl.LazyFrame, on: set[str]) -> list[tuple[str, str, str, pl.LazyFrame]]:
    """The enabled splits in order: kind, the column naming the key, the rule, and its active (key, week) pairs.

    Each table holds the key under the event's column name, ``week`` and ``__<kind>_active``.
    """
    totals = activity.select("kind", "key", "week").unique()
    return [
        (
            kind,
            column,
            rule,
            totals.filter(pl.col("kind") == kind).select(
                pl.col("key").alias(column), "week", pl.lit(True).alias(f"__{kind}_active")
            ),
        )
        for kind, column, rule in _SPLITS
        if rule in on
    ]


def _split_rollup(groups: pl.LazyFrame, activity: pl.LazyFrame, on: set[str]) -> pl.LazyFrame:
    """Groups no explicit rule placed: split by the first active person, repository or team, else unattributed.

    Summed per quarter, source, split group (kind, key, week) and fallback team before the
    split, then shared over the group's features (``weight / total``).
    """
    split, split_key = pl.lit(None, pl.String), pl.lit(None, pl.String)
    splits = _active_weeks(activity, on)
    for _, column, _, weeks in splits:
        groups = groups.join(weeks, on=[column, "week"], how="left")
    for kind, column, _, _ in reversed(splits):
        active = pl.col(f"__{kind}_active").is_not_null()
        split = pl.when(active).then(pl.lit(kind)).otherwise(split)
        split_key = pl.when(active).then(pl.col(column)).otherwise(split_key)
    summed = groups.group_by(
        "occurred_at",
        "source",
        split.alias("split"),
        split_key.alias("split_key"),
        pl.when(split.is_not_null()).then(pl.col("week")).alias("week"),
        "__fallback_team",
    ).agg(*_ROLLUP_SUMS)
    shares = activity.select(
        pl.col("kind").alias("split"),
        pl.col("key").alias("split_key"),
        "week",
        "feature_id",
        (pl.col("weight") / pl.col("total")).alias("__share"),
    )
    is_split, share = pl.col("split").is_not_null(), pl.col("__share")
    rule_of = {kind: rule for kind, _, rule, _ in splits}
    return (
        summed.join(shares, on=["split", "split_key", "week"], how="left")
        .filter(~is_split | share.is_not_null())
        .select(
            "occurred_at",
            "source",
            pl.col("split").replace_strict(rule_of, default="unattributed", return_dtype=pl.String).alias("rule"),
            "feature_id",
            "__fallback_team",
            pl.when(is_split).then(pl.col("__money") * share).otherwise(pl.col("__money")).alias("__money"),
            "lines",
            pl.when(is_split).then(pl.col("__unpriced") * share).otherwise(pl.col("__unpriced")).alias("__unpriced"),
        )
    )


_ROLLUP_KEYS = ("occurred_at", "source", "rule", "feature_id", "team_id")
"""The grain of the cost roll-up: quarter, source, rule, feature and team."""


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


def unreached_cost_events(
    cost_events: pl.LazyFrame,
    pr_links: pl.LazyFrame,
    work_item_links: pl.LazyFrame,
    activity: pl.LazyFrame,
    features: pl.LazyFrame,
    settings: CostSettings = DEFAULT_SETTINGS,
) -> pl.LazyFrame:
    """The cost events no enabled rule reaches, found without resolving every event.

    Each enabled rule takes away the events it would reach (an anti-join on the key it reads),
    so only the events left over need resolving and describing (``unattributed_cost_lines``).
    Same columns as ``cost_events``.
    """
    on = set(settings.rules)
    rest = cost_events
    for rule in _explicit_rules(on, pr_links, work_item_links, features):
        rest = rule.take_reached(rest)
    splits = _active_weeks(activity, on)
    if not splits:
        return rest
    rest = rest.with_columns(pl.col("occurred_at").dt.truncate("1w").dt.date().alias("week"))
    for _, column, _, weeks in splits:
        rest = rest.join(weeks.select(column, "week"), on=[column, "week"], how="anti")
    return rest.drop("week")


def branch_work_items(cost_events: pl.LazyFrame) -> pl.LazyFrame:
    """Each distinct branch named by the cost events with the first work-item key in it: ``branch, work_item_key``."""
    return (
        cost_events.select(pl.col("branch").unique())
        .with_columns(first_work_item_key(pl.col("branch"), case_insensitive=True).alias("work_item_key"))
        .filter(pl.col("work_item_key").is_not_null())
    )


def feature_candidate_events(
    cost_events: pl.LazyFrame,
    pr_links: pl.LazyFrame,
    work_item_links: pl.LazyFrame,
    activity: pl.LazyFrame,
    branch_items: pl.LazyFrame,
    feature_id: str,
) -> pl.LazyFrame:
    """The cost events that may reach ``feature_id`` under some rule: a superset to resolve exactly.

    Events tagged with the feature, on one of its PRs, carrying one of its work-item keys (on
    the event or first in its branch, ``branch_items`` from ``branch_work_items``), or naming a
    person, repository or team that was active on it in the event's week. Resolving these
    (``resolve_cost_events``) gives the feature's lines without resolving every event.

    The feature's own keys are few, so they are collected first and the events are read in a
    single filtering pass.
    """
    items = work_item_links.filter(pl.col("feature_id") == feature_id).select("work_item_key")
    prs, keys, branches, active = pl.collect_all(
        [
            pr_links.filter(pl.col("feature_id") == feature_id).select("pr_id"),
            items,
            branch_items.join(items, on="work_item_key", how="semi").select("branch"),
            activity.filter(pl.col("feature_id") == feature_id).select("kind", "key", "week"),
        ]
    )
    reaches = (
        (pl.col("feature_id") == feature_id).fill_null(False)
        | pl.col("pr_id").is_in(prs["pr_id"].implode())
        | pl.col("work_item_key").is_in(keys["work_item_key"].implode())
        | pl.col("branch").is_in(branches["branch"].implode())
    )
    week = pl.col("occurred_at").dt.truncate("1w").dt.date()
    for kind, column, _ in _SPLITS:
        weeks = active.filter(pl.col("kind") == kind)
        if weeks.height:
            named = pl.col(column).is_in(weeks["key"].unique().implode())
            reaches = reaches | (named & week.is_in(weeks["week"].unique().implode()))
    return cost_events.filter(reaches)


_SPLITS = (
    ("person", "person_id", "time_allocation"),
    ("repo", "repo", "repo_activity"),
    ("team", "team_id", "repo_activity"),
)
"""The split kinds in order: the kind, the event column naming its key, and the rule that splits by it."""


def feature_cost_lines(
    events: pl.LazyFrame,
    activity: pl.LazyFrame,
    features: pl.LazyFrame,
    pr_links: pl.LazyFrame,
    feature_id: str,
    settings: CostSettings = DEFAULT_SETTINGS,
) -> pl.LazyFrame:
    """Every described cost line attributed to one feature (``attribute_costs`` columns, plus ``split``)."""
    groups = activity.filter(pl.col("feature_id") == feature_id)
    keys = groups.select(pl.col("kind").alias("split"), pl.col("key").alias("split_key"), "week")
    reached = pl.concat(
        [
            events.filter(pl.col("feature_id") == feature_id),
            events.filter(pl.col("split").is_not_null()).join(keys, on=["split", "split_key", "week"], how="semi"),
        ]
    )
    lines = split_cost_lines(reached, groups, features).filter(pl.col("feature_id") == feature_id)
    return describe_cost_lines(lines, pr_links, settings).select(*LINE_COLUMNS, "split").sort("occurred_at")


def unattributed_cost_lines(
    events: pl.LazyFrame, pr_links: pl.LazyFrame, settings: CostSettings = DEFAULT_SETTINGS, *, generic: bool = False
) -> pl.LazyFrame:
    """The events no enabled rule reached, as described cost lines with their reason."""
    lines = events.filter(pl.col("rule") == "unattributed").with_columns(
        pl.lit(None, dtype=pl.Int64).alias("split_weight"),
        pl.lit(None, dtype=pl.Int64).alias("split_total"),
        pl.lit(1.0).alias("share"),
        pl.col("event_amount").alias("amount"),
        pl.coalesce("event_team_id", "person_team_id").alias("team_id"),
    )
    return describe_cost_lines(lines, pr_links, settings, generic=generic).select(LINE_COLUMNS).sort("occurred_at")


def _is_rollup(lines: pl.LazyFrame) -> bool:
    names = lines.collect_schema().names()
    return "lines" in names and "event_id" not in names


# ---------------------------------------------------------------------------------------------
# Expressions and small helpers
# ---------------------------------------------------------------------------------------------

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


def _unattributed_reason(on: set[str], generic: bool = False) -> pl.Expr:
    """Why no enabled rule reached a feature, naming each link key the event carried (unless ``generic``)."""

    def say(plain: str, *pieces: str | pl.Expr) -> pl.Expr:
        if generic:
            return pl.lit(plain)
        return pl.concat_str([pl.lit(p) if isinstance(p, str) else p for p in pieces])

    def part(present: pl.Expr, rule: str, off: str, *failures: tuple[pl.Expr, pl.Expr]) -> pl.Expr:
        if rule not in on:
            return pl.when(present).then(pl.lit(f"{off} (rule '{rule}' is off)"))
        text: pl.Expr = pl.lit(None, dtype=pl.String)
        for condition, failure in reversed(failures):
            text = pl.when(condition).then(failure).otherwise(text)
        return pl.when(present).then(text)

    week = _iso_week(pl.col("week"))
    feature, pr, item, branch_key = (
        pl.col("tagged_feature_id"),
        pl.col("pr_id"),
        pl.col("work_item_key"),
        pl.col("branch_key"),
    )
    person, repo, team = pl.col("person_id"), pl.col("repo"), pl.col("event_team_id")
    parts = [
        part(
            feature.is_not_null(),
            "direct",
            "feature tag ignored",
            (
                pl.lit(True),
                say("the tagged feature is not a known feature", "tagged feature ", feature, " is not a known feature"),
            ),
        ),
        part(
            pr.is_not_null(),
            "pull_request",
            "PR link ignored",
            (~pl.col("pr_found"), say("the PR was not found", "PR ", pr, " not found")),
            (
                pl.lit(True),
                say("the PR is not linked to a known feature", "PR ", pr, " is not linked to a known feature"),
            ),
        ),
        part(
            item.is_not_null(),
            "work_item",
            "work-item key ignored",
            (~pl.col("wi_found"), say("the work item was not found", "work item ", item, " not found")),
            (pl.lit(True), say("the work item has no known feature", "work item ", item, " has no known feature")),
        ),
        part(
            branch_key.is_not_null(),
            "work_item",
            "branch work-item key ignored",
            (
                ~pl.col("bk_found"),
                say(
                    "the branch's key is not a known work item",
                    "branch key ",
                    branch_key,
                    " is not a known work item",
                ),
            ),
            (
                pl.lit(True),
                say(
                    "the branch's work item has no known feature",
                    "work item ",
                    branch_key,
                    " (branch) has no known feature",
                ),
            ),
        ),
        part(
            person.is_not_null(),
            "time_allocation",
            "person time split ignored",
            (
                pl.lit(True),
                say(
                    "the person has no feature-linked activity that week",
                    person,
                    " has no feature-linked activity in ",
                    week,
                ),
            ),
        ),
        part(
            repo.is_not_null(),
            "repo_activity",
            "repository split ignored",
            (
                pl.lit(True),
                say(
                    "no feature-linked PR open in the repository that week",
                    "no feature-linked PR open in repo ",
                    repo,
                    " in ",
                    week,
                ),
            ),
        ),
        part(
            team.is_not_null(),
            "repo_activity",
            "team split ignored",
            (
                pl.lit(True),
                say(
                    "no feature-linked PR open for the team that week",
                    "no feature-linked PR open for team ",
                    team,
                    " in ",
                    week,
                ),
            ),
        ),
    ]
    joined = pl.concat_str(parts, separator="; ", ignore_nulls=True)
    return (
        pl.when(joined.is_null() | (joined == ""))
        .then(pl.lit("the event names no feature, PR, work item, person, repository or team"))
        .otherwise(joined)
    )


def _model_name(detail: pl.Expr) -> pl.Expr:
    """A model name as the price table keys it: lower case, no provider prefix or date suffix."""
    return (
        detail.str.to_lowercase()
        .str.strip_chars()
        .str.replace(r"^.*/", "")
        .str.replace(r"-(latest|\d{8}|\d{4}-\d{2}-\d{2})$", "")
    )


def _runner_type(detail: pl.Expr, runner_types: Iterable[str]) -> pl.Expr:
    """The first runner type of the rate table named in ``detail``, else ``default`` if the table has one."""
    names = [n for n in runner_types if n != "default"]
    fallback = pl.lit("default") if "default" in runner_types else pl.lit(None, dtype=pl.String)
    text = detail.str.to_lowercase().fill_null("")
    result: pl.Expr = fallback
    for name in reversed(names):
        result = pl.when(text.str.contains(name.lower(), literal=True)).then(pl.lit(name)).otherwise(result)
    return result


_MINUTE_UNITS: Mapping[str, float] = {
    "minute": 1.0,
    "minutes": 1.0,
    "min": 1.0,
    "mins": 1.0,
    "hour": 60.0,
    "hours": 60.0,
    "h": 60.0,
    "hr": 60.0,
    "hrs": 60.0,
    "second": 1 / 60,
    "seconds": 1 / 60,
    "s": 1 / 60,
    "sec": 1 / 60,
    "secs": 1 / 60,
}


def _minutes_per_unit(unit: pl.Expr, default_unit: float) -> pl.Expr:
    """Minutes in one ``unit``; a missing unit means ``default_unit`` minutes, an unknown one null."""
    return (
        pl.when(unit.is_null())
        .then(pl.lit(default_unit))
        .otherwise(unit.replace_strict(dict(_MINUTE_UNITS), default=None, return_dtype=pl.Float64))
    )


def _iso_week(week: pl.Expr) -> pl.Expr:
    return week.dt.strftime("%G-W%V")


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


def _kendall(values: list[float]) -> tuple[float | None, float | None, float | None]:
    """Kendall's tau of ``values`` against their order, with one-sided p-values (down, up)."""
    if len(values) < 3 or len(set(values)) < 2:
        return None, None, None
    order = list(range(len(values)))
    down = stats.kendalltau(order, values, alternative="less")
    up = stats.kendalltau(order, values, alternative="greater")
    tau = float(down.statistic)
    if math.isnan(tau):
        return None, None, None
    return tau, float(down.pvalue), float(up.pvalue)

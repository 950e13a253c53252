"""Cost attribution: every cost event priced, then attributed by the rule table to the features it served.

Stage 1 rolls the fact tables up: each cost event gets its money (the amount given, else its
quantity times the price in ``core.costs.pricing``), each pull request its feature and link path,
and each person, repository and team its feature-linked activity per ISO week. Stage 2 walks
``core.costs.rules.RULE_TABLE``: an event goes by the first step of the first enabled rule that
reaches a feature. Four engines share that walk (``_resolve``): the per-event cost lines, the
grouped roll-up (one pass over the event groups), the unreached events and a feature's drill-down
candidates. An event no enabled rule reaches stays unattributed with the reason, so attributed
plus unattributed money is always the money in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import polars as pl

from core.costs.explanations import SPLIT_LINKS, describe_cost_lines, iso_week
from core.costs.pricing import longest_prefix
from core.costs.rules import DEFAULT_SETTINGS, RULE_TABLE, CostSettings, Link, Rule, Split
from core.model.work_item_keys import first_work_item_key


def attribute_costs(
    cost_events: pl.LazyFrame,
    pull_requests: pl.LazyFrame,
    work_items: pl.LazyFrame,
    features: pl.LazyFrame,
    people: pl.LazyFrame,
    settings: CostSettings = DEFAULT_SETTINGS,
    cost_keys: pl.LazyFrame | None = None,
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
    return attribute_priced_events(priced, pr_links, items, activity, features, settings, cost_keys)


def attribute_cost_rollup(
    cost_events: pl.LazyFrame,
    pull_requests: pl.LazyFrame,
    work_items: pl.LazyFrame,
    features: pl.LazyFrame,
    people: pl.LazyFrame,
    settings: CostSettings = DEFAULT_SETTINGS,
    cost_keys: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """The money ``attribute_costs`` attributes, summed per feature, team, source, rule and quarter.

    Same rules and the same totals as the cost lines, without expanding split events into one
    line per feature; every measure below takes either. The events are grouped first
    (``group_cost_events``), so pricing and every rule's lookup run once per group, and the rule
    table is walked once over the groups (``rollup_cost_groups``).
    """
    groups = group_cost_events(cost_events).cache()
    pr_links = pull_request_features(pull_requests, work_items, features).drop("link").cache()
    activity = feature_activity(pr_links, review_counts(groups, grouped=True)).drop("link").cache()
    priced = price_cost_groups(groups, people, settings)
    items = work_item_features(work_items, features)
    return rollup_cost_groups(priced, pr_links, items, activity, features, settings, cost_keys)


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
    "account_key",
    "account_scope",
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
    table = settings.model_price_table
    price_in = longest_prefix(model, {m: i for m, i, _ in table})
    price_out = longest_prefix(model, {m: o for m, _, o in table})
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
    is_credits = unit.is_in(["credit", "credits"])
    runner = _runner_type(detail, [name for name, _ in settings.ci_rates])
    ci_rate = runner.replace_strict(dict(settings.ci_rates), default=None, return_dtype=pl.Float64)
    source = pl.col("source")
    per_unit = (
        pl.when(source == "llm")
        .then(pl.when(is_tokens).then(token_price / 1_000_000))
        .when((source == "ci") & is_credits)
        .then(pl.lit(settings.circleci_credit_price))
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
        .when((source == "ci") & is_credits)
        .then(pl.lit("credits × the CircleCI credit price"))
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
                pl.col("kind").replace_strict(SPLIT_LINKS, return_dtype=pl.String),
                pl.lit(" ("),
                pl.col("key"),
                pl.lit(", "),
                iso_week(pl.col("week")),
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


def attribute_priced_events(
    priced_events: pl.LazyFrame,
    pr_links: pl.LazyFrame,
    work_item_links: pl.LazyFrame,
    activity: pl.LazyFrame,
    features: pl.LazyFrame,
    settings: CostSettings = DEFAULT_SETTINGS,
    cost_keys: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """Cost lines from the stage-1 roll-ups; see ``attribute_costs`` for the columns."""
    events = resolve_cost_events(priced_events, pr_links, work_item_links, activity, features, settings, cost_keys)
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
    cost_keys: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """One row per priced event: the rule that reaches it and where it goes, with compact link keys.

    ``feature_id`` is the feature of a ``direct``, ``pull_request`` or ``work_item`` event; a
    split event has ``split`` (person, repo, team) and ``split_key`` instead, resolved to lines by
    ``split_cost_lines``. The link keys (``tagged_feature_id, pr_id, work_item_key, branch_key,
    person_id, repo, event_team_id, week`` and the ``*_found``/``wi_hit`` flags) are what
    ``describe_cost_lines`` turns into link and reason text for the rows a reader looks at.
    """
    resolved = _resolve(priced_events, pr_links, work_item_links, activity, features, settings, cost_keys)
    names = resolved.collect_schema().names()
    flags = [
        (pl.col(f) if f in names else pl.lit(None, pl.Boolean)).fill_null(False).alias(f)
        for f in ("pr_found", "wi_found", "bk_found", "key_found")
    ]
    account = [c if c in names else pl.lit(None, pl.String).alias(c) for c in ("account_key", "account_scope")]
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
        *account,
        "matched_key",
        "key_feature_id",
        "key_person_id",
        "key_team_id",
        "via",
        *flags,
        (pl.col("via") == "work_item_key").fill_null(False).alias("wi_hit"),
    )


def _link_tables(
    pr_links: pl.LazyFrame, work_item_links: pl.LazyFrame, features: pl.LazyFrame
) -> dict[str, pl.LazyFrame]:
    """Per ``Link.table``: the key (``__key``) and the feature it reaches (``__feature``), found keys only."""
    return {
        "features": features.select(pl.col("feature_id").alias("__key"), pl.col("feature_id").alias("__feature")),
        "pull_requests": pr_links.select(pl.col("pr_id").alias("__key"), pl.col("feature_id").alias("__feature")),
        "work_items": work_item_links.select(
            pl.col("work_item_key").alias("__key"), pl.col("feature_id").alias("__feature")
        ),
    }


def with_link_keys(events: pl.LazyFrame, cost_keys: pl.LazyFrame | None) -> pl.LazyFrame:
    """``events`` with the derived keys the rules read: ``branch_key`` and the account key map's targets.

    ``matched_key`` is the event's ``account_key`` when the key map lists it, else its
    ``account_scope`` when listed; ``key_feature_id``, ``key_person_id`` and ``key_team_id`` are
    what that key is mapped to (one of the three).
    """
    return _with_account_keys(_with_branch_key(events, events), cost_keys)


_DERIVED_KEYS: dict[str, tuple[str, ...]] = {
    "branch_key": ("branch",),
    "matched_key": ("account_key", "account_scope"),
    "key_feature_id": ("account_key", "account_scope"),
    "key_person_id": ("account_key", "account_scope"),
    "key_team_id": ("account_key", "account_scope"),
}
"""The derived keys a rule step may read (``with_link_keys``) and the event columns each is derived from."""


def _with_branch_key(events: pl.LazyFrame, branches: pl.LazyFrame) -> pl.LazyFrame:
    """``events`` with ``branch_key``: the first work-item key in its branch, read once per distinct branch."""
    return events.join(
        branch_work_items(branches).rename({"work_item_key": "branch_key"}), on="branch", how="left", nulls_equal=False
    )


def _with_account_keys(events: pl.LazyFrame, cost_keys: pl.LazyFrame | None) -> pl.LazyFrame:
    """``events`` with ``matched_key`` and ``key_feature_id, key_person_id, key_team_id`` (``with_link_keys``)."""
    names = events.collect_schema().names()
    targets = ("feature_id", "person_id", "team_id")
    if cost_keys is not None:
        cost_keys = cost_keys.collect().lazy()
    if cost_keys is None or "account_key" not in names or cost_keys.select(pl.len()).collect().item() == 0:
        return events.with_columns(
            pl.lit(None, pl.String).alias("matched_key"),
            *[pl.lit(None, pl.String).alias(f"key_{t}") for t in targets],
        )
    key_map = cost_keys.select("key", *targets)
    for column, tag in (("account_key", "__ak"), ("account_scope", "__as")):
        events = events.join(
            key_map.select(
                pl.col("key").alias(column),
                pl.lit(True).alias(f"{tag}_hit"),
                *[pl.col(t).alias(f"{tag}_{t}") for t in targets],
            ),
            on=column,
            how="left",
        )
    by_key = pl.col("__ak_hit").is_not_null()
    by_scope = pl.col("__as_hit").is_not_null()
    return events.with_columns(
        pl.when(by_key).then(pl.col("account_key")).when(by_scope).then(pl.col("account_scope")).alias("matched_key"),
        *[pl.when(by_key).then(pl.col(f"__ak_{t}")).otherwise(pl.col(f"__as_{t}")).alias(f"key_{t}") for t in targets],
    ).drop(pl.selectors.starts_with("__ak_", "__as_"))


def _resolve(
    priced: pl.LazyFrame,
    pr_links: pl.LazyFrame,
    work_item_links: pl.LazyFrame,
    activity: pl.LazyFrame,
    features: pl.LazyFrame,
    settings: CostSettings,
    cost_keys: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """``priced`` events (or groups) with ``rule``, the line's ``feature_id``, ``split``, ``split_key`` and ``via``.

    Walks ``RULE_TABLE``: each enabled rule's steps join their lookup (a link table, or the
    activity of the step's kind), and the first step that reaches decides. ``via`` names the event
    column of that step; the event's own feature moves to ``tagged_feature_id``; each link step
    keeps its ``found`` flag (the key exists at all) for the explanations.
    """
    tables = _link_tables(pr_links, work_item_links, features)
    totals = activity.select("kind", "key", "week").unique()
    events = with_link_keys(priced, cost_keys).with_columns(pl.col("feature_id").alias("tagged_feature_id"))
    steps: list[tuple[Rule, Link | Split, pl.Expr, pl.Expr | None]] = []
    for rule in settings.enabled():
        for step in rule.steps:
            tag = f"__s{len(steps)}"
            if isinstance(step, Link):
                table = tables[step.table]
                events = events.join(
                    table.select(
                        pl.col("__key").alias(step.column),
                        pl.lit(True).alias(step.found),
                        pl.col("__feature").alias(tag),
                    ),
                    on=step.column,
                    how="left",
                )
                steps.append((rule, step, pl.col(tag).is_not_null(), pl.col(tag)))
            else:
                events = events.join(
                    totals.filter(pl.col("kind") == step.kind).select(
                        pl.col("key").alias(step.column), "week", pl.lit(True).alias(tag)
                    ),
                    on=[step.column, "week"],
                    how="left",
                )
                steps.append((rule, step, pl.col(tag).is_not_null(), None))
    chosen: pl.Expr = pl.lit(None, pl.Int32)
    for index in reversed(range(len(steps))):
        chosen = pl.when(steps[index][2]).then(pl.lit(index, pl.Int32)).otherwise(chosen)
    step_no = pl.col("__step")
    feature: pl.Expr = pl.lit(None, pl.String)
    split: pl.Expr = pl.lit(None, pl.String)
    split_key: pl.Expr = pl.lit(None, pl.String)
    for index, (_, step, _, found) in reversed(list(enumerate(steps))):
        if found is not None:
            feature = pl.when(step_no == index).then(found).otherwise(feature)
        else:
            assert isinstance(step, Split)
            split = pl.when(step_no == index).then(pl.lit(step.kind)).otherwise(split)
            split_key = pl.when(step_no == index).then(pl.col(step.column)).otherwise(split_key)
    rule_of = {i: rule.name for i, (rule, _, _, _) in enumerate(steps)}
    via_of = {i: step.column for i, (_, step, _, _) in enumerate(steps)}
    return (
        events.with_columns(chosen.alias("__step"))
        .with_columns(
            step_no.replace_strict(rule_of, default="unattributed", return_dtype=pl.String).alias("rule"),
            step_no.replace_strict(via_of, default=None, return_dtype=pl.String).alias("via"),
            feature.alias("feature_id"),
            split.alias("split"),
            split_key.alias("split_key"),
        )
        .drop("__step", *[f"__s{i}" for i in range(len(steps))], strict=False)
    )


def rollup_cost_groups(
    priced_groups: pl.LazyFrame,
    pr_links: pl.LazyFrame,
    work_item_links: pl.LazyFrame,
    activity: pl.LazyFrame,
    features: pl.LazyFrame,
    settings: CostSettings = DEFAULT_SETTINGS,
    cost_keys: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """Priced groups (``price_cost_groups``) attributed and summed per quarter, source, rule, feature and team.

    One pass over the groups down ``RULE_TABLE``: each enabled rule's steps in order look up only
    the groups no earlier step reached (a link step in its link table, a split step in the active
    weeks of its kind), so every group is resolved exactly as ``resolve_cost_events`` resolves an
    event, by its first reaching step. The groups a link step reaches are summed per feature;
    those a split step reaches per split group (kind, key, week), whose money is then shared over
    the group's features by activity weight; the rest stays unattributed.

    One row per ``_ROLLUP_KEYS``: ``occurred_at`` (the quarter's first instant), ``source, rule,
    feature_id, team_id`` (the feature's team, else the event's or its person's), ``amount``,
    ``lines`` (the cost lines behind the row: events, one per feature a split reached) and
    ``unpriced_events`` (events with no money, counted by their shares). Equal to the cost
    lines summed (``rollup_cost_lines``).
    """
    steps = [(rule, step) for rule in settings.enabled() for step in rule.steps]
    names = priced_groups.collect_schema().names()
    # Each step's lookup sees only the columns it and the later steps read.
    needs = [{step.column, *_DERIVED_KEYS.get(step.column, ())} for _, step in steps]
    later = [set().union(*needs[i:]) for i in range(len(steps))] + [set()]
    rows = priced_groups.select(
        *_ROLLUP_VALUES,
        pl.coalesce("team_id", "person_team_id").alias("__fallback_team"),
        *[c for c in names if c in later[0]],
    )
    tables = _link_tables(pr_links, work_item_links, features)
    active = activity.select("kind", "key", "week").unique()
    reached = pl.col("__reached")
    linked: list[pl.LazyFrame] = []
    split: list[pl.LazyFrame] = []
    pending = rows
    for index, (rule, step) in enumerate(steps):
        column = step.column
        if column not in pending.collect_schema().names():
            pending = (
                _with_branch_key(pending, priced_groups)
                if column == "branch_key"
                else _with_account_keys(pending, cost_keys)
            )
        if isinstance(step, Link):
            table = tables[step.table].filter(pl.col("__feature").is_not_null())
            lookup = table.select(pl.col("__key").alias(column), pl.col("__feature").alias("__reached"))
            on = [column]
        else:
            lookup = active.filter(pl.col("kind") == step.kind).select(
                pl.col("key").alias(column), "week", pl.lit(True).alias("__reached")
            )
            on = [column, "week"]
        looked = pending.join(lookup, on=on, how="left").cache()
        hits = looked.filter(reached.is_not_null())
        if isinstance(step, Link):
            linked.append(
                hits.select(
                    *_ROLLUP_VALUES, "__fallback_team", pl.lit(rule.name).alias("rule"), reached.alias("feature_id")
                )
            )
        else:
            split.append(
                hits.select(
                    *_ROLLUP_VALUES,
                    "__fallback_team",
                    pl.lit(rule.name).alias("rule"),
                    pl.lit(step.kind).alias("split"),
                    pl.col(column).alias("split_key"),
                )
            )
        pending = looked.filter(reached.is_null()).select(
            *_ROLLUP_VALUES, "__fallback_team", *[c for c in pending.collect_schema().names() if c in later[index + 1]]
        )
    by = ("occurred_at", "source", "rule", "__fallback_team")
    parts = [
        pending.group_by("occurred_at", "source", "__fallback_team")
        .agg(*_ROLLUP_SUMS)
        .with_columns(pl.lit("unattributed").alias("rule"), pl.lit(None, pl.String).alias("feature_id"))
    ]
    if linked:
        parts.append(pl.concat(linked).group_by(*by, "feature_id").agg(*_ROLLUP_SUMS))
    if split:
        shares = activity.select(
            pl.col("kind").alias("split"),
            pl.col("key").alias("split_key"),
            "week",
            "feature_id",
            (pl.col("weight") / pl.col("total")).alias("__share"),
        )
        share = pl.col("__share")
        parts.append(
            pl.concat(split)
            .group_by(*by, "split", "split_key", "week")
            .agg(*_ROLLUP_SUMS)
            .join(shares, on=["split", "split_key", "week"], how="inner")
            .select(
                *by,
                "feature_id",
                (pl.col("__money") * share).alias("__money"),
                "lines",
                (pl.col("__unpriced") * share).alias("__unpriced"),
            )
        )
    teams = features.select("feature_id", pl.col("team_id").alias("__feature_team"))
    return (
        pl.concat(parts, how="diagonal")
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


_ROLLUP_VALUES = ("occurred_at", "week", "source", "money", "events", "unpriced")
"""What the roll-up carries of each priced group besides its keys."""

_ROLLUP_SUMS = (
    pl.col("money").sum().alias("__money"),
    pl.col("events").sum().cast(pl.Int64).alias("lines"),
    pl.col("unpriced").sum().cast(pl.Float64).alias("__unpriced"),
)
"""What ``rollup_cost_groups`` sums of the groups that share a rule, feature or split group."""

_ROLLUP_KEYS = ("occurred_at", "source", "rule", "feature_id", "team_id")
"""The grain of the cost roll-up: quarter, source, rule, feature and team."""


def unreached_cost_events(
    cost_events: pl.LazyFrame,
    pr_links: pl.LazyFrame,
    work_item_links: pl.LazyFrame,
    activity: pl.LazyFrame,
    features: pl.LazyFrame,
    settings: CostSettings = DEFAULT_SETTINGS,
    cost_keys: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """The cost events no enabled rule reaches (resolved by ``RULE_TABLE``); same columns as ``cost_events``."""
    columns = cost_events.collect_schema().names()
    weeks = cost_events.with_columns(pl.col("occurred_at").dt.truncate("1w").dt.date().alias("week"))
    resolved = _resolve(weeks, pr_links, work_item_links, activity, features, settings, cost_keys)
    return (
        resolved.filter(pl.col("rule") == "unattributed")
        .with_columns(pl.col("tagged_feature_id").alias("feature_id"))
        .select(columns)
    )


def feature_candidate_events(
    cost_events: pl.LazyFrame,
    pr_links: pl.LazyFrame,
    work_item_links: pl.LazyFrame,
    activity: pl.LazyFrame,
    branch_items: pl.LazyFrame,
    feature_id: str,
    cost_keys: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """The cost events that may reach ``feature_id`` under some rule of ``RULE_TABLE``: a superset to resolve exactly.

    For each link step, the events whose key leads to the feature; for each split step, the events
    naming a key that was active on the feature in the event's week. Derived keys reach back to the
    event's own columns: a branch key through its branch (``branch_items`` from
    ``branch_work_items``), a mapped account key through ``account_key`` and ``account_scope``.
    The feature's own keys are few, so they are collected first and the events are read in a
    single filtering pass.
    """
    tables = _link_tables(pr_links, work_item_links, pl.LazyFrame({"feature_id": [feature_id]}))
    key_map = (
        cost_keys.select("key", "feature_id", "person_id", "team_id")
        if cost_keys is not None
        else pl.LazyFrame(
            schema={"key": pl.String, "feature_id": pl.String, "person_id": pl.String, "team_id": pl.String}
        )
    )
    active = activity.filter(pl.col("feature_id") == feature_id).select("kind", "key", "week").collect()
    link_keys = dict(
        zip(
            tables,
            pl.collect_all([t.filter(pl.col("__feature") == feature_id).select("__key") for t in tables.values()]),
            strict=True,
        )
    )
    branches, mapped = pl.collect_all(
        [
            branch_items.join(
                link_keys["work_items"].lazy().rename({"__key": "work_item_key"}), on="work_item_key", how="semi"
            ).select("branch"),
            key_map.collect().lazy(),
        ]
    )
    names = cost_events.collect_schema().names()

    def named(column: str, values: pl.Series) -> pl.Expr:
        if column == "branch_key":
            return pl.col("branch").is_in(branches["branch"].implode())
        if column.startswith("key_"):
            keys = mapped.filter(pl.col(column.removeprefix("key_")).is_in(values.implode()))["key"].implode()
            if "account_key" not in names:
                return pl.lit(False)
            return pl.col("account_key").is_in(keys) | pl.col("account_scope").is_in(keys)
        return pl.col(column).is_in(values.implode())

    reaches: pl.Expr = pl.lit(False)
    week = pl.col("occurred_at").dt.truncate("1w").dt.date()
    for rule in RULE_TABLE:
        for step in rule.steps:
            if isinstance(step, Link):
                reaches = reaches | named(step.column, link_keys[step.table]["__key"]).fill_null(False)
            else:
                weeks = active.filter(pl.col("kind") == step.kind)
                if weeks.height:
                    in_week = week.is_in(weeks["week"].unique().implode())
                    reaches = reaches | (named(step.column, weeks["key"].unique()) & in_week).fill_null(False)
    return cost_events.filter(reaches)


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


def branch_work_items(cost_events: pl.LazyFrame) -> pl.LazyFrame:
    """Each distinct branch named by the cost events with the first work-item key in it: ``branch, work_item_key``."""
    return (
        cost_events.select(pl.col("branch").unique())
        .with_columns(first_work_item_key(pl.col("branch"), case_insensitive=True).alias("work_item_key"))
        .filter(pl.col("work_item_key").is_not_null())
    )


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

"""How a cost line explains itself: the link that attributed it, or why no rule reached it.

The text is built per row, so it is meant for the rows a reader looks at (one feature's lines,
the unattributed ones), never for the whole attribution.
"""

from __future__ import annotations

import polars as pl

from core.costs.rules import DEFAULT_SETTINGS, CostSettings

SPLIT_LINKS = {"person": "via time allocation", "repo": "via repo activity", "team": "via team activity"}
"""How a split line's link starts, by split kind."""


def describe_cost_lines(
    lines: pl.LazyFrame, pr_links: pl.LazyFrame, settings: CostSettings = DEFAULT_SETTINGS, *, generic: bool = False
) -> pl.LazyFrame:
    """``lines`` (from ``split_cost_lines``) with ``link``, the path that attributed each, and ``reason``.

    Meant for the rows a reader looks at (one feature's lines, the unattributed ones): the text
    is built per row. ``generic`` words the reason without naming a person, PR, work item,
    repository or team, for readers who may see only aggregates.
    """
    rule_is, via = pl.col("rule").eq, pl.col("via").eq
    via_pr = pr_links.select("pr_id", pl.col("link").alias("__pr_link"))
    split_text = pl.col("split").replace_strict(SPLIT_LINKS, default=None, return_dtype=pl.String)
    by_key = pl.concat_str(pl.lit("via account key "), pl.col("matched_key"))
    split_link = pl.concat_str(
        split_text,
        pl.lit(" ("),
        pl.col("split_key"),
        pl.lit(", "),
        iso_week(pl.col("week")),
        pl.lit(": "),
        pl.col("split_weight").cast(pl.String),
        pl.lit(" of "),
        pl.col("split_total").cast(pl.String),
        pl.lit(")"),
    )
    link = (
        pl.when(via("feature_id"))
        .then(pl.lit("direct tag"))
        .when(via("pr_id"))
        .then(pl.col("__pr_link"))
        .when(via("work_item_key"))
        .then(pl.concat_str(pl.lit("via work item "), pl.col("work_item_key")))
        .when(via("branch_key"))
        .then(pl.concat_str(pl.lit("via work item "), pl.col("branch_key"), pl.lit(" (branch)")))
        .when(via("key_feature_id"))
        .then(pl.concat_str(by_key, pl.lit(" → feature "), pl.col("key_feature_id")))
        .when(rule_is("account_key"))
        .then(pl.concat_str(by_key, pl.lit(" → "), split_link))
        .when(pl.col("split").is_not_null())
        .then(split_link)
    )
    return (
        lines.join(via_pr, on="pr_id", how="left")
        .with_columns(
            link.alias("link"),
            pl.when(rule_is("unattributed")).then(_unattributed_reason(set(settings.rules), generic)).alias("reason"),
        )
        .drop("__pr_link")
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

    week = iso_week(pl.col("week"))
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
            pl.col("account_key").is_not_null() | pl.col("account_scope").is_not_null(),
            "account_key",
            "account key ignored",
            (
                pl.col("matched_key").is_null(),
                say(
                    "the account key is not mapped",
                    "account key ",
                    pl.coalesce("account_key", "account_scope"),
                    " is not mapped to a team, person or feature",
                ),
            ),
            (
                pl.lit(True),
                say(
                    "the account key's feature is not known or its person or team had no feature-linked activity",
                    "account key ",
                    pl.col("matched_key"),
                    " → ",
                    pl.coalesce("key_feature_id", "key_person_id", "key_team_id"),
                    " reaches no known feature in ",
                    week,
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


def iso_week(week: pl.Expr) -> pl.Expr:
    """A week's first day as its ISO week label (``2026-W07``)."""
    return week.dt.strftime("%G-W%V")

"""The setup checklist of a new workspace: for each headline number, what it needs, what is there, and the next step.

Each headline number is a row of :data:`HEADLINES` (the entities it needs, the import that brings
each, the page where it is shown); :func:`setup_checklist` turns row counts per entity, and what
each number reached (:func:`reach`), into the checklist a new workspace's admin sees on Home.

Coverage is what the number reached, from the measures the pages already compute:

* cost per feature: the share of money attributed to a feature (the cost roll-up);
* impact verdicts: the share of delivered features whose hypothesis has a verdict (confirmed,
  refuted or inconclusive; pending and confounded ones cannot be judged yet);
* value throughput: the share of delivered features with a realised value (a confirmed verdict on
  a metric with a money value per unit);
* DORA: the share of successful production deployments linked to at least one merged PR;
* vanity flags: the share of the inputs present.

Until every input of a number is there, its coverage is the share of inputs present.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import polars as pl

from core.delivery import dora
from core.measures import realised_values
from core.outcomes.verdicts import JUDGED


@dataclass(frozen=True)
class Headline:
    """A headline number, the entities it is computed from, and the page that shows it."""

    number: str
    needs: tuple[str, ...]
    page: str


@dataclass(frozen=True)
class ChecklistRow:
    """One headline number's setup: what it needs, what is there, the share present, and the next step's page."""

    number: str
    needs: str
    present: str
    coverage: float
    next_step: str
    next_page: str


BRINGS: dict[str, tuple[str, str]] = {
    "features": ("a Jira or Linear export (epics become features)", "data"),
    "cost_events": ("an LLM or CI cost export (Anthropic, OpenAI, CircleCI, GitHub Actions)", "data"),
    "pull_requests": ("a GitHub or GitLab pull request export", "data"),
    "deployments": ("a deployments export or a DevLake connection", "data"),
    "metrics": ("an outcome metric defined on the Metrics page, or an observations upload", "metrics"),
    "metric_observations": ("a `date, metric, value` observations file", "data"),
    "hypotheses": ("a hypothesis recorded on the Hypotheses page", "hypotheses"),
    "teams": ("a Jira export with a Team field, or a team created on the Teams page", "teams"),
}
"""Entity → the import or page that brings it, and the page id of that step."""

HEADLINES: tuple[Headline, ...] = (
    Headline("Cost per feature", ("features", "cost_events"), "cost"),
    Headline("Impact verdicts", ("features", "metrics", "metric_observations", "hypotheses"), "impact"),
    Headline("Value throughput", ("features", "metrics", "metric_observations"), "throughput"),
    Headline("DORA", ("pull_requests", "deployments"), "dora"),
    Headline("Vanity flags", ("features", "cost_events", "teams"), "flags"),
)
"""Every headline number in the order Home lists them."""

SHORT_OF: dict[str, tuple[str, str]] = {
    "Cost per feature": (
        "Map the unmapped account keys (Data page, Cost account keys), or link cost to PRs and work items.",
        "data",
    ),
    "Impact verdicts": ("Record a hypothesis for each delivered feature.", "hypotheses"),
    "Value throughput": ("Give outcome metrics a money value per unit.", "metrics"),
    "DORA": ("Bring deployments whose commit is a PR's merge commit (or a DevLake connection).", "data"),
}
"""Headline → the step that raises its coverage once every input is there, and that step's page."""


@dataclass(frozen=True)
class Reach:
    """What a headline number reached: the share, and the figures it is the share of."""

    share: float
    detail: str


def reach(
    features: pl.LazyFrame,
    metrics: pl.LazyFrame,
    pull_requests: pl.LazyFrame,
    deployments: pl.LazyFrame,
    judged: pl.DataFrame,
    cost_rollup: pl.DataFrame,
    currency: str,
) -> dict[str, Reach]:
    """Per headline number with something to measure, the share it reached (see the module's notes).

    ``judged`` is the verdicts (``core.measures.judged_hypotheses``), ``cost_rollup`` the attributed
    money (``core.measures.cost_rollup``), both as the pages already keep them.
    """
    reached: dict[str, Reach] = {}
    total = float(cost_rollup["amount"].sum() or 0.0) if cost_rollup.height else 0.0
    if total > 0:
        attributed = float(cost_rollup.filter(pl.col("feature_id").is_not_null())["amount"].sum() or 0.0)
        reached["Cost per feature"] = Reach(
            attributed / total, f"{attributed:,.2f} of {total:,.2f} {currency} attributed to a feature"
        )
    elif cost_rollup.height:
        reached["Cost per feature"] = Reach(0.0, "no cost event has an amount or a price yet")
    delivered = features.filter(pl.col("status") == "delivered").select("feature_id").collect()
    if not delivered.height:
        none = Reach(0.0, "no feature is delivered yet")
        reached["Impact verdicts"] = reached["Value throughput"] = none
    else:
        ids = delivered["feature_id"]
        verdicts = judged.filter(pl.col("feature_id").is_in(ids.implode()))
        with_verdict = verdicts.filter(pl.col("verdict").is_in(JUDGED))["feature_id"].n_unique()
        reached["Impact verdicts"] = Reach(
            with_verdict / delivered.height,
            f"{with_verdict:,} of {delivered.height:,} delivered features have a judged hypothesis",
        )
        valued = (
            realised_values(verdicts.lazy(), metrics)
            .filter(pl.col("realised_value").is_not_null())
            .select(pl.col("feature_id").n_unique())
            .collect()
            .item()
        )
        reached["Value throughput"] = Reach(
            valued / delivered.height, f"{valued:,} of {delivered.height:,} delivered features have a realised value"
        )
    shipped = dora.production_deployments(deployments).select("deployment_id").collect()
    if not shipped.height:
        reached["DORA"] = Reach(0.0, "no successful production deployment yet")
    else:
        linked = (
            dora.link_pull_requests_to_deployments(pull_requests, deployments)
            .filter(pl.col("deployment_id").is_in(shipped["deployment_id"].implode()))
            .select(pl.col("deployment_id").n_unique())
            .collect()
            .item()
        )
        reached["DORA"] = Reach(
            linked / shipped.height,
            f"{linked:,} of {shipped.height:,} production deployments linked to a merged PR",
        )
    return reached


def setup_checklist(counts: Mapping[str, int], reached: Mapping[str, Reach] | None = None) -> list[ChecklistRow]:
    """One row per headline number: its needs, what is there, its coverage, the next step.

    With every input present, coverage is what the number reached (``reached``, from :func:`reach`)
    and the next step the one that raises it; until then, the share of inputs present and the import
    that brings the first missing one.
    """
    reached = reached or {}
    rows = []
    for headline in HEADLINES:
        missing = [e for e in headline.needs if counts.get(e, 0) == 0]
        present = ", ".join(f"{counts[e]:,} {e.replace('_', ' ')}" for e in headline.needs if counts.get(e, 0))
        coverage = (len(headline.needs) - len(missing)) / len(headline.needs)
        got = reached.get(headline.number)
        if missing:
            step, page = BRINGS[missing[0]]
            step = f"Bring {step}."
        elif got is not None and got.share < 1 and headline.number in SHORT_OF:
            coverage = got.share
            step, page = SHORT_OF[headline.number]
            present = f"{present}; {got.detail}"
        else:
            if got is not None:
                coverage, present = got.share, f"{present}; {got.detail}"
            step, page = "Ready: open the page.", headline.page
        rows.append(
            ChecklistRow(
                headline.number,
                ", ".join(e.replace("_", " ") for e in headline.needs),
                present or "nothing yet",
                coverage,
                step,
                page,
            )
        )
    return rows


def is_set_up(counts: Mapping[str, int]) -> bool:
    """True when every headline number has every input it needs (Home then drops the checklist)."""
    return all(counts.get(e, 0) > 0 for headline in HEADLINES for e in headline.needs)

"""The setup checklist of a new workspace: for each headline number, what it needs, what is there, and the next step.

Each headline number is a row of :data:`HEADLINES` (the entities it needs, the import that brings
each, the page where it is shown); :func:`setup_checklist` turns row counts per entity into the
checklist a new workspace's admin sees on Home.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


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


def setup_checklist(counts: Mapping[str, int]) -> list[ChecklistRow]:
    """One row per headline number: its needs, the rows there, the share of needs present, the next step."""
    rows = []
    for headline in HEADLINES:
        missing = [e for e in headline.needs if counts.get(e, 0) == 0]
        present = ", ".join(f"{counts[e]:,} {e.replace('_', ' ')}" for e in headline.needs if counts.get(e, 0))
        if missing:
            step, page = BRINGS[missing[0]]
            step = f"Bring {step}."
        else:
            step, page = "Ready: open the page.", headline.page
        rows.append(
            ChecklistRow(
                headline.number,
                ", ".join(e.replace("_", " ") for e in headline.needs),
                present or "nothing yet",
                (len(headline.needs) - len(missing)) / len(headline.needs),
                step,
                page,
            )
        )
    return rows


def is_set_up(counts: Mapping[str, int]) -> bool:
    """True when every headline number has what it needs (Home then drops the checklist)."""
    return all(row.coverage == 1.0 for row in setup_checklist(counts))

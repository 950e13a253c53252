"""Every recognised export format, most specific first."""

from __future__ import annotations

from core.importing.formats import ci, github, gitlab, gitlog, jira, linear, llm, observations
from core.importing.formats.base import ROW, Format, Mapped

FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        jira.FORMAT,
        linear.FORMAT,
        github.REST,
        github.GH_CLI,
        gitlab.MERGE_REQUESTS,
        gitlab.DEPLOYMENTS,
        gitlog.FORMAT,
        ci.ACTIONS_LEGACY,
        ci.ACTIONS,
        ci.CIRCLECI,
        llm.OPENAI_COST,
        llm.OPENAI_USAGE,
        llm.ANTHROPIC_COST,
        llm.ANTHROPIC_USAGE,
        observations.LONG,
        observations.WIDE,
    )
}
"""Recognised formats by name; ``generic`` (the mapping screen) is not one of them."""

__all__ = ["FORMATS", "ROW", "Format", "Mapped"]

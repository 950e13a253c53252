"""The one access layer: which pages, metric levels, teams and rows a signed-in viewer may see.

Audience rule (PRODUCT.md): executives see outcome level plus cost and value, as organisation
and team aggregates; delivery leads see output and outcome for all teams; a team lead sees
every level for their own team and only output/outcome aggregates for other teams; admins
see everything plus data and users. Pages and CLI reports pass every frame they show through
``restrict``; they never decide access themselves.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from core.schema import LEVELS, ROLES

ALL_ROLES = frozenset(ROLES)


@dataclass(frozen=True)
class Viewer:
    """Who is looking: the signed-in user (or the local admin for the CLI)."""

    username: str
    name: str
    role: str
    team_id: str | None = None

    @classmethod
    def local_admin(cls) -> Viewer:
        """The CLI's identity when no ``--as USER`` is given."""
        return cls(username="local-admin", name="Local admin", role="admin")


@dataclass(frozen=True)
class PageSpec:
    """A page of the app and the roles that may open it."""

    page_id: str
    title: str
    icon: str
    roles: frozenset[str]
    section: str = "Measures"


_LEADS = frozenset({"delivery_lead", "team_lead", "admin"})
_STEWARDS = frozenset({"delivery_lead", "admin"})

PAGES: tuple[PageSpec, ...] = (
    PageSpec("home", "Home", ":material/home:", ALL_ROLES, section="Overview"),
    PageSpec("outcomes", "Outcomes", ":material/flag:", ALL_ROLES, section="Outcomes"),
    PageSpec("impact", "Impact verdicts", ":material/fact_check:", ALL_ROLES, section="Outcomes"),
    PageSpec("learning", "Predicted vs actual", ":material/school:", ALL_ROLES, section="Outcomes"),
    PageSpec("hypotheses", "Hypotheses", ":material/lightbulb:", _LEADS, section="Outcomes"),
    PageSpec("metrics", "Metrics", ":material/straighten:", _STEWARDS, section="Outcomes"),
    PageSpec("cost", "Cost per feature", ":material/payments:", ALL_ROLES, section="Measures"),
    PageSpec("throughput", "Value throughput", ":material/trending_up:", ALL_ROLES, section="Measures"),
    PageSpec("dora", "DORA", ":material/rocket_launch:", _LEADS, section="Measures"),
    PageSpec("flags", "Vanity flags", ":material/warning:", ALL_ROLES, section="Measures"),
    PageSpec(
        "explore",
        "Explore",
        ":material/query_stats:",
        frozenset({"executive", "delivery_lead", "admin"}),
        section="Measures",
    ),
    PageSpec("data", "Data", ":material/upload_file:", _STEWARDS, section="Workspace"),
    PageSpec("users", "Users", ":material/group:", frozenset({"admin"}), section="Workspace"),
)
"""Every page in navigation order, with the roles that may open it."""

_LEVELS_BY_ROLE: dict[str, frozenset[str]] = {
    "executive": frozenset({"outcome"}),
    "delivery_lead": frozenset({"output", "outcome"}),
    "team_lead": frozenset(LEVELS),
    "admin": frozenset(LEVELS),
}
_TEAM_LEAD_OTHER_TEAMS = frozenset({"output", "outcome"})


def pages_for(viewer: Viewer) -> list[PageSpec]:
    """The pages ``viewer`` may open, in navigation order."""
    return [p for p in PAGES if viewer.role in p.roles]


def may_open(viewer: Viewer, page_id: str) -> bool:
    """True when ``viewer`` may open the page ``page_id``."""
    return any(p.page_id == page_id for p in pages_for(viewer))


def may_change_settings(viewer: Viewer) -> bool:
    """True when ``viewer`` may change measure definitions, rates and thresholds (not users)."""
    return viewer.role in _STEWARDS


def may_manage_connections(viewer: Viewer) -> bool:
    """True when ``viewer`` may add a database connection or change what it reads (admins only)."""
    return viewer.role == "admin"


def may_edit_hypothesis(viewer: Viewer, team_id: str | None) -> bool:
    """True when ``viewer`` may state or edit the hypothesis of a feature of ``team_id``."""
    return may_change_settings(viewer) or (
        viewer.role == "team_lead" and team_id is not None and team_id == viewer.team_id
    )


def visible_levels(viewer: Viewer, team_id: str | None = None) -> frozenset[str]:
    """Metric levels ``viewer`` may see for ``team_id`` (None: organisation-wide figures)."""
    levels = _LEVELS_BY_ROLE.get(viewer.role, frozenset())
    if viewer.role == "team_lead" and team_id != viewer.team_id:
        return levels & _TEAM_LEAD_OTHER_TEAMS
    return levels


def may_see(viewer: Viewer, level: str, team_id: str | None = None) -> bool:
    """True when ``viewer`` may see a figure of ``level`` about ``team_id``."""
    return level in visible_levels(viewer, team_id)


def may_see_detail(viewer: Viewer, team_id: str | None) -> bool:
    """True when ``viewer`` may see per-person, per-PR or per-work-item rows of ``team_id``."""
    if viewer.role == "admin":
        return True
    if viewer.role == "team_lead":
        return team_id is not None and team_id == viewer.team_id
    return False


def restrict(
    viewer: Viewer,
    frame: pl.LazyFrame,
    *,
    level: str,
    detail: bool = False,
    team_column: str | None = "team_id",
) -> pl.LazyFrame:
    """The rows of ``frame`` that ``viewer`` may see.

    ``level`` is the metric level of the figures in the frame; ``detail`` marks per-person,
    per-PR or per-work-item rows. Rows of teams the viewer may not see are dropped; a frame
    the viewer may not see at all comes back empty with the same schema.
    """
    nothing = frame.filter(pl.lit(False))
    if viewer.role == "admin":
        return frame
    if viewer.role == "team_lead":
        if level in _TEAM_LEAD_OTHER_TEAMS and not detail:
            return frame
        if team_column is None or viewer.team_id is None:
            return nothing
        return frame.filter(pl.col(team_column) == viewer.team_id)
    if detail or level not in _LEVELS_BY_ROLE.get(viewer.role, frozenset()):
        return nothing
    return frame


def restrict_metrics(viewer: Viewer, metrics: pl.LazyFrame) -> pl.LazyFrame:
    """The metric definitions ``viewer`` may see, by level (and team for a team lead)."""
    allowed = sorted(_LEVELS_BY_ROLE.get(viewer.role, frozenset()))
    visible = metrics.filter(pl.col("level").is_in(allowed))
    if viewer.role == "team_lead":
        own_or_shared = pl.col("team_id").is_null() | (pl.col("team_id") == viewer.team_id)
        return visible.filter(pl.col("level").is_in(sorted(_TEAM_LEAD_OTHER_TEAMS)) | own_or_shared)
    return visible

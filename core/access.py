"""The one access layer: which pages, metric levels, teams and rows a signed-in viewer may see.

Audience rule (PRODUCT.md): executives see outcome level plus cost and value, as organisation
and team aggregates; delivery leads see output and outcome for all teams; a team lead sees
every level for their own team and only output/outcome aggregates for other teams; admins
see everything plus data and users. Pages and CLI reports pass every frame they show through
``restrict``; they never decide access themselves.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import polars as pl

from core import users
from core.delivery import throughput
from core.flags import acknowledgements
from core.model.schema import ENTITIES, LEVELS, ROLES
from core.outcomes import history
from core.outcomes.hypotheses import HypothesisEdit, edit_hypothesis
from core.store import settings
from core.store.database import Store, utc_now

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
    PageSpec(
        "quarterly",
        "Quarterly review",
        ":material/summarize:",
        frozenset({"executive", "delivery_lead", "admin"}),
        section="Overview",
    ),
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
    PageSpec("teams", "Teams", ":material/groups:", frozenset({"admin"}), section="Workspace"),
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


LANDING_PAGES: dict[str, str] = {"executive": "quarterly"}
"""The page a role lands on after signing in (``home`` for a role not listed)."""


def landing_page(viewer: Viewer) -> str:
    """The page ``viewer`` opens on: an executive's question is the quarter's, everyone else starts Home."""
    landing = LANDING_PAGES.get(viewer.role, "home")
    return landing if may_open(viewer, landing) else "home"


def may_open(viewer: Viewer, page_id: str) -> bool:
    """True when ``viewer`` may open the page ``page_id``."""
    return any(p.page_id == page_id for p in pages_for(viewer))


def may_change_settings(viewer: Viewer) -> bool:
    """True when ``viewer`` may change measure definitions, rates and thresholds (not users)."""
    return viewer.role in _STEWARDS


def may_check_dora_mapping(viewer: Viewer) -> bool:
    """True when ``viewer`` may see the DORA mapping check: every deployment, incident and PR link and why."""
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


# What each measure shows to each viewer: the audience rule applied column by column, so a throughput
# series, a DORA row or a vanity flag carries exactly the levels its viewer may see wherever it is shown.
def restrict_throughput(viewer: Viewer, series: pl.LazyFrame, team_id: str | None) -> pl.LazyFrame:
    """The columns of a throughput series ``viewer`` may see for ``team_id`` (None: the organisation).

    Each level's block of columns (``core.delivery.throughput.LEVELS``) goes through ``restrict`` and is kept
    only where ``may_see`` allows it, so an executive's frame has no PR counts at all.
    """
    keys = ["period_start", "period_end"]
    scoped = series.with_columns(pl.lit(team_id, dtype=pl.String).alias("team_id"))
    names = series.collect_schema().names()
    visible = [c for c in names if c in throughput.LEVELS and may_see(viewer, throughput.LEVELS[c], team_id)]
    shown = scoped.select(keys)
    for level in ("output", "outcome", "activity"):
        block = [c for c in visible if throughput.LEVELS[c] == level]
        if block:
            allowed = restrict(viewer, scoped.select(*keys, "team_id", *block), level=level)
            shown = shown.join(allowed.drop("team_id"), on=keys, how="inner", maintain_order="left")
    return shown.select(*keys, *visible)


def restrict_dora(viewer: Viewer, rows: pl.LazyFrame, team_id: str | None) -> pl.LazyFrame:
    """DORA measure rows ``viewer`` may see (output level); sample sizes count PRs and deployments (activity)."""
    allowed = restrict(
        viewer, rows.with_columns(pl.lit(team_id, dtype=pl.String).alias("team_id")), level="output"
    ).drop("team_id")
    if not may_see(viewer, "activity", team_id):
        allowed = allowed.drop("sample_size")
    return allowed


def dora_frames(frames: dict[str, pl.LazyFrame], team_id: str | None) -> tuple[pl.LazyFrame, ...]:
    """Deployments, pull requests and incidents of one team (all of them for the organisation)."""
    chosen = [frames[name] for name in ("deployments", "pull_requests", "incidents")]
    if team_id is None:
        return tuple(chosen)
    return tuple(frame.filter(pl.col("team_id") == team_id) for frame in chosen)


FLAG_EVIDENCE_LEVELS: dict[str, str | None] = {
    **{key: "activity" for key in ("prs_merged", "prs_unlinked", "pr_unlinked_share", "story_points_resolved")},
    **{key: "activity" for key in ("deployments", "pointed_items", "points_per_item", "points_change", "points_z")},
    **{key: "activity" for key in ("pr_size_median", "size_change", "prs_per_feature", "per_feature_change")},
    **{key: "activity" for key in ("agent_prs", "agent_change", "agent_z", "agent_merged_share", "agent_linked_share")},
    **{f"{m}_{s}": "activity" for m in ("prs_merged", "story_points_resolved", "deployments") for s in ("rise", "z")},
    **{key: "output" for key in ("features_delivered", "cycle_days_median", "cycle_change")},
    **{key: "outcome" for key in ("features_confirmed", "realised_value", "cost", "cost_unlinked")},
    **{key: "outcome" for key in ("cost_unlinked_share", "outcome_metric_id", "outcome_name")},
    **{key: "series" for key in ("series_id", "label", "weeks", "first_value", "last_value", "trend_rise", "follow_p")},
    **{key: "series" for key in ("kendall_tau", "kendall_z", "kendall_p", "best_lag", "best_r", "outcomes_compared")},
    **{key: None for key in ("detector", "window_start", "window_end", "alpha", "steady_band", "follow_alpha")},
    **{key: None for key in ("threshold", "threshold_prs_per_feature", "threshold_size_drop")},
    **{key: None for key in ("threshold_agent_rise", "threshold_share_drop", "permutations")},
    **{key: None for key in ("metric_id", "name", "level", "configured_on")},
}
"""The metric level of every number in a flag's evidence (``_prev`` keys as their measure; None: a setting or
label anyone may see; 'series': the level of the series a decoupled-metric flag tested). Unknown keys count
as activity."""


FLAG_MEASURE_LEVELS: dict[str, str] = {
    "prs_merged": "activity",
    "prs_unlinked": "activity",
    "story_points_resolved": "activity",
    "deployments": "activity",
    "points_per_item": "activity",
    "pr_size_median": "activity",
    "prs_per_feature": "activity",
    "agent_prs": "activity",
    "agent_merged_share": "activity",
    "agent_linked_share": "activity",
    "features_delivered": "output",
    "cycle_days_median": "output",
    "features_confirmed": "outcome",
    "realised_value": "outcome",
    "cost": "outcome",
    "cost_unlinked": "outcome",
}
"""The level of every ``core.flags.rollups.team_periods`` column a flag chart can show."""


_EXPLANATION_LEVEL = {"leadership_vanity": None, "decoupled_metric": "series"}
"""The level of the numbers in each detector's explanation (activity unless listed)."""


_PLAIN_EXPLANATIONS: dict[str, str] = {
    "activity_up_value_flat": "{team}: the team's activity rose by {activity_rise:.0%} or more over the previous "
    "window, beyond chance, while the features it got confirmed and the value they realised did not rise.",
    "unlinked_work": "{team}: more than {unlinked_share:.0%} of the team's work or cost in the window is not linked "
    "to any feature, so neither its cost nor its effect can be traced to an outcome.",
    "story_point_inflation": "{team}: estimates per work item rose by {points_inflation:.0%} or more while cycle time "
    "and change size held steady: the same work is being estimated bigger.",
    "pr_splitting": "{team}: delivered features were cut into {prs_per_feature_rise:.0%} or more pieces of work each, "
    "each {pr_size_drop:.0%} or more smaller: more activity for the same output.",
    "agent_churn": "{team}: work opened by AI agents rose by {agent_pr_rise:.0%} or more while less of it was merged "
    "or linked to planned work.",
    "decoupled_metric": "{team}: a team measure kept rising for {rising_weeks} weeks while the outcome metrics of the "
    "team's features did not follow it at any lag up to {max_lag_weeks} weeks.",
}
"""Each detector's finding in words without its numbers, for viewers who may not see them."""


def restrict_flags(
    viewer: Viewer, flags: pl.DataFrame, frames: dict[str, pl.LazyFrame], thresholds: object
) -> pl.DataFrame:
    """The flags ``viewer`` may see, each with only the evidence numbers (and explanation) of levels they may see.

    A viewer who reads activity (a team lead for their team, an admin) sees the flags of the teams whose
    activity they may see, whole; everyone else (executives, delivery leads) sees every flag, and of its
    evidence only the numbers of their levels: the explanation is then told without its numbers.
    ``hidden_numbers`` counts what was left out.
    """
    rows_level = "activity" if may_see(viewer, "activity", viewer.team_id) else "outcome"
    shown = restrict(viewer, flags.lazy(), level=rows_level, team_column="team_id").collect()
    metrics = frames["metrics"].select("metric_id", "level").collect()
    teams = frames["teams"].select("team_id", "name").collect()
    metric_levels = dict(zip(metrics["metric_id"], metrics["level"], strict=True))
    team_names = dict(zip(teams["team_id"], teams["name"], strict=True))
    words = {field.name: getattr(thresholds, field.name) for field in dataclasses.fields(thresholds)}
    evidence, explanations, hidden = [], [], []
    for flag in shown.select("detector", "team_id", "metric_id", "evidence", "explanation").to_dicts():
        series_level = metric_levels.get(flag["metric_id"], "activity") if flag["metric_id"] else "activity"

        def visible(level: str | None, flag: dict[str, object] = flag, series: str = series_level) -> bool:
            level = series if level == "series" else level
            return level is None or may_see(viewer, level, flag["team_id"])  # type: ignore[arg-type]

        numbers = json.loads(flag["evidence"])
        levels = {k: FLAG_EVIDENCE_LEVELS.get(k.removesuffix("_prev"), "activity") for k in numbers}
        kept = {k: v for k, v in numbers.items() if visible(levels[k])}
        evidence.append(json.dumps(kept))
        hidden.append(len(numbers) - len(kept))
        if visible(_EXPLANATION_LEVEL.get(flag["detector"], "activity")):
            explanations.append(flag["explanation"])
        else:
            team = team_names.get(flag["team_id"], flag["team_id"] or "The organisation")
            explanations.append(_PLAIN_EXPLANATIONS[flag["detector"]].format(team=team, **words))
    return shown.with_columns(
        pl.Series("evidence", evidence, dtype=pl.String),
        pl.Series("explanation", explanations, dtype=pl.String),
        pl.Series("hidden_numbers", hidden, dtype=pl.Int64),
    )


def restrict_flag_periods(viewer: Viewer, periods: pl.LazyFrame) -> pl.LazyFrame:
    """Team windows (``core.flags.rollups.team_periods``), each measure empty where ``viewer`` may not see its level."""
    keys = ["team_id", "period_start", "period_end"]
    shown = periods.select(keys)
    for level in ("activity", "output", "outcome"):
        block = [c for c, lvl in FLAG_MEASURE_LEVELS.items() if lvl == level]
        allowed = restrict(viewer, periods.select(*keys, *block), level=level)
        shown = shown.join(allowed, on=keys, how="left", nulls_equal=True, maintain_order="left")
    return shown


def restrict_weekly_series(viewer: Viewer, weekly: pl.LazyFrame) -> pl.LazyFrame:
    """Weekly series (``core.flags.rollups.weekly_series``) of the levels ``viewer`` may see; PR counts are activity."""
    level = pl.when(pl.col("kind") == "count").then(pl.lit("activity")).otherwise(pl.col("kind"))
    return pl.concat(
        [restrict(viewer, weekly.filter(level == name), level=name) for name in ("activity", "output", "outcome")]
    )


AnswerT = TypeVar("AnswerT")


def restrict_quarterly(viewer: Viewer, answer: AnswerT) -> AnswerT:
    """A quarterly review (``core.overview.QuarterlyAnswer``) with only the rows ``viewer`` may see.

    Its figures are outcome level and cost, which every role sees; its feature rows and outcome
    metrics go through ``restrict`` and ``restrict_metrics`` like every other frame. It carries no
    activity-level figure at all, so none can reach an executive.
    """
    features = restrict(viewer, answer.features.lazy(), level="outcome").collect()  # type: ignore[attr-defined]
    metrics = answer.metrics.join(  # type: ignore[attr-defined]
        restrict_metrics(viewer, answer.metrics.lazy().with_columns(level=pl.lit("outcome"), team_id=pl.lit(None)))  # type: ignore[attr-defined]
        .select("metric_id")
        .collect(),
        on="metric_id",
        how="semi",
    )
    return dataclasses.replace(answer, features=features, metrics=metrics)  # type: ignore[type-var]


# -- What a page reads from and writes to the store, checked here --------------------------------

SettingsT = TypeVar("SettingsT")


class AccessDenied(PermissionError):
    """A viewer asked for a read or a write their role does not allow."""


def workspace_settings(store: Store, group: type[SettingsT]) -> SettingsT:
    """The workspace's settings of ``group`` (a settings dataclass): every viewer's measures use them."""
    return settings.load(store, group)


def save_settings(store: Store, viewer: Viewer, value: object) -> None:
    """Store ``value`` (a settings dataclass) in ``viewer``'s name; only stewards may change definitions."""
    if not may_change_settings(viewer):
        raise AccessDenied(f"{viewer.username} may not change measure settings.")
    settings.save(store, value, actor=viewer.username)


def flag_acknowledgements(store: Store) -> pl.DataFrame:
    """Every vanity-flag acknowledgement, oldest first (``core.model.records.ACK_SCHEMA``)."""
    return acknowledgements.read_acks(store)


def acknowledge_flag(store: Store, viewer: Viewer, flag_id: str, comment: str) -> pl.DataFrame:
    """Record that ``viewer`` acknowledged ``flag_id`` with ``comment``; anyone who may open Flags may."""
    if not may_open(viewer, "flags"):
        raise AccessDenied(f"{viewer.username} may not acknowledge flags.")
    return acknowledgements.acknowledge_flag(store, flag_id, viewer.username, comment)


def record_hypothesis(
    store: Store,
    viewer: Viewer,
    feature: dict[str, Any],
    stored: dict[str, Any] | None,
    proposed: dict[str, Any],
) -> HypothesisEdit:
    """Apply ``viewer``'s edit of ``feature``'s hypothesis (or keep it aside when locked) and record its history.

    The edit is judged by ``core.outcomes.hypotheses.edit_hypothesis``; an applied edit is written with
    the history entry and an audit line. Raises ``AccessDenied`` when ``viewer`` may not edit this
    feature's team, and ``core.model.schema.ValidationError`` when the stored row would be invalid.
    """
    if not may_edit_hypothesis(viewer, feature.get("team_id")):
        raise AccessDenied(f"{viewer.username} may not edit the hypotheses of this team's features.")
    feature_id = str(feature["feature_id"])
    delivered_at: datetime | None = feature.get("delivered_at") if feature.get("status") == "delivered" else None
    outcome = edit_hypothesis(feature_id, stored, proposed, delivered_at, utc_now(), viewer.username)
    if outcome.history_entry is None:
        return outcome
    if outcome.applied:
        row = pl.DataFrame([outcome.hypothesis], schema=ENTITIES["hypotheses"].schema)
        store.write({"hypotheses": row}, source="hypotheses page")
    history.append_history(store, outcome.history_entry)
    store.audit("hypothesis.change", viewer.username, f"{feature_id}: {outcome.history_entry['note']}")
    return outcome


def hypothesis_history(store: Store, viewer: Viewer, feature: dict[str, Any]) -> pl.DataFrame:
    """Every recorded version of ``feature``'s hypothesis, when ``viewer`` may see the feature's outcomes."""
    if not may_see(viewer, "outcome", feature.get("team_id")):
        raise AccessDenied(f"{viewer.username} may not see this feature's hypothesis history.")
    return history.read_history(store, str(feature["feature_id"]))


# -- Teams and cost account keys: what imports bring, and the admin's corrections ------------------

TEAM_COLUMNS: tuple[str, ...] = tuple(
    e.name for e in ENTITIES.values() if e.name != "teams" and any(c.name == "team_id" for c in e.columns)
)
"""Every entity whose rows name a team, so a merge moves them all."""


def may_manage_teams(viewer: Viewer) -> bool:
    """True when ``viewer`` may create, rename and merge teams or map cost account keys (admins only)."""
    return viewer.role == "admin"


def teams_overview(store: Store) -> pl.DataFrame:
    """Every team with how many rows of each entity name it, most used first."""
    teams = store.read("teams").select("team_id", "name")
    for entity in TEAM_COLUMNS:
        counts = store.read(entity).group_by("team_id").agg(pl.len().cast(pl.Int64).alias(entity))
        teams = teams.join(counts, on="team_id", how="left").with_columns(pl.col(entity).fill_null(0))
    return teams.sort(pl.sum_horizontal(TEAM_COLUMNS), "team_id", descending=[True, False])


def create_team(store: Store, viewer: Viewer, name: str, team_id: str | None = None) -> str:
    """Add a team called ``name`` (id: ``team_id``, else the name in lower case with dashes); returns its id."""
    _must_manage_teams(viewer)
    name = name.strip()
    chosen = (team_id or "").strip() or "-".join("".join(ch if ch.isalnum() else " " for ch in name.lower()).split())
    if not name or not chosen:
        raise ValueError("A team needs a name.")
    if chosen in set(store.read("teams")["team_id"]):
        raise ValueError(f"A team with id `{chosen}` already exists.")
    store.write({"teams": pl.DataFrame({"team_id": [chosen], "name": [name]})}, source="teams page")
    store.audit("team.create", viewer.username, f"{chosen}: {name}")
    return chosen


def rename_team(store: Store, viewer: Viewer, team_id: str, name: str) -> None:
    """Give the team ``team_id`` the display name ``name`` (its id, and so every row naming it, stays)."""
    _must_manage_teams(viewer)
    if not name.strip():
        raise ValueError("A team needs a name.")
    if team_id not in set(store.read("teams")["team_id"]):
        raise ValueError(f"No team `{team_id}`.")
    store.write({"teams": pl.DataFrame({"team_id": [team_id], "name": [name.strip()]})}, source="teams page")
    store.audit("team.rename", viewer.username, f"{team_id}: {name.strip()}")


def merge_teams(store: Store, viewer: Viewer, source_id: str, into_id: str) -> dict[str, int]:
    """Move every row (and team lead) of team ``source_id`` to ``into_id``, then remove ``source_id``; rows moved."""
    _must_manage_teams(viewer)
    known = set(store.read("teams")["team_id"])
    if source_id == into_id or source_id not in known or into_id not in known:
        raise ValueError(f"Choose two different existing teams (got `{source_id}` into `{into_id}`).")
    moved = {
        entity: store.read(entity).filter(pl.col("team_id") == source_id).with_columns(pl.lit(into_id).alias("team_id"))
        for entity in TEAM_COLUMNS
    }
    moved = {entity: frame for entity, frame in moved.items() if frame.height}
    if moved:
        store.write(moved, source="teams page")
    for user in users.list_users(store):
        if user.team_id == source_id:
            users.set_role(store, user.username, user.role, into_id, viewer.username)
    store.delete("teams", pl.DataFrame({"team_id": [source_id]}))
    store.audit("team.merge", viewer.username, f"{source_id} into {into_id}")
    return {entity: frame.height for entity, frame in moved.items()}


def unmapped_cost_accounts(store: Store, viewer: Viewer) -> pl.DataFrame:
    """Account identifiers of cost events that no ``cost_keys`` row maps (by key or scope), with their spend."""
    if not may_see(viewer, "outcome"):
        raise AccessDenied(f"{viewer.username} may not see cost.")
    mapped = store.read("cost_keys")["key"].implode()
    events = store.read("cost_events").filter(
        (pl.col("account_key").is_not_null() | pl.col("account_scope").is_not_null())
        & ~pl.col("account_key").is_in(mapped).fill_null(False)
        & ~pl.col("account_scope").is_in(mapped).fill_null(False)
    )
    return (
        events.group_by("account_key", "account_scope", "source", "currency")
        .agg(pl.len().cast(pl.Int64).alias("events"), pl.col("amount").sum().alias("spend"))
        .sort("spend", "account_key", "account_scope", descending=[True, False, False], nulls_last=True)
        .select("account_key", "account_scope", "source", "events", "spend", "currency")
    )


def map_cost_account(
    store: Store,
    viewer: Viewer,
    key: str,
    *,
    team_id: str | None = None,
    person_id: str | None = None,
    feature_id: str | None = None,
) -> None:
    """Map the account identifier ``key`` to exactly one team, person (or agent) or feature in the key map."""
    _must_manage_teams(viewer)
    targets = {"team_id": team_id, "person_id": person_id, "feature_id": feature_id}
    if sum(1 for v in targets.values() if v) != 1 or not key.strip():
        raise ValueError("Map an account key to exactly one of a team, a person or a feature.")
    row = pl.DataFrame(
        {"key": [key.strip()], **{k: [v or None] for k, v in targets.items()}}, schema=ENTITIES["cost_keys"].schema
    )
    store.write({"cost_keys": row}, source="data page")
    store.audit("cost_key.map", viewer.username, f"{key.strip()} → {next(f'{k} {v}' for k, v in targets.items() if v)}")


def _must_manage_teams(viewer: Viewer) -> None:
    if not may_manage_teams(viewer):
        raise AccessDenied(f"{viewer.username} may not change teams or the cost key map.")

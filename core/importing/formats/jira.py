"""Jira Cloud / Server "Export CSV (all fields)".

The export repeats some headers once per value (``Labels``, ``Sprint``, ``Log Work``,
``Watchers``, ``Component/s``), writes dates in the user's locale such as ``15/Feb/26 4:51 PM``
(read in the import's time zone, default UTC), keeps story points in
``Custom field (Story Points)`` (company-managed) or ``Custom field (Story point estimate)``
(team-managed), and links an issue to its epic by ``Parent`` (the parent's issue id in Cloud,
its key in some exports), ``Parent key`` or ``Custom field (Epic Link)``. Descriptions hold
quoted line breaks.

Epics become features (status from ``Status Category``: To Do → planned, In Progress →
in_progress, Done → delivered, or cancelled when resolved as Won't Do); every other issue
becomes a work item whose feature is its epic (a sub-task inherits its parent's epic). An epic
referenced but not in the file is added as a placeholder feature unless already stored.

The Team field (``Custom field (Team)``, or ``Team``) creates teams (added only when new, so a
name changed on the Teams page stays) and sets them: a work item's team is its own, else its
epic's; an epic's is its own, else the team of most of its work items; an assignee's is the
team of most of their work items (for people not yet stored).
"""

from __future__ import annotations

import polars as pl

from core.importing import values as v
from core.importing.formats.base import ROW, Columns, Format, Mapped, people_from, with_rows
from core.importing.options import ImportOptions
from core.importing.reading import RawTable

_CANCELLED = ["won't do", "won't fix", "wont do", "duplicate", "declined", "cannot reproduce", "rejected"]
_DONE_STATUS = ["done", "closed", "resolved", "released", "complete", "completed"]
_TODO_STATUS = ["to do", "open", "backlog", "new", "selected for development"]


def build(raw: RawTable, options: ImportOptions) -> Mapped:
    """Features (epics), work items and assignees from a Jira CSV export."""
    c = Columns(raw.frame)
    tz = options.timezone
    issues = with_rows(raw.frame).select(
        ROW,
        v.text(c("Issue key")).alias("key"),
        v.text(c("Issue id")).alias("issue_id"),
        v.text(c("Summary")).alias("title"),
        v.text(c("Issue Type")).alias("type"),
        v.text(c("Status")).alias("status"),
        v.text(c("Status Category")).alias("category"),
        v.text(c("Resolution")).alias("resolution"),
        v.text(c("Assignee Id")).alias("assignee_account"),
        v.text(c("Assignee")).alias("assignee_name"),
        v.timestamp(c("Created"), tz).alias("created_at"),
        v.timestamp(c("Resolved"), tz).alias("resolved_at"),
        v.timestamp(c("Custom field (Start date)", "Start date"), tz).alias("start_date"),
        pl.coalesce(
            v.number(c("Custom field (Story Points)")), v.number(c("Custom field (Story point estimate)"))
        ).alias("story_points"),
        v.text(c("Custom field (Epic Link)")).alias("epic_link"),
        v.text(c("Parent key")).alias("parent_key"),
        v.text(c("Parent")).alias("parent"),
        v.text(c("Parent summary")).alias("parent_summary"),
        v.text(c("Custom field (Team)", "Team")).alias("team_name"),
        v.team_id(c("Custom field (Team)", "Team")).alias("team_id"),
    )
    ids = issues.select(pl.col("issue_id").alias("parent"), pl.col("key").alias("parent_by_id")).drop_nulls()
    issues = issues.join(ids, on="parent", how="left", maintain_order="left").with_columns(
        pl.coalesce(
            "parent_key",
            pl.when(pl.col("parent").str.contains(r"^[A-Za-z][A-Za-z0-9_]*-\d+$")).then(pl.col("parent")),
            "parent_by_id",
        ).alias("parent_issue"),
        (pl.col("type").str.to_lowercase() == "epic").fill_null(False).alias("is_epic"),
        pl.col("type")
        .str.to_lowercase()
        .str.replace_all(r"[^a-z]", "")
        .is_in(["subtask"])
        .fill_null(False)
        .alias("is_subtask"),
    )
    direct = issues.select(
        pl.col("key").alias("parent_issue"), pl.coalesce("epic_link", "parent_issue").alias("parent_epic")
    )
    issues = issues.join(direct, on="parent_issue", how="left", maintain_order="left").with_columns(
        pl.when(pl.col("is_subtask"))
        .then(pl.coalesce("epic_link", "parent_epic"))
        .otherwise(pl.coalesce("epic_link", "parent_issue"))
        .alias("feature_id"),
        pl.coalesce("assignee_account", "assignee_name").alias("assignee_id"),
    )
    epic_teams = issues.filter(pl.col("is_epic")).select(
        pl.col("key").alias("feature_id"), pl.col("team_id").alias("__epic")
    )
    issues = issues.join(epic_teams, on="feature_id", how="left", maintain_order="left").with_columns(
        pl.when(pl.col("is_epic")).then("team_id").otherwise(pl.coalesce("team_id", "__epic")).alias("team_id")
    )
    items_team = _most_common_team(issues.filter(~pl.col("is_epic")), "feature_id")

    epics = issues.filter(pl.col("is_epic")).select(
        ROW,
        pl.col("key").alias("feature_id"),
        pl.col("title").alias("name"),
        "team_id",
        _feature_status().alias("status"),
        pl.col("start_date").alias("started_at"),
        pl.when(_feature_status() == "delivered").then(pl.col("resolved_at")).alias("delivered_at"),
    )
    work_items = issues.filter(~pl.col("is_epic")).select(
        ROW,
        pl.col("key").alias("work_item_key"),
        "title",
        "feature_id",
        "team_id",
        "type",
        "status",
        "story_points",
        "assignee_id",
        "created_at",
        "resolved_at",
    )
    epics = (
        epics.join(items_team, on="feature_id", how="left", maintain_order="left")
        .with_columns(pl.coalesce("team_id", "__team").alias("team_id"))
        .drop("__team")
    )
    placeholders = (
        issues.filter(~pl.col("is_epic") & pl.col("feature_id").is_not_null())
        .join(epics.select("feature_id"), on="feature_id", how="anti")
        .group_by("feature_id", maintain_order=True)
        .agg(pl.col(ROW).first(), pl.col("parent_summary").first())
        .select(
            ROW,
            "feature_id",
            pl.coalesce("parent_summary", "feature_id").alias("name"),
            pl.lit("planned").alias("status"),
        )
        .join(items_team, on="feature_id", how="left", maintain_order="left")
        .rename({"__team": "team_id"})
    )
    people = people_from(issues.filter(~pl.col("is_epic")), "assignee_id", name_column="assignee_name")
    people = people.join(
        _most_common_team(issues.filter(~pl.col("is_epic")), "assignee_id").rename({"assignee_id": "person_id"}),
        on="person_id",
        how="left",
        maintain_order="left",
    ).rename({"__team": "team_id"})
    teams = (
        issues.filter(pl.col("team_id").is_not_null())
        .group_by("team_id", maintain_order=True)
        .agg(pl.col(ROW).first(), pl.col("team_name").first().alias("name"))
        .select(ROW, "team_id", "name")
    )
    notes = []
    if placeholders.height:
        notes.append(
            f"{placeholders.height} epic(s) referenced but not in the file are added as planned features "
            "unless already stored."
        )
    if not any(name in raw.frame.columns for name in ("Custom field (Team)", "Team")):
        # An export without the Team field says nothing about teams: a re-import keeps those set by hand.
        epics, work_items = epics.drop("team_id"), work_items.drop("team_id")
    return Mapped(
        {"features": epics, "work_items": work_items},
        fills={"teams": teams, "people": people, "features": placeholders},
        notes=tuple(notes),
    )


def _most_common_team(rows: pl.DataFrame, by: str) -> pl.DataFrame:
    """``by`` → the team of most of its rows (``__team``); ties go to the team seen first."""
    return (
        rows.filter(pl.col(by).is_not_null() & pl.col("team_id").is_not_null())
        .group_by(by, "team_id", maintain_order=True)
        .len()
        .sort("len", descending=True, maintain_order=True)
        .unique(by, keep="first", maintain_order=True)
        .select(by, pl.col("team_id").alias("__team"))
    )


def _feature_status() -> pl.Expr:
    category = pl.col("category").str.to_lowercase()
    status = pl.col("status").str.to_lowercase()
    resolution = pl.col("resolution").str.to_lowercase()
    done = pl.coalesce(category == "done", status.is_in(_DONE_STATUS))
    todo = pl.coalesce(category.is_in(["to do", "new"]), status.is_in(_TODO_STATUS))
    return (
        pl.when(
            resolution.is_in(_CANCELLED).fill_null(False)
            | status.is_in(["cancelled", "canceled", "won't do"]).fill_null(False)
        )
        .then(pl.lit("cancelled"))
        .when(done.fill_null(False))
        .then(pl.lit("delivered"))
        .when(todo.fill_null(False))
        .then(pl.lit("planned"))
        .otherwise(pl.lit("in_progress"))
    )


FORMAT = Format(
    name="jira_csv",
    label="Jira CSV export (all fields)",
    entities=("teams", "features", "work_items", "people"),
    signature=("Issue key", "Issue Type", "Summary"),
    hints=(
        "Issue id",
        "Status",
        "Created",
        "Resolved",
        "Assignee",
        "Custom field (Story Points)",
        "Custom field (Story point estimate)",
        "Custom field (Epic Link)",
        "Parent",
        "Sprint",
        "Labels",
    ),
    build=build,
    mapping={
        "features": {
            "feature_id": "Issue key (epics)",
            "name": "Summary",
            "team_id": "Custom field (Team), else most of its issues' team",
            "status": "Status Category / Resolution",
            "started_at": "Custom field (Start date)",
            "delivered_at": "Resolved (when done)",
        },
        "work_items": {
            "work_item_key": "Issue key",
            "title": "Summary",
            "type": "Issue Type",
            "status": "Status",
            "story_points": "Custom field (Story Points) or (Story point estimate)",
            "feature_id": "Custom field (Epic Link), Parent key or Parent",
            "assignee_id": "Assignee Id or Assignee",
            "team_id": "Custom field (Team), else its epic's",
            "created_at": "Created",
            "resolved_at": "Resolved",
        },
        "people": {
            "person_id": "Assignee Id or Assignee (added only when new)",
            "team_id": "team of most of their issues",
        },
        "teams": {"team_id": "Custom field (Team), as a lower-case id", "name": "Custom field (Team)"},
    },
)

"""Linear CSV export (Settings → Import/Export → Export CSV).

Columns: ``ID`` (``ENG-42``), ``Team``, ``Title``, ``Description``, ``Status``, ``Estimate``,
``Priority``, ``Project ID``, ``Project``, ``Creator``, ``Assignee``, ``Labels``,
``Cycle Number``, ``Cycle Name``, ``Cycle Start``, ``Cycle End``, ``Created``, ``Updated``,
``Started``, ``Triaged``, ``Completed``, ``Canceled``, ``Archived``, ``Due Date``,
``Parent issue`` ... Dates are written either as ISO 8601 or in JavaScript's
``Tue Mar 05 2024 14:28:53 GMT+0000 (Coordinated Universal Time)`` shape; both are read.

Issues become work items (estimate → story points); each project becomes a feature
(``linear:<Project ID>``) that is delivered when all its issues are completed or canceled
(delivered at the last completion), in progress once any issue has started, else planned.
``Team`` creates teams (added when new) and is each issue's team; a project's team is the team
of most of its issues, and so is an assignee's (for people not yet stored).
"""

from __future__ import annotations

import polars as pl

from core.importing import values as v
from core.importing.formats.base import ROW, Columns, Format, Mapped, people_from, with_rows
from core.importing.options import ImportOptions
from core.importing.reading import RawTable


def build(raw: RawTable, options: ImportOptions) -> Mapped:
    """Work items, project features and assignees from a Linear CSV export."""
    c = Columns(raw.frame)
    tz = options.timezone
    project = pl.coalesce(v.text(c("Project ID")), v.text(c("Project")))
    issues = with_rows(raw.frame).select(
        ROW,
        v.text(c("ID")).alias("work_item_key"),
        v.text(c("Title")).alias("title"),
        v.team_id(c("Team")).alias("team_id"),
        v.text(c("Team")).alias("team_name"),
        pl.when(project.is_not_null()).then(pl.concat_str([pl.lit("linear:"), project])).alias("feature_id"),
        v.text(c("Project")).alias("project_name"),
        pl.coalesce(v.text(c("Labels")).str.split(",").list.first().str.strip_chars(), pl.lit("Issue")).alias("type"),
        v.text(c("Status")).alias("status"),
        v.number(c("Estimate")).alias("story_points"),
        v.text(c("Assignee")).alias("assignee_id"),
        v.timestamp(c("Created"), tz).alias("created_at"),
        v.timestamp(c("Started"), tz).alias("started_at"),
        v.timestamp(pl.coalesce(v.text(c("Completed")), v.text(c("Canceled"))), tz).alias("resolved_at"),
        v.timestamp(c("Completed"), tz).alias("completed_at"),
    )
    features = (
        issues.filter(pl.col("feature_id").is_not_null())
        .group_by("feature_id", maintain_order=True)
        .agg(
            pl.col(ROW).first(),
            pl.col("project_name").first().alias("name"),
            pl.col("resolved_at").is_not_null().all().alias("__done"),
            pl.col("started_at").is_not_null().any().alias("__started"),
            pl.col("started_at").min().alias("started_at"),
            pl.col("completed_at").max().alias("__last"),
            pl.col("team_id").drop_nulls().mode().sort().first().alias("team_id"),
        )
        .select(
            ROW,
            "feature_id",
            pl.coalesce("name", "feature_id").alias("name"),
            pl.when("__done")
            .then(pl.lit("delivered"))
            .when("__started")
            .then(pl.lit("in_progress"))
            .otherwise(pl.lit("planned"))
            .alias("status"),
            "started_at",
            pl.when("__done").then(pl.col("__last")).alias("delivered_at"),
            "team_id",
        )
    )
    teams = (
        issues.filter(pl.col("team_id").is_not_null())
        .group_by("team_id", maintain_order=True)
        .agg(pl.col(ROW).first(), pl.col("team_name").first().alias("name"))
        .select(ROW, "team_id", "name")
    )
    work_items = issues.drop("project_name", "completed_at", "team_name")
    people = people_from(work_items, "assignee_id").join(
        work_items.filter(pl.col("assignee_id").is_not_null() & pl.col("team_id").is_not_null())
        .group_by("assignee_id", "team_id", maintain_order=True)
        .len()
        .sort("len", descending=True, maintain_order=True)
        .unique("assignee_id", keep="first", maintain_order=True)
        .select(pl.col("assignee_id").alias("person_id"), "team_id"),
        on="person_id",
        how="left",
        maintain_order="left",
    )
    return Mapped({"features": features, "work_items": work_items}, fills={"teams": teams, "people": people})


FORMAT = Format(
    name="linear_csv",
    label="Linear CSV export",
    entities=("teams", "features", "work_items", "people"),
    signature=("ID", "Title", "Status", "Team", "Created"),
    hints=("Estimate", "Project", "Project ID", "Assignee", "Started", "Completed", "Canceled", "Cycle Name"),
    build=build,
    excludes=("Issue key",),
    mapping={
        "work_items": {
            "work_item_key": "ID",
            "title": "Title",
            "status": "Status",
            "story_points": "Estimate",
            "feature_id": "'linear:' + Project ID",
            "assignee_id": "Assignee",
            "created_at": "Created",
            "started_at": "Started",
            "resolved_at": "Completed / Canceled",
            "type": "first label",
            "team_id": "Team, as a lower-case id",
        },
        "features": {
            "feature_id": "'linear:' + Project ID",
            "name": "Project",
            "status": "delivered when every issue is done, in progress once one started",
        },
    },
)

"""GitLab merge requests and deployments, as the REST API returns them.

Merge requests: ``GET /projects/:id/merge_requests?state=all`` — ``iid``, ``project_id``,
``title``, ``state`` (opened/closed/merged/locked), ``created_at``, ``merged_at``,
``source_branch``, ``author.username``, ``merge_commit_sha``/``squash_commit_sha``,
``references.full`` (``group/project!12``) and ``web_url``. Bot users (``*-bot``, ``[bot]``,
GitLab's ``project_<id>_bot`` tokens) and the agent list become agents.

Deployments: ``GET /projects/:id/deployments`` — ``id``, ``iid``, ``ref``, ``sha``,
``created_at``, ``updated_at``, ``finished_at``, ``status`` (created/running/success/failed/
canceled/blocked), ``environment.name``, ``deployable`` (the job, whose ``pipeline.web_url``
names the project). Only finished deployments (success or failed) are imported.

A merge request's team, where neither its author nor its work item gives one, is its project's
namespace (``payments`` for ``payments/mortgage-api``); such teams are added when new.
"""

from __future__ import annotations

import polars as pl

from core.importing import values as v
from core.importing.formats.base import ROW, Columns, Format, Mapped, people_from, with_rows
from core.importing.options import ImportOptions
from core.importing.reading import RawTable

_PROJECT_FROM_URL = r"https?://[^/]+/(.+?)/-/"


def build_merge_requests(raw: RawTable, options: ImportOptions) -> Mapped:
    """Pull requests (GitLab merge requests) and their authors."""
    c = Columns(raw.frame)
    repo = pl.coalesce(
        v.text(c("references.full")).str.extract(r"^(.+)!\d+$", 1),
        v.text(c("web_url")).str.extract(_PROJECT_FROM_URL, 1),
        pl.lit(options.repo),
        v.text(c("project_id")),
    )
    author = v.text(c("author.username"))
    agents = [a.casefold() for a in options.agent_logins]
    is_agent = (
        (v.text(c("author.bot")) == "true").fill_null(False)
        | author.str.contains(r"(?i)(\[bot\]$|-bot$|^project_\d+_bot|^group_\d+_bot)").fill_null(False)
        | author.str.to_lowercase().is_in(agents).fill_null(False)
    )
    state = v.text(c("state")).str.to_lowercase()
    title, branch = v.text(c("title")), v.text(c("source_branch"))
    frame = (
        with_rows(raw.frame)
        .select(
            ROW,
            pl.concat_str([repo, pl.lit("!"), v.text(c("iid"))]).alias("pr_id"),
            repo.alias("repo"),
            v.number(c("iid")).alias("number"),
            title.alias("title"),
            branch.alias("branch"),
            author.alias("author_id"),
            pl.when(is_agent).then(pl.lit("agent")).otherwise(pl.lit("human")).alias("author_kind"),
            v.work_item_key(title, branch).alias("work_item_key"),
            pl.when(state.is_in(["opened", "locked"])).then(pl.lit("open")).otherwise(state).alias("state"),
            v.timestamp(c("created_at"), options.timezone).alias("created_at"),
            v.timestamp(c("merged_at"), options.timezone).alias("merged_at"),
            pl.coalesce(v.text(c("merge_commit_sha")), v.text(c("squash_commit_sha"))).alias("merge_commit_sha"),
            repo.str.extract(r"^(.+)/[^/]+$", 1).alias("__namespace"),
        )
        .with_columns(v.team_id(pl.col("__namespace")).alias("team_id"))
    )
    teams = (
        frame.filter(pl.col("team_id").is_not_null())
        .group_by("team_id", maintain_order=True)
        .agg(pl.col(ROW).first(), pl.col("__namespace").first().alias("name"))
        .select(ROW, "team_id", "name")
    )
    people = people_from(frame, "author_id", "author_kind")
    return Mapped({"pull_requests": frame.drop("__namespace")}, fills={"teams": teams, "people": people})


def build_deployments(raw: RawTable, options: ImportOptions) -> Mapped:
    """Finished deployments (success or failed) with their environment and commit."""
    c = Columns(raw.frame)
    repo = pl.coalesce(
        v.text(c("deployable.pipeline.web_url")).str.extract(_PROJECT_FROM_URL, 1),
        v.text(c("deployable.web_url")).str.extract(_PROJECT_FROM_URL, 1),
        pl.lit(options.repo),
    )
    status = v.text(c("status")).str.to_lowercase()
    rows = with_rows(raw.frame)
    finished = rows.filter(status.is_in(["success", "failed"]))
    frame = finished.select(
        ROW,
        pl.concat_str([pl.lit("gitlab"), pl.coalesce(repo, pl.lit("")), v.text(c("id"))], separator=":").alias(
            "deployment_id"
        ),
        repo.str.extract(r"([^/]+)$", 1).alias("service"),
        repo.alias("repo"),
        v.text(c("environment.name")).alias("environment"),
        pl.when(status == "success").then(pl.lit("success")).otherwise(pl.lit("failure")).alias("status"),
        v.timestamp(pl.coalesce(v.text(c("deployable.started_at")), v.text(c("created_at"))), options.timezone).alias(
            "started_at"
        ),
        v.timestamp(
            pl.coalesce(v.text(c("finished_at")), v.text(c("deployable.finished_at")), v.text(c("updated_at"))),
            options.timezone,
        ).alias("finished_at"),
        v.text(c("sha")).alias("commit_sha"),
    )
    skipped = rows.height - frame.height
    notes = (f"{skipped} deployment(s) not finished (running, canceled, blocked) skipped.",) if skipped else ()
    return Mapped({"deployments": frame}, skipped=skipped, notes=notes)


MERGE_REQUESTS = Format(
    name="gitlab_merge_requests",
    label="GitLab merge requests (REST API JSON)",
    entities=("pull_requests", "people"),
    signature=("iid", "source_branch", "author.username", "created_at"),
    hints=("merged_at", "state", "references.full", "web_url", "merge_commit_sha", "project_id"),
    kinds=("json",),
    build=build_merge_requests,
    mapping={
        "pull_requests": {
            "pr_id": "project path + '!' + iid",
            "repo": "references.full / web_url",
            "number": "iid",
            "title": "title",
            "branch": "source_branch",
            "author_id": "author.username",
            "state": "state (opened → open)",
            "created_at": "created_at",
            "merged_at": "merged_at",
            "work_item_key": "first key in title, else source_branch",
        },
        "people": {"person_id": "author.username (added only when new)"},
    },
)

DEPLOYMENTS = Format(
    name="gitlab_deployments",
    label="GitLab deployments (REST API JSON)",
    entities=("deployments",),
    signature=("id", "status", "environment.name", "sha"),
    hints=("iid", "ref", "created_at", "updated_at", "deployable.finished_at", "deployable.pipeline.web_url"),
    kinds=("json",),
    build=build_deployments,
    mapping={
        "deployments": {
            "deployment_id": "'gitlab:' + project + ':' + id",
            "environment": "environment.name",
            "status": "status (success / failed)",
            "finished_at": "finished_at / deployable.finished_at",
            "commit_sha": "sha",
            "repo": "project path from deployable.pipeline.web_url",
        }
    },
)

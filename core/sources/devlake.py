"""The ``devlake`` preset: an Apache DevLake database's domain tables as Throughline entities, DORA as DevLake.

Each DevLake deployment commit (one deployment run × repo) is one Throughline deployment whose
``pipeline_id`` is its run (``cicd_deployment_id``), so a run with several repos counts once for
frequency, failure and rework rates. A PR's deployment is the earliest successful production
deployment whose commit range (previous successful deployment's commit → its own, in
``commits_diffs``) holds the PR's merge commit, as DevLake's change-lead-time task finds it; the
previous successful deployment is DevLake's ``prev_success_deployment_commit_id`` where the dora
plugin filled it, else worked out the same way. A DevLake project is a team (through
``project_mapping``). Every column is read into a declared type, so an empty table or an all-NULL
column reads the same on SQLite, MySQL/MariaDB and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import polars as pl

from core.delivery.dora import link_pull_requests_to_deployments
from core.importing import values as v
from core.importing.formats.base import ROW, Mapped, people_from, with_rows
from core.importing.options import ImportOptions
from core.model.schema import parse_datetime

Read = Callable[[str], pl.DataFrame]
DATETIME = pl.Datetime("us")


@dataclass(frozen=True)
class ResultRule:
    """Source results (any case) that DevLake's converters map to one Throughline deployment status."""

    status: str
    results: tuple[str, ...]


DEPLOYMENT_RESULTS: tuple[ResultRule, ...] = (
    ResultRule("success", ("SUCCESS", "COMPLETED")),
    ResultRule("failure", ("FAILURE", "FAILED", "CANCELED", "CANCELLED")),
)
"""DevLake's result mapping (GitLab: success and completed → SUCCESS, failed and canceled → FAILURE);
the raw ``original_status`` is read when ``result`` is empty. Anything else (running, skipped) is left out."""

UNSET_ENVIRONMENT = "unspecified"
"""The environment a deployment without one gets: kept and shown, never counted as production (as DevLake)."""


def devlake_frames(read: Read, options: ImportOptions) -> Mapped:
    """Throughline entities from an Apache DevLake database's domain tables."""
    projects = _project_of(_typed(read(_PROJECT_MAPPING), _PROJECT_COLUMNS))
    deployments, skipped = _deployments(_typed(read(_DEPLOYMENTS), _DEPLOYMENT_COLUMNS), projects)
    pull_requests = _pull_requests(_typed(read(_PULL_REQUESTS), _PR_COLUMNS), projects, options)
    ranges = _typed(read(_COMMITS_DIFFS), _RANGE_COLUMNS)
    links = link_pull_requests_to_deployments(
        pull_requests.select(
            "pr_id", "merge_commit_sha", "merged_at", pl.lit(None, pl.String).alias("deployment_id")
        ).lazy(),
        deployments.drop(ROW).lazy(),
        ranges.lazy() if ranges.height else None,
    ).collect()
    pull_requests = pull_requests.drop("deployment_id").join(
        links.select("pr_id", "deployment_id"), on="pr_id", how="left", maintain_order="left"
    )
    incidents = _incidents(_typed(read(_INCIDENTS), _INCIDENT_COLUMNS), projects)
    issues = _typed(read(_ISSUES), _ISSUE_COLUMNS).with_columns(pl.col("type").str.to_uppercase())
    features, work_items, placeholders = _work(with_rows(issues))
    people = pl.concat(
        [people_from(pull_requests, "author_id", "author_kind"), people_from(work_items, "assignee_id")]
    ).unique("person_id", keep="first", maintain_order=True)
    teams = (
        projects.select(pl.col("team_id"))
        .unique(maintain_order=True)
        .with_row_index(ROW, offset=1)
        .select(pl.col(ROW).cast(pl.Int64), "team_id", pl.col("team_id").alias("name"))
    )
    return Mapped(
        {
            "pull_requests": pull_requests.drop("deployment_link", strict=False),
            "deployments": deployments.drop("prev_success_deployment_id"),
            "incidents": incidents,
            "features": features,
            "work_items": work_items,
        },
        fills={"people": people, "features": placeholders, "teams": teams},
        notes=(
            "DevLake preset: each deployment commit (run × repo) is a deployment, counted once per run; PRs are "
            "linked to deployments through commits_diffs, incidents to the previous production deployment.",
        ),
        skipped=skipped,
    )


# -- the queries: only columns every DevLake release since v0.15 has, aggregated where tables are large ----------
_PROJECT_MAPPING = "SELECT pm.* FROM project_mapping pm"
_DEPLOYMENTS = "SELECT d.* FROM cicd_deployment_commits d"
_PULL_REQUESTS = """
SELECT pr.id AS pr_id, pr.url AS url, pr.base_repo_id AS repo_id, pr.pull_request_key AS number, pr.title AS title,
       pr.head_ref AS branch, pr.author_id AS author_account, pr.author_name AS author_name, pr.status AS status,
       pr.created_date AS created_at, pr.merged_date AS merged_at, pr.merge_commit_sha AS merge_commit_sha,
       (SELECT MIN(c.commit_authored_date) FROM pull_request_commits c
        WHERE c.pull_request_id = pr.id) AS first_commit_at,
       (SELECT MIN(m.created_date) FROM pull_request_comments m
        WHERE m.pull_request_id = pr.id
          AND (pr.author_id IS NULL OR pr.author_id = '' OR m.account_id <> pr.author_id)) AS first_review_at,
       (SELECT COUNT(*) FROM pull_request_comments m
        WHERE m.pull_request_id = pr.id
          AND (pr.author_id IS NULL OR pr.author_id = '' OR m.account_id <> pr.author_id)) AS reviews
FROM pull_requests pr
"""
_COMMITS_DIFFS = """
SELECT cd.old_commit_sha AS old_commit_sha, cd.new_commit_sha AS new_commit_sha, cd.commit_sha AS commit_sha
FROM commits_diffs cd
WHERE cd.commit_sha IN (SELECT pr.merge_commit_sha FROM pull_requests pr WHERE pr.merged_date IS NOT NULL)
"""
_INCIDENTS = "SELECT i.* FROM incidents i"
_ISSUES = """
SELECT issue_key AS work_item_key, title AS title, type AS type, status AS status, story_point AS story_points,
       created_date AS created_at, resolution_date AS resolved_at, epic_key AS feature_id, assignee_name AS assignee_id
FROM issues
"""

_PROJECT_COLUMNS = {"project_name": pl.String, "table": pl.String, "row_id": pl.String}
_DEPLOYMENT_COLUMNS = {
    "id": pl.String,
    "cicd_deployment_id": pl.String,
    "cicd_scope_id": pl.String,
    "name": pl.String,
    "repo_url": pl.String,
    "environment": pl.String,
    "result": pl.String,
    "original_status": pl.String,
    "started_date": DATETIME,
    "finished_date": DATETIME,
    "commit_sha": pl.String,
    "prev_success_deployment_commit_id": pl.String,
}
_PR_COLUMNS = {
    "pr_id": pl.String,
    "url": pl.String,
    "repo_id": pl.String,
    "number": pl.String,
    "title": pl.String,
    "branch": pl.String,
    "author_account": pl.String,
    "author_name": pl.String,
    "status": pl.String,
    "created_at": DATETIME,
    "merged_at": DATETIME,
    "merge_commit_sha": pl.String,
    "first_commit_at": DATETIME,
    "first_review_at": DATETIME,
    "reviews": pl.Int64,
}
_RANGE_COLUMNS = {"old_commit_sha": pl.String, "new_commit_sha": pl.String, "commit_sha": pl.String}
_INCIDENT_COLUMNS = {
    "id": pl.String,
    "title": pl.String,
    "created_date": DATETIME,
    "resolution_date": DATETIME,
    "table": pl.String,
    "scope_id": pl.String,
}
_ISSUE_COLUMNS = {
    "work_item_key": pl.String,
    "title": pl.String,
    "type": pl.String,
    "status": pl.String,
    "story_points": pl.Float64,
    "created_at": DATETIME,
    "resolved_at": DATETIME,
    "feature_id": pl.String,
    "assignee_id": pl.String,
}


def _typed(frame: pl.DataFrame, columns: Mapping[str, pl.DataType | type[pl.DataType]]) -> pl.DataFrame:
    """``frame`` with exactly ``columns`` in their types: absent or all-NULL columns become typed nulls."""
    present = {c.lower(): c for c in frame.columns}
    exprs = []
    for name, dtype in columns.items():
        source = present.get(name.lower())
        if source is None:
            exprs.append(pl.lit(None, dtype).alias(name))
            continue
        column, kind = pl.col(source), frame.schema[source]
        if dtype == DATETIME:
            if kind == pl.String:
                value = parse_datetime(column)
            elif isinstance(kind, pl.Datetime) and kind.time_zone is not None:
                value = column.dt.convert_time_zone("UTC").dt.replace_time_zone(None).dt.cast_time_unit("us")
            elif isinstance(kind, pl.Datetime | pl.Date):
                value = column.cast(DATETIME)
            else:
                value = column.cast(pl.String).pipe(parse_datetime)
        elif dtype == pl.String:
            value = column.cast(pl.String)
        else:
            value = column.cast(dtype, strict=False)
        exprs.append(value.alias(name))
    return frame.select(exprs)


def _blank_is_null(expr: pl.Expr) -> pl.Expr:
    return pl.when(expr.str.strip_chars() != "").then(expr)


def _project_of(mapping: pl.DataFrame) -> pl.DataFrame:
    """(table, row_id) → team_id: a scope's DevLake project (the first by name when it is in several)."""
    return (
        mapping.filter(pl.col("project_name").is_not_null() & pl.col("row_id").is_not_null())
        .group_by("table", "row_id")
        .agg(pl.col("project_name").min().alias("team_id"))
    )


def _team(projects: pl.DataFrame, table: str, key: str) -> pl.DataFrame:
    return projects.filter(pl.col("table") == table).select(pl.col("row_id").alias(key), "team_id")


def _deployments(rows: pl.DataFrame, projects: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """Deployment commits with a success or failure result as deployments; also how many were left out."""
    raw = pl.coalesce(_blank_is_null(pl.col("result")), pl.col("original_status")).str.to_uppercase()
    status: pl.Expr = pl.lit(None, pl.String)
    for rule in reversed(DEPLOYMENT_RESULTS):
        status = pl.when(raw.is_in(rule.results)).then(pl.lit(rule.status)).otherwise(status)
    mapped = (
        with_rows(rows)
        .with_columns(status.alias("status"))
        .join(_team(projects, "cicd_scopes", "cicd_scope_id"), on="cicd_scope_id", how="left", maintain_order="left")
    )
    kept = mapped.filter(pl.col("status").is_not_null() & pl.col("id").is_not_null())
    environment = _blank_is_null(pl.col("environment")).str.to_lowercase()
    return (
        kept.select(
            ROW,
            pl.col("id").alias("deployment_id"),
            pl.coalesce("cicd_deployment_id", "id").alias("pipeline_id"),
            pl.col("cicd_scope_id").alias("service"),
            pl.coalesce(
                pl.col("repo_url").str.extract(r"https?://[^/]+/(.+?)(?:\.git)?/?$", 1), pl.col("repo_url")
            ).alias("repo"),
            "team_id",
            pl.coalesce(environment, pl.lit(UNSET_ENVIRONMENT)).alias("environment"),
            "status",
            pl.col("started_date").alias("started_at"),
            pl.col("finished_date").alias("finished_at"),
            "commit_sha",
            _blank_is_null(pl.col("prev_success_deployment_commit_id")).alias("prev_success_deployment_id"),
        ),
        mapped.height - kept.height,
    )


def _pull_requests(prs: pl.DataFrame, projects: pl.DataFrame, options: ImportOptions) -> pl.DataFrame:
    status = pl.col("status").str.to_lowercase()
    agents = [a.casefold() for a in options.agent_logins]
    author = pl.coalesce(_blank_is_null(pl.col("author_name")), _blank_is_null(pl.col("author_account")))
    return (
        with_rows(prs)
        .join(_team(projects, "repos", "repo_id"), on="repo_id", how="left", maintain_order="left")
        .select(
            ROW,
            "pr_id",
            pl.coalesce(
                pl.col("url").str.extract(r"https?://[^/]+/(.+?)/(?:pull|-/merge_requests)/", 1), pl.col("repo_id")
            ).alias("repo"),
            pl.col("number").cast(pl.Int64, strict=False),
            "title",
            "branch",
            author.alias("author_id"),
            pl.when(
                author.str.ends_with("[bot]").fill_null(False)
                | author.str.to_lowercase().is_in(agents).fill_null(False)
            )
            .then(pl.lit("agent"))
            .otherwise(pl.lit("human"))
            .alias("author_kind"),
            "team_id",
            v.work_item_key(pl.col("title"), pl.col("branch")).alias("work_item_key"),
            pl.when(pl.col("merged_at").is_not_null())
            .then(pl.lit("merged"))
            .when(status.is_in(["merged", "closed"]))
            .then(status)
            .otherwise(pl.lit("open"))
            .alias("state"),
            "created_at",
            "merged_at",
            "first_commit_at",
            "first_review_at",
            "reviews",
            "merge_commit_sha",
            pl.lit(None, pl.String).alias("deployment_id"),
        )
    )


def _incidents(incidents: pl.DataFrame, projects: pl.DataFrame) -> pl.DataFrame:
    return (
        with_rows(incidents)
        .join(projects.rename({"row_id": "scope_id"}), on=["table", "scope_id"], how="left", maintain_order="left")
        .select(
            ROW,
            pl.col("id").alias("incident_id"),
            "title",
            "team_id",
            pl.col("created_date").alias("opened_at"),
            pl.col("resolution_date").alias("resolved_at"),
        )
    )


def _work(issues: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Epics as features, other issues as work items, and placeholder features for epics not read."""
    is_epic = pl.col("type") == "EPIC"
    issue_status = pl.col("status").str.to_uppercase()
    features = issues.filter(is_epic).select(
        ROW,
        pl.col("work_item_key").alias("feature_id"),
        pl.col("title").alias("name"),
        pl.when(issue_status == "DONE")
        .then(pl.lit("delivered"))
        .when(issue_status == "IN_PROGRESS")
        .then(pl.lit("in_progress"))
        .otherwise(pl.lit("planned"))
        .alias("status"),
        pl.when(issue_status == "DONE").then(pl.col("resolved_at")).alias("delivered_at"),
    )
    work_items = issues.filter(~is_epic).select(
        ROW,
        "work_item_key",
        "title",
        "feature_id",
        pl.col("type").str.to_lowercase(),
        "status",
        "story_points",
        "assignee_id",
        "created_at",
        "resolved_at",
    )
    placeholders = (
        work_items.filter(pl.col("feature_id").is_not_null())
        .join(features.select("feature_id"), on="feature_id", how="anti")
        .group_by("feature_id")
        .agg(pl.col(ROW).first())
        .select(ROW, "feature_id", pl.col("feature_id").alias("name"), pl.lit("planned").alias("status"))
    )
    return features, work_items, placeholders

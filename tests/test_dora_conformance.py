"""Throughline reproduces Apache DevLake's DORA test fixtures row for row.

DevLake's domain tables are mapped onto Throughline's canonical entities the way an importer
would: a DevLake deployment commit (one pipeline × repo) is one Throughline deployment, the
CI scope is its service and the DevLake project is the team. DevLake runs per project, so each
case takes the project ``project1`` as DevLake's own test does.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from core.delivery.dora import (
    DoraSettings,
    deployments_from_pipelines,
    incident_deployments,
    pr_cycle_times,
    previous_successful_deployments,
)
from core.model.schema import coerce, parse_datetime

SHARED = Path(__file__).resolve().parents[2] / "shared"
FIXTURES = SHARED / "conformance" / "devlake-dora"
PROJECT = "project1"

pytestmark = pytest.mark.skipif(
    not FIXTURES.is_dir(), reason=f"DevLake conformance fixtures not found at {FIXTURES} (shared folder absent)"
)


def _csv(*parts: str) -> pl.DataFrame:
    return pl.read_csv(FIXTURES.joinpath(*parts), infer_schema=False)


def _when(column: str) -> pl.Expr:
    return parse_datetime(pl.col(column))


def _blank_is_null(column: str) -> pl.Expr:
    return pl.when(pl.col(column).str.strip_chars() != "").then(pl.col(column)).alias(column)


def _projects(mapping: pl.DataFrame, table: str) -> pl.DataFrame:
    """row_id → project for one kind of DevLake scope."""
    return mapping.filter(pl.col("table") == table).select(pl.col("row_id"), pl.col("project_name").alias("team_id"))


def _deployments(deployment_commits: pl.DataFrame, mapping: pl.DataFrame) -> pl.DataFrame:
    """DevLake cicd_deployment_commits as Throughline deployments (one per pipeline × repo)."""
    mapped = deployment_commits.join(
        _projects(mapping, "cicd_scopes"), left_on="cicd_scope_id", right_on="row_id", how="left"
    ).select(
        pl.col("id").alias("deployment_id"),
        pl.col("cicd_scope_id").alias("service"),
        pl.col("repo_url").alias("repo"),
        "team_id",
        _blank_is_null("environment"),
        pl.col("result").str.to_lowercase().alias("status"),
        _when("started_date").alias("started_at"),
        _when("finished_date").alias("finished_at"),
        "commit_sha",
    )
    return coerce("deployments", mapped)


def test_pr_cycle_time_breakdown_matches_devlake_project_pr_metrics() -> None:
    mapping = _csv("change_lead_time", "project_mapping.csv")
    prs = _csv("change_lead_time", "pull_requests.csv")
    commits = _csv("change_lead_time", "pull_request_commits.csv").with_columns(_when("commit_authored_date"))
    comments = _csv("change_lead_time", "pull_request_comments.csv").with_columns(_when("created_date"))
    first_commit = commits.group_by("pull_request_id").agg(
        pl.col("commit_authored_date").min().alias("first_commit_at")
    )
    # DevLake's first review: the earliest comment whose account differs from the PR author ('' when unknown).
    first_review = (
        comments.join(prs.select("id", "author_id"), left_on="pull_request_id", right_on="id")
        .filter(pl.col("account_id") != pl.col("author_id").fill_null(""))
        .group_by("pull_request_id")
        .agg(pl.col("created_date").min().alias("first_review_at"))
    )
    pull_requests = coerce(
        "pull_requests",
        prs.join(_projects(mapping, "repos"), left_on="base_repo_id", right_on="row_id", how="inner")
        .filter(pl.col("team_id") == PROJECT)
        .join(first_commit, left_on="id", right_on="pull_request_id", how="left")
        .join(first_review, left_on="id", right_on="pull_request_id", how="left")
        .select(
            pl.col("id").alias("pr_id"),
            pl.col("base_repo_id").alias("repo"),
            "author_id",
            pl.lit("human").alias("author_kind"),
            "team_id",
            pl.when(pl.col("merged_date").is_not_null())
            .then(pl.lit("merged"))
            .otherwise(pl.lit("open"))
            .alias("state"),
            _when("created_date").alias("created_at"),
            "first_commit_at",
            "first_review_at",
            _when("merged_date").alias("merged_at"),
            "merge_commit_sha",
        ),
    )
    deployments = _deployments(_csv("change_lead_time", "cicd_deployment_commits.csv"), mapping)
    # commits_diffs: every commit between two deployed commits; DevLake stores '' for "no old commit".
    commit_ranges = _csv("change_lead_time", "commits_diffs.csv").with_columns(_blank_is_null("old_commit_sha"))

    actual = (
        pr_cycle_times(pull_requests.lazy(), deployments.lazy(), commit_ranges.lazy())
        .select(
            pl.col("pr_id").alias("id"),
            pl.col("coding_minutes").alias("pr_coding_time"),
            pl.col("pickup_minutes").alias("pr_pickup_time"),
            pl.col("review_minutes").alias("pr_review_time"),
            pl.col("deployment_id").alias("deployment_commit_id"),
            pl.col("deploy_minutes").alias("pr_deploy_time"),
            pl.col("cycle_minutes").alias("pr_cycle_time"),
            pl.col("first_commit_at").alias("first_commit_authored_date"),
            pl.col("first_review_at").alias("first_comment_date"),
            pl.col("created_at").alias("pr_created_date"),
            pl.col("merged_at").alias("pr_merged_date"),
            pl.col("deployed_at").alias("pr_deployed_date"),
        )
        .sort("id")
        .collect()
    )
    minutes = ["pr_coding_time", "pr_pickup_time", "pr_review_time", "pr_deploy_time", "pr_cycle_time"]
    dates = [
        "first_commit_authored_date",
        "first_comment_date",
        "pr_created_date",
        "pr_merged_date",
        "pr_deployed_date",
    ]
    expected = (
        _csv("change_lead_time", "project_pr_metrics.csv")
        .filter(pl.col("project_name") == PROJECT)
        .select(
            "id",
            *[pl.col(c).cast(pl.Int64) for c in minutes[:3]],
            "deployment_commit_id",
            *[pl.col(c).cast(pl.Int64) for c in minutes[3:]],
            *[_when(c) for c in dates],
        )
        .sort("id")
    )
    assert_frame_equal(actual, expected)


def test_previous_successful_deployment_links_match_devlake() -> None:
    mapping = _csv("prev_success_deployment_commit", "project_mapping.csv")
    deployments = _deployments(_csv("prev_success_deployment_commit", "cicd_deployment_commits_before.csv"), mapping)

    actual = previous_successful_deployments(deployments.lazy()).sort("deployment_id").collect()

    expected = (
        _csv("prev_success_deployment_commit", "cicd_deployment_commits_after.csv")
        .select(pl.col("id").alias("deployment_id"), _blank_is_null("prev_success_deployment_commit_id"))
        .rename({"prev_success_deployment_commit_id": "prev_success_deployment_id"})
        .sort("deployment_id")
    )
    assert_frame_equal(actual, expected)


def test_incident_to_deployment_links_match_devlake() -> None:
    folder = "connect_incident_to_deployment"
    mapping = _csv(folder, "raw_tables", "project_mapping.csv")
    deployment_commits = _csv(folder, "prev_success_deployment_commit", "cicd_deployment_commits_after.csv")
    deployments = _deployments(deployment_commits, mapping)
    incidents = coerce(
        "incidents",
        _csv(folder, "raw_tables", "incidents.csv")
        .join(
            mapping.select("table", "row_id", pl.col("project_name").alias("team_id")),
            left_on=["table", "scope_id"],
            right_on=["table", "row_id"],
            how="inner",
        )
        .filter(pl.col("team_id") == PROJECT)
        .select(
            pl.col("id").alias("incident_id"),
            "team_id",
            _when("created_date").alias("opened_at"),
            _when("updated_date").alias("resolved_at"),
        ),
    )
    # DevLake reports the pipeline (cicd_deployment_id) of the deployment commit it picked.
    pipeline_of = deployment_commits.select(pl.col("id").alias("deployment_id"), "cicd_deployment_id")

    actual = (
        incident_deployments(incidents.lazy(), deployments.lazy(), DoraSettings())
        .join(pipeline_of.lazy(), on="deployment_id", how="left")
        .select(pl.col("incident_id").alias("id"), pl.col("cicd_deployment_id").alias("deployment_id"))
        .sort("id")
        .collect()
    )

    expected = (
        _csv(folder, "snapshot_tables", "project_incident_deployment_relationships.csv")
        .filter(pl.col("project_name") == PROJECT)
        .select("id", "deployment_id")
        .sort("id")
    )
    assert_frame_equal(actual, expected)


def test_deployment_selection_matches_devlake_deployment_generator() -> None:
    mapping = _csv("deployment_generator", "project_mapping.csv")
    in_project = _projects(mapping, "cicd_scopes").filter(pl.col("team_id") == PROJECT).select("row_id")
    pipelines = (
        _csv("deployment_generator", "cicd_pipelines.csv")
        .join(in_project, left_on="cicd_scope_id", right_on="row_id", how="semi")
        .select(
            pl.col("id").alias("pipeline_id"),
            pl.col("cicd_scope_id").alias("service"),
            "result",
            "type",
            "environment",
            pl.col("duration_sec").cast(pl.Float64),
            _when("finished_date").alias("finished_at"),
        )
    )
    tasks = _csv("deployment_generator", "cicd_tasks.csv").select(
        pl.col("pipeline_id"), "type", "environment", "result"
    )
    pipeline_commits = _csv("deployment_generator", "cicd_pipeline_commits.csv").select(
        "pipeline_id", pl.col("repo_url").alias("repo"), "commit_sha"
    )

    actual = (
        deployments_from_pipelines(pipelines.lazy(), tasks.lazy(), pipeline_commits.lazy())
        .select(
            pl.col("deployment_id").alias("id"),
            pl.col("service").alias("cicd_scope_id"),
            pl.col("pipeline_id").alias("cicd_deployment_id"),
            pl.col("status").str.to_uppercase().alias("result"),
            pl.col("repo").alias("repo_url"),
            pl.col("environment").str.to_uppercase(),
            pl.col("started_at").alias("started_date"),
            pl.col("finished_at").alias("finished_date"),
        )
        .sort("id")
        .collect()
    )

    # DevLake's e2e test compares exactly these fields.
    expected = (
        _csv("deployment_generator", "cicd_deployment_commits.csv")
        .select(
            "id",
            "cicd_scope_id",
            "cicd_deployment_id",
            "result",
            "repo_url",
            _blank_is_null("environment"),
            _when("started_date"),
            _when("finished_date"),
        )
        .sort("id")
    )
    assert_frame_equal(actual, expected)

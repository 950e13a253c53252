"""Throughline reproduces Apache DevLake's DORA test fixtures row for row, and through the preset a user connects.

The fixtures (``tests/fixtures/devlake``, Apache-2.0, DevLake's LICENSE and NOTICE beside them) are
loaded into a fresh database with DevLake's table shapes, on SQLite, the real PostgreSQL and the
real MariaDB; then ``connect add`` → ``connect preset … devlake`` → ``connect refresh`` and the DORA
report run exactly as a user runs them. The first tests map the tables directly onto the canonical
entities, which pins each core rule on its own. DevLake runs per project, so each case takes the
project ``project1`` as DevLake's own test does.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa
from polars.testing import assert_frame_equal

from core.access import Viewer, dora_frames
from core.delivery.dora import (
    DoraSettings,
    deployments_from_pipelines,
    dora_measures,
    incident_deployments,
    pr_cycle_times,
    previous_successful_deployments,
    production_deployment_groups,
)
from core.model.schema import coerce, parse_datetime
from core.sources import connect
from core.store.database import Store, open_store
from core.store.workspace import Workspace

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "devlake"
PROJECT = "project1"


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


# -- end to end: DevLake's tables in a real database, read through the preset ------------------------------------
ADMIN = Viewer("ana", "Ana", "admin")
MARIADB_ADMIN_URL = "mysql+pymysql://root:@127.0.0.1:3306/test"

_ID = sa.String(255)
DEVLAKE_TABLES: dict[str, tuple[tuple[str, sa.types.TypeEngine[object]], ...]] = {
    "project_mapping": (("project_name", _ID), ("table", _ID), ("row_id", _ID)),
    "cicd_scopes": (("id", _ID), ("name", _ID)),
    "repos": (("id", _ID), ("name", _ID)),
    "pull_requests": (
        ("id", _ID),
        ("url", _ID),
        ("base_repo_id", _ID),
        ("pull_request_key", sa.BigInteger()),
        ("title", sa.Text()),
        ("head_ref", _ID),
        ("author_id", _ID),
        ("author_name", _ID),
        ("status", _ID),
        ("created_date", sa.DateTime()),
        ("merged_date", sa.DateTime()),
        ("merge_commit_sha", _ID),
        ("base_commit_sha", _ID),
        ("head_commit_sha", _ID),
        ("_raw_data_remark", sa.Text()),
    ),
    "pull_request_commits": (
        ("commit_sha", _ID),
        ("pull_request_id", _ID),
        ("commit_authored_date", sa.DateTime()),
        ("_raw_data_remark", sa.Text()),
    ),
    "pull_request_comments": (
        ("id", _ID),
        ("pull_request_id", _ID),
        ("created_date", sa.DateTime()),
        ("account_id", _ID),
        ("body", sa.Text()),
    ),
    "cicd_deployment_commits": (
        ("id", _ID),
        ("cicd_deployment_id", _ID),
        ("cicd_scope_id", _ID),
        ("name", _ID),
        ("result", _ID),
        ("status", _ID),
        ("original_status", _ID),
        ("environment", _ID),
        ("original_environment", _ID),
        ("repo_url", _ID),
        ("started_date", sa.DateTime()),
        ("finished_date", sa.DateTime()),
        ("created_date", sa.DateTime()),
        ("duration_sec", sa.Float()),
        ("commit_sha", _ID),
        ("prev_success_deployment_commit_id", _ID),
        ("_raw_data_remark", sa.Text()),
    ),
    "commits_diffs": (
        ("new_commit_sha", _ID),
        ("old_commit_sha", _ID),
        ("commit_sha", _ID),
        ("sorting_index", sa.Integer()),
    ),
    "incidents": (
        ("id", _ID),
        ("incident_key", _ID),
        ("title", sa.Text()),
        ("status", _ID),
        ("created_date", sa.DateTime()),
        ("resolution_date", sa.DateTime()),
        ("updated_date", sa.DateTime()),
        ("table", _ID),
        ("scope_id", _ID),
    ),
    "issues": (
        ("id", _ID),
        ("issue_key", _ID),
        ("title", sa.Text()),
        ("type", _ID),
        ("status", _ID),
        ("story_point", sa.Float()),
        ("created_date", sa.DateTime()),
        ("resolution_date", sa.DateTime()),
        ("epic_key", _ID),
        ("assignee_name", _ID),
    ),
}
"""The columns of DevLake's domain tables the fixtures and the preset use, in DevLake's types."""

LEAD_TIME_CASE = {
    table: ("change_lead_time", f"{table}.csv")
    for table in (
        "project_mapping",
        "cicd_scopes",
        "repos",
        "pull_requests",
        "pull_request_commits",
        "pull_request_comments",
        "cicd_deployment_commits",
        "commits_diffs",
    )
}
INCIDENT_CASE = {
    "project_mapping": ("connect_incident_to_deployment", "raw_tables", "project_mapping.csv"),
    "incidents": ("connect_incident_to_deployment", "raw_tables", "incidents.csv"),
    "cicd_deployment_commits": (
        "connect_incident_to_deployment",
        "prev_success_deployment_commit",
        "cicd_deployment_commits_after.csv",
    ),
}


def _load_devlake(url: str, case: dict[str, tuple[str, ...]]) -> None:
    """Create DevLake's tables at ``url`` (all of them, so the others are empty) and load the case's CSVs."""
    engine = sa.create_engine(url)
    metadata = sa.MetaData()
    tables = {
        name: sa.Table(name, metadata, *(sa.Column(c, t) for c, t in columns))
        for name, columns in DEVLAKE_TABLES.items()
    }
    metadata.create_all(engine, checkfirst=True)
    with engine.begin() as conn:
        for name, parts in case.items():
            frame = _csv(*parts)
            table = tables[name]
            dates = [c.name for c in table.columns if isinstance(c.type, sa.DateTime) and c.name in frame.columns]
            numbers = [
                c.name for c in table.columns if isinstance(c.type, sa.Integer | sa.Float) and c.name in frame.columns
            ]
            frame = frame.select([c for c in frame.columns if c in table.columns]).with_columns(
                *[_when(c) for c in dates], *[pl.col(c).cast(pl.Float64) for c in numbers]
            )
            conn.execute(table.insert(), frame.to_dicts())
    engine.dispose()


@pytest.fixture
def mariadb_url() -> Iterator[str]:
    """The URL of a fresh, empty MariaDB database, dropped afterwards."""
    name = f"tl_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(MARIADB_ADMIN_URL, connect_args={"connect_timeout": 5})
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f"CREATE DATABASE `{name}`"))
    except sa.exc.OperationalError as error:
        admin.dispose()
        pytest.fail(f"MariaDB at {MARIADB_ADMIN_URL} does not answer: {error.__class__.__name__}")
    yield sa.make_url(MARIADB_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def source_url(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh source database on each family the preset reads (SQLite from the allowed folder)."""
    if request.param == "postgresql":
        return str(request.getfixturevalue("pg_url"))
    if request.param == "mariadb":
        return str(request.getfixturevalue("mariadb_url"))
    folder = tmp_path / "sources"
    folder.mkdir()
    monkeypatch.setenv(connect.SQLITE_SOURCES_ENV, str(folder))
    return f"sqlite:///{folder / 'devlake.db'}"


def _through_preset(tmp_path: Path, url: str, case: dict[str, tuple[str, ...]]) -> Store:
    """A fresh workspace that connected ``url`` holding ``case``, chose the devlake preset and refreshed."""
    _load_devlake(url, case)
    home = tmp_path / "home"
    home.mkdir()
    store = open_store(Workspace(home=home, database_url=f"sqlite:///{home / 'throughline.db'}"))
    connect.save_connection(store, "devlake", url, ADMIN)
    connect.use_preset(store, "devlake", "devlake", ADMIN)
    connect.refresh(store, "devlake", actor="ana")
    return store


def _project_frames(store: Store) -> tuple[pl.LazyFrame, ...]:
    frames = {name: store.read(name).lazy() for name in ("deployments", "pull_requests", "incidents")}
    return dora_frames(frames, PROJECT)


def _measures(store: Store, start: date | None = None, end: date | None = None) -> dict[str, dict[str, object]]:
    deployments, pull_requests, incidents = _project_frames(store)
    rows = dora_measures(deployments, pull_requests, incidents, DoraSettings(), start, end).collect()
    return {r["measure"]: r for r in rows.to_dicts()}


def test_preset_headline_lead_time_frequency_match_devlake(tmp_path: Path, source_url: str) -> None:
    store = _through_preset(tmp_path, source_url, LEAD_TIME_CASE)
    deployments, _, _ = _project_frames(store)
    # project1's successful PRODUCTION runs: pipeline1, 2, 4, 6, 7 (pipeline5 is STAGING; 8-10 are project2's)
    runs = production_deployment_groups(deployments).collect()
    assert sorted(runs["deployment_id"].to_list()) == ["pipeline1", "pipeline2", "pipeline4", "pipeline6", "pipeline7"]
    assert sorted({d.isoformat() for d in runs["day"]}) == ["2023-04-10", "2023-04-13"]
    april = _measures(store, date(2023, 4, 1), date(2023, 4, 30))
    frequency = april["deployment_frequency"]
    assert frequency["sample_size"] == 5
    # 10 and 13 April 2023 fall in the week of Monday 10 April; April's weeks hold 0, 0, 2, 0, 0 days: median 0
    assert frequency["value"] == 0.0
    lead = april["lead_time_for_changes"]
    # DevLake: pr1 4478, pr2 1598, pr3 10203 minutes reached a deployment; the lower median is 4478
    assert (lead["value"], lead["sample_size"]) == (4478.0, 3)
    week = _measures(store, date(2023, 4, 10), date(2023, 4, 16))["deployment_frequency"]
    assert (week["value"], week["sample_size"]) == (2.0, 5)


def test_preset_pr_metrics_match_devlake_row_for_row(tmp_path: Path, source_url: str) -> None:
    store = _through_preset(tmp_path, source_url, LEAD_TIME_CASE)
    deployments, pull_requests, _ = _project_frames(store)
    actual = (
        pr_cycle_times(pull_requests, deployments)
        .select(
            pl.col("pr_id").alias("id"),
            pl.col("coding_minutes").alias("pr_coding_time"),
            pl.col("pickup_minutes").alias("pr_pickup_time"),
            pl.col("review_minutes").alias("pr_review_time"),
            pl.col("deployment_id").alias("deployment_commit_id"),
            pl.col("deploy_minutes").alias("pr_deploy_time"),
            pl.col("cycle_minutes").alias("pr_cycle_time"),
            pl.col("deployed_at").alias("pr_deployed_date"),
        )
        .sort("id")
        .collect()
    )
    expected = (
        _csv("change_lead_time", "project_pr_metrics.csv")
        .filter(pl.col("project_name") == PROJECT)
        .select(
            "id",
            *[pl.col(c).cast(pl.Int64) for c in ("pr_coding_time", "pr_pickup_time", "pr_review_time")],
            "deployment_commit_id",
            *[pl.col(c).cast(pl.Int64) for c in ("pr_deploy_time", "pr_cycle_time")],
            _when("pr_deployed_date"),
        )
        .sort("id")
    )
    assert_frame_equal(actual, expected)


def test_preset_change_failure_rate_and_incident_links_match_devlake(tmp_path: Path, source_url: str) -> None:
    store = _through_preset(tmp_path, source_url, INCIDENT_CASE)
    deployments, pull_requests, incidents = _project_frames(store)
    # project1's runs 1, 2, 4, 6, 7; incidents blame pipeline7 (five) and pipeline2 (one): 2 of 5 failed
    failure = _measures(store)["change_failure_rate"]
    assert (failure["value"], failure["sample_size"]) == (0.4, 5)
    pipeline_of = deployments.select("deployment_id", "pipeline_id")
    actual = (
        incident_deployments(incidents, deployments, DoraSettings())
        .join(pipeline_of, on="deployment_id", how="left")
        .select(pl.col("incident_id").alias("id"), pl.col("pipeline_id").alias("deployment_id"))
        .sort("id")
        .collect()
    )
    expected = (
        _csv("connect_incident_to_deployment", "snapshot_tables", "project_incident_deployment_relationships.csv")
        .filter(pl.col("project_name") == PROJECT)
        .select("id", "deployment_id")
        .sort("id")
    )
    assert_frame_equal(actual, expected)
    # the incident of repo3 belongs to no project1 scope, so it is not project1's
    assert incidents.collect().height == 6
    # the empty tables (pull requests, issues) and all-NULL columns (titles, resolution dates) read cleanly
    assert pull_requests.collect().height == 0 and store.count("work_items") == 0


def test_preset_reads_issues_whose_epic_and_points_are_all_null(tmp_path: Path, source_url: str) -> None:
    # all-NULL columns come back as NULL-typed (or integer) columns on some drivers; they must read as text keys
    _load_devlake(source_url, {})
    engine = sa.create_engine(source_url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO issues (id, issue_key, title, type, status, created_date) VALUES "
                "('i1', 'PAY-1', 'Prefill', 'REQUIREMENT', 'DONE', '2026-01-02 10:00:00'), "
                "('i2', 'PAY-2', 'Draft', 'BUG', 'TODO', '2026-01-03 10:00:00')"
            )
        )
    engine.dispose()
    home = tmp_path / "home"
    home.mkdir()
    store = open_store(Workspace(home=home, database_url=f"sqlite:///{home / 'throughline.db'}"))
    connect.save_connection(store, "devlake", source_url, ADMIN)
    connect.use_preset(store, "devlake", "devlake", ADMIN)
    record = connect.refresh(store, "devlake", actor="ana")
    assert record.counts["work_items"]["added"] == 2
    items = store.read("work_items").sort("work_item_key")
    assert items["feature_id"].to_list() == [None, None] and items["story_points"].to_list() == [None, None]
    assert store.count("deployments") == 0 and store.count("pull_requests") == 0

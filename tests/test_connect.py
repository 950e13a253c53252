"""Database connections against the real PostgreSQL and MariaDB on this machine, and the DevLake preset on SQLite."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa

from core import connect
from core.connect import ConnectFailed, SourceMapping
from core.access import Viewer
from core.importing import import_history
from core.store import Store, open_store
from core.workspace import Workspace, read_secrets

PG = "postgresql+psycopg://postgres:{password}@127.0.0.1:5432/test"
MARIADB = "mysql+pymysql://root:@127.0.0.1:3306/test"
ADMIN = Viewer("ana", "Ana", "admin")
LEAD = Viewer("dee", "Dee", "delivery_lead")


@pytest.fixture
def store(tmp_path: Path) -> Store:
    home = tmp_path / "workspace"
    home.mkdir()
    return open_store(Workspace(home=home, database_url=f"sqlite:///{home / 't.db'}"))


def _server(url: str) -> sa.Engine:
    engine = sa.create_engine(url, connect_args={"connect_timeout": 5})
    try:
        with engine.connect():
            pass
    except sa.exc.OperationalError as error:
        pytest.skip(f"{engine.url.get_backend_name()} at {engine.url.host}:{engine.url.port} does not answer: {error}")
    return engine


@pytest.fixture
def pg_table() -> Iterator[tuple[sa.Engine, str]]:
    engine = _server(PG.format(password="x"))
    table = f"tl_src_{uuid.uuid4().hex[:10]}"
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                f"CREATE TABLE {table} (id text, repository text, num int, headline text, "
                "login text, opened timestamptz, merged timestamptz, plus int)"
            )
        )
        conn.execute(sa.text(f"CREATE SEQUENCE {table}_seq"))
        conn.execute(
            sa.text(
                f"INSERT INTO {table} VALUES "
                "('acme/web#1', 'acme/web', 1, 'PAY-1 login', 'alice', '2026-01-01 10:00+02', "
                "'2026-01-02 09:00+00', 10),"
                "('acme/web#2', 'acme/web', 2, 'Refactor', 'renovate[bot]', '2026-01-03 10:00+00', NULL, 3)"
            )
        )
    yield engine, table
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
        conn.execute(sa.text(f"DROP SEQUENCE IF EXISTS {table}_seq"))
    engine.dispose()


PR_COLUMNS = {
    "pr_id": "id",
    "repo": "repository",
    "number": "num",
    "title": "headline",
    "author_id": "login",
    "created_at": "opened",
    "merged_at": "merged",
    "additions": "plus",
}
PR_QUERY = (
    "SELECT id, repository, num, headline, login, opened, merged, plus, "
    "CASE WHEN merged IS NULL THEN 'open' ELSE 'merged' END AS state, "
    "CASE WHEN login LIKE '%[bot]' THEN 'agent' ELSE 'human' END AS author_kind FROM {table}"
)


def test_postgres_connect_map_import_refresh(store: Store, pg_table: tuple[sa.Engine, str]) -> None:
    engine, table = pg_table
    connection = connect.save_connection(store, "warehouse", PG.format(password="s3cr3t-pw"), ADMIN)
    assert "s3cr3t-pw" not in connection.url
    assert "s3cr3t-pw" not in str(store.settings("connections."))
    assert "s3cr3t-pw" not in store.audit_log()["detail"].str.join("").item()
    assert read_secrets(store.workspace.secrets_path)["connections"]["warehouse"] == "s3cr3t-pw"
    assert connect.test_connection(store, "warehouse").startswith("postgresql 15")
    assert table in connect.list_tables(store, "warehouse")

    store.write(
        {
            "people": pl.DataFrame(
                {"person_id": ["alice", "renovate[bot]"], "name": ["Alice", "Renovate"], "kind": ["human", "agent"]}
            )
        }
    )
    mapping = SourceMapping("pull_requests", query=PR_QUERY.format(table=table), columns=PR_COLUMNS)
    connect.set_mapping(store, "warehouse", mapping, ADMIN)
    preview = connect.preview(store, "warehouse", "pull_requests")
    assert preview.height == 2 and set(preview.columns) >= {"pr_id", "state", "author_kind"}

    first = connect.refresh(store, "warehouse", actor="admin")
    assert first.counts["pull_requests"]["added"] == 2
    prs = {r["pr_id"]: r for r in store.read("pull_requests").to_dicts()}
    assert str(prs["acme/web#1"]["created_at"]) == "2026-01-01 08:00:00"  # +02:00 normalised to UTC
    assert prs["acme/web#2"]["author_kind"] == "agent"

    with engine.begin() as conn:
        conn.execute(
            sa.text(
                f"INSERT INTO {table} VALUES ('acme/web#3', 'acme/web', 3, 'PAY-2', 'alice', "
                "'2026-01-05 10:00+00', NULL, 1)"
            )
        )
    second = connect.refresh(store, "warehouse", actor="admin")
    assert second.counts["pull_requests"] == {"added": 1, "updated": 2, "rejected": 0}
    assert store.count("pull_requests") == 3
    assert import_history(store)["format"][0] == "connection:mapping"


def test_postgres_refuses_writes(store: Store, pg_table: tuple[sa.Engine, str]) -> None:
    engine, table = pg_table
    connect.save_connection(store, "pg", PG.format(password="x"), ADMIN)
    for sql in (
        f"DELETE FROM {table}",
        f"SELECT 1; DROP TABLE {table}",
        f"WITH gone AS (DELETE FROM {table} RETURNING *) SELECT * FROM gone",
        f"UPDATE {table} SET plus = 0",
        f"SELECT * INTO tl_copy FROM {table}",
    ):
        with pytest.raises(ConnectFailed, match="Only"):
            connect.set_mapping(store, "pg", SourceMapping("pull_requests", query=sql), ADMIN)
    url = connect._full_url(store, connect.get_connection(store, "pg"))
    with pytest.raises(ConnectFailed, match=r"read-only|write|failed"):
        connect.read_query(url, f"SELECT nextval('{table}_seq')")  # a write hidden in a function: the session refuses
    with engine.connect() as conn:
        assert conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one() == 2


def test_mariadb_connect_map_import_refresh(store: Store) -> None:
    engine = _server(MARIADB)
    table = f"tl_inc_{uuid.uuid4().hex[:10]}"
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                f"CREATE TABLE {table} (id VARCHAR(20), title TEXT, opened DATETIME, closed DATETIME, sev VARCHAR(10))"
            )
        )
        conn.execute(
            sa.text(
                f"INSERT INTO {table} VALUES ('INC-1', 'Checkout down', '2026-02-01 10:00:00', "
                "'2026-02-01 11:30:00', 'SEV1'), ('INC-2', 'Slow search', '2026-02-03 09:00:00', NULL, 'SEV3')"
            )
        )
    try:
        connect.save_connection(store, "maria", MARIADB, ADMIN)
        assert connect.test_connection(store, "maria").startswith("mysql")
        assert table in connect.list_tables(store, "maria")
        mapping = SourceMapping(
            "incidents",
            table=table,
            columns={"incident_id": "id", "opened_at": "opened", "resolved_at": "closed", "severity": "sev"},
        )
        connect.set_mapping(store, "maria", mapping, ADMIN)
        assert connect.preview(store, "maria", "incidents").height == 2
        assert connect.refresh(store, "maria", actor="admin").counts["incidents"]["added"] == 2
        with engine.begin() as conn:
            conn.execute(sa.text(f"UPDATE {table} SET closed = '2026-02-03 12:00:00' WHERE id = 'INC-2'"))
        assert connect.refresh(store, "maria", actor="admin").counts["incidents"] == {
            "added": 0,
            "updated": 2,
            "rejected": 0,
        }
        resolved = {r["incident_id"]: r["resolved_at"] for r in store.read("incidents").to_dicts()}
        assert str(resolved["INC-2"]) == "2026-02-03 12:00:00"
        with pytest.raises(ConnectFailed, match="Only"):
            connect.set_mapping(store, "maria", SourceMapping("incidents", query=f"DELETE FROM {table}"), ADMIN)
        url = connect._full_url(store, connect.get_connection(store, "maria"))
        with pytest.raises(ConnectFailed):
            connect.read_query(url, f"SELECT * FROM {table} FOR UPDATE")
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
        engine.dispose()


def test_devlake_preset(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(connect.SQLITE_SOURCES_ENV, str(tmp_path / "sources"))
    (tmp_path / "sources").mkdir()
    path = tmp_path / "sources" / "devlake.db"
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE pull_requests (id TEXT, url TEXT, base_repo_id TEXT, pull_request_key INT, title TEXT,
            head_ref TEXT, author_name TEXT, status TEXT, created_date TEXT, merged_date TEXT, merge_commit_sha TEXT);
        CREATE TABLE pull_request_commits (pull_request_id TEXT, commit_sha TEXT, commit_authored_date TEXT);
        CREATE TABLE pull_request_comments (id TEXT, pull_request_id TEXT, created_date TEXT, body TEXT);
        CREATE TABLE cicd_deployment_commits (id TEXT, cicd_deployment_id TEXT, name TEXT, repo_url TEXT,
            environment TEXT, result TEXT, started_date TEXT, finished_date TEXT, commit_sha TEXT);
        CREATE TABLE incidents (id TEXT, title TEXT, created_date TEXT, resolution_date TEXT);
        CREATE TABLE issues (issue_key TEXT, title TEXT, type TEXT, status TEXT, story_point REAL, created_date TEXT,
            resolution_date TEXT, epic_key TEXT, assignee_name TEXT);
        INSERT INTO pull_requests VALUES
          ('github:GithubPullRequest:1:11', 'https://github.com/acme/web/pull/7', 'github:GithubRepo:1:9', 7,
           'PAY-10 prefill', 'feature/pay-10', 'alice', 'MERGED', '2026-01-02 10:00:00', '2026-01-03 10:00:00', 'abc'),
          ('github:GithubPullRequest:1:12', 'https://github.com/acme/web/pull/8', 'github:GithubRepo:1:9', 8,
           'Bump deps', 'deps', 'dependabot[bot]', 'OPEN', '2026-01-04 10:00:00', NULL, NULL);
        INSERT INTO pull_request_commits VALUES ('github:GithubPullRequest:1:11', 'a1', '2026-01-01 09:00:00');
        INSERT INTO pull_request_comments VALUES ('c1', 'github:GithubPullRequest:1:11', '2026-01-02 15:00:00', 'ok'),
          ('c2', 'github:GithubPullRequest:1:11', '2026-01-02 16:00:00', 'lgtm');
        INSERT INTO cicd_deployment_commits VALUES
          ('x1', 'dep-1', 'deploy web', 'https://github.com/acme/web', 'PRODUCTION', 'SUCCESS',
           '2026-01-03 11:00:00', '2026-01-03 11:10:00', 'abc'),
          ('x2', 'dep-2', 'deploy web', 'https://github.com/acme/web', 'PRODUCTION', 'FAILURE',
           '2026-01-04 11:00:00', '2026-01-04 11:10:00', 'def'),
          ('x3', 'dep-3', 'deploy web', 'https://github.com/acme/web', 'PRODUCTION', 'CANCELLED',
           '2026-01-05 11:00:00', '2026-01-05 11:10:00', 'ghi');
        INSERT INTO incidents VALUES ('inc-1', 'Checkout errors', '2026-01-04 12:00:00', '2026-01-04 13:00:00');
        INSERT INTO issues VALUES
          ('PAY-1', 'Faster mortgage', 'EPIC', 'DONE', NULL, '2025-12-01 09:00:00', '2026-01-10 09:00:00', NULL, 'bob'),
          ('PAY-10', 'Prefill income', 'REQUIREMENT', 'DONE', 5, '2025-12-02 09:00:00', '2026-01-03 10:00:00',
           'PAY-1', 'alice'),
          ('PAY-11', 'Save draft', 'REQUIREMENT', 'IN_PROGRESS', 3, '2025-12-03 09:00:00', NULL, 'PAY-9', NULL);
    """)
    db.commit()
    db.close()
    connect.save_connection(store, "devlake", f"sqlite:///{path}", ADMIN)
    connect.use_preset(store, "devlake", "devlake", ADMIN)
    record = connect.refresh(store, "devlake", actor="admin")
    assert record.counts["pull_requests"]["added"] == 2
    prs = {r["number"]: r for r in store.read("pull_requests").to_dicts()}
    assert prs[7]["repo"] == "acme/web" and prs[7]["state"] == "merged" and prs[7]["reviews"] == 2
    assert str(prs[7]["first_commit_at"]) == "2026-01-01 09:00:00" and prs[7]["work_item_key"] == "PAY-10"
    assert prs[8]["author_kind"] == "agent"
    deployments = store.read("deployments").sort("deployment_id")
    assert deployments["status"].to_list() == ["success", "failure"]
    assert store.count("incidents") == 1
    features = {r["feature_id"]: r["status"] for r in store.read("features").to_dicts()}
    assert features == {"PAY-1": "delivered", "PAY-9": "planned"}
    assert store.read("work_items")["story_points"].sum() == 8

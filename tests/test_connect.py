"""Database connections against the real PostgreSQL and MariaDB on this machine, and the DevLake preset on SQLite."""

from __future__ import annotations

import os
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa

from core.access import Viewer
from core.importing import import_history
from core.sources import connect
from core.sources.connect import ConnectFailed, SourceMapping
from core.store.database import Store, open_store
from core.store.workspace import Workspace, read_secrets

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
            head_ref TEXT, author_id TEXT, author_name TEXT, status TEXT, created_date TEXT, merged_date TEXT,
            merge_commit_sha TEXT);
        CREATE TABLE pull_request_commits (pull_request_id TEXT, commit_sha TEXT, commit_authored_date TEXT);
        CREATE TABLE pull_request_comments (id TEXT, pull_request_id TEXT, created_date TEXT, account_id TEXT,
            body TEXT);
        CREATE TABLE project_mapping (project_name TEXT, "table" TEXT, row_id TEXT);
        CREATE TABLE commits_diffs (new_commit_sha TEXT, old_commit_sha TEXT, commit_sha TEXT);
        CREATE TABLE cicd_deployment_commits (id TEXT, cicd_deployment_id TEXT, name TEXT, repo_url TEXT,
            environment TEXT, result TEXT, started_date TEXT, finished_date TEXT, commit_sha TEXT);
        CREATE TABLE incidents (id TEXT, title TEXT, created_date TEXT, resolution_date TEXT);
        CREATE TABLE issues (issue_key TEXT, title TEXT, type TEXT, status TEXT, story_point REAL, created_date TEXT,
            resolution_date TEXT, epic_key TEXT, assignee_name TEXT);
        INSERT INTO pull_requests VALUES
          ('github:GithubPullRequest:1:11', 'https://github.com/acme/web/pull/7', 'github:GithubRepo:1:9', 7,
           'PAY-10 prefill', 'feature/pay-10', 'u1', 'alice', 'MERGED', '2026-01-02 10:00:00',
           '2026-01-03 10:00:00', 'abc'),
          ('github:GithubPullRequest:1:12', 'https://github.com/acme/web/pull/8', 'github:GithubRepo:1:9', 8,
           'Bump deps', 'deps', 'u2', 'dependabot[bot]', 'OPEN', '2026-01-04 10:00:00', NULL, NULL);
        INSERT INTO pull_request_commits VALUES ('github:GithubPullRequest:1:11', 'a1', '2026-01-01 09:00:00');
        INSERT INTO pull_request_comments VALUES
          ('c1', 'github:GithubPullRequest:1:11', '2026-01-02 15:00:00', 'u9', 'ok'),
          ('c2', 'github:GithubPullRequest:1:11', '2026-01-02 16:00:00', 'u1', 'thanks'),
          ('c3', 'github:GithubPullRequest:1:11', '2026-01-02 17:00:00', 'u8', 'lgtm');
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
    # DevLake maps canceled (any spelling) to FAILURE, as its GitLab converter does
    assert deployments["status"].to_list() == ["success", "failure", "failure"]
    assert store.count("incidents") == 1
    features = {r["feature_id"]: r["status"] for r in store.read("features").to_dicts()}
    assert features == {"PAY-1": "delivered", "PAY-9": "planned"}
    assert store.read("work_items")["story_points"].sum() == 8


# -- security: the guard, read-only transactions, own store, SQLite folder, roles (issue 22) ---------------------------
HOSTILE = [
    ("postgresql", "SELECT E'\\'' AS team_id, 'n' AS name; COMMIT; DELETE FROM victim; SELECT ''", "one statement"),
    ("postgresql", "SELECT $$;$$ AS team_id; DELETE FROM victim", "one statement"),
    ("postgresql", "SELECT $q$ ' $q$ AS team_id; UPDATE tl_users SET role = 'admin'", "one statement"),
    ("mysql", "SELECT 'a\\'' AS team_id, 'n' AS name; DELETE FROM victim #'", "one statement"),
    ("mysql", "SELECT 1 AS team_id # '\nFROM dual; DELETE FROM victim", "one statement"),
    ("sqlite", "SELECT 1; PRAGMA writable_schema = 1", "one statement"),
    ("postgresql", "WITH gone AS (DELETE FROM victim RETURNING *) SELECT * FROM gone", "DELETE"),
    ("postgresql", "SELECT * INTO copied FROM victim", "INTO"),
    ("postgresql", "SELECT * FROM victim FOR UPDATE", "FOR UPDATE"),
    ("postgresql", "COPY victim TO PROGRAM 'id'", "one SELECT or WITH"),
    ("postgresql", "SET ROLE postgres", "one SELECT or WITH"),
    ("sqlite", "ATTACH 'other.db' AS other", "one SELECT or WITH"),
    ("mysql", "SELECT * FROM victim INTO OUTFILE '/tmp/x'", "OUTFILE"),
    ("postgresql", "SELECT pg_sleep(3)", "`pg_sleep` is not allowed: it makes the database server wait"),
    ("postgresql", "SELECT pg_catalog.pg_sleep(3)", "`pg_sleep`"),
    ("postgresql", 'SELECT "pg_sleep"(3)', "`pg_sleep`"),
    ("postgresql", "SELECT pg_sleep/**/(3)", "`pg_sleep`"),
    ("postgresql", "SELECT pg_sleep_for('3 seconds')", "`pg_sleep_for`"),
    ("postgresql", "SELECT pg_read_file('/etc/passwd')", "`pg_read_file`"),
    ("postgresql", "SELECT pg_read_binary_file('/etc/passwd')", "`pg_read_binary_file`"),
    ("postgresql", "SELECT * FROM pg_ls_dir('/')", "`pg_ls_dir`"),
    ("postgresql", "SELECT lo_import('/etc/passwd')", "`lo_import`"),
    ("postgresql", "SELECT lo_export(1, '/tmp/x')", "`lo_export`"),
    ("postgresql", "SELECT * FROM dblink('dbname=test', 'DELETE FROM victim') AS t(a text)", "`dblink`"),
    ("postgresql", "SELECT dblink_exec('dbname=test', 'DELETE FROM victim')", "`dblink_exec`"),
    ("postgresql", "SELECT pg_terminate_backend(pid) FROM pg_stat_activity", "`pg_terminate_backend`"),
    ("postgresql", "SELECT pg_cancel_backend(1)", "`pg_cancel_backend`"),
    ("postgresql", "SELECT pg_reload_conf()", "`pg_reload_conf`"),
    ("postgresql", "SELECT set_config('default_transaction_read_only', 'off', false)", "`set_config`"),
    ("postgresql", "SELECT query_to_xml('DELETE FROM victim', true, true, '')", "`query_to_xml`"),
    ("postgresql", "SELECT 'x' AS a, $$ $$ || pg_sleep(3)::text AS b", "`pg_sleep`"),
    ("postgresql", 'SELECT U&"\\0070g_sleep"(3)', "U&"),
    ("mysql", "SELECT SLEEP(3)", "`sleep`"),
    ("mysql", "SELECT BENCHMARK(100000000, MD5('x'))", "`benchmark`"),
    ("mysql", "SELECT LOAD_FILE('/etc/passwd')", "`load_file`"),
    ("mysql", "SELECT GET_LOCK('x', 10)", "`get_lock`"),
    ("sqlite", "SELECT load_extension('evil')", "`load_extension`"),
    ("postgresql", "", "empty"),
    ("postgresql", "SELECT (", "parses"),
]


@pytest.mark.parametrize(("dialect", "sql", "message"), HOSTILE)
def test_hostile_queries_are_refused_with_a_message(dialect: str, sql: str, message: str) -> None:
    with pytest.raises(ConnectFailed) as refused:
        connect.check_read_only(sql, dialect)
    assert message in refused.value.message


@pytest.mark.parametrize(
    ("dialect", "sql"),
    [
        ("postgresql", "SELECT id AS team_id, name FROM teams;"),
        ("postgresql", "WITH t AS (SELECT 1 AS x) SELECT x FROM t"),
        ("postgresql", "(SELECT 1 AS x) UNION ALL SELECT 2"),
        ("postgresql", "SELECT 'pg_sleep is only a word here' AS note -- a comment"),
        ("mysql", "SELECT benchmark_id, sleep_hours FROM runs"),
        ("sqlite", "SELECT name FROM teams WHERE name LIKE '%;%'"),
    ],
)
def test_plain_read_queries_pass_the_guard(dialect: str, sql: str) -> None:
    assert connect.check_read_only(sql, dialect) == sql.rstrip(";")


@pytest.fixture
def pg_victim() -> Iterator[tuple[sa.Engine, str]]:
    engine = _server(PG.format(password="x"))
    table = f"tl_victim_{uuid.uuid4().hex[:10]}"
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE TABLE {table} (team_id text, name text)"))
        conn.execute(sa.text(f"INSERT INTO {table} VALUES ('PAY', 'Payments'), ('WEB', 'Web')"))
    yield engine, table
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
    engine.dispose()


def _count(engine: sa.Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())


def _save_raw_mapping(store: Store, name: str, url: str, query: str) -> None:
    """A mapping as an older version could have stored it, before the guard: refresh must check it again."""
    store.set_setting(
        f"connections.{name}",
        {"url": url, "preset": None, "mappings": [{"entity": "teams", "table": None, "query": query, "columns": {}}]},
        "test",
    )


def test_postgres_the_reported_bypass_writes_nothing(store: Store, pg_victim: tuple[sa.Engine, str]) -> None:
    engine, victim = pg_victim
    bypass = f"SELECT E'\\'' AS team_id, 'n' AS name; COMMIT; DELETE FROM {victim}; SELECT ''"
    connect.save_connection(store, "pg", PG.format(password="x"), ADMIN)
    with pytest.raises(ConnectFailed, match="Only one statement"):
        connect.set_mapping(store, "pg", SourceMapping("teams", query=bypass), ADMIN)
    _save_raw_mapping(store, "pg", "postgresql+psycopg://postgres@127.0.0.1:5432/test", bypass)
    with pytest.raises(ConnectFailed, match="Only one statement"):
        connect.refresh(store, "pg", actor="dee")
    assert _count(engine, victim) == 2


def test_postgres_a_write_past_the_guard_is_refused_by_the_server(pg_victim: tuple[sa.Engine, str]) -> None:
    engine, victim = pg_victim
    url = sa.make_url(PG.format(password="x"))
    with pytest.raises(Exception, match="multiple commands"):
        connect._read_postgresql(url, f"SELECT 1 AS a; COMMIT; DELETE FROM {victim}")
    with pytest.raises(Exception, match="read-only transaction"):
        connect._read_postgresql(url, f"WITH gone AS (DELETE FROM {victim} RETURNING *) SELECT * FROM gone")
    assert _count(engine, victim) == 2


def test_postgres_sleep_is_refused_and_a_long_query_is_stopped(
    pg_victim: tuple[sa.Engine, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = sa.make_url(PG.format(password="x"))
    started = time.monotonic()
    with pytest.raises(ConnectFailed, match="`pg_sleep` is not allowed"):
        connect.read_query(url, "SELECT pg_sleep(3)")
    monkeypatch.setattr(connect, "STATEMENT_TIMEOUT_SECONDS", 1)
    with pytest.raises(ConnectFailed, match="ran longer than 1 s and was stopped"):
        connect.read_query(url, "SELECT count(*) FROM generate_series(1, 10000000000)")
    assert time.monotonic() - started < 5


def test_postgres_the_workspaces_own_store_is_refused(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    own = open_store(Workspace(home=tmp_path, database_url=pg_url))
    try:
        parsed = sa.make_url(pg_url)
        aliases = [
            pg_url,
            parsed.set(host="localhost").render_as_string(hide_password=False),
            parsed.set(port=None).render_as_string(hide_password=False),
        ]
        for alias in aliases:
            with pytest.raises(ConnectFailed, match="own database"):
                connect.save_connection(own, "self", alias, ADMIN)
        # a name the URL check cannot see through: the server's identity still says it is the same database
        own.set_setting("connections.self", {"url": pg_url.replace("127.0.0.1", "[::ffff:127.0.0.1]")}, "t")
        with monkeypatch.context() as patched:
            patched.setattr(connect, "_checked_source", lambda store, url: url)
            with pytest.raises(ConnectFailed, match="own database"):
                connect.list_tables(own, "self")
        other = connect.save_connection(own, "other", PG.format(password="x"), ADMIN)
        assert other.url.endswith("/test")
    finally:
        own.engine.dispose()


@pytest.fixture
def maria_victim() -> Iterator[tuple[sa.Engine, str]]:
    engine = _server(MARIADB)
    table = f"tl_victim_{uuid.uuid4().hex[:10]}"
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE TABLE {table} (team_id VARCHAR(10), name VARCHAR(40))"))
        conn.execute(sa.text(f"INSERT INTO {table} VALUES ('PAY', 'Payments'), ('WEB', 'Web')"))
    yield engine, table
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
    engine.dispose()


def test_mariadb_writes_are_refused_and_sleep_is_stopped(
    store: Store, maria_victim: tuple[sa.Engine, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, victim = maria_victim
    connect.save_connection(store, "maria", MARIADB, ADMIN)
    for sql in (
        f"SELECT 'a\\'' AS team_id, 'n' AS name; DELETE FROM {victim} #'",
        f"SELECT 1 AS team_id # '\nFROM dual; DELETE FROM {victim}",
        f"DELETE FROM {victim}",
    ):
        with pytest.raises(ConnectFailed, match="Only"):
            connect.set_mapping(store, "maria", SourceMapping("teams", query=sql), ADMIN)
    url = sa.make_url(MARIADB)
    with pytest.raises(Exception, match="1064"):  # past the guard: the session runs one statement only
        connect._read_mysql(url, f"SELECT 1 AS a; DELETE FROM {victim}")
    assert _count(engine, victim) == 2
    started = time.monotonic()
    with pytest.raises(ConnectFailed, match="`sleep` is not allowed"):
        connect.read_query(url, "SELECT SLEEP(3) AS team_id")
    monkeypatch.setattr(connect, "STATEMENT_TIMEOUT_SECONDS", 1)
    slow = (
        "SELECT count(*) AS n FROM information_schema.columns a, information_schema.columns b, "
        + "information_schema.columns c"
    )
    with pytest.raises(ConnectFailed, match="ran longer than 1 s and was stopped"):
        connect.read_query(url, slow)
    assert time.monotonic() - started < 5
    assert connect.read_query(url, f"SELECT team_id, name FROM {victim} ORDER BY team_id")["team_id"].to_list() == [
        "PAY",
        "WEB",
    ]


def test_mariadb_a_write_past_the_guard_is_refused_by_the_read_only_transaction(
    maria_victim: tuple[sa.Engine, str],
) -> None:
    engine, victim = maria_victim
    with pytest.raises(Exception, match=r"1792|READ ONLY"):
        connect._read_mysql(sa.make_url(MARIADB), f"DELETE FROM {victim}")
    assert _count(engine, victim) == 2


def test_mariadb_the_workspaces_own_server_is_refused(tmp_path: Path) -> None:
    _server(MARIADB).dispose()
    own = Store.__new__(Store)  # only its workspace is consulted before connecting
    own.workspace = Workspace(home=tmp_path, database_url="mysql+pymysql://root@localhost:3306/throughline")
    with pytest.raises(ConnectFailed, match="own database"):
        connect._checked_source(own, sa.make_url(MARIADB))


def _sqlite_source(folder: Path, name: str = "source.db") -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / name
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE teams (team_id TEXT, name TEXT)")
        db.execute("INSERT INTO teams VALUES ('PAY', 'Payments'), ('WEB', 'Web')")
    return path


def test_sqlite_sources_are_off_unless_a_folder_is_allowed(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = _sqlite_source(tmp_path / "sources")
    monkeypatch.delenv(connect.SQLITE_SOURCES_ENV, raising=False)
    with pytest.raises(ConnectFailed, match="SQLite sources are off on this server") as off:
        connect.save_connection(store, "lite", f"sqlite:///{source}", ADMIN)
    assert str(tmp_path) not in off.value.message
    monkeypatch.setenv(connect.SQLITE_SOURCES_ENV, str(tmp_path / "sources"))
    outside = {}
    for path in ("/etc/passwd", "/no/such/file.db", str(tmp_path / "elsewhere.db"), "../workspace/t.db"):
        with pytest.raises(ConnectFailed) as refused:
            connect.save_connection(store, "lite", f"sqlite:///{path}", ADMIN)
        outside[path] = refused.value.message
        assert "/" not in refused.value.message.replace("sqlite:///", "")
    assert outside["/etc/passwd"] == outside["/no/such/file.db"] == outside[str(tmp_path / "elsewhere.db")]
    assert "own database" in outside["../workspace/t.db"]
    assert connect.save_connection(store, "lite", "sqlite:///source.db", ADMIN).url == "sqlite:///source.db"
    assert connect.list_tables(store, "lite") == ["teams"]


def test_sqlite_the_workspaces_own_file_is_refused_even_through_a_symlink(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sources = tmp_path / "sources"
    sources.mkdir()
    (sources / "innocent.db").symlink_to(store.workspace.home / "t.db")
    monkeypatch.setenv(connect.SQLITE_SOURCES_ENV, os.pathsep.join([str(sources), str(store.workspace.home)]))
    for url in ("sqlite:///innocent.db", f"sqlite:///{store.workspace.home / 't.db'}"):
        with pytest.raises(ConnectFailed, match="own database"):
            connect.save_connection(store, "self", url, ADMIN)


def test_sqlite_sources_are_opened_read_only_and_long_queries_are_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = _sqlite_source(tmp_path / "sources")
    url = sa.make_url(f"sqlite:///{source}")
    with pytest.raises(sqlite3.OperationalError, match=r"readonly|read-only"):
        connect._read_sqlite(url, "DELETE FROM teams")  # past the guard: the file is opened read-only
    with pytest.raises(sqlite3.ProgrammingError, match="one statement"):
        connect._read_sqlite(url, "SELECT 1; DELETE FROM teams")
    with sqlite3.connect(source) as db:
        assert db.execute("SELECT count(*) FROM teams").fetchone() == (2,)
    monkeypatch.setattr(connect, "STATEMENT_TIMEOUT_SECONDS", 1)
    endless = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r"
    started = time.monotonic()
    with pytest.raises(ConnectFailed, match="ran longer than 1 s"):
        connect.read_query(url, endless)
    assert time.monotonic() - started < 5


def test_a_delivery_lead_may_refresh_but_not_add_or_map_a_connection(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(connect.SQLITE_SOURCES_ENV, str(tmp_path / "sources"))
    _sqlite_source(tmp_path / "sources")
    with pytest.raises(ConnectFailed, match="Only an admin may add or change a connection"):
        connect.save_connection(store, "lite", "sqlite:///source.db", LEAD)
    connect.save_connection(store, "lite", "sqlite:///source.db", ADMIN)
    with pytest.raises(ConnectFailed, match="Only an admin may map"):
        connect.set_mapping(store, "lite", SourceMapping("teams", query="SELECT team_id, name FROM teams"), LEAD)
    with pytest.raises(ConnectFailed, match="Only an admin may map"):
        connect.use_preset(store, "lite", "devlake", LEAD)
    assert connect.get_connection(store, "lite").mappings == ()
    connect.set_mapping(store, "lite", SourceMapping("teams", query="SELECT team_id, name FROM teams"), ADMIN)
    assert connect.preview(store, "lite", "teams")["team_id"].to_list() == ["PAY", "WEB"]
    record = connect.refresh(store, "lite", actor=LEAD.username)
    assert record.counts["teams"]["added"] == 2
    assert "connection lite" in store.audit_log(limit=5).filter(pl.col("action") == "import.run")["detail"][0]


def test_the_cli_as_a_delivery_lead_cannot_add_or_map_a_connection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from core import users
    from core.cli import commands as cli

    home = tmp_path / "workspace"
    home.mkdir(exist_ok=True)
    monkeypatch.setenv("THROUGHLINE_HOME", str(home))
    monkeypatch.delenv("THROUGHLINE_DATABASE_URL", raising=False)
    monkeypatch.setenv(connect.SQLITE_SOURCES_ENV, str(tmp_path / "sources"))
    _sqlite_source(tmp_path / "sources")
    users.create_user(
        open_store(Workspace(home, f"sqlite:///{home / 'throughline.db'}")), "dee", "Dee", "delivery_lead", "x" * 16
    )
    assert cli.main(["connect", "add", "lite", "sqlite:///source.db", "--as", "dee"]) == 1
    assert "Only an admin may add or change a connection" in capsys.readouterr().err
    assert cli.main(["connect", "add", "lite", "sqlite:///source.db"]) == 0
    assert cli.main(["connect", "map", "lite", "teams", "--query", "SELECT * FROM teams", "--as", "dee"]) == 1
    assert "Only an admin may map" in capsys.readouterr().err
    assert cli.main(["connect", "map", "lite", "teams", "--query", "SELECT * FROM teams"]) == 0
    assert cli.main(["connect", "refresh", "lite", "--as", "dee"]) == 0
    assert "teams: 2 added" in capsys.readouterr().out

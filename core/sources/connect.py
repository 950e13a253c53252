"""Database connections: map a table or a read-only query onto an entity, preview it, import it now or refresh.

A connection is a SQLAlchemy URL (PostgreSQL, MySQL/MariaDB via pymysql, SQLite, or any
dialect installed). Its URL is kept in the workspace setting ``connections.<name>`` *without*
the password; the password lives only in the local secrets file (section ``connections``)
and never appears in settings, logs, the audit trail or messages.

Only reads are accepted, and only by admins (``core.access.may_manage_connections``); delivery
leads may preview and refresh what an admin mapped. A query is parsed with sqlglot in the
source's dialect and must be one ``SELECT``/``WITH`` statement with nothing that writes and no
call to a server function of :data:`DENIED_FUNCTIONS`. It then runs as exactly that one
statement (PostgreSQL: a prepared statement, which the server refuses to chain; MySQL/MariaDB:
a session without multi-statements; SQLite: one prepared statement) inside a read-only
transaction with a statement timeout. The workspace's own database is never a source, and
SQLite files are read only from the folder named by ``THROUGHLINE_SQLITE_SOURCES`` (off by
default). An import from a connection is one atomic write recorded in the import history,
exactly like a file, so it can be undone.

The ``devlake`` preset (``core.sources.devlake``) maps an Apache DevLake database's domain tables
onto pull requests, deployments, incidents, features, work items and teams, reading them through
the same guarded ``read_query``.
"""

from __future__ import annotations

import os
import re
import socket
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import polars as pl
import sqlalchemy as sa
import sqlglot
from sqlalchemy.pool import NullPool
from sqlglot import exp

from core.access import Viewer, may_manage_connections
from core.importing.errors import ImportFailed
from core.importing.formats.base import ROW, Mapped, with_rows
from core.importing.history import ImportRecord, Progress, run_import
from core.importing.options import import_options
from core.importing.plan import ImportPlan, plan_frames
from core.model.schema import ENTITIES
from core.sources.devlake import devlake_frames
from core.store.database import Store
from core.store.workspace import read_secrets, write_secret

SETTING_PREFIX = "connections."
SECRETS_SECTION = "connections"
PREVIEW_ROWS = 20
PRESETS = ("devlake",)

SQLITE_SOURCES_ENV = "THROUGHLINE_SQLITE_SOURCES"
"""Environment variable naming the folder(s) SQLite sources may be read from (``os.pathsep``-separated)."""
STATEMENT_TIMEOUT_SECONDS = 60
"""A source query running longer than this is stopped by the database (SQLite: by the reader)."""
DIALECTS = {"postgresql": "postgres", "mysql": "mysql", "sqlite": "sqlite"}
"""Database family → the sqlglot dialect a query of that family is parsed in."""


@dataclass(frozen=True)
class ServerFunction:
    """A server function a mapping query may not call, and why (``prefix``: every name starting so)."""

    name: str
    reason: str
    prefix: bool = False


_WAITS = "it makes the database server wait"
_FILES = "it reads or writes files on the database server"
_OTHER_SQL = "it runs SQL given as text, which cannot be checked"
_SESSIONS = "it acts on other sessions or the server itself"
_LOCKS = "it takes locks other sessions wait on"
_REACH = "it reaches another database or runs programs"

DENIED_FUNCTIONS: tuple[ServerFunction, ...] = (
    ServerFunction("pg_sleep", _WAITS, prefix=True),
    ServerFunction("sleep", _WAITS),
    ServerFunction("benchmark", _WAITS),
    ServerFunction("waitfor", _WAITS),
    ServerFunction("master_pos_wait", _WAITS),
    ServerFunction("source_pos_wait", _WAITS),
    ServerFunction("master_gtid_wait", _WAITS),
    ServerFunction("wait_for_executed_gtid_set", _WAITS),
    ServerFunction("wait_until_sql_thread_after_gtids", _WAITS),
    ServerFunction("pg_read_file", _FILES),
    ServerFunction("pg_read_binary_file", _FILES),
    ServerFunction("pg_stat_file", _FILES),
    ServerFunction("pg_ls_", _FILES, prefix=True),
    ServerFunction("pg_file_", _FILES, prefix=True),
    ServerFunction("lo_", _FILES, prefix=True),
    ServerFunction("loread", _FILES),
    ServerFunction("lowrite", _FILES),
    ServerFunction("load_file", _FILES),
    ServerFunction("readfile", _FILES),
    ServerFunction("writefile", _FILES),
    ServerFunction("edit", _FILES),
    ServerFunction("load_extension", _FILES),
    ServerFunction("fts3_tokenizer", _FILES),
    ServerFunction("query_to_xml", _OTHER_SQL, prefix=True),
    ServerFunction("cursor_to_xml", _OTHER_SQL, prefix=True),
    ServerFunction("ts_stat", _OTHER_SQL),
    ServerFunction("pg_terminate_backend", _SESSIONS),
    ServerFunction("pg_cancel_backend", _SESSIONS),
    ServerFunction("pg_reload_conf", _SESSIONS),
    ServerFunction("pg_rotate_logfile", _SESSIONS),
    ServerFunction("pg_switch_wal", _SESSIONS),
    ServerFunction("pg_promote", _SESSIONS),
    ServerFunction("pg_create_", _SESSIONS, prefix=True),
    ServerFunction("pg_drop_replication_slot", _SESSIONS),
    ServerFunction("pg_replication_", _SESSIONS, prefix=True),
    ServerFunction("pg_logical_", _SESSIONS, prefix=True),
    ServerFunction("pg_notify", _SESSIONS),
    ServerFunction("set_config", _SESSIONS),
    ServerFunction("pg_advisory_", _LOCKS, prefix=True),
    ServerFunction("pg_try_advisory_", _LOCKS, prefix=True),
    ServerFunction("get_lock", _LOCKS),
    ServerFunction("release_lock", _LOCKS),
    ServerFunction("release_all_locks", _LOCKS),
    ServerFunction("dblink", _REACH, prefix=True),
    ServerFunction("xp_", _REACH, prefix=True),
    ServerFunction("sys_exec", _REACH),
    ServerFunction("sys_eval", _REACH),
    ServerFunction("openrowset", _REACH),
    ServerFunction("opendatasource", _REACH),
    ServerFunction("openquery", _REACH),
    ServerFunction("dbms_", _REACH, prefix=True),
    ServerFunction("utl_", _REACH, prefix=True),
)
"""Server functions refused in any mapping query, on every dialect, found in the parsed query and in its raw text."""

_WRITES: tuple[tuple[type[exp.Expression], str], ...] = (
    (exp.Insert, "INSERT"),
    (exp.Update, "UPDATE"),
    (exp.Delete, "DELETE"),
    (exp.Merge, "MERGE"),
    (exp.Create, "CREATE"),
    (exp.Drop, "DROP"),
    (exp.Alter, "ALTER"),
    (exp.TruncateTable, "TRUNCATE"),
    (exp.Copy, "COPY"),
    (exp.Into, "SELECT … INTO"),
    (exp.Lock, "FOR UPDATE / FOR SHARE"),
    (exp.Set, "SET"),
    (exp.Pragma, "PRAGMA"),
    (exp.Transaction, "BEGIN"),
    (exp.Commit, "COMMIT"),
    (exp.Rollback, "ROLLBACK"),
    (exp.Attach, "ATTACH"),
    (exp.Detach, "DETACH"),
    (exp.Grant, "GRANT"),
    (exp.Revoke, "REVOKE"),
    (exp.Use, "USE"),
    (exp.LoadData, "LOAD DATA"),
    (exp.Kill, "KILL"),
    (exp.Analyze, "ANALYZE"),
    (exp.Execute, "EXECUTE"),
    (exp.Declare, "DECLARE"),
    (exp.Cache, "CACHE"),
    (exp.Uncache, "UNCACHE"),
    (exp.Refresh, "REFRESH"),
    (exp.Command, "a command"),
)
"""Statement kinds refused anywhere in a mapping query (top level, CTE or subquery), with the word the message uses."""


class ConnectFailed(ImportFailed):
    """A connection could not be made, or a query was refused or failed; the message is for the user."""


@dataclass(frozen=True)
class SourceMapping:
    """Where one entity's rows come from: a table or a read-only query, and its column names."""

    entity: str
    table: str | None = None
    query: str | None = None
    columns: Mapping[str, str] = field(default_factory=dict)
    """canonical column → source column; unmapped canonical columns are taken by the same name."""


@dataclass(frozen=True)
class Connection:
    """A saved database connection (its URL never holds the password)."""

    name: str
    url: str
    mappings: tuple[SourceMapping, ...] = ()
    preset: str | None = None

    @property
    def dialect(self) -> str:
        """The SQLAlchemy backend name (postgresql, mysql, sqlite ...)."""
        return sa.make_url(self.url).get_backend_name()


def save_connection(store: Store, name: str, url: str, viewer: Viewer) -> Connection:
    """Save connection ``name`` (admins only): the URL without its password in settings, the password in secrets."""
    _require_admin(viewer, "add or change a connection")
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,60}", name):
        raise ConnectFailed("A connection name uses letters, digits, '-' and '_' only (at most 60).")
    parsed = _checked_source(store, _parse_url(url))
    if parsed.password is not None:
        write_secret(store.workspace.secrets_path, name, str(parsed.password), section=SECRETS_SECTION)
    existing = _load(store, name)
    connection = Connection(
        name,
        _without_password(_parse_url(url)),
        existing.mappings if existing else (),
        existing.preset if existing else None,
    )
    _store(store, connection, viewer.username)
    return connection


def get_connection(store: Store, name: str) -> Connection:
    """The saved connection ``name``."""
    connection = _load(store, name)
    if connection is None:
        raise ConnectFailed(f"There is no connection `{name}`; add it first.")
    return connection


def list_connections(store: Store) -> list[Connection]:
    """Every saved connection, by name."""
    return [c for key in sorted(store.settings(SETTING_PREFIX)) if (c := _load(store, key[len(SETTING_PREFIX) :]))]


def set_mapping(store: Store, name: str, mapping: SourceMapping, viewer: Viewer) -> Connection:
    """Map ``mapping.entity`` of connection ``name`` to a table or read-only query (admins only; checked now)."""
    _require_admin(viewer, "map what a connection reads")
    connection = get_connection(store, name)
    if mapping.entity not in ENTITIES:
        raise ConnectFailed(f"`{mapping.entity}` is not an entity; choose one of {', '.join(ENTITIES)}.")
    if (mapping.table is None) == (mapping.query is None):
        raise ConnectFailed("Map the entity to either a table or a query.")
    if mapping.query is not None:
        check_read_only(mapping.query, connection.dialect)
    else:
        _table_sql(_source_url(store, connection), str(mapping.table))
    mappings = (*(m for m in connection.mappings if m.entity != mapping.entity), mapping)
    updated = Connection(connection.name, connection.url, mappings, None)
    _store(store, updated, viewer.username)
    return updated


def use_preset(store: Store, name: str, preset: str, viewer: Viewer) -> Connection:
    """Map connection ``name`` with a preset (``devlake``) instead of per-entity mappings (admins only)."""
    _require_admin(viewer, "map what a connection reads")
    if preset not in PRESETS:
        raise ConnectFailed(f"`{preset}` is not a preset; presets: {', '.join(PRESETS)}.")
    connection = get_connection(store, name)
    updated = Connection(connection.name, connection.url, (), preset)
    _store(store, updated, viewer.username)
    return updated


def test_connection(store: Store, name: str) -> str:
    """Connect and return the server's description, or ``ConnectFailed`` saying why not."""
    return test_url(_source_url(store, get_connection(store, name)))


def test_url(url: str | sa.URL) -> str:
    """Connect to ``url`` and return the server's dialect and version."""
    parsed = _parse_url(url) if isinstance(url, str) else url
    engine = _engine(parsed)
    try:
        with engine.connect() as conn:
            version = ".".join(str(p) for p in (conn.dialect.server_version_info or ()))
        return f"{parsed.get_backend_name()} {version}".strip()
    except Exception as error:
        raise ConnectFailed(f"Could not connect to {_without_password(parsed)}: {_redact(error, parsed)}") from None
    finally:
        engine.dispose()


def list_tables(store: Store, name: str) -> list[str]:
    """The tables and views the connection can read (``schema.table`` outside the default schema)."""
    return _tables(_source_url(store, get_connection(store, name)))


def check_read_only(sql: str, dialect: str | None = None) -> str:
    """``sql`` as it will run, when it is one read statement in ``dialect`` (a family); else ``ConnectFailed``."""
    text = re.sub(r"[\s;]+$", "", sql).strip()
    if not text:
        raise ConnectFailed("The query is empty.")
    _refuse_denied_text(text)
    read = DIALECTS.get(_family(dialect) if dialect else "")
    try:
        statements = [s for s in sqlglot.parse(text, read=read) if s is not None]
    except Exception as error:
        first = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
        raise ConnectFailed(f"Only a query that parses is accepted; this one does not: {first}") from None
    if len(statements) != 1:
        raise ConnectFailed(
            f"Only one statement is allowed: the query holds {len(statements)} statements; remove the `;` between them."
        )
    statement = statements[0]
    if not isinstance(statement, exp.Query | exp.Subquery):
        raise ConnectFailed("Only read queries are accepted: the query must be one SELECT or WITH statement.")
    for node in statement.walk():
        for kind, word in _WRITES:
            if isinstance(node, kind):
                raise ConnectFailed(f"Only read queries are accepted: {word} is not allowed in a query.")
        if isinstance(node, exp.Func):
            _refuse_denied_function(node.name if isinstance(node, exp.Anonymous) else node.sql_name())
    return text


def read_query(url: str | sa.URL, sql: str, limit: int | None = None) -> pl.DataFrame:
    """The rows of a read-only query: checked, then run as that one statement in a read-only, timed transaction."""
    parsed = _parse_url(url) if isinstance(url, str) else url
    family = _family(parsed.get_backend_name())
    statement = check_read_only(sql, family)
    if limit is not None:
        statement = f"SELECT * FROM (\n{statement}\n) tl_preview LIMIT {int(limit)}"
    readers = {"postgresql": _read_postgresql, "mysql": _read_mysql, "sqlite": _read_sqlite}
    if family not in readers:
        raise ConnectFailed(_UNSUPPORTED)
    try:
        names, rows = readers[family](parsed, statement)
    except ConnectFailed:
        raise
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as error:  # a driver's native panic is a BaseException too: it must stay a refused read
        raise ConnectFailed(_query_failure(error, parsed)) from None
    if len(set(names)) != len(names):
        raise ConnectFailed("The query returns two columns of the same name; give each column its own name (AS …).")
    if not rows:
        return pl.DataFrame(schema={n: pl.String for n in names})
    try:
        return pl.DataFrame([tuple(r) for r in rows], schema=names, orient="row", infer_schema_length=None)
    except Exception as error:
        raise ConnectFailed(f"The query's rows could not be read as columns: {_redact(error, parsed)}") from None


def preview(store: Store, name: str, entity: str, limit: int = PREVIEW_ROWS) -> pl.DataFrame:
    """The first rows ``entity`` would receive from connection ``name``, in canonical columns."""
    connection = get_connection(store, name)
    mapped = _mapped(store, connection, limit)
    if entity not in mapped.frames:
        raise ConnectFailed(f"Connection `{name}` has no mapping for {entity}.")
    return mapped.frames[entity].drop(ROW).head(limit)


def plan_refresh(store: Store, name: str) -> ImportPlan:
    """The validated import of every mapped entity of connection ``name`` (nothing written yet)."""
    connection = get_connection(store, name)
    mapped = _mapped(store, connection, None)
    return plan_frames(mapped, f"connection {name}", f"connection:{connection.preset or 'mapping'}", store=store)


def refresh(
    store: Store, name: str, actor: str | None, progress: Progress | None = None, *, skip_invalid: bool = False
) -> ImportRecord:
    """Import now (or refresh) every mapped entity of connection ``name`` in one atomic write."""
    return run_import(store, plan_refresh(store, name), actor, progress, skip_invalid=skip_invalid)


# -- internals ----------------------------------------------------------------------------
def _mapped(store: Store, connection: Connection, limit: int | None) -> Mapped:
    url = _source_url(store, connection)
    options = import_options(store)
    if connection.preset == "devlake":
        return devlake_frames(lambda sql: read_query(url, sql, limit), options)
    if not connection.mappings:
        raise ConnectFailed(f"Connection `{connection.name}` maps no entity yet: map a table or query first.")
    frames: dict[str, pl.DataFrame] = {}
    for mapping in connection.mappings:
        sql = mapping.query if mapping.query is not None else _table_sql(url, str(mapping.table))
        frames[mapping.entity] = with_rows(_canonical(mapping, read_query(url, sql, limit)))
    return Mapped(frames)


def _canonical(mapping: SourceMapping, frame: pl.DataFrame) -> pl.DataFrame:
    spec = ENTITIES[mapping.entity]
    lower = {c.lower(): c for c in frame.columns}
    exprs = []
    for col in spec.columns:
        source = mapping.columns.get(col.name) or lower.get(col.name.lower())
        if source is not None and source in frame.columns:
            exprs.append(pl.col(source).alias(col.name))
        elif mapping.columns.get(col.name):
            raise ConnectFailed(f"The {mapping.entity} source has no column `{mapping.columns[col.name]}`.")
    if not exprs:
        raise ConnectFailed(
            f"No column of the {mapping.entity} source matches a column of {spec.label.lower()}; map them."
        )
    frame = frame.select(exprs)
    decimals = [n for n, t in frame.schema.items() if isinstance(t, pl.Decimal)]
    return frame.with_columns(pl.col(decimals).cast(pl.Float64)) if decimals else frame


Rows = tuple[list[str], list[tuple[Any, ...]]]
_UNSUPPORTED = (
    "Only PostgreSQL, MySQL/MariaDB and SQLite sources can be read safely (read-only, one statement, time limit); "
    "use postgresql+psycopg://, mysql+pymysql:// or sqlite:///name.db."
)
_READ_ONLY_REFUSALS = ("25006", "read-only transaction", "read only transaction", "(1792")
_TIMEOUTS = ("57014", "statement timeout", "max_statement_time", "max_execution_time", "(1969", "(3024", "interrupted")


def _read_postgresql(url: sa.URL, sql: str) -> Rows:
    """Run ``sql`` as one prepared statement (the server refuses a chain) in a read-only transaction."""
    engine = _engine(url)
    try:
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            cursor.execute("SET TRANSACTION READ ONLY")
            cursor.execute(f"SET LOCAL statement_timeout = {int(STATEMENT_TIMEOUT_SECONDS * 1000)}")
            cursor.execute(f"SET LOCAL lock_timeout = {int(STATEMENT_TIMEOUT_SECONDS * 1000)}")
            cursor.execute(sql, prepare=True)
            return _fetched(cursor)
        finally:
            raw.rollback()
            raw.close()
    finally:
        engine.dispose()


def _read_mysql(url: sa.URL, sql: str) -> Rows:
    """Run ``sql`` alone (no multi-statements) in a ``START TRANSACTION READ ONLY`` with the server's time limit."""
    engine = _engine(url)
    try:
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            cursor.execute("SELECT VERSION()")
            mariadb = "mariadb" in str(cursor.fetchone()[0]).lower()
            if mariadb:
                cursor.execute(f"SET SESSION max_statement_time = {float(STATEMENT_TIMEOUT_SECONDS)}")
            else:
                cursor.execute(f"SET SESSION max_execution_time = {int(STATEMENT_TIMEOUT_SECONDS * 1000)}")
            cursor.execute("START TRANSACTION READ ONLY")
            cursor.execute(sql)
            return _fetched(cursor)
        finally:
            raw.rollback()
            raw.close()
    finally:
        engine.dispose()


def _read_sqlite(url: sa.URL, sql: str) -> Rows:
    """Run ``sql`` as one statement on the file opened read-only, stopped when it runs past the time limit."""
    conn = _sqlite_connect(Path(str(url.database)))
    deadline = time.monotonic() + STATEMENT_TIMEOUT_SECONDS
    conn.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
    try:
        return _fetched(conn.execute(sql))
    finally:
        conn.close()


def _fetched(cursor: Any) -> Rows:
    if cursor.description is None:
        raise ConnectFailed("Only read queries are accepted: the query returned no rows to import.")
    return [str(d[0]) for d in cursor.description], list(cursor.fetchall())


def _query_failure(error: BaseException, url: sa.URL) -> str:
    text = f"{getattr(error, 'sqlstate', '') or ''} {error}".lower()
    if any(marker in text for marker in _READ_ONLY_REFUSALS):
        return f"The database refused the query because it writes: {_redact(error, url)}"
    if any(marker in text for marker in _TIMEOUTS):
        return f"The query ran longer than {STATEMENT_TIMEOUT_SECONDS} s and was stopped; narrow it down."
    if "one statement at a time" in text or "multiple commands" in text:
        return "Only one statement is allowed: the database saw more than one."
    return f"The query failed: {_redact(error, url)}"


def _tables(url: sa.URL) -> list[str]:
    engine = _engine(url)
    try:
        inspector = sa.inspect(engine)
        names = sorted([*inspector.get_table_names(), *inspector.get_view_names()])
        return names
    except Exception as error:
        raise ConnectFailed(f"Could not list the tables: {_redact(error, url)}") from None
    finally:
        engine.dispose()


def _table_sql(url: sa.URL, table: str) -> str:
    if table not in _tables(url):
        raise ConnectFailed(f"There is no table or view `{table}` in this database.")
    return f"SELECT * FROM {url.get_dialect()().identifier_preparer.quote(table)}"


def _full_url(store: Store, connection: Connection) -> sa.URL:
    url = sa.make_url(connection.url)
    password = read_secrets(store.workspace.secrets_path).get(SECRETS_SECTION, {})
    secret = password.get(connection.name) if isinstance(password, dict) else None
    return url.set(password=str(secret)) if secret is not None else url


def _source_url(store: Store, connection: Connection) -> sa.URL:
    """The connection's URL with its password, once checked to be a source this workspace may read."""
    url = _checked_source(store, _full_url(store, connection))
    both_postgres = {_family(url.get_backend_name()), _family(_store_url(store).get_backend_name())} == {"postgresql"}
    if both_postgres and _postgres_identity(_engine(url)) == _postgres_identity(store.engine, dispose=False):
        raise ConnectFailed(_OWN_STORE)
    return url


_OWN_STORE = "A connection cannot read this workspace's own database; connect the database the data comes from."
_LOCAL_HOSTS = frozenset({"", "localhost", "127.0.0.1", "::1", "0.0.0.0", "ip6-localhost"})
_DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306}


def _checked_source(store: Store, url: sa.URL) -> sa.URL:
    """``url`` when it is a supported family, not the workspace's store and (SQLite) in the allowed folder."""
    family = _family(url.get_backend_name())
    if family not in DIALECTS:
        raise ConnectFailed(_UNSUPPORTED)
    own = _store_url(store)
    if family == "sqlite":
        path = _sqlite_source(url.database, store)
        return url.set(database=str(path), query={})
    same_database = family == "mysql" or _postgres_database(url) == _postgres_database(own)
    if _family(own.get_backend_name()) == family and _same_server(url, own) and same_database:
        raise ConnectFailed(_OWN_STORE)
    return url


def _sqlite_source(database: str | None, store: Store) -> Path:
    """The resolved path of an SQLite source file inside the allowed folder; messages name no server path."""
    folders = [f for f in os.environ.get(SQLITE_SOURCES_ENV, "").split(os.pathsep) if f.strip()]
    if not folders:
        raise ConnectFailed(
            f"SQLite sources are off on this server: an administrator can allow a folder of SQLite files "
            f"with the {SQLITE_SOURCES_ENV} setting."
        )
    if not database or database == ":memory:" or database.startswith("file:"):
        raise ConnectFailed("An SQLite connection names a file in the allowed folder: sqlite:///name.db.")
    allowed = [Path(f).expanduser().resolve() for f in folders]
    given = Path(database).expanduser()
    path = (given if given.is_absolute() else allowed[0] / given).resolve()
    own = _store_url(store)
    home = store.workspace.home.resolve()
    if path.is_relative_to(home) or (
        own.get_backend_name() == "sqlite" and own.database and _same_file(path, Path(own.database))
    ):
        raise ConnectFailed(_OWN_STORE)
    if not any(path.is_relative_to(folder) for folder in allowed):
        raise ConnectFailed("This SQLite file is not in the folder allowed for SQLite sources.")
    if not path.is_file():
        raise ConnectFailed(f"There is no SQLite file `{given.name}` in the folder allowed for SQLite sources.")
    return path


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def _same_server(a: sa.URL, b: sa.URL) -> bool:
    family = _family(a.get_backend_name())
    port_a, port_b = (u.port or _DEFAULT_PORTS.get(family) for u in (a, b))
    return port_a == port_b and bool(_addresses(a) & _addresses(b))


def _addresses(url: sa.URL) -> set[str]:
    host = (url.host or "").strip("[]").lower()
    if host in _LOCAL_HOSTS or host.startswith("127.") or host.startswith("/") or "host" in url.query:
        return {"local"}
    found = {host}
    try:
        for *_, sockaddr in socket.getaddrinfo(host, None):
            address = str(sockaddr[0])
            found.add("local" if address.startswith("127.") or address == "::1" else address)
    except OSError:
        pass
    return found


def _postgres_identity(engine: sa.Engine, *, dispose: bool = True) -> tuple[object, ...] | None:
    """The database and server start time of a PostgreSQL engine: equal for two URLs of the same database."""
    try:
        with engine.connect() as conn:
            row = conn.exec_driver_sql("SELECT current_database(), pg_postmaster_start_time()").one()
        return tuple(row)
    except Exception:
        return None
    finally:
        if dispose:
            engine.dispose()


def _postgres_database(url: sa.URL) -> str:
    """The database a PostgreSQL URL opens: named, else the user's own (the server's default)."""
    return url.database or url.username or "postgres"


def _store_url(store: Store) -> sa.URL:
    return sa.make_url(store.workspace.database_url)


def _family(backend: str) -> str:
    return "mysql" if backend in ("mysql", "mariadb") else backend


def _require_admin(viewer: Viewer, doing: str) -> None:
    if not may_manage_connections(viewer):
        raise ConnectFailed(f"Only an admin may {doing}; ask an admin. Delivery leads may preview and refresh.")


def _refuse_denied_function(name: str) -> None:
    lowered = name.lower().rsplit(".", 1)[-1]
    for rule in DENIED_FUNCTIONS:
        if lowered == rule.name or (rule.prefix and lowered.startswith(rule.name)):
            raise ConnectFailed(f"Only read queries are accepted: `{lowered}` is not allowed: {rule.reason}.")


_NAME_GAP = r"[\"`\]]?\s*(?:(?:/\*.*?\*/|--[^\n]*\n|#[^\n]*\n)\s*)*\("
_DENIED_CALL = re.compile(
    r"(?<![\w$])("
    + "|".join(re.escape(r.name) + (r"\w*" if r.prefix else "") for r in DENIED_FUNCTIONS)
    + r")"
    + _NAME_GAP,
    re.I | re.S,
)


def _refuse_denied_text(text: str) -> None:
    """Refuse denied calls and file writes seen in the raw text, whatever a parser makes of its quotes."""
    found = _DENIED_CALL.search(text)
    if found:
        _refuse_denied_function(found.group(1))
    if re.search(r"(?i)\binto\s+(?:outfile|dumpfile)\b", text):
        raise ConnectFailed("Only read queries are accepted: SELECT … INTO OUTFILE is not allowed in a query.")
    if re.search(r"(?i)(?<![\w$])u&['\"]", text):
        raise ConnectFailed("Only plain names and strings are accepted: remove the U& escape.")


def _parse_url(url: str | sa.URL) -> sa.URL:
    try:
        parsed = sa.make_url(url)
        parsed.get_dialect()
    except Exception as error:
        raise ConnectFailed(
            f"Not a usable database URL ({type(error).__name__}): use e.g. "
            "postgresql+psycopg://user:password@host:5432/db"
        ) from None
    return parsed


def _without_password(url: sa.URL) -> str:
    plain = sa.URL.create(url.drivername, url.username, None, url.host, url.port, url.database, url.query)
    return plain.render_as_string(hide_password=False)


def _engine(url: sa.URL) -> sa.Engine:
    """An engine that reads ``url`` without pooling, sessions read-only by default, with timeouts."""
    family = _family(url.get_backend_name())
    if family == "sqlite":
        path = Path(str(url.database))
        return sa.create_engine("sqlite://", creator=lambda: _sqlite_connect(path), poolclass=NullPool)
    if family == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    elif family == "mysql":
        url = url.set(drivername=f"{url.get_backend_name()}+pymysql")
    else:
        raise ConnectFailed(_UNSUPPORTED)
    return sa.create_engine(url, poolclass=NullPool, connect_args=_timeouts(url))


def _timeouts(url: sa.URL) -> dict[str, Any]:
    """Connect arguments: a connect timeout, sessions read-only by default and a statement time limit."""
    if _family(url.get_backend_name()) == "postgresql":
        milliseconds = int(STATEMENT_TIMEOUT_SECONDS * 1000)
        return {
            "connect_timeout": 10,
            "options": f"-c default_transaction_read_only=on -c statement_timeout={milliseconds}",
        }
    return {
        "connect_timeout": 10,
        "read_timeout": STATEMENT_TIMEOUT_SECONDS + 30,
        "init_command": "SET SESSION TRANSACTION READ ONLY",
    }


def _sqlite_connect(path: Path) -> sqlite3.Connection:
    """The SQLite file at ``path`` opened read-only, with writes refused by the connection as well."""
    conn = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True, check_same_thread=False)
    conn.execute("PRAGMA query_only = 1")
    return conn


def _redact(error: BaseException, url: sa.URL) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if url.password:
        text = text.replace(str(url.password), "***")
    if url.get_backend_name() == "sqlite" and url.database:
        text = text.replace(str(url.database), Path(str(url.database)).name)
    return text[:300]


def _load(store: Store, name: str) -> Connection | None:
    raw = store.get_setting(SETTING_PREFIX + name)
    if not isinstance(raw, dict):
        return None
    mappings = tuple(
        SourceMapping(m["entity"], m.get("table"), m.get("query"), dict(m.get("columns") or {}))
        for m in raw.get("mappings", ())
    )
    return Connection(name, str(raw["url"]), mappings, raw.get("preset"))


def _store(store: Store, connection: Connection, actor: str | None) -> None:
    value = {
        "url": connection.url,
        "preset": connection.preset,
        "mappings": [{**asdict(m), "columns": dict(m.columns)} for m in connection.mappings],
    }
    store.set_setting(SETTING_PREFIX + connection.name, value, actor)


def has_password(store: Store, name: str) -> bool:
    """True when the connection ``name`` has a password kept in the workspace's secrets."""
    section = read_secrets(store.workspace.secrets_path).get(SECRETS_SECTION, {})
    return isinstance(section, dict) and name in section

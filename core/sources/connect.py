"""Database connections: map a table or a read-only query onto an entity, preview it, import it now or refresh.

A connection is a SQLAlchemy URL (PostgreSQL, MySQL/MariaDB via pymysql, SQLite, or any
dialect installed). Its URL is kept in the workspace setting ``connections.<name>`` *without*
the password; the password lives only in the local secrets file (section ``connections``)
and never appears in settings, logs, the audit trail or messages.

Only reads are accepted: a query must be a single ``SELECT`` or ``WITH`` statement (no
chained statements, no data-changing keywords), and it runs in a read-only session where the
dialect has one (PostgreSQL, MySQL/MariaDB; SQLite is opened read-only). Rows are fetched with
ConnectorX (PostgreSQL, MySQL/MariaDB) or ADBC (SQLite) into Arrow, with SQLAlchemy as the
fallback. An import from a connection is one atomic write recorded in the import history,
exactly like a file, so it can be undone.

The ``devlake`` preset maps an Apache DevLake database's domain tables (``pull_requests``,
``pull_request_commits``, ``pull_request_comments``, ``cicd_deployment_commits``,
``incidents``, ``issues``) onto pull requests, deployments, incidents, features and work items.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import sqlalchemy as sa

from core.importing import values as v
from core.importing.errors import ImportFailed
from core.importing.formats.base import ROW, Mapped, people_from, with_rows
from core.importing.history import ImportRecord, Progress, run_import
from core.importing.options import ImportOptions, options_from_settings
from core.importing.plan import ImportPlan, plan_frames
from core.model.schema import ENTITIES
from core.store.database import Store
from core.store.workspace import read_secrets, write_secret

SETTING_PREFIX = "connections."
SECRETS_SECTION = "connections"
PREVIEW_ROWS = 20
PRESETS = ("devlake",)

_WRITE_WORDS = (
    "insert",
    "update",
    "delete",
    "merge",
    "upsert",
    "drop",
    "create",
    "alter",
    "truncate",
    "grant",
    "revoke",
    "copy",
    "call",
    "exec",
    "execute",
    "into",
    "lock",
    "vacuum",
    "attach",
    "detach",
    "pragma",
)


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


def save_connection(store: Store, name: str, url: str, actor: str | None) -> Connection:
    """Save connection ``name``: the URL without its password in settings, the password in the secrets file."""
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,60}", name):
        raise ConnectFailed("A connection name uses letters, digits, '-' and '_' only (at most 60).")
    parsed = _parse_url(url)
    if parsed.password is not None:
        write_secret(store.workspace.secrets_path, name, str(parsed.password), section=SECRETS_SECTION)
    existing = _load(store, name)
    connection = Connection(
        name, _without_password(parsed), existing.mappings if existing else (), existing.preset if existing else None
    )
    _store(store, connection, actor)
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


def set_mapping(store: Store, name: str, mapping: SourceMapping, actor: str | None) -> Connection:
    """Map ``mapping.entity`` of connection ``name`` to a table or read-only query (checked now)."""
    connection = get_connection(store, name)
    if mapping.entity not in ENTITIES:
        raise ConnectFailed(f"`{mapping.entity}` is not an entity; choose one of {', '.join(ENTITIES)}.")
    if (mapping.table is None) == (mapping.query is None):
        raise ConnectFailed("Map the entity to either a table or a query.")
    if mapping.query is not None:
        check_read_only(mapping.query)
    else:
        _table_sql(_full_url(store, connection), str(mapping.table))
    mappings = (*(m for m in connection.mappings if m.entity != mapping.entity), mapping)
    updated = Connection(connection.name, connection.url, mappings, None)
    _store(store, updated, actor)
    return updated


def use_preset(store: Store, name: str, preset: str, actor: str | None) -> Connection:
    """Map connection ``name`` with a preset (``devlake``) instead of per-entity mappings."""
    if preset not in PRESETS:
        raise ConnectFailed(f"`{preset}` is not a preset; presets: {', '.join(PRESETS)}.")
    connection = get_connection(store, name)
    updated = Connection(connection.name, connection.url, (), preset)
    _store(store, updated, actor)
    return updated


def test_connection(store: Store, name: str) -> str:
    """Connect and return the server's description, or ``ConnectFailed`` saying why not."""
    return test_url(_full_url(store, get_connection(store, name)))


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
    url = _full_url(store, get_connection(store, name))
    return _tables(url)


def check_read_only(sql: str) -> str:
    """``sql`` without comments and trailing semicolon when it is a single read statement; else ``ConnectFailed``."""
    text = re.sub(r"/\*.*?\*/", " ", sql, flags=re.S)
    text = re.sub(r"--[^\n]*", " ", text).strip()
    text = re.sub(r";\s*$", "", text).strip()
    scan = re.sub(r"'(?:[^']|'')*'", "''", text)
    scan = re.sub(r'"(?:[^"]|"")*"|`[^`]*`|\[[^\]]*\]', "x", scan)
    if not text:
        raise ConnectFailed("The query is empty.")
    if ";" in scan:
        raise ConnectFailed("Only one statement is allowed: remove the `;` that chains another statement.")
    if not re.match(r"(?is)^\(?\s*(select|with)\b", scan):
        raise ConnectFailed("Only read queries are accepted: the query must start with SELECT or WITH.")
    words = {w.lower() for w in re.findall(r"[A-Za-z_]+", scan)}
    found = sorted(words & set(_WRITE_WORDS))
    if found:
        raise ConnectFailed(f"Only read queries are accepted: `{found[0].upper()}` is not allowed in a query.")
    return text


def read_query(url: str | sa.URL, sql: str, limit: int | None = None) -> pl.DataFrame:
    """The rows of a read-only query, fetched in bulk (ConnectorX / ADBC, SQLAlchemy as fallback)."""
    parsed = _parse_url(url) if isinstance(url, str) else url
    statement = check_read_only(sql)
    if limit is not None:
        statement = f"SELECT * FROM ({statement}) tl_preview LIMIT {int(limit)}"
    backend = parsed.get_backend_name()
    try:
        if backend in ("postgresql", "mysql", "mariadb"):
            return _read_connectorx(parsed, statement)
        if backend == "sqlite" and parsed.database not in (None, "", ":memory:"):
            return _read_adbc_sqlite(parsed, statement)
    except ConnectFailed:
        raise
    except Exception:
        pass
    return _read_sqlalchemy(parsed, statement)


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
    url = _full_url(store, connection)
    options = options_from_settings(store.settings("import."))
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


def devlake_frames(read: Callable[[str], pl.DataFrame], options: ImportOptions) -> Mapped:
    """Throughline entities from an Apache DevLake database's domain tables."""
    prs = read(_DEVLAKE_PULL_REQUESTS)
    status = pl.col("status").cast(pl.String).str.to_lowercase()
    agents = [a.casefold() for a in options.agent_logins]
    author = pl.col("author_id").cast(pl.String)
    pull_requests = with_rows(prs).select(
        ROW,
        pl.col("pr_id").cast(pl.String),
        pl.coalesce(
            pl.col("url").cast(pl.String).str.extract(r"https?://[^/]+/(.+?)/(?:pull|-/merge_requests)/", 1),
            pl.col("repo_id").cast(pl.String),
        ).alias("repo"),
        pl.col("number").cast(pl.String),
        pl.col("title").cast(pl.String),
        pl.col("branch").cast(pl.String),
        author.alias("author_id"),
        pl.when(
            author.str.ends_with("[bot]").fill_null(False) | author.str.to_lowercase().is_in(agents).fill_null(False)
        )
        .then(pl.lit("agent"))
        .otherwise(pl.lit("human"))
        .alias("author_kind"),
        v.work_item_key(pl.col("title").cast(pl.String), pl.col("branch").cast(pl.String)).alias("work_item_key"),
        pl.when(status.is_in(["merged", "closed"])).then(status).otherwise(pl.lit("open")).alias("state"),
        "created_at",
        "merged_at",
        "first_commit_at",
        "first_review_at",
        pl.col("reviews").cast(pl.Int64),
        pl.col("merge_commit_sha").cast(pl.String),
    )
    deployments = read(_DEVLAKE_DEPLOYMENTS)
    result = pl.col("result").cast(pl.String).str.to_uppercase()
    deployments = (
        with_rows(deployments)
        .filter(result.is_in(["SUCCESS", "FAILURE", "FAILED"]))
        .select(
            ROW,
            pl.col("deployment_id").cast(pl.String),
            pl.col("service").cast(pl.String),
            pl.coalesce(
                pl.col("repo").cast(pl.String).str.extract(r"https?://[^/]+/([^/]+/[^/.]+)", 1),
                pl.col("repo").cast(pl.String),
            ).alias("repo"),
            pl.coalesce(pl.col("environment").cast(pl.String).str.to_lowercase(), pl.lit("production")).alias(
                "environment"
            ),
            pl.when(result == "SUCCESS").then(pl.lit("success")).otherwise(pl.lit("failure")).alias("status"),
            "started_at",
            "finished_at",
            pl.col("commit_sha").cast(pl.String),
        )
    )
    incidents = with_rows(read(_DEVLAKE_INCIDENTS)).with_columns(pl.col("incident_id").cast(pl.String))
    issues = with_rows(read(_DEVLAKE_ISSUES)).with_columns(
        pl.col("type").cast(pl.String).str.to_uppercase().alias("type"),
        pl.col("story_points").cast(pl.Float64, strict=False),
    )
    is_epic = pl.col("type") == "EPIC"
    issue_status = pl.col("status").cast(pl.String).str.to_uppercase()
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
    people = pl.concat([people_from(pull_requests, "author_id", "author_kind"), people_from(work_items, "assignee_id")])
    people = people.unique("person_id", keep="first", maintain_order=True)
    return Mapped(
        {
            "pull_requests": pull_requests,
            "deployments": deployments,
            "incidents": incidents,
            "features": features,
            "work_items": work_items,
        },
        fills={"people": people, "features": placeholders},
    )


_DEVLAKE_PULL_REQUESTS = """
SELECT pr.id AS pr_id, pr.url AS url, pr.base_repo_id AS repo_id, pr.pull_request_key AS number, pr.title AS title,
       pr.head_ref AS branch, pr.author_name AS author_id, pr.status AS status, pr.created_date AS created_at,
       pr.merged_date AS merged_at, pr.merge_commit_sha AS merge_commit_sha,
       (SELECT MIN(c.commit_authored_date) FROM pull_request_commits c
        WHERE c.pull_request_id = pr.id) AS first_commit_at,
       (SELECT MIN(m.created_date) FROM pull_request_comments m WHERE m.pull_request_id = pr.id) AS first_review_at,
       (SELECT COUNT(*) FROM pull_request_comments m WHERE m.pull_request_id = pr.id) AS reviews
FROM pull_requests pr
"""
_DEVLAKE_DEPLOYMENTS = """
SELECT cicd_deployment_id AS deployment_id, MAX(name) AS service, MAX(repo_url) AS repo,
       MAX(environment) AS environment, MAX(result) AS result, MIN(started_date) AS started_at,
       MAX(finished_date) AS finished_at, MAX(commit_sha) AS commit_sha
FROM cicd_deployment_commits GROUP BY cicd_deployment_id
"""
_DEVLAKE_INCIDENTS = """
SELECT id AS incident_id, title AS title, created_date AS opened_at, resolution_date AS resolved_at FROM incidents
"""
_DEVLAKE_ISSUES = """
SELECT issue_key AS work_item_key, title AS title, type AS type, status AS status, story_point AS story_points,
       created_date AS created_at, resolution_date AS resolved_at, epic_key AS feature_id, assignee_name AS assignee_id
FROM issues
"""


def _read_connectorx(url: sa.URL, sql: str) -> pl.DataFrame:
    import connectorx

    backend = url.get_backend_name()
    if backend == "postgresql":
        uri = url.set(drivername="postgresql").render_as_string(hide_password=False)
        pre = "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY"
    else:
        uri = url.set(drivername="mysql").render_as_string(hide_password=False)
        pre = "SET SESSION TRANSACTION READ ONLY"
    try:
        frame = connectorx.read_sql(uri, sql, return_type="polars", pre_execution_query=pre)
    except RuntimeError as error:
        if "read only" in str(error).lower() or "read-only" in str(error).lower():
            raise ConnectFailed(f"The database refused the query as a write: {_redact(error, url)}") from None
        raise
    return frame


def _read_adbc_sqlite(url: sa.URL, sql: str) -> pl.DataFrame:
    import adbc_driver_sqlite.dbapi as sqlite_dbapi

    path = Path(str(url.database)).resolve()
    if not path.exists():
        raise ConnectFailed(f"The SQLite file {path} does not exist.")
    with sqlite_dbapi.connect(f"file:{path}?mode=ro") as conn, conn.cursor() as cursor:
        cursor.execute(sql)
        return pl.from_arrow(cursor.fetch_arrow_table())  # type: ignore[return-value]


def _read_sqlalchemy(url: sa.URL, sql: str) -> pl.DataFrame:
    engine = _engine(url)
    backend = url.get_backend_name()
    try:
        with engine.connect() as conn:
            if backend in ("postgresql", "mysql", "mariadb"):
                conn.exec_driver_sql("SET TRANSACTION READ ONLY")
            elif backend == "sqlite":
                conn.exec_driver_sql("PRAGMA query_only = ON")
            result = conn.exec_driver_sql(sql)
            names = list(result.keys())
            rows = result.fetchall()
            conn.rollback()
    except Exception as error:
        raise ConnectFailed(f"The query failed: {_redact(error, url)}") from None
    finally:
        engine.dispose()
    if not rows:
        return pl.DataFrame(schema={n: pl.String for n in names})
    return pl.DataFrame([tuple(r) for r in rows], schema=names, orient="row", infer_schema_length=None)


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
    if url.get_backend_name() == "sqlite":
        if url.database not in (None, "", ":memory:") and not Path(str(url.database)).exists():
            raise ConnectFailed(f"The SQLite file {url.database} does not exist.")
        return sa.create_engine(url)
    return sa.create_engine(url, pool_pre_ping=True, connect_args=_timeouts(url))


def _timeouts(url: sa.URL) -> dict[str, Any]:
    backend = url.get_backend_name()
    if backend == "postgresql":
        return {"connect_timeout": 10}
    if backend in ("mysql", "mariadb"):
        return {"connect_timeout": 10}
    return {}


def _redact(error: BaseException, url: sa.URL) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if url.password:
        text = text.replace(str(url.password), "***")
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

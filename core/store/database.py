"""The workspace store: a SQLAlchemy database as the system of record, a Parquet snapshot for analytics.

Every write of entity rows is validated first and then applied in one transaction, so a
write that fails leaves what was stored before intact. After each successful write the
snapshot of the touched entities is refreshed (read back through ConnectorX where the
dialect allows) and the data version moves on; analytics only ever scan the snapshot.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core.model.records import HISTORY_SCHEMA
from core.model.schema import DATETIME, ENTITIES, Problem, ValidationError, coerce, validate
from core.store.workspace import Workspace

WriteMode = Literal["upsert", "replace"]
_CHUNK = 500

metadata = sa.MetaData()


def _sa_type(dtype: pl.DataType) -> sa.types.TypeEngine[Any]:
    if dtype == pl.String:
        return sa.Text()
    if dtype == pl.Int64:
        return sa.BigInteger()
    if dtype == pl.Float64:
        return sa.Double()
    if dtype == pl.Date:
        return sa.Date()
    if dtype == DATETIME:
        return sa.DateTime()
    if dtype == pl.Boolean:
        return sa.Boolean()
    raise TypeError(f"no SQL type for {dtype}")


ENTITY_TABLES: dict[str, sa.Table] = {
    spec.name: sa.Table(
        spec.name,
        metadata,
        *[
            sa.Column(c.name, _sa_type(c.dtype), nullable=c.name not in spec.key, primary_key=c.name in spec.key)
            for c in spec.columns
        ],
    )
    for spec in ENTITIES.values()
}

meta_table = sa.Table(
    "tl_meta",
    metadata,
    sa.Column("key", sa.String(100), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

settings_table = sa.Table(
    "tl_settings",
    metadata,
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("value", sa.Text, nullable=False, comment="JSON"),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    sa.Column("updated_by", sa.String(200)),
)

users_table = sa.Table(
    "tl_users",
    metadata,
    sa.Column("username", sa.String(100), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("email", sa.String(320)),
    sa.Column("role", sa.String(30), nullable=False),
    sa.Column("team_id", sa.Text),
    sa.Column("password_hash", sa.String(100), nullable=False),
    sa.Column("must_change_password", sa.Boolean, nullable=False, default=False),
    sa.Column("disabled", sa.Boolean, nullable=False, default=False),
    sa.Column("failed_logins", sa.Integer, nullable=False, default=0),
    sa.Column("locked_until", sa.DateTime),
    sa.Column("sessions_valid_after", sa.DateTime),
    sa.Column("created_at", sa.DateTime, nullable=False),
)

audit_table = sa.Table(
    "tl_audit_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime, nullable=False),
    sa.Column("actor", sa.String(100)),
    sa.Column("action", sa.String(60), nullable=False),
    sa.Column("detail", sa.Text, nullable=False, default=""),
)

imports_table = sa.Table(
    "tl_imports",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime, nullable=False),
    sa.Column("actor", sa.String(100)),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("format", sa.String(100), nullable=False),
    sa.Column("entities", sa.Text, nullable=False, comment="JSON: entity -> {added, updated, rejected}"),
    sa.Column("status", sa.String(30), nullable=False),
    sa.Column("undo_dir", sa.Text),
)

flag_acks_table = sa.Table(
    "tl_flag_acks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("flag_id", sa.Text, nullable=False, index=True),
    sa.Column("acknowledged_by", sa.Text, nullable=False),
    sa.Column("acknowledged_at", sa.DateTime, nullable=False),
    sa.Column("comment", sa.Text, nullable=False),
)
"""One row per vanity-flag acknowledgement (``core.model.records.ACK_SCHEMA``), in the order they were made."""

_HISTORY_SQL_TYPES: dict[pl.DataType, sa.types.TypeEngine[Any]] = {
    pl.String: sa.Text(),
    pl.Datetime("us"): sa.DateTime(),
    pl.Float64: sa.Double(),
    pl.Int64: sa.BigInteger(),
    pl.Boolean: sa.Boolean(),
}

hypothesis_history_table = sa.Table(
    "tl_hypothesis_history",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    *[
        sa.Column(name, _HISTORY_SQL_TYPES[dtype], nullable=name not in ("feature_id", "edited_at", "applied"))
        for name, dtype in HISTORY_SCHEMA.items()
    ],
)
"""One row per hypothesis history entry (``core.model.records.HISTORY_SCHEMA``), never updated or deleted."""


@dataclass
class WriteResult:
    """What a write did per entity: keys added and the previous rows it replaced."""

    added: dict[str, int] = field(default_factory=dict)
    updated: dict[str, int] = field(default_factory=dict)
    added_keys: dict[str, pl.DataFrame] = field(default_factory=dict)
    previous_rows: dict[str, pl.DataFrame] = field(default_factory=dict)
    data_version: int = 0


@dataclass(frozen=True)
class Snapshot:
    """The columnar snapshot of one data version: one LazyFrame per entity."""

    version: int
    folder: Path

    def scan(self, entity: str) -> pl.LazyFrame:
        """The entity's rows as a LazyFrame over its Parquet file."""
        path = self.folder / f"{entity}.parquet"
        if not path.exists():
            return pl.LazyFrame(schema=ENTITIES[entity].schema)
        return pl.scan_parquet(path)

    def frames(self) -> dict[str, pl.LazyFrame]:
        """Every entity of the canonical model as a LazyFrame."""
        return {name: self.scan(name) for name in ENTITIES}


class Store:
    """One workspace's system of record and its analytics snapshot."""

    def __init__(self, workspace: Workspace, engine: Engine | None = None) -> None:
        self.workspace = workspace
        self.engine = engine or _make_engine(workspace.database_url)
        self._snapshot_lock = threading.Lock()
        self.after_write: Callable[[Store], object] | None = None
        """Called with the store after every write has refreshed the snapshot (the app keeps results)."""

    # -- lifecycle ---------------------------------------------------------------------
    def create(self) -> None:
        """Create every table that does not exist yet."""
        metadata.create_all(self.engine)

    def drop_all(self) -> None:
        """Remove every Throughline table and the snapshot (used by tests and ``init --force``)."""
        metadata.drop_all(self.engine)
        shutil.rmtree(self.workspace.snapshot_dir, ignore_errors=True)
        self.workspace.snapshot_dir.mkdir(parents=True, exist_ok=True)

    def is_initialised(self) -> bool:
        """True when the workspace tables exist."""
        return sa.inspect(self.engine).has_table(meta_table.name)

    # -- reading -----------------------------------------------------------------------
    def read(self, entity: str) -> pl.DataFrame:
        """All stored rows of ``entity`` in the canonical schema (read in bulk, not row by row)."""
        table = ENTITY_TABLES[entity]
        query = sa.select(table)
        frame = _read_sql(self.engine, query)
        return coerce(entity, frame)

    def count(self, entity: str) -> int:
        """Number of stored rows of ``entity``."""
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(ENTITY_TABLES[entity])).scalar_one())

    def counts(self) -> dict[str, int]:
        """Row counts of every entity."""
        with self.engine.connect() as conn:
            return {
                name: int(conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one())
                for name, t in ENTITY_TABLES.items()
            }

    # -- writing -----------------------------------------------------------------------
    def write(
        self,
        frames: Mapping[str, pl.DataFrame],
        mode: WriteMode = "upsert",
        source: str = "",
        _fail_after: str | None = None,
        *,
        on_rows: Callable[[int], None] | None = None,
    ) -> WriteResult:
        """Validate and store ``frames`` in one transaction, then refresh the snapshot.

        ``upsert`` adds new keys and replaces the rows of existing keys; ``replace`` makes
        each given entity hold exactly the given rows. References are checked against the
        incoming frames and the rows already stored. Raises ``ValidationError`` and writes
        nothing when any frame has a problem. ``on_rows(n)`` is called as each batch of ``n``
        rows is inserted, for a progress bar.
        """
        order = [name for name in ENTITIES if name in frames]
        unknown = set(frames) - set(ENTITIES)
        if unknown:
            raise ValidationError(
                [Problem(n, None, "", "", "is not an entity of the model", source) for n in sorted(unknown)]
            )
        known = self._reference_frames(frames, mode)
        problems: list[Problem] = []
        for name in order:
            problems.extend(validate(name, frames[name], known, source))
        if problems:
            raise ValidationError(problems)

        result = WriteResult()
        with self.engine.begin() as conn:
            for name in order:
                frame = coerce(name, frames[name])
                self._write_entity(conn, name, frame, mode, result, on_rows)
                if _fail_after == name:
                    raise RuntimeError(f"injected failure after writing {name}")
            version = self._bump_version(conn)
        result.data_version = version
        self.refresh_snapshot(order)
        self._written()
        return result

    def delete(self, entity: str, keys: pl.DataFrame) -> int:
        """Delete the rows of ``entity`` whose key is in ``keys``; returns rows deleted."""
        with self.engine.begin() as conn:
            deleted = self._delete_keys(conn, entity, keys)
            self._bump_version(conn)
        self.refresh_snapshot([entity])
        self._written()
        return deleted

    def _written(self) -> None:
        if self.after_write is not None:
            self.after_write(self)

    # -- snapshot ----------------------------------------------------------------------
    def data_version(self) -> int:
        """The version of the stored data; moves on with every write."""
        return int(self.get_meta("data_version") or 0)

    def snapshot(self) -> Snapshot:
        """The current snapshot, built first if the store has data but no snapshot yet."""
        folder = self.snapshot_folder()
        if not (folder / "COMPLETE").exists():
            self.refresh_snapshot(list(ENTITIES))
            folder = self.snapshot_folder()
        return Snapshot(self.data_version(), folder)

    def refresh_snapshot(self, entities: Iterable[str]) -> Path:
        """Rewrite the Parquet files of ``entities`` (sorted by time) under the current version."""
        with self._snapshot_lock:
            version = self.data_version()
            root = self.workspace.snapshot_dir
            target = self.snapshot_folder(version)
            building = root / f".building-v{version}-{os.getpid()}-{threading.get_ident()}"
            shutil.rmtree(building, ignore_errors=True)
            building.mkdir(parents=True)
            previous = self._latest_complete_folder()
            touched = set(entities)
            for name, spec in ENTITIES.items():
                dest = building / f"{name}.parquet"
                old = previous / f"{name}.parquet" if previous else None
                if name not in touched and old is not None and old.exists():
                    os.link(old, dest)
                    continue
                frame = self.read(name)
                if spec.time_column:
                    frame = frame.sort(spec.time_column, nulls_last=True)
                frame.write_parquet(dest, statistics=True)
            (building / "COMPLETE").write_text(str(version))
            shutil.rmtree(target, ignore_errors=True)
            os.replace(building, target)
            for old_dir in root.glob("v*"):
                if old_dir != target and old_dir.name[1:].isdigit() and int(old_dir.name[1:]) < version - 1:
                    shutil.rmtree(old_dir, ignore_errors=True)
            return target

    # -- small system tables ------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        """A value of the store's own bookkeeping."""
        if not self.is_initialised():
            return None
        with self.engine.connect() as conn:
            return conn.execute(sa.select(meta_table.c.value).where(meta_table.c.key == key)).scalar_one_or_none()

    def set_meta(self, key: str, value: str) -> None:
        """Set a value of the store's own bookkeeping."""
        with self.engine.begin() as conn:
            _upsert_kv(conn, meta_table, key, {"value": value})

    def get_setting(self, key: str, default: Any = None) -> Any:
        """A workspace setting (JSON value), or ``default`` when unset."""
        with self.engine.connect() as conn:
            raw = conn.execute(
                sa.select(settings_table.c.value).where(settings_table.c.key == key)
            ).scalar_one_or_none()
        return default if raw is None else json.loads(raw)

    def settings(self, prefix: str = "") -> dict[str, Any]:
        """Every setting whose key starts with ``prefix``."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(settings_table.c.key, settings_table.c.value).where(
                    settings_table.c.key.startswith(prefix, autoescape=True)
                )
            ).all()
        return {k: json.loads(v) for k, v in rows}

    def set_setting(self, key: str, value: Any, actor: str | None = None) -> None:
        """Store a workspace setting and record the change in the audit log."""
        with self.engine.begin() as conn:
            _upsert_kv(
                conn, settings_table, key, {"value": json.dumps(value), "updated_at": utc_now(), "updated_by": actor}
            )
            conn.execute(
                audit_table.insert().values(
                    at=utc_now(), actor=actor, action="setting.change", detail=f"{key} = {json.dumps(value)}"
                )
            )

    def audit(self, action: str, actor: str | None, detail: str = "") -> None:
        """Append one line to the audit log."""
        with self.engine.begin() as conn:
            conn.execute(audit_table.insert().values(at=utc_now(), actor=actor, action=action, detail=detail))

    def audit_log(self, limit: int = 500) -> pl.DataFrame:
        """The newest audit log lines first."""
        query = sa.select(audit_table).order_by(audit_table.c.id.desc()).limit(limit)
        return _read_sql(
            self.engine,
            query,
            schema={"id": pl.Int64, "at": DATETIME, "actor": pl.String, "action": pl.String, "detail": pl.String},
        )

    # -- internals ----------------------------------------------------------------------
    def _reference_frames(self, frames: Mapping[str, pl.DataFrame], mode: WriteMode) -> dict[str, pl.DataFrame]:
        needed = {c.references[0] for n in frames for c in ENTITIES[n].columns if c.references}
        known: dict[str, pl.DataFrame] = {}
        for name in needed:
            key = ENTITIES[name].key[0]
            parts: list[pl.DataFrame] = []
            if name in frames and key in frames[name].columns:
                parts.append(frames[name].select(pl.col(key).cast(pl.String)))
            if not (mode == "replace" and name in frames):
                parts.append(self._stored_keys(name).select(pl.col(key).cast(pl.String)))
            known[name] = pl.concat(parts) if parts else pl.DataFrame({key: []}, schema={key: pl.String})
        return known

    def _stored_keys(self, entity: str, conn: sa.Connection | None = None) -> pl.DataFrame:
        table = ENTITY_TABLES[entity]
        query = sa.select(*[table.c[k] for k in ENTITIES[entity].key])
        frame = _read_sql(conn or self.engine, query)
        spec = ENTITIES[entity]
        return frame.select([pl.col(k).cast(spec.column(k).dtype) for k in spec.key]) if frame.width else frame

    def _write_entity(
        self,
        conn: sa.Connection,
        name: str,
        frame: pl.DataFrame,
        mode: WriteMode,
        result: WriteResult,
        on_rows: Callable[[int], None] | None = None,
    ) -> None:
        spec = ENTITIES[name]
        table = ENTITY_TABLES[name]
        keys = list(spec.key)
        if mode == "replace":
            previous = _read_sql(conn, sa.select(table))
            result.previous_rows[name] = coerce(name, previous)
            conn.execute(table.delete())
            result.updated[name] = 0
            result.added[name] = frame.height
            result.added_keys[name] = frame.select(keys)
        else:
            stored = self._stored_keys(name, conn)
            existing = frame.select(keys).join(stored, on=keys, how="semi")
            if existing.height:
                previous = _read_sql(conn, sa.select(table).where(_key_filter(table, keys, existing)))
                result.previous_rows[name] = (
                    coerce(name, previous).join(existing, on=keys, how="semi")
                    if previous.height
                    else coerce(name, previous)
                )
                self._delete_keys(conn, name, existing)
            result.updated[name] = existing.height
            result.added[name] = frame.height - existing.height
            result.added_keys[name] = frame.select(keys).join(existing, on=keys, how="anti")
        _insert(conn, table, frame, on_rows)

    def _delete_keys(self, conn: sa.Connection, entity: str, keys: pl.DataFrame) -> int:
        table = ENTITY_TABLES[entity]
        key_cols = list(ENTITIES[entity].key)
        deleted = 0
        for start in range(0, keys.height, _CHUNK):
            chunk = keys.slice(start, _CHUNK)
            deleted += conn.execute(table.delete().where(_key_filter(table, key_cols, chunk))).rowcount or 0
        return deleted

    def _bump_version(self, conn: sa.Connection) -> int:
        current = conn.execute(
            sa.select(meta_table.c.value).where(meta_table.c.key == "data_version")
        ).scalar_one_or_none()
        version = int(current or 0) + 1
        _upsert_kv(conn, meta_table, "data_version", {"value": str(version)})
        _upsert_kv(conn, meta_table, "last_write_at", {"value": utc_now().isoformat(timespec="seconds")})
        return version

    def snapshot_folder(self, version: int | None = None) -> Path:
        """The folder of the snapshot of ``version`` (default: the current data version)."""
        return self.workspace.snapshot_dir / f"v{self.data_version() if version is None else version}"

    def _latest_complete_folder(self) -> Path | None:
        candidates = [
            d for d in self.workspace.snapshot_dir.glob("v*") if d.name[1:].isdigit() and (d / "COMPLETE").exists()
        ]
        return max(candidates, key=lambda d: int(d.name[1:])) if candidates else None


def open_store(workspace: Workspace) -> Store:
    """The store of ``workspace`` with its tables created."""
    store = Store(workspace)
    store.create()
    return store


def _make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return sa.create_engine(url, pool_pre_ping=True)


def _insert(
    conn: sa.Connection, table: sa.Table, frame: pl.DataFrame, on_rows: Callable[[int], None] | None = None
) -> None:
    """Bulk-insert ``frame`` inside the caller's transaction: COPY on PostgreSQL, executemany on SQLite.

    Rows go in batches of ``_INSERT_BATCH``; ``on_rows(n)`` hears of each batch once it is in.
    """
    if frame.height == 0:
        return
    backend = conn.dialect.name
    if backend == "postgresql" and conn.dialect.driver == "psycopg":
        insert_batch = _copy_into_postgres(conn, table, frame.columns)
    elif backend == "sqlite":
        insert_batch = _executemany_sqlite(conn, table, frame.columns)
    else:

        def insert_batch(batch: pl.DataFrame) -> None:
            conn.execute(table.insert(), list(batch.iter_rows(named=True)))

    for start in range(0, frame.height, _INSERT_BATCH):
        batch = frame.slice(start, _INSERT_BATCH)
        insert_batch(batch)
        if on_rows is not None:
            on_rows(batch.height)


_INSERT_BATCH = 100_000


def _executemany_sqlite(conn: sa.Connection, table: sa.Table, columns: list[str]) -> Callable[[pl.DataFrame], None]:
    """A batch inserter through the driver's ``executemany``, skipping SQLAlchemy's per-row work."""
    quote = conn.dialect.identifier_preparer.quote
    sql = (
        f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)}) "
        f"VALUES ({', '.join('?' for _ in columns)})"
    )
    driver = conn.connection.driver_connection

    def insert_batch(batch: pl.DataFrame) -> None:
        # Text forms identical to what SQLAlchemy's SQLite dialect stores, so reads agree either way.
        schema = batch.schema
        as_text = batch.with_columns(
            [pl.col(n).dt.strftime("%Y-%m-%d %H:%M:%S.%6f") for n, t in schema.items() if isinstance(t, pl.Datetime)]
            + [pl.col(n).dt.strftime("%Y-%m-%d") for n, t in schema.items() if t == pl.Date]
        )
        cursor = driver.cursor()  # type: ignore[union-attr]
        try:
            cursor.executemany(sql, as_text.rows())
        finally:
            cursor.close()

    return insert_batch


def _copy_into_postgres(conn: sa.Connection, table: sa.Table, columns: list[str]) -> Callable[[pl.DataFrame], None]:
    """A batch inserter through ``COPY ... FROM STDIN`` in CSV, the fastest way into PostgreSQL."""
    quote = conn.dialect.identifier_preparer.quote
    statement = (
        f"COPY {quote(table.name)} ({', '.join(quote(c) for c in columns)}) FROM STDIN WITH (FORMAT csv, NULL '\\N')"
    )
    driver = conn.connection.driver_connection

    def insert_batch(batch: pl.DataFrame) -> None:
        cursor = driver.cursor()  # type: ignore[union-attr]
        try:
            with cursor.copy(statement) as copy:
                copy.write(
                    batch.write_csv(
                        include_header=False,
                        null_value="\\N",
                        quote_style="non_numeric",
                        datetime_format="%Y-%m-%d %H:%M:%S.%6f",
                    )
                )
        finally:
            cursor.close()

    return insert_batch


def _key_filter(table: sa.Table, keys: list[str], values: pl.DataFrame) -> sa.ColumnElement[bool]:
    if len(keys) == 1:
        return table.c[keys[0]].in_(values[keys[0]].to_list())
    return sa.tuple_(*[table.c[k] for k in keys]).in_(values.select(keys).rows())


def _read_sql(
    source: Engine | sa.Connection, query: sa.Select[Any], schema: Mapping[str, pl.DataType] | None = None
) -> pl.DataFrame:
    """Run a SELECT and return a frame; ConnectorX for whole tables when not inside a transaction."""
    engine = source if isinstance(source, Engine) else None
    if engine is not None:
        uri = _connectorx_uri(engine)
        if uri is not None:
            import connectorx

            sql = str(query.compile(engine, compile_kwargs={"literal_binds": True}))
            try:
                frame = connectorx.read_sql(uri, sql, return_type="polars")
                return frame if frame.width or schema is None else pl.DataFrame(schema=schema)
            except (RuntimeError, ValueError, pl.exceptions.PolarsError):
                pass
    if isinstance(source, Engine):
        with source.connect() as conn:
            return _read_sql(conn, query, schema)
    result = source.execute(query)
    names = list(result.keys())
    rows = result.all()
    frame = (
        pl.DataFrame(rows, schema=names, orient="row", infer_schema_length=None)
        if rows
        else pl.DataFrame(schema=schema or {n: pl.String for n in names})
    )
    return frame


def _connectorx_uri(engine: Engine) -> str | None:
    """The ConnectorX address of the workspace database, or None to read through SQLAlchemy.

    Never for SQLite: ConnectorX carries its own copy of the SQLite library, and two copies in one
    process corrupt each other's file locks (closing one copy's handle drops the POSIX locks the
    other holds), so a read in one thread could break another thread's open write transaction
    ("disk I/O error" on commit, at worst a damaged file). SQLite is read by Python's ``sqlite3``.
    """
    url = engine.url
    if url.get_backend_name() == "postgresql":
        return url.set(drivername="postgresql").render_as_string(hide_password=False)
    return None


def _upsert_kv(conn: sa.Connection, table: sa.Table, key: str, values: Mapping[str, Any]) -> None:
    updated = conn.execute(table.update().where(table.c.key == key).values(**values)).rowcount
    if not updated:
        conn.execute(table.insert().values(key=key, **values))


def utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)

"""The workspace store: a SQLAlchemy database as the system of record, a Parquet snapshot for analytics.

Every write of entity rows is validated first and then applied in one transaction, so a
write that fails leaves what was stored before intact; a caller's bookkeeping (the import
history) can ride in the same transaction. Upserts go through a staging table, so a write of
any size stays within every driver's parameter limit. After each committed write the snapshot
is rebuilt from the committed state, one process at a time (a lock file in the workspace);
the snapshot of a data version exists only once complete, so a refresh that fails leaves the
current version without a snapshot and the next access rebuilds it. Analytics only ever scan
the snapshot.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import stat
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import polars as pl
import sqlalchemy as sa
from filelock import FileLock, Timeout
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from core.model.records import HISTORY_SCHEMA
from core.model.schema import DATETIME, ENTITIES, Problem, ValidationError, coerce, validate
from core.store.workspace import Workspace

WriteMode = Literal["upsert", "replace"]
Bookkeeping = Callable[[sa.Connection, "WriteResult"], None]
_MAX_VARIABLES = 900
"""Bound parameters per statement: under SQLite's oldest limit (999) and far under psycopg's 65,535."""
_SNAPSHOT_LOCK = "snapshot.lock"
_SNAPSHOT_TRIES = 5
_MESSAGE_LIMIT = 300
_log = logging.getLogger(__name__)

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
    deleted: dict[str, int] = field(default_factory=dict)
    data_version: int = 0
    snapshot_error: str | None = None
    """Why the snapshot could not be refreshed after the commit (it is rebuilt on next access), or None."""


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
        self._snapshot_file_lock = FileLock(workspace.home / _SNAPSHOT_LOCK, mode=0o600, thread_local=False)
        self.after_write: Callable[[Store], object] | None = None
        """Called with the store after every write has refreshed the snapshot (the app keeps results)."""

    # -- lifecycle ---------------------------------------------------------------------
    def create(self) -> None:
        """Create every table that does not exist yet and add the columns an older workspace lacks.

        A workspace made by an earlier version opens with the current code: missing tables are
        created, missing nullable columns added (rows kept, the new column empty), and the data
        version moved on so the snapshot and every cached result are rebuilt with the new columns.
        Running it again changes nothing.
        """
        for attempt in range(3):  # two processes opening a new workspace at once race to create the same tables
            try:
                metadata.create_all(self.engine)
                break
            except (sa.exc.OperationalError, sa.exc.ProgrammingError, sa.exc.IntegrityError):
                if attempt == 2:
                    raise
                time.sleep(0.05 * (attempt + 1))
        with self.engine.begin() as conn:  # the row every write locks to take the next version
            _insert_missing(conn, meta_table, {"key": "data_version", "value": "0"})
        added = _add_missing_columns(self.engine)
        if added:
            with self.engine.begin() as conn:
                self._bump_version(conn)
                conn.execute(
                    audit_table.insert().values(
                        at=utc_now(), actor=None, action="store.migrate", detail="added columns " + ", ".join(added)
                    )
                )

    def drop_all(self) -> None:
        """Remove every Throughline table and the snapshot (used by tests and ``init --force``)."""
        metadata.drop_all(self.engine)
        shutil.rmtree(self.workspace.snapshot_dir, ignore_errors=True)
        self.workspace.snapshot_dir.mkdir(parents=True, exist_ok=True)

    def recover(self) -> None:
        """Tidy what a killed process left: half-built snapshots and imports recorded as still running."""
        tighten_permissions(self.workspace)
        with self.engine.begin() as conn:
            conn.execute(
                imports_table.update().where(imports_table.c.status == "running").values(status="failed", undo_dir=None)
            )
        try:
            with self._snapshot_lock, self._snapshot_file_lock.acquire(timeout=0):
                for building in self.workspace.snapshot_dir.glob(".building-*"):
                    shutil.rmtree(building, ignore_errors=True)
        except Timeout:
            pass  # another process is building: its folder is not an orphan, a later open tidies
        tidy_undo_folders(self)

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
        delete: Mapping[str, pl.DataFrame] | None = None,
        bookkeeping: Bookkeeping | None = None,
    ) -> WriteResult:
        """Validate and store ``frames`` in one transaction, then refresh the snapshot.

        ``upsert`` adds new keys and replaces the rows of existing keys; ``replace`` makes
        each given entity hold exactly the given rows. References are checked against the
        incoming frames and the rows already stored. Raises ``ValidationError`` and writes
        nothing when any frame has a problem. ``on_rows(n)`` is called as each batch of ``n``
        rows is inserted, for a progress bar. ``delete`` removes keys first, in the same
        transaction; ``bookkeeping(conn, result)`` runs last inside it, so a history record
        commits with the data or not at all. A snapshot that cannot be refreshed after the
        commit is left stale (rebuilt on next access) and named in ``result.snapshot_error``.
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

        removals = dict(delete or {})
        result = WriteResult()
        with self.engine.begin() as conn:
            if conn.dialect.name == "sqlite":  # the write lock now, not a deadlock when a read upgrades later
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            for name in reversed([e for e in ENTITIES if e in removals]):
                result.deleted[name] = self._delete_keys(conn, name, removals[name])
            for name in order:
                frame = coerce(name, frames[name])
                self._write_entity(conn, name, frame, mode, result, on_rows)
                if _fail_after == name:
                    raise RuntimeError(f"injected failure after writing {name}")
            result.data_version = self._bump_version(conn)
            if bookkeeping is not None:
                bookkeeping(conn, result)
        self._written([*order, *(e for e in removals if e not in order)], result)
        return result

    def delete(self, entity: str, keys: pl.DataFrame) -> int:
        """Delete the rows of ``entity`` whose key is in ``keys``; returns rows deleted."""
        return self.write({}, delete={entity: keys}).deleted[entity]

    def _written(self, entities: list[str], result: WriteResult) -> None:
        """Refresh the snapshot after a commit; a failure leaves it stale and says why, never undoes the commit."""
        try:
            self.refresh_snapshot(entities, written_version=result.data_version)
        except Exception as error:
            result.snapshot_error = describe_error(error)
            _log.warning("snapshot of data version %s left stale: %s", result.data_version, result.snapshot_error)
            return
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

    def refresh_snapshot(self, entities: Iterable[str], written_version: int | None = None) -> Path:
        """The complete snapshot of the committed data version, built now if it does not exist yet.

        One builder at a time per workspace (a lock file beside the data), reading after the commit.
        Only ``entities`` are re-read when the write that made ``written_version`` is the only change
        since the newest complete snapshot; otherwise every entity is. A build during which another
        write commits is thrown away and redone, so a snapshot never mixes two data versions.
        """
        touched = set(entities)
        with self._snapshot_lock, self._snapshot_file_lock:
            for _ in range(_SNAPSHOT_TRIES):
                version = self.data_version()
                target = self.snapshot_folder(version)
                if (target / "COMPLETE").exists():
                    return target
                previous = self._latest_complete_folder()
                follows = previous is not None and previous.name == f"v{version - 1}"
                reread = touched if follows and written_version == version else set(ENTITIES)
                built = self._build_snapshot(version, previous, reread)
                if self.data_version() == version:
                    shutil.rmtree(target, ignore_errors=True)
                    os.replace(built, target)
                    self._drop_old_snapshots(version)
                    return target
                shutil.rmtree(built, ignore_errors=True)
            raise RuntimeError(f"the data changed during {_SNAPSHOT_TRIES} snapshot builds in a row; try again")

    def _build_snapshot(self, version: int, previous: Path | None, reread: set[str]) -> Path:
        """A complete snapshot folder of ``version`` under a temporary name: ``reread`` read, the rest linked."""
        building = self.workspace.snapshot_dir / f".building-v{version}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        building.mkdir(parents=True, mode=0o700)
        try:
            for name, spec in ENTITIES.items():
                dest = building / f"{name}.parquet"
                old = previous / f"{name}.parquet" if previous else None
                if name not in reread and old is not None and old.exists():
                    os.link(old, dest)
                    continue
                frame = self.read(name)
                if spec.time_column:
                    frame = frame.sort(spec.time_column, nulls_last=True)
                frame.write_parquet(dest, statistics=True)
                os.chmod(dest, 0o600)
            (building / "COMPLETE").write_text(str(version))
        except BaseException:
            shutil.rmtree(building, ignore_errors=True)
            raise
        return building

    def _drop_old_snapshots(self, version: int) -> None:
        for old_dir in self.workspace.snapshot_dir.glob("v*"):
            if old_dir.name[1:].isdigit() and int(old_dir.name[1:]) < version - 1:
                shutil.rmtree(old_dir, ignore_errors=True)

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
            _insert(conn, table, frame, on_rows)
            return
        stage = _staging_table(conn, table)
        _insert(conn, stage, frame, on_rows)
        matched = sa.and_(*[table.c[k] == stage.c[k] for k in keys])
        previous = coerce(name, _read_sql(conn, sa.select(table).join(stage, matched)))
        result.previous_rows[name] = previous
        result.updated[name] = previous.height
        result.added[name] = frame.height - previous.height
        result.added_keys[name] = frame.select(keys).join(previous.select(keys), on=keys, how="anti")
        _upsert_from(conn, table, stage, keys)
        stage.drop(conn)

    def _delete_keys(self, conn: sa.Connection, entity: str, keys: pl.DataFrame) -> int:
        table = ENTITY_TABLES[entity]
        key_cols = list(ENTITIES[entity].key)
        chunk_rows = max(1, _MAX_VARIABLES // len(key_cols))
        deleted = 0
        for start in range(0, keys.height, chunk_rows):
            chunk = keys.slice(start, chunk_rows)
            deleted += conn.execute(table.delete().where(_key_filter(table, key_cols, chunk))).rowcount or 0
        return deleted

    def _bump_version(self, conn: sa.Connection) -> int:
        """The next data version, its row locked until commit so concurrent writes never share a number."""
        current = conn.execute(
            sa.select(meta_table.c.value).where(meta_table.c.key == "data_version").with_for_update()
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


def tidy_undo_folders(store: Store) -> int:
    """Remove undo folders of imports that never committed (a killed process's); returns how many."""
    root = store.workspace.home / "imports"
    if not root.is_dir():
        return 0
    removed = 0
    for folder in root.iterdir():
        if not folder.is_dir() or not folder.name.isdigit():
            continue
        try:
            with FileLock(pending_undo_lock(folder), timeout=0):
                with store.engine.connect() as conn:
                    known = conn.execute(
                        sa.select(imports_table.c.id).where(imports_table.c.id == int(folder.name))
                    ).first()
                if known is None:
                    shutil.rmtree(folder, ignore_errors=True)
                    removed += 1
        except Timeout:
            continue  # an import is writing it right now
    return removed


def pending_undo_lock(folder: Path) -> Path:
    """The lock an import holds on its undo folder until its transaction has committed or rolled back."""
    return folder.with_name(f".{folder.name}.lock")


def open_store(workspace: Workspace) -> Store:
    """The store of ``workspace`` with its tables created and what a killed process left tidied."""
    tighten_permissions(workspace)
    store = Store(workspace)
    store.create()
    store.recover()
    return store


def tighten_permissions(workspace: Workspace) -> None:
    """Make the workspace folder owner-only and its SQLite database file owner-readable only."""
    workspace.home.mkdir(parents=True, exist_ok=True, mode=0o700)
    workspace.snapshot_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    for folder in (workspace.home, workspace.snapshot_dir):
        if stat.S_IMODE(folder.stat().st_mode) & 0o077:
            os.chmod(folder, 0o700)
    database = sa.make_url(workspace.database_url).database if workspace.is_sqlite else None
    if database and database != ":memory:" and Path(database).parent.is_dir():
        path = Path(database)
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        for companion in (path, *(path.with_name(path.name + s) for s in ("-journal", "-wal", "-shm"))):
            if companion.exists() and stat.S_IMODE(companion.stat().st_mode) & 0o077:
                os.chmod(companion, 0o600)


def describe_error(error: BaseException) -> str:
    """A short account of ``error`` for a user: its kind and first line, never SQL or the values bound to it."""
    if isinstance(error, sa.exc.DBAPIError) and error.orig is not None:
        original = error.orig
        sqlstate = getattr(original, "sqlstate", None)
        if sqlstate:  # PostgreSQL details quote the offending values; the state code names the kind
            return f"database error {type(original).__name__} (SQLSTATE {sqlstate})"
        text = f"database error {type(original).__name__}: {str(original).splitlines()[0] if str(original) else ''}"
    else:
        first = str(error).splitlines()[0] if str(error) else ""
        text = f"{type(error).__name__}: {first}" if first else type(error).__name__
    return text if len(text) <= _MESSAGE_LIMIT else text[: _MESSAGE_LIMIT - 1] + "…"


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


def _staging_table(conn: sa.Connection, table: sa.Table) -> sa.Table:
    """An empty temporary table shaped like ``table``, private to this connection (dropped at commit on PostgreSQL)."""
    stage = sa.Table(
        f"tl_stage_{table.name}_{uuid.uuid4().hex[:12]}",
        sa.MetaData(),
        *[sa.Column(c.name, c.type) for c in table.columns],
        prefixes=["TEMPORARY"],
        postgresql_on_commit="DROP",
    )
    stage.create(conn)
    return stage


def _upsert_from(conn: sa.Connection, table: sa.Table, stage: sa.Table, keys: list[str]) -> None:
    """Copy every staged row into ``table``: new keys added, existing keys' rows replaced, in one statement."""
    columns = [c.name for c in table.columns]
    rows = sa.select(*[stage.c[c] for c in columns]).where(sa.true())  # WHERE: SQLite's INSERT…SELECT…ON CONFLICT
    dialect = conn.dialect.name
    if dialect in ("postgresql", "sqlite"):
        insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table).from_select(columns, rows)
        others = [c for c in columns if c not in keys]
        statement = (
            insert.on_conflict_do_update(index_elements=keys, set_={c: insert.excluded[c] for c in others})
            if others
            else insert.on_conflict_do_nothing(index_elements=keys)
        )
        conn.execute(statement)
        return
    matched = sa.and_(*[table.c[k] == stage.c[k] for k in keys])
    conn.execute(table.delete().where(sa.exists().where(matched)))
    conn.execute(table.insert().from_select(columns, rows))


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


def _add_missing_columns(engine: Engine) -> list[str]:
    """Add every column of the model that a stored table lacks; returns them as ``table.column``.

    Only nullable, non-key columns can be added to a table that holds rows; a missing key or
    required column means the workspace is not one this code can open, and says so.
    """
    inspector = sa.inspect(engine)
    stored = {name: {c["name"] for c in inspector.get_columns(name)} for name in metadata.tables}
    missing = [(t, c) for t in metadata.tables.values() for c in t.columns if c.name not in stored[t.name]]
    if not missing:
        return []
    required = [f"{t.name}.{c.name}" for t, c in missing if c.primary_key or not c.nullable]
    if required:
        raise RuntimeError(
            f"the workspace database lacks required columns {', '.join(required)}; "
            "it was made by a version this one cannot upgrade"
        )
    quote = engine.dialect.identifier_preparer.quote
    guard = " IF NOT EXISTS" if engine.dialect.name == "postgresql" else ""  # another process may add it too
    added = []
    for table, column in missing:
        kind = column.type.compile(dialect=engine.dialect)
        try:
            with engine.begin() as conn:
                conn.execute(sa.text(f"ALTER TABLE {quote(table.name)} ADD COLUMN{guard} {quote(column.name)} {kind}"))
        except sa.exc.OperationalError:  # SQLite: another process opening the workspace added it first
            if column.name not in {c["name"] for c in sa.inspect(engine).get_columns(table.name)}:
                raise
            continue
        added.append(f"{table.name}.{column.name}")
    return added


def _insert_missing(conn: sa.Connection, table: sa.Table, row: Mapping[str, Any]) -> None:
    """Insert ``row`` unless its key is already there (another process may be inserting it too)."""
    dialect = conn.dialect.name
    if dialect in ("postgresql", "sqlite"):
        insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table).values(**row)
        conn.execute(insert.on_conflict_do_nothing())
    elif conn.execute(sa.select(table.c.key).where(table.c.key == row["key"])).first() is None:
        conn.execute(table.insert().values(**row))


def _upsert_kv(conn: sa.Connection, table: sa.Table, key: str, values: Mapping[str, Any]) -> None:
    updated = conn.execute(table.update().where(table.c.key == key).values(**values)).rowcount
    if not updated:
        conn.execute(table.insert().values(key=key, **values))


def utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)

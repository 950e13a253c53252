"""Running a planned import in one transaction, recording it in the import history, and undoing it.

An import is one ``Store.write``: it adds new keys and updates existing ones (natural keys,
so importing the same file twice changes nothing), and either all of it is stored or none.
Columns a format does not provide keep their stored values; gap-filling rows (authors,
placeholder epics) are only added where the key is new. The keys added and the rows replaced
are saved as Parquet under ``<workspace>/imports/<id>/`` so the import can be undone.

The history row ("done", with its counts and undo folder) and the audit line are written in
the data's own transaction, after the undo files are on disk: a killed import leaves no row,
and every "done" row can be undone. While an import is under way its undo folder is held by
a lock file, so tidying on open removes only the folders of imports that never committed.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import sqlalchemy as sa
from filelock import FileLock

from core.importing.errors import ImportFailed
from core.importing.formats import ROW
from core.importing.plan import ImportPlan, without_rejected
from core.model.schema import DATETIME, ENTITIES, ValidationError, coerce
from core.store.database import (
    ENTITY_TABLES,
    Store,
    WriteResult,
    audit_table,
    describe_error,
    imports_table,
    pending_undo_lock,
)

Progress = Callable[[int, int], None]
_KEY_CHUNK = 500


@dataclass(frozen=True)
class ImportRecord:
    """One import as the history shows it."""

    import_id: int
    source: str
    format: str
    actor: str | None
    at: datetime
    status: str
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    """entity → {added, updated, rejected}."""
    notes: tuple[str, ...] = ()

    @property
    def added(self) -> int:
        """Rows added over all entities."""
        return sum(c.get("added", 0) for c in self.counts.values())

    @property
    def updated(self) -> int:
        """Rows updated over all entities."""
        return sum(c.get("updated", 0) for c in self.counts.values())


def run_import(
    store: Store,
    plan: ImportPlan,
    actor: str | None,
    progress: Progress | None = None,
    *,
    skip_invalid: bool = False,
    _fail_after: str | None = None,
) -> ImportRecord:
    """Store ``plan`` atomically and record it; problems refuse the import unless ``skip_invalid``.

    ``progress(done, total)`` is called with the rows written so far, after each batch.
    """
    if plan.problems and not skip_invalid:
        raise ImportFailed(
            f"{plan.source}: {len(plan.problems)} problem(s) found; nothing was written. "
            "Fix the file, or import the valid rows and skip the rest.",
            plan.problems,
        )
    rejected = dict(plan.rejected)
    if plan.problems:
        plan = without_rejected(plan)
    frames = _frames_to_write(store, plan)
    total = sum(f.height for f in frames.values())
    written = 0

    def on_rows(rows: int) -> None:
        nonlocal written
        written += rows
        _report(progress, written, total)

    _report(progress, 0, total)
    recorded: dict[str, object] = {}
    with contextlib.ExitStack() as held:

        def record(conn: sa.Connection, result: WriteResult) -> None:
            counts = {
                e: {
                    "added": result.added.get(e, 0),
                    "updated": result.updated.get(e, 0),
                    "rejected": rejected.get(e, 0),
                }
                for e in dict.fromkeys([*frames, *rejected])
            }
            import_id = _insert_record(conn, plan, actor, "done", counts)
            held.enter_context(_undo_folder_held(store, import_id))
            recorded["undo_dir"] = str(store.workspace.home / "imports" / str(import_id))
            undo_dir = _save_undo(store, import_id, result.added_keys, result.previous_rows)
            conn.execute(imports_table.update().where(imports_table.c.id == import_id).values(undo_dir=undo_dir))
            summary = ", ".join(f"{e} +{c['added']} ~{c['updated']} x{c['rejected']}" for e, c in counts.items())
            conn.execute(
                audit_table.insert().values(
                    at=_now(),
                    actor=actor,
                    action="import.run",
                    detail=f"#{import_id} {plan.format} {plan.source}: {summary}",
                )
            )
            recorded.update(import_id=import_id, counts=counts, undo_dir=undo_dir)

        try:
            result = store.write(
                frames, "upsert", source=plan.source, _fail_after=_fail_after, on_rows=on_rows, bookkeeping=record
            )
        except ValidationError as error:
            _forget_undo(recorded)
            _record_failure(store, plan, actor)
            raise ImportFailed(f"{plan.source}: nothing was written.", error.problems) from None
        except Exception as error:
            _forget_undo(recorded)
            _record_failure(store, plan, actor)
            raise ImportFailed(
                f"{plan.source}: the import failed and nothing was written ({describe_error(error)})."
            ) from None
    notes = tuple(plan.notes)
    if result.snapshot_error:
        notes += (
            "The rows are stored, but the analytics snapshot could not be refreshed "
            f"({result.snapshot_error}); it will be rebuilt when the data is next read.",
        )
    _report(progress, total, total)
    import_id, counts = int(recorded["import_id"]), recorded["counts"]  # type: ignore[call-overload]
    return ImportRecord(import_id, plan.source, plan.format, actor, _now(), "done", counts, notes)  # type: ignore[arg-type]


def undo_import(store: Store, import_id: int, actor: str | None) -> ImportRecord:
    """Remove the rows import ``import_id`` added and restore the rows it replaced."""
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(imports_table).where(imports_table.c.id == import_id)).mappings().first()
    if row is None:
        raise ImportFailed(f"There is no import #{import_id}.")
    if row["status"] != "done":
        raise ImportFailed(f"Import #{import_id} cannot be undone: it is {row['status']}.")
    folder = Path(row["undo_dir"] or "")
    if not row["undo_dir"] or not folder.exists():
        raise ImportFailed(f"Import #{import_id} cannot be undone: its undo data is missing.")
    try:
        added = {p.stem: pl.read_parquet(p) for p in sorted((folder / "added").glob("*.parquet"))}
        previous = {p.stem: pl.read_parquet(p) for p in sorted((folder / "previous").glob("*.parquet"))}
    except Exception as error:
        raise ImportFailed(
            f"Import #{import_id} cannot be undone: its undo data is unreadable ({describe_error(error)})."
        ) from None

    def mark_undone(conn: sa.Connection, _result: WriteResult) -> None:
        marked = conn.execute(
            imports_table.update()
            .where(imports_table.c.id == import_id, imports_table.c.status == "done")
            .values(status="undone")
        ).rowcount
        if marked != 1:
            raise ImportFailed(f"Import #{import_id} cannot be undone: it was undone meanwhile.")
        conn.execute(
            audit_table.insert().values(
                at=_now(), actor=actor, action="import.undo", detail=f"#{import_id} {row['format']} {row['source']}"
            )
        )

    removals = {e: f for e, f in added.items() if f.height}
    restore = {e: f for e, f in previous.items() if f.height}
    try:
        store.write(restore, "upsert", source=f"undo of import #{import_id}", delete=removals, bookkeeping=mark_undone)
    except ValidationError as error:
        raise ImportFailed(f"Import #{import_id}: the replaced rows could not be restored.", error.problems) from None
    return ImportRecord(import_id, row["source"], row["format"], actor, _now(), "undone", json.loads(row["entities"]))


def import_history(store: Store, limit: int = 500) -> pl.DataFrame:
    """One row per import and entity, newest first: file, format, entity, added/updated/rejected, who, when, status."""
    query = sa.select(imports_table).order_by(imports_table.c.id.desc()).limit(limit)
    with store.engine.connect() as conn:
        rows = conn.execute(query).mappings().all()
    records = []
    for row in rows:
        counts = json.loads(row["entities"] or "{}") or {"": {}}
        for entity, c in counts.items():
            records.append(
                {
                    "import_id": row["id"],
                    "at": row["at"],
                    "actor": row["actor"],
                    "source": row["source"],
                    "format": row["format"],
                    "entity": entity or None,
                    "added": c.get("added", 0),
                    "updated": c.get("updated", 0),
                    "rejected": c.get("rejected", 0),
                    "status": row["status"],
                }
            )
    schema = {
        "import_id": pl.Int64,
        "at": DATETIME,
        "actor": pl.String,
        "source": pl.String,
        "format": pl.String,
        "entity": pl.String,
        "added": pl.Int64,
        "updated": pl.Int64,
        "rejected": pl.Int64,
        "status": pl.String,
    }
    return pl.DataFrame(records, schema=schema, orient="row") if records else pl.DataFrame(schema=schema)


def _frames_to_write(store: Store, plan: ImportPlan) -> dict[str, pl.DataFrame]:
    frames: dict[str, pl.DataFrame] = {}
    for entity in plan.entities:
        spec = ENTITIES[entity]
        keys = list(spec.key)
        parts: list[pl.DataFrame] = []
        main = plan.frames.get(entity)
        if main is not None and main.height:
            provided = [c for c in main.columns if c != ROW]
            typed = coerce(entity, main.drop(ROW, strict=False))
            missing = [c.name for c in spec.columns if c.name not in provided]
            if missing:
                stored = store.read(entity)
                typed = (
                    typed.drop(missing)
                    .join(stored.select(keys + missing), on=keys, how="left", maintain_order="left")
                    .select(spec.schema.names())
                )
            parts.append(typed)
        fill = plan.fills.get(entity)
        if fill is not None and fill.height:
            new = coerce(entity, fill.drop(ROW, strict=False))
            new = new.join(_stored_rows(store, entity, new.select(keys)).select(keys), on=keys, how="anti")
            if parts:
                new = new.join(parts[0].select(keys), on=keys, how="anti")
            parts.append(new)
        if parts:
            frame = pl.concat(parts, how="vertical")
            if frame.height:
                frames[entity] = frame
    if not frames:
        raise ImportFailed(f"{plan.source}: there are no rows to import.")
    return frames


def _stored_rows(store: Store, entity: str, keys: pl.DataFrame) -> pl.DataFrame:
    """The stored rows of ``entity`` whose key is in ``keys`` (fetched by key, not the whole table)."""
    spec = ENTITIES[entity]
    if len(spec.key) > 1:
        return store.read(entity).join(keys, on=list(spec.key), how="semi")
    key = spec.key[0]
    table = ENTITY_TABLES[entity]
    wanted = keys[key].drop_nulls().unique().to_list()
    rows: list[tuple[object, ...]] = []
    with store.engine.connect() as conn:
        existing = set(conn.execute(sa.select(table.c[key])).scalars()) if len(wanted) > _KEY_CHUNK else None
        if existing is not None:
            wanted = [k for k in wanted if k in existing]
        for start in range(0, len(wanted), _KEY_CHUNK):
            chunk = wanted[start : start + _KEY_CHUNK]
            rows.extend(tuple(r) for r in conn.execute(sa.select(table).where(table.c[key].in_(chunk))))
    names = [c.name for c in table.columns]
    frame = (
        pl.DataFrame(rows, schema=names, orient="row", infer_schema_length=None)
        if rows
        else pl.DataFrame(schema={n: pl.String for n in names})
    )
    return coerce(entity, frame)


def _insert_record(
    conn: sa.Connection, plan: ImportPlan, actor: str | None, status: str, counts: dict[str, dict[str, int]]
) -> int:
    """Add one history row inside the caller's transaction; returns its import id."""
    result = conn.execute(
        imports_table.insert().values(
            at=_now(),
            actor=actor,
            source=plan.source[:2000],
            format=plan.format[:100],
            entities=json.dumps(counts),
            status=status,
        )
    )
    return int(result.inserted_primary_key[0])


def _record_failure(store: Store, plan: ImportPlan, actor: str | None) -> None:
    """Note a refused or failed import in the history (nothing to undo); best effort, the data is untouched."""
    try:
        with store.engine.begin() as conn:
            _insert_record(conn, plan, actor, "failed", {})
    except Exception:
        return


@contextlib.contextmanager
def _undo_folder_held(store: Store, import_id: int) -> Iterator[None]:
    """Hold import ``import_id``'s undo folder against tidying until its transaction has ended."""
    folder = store.workspace.home / "imports" / str(import_id)
    folder.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with FileLock(pending_undo_lock(folder), mode=0o600):
        yield


def _forget_undo(recorded: dict[str, object]) -> None:
    """Remove the undo folder of an import whose transaction rolled back."""
    if recorded.get("undo_dir"):
        shutil.rmtree(str(recorded["undo_dir"]), ignore_errors=True)


def _save_undo(store: Store, import_id: int, added: dict[str, pl.DataFrame], previous: dict[str, pl.DataFrame]) -> str:
    folder = store.workspace.home / "imports" / str(import_id)
    shutil.rmtree(folder, ignore_errors=True)
    for name, frames in (("added", added), ("previous", previous)):
        (folder / name).mkdir(parents=True, exist_ok=True, mode=0o700)
        for entity, frame in frames.items():
            path = folder / name / f"{entity}.parquet"
            frame.write_parquet(path)
            path.chmod(0o600)
    return str(folder)


def _report(progress: Progress | None, done: int, total: int) -> None:
    if progress is not None:
        progress(done, total)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)

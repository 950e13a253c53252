"""Running a planned import in one transaction, recording it in the import history, and undoing it.

An import is one ``Store.write``: it adds new keys and updates existing ones (natural keys,
so importing the same file twice changes nothing), and either all of it is stored or none.
Columns a format does not provide keep their stored values; gap-filling rows (authors,
placeholder epics) are only added where the key is new. The keys added and the rows replaced
are saved as Parquet under ``<workspace>/imports/<id>/`` so the import can be undone.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import sqlalchemy as sa

from core.importing.errors import ImportFailed
from core.importing.formats import ROW
from core.importing.plan import ImportPlan, without_rejected
from core.model.schema import DATETIME, ENTITIES, ValidationError, coerce
from core.store.database import ENTITY_TABLES, Store, imports_table

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
    import_id = _start_record(store, plan, actor)
    try:
        result = store.write(frames, "upsert", source=plan.source, _fail_after=_fail_after, on_rows=on_rows)
    except ValidationError as error:
        _finish_record(store, import_id, "failed", {})
        raise ImportFailed(f"{plan.source}: nothing was written.", error.problems) from None
    except Exception as error:
        _finish_record(store, import_id, "failed", {})
        raise ImportFailed(f"{plan.source}: the import failed and nothing was written ({error}).") from None
    counts = {
        e: {"added": result.added.get(e, 0), "updated": result.updated.get(e, 0), "rejected": rejected.get(e, 0)}
        for e in dict.fromkeys([*frames, *rejected])
    }
    undo_dir = _save_undo(store, import_id, result.added_keys, result.previous_rows)
    _finish_record(store, import_id, "done", counts, undo_dir)
    summary = ", ".join(f"{e} +{c['added']} ~{c['updated']} x{c['rejected']}" for e, c in counts.items())
    store.audit("import.run", actor, f"#{import_id} {plan.format} {plan.source}: {summary}")
    _report(progress, total, total)
    return ImportRecord(import_id, plan.source, plan.format, actor, _now(), "done", counts, tuple(plan.notes))


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
        raise ImportFailed(f"Import #{import_id} cannot be undone: its undo data is unreadable ({error}).") from None
    for entity in reversed([e for e in ENTITIES if e in added]):
        if added[entity].height:
            store.delete(entity, added[entity])
    restore = {e: f for e, f in previous.items() if f.height}
    if restore:
        try:
            store.write(restore, "upsert", source=f"undo of import #{import_id}")
        except ValidationError as error:
            raise ImportFailed(
                f"Import #{import_id}: the replaced rows could not be restored.", error.problems
            ) from None
    _finish_record(store, import_id, "undone", json.loads(row["entities"]), row["undo_dir"])
    store.audit("import.undo", actor, f"#{import_id} {row['format']} {row['source']}")
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


def _start_record(store: Store, plan: ImportPlan, actor: str | None) -> int:
    with store.engine.begin() as conn:
        result = conn.execute(
            imports_table.insert().values(
                at=_now(),
                actor=actor,
                source=plan.source[:2000],
                format=plan.format[:100],
                entities="{}",
                status="running",
            )
        )
        return int(result.inserted_primary_key[0])


def _finish_record(
    store: Store, import_id: int, status: str, counts: dict[str, dict[str, int]], undo_dir: str | None = None
) -> None:
    with store.engine.begin() as conn:
        conn.execute(
            imports_table.update()
            .where(imports_table.c.id == import_id)
            .values(status=status, entities=json.dumps(counts), undo_dir=undo_dir)
        )


def _save_undo(store: Store, import_id: int, added: dict[str, pl.DataFrame], previous: dict[str, pl.DataFrame]) -> str:
    folder = store.workspace.home / "imports" / str(import_id)
    shutil.rmtree(folder, ignore_errors=True)
    for name, frames in (("added", added), ("previous", previous)):
        (folder / name).mkdir(parents=True, exist_ok=True)
        for entity, frame in frames.items():
            frame.write_parquet(folder / name / f"{entity}.parquet")
    return str(folder)


def _report(progress: Progress | None, done: int, total: int) -> None:
    if progress is not None:
        progress(done, total)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)

"""Anything else: a file mapped column by column onto one entity (the mapping screen).

:func:`propose` guesses the entity and a mapping from column names, so the screen opens
pre-filled; :func:`build` applies a :class:`GenericMapping`. Numbers and dates are cleaned
the same way as for recognised formats; ``date_format`` is tried first for date columns.
Cost events without an ``event_id`` column get a stable id from the row's mapped values; a
teams file with only names (or only ids) gets the other from it (``Payments Squad`` →
``payments-squad``), so ``--entity teams`` takes a plain list of team names.
"""

from __future__ import annotations

import re

import polars as pl

from core.importing import values as v
from core.importing.errors import ImportFailed
from core.importing.formats.base import ROW, Columns, Mapped, with_rows
from core.importing.options import GenericMapping, ImportOptions
from core.importing.reading import RawTable
from core.model.schema import DATETIME, ENTITIES

SYNONYMS: dict[str, tuple[str, ...]] = {
    "created_at": ("created", "createddate", "creationdate", "opened", "openedat"),
    "merged_at": ("merged", "mergeddate"),
    "resolved_at": ("resolved", "resolveddate", "closedat", "closed", "completed", "completedat"),
    "started_at": ("started", "startdate", "start"),
    "delivered_at": ("delivered", "shipped", "releasedate", "released"),
    "finished_at": ("finished", "deployedat", "time", "timestamp"),
    "occurred_at": ("date", "time", "timestamp", "day", "usagedate"),
    "opened_at": ("opened", "created", "createdat", "start"),
    "amount": ("cost", "amountusd", "costusd", "price", "spend", "total"),
    "quantity": ("qty", "count", "tokens", "minutes", "units"),
    "work_item_key": ("key", "issuekey", "issue", "ticket"),
    "story_points": ("points", "storypoints", "estimate", "sp"),
    "name": ("title", "summary", "displayname"),
    "title": ("summary", "name"),
    "author_id": ("author", "user", "login", "username"),
    "repo": ("repository", "reponame", "project"),
    "environment": ("env", "stage"),
    "service": ("app", "application", "component", "system"),
    "severity": ("sev", "priority"),
    "metric_id": ("metric", "metricname", "kpi"),
    "value": ("amount", "measure", "val"),
    "team_id": ("team", "teamid", "squad"),
}


def propose(raw: RawTable, entity: str | None = None) -> GenericMapping:
    """The best-guess entity (unless given) and column mapping for ``raw`` from its column names."""
    candidates = [entity] if entity else list(ENTITIES)
    best: tuple[float, str, dict[str, str]] | None = None
    for name in candidates:
        mapping = _match_columns(name, raw.frame.columns)
        spec = ENTITIES[name]
        required = [c.name for c in spec.columns if c.required]
        covered = sum(1 for r in required if r in mapping)
        score = covered / max(len(required), 1) + 0.1 * len(mapping) / len(spec.columns)
        if best is None or score > best[0]:
            best = (score, name, mapping)
    assert best is not None
    return GenericMapping(entity=best[1], columns=best[2])


def build(raw: RawTable, options: ImportOptions, mapping: GenericMapping) -> Mapped:
    """Rows of ``mapping.entity`` taken from the mapped columns of ``raw``."""
    if mapping.entity not in ENTITIES:
        raise ImportFailed(f"`{mapping.entity}` is not an entity; choose one of {', '.join(ENTITIES)}.")
    spec = ENTITIES[mapping.entity]
    c = Columns(raw.frame)
    missing = [src for src in mapping.columns.values() if src not in c]
    if missing:
        raise ImportFailed(f"{raw.filename}: the mapping names column(s) the file does not have: {', '.join(missing)}.")
    formats = [mapping.date_format] if mapping.date_format else []
    exprs: list[pl.Expr] = [pl.col(ROW)]
    for col in spec.columns:
        if col.name in mapping.columns:
            source = c(mapping.columns[col.name])
            if col.dtype == DATETIME:
                expr = v.timestamp(source, options.timezone, formats)
            elif col.dtype == pl.Date:
                expr = v.day(source, formats)
            elif col.dtype in (pl.Float64, pl.Int64):
                expr = v.number(source)
            else:
                expr = source
        elif col.name in mapping.constants:
            expr = pl.lit(mapping.constants[col.name])
        elif col.name == "unit" and mapping.unit:
            expr = pl.lit(mapping.unit)
        elif col.name == "currency" and mapping.currency:
            expr = pl.lit(mapping.currency)
        elif col.name == "segment" and mapping.entity == "metric_observations":
            expr = pl.lit("all")
        else:
            continue
        exprs.append(expr.alias(col.name))
    if len(exprs) == 1:
        raise ImportFailed(f"{raw.filename}: map at least one column of the file onto {spec.label.lower()}.")
    frame = with_rows(raw.frame).select(exprs)
    if mapping.entity == "cost_events" and "event_id" not in frame.columns:
        parts = [pl.col(n) for n in frame.columns if n != ROW]
        frame = frame.with_columns(v.line_item_id(raw.filename, parts).alias("event_id"))
    if mapping.entity == "teams" and ("team_id" in frame.columns) != ("name" in frame.columns):
        given = pl.col("name") if "name" in frame.columns else pl.col("team_id")
        frame = frame.select(ROW, v.team_id(given).alias("team_id"), v.text(given).alias("name"))
    return Mapped({mapping.entity: frame})


def _match_columns(entity: str, columns: list[str]) -> dict[str, str]:
    normal = {_normal(c): c for c in reversed(columns)}
    mapping: dict[str, str] = {}
    for col in ENTITIES[entity].columns:
        for alias in (col.name, *SYNONYMS.get(col.name, ())):
            source = normal.get(_normal(alias))
            if source is not None and source not in mapping.values():
                mapping[col.name] = source
                break
    return mapping


def _normal(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())

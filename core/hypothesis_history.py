"""The hypothesis history: every proposed version of a hypothesis, applied or kept aside because it was locked.

``core.hypotheses.edit_hypothesis`` decides what becomes of an edit and returns the history entry;
this module stores those entries in ``tl_hypothesis_history`` (one row per entry, never updated or
deleted) and reads them back in the columns of ``core.hypotheses.HISTORY_SCHEMA``.
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl
import sqlalchemy as sa

from core.hypotheses import HISTORY_SCHEMA
from core.store import Store, metadata

_SQL_TYPES: dict[pl.DataType, sa.types.TypeEngine[object]] = {
    pl.String: sa.Text(),
    pl.Datetime("us"): sa.DateTime(),
    pl.Float64: sa.Double(),
    pl.Int64: sa.BigInteger(),
    pl.Boolean: sa.Boolean(),
}

history_table = sa.Table(
    "tl_hypothesis_history",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    *[
        sa.Column(name, _SQL_TYPES[dtype], nullable=name not in ("feature_id", "edited_at", "applied"))
        for name, dtype in HISTORY_SCHEMA.items()
    ],
)
"""One row per history entry, in the order they were appended."""


def append_history(store: Store, entry: Mapping[str, object]) -> None:
    """Append one history entry (the ``history_entry`` of a ``HypothesisEdit``) to the store."""
    _ensure_table(store)
    row = {name: entry.get(name) for name in HISTORY_SCHEMA.names()}
    with store.engine.begin() as conn:
        conn.execute(history_table.insert().values(**row))


def read_history(store: Store, feature_id: str | None = None) -> pl.DataFrame:
    """Every history entry (of ``feature_id`` when given), oldest first, in ``HISTORY_SCHEMA``."""
    _ensure_table(store)
    columns = [history_table.c[name] for name in HISTORY_SCHEMA.names()]
    query = sa.select(*columns).order_by(history_table.c.edited_at, history_table.c.id)
    if feature_id is not None:
        query = query.where(history_table.c.feature_id == feature_id)
    with store.engine.connect() as conn:
        rows = conn.execute(query).all()
    return pl.DataFrame([tuple(r) for r in rows], schema=HISTORY_SCHEMA, orient="row")


def _ensure_table(store: Store) -> None:
    """Create the table in a workspace whose tables were made before this module was imported."""
    history_table.create(store.engine, checkfirst=True)

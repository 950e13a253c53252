"""The hypothesis history: every proposed version of a hypothesis, applied or kept aside because it was locked.

``core.outcomes.hypotheses.edit_hypothesis`` decides what becomes of an edit and returns the history
entry; this module stores those entries in ``tl_hypothesis_history`` (one row per entry, never updated
or deleted) and reads them back in the columns of ``core.model.records.HISTORY_SCHEMA``.
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl
import sqlalchemy as sa

from core.model.records import HISTORY_SCHEMA
from core.store.database import Store, hypothesis_history_table


def append_history(store: Store, entry: Mapping[str, object]) -> None:
    """Append one history entry (the ``history_entry`` of a ``HypothesisEdit``) to the store."""
    row = {name: entry.get(name) for name in HISTORY_SCHEMA.names()}
    with store.engine.begin() as conn:
        conn.execute(hypothesis_history_table.insert().values(**row))


def read_history(store: Store, feature_id: str | None = None) -> pl.DataFrame:
    """Every history entry (of ``feature_id`` when given), oldest first, in ``HISTORY_SCHEMA``."""
    columns = [hypothesis_history_table.c[name] for name in HISTORY_SCHEMA.names()]
    query = sa.select(*columns).order_by(hypothesis_history_table.c.edited_at, hypothesis_history_table.c.id)
    if feature_id is not None:
        query = query.where(hypothesis_history_table.c.feature_id == feature_id)
    with store.engine.connect() as conn:
        rows = conn.execute(query).all()
    return pl.DataFrame([tuple(r) for r in rows], schema=HISTORY_SCHEMA, orient="row")

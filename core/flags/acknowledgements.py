"""Vanity-flag acknowledgements: who acknowledged which flag, when, and why, kept in ``tl_flag_acks``.

A flag's id is stable across recomputes (detector, subject and window), so an acknowledgement stays
attached to it. Rows are only ever appended: acknowledging a flag again adds its history, and
``core.flags.apply_acknowledgements`` shows the latest one beside the flag.
"""

from __future__ import annotations

import polars as pl
import sqlalchemy as sa

from core.flags import acknowledge
from core.model.records import ACK_SCHEMA
from core.store.database import Store, flag_acks_table, utc_now

MAX_COMMENT_CHARS = 2_000


def acknowledge_flag(store: Store, flag_id: str, by: str, comment: str) -> pl.DataFrame:
    """Store that ``by`` acknowledged ``flag_id`` now with ``comment``; returns the stored row (``ACK_SCHEMA``)."""
    if len(comment) > MAX_COMMENT_CHARS:
        raise ValueError(f"Keep the comment under {MAX_COMMENT_CHARS:,} characters.")
    row = acknowledge(pl.DataFrame(schema=ACK_SCHEMA), flag_id, by, comment, utc_now())
    with store.engine.begin() as conn:
        conn.execute(flag_acks_table.insert().values(**row.row(0, named=True)))
    store.audit("flag.acknowledge", by.strip(), f"{flag_id}: {row['comment'][0]}")
    return row


def read_acks(store: Store) -> pl.DataFrame:
    """Every acknowledgement, oldest first, in ``core.model.records.ACK_SCHEMA``."""
    columns = [flag_acks_table.c[name] for name in ACK_SCHEMA.names()]
    query = sa.select(*columns).order_by(flag_acks_table.c.acknowledged_at, flag_acks_table.c.id)
    with store.engine.connect() as conn:
        rows = conn.execute(query).all()
    return pl.DataFrame([tuple(r) for r in rows], schema=ACK_SCHEMA, orient="row")

"""Vanity-flag acknowledgements: who acknowledged which flag, when, and why, kept in ``tl_flag_acks``.

A flag's id is stable across recomputes (detector, subject and window), so an acknowledgement stays
attached to it. Rows are only ever appended: acknowledging a flag again adds its history, and
``core.flags.apply_acknowledgements`` shows the latest one beside the flag.
"""

from __future__ import annotations

import polars as pl
import sqlalchemy as sa

from core.flags import ACK_SCHEMA, acknowledge
from core.store import Store, metadata, utc_now

MAX_COMMENT_CHARS = 2_000

acks_table = sa.Table(
    "tl_flag_acks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("flag_id", sa.Text, nullable=False, index=True),
    sa.Column("acknowledged_by", sa.Text, nullable=False),
    sa.Column("acknowledged_at", sa.DateTime, nullable=False),
    sa.Column("comment", sa.Text, nullable=False),
)
"""One row per acknowledgement, in the order they were made."""


def acknowledge_flag(store: Store, flag_id: str, by: str, comment: str) -> pl.DataFrame:
    """Store that ``by`` acknowledged ``flag_id`` now with ``comment``; returns the stored row (``ACK_SCHEMA``)."""
    if len(comment) > MAX_COMMENT_CHARS:
        raise ValueError(f"Keep the comment under {MAX_COMMENT_CHARS:,} characters.")
    row = acknowledge(pl.DataFrame(schema=ACK_SCHEMA), flag_id, by, comment, utc_now())
    _ensure_table(store)
    with store.engine.begin() as conn:
        conn.execute(acks_table.insert().values(**row.row(0, named=True)))
    store.audit("flag.acknowledge", by.strip(), f"{flag_id}: {row['comment'][0]}")
    return row


def read_acks(store: Store) -> pl.DataFrame:
    """Every acknowledgement, oldest first, in ``core.flags.ACK_SCHEMA``."""
    _ensure_table(store)
    columns = [acks_table.c[name] for name in ACK_SCHEMA.names()]
    query = sa.select(*columns).order_by(acks_table.c.acknowledged_at, acks_table.c.id)
    with store.engine.connect() as conn:
        rows = conn.execute(query).all()
    return pl.DataFrame([tuple(r) for r in rows], schema=ACK_SCHEMA, orient="row")


def _ensure_table(store: Store) -> None:
    """Create the table in a workspace whose tables were made before this module was imported."""
    acks_table.create(store.engine, checkfirst=True)

"""Vanity-flag acknowledgements: who acknowledged which flag, when, and why, kept in ``tl_flag_acks``.

A flag's id is stable across recomputes (detector, subject and window), so an acknowledgement stays
attached to it. Rows are only ever appended: acknowledging a flag again adds its history, and
``apply_acknowledgements`` shows the latest one beside the flag.
"""

from __future__ import annotations

from datetime import datetime
from typing import TypeVar

import polars as pl
import sqlalchemy as sa

from core.model.records import ACK_SCHEMA
from core.store.database import Store, flag_acks_table, utc_now

MAX_COMMENT_CHARS = 2_000

Frame = TypeVar("Frame", pl.DataFrame, pl.LazyFrame)


def acknowledge_flag(store: Store, flag_id: str, by: str, comment: str) -> pl.DataFrame:
    """Store that ``by`` acknowledged ``flag_id`` now with ``comment``; returns the stored row (``ACK_SCHEMA``)."""
    if len(comment) > MAX_COMMENT_CHARS:
        raise ValueError(f"Keep the comment under {MAX_COMMENT_CHARS:,} characters.")
    row = acknowledge(pl.DataFrame(schema=ACK_SCHEMA), flag_id, by, comment, utc_now())
    with store.engine.begin() as conn:
        conn.execute(flag_acks_table.insert().values(**row.row(0, named=True)))
    store.audit("flag.acknowledge", by.strip(), f"{flag_id}: {row['comment'][0]}")
    return row


def apply_acknowledgements(flags: Frame, acks: Frame) -> Frame:
    """``flags`` with ``acknowledged`` (bool) and the latest acknowledgement of each: by, at and comment."""
    latest = acks.select(ACK_SCHEMA.names()).sort("acknowledged_at").unique("flag_id", keep="last")
    return flags.join(latest, on="flag_id", how="left").with_columns(
        pl.col("acknowledged_at").is_not_null().alias("acknowledged")
    )


def acknowledge(
    acks: pl.DataFrame, flag_id: str, acknowledged_by: str, comment: str, acknowledged_at: datetime
) -> pl.DataFrame:
    """``acks`` with one more acknowledgement; earlier ones of the same flag stay as its history."""
    if not flag_id.strip():
        raise ValueError("Choose a flag to acknowledge.")
    if not acknowledged_by.strip():
        raise ValueError("An acknowledgement needs the name of who made it.")
    row = pl.DataFrame(
        [
            {
                "flag_id": flag_id,
                "acknowledged_by": acknowledged_by.strip(),
                "acknowledged_at": acknowledged_at,
                "comment": comment.strip(),
            }
        ],
        schema=ACK_SCHEMA,
    )
    return pl.concat([acks.select(ACK_SCHEMA.names()).cast(dict(ACK_SCHEMA)), row])


def read_acks(store: Store) -> pl.DataFrame:
    """Every acknowledgement, oldest first, in ``core.model.records.ACK_SCHEMA``."""
    columns = [flag_acks_table.c[name] for name in ACK_SCHEMA.names()]
    query = sa.select(*columns).order_by(flag_acks_table.c.acknowledged_at, flag_acks_table.c.id)
    with store.engine.connect() as conn:
        rows = conn.execute(query).all()
    return pl.DataFrame([tuple(r) for r in rows], schema=ACK_SCHEMA, orient="row")

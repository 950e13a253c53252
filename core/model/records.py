"""The shapes of the workspace's own records: hypothesis history entries and flag acknowledgements.

The store keeps them in tables of these columns; the measures that write and read them work in these
Polars schemas, so both sides name one definition.
"""

from __future__ import annotations

import polars as pl

HISTORY_SCHEMA = pl.Schema(
    {
        "feature_id": pl.String,
        "edited_at": pl.Datetime("us"),
        "edited_by": pl.String,
        "metric_id": pl.String,
        "predicted_change": pl.Float64,
        "change_kind": pl.String,
        "lag_days": pl.Int64,
        "window_days": pl.Int64,
        "rationale": pl.String,
        "applied": pl.Boolean,
        "note": pl.String,
    }
)
"""One row per proposed version of a hypothesis, applied or kept aside because it was locked."""

ACK_SCHEMA = pl.Schema(
    {
        "flag_id": pl.String,
        "acknowledged_by": pl.String,
        "acknowledged_at": pl.Datetime("us"),
        "comment": pl.String,
    }
)
"""The acknowledgements table: who acknowledged which flag, when, and why."""

"""Hypothesis locking: a prediction can be changed until its feature is delivered, never after.

A feature delivered without a prediction may still get one: it is recorded as retrospective
(``created_at`` after delivery), judged like any other and left out of calibration.

Storage stays outside: ``edit_hypothesis`` takes the stored row and a proposed edit and returns
the row to store plus one history entry to append; ``locked_predictions`` reads that history
back and names, per delivered feature, the prediction standing at the moment of delivery.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import polars as pl

from core.model.records import HISTORY_SCHEMA

PREDICTION_FIELDS = ("metric_id", "predicted_change", "change_kind", "lag_days", "window_days")
"""The fields a verdict is judged on; changing one makes a new prediction."""
EDITABLE_FIELDS = (*PREDICTION_FIELDS, "rationale")


@dataclass(frozen=True)
class HypothesisEdit:
    """What became of a proposed edit: the row to store, the history entry, and why."""

    hypothesis: dict[str, object] | None
    history_entry: dict[str, object] | None
    applied: bool
    message: str


def edit_hypothesis(
    feature_id: str,
    stored: Mapping[str, object] | None,
    proposed: Mapping[str, object],
    delivered_at: datetime | None,
    edited_at: datetime,
    edited_by: str | None = None,
) -> HypothesisEdit:
    """The hypothesis row to store after proposing ``proposed``, with the history entry to append.

    ``stored`` is the current hypotheses row (None when the feature has none); ``delivered_at``
    is when the feature was delivered (None while it is not). Before delivery the edit is applied
    and ``created_at`` becomes ``edited_at`` whenever a prediction field changes, because that is
    when the prediction was made. From delivery on, the stored row is returned unchanged and the
    edit is only recorded in the history, marked as not applied.
    """
    candidate = {**(dict(stored) if stored else {}), **{k: v for k, v in proposed.items() if k in EDITABLE_FIELDS}}
    candidate["feature_id"] = feature_id
    candidate["lag_days"] = candidate.get("lag_days") or 0
    problems = _problems(candidate)
    if problems:
        message = f"Hypothesis for {feature_id} not saved: " + "; ".join(problems)
        return HypothesisEdit(dict(stored) if stored else None, None, False, message)
    if stored is not None and all(candidate.get(k) == stored.get(k) for k in EDITABLE_FIELDS):
        return HypothesisEdit(dict(stored), None, False, f"Hypothesis for {feature_id} is unchanged.")

    entry = {name: candidate.get(name) for name in HISTORY_SCHEMA.names()}
    entry.update(edited_at=edited_at, edited_by=edited_by)
    if delivered_at is not None:
        delivered = f"{delivered_at:%-d %b %Y}"
        if stored is None:
            row = {name: candidate.get(name) for name in _HYPOTHESIS_FIELDS}
            row["created_at"] = edited_at
            entry.update(applied=True, note="retrospective: recorded after delivery")
            return HypothesisEdit(
                row,
                entry,
                True,
                f"{feature_id} was delivered on {delivered}: retrospective prediction recorded, "
                f"{_describe(row)}. It is judged and shown as retrospective, and earns no calibration credit.",
            )
        entry.update(applied=False, note="kept aside: prediction locked at delivery")
        return HypothesisEdit(
            dict(stored),
            entry,
            False,
            f"{feature_id} was delivered on {delivered}, so its prediction is locked: "
            f"{_describe(stored)} made on {stored['created_at']:%-d %b %Y} stays the one judged. "
            "Your edit is kept in the history.",
        )

    changed = stored is None or any(candidate.get(k) != stored.get(k) for k in PREDICTION_FIELDS)
    created_at = edited_at if changed else stored["created_at"]  # type: ignore[index]
    row = {name: candidate.get(name) for name in _HYPOTHESIS_FIELDS}
    row["created_at"] = created_at
    entry.update(applied=True, note="created" if stored is None else "edited")
    verb = "recorded" if stored is None else "updated"
    return HypothesisEdit(row, entry, True, f"Prediction for {feature_id} {verb}: {_describe(row)}.")


def locked_predictions(history: pl.LazyFrame, features: pl.LazyFrame) -> pl.LazyFrame:
    """Per delivered feature, the last applied version of its hypothesis made before delivery.

    A feature whose first prediction came after delivery (retrospective) stands on that first one.

    Columns: feature_id, delivered_at, the prediction fields, rationale, made_at, and
    later_edits (how many edits were proposed after delivery and kept aside).
    """
    delivered = features.filter(pl.col("delivered_at").is_not_null()).select("feature_id", "delivered_at")
    dated = history.join(delivered, on="feature_id", how="inner")
    applied = dated.filter(pl.col("applied")).sort("edited_at")
    made_before = (
        applied.filter(pl.col("edited_at") <= pl.col("delivered_at")).group_by("feature_id").agg(pl.all().last())
    )
    retrospective = (
        applied.filter(pl.col("edited_at") > pl.col("delivered_at"))
        .group_by("feature_id")
        .agg(pl.all().first())
        .join(made_before.select("feature_id"), on="feature_id", how="anti")
    )
    standing = pl.concat([made_before, retrospective]).select(
        "feature_id",
        "delivered_at",
        *PREDICTION_FIELDS,
        "rationale",
        pl.col("edited_at").alias("made_at"),
    )
    later = (
        dated.filter(pl.col("edited_at") > pl.col("delivered_at"))
        .group_by("feature_id")
        .agg(pl.len().cast(pl.Int64).alias("later_edits"))
    )
    return (
        standing.join(later, on="feature_id", how="left")
        .with_columns(pl.col("later_edits").fill_null(0))
        .sort("feature_id")
    )


_HYPOTHESIS_FIELDS = ("feature_id", *EDITABLE_FIELDS, "created_at")


def _problems(row: Mapping[str, object]) -> list[str]:
    problems = []
    if not row.get("metric_id"):
        problems.append("choose the outcome metric it should move")
    change = row.get("predicted_change")
    if not isinstance(change, int | float) or isinstance(change, bool) or not math.isfinite(change):
        problems.append(f"predicted change `{change}` is not a number")
    if row.get("change_kind") not in ("relative", "absolute"):
        problems.append(f"change kind `{row.get('change_kind')}` is not one of relative, absolute")
    window = row.get("window_days")
    if not isinstance(window, int) or isinstance(window, bool) or window < 1:
        problems.append(f"judging window `{window}` is not a whole number of days of at least 1")
    lag = row.get("lag_days")
    if not isinstance(lag, int) or isinstance(lag, bool) or lag < 0:
        problems.append(f"lag `{lag}` is not a whole number of days of at least 0")
    return problems


def _describe(row: Mapping[str, object]) -> str:
    change = float(row["predicted_change"])  # type: ignore[arg-type]
    sign = "+" if change > 0 else ""
    amount = f"{sign}{change * 100:g}%" if row["change_kind"] == "relative" else f"{sign}{change:g}"
    return f"{amount} on {row['metric_id']} over {row['window_days']} days"

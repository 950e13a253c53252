"""Hypothesis locking: a prediction can change before delivery and never after."""

from __future__ import annotations

from datetime import datetime

import polars as pl

from core.outcomes.hypotheses import HISTORY_SCHEMA, edit_hypothesis, locked_predictions

STORED = {
    "feature_id": "F-1",
    "metric_id": "activation",
    "predicted_change": 0.05,
    "change_kind": "relative",
    "lag_days": 7,
    "window_days": 60,
    "rationale": "Fewer signup steps",
    "created_at": datetime(2025, 1, 10),
}
DELIVERED = datetime(2025, 3, 3, 14, 0)


def test_a_new_prediction_before_delivery_is_recorded_when_made():
    proposed = {k: v for k, v in STORED.items() if k not in ("feature_id", "created_at")}
    edit = edit_hypothesis("F-1", None, proposed, delivered_at=None, edited_at=datetime(2025, 1, 10), edited_by="ana")
    assert edit.applied
    assert edit.hypothesis == STORED
    assert edit.history_entry["note"] == "created" and edit.history_entry["applied"] is True
    assert set(edit.history_entry) == set(HISTORY_SCHEMA.names())


def test_changing_the_prediction_before_delivery_dates_it_anew():
    edit = edit_hypothesis("F-1", STORED, {"predicted_change": 0.08}, None, datetime(2025, 2, 1))
    assert edit.applied
    assert edit.hypothesis["predicted_change"] == 0.08
    assert edit.hypothesis["created_at"] == datetime(2025, 2, 1)
    rationale_only = edit_hypothesis("F-1", STORED, {"rationale": "Also faster email"}, None, datetime(2025, 2, 2))
    assert rationale_only.hypothesis["created_at"] == datetime(2025, 1, 10)


def test_editing_a_locked_prediction_keeps_the_original():
    edit = edit_hypothesis(
        "F-1", STORED, {"predicted_change": 0.2, "window_days": 30}, DELIVERED, datetime(2025, 4, 1), "ana"
    )
    assert not edit.applied
    assert edit.hypothesis == STORED
    assert edit.history_entry["predicted_change"] == 0.2
    assert edit.history_entry["applied"] is False
    assert edit.history_entry["edited_by"] == "ana"
    assert "delivered on 3 Mar 2025" in edit.message and "+5% on activation" in edit.message


def test_a_prediction_made_after_delivery_is_recorded_as_retrospective():
    proposed = {"metric_id": "activation", "predicted_change": 0.05, "change_kind": "relative", "window_days": 60}
    edit = edit_hypothesis("F-1", None, proposed, DELIVERED, datetime(2025, 4, 1))
    assert edit.applied
    assert edit.hypothesis["created_at"] == datetime(2025, 4, 1)
    assert edit.hypothesis["predicted_change"] == 0.05
    assert edit.history_entry["note"] == "retrospective: recorded after delivery"
    assert "retrospective prediction recorded" in edit.message


def test_an_invalid_edit_names_what_to_fix():
    edit = edit_hypothesis("F-1", STORED, {"change_kind": "percent", "window_days": 0}, None, datetime(2025, 2, 1))
    assert not edit.applied and edit.history_entry is None
    assert edit.hypothesis == STORED
    assert "change kind `percent` is not one of relative, absolute" in edit.message
    assert "judging window `0`" in edit.message


def test_the_judged_prediction_is_the_last_one_made_before_delivery():
    def entry(at: datetime, change: float, applied: bool) -> dict:
        return {
            **{k: STORED.get(k) for k in HISTORY_SCHEMA.names()},
            "edited_at": at,
            "edited_by": "ana",
            "predicted_change": change,
            "applied": applied,
            "note": "",
        }

    history = pl.DataFrame(
        [
            entry(datetime(2025, 1, 10), 0.05, True),
            entry(datetime(2025, 2, 1), 0.08, True),
            entry(datetime(2025, 4, 1), 0.20, False),
            entry(datetime(2025, 4, 2), 0.25, False),
        ],
        schema=HISTORY_SCHEMA,
    )
    features = pl.DataFrame({"feature_id": ["F-1", "F-2"], "delivered_at": [DELIVERED, None]})
    locked = locked_predictions(history.lazy(), features.lazy()).collect()
    assert locked.height == 1
    row = locked.row(0, named=True)
    assert row["predicted_change"] == 0.08
    assert row["made_at"] == datetime(2025, 2, 1)
    assert row["later_edits"] == 2

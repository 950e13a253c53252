"""Outcome tree: progress to target, projected date, and the open work under each outcome."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import polars as pl
import pytest

from core.outcomes.progress import current_levels, open_features, outcome_progress, outcome_tree

AS_OF = date(2025, 1, 31)
METRICS = pl.DataFrame(
    {
        "metric_id": ["m-time", "m-act", "m-vel", "m-rev"],
        "name": ["Application time", "Activation", "Velocity", "Revenue"],
        "level": ["outcome", "outcome", "activity", "outcome"],
        "unit": ["days", "share", "points", "EUR"],
        "direction": ["lower", "higher", "higher", "higher"],
        "baseline": [14.0, 0.2, 10.0, None],
        "target": [3.0, 0.3, 20.0, None],
        "target_date": [date(2025, 6, 30), date(2025, 12, 31), None, None],
    }
)


def observations() -> pl.DataFrame:
    """Straight lines over the last 90 days (x = days from AS_OF, x <= 0), plus rows to ignore."""
    x = list(range(-89, 1))
    dates = [AS_OF + timedelta(days=d) for d in x]
    return pl.DataFrame(
        {
            "metric_id": ["m-time"] * 90 + ["m-act"] * 90 + ["m-time", "m-time"],
            "date": dates + dates + [AS_OF - timedelta(days=200), AS_OF],
            "segment": ["all"] * 180 + ["all", "eu"],
            "value": [10.0 - 0.02 * d for d in x] + [0.25 - 0.0005 * d for d in x] + [1000.0, 1000.0],
        }
    )


def test_current_level_is_the_mean_of_the_last_28_days():
    levels = {
        r["metric_id"]: r["current"] for r in current_levels(observations().lazy(), AS_OF).collect().rows(named=True)
    }
    # x = -27..0 averages -13.5: 10 + 0.02 * 13.5 and 0.25 + 0.0005 * 13.5.
    assert levels["m-time"] == pytest.approx(10.27)
    assert levels["m-act"] == pytest.approx(0.25675)


def test_progress_projection_and_status_by_hand():
    rows = {
        r["metric_id"]: r
        for r in outcome_progress(METRICS.lazy(), observations().lazy(), AS_OF).collect().iter_rows(named=True)
    }
    assert set(rows) == {"m-time", "m-act", "m-rev"}
    time = rows["m-time"]
    assert time["progress"] == pytest.approx((10.27 - 14) / (3 - 14))  # 0.3391
    assert time["slope_per_day"] == pytest.approx(-0.02)
    # The line stands at 10 today and falls 0.02 a day: 7 / 0.02 = 350 days to reach 3.
    assert time["projected_date"] == date(2026, 1, 16)
    assert time["status"] == "late"
    act = rows["m-act"]
    assert act["progress"] == pytest.approx(0.5675)
    assert act["projected_date"] is None
    assert act["status"] == "moving away"
    assert rows["m-rev"]["status"] == "no target" and rows["m-rev"]["progress"] is None


def test_tree_places_features_under_capabilities_and_lists_open_work():
    capabilities = pl.DataFrame(
        {
            "capability_id": ["c1", "c2", "c3"],
            "name": ["Fast KYC", "Prefill", "Onboarding"],
            "metric_id": ["m-time", "m-time", "m-act"],
        }
    )
    features = pl.DataFrame(
        {
            "feature_id": ["f1", "f2", "f3", "f4", "f5"],
            "name": ["One", "Two", "Three", "Four", "Five"],
            "team_id": ["A", "A", "B", "B", "B"],
            "capability_id": ["c1", "c1", "c2", None, None],
            "status": ["delivered", "in_progress", "planned", "planned", "planned"],
        }
    )
    resolved = datetime(2025, 1, 5)
    work_items = pl.DataFrame(
        {
            "work_item_key": ["K-1", "K-2", "K-3", "K-4", "K-5"],
            "feature_id": ["f1", "f1", "f2", "f2", "f2"],
            "resolved_at": [resolved, resolved, resolved, None, None],
        }
    )
    hypotheses = pl.DataFrame({"feature_id": ["f4"], "metric_id": ["m-act"]})
    tree = outcome_tree(METRICS.lazy(), capabilities.lazy(), features.lazy(), work_items.lazy(), hypotheses.lazy())
    rows = tree.collect()
    assert rows.select("metric_id", "capability_id", "feature_id").rows() == [
        ("m-act", "c3", None),
        ("m-act", None, "f4"),
        ("m-rev", None, None),
        ("m-time", "c1", "f1"),
        ("m-time", "c1", "f2"),
        ("m-time", "c2", "f3"),
    ]
    f2 = rows.filter(pl.col("feature_id") == "f2").row(0, named=True)
    assert (f2["work_items"], f2["work_items_done"], f2["work_progress"]) == (3, 1, pytest.approx(1 / 3))
    f3 = rows.filter(pl.col("feature_id") == "f3").row(0, named=True)
    assert (f3["work_items"], f3["work_progress"]) == (0, None)
    summary = {r["metric_id"]: r for r in open_features(tree).collect().iter_rows(named=True)}
    assert (summary["m-time"]["features"], summary["m-time"]["open_features"]) == (3, 2)
    assert summary["m-time"]["open_feature_ids"] == ["f2", "f3"]
    assert summary["m-act"]["open_feature_ids"] == ["f4"]
    assert summary["m-rev"]["features"] == 0

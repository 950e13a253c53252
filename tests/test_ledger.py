"""Predicted-vs-actual ledger and the calibrated backlog, on a tiny hand-computed organisation."""

from __future__ import annotations

from datetime import date, datetime

import polars as pl
import pytest

from core.outcomes.ledger import backlog_ranking, calibration_trend, prediction_ledger, team_calibration

AS_OF = date(2025, 1, 31)


def verdict(
    feature_id: str, delivered: date, predicted: float, kind: str, est: float, low: float, high: float, outcome: str
) -> dict:
    rel = kind == "relative"
    return {
        "feature_id": feature_id,
        "metric_id": "m-rev",
        "predicted_change": predicted,
        "change_kind": kind,
        "method": "interrupted time series",
        "delivered_on": delivered,
        "estimate_abs": None if rel else est,
        "ci_low_abs": None if rel else low,
        "ci_high_abs": None if rel else high,
        "estimate_rel": est if rel else None,
        "ci_low_rel": low if rel else None,
        "ci_high_rel": high if rel else None,
        "verdict": outcome,
    }


VERDICTS = pl.DataFrame(
    [
        verdict("a1", date(2024, 2, 10), 0.05, "relative", 0.04, 0.02, 0.06, "confirmed"),
        verdict("a2", date(2024, 5, 1), 0.10, "relative", 0.02, -0.01, 0.05, "refuted"),
        verdict("a3", date(2024, 5, 20), -2.0, "absolute", -1.0, -3.0, 1.0, "inconclusive"),
        verdict("a4", date(2024, 6, 1), 0.05, "relative", 0.0, 0.0, 0.0, "pending"),
        verdict("a5", date(2024, 6, 1), 0.05, "relative", 0.09, 0.07, 0.11, "confounded"),
        verdict("b1", date(2024, 3, 1), 0.05, "relative", 0.06, 0.03, 0.09, "confirmed"),
        # Recorded after delivery: listed, never scored.
        {**verdict("b2", date(2024, 3, 5), 0.05, "relative", -0.2, -0.3, -0.1, "refuted"), "retrospective": True},
    ]
)
FEATURES = pl.DataFrame(
    {
        "feature_id": ["a1", "a2", "a3", "a4", "a5", "b1", "p1", "p2", "p3", "p4", "d1", "c1", "b2"],
        "name": ["x"] * 13,
        "team_id": ["A", "A", "A", "A", "A", "B", "A", "B", "C", "A", "B", "B", "B"],
        "status": ["delivered"] * 6
        + ["planned", "in_progress", "planned", "planned", "delivered", "cancelled"]
        + ["delivered"],
        "delivered_at": [datetime(2024, 1, 1)] * 6 + [None] * 4 + [datetime(2024, 1, 1), None, datetime(2024, 1, 1)],
        "estimate_cost": [None] * 6 + [10_000.0, 99_999.0, 5_000.0, 100.0, 1.0, 1.0, None],
    }
)


def ledger() -> pl.LazyFrame:
    return prediction_ledger(VERDICTS.lazy(), FEATURES.lazy())


def test_ledger_lists_judged_predictions_only():
    rows = ledger().collect()
    assert rows["feature_id"].to_list() == ["a1", "b1", "b2", "a2", "a3"]
    assert rows["quarter"].to_list() == ["2024-Q1", "2024-Q1", "2024-Q1", "2024-Q2", "2024-Q2"]
    assert rows["retrospective"].to_list() == [False, False, True, False, False]
    assert rows["contained"].to_list() == [True, True, False, False, True]
    assert rows["actual_to_predicted"].to_list() == pytest.approx([0.8, 1.2, -4.0, 0.2, 0.5])
    # Credit: realised share clipped to [0, 1]; the inconclusive a3 earns nothing despite containing -2.
    assert rows["credit"].to_list() == pytest.approx([0.8, 1.0, 0.0, 0.2, 0.0])
    # Interval score per unit predicted: a1 width 0.04 / 0.05; a2 (0.06 + 40 x 0.05) / 0.10; a3 4 / 2.
    assert rows.filter(pl.col("feature_id").is_in(["a1", "a2", "a3"]))["interval_score"].to_list() == pytest.approx(
        [0.8, 20.6, 2.0]
    )


def test_team_calibration_by_hand():
    teams = {r["team_id"]: r for r in team_calibration(ledger()).collect().iter_rows(named=True)}
    a, b = teams["A"], teams["B"]
    assert (a["judged"], a["confirmed"], a["contained"]) == (3, 1, 2)
    assert a["hit_rate"] == pytest.approx(1 / 3)
    assert a["mean_actual_to_predicted"] == pytest.approx((0.8 + 0.2 + 0.5) / 3)
    assert a["calibration"] == pytest.approx((0.8 + 0.2 + 0) / 3)
    assert a["mean_interval_score"] == pytest.approx((0.8 + 20.6 + 2.0) / 3)
    assert a["discount"] == pytest.approx((1.0 + 0.5) / (3 + 1))
    # b2 is retrospective: left out, so B's record is b1 alone.
    assert (b["judged"], b["hit_rate"], b["calibration"]) == (1, 1.0, 1.0)
    assert b["discount"] == pytest.approx(1.5 / 2)


def test_a_wider_interval_never_earns_a_better_score():
    narrow = verdict("n", date(2024, 2, 10), 0.05, "relative", 0.03, 0.02, 0.04, "refuted")
    wide = verdict("w", date(2024, 2, 10), 0.05, "relative", 0.03, -0.5, 0.56, "inconclusive")
    rows = prediction_ledger(pl.DataFrame([narrow, wide]).lazy(), FEATURES.lazy()).collect()
    scores = dict(zip(rows["feature_id"], rows["credit"], strict=True))
    assert scores["w"] == 0.0 < scores["n"]


def test_calibration_trend_over_quarters():
    trend = calibration_trend(ledger()).collect()
    a_q2 = trend.filter((pl.col("team_id") == "A") & (pl.col("quarter") == "2024-Q2")).row(0, named=True)
    assert (a_q2["judged"], a_q2["confirmed"]) == (2, 0)
    assert a_q2["calibration"] == pytest.approx(0.1)
    assert a_q2["mean_actual_to_predicted"] == pytest.approx(0.35)
    assert trend.select("team_id", "quarter").rows() == [("A", "2024-Q1"), ("A", "2024-Q2"), ("B", "2024-Q1")]


def test_backlog_ranks_by_discounted_value_per_cost():
    metrics = pl.DataFrame(
        {"metric_id": ["m-rev", "m-tickets"], "direction": ["higher", "lower"], "value_per_unit": [1000.0, None]}
    )
    observations = pl.DataFrame(
        {
            "metric_id": ["m-rev"] * 28 + ["m-tickets"] * 28 + ["m-rev"],
            "date": pl.concat(
                [pl.date_range(date(2025, 1, 4), AS_OF, eager=True)] * 2 + [pl.Series([date(2024, 12, 1)])]
            ),
            "segment": "all",
            "value": [200.0] * 28 + [50.0] * 28 + [9_999.0],
        }
    )
    hypotheses = pl.DataFrame(
        {
            "feature_id": ["p1", "p2", "p3"],
            "metric_id": ["m-rev", "m-rev", "m-tickets"],
            "predicted_change": [0.10, 5.0, -0.20],
            "change_kind": ["relative", "absolute", "relative"],
        }
    )
    costs = pl.DataFrame({"feature_id": ["p2"], "cost": [2_000.0]})
    calibration = team_calibration(ledger())
    ranked = backlog_ranking(
        FEATURES.lazy(), hypotheses.lazy(), metrics.lazy(), observations.lazy(), calibration, AS_OF, costs.lazy()
    ).collect()
    assert ranked["feature_id"].to_list() == ["p2", "p1", "p3", "p4"]
    rows = {r["feature_id"]: r for r in ranked.iter_rows(named=True)}
    # p2: +5 revenue units x team B's 0.75 x 1000 per unit, over the provided cost of 2000.
    assert rows["p2"]["expected_value"] == pytest.approx(5 * 0.75 * 1000)
    assert rows["p2"]["value_per_cost"] == pytest.approx(5 * 0.75 * 1000 / 2000)
    assert rows["p2"]["cost_source"] == "provided"
    # p1: +10% of the current 200 = 20 units x team A's 0.375 x 1000, over its estimate of 10000.
    assert rows["p1"]["expected_value"] == pytest.approx(7_500)
    assert rows["p1"]["value_per_cost"] == pytest.approx(0.75)
    # p3: tickets down 20% of 50 is an improvement of 10 on a lower-is-better metric; team C has no
    # track record (discount 0.5) and the metric has no money value: 5 / 50 = 10% per 5000.
    assert rows["p3"]["discount"] == 0.5
    assert rows["p3"]["expected_improvement"] == pytest.approx(5.0)
    assert rows["p3"]["expected_value"] is None
    assert rows["p3"]["improvement_rel_per_cost"] == pytest.approx(0.1 / 5000)
    assert rows["p3"]["basis"] == "relative change"
    assert rows["p4"]["basis"] == "unranked"
    assert ranked["rank"].to_list() == [1, 2, 3, 4]

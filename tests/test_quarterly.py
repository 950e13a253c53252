"""The quarterly review on a tiny organisation whose every figure is worked out by hand below.

Teams T1 Payments and T2 Search. Quarter 2026Q2 (1 Apr – 30 Jun) against 2026Q1:

- A (T1) delivered 10 May, hypothesis on M1 **confirmed** (+2 units × 250 USD = 500 USD realised);
  cost 1,000 (5 Apr) — and 500 more on 2 Jul, after the quarter ended, which the quarter never counts.
- B (T1) delivered 1 Jun, hypothesis on M1 **refuted**; cost 3,000 (15 May).
- C (T2) delivered 20 Apr with **no hypothesis**; cost 8,000 (10 Apr).
- D, E (T2) delivered 1 Feb and 1 Mar (2026Q1); cost 2,000 and 4,000 (January).
- 1,500 of T2's spend on 20 May reaches no feature.

2026Q2: 3 delivered, 2 with a hypothesis, 1 confirmed, 1 refuted; cost of the delivered features
1,000 + 3,000 + 8,000 = 12,000; median 3,000, mean 4,000; 2026Q1 median and mean (2,000 + 4,000) / 2 = 3,000.
Spend in 2026Q2: 1,000 + 3,000 + 8,000 + 1,500 = 13,500, of which 1,500 (1/9 = 11%) linked to no feature.
Outcome metric M1 (higher is better) averages 10 in Q1 and 11 in Q2: +10%, better; M2 stays at 5.
"""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest

from core import costs, overview
from core.cli import quarterly
from core.model.schema import coerce


def _frame(entity: str, rows: list[dict[str, object]]) -> pl.LazyFrame:
    return coerce(entity, pl.DataFrame(rows, infer_schema_length=None)).lazy()


def _feature(feature_id: str, team: str, delivered: str) -> dict[str, object]:
    return {
        "feature_id": feature_id,
        "name": f"Feature {feature_id}",
        "team_id": team,
        "status": "delivered",
        "started_at": "2026-01-02",
        "delivered_at": delivered,
    }


def _cost(event_id: str, at: str, amount: float, feature_id: str | None, team: str) -> dict[str, object]:
    return {
        "event_id": event_id,
        "occurred_at": at,
        "source": "other",
        "amount": amount,
        "feature_id": feature_id,
        "team_id": team,
    }


def _days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days)]


def _observations(metric_id: str, q1: float, q2: float) -> list[dict[str, object]]:
    return [
        {"metric_id": metric_id, "date": day, "segment": "all", "value": q1 if day < date(2026, 4, 1) else q2}
        for day in _days(date(2026, 1, 1), date(2026, 7, 1))
    ]


FRAMES = {
    "teams": _frame("teams", [{"team_id": "T1", "name": "Payments"}, {"team_id": "T2", "name": "Search"}]),
    "features": _frame(
        "features",
        [
            _feature("A", "T1", "2026-05-10 12:00"),
            _feature("B", "T1", "2026-06-01 09:00"),
            _feature("C", "T2", "2026-04-20 09:00"),
            _feature("D", "T2", "2026-02-01 09:00"),
            _feature("E", "T2", "2026-03-01 09:00"),
        ],
    ),
    "metrics": _frame(
        "metrics",
        [
            {"metric_id": "M1", "name": "Conversion", "level": "outcome", "unit": "%", "direction": "higher"},
            {"metric_id": "M2", "name": "Wait time", "level": "outcome", "unit": "days", "direction": "lower"},
            {"metric_id": "M3", "name": "PRs merged", "level": "activity", "unit": "PRs", "direction": "higher"},
        ],
    ).with_columns(pl.when(pl.col("metric_id") == "M1").then(250.0).alias("value_per_unit")),
    "metric_observations": _frame(
        "metric_observations", _observations("M1", 10, 11) + _observations("M2", 5, 5) + _observations("M3", 1, 9)
    ),
    "cost_events": _frame(
        "cost_events",
        [
            _cost("a1", "2026-04-05 10:00", 1000.0, "A", "T1"),
            _cost("a2", "2026-07-02 10:00", 500.0, "A", "T1"),
            _cost("b1", "2026-05-15 10:00", 3000.0, "B", "T1"),
            _cost("c1", "2026-04-10 10:00", 8000.0, "C", "T2"),
            _cost("d1", "2026-01-10 10:00", 2000.0, "D", "T2"),
            _cost("e1", "2026-01-12 10:00", 4000.0, "E", "T2"),
            _cost("u1", "2026-05-20 10:00", 1500.0, None, "T2"),
        ],
    ),
    "pull_requests": _frame("pull_requests", [{"pr_id": "x#1", "repo": "x", "created_at": "2025-01-01"}]).head(0),
    "work_items": _frame("work_items", [{"work_item_key": "X-1"}]).head(0),
    "people": _frame("people", [{"person_id": "p"}]).head(0),
}
JUDGED = pl.LazyFrame(
    {
        "feature_id": ["A", "B"],
        "metric_id": ["M1", "M1"],
        "verdict": ["confirmed", "refuted"],
        "estimate_abs": [2.0, -0.5],
    }
)
Q2 = costs.parse_period("2026Q2")


def _lines() -> pl.LazyFrame:
    return costs.attribute_costs(
        FRAMES["cost_events"], FRAMES["pull_requests"], FRAMES["work_items"], FRAMES["features"], FRAMES["people"]
    )


def _answer(team_id: str | None = None) -> overview.QuarterlyAnswer:
    return overview.quarterly_answer(FRAMES, JUDGED, _lines(), Q2, "USD", team_id)


def test_the_organisation_quarter_is_counted_as_worked_out_by_hand() -> None:
    answer = _answer()
    assert (answer.delivered, answer.with_hypothesis, answer.judged) == (3, 2, 2)
    assert answer.verdicts == {"confirmed": 1, "refuted": 1, "inconclusive": 0, "confounded": 0, "pending": 0}
    assert answer.realised_value == pytest.approx(500.0)
    assert answer.delivered_cost == pytest.approx(12_000.0)
    assert (answer.median_cost, answer.mean_cost) == (pytest.approx(3_000.0), pytest.approx(4_000.0))
    assert answer.previous.label == "2026Q1"
    assert answer.previous_delivered == 2
    assert (answer.previous_median_cost, answer.previous_mean_cost) == (pytest.approx(3_000.0), pytest.approx(3_000.0))
    assert (answer.spend, answer.unlinked_spend) == (pytest.approx(13_500.0), pytest.approx(1_500.0))
    assert answer.unlinked_share == pytest.approx(1 / 9)
    assert answer.features["feature_id"].to_list() == ["C", "B", "A"]
    assert answer.features["verdict"].to_list() == ["no hypothesis", "refuted", "confirmed"]
    assert answer.without_hypothesis["feature_id"].to_list() == ["C"]


def test_the_sentences_state_each_figure_once_with_its_currency() -> None:
    assert _answer().sentences() == [
        "In 2026Q2, the organisation delivered 3 features; 2 of them had a hypothesis.",
        "1 confirmed, 1 refuted, 0 inconclusive, 0 pending.",
        "Realised value 500.00 USD against a cost of 12,000 USD for the 3 delivered features.",
        "Median cost per delivered feature 3,000 USD (no change on 2026Q1's 3,000 USD); "
        "mean cost per delivered feature 4,000 USD (+33% on 2026Q1's 3,000 USD).",
        "11% of the quarter's spend of 13,500 USD is linked to no feature (1,500 USD).",
    ]


def test_a_team_quarter_counts_only_its_features_and_spend() -> None:
    answer = _answer("T1")
    assert (answer.delivered, answer.delivered_cost, answer.median_cost) == (2, 4_000.0, 2_000.0)
    assert answer.previous_delivered == 0 and answer.previous_median_cost is None
    assert (answer.spend, answer.unlinked_share) == (4_000.0, 0.0)
    assert "nothing delivered in 2026Q1 to compare with" in answer.sentences()[3]
    assert answer.scope == "team Payments"


def test_only_outcome_metrics_that_moved_are_listed() -> None:
    answer = _answer()
    assert answer.metrics["metric_id"].to_list() == ["M1", "M2"]  # the activity metric M3 never appears
    moved = answer.moved.row(0, named=True)
    assert answer.moved.height == 1
    assert (moved["metric_id"], moved["better"], moved["features_aimed"], moved["features_confirmed"]) == (
        "M1",
        True,
        2,
        1,
    )
    assert moved["change_pct"] == pytest.approx(0.10)


def test_the_trend_covers_the_quarters_with_deliveries_up_to_this_one() -> None:
    answer = _answer()
    assert answer.trend["quarter"].to_list() == ["2026Q1", "2026Q2"]
    assert answer.trend_sentence() == (
        "Mean cost per delivered feature cannot be called a trend yet (a trend needs 4 quarters) over the 2 "
        "quarters 2026Q1–2026Q2: from 3,000 USD to 4,000 USD."
    )


def test_the_csv_report_carries_the_same_figures() -> None:
    figures = pl.read_csv(quarterly.quarterly_report(_answer(), "csv").encode())
    values = dict(zip(figures["figure"], figures["value"], strict=True))
    assert values["delivered"] == 3 and values["median_cost"] == 3_000 and values["mean_cost"] == 4_000
    assert values["delivered_cost"] == 12_000 and values["unlinked_share"] == pytest.approx(1 / 9)


def test_the_html_report_is_self_contained_small_and_escaped() -> None:
    frames = dict(FRAMES)
    frames["features"] = FRAMES["features"].with_columns(
        pl.when(pl.col("feature_id") == "C").then(pl.lit("<script>alert(1)</script>")).otherwise("name").alias("name")
    )
    answer = overview.quarterly_answer(frames, JUDGED, _lines(), Q2, "USD")
    page = quarterly.quarterly_report(answer, "html")
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script" not in page and "http" not in page.replace("http://www.w3.org", "")
    assert len(page.encode()) < 1_000_000
    assert '<meta name="viewport"' in page and page.count("<svg") == 3
    assert "<details>" in page and page.index("<details>") > page.index("Delivered features")
    for sentence in answer.sentences():
        assert sentence.replace("'", "&#39;") in page

"""Value throughput on hand-made weeks: every expected count is written out here."""

from __future__ import annotations

from datetime import date, datetime

import polars as pl
import pytest

from core.delivery.throughput import (
    COUNTS,
    LEVELS,
    daily_throughput,
    milestone_markers,
    period_changes,
    summary_line,
    throughput_series,
)
from core.model.schema import coerce

MAR_2, MAR_9, MAR_16 = date(2026, 3, 2), date(2026, 3, 9), date(2026, 3, 16)

FEATURES = coerce(
    "features",
    pl.DataFrame(
        [
            dict(
                feature_id="f1",
                team_id="t1",
                status="delivered",
                delivered_at=datetime(2026, 3, 3, 10),
                milestone_id="m1",
            ),
            dict(
                feature_id="f2",
                team_id="t1",
                status="delivered",
                delivered_at=datetime(2026, 3, 5, 17),
                milestone_id="m1",
            ),
            dict(feature_id="f3", team_id="t1", status="delivered", delivered_at=datetime(2026, 3, 18, 9)),
            dict(
                feature_id="f4",
                team_id="t2",
                status="delivered",
                delivered_at=datetime(2026, 3, 19, 9),
                milestone_id="m2",
            ),
            dict(feature_id="f5", team_id="t1", status="in_progress", milestone_id="m2"),
            dict(feature_id="f6", team_id="t1", status="delivered", delivered_at=datetime(2026, 3, 17, 9)),
        ]
    ).with_columns(pl.col("feature_id").alias("name")),
).lazy()

VERDICTS = pl.LazyFrame(
    {"feature_id": ["f1", "f2", "f3", "f4"], "verdict": ["confirmed", "pending", "refuted", "confirmed"]}
)
VALUES = pl.LazyFrame({"feature_id": ["f1", "f4"], "realised_value": [1000.0, 500.0]})
COSTS = pl.LazyFrame({"feature_id": ["f1", "f1", "f2", "f3", "f4"], "cost": [300.0, 100.0, 100.0, 200.0, 250.0]})


def _merged(day: int, team: str) -> dict[str, object]:
    return dict(team_id=team, state="merged", created_at=datetime(2026, 3, day, 8), merged_at=datetime(2026, 3, day, 9))


PULL_REQUESTS = coerce(
    "pull_requests",
    pl.DataFrame(
        [
            _merged(2, "t1"),
            _merged(3, "t1"),
            _merged(6, "t1"),
            _merged(8, "t2"),  # Sunday 8 March still belongs to the week of 2 March
            _merged(16, "t1"),
            _merged(20, "t1"),
            dict(team_id="t1", state="open", created_at=datetime(2026, 3, 10, 8)),
        ]
    ).with_columns(
        pl.format("r#{}", pl.int_range(pl.len())).alias("pr_id"),
        pl.lit("r").alias("repo"),
        pl.lit("human").alias("author_kind"),
    ),
).lazy()

MILESTONES = pl.LazyFrame(
    {
        "milestone_id": ["m1", "m2", "m3"],
        "name": ["Beta", "Launch", "Sunday freeze"],
        "date": [date(2026, 3, 6), date(2026, 3, 16), date(2026, 3, 15)],
    }
)


@pytest.fixture
def daily() -> pl.LazyFrame:
    return daily_throughput(FEATURES, PULL_REQUESTS, VERDICTS, VALUES, COSTS)


def test_weekly_counts_for_the_organisation(daily: pl.LazyFrame) -> None:
    weeks = throughput_series(daily, "week").collect()
    assert weeks["period_start"].to_list() == [MAR_2, MAR_9, MAR_16]
    assert weeks["period_end"].to_list() == [date(2026, 3, 8), date(2026, 3, 15), date(2026, 3, 22)]
    assert weeks["features_delivered"].to_list() == [2, 0, 3]
    assert weeks["features_confirmed"].to_list() == [1, 0, 1]
    assert weeks["features_pending"].to_list() == [1, 0, 0]
    assert weeks["features_refuted"].to_list() == [0, 0, 1]
    assert weeks["prs_merged"].to_list() == [4, 0, 2]
    assert weeks["realised_value"].to_list() == [1000.0, None, 500.0]
    assert weeks["cost"].to_list() == [500.0, None, 450.0]
    assert weeks["value_to_cost"].to_list() == pytest.approx([2.0, None, 500 / 450], nan_ok=True)


def test_empty_weeks_are_zero_rows_not_missing(daily: pl.LazyFrame) -> None:
    weeks = throughput_series(daily, "week", start=date(2026, 2, 23), end=date(2026, 3, 29)).collect()
    assert weeks.height == 5
    assert weeks["period_start"].to_list() == [date(2026, 2, 23), MAR_2, MAR_9, MAR_16, date(2026, 3, 23)]
    for column in COUNTS:
        assert weeks[column].null_count() == 0
    assert weeks.row(0, named=True)["features_delivered"] == 0
    assert weeks.row(4, named=True)["prs_merged"] == 0


def test_one_team(daily: pl.LazyFrame) -> None:
    weeks = throughput_series(daily, "week", team_id="t1").collect()
    assert weeks["features_delivered"].to_list() == [2, 0, 2]
    assert weeks["features_confirmed"].to_list() == [1, 0, 0]
    assert weeks["prs_merged"].to_list() == [3, 0, 2]


def test_month_and_quarter(daily: pl.LazyFrame) -> None:
    month = throughput_series(daily, "month").collect().row(0, named=True)
    assert (month["period_start"], month["features_delivered"], month["features_confirmed"]) == (date(2026, 3, 1), 5, 2)
    quarter = throughput_series(daily, "quarter").collect().row(0, named=True)
    assert (quarter["period_start"], quarter["period_end"], quarter["prs_merged"]) == (
        date(2026, 1, 1),
        date(2026, 3, 31),
        6,
    )
    assert quarter["value_to_cost"] == pytest.approx(1500 / 950)


def test_nothing_is_lost_or_counted_twice(daily: pl.LazyFrame) -> None:
    totals = throughput_series(daily, "week").collect().select(COUNTS).sum().row(0, named=True)
    delivered = FEATURES.filter(pl.col("status") == "delivered").collect().height
    assert totals["features_delivered"] == delivered
    assert totals["prs_merged"] == PULL_REQUESTS.filter(pl.col("merged_at").is_not_null()).collect().height
    per_team = sum(
        throughput_series(daily, "week", team_id=t).collect()["features_delivered"].sum() for t in ("t1", "t2")
    )
    assert per_team == delivered


def test_value_and_cost_are_null_when_not_given() -> None:
    weeks = throughput_series(daily_throughput(FEATURES, PULL_REQUESTS, VERDICTS), "week").collect()
    assert weeks["realised_value"].null_count() == weeks.height
    assert weeks["value_to_cost"].null_count() == weeks.height
    assert weeks["features_confirmed"].to_list() == [1, 0, 1]


def test_milestones_land_on_their_week_with_the_features_they_carried() -> None:
    markers = {r["milestone_id"]: r for r in milestone_markers(MILESTONES, FEATURES).collect().to_dicts()}
    assert markers["m1"]["period_start"] == MAR_2
    assert markers["m1"]["feature_ids"] == ["f1", "f2"]
    assert markers["m2"]["period_start"] == MAR_16  # a Monday opens its own week
    assert markers["m2"]["feature_ids"] == ["f4", "f5"]
    assert markers["m3"]["period_start"] == MAR_9  # a Sunday closes the week before
    assert (markers["m3"]["features"], markers["m3"]["feature_ids"]) == (0, [])
    team = {r["milestone_id"]: r for r in milestone_markers(MILESTONES, FEATURES, team_id="t2").collect().to_dicts()}
    assert team["m2"]["feature_ids"] == ["f4"]


def _quarters(prs: tuple[int, int], delivered: tuple[int, int], confirmed: tuple[int, int]) -> pl.LazyFrame:
    daily = pl.LazyFrame(
        {
            "day": [date(2026, 5, 1), date(2026, 8, 1)],
            "team_id": ["t1", "t1"],
            "features_delivered": list(delivered),
            "features_confirmed": list(confirmed),
            "prs_merged": list(prs),
        }
    ).with_columns(
        *[
            pl.lit(0).alias(c)
            for c in COUNTS
            if c.startswith("features_") and c not in ("features_delivered", "features_confirmed")
        ],
        pl.lit(None, dtype=pl.Float64).alias("realised_value"),
        pl.lit(None, dtype=pl.Float64).alias("cost"),
    )
    return throughput_series(daily, "quarter")


def test_summary_line_compares_the_last_two_periods() -> None:
    series = _quarters(prs=(10, 14), delivered=(4, 4), confirmed=(10, 9))
    line = summary_line(period_changes(series).collect(), "quarter")
    assert line == "2026 Q3 vs Q2: PRs merged +40%, features delivered ±0%, features confirmed −10%"


def test_summary_line_without_activity_for_executives() -> None:
    series = _quarters(prs=(10, 14), delivered=(0, 3), confirmed=(0, 1))
    changes = period_changes(series, include_activity=False).collect()
    assert "prs_merged" not in changes["measure"].to_list()
    assert LEVELS["prs_merged"] == "activity"
    assert summary_line(changes) == "2026 Q3 vs Q2: features delivered 0 → 3, features confirmed 0 → 1"


def test_summary_line_with_a_single_period() -> None:
    series = throughput_series(daily_throughput(FEATURES, PULL_REQUESTS, VERDICTS), "quarter")
    assert summary_line(period_changes(series).collect()) == "Not enough history for a comparison yet."

"""The canonical model's validation: every problem named with entity, row, column, value and expectation."""

from __future__ import annotations

from datetime import date, datetime

import polars as pl
import pytest

from core.model.schema import DATETIME, ENTITIES, ValidationError, conform, validate


def _messages(entity: str, frame: pl.DataFrame, known: dict[str, pl.DataFrame] | None = None) -> list[str]:
    return [str(p) for p in validate(entity, frame, known)]


def test_a_good_frame_has_no_problems_and_conforms_to_the_schema() -> None:
    frame = pl.DataFrame(
        {
            "pr_id": ["pay#1", "pay#2"],
            "repo": ["pay", "pay"],
            "author_kind": ["human", "agent"],
            "state": ["merged", "open"],
            "created_at": ["2026-02-15T16:51:00Z", "2026-02-16 09:00"],
            "additions": ["10", "3"],
            "feature_id": ["F1", None],
            "unknown_column": ["kept out", "of the model"],
        }
    )
    assert validate("pull_requests", frame, {"features": pl.DataFrame({"feature_id": ["F1"]})}) == []
    out = conform("pull_requests", frame)
    assert out.schema == ENTITIES["pull_requests"].schema
    assert out["created_at"].to_list() == [datetime(2026, 2, 15, 16, 51), datetime(2026, 2, 16, 9, 0)]
    assert out["additions"].to_list() == [10, 3]
    assert out["deployment_id"].null_count() == 2


def test_every_problem_is_reported_with_row_column_value_and_expectation() -> None:
    frame = pl.DataFrame(
        {
            "pr_id": ["a#1", "a#1", "a#2", "a#3"],
            "repo": ["a", "a", "a", None],
            "author_kind": ["human", "bot", "agent", "human"],
            "state": ["merged", "open", "open", "open"],
            "created_at": ["2024-01-01", "2024-13-01", "2024-02-01", "2024-02-02"],
            "additions": ["10", "x", "-1", "1"],
            "feature_id": ["F1", "F9", None, None],
        }
    )
    assert _messages("pull_requests", frame, {"features": pl.DataFrame({"feature_id": ["F1"]})}) == [
        "pull_requests row 1, column `pr_id`: `a#1` repeats the key (pr_id) of another row",
        "pull_requests row 2, column `additions`: `x` is not a whole number",
        "pull_requests row 2, column `author_kind`: `bot` is not one of human, agent",
        "pull_requests row 2, column `created_at`: `2024-13-01` is not a date-time (expected e.g. 2026-02-15 16:51 "
        "or ISO 8601)",
        "pull_requests row 2, column `feature_id`: `F9` does not match any features.feature_id",
        "pull_requests row 2, column `pr_id`: `a#1` repeats the key (pr_id) of another row",
        "pull_requests row 3, column `additions`: `-1` is below the minimum 0",
        "pull_requests row 4, column `repo`: is required",
    ]


def test_a_missing_required_column_is_named() -> None:
    frame = pl.DataFrame({"event_id": ["e1"], "source": ["ci"]})
    assert _messages("cost_events", frame) == ["cost_events column `occurred_at`: is a required column and is missing"]


def test_an_amount_that_is_not_a_number_is_refused() -> None:
    frame = pl.DataFrame(
        {
            "event_id": ["e1", "e2"],
            "occurred_at": ["2026-01-05", "2026-01-06"],
            "source": ["ci", "llm"],
            "amount": ["12.50", "$1,200"],
        }
    )
    assert _messages("cost_events", frame) == ["cost_events row 2, column `amount`: `$1,200` is not a number"]


def test_zoned_times_are_normalised_to_utc() -> None:
    frame = pl.DataFrame(
        {"incident_id": ["i1", "i2"], "opened_at": ["2026-03-01T10:00:00+02:00", "2026-03-01T10:00:00Z"]}
    )
    out = conform("incidents", frame)
    assert out["opened_at"].to_list() == [datetime(2026, 3, 1, 8, 0), datetime(2026, 3, 1, 10, 0)]
    assert out.schema["opened_at"] == DATETIME


def test_composite_keys_and_self_contained_references() -> None:
    obs = pl.DataFrame(
        {
            "metric_id": ["m", "m", "m"],
            "date": ["2026-01-01", "2026-01-01", "2026-01-01"],
            "segment": ["all", "control", "all"],
            "value": [1.0, 2.0, 3.0],
        }
    )
    assert _messages("metric_observations", obs, {"metrics": pl.DataFrame({"metric_id": ["m"]})}) == [
        "metric_observations row 1, column `metric_id, date, segment`: `m, 2026-01-01, all` repeats the key "
        "(metric_id, date, segment) of another row",
        "metric_observations row 3, column `metric_id, date, segment`: `m, 2026-01-01, all` repeats the key "
        "(metric_id, date, segment) of another row",
    ]


def test_conform_raises_one_error_listing_the_first_problems_and_the_total() -> None:
    frame = pl.DataFrame({"team_id": [f"t{i}" for i in range(30)], "name": [None] * 30})
    with pytest.raises(ValidationError) as caught:
        conform("teams", frame, source="teams.csv")
    message = caught.value.message
    assert message.splitlines()[0] == "30 problems found; nothing was written."
    assert message.splitlines()[1] == "teams.csv: teams row 1, column `name`: is required"
    assert message.splitlines()[-1] == "... and 10 more"


@pytest.mark.parametrize("entity", list(ENTITIES))
def test_every_entity_references_only_entities_defined_before_it(entity: str) -> None:
    order = list(ENTITIES)
    for column in ENTITIES[entity].columns:
        if column.references:
            assert order.index(column.references[0]) <= order.index(entity), column.name


def test_dates_outside_1970_to_2100_are_refused_with_row_column_and_value() -> None:
    days = ["0000-01-01", "-0001-01-01", "1969-12-31", "1970-01-01", "2100-12-31", "2101-01-01", "2024-05-01"]
    milestones = pl.DataFrame({"milestone_id": [f"m{i}" for i in range(7)], "name": ["n"] * 7, "date": days})
    outside = "is outside the accepted dates 1970-01-01 to 2100-12-31 (setting `import.date_range`)"
    assert [(p.row, p.column, p.value, p.expected) for p in validate("milestones", milestones)] == [
        (1, "date", "0000-01-01", outside),
        (2, "date", "-0001-01-01", outside),
        (3, "date", "1969-12-31", outside),
        (6, "date", "2101-01-01", outside),
    ]
    times = ["1970-01-01T00:00:00Z", "2100-12-31 23:59:59", "2101-01-01 00:00:00", "1969-12-31 23:59:59"]
    deployments = pl.DataFrame(
        {
            "deployment_id": ["d1", "d2", "d3", "d4"],
            "environment": ["p"] * 4,
            "status": ["success"] * 4,
            "finished_at": times,
        }
    )
    assert [p.row for p in validate("deployments", deployments)] == [3, 4]
    narrow = (date(2024, 1, 1), date(2024, 12, 31))
    assert [p.row for p in validate("milestones", milestones, date_range=narrow)] == [1, 2, 3, 4, 5, 6]


def test_nan_infinite_and_negative_amounts_are_refused() -> None:
    frame = pl.DataFrame(
        {
            "event_id": [f"e{i}" for i in range(7)],
            "occurred_at": ["2026-01-05"] * 7,
            "source": ["llm"] * 7,
            "amount": ["NaN", "inf", "-inf", "-0.01", "1e309", "3.5", "0"],
            "quantity": ["1", "nan", "-2", "1", "1", "1", "1"],
        }
    )
    assert _messages("cost_events", frame) == [
        "cost_events row 1, column `amount`: `NaN` is not a finite number",
        "cost_events row 2, column `amount`: `inf` is not a finite number",
        "cost_events row 2, column `quantity`: `nan` is not a finite number",
        "cost_events row 3, column `amount`: `-inf` is not a finite number",
        "cost_events row 3, column `quantity`: `-2` is below the minimum 0",
        "cost_events row 4, column `amount`: `-0.01` is below the minimum 0",
        "cost_events row 5, column `amount`: `1e309` is not a finite number",
    ]


NON_NEGATIVE = {
    ("people", "hourly_cost"),
    ("features", "estimate_cost"),
    ("hypotheses", "lag_days"),
    ("hypotheses", "min_meaningful_change"),
    ("work_items", "story_points"),
    ("pull_requests", "additions"),
    ("pull_requests", "deletions"),
    ("pull_requests", "reviews"),
    ("cost_events", "amount"),
    ("cost_events", "quantity"),
}


def test_money_quantities_points_and_sizes_may_not_be_negative() -> None:
    floored = {(e.name, c.name) for e in ENTITIES.values() for c in e.columns if c.minimum == 0}
    assert floored == NON_NEGATIVE

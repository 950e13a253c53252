"""The canonical model's validation: every problem named with entity, row, column, value and expectation."""

from __future__ import annotations

from datetime import datetime

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

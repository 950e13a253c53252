"""The workspace store on SQLite and on the machine's PostgreSQL: round trips, atomic writes, the snapshot."""

from __future__ import annotations

from datetime import date, datetime

import polars as pl
import pytest

from core.model.schema import ValidationError
from core.store.database import Store

TEAMS = pl.DataFrame({"team_id": ["pay", "onb"], "name": ["Payments", "Onboarding"]})
PEOPLE = pl.DataFrame(
    {
        "person_id": ["ana", "bot"],
        "name": ["Ana", "fixer[bot]"],
        "team_id": ["pay", "pay"],
        "kind": ["human", "agent"],
        "hourly_cost": [95.5, None],
    }
)
OBS = pl.DataFrame(
    {
        "metric_id": ["act", "act"],
        "date": [date(2026, 1, 2), date(2026, 1, 1)],
        "segment": ["all", "all"],
        "value": [0.41, 0.40],
    }
)
METRICS = pl.DataFrame(
    {
        "metric_id": ["act"],
        "name": ["Activation"],
        "level": ["outcome"],
        "direction": ["higher"],
        "target_date": [date(2027, 6, 30)],
    }
)


def test_round_trip_keeps_types_and_values(store: Store) -> None:
    result = store.write({"teams": TEAMS, "people": PEOPLE, "metrics": METRICS, "metric_observations": OBS})
    assert result.added == {"teams": 2, "people": 2, "metrics": 1, "metric_observations": 2}
    people = store.read("people").sort("person_id")
    assert people.to_dicts() == [
        {"person_id": "ana", "name": "Ana", "team_id": "pay", "kind": "human", "hourly_cost": 95.5},
        {"person_id": "bot", "name": "fixer[bot]", "team_id": "pay", "kind": "agent", "hourly_cost": None},
    ]
    assert store.read("metrics")["target_date"].to_list() == [date(2027, 6, 30)]
    cost = pl.DataFrame(
        {
            "event_id": ["e1"],
            "occurred_at": [datetime(2026, 1, 5, 12, 30, 15, 250)],
            "source": ["ci"],
            "quantity": [12.0],
            "unit": ["minutes"],
        }
    )
    store.write({"cost_events": cost})
    assert store.read("cost_events")["occurred_at"].to_list() == [datetime(2026, 1, 5, 12, 30, 15, 250)]


def test_upsert_updates_existing_keys_and_reports_previous_rows(store: Store) -> None:
    store.write({"teams": TEAMS})
    result = store.write(
        {"teams": pl.DataFrame({"team_id": ["pay", "srch"], "name": ["Payments & Billing", "Search"]})}
    )
    assert (result.added, result.updated) == ({"teams": 1}, {"teams": 1})
    assert result.previous_rows["teams"].to_dicts() == [{"team_id": "pay", "name": "Payments"}]
    assert result.added_keys["teams"]["team_id"].to_list() == ["srch"]
    assert dict(store.read("teams").sort("team_id").rows()) == {
        "onb": "Onboarding",
        "pay": "Payments & Billing",
        "srch": "Search",
    }


def test_the_same_write_twice_does_not_duplicate(store: Store) -> None:
    store.write({"teams": TEAMS})
    store.write({"teams": TEAMS})
    assert store.count("teams") == 2


def test_composite_keys_upsert(store: Store) -> None:
    store.write({"metrics": METRICS, "metric_observations": OBS})
    newer = OBS.with_columns(pl.col("value") * 2).head(1)
    result = store.write({"metric_observations": newer})
    assert result.updated == {"metric_observations": 1}
    values = dict(store.read("metric_observations").select("date", "value").rows())
    assert values == {date(2026, 1, 2): 0.82, date(2026, 1, 1): 0.40}


def test_a_write_that_fails_halfway_leaves_the_previous_data_intact(store: Store) -> None:
    store.write({"teams": TEAMS, "people": PEOPLE})
    version = store.data_version()
    with pytest.raises(RuntimeError, match="injected"):
        store.write(
            {
                "teams": pl.DataFrame({"team_id": ["pay"], "name": ["Renamed"]}),
                "people": pl.DataFrame({"person_id": ["cy"], "name": ["Cy"], "kind": ["human"]}),
            },
            _fail_after="teams",
        )
    assert dict(store.read("teams").rows()) == {"pay": "Payments", "onb": "Onboarding"}
    assert store.count("people") == 2
    assert store.data_version() == version
    assert store.snapshot().scan("teams").collect().height == 2


def test_invalid_rows_write_nothing_and_name_the_problem(store: Store) -> None:
    store.write({"teams": TEAMS})
    bad_people = pl.DataFrame({"person_id": ["cy"], "name": ["Cy"], "team_id": ["nope"], "kind": ["human"]})
    with pytest.raises(ValidationError) as caught:
        store.write(
            {"teams": pl.DataFrame({"team_id": ["new"], "name": ["New"]}), "people": bad_people}, source="people.csv"
        )
    assert [str(p) for p in caught.value.problems] == [
        "people.csv: people row 1, column `team_id`: `nope` does not match any teams.team_id"
    ]
    assert store.count("teams") == 2


def test_references_resolve_against_stored_rows_and_the_same_write(store: Store) -> None:
    store.write({"teams": TEAMS})
    store.write({"people": PEOPLE})
    store.write(
        {
            "teams": pl.DataFrame({"team_id": ["mob"], "name": ["Mobile"]}),
            "people": pl.DataFrame({"person_id": ["mo"], "name": ["Mo"], "team_id": ["mob"], "kind": ["human"]}),
        }
    )
    assert store.count("people") == 3


def test_replace_makes_the_entity_hold_exactly_the_given_rows(store: Store) -> None:
    store.write({"teams": TEAMS})
    store.write({"teams": pl.DataFrame({"team_id": ["x"], "name": ["X"]})}, mode="replace")
    assert store.read("teams")["team_id"].to_list() == ["x"]


def test_snapshot_follows_every_write_and_is_sorted_by_time(store: Store) -> None:
    store.write({"metrics": METRICS, "metric_observations": OBS})
    first = store.snapshot()
    assert first.scan("metric_observations").collect()["date"].to_list() == [date(2026, 1, 1), date(2026, 1, 2)]
    store.write({"teams": TEAMS})
    second = store.snapshot()
    assert second.version == first.version + 1
    assert second.scan("teams").collect().height == 2
    assert second.scan("metric_observations").collect().height == 2
    assert second.scan("features").collect().schema["delivered_at"] == pl.Datetime("us")


def test_delete_removes_keys(store: Store) -> None:
    store.write({"teams": TEAMS})
    assert store.delete("teams", pl.DataFrame({"team_id": ["onb"]})) == 1
    assert store.read("teams")["team_id"].to_list() == ["pay"]


def test_settings_and_audit_log(store: Store) -> None:
    assert store.get_setting("cost.ci_rate", 0.008) == 0.008
    store.set_setting("cost.ci_rate", {"ubuntu": 0.01}, actor="ada")
    assert store.get_setting("cost.ci_rate") == {"ubuntu": 0.01}
    log = store.audit_log()
    assert log.select("actor", "action").row(0) == ("ada", "setting.change")

"""The workspace store on SQLite and on the machine's PostgreSQL: round trips, atomic writes, the snapshot."""

from __future__ import annotations

import stat
from datetime import date, datetime
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa

import core.store.workspace
from core.model.schema import ValidationError
from core.store.database import Store, describe_error, open_store
from core.store.workspace import Workspace, read_secrets, write_secret

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


def test_upsert_and_delete_of_more_keys_than_any_statement_may_bind(store: Store) -> None:
    count = 70_000  # past psycopg's 65,535 parameters and SQLite's 32,766 variables
    ids = [f"t{i}" for i in range(count)]
    store.write({"teams": pl.DataFrame({"team_id": ids, "name": "old"})})
    result = store.write({"teams": pl.DataFrame({"team_id": [*ids, "extra"], "name": "new"})})
    assert (result.added, result.updated) == ({"teams": 1}, {"teams": 70_000})
    assert result.previous_rows["teams"].height == 70_000
    assert set(result.previous_rows["teams"]["name"]) == {"old"}
    assert result.added_keys["teams"]["team_id"].to_list() == ["extra"]
    assert store.read("teams")["name"].unique().to_list() == ["new"]
    assert store.delete("teams", pl.DataFrame({"team_id": ids})) == 70_000
    assert store.read("teams")["team_id"].to_list() == ["extra"]


def test_a_snapshot_that_fails_after_the_commit_is_rebuilt_on_next_access(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.write({"teams": TEAMS})
    build = Store._build_snapshot

    def broken(self: Store, *args: object) -> object:
        raise ValueError("year 0 is out of range")

    monkeypatch.setattr(Store, "_build_snapshot", broken)
    result = store.write({"teams": pl.DataFrame({"team_id": ["srch"], "name": ["Search"]})})
    assert result.snapshot_error == "ValueError: year 0 is out of range"
    assert store.count("teams") == 3, "the commit stands"
    assert not (store.snapshot_folder() / "COMPLETE").exists(), "no snapshot claims the new version"
    monkeypatch.setattr(Store, "_build_snapshot", build)
    snapshot = store.snapshot()
    assert snapshot.version == result.data_version
    assert sorted(snapshot.scan("teams").collect()["team_id"]) == ["onb", "pay", "srch"]


def test_database_errors_are_short_and_quote_no_values(store: Store) -> None:
    secret = "customer-value-" + "x" * 10_000
    with pytest.raises(sa.exc.IntegrityError) as caught, store.engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO teams (team_id, name) VALUES (:k, :n)"), [{"k": secret, "n": "a"}] * 2)
    message = describe_error(caught.value)
    assert message.startswith("database error ")
    assert len(message) <= 300 and "customer-value" not in message and "INSERT" not in message


def test_workspace_folder_and_files_are_owner_only(tmp_path: Path) -> None:
    home = tmp_path / "ws"
    home.mkdir(mode=0o755)
    home.chmod(0o755)
    store = open_store(Workspace(home=home, database_url=f"sqlite:///{home / 'throughline.db'}"))
    store.write({"teams": TEAMS})
    parquet = store.snapshot().folder / "teams.parquet"
    modes = {
        p.name: stat.S_IMODE(p.stat().st_mode) for p in (home, home / "snapshot", home / "throughline.db", parquet)
    }
    assert modes == {"ws": 0o700, "snapshot": 0o700, "throughline.db": 0o600, "teams.parquet": 0o600}
    store.engine.dispose()


def test_half_built_snapshots_left_by_a_kill_are_removed_on_open(store: Store) -> None:
    store.write({"teams": TEAMS})
    left = store.workspace.snapshot_dir / ".building-v1-4242-deadbeef"
    left.mkdir()
    (left / "teams.parquet").write_bytes(b"partial")
    Store(store.workspace, store.engine).recover()
    assert not left.exists()
    assert store.snapshot().scan("teams").collect().height == 2


def test_two_stores_in_turn_keep_the_snapshot_version_monotonic(store: Store) -> None:
    other = Store(store.workspace, store.engine)
    store.write({"teams": TEAMS})
    other.write({"people": PEOPLE})
    assert store.refresh_snapshot(["teams"], written_version=1) == store.snapshot_folder(2)
    snapshot = store.snapshot()
    assert (snapshot.version, snapshot.scan("people").collect().height, snapshot.scan("teams").collect().height) == (
        2,
        2,
        2,
    )


@pytest.mark.parametrize("password", ["p\rw", "a\x7fb", "\x00\x01\x1f", 'q"uote\\back\nline', "ünï ☃"])
def test_secrets_with_any_character_round_trip_exactly(tmp_path: Path, password: str) -> None:
    path = tmp_path / "secrets.toml"
    write_secret(path, "cookie_key", "k" * 40)
    write_secret(path, "warehouse", password, section="connections")
    assert read_secrets(path) == {"cookie_key": "k" * 40, "connections": {"warehouse": password}}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["secrets.toml"], "no temporary file is left"


def test_secrets_that_do_not_read_back_leave_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "secrets.toml"
    write_secret(path, "cookie_key", "k" * 40)
    before = path.read_bytes()
    monkeypatch.setattr(core.store.workspace.tomli_w, "dumps", lambda data: 'cookie_key = "other"\n')
    with pytest.raises(ValueError, match="did not read back"):
        write_secret(path, "cookie_key", "k" * 41)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["secrets.toml"]

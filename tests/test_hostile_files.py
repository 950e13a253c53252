"""Hostile files cost one refused import: never a traceback, a hang, a dead process or a changed workspace."""

from __future__ import annotations

import contextlib
import hashlib
import io
import sqlite3
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from bench.hostile_files import FAMILIES, OUTCOMES, _changed, corpus, judge_corpus
from core.importing import ImportFailed, options_from_settings, plan_import, run_import
from core.model.schema import ENTITIES
from core.store.database import Store

SAMPLE = 220
"""Ten files of each family, from a fixed seed, so a failure can be regenerated file for file."""


def test_a_fixed_sample_of_hostile_files_is_refused_or_accepted_and_nothing_else() -> None:
    summary = judge_corpus(corpus(SAMPLE, seed=7))
    assert sum(summary.outcomes.values()) == SAMPLE and set(summary.by_family) == set(FAMILIES)
    assert summary.failures == []
    assert {o: summary.outcomes[o] for o in OUTCOMES[2:]} == {"traceback": 0, "memory": 0, "hang": 0, "abort": 0}
    assert summary.changed == [] and summary.unnamed == []
    assert summary.outcomes["refused"] >= SAMPLE * 3 // 4
    for family in ("csv_nul_late", "csv_many_columns", "json_many_keys", "xlsx_far_cell", "parquet_out_of_range"):
        assert summary.by_family[family]["accepted"] == 0, family
    assert summary.reader_peak_rss_mb < 2048 and summary.peak_rss_mb < 2048


def test_the_corpus_is_the_same_for_the_same_seed() -> None:
    first = [(f.filename, hashlib.sha256(f.data).hexdigest()) for f in corpus(44, seed=3)]
    assert first == [(f.filename, hashlib.sha256(f.data).hexdigest()) for f in corpus(44, seed=3)]
    assert len({name for name, _ in first}) == 44


def _stored(store: Store) -> dict[str, list[tuple[object, ...]]]:
    return {name: sorted(store.read(name).rows(), key=repr) for name in ENTITIES}


YEAR_ZERO = b"milestone_id,name,date\nM1,Launch,2026-03-01\nM2,Typo,0000-01-01\nM3,Before,-0001-01-01\n"


def test_a_year_zero_date_is_refused_and_nothing_is_written(store: Store) -> None:
    run_import(
        store,
        plan_import(b"milestone_id,name,date\nM0,Kept,2025-01-01\n", "m0.csv", entity="milestones", store=store),
        "t",
    )
    before = _stored(store)
    plan = plan_import(YEAR_ZERO, "years.csv", entity="milestones", store=store)
    assert [(p.row, p.column, p.value) for p in plan.problems] == [
        (2, "date", "0000-01-01"),
        (3, "date", "-0001-01-01"),
    ]
    with pytest.raises(ImportFailed, match=r"years\.csv: 2 problem"):
        run_import(store, plan, "t")
    assert _stored(store) == before
    assert store.read("milestones")["milestone_id"].to_list() == ["M0"]


def test_nan_infinite_and_negative_costs_and_late_nul_bytes_are_refused_before_the_database(store: Store) -> None:
    costs = b"event_id,occurred_at,source,amount\ne1,2026-01-05,llm,NaN\ne2,2026-01-05,llm,inf\ne3,2026-01-05,llm,-4\n"
    plan = plan_import(costs, "costs.csv", entity="cost_events", store=store)
    assert [(p.row, p.column, p.value) for p in plan.problems] == [
        (1, "amount", "NaN"),
        (2, "amount", "inf"),
        (3, "amount", "-4"),
    ]
    late_nul = b"team_id,name\n" + b"".join(b"T%d,Team %d\n" % (i, i) for i in range(900)) + b"TX,Bad\x00Name\n"
    assert late_nul.index(b"\x00") > 8192
    with pytest.raises(ImportFailed, match=r"nul.csv: row 901, column `name` holds a NUL character"):
        plan_import(late_nul, "nul.csv", entity="teams", store=store)
    assert store.read("teams").height == 0 and store.read("cost_events").height == 0


def test_the_date_range_is_a_setting() -> None:
    options = options_from_settings({"import.date_range": ["1900-01-01", "2030-12-31"]})
    assert options.date_range == (date(1900, 1, 1), date(2030, 12, 31))
    old = b"milestone_id,name,date\nM1,Old,1950-06-01\nM2,Far,2031-01-01\n"
    assert [p.row for p in plan_import(old, "m.csv", entity="milestones", options=options).problems] == [2]
    assert [p.row for p in plan_import(old, "m.csv", entity="milestones").problems] == [1]


def test_parquet_datetimes_outside_what_python_holds_never_reach_the_store(store: Store) -> None:
    frame = pl.DataFrame(
        {
            "deployment_id": ["D1", "D2"],
            "environment": ["prod", "prod"],
            "status": ["success", "success"],
            "finished_at": pl.Series([2**63 - 1, 1_767_225_600_000_000], dtype=pl.Int64).cast(pl.Datetime("us")),
        }
    )
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    with pytest.raises(
        ImportFailed, match=r"far\.parquet: could not be mapped \(the reader failed: invalid or out-of-range"
    ):
        plan_import(buffer.getvalue(), "far.parquet", entity="deployments", store=store)  # a Rust panic inside polars
    assert store.read("deployments").height == 0


def test_a_changed_table_is_noticed_and_a_rewritten_file_with_the_same_rows_is_not(tmp_path: Path) -> None:
    database = tmp_path / "w.db"
    with contextlib.closing(sqlite3.connect(database)) as connection:
        connection.execute("CREATE TABLE teams (team_id TEXT)")
        connection.execute("INSERT INTO teams VALUES ('T1')")
        connection.commit()
        before = database.read_bytes()
        assert not _changed(database, before)
        connection.execute("INSERT INTO teams VALUES ('T2')")
        connection.commit()
        assert _changed(database, before)
        connection.execute("DELETE FROM teams WHERE team_id = 'T2'")
        connection.commit()
        assert database.read_bytes() != before and not _changed(database, before)

"""Imports are atomic, idempotent, recorded in the history and can be undone (SQLite and PostgreSQL)."""

from __future__ import annotations

import multiprocessing
import random
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import sqlalchemy as sa

from core.importing import ImportFailed, import_history, plan_import, run_import, undo_import
from core.model.schema import ENTITIES
from core.store.database import Store, imports_table, open_store
from core.store.workspace import Workspace

FIXTURES = Path(__file__).parent / "fixtures" / "imports"
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _sqlite(tmp_path: Path) -> Iterator[Store]:
    yield open_store(Workspace(home=tmp_path, database_url=f"sqlite:///{tmp_path / 't.db'}"))


def _postgres(tmp_path: Path) -> Iterator[Store]:
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            name = f"tl_{uuid.uuid4().hex[:12]}"
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as error:
        pytest.skip(f"PostgreSQL at 127.0.0.1:5432 does not answer: {error}")
    store = open_store(Workspace(home=tmp_path, database_url=f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"))
    try:
        yield store
    finally:
        store.engine.dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    yield from (_sqlite if request.param == "sqlite" else _postgres)(tmp_path)


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    yield from _sqlite(tmp_path)


def snapshot_of(store: Store) -> dict[str, list[tuple[object, ...]]]:
    return {e: sorted(store.read(e).rows(), key=str) for e in ("people", "features", "work_items", "pull_requests")}


def test_failure_mid_import_leaves_the_store_unchanged(store: Store) -> None:
    run_import(store, plan_import(FIXTURES / "github_pulls_rest.json"), actor="a")
    before = snapshot_of(store)
    plan = plan_import(FIXTURES / "jira_export.csv", store=store)
    with pytest.raises(ImportFailed, match="nothing was written"):
        run_import(store, plan, actor="a", _fail_after="features")
    assert snapshot_of(store) == before
    history = import_history(store)
    assert history.filter(pl.col("status") == "failed").height == 1


def test_an_import_whose_history_cannot_be_recorded_writes_nothing(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    import core.importing.history as history

    def full_disk(*args: object) -> str:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(history, "_save_undo", full_disk)
    with pytest.raises(ImportFailed, match=r"nothing was written \(OSError: \[Errno 28\] No space left on device\)"):
        run_import(store, plan_import(FIXTURES / "gh_pr_list.json"), actor="a")
    assert store.count("pull_requests") == 0 and store.count("people") == 0
    assert import_history(store)["status"].to_list() == ["failed"]
    assert store.audit_log().filter(pl.col("action") == "import.run").height == 0
    assert not [p for p in (store.workspace.home / "imports").iterdir() if p.is_dir()]


def test_imports_left_running_by_an_older_version_are_marked_failed_on_open(store: Store) -> None:
    with store.engine.begin() as conn:
        conn.execute(
            imports_table.insert().values(
                at=datetime(2026, 1, 1), source="x.csv", format="generic", entities="{}", status="running"
            )
        )
    reopened = open_store(store.workspace)
    assert import_history(reopened)["status"].to_list() == ["failed"]
    reopened.engine.dispose()


def test_reimport_is_idempotent_and_updates(store: Store) -> None:
    first = run_import(store, plan_import(FIXTURES / "jira_export.csv", store=store), actor="a")
    assert first.counts["work_items"] == {"added": 6, "updated": 0, "rejected": 0}
    second = run_import(store, plan_import(FIXTURES / "jira_export.csv", store=store), actor="b")
    assert second.counts["work_items"] == {"added": 0, "updated": 6, "rejected": 0}
    assert "people" not in second.counts  # authors already stored: gaps only
    assert store.count("work_items") == 6 and store.count("features") == 3


def test_reimport_keeps_columns_the_export_does_not_have(sqlite_store: Store) -> None:
    store = sqlite_store
    run_import(store, plan_import(FIXTURES / "jira_export.csv", store=store), actor="a")
    store.write({"teams": pl.DataFrame({"team_id": ["pay"], "name": ["Payments"]})})
    features = store.read("features").with_columns(pl.lit("pay").alias("team_id"))
    store.write({"features": features})
    people = store.read("people").with_columns(pl.lit(120.0).alias("hourly_cost"))
    store.write({"people": people})
    run_import(store, plan_import(FIXTURES / "jira_export.csv", store=store), actor="a")
    assert set(store.read("features")["team_id"]) == {"pay"}
    assert set(store.read("people")["hourly_cost"]) == {120.0}


def test_undo_removes_added_rows_and_restores_replaced_ones(store: Store) -> None:
    first = run_import(store, plan_import(FIXTURES / "gh_pr_list.json"), actor="a")
    original = store.read("pull_requests").sort("pr_id")
    edited = (FIXTURES / "gh_pr_list.json").read_text().replace("Autosave application drafts", "Autosave v2")
    second = run_import(store, plan_import(edited.encode(), "gh_pr_list.json"), actor="a")
    assert second.counts["pull_requests"]["updated"] == 3
    assert "Autosave v2" in store.read("pull_requests")["title"].to_list()
    undo_import(store, second.import_id, actor="a")
    assert store.read("pull_requests").sort("pr_id").equals(original)
    undo_import(store, first.import_id, actor="a")
    assert store.count("pull_requests") == 0 and store.count("people") == 0
    with pytest.raises(ImportFailed, match="undone"):
        undo_import(store, first.import_id, actor="a")
    statuses = import_history(store).unique("import_id").sort("import_id")["status"].to_list()
    assert statuses == ["undone", "undone"]


def test_history_and_audit(sqlite_store: Store) -> None:
    store = sqlite_store
    calls: list[tuple[int, int]] = []
    record = run_import(
        store, plan_import(FIXTURES / "jira_export.csv", store=store), "alice", lambda d, t: calls.append((d, t))
    )
    assert calls[0] == (0, calls[-1][1]) and calls[-1][0] == calls[-1][1] > 0
    history = import_history(store)
    rows = {r["entity"]: r for r in history.to_dicts()}
    assert set(rows) == {"people", "features", "work_items"}
    assert rows["features"]["added"] == 3 and rows["work_items"]["actor"] == "alice"
    assert rows["work_items"]["source"] == "jira_export.csv" and rows["work_items"]["format"] == "jira_csv"
    assert (store.workspace.home / "imports" / str(record.import_id) / "added" / "work_items.parquet").exists()
    assert store.audit_log()["action"].to_list()[0] == "import.run"


def test_problems_refuse_the_import_unless_skipped(sqlite_store: Store) -> None:
    store = sqlite_store
    text = (FIXTURES / "gh_pr_list.json").read_text().replace('"2026-03-06T13:30:00Z"', '"2026-13-45"')
    plan = plan_import(text.encode(), "prs.json", store=store)
    assert len(plan.problems) == 1
    problem = plan.problems[0]
    assert (problem.source, problem.row, problem.column, problem.value) == ("prs.json", 3, "created_at", "2026-13-45")
    with pytest.raises(ImportFailed, match="row 3, column `created_at`: `2026-13-45`"):
        run_import(store, plan, actor="a")
    assert store.count("pull_requests") == 0
    record = run_import(store, plan, actor="a", skip_invalid=True)
    assert record.counts["pull_requests"] == {"added": 2, "updated": 0, "rejected": 1}


def test_progress_counts_rows_written_batch_by_batch(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    import core.store.database

    monkeypatch.setattr(core.store.database, "_INSERT_BATCH", 2)
    plan = plan_import(FIXTURES / "github_pulls_rest.json")
    total = sum(f.height for f in plan.frames.values()) + sum(f.height for f in plan.fills.values())
    heard: list[tuple[int, int]] = []
    run_import(store, plan, actor="a", progress=lambda done, of: heard.append((done, of)))

    assert heard[0] == (0, total) and heard[-1] == (total, total)
    done = [d for d, _ in heard]
    assert done == sorted(done), "progress never goes back"
    assert len(set(done)) > 3, "the bar moves batch by batch, not only at start and end"
    assert store.read("pull_requests").height == plan.rows("pull_requests")


def prs_csv(count: int, title: str = "first", start: int = 0) -> bytes:
    """A generic pull-request export of ``count`` merged PRs numbered from ``start``."""
    numbers = list(range(start, start + count))
    return (
        pl.DataFrame(
            {
                "pr_id": [f"acme/web#{n}" for n in numbers],
                "repo": "acme/web",
                "number": numbers,
                "title": title,
                "author_kind": "human",
                "state": "merged",
                "created_at": "2026-01-02T03:04:05Z",
            }
        )
        .write_csv()
        .encode()
    )


def test_reimporting_a_large_export_updates_every_row_twice(store: Store) -> None:
    count = 70_000  # past psycopg's 65,535 parameters had the existing keys been listed in one statement
    first = run_import(store, plan_import(prs_csv(count), "prs.csv", entity="pull_requests"), actor="a")
    assert first.counts["pull_requests"] == {"added": 70_000, "updated": 0, "rejected": 0}
    second = run_import(store, plan_import(prs_csv(count + 1, "second"), "prs.csv", entity="pull_requests"), "a")
    assert second.counts["pull_requests"] == {"added": 1, "updated": 70_000, "rejected": 0}
    third = run_import(store, plan_import(prs_csv(count + 1, "third"), "prs.csv", entity="pull_requests"), "a")
    assert third.counts["pull_requests"] == {"added": 0, "updated": 70_001, "rejected": 0}
    assert store.read("pull_requests")["title"].unique().to_list() == ["third"]
    assert store.count("pull_requests") == 70_001
    assert store.snapshot().scan("pull_requests").collect().height == 70_001
    undo_import(store, third.import_id, actor="a")
    assert store.read("pull_requests")["title"].unique().to_list() == ["second"]


def _import_rounds(home: str, url: str, entity: str, rounds: int, size: int, barrier: Any) -> None:
    """In a child process: import ``size`` new rows of ``entity`` once per round, all rounds started together."""
    store = open_store(Workspace(home=Path(home), database_url=url))
    for round_ in range(rounds):
        numbers = range(round_ * size, (round_ + 1) * size)
        if entity == "teams":
            data = pl.DataFrame({"team_id": [f"t{n}" for n in numbers], "name": "Team"}).write_csv().encode()
        else:
            data = prs_csv(size, start=round_ * size)
        plan = plan_import(data, f"{entity}-{round_}.csv", entity=entity)
        barrier.wait()
        run_import(store, plan, actor=entity)
        barrier.wait()
    store.engine.dispose()


def test_two_processes_importing_at_once_both_reach_the_snapshot(store: Store) -> None:
    rounds, size = 3, 10_000
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(3, timeout=120)
    home, url = str(store.workspace.home), store.workspace.database_url
    children = [
        context.Process(target=_import_rounds, args=(home, url, entity, rounds, size, barrier))
        for entity in ("pull_requests", "teams")
    ]
    for child in children:
        child.start()
    try:
        for round_ in range(1, rounds + 1):
            barrier.wait()  # both imports start
            barrier.wait()  # both imports returned
            folder = store.snapshot_folder()
            assert (folder / "COMPLETE").exists(), f"round {round_}: the newest version has a snapshot"
            snapshot = store.snapshot()
            in_snapshot = {e: snapshot.scan(e).collect().height for e in ("pull_requests", "teams")}
            assert in_snapshot == {"pull_requests": round_ * size, "teams": round_ * size}, f"round {round_}"
    finally:
        for child in children:
            child.join(timeout=60)
    assert [child.exitcode for child in children] == [0, 0]


def _import_reporting_stages(home: str, url: str, start: int, size: int, stages: str) -> None:
    """In a child process: import PRs ``start``…, appending each stage reached to the file ``stages``."""
    import core.importing.history as history

    def mark(stage: str) -> None:
        with open(stages, "a") as log:
            log.write(stage + "\n")

    def marked(stage: str, function: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            mark(stage)
            return function(*args, **kwargs)

        return call

    history._save_undo = marked("undo files", history._save_undo)  # type: ignore[method-assign]
    Store._build_snapshot = marked("snapshot", Store._build_snapshot)  # type: ignore[method-assign]
    store = open_store(Workspace(home=Path(home), database_url=url))
    plan = plan_import(prs_csv(size, title=f"from {start}", start=start), "prs.csv", entity="pull_requests")
    mark("ready")
    run_import(store, plan, actor="k", progress=lambda done, total: done < total and mark("rows"))
    mark("returned")


def _consistent(store: Store, imports_before: int, count_before: int, count_after: int) -> None:
    """The checks a kill must never break: history, data, undo files and snapshot agree."""
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(imports_table)).mappings().all()
    assert not [r for r in rows if r["status"] == "running"], "no import stays running"
    landed = [r for r in rows if r["status"] == "done"][imports_before:]
    assert store.count("pull_requests") == (count_after if landed else count_before), "data lands with its record"
    for row in rows:
        if row["status"] == "done":
            assert (Path(row["undo_dir"]) / "added" / "pull_requests.parquet").exists(), "every done import undoable"
    folders = {p.name for p in (store.workspace.home / "imports").iterdir() if p.is_dir()}
    assert folders <= {str(r["id"]) for r in rows}, "no undo folder without its import"
    assert not list(store.workspace.snapshot_dir.glob(".building-*"))
    snapshot = store.snapshot()
    assert snapshot.version == store.data_version()
    assert {e: snapshot.scan(e).collect().height for e in ENTITIES} == store.counts()


def test_killing_an_import_at_any_moment_leaves_the_workspace_consistent(store: Store, tmp_path: Path) -> None:
    size, step, kills = 30_000, 10_000, 5
    targeted = ("undo files", "snapshot")  # plus one kill the moment each of these stages begins
    rng = random.Random(22)
    context = multiprocessing.get_context("spawn")
    home, url = str(store.workspace.home), store.workspace.database_url
    seen: list[tuple[float, str]] = []
    for attempt in range(kills + len(targeted) + 1):
        stages = tmp_path / f"stages-{attempt}.txt"
        stages.touch()
        start = attempt * step
        stored = set(store.read("pull_requests")["pr_id"])
        count_before = len(stored)
        count_after = len(stored | {f"acme/web#{n}" for n in range(start, start + size)})
        with store.engine.connect() as conn:
            done_before = conn.execute(
                sa.select(sa.func.count()).select_from(imports_table).where(imports_table.c.status == "done")
            ).scalar_one()
        child = context.Process(target=_import_reporting_stages, args=(home, url, start, size, str(stages)))
        child.start()
        began = time.monotonic()
        while "ready" not in stages.read_text() and child.is_alive() and time.monotonic() - began < 60:
            time.sleep(0.02)
        ready = time.monotonic()
        if attempt == 0:  # the first import runs to its end: it measures how long one takes
            child.join(timeout=120)
            duration = time.monotonic() - ready
            assert child.exitcode == 0
            continue
        if attempt <= kills:
            delay = duration * (attempt - 1 + rng.random()) / kills  # one random moment in each fifth of an import
            time.sleep(delay)
        else:
            stage = targeted[attempt - kills - 1]
            while stage not in stages.read_text() and child.is_alive():
                time.sleep(0.001)
            delay = time.monotonic() - ready
        child.kill()
        child.join(timeout=30)
        seen.append((round(delay, 2), stages.read_text().splitlines()[-1]))
        store.engine.dispose()
        reopened = open_store(store.workspace)
        _consistent(reopened, done_before, count_before, count_after)
        reopened.engine.dispose()
    print(f"\n{store.engine.dialect.name}: {len(seen)} kills (delay s, last stage): {seen}; all consistent")

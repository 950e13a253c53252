"""The import, imports and connect commands: same results as the Data page, exit code 1 with the message on failure."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from core.cli.imports import add_commands
from core.store.database import Store, open_store
from core.store.workspace import Workspace

FIXTURES = Path(__file__).parent / "fixtures" / "imports"


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return open_store(Workspace(home=tmp_path, database_url=f"sqlite:///{tmp_path / 't.db'}"))


def run(store: Store, *argv: str) -> int:
    parser = argparse.ArgumentParser(prog="python -m core")
    add_commands(parser.add_subparsers())
    args = parser.parse_args(list(argv))
    return args.run(store, args)


def test_import_history_and_undo(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(store, "import", str(FIXTURES / "jira_export.csv"), "--actor", "ops") == 0
    out = capsys.readouterr().out
    assert "jira_csv" in out and "work_items: 6 added, 0 updated, 0 rejected" in out
    assert run(store, "imports", "history") == 0
    assert "jira_export.csv" in capsys.readouterr().out
    assert run(store, "imports", "undo", "1") == 0
    assert store.count("work_items") == 0


def test_generic_mapping_from_the_command_line(store: Store) -> None:
    code = run(
        store,
        "import",
        str(FIXTURES / "incidents_generic.csv"),
        "--entity",
        "incidents",
        "--map",
        "incident_id=Ticket",
        "--map",
        "opened_at=Opened",
        "--date-format",
        "%d.%m.%Y %H:%M",
    )
    assert code == 0 and store.count("incidents") == 2


def test_failure_exits_non_zero_with_the_message(
    store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "prs.json"
    bad.write_text('[{"number": 1,')
    assert run(store, "import", str(bad)) == 1
    assert "prs.json: is not valid JSON" in capsys.readouterr().err
    assert run(store, "import", str(FIXTURES / "incidents_generic.csv")) == 1
    assert "choose the entity" in capsys.readouterr().err
    assert run(store, "import", str(FIXTURES / "jira_export.csv"), "--as", "openai_cost") == 1
    assert "does not look like OpenAI cost export" in capsys.readouterr().err


def test_connect_commands(
    store: Store, tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    import sqlite3

    sources = tmp_path_factory.mktemp("sources")  # outside the workspace folder, which is never a source
    monkeypatch.setenv("THROUGHLINE_SQLITE_SOURCES", str(sources))
    path = sources / "src.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE teams_src (team_id TEXT, name TEXT)")
        db.execute("INSERT INTO teams_src VALUES ('pay', 'Payments'), ('web', 'Web')")
    assert run(store, "connect", "add", "src", f"sqlite:///{path}") == 0
    assert run(store, "connect", "tables", "src") == 0 and "teams_src" in capsys.readouterr().out
    assert run(store, "connect", "map", "src", "teams", "--table", "teams_src") == 0
    assert run(store, "connect", "refresh", "src") == 0
    assert store.count("teams") == 2
    assert run(store, "connect", "map", "src", "teams", "--query", "DROP TABLE teams_src") == 1
    assert "Only read queries" in capsys.readouterr().err

"""``python -m core report flags``: the vanity flags each user may see, with their evidence and acknowledgements."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from core import measures
from core.bootstrap import seed_demo
from core.cli import commands as cli
from core.costs import CostSettings
from core.flags.acknowledgements import acknowledge_flag
from core.flags.settings import FlagSettings
from core.store import settings
from core.store.database import Store, open_store
from core.store.workspace import Workspace
from tests.conftest import FLAG_DEMO_SCALE


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A demo workspace of this module's own (acknowledgements are written), and its flags computed with ``core``."""
    home = tmp_path_factory.mktemp("flags-report")
    (home / "snapshot").mkdir()
    store = open_store(Workspace(home=home, database_url=f"sqlite:///{home / 'throughline.db'}"))
    seed_demo(store, seed=7, scale=FLAG_DEMO_SCALE)  # the planted Growth rise is evidence from this scale up
    frames = store.snapshot().frames()
    as_of = measures.as_of(frames)
    judged = measures.judged_hypotheses(frames, as_of).lazy()
    lines = measures.cost_lines(frames, settings.load(store, CostSettings))
    flags = measures.vanity_flags(frames, judged, lines, settings.load(store, FlagSettings), as_of)
    store.engine.dispose()
    return {"home": home, "flags": flags}


def _store(home: Path) -> Store:
    return open_store(Workspace(home=home, database_url=f"sqlite:///{home / 'throughline.db'}"))


def _report(
    seeded: dict[str, object], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> list[dict[str, object]]:
    monkeypatch.setenv("THROUGHLINE_HOME", str(seeded["home"]))
    monkeypatch.delenv("THROUGHLINE_DATABASE_URL", raising=False)
    assert cli.main(["report", "flags", "--format", "json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_the_admin_gets_every_flag_whole_newest_and_most_severe_first(
    seeded: dict[str, object], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    engine: pl.DataFrame = seeded["flags"]  # type: ignore[assignment]
    rows = _report(seeded, monkeypatch, capsys)
    assert [r["flag_id"] for r in rows] == engine["flag_id"].to_list()
    assert [r["explanation"] for r in rows] == engine["explanation"].to_list()
    assert [json.loads(r["evidence"]) for r in rows] == [json.loads(e) for e in engine["evidence"]]
    growth = [r for r in rows if r["team_id"] == "GRO" and r["flag"] == "Activity up, value flat"]
    assert growth, "the planted Growth pattern is reported"
    assert {r["currency"] for r in rows} == {"USD"}, "the evidence's money amounts name their currency"


def test_an_executive_gets_every_flag_without_activity_numbers(
    seeded: dict[str, object], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    engine: pl.DataFrame = seeded["flags"]  # type: ignore[assignment]
    rows = _report(seeded, monkeypatch, capsys, "--as", "exec")
    assert [r["flag_id"] for r in rows] == engine["flag_id"].to_list()
    for row, explanation in zip(rows, engine["explanation"], strict=True):
        evidence = json.loads(row["evidence"])
        assert not {"prs_merged", "prs_merged_prev", "story_points_resolved", "prs_unlinked", "deployments"} & set(
            evidence
        )
        assert {"window_start", "window_end"} <= set(evidence)
        assert row["explanation"] != explanation and "PRs" not in row["explanation"]


def test_a_team_lead_gets_only_their_own_teams_flags(
    seeded: dict[str, object], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    engine: pl.DataFrame = seeded["flags"]  # type: ignore[assignment]
    rows = _report(seeded, monkeypatch, capsys, "--as", "teamlead")
    assert [r["flag_id"] for r in rows] == engine.filter(pl.col("team_id") == "PAY")["flag_id"].to_list()


def test_acknowledged_flags_carry_who_when_and_why_and_can_be_hidden(
    seeded: dict[str, object], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    engine: pl.DataFrame = seeded["flags"]  # type: ignore[assignment]
    flag_id = engine["flag_id"][0]
    store = _store(seeded["home"])  # type: ignore[arg-type]
    acknowledge_flag(store, flag_id, "delivery", "first look")
    acknowledge_flag(store, flag_id, "admin", "  agreed with Growth to track retention  ")
    store.engine.dispose()
    rows = {r["flag_id"]: r for r in _report(seeded, monkeypatch, capsys)}
    assert rows[flag_id]["acknowledged"] is True
    assert rows[flag_id]["acknowledged_by"] == "admin"
    assert rows[flag_id]["comment"] == "agreed with Growth to track retention"
    assert rows[flag_id]["acknowledged_at"]
    hidden = _report(seeded, monkeypatch, capsys, "--hide-acknowledged")
    assert flag_id not in {r["flag_id"] for r in hidden} and len(hidden) == engine.height - 1

"""``python -m core report cost-per-feature``: each feature's cost in a quarter, restricted like the Cost page."""

from __future__ import annotations

import io
import json

import polars as pl
import pytest

from core import costs
from core.cli import commands as cli
from core.store.database import open_store
from core.store.workspace import Workspace

PERIOD = "2026Q3"


@pytest.fixture
def workspace_env(demo_workspace: dict[str, object], monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    monkeypatch.setenv("THROUGHLINE_HOME", str(demo_workspace["home"]))
    monkeypatch.delenv("THROUGHLINE_DATABASE_URL", raising=False)
    return demo_workspace


@pytest.fixture(scope="module")
def expected(demo_workspace: dict[str, object]) -> pl.DataFrame:
    """The quarter's cost per feature computed directly from the exploded cost lines."""
    home = demo_workspace["home"]
    store = open_store(Workspace(home=home, database_url=f"sqlite:///{home / 'throughline.db'}"))  # type: ignore[operator]
    frames = store.snapshot().frames()
    lines = costs.attribute_costs(
        frames["cost_events"], frames["pull_requests"], frames["work_items"], frames["features"], frames["people"]
    )
    result = costs.cost_per_feature(lines, frames["features"], PERIOD).collect()
    store.engine.dispose()
    return result


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(["report", "cost-per-feature", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_csv_lists_each_feature_with_the_cost_the_lines_give(
    workspace_env: dict[str, object], expected: pl.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(capsys, "--period", PERIOD, "--format", "csv")
    assert code == 0
    report = pl.read_csv(io.StringIO(out))
    assert set(report["period"]) == {PERIOD}
    assert {"feature_id", "stage", "cost", "cost_llm", "cost_ci", "cost_review", "cost_people", "cost_other"} <= set(
        report.columns
    )
    got = dict(report.select("feature_id", "cost").rows())
    want = dict(expected.select("feature_id", "cost").rows())
    assert got.keys() == want.keys()
    for feature_id, cost in want.items():
        assert got[feature_id] == pytest.approx(cost, abs=0.005)
    assert report.filter(pl.col("stage") == "delivered").height == expected.filter(pl.col("delivered")).height


def test_json_for_one_team(workspace_env: dict[str, object], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "--period", PERIOD, "--team", "PAY", "--format", "json")
    assert code == 0
    rows = json.loads(out)
    assert rows and {row["team_id"] for row in rows} == {"PAY"}


def test_a_bad_period_or_team_is_a_message_not_a_traceback(
    workspace_env: dict[str, object], capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run(capsys, "--period", "Q3 2026")
    assert code == 1 and "is not a period" in err
    code, _, err = _run(capsys, "--period", PERIOD, "--team", "nope")
    assert code == 1 and "No team `nope`" in err


def test_every_role_gets_only_cost_aggregates(
    workspace_env: dict[str, object], capsys: pytest.CaptureFixture[str]
) -> None:
    logins = workspace_env["logins"]  # type: ignore[index]
    for role in ("executive", "delivery_lead", "team_lead"):
        code, out, _ = _run(capsys, "--period", PERIOD, "--format", "csv", "--as", logins[role].username)
        assert code == 0, role
        header = out.splitlines()[0]
        assert "lines" not in header.split(",") and "events" not in header.split(","), role
        assert "pr" not in header.lower().split(","), role

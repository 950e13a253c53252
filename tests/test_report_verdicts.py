"""``python -m core report verdicts``: every judged feature with its prediction, measurement, interval and verdict."""

from __future__ import annotations

import io
import json

import polars as pl
import pytest

from core import measures
from core.cli import commands as cli
from core.store.database import open_store
from core.store.workspace import Workspace

COLUMNS = [
    "feature_id",
    "feature_name",
    "team_id",
    "metric_id",
    "metric_name",
    "unit",
    "delivered_on",
    "change_kind",
    "predicted_change",
    "measured_change",
    "ci_low_95",
    "ci_high_95",
    "method",
    "verdict",
    "judge_on",
    "confounded_by",
]


@pytest.fixture
def workspace_env(demo_workspace: dict[str, object], monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    monkeypatch.setenv("THROUGHLINE_HOME", str(demo_workspace["home"]))
    monkeypatch.delenv("THROUGHLINE_DATABASE_URL", raising=False)
    return demo_workspace


@pytest.fixture(scope="module")
def judged(demo_workspace: dict[str, object]) -> pl.DataFrame:
    """The demo's verdicts computed directly with ``core.measures``."""
    home = demo_workspace["home"]
    store = open_store(Workspace(home=home, database_url=f"sqlite:///{home / 'throughline.db'}"))  # type: ignore[operator]
    frames = store.snapshot().frames()
    result = measures.judged_hypotheses(frames, measures.as_of(frames))
    store.engine.dispose()
    return result


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = cli.main(["report", "verdicts", *args])
    return code, capsys.readouterr().out


def test_csv_lists_every_judged_feature(
    workspace_env: dict[str, object], judged: pl.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = _run(capsys, "--format", "csv")
    assert code == 0
    report = pl.read_csv(io.StringIO(out.strip()), infer_schema_length=None)
    assert report.columns == COLUMNS
    assert report.height == judged.height > 0
    assert report["feature_id"].to_list() == judged["feature_id"].to_list()
    assert report["verdict"].to_list() == judged["verdict"].to_list()
    assert report["method"].to_list() == judged["method"].to_list()


def test_measured_change_is_in_the_prediction_kind_and_inside_its_interval(
    workspace_env: dict[str, object], judged: pl.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = _run(capsys, "--format", "json")
    assert code == 0
    rows = json.loads(out)
    assert len(rows) == judged.height
    expected = {r["feature_id"]: r for r in judged.iter_rows(named=True)}
    measured = 0
    for row in rows:
        source = expected[row["feature_id"]]
        suffix = "rel" if row["change_kind"] == "relative" else "abs"
        assert row["predicted_change"] == pytest.approx(source["predicted_change"])
        if source[f"estimate_{suffix}"] is None:
            assert row["measured_change"] is None
            continue
        measured += 1
        assert row["measured_change"] == pytest.approx(source[f"estimate_{suffix}"])
        assert row["ci_low_95"] <= row["measured_change"] <= row["ci_high_95"]
        assert row["confounded_by"] == " ".join(source["confounded_by"])
    assert measured > 0


@pytest.mark.parametrize("role", ["executive", "delivery_lead", "team_lead"])
def test_each_role_sees_what_the_impact_page_shows(
    workspace_env: dict[str, object], judged: pl.DataFrame, role: str, capsys: pytest.CaptureFixture[str]
) -> None:
    login = workspace_env["logins"][role]  # type: ignore[index]
    code, out = _run(capsys, "--format", "csv", "--as", login.username)
    assert code == 0
    assert pl.read_csv(io.StringIO(out.strip()), infer_schema_length=None).height == judged.height


def test_an_unknown_user_is_refused(workspace_env: dict[str, object], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["report", "verdicts", "--as", "nobody"]) == 1
    assert "No active user `nobody`" in capsys.readouterr().err

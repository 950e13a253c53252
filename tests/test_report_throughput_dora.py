"""`python -m core report throughput|dora`: the engine's figures, restricted exactly like the pages."""

from __future__ import annotations

import io
import json
from datetime import date

import polars as pl
import pytest

from core import measures
from core.cli import commands as cli
from core.costs import CostSettings
from core.delivery import dora, throughput
from core.store import settings
from core.store.database import open_store
from core.store.workspace import Workspace


@pytest.fixture
def demo_env(demo_workspace: dict[str, object], monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    monkeypatch.setenv("THROUGHLINE_HOME", str(demo_workspace["home"]))
    monkeypatch.delenv("THROUGHLINE_DATABASE_URL", raising=False)
    return demo_workspace


@pytest.fixture(scope="module")
def engine(demo_workspace: dict[str, object]) -> dict[str, object]:
    """The demo's frames and daily throughput, computed directly with ``core``."""
    home = demo_workspace["home"]
    store = open_store(Workspace(home=home, database_url=f"sqlite:///{home / 'throughline.db'}"))  # type: ignore[operator]
    frames = {name: frame.collect().lazy() for name, frame in store.snapshot().frames().items()}
    judged = measures.judged_hypotheses(frames, measures.as_of(frames))
    lines = measures.cost_lines(frames, settings.load(store, CostSettings))
    daily = measures.daily_throughput(frames, judged.lazy(), lines).collect()
    store.engine.dispose()
    return {"frames": frames, "daily": daily}


def report(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(["report", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def user(demo: dict[str, object], role: str) -> str:
    return demo["logins"][role].username  # type: ignore[index]


def test_throughput_csv_matches_the_engine(
    demo_env: dict[str, object], engine: dict[str, object], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = report(capsys, "throughput", "--period", "month", "--format", "csv")
    assert code == 0
    shown = pl.read_csv(io.StringIO(out.rstrip("\n") + "\n"), try_parse_dates=True)
    daily: pl.DataFrame = engine["daily"]  # type: ignore[assignment]
    expected = throughput.throughput_series(daily.lazy(), "month").collect()
    assert shown.columns == [*expected.columns, "currency"], "money columns name their currency"
    assert shown["currency"].unique().to_list() == ["USD"]
    for column in ("features_delivered", "features_confirmed", "features_pending", "prs_merged"):
        assert shown[column].to_list() == expected[column].to_list(), column
    assert shown["realised_value"].to_list() == pytest.approx(
        expected["realised_value"].to_list(), abs=0.005, nan_ok=True
    )
    for line in out.splitlines()[1:]:
        cost = line.split(",")[shown.columns.index("cost")]
        assert len(cost.partition(".")[2]) <= 2, f"money is printed to the cent, not {cost}"


def test_an_executive_gets_no_pr_counts(demo_env: dict[str, object], capsys: pytest.CaptureFixture[str]) -> None:
    for fmt in ("csv", "json", "table"):
        code, out, _ = report(capsys, "throughput", "--as", user(demo_env, "executive"), "--format", fmt)
        assert code == 0
        assert "prs_merged" not in out and "PRs" not in out
        assert "features_delivered" not in out, "features delivered is output level"
        assert "features_confirmed" in out and "realised_value" in out


def test_a_team_and_range_narrow_the_series(
    demo_env: dict[str, object], engine: dict[str, object], capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ("throughput", "--team", "PAY", "--from", "2026-01-01", "--to", "2026-03-31", "--format", "json")
    code, out, _ = report(capsys, *argv, "--as", user(demo_env, "team_lead"))
    assert code == 0
    rows = json.loads(out)
    daily: pl.DataFrame = engine["daily"]  # type: ignore[assignment]
    expected = throughput.throughput_series(daily.lazy(), "week", "PAY", date(2026, 1, 1), date(2026, 3, 31)).collect()
    assert [r["prs_merged"] for r in rows] == expected["prs_merged"].to_list(), "a team lead sees their own PRs"
    assert rows[0]["period_start"] == "2025-12-29" and rows[-1]["period_start"] == "2026-03-30"

    code, out, _ = report(capsys, *argv[:2], "GRO", *argv[3:], "--as", user(demo_env, "team_lead"))
    assert code == 0 and "prs_merged" not in out, "another team's activity stays inside that team"


def test_dora_json_matches_the_engine(
    demo_env: dict[str, object], engine: dict[str, object], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = report(capsys, "dora", "--team", "PAY", "--statistic", "mean", "--format", "json")
    assert code == 0
    rows = json.loads(out)
    frames: dict[str, pl.LazyFrame] = engine["frames"]  # type: ignore[assignment]
    pay = [frames[n].filter(pl.col("team_id") == "PAY") for n in ("deployments", "pull_requests", "incidents")]
    expected = dora.dora_measures(*pay, dora.DoraSettings(statistic="mean")).collect()
    assert [r["measure"] for r in rows] == list(dora.MEASURES)
    assert [r["value"] for r in rows] == pytest.approx(expected["value"].to_list())
    assert [r["bucket"] for r in rows] == expected["bucket"].to_list()
    shares = ("change_failure_rate", "deployment_rework_rate")
    assert all("mean" in r["definition"] for r in rows if r["measure"] not in shares)


def test_dora_is_refused_to_an_executive_and_counts_stay_with_teams(
    demo_env: dict[str, object], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = report(capsys, "dora", "--as", user(demo_env, "executive"))
    assert code == 1 and out == "" and "does not see" in err
    code, out, _ = report(capsys, "dora", "--as", user(demo_env, "delivery_lead"), "--format", "json")
    assert code == 0 and all("sample_size" not in r for r in json.loads(out))
    code, out, _ = report(capsys, "dora", "--as", user(demo_env, "admin"), "--format", "json")
    assert code == 0 and all("sample_size" in r for r in json.loads(out))


def test_user_mistakes_get_a_message(demo_env: dict[str, object], capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = report(capsys, "throughput", "--team", "NOPE")
    assert code == 1 and "No team `NOPE`" in err
    with pytest.raises(SystemExit):
        report(capsys, "dora", "--from", "2026-13-01")
    assert "`2026-13-01` is not a date" in capsys.readouterr().err

"""The value throughput page per role: the numbers match the engine, and PR counts never reach an executive."""

from __future__ import annotations

import json
from datetime import date

import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from core import measures
from core.costs import CostSettings
from core.delivery import throughput
from core.store import settings
from core.store.database import open_store
from core.store.workspace import Workspace
from tests.apptest import rendered_text, signed_in
from ui import format as fmt

PAGE = "pages/throughput.py"


@pytest.fixture(scope="module")
def expected(demo_workspace: dict[str, object]) -> dict[str, object]:
    """The demo's daily throughput and date span, computed directly with ``core``."""
    home = demo_workspace["home"]
    store = open_store(Workspace(home=home, database_url=f"sqlite:///{home / 'throughline.db'}"))  # type: ignore[operator]
    frames = {name: frame.collect().lazy() for name, frame in store.snapshot().frames().items()}
    as_of = measures.as_of(frames)
    judged = measures.judged_hypotheses(frames, as_of)
    lines = measures.cost_lines(frames, settings.load(store, CostSettings))
    daily = measures.daily_throughput(frames, judged.lazy(), lines).collect()
    store.engine.dispose()
    return {"daily": daily, "start": daily["day"].min(), "end": as_of}


def _series(expected: dict[str, object], period: str, team_id: str | None) -> pl.DataFrame:
    daily: pl.DataFrame = expected["daily"]  # type: ignore[assignment]
    start: date = expected["start"]  # type: ignore[assignment]
    end: date = expected["end"]  # type: ignore[assignment]
    return throughput.throughput_series(daily.lazy(), period, team_id, start, end).collect()  # type: ignore[arg-type]


def _open(demo_workspace: dict[str, object], role: str, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    at = signed_in(demo_workspace, role, monkeypatch)
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    return at


def _table(at: AppTest) -> pl.DataFrame:
    return pl.from_pandas(at.dataframe[0].value)


def _traces(at: AppTest) -> list[dict[str, object]]:
    specs = [s for s in rendered_text(at).splitlines() if s.startswith("[{")]
    return [trace for spec in specs for trace in json.loads(spec)]


@pytest.mark.parametrize("role", ["executive", "delivery_lead", "team_lead", "admin"])
def test_every_role_sees_the_page_with_summary_charts_and_table(
    role: str, demo_workspace: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _open(demo_workspace, role, monkeypatch)
    text = rendered_text(at)
    assert "Value throughput" in text
    assert " vs " in at.markdown[0].value or "Not enough history" in text
    assert len(_traces(at)) >= 4
    assert _table(at).height > 0
    assert "Realised value" in text and "Features confirmed" in text


def test_an_executive_never_receives_pr_counts(
    demo_workspace: dict[str, object], expected: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _open(demo_workspace, "executive", monkeypatch)
    for period in ("week", "month", "quarter"):
        at.segmented_control(key="throughput.period").set_value(period).run()
        assert not at.exception
        text = rendered_text(at)
        assert "PRs merged" not in text
        assert "prs_merged" not in text
        assert "pull request" not in text.lower()
        table = _table(at)
        assert "prs_merged" not in table.columns
        assert "features_delivered" not in table.columns, "features delivered is output level"
        prs = _series(expected, period, None)["prs_merged"].to_list()
        for trace in _traces(at):
            assert "PR" not in str(trace.get("name", "")) and "PR" not in str(trace.get("hovertemplate", ""))
            assert trace.get("y") != prs


def test_a_delivery_lead_sees_the_engine_numbers_without_pr_counts(
    demo_workspace: dict[str, object], expected: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _open(demo_workspace, "delivery_lead", monkeypatch)
    at.segmented_control(key="throughput.period").set_value("month").run()
    table = _table(at)
    engine = _series(expected, "month", None)
    columns = [
        "features_delivered",
        "features_confirmed",
        "features_pending",
        "features_refuted",
        "realised_value",
        "cost",
    ]
    assert table.height == engine.height
    shown = engine.with_columns(pl.col("realised_value", "cost").fill_null(0.0))  # a period with none reads 0, not None
    for column in columns:
        assert table[column].cast(pl.Float64).to_list() == pytest.approx(
            shown[column].cast(pl.Float64).to_list(), nan_ok=True
        ), column
    ratios = [float(t) for t in table["value_to_cost"] if not t.startswith("—")]
    assert ratios == pytest.approx(engine["value_to_cost"].drop_nulls().to_list(), abs=0.01)
    assert "prs_merged" not in table.columns
    assert "PRs merged" not in rendered_text(at)


def test_the_summary_line_compares_the_last_two_complete_periods(
    demo_workspace: dict[str, object], expected: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _open(demo_workspace, "admin", monkeypatch)
    at.segmented_control(key="throughput.period").set_value("quarter").run()
    engine = _series(expected, "quarter", None).filter(pl.col("period_end") <= expected["end"])
    line = throughput.summary_line(throughput.period_changes(engine.lazy()).collect(), "quarter")
    assert at.markdown[0].value == f"**{line}**"
    assert "PRs merged" in line


def test_a_team_lead_sees_pr_counts_for_their_own_team_only(
    demo_workspace: dict[str, object], expected: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _open(demo_workspace, "team_lead", monkeypatch)
    own = at.selectbox(key="throughput.team").value
    assert own is not None, "a team lead starts on their own team"
    table = _table(at)
    assert table["prs_merged"].to_list() == _series(expected, "week", own)["prs_merged"].to_list()
    assert any("PRs merged" in str(t.get("name")) for t in _traces(at))

    daily: pl.DataFrame = expected["daily"]  # type: ignore[assignment]
    other = next(t for t in sorted(daily["team_id"].drop_nulls().unique()) if t != own)
    at.selectbox(key="throughput.team").set_value(other).run()
    assert "prs_merged" not in _table(at).columns
    assert "PRs merged" not in rendered_text(at)
    at.selectbox(key="throughput.team").select_index(0).run()
    assert at.selectbox(key="throughput.team").value is None
    assert "prs_merged" not in _table(at).columns


def test_milestones_are_drawn_with_the_features_they_carried(
    demo_workspace: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _open(demo_workspace, "delivery_lead", monkeypatch)
    milestones = [t for t in _traces(at) if t.get("legendgroup") == "milestones"]
    assert milestones
    assert all("Milestone:" in str(t["hovertemplate"]) for t in milestones)
    assert any("FEAT-" in str(t["hovertemplate"]) for t in milestones)


def test_the_tiles_describe_the_whole_range_with_a_mean_per_period(
    demo_workspace: dict[str, object], expected: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _open(demo_workspace, "delivery_lead", monkeypatch)
    engine = _series(expected, "week", None)
    tiles = {m.label: m for m in at.metric}
    delivered = tiles["Delivered, range total"]
    total = int(engine["features_delivered"].sum())
    assert delivered.value == f"{total:,}", "the tile is the range's total, not the last week's"
    assert delivered.delta == f"{fmt.number(total / engine.height)} per week"
    value = tiles["Realised value, range total"].value
    assert value.endswith(" USD") and value == fmt.money(engine["realised_value"].sum(), "USD")
    ratio = engine["realised_value"].sum() / engine["cost"].sum()
    assert tiles["Value ÷ cost, over the range"].value == fmt.number(ratio)
    assert f"Totals over the {engine.height} weeks from" in rendered_text(at)


def test_the_weekly_table_has_no_none_and_says_why_a_ratio_is_missing(
    demo_workspace: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _open(demo_workspace, "delivery_lead", monkeypatch)
    table = _table(at)
    assert table.null_count().sum_horizontal()[0] == 0, "no cell reads None"
    missing = [t for t in table["value_to_cost"] if t.startswith("—")]
    assert missing and set(missing) <= {"— (no cost attributed)", "— (no value measured)"}
    config = at.dataframe[0].proto.columns
    assert "Realised value (USD)" in config and "Attributed cost (USD)" in config


def test_the_milestone_table_is_headed_by_reader_labels(
    demo_workspace: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _open(demo_workspace, "delivery_lead", monkeypatch)
    milestones = next(f for f in at.dataframe if "features carried" in f.value.columns)
    headings = json.loads(milestones.proto.columns)
    assert [headings[c]["label"] for c in milestones.value.columns] == [
        "Milestone",
        "Date",
        "In the week from",
        "Features carried (count)",
        "Features carried",
    ]

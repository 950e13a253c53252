"""The DORA page per role: figures match ``core.delivery.dora``, definitions switch, per-PR rows stay with the team."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from core import measures
from core.delivery import dora
from core.delivery.dora import DoraSettings
from core.store import settings
from core.store.database import Store, open_store
from core.store.workspace import Workspace
from tests.apptest import rendered_text, signed_in

PAGE = "pages/dora.py"
TITLES = [
    "Deployment frequency",
    "Lead time for changes",
    "Change failure rate",
    "Recovery time",
    "Deployment rework rate",
]


@pytest.fixture
def store(demo_workspace: dict[str, object]) -> Iterator[Store]:
    home = demo_workspace["home"]
    opened = open_store(Workspace(home=home, database_url=f"sqlite:///{home / 'throughline.db'}"))  # type: ignore[operator]
    yield opened
    opened.engine.dispose()


def _expected(store: Store, chosen: DoraSettings, team_id: str | None) -> pl.DataFrame:
    frames = {name: frame.collect().lazy() for name, frame in store.snapshot().frames().items()}
    judged = measures.judged_hypotheses(frames, measures.as_of(frames))
    daily = measures.daily_throughput(frames, judged.lazy(), None).collect()
    start, end = daily["day"].min(), measures.as_of(frames)
    chosen_frames = [frames[n] for n in ("deployments", "pull_requests", "incidents")]
    if team_id is not None:
        chosen_frames = [f.filter(pl.col("team_id") == team_id) for f in chosen_frames]
    return dora.dora_measures(*chosen_frames, chosen, start, end).collect()


def _shown(measure: str, value: float) -> str:
    """How the page writes a value: lead and recovery time always in hours."""
    if measure == "deployment_frequency":
        return f"{value:g} days/week"
    if measure in ("change_failure_rate", "deployment_rework_rate"):
        return f"{value:.1%}"
    return f"{value / 60:,.1f} h"


def _open(demo_workspace: dict[str, object], role: str, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    at = signed_in(demo_workspace, role, monkeypatch)
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    return at


def test_an_executive_cannot_reach_the_dora_page(
    demo_workspace: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    at = signed_in(demo_workspace, "executive", monkeypatch)
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page(PAGE)


@pytest.mark.parametrize("role", ["delivery_lead", "team_lead", "admin"])
def test_the_four_measures_match_core_with_bucket_and_definition(
    role: str, demo_workspace: dict[str, object], store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _open(demo_workspace, role, monkeypatch)
    team_id = at.selectbox(key="dora.team").value
    expected = _expected(store, DoraSettings(), team_id)
    assert [m.label for m in at.metric] == TITLES
    for metric, row in zip(at.metric, expected.iter_rows(named=True), strict=True):
        assert metric.value == _shown(row["measure"], row["value"]), row["measure"]
    text = rendered_text(at)
    for row in expected.iter_rows(named=True):
        assert row["definition"] in text
        if row["measure"] != "deployment_rework_rate":
            assert row["benchmark"] in text
            assert row["bucket"].capitalize() in text
    assert "Marked as rework when" in text
    assert dora.FIRST_DEPLOYMENT_NOTE in text
    assert len(at.get("plotly_chart")) == 2


def test_a_delivery_lead_gets_aggregates_but_no_per_pr_rows_or_counts(
    demo_workspace: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _open(demo_workspace, "delivery_lead", monkeypatch)
    assert len(at.dataframe) == 4, "the per-feature breakdown and the three mapping-check tables, no per-PR rows"
    features = at.dataframe[0].value
    assert "prs" not in features.columns and "pr_id" not in features.columns
    text = rendered_text(at)
    assert "Per-PR rows are activity-level detail" in text
    assert "deployed PRs" not in text, "sample sizes count PRs and deployments (activity)"


def test_a_team_lead_sees_per_pr_rows_of_their_own_team_only(
    demo_workspace: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _open(demo_workspace, "team_lead", monkeypatch)
    own = at.selectbox(key="dora.team").value
    assert own is not None
    prs = at.dataframe[1].value
    assert len(prs) > 0 and set(prs["team_id"]) == {own}
    at.selectbox(key="dora.team").select_index(0).run()
    assert not at.exception
    prs = at.dataframe[1].value
    assert set(prs["team_id"]) == {own}, "the organisation view still lists only the lead's own PRs"
    assert "Only the PRs of teams whose detail you may see are listed." in rendered_text(at)


def test_team_leads_read_the_definitions_but_cannot_switch_them(
    demo_workspace: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _open(demo_workspace, "team_lead", monkeypatch)
    assert len(at.radio) == 0
    assert "Delivery leads and admins can switch these definitions." in rendered_text(at)
    assert "Median (DevLake)" in rendered_text(at)


def test_a_delivery_lead_switches_to_the_mean_and_the_figures_follow(
    demo_workspace: dict[str, object], store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _open(demo_workspace, "delivery_lead", monkeypatch)
    try:
        at.radio(key="dora.settings.statistic").set_value("mean")
        at.radio(key="dora.settings.lead_time_start").set_value("pr_opened")
        at.button(key="FormSubmitter:dora.settings-Save definitions").click().run()
        assert not at.exception, at.exception
        chosen = settings.load(store, DoraSettings)
        assert chosen == DoraSettings(statistic="mean", lead_time_start="pr_opened")
        expected = _expected(store, chosen, None)
        for metric, row in zip(at.metric, expected.iter_rows(named=True), strict=True):
            assert metric.value == _shown(row["measure"], row["value"]), row["measure"]
        text = rendered_text(at)
        assert all(definition in text for definition in chosen.definitions().values())
    finally:
        settings.save(store, DoraSettings(), actor=None)


def _hours_above_72(minutes: float) -> str:
    return f" ({minutes / 60 / 24:.1f} days)" if minutes / 60 > 72 else ""


def test_lead_and_recovery_time_read_in_hours_on_card_chart_and_table(
    demo_workspace: dict[str, object], store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _open(demo_workspace, "admin", monkeypatch)
    expected = {r["measure"]: r for r in _expected(store, DoraSettings(), None).iter_rows(named=True)}
    text = rendered_text(at)
    for measure, title in (
        ("lead_time_for_changes", "Lead time for changes"),
        ("failed_deployment_recovery_time", "Recovery time"),
    ):
        minutes = expected[measure]["value"]
        assert f"{title}: {minutes / 60:,.1f} hours{_hours_above_72(minutes)}." in text
    columns = at.dataframe[0].proto.columns
    assert "Cycle (h)" in columns and "(min)" not in columns
    overall = features_overall = at.dataframe[0].value["cycle_minutes"].dropna()
    assert len(overall) > 0 and float(features_overall.max()) < 24 * 365, "hours, not minutes"
    chart = at.get("plotly_chart")[0].proto.spec
    assert '"hours"' in chart and "(min)" not in text


@pytest.mark.parametrize("role", ["delivery_lead", "admin"])
def test_delivery_leads_and_admins_see_the_mapping_check(
    role: str, demo_workspace: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _open(demo_workspace, role, monkeypatch)
    assert "Mapping check" in [h.value for h in at.subheader]
    deployments, incidents, prs = (pl.from_pandas(at.dataframe[i].value) for i in range(-3, 0))
    assert {"deployment_id", "deployment_group", "counted", "reason"} <= set(deployments.columns)
    assert deployments.height > 0 and deployments["reason"].null_count() == 0
    counted = deployments.filter(pl.col("counted"))["reason"].unique().to_list()
    assert counted == ["counted: successful, to production, finished"]
    assert {"incident_id", "deployment_id", "reason"} <= set(incidents.columns)
    assert {"pr_id", "deployment_group", "reason"} <= set(prs.columns)
    assert prs["reason"].null_count() == 0


@pytest.mark.parametrize("role", ["team_lead"])
def test_a_team_lead_does_not_see_the_mapping_check(
    role: str, demo_workspace: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _open(demo_workspace, role, monkeypatch)
    assert "Mapping check" not in [h.value for h in at.subheader]
    assert all("counted" not in frame.value.columns for frame in at.dataframe)


def test_every_table_heading_is_a_reader_label_not_a_column_name(
    demo_workspace: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _open(demo_workspace, "admin", monkeypatch)
    assert len(at.dataframe) == 5, "per feature, per PR and the three mapping-check tables"
    for frame in at.dataframe:
        config = json.loads(frame.proto.columns)
        for column in frame.value.columns:
            label = config.get(column, {}).get("label")
            assert label and "_" not in label, f"{column} shows as {label!r}"
    features = json.loads(at.dataframe[0].proto.columns)
    assert features["last_merged_at"]["label"] == "Last PR merged"
    assert features["team_id"]["label"] == "Team" and features["feature_id"]["label"] == "Feature"


def test_measure_cards_never_show_unrounded_figures(
    demo_workspace: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _open(demo_workspace, "delivery_lead", monkeypatch)
    helps = [m.proto.help for m in at.metric]
    assert len(helps) == 5 and all("As measured:" in h for h in helps)
    for text in helps + [m.value for m in at.metric]:
        assert not re.search(r"\d\.\d{3,}", text), text

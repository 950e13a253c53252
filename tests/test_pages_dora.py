"""The DORA page per role: figures match ``core.delivery.dora``, definitions switch, per-PR rows stay with the team."""

from __future__ import annotations

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
TITLES = ["Deployment frequency", "Lead time for changes", "Change failure rate", "Recovery time"]


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
    """How the page writes a value, spelled out for the demo's magnitudes."""
    if measure == "deployment_frequency":
        return f"{value:g} days/week"
    if measure == "change_failure_rate":
        return f"{value:.1%}"
    if value < 60:
        return f"{value:.0f} min"
    return f"{value / 60:.1f} h" if value < 2 * 24 * 60 else f"{value / (24 * 60):.1f} days"


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
        assert row["benchmark"] in text
        assert row["bucket"].capitalize() in text
    assert dora.FIRST_DEPLOYMENT_NOTE in text
    assert len(at.get("plotly_chart")) == 2


def test_a_delivery_lead_gets_aggregates_but_no_per_pr_rows_or_counts(
    demo_workspace: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _open(demo_workspace, "delivery_lead", monkeypatch)
    assert len(at.dataframe) == 1, "only the per-feature breakdown"
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

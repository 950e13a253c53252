"""The Cost per feature page under every role: the right figures, and only the figures each role may see."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from core import costs
from core.store import settings
from core.store.database import open_store
from core.store.workspace import Workspace
from tests.apptest import rendered_text, signed_in

PAGE = "pages/cost.py"
ACTIVITY_WORDS = ("cost per PR", "PRs per delivered feature", "prs_merged", "agent_prs_merged")


def _open(demo: dict[str, object], role: str, monkeypatch: pytest.MonkeyPatch, feature: str | None = None):
    at = signed_in(demo, role, monkeypatch)
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    if feature is not None:
        at.selectbox(key="cost.feature").set_value(feature).run()
        assert not at.exception, at.exception
    return at


def _expected_summary(demo: dict[str, object], period: str) -> dict[str, object]:
    home = Path(demo["home"])  # type: ignore[arg-type]
    store = open_store(Workspace(home=home, database_url=f"sqlite:///{home / 'throughline.db'}"))
    frames = store.snapshot().frames()
    chosen = settings.load(store, costs.CostSettings)
    lines = costs.attribute_costs(
        frames["cost_events"],
        frames["pull_requests"],
        frames["work_items"],
        frames["features"],
        frames["people"],
        chosen,
        frames["cost_keys"],
    )
    store.engine.dispose()
    return costs.cost_summary(lines, frames["features"], period, chosen).collect().row(0, named=True)


def _tables(at, column: str) -> list:
    """The rendered tables (pandas) that have ``column``."""
    return [frame.value for frame in at.dataframe if column in frame.value.columns]


def _delivered_feature(at, team: str | None = None) -> str:
    frame = _tables(at, "delivered_at")[0]
    if team is not None:
        frame = frame[frame["team_id"] == team]
    return str(frame["feature_id"].iloc[0])


@pytest.mark.parametrize("role", ["executive", "delivery_lead", "team_lead", "admin"])
def test_the_page_opens_for_every_role_with_its_headline(
    demo_workspace: dict[str, object], role: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _open(demo_workspace, role, monkeypatch)
    labels = {m.label for m in at.metric}
    assert {"Attribution coverage", "Median cost per delivered feature", "Cost of the delivered features"} <= labels
    assert "Rules on:" in rendered_text(at)


def test_the_headline_median_is_cost_summary_computed_directly(
    demo_workspace: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _open(demo_workspace, "delivery_lead", monkeypatch)
    period = at.selectbox(key="cost.period").value
    expected = _expected_summary(demo_workspace, period)
    shown = {m.label: m.value for m in at.metric}
    assert shown["Median cost per delivered feature"] == f"{expected['median_cost_per_delivered_feature']:,.0f} USD"
    assert shown["Mean cost per delivered feature"] == f"{expected['mean_cost_per_delivered_feature']:,.0f} USD"
    assert shown["Attribution coverage"] == f"{expected['coverage_pct']:.1f}%"
    delivered_cost = expected["mean_cost_per_delivered_feature"] * expected["delivered_features"]
    assert shown["Cost of the delivered features"] == f"{delivered_cost:,.0f} USD"  # the set the median is over


def test_the_default_period_is_the_latest_complete_quarter(
    demo_workspace: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _open(demo_workspace, "admin", monkeypatch)
    # the demo history ends on 15 Nov 2026: 2026Q4 is not complete
    assert at.selectbox(key="cost.period").value == "2026Q3"
    assert "2026Q4" in at.selectbox(key="cost.period").options


def test_an_executive_sees_no_activity_figure_and_no_line_detail(
    demo_workspace: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _open(demo_workspace, "executive", monkeypatch)
    feature = _delivered_feature(at)
    at.selectbox(key="cost.feature").set_value(feature).run()
    assert not at.exception, at.exception
    text = rendered_text(at)
    for word in ACTIVITY_WORDS:
        assert word not in text
    assert "via PR" not in text and "via time allocation" not in text
    assert _tables(at, "cost (USD)")[0].shape[0] == 5
    assert not _tables(at, "link") and not _tables(at, "attributed by") and not _tables(at, "event_id")
    assert not any(e.label.startswith("Cost settings") for e in at.expander)


def test_a_team_lead_sees_line_detail_only_for_their_own_team(
    demo_workspace: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    login = demo_workspace["logins"]["team_lead"]  # type: ignore[index]
    at = _open(demo_workspace, "team_lead", monkeypatch)
    at.selectbox(key="cost.team").select_index(0).run()  # the page opens on their team; every team's features
    delivered = _tables(at, "delivered_at")[0]
    own_team = _team_of(demo_workspace, login.username)
    own = _delivered_feature(at, own_team)
    other = str(delivered[delivered["team_id"] != own_team]["feature_id"].iloc[0])

    at.selectbox(key="cost.feature").set_value(own).run()
    assert not at.exception, at.exception
    lines = pl.concat([pl.from_pandas(f) for f in _tables(at, "link")], how="vertical_relaxed")
    assert lines.height > 0 and lines["link"].str.starts_with("via").any()
    assert _tables(at, "cost_per_pr")  # activity level, for their own team

    at.selectbox(key="cost.feature").set_value(other).run()
    assert not at.exception, at.exception
    assert not _tables(at, "link")
    assert _tables(at, "attributed by")
    contrast = _tables(at, "cost_per_pr")[0]
    assert set(contrast["team_id"]) == {own_team}


def test_a_delivery_lead_sees_lines_by_source_and_link_and_may_edit_settings(
    demo_workspace: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _open(demo_workspace, "delivery_lead", monkeypatch)
    at.selectbox(key="cost.feature").set_value(_delivered_feature(at)).run()
    assert not at.exception, at.exception
    paths = _tables(at, "attributed by")[0]
    assert paths.shape[0] > 0 and not _tables(at, "link")
    assert any(e.label.startswith("Cost settings") for e in at.expander)
    text = rendered_text(at)
    for word in ACTIVITY_WORDS:
        assert word not in text


def test_saving_cost_settings_switches_a_rule_off_with_an_audit_entry(
    demo_workspace: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _open(demo_workspace, "admin", monkeypatch)
    before = at.metric[0].value
    at.multiselect(key="cost.settings.rules").set_value(["direct", "pull_request", "work_item"])
    at.button(key="FormSubmitter:cost.settings-Save cost settings").click().run()
    assert not at.exception, at.exception
    home = Path(demo_workspace["home"])  # type: ignore[arg-type]
    store = open_store(Workspace(home=home, database_url=f"sqlite:///{home / 'throughline.db'}"))
    try:
        saved = settings.load(store, costs.CostSettings)
        assert saved.rules == ("direct", "pull_request", "work_item")
        log = store.audit_log(limit=20)
        assert log.filter(pl.col("actor") == demo_workspace["logins"]["admin"].username).height > 0  # type: ignore[index]
        settings.save(store, costs.CostSettings(), actor="test")
    finally:
        store.engine.dispose()
    assert at.metric[0].value != before


def _team_of(demo: dict[str, object], username: str) -> str:
    from core import users

    home = Path(demo["home"])  # type: ignore[arg-type]
    store = open_store(Workspace(home=home, database_url=f"sqlite:///{home / 'throughline.db'}"))
    try:
        user = users.get_user(store, username)
        assert user is not None and user.team_id is not None
        return user.team_id
    finally:
        store.engine.dispose()

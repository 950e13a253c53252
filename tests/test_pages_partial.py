"""Pages on partial workspaces: a retrospective hypothesis for a feature with no team, and no page crashing.

Each workspace is built from small imports (as a pilot brings them) with one entity missing in turn.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from core import access, users
from core.importing import plan_import, run_import
from core.store.database import Store, open_store
from core.store.workspace import Workspace
from tests.apptest import rendered_text, signed_in

PASSWORD = "partial-password-1"
ROLES = ("executive", "delivery_lead", "team_lead", "admin")

TEAMS = "team_id,name\npay,Payments\n"
FEATURES = """feature_id,name,team_id,status,started_at,delivered_at
F-1,Faster checkout,{team},delivered,{started},2026-02-27T17:00:00
F-2,Onboarding emails,{team},in_progress,{started},
"""
METRICS = "metric_id,name,level,unit,direction\ncheckout_conversion,Checkout conversion,outcome,%,higher\n"
OBSERVATIONS = "date,metric,value\n" + "".join(
    f"2026-{m:02d}-{d:02d},checkout_conversion,{v}\n"
    for m, days in ((1, range(1, 29)), (2, range(1, 28)), (3, range(1, 31)), (4, range(1, 31)))
    for d, v in ((d, 0.30 + (0.05 if m >= 3 else 0.0) + 0.001 * (d % 3)) for d in days)
)
COST = """event_id,occurred_at,source,amount,currency,feature_id
c-1,2026-02-10T10:00:00,llm,12.50,USD,{feature}
"""
HYPOTHESIS = "feature_id,metric_id,predicted_change,change_kind,lag_days,window_days,created_at\n"


def _import(store: Store, name: str, text: str, entity: str) -> None:
    plan = plan_import(text.encode(), name, entity=entity, store=store)
    run_import(store, plan, "setup")


def build_workspace(home: Path, *lacks: str) -> dict[str, object]:
    """A workspace with one user per role and everything a pilot brings except what ``lacks`` names."""
    (home / "snapshot").mkdir(parents=True)
    store = open_store(Workspace(home=home, database_url=f"sqlite:///{home / 'throughline.db'}"))
    store.create()
    if "empty" not in lacks:
        if not {"teams", "cost events only"} & set(lacks):
            _import(store, "teams.csv", TEAMS, "teams")
        if "cost events only" not in lacks:
            team = "" if "teams" in lacks else "pay"
            started = "" if "start dates" in lacks else "2026-02-01T09:00:00"
            _import(store, "features.csv", FEATURES.format(team=team, started=started), "features")
            _import(store, "metrics.csv", METRICS, "metrics")
            if "observations" not in lacks:
                _import(store, "observations.csv", OBSERVATIONS, "metric_observations")
            if "hypotheses" not in lacks:
                _import(
                    store,
                    "hypotheses.csv",
                    HYPOTHESIS + "F-1,checkout_conversion,0.1,relative,0,30,2026-01-15T09:00:00\n",
                    "hypotheses",
                )
        _import(store, "cost.csv", COST.format(feature="" if "cost events only" in lacks else "F-1"), "cost_events")
    logins = {}
    for role in ROLES:
        users.create_user(store, role, role.title(), role, PASSWORD, team_id="pay" if role == "team_lead" else None)

        class Login:
            username, password = role, PASSWORD

        logins[role] = Login
    store.snapshot()
    store.engine.dispose()
    return {"home": home, "logins": logins}


# -- item 6: a retrospective hypothesis for a delivered feature with no team ------------------------
@pytest.mark.parametrize("role", ["admin", "delivery_lead"])
def test_stewards_record_a_retrospective_hypothesis_for_a_feature_with_no_team(
    tmp_path: Path, role: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace = build_workspace(tmp_path, "teams", "hypotheses")  # F-1 was delivered on 27 Feb 2026, no team
    store = open_store(Workspace(home=tmp_path, database_url=f"sqlite:///{tmp_path / 'throughline.db'}"))
    at = signed_in(workspace, role, monkeypatch)
    at.switch_page("pages/hypotheses.py").run()
    assert not at.exception, at.exception
    assert "You may not edit" not in rendered_text(at)
    at.selectbox(key="hypotheses.feature").set_value("F-1").run()
    assert any("delivered on 27 Feb 2026 without a prediction" in i.value for i in at.info)
    at.selectbox(key="hypotheses.F-1.metric").set_value("checkout_conversion")
    at.number_input(key="hypotheses.F-1.change").set_value(10.0)
    at.number_input(key="hypotheses.F-1.window").set_value(30)
    at.button(key="FormSubmitter:hypotheses.form.F-1-Record retrospective hypothesis").click().run()
    assert not at.exception, at.exception
    assert any("retrospective prediction recorded" in s.value for s in at.success)
    assert "retrospective" in [str(v) for v in at.dataframe[0].value["Made"]]
    assert "Current prediction (retrospective) made" in rendered_text(at)
    stored = store.read("hypotheses")
    assert stored.select("feature_id", "metric_id", "predicted_change").rows() == [("F-1", "checkout_conversion", 0.1)]


def test_a_team_lead_records_only_for_their_own_team() -> None:
    lead = access.Viewer("tl", "TL", "team_lead", "pay")
    assert access.may_edit_hypothesis(lead, "pay")
    assert not access.may_edit_hypothesis(lead, "growth")
    assert not access.may_edit_hypothesis(lead, None)
    assert access.may_edit_hypothesis(access.Viewer("dl", "DL", "delivery_lead", None), None)


# -- item 7: every page, every role that may open it, on each partial workspace ----------------------
PARTIAL = ("start dates", "teams", "hypotheses", "observations", "cost events only", "empty")


@pytest.fixture(scope="module", params=PARTIAL)
def partial_workspace(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    return build_workspace(tmp_path_factory.mktemp("partial"), request.param)


@pytest.mark.parametrize("role", ROLES)
def test_every_page_renders_on_a_partial_workspace(
    partial_workspace: dict[str, object], role: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = signed_in(partial_workspace, role, monkeypatch)
    viewer = access.Viewer(role, role.title(), role, "pay" if role == "team_lead" else None)
    crashed = {}
    for page in access.pages_for(viewer):
        at.switch_page(f"pages/{page.page_id}.py").run()
        if at.exception:
            crashed[page.page_id] = [e.value for e in at.exception][:1]
    assert crashed == {}


def test_a_new_workspace_admin_home_shows_the_setup_checklist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = signed_in(build_workspace(tmp_path, "empty"), "admin", monkeypatch)
    assert not at.exception, at.exception
    text = rendered_text(at)
    assert "Setup checklist" in text and "**Cost per feature** · coverage 0%" in text
    assert "Needs pull requests, deployments. There: nothing yet." in text

"""The outcome pages per role: outcomes, metrics, hypotheses, impact verdicts and predicted vs actual.

Each page opens for every role allowed to, shows the engine's numbers, keeps activity-level content
from executives and other teams' editing from team leads, and a locked prediction edited through
the page keeps the original while the edit shows in the history.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from core import access, measures, users
from core.outcomes import ledger
from core.outcomes.history import read_history
from core.store.database import Store, open_store
from core.store.workspace import Workspace
from tests.apptest import rendered_text, signed_in

PAGES_DIR = Path(__file__).resolve().parents[1] / "pages"
MINE = ("outcomes", "metrics", "hypotheses", "impact", "learning")
PAGE_ROLES = [(spec.page_id, role) for spec in access.PAGES if spec.page_id in MINE for role in sorted(spec.roles)]


@pytest.fixture(autouse=True)
def pages_on_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    """Navigate only pages whose file exists, so these pages are testable while sibling pages are being written."""
    present = tuple(p for p in access.PAGES if (PAGES_DIR / f"{p.page_id}.py").exists())
    monkeypatch.setattr(access, "PAGES", present)


def _store(home: Path) -> Store:
    return open_store(Workspace(home=home, database_url=f"sqlite:///{home / 'throughline.db'}"))


@pytest.fixture(scope="module")
def expected(demo_workspace: dict[str, object]) -> dict[str, object]:
    """The demo's verdicts, ledger, features and work item keys, computed directly with ``core``."""
    store = _store(demo_workspace["home"])  # type: ignore[arg-type]
    frames = {name: frame.collect().lazy() for name, frame in store.snapshot().frames().items()}
    judged = measures.judged_hypotheses(frames, measures.as_of(frames))
    store.engine.dispose()
    return {
        "judged": judged,
        "ledger": ledger.prediction_ledger(judged.lazy(), frames["features"]).collect(),
        "features": frames["features"].collect(),
        "teams": frames["teams"].collect(),
        "work_item_keys": frames["work_items"].select("work_item_key").collect()["work_item_key"].to_list(),
    }


@pytest.fixture
def demo_copy(demo_workspace: dict[str, object], tmp_path: Path) -> dict[str, object]:
    """A private copy of the demo workspace, for tests that write."""
    home = tmp_path / "demo"
    shutil.copytree(demo_workspace["home"], home, ignore=shutil.ignore_patterns("*.log"))  # type: ignore[arg-type]
    return {"home": home, "logins": demo_workspace["logins"]}


def _team_of(demo: dict[str, object], role: str) -> str | None:
    store = _store(demo["home"])  # type: ignore[arg-type]
    user = users.get_user(store, demo["logins"][role].username)  # type: ignore[index]
    store.engine.dispose()
    assert user is not None
    return user.team_id


def _open(demo: dict[str, object], role: str, page: str, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    at = signed_in(demo, role, monkeypatch)
    at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, at.exception
    return at


def _table(at: AppTest, column: str) -> pl.DataFrame:
    """The first table on the page with a column called ``column``."""
    for frame in at.dataframe:
        if column in frame.value.columns:
            return pl.from_pandas(frame.value)
    raise AssertionError(f"no table with a `{column}` column")


@pytest.mark.parametrize(("page", "role"), PAGE_ROLES)
def test_each_page_opens_for_each_role_allowed(
    demo_workspace: dict[str, object], page: str, role: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _open(demo_workspace, role, page, monkeypatch)
    title = next(spec.title for spec in access.PAGES if spec.page_id == page)
    assert at.title[0].value == title
    assert "Viewing as" in rendered_text(at)


def test_impact_lists_every_verdict_the_engine_gives(
    demo_workspace: dict[str, object], expected: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    judged: pl.DataFrame = expected["judged"]  # type: ignore[assignment]
    at = _open(demo_workspace, "delivery_lead", "impact", monkeypatch)
    shown = _table(at, "Verdict")
    assert shown.height == judged.height > 0
    assert sorted(shown["Feature"].to_list()) == sorted(judged["feature_id"].to_list())
    counts = dict(judged["verdict"].value_counts().iter_rows())
    assert {m.label.lower(): int(m.value) for m in at.metric} == {
        v: counts.get(v, 0) for v in ("confirmed", "refuted", "inconclusive", "pending", "confounded")
    }


def test_impact_filter_and_chart_of_a_selected_feature(
    demo_workspace: dict[str, object], expected: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    judged: pl.DataFrame = expected["judged"]  # type: ignore[assignment]
    at = _open(demo_workspace, "executive", "impact", monkeypatch)
    at.multiselect(key="impact.verdict").set_value(["confirmed"]).run()
    shown = _table(at, "Verdict")
    assert shown.height == judged.filter(pl.col("verdict") == "confirmed").height
    feature = shown["Feature"][0]
    at.selectbox(key="impact.feature").set_value(feature).run()
    assert not at.exception, at.exception
    chart = at.get("plotly_chart")
    assert len(chart) == 1
    text = rendered_text(at)
    assert "Fitted after delivery" in text and "counterfactual" in text
    explanation = judged.filter(pl.col("feature_id") == feature)["explanation"][0]
    assert explanation in text


def test_learning_ledger_and_team_scores_match_the_engine(
    demo_workspace: dict[str, object], expected: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    predictions: pl.DataFrame = expected["ledger"]  # type: ignore[assignment]
    at = _open(demo_workspace, "executive", "learning", monkeypatch)
    assert _table(at, "Actual ÷ predicted").height == predictions.height > 0
    teams = _table(at, "Hit rate")
    scores = ledger.team_calibration(predictions.lazy()).collect()
    assert teams["Judged"].sum() == predictions.height
    names = dict(expected["teams"].select("team_id", "name").iter_rows())  # type: ignore[union-attr]
    assert set(teams["Team"]) <= set(names.values()) | {"No team"}, "teams are named, never shown as ids"
    for row in scores.iter_rows(named=True):
        shown = teams.filter(pl.col("Team") == names.get(row["team_id"], "No team")).row(0, named=True)
        assert shown["Hit rate"] == pytest.approx(row["hit_rate"] * 100)
        assert shown["Calibration"] == pytest.approx(row["calibration"] * 100)
    backlog = _table(at, "Cost basis")
    undelivered = expected["features"].filter(pl.col("status").is_in(("planned", "in_progress")))  # type: ignore[union-attr]
    assert backlog.height == undelivered.height
    assert set(backlog["Cost basis"].unique()) <= {
        "median attributed cost of the team's delivered features",
        "the feature's own estimate",
        "none",
    }
    assert "Cost basis:" in rendered_text(at)
    money = {"Expected value (USD)", "Cost (USD)", "Relative improvement per 1M USD"}
    assert money <= set(backlog.columns), "every amount names its currency in the table itself"


@pytest.mark.parametrize("page", ["outcomes", "impact", "learning"])
def test_an_executive_sees_no_activity_level_content(
    demo_workspace: dict[str, object], expected: dict[str, object], page: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _open(demo_workspace, "executive", page, monkeypatch)
    text = rendered_text(at)
    for word in ("story_points", "Story points", "Work items", "work_item_key", "PRs merged", "commits"):
        assert word not in text
    keys: list[str] = expected["work_item_keys"]  # type: ignore[assignment]
    assert not [key for key in keys if key in text]
    assert not [s for s in at.selectbox if s.key == "outcomes.work_feature"]


def test_outcomes_tree_and_work_items_for_a_team_lead(
    demo_workspace: dict[str, object], expected: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    own = _team_of(demo_workspace, "team_lead")
    features: pl.DataFrame = expected["features"]  # type: ignore[assignment]
    at = _open(demo_workspace, "team_lead", "outcomes", monkeypatch)
    summary = _table(at, "Still open")
    assert summary.height == 7
    choices = at.selectbox(key="outcomes.work_feature").options
    own_features = set(features.filter(pl.col("team_id") == own)["feature_id"].to_list())
    assert choices and {c.split(" · ")[0] for c in choices} <= own_features
    feature = choices[0].split(" · ")[0]
    at.selectbox(key="outcomes.work_feature").set_value(feature).run()
    items = _table(at, "work_item_key")
    assert items.height > 0


def test_each_outcome_chart_is_titled_with_its_own_metric(
    demo_workspace: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _open(demo_workspace, "delivery_lead", "outcomes", monkeypatch)
    titles = [
        json.loads(line)["title"]["text"]
        for line in rendered_text(at).splitlines()
        if line.startswith("{") and '"title"' in line
    ]
    names = _store(demo_workspace["home"]).snapshot().frames()["metrics"].collect()["name"].to_list()  # type: ignore[arg-type]
    assert titles, "no outcome chart was drawn"
    assert all(title.endswith(": observations and target") for title in titles)
    assert {title.removesuffix(": observations and target") for title in titles} <= set(names)
    assert len(set(titles)) == len(titles)


def test_a_team_lead_edits_only_own_team_hypotheses(
    demo_workspace: dict[str, object], expected: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    own = _team_of(demo_workspace, "team_lead")
    features: pl.DataFrame = expected["features"]  # type: ignore[assignment]
    at = _open(demo_workspace, "team_lead", "hypotheses", monkeypatch)
    options = at.selectbox(key="hypotheses.feature").options
    own_features = features.filter(pl.col("team_id") == own)
    assert sorted(o.split(" · ")[0] for o in options) == sorted(own_features["feature_id"].to_list())
    assert set(_table(at, "Locked")["Team"].unique()) == {own}

    lead = _open(demo_workspace, "delivery_lead", "hypotheses", monkeypatch)
    assert len(lead.selectbox(key="hypotheses.feature").options) == features.height


def _submit(at: AppTest, label: str) -> None:
    next(b for b in at.button if b.label == label).click().run()
    assert not at.exception, at.exception


def test_editing_a_locked_prediction_keeps_the_original_and_shows_history(
    demo_copy: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _store(demo_copy["home"])  # type: ignore[arg-type]
    before = store.read("hypotheses")
    delivered = store.read("features").filter(pl.col("status") == "delivered")
    feature = before.join(delivered, on="feature_id", how="semi").sort("feature_id")["feature_id"][0]
    original = before.filter(pl.col("feature_id") == feature).row(0, named=True)

    at = _open(demo_copy, "delivery_lead", "hypotheses", monkeypatch)
    at.selectbox(key="hypotheses.feature").set_value(feature).run()
    assert "prediction is locked" in rendered_text(at)
    at.number_input(key=f"hypotheses.{feature}.change").set_value(42.0)
    _submit(at, "Record edit in history")

    after = store.read("hypotheses").filter(pl.col("feature_id") == feature).row(0, named=True)
    assert after == original
    history = read_history(store, feature)
    assert history.height == 1
    assert history["predicted_change"][0] == pytest.approx(0.42)
    assert not history["applied"][0]
    assert history["edited_by"][0] == demo_copy["logins"]["delivery_lead"].username  # type: ignore[index]
    text = rendered_text(at)
    assert "kept aside: prediction locked at delivery" in text
    assert "stays the one judged" in text
    assert store.audit_log(limit=5).filter(pl.col("action") == "hypothesis.change").height == 1
    store.engine.dispose()


def test_editing_an_open_feature_applies_the_prediction_and_records_it(
    demo_copy: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _store(demo_copy["home"])  # type: ignore[arg-type]
    planned = store.read("features").filter(pl.col("status") == "planned")
    feature = store.read("hypotheses").join(planned, on="feature_id", how="semi").sort("feature_id")["feature_id"][0]
    version = store.data_version()

    at = _open(demo_copy, "admin", "hypotheses", monkeypatch)
    at.selectbox(key="hypotheses.feature").set_value(feature).run()
    at.number_input(key=f"hypotheses.{feature}.change").set_value(7.5)
    at.number_input(key=f"hypotheses.{feature}.window").set_value(45)
    _submit(at, "Save hypothesis")

    row = store.read("hypotheses").filter(pl.col("feature_id") == feature).row(0, named=True)
    assert row["predicted_change"] == pytest.approx(0.075)
    assert row["window_days"] == 45
    assert store.data_version() == version + 1
    history = read_history(store, feature)
    assert history["applied"].to_list() == [True]
    assert history["edited_at"][0] == row["created_at"]
    assert "Prediction for" in rendered_text(at)
    store.engine.dispose()


def test_an_outcome_metric_without_target_is_saved_but_flagged_incomplete(
    demo_copy: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _store(demo_copy["home"])  # type: ignore[arg-type]
    at = _open(demo_copy, "admin", "metrics", monkeypatch)
    at.text_input(key="metrics.__new__.id").input("refund_rate")
    at.text_input(key="metrics.__new__.name").input("Refund rate")
    at.selectbox(key="metrics.__new__.level").set_value("outcome")
    at.selectbox(key="metrics.__new__.direction").set_value("lower")
    at.text_input(key="metrics.__new__.unit").input("%")
    _submit(at, "Save metric")

    saved = store.read("metrics").filter(pl.col("metric_id") == "refund_rate").row(0, named=True)
    assert saved["level"] == "outcome" and saved["direction"] == "lower" and saved["target"] is None
    assert "It is incomplete" in rendered_text(at)
    assert "Refund rate" in " ".join(w.value for w in at.warning)
    audit = store.audit_log(limit=5).filter(pl.col("action") == "metric.change")
    assert audit["detail"].to_list() == ["refund_rate: created"]
    store.engine.dispose()


def test_a_metric_needs_a_level(demo_copy: dict[str, object], monkeypatch: pytest.MonkeyPatch) -> None:
    store = _store(demo_copy["home"])  # type: ignore[arg-type]
    count = store.count("metrics")
    at = _open(demo_copy, "delivery_lead", "metrics", monkeypatch)
    at.text_input(key="metrics.__new__.id").input("nps")
    at.text_input(key="metrics.__new__.name").input("Net promoter score")
    _submit(at, "Save metric")
    assert "choose its level" in " ".join(e.value for e in at.error)
    assert store.count("metrics") == count
    store.engine.dispose()

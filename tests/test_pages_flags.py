"""The vanity flags page per role: who sees which flags, no activity numbers for executives, acknowledgements kept."""

from __future__ import annotations

import json
import re
from pathlib import Path

import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from core import access, measures
from core.costs import CostSettings
from core.flags.acknowledgements import read_acks
from core.flags.settings import FlagSettings
from core.store import settings
from core.store.database import open_store
from core.store.workspace import Workspace
from tests.apptest import rendered_text, signed_in
from tests.conftest import FLAG_DEMO_SCALE, seed_demo_workspace
from ui import format as fmt
from ui.widgets import plain

PAGE = "pages/flags.py"
PAGES_DIR = Path(__file__).resolve().parents[1] / "pages"
GROWTH = "GRO"


@pytest.fixture(autouse=True)
def pages_on_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    """Navigate only pages whose file exists, so this page is testable while sibling pages are being written."""
    present = tuple(p for p in access.PAGES if (PAGES_DIR / f"{p.page_id}.py").exists())
    monkeypatch.setattr(access, "PAGES", present)


@pytest.fixture(scope="module")
def demo_workspace(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """This module's demo, large enough for the planted Growth rise to be flagged (see ``FLAG_DEMO_SCALE``)."""
    return seed_demo_workspace(tmp_path_factory.mktemp("flag-demo"), FLAG_DEMO_SCALE)


@pytest.fixture(scope="module")
def engine_flags(demo_workspace: dict[str, object]) -> pl.DataFrame:
    """Every flag of the demo workspace, computed directly with ``core``."""
    home = demo_workspace["home"]
    store = open_store(Workspace(home=home, database_url=f"sqlite:///{home / 'throughline.db'}"))  # type: ignore[operator]
    frames = {name: frame.collect().lazy() for name, frame in store.snapshot().frames().items()}
    as_of = measures.as_of(frames)
    judged = measures.judged_hypotheses(frames, as_of).lazy()
    lines = measures.cost_lines(frames, settings.load(store, CostSettings))
    flags = measures.vanity_flags(frames, judged, lines, settings.load(store, FlagSettings), as_of)
    store.engine.dispose()
    return flags


def _open(demo_workspace: dict[str, object], role: str, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    at = signed_in(demo_workspace, role, monkeypatch)
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    return at


def _cards(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown if str(m.value).startswith("#### ")]


def test_the_planted_growth_flag_is_visible_to_a_delivery_lead(
    demo_workspace: dict[str, object], engine_flags: pl.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    growth = engine_flags.filter(pl.col("detector") == "activity_up_value_flat", pl.col("team_id") == GROWTH)
    assert not growth.is_empty(), "the demo plants Growth's activity-up, value-flat pattern"
    at = _open(demo_workspace, "delivery_lead", monkeypatch)
    cards = _cards(at)
    assert len(cards) == min(engine_flags.height, 10)
    assert any(c.startswith("#### Activity up, value flat · Growth") for c in cards)
    text = rendered_text(at)
    assert "Outcome to watch" in text
    features = growth.row(0, named=True)
    evidence = json.loads(features["evidence"])
    assert f"Features confirmed,{evidence['features_confirmed']}" in text
    # The flag ids may name the series (``decoupled_metric|GRO|prs_merged|…``); its counts must not show.
    for key in ("prs_merged", "prs_merged_prev", "prs_merged_rise", "prs_merged_z"):
        shown = f"{key}," in text or f'"{key}"' in text
        assert not shown, "PR counts are activity level, outside a delivery lead's view"


def test_a_team_lead_sees_only_their_own_teams_flags(
    demo_workspace: dict[str, object], engine_flags: pl.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _open(demo_workspace, "team_lead", monkeypatch)
    own = "PAY"
    cards = _cards(at)
    expected = engine_flags.filter(pl.col("team_id") == own)
    assert len(cards) == min(expected.height, 10)
    assert all("· Payments" in c for c in cards)
    text = rendered_text(at)
    for other in engine_flags.filter(pl.col("team_id") != own)["flag_id"]:
        assert other not in text
    assert "Growth" not in "\n".join(cards)


def test_an_executive_sees_the_flags_without_pr_counts_or_story_points(
    demo_workspace: dict[str, object], engine_flags: pl.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _open(demo_workspace, "executive", monkeypatch)
    assert len(_cards(at)) == min(engine_flags.height, 10)
    text = rendered_text(at)
    assert "Outcome to watch" in text
    for key in ("prs_merged", "prs_unlinked", "story_points_resolved", "points_per_item", "agent_prs"):
        assert not re.search(rf"(^|[^a-z_]){key}(_prev)?,", text, re.MULTILINE), f"evidence row {key}"
    rows = [n for frame in at.dataframe if "number" in frame.value.columns for n in frame.value["number"]]
    assert rows, "the executive sees the outcome-level evidence"
    for label in ("PRs merged", "PRs unlinked", "Story points resolved", "Points per item", "Agent PRs"):
        assert not any(r.startswith(label) for r in rows), f"evidence row {label}"
    traces = [t for spec in text.splitlines() if spec.startswith("[{") for t in json.loads(spec)]
    for trace in traces:
        assert "PR" not in str(trace.get("name")) and "story points" not in str(trace.get("name")), trace["name"]
    for flag in engine_flags.to_dicts():
        assert flag["explanation"] not in text, "the explanation with activity numbers stays out"
        evidence = json.loads(flag["evidence"])
        for key in ("prs_merged", "story_points_resolved", "prs_unlinked", "deployments"):
            if key in evidence and evidence[key] >= 10:
                assert f"{key},{evidence[key]}" not in text


def test_acknowledging_through_the_page_keeps_who_when_and_the_comment(
    demo_workspace: dict[str, object], engine_flags: pl.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _open(demo_workspace, "admin", monkeypatch)
    first = engine_flags.row(0, named=True)
    comment = "Known: the Growth experiments push; reviewing value with the PM"
    area = next(t for t in at.text_area if t.key.endswith(".comment"))
    area.input(comment)
    form_key = area.key.removesuffix(".comment")
    next(b for b in at.button if b.key and b.key.startswith(f"FormSubmitter:{form_key}")).click().run()
    assert not at.exception, at.exception
    home = demo_workspace["home"]
    store = open_store(Workspace(home=home, database_url=f"sqlite:///{home / 'throughline.db'}"))  # type: ignore[operator]
    acks = read_acks(store).filter(pl.col("flag_id") == first["flag_id"])
    audit = store.audit_log(limit=20).filter(pl.col("action") == "flag.acknowledge")
    store.engine.dispose()
    assert acks.height == 1
    row = acks.row(0, named=True)
    assert row["acknowledged_by"] == demo_workspace["logins"]["admin"].username  # type: ignore[index]
    assert row["comment"] == comment and row["acknowledged_at"] is not None
    assert audit.height >= 1
    text = rendered_text(at)
    assert "Acknowledged by" in text and plain(comment) in text  # shown as text, its Markdown escaped
    at.toggle(key="flags.hide_acknowledged").set_value(True).run()
    assert len(_cards(at)) == min(engine_flags.height - 1, 10)


def _evidence(at: AppTest) -> list[dict[str, str]]:
    """Every evidence table shown on the page: its labels and the values as read."""
    return [dict(f.value.itertuples(index=False)) for f in at.dataframe if "number" in f.value.columns]


def test_evidence_reads_as_labels_with_units_and_never_as_raw_keys(
    demo_workspace: dict[str, object], engine_flags: pl.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _open(demo_workspace, "admin", monkeypatch)
    tables = _evidence(at)
    assert tables and not [n for t in tables for n in t if "_" in n], "no evidence row is headed by a raw key"
    growth = engine_flags.filter(pl.col("detector") == "activity_up_value_flat", pl.col("team_id") == GROWTH)
    evidence = json.loads(growth.row(0, named=True)["evidence"])
    expected = {
        "Realised value": fmt.money(evidence["realised_value"], "USD"),
        "Threshold": fmt.percent(evidence["threshold"], digits=1),
        "PRs merged rise": fmt.change(evidence["prs_merged_rise"], digits=1),
        "PRs merged, previous window": f"{evidence['prs_merged_prev']:,}",
    }
    assert expected["Realised value"].endswith(" USD") and expected["PRs merged rise"].endswith("%")
    assert any(all(t.get(k) == v for k, v in expected.items()) for t in tables), expected


def test_flag_chart_axes_read_as_dates_not_times_of_day(
    demo_workspace: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _open(demo_workspace, "delivery_lead", monkeypatch)
    layouts = [json.loads(c.proto.spec)["layout"] for c in at.get("plotly_chart")]
    assert layouts
    for layout in layouts:
        axis = layout["xaxis"]
        assert axis["type"] == "date" and axis["tickformat"] == "%d %b %Y"
        first, last = axis["range"]
        assert first < last and " 23:59" not in first


def test_an_executive_reads_how_to_reproduce_in_words_not_a_command(
    demo_workspace: dict[str, object], engine_flags: pl.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _open(demo_workspace, "executive", monkeypatch)
    text = rendered_text(at)
    assert "python -m core" not in text
    assert "the flags report gives the same numbers" in text
    for detector in engine_flags["detector"].unique():
        assert f"detector `{detector}`" not in text
    admin = rendered_text(_open(demo_workspace, "admin", monkeypatch))
    assert "python -m core report flags --format json" in admin

"""The audience rule on what is actually rendered: every page, every role, every table, metric and chart.

Executives never see a story point, velocity, PR count or any per-PR or per-person row; a team
lead never sees another team's per-PR, per-person or per-work-item detail.
"""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
import pytest

from core import access
from core.access import Viewer
from tests.apptest import APP, rendered_text, signed_in

PAGES_DIR = Path(APP).parent / "pages"
ACTIVITY_WORDS = (
    "story point",
    "story_points",
    "velocity",
    "prs merged",
    "prs_merged",
    "cost per pr",
    "cost_per_pr",
    "prs per feature",
    "prs_per_feature",
    "commits",
)
PR_ID = re.compile(r"acme/[a-z0-9-]+#\d+")
WORK_ITEM = re.compile(r"\b[A-Z]{2,5}-\d{2,6}\b")


def _pages(role: str) -> list[str]:
    viewer = Viewer("u", "U", role, "PAY" if role == "team_lead" else None)
    return [p.page_id for p in access.pages_for(viewer)]


def _snapshot(demo: dict) -> dict[str, pl.DataFrame]:
    folder = max((Path(demo["home"]) / "snapshot").glob("v*"), key=lambda p: int(p.name[1:]))
    return {name: pl.read_parquet(folder / f"{name}.parquet") for name in ("people", "pull_requests", "work_items")}


@pytest.mark.parametrize("page_id", _pages("executive"))
def test_executives_see_no_activity_level_figure_and_no_detail_row(
    page_id: str, demo_workspace: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = signed_in(demo_workspace, "executive", monkeypatch)
    at.switch_page(str(PAGES_DIR / f"{page_id}.py")).run()
    assert not at.exception
    text = rendered_text(at)
    lowered = text.lower()
    assert [w for w in ACTIVITY_WORDS if w in lowered] == []
    assert PR_ID.findall(text) == []
    people = set(_snapshot(demo_workspace)["people"]["person_id"].to_list())
    assert sorted(people & set(re.findall(r"[\w.\[\]-]+", text))) == []


@pytest.mark.parametrize("page_id", _pages("team_lead"))
def test_team_leads_see_no_other_team_detail(
    page_id: str, demo_workspace: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = signed_in(demo_workspace, "team_lead", monkeypatch)
    at.switch_page(str(PAGES_DIR / f"{page_id}.py")).run()
    assert not at.exception
    text = rendered_text(at)
    snapshot = _snapshot(demo_workspace)
    prs = snapshot["pull_requests"]
    foreign_prs = set(prs.filter(pl.col("team_id") != "PAY")["pr_id"].to_list())
    own_prs = set(prs.filter(pl.col("team_id") == "PAY")["pr_id"].to_list())
    assert sorted(set(PR_ID.findall(text)) & foreign_prs - own_prs) == []
    items = snapshot["work_items"]
    foreign_items = set(items.filter(pl.col("team_id") != "PAY")["work_item_key"].to_list())
    assert sorted(set(WORK_ITEM.findall(text)) & foreign_items) == []
    people = snapshot["people"]
    foreign_people = set(people.filter(pl.col("team_id").is_not_null() & (pl.col("team_id") != "PAY"))["person_id"])
    assert sorted(foreign_people & set(re.findall(r"[\w.\[\]-]+", text))) == []

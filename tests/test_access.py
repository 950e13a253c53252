"""The access layer, role by role: pages, metric levels, teams and detail rows."""

from __future__ import annotations

import polars as pl
import pytest

from core import access
from core.access import Viewer

EXEC = Viewer("erin", "Erin", "executive")
LEAD = Viewer("dana", "Dana", "delivery_lead")
TEAM = Viewer("theo", "Theo", "team_lead", team_id="pay")
ADMIN = Viewer("ada", "Ada", "admin")
ROWS = pl.LazyFrame({"team_id": ["pay", "onb"], "value": [1, 2]})


@pytest.mark.parametrize(
    ("viewer", "team", "levels"),
    [
        (EXEC, None, {"outcome"}),
        (EXEC, "pay", {"outcome"}),
        (LEAD, None, {"output", "outcome"}),
        (LEAD, "onb", {"output", "outcome"}),
        (TEAM, "pay", {"activity", "output", "outcome"}),
        (TEAM, "onb", {"output", "outcome"}),
        (TEAM, None, {"output", "outcome"}),
        (ADMIN, "onb", {"activity", "output", "outcome"}),
    ],
)
def test_visible_levels_follow_the_audience_rule(viewer: Viewer, team: str | None, levels: set[str]) -> None:
    assert access.visible_levels(viewer, team) == levels


@pytest.mark.parametrize(
    ("viewer", "level", "detail", "teams"),
    [
        (EXEC, "activity", False, []),
        (EXEC, "output", False, []),
        (EXEC, "outcome", False, ["pay", "onb"]),
        (EXEC, "outcome", True, []),
        (LEAD, "activity", False, []),
        (LEAD, "output", False, ["pay", "onb"]),
        (LEAD, "output", True, []),
        (TEAM, "activity", False, ["pay"]),
        (TEAM, "activity", True, ["pay"]),
        (TEAM, "output", False, ["pay", "onb"]),
        (TEAM, "output", True, ["pay"]),
        (ADMIN, "activity", True, ["pay", "onb"]),
    ],
)
def test_restrict_returns_only_rows_the_viewer_may_see(
    viewer: Viewer, level: str, detail: bool, teams: list[str]
) -> None:
    out = access.restrict(viewer, ROWS, level=level, detail=detail).collect()
    assert out["team_id"].to_list() == teams
    assert out.schema == ROWS.collect_schema()


def test_metric_definitions_are_filtered_by_level() -> None:
    metrics = pl.LazyFrame(
        {
            "metric_id": ["prs", "cycle", "act", "pts"],
            "level": ["activity", "output", "outcome", "activity"],
            "team_id": [None, None, None, "onb"],
        }
    )
    seen = {v.role: access.restrict_metrics(v, metrics).collect()["metric_id"].to_list() for v in (EXEC, LEAD, TEAM)}
    assert seen == {"executive": ["act"], "delivery_lead": ["cycle", "act"], "team_lead": ["prs", "cycle", "act"]}


def test_only_admins_open_the_users_page() -> None:
    assert [access.may_open(v, "users") for v in (EXEC, LEAD, TEAM, ADMIN)] == [False, False, False, True]
    assert all(access.may_open(v, "home") for v in (EXEC, LEAD, TEAM, ADMIN))

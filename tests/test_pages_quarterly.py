"""The quarterly review page in AppTest: the executive lands on it, it renders for every role that may open
it, its figures are the CLI report's, and no activity figure reaches an executive."""

from __future__ import annotations

import io
import re
from pathlib import Path

import polars as pl
import pytest

from core import formatting
from core.cli import commands
from tests.apptest import APP, rendered_text, signed_in

PAGE = str(Path(APP).parent / "pages" / "quarterly.py")
ACTIVITY_WORDS = re.compile(r"\bPRs?\b|pull request|merged|commit|story point", re.IGNORECASE)


def test_the_executive_lands_on_the_quarterly_review(demo_workspace: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    at = signed_in(demo_workspace, "executive", monkeypatch)
    assert [t.value for t in at.title] == ["Quarterly review"]
    assert not ACTIVITY_WORDS.search(rendered_text(at)), ACTIVITY_WORDS.search(rendered_text(at))


@pytest.mark.parametrize("role", ["executive", "delivery_lead", "admin"])
def test_the_page_renders_for_every_role_that_may_open_it(
    role: str, demo_workspace: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = signed_in(demo_workspace, role, monkeypatch)
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    text = rendered_text(at)
    assert "features" in text and "None" not in text and "-0%" not in text
    assert [m.label for m in at.metric][:3] == [
        "Features delivered",
        "Confirmed",
        "Median cost per delivered feature",
    ]


def test_a_team_lead_cannot_open_it(demo_workspace: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    at = signed_in(demo_workspace, "team_lead", monkeypatch)
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page(PAGE)


def test_the_page_shows_the_figures_of_the_csv_report(
    demo_workspace: dict, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    at = signed_in(demo_workspace, "executive", monkeypatch)
    period = at.selectbox(key="quarterly.quarter").value
    assert commands.main(["report", "quarterly", "--period", period, "--format", "csv", "--as", "exec"]) == 0
    figures = pl.read_csv(io.StringIO(capsys.readouterr().out))
    value = dict(zip(figures["figure"], figures["value"], strict=True))
    shown = {m.label: m.value for m in at.metric}
    assert shown["Features delivered"] == f"{value['delivered']:.0f}"
    assert shown["Confirmed"] == f"{value['confirmed']:.0f}"
    assert shown["Median cost per delivered feature"] == formatting.money_compact(value["median_cost"], "USD")
    assert shown["Mean cost per delivered feature"] == formatting.money_compact(value["mean_cost"], "USD")
    assert shown["Spend linked to no feature"] == formatting.percent(value["unlinked_share"])


@pytest.mark.parametrize("role", ["executive", "team_lead"])
def test_home_names_its_figures_as_the_quarterly_review_does(
    role: str, demo_workspace: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = signed_in(demo_workspace, role, monkeypatch)
    at.switch_page(str(Path(APP).parent / "pages" / "home.py")).run()
    assert not at.exception, at.exception
    labels = [m.label for m in at.metric]
    assert "Median cost per delivered feature" in labels and "Cost per delivered feature" not in labels
    text = rendered_text(at)
    assert "-0%" not in text and "None" not in text and "of the way" not in text.replace("of the way to target", "")
    median = next(m.value for m in at.metric if m.label == "Median cost per delivered feature")
    assert median.endswith(" USD") or median == formatting.MISSING

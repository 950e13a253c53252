"""Page defaults a role relies on: a team lead's Cost page opens on their team, Impact verdicts filters by
the quarter of delivery, and the Data page tells the demo workspace apart from an empty one."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from tests.apptest import APP, rendered_text, signed_in

PAGES = Path(APP).parent / "pages"


def test_a_team_leads_cost_page_opens_on_their_team(demo_workspace: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    at = signed_in(demo_workspace, "team_lead", monkeypatch)
    at.switch_page(str(PAGES / "cost.py")).run()
    assert not at.exception, at.exception
    assert at.selectbox(key="cost.team").value == "PAY"
    other = signed_in(demo_workspace, "delivery_lead", monkeypatch)
    other.switch_page(str(PAGES / "cost.py")).run()
    assert other.selectbox(key="cost.team").value is None


def test_impact_verdicts_filter_by_the_quarter_of_delivery(
    demo_workspace: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = signed_in(demo_workspace, "delivery_lead", monkeypatch)
    at.switch_page(str(PAGES / "impact.py")).run()
    assert not at.exception, at.exception
    picker = at.selectbox(key="impact.quarter")
    assert picker.value is None and picker.options[0] == "Any quarter"
    everything = at.dataframe[0].value
    quarter = picker.options[1]
    picker.set_value(quarter).run()
    assert not at.exception, at.exception
    shown = pl.from_pandas(at.dataframe[0].value)
    delivered = shown["Delivered"].cast(pl.Date)
    labels = (delivered.dt.year().cast(pl.String) + "Q" + delivered.dt.quarter().cast(pl.String)).unique()
    assert labels.to_list() == [quarter]
    assert 0 < shown.height < len(everything)
    assert list(shown.columns).index("Verdict") < list(shown.columns).index("Explanation")


def test_the_data_page_says_the_demo_workspace_is_the_demo(
    demo_workspace: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = signed_in(demo_workspace, "admin", monkeypatch)
    at.switch_page(str(PAGES / "data.py")).run()
    assert not at.exception, at.exception
    text = rendered_text(at)
    assert "This is the demo workspace" in text and "Nothing imported yet" not in text

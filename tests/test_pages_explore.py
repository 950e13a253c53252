"""The Explore page in AppTest: what each role may pick and see, and crafted widget state refused."""

from __future__ import annotations

import json
import re

import pytest
from streamlit.testing.v1 import AppTest

from core import explore
from core.access import Viewer
from tests.apptest import rendered_text, signed_in

PAGE = "pages/explore.py"
ACTIVITY_WORDS = re.compile(
    r"story point|pull request|\bPRs?\b|work item|lines changed|hours to merge|velocity|commits|deployments",
    re.IGNORECASE,
)
"""Words that would mean an activity-level figure (or its label) reached the session."""


def _opened(demo: dict, role: str, monkeypatch: pytest.MonkeyPatch, **state: object) -> AppTest:
    at = signed_in(demo, role, monkeypatch)
    for key, value in state.items():
        at.session_state[key] = value
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    return at


def _visible_text(at: AppTest) -> str:
    """What the run rendered, without plotly's base64-packed number arrays (arbitrary letters)."""
    return re.sub(r'"bdata": "[^"]*"', "", rendered_text(at))


def _shows_data(at: AppTest) -> bool:
    return bool(at.dataframe) or bool(at.metric) or '"type": "bar"' in rendered_text(at)


@pytest.mark.parametrize("role", ["executive", "delivery_lead", "admin"])
def test_the_page_offers_exactly_the_datasets_the_role_may_explore(
    role: str, demo_workspace: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _opened(demo_workspace, role, monkeypatch)
    viewer = Viewer("u", "U", role)
    offered = [d.name for d in explore.datasets_for(viewer)]
    assert at.selectbox(key="explore.dataset").options == [explore.DATASETS[n].label for n in offered]
    assert at.metric, "the default question shows its one number"
    assert "How is this computed?" in rendered_text(at)


def test_an_executive_picking_through_every_widget_never_sees_activity(
    demo_workspace: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _opened(demo_workspace, "executive", monkeypatch)
    seen: list[str] = []
    for dataset in explore.datasets_for(Viewer("u", "U", "executive")):
        at.selectbox(key="explore.dataset").set_value(dataset.name).run()
        value_box = at.selectbox(key=f"explore.{dataset.name}.value")
        assert len(value_box.options) == len(explore.values_for(Viewer("u", "U", "executive"), dataset))
        for value in explore.values_for(Viewer("u", "U", "executive"), dataset):
            value_box = at.selectbox(key=f"explore.{dataset.name}.value").set_value(value.name)
            at.run()
            for aggregation in value.aggregations:
                at.radio(key=f"explore.{dataset.name}.{value.name}.aggregation").set_value(aggregation).run()
                group_by = at.multiselect(key=f"explore.{dataset.name}.group_by")
                for dimensions in ([], [d.name for d in dataset.dimensions[:2]]):
                    group_by.set_value(dimensions).run()
                    assert not at.exception, at.exception
                    assert not at.warning, [w.value for w in at.warning]
                    text = _visible_text(at)
                    seen.append(text)
                    labels = at.multiselect(key=f"explore.{dataset.name}.group_by").options
                    labels += at.selectbox(key=f"explore.{dataset.name}.value").options
                    assert not ACTIVITY_WORDS.search(text + " ".join(labels)), ACTIVITY_WORDS.search(text)
    assert any("Sum of cost" in text for text in seen)
    assert any("Sum of realised value" in text for text in seen)


@pytest.mark.parametrize("chart", ["Line", "Table"])
def test_chart_types_draw_the_same_result(chart: str, demo_workspace: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    at = _opened(
        demo_workspace,
        "delivery_lead",
        monkeypatch,
        **{"explore.dataset": "cost_lines", "explore.cost_lines.group_by": ["quarter"], "explore.chart": chart},
    )
    assert at.dataframe[0].value.columns.tolist() == ["Quarter incurred", "Sum of cost"]
    text = rendered_text(at)
    if chart == "Line":
        assert '"mode": "lines+markers"' in text
        assert "Sum of cost \\u00b7 cost" in text, "the hover says what the number is"
    else:
        assert '"type": "scatter"' not in text and '"type": "bar"' not in text


@pytest.mark.parametrize(
    ("role", "state", "reason"),
    [
        ("executive", {"explore.dataset": "pull_requests"}, "activity-level per-record detail"),
        (
            "executive",
            {"explore.dataset": "work_items", "explore.work_items.value": "story_points"},
            "Story points in work items: activity-level",
        ),
        ("executive", {"explore.dataset": "features"}, "output-level"),
        ("executive", {"explore.dataset": "cost_lines", "explore.cost_lines.value": "cost_per_pr"}, "activity-level"),
        (
            "executive",
            {"explore.dataset": "incidents", "explore.incidents.value": "hours_to_resolve"},
            "output-level",
        ),
        ("executive", {"explore.dataset": "x'; DROP TABLE users; --"}, "There is no dataset"),
        (
            "executive",
            {"explore.dataset": "cost_lines", "explore.cost_lines.group_by": ["team", "author_kind"]},
            "cannot be grouped or filtered by 'author_kind'",
        ),
        (
            "executive",
            {"explore.dataset": "cost_lines", "explore.cost_lines.filter.source": ["llm", "') OR 1=1 --"]},
            "does not offer",
        ),
        ("delivery_lead", {"explore.dataset": "work_items"}, "activity-level per-record detail"),
        ("delivery_lead", {"explore.dataset": "deployments"}, "activity-level"),
        (
            "admin",
            {"explore.dataset": "metric_observations", "explore.metric_observations.value": "x" * 5000},
            "no value",
        ),
    ],
)
def test_crafted_widget_state_is_refused_not_run(
    role: str, state: dict, reason: str, demo_workspace: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _opened(demo_workspace, role, monkeypatch, **state)
    warnings = [w.value for w in at.warning]
    assert len(warnings) == 1 and "refused and nothing was run" in warnings[0]
    assert reason in warnings[0]
    assert not _shows_data(at)

    at.button(key="explore.restart").click().run()
    assert not at.exception and not at.warning
    assert at.selectbox(key="explore.dataset").value in [d.name for d in explore.datasets_for(Viewer("u", "U", role))]


def test_a_team_lead_has_no_explore_page(demo_workspace: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    at = signed_in(demo_workspace, "team_lead", monkeypatch)
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page(PAGE)


def test_money_reads_with_its_currency_and_a_duration_with_its_unit(
    demo_workspace: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _opened(demo_workspace, "delivery_lead", monkeypatch, **{"explore.dataset": "cost_lines"})
    assert at.metric[0].label == "Sum of cost" and at.metric[0].value.endswith(" USD")
    assert "." not in at.metric[0].value, "no cents above 1,000"
    at = _opened(
        demo_workspace,
        "delivery_lead",
        monkeypatch,
        **{"explore.dataset": "cost_lines", "explore.cost_lines.group_by": ["quarter"], "explore.chart": "Table"},
    )
    headings = json.loads(at.dataframe[0].proto.columns)
    assert headings["Sum of cost"]["label"] == "Sum of cost (USD)"
    at = _opened(
        demo_workspace,
        "delivery_lead",
        monkeypatch,
        **{"explore.dataset": "features", "explore.features.value": "cycle_days"},
    )
    assert re.fullmatch(r"[\d,.]+ days", at.metric[0].value), at.metric[0].value

"""Explore's query engine: hand-computed aggregates per role × dataset × level, and crafted queries refused cleanly."""

from __future__ import annotations

from datetime import date, datetime

import polars as pl
import pytest

from core import explore
from core.access import Viewer
from core.explore import DATASETS, ExploreQuery, ExploreRefused, run_query
from core.model.schema import ENTITIES, coerce

EXEC = Viewer("erin", "Erin", "executive")
LEAD = Viewer("dana", "Dana", "delivery_lead")
PAY_LEAD = Viewer("tom", "Tom", "team_lead", "PAY")
ONB_LEAD = Viewer("olu", "Olu", "team_lead", "ONB")
ADMIN = Viewer("ada", "Ada", "admin")
ROLES = {"executive": EXEC, "delivery_lead": LEAD, "team_lead": PAY_LEAD, "admin": ADMIN}

LEVELS_SEEN = {
    "executive": {"outcome"},
    "delivery_lead": {"output", "outcome"},
    "team_lead": {"activity", "output", "outcome"},
    "admin": {"activity", "output", "outcome"},
}
"""PRODUCT.md's audience rule, restated: which levels each role sees (a team lead: for their own team)."""
SEES_DETAIL = {"team_lead", "admin"}


def d(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _frame(entity: str, rows: list[dict]) -> pl.LazyFrame:
    return coerce(entity, pl.DataFrame(rows, infer_schema_length=None)).lazy()


# A tiny organisation: two teams, five features, and every number below is written out by hand.
FRAMES: dict[str, pl.LazyFrame] = {name: coerce(name, pl.DataFrame()).lazy() for name in ENTITIES}
FRAMES |= {
    "teams": _frame("teams", [{"team_id": "PAY", "name": "Payments"}, {"team_id": "ONB", "name": "Onboarding"}]),
    "metrics": _frame(
        "metrics",
        [
            {
                "metric_id": "conv",
                "name": "Conversion",
                "level": "outcome",
                "direction": "higher",
                "value_per_unit": 1000.0,
            },
            {"metric_id": "tix", "name": "Tickets", "level": "outcome", "direction": "lower", "value_per_unit": 10.0},
            {"metric_id": "lead", "name": "Lead time", "level": "output", "direction": "lower"},
            {
                "metric_id": "prs",
                "name": "PRs merged per week",
                "level": "activity",
                "direction": "higher",
                "team_id": "PAY",
            },
        ],
    ),
    "features": _frame(
        "features",
        [
            {
                "feature_id": "F1",
                "name": "One",
                "team_id": "PAY",
                "status": "delivered",
                "started_at": d("2025-01-01"),
                "delivered_at": d("2025-01-11"),
                "estimate_cost": 100.0,
            },
            {
                "feature_id": "F2",
                "name": "Two",
                "team_id": "PAY",
                "status": "delivered",
                "started_at": d("2025-03-01"),
                "delivered_at": d("2025-04-05"),
                "estimate_cost": 300.0,
            },
            {
                "feature_id": "F3",
                "name": "Three",
                "team_id": "ONB",
                "status": "delivered",
                "started_at": d("2025-02-01"),
                "delivered_at": d("2025-02-21"),
                "estimate_cost": 200.0,
            },
            {"feature_id": "F4", "name": "Four", "team_id": "ONB", "status": "planned", "estimate_cost": 50.0},
            {
                "feature_id": "F5",
                "name": "Five",
                "team_id": "ONB",
                "status": "delivered",
                "started_at": d("2025-05-01"),
                "delivered_at": d("2025-05-31"),
            },
        ],
    ),
    "pull_requests": _frame(
        "pull_requests",
        [
            {
                "pr_id": "pay#1",
                "repo": "pay",
                "author_kind": "human",
                "team_id": "PAY",
                "feature_id": "F1",
                "state": "merged",
                "created_at": d("2025-01-02"),
                "merged_at": d("2025-01-03"),
                "additions": 10,
                "deletions": 2,
                "reviews": 1,
            },
            {
                "pr_id": "pay#2",
                "repo": "pay",
                "author_kind": "agent",
                "team_id": "PAY",
                "state": "merged",
                "created_at": d("2025-01-05"),
                "merged_at": d("2025-01-05 06:00"),
                "additions": 3,
                "deletions": 1,
                "reviews": 2,
            },
            {
                "pr_id": "pay#3",
                "repo": "pay",
                "author_kind": "human",
                "team_id": "PAY",
                "state": "open",
                "created_at": d("2025-04-01"),
                "additions": 50,
                "deletions": 0,
                "reviews": 0,
            },
            {
                "pr_id": "onb#1",
                "repo": "onb",
                "author_kind": "human",
                "team_id": "ONB",
                "feature_id": "F3",
                "state": "merged",
                "created_at": d("2025-02-02"),
                "merged_at": d("2025-02-04"),
                "additions": 7,
                "deletions": 7,
                "reviews": 3,
            },
            {
                "pr_id": "onb#2",
                "repo": "onb",
                "author_kind": "agent",
                "team_id": "ONB",
                "state": "closed",
                "created_at": d("2025-02-03"),
                "additions": 1,
                "deletions": 1,
                "reviews": 0,
            },
        ],
    ),
    "work_items": _frame(
        "work_items",
        [
            {
                "work_item_key": "PAY-1",
                "team_id": "PAY",
                "feature_id": "F1",
                "type": "story",
                "story_points": 3.0,
                "created_at": d("2025-01-01"),
                "resolved_at": d("2025-01-03"),
            },
            {
                "work_item_key": "PAY-2",
                "team_id": "PAY",
                "type": "bug",
                "story_points": 5.0,
                "created_at": d("2025-01-02"),
                "resolved_at": d("2025-01-06"),
            },
            {
                "work_item_key": "ONB-1",
                "team_id": "ONB",
                "feature_id": "F3",
                "type": "story",
                "story_points": 13.0,
                "created_at": d("2025-02-01"),
            },
        ],
    ),
    "deployments": _frame(
        "deployments",
        [
            {
                "deployment_id": "d1",
                "team_id": "PAY",
                "service": "api",
                "environment": "production",
                "status": "success",
                "started_at": d("2025-01-03 10:00"),
                "finished_at": d("2025-01-03 10:20"),
            },
            {
                "deployment_id": "d2",
                "team_id": "PAY",
                "service": "api",
                "environment": "production",
                "status": "success",
                "started_at": d("2025-01-04 10:00"),
                "finished_at": d("2025-01-04 10:40"),
            },
            {
                "deployment_id": "d3",
                "team_id": "ONB",
                "service": "web",
                "environment": "production",
                "status": "failure",
                "started_at": d("2025-02-04 09:00"),
                "finished_at": d("2025-02-04 09:10"),
            },
        ],
    ),
    "incidents": _frame(
        "incidents",
        [
            {
                "incident_id": "i1",
                "team_id": "PAY",
                "service": "api",
                "severity": "SEV2",
                "opened_at": d("2025-01-05 10:00"),
                "resolved_at": d("2025-01-05 12:00"),
            },
            {
                "incident_id": "i2",
                "team_id": "ONB",
                "service": "web",
                "severity": "SEV1",
                "opened_at": d("2025-02-05 10:00"),
                "resolved_at": d("2025-02-05 13:00"),
                "deployment_id": "d3",
            },
            {
                "incident_id": "i3",
                "team_id": "ONB",
                "service": "web",
                "severity": "SEV3",
                "opened_at": d("2025-04-05 10:00"),
                "resolved_at": d("2025-04-05 15:00"),
            },
        ],
    ),
    "cost_events": _frame(
        "cost_events",
        [
            {"event_id": "e1", "occurred_at": d("2025-01-10"), "source": "llm", "amount": 10.0, "pr_id": "pay#1"},
            {"event_id": "e2", "occurred_at": d("2025-01-20"), "source": "ci", "amount": 20.0, "pr_id": "pay#1"},
            {"event_id": "e3", "occurred_at": d("2025-04-02"), "source": "people", "amount": 100.0},
            {"event_id": "e4", "occurred_at": d("2025-02-10"), "source": "llm", "amount": 30.0, "pr_id": "onb#1"},
            {"event_id": "e5", "occurred_at": d("2025-02-11"), "source": "ci", "amount": 40.0},
        ],
    ),
    "metric_observations": _frame(
        "metric_observations",
        [
            {"metric_id": "conv", "date": date(2025, 1, 1), "segment": "all", "value": 1.0},
            {"metric_id": "conv", "date": date(2025, 4, 1), "segment": "all", "value": 3.0},
            {"metric_id": "tix", "date": date(2025, 1, 1), "segment": "all", "value": 100.0},
            {"metric_id": "lead", "date": date(2025, 1, 1), "segment": "all", "value": 5.0},
            {"metric_id": "prs", "date": date(2025, 1, 1), "segment": "all", "value": 7.0},
        ],
    ),
}

JUDGED = pl.DataFrame(
    {
        "feature_id": ["F1", "F2", "F3", "F5"],
        "metric_id": ["conv", "conv", "tix", "lead"],
        "verdict": ["confirmed", "refuted", "confirmed", "inconclusive"],
        "method": ["interrupted time series"] * 4,
        "delivered_on": [date(2025, 1, 11), date(2025, 4, 5), date(2025, 2, 21), date(2025, 5, 31)],
        "estimate_abs": [0.5, -0.1, -20.0, 1.0],
        "estimate_rel": [0.10, -0.02, -0.05, 0.2],
    }
)
"""Realised value: F1 0.5 × 1000 = 500; F3 −20 × (lower is better: −1) × 10 = 200; others realise nothing."""

COST_LINES = pl.DataFrame(
    {
        "event_id": ["e1", "e2", "e3", "e4", "e5"],
        "occurred_at": [d("2025-01-10"), d("2025-01-20"), d("2025-04-02"), d("2025-02-10"), d("2025-02-11")],
        "source": ["llm", "ci", "people", "llm", "ci"],
        "amount": [10.0, 20.0, 100.0, 30.0, 40.0],
        "feature_id": ["F1", "F1", "F2", "F3", None],
        "team_id": ["PAY", "PAY", "PAY", "ONB", "ONB"],
        "rule": ["direct", "pull_request", "work_item", "direct", "unattributed"],
    }
)


def ask(viewer: Viewer, dataset: str, value: str, aggregation: str, *group_by: str, **options: object) -> pl.DataFrame:
    query = ExploreQuery(dataset, value, aggregation, group_by=group_by, **options)  # type: ignore[arg-type]
    return run_query(viewer, FRAMES, query, judged=JUDGED, cost_lines=COST_LINES)


def rows(frame: pl.DataFrame) -> list[tuple]:
    return frame.rows()


# --- What each role may pick -----------------------------------------------------------------------------------


def test_each_role_is_offered_exactly_the_datasets_its_levels_allow() -> None:
    offered = {role: [d.name for d in explore.datasets_for(viewer)] for role, viewer in ROLES.items()}
    assert offered["executive"] == ["verdicts", "cost_lines", "incidents", "metric_observations"]
    assert offered["delivery_lead"] == ["features", "verdicts", "cost_lines", "incidents", "metric_observations"]
    assert offered["team_lead"] == list(DATASETS)
    assert offered["admin"] == list(DATASETS)


def test_an_executive_is_offered_no_activity_or_output_value() -> None:
    for dataset in explore.datasets_for(EXEC):
        for value in explore.values_for(EXEC, dataset):
            assert value.level in (None, "outcome"), (dataset.name, value.name)


CASES = [(role, ds.name, v.name) for role in ROLES for ds in DATASETS.values() for v in ds.values]


@pytest.mark.parametrize(("role", "dataset", "value"), CASES)
def test_every_role_dataset_and_value_is_allowed_exactly_by_the_audience_rule(
    role: str, dataset: str, value: str
) -> None:
    spec = DATASETS[dataset]
    chosen = spec.value(value)
    assert chosen is not None
    allowed = (chosen.level is None or chosen.level in LEVELS_SEEN[role]) and (not spec.detail or role in SEES_DETAIL)
    query = ExploreQuery(dataset, value, chosen.aggregations[0], group_by=("team",))
    if allowed:
        result = run_query(ROLES[role], FRAMES, query, judged=JUDGED, cost_lines=COST_LINES)
        assert result.columns[0] == "Team"
    else:
        with pytest.raises(ExploreRefused, match="your role does not see"):
            run_query(ROLES[role], FRAMES, query, judged=JUDGED, cost_lines=COST_LINES)


@pytest.mark.parametrize(
    ("dataset", "value", "aggregation"),
    [
        ("work_items", "story_points", "sum"),
        ("work_items", "work_items", "count"),
        ("pull_requests", "pull_requests", "count"),
        ("pull_requests", "lines_changed", "sum"),
        ("cost_lines", "cost_per_pr", "mean"),
        ("deployments", "deployments", "count"),
        ("features", "features", "count"),
        ("incidents", "hours_to_resolve", "median"),
    ],
)
def test_an_executive_cannot_get_activity_or_output_figures_by_crafting_the_query(
    dataset: str, value: str, aggregation: str
) -> None:
    with pytest.raises(ExploreRefused, match="your role does not see"):
        ask(EXEC, dataset, value, aggregation, "team")


def test_a_delivery_lead_gets_no_story_points_pr_counts_or_cost_per_pr() -> None:
    for dataset, value, aggregation in [
        ("work_items", "story_points", "sum"),
        ("pull_requests", "pull_requests", "count"),
        ("cost_lines", "cost_per_pr", "median"),
    ]:
        with pytest.raises(ExploreRefused, match="your role does not see"):
            ask(LEAD, dataset, value, aggregation)


# --- Hand-computed answers ---------------------------------------------------------------------------------------


def test_cost_by_team_and_by_source_for_an_executive() -> None:
    assert rows(ask(EXEC, "cost_lines", "cost", "sum", "team")) == [("PAY", 130.0), ("ONB", 70.0)]
    assert rows(ask(EXEC, "cost_lines", "cost", "sum", "source")) == [("people", 100.0), ("ci", 60.0), ("llm", 40.0)]
    assert ask(EXEC, "cost_lines", "cost", "sum").columns == ["Sum of cost"]
    assert rows(ask(EXEC, "cost_lines", "cost", "sum")) == [(200.0,)]


def test_cost_per_feature_sums_each_feature_first() -> None:
    # Per feature: F1 10 + 20 = 30, F2 100, F3 30; the unattributed line belongs to no feature.
    assert rows(ask(EXEC, "cost_lines", "cost_per_feature", "median")) == [(30.0,)]
    assert rows(ask(EXEC, "cost_lines", "cost_per_feature", "sum")) == [(160.0,)]
    assert rows(ask(EXEC, "cost_lines", "cost_per_feature", "median", "team")) == [("PAY", 65.0), ("ONB", 30.0)]


def test_cost_per_pull_request_is_activity_for_admins_and_own_team_leads() -> None:
    assert rows(ask(ADMIN, "cost_lines", "cost_per_pr", "sum", "team")) == [("ONB", 30.0), ("PAY", 30.0)]
    assert rows(ask(PAY_LEAD, "cost_lines", "cost_per_pr", "sum", "team")) == [("PAY", 30.0)]
    assert rows(ask(ONB_LEAD, "cost_lines", "cost_per_pr", "sum", "team")) == [("ONB", 30.0)]


def test_cost_by_quarter_sorts_in_time_and_loses_nothing() -> None:
    by_quarter = ask(EXEC, "cost_lines", "cost", "sum", "quarter")
    assert rows(by_quarter) == [("2025-Q1", 100.0), ("2025-Q2", 100.0)]
    by_team_and_week = ask(ADMIN, "cost_lines", "cost", "sum", "team", "week")
    assert by_team_and_week["Sum of cost"].sum() == pytest.approx(COST_LINES["amount"].sum())
    assert by_team_and_week.columns == ["Team", "Week incurred", "Sum of cost"]
    assert by_team_and_week["Week incurred"].is_sorted()


def test_filters_and_the_period_narrow_the_rows() -> None:
    kept = ask(EXEC, "cost_lines", "cost", "sum", "team", filters=(("source", ("llm", "ci")),))
    assert rows(kept) == [("ONB", 70.0), ("PAY", 30.0)]
    january = ask(EXEC, "cost_lines", "cost", "sum", period_start=date(2025, 1, 1), period_end=date(2025, 1, 31))
    assert rows(january) == [(30.0,)]
    attributed = ask(EXEC, "cost_lines", "cost", "sum", "attributed")
    assert rows(attributed) == [("yes", 160.0), ("no", 40.0)]


def test_verdicts_and_realised_value_by_team() -> None:
    assert rows(ask(EXEC, "verdicts", "realised_value", "sum", "team")) == [("PAY", 500.0), ("ONB", 200.0)]
    assert rows(ask(EXEC, "verdicts", "judged_features", "count", "verdict")) == [("confirmed", 2), ("refuted", 1)]
    assert rows(ask(EXEC, "verdicts", "measured_change_pct", "mean", "team")) == [
        ("PAY", pytest.approx(4.0)),
        ("ONB", pytest.approx(-5.0)),
    ]


def test_a_verdict_on_a_metric_the_viewer_may_not_see_is_left_out() -> None:
    # F5's hypothesis names an output-level metric: delivery leads see it, executives do not.
    assert ask(EXEC, "verdicts", "judged_features", "count")["Number of features with a verdict"].item() == 3
    assert ask(LEAD, "verdicts", "judged_features", "count")["Number of features with a verdict"].item() == 4


def test_features_for_a_delivery_lead() -> None:
    assert rows(ask(LEAD, "features", "features", "count", "team")) == [("ONB", 3), ("PAY", 2)]
    assert rows(ask(LEAD, "features", "cycle_days", "median", "team")) == [("ONB", 25.0), ("PAY", 22.5)]
    assert rows(ask(LEAD, "features", "features", "count", "verdict")) == [
        ("confirmed", 2),
        ("(none)", 1),
        ("inconclusive", 1),
        ("refuted", 1),
    ]
    first_quarter = ask(
        LEAD, "features", "features", "count", period_start=date(2025, 1, 1), period_end=date(2025, 3, 31)
    )
    assert rows(first_quarter) == [(2,)]
    assert rows(ask(LEAD, "features", "features", "count", "quarter")) == [
        ("2025-Q1", 2),
        ("2025-Q2", 2),
        ("(none)", 1),
    ]


def test_incidents_are_failure_demand_for_executives_and_recovery_time_for_delivery_leads() -> None:
    assert rows(ask(EXEC, "incidents", "incidents", "count", "team")) == [("ONB", 2), ("PAY", 1)]
    assert rows(ask(LEAD, "incidents", "hours_to_resolve", "median", "team")) == [("ONB", 4.0), ("PAY", 2.0)]
    assert rows(ask(EXEC, "incidents", "incidents", "count", "from_deployment")) == [("no", 2), ("yes", 1)]


def test_metric_observations_only_at_the_levels_the_viewer_sees() -> None:
    assert rows(ask(EXEC, "metric_observations", "value", "mean", "metric")) == [
        ("Tickets", 100.0),
        ("Conversion", 2.0),
    ]
    assert ask(EXEC, "metric_observations", "observations", "count", "metric_level").rows() == [("outcome", 3)]
    assert ask(LEAD, "metric_observations", "observations", "count", "metric_level").rows() == [
        ("outcome", 3),
        ("output", 1),
    ]
    assert ask(ADMIN, "metric_observations", "observations", "count", "metric_level").rows() == [
        ("outcome", 3),
        ("activity", 1),
        ("output", 1),
    ]
    crafted = ask(EXEC, "metric_observations", "value", "sum", filters=(("metric_level", ("activity",)),))
    assert crafted.rows() == [(0.0,)]


def test_a_team_lead_sees_own_team_activity_metrics_only() -> None:
    pay = ask(PAY_LEAD, "metric_observations", "observations", "count", "metric")["Metric"].to_list()
    onb = ask(ONB_LEAD, "metric_observations", "observations", "count", "metric")["Metric"].to_list()
    assert "PRs merged per week" in pay
    assert "PRs merged per week" not in onb


def test_activity_detail_for_admins() -> None:
    assert rows(ask(ADMIN, "pull_requests", "pull_requests", "count", "team")) == [("PAY", 3), ("ONB", 2)]
    assert rows(ask(ADMIN, "work_items", "story_points", "sum", "team")) == [("ONB", 13.0), ("PAY", 8.0)]
    assert rows(ask(ADMIN, "pull_requests", "lines_changed", "sum", "author_kind")) == [("human", 76.0), ("agent", 6.0)]
    assert rows(ask(ADMIN, "pull_requests", "hours_to_merge", "median", "team")) == [("ONB", 48.0), ("PAY", 15.0)]
    assert rows(ask(ADMIN, "deployments", "deployments", "count", "status")) == [("success", 2), ("failure", 1)]
    assert rows(ask(ADMIN, "deployments", "deploy_minutes", "mean", "team")) == [("PAY", 30.0), ("ONB", 10.0)]


def test_a_team_lead_gets_own_team_detail_and_every_team_outcome_aggregate() -> None:
    assert rows(ask(PAY_LEAD, "pull_requests", "pull_requests", "count", "team")) == [("PAY", 3)]
    assert rows(ask(PAY_LEAD, "work_items", "story_points", "sum", "team")) == [("PAY", 8.0)]
    assert rows(ask(PAY_LEAD, "deployments", "deployments", "count", "team")) == [("PAY", 2)]
    assert rows(ask(ONB_LEAD, "work_items", "story_points", "sum")) == [(13.0,)]
    other_team = ask(PAY_LEAD, "pull_requests", "pull_requests", "count", filters=(("team", ("ONB",)),))
    assert rows(other_team) == [(0,)]
    assert rows(ask(PAY_LEAD, "cost_lines", "cost", "sum", "team")) == [("PAY", 130.0), ("ONB", 70.0)]
    assert rows(ask(PAY_LEAD, "features", "features", "count", "team")) == [("ONB", 3), ("PAY", 2)]


def test_filter_choices_come_from_visible_rows_only() -> None:
    assert explore.dimension_values(EXEC, FRAMES, "metric_observations", "metric") == ["Conversion", "Tickets"]
    assert explore.dimension_values(PAY_LEAD, FRAMES, "work_items", "team") == ["PAY"]
    assert explore.dimension_values(EXEC, FRAMES, "cost_lines", "source", JUDGED, COST_LINES) == [
        "ci",
        "llm",
        "people",
    ]
    assert explore.dimension_values(EXEC, FRAMES, "work_items", "team") == []


def test_results_are_groups_never_records() -> None:
    result = ask(ADMIN, "pull_requests", "pull_requests", "count", "repo", "state")
    assert result.columns == ["Repository", "State", "Number of pull requests"]
    assert "pr_id" not in result.columns and "title" not in result.columns


def test_too_many_groups_are_refused_with_advice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(explore, "MAX_GROUPS", 2)
    with pytest.raises(ExploreRefused, match="3 groups"):
        ask(EXEC, "cost_lines", "cost", "sum", "source")


def test_the_caption_says_how_the_number_is_computed() -> None:
    query = ExploreQuery(
        "cost_lines",
        "cost_per_feature",
        "median",
        group_by=("team", "quarter"),
        filters=(("source", ("llm",)),),
        period_start=date(2025, 1, 1),
    )
    text = explore.describe(query)
    assert text.startswith("The median of the cost attributed to each feature")
    assert "per team and quarter incurred, where source is llm, from 2025-01-01 to the end." in text
    assert explore.result_label(query) == "Median of cost per feature"


# --- Crafted queries are refused cleanly ------------------------------------------------------------------------

HOSTILE = [
    "x'; DROP TABLE users; --",
    'team" OR 1=1 --',
    "pl.col('story_points')",
    "__import__('os').system('id')",
    "story_points",
    "",
    "a" * 100_000,
    "\x00\n\r\t`*<script>",
]


@pytest.mark.parametrize("name", HOSTILE)
def test_crafted_names_are_refused_with_a_short_message(name: str) -> None:
    attempts = [
        ExploreQuery(name, "cost", "sum"),
        ExploreQuery("cost_lines", name, "sum"),
        ExploreQuery("cost_lines", "cost", name),
        ExploreQuery("cost_lines", "cost", "sum", group_by=(name,)),
        ExploreQuery("cost_lines", "cost", "sum", filters=((name, ("llm",)),)),
    ]
    for query in attempts:
        with pytest.raises(ExploreRefused) as refused:
            run_query(EXEC, FRAMES, query, judged=JUDGED, cost_lines=COST_LINES)
        message = refused.value.message
        assert len(message) < 300
        assert "`" not in message and "<script>" not in message and "\x00" not in message


def test_hostile_filter_values_are_compared_as_plain_text() -> None:
    hostile = ("x'; DROP TABLE users; --", "') or 1=1 --", "pl.lit(True)")
    result = ask(EXEC, "cost_lines", "cost", "sum", "team", filters=(("source", hostile),))
    assert result.height == 0
    assert rows(ask(EXEC, "cost_lines", "cost", "sum")) == [(200.0,)]


def test_very_long_or_too_many_filter_values_are_refused() -> None:
    with pytest.raises(ExploreRefused, match="longer than"):
        ask(EXEC, "cost_lines", "cost", "sum", filters=(("source", ("a" * 10_000,)),))
    with pytest.raises(ExploreRefused, match="at most"):
        ask(EXEC, "cost_lines", "cost", "sum", filters=(("source", tuple(str(i) for i in range(5_000))),))


@pytest.mark.parametrize(
    "query",
    [
        ExploreQuery("cost_lines", "cost", "sum", group_by="team"),  # type: ignore[arg-type]
        ExploreQuery("cost_lines", "cost", "sum", group_by=("team", "team")),
        ExploreQuery("cost_lines", "cost", "sum", group_by=("team", "source", "quarter", "attributed")),
        ExploreQuery("cost_lines", "cost", "sum", filters=(("source", "llm"),)),  # type: ignore[arg-type]
        ExploreQuery("cost_lines", "cost", "sum", filters=("source",)),  # type: ignore[arg-type]
        ExploreQuery("cost_lines", "cost", "sum", filters=(("source", ("llm",)), ("source", ("ci",)))),
        ExploreQuery("cost_lines", "cost", "sum", period_start="2025-01-01"),  # type: ignore[arg-type]
        ExploreQuery("cost_lines", "cost", "sum", period_start=date(2025, 2, 1), period_end=date(2025, 1, 1)),
        ExploreQuery("cost_lines", "cost", "count"),
        ExploreQuery(["cost_lines"], "cost", "sum"),  # type: ignore[arg-type]
        ExploreQuery("cost_lines", None, "sum"),  # type: ignore[arg-type]
    ],
)
def test_malformed_queries_are_refused(query: ExploreQuery) -> None:
    with pytest.raises(ExploreRefused):
        run_query(ADMIN, FRAMES, query, judged=JUDGED, cost_lines=COST_LINES)


def test_a_viewer_with_an_unknown_role_gets_nothing() -> None:
    stranger = Viewer("x", "X", "contractor")
    assert explore.datasets_for(stranger) == []
    with pytest.raises(ExploreRefused):
        ask(stranger, "metric_observations", "value", "mean")

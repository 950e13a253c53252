"""Each recognised export format, imported from a realistic sample, gives the rows and totals worked out by hand."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from pathlib import Path

import polars as pl
import pytest

from core.importing import GenericMapping, ImportOptions, plan_import, recognise, run_import
from core.store.database import Store, open_store
from core.store.workspace import Workspace

FIXTURES = Path(__file__).parent / "fixtures" / "imports"
PROJECTS = ImportOptions(work_item_projects=("PAY", "ENG"))
"""The fixtures' work-item projects, as the setting `import.work_item_projects` names them."""


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return open_store(Workspace(home=tmp_path, database_url=f"sqlite:///{tmp_path / 't.db'}"))


def load(store: Store, name: str, expected_format: str, **kwargs: object) -> None:
    path = FIXTURES / name
    assert recognise(path).format == expected_format
    plan = plan_import(path, store=store, **kwargs)  # type: ignore[arg-type]
    assert plan.problems == []
    run_import(store, plan, actor="tester")


def by_key(frame: pl.DataFrame, key: str) -> dict[str, dict[str, object]]:
    return {row[key]: row for row in frame.to_dicts()}


def test_jira_csv_epics_become_features_and_issues_work_items(store: Store) -> None:
    load(store, "jira_export.csv", "jira_csv")
    features = by_key(store.read("features"), "feature_id")
    assert set(features) == {"PAY-1", "PAY-2", "PAY-99"}
    assert features["PAY-1"]["status"] == "delivered"
    assert features["PAY-1"]["delivered_at"] == datetime(2026, 3, 20, 17, 0)
    assert features["PAY-2"]["status"] == "in_progress"
    assert features["PAY-99"]["status"] == "planned"
    items = by_key(store.read("work_items"), "work_item_key")
    assert len(items) == 6
    assert {k: items[k]["feature_id"] for k in items} == {
        "PAY-10": "PAY-1",  # Epic Link
        "PAY-11": "PAY-1",  # Parent holds the epic's issue id
        "PAY-12": "PAY-2",  # Parent holds the epic's key
        "PAY-13": "PAY-1",  # sub-task inherits its parent story's epic
        "PAY-14": "PAY-99",  # epic not in the file: placeholder feature
        "PAY-15": None,
    }
    assert store.read("work_items")["story_points"].sum() == pytest.approx(5 + 3 + 2 + 1.5)
    assert items["PAY-11"]["story_points"] == 3.0  # only "Story point estimate" is filled
    assert items["PAY-10"]["created_at"] == datetime(2026, 1, 5, 10, 0)
    assert items["PAY-10"]["resolved_at"] == datetime(2026, 2, 12, 16, 51)
    assert items["PAY-15"]["title"] == '=HYPERLINK("http://example.com","docs")'
    assert items["PAY-10"]["assignee_id"] == "712020:5f1a9c3e-8d2b-4c11-9e0f-3a7b2c1d0e91"
    assert store.count("people") == 2


def test_jira_dates_are_read_in_the_chosen_time_zone(store: Store) -> None:
    load(store, "jira_export.csv", "jira_csv", options=ImportOptions(timezone="America/New_York"))
    items = by_key(store.read("work_items"), "work_item_key")
    assert items["PAY-10"]["resolved_at"] == datetime(2026, 2, 12, 21, 51)


def test_github_rest_pulls(store: Store) -> None:
    load(
        store, "github_pulls_rest.json", "github_pulls_rest", options=replace(PROJECTS, agent_logins=("claude-agent",))
    )
    prs = by_key(store.read("pull_requests"), "pr_id")
    assert set(prs) == {"acme/web#101", "acme/web#102", "acme/web#103", "acme/web#104"}
    assert {k: v["state"] for k, v in prs.items()} == {
        "acme/web#101": "merged",
        "acme/web#102": "open",
        "acme/web#103": "closed",
        "acme/web#104": "merged",
    }
    assert {k for k, v in prs.items() if v["author_kind"] == "agent"} == {"acme/web#102", "acme/web#103"}
    assert {k: v["work_item_key"] for k, v in prs.items()} == {
        "acme/web#101": "PAY-10",
        "acme/web#102": None,
        "acme/web#103": "PAY-12",
        "acme/web#104": "ENG-7",
    }
    assert prs["acme/web#101"]["merged_at"] == datetime(2026, 2, 3, 12, 30)
    assert prs["acme/web#103"]["merge_commit_sha"] is None
    people = by_key(store.read("people"), "person_id")
    assert people["dependabot[bot]"]["kind"] == "agent" and people["alice-martin"]["kind"] == "human"


def test_gh_pr_list_json(store: Store) -> None:
    load(store, "gh_pr_list.json", "github_pulls_gh", options=PROJECTS)
    prs = store.read("pull_requests").sort("number")
    assert prs["pr_id"].to_list() == ["acme/api#210", "acme/api#211", "acme/api#212"]
    assert prs["state"].to_list() == ["merged", "open", "closed"]
    assert prs["additions"].sum() == 180 and prs["deletions"].sum() == 34
    assert prs["reviews"].to_list() == [2, 0, 1]
    assert prs["first_review_at"][0] == datetime(2026, 3, 3, 11, 0)
    assert prs["author_kind"].to_list() == ["human", "agent", "human"]
    assert prs["work_item_key"].to_list() == ["PAY-11", None, "PAY-2"]


def test_gitlab_merge_requests(store: Store) -> None:
    load(store, "gitlab_merge_requests.json", "gitlab_merge_requests", options=PROJECTS)
    prs = by_key(store.read("pull_requests"), "pr_id")
    assert set(prs) == {"payments/mortgage-api!29", "payments/mortgage-api!30", "payments/mortgage-api!31"}
    assert prs["payments/mortgage-api!31"]["state"] == "open"
    assert prs["payments/mortgage-api!30"]["merged_at"] == datetime(2026, 1, 16, 14, 30)  # +01:00 → UTC
    assert prs["payments/mortgage-api!30"]["work_item_key"] == "PAY-11"
    assert prs["payments/mortgage-api!29"]["author_kind"] == "agent"


def test_gitlab_deployments_keep_finished_ones(store: Store) -> None:
    load(store, "gitlab_deployments.json", "gitlab_deployments")
    deployments = store.read("deployments").sort("finished_at")
    assert deployments.height == 3  # the running one is skipped
    assert deployments["status"].to_list() == ["success", "failure", "success"]
    assert deployments["finished_at"][1] == datetime(2026, 1, 17, 8, 6)
    assert deployments["environment"].to_list() == ["production", "production", "staging"]
    assert deployments["repo"].unique().to_list() == ["payments/mortgage-api"]


def test_git_log(store: Store) -> None:
    load(store, "acme-web.gitlog", "git_log", options=PROJECTS)
    prs = by_key(store.read("pull_requests"), "pr_id")
    assert set(prs) == {"acme-web#12", "acme-web#13", "acme-web@5f8a9b0c1d2e"}
    assert (prs["acme-web#12"]["additions"], prs["acme-web#12"]["deletions"]) == (15, 2)
    assert (prs["acme-web#13"]["additions"], prs["acme-web#13"]["deletions"]) == (7, 3)
    assert prs["acme-web#12"]["created_at"] == datetime(2026, 2, 20, 9, 15)
    assert prs["acme-web#12"]["work_item_key"] == "PAY-10"
    assert prs["acme-web@5f8a9b0c1d2e"]["author_kind"] == "agent"
    assert sum(p["additions"] for p in prs.values()) == 23


def test_linear_csv(store: Store) -> None:
    load(store, "linear_export.csv", "linear_csv")
    features = by_key(store.read("features"), "name")
    assert features["Self-serve onboarding"]["status"] == "delivered"
    assert features["Self-serve onboarding"]["delivered_at"] == datetime(2026, 1, 16, 12, 0)
    assert features["Usage billing"]["status"] == "in_progress"
    items = by_key(store.read("work_items"), "work_item_key")
    assert len(items) == 6
    assert store.read("work_items")["story_points"].sum() == 12
    assert items["ENG-42"]["started_at"] == datetime(2026, 1, 7, 9, 0)  # JavaScript date shape
    assert items["ENG-60"]["feature_id"] is None


def test_github_actions_usage_legacy_keeps_identical_lines(store: Store) -> None:
    load(store, "gha_usage_legacy.csv", "github_actions_usage_legacy")
    costs = store.read("cost_events")
    assert costs.height == 6
    # Quantity × Price Per Unit ($): the per-unit price is already macOS's and Windows's own (0.08, 0.016);
    # the Multiplier (10, 2) is how fast those minutes use up the free quota and is not applied again.
    assert costs["amount"].sum() == pytest.approx(0 + 12 * 0.008 + 12 * 0.008 + 5 * 0.08 + 30 * 0.016 + 1.5 * 0.008)
    assert costs.filter(pl.col("source") == "ci")["amount"].sum() == pytest.approx(0.096 + 0.096 + 0.40 + 0.48)
    macos = costs.filter(pl.col("detail").str.contains("MACOS")).row(0, named=True)
    assert (macos["amount"], macos["account_key"], macos["account_scope"]) == (
        pytest.approx(0.40),
        "bob-okafor",
        "ios-app",
    )
    assert set(costs["repo"].drop_nulls()) == {"acme/web", "acme/ios-app", "acme/desktop"}


def test_github_actions_usage_new_format(store: Store) -> None:
    load(store, "gha_usage.csv", "github_actions_usage")
    costs = store.read("cost_events")
    assert costs.height == 5
    assert costs["amount"].sum() == pytest.approx(0.96 + 1.44 + 0.8 + 0.16801 + 19)
    assert costs.group_by("source").len().sort("source").rows() == [("ci", 4), ("llm", 1)]
    assert "acme/web" in costs["repo"].to_list()


def test_circleci_usage(store: Store) -> None:
    load(store, "circleci_usage.csv", "circleci_usage", options=PROJECTS)
    costs = store.read("cost_events")
    assert costs.height == 3
    assert costs["quantity"].sum() == 612 + 908 + 1500
    assert costs["amount"].sum() == pytest.approx(3020 * 0.0006)
    assert costs["work_item_key"].to_list().count("PAY-11") == 2
    assert set(costs["repo"]) == {"acme/mortgage-api", "acme/web"}


def test_openai_cost_export_skips_empty_buckets(store: Store) -> None:
    load(store, "openai_costs.csv", "openai_cost")
    costs = store.read("cost_events")
    assert costs.height == 3
    assert costs["amount"].sum() == pytest.approx(1.25 + 3.4 + 0.569788)
    assert set(costs["currency"]) == {"USD"}
    assert costs["occurred_at"].min() == datetime(2026, 2, 1)


def test_openai_completions_usage_prices_tokens(store: Store) -> None:
    load(store, "openai_completions_usage.csv", "openai_usage")
    costs = by_key(store.read("cost_events"), "detail")
    gpt4o = costs["OpenAI gpt-4o-2024-08-06"]
    assert gpt4o["quantity"] == 1_500_000
    assert gpt4o["amount"] == pytest.approx(1_000_000 * 2.5e-6 + 200_000 * 1.25e-6 + 300_000 * 10e-6)
    assert costs["OpenAI gpt-5-mini-2025-08-07"]["amount"] == pytest.approx(0.569788)
    unpriced = costs["OpenAI ft:davinci-002:acme::abc123"]
    assert unpriced["amount"] is None and unpriced["quantity"] == 1500


def test_anthropic_cost_sums_look_alike_lines(store: Store) -> None:
    load(store, "anthropic_cost.csv", "anthropic_cost")
    costs = store.read("cost_events")
    assert costs.height == 6
    assert costs["amount"].sum() == pytest.approx(1.20 + 4.50 + 4.50 + 0.05 + 1234.56 + 0.10)


def test_anthropic_usage_prices_tokens(store: Store) -> None:
    load(store, "anthropic_usage.csv", "anthropic_usage")
    costs = store.read("cost_events")
    assert costs.height == 3
    sonnet = 1_000_000 * 3e-6 + 200_000 * 3.75e-6 + 500_000 * 0.3e-6 + 100_000 * 15e-6
    assert costs["amount"].sum() == pytest.approx(2 * sonnet + 2_000_000 * 1e-6 + 400_000 * 5e-6)
    assert costs["quantity"].sum() == 2 * 1_800_000 + 2_400_000


def _metrics(store: Store) -> None:
    metrics = pl.DataFrame(
        {
            "metric_id": ["mortgage_days", "activation", "revenue"],
            "name": ["Mortgage application time", "Activation rate", "Revenue"],
            "level": ["outcome"] * 3,
            "direction": ["lower", "higher", "higher"],
        }
    )
    store.write({"metrics": metrics})


def test_metric_observations_long(store: Store) -> None:
    _metrics(store)
    load(store, "metric_observations_long.csv", "metric_observations_long")
    obs = store.read("metric_observations")
    assert obs.height == 5
    days = obs.filter(pl.col("metric_id") == "mortgage_days")
    assert days["value"].sum() == pytest.approx(14.2 + 13.8 + 12.5)
    assert set(days["segment"]) == {"all"}
    assert obs.filter(pl.col("metric_id") == "activation")["segment"].unique().to_list() == ["self-serve"]


def test_metric_observations_wide(store: Store) -> None:
    _metrics(store)
    load(store, "metric_observations_wide.csv", "metric_observations_wide")
    obs = store.read("metric_observations")
    assert obs.height == 5
    assert obs.filter(pl.col("metric_id") == "revenue")["value"].sum() == pytest.approx(12500 + 13100.50 + 9999.99)
    assert obs["date"].min() == date(2026, 1, 5)


def test_unknown_metric_is_reported(store: Store) -> None:
    plan = plan_import(FIXTURES / "metric_observations_long.csv", store=store)
    assert plan.problems and all(p.column == "metric_id" for p in plan.problems)
    assert plan.problems[0].source == "metric_observations_long.csv" and plan.problems[0].row == 1


def test_generic_mapping(store: Store) -> None:
    path = FIXTURES / "incidents_generic.csv"
    recognition = recognise(path)
    assert recognition.format == "generic" and recognition.delimiter == ";"
    mapping = GenericMapping(
        entity="incidents",
        columns={
            "incident_id": "Ticket",
            "opened_at": "Opened",
            "resolved_at": "Closed",
            "severity": "Sev",
            "service": "System",
        },
        date_format="%d.%m.%Y %H:%M",
    )
    plan = plan_import(path, mapping=mapping, options=ImportOptions(timezone="Europe/Berlin"), store=store)
    run_import(store, plan, actor="tester")
    incidents = by_key(store.read("incidents"), "incident_id")
    assert incidents["INC-901"]["opened_at"] == datetime(2026, 2, 3, 13, 5)
    assert incidents["INC-901"]["resolved_at"] == datetime(2026, 2, 3, 14, 35)
    assert incidents["INC-902"]["resolved_at"] is None
    assert incidents["INC-902"]["service"] == "web"

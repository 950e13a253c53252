"""The setup checklist: counts per entity in, one row per headline number out, worked out by hand."""

from __future__ import annotations

from core.setup import is_set_up, setup_checklist


def test_an_empty_workspace_needs_everything_and_starts_with_the_first_missing_import() -> None:
    rows = {r.number: r for r in setup_checklist({})}
    assert list(rows) == ["Cost per feature", "Impact verdicts", "Value throughput", "DORA", "Vanity flags"]
    assert {r.coverage for r in rows.values()} == {0.0}
    assert rows["Cost per feature"].next_step.startswith("Bring a Jira or Linear export")
    assert rows["DORA"].next_page == "data" and rows["DORA"].present == "nothing yet"
    assert not is_set_up({})


def test_a_pilot_with_jira_and_cost_has_cost_per_feature_and_half_of_dora_is_not_counted_as_done() -> None:
    counts = {"features": 2, "cost_events": 3, "pull_requests": 5, "metrics": 1}
    rows = {r.number: r for r in setup_checklist(counts)}
    cost = rows["Cost per feature"]
    assert (cost.coverage, cost.present, cost.next_page) == (1.0, "2 features, 3 cost events", "cost")
    verdicts = rows["Impact verdicts"]
    assert verdicts.coverage == 2 / 4  # features and metrics of the four it needs
    assert verdicts.next_step == "Bring a `date, metric, value` observations file."
    assert rows["DORA"].coverage == 1 / 2 and rows["DORA"].next_step.startswith("Bring a deployments export")
    flags = rows["Vanity flags"]
    assert (flags.coverage, flags.next_page) == (2 / 3, "teams")
    assert not is_set_up(counts)


def test_everything_present_is_set_up() -> None:
    counts = dict.fromkeys(
        ("features", "cost_events", "pull_requests", "deployments", "metrics", "metric_observations"), 1
    ) | {"hypotheses": 1, "teams": 1}
    assert is_set_up(counts)

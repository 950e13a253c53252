"""Cost per feature on a tiny organisation whose every number is worked out by hand below.

The organisation (all in January 2026 unless stated; ISO week 2026-W02 is Mon 5 – Sun 11 Jan):

- features: F1 Checkout (team T1, delivered 20 Feb), F2 Payment retry (T1, delivered 10 Mar),
  F3 Search (T2, in progress); work items PAY-1 → F1, PAY-2 → F2, SRCH-1 → F3, OPS-1 → none.
- people: alice (human, T1, 120/h), bob (human, T2, 90/h), bot (agent, T1, no hourly cost).
- PRs: api#1 alice F1 (own link) · api#2 alice "PAY-1 follow-up" (title key → F1) ·
  api#3 bot branch ``bot/pay-2-tweak`` (branch key → F2) · api#4 bot work item PAY-1 (→ F1) ·
  web#1 bob F3, open 6 → 14 Jan (weeks W02 and W03) · web#2 bob "cleanup" (no feature).

Feature-linked activity in W02: alice authored api#1, api#2 (F1, F1) and reviewed web#1 (F3)
→ F1 2/3, F3 1/3; bot authored api#3 (F2), api#4 (F1) → F1 1/2, F2 1/2; repo ``api`` has PRs
api#1, api#2, api#4 (F1) and api#3 (F2) → F1 3/4, F2 1/4. Team T2 in W03: web#1 only → F3.
"""

from __future__ import annotations

import polars as pl
import pytest

from core.costs import (
    ALL,
    CostSettings,
    activity_contrast,
    attribute_costs,
    cost_by_source,
    cost_per_feature,
    cost_summary,
    parse_period,
    pull_request_features,
    quarterly_cost_trend,
    trend_verdicts,
)
from core.model.schema import coerce


def _frame(entity: str, rows: list[dict[str, object]]) -> pl.LazyFrame:
    return coerce(entity, pl.DataFrame(rows, infer_schema_length=None)).lazy()


FEATURES = _frame(
    "features",
    [
        {
            "feature_id": "F1",
            "name": "Checkout",
            "team_id": "T1",
            "status": "delivered",
            "started_at": "2026-01-02",
            "delivered_at": "2026-02-20 12:00",
        },
        {
            "feature_id": "F2",
            "name": "Payment retry",
            "team_id": "T1",
            "status": "delivered",
            "started_at": "2026-01-02",
            "delivered_at": "2026-03-10 09:00",
        },
        {
            "feature_id": "F3",
            "name": "Search",
            "team_id": "T2",
            "status": "in_progress",
            "started_at": "2026-01-02",
            "delivered_at": None,
        },
    ],
)
WORK_ITEMS = _frame(
    "work_items",
    [
        {"work_item_key": "PAY-1", "feature_id": "F1"},
        {"work_item_key": "PAY-2", "feature_id": "F2"},
        {"work_item_key": "SRCH-1", "feature_id": "F3"},
        {"work_item_key": "OPS-1", "feature_id": None},
    ],
)
PEOPLE = _frame(
    "people",
    [
        {"person_id": "alice", "name": "Alice", "team_id": "T1", "kind": "human", "hourly_cost": 120.0},
        {"person_id": "bob", "name": "Bob", "team_id": "T2", "kind": "human", "hourly_cost": 90.0},
        {"person_id": "bot", "name": "Coding agent", "team_id": "T1", "kind": "agent", "hourly_cost": None},
    ],
)


def _pr(pr_id: str, author: str, kind: str, team: str, created: str, merged: str, **links: str) -> dict[str, object]:
    repo, number = pr_id.split("#")
    return {
        "pr_id": pr_id,
        "repo": repo,
        "number": int(number),
        "author_id": author,
        "author_kind": kind,
        "team_id": team,
        "state": "merged",
        "created_at": created,
        "merged_at": merged,
        "title": links.get("title", "change"),
        "branch": links.get("branch", "main-change"),
        "feature_id": links.get("feature_id"),
        "work_item_key": links.get("work_item_key"),
    }


PULL_REQUESTS = _frame(
    "pull_requests",
    [
        _pr("api#1", "alice", "human", "T1", "2026-01-05 10:00", "2026-01-06 10:00", feature_id="F1"),
        _pr("api#2", "alice", "human", "T1", "2026-01-06 10:00", "2026-01-07 10:00", title="PAY-1 follow-up"),
        _pr("api#3", "bot", "agent", "T1", "2026-01-07 10:00", "2026-01-08 10:00", branch="bot/pay-2-tweak"),
        _pr("api#4", "bot", "agent", "T1", "2026-01-07 11:00", "2026-01-08 11:00", work_item_key="PAY-1"),
        _pr("web#1", "bob", "human", "T2", "2026-01-06 10:00", "2026-01-14 10:00", feature_id="F3"),
        _pr("web#2", "bob", "human", "T2", "2026-01-06 12:00", "2026-01-07 12:00", title="cleanup"),
    ],
)


def _event(event_id: str, at: str, source: str, **fields: object) -> dict[str, object]:
    return {"event_id": event_id, "occurred_at": at, "source": source, **fields}


COST_EVENTS = _frame(
    "cost_events",
    [
        # explicit feature tag: 500 → F2
        _event("E01", "2026-01-05 09:00", "other", amount=500.0, feature_id="F2"),
        # CI on api#2, amount given: 12 → F1 via the title key of api#2
        _event("E02", "2026-01-06 11:00", "ci", amount=12.0, pr_id="api#2", repo="api"),
        # gpt-4o, 1M plain tokens: 0.75 × 2.50 + 0.25 × 10.00 = 4.375 → F1 via api#4's work item
        _event(
            "E03",
            "2026-01-07 12:00",
            "llm",
            quantity=1_000_000.0,
            unit="tokens",
            detail="gpt-4o",
            pr_id="api#4",
            person_id="bot",
        ),
        # alice 2 h on PAY-2: 2 × 120 = 240 → F2 (work item beats person split)
        _event(
            "E04", "2026-01-07 18:00", "people", quantity=2.0, unit="hours", person_id="alice", work_item_key="PAY-2"
        ),
        # bob reviews api#1 for 30 min: 30 × 90 / 60 = 45 → F1
        _event("E05", "2026-01-06 09:00", "review", quantity=30.0, unit="minutes", person_id="bob", pr_id="api#1"),
        # alice reviews web#1 for 45 min: 45 × 120 / 60 = 90 → F3
        _event("E06", "2026-01-08 09:00", "review", quantity=45.0, unit="minutes", person_id="alice", pr_id="web#1"),
        # alice 10 h, person only: 1200 → F1 2/3 = 800, F3 1/3 = 400
        _event("E07", "2026-01-09 18:00", "people", quantity=10.0, unit="hours", person_id="alice"),
        # bot on Claude Sonnet 4, 2M input tokens: 2 × 3.00 = 6 → F1 1/2 = 3, F2 1/2 = 3
        _event(
            "E08",
            "2026-01-08 20:00",
            "llm",
            quantity=2_000_000.0,
            unit="input_tokens",
            detail="claude-sonnet-4-20250514",
            person_id="bot",
        ),
        # CI, branch names PAY-2: 100 ubuntu min × 0.008 = 0.80 → F2
        _event(
            "E09",
            "2026-01-07 13:00",
            "ci",
            quantity=100.0,
            unit="minutes",
            detail="ubuntu-latest",
            repo="api",
            branch="feature/PAY-2-retry",
        ),
        # CI, repo only: 50 windows min × 0.016 = 0.80 → F1 3/4 = 0.60, F2 1/4 = 0.20
        _event("E10", "2026-01-08 13:00", "ci", quantity=50.0, unit="minutes", detail="windows-2022", repo="api"),
        # CI, team only, W03: 10 macOS min × 0.08 = 0.80 → F3 (web#1 still open)
        _event("E11", "2026-01-13 13:00", "ci", quantity=10.0, unit="minutes", detail="macos-14", team_id="T2"),
        # CI in a repository with no PR: 30 unattributed
        _event("E12", "2026-01-08 14:00", "ci", amount=30.0, repo="infra"),
        # bob's LLM use in a week without activity (W05): 7.50 unattributed
        _event("E13", "2026-01-26 10:00", "llm", amount=7.5, person_id="bob"),
        # an unknown model: cannot be priced (bot split, no money)
        _event(
            "E14", "2026-01-08 21:00", "llm", quantity=1000.0, unit="tokens", detail="mystery-model", person_id="bot"
        ),
        # CI on web#2 (no feature) falls through to repo web in W02: 4 → F3
        _event("E15", "2026-01-07 15:00", "ci", amount=4.0, pr_id="web#2", repo="web"),
        # in Q2: 100 → F3, outside the Q1 figures
        _event("E16", "2026-04-10 10:00", "other", amount=100.0, feature_id="F3"),
        # a tag naming no known feature: 25 unattributed
        _event("E17", "2026-01-10 10:00", "other", amount=25.0, feature_id="F9"),
    ],
)


def _lines(settings: CostSettings | None = None) -> pl.DataFrame:
    return attribute_costs(
        COST_EVENTS, PULL_REQUESTS, WORK_ITEMS, FEATURES, PEOPLE, *(() if settings is None else (settings,))
    ).collect()


def _amounts(lines: pl.DataFrame, event_id: str) -> dict[str | None, float | None]:
    rows = lines.filter(pl.col("event_id") == event_id)
    return dict(zip(rows["feature_id"].to_list(), rows["amount"].to_list(), strict=True))


def test_every_event_goes_where_the_hand_computation_says() -> None:
    lines = _lines()
    expected = {
        "E01": {"F2": 500.0},
        "E02": {"F1": 12.0},
        "E03": {"F1": 4.375},
        "E04": {"F2": 240.0},
        "E05": {"F1": 45.0},
        "E06": {"F3": 90.0},
        "E07": {"F1": 800.0, "F3": 400.0},
        "E08": {"F1": 3.0, "F2": 3.0},
        "E09": {"F2": 0.8},
        "E10": {"F1": 0.6, "F2": 0.2},
        "E11": {"F3": 0.8},
        "E12": {None: 30.0},
        "E13": {None: 7.5},
        "E14": {"F1": None, "F2": None},
        "E15": {"F3": 4.0},
        "E16": {"F3": 100.0},
        "E17": {None: 25.0},
    }
    for event_id, by_feature in expected.items():
        got = _amounts(lines, event_id)
        assert got.keys() == by_feature.keys(), event_id
        for feature, amount in by_feature.items():
            assert got[feature] == (None if amount is None else pytest.approx(amount)), (event_id, feature)


def test_each_line_says_which_link_attributed_it() -> None:
    lines = _lines()
    link = {(e, f): k for e, f, k in lines.select("event_id", "feature_id", "link").rows()}
    assert link[("E01", "F2")] == "direct tag"
    assert link[("E02", "F1")] == "via PR api#2 → work item PAY-1 (title)"
    assert link[("E03", "F1")] == "via PR api#4 → work item PAY-1"
    assert link[("E04", "F2")] == "via work item PAY-2"
    assert link[("E05", "F1")] == "via PR api#1"
    assert link[("E07", "F1")] == "via time allocation (alice, 2026-W02: 2 of 3)"
    assert link[("E08", "F2")] == "via time allocation (bot, 2026-W02: 1 of 2)"
    assert link[("E09", "F2")] == "via work item PAY-2 (branch)"
    assert link[("E10", "F1")] == "via repo activity (api, 2026-W02: 3 of 4)"
    assert link[("E11", "F3")] == "via team activity (T2, 2026-W03: 1 of 1)"
    assert link[("E15", "F3")] == "via repo activity (web, 2026-W02: 1 of 1)"
    rules = dict(lines.select("event_id", "rule").unique().rows())
    assert rules["E02"] == "pull_request" and rules["E04"] == "work_item" and rules["E07"] == "time_allocation"


def test_unattributed_money_keeps_its_reason_and_unpriced_events_say_why() -> None:
    lines = _lines()
    reason = dict(lines.filter(pl.col("feature_id").is_null()).select("event_id", "reason").rows())
    assert reason == {
        "E12": "no feature-linked PR open in repo infra in 2026-W02",
        "E13": "bob has no feature-linked activity in 2026-W05",
        "E17": "tagged feature F9 is not a known feature",
    }
    pricing = dict(lines.select("event_id", "pricing").unique().rows())
    assert pricing["E14"] == "no token price for model mystery-model"
    assert pricing["E03"] == "tokens × price of gpt-4o"
    assert pricing["E10"] == "minutes × CI rate for windows"
    assert pricing["E01"] == "amount given"


def test_cost_per_feature_in_the_quarter_by_source() -> None:
    table = cost_per_feature(_lines().lazy(), FEATURES, "2026Q1").collect()
    rows = {r["feature_id"]: r for r in table.iter_rows(named=True)}
    assert set(rows) == {"F1", "F2", "F3"}
    # F1 = 12 + 4.375 + 45 + 800 + 3 + 0.60
    assert rows["F1"]["cost"] == pytest.approx(864.975)
    assert rows["F1"]["cost_ci"] == pytest.approx(12.6)
    assert rows["F1"]["cost_llm"] == pytest.approx(7.375)
    assert rows["F1"]["cost_review"] == pytest.approx(45.0)
    assert rows["F1"]["cost_people"] == pytest.approx(800.0)
    assert rows["F1"]["cost_other"] == 0.0
    # F2 = 500 + 240 + 3 + 0.80 + 0.20
    assert rows["F2"]["cost"] == pytest.approx(744.0)
    assert (rows["F2"]["cost_other"], rows["F2"]["cost_people"]) == (pytest.approx(500.0), pytest.approx(240.0))
    assert rows["F2"]["cost_ci"] == pytest.approx(1.0)
    # F3 up to the end of Q1 = 90 + 400 + 0.80 + 4 (the Q2 100 comes later): work in progress
    assert rows["F3"]["cost"] == pytest.approx(494.8)
    assert (rows["F3"]["delivered"], rows["F3"]["stage"]) == (False, "work in progress")
    assert rows["F1"]["delivered"] and rows["F2"]["delivered"]


def test_cost_per_feature_over_all_time_includes_later_cost() -> None:
    table = cost_per_feature(_lines().lazy(), FEATURES).collect()
    assert dict(table.select("feature_id", "cost").rows()) == pytest.approx({"F1": 864.975, "F2": 744.0, "F3": 594.8})


def test_summary_of_the_quarter() -> None:
    summary = cost_summary(_lines().lazy(), FEATURES, "2026Q1").collect().row(0, named=True)
    assert summary["delivered_features"] == 2
    # (864.975 + 744) / 2
    assert summary["median_cost_per_delivered_feature"] == pytest.approx(804.4875)
    assert summary["mean_cost_per_delivered_feature"] == pytest.approx(804.4875)
    assert (summary["wip_features"], summary["wip_cost"]) == (1, pytest.approx(494.8))
    # every Q1 event: 2266.275 in all, less E16 (Q2)
    assert summary["total_cost"] == pytest.approx(2166.275)
    assert summary["attributed_cost"] == pytest.approx(2103.775)
    assert summary["unattributed_cost"] == pytest.approx(62.5)
    assert summary["coverage_pct"] == pytest.approx(2103.775 / 2166.275 * 100)
    assert summary["attributed_people"] == pytest.approx(1440.0)
    assert summary["attributed_llm"] == pytest.approx(10.375)
    assert summary["unpriced_events"] == 1
    assert summary["period"] == "2026Q1"
    assert "split by their weekly activity" in summary["rules_on"]


def test_cost_by_source_in_the_quarter() -> None:
    table = cost_by_source(_lines().lazy(), "2026Q1").collect()
    rows = {r["source"]: r for r in table.iter_rows(named=True)}
    assert rows["ci"]["total"] == pytest.approx(12 + 0.8 + 0.8 + 0.8 + 30 + 4)
    assert rows["ci"]["unattributed"] == pytest.approx(30.0)
    assert rows["other"]["total"] == pytest.approx(525.0)
    assert rows["review"]["coverage_pct"] == pytest.approx(100.0)


def test_switching_the_time_allocation_rule_off_leaves_that_money_unattributed() -> None:
    lines = _lines(CostSettings().without("time_allocation"))
    assert _amounts(lines, "E07") == {None: pytest.approx(1200.0)}
    assert lines.filter(pl.col("event_id") == "E07")["reason"][0] == (
        "person time split ignored (rule 'time_allocation' is off)"
    )
    table = dict(cost_per_feature(lines.lazy(), FEATURES, "2026Q1").collect().select("feature_id", "cost").rows())
    # F1 loses 800 + 3, F2 loses 3, F3 loses 400
    assert table == pytest.approx({"F1": 61.975, "F2": 741.0, "F3": 94.8})
    summary = cost_summary(lines.lazy(), FEATURES, "2026Q1", CostSettings().without("time_allocation")).collect()
    assert summary["unattributed_cost"][0] == pytest.approx(62.5 + 1206.0)
    assert "weekly activity" not in summary["rules_on"][0]


def test_switching_the_pr_rule_off_falls_through_to_later_rules() -> None:
    lines = _lines(CostSettings().without("pull_request"))
    # E05: bob's review of api#1 now splits by bob's W02 activity: web#1 (F3) only, since the
    # review itself still counts as activity on F1 → F1 1/2, F3 1/2 of 45
    assert _amounts(lines, "E05") == {"F1": pytest.approx(22.5), "F3": pytest.approx(22.5)}
    # E02 (CI on api#2, repo api) goes to the repo split: F1 3/4, F2 1/4 of 12
    assert _amounts(lines, "E02") == {"F1": pytest.approx(9.0), "F2": pytest.approx(3.0)}


def test_pull_request_links() -> None:
    links = dict(
        pull_request_features(PULL_REQUESTS, WORK_ITEMS, FEATURES).collect().select("pr_id", "feature_id").rows()
    )
    assert links == {"api#1": "F1", "api#2": "F1", "api#3": "F2", "api#4": "F1", "web#1": "F3", "web#2": None}


def test_quarterly_trend_and_activity_contrast() -> None:
    lines = _lines().lazy()
    trend = quarterly_cost_trend(lines, FEATURES).collect()
    org = trend.filter((pl.col("team_id") == ALL) & (pl.col("source") == ALL)).row(0, named=True)
    assert (org["quarter"], org["delivered_features"]) == ("2026Q1", 2)
    assert org["cost_per_delivered_feature"] == pytest.approx(804.4875)
    assert org["pct_change"] is None
    people = trend.filter((pl.col("team_id") == "T1") & (pl.col("source") == "people")).row(0, named=True)
    assert people["cost_per_delivered_feature"] == pytest.approx((800 + 240) / 2)

    verdicts = trend_verdicts(trend)
    assert verdicts.filter(pl.col("team_id") == ALL, pl.col("source") == ALL)["verdict"][0].startswith("too few")

    contrast = activity_contrast(lines, pull_request_features(PULL_REQUESTS, WORK_ITEMS, FEATURES), FEATURES)
    q1 = contrast.collect().filter(pl.col("team_id") == ALL, pl.col("quarter") == "2026Q1").row(0, named=True)
    assert (q1["prs_merged"], q1["agent_prs_merged"], q1["level"]) == (6, 2, "activity")
    assert q1["cost_per_pr"] == pytest.approx(2166.275 / 6)
    # F1 has api#1, api#2, api#4 and F2 has api#3: 4 PRs over 2 delivered features
    assert q1["prs_per_delivered_feature"] == pytest.approx(2.0)


def test_trend_verdict_uses_kendalls_tau() -> None:
    quarters = ["2025Q1", "2025Q2", "2025Q3", "2025Q4", "2026Q1"]
    trend = pl.DataFrame(
        {
            "quarter": quarters * 3,
            "quarter_start": list(range(5)) * 3,
            "team_id": ["down"] * 5 + ["up"] * 5 + ["flat"] * 5,
            "source": [ALL] * 15,
            "cost_per_delivered_feature": [900.0, 850, 700, 650, 500, 1.0, 2, 3, 4, 5, 5.0, 1, 5, 1, 5],
        }
    )
    verdicts = {r["team_id"]: r for r in trend_verdicts(trend).iter_rows(named=True)}
    assert verdicts["down"]["verdict"] == "declining"
    assert verdicts["down"]["tau"] == pytest.approx(-1.0)
    # exact one-sided p of a perfectly ordered series of 5: 1 / 5! = 1 / 120
    assert verdicts["down"]["p_declining"] == pytest.approx(1 / 120)
    assert verdicts["down"]["change_pct"] == pytest.approx(-44.444, abs=1e-3)
    assert verdicts["up"]["verdict"] == "rising"
    assert verdicts["flat"]["verdict"] == "no clear trend"
    assert "Kendall" in verdicts["down"]["method"]


def test_parse_period() -> None:
    q3 = parse_period("2026-q3")
    assert (q3.label, q3.start.month, q3.end.month) == ("2026Q3", 7, 10)
    assert parse_period("2026Q4").end.year == 2027
    with pytest.raises(ValueError, match="is not a period"):
        parse_period("Q3 2026")

"""Properties cost attribution must keep on any data: nothing lost, nothing counted twice."""

from __future__ import annotations

from datetime import datetime, timedelta
from statistics import median

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.costs import (
    RULES,
    CostSettings,
    attribute_cost_rollup,
    attribute_costs,
    branch_work_items,
    cost_per_feature,
    cost_summary,
    feature_activity,
    feature_candidate_events,
    feature_cost_lines,
    parse_period,
    price_cost_events,
    pull_request_features,
    resolve_cost_events,
    review_counts,
    rollup_cost_lines,
    unreached_cost_events,
    work_item_features,
)
from core.model.schema import COST_SOURCES, coerce, empty

START = datetime(2026, 3, 2)
"""Generated times fall in the six weeks from here, across the Q1/Q2 boundary."""

FEATURE_IDS = ["F1", "F2", "F3", "F4"]
PEOPLE_IDS = ["p1", "p2", "a1"]
REPOS = ["api", "web"]
TEAMS = ["T1", "T2"]
KEYS = ["PAY-1", "PAY-2", "OPS-3"]
ACCOUNT_KEYS = ["sk-1", "sk-2", "sk-3"]
SCOPES = ["ws-a", "ws-b"]


def _when(draw: st.DrawFn) -> datetime:
    return START + timedelta(hours=draw(st.integers(0, 6 * 7 * 24)))


def _maybe(draw: st.DrawFn, values: list[str], unknown: str | None = None) -> str | None:
    pool: list[str | None] = [None, *values]
    if unknown is not None:
        pool.append(unknown)
    return draw(st.sampled_from(pool))


@st.composite
def organisations(draw: st.DrawFn) -> dict[str, pl.LazyFrame]:
    """A small random organisation, with links that reach, miss, or point at unknown ids."""
    features = [
        {
            "feature_id": fid,
            "name": fid,
            "team_id": _maybe(draw, TEAMS),
            "status": (status := draw(st.sampled_from(["planned", "in_progress", "delivered", "cancelled"]))),
            "delivered_at": _when(draw) if status == "delivered" else None,
        }
        for fid in FEATURE_IDS[: draw(st.integers(1, 4))]
    ]
    known = [f["feature_id"] for f in features]
    work_items = [{"work_item_key": key, "feature_id": _maybe(draw, known, "F9")} for key in KEYS]
    people = [
        {
            "person_id": pid,
            "name": pid,
            "team_id": _maybe(draw, TEAMS),
            "kind": "agent" if pid == "a1" else "human",
            "hourly_cost": draw(st.one_of(st.none(), st.floats(0, 300, allow_nan=False))),
        }
        for pid in PEOPLE_IDS
    ]
    pull_requests = []
    for number in range(draw(st.integers(0, 8))):
        created = _when(draw)
        pull_requests.append(
            {
                "pr_id": f"{(repo := draw(st.sampled_from(REPOS)))}#{number}",
                "repo": repo,
                "author_id": _maybe(draw, PEOPLE_IDS),
                "author_kind": "human",
                "team_id": _maybe(draw, TEAMS),
                "feature_id": _maybe(draw, known, "F9"),
                "work_item_key": _maybe(draw, KEYS),
                "title": draw(st.sampled_from(["fix", "PAY-1 fix", "OPS-3 chore", "PAY-2"])),
                "branch": draw(st.sampled_from(["main-x", "feat/pay-2-x", "PAY-1"])),
                "state": "merged",
                "created_at": created,
                "merged_at": created + timedelta(days=draw(st.integers(0, 15))),
            }
        )
    pr_ids = [p["pr_id"] for p in pull_requests]
    events = []
    for number in range(draw(st.integers(0, 20))):
        source = draw(st.sampled_from(COST_SOURCES))
        events.append(
            {
                "event_id": f"E{number}",
                "occurred_at": _when(draw),
                "source": source,
                "amount": draw(st.one_of(st.none(), st.floats(0, 10_000, allow_nan=False).map(lambda x: round(x, 2)))),
                "quantity": draw(st.one_of(st.none(), st.floats(0, 5_000_000, allow_nan=False))),
                "unit": draw(st.sampled_from([None, "tokens", "output_tokens", "minutes", "hours", "furlongs"])),
                "detail": draw(st.sampled_from([None, "gpt-4o", "claude-sonnet-4-5", "ubuntu-latest", "macos-14"])),
                "person_id": _maybe(draw, PEOPLE_IDS),
                "team_id": _maybe(draw, TEAMS),
                "feature_id": _maybe(draw, known, "F9"),
                "pr_id": _maybe(draw, pr_ids, "zz#404"),
                "work_item_key": _maybe(draw, KEYS, "NOPE-1"),
                "repo": _maybe(draw, REPOS, "infra"),
                "branch": _maybe(draw, ["main", "bugfix/PAY-1", "ops-3-tidy"]),
                "account_key": _maybe(draw, ACCOUNT_KEYS, "sk-unmapped"),
                "account_scope": _maybe(draw, SCOPES),
            }
        )
    cost_keys = []
    for key in draw(st.lists(st.sampled_from([*ACCOUNT_KEYS, *SCOPES]), unique=True, max_size=5)):
        target = draw(st.sampled_from(["team_id", "person_id", "feature_id"]))
        pool = {"team_id": [*TEAMS, "T9"], "person_id": PEOPLE_IDS, "feature_id": [*known, "F9"]}[target]
        cost_keys.append(
            {"key": key, "team_id": None, "person_id": None, "feature_id": None, target: draw(st.sampled_from(pool))}
        )
    return {
        "cost_keys": _frame("cost_keys", cost_keys),
        "cost_events": _frame("cost_events", events),
        "pull_requests": _frame("pull_requests", pull_requests),
        "work_items": _frame("work_items", work_items),
        "features": _frame("features", features),
        "people": _frame("people", people),
    }


def _frame(entity: str, rows: list[dict[str, object]]) -> pl.LazyFrame:
    if not rows:
        return empty(entity).lazy()
    return coerce(entity, pl.DataFrame(rows, infer_schema_length=None)).lazy()


def _attribute(org: dict[str, pl.LazyFrame], cost_settings: CostSettings) -> pl.DataFrame:
    return attribute_costs(
        org["cost_events"],
        org["pull_requests"],
        org["work_items"],
        org["features"],
        org["people"],
        cost_settings,
        org["cost_keys"],
    ).collect()


def _money_in(org: dict[str, pl.LazyFrame]) -> float:
    return price_cost_events(org["cost_events"], org["people"]).select(pl.col("money").sum()).collect().item()


PROPERTY_SETTINGS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY_SETTINGS
@given(organisations())
def test_attributed_plus_unattributed_is_the_money_in_to_the_cent(org: dict[str, pl.LazyFrame]) -> None:
    lines = _attribute(org, CostSettings())
    attributed = lines.filter(pl.col("feature_id").is_not_null())["amount"].sum()
    unattributed = lines.filter(pl.col("feature_id").is_null())["amount"].sum()
    assert round(attributed + unattributed, 2) == round(_money_in(org), 2)


@PROPERTY_SETTINGS
@given(organisations())
def test_every_event_is_counted_exactly_once(org: dict[str, pl.LazyFrame]) -> None:
    lines = _attribute(org, CostSettings())
    events = org["cost_events"].select("event_id").collect()
    shares = lines.group_by("event_id").agg(pl.col("share").sum(), pl.len().alias("n"), pl.col("feature_id"))
    assert sorted(shares["event_id"].to_list()) == sorted(events["event_id"].to_list())
    assert all(s == pytest.approx(1.0) for s in shares["share"])
    assert lines.select("event_id", "feature_id").is_duplicated().sum() == 0
    unattributed = lines.filter(pl.col("feature_id").is_null())
    assert unattributed["reason"].null_count() == 0
    assert unattributed.select(pl.col("share") == 1.0).to_series().all()


@PROPERTY_SETTINGS
@given(organisations(), st.sampled_from(RULES))
def test_switching_a_rule_off_moves_money_to_unattributed_never_loses_it(
    org: dict[str, pl.LazyFrame], rule: str
) -> None:
    on = _attribute(org, CostSettings())
    off = _attribute(org, CostSettings().without(rule))
    assert round(off["amount"].sum(), 2) == round(on["amount"].sum(), 2)
    unattributed_on = on.filter(pl.col("feature_id").is_null())["amount"].sum()
    unattributed_off = off.filter(pl.col("feature_id").is_null())["amount"].sum()
    assert unattributed_off >= unattributed_on - 0.005
    untouched = on.filter(pl.col("rule") != rule).sort("event_id", "feature_id", nulls_last=True)
    kept = off.join(untouched.select("event_id").unique(), on="event_id").sort(
        "event_id", "feature_id", nulls_last=True
    )
    assert kept.select("event_id", "feature_id", "amount").equals(untouched.select("event_id", "feature_id", "amount"))


@PROPERTY_SETTINGS
@given(organisations(), st.sets(st.sampled_from(RULES)))
def test_the_rollup_equals_the_cost_lines_summed(org: dict[str, pl.LazyFrame], off: set[str]) -> None:
    cost_settings = CostSettings().without(*off)
    keys = ["occurred_at", "source", "rule", "feature_id", "team_id"]
    rollup = attribute_cost_rollup(
        org["cost_events"],
        org["pull_requests"],
        org["work_items"],
        org["features"],
        org["people"],
        cost_settings,
        org["cost_keys"],
    )

    def summed(frame: pl.LazyFrame) -> pl.DataFrame:
        return (
            frame.group_by(keys)
            .agg(pl.col("amount", "lines", "unpriced_events").sum())
            .sort(keys, nulls_last=True)
            .collect()
        )

    ours, lines = summed(rollup), summed(rollup_cost_lines(_attribute(org, cost_settings).lazy()))
    assert ours.select(*keys, "lines").equals(lines.select(*keys, "lines"))
    for column in ("amount", "unpriced_events"):
        assert ours[column].to_list() == pytest.approx(lines[column].to_list(), abs=1e-6)


@PROPERTY_SETTINGS
@given(organisations())
def test_an_event_goes_by_its_account_key_only_when_no_link_reaches_and_the_key_map_lists_it(
    org: dict[str, pl.LazyFrame],
) -> None:
    lines = _attribute(org, CostSettings())
    listed = set(org["cost_keys"].collect()["key"].to_list())
    events = org["cost_events"].collect()
    by_key = lines.filter(pl.col("rule") == "account_key").select("event_id").unique()
    keyed = events.join(by_key, on="event_id")
    assert keyed.select(pl.col("account_key").is_in(listed) | pl.col("account_scope").is_in(listed)).to_series().all()
    assert lines.filter(pl.col("rule") == "account_key")["link"].str.starts_with("via account key ").all()
    no_map = {**org, "cost_keys": org["cost_keys"].clear()}
    without = _attribute(no_map, CostSettings())
    assert round(without["amount"].sum(), 2) == round(lines["amount"].sum(), 2)
    linked = lines.filter(pl.col("rule").is_in(["direct", "pull_request", "work_item"])).sort("event_id", "feature_id")
    same = without.filter(pl.col("rule").is_in(["direct", "pull_request", "work_item"])).sort("event_id", "feature_id")
    assert linked.select("event_id", "feature_id", "amount").equals(same.select("event_id", "feature_id", "amount"))


@PROPERTY_SETTINGS
@given(organisations())
def test_with_every_rule_off_all_money_is_unattributed(org: dict[str, pl.LazyFrame]) -> None:
    lines = _attribute(org, CostSettings(rules=()))
    assert lines["feature_id"].null_count() == lines.height
    assert round(lines["amount"].sum(), 2) == round(_money_in(org), 2)


@PROPERTY_SETTINGS
@given(organisations(), st.sampled_from(["2026Q1", "2026Q2"]))
def test_only_features_delivered_in_the_period_enter_cost_per_delivered_feature(
    org: dict[str, pl.LazyFrame], label: str
) -> None:
    period = parse_period(label)
    lines = _attribute(org, CostSettings())
    features = org["features"].collect()
    delivered = {
        f["feature_id"]
        for f in features.iter_rows(named=True)
        if f["status"] == "delivered" and period.start <= f["delivered_at"] < period.end
    }
    cost_to_end = {
        fid: lines.filter(pl.col("feature_id") == fid, pl.col("occurred_at") < period.end)["amount"].sum()
        for fid in features["feature_id"]
    }
    table = cost_per_feature(lines.lazy(), org["features"], period).collect()
    assert set(table.filter(pl.col("delivered"))["feature_id"]) == delivered
    wip = table.filter(~pl.col("delivered"))
    assert set(wip["stage"]) <= {"work in progress", "cancelled"}
    assert not set(wip["feature_id"]) & delivered
    carrying = set(lines.filter(pl.col("occurred_at") < period.end)["feature_id"].drop_nulls())
    not_yet_delivered = {
        f["feature_id"]
        for f in features.iter_rows(named=True)
        if not (f["status"] == "delivered" and f["delivered_at"] < period.end)
    }
    assert set(wip["feature_id"]) == carrying & not_yet_delivered
    for row in table.iter_rows(named=True):
        assert row["cost"] == pytest.approx(cost_to_end[row["feature_id"]], abs=1e-6)

    summary = cost_summary(lines.lazy(), org["features"], period).collect().row(0, named=True)
    assert summary["delivered_features"] == len(delivered)
    if delivered:
        costs = [cost_to_end[f] for f in delivered]
        assert summary["median_cost_per_delivered_feature"] == pytest.approx(median(costs), abs=1e-6)
        assert summary["mean_cost_per_delivered_feature"] == pytest.approx(sum(costs) / len(costs), abs=1e-6)
    else:
        assert summary["median_cost_per_delivered_feature"] is None
    assert summary["wip_features"] == wip.filter(pl.col("stage") == "work in progress").height


def _stages(org: dict[str, pl.LazyFrame]) -> tuple[pl.LazyFrame, pl.LazyFrame, pl.LazyFrame]:
    """PR links, work-item links and activity, as ``attribute_costs`` builds them."""
    pr_links = pull_request_features(org["pull_requests"], org["work_items"], org["features"]).collect().lazy()
    activity = feature_activity(pr_links, review_counts(org["cost_events"])).collect().lazy()
    return pr_links, work_item_features(org["work_items"], org["features"]), activity


@PROPERTY_SETTINGS
@given(organisations(), st.sets(st.sampled_from(RULES)))
def test_the_unreached_events_are_exactly_the_unattributed_ones(org: dict[str, pl.LazyFrame], off: set[str]) -> None:
    cost_settings = CostSettings().without(*off)
    pr_links, items, activity = _stages(org)
    unreached = unreached_cost_events(
        org["cost_events"], pr_links, items, activity, org["features"], cost_settings, org["cost_keys"]
    )
    found = unreached.select("event_id").collect()["event_id"].to_list()
    unattributed = _attribute(org, cost_settings).filter(pl.col("rule") == "unattributed")["event_id"].to_list()
    assert sorted(found) == sorted(unattributed)


@PROPERTY_SETTINGS
@given(organisations(), st.sets(st.sampled_from(RULES)))
def test_a_features_candidate_events_hold_every_line_it_gets(org: dict[str, pl.LazyFrame], off: set[str]) -> None:
    cost_settings = CostSettings().without(*off)
    pr_links, items, activity = _stages(org)
    features = org["features"]

    def lines(events: pl.LazyFrame, feature_id: str) -> list[tuple[object, ...]]:
        priced = price_cost_events(events, org["people"], cost_settings)
        resolved = resolve_cost_events(priced, pr_links, items, activity, features, cost_settings, org["cost_keys"])
        found = feature_cost_lines(resolved, activity, features, pr_links, feature_id, cost_settings).collect()
        return sorted(found.select("event_id", "share", "amount", "rule", "link").rows(), key=str)

    for feature_id in features.select("feature_id").collect()["feature_id"]:
        branches = branch_work_items(org["cost_events"])
        candidates = feature_candidate_events(
            org["cost_events"], pr_links, items, activity, branches, feature_id, org["cost_keys"]
        )
        assert candidates.select(pl.col("event_id").is_duplicated().any()).collect().item() is False
        assert lines(candidates, feature_id) == lines(org["cost_events"], feature_id)

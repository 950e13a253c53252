"""The demo organisation: deterministic, conformant, realistic, and carrying the patterns planted in it."""

from __future__ import annotations

import itertools
from datetime import date, datetime, timedelta

import polars as pl
import pytest

from core.model.schema import COST_SOURCES, DATETIME, ENTITIES, validate
from core.outcomes.verdicts import JUDGED, judge_hypotheses
from demo import DEMO_END, Demo, generate_demo

HORIZON = datetime(2026, 11, 15)
COMPLETE_QUARTERS = [
    date(2025, 1, 1),
    date(2025, 4, 1),
    date(2025, 7, 1),
    date(2025, 10, 1),
    date(2026, 1, 1),
    date(2026, 4, 1),
    date(2026, 7, 1),
]
"""Calendar quarters wholly inside the history (2024-11-15 .. 2026-11-15)."""
LAST_FOUR_QUARTERS = COMPLETE_QUARTERS[-4:]
KEY_PATTERN = r"\b[A-Z]{2,5}-\d+\b"


@pytest.fixture(scope="module")
def demo() -> Demo:
    return generate_demo(seed=7, scale=1.0)


@pytest.fixture(scope="module")
def steady() -> Demo:
    return generate_demo(seed=7, scale=1.0, planted=False)


@pytest.fixture(scope="module")
def small() -> Demo:
    return generate_demo(seed=3, scale=0.1)


def _quarterly(frame: pl.DataFrame, when: str, value: pl.Expr, quarters: list[date]) -> dict[str, list[float]]:
    """``value`` per team and calendar quarter of ``when``, in the order of ``quarters`` (0 when empty)."""
    grouped = (
        frame.with_columns(pl.col(when).dt.truncate("1q").dt.date().alias("quarter"))
        .filter(pl.col("quarter").is_in(quarters))
        .group_by("team_id", "quarter")
        .agg(value.alias("value"))
    )
    table = {(t, q): v for t, q, v in grouped.iter_rows()}
    teams = sorted(frame["team_id"].drop_nulls().unique().to_list())
    return {t: [table.get((t, q), 0) for q in quarters] for t in teams}


def _merged_per_quarter(demo: Demo, quarters: list[date]) -> dict[str, list[float]]:
    merged = demo.frames["pull_requests"].filter(pl.col("state") == "merged")
    return _quarterly(merged, "merged_at", pl.len(), quarters)


def _changes(series: list[float]) -> list[float]:
    return [b / a - 1 for a, b in itertools.pairwise(series)]


def _story_point_growth(demo: Demo) -> dict[str, float]:
    """Per team, mean points of stories and tasks created in the last year over those created the year before."""
    stories = demo.frames["work_items"].filter(pl.col("type") != "Bug")
    late = pl.col("created_at") >= HORIZON - timedelta(days=365)
    ratios = stories.group_by("team_id").agg(
        pl.col("story_points").filter(late).mean() / pl.col("story_points").filter(~late).mean()
    )
    return dict(ratios.iter_rows())


# --- Determinism and conformance ------------------------------------------------------------------


def test_the_same_seed_gives_identical_frames_and_another_seed_differs(small: Demo) -> None:
    again = generate_demo(seed=3, scale=0.1)
    other = generate_demo(seed=4, scale=0.1)
    for name in ENTITIES:
        assert small.frames[name].equals(again.frames[name]), name
    assert small.planted_effects.equals(again.planted_effects)
    assert not small.frames["pull_requests"].equals(other.frames["pull_requests"])
    assert not small.frames["metric_observations"].equals(other.frames["metric_observations"])


@pytest.mark.parametrize("which", ["demo", "steady", "small"])
def test_every_entity_conforms_and_every_reference_resolves(which: str, request: pytest.FixtureRequest) -> None:
    frames = request.getfixturevalue(which).frames
    assert set(frames) == set(ENTITIES)
    for name, spec in ENTITIES.items():
        assert frames[name].schema == spec.schema, name
        assert validate(name, frames[name], known=frames) == [], name


def test_no_timestamp_passes_the_end_and_every_metric_is_observed_daily(demo: Demo) -> None:
    for name, spec in ENTITIES.items():
        for column in spec.columns:
            if column.dtype == DATETIME:
                latest = demo.frames[name][column.name].max()
                assert latest is None or latest <= HORIZON, (name, column.name, latest)
    observed = (
        demo.frames["metric_observations"]
        .group_by("metric_id", "segment")
        .agg(pl.col("date").min().alias("first"), pl.col("date").max().alias("last"), pl.len().alias("days"))
    )
    assert observed.filter(pl.col("segment") == "all").height == demo.frames["metrics"].height
    assert set(observed["first"]) == {DEMO_END - timedelta(days=730)}
    assert set(observed["last"]) == {DEMO_END}
    assert set(observed["days"]) == {731}


# --- Realistic shape ----------------------------------------------------------------------------


def test_counts_at_scale_one_are_those_of_a_mid_sized_org(demo: Demo) -> None:
    f = demo.frames
    people = f["people"]
    levels = f["metrics"]["level"].to_list()
    expected = {
        "teams": (6, 6),
        "capabilities": (10, 14),
        "milestones": (6, 10),
        "features": (140, 160),
        "work_items": (1_300, 1_700),
        "pull_requests": (19_000, 21_000),
        "deployments": (2_800, 3_200),
        "incidents": (120, 180),
        "cost_events": (80_000, 140_000),
    }
    for name, (low, high) in expected.items():
        assert low <= f[name].height <= high, (name, f[name].height)
    assert 55 <= people.filter(pl.col("kind") == "human").height <= 65
    assert people.filter(pl.col("kind") == "agent").height == 4
    assert 5 <= levels.count("outcome") <= 8
    assert 1 <= levels.count("activity") + levels.count("output") <= 2
    assert f["hypotheses"].height >= 0.5 * f["features"].height
    assert set(f["features"]["status"]) == {"planned", "in_progress", "delivered", "cancelled"}
    assert 20 <= f["features"].filter(pl.col("milestone_id").is_not_null()).height <= 60


def test_scale_multiplies_the_activity_tables(small: Demo, demo: Demo) -> None:
    for name in ("pull_requests", "deployments", "work_items", "features", "incidents"):
        ratio = small.frames[name].height / demo.frames[name].height
        assert 0.08 <= ratio <= 0.12, (name, ratio)


@pytest.mark.parametrize(
    ("override", "doubled"),
    [
        ("feature_scale", {"features"}),
        ("work_item_scale", {"work_items"}),
        ("deployment_scale", {"deployments", "incidents"}),
    ],
)
def test_an_entity_scale_changes_only_the_counts_it_names(small: Demo, override: str, doubled: set[str]) -> None:
    scaled = generate_demo(seed=3, scale=0.1, **{override: 0.2})
    for name in ("features", "work_items", "pull_requests", "deployments", "incidents"):
        ratio = scaled.frames[name].height / small.frames[name].height
        low, high = (1.8, 2.1) if name in doubled else (0.95, 1.05)
        assert low <= ratio <= high, (name, ratio)
    # 20,000 × 0.1 expected; each of the six teams rounds its own total by less than one.
    assert abs(scaled.frames["pull_requests"].height - 2_000) < 6
    for name in ENTITIES:
        assert validate(name, scaled.frames[name], known=scaled.frames) == [], name


def test_entity_scales_equal_to_scale_leave_the_demo_as_it_is(small: Demo) -> None:
    same = generate_demo(seed=3, scale=0.1, feature_scale=0.1, work_item_scale=0.1, deployment_scale=0.1)
    for name in ENTITIES:
        assert small.frames[name].equals(same.frames[name]), name
    with pytest.raises(ValueError, match="feature_scale must be positive"):
        generate_demo(seed=3, scale=0.1, feature_scale=0.0)


def test_people_and_agents_carry_realistic_costs(demo: Demo) -> None:
    people = demo.frames["people"]
    humans = people.filter(pl.col("kind") == "human")
    assert humans["hourly_cost"].min() >= 55 and humans["hourly_cost"].max() <= 140
    assert humans["team_id"].null_count() == 0
    agents = people.filter(pl.col("kind") == "agent")
    assert "copilot-swe-agent[bot]" in agents["person_id"].to_list()
    assert all(name.endswith("[bot]") for name in agents["name"])


def test_metrics_state_their_target_and_the_mortgage_outcome_is_the_headline(demo: Demo) -> None:
    mortgage = demo.frames["metrics"].filter(pl.col("metric_id") == "mortgage_application_days").row(0, named=True)
    assert (mortgage["direction"], mortgage["baseline"], mortgage["target"]) == ("lower", 14.0, 3.0)
    assert mortgage["target_date"] == date(2027, 6, 30)
    capabilities = demo.frames["capabilities"]
    outcome_ids = demo.frames["metrics"].filter(pl.col("level") == "outcome")["metric_id"]
    assert capabilities["metric_id"].is_in(outcome_ids.implode()).all()


def test_hypotheses_precede_the_work_and_point_the_way_the_metric_should_go(demo: Demo) -> None:
    f = demo.frames
    joined = (
        f["hypotheses"]
        .join(f["features"], on="feature_id")
        .join(f["metrics"].select("metric_id", "direction"), on="metric_id")
    )
    started = joined.filter(pl.col("started_at").is_not_null())
    assert (started["created_at"] < started["started_at"]).all()
    assert joined.filter(pl.col("direction") == "lower")["predicted_change"].max() < 0
    assert joined.filter(pl.col("direction") == "higher")["predicted_change"].min() > 0
    assert joined["lag_days"].is_between(0, 14).all()
    assert joined["window_days"].is_between(28, 90).all()
    capability_metric = f["capabilities"].select("capability_id", pl.col("metric_id").alias("capability_metric"))
    assert (
        joined.join(capability_metric, on="capability_id")
        .select((pl.col("metric_id") == pl.col("capability_metric")).all())
        .item()
    )


def test_work_items_have_team_keys_fibonacci_points_and_ordered_timelines(demo: Demo) -> None:
    items = demo.frames["work_items"]
    assert items["work_item_key"].str.contains(r"^(PAY|ONB|SRCH|MOB|PLAT|GRO)-\d+$").all()
    assert (items["work_item_key"].str.split("-").list.first() == items["team_id"]).all()
    assert set(items["story_points"].drop_nulls()) <= {1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 21.0}
    assert set(items["type"]) == {"Story", "Bug", "Task"}
    assert (items["created_at"] <= items["started_at"]).drop_nulls().all()
    assert (items["started_at"] <= items["resolved_at"]).drop_nulls().all()
    assert 0.1 <= items["feature_id"].null_count() / items.height <= 0.35


def test_pull_requests_come_from_people_and_agents_and_mostly_name_their_work_item(demo: Demo) -> None:
    prs = demo.frames["pull_requests"]
    kinds = prs["author_kind"].value_counts().to_dict(as_series=False)
    shares = dict(zip(kinds["author_kind"], kinds["count"], strict=True))
    assert shares["agent"] / prs.height >= 0.08 and shares["human"] / prs.height >= 0.7
    agents = demo.frames["people"].filter(pl.col("kind") == "agent")["person_id"]
    assert (prs.filter(pl.col("author_kind") == "agent")["author_id"].is_in(agents.implode())).all()
    named = prs["title"].str.contains(KEY_PATTERN) | prs["branch"].str.contains(KEY_PATTERN)
    assert 0.8 <= named.mean() <= 0.9
    assert 0.05 <= prs["feature_id"].is_not_null().mean() <= 0.25
    assert prs["pr_id"].str.starts_with(prs["repo"] + "#").all()
    states = set(prs["state"])
    assert states == {"merged", "open", "closed"}
    assert 0.85 <= (prs["state"] == "merged").mean() <= 0.95


def test_pull_request_timelines_are_ordered_and_merged_ones_were_shipped(demo: Demo) -> None:
    prs = demo.frames["pull_requests"]
    assert (prs["first_commit_at"] <= prs["created_at"]).all()
    assert (prs["created_at"] <= prs["first_review_at"]).drop_nulls().all()
    assert (prs["first_review_at"] <= prs["merged_at"]).drop_nulls().all()
    assert ((prs["state"] == "merged") == prs["merged_at"].is_not_null()).all()
    assert ((prs["state"] == "merged") == prs["merge_commit_sha"].is_not_null()).all()
    assert prs["deployment_id"].is_not_null().sum() <= prs["merged_at"].is_not_null().sum()
    hours_to_merge = (prs["merged_at"] - prs["created_at"]).dt.total_minutes().drop_nulls() / 60
    assert 2 <= hours_to_merge.median() <= 48
    shipped = prs.filter(pl.col("deployment_id").is_not_null()).join(
        demo.frames["deployments"], on="deployment_id", suffix="_deploy"
    )
    assert shipped.height >= 0.9 * (prs["state"] == "merged").sum()
    assert (shipped["started_at"] >= shipped["merged_at"]).all()
    assert (shipped["repo"] == shipped["repo_deploy"]).all()
    assert ((shipped["environment"] == "production") & (shipped["status"] == "success")).all()


def test_deployments_and_incidents_look_like_production(demo: Demo) -> None:
    deployments = demo.frames["deployments"]
    assert 0.7 <= (deployments["environment"] == "production").mean() <= 0.9
    assert 0.08 <= (deployments["status"] == "failure").mean() <= 0.15
    assert (deployments["started_at"] < deployments["finished_at"]).all()
    incidents = demo.frames["incidents"]
    linked = incidents.filter(pl.col("deployment_id").is_not_null()).join(deployments, on="deployment_id")
    assert linked.height >= 0.4 * incidents.height
    after = (linked["opened_at"] - linked["finished_at"]).dt.total_hours()
    assert after.min() >= 0 and after.max() <= 48
    assert (linked["environment"] == "production").all()
    assert (incidents["resolved_at"] > incidents["opened_at"]).drop_nulls().all()


def test_every_cost_source_is_present_with_its_own_unit_and_links(demo: Demo) -> None:
    costs = demo.frames["cost_events"]
    assert set(costs["source"]) == set(COST_SOURCES)
    units = costs.group_by("source").agg(pl.col("unit").unique())
    assert {s: set(u) for s, u in units.iter_rows()} == {
        "llm": {"tokens"},
        "ci": {"minutes"},
        "review": {"minutes"},
        "people": {"hours"},
        "other": {None},
    }
    llm = costs.filter(pl.col("source") == "llm")
    assert llm["person_id"].null_count() == 0 and llm["feature_id"].null_count() == llm.height
    assert 0.2 <= llm["amount"].null_count() / llm.height <= 0.5
    assert set(llm["detail"]) <= {"gpt-4.1", "gpt-4.1-mini", "claude-sonnet-4", "claude-opus-4"}
    ci = costs.filter(pl.col("source") == "ci")
    assert ci["repo"].null_count() == 0 and ci["branch"].null_count() == 0
    assert 0 < ci["amount"].null_count() < ci.height
    assert {"ubuntu-latest", "macos-latest"} <= set(ci["detail"])
    review = costs.filter(pl.col("source") == "review")
    assert review["pr_id"].is_in(demo.frames["pull_requests"]["pr_id"].implode()).all()
    assert review["person_id"].null_count() == 0
    people = costs.filter(pl.col("source") == "people")
    link_columns = ["team_id", "feature_id", "pr_id", "work_item_key", "repo", "branch"]
    assert people.select(pl.all_horizontal(pl.col(link_columns).is_null()).all()).item()
    assert people["occurred_at"].dt.weekday().unique().to_list() == [1]
    other = costs.filter(pl.col("source") == "other")
    assert 0 < other["feature_id"].is_not_null().sum() < other.height
    assert (costs["currency"].is_null() == costs["amount"].is_null()).all()
    assert set(costs["currency"].drop_nulls()) == {"USD"}
    assert (costs["amount"].drop_nulls() >= 0).all()


# --- Planted outcome effects ---------------------------------------------------------------------


def test_planted_effects_cover_every_feature_and_only_delivered_hypotheses_move_metrics(demo: Demo) -> None:
    effects = demo.planted_effects
    assert effects.columns == ["feature_id", "metric_id", "true_effect"]
    assert effects["feature_id"].sort().equals(demo.frames["features"]["feature_id"].sort())
    moving = effects.filter(pl.col("true_effect") != 0).join(demo.frames["features"], on="feature_id")
    assert (moving["status"] == "delivered").all()
    assert moving["feature_id"].is_in(demo.frames["hypotheses"]["feature_id"].implode()).all()
    assert (effects["true_effect"] > 0).sum() >= 5
    assert (effects["true_effect"] == 0).sum() >= 50
    with_prediction = effects.join(demo.frames["hypotheses"], on="feature_id")
    wrong_way = with_prediction.filter(pl.col("true_effect") * pl.col("predicted_change") < 0)
    # A tenth of the planted effects go the wrong way: 0.10 / 0.75 of those that move their metric.
    assert 1 <= wrong_way.height <= 0.25 * with_prediction.filter(pl.col("true_effect") != 0).height


def test_each_planted_step_shows_in_the_observations(demo: Demo) -> None:
    f = demo.frames
    judged = (
        demo.planted_effects.filter(pl.col("true_effect").abs() >= 0.03)
        .join(f["hypotheses"].select("feature_id", "lag_days"), on="feature_id")
        .join(f["features"].select("feature_id", "delivered_at"), on="feature_id")
        .with_columns((pl.col("delivered_at").dt.date() + pl.duration(days=pl.col("lag_days"))).alias("step"))
        .filter(pl.col("step") <= DEMO_END - timedelta(days=28))
    )
    all_steps = judged.select("metric_id", pl.col("step").alias("other_step"), pl.col("feature_id").alias("other"))
    clean = judged.join(all_steps, on="metric_id").filter(
        (pl.col("other") != pl.col("feature_id"))
        & ((pl.col("other_step") - pl.col("step")).dt.total_days().abs() <= 35)
    )
    judged = judged.filter(~pl.col("feature_id").is_in(clean["feature_id"].implode()))
    assert judged.height >= 8
    series = f["metric_observations"].filter(pl.col("segment") == "all")
    planted, observed = [], []
    for feature_id, metric_id, effect, step in judged.select("feature_id", "metric_id", "true_effect", "step").rows():
        window = series.filter(pl.col("metric_id") == metric_id)
        before = window.filter(pl.col("date").is_between(step - timedelta(days=35), step - timedelta(days=8)))
        after = window.filter(pl.col("date").is_between(step, step + timedelta(days=27)))
        change = after["value"].mean() / before["value"].mean() - 1
        assert abs(change - effect) <= 0.5 * abs(effect) + 0.03, (feature_id, effect, change)
        planted.append(effect)
        observed.append(change)
    assert pl.DataFrame({"planted": planted, "observed": observed}).select(pl.corr("planted", "observed")).item() > 0.9


def test_launches_crowd_each_metric_as_a_roadmap_does_and_most_verdicts_are_still_judged(
    demo: Demo, small: Demo
) -> None:
    for org in (demo, small):
        delivered = org.frames["features"].join(org.frames["hypotheses"], on="feature_id")
        recent = delivered.filter(pl.col("delivered_at") >= HORIZON - timedelta(days=30))
        assert recent.height >= 1
    shipped = demo.frames["features"].filter(pl.col("status") == "delivered")
    # Nine in ten delivered features carry a hypothesis (none is dropped to keep launches apart).
    assert shipped["feature_id"].is_in(demo.frames["hypotheses"]["feature_id"].implode()).mean() >= 0.8
    delivered = (
        demo.frames["features"]
        .join(demo.frames["hypotheses"], on="feature_id")
        .filter(pl.col("delivered_at").is_not_null())
        .select("feature_id", "metric_id", pl.col("delivered_at").dt.date().alias("day"))
    )
    pairs = delivered.join(delivered, on="metric_id", suffix="_other").filter(
        (pl.col("feature_id") < pl.col("feature_id_other"))
        & ((pl.col("day_other") - pl.col("day")).dt.total_days().abs() <= 120)
    )
    close = pairs.filter((pl.col("day_other") - pl.col("day")).dt.total_days().abs() <= 20)
    assert close.height >= 2
    # Teams ship every few weeks without looking at each other's metrics: most hypotheses share their
    # 120-day pre-period with another launch on the same metric.
    crowded = set(pairs["feature_id"]) | set(pairs["feature_id_other"])
    assert len(crowded) >= 0.5 * delivered.height
    f = demo.frames
    verdicts = judge_hypotheses(
        f["features"].lazy(), f["hypotheses"].lazy(), f["metrics"].lazy(), f["metric_observations"].lazy(), DEMO_END
    )
    counts = dict(verdicts.group_by("verdict").len().iter_rows())
    judged = sum(counts.get(v, 0) for v in JUDGED)
    assert judged >= 0.6 * verdicts.height, counts
    assert 1 <= counts.get("confounded", 0) <= 0.25 * verdicts.height, counts
    assert counts.get("pending", 0) >= 1, counts
    jointly = verdicts.filter(pl.col("verdict").is_in(JUDGED) & (pl.col("estimated_with").list.len() > 0))
    assert jointly.height >= 0.25 * judged, counts


def test_observations_trend_with_weekly_seasonality_and_a_control_segment(demo: Demo) -> None:
    observations = demo.frames["metric_observations"]
    tickets = observations.filter(pl.col("metric_id") == "support_tickets_weekly").with_columns(
        (pl.col("date").dt.weekday() >= 6).alias("weekend")
    )
    means = dict(tickets.group_by("weekend").agg(pl.col("value").mean()).iter_rows())
    assert means[True] < 0.8 * means[False]
    controlled = observations.filter(pl.col("segment") == "control")["metric_id"].unique().to_list()
    assert 1 <= len(controlled) <= 2
    aimed = demo.frames["hypotheses"].join(demo.frames["features"], on="feature_id")
    assert (aimed.filter(pl.col("metric_id").is_in(controlled))["control_segment"] == "control").all()
    assert (
        aimed.filter(~pl.col("metric_id").is_in(controlled))["control_segment"].null_count()
        == aimed.filter(~pl.col("metric_id").is_in(controlled)).height
    )
    search = observations.filter(pl.col("metric_id") == "search_success_rate").sort("date")["value"]
    lag_one = search.diff().drop_nulls()
    assert pl.DataFrame({"a": search[1:], "b": search[:-1]}).select(pl.corr("a", "b")).item() > 0.3
    assert lag_one.std() > 0


# --- The high-activity, low-value team ---------------------------------------------------------------


def test_growth_activity_climbs_every_quarter_while_its_value_does_not(demo: Demo) -> None:
    assert demo.high_activity_team == "GRO"
    merged = _merged_per_quarter(demo, LAST_FOUR_QUARTERS)
    growth = merged["GRO"]
    assert all(b >= a for a, b in itertools.pairwise(growth)), growth
    assert growth[-1] >= 1.3 * growth[0]
    delivered = demo.frames["features"].join(demo.planted_effects, on="feature_id")
    moving = delivered.filter(pl.col("true_effect").abs() > 0)
    valuable = _quarterly(moving, "delivered_at", pl.len(), LAST_FOUR_QUARTERS).get("GRO", [0, 0, 0, 0])
    assert all(later <= valuable[0] for later in valuable[1:]), valuable
    assert sum(valuable) <= 1


def test_other_teams_stay_steady_quarter_over_quarter(demo: Demo) -> None:
    merged = _merged_per_quarter(demo, COMPLETE_QUARTERS)
    for team, counts in merged.items():
        if team != "GRO":
            assert all(abs(change) <= 0.25 for change in _changes(counts)), (team, counts)


def test_growth_shows_agent_churn_smaller_prs_and_story_point_inflation(demo: Demo) -> None:
    prs = demo.frames["pull_requests"]
    agent_share = _quarterly(prs, "created_at", (pl.col("author_kind") == "agent").mean(), COMPLETE_QUARTERS)
    assert agent_share["GRO"][-1] >= 2 * agent_share["GRO"][0]
    for team, shares in agent_share.items():
        if team != "GRO":
            assert max(shares) - min(shares) <= 0.08, (team, shares)
    size = _quarterly(prs, "created_at", pl.col("additions").median(), COMPLETE_QUARTERS)
    assert size["GRO"][-1] <= 0.7 * size["GRO"][0]
    points = _story_point_growth(demo)
    assert points["GRO"] >= 1.4
    assert all(0.75 <= ratio <= 1.3 for team, ratio in points.items() if team != "GRO"), points


def test_a_steady_organisation_has_no_trending_team(steady: Demo) -> None:
    assert steady.high_activity_team is None
    merged = _merged_per_quarter(steady, COMPLETE_QUARTERS)
    assert len(merged) == 6
    for team, counts in merged.items():
        assert all(abs(change) <= 0.2 for change in _changes(counts)), (team, counts)
    prs = steady.frames["pull_requests"]
    agent_share = _quarterly(prs, "created_at", (pl.col("author_kind") == "agent").mean(), COMPLETE_QUARTERS)
    size = _quarterly(prs, "created_at", pl.col("additions").median(), COMPLETE_QUARTERS)
    points = _story_point_growth(steady)
    for team in merged:
        assert max(agent_share[team]) - min(agent_share[team]) <= 0.08, (team, agent_share[team])
        assert 0.75 <= size[team][-1] / size[team][0] <= 1.33, (team, size[team])
        assert 0.75 <= points[team] <= 1.3, (team, points[team])
    assert (steady.planted_effects["true_effect"] != 0).sum() >= 5

"""Vanity flags on hand-made teams (a hit and a near miss per detector) and on the demo organisation."""

from __future__ import annotations

import dataclasses
import json
from datetime import date, datetime, timedelta

import polars as pl
import pytest

from core.flags.acknowledgements import acknowledge, apply_acknowledgements
from core.flags.charts import flag_chart
from core.flags.detectors import (
    FLAG_COLUMNS,
    FLAG_SCHEMA,
    activity_up_value_flat,
    agent_churn,
    decoupled_metric,
    detect_all,
    leadership_vanity,
    pr_splitting,
    story_point_inflation,
    unlinked_work,
)
from core.flags.rollups import outcomes_to_watch, team_periods, weekly_series
from core.flags.settings import FLAG_DEFAULTS_TEXT, FlagSettings
from core.model.records import ACK_SCHEMA
from core.model.schema import ENTITIES, coerce

AS_OF = date(2025, 7, 15)
Q1, Q2 = datetime(2025, 1, 1, 10), datetime(2025, 4, 1, 10)
"""The first day of each quarter; the hand-made facts are spread over the weeks after it."""
QOQ = FlagSettings(window_quarters=1)


def _org(
    prs: list[dict] | None = None,
    items: list[dict] | None = None,
    features: list[dict] | None = None,
    observations: list[dict] | None = None,
) -> dict[str, pl.LazyFrame]:
    """A one-team organisation (Alpha, t1) whose outcome metric is Conversion, from the rows given."""
    rows = {
        "teams": [{"team_id": "t1", "name": "Alpha"}],
        "metrics": [
            dict(metric_id="conv", name="Conversion", level="outcome", direction="higher", value_per_unit=100.0),
            dict(metric_id="velocity", name="Velocity", level="activity", direction="higher", team_id="t1"),
            dict(metric_id="lead_time", name="Lead time", level="output", direction="lower", team_id="t1"),
        ],
        "features": [dict(feature_id="f0", name="Anchor", team_id="t1", status="planned"), *(features or [])],
        "hypotheses": [
            dict(
                feature_id="f0",
                metric_id="conv",
                predicted_change=0.05,
                change_kind="relative",
                window_days=28,
                created_at=datetime(2024, 12, 1),
            )
        ],
        "work_items": items or [],
        "pull_requests": prs or [],
        "metric_observations": observations or [],
    }
    frames = {}
    for name in ENTITIES:
        data = rows.get(name, [])
        frame = pl.DataFrame(data, infer_schema_length=None) if data else pl.DataFrame(schema=ENTITIES[name].schema)
        frames[name] = coerce(name, frame).lazy()
    return frames


def _prs(n: int, start: datetime, prefix: str, **fields: object) -> list[dict]:
    """``n`` merged PRs of team t1, one every 4 hours from ``start`` (all inside its quarter)."""
    rows = []
    for i in range(n):
        at = start + timedelta(hours=4 * i)
        row = dict(
            pr_id=f"r#{prefix}{i}",
            repo="r",
            team_id="t1",
            author_kind="human",
            state="merged",
            created_at=at,
            merged_at=at + timedelta(hours=1),
            additions=80,
            deletions=20,
        )
        row.update(fields)
        rows.append(row)
    return rows


def _verdicts(rows: list[tuple[str, str]] | None = None) -> pl.LazyFrame:
    return pl.LazyFrame(rows or [], schema={"feature_id": pl.String, "verdict": pl.String}, orient="row")


def _flags_of(detector, frames: dict[str, pl.LazyFrame], settings: FlagSettings = QOQ, verdicts=None, costs=None):
    periods = team_periods(
        frames, verdicts if verdicts is not None else _verdicts(), costs, AS_OF, settings.window_quarters
    )
    watch = outcomes_to_watch(frames["features"], frames["hypotheses"], frames["metrics"])
    return detector(periods, frames["teams"], watch, settings).collect()


# --- 1. Activity up, value flat ------------------------------------------------------------------


@pytest.mark.parametrize(("merged_in_q2", "flagged"), [(260, True), (258, False)])
def test_activity_up_30_percent_with_flat_value_is_flagged_and_29_percent_is_not(merged_in_q2: int, flagged: bool):
    frames = _org(prs=_prs(200, Q1, "a") + _prs(merged_in_q2, Q2, "b"))
    flags = _flags_of(activity_up_value_flat, frames)
    assert flags.height == int(flagged)
    if flagged:
        flag = flags.row(0, named=True)
        assert flag["flag_id"] == "activity_up_value_flat|t1|-|2025-01-01|2025-06-30"
        assert (flag["window_start"], flag["window_end"], flag["detected_at"]) == (
            date(2025, 1, 1),
            date(2025, 6, 30),
            date(2025, 6, 30),
        )
        evidence = json.loads(flag["evidence"])
        assert (evidence["prs_merged_prev"], evidence["prs_merged"], evidence["prs_merged_rise"]) == (200, 260, 0.3)
        assert evidence["features_confirmed_prev"] == evidence["features_confirmed"] == 0
        assert "Alpha: PRs merged +30% (200 → 260) from 2025 Q1 to 2025 Q2" in flag["explanation"]
        assert flag["suggestion"].startswith("Watch Conversion")
        assert flag["severity"] == "low" and flag["severity_score"] == pytest.approx(1.0)


def test_activity_up_while_confirmed_features_rise_is_not_flagged():
    delivered = [
        dict(feature_id="f1", name="New checkout", team_id="t1", status="delivered", delivered_at=datetime(2025, 5, 1))
    ]
    frames = _org(prs=_prs(200, Q1, "a") + _prs(300, Q2, "b"), features=delivered)
    assert _flags_of(activity_up_value_flat, frames).height == 1
    assert _flags_of(activity_up_value_flat, frames, verdicts=_verdicts([("f1", "confirmed")])).height == 0


# --- 2. Unlinked work -----------------------------------------------------------------------------


@pytest.mark.parametrize(("unlinked", "flagged"), [(11, True), (10, False)])
def test_more_than_a_quarter_of_prs_unlinked_is_flagged_and_exactly_a_quarter_is_not(unlinked: int, flagged: bool):
    feature = [dict(feature_id="f1", name="Search", team_id="t1", status="in_progress")]
    item = [dict(work_item_key="T1-1", feature_id="f1", team_id="t1")]
    by_feature = _prs(15, Q1, "f", feature_id="f1")
    by_key = _prs(40 - 15 - unlinked, Q1 + timedelta(days=10), "k", work_item_key="T1-1")
    in_title = _prs(0, Q1, "t")
    loose = _prs(unlinked, Q1 + timedelta(days=20), "u", title="chore: bump deps")
    frames = _org(prs=by_feature + by_key + in_title + loose, items=item, features=feature)
    flags = _flags_of(unlinked_work, frames)
    assert flags.height == int(flagged)
    if flagged:
        evidence = json.loads(flags["evidence"][0])
        assert (evidence["prs_merged"], evidence["prs_unlinked"], evidence["pr_unlinked_share"]) == (40, 11, 0.275)
        assert evidence["cost_unlinked_share"] is None
        assert "28% of its 40 merged PRs (11) not linked to any feature" in flags["explanation"][0]


@pytest.mark.parametrize(("unattributed", "flagged"), [(26.0, True), (25.0, False)])
def test_unattributed_cost_above_a_quarter_is_flagged(unattributed: float, flagged: bool):
    frames = _org(
        prs=_prs(40, Q1, "f", title="T1-1 search box"),
        items=[dict(work_item_key="T1-1", feature_id="f1", team_id="t1")],
        features=[dict(feature_id="f1", name="Search", team_id="t1", status="in_progress")],
    )
    costs = pl.LazyFrame(
        {
            "event_id": ["e1", "e2"],
            "occurred_at": [datetime(2025, 2, 1), datetime(2025, 2, 2)],
            "team_id": ["t1", "t1"],
            "feature_id": ["f1", None],
            "amount": [100.0 - unattributed, unattributed],
            "source": ["llm", "ci"],
        }
    )
    flags = _flags_of(unlinked_work, frames, costs=costs)
    assert flags.height == int(flagged)
    if flagged:
        evidence = json.loads(flags["evidence"][0])
        assert (evidence["pr_unlinked_share"], evidence["cost"], evidence["cost_unlinked_share"]) == (0.0, 100.0, 0.26)


# --- 3. Story-point inflation ---------------------------------------------------------------------


def _pointed(quarter_start: datetime, points: float, prefix: str) -> list[dict]:
    return [
        dict(
            work_item_key=f"T1-{prefix}{i}",
            feature_id=f"f{prefix}",
            team_id="t1",
            story_points=points,
            started_at=quarter_start + timedelta(days=3 * i),
            resolved_at=quarter_start + timedelta(days=3 * i + 2),
        )
        for i in range(10)
    ]


@pytest.mark.parametrize(
    ("points_in_q2", "size_in_q2", "flagged"), [(2.5, 100, True), (2.48, 100, False), (2.5, 115, False)]
)
def test_points_per_item_up_25_percent_at_steady_cycle_time_and_size_is_flagged(
    points_in_q2: float, size_in_q2: int, flagged: bool
):
    features = [dict(feature_id=f"f{p}", name=p, team_id="t1", status="in_progress") for p in ("a", "b")]
    frames = _org(
        items=_pointed(Q1, 2.0, "a") + _pointed(Q2, points_in_q2, "b"),
        features=features,
        prs=_prs(5, Q1, "a") + _prs(5, Q2, "b", additions=size_in_q2 - 20),
    )
    flags = _flags_of(story_point_inflation, frames)
    assert flags.height == int(flagged)
    if flagged:
        evidence = json.loads(flags["evidence"][0])
        assert (evidence["points_per_item_prev"], evidence["points_per_item"], evidence["points_change"]) == (
            2.0,
            2.5,
            0.25,
        )
        assert (evidence["cycle_change"], evidence["size_change"]) == (0.0, 0.0)


# --- 4. PR splitting and agent churn --------------------------------------------------------------


def _delivered_with_prs(quarter_start: datetime, per_feature: int, size: int, prefix: str) -> tuple[list, list]:
    features, prs = [], []
    for k in range(3):
        fid = f"f{prefix}{k}"
        features.append(
            dict(
                feature_id=fid,
                name=fid,
                team_id="t1",
                status="delivered",
                delivered_at=quarter_start + timedelta(days=30 + k),
            )
        )
        prs += _prs(per_feature, quarter_start + timedelta(days=k), f"{fid}-", feature_id=fid, additions=size - 20)
    return features, prs


@pytest.mark.parametrize(("size_in_q2", "flagged"), [(160, True), (161, False)])
def test_more_prs_per_feature_and_20_percent_smaller_prs_is_flagged(size_in_q2: int, flagged: bool):
    f1, p1 = _delivered_with_prs(Q1, 2, 200, "a")
    f2, p2 = _delivered_with_prs(Q2, 3, size_in_q2, "b")
    flags = _flags_of(pr_splitting, _org(prs=p1 + p2, features=f1 + f2))
    assert flags.height == int(flagged)
    if flagged:
        evidence = json.loads(flags["evidence"][0])
        assert (evidence["prs_per_feature_prev"], evidence["prs_per_feature"], evidence["per_feature_change"]) == (
            2.0,
            3.0,
            0.5,
        )
        assert (evidence["pr_size_median_prev"], evidence["pr_size_median"], evidence["size_change"]) == (
            200.0,
            160.0,
            -0.2,
        )


@pytest.mark.parametrize(("closed_in_q2", "flagged"), [(5, True), (3, False)])
def test_agent_prs_doubling_while_fewer_are_merged_is_flagged(closed_in_q2: int, flagged: bool):
    agent = dict(author_kind="agent", author_id="bot")
    q1 = _prs(20, Q1, "a", **agent)
    q2 = _prs(40 - closed_in_q2, Q2, "b", **agent) + _prs(
        closed_in_q2, Q2 + timedelta(days=20), "c", state="closed", merged_at=None, **agent
    )
    flags = _flags_of(agent_churn, _org(prs=q1 + q2))
    assert flags.height == int(flagged)
    if flagged:
        evidence = json.loads(flags["evidence"][0])
        assert (evidence["agent_prs_prev"], evidence["agent_prs"], evidence["agent_change"]) == (20, 40, 1.0)
        assert (evidence["agent_merged_share_prev"], evidence["agent_merged_share"]) == (1.0, 0.875)


# --- 5. Leadership-view vanity --------------------------------------------------------------------


def test_only_activity_metrics_on_an_executive_view_are_flagged():
    frames = _org()
    watch = outcomes_to_watch(frames["features"], frames["hypotheses"], frames["metrics"])
    settings = FlagSettings(executive_view_metrics=("velocity", "conv", "lead_time"))
    flags = leadership_vanity(frames["metrics"], watch, settings, AS_OF).collect()
    assert flags["metric_id"].to_list() == ["velocity"]
    flag = flags.row(0, named=True)
    assert flag["flag_id"] == "leadership_vanity|t1|velocity|2025-07-01|2025-09-30"
    assert flag["detected_at"] == AS_OF
    assert flag["suggestion"].startswith("Watch Conversion")
    near_miss = FlagSettings(executive_view_metrics=("conv", "lead_time"))
    assert leadership_vanity(frames["metrics"], watch, near_miss, AS_OF).collect().is_empty()


# --- 6. Decoupled metric --------------------------------------------------------------------------


def _weekly_prs(counts: list[int]) -> list[dict]:
    """``counts[w]`` merged PRs in week ``w`` from Monday 2025-01-06 (spread over the working days)."""
    rows = []
    for week, count in enumerate(counts):
        monday = datetime(2025, 1, 6, 9) + timedelta(weeks=week)
        rows += _prs(count, monday, f"w{week}-")[:count]
        for i in range(count):
            rows[-count + i]["created_at"] = monday + timedelta(hours=i % 40)
            rows[-count + i]["merged_at"] = monday + timedelta(hours=i % 40 + 1)
    return rows


def _conversion(days: int = 200) -> list[dict]:
    return [
        dict(metric_id="conv", date=date(2024, 12, 30) + timedelta(days=d), segment="all", value=5.0)
        for d in range(days)
    ]


@pytest.mark.parametrize(("step", "flagged"), [(1.1, True), (0.9, False)])
def test_prs_rising_for_twelve_weeks_while_conversion_stays_put_is_flagged(step: float, flagged: bool):
    flat = [50] * 13
    rising = [round(50 + step * i) for i in range(13)]
    frames = _org(prs=_weekly_prs(flat + rising), observations=_conversion())
    watch = outcomes_to_watch(frames["features"], frames["hypotheses"], frames["metrics"])
    flags = decoupled_metric(weekly_series(frames, AS_OF), frames["teams"], watch, FlagSettings(), AS_OF).collect()
    assert flags.height == int(flagged)
    if flagged:
        flag = flags.row(0, named=True)
        assert flag["flag_id"] == "decoupled_metric|t1|prs_merged|2025-04-07|2025-06-29"
        evidence = json.loads(flag["evidence"])
        assert evidence["weeks"] == 12 and evidence["kendall_tau"] > 0.9
        assert (evidence["outcome_metric_id"], evidence["best_lag"], evidence["best_r"]) == ("conv", 0, 0.0)
        assert "Conversion did not follow it" in flag["explanation"]


def test_a_rising_metric_its_outcome_follows_is_not_flagged():
    flat = [50] * 13
    rising = [round(50 + 2 * i) for i in range(13)]
    follows = [
        dict(
            metric_id="conv",
            date=date(2024, 12, 30) + timedelta(days=d),
            segment="all",
            value=5.0 + 0.01 * max(0, d - 98),
        )
        for d in range(200)
    ]
    frames = _org(prs=_weekly_prs(flat + rising), observations=follows)
    watch = outcomes_to_watch(frames["features"], frames["hypotheses"], frames["metrics"])
    assert (
        decoupled_metric(weekly_series(frames, AS_OF), frames["teams"], watch, FlagSettings(), AS_OF)
        .collect()
        .is_empty()
    )


# --- Together: detect_all, acknowledgements, charts ---------------------------------------------


def test_detect_all_orders_flags_newest_and_most_severe_first_with_the_flag_schema():
    frames = _org(prs=_prs(200, Q1, "a") + _prs(300, Q2, "b", title="chore"), observations=_conversion())
    settings = FlagSettings(window_quarters=1, executive_view_metrics=("velocity",))
    flags = detect_all(frames, _verdicts(), None, settings, AS_OF)
    assert flags.schema == FLAG_SCHEMA and tuple(flags.columns) == FLAG_COLUMNS
    assert flags["detector"].to_list() == [
        "leadership_vanity",
        "unlinked_work",
        "activity_up_value_flat",
        "unlinked_work",
    ]
    assert flags["detected_at"].to_list() == [AS_OF, date(2025, 6, 30), date(2025, 6, 30), date(2025, 3, 31)]
    assert flags["severity_score"][1] >= flags["severity_score"][2]
    again = detect_all(frames, _verdicts(), None, settings, AS_OF)
    assert again.equals(flags)
    assert set(FLAG_DEFAULTS_TEXT) == {field.name for field in dataclasses.fields(FlagSettings)}


def test_acknowledgements_attach_to_flags_by_id_and_the_latest_one_wins():
    flags = pl.DataFrame({"flag_id": ["a", "b"], "severity_score": [2.0, 1.0]})
    acks = acknowledge(pl.DataFrame(schema=ACK_SCHEMA), "a", "lee", "known: migration", datetime(2025, 7, 1))
    acks = acknowledge(acks, "a", "kim", " reviewed with the team ", datetime(2025, 7, 2))
    shown = apply_acknowledgements(flags, acks)
    assert shown["acknowledged"].to_list() == [True, False]
    assert shown.row(0, named=True)["acknowledged_by"] == "kim"
    assert shown.row(0, named=True)["comment"] == "reviewed with the team"
    assert apply_acknowledgements(flags.lazy(), acks.lazy()).collect().equals(shown)
    with pytest.raises(ValueError, match="who made it"):
        acknowledge(acks, "b", "  ", "x", datetime(2025, 7, 3))


def test_a_flag_chart_shows_the_team_windows_it_compared():
    frames = _org(prs=_prs(200, Q1, "a") + _prs(300, Q2, "b"))
    periods = team_periods(frames, _verdicts(), None, AS_OF, 1)
    flag = _flags_of(activity_up_value_flat, frames).row(0, named=True)
    chart = flag_chart(flag, periods, weekly_series(frames, AS_OF)).collect()
    merged = chart.filter(pl.col("measure") == "PRs merged")
    assert merged["value"].to_list() == [200.0, 300.0]
    assert merged["period"].to_list() == [date(2025, 3, 31), date(2025, 6, 30)]
    assert set(chart["role"]) == {"activity", "value"}


def test_a_decoupled_metric_chart_shows_the_series_beside_the_outcome_over_its_window():
    frames = _org(prs=_weekly_prs([50] * 13 + [round(50 + 1.1 * i) for i in range(13)]), observations=_conversion())
    weekly = weekly_series(frames, AS_OF)
    watch = outcomes_to_watch(frames["features"], frames["hypotheses"], frames["metrics"])
    flag = decoupled_metric(weekly, frames["teams"], watch, FlagSettings(), AS_OF).collect().row(0, named=True)
    chart = flag_chart(flag, team_periods(frames, _verdicts(), None, AS_OF), weekly).collect()
    assert chart.group_by("measure", "role").len().sort("measure").rows() == [
        ("Conversion", "value", 12),
        ("PRs merged", "activity", 12),
    ]
    assert chart.filter(pl.col("measure") == "PRs merged")["value"].to_list()[:3] == [50.0, 51.0, 52.0]


# --- The team windows ----------------------------------------------------------------------------


def test_team_windows_count_merged_unlinked_agent_and_feature_prs_and_cost_per_window():
    """PRs count in the window they merged (unlinked ones, sizes) or were opened (agents); cost per window."""
    delivered = dict(
        feature_id="f1", name="One", team_id="t1", status="delivered", delivered_at=Q1 + timedelta(days=30)
    )
    prs = (
        _prs(3, Q1, "h", feature_id="f1")
        + _prs(1, Q1, "u", additions=300)
        + _prs(1, Q1, "x", additions=None)
        + _prs(1, Q1, "o", state="open", merged_at=None)
        + _prs(2, Q1, "am", author_kind="agent", feature_id="f1", additions=40)
        + _prs(1, Q1, "ac", author_kind="agent", state="closed", merged_at=None)
        + _prs(1, Q1, "ao", author_kind="agent", state="open", merged_at=None, feature_id="f1")
        + _prs(2, Q2, "q")
    )
    frames = _org(prs=prs, features=[delivered])
    costs = pl.LazyFrame(
        {
            "occurred_at": [datetime(2025, 2, 1), datetime(2025, 2, 2), datetime(2025, 5, 1), datetime(2025, 5, 2)],
            "team_id": ["t1"] * 4,
            "feature_id": ["f1", None, None, None],
            "amount": [10.0, 5.0, 2.5, None],
        }
    )
    columns = ["period_start", "prs_merged", "prs_unlinked", "pr_size_median", "agent_prs", "agent_merged_share"]
    columns += ["agent_linked_share", "prs_per_feature", "cost", "cost_unlinked"]
    quarterly = team_periods(frames, _verdicts(), costs, AS_OF, 1).sort("period_start").select(columns).collect()
    assert quarterly.rows() == [
        (date(2025, 1, 1), 7, 2, 100.0, 4, 2 / 3, 0.75, 5.0, 15.0, 5.0),
        (date(2025, 4, 1), 2, 2, 100.0, 0, None, None, None, 2.5, 2.5),
    ]
    half_year = team_periods(frames, _verdicts(), costs, AS_OF, 2).select(columns).collect()
    assert half_year.rows() == [(date(2025, 1, 1), 9, 4, 100.0, 4, 2 / 3, 0.75, 5.0, 17.5, 7.5)]


# --- The demo organisation ------------------------------------------------------------------------


def _demo_flags(seed: int, scale: float, planted: bool) -> tuple[pl.DataFrame, str | None]:
    demo_module = pytest.importorskip("demo")
    from core.costs import attribute_costs
    from core.outcomes.verdicts import judge_hypotheses

    demo = demo_module.generate_demo(seed=seed, scale=scale, planted=planted)
    f = {name: frame.lazy() for name, frame in demo.frames.items()}
    as_of = demo_module.DEMO_END
    verdicts = judge_hypotheses(f["features"], f["hypotheses"], f["metrics"], f["metric_observations"], as_of)
    costs = attribute_costs(f["cost_events"], f["pull_requests"], f["work_items"], f["features"], f["people"])
    return detect_all(f, verdicts.lazy(), costs, FlagSettings(), as_of), demo.high_activity_team


def test_the_planted_high_activity_team_is_flagged_and_healthy_teams_are_not():
    flags, team = _demo_flags(7, 0.5, True)
    activity = flags.filter(pl.col("detector") == "activity_up_value_flat")
    assert team is not None and team in activity["team_id"].to_list()
    assert set(activity["team_id"]) == {team}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_steady_organisation_raises_no_flag(seed: int):
    flags, team = _demo_flags(seed, 0.3, False)
    assert team is None
    assert flags.filter(pl.col("detector") != "unlinked_work").is_empty(), flags.select("flag_id", "explanation")


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_steady_organisation_raises_no_unlinked_work_flag(seed: int):
    flags, _ = _demo_flags(seed, 0.3, False)
    assert flags.filter(pl.col("detector") == "unlinked_work").is_empty(), flags.select("flag_id", "explanation")

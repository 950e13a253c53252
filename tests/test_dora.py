"""DORA measures on a tiny hand-computed organisation; every expected number is worked out here."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import polars as pl
import pytest

from core.delivery.dora import (
    DORA_2023,
    FIRST_DEPLOYMENT_NOTE,
    DoraSettings,
    change_failure_rate,
    deployment_frequency,
    deployment_rework,
    deployment_rework_rate,
    dora_measures,
    dora_trend,
    failed_deployment_recovery_time,
    feature_cycle_times,
    incident_deployments,
    lead_time_for_changes,
    mapping_check,
    pr_cycle_times,
)
from core.model.schema import coerce


def at(day: int, hour: int, minute: int = 0, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, minute)


def deployments_frame(rows: list[dict[str, object]]) -> pl.LazyFrame:
    defaults = {"service": "api", "repo": "shop", "team_id": "t1", "environment": "production", "status": "success"}
    return coerce("deployments", pl.DataFrame([{**defaults, **r} for r in rows])).lazy()


# Week of Mon 2 March: deployment days 2, 3, 4 March (d1..d4; d5 failed, d6 staging). Week of 9 March: none.
# Week of 16 March: 20 March (d7). Weekly deployment days 3, 0, 1.
DEPLOYMENTS = deployments_frame(
    [
        {"deployment_id": "d1", "finished_at": at(2, 10), "commit_sha": "c1"},
        {"deployment_id": "d2", "finished_at": at(2, 15), "commit_sha": "c2"},
        {"deployment_id": "d3", "finished_at": at(3, 9), "commit_sha": "c3"},
        {"deployment_id": "d4", "finished_at": at(4, 12), "commit_sha": "c4"},
        {"deployment_id": "d5", "finished_at": at(5, 12), "commit_sha": "c5", "status": "failure"},
        {"deployment_id": "d6", "finished_at": at(6, 12), "commit_sha": "c6", "environment": "staging"},
        {"deployment_id": "d7", "finished_at": at(20, 12), "commit_sha": "c7"},
    ]
)

PULL_REQUESTS = coerce(
    "pull_requests",
    pl.DataFrame(
        [
            # coding 120, open 1440, deploy to d2 (sha c2) 180 -> cycle 1740; from opening 1620
            dict(
                pr_id="p1",
                feature_id="f1",
                first_commit_at=at(1, 10),
                created_at=at(1, 12),
                merged_at=at(2, 12),
                first_review_at=at(1, 13),
                merge_commit_sha="c2",
            ),
            # coding 4320, open 1380, deploy to d3 (sha c3) 60 -> cycle 5760; from opening 1440
            dict(
                pr_id="p2",
                feature_id="f1",
                first_commit_at=at(27, 9, month=2),
                created_at=at(2, 9),
                merged_at=at(3, 8),
                first_review_at=at(1, 9),
                merge_commit_sha="c3",
            ),
            # explicitly shipped by d4: coding 60, open 120, deploy 60 -> cycle 240; from opening 180
            dict(
                pr_id="p3",
                feature_id="f2",
                first_commit_at=at(4, 8),
                created_at=at(4, 9),
                merged_at=at(4, 11),
                deployment_id="d4",
            ),
            # merge commit c1 is the first deployment of the service: no deployment, no deploy time
            dict(pr_id="p4", created_at=at(1, 8), merged_at=at(1, 9), merge_commit_sha="c1"),
            # never merged
            dict(pr_id="p5", created_at=at(1, 8), state="open"),
        ]
    ).with_columns(
        pl.lit("shop").alias("repo"),
        pl.lit("human").alias("author_kind"),
        pl.lit("t1").alias("team_id"),
        pl.col("state").fill_null("merged"),
    ),
).lazy()

INCIDENTS = coerce(
    "incidents",
    pl.DataFrame(
        [
            # after d2 (15:00): blamed on d2; 150 minutes to resolve
            dict(incident_id="i1", team_id="t1", opened_at=at(2, 16), resolved_at=at(2, 18, 30)),
            # opened exactly when d3 finished: strictly before means d2; 60 minutes
            dict(incident_id="i2", team_id="t1", opened_at=at(3, 9), resolved_at=at(3, 10)),
            # after d7, never resolved
            dict(incident_id="i3", team_id="t1", opened_at=at(21, 8)),
            # explicitly linked to d3, but DevLake blames d4 (d5 failed, d6 is staging); 60 minutes
            dict(incident_id="i4", team_id="t1", opened_at=at(6, 13), resolved_at=at(6, 14), deployment_id="d3"),
            # another team with no deployments: tied to nothing
            dict(incident_id="i5", team_id="t2", opened_at=at(10, 8), resolved_at=at(10, 9)),
            # no team: any team's latest deployment, d7; 30 minutes
            dict(incident_id="i6", opened_at=at(20, 13), resolved_at=at(20, 13, 30)),
        ]
    ),
).lazy()

DEVLAKE = DoraSettings()
MEAN = DoraSettings(statistic="mean")
FROM_OPENING = DoraSettings(lead_time_start="pr_opened")
EXPLICIT = DoraSettings(incident_link="explicit")


def one(frame: pl.LazyFrame) -> dict[str, object]:
    rows = frame.collect().to_dicts()
    assert len(rows) == 1
    return rows[0]


def test_defaults_are_devlake_compatible() -> None:
    assert DoraSettings() == DoraSettings(
        statistic="median",
        lead_time_start="first_commit",
        incident_link="devlake",
        recovery_start="deployment_finished",
    )
    with pytest.raises(ValueError, match="statistic"):
        DoraSettings(statistic="p90")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="regular expression"):
        DoraSettings(rework_title_pattern="(unclosed")
    with pytest.raises(ValueError, match="hours"):
        DoraSettings(rework_after_incident_hours=-1)


def test_pr_cycle_time_breakdown() -> None:
    rows = {r["pr_id"]: r for r in pr_cycle_times(PULL_REQUESTS, DEPLOYMENTS).collect().to_dicts()}
    assert set(rows) == {"p1", "p2", "p3", "p4"}
    p1 = rows["p1"]
    assert (p1["coding_minutes"], p1["pickup_minutes"], p1["review_minutes"]) == (120, 60, 1380)
    assert (p1["deploy_minutes"], p1["cycle_minutes"], p1["deployment_id"]) == (180, 1740, "d2")
    assert p1["deployment_link"] == "merge_commit"
    # first review before the PR was opened: pickup is negative, so null
    assert rows["p2"]["pickup_minutes"] is None
    assert rows["p2"]["cycle_minutes"] == 5760
    assert (rows["p3"]["deployment_link"], rows["p3"]["cycle_minutes"]) == ("explicit", 240)
    assert rows["p4"]["deployment_id"] is None and rows["p4"]["deploy_minutes"] is None
    assert rows["p4"]["cycle_minutes"] == 60
    assert "first deployment" in FIRST_DEPLOYMENT_NOTE


def test_commit_ranges_link_prs_to_the_deployment_whose_range_holds_them() -> None:
    deployments = deployments_frame(
        [
            {"deployment_id": "d1", "finished_at": at(2, 10), "commit_sha": "c1"},
            {"deployment_id": "d2", "finished_at": at(2, 15), "commit_sha": "c2"},
        ]
    )
    prs = PULL_REQUESTS.filter(pl.col("pr_id") == "p1").with_columns(pl.lit("m9").alias("merge_commit_sha"))
    ranges = pl.LazyFrame({"old_commit_sha": ["c1"], "new_commit_sha": ["c2"], "commit_sha": ["m9"]})
    row = one(pr_cycle_times(prs, deployments, ranges))
    assert (row["deployment_id"], row["deployment_link"], row["deploy_minutes"]) == ("d2", "commit_range", 180)


def test_feature_cycle_times_median_and_mean() -> None:
    cycle = pr_cycle_times(PULL_REQUESTS, DEPLOYMENTS)
    median = {r["feature_id"]: r for r in feature_cycle_times(cycle).collect().to_dicts()}
    assert median["f1"]["prs"] == 2
    assert median["f1"]["cycle_minutes"] == 1740.0  # lower middle of 1740, 5760
    assert median["f2"]["cycle_minutes"] == 240.0
    mean = {r["feature_id"]: r for r in feature_cycle_times(cycle, "mean").collect().to_dicts()}
    assert mean["f1"]["cycle_minutes"] == 3750.0


def test_deployment_frequency_median_and_mean_of_weekly_deployment_days() -> None:
    median = one(deployment_frequency(DEPLOYMENTS, DEVLAKE))
    assert median["value"] == 1.0  # weeks 3, 0, 1
    assert median["bucket"] == "high"
    assert median["sample_size"] == 5
    assert median["benchmark"] == DORA_2023["deployment_frequency"][1].definition
    assert "empty weeks count as 0" in median["definition"]
    assert one(deployment_frequency(DEPLOYMENTS, MEAN))["value"] == pytest.approx(4 / 3)


@pytest.mark.parametrize(
    ("days", "bucket"),
    [
        ([date(2026, 3, 2) + timedelta(days=d) for d in (0, 1, 2, 3, 4, 7, 8, 9, 10, 11)], "elite"),
        ([date(2026, 1, 5), date(2026, 3, 30)], "medium"),  # months 1, 0, 1: median 1 per month
        ([date(2026, 1, 5), date(2026, 4, 6)], "low"),  # months 1, 0, 0, 1: lower median 0
    ],
)
def test_deployment_frequency_buckets(days: list[date], bucket: str) -> None:
    deployments = deployments_frame(
        [
            {"deployment_id": f"d{i}", "finished_at": datetime.combine(d, datetime.min.time())}
            for i, d in enumerate(days)
        ]
    )
    assert one(deployment_frequency(deployments))["bucket"] == bucket


def test_empty_weeks_count_as_zero_within_the_chosen_period() -> None:
    # weeks of 23 Feb .. 30 Mar: 0, 3, 0, 1, 0, 0 -> lower median 0, monthly (Feb 0, Mar 4) -> 0 -> low
    row = one(deployment_frequency(DEPLOYMENTS, DEVLAKE, start=date(2026, 2, 23), end=date(2026, 4, 5)))
    assert (row["value"], row["bucket"]) == (0.0, "low")


def test_lead_time_for_changes_switches_statistic_and_start() -> None:
    # from first commit: 1740, 5760, 240 (p4 never reached a deployment)
    median = one(lead_time_for_changes(PULL_REQUESTS, DEPLOYMENTS, DEVLAKE))
    assert (median["value"], median["sample_size"], median["bucket"]) == (1740.0, 3, "high")
    assert one(lead_time_for_changes(PULL_REQUESTS, DEPLOYMENTS, MEAN))["value"] == 2580.0
    # from PR opened: 1620, 1440, 180 -> 1440 is one full day, so high rather than elite
    opened = one(lead_time_for_changes(PULL_REQUESTS, DEPLOYMENTS, FROM_OPENING))
    assert (opened["value"], opened["bucket"]) == (1440.0, "high")
    assert "opened" in opened["definition"]


def test_lead_time_period_follows_the_deployment_finish() -> None:
    row = one(lead_time_for_changes(PULL_REQUESTS, DEPLOYMENTS, DEVLAKE, start=date(2026, 3, 3), end=date(2026, 3, 4)))
    assert (row["value"], row["sample_size"]) == (240.0, 2)  # p2 (5760) via d3, p3 (240) via d4


def test_incidents_tie_to_the_latest_earlier_deployment_or_the_explicit_link() -> None:
    devlake = dict(
        incident_deployments(INCIDENTS, DEPLOYMENTS, DEVLAKE).select("incident_id", "deployment_id").collect().rows()
    )
    assert devlake == {"i1": "d2", "i2": "d2", "i3": "d7", "i4": "d4", "i6": "d7"}
    explicit = dict(
        incident_deployments(INCIDENTS, DEPLOYMENTS, EXPLICIT).select("incident_id", "deployment_id").collect().rows()
    )
    assert explicit == {"i4": "d3"}


def test_change_failure_rate_under_both_incident_links() -> None:
    # DevLake: d2, d4, d7 of d1, d2, d3, d4, d7 have incidents
    devlake = one(change_failure_rate(DEPLOYMENTS, INCIDENTS, DEVLAKE))
    assert (devlake["value"], devlake["sample_size"], devlake["bucket"]) == (0.6, 5, "low")
    assert one(change_failure_rate(DEPLOYMENTS, INCIDENTS, EXPLICIT))["value"] == 0.2


@pytest.mark.parametrize(("failed", "bucket"), [(1, "elite"), (2, "high"), (3, "medium"), (4, "low")])
def test_change_failure_rate_buckets(failed: int, bucket: str) -> None:
    deployments = deployments_frame([{"deployment_id": f"d{i}", "finished_at": at(1 + i, 12)} for i in range(20)])
    incidents = pl.LazyFrame(
        {"incident_id": [f"i{i}" for i in range(failed)], "deployment_id": [f"d{i}" for i in range(failed)]}
    ).with_columns(pl.lit(at(25, 12)).alias("opened_at"), pl.lit(None, dtype=pl.Datetime("us")).alias("resolved_at"))
    row = one(change_failure_rate(deployments, incidents, EXPLICIT))
    assert row["value"] == pytest.approx(failed / 20)
    assert row["bucket"] == bucket


def test_failed_deployment_recovery_time_as_devlake_from_the_deployment_finish() -> None:
    # DevLake: deployment finish -> resolved. i1: d2 2 Mar 15:00 -> 18:30 = 210; i2: d2 -> 3 Mar 10:00 = 1140;
    # i4: d4 4 Mar 12:00 -> 6 Mar 14:00 = 3000; i6: d7 20 Mar 12:00 -> 13:30 = 90. Lower median 210, mean 1110.
    median = one(failed_deployment_recovery_time(DEPLOYMENTS, INCIDENTS, DEVLAKE))
    assert (median["value"], median["sample_size"], median["bucket"]) == (210.0, 4, "high")
    assert "finish of the deployment" in median["definition"] and "DevLake" in median["definition"]
    assert one(failed_deployment_recovery_time(DEPLOYMENTS, INCIDENTS, MEAN))["value"] == 1110.0
    # explicit: only i4, tied to d3 (3 Mar 09:00) -> 6 Mar 14:00 = 4620
    assert one(failed_deployment_recovery_time(DEPLOYMENTS, INCIDENTS, EXPLICIT))["value"] == 4620.0
    # the period is the resolution date: only i4 was resolved on 6 March
    sixth = one(failed_deployment_recovery_time(DEPLOYMENTS, INCIDENTS, DEVLAKE, date(2026, 3, 6), date(2026, 3, 6)))
    assert (sixth["value"], sixth["sample_size"]) == (3000.0, 1)


def test_failed_deployment_recovery_time_from_the_incident_opening_is_a_setting() -> None:
    opened = DoraSettings(recovery_start="incident_opened")
    # opened -> resolved: i1 150, i2 60, i4 60, i6 30 -> lower median 60, mean 75
    median = one(failed_deployment_recovery_time(DEPLOYMENTS, INCIDENTS, opened))
    assert (median["value"], median["sample_size"]) == (60.0, 4)
    assert "incident opening" in median["definition"] and "alternative" in median["definition"]
    # the period is the deployment's finish: d4 finished 4 March, so i4 (60) counts there, not on the 6th
    fourth = one(failed_deployment_recovery_time(DEPLOYMENTS, INCIDENTS, opened, date(2026, 3, 4), date(2026, 3, 4)))
    assert (fourth["value"], fourth["sample_size"]) == (60.0, 1)


def test_dora_measures_has_one_row_per_measure_with_its_definition() -> None:
    frame = dora_measures(DEPLOYMENTS, PULL_REQUESTS, INCIDENTS).collect()
    assert frame["measure"].to_list() == [
        "deployment_frequency",
        "lead_time_for_changes",
        "change_failure_rate",
        "failed_deployment_recovery_time",
        "deployment_rework_rate",
    ]
    assert frame["definition"].null_count() == 0
    assert frame["benchmark"].null_count() == 1  # DORA publishes no buckets for rework rate


def test_weekly_trend_keeps_empty_weeks() -> None:
    trend = dora_trend(DEPLOYMENTS, PULL_REQUESTS, INCIDENTS).collect()
    weeks = [date(2026, 3, 2), date(2026, 3, 9), date(2026, 3, 16)]
    frequency = trend.filter(pl.col("measure") == "deployment_frequency")
    assert frequency["period_start"].to_list() == weeks
    assert frequency["value"].to_list() == [3.0, 0.0, 1.0]
    failure = trend.filter(pl.col("measure") == "change_failure_rate")
    assert failure["value"].to_list() == [0.5, None, 1.0]
    monthly = dora_trend(DEPLOYMENTS, PULL_REQUESTS, INCIDENTS, every="month").collect()
    assert monthly.filter(pl.col("measure") == "deployment_frequency")["value"].to_list() == [4.0]


def test_no_deployments_gives_empty_measures_not_errors() -> None:
    nothing = DEPLOYMENTS.filter(pl.lit(False))
    frame = dora_measures(nothing, PULL_REQUESTS, INCIDENTS).collect()
    assert frame["value"].to_list()[1:] == [None, None, None, None]
    assert frame["sample_size"].to_list() == [0, 0, 0, 0, 0]


# Rework: one team, service api, repo shop. P1 ships two repos (one run); P2 ships a hotfix PR, P3 a revert branch,
# P4 redeploys c1 (first shipped by P1), P5 finishes 4 h after incident k1 opened, P6 52 h after it; P7 is staging.
REWORK_DEPLOYMENTS = deployments_frame(
    [
        {"deployment_id": "r1a", "pipeline_id": "P1", "finished_at": at(1, 10), "commit_sha": "c1"},
        {"deployment_id": "r1b", "pipeline_id": "P1", "repo": "web", "finished_at": at(1, 10, 5), "commit_sha": "w1"},
        {"deployment_id": "r2", "pipeline_id": "P2", "finished_at": at(2, 10), "commit_sha": "c2"},
        {"deployment_id": "r3", "pipeline_id": "P3", "finished_at": at(3, 10), "commit_sha": "c3"},
        {"deployment_id": "r4", "pipeline_id": "P4", "finished_at": at(4, 10), "commit_sha": "c1"},
        {"deployment_id": "r5", "pipeline_id": "P5", "finished_at": at(5, 12), "commit_sha": "c5"},
        {"deployment_id": "r6", "pipeline_id": "P6", "finished_at": at(7, 12), "commit_sha": "c6"},
        {
            "deployment_id": "r7",
            "pipeline_id": "P7",
            "finished_at": at(8, 12),
            "commit_sha": "c7",
            "environment": "staging",
        },
        {"deployment_id": "r8", "pipeline_id": "P8", "finished_at": at(8, 13), "commit_sha": "c8", "environment": None},
    ]
)
REWORK_PRS = coerce(
    "pull_requests",
    pl.DataFrame(
        [
            dict(pr_id="q1", title="Hotfix: checkout crash", branch="fix-checkout", deployment_id="r2"),
            dict(pr_id="q2", title="Undo pricing change", branch="revert/123", deployment_id="r3"),
            dict(pr_id="q3", title="Add search", branch="feature/search", deployment_id="r6"),
        ]
    ).with_columns(
        pl.lit("shop").alias("repo"),
        pl.lit("human").alias("author_kind"),
        pl.lit("t1").alias("team_id"),
        pl.lit("merged").alias("state"),
        pl.lit(at(1, 8)).alias("created_at"),
        pl.lit(at(1, 9)).alias("merged_at"),
    ),
).lazy()
REWORK_INCIDENTS = coerce(
    "incidents", pl.DataFrame([dict(incident_id="k1", team_id="t1", opened_at=at(5, 8), resolved_at=at(5, 13))])
).lazy()


def test_deployment_rework_rate_marks_hotfixes_reverts_rollbacks_and_fixes_after_an_incident() -> None:
    marked = {
        r["deployment_id"]: r
        for r in deployment_rework(REWORK_DEPLOYMENTS, REWORK_PRS, REWORK_INCIDENTS).collect().to_dicts()
    }
    assert sorted(marked) == ["P1", "P2", "P3", "P4", "P5", "P6"]  # one per run; staging and no-environment left out
    assert [k for k, r in sorted(marked.items()) if r["rework"]] == ["P2", "P3", "P4", "P5"]
    assert "q1" in marked["P2"]["reason"] and "title" in marked["P2"]["reason"]
    assert "q2" in marked["P3"]["reason"] and "branch" in marked["P3"]["reason"]
    assert "c1" in marked["P4"]["reason"] and "P1" in marked["P4"]["reason"]
    assert "4.0 h after incident k1" in marked["P5"]["reason"]
    row = one(deployment_rework_rate(REWORK_DEPLOYMENTS, REWORK_PRS, REWORK_INCIDENTS))
    assert (row["value"], row["sample_size"], row["bucket"]) == (pytest.approx(4 / 6), 6, None)
    assert "hotfix" in row["definition"] and "24 h" in row["definition"]
    # rules are settings: no redeploy or incident rule leaves the two PRs (2 of 6); a 72 h window adds P6 (52 h)
    only_prs = DoraSettings(rework_redeploys=False, rework_after_incident_hours=0)
    assert one(deployment_rework_rate(REWORK_DEPLOYMENTS, REWORK_PRS, REWORK_INCIDENTS, only_prs))["value"] == (
        pytest.approx(2 / 6)
    )
    wide = DoraSettings(rework_after_incident_hours=72)
    assert one(deployment_rework_rate(REWORK_DEPLOYMENTS, REWORK_PRS, REWORK_INCIDENTS, wide))["value"] == (
        pytest.approx(5 / 6)
    )
    assert (
        "redeployed"
        not in one(deployment_rework_rate(REWORK_DEPLOYMENTS, REWORK_PRS, REWORK_INCIDENTS, only_prs))["definition"]
    )


def test_a_run_with_several_repos_counts_once_for_frequency_and_failure_rate() -> None:
    # P1..P6 are six runs over seven production rows; k1 (5 Mar 08:00) is tied to r4 (P4, 4 Mar 10:00)
    frequency = one(deployment_frequency(REWORK_DEPLOYMENTS))
    assert frequency["sample_size"] == 6
    failure = one(change_failure_rate(REWORK_DEPLOYMENTS, REWORK_INCIDENTS))
    assert (failure["value"], failure["sample_size"]) == (pytest.approx(1 / 6), 6)


def test_mapping_check_says_why_each_deployment_incident_and_pr_was_read_so() -> None:
    check = {k: f.collect() for k, f in mapping_check(REWORK_DEPLOYMENTS, REWORK_PRS, REWORK_INCIDENTS).items()}
    reasons = dict(check["deployments"].select("deployment_id", "reason").rows())
    counted = dict(check["deployments"].select("deployment_id", "counted").rows())
    assert counted == {**{d: True for d in ("r1a", "r1b", "r2", "r3", "r4", "r5", "r6")}, "r7": False, "r8": False}
    assert reasons["r7"] == "not counted: its environment is not production"
    assert "no environment" in reasons["r8"]
    incident = check["incidents"].row(0, named=True)
    assert (incident["incident_id"], incident["deployment_id"], incident["deployment_group"]) == ("k1", "r4", "P4")
    assert "before it opened" in incident["reason"]
    shipped = dict(check["prs"].select("pr_id", "deployment_group").rows())
    assert shipped == {"q1": "P2", "q2": "P3", "q3": "P6"}

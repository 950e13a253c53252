"""DORA measures and the PR cycle-time breakdown, DevLake-compatible by default.

Every function is pure over LazyFrames of the canonical model (see ``core.model.schema``).
Stage 1 turns fact tables into one row per PR, deployment or incident (``pr_cycle_times``,
``production_deployments``, ``incident_deployments`` ...); stage 2 reduces those facts to the
DORA measures (the four of 2023 plus 2025's deployment rework rate), their elite/high/medium/low
buckets and a weekly or monthly trend. A deployment is one row per deployment run × repo; rows
sharing a ``pipeline_id`` are one deployment for frequency, failure and rework rates (as DevLake).

Spans are whole minutes rounded up and a negative span is null, as in Apache DevLake. The
statistic, the lead-time start point and how incidents are tied to deployments are
switchable through ``DoraSettings``; its defaults reproduce DevLake. ``mapping_check`` says,
row by row, which deployments counted, which deployment each incident and PR was tied to, and why.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import ClassVar, Literal

import polars as pl

Statistic = Literal["median", "mean"]
LeadTimeStart = Literal["first_commit", "pr_opened"]
IncidentLink = Literal["devlake", "explicit"]
RecoveryStart = Literal["deployment_finished", "incident_opened"]
TrendPeriod = Literal["week", "month"]

PRODUCTION_ENVIRONMENTS = ("production", "prod")
"""Environment names (any case) that count as production."""

ENGINE = "in-memory"
"""The Polars engine to collect the DORA measures on: their plans (as-of joins, per-period windows over
50k deployments) run in about two thirds of the streaming engine's time at size L (0.27 against 0.39 s)."""

FIRST_DEPLOYMENT_NOTE = (
    "A PR's deployment is inferred from the range between two consecutive successful production deployments, "
    "so PRs shipped by the very first deployment of a service/repo have no deploy time (as in DevLake)."
)
"""One line for the UI beside deploy time and lead time."""

MEASURES = (
    "deployment_frequency",
    "lead_time_for_changes",
    "change_failure_rate",
    "failed_deployment_recovery_time",
    "deployment_rework_rate",
)

UNITS = {
    "deployment_frequency": "deployment days per week",
    "lead_time_for_changes": "minutes",
    "change_failure_rate": "share of deployments",
    "failed_deployment_recovery_time": "minutes",
    "deployment_rework_rate": "share of deployments",
}


@dataclass(frozen=True)
class Benchmark:
    """One DORA 2023 performance bucket: its name, numeric bound and the report's wording."""

    bucket: str
    bound: float
    definition: str


DORA_2023: dict[str, tuple[Benchmark, ...]] = {
    # value >= bound (elite, high: deployment days per week; medium: deployment days per month)
    "deployment_frequency": (
        Benchmark("elite", 5, "On-demand (median of 5 or more deployment days per week)"),
        Benchmark("high", 1, "Between once per day and once per week (at least 1 deployment day per week)"),
        Benchmark("medium", 1, "Between once per week and once per month (at least 1 deployment day per month)"),
        Benchmark("low", 0, "Fewer than once per month"),
    ),
    # value < bound, in minutes
    "lead_time_for_changes": (
        Benchmark("elite", 24 * 60, "Less than one day"),
        Benchmark("high", 7 * 24 * 60, "Between one day and one week"),
        Benchmark("medium", 30 * 24 * 60, "Between one week and one month"),
        Benchmark("low", math.inf, "More than one month"),
    ),
    # value <= bound, as a share of deployments
    "change_failure_rate": (
        Benchmark("elite", 0.05, "0-5%"),
        Benchmark("high", 0.10, "5%-10%"),
        Benchmark("medium", 0.15, "10%-15%"),
        Benchmark("low", math.inf, "> 15%"),
    ),
    # value < bound, in minutes
    "failed_deployment_recovery_time": (
        Benchmark("elite", 60, "Less than one hour"),
        Benchmark("high", 24 * 60, "Less than one day"),
        Benchmark("medium", 7 * 24 * 60, "Between one day and one week"),
        Benchmark("low", math.inf, "More than one week"),
    ),
}
"""DORA 2023 (State of DevOps) buckets with the thresholds DevLake applies to them."""


@dataclass(frozen=True)
class DoraSettings:
    """Switchable DORA definitions; the defaults are DevLake's."""

    GROUP: ClassVar[str] = "dora"
    """The name these settings are kept under in the workspace."""

    statistic: Statistic = "median"
    lead_time_start: LeadTimeStart = "first_commit"
    incident_link: IncidentLink = "devlake"
    recovery_start: RecoveryStart = "deployment_finished"
    """DevLake: deployment finish → incident resolved, by resolution date; else incident opened → resolved."""
    rework_title_pattern: str = r"(?i)\b(hot-?fix|revert|roll-?back)\b"
    """A PR whose title matches (regular expression) is an unplanned fix."""
    rework_branch_pattern: str = r"(?i)^(hot-?fix|revert|roll-?back)[/_-]"
    """A PR whose branch matches (regular expression) is an unplanned fix."""
    rework_redeploys: bool = True
    """A deployment of a commit that was already in production (a rollback) is rework."""
    rework_after_incident_hours: float = 24.0
    """A deployment finishing within this many hours after an incident of its team opened is rework (0: off)."""

    def __post_init__(self) -> None:
        for name, allowed in (
            ("statistic", ("median", "mean")),
            ("lead_time_start", ("first_commit", "pr_opened")),
            ("incident_link", ("devlake", "explicit")),
            ("recovery_start", ("deployment_finished", "incident_opened")),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(f"DoraSettings.{name} must be one of {', '.join(allowed)}")
        for name in ("rework_title_pattern", "rework_branch_pattern"):
            try:
                re.compile(getattr(self, name))
            except (re.error, TypeError) as error:
                raise ValueError(f"DoraSettings.{name} is not a regular expression: {error}") from None
        hours = self.rework_after_incident_hours
        if isinstance(hours, bool) or not isinstance(hours, int | float) or not 0 <= hours <= 24 * 30:
            raise ValueError("DoraSettings.rework_after_incident_hours must be a number of hours from 0 to 720")

    def rework_rules(self) -> list[str]:
        """The rules in force that mark a deployment as rework, in words for the UI."""
        rules = [
            f"it shipped a PR whose title matches `{self.rework_title_pattern}` (hotfix, revert)",
            f"it shipped a PR whose branch matches `{self.rework_branch_pattern}`",
        ]
        if self.rework_redeploys:
            rules.append("it redeployed a commit already in production (a rollback)")
        if self.rework_after_incident_hours > 0:
            rules.append(
                f"it finished within {self.rework_after_incident_hours:g} h after an incident of its team opened"
            )
        return rules

    def definitions(self) -> dict[str, str]:
        """How each measure is computed under these settings, in words for the UI."""
        stat = (
            "median (the lower middle value when the count is even, as DevLake)"
            if self.statistic == "median"
            else "mean"
        )
        start = "the PR's first commit" if self.lead_time_start == "first_commit" else "the PR being opened"
        link = (
            "the latest successful production deployment of the same team that finished before the incident opened"
            if self.incident_link == "devlake"
            else "the deployment named on the incident"
        )
        return {
            "deployment_frequency": (
                f"The {stat} over calendar weeks (Monday to Sunday, empty weeks count as 0) of the number of "
                "distinct days with at least one successful production deployment."
            ),
            "lead_time_for_changes": (
                f"The {stat} time from {start} to the finish of the successful production deployment that "
                "shipped it, over merged PRs whose deployment finished in the period. " + FIRST_DEPLOYMENT_NOTE
            ),
            "change_failure_rate": (
                "Successful production deployments with at least one incident tied to them, divided by all "
                f"successful production deployments in the period. An incident is tied to {link}."
            ),
            "failed_deployment_recovery_time": (
                f"The {stat} time from the finish of the deployment an incident is tied to until the incident was "
                "resolved, over incidents resolved in the period (DevLake's definition). "
                f"An incident is tied to {link}."
                if self.recovery_start == "deployment_finished"
                else f"The {stat} time from an incident opening to its resolution, over resolved incidents tied to "
                f"a deployment that finished in the period (Throughline's alternative). An incident is tied to {link}."
            ),
            "deployment_rework_rate": (
                "Successful production deployments that were unplanned fixes for a failure in production, divided "
                "by all successful production deployments in the period (DORA 2025). A deployment is rework when "
                + "; or ".join(self.rework_rules())
                + "."
            ),
        }


def deployments_from_pipelines(
    pipelines: pl.LazyFrame, tasks: pl.LazyFrame, pipeline_commits: pl.LazyFrame
) -> pl.LazyFrame:
    """CI pipeline runs that count as deployments, one row per pipeline and repo (DevLake's rule).

    ``pipelines``: pipeline_id, service, result, type, environment, duration_sec, finished_at;
    ``tasks``: pipeline_id, type, environment, result; ``pipeline_commits``: pipeline_id, repo,
    commit_sha. A pipeline is a deployment when its result is success or failure and either its
    own type or one of its non-skipped tasks is a deployment. An empty environment is taken from
    its non-skipped tasks (production before staging before testing). Returns deployment_id
    (``pipeline_id:repo``), pipeline_id, service, repo, environment, status, started_at,
    finished_at, commit_sha; started_at is finished_at less the duration.
    """
    not_skipped = pl.col("result").str.to_uppercase().is_in(["SUCCESS", "FAILURE"])
    task_flags = (
        tasks.filter(not_skipped)
        .group_by("pipeline_id")
        .agg(
            (pl.col("type").str.to_uppercase() == "DEPLOYMENT").any().alias("_deploy_task"),
            *[
                (pl.col("environment").str.to_uppercase() == env.upper()).any().alias(f"_{env}")
                for env in ("production", "staging", "testing")
            ],
        )
    )
    own_environment = pl.when(pl.col("environment") != "").then(pl.col("environment"))
    return (
        pipelines.filter(not_skipped)
        .join(task_flags, on="pipeline_id", how="left")
        .filter((pl.col("type").str.to_uppercase() == "DEPLOYMENT").fill_null(False) | pl.col("_deploy_task"))
        .join(pipeline_commits.select("pipeline_id", "repo", "commit_sha"), on="pipeline_id", how="inner")
        .select(
            pl.concat_str("pipeline_id", pl.lit(":"), "repo").alias("deployment_id"),
            "pipeline_id",
            "service",
            "repo",
            pl.coalesce(
                own_environment,
                pl.when(pl.col("_production"))
                .then(pl.lit("production"))
                .when(pl.col("_staging"))
                .then(pl.lit("staging"))
                .when(pl.col("_testing"))
                .then(pl.lit("testing")),
            ).alias("environment"),
            pl.col("result").str.to_lowercase().alias("status"),
            (pl.col("finished_at") - pl.duration(microseconds=(pl.col("duration_sec") * 1e6).cast(pl.Int64))).alias(
                "started_at"
            ),
            "finished_at",
            "commit_sha",
        )
    )


def previous_successful_deployments(deployments: pl.LazyFrame) -> pl.LazyFrame:
    """Each deployment with the successful deployment before it of the same service, repo and environment.

    Returns deployment_id, prev_success_deployment_id (null for failures, for deployments without an
    environment and for the first success of a service/repo/environment), ordered by finish time.
    """
    successes = (
        deployments.filter(
            (pl.col("status") == "success")
            & pl.col("finished_at").is_not_null()
            & (pl.col("environment").fill_null("") != "")
        )
        .sort("finished_at", "deployment_id")
        .select(
            "deployment_id",
            pl.col("deployment_id")
            .shift(1)
            .over(["service", "repo", "environment"])
            .alias("prev_success_deployment_id"),
        )
    )
    return deployments.select("deployment_id").join(successes, on="deployment_id", how="left")


def link_pull_requests_to_deployments(
    pull_requests: pl.LazyFrame,
    deployments: pl.LazyFrame,
    commit_ranges: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """The deployment that shipped each merged PR, and how that was established.

    An explicit ``pull_requests.deployment_id`` wins. Otherwise the PR goes to the earliest-started
    successful production deployment that has a previous successful deployment (a
    ``prev_success_deployment_id`` column on ``deployments``, as a DevLake database holds it, wins over
    the one worked out here) and whose commit range contains the PR's merge commit: with
    ``commit_ranges`` (old_commit_sha, new_commit_sha, commit_sha: every commit between two deployed
    commits, like DevLake's commits_diffs) the range runs from the
    previous deployment's commit to this one's; without it, only a deployment of the merge commit
    itself matches. Returns pr_id, deployment_id, deployment_link ('explicit', 'commit_range',
    'merge_commit' or null).
    """
    previous = previous_successful_deployments(deployments)
    if "prev_success_deployment_id" in deployments.collect_schema():
        given = deployments.select("deployment_id", pl.col("prev_success_deployment_id").alias("_given"))
        previous = previous.join(given, on="deployment_id", how="left").select(
            "deployment_id", pl.coalesce("_given", "prev_success_deployment_id").alias("prev_success_deployment_id")
        )
    eligible = (
        production_deployments(deployments)
        .join(previous, on="deployment_id", how="inner")
        .filter(pl.col("prev_success_deployment_id").is_not_null())
        .join(
            deployments.select(
                pl.col("deployment_id").alias("prev_success_deployment_id"),
                pl.col("commit_sha").alias("prev_commit_sha"),
            ),
            on="prev_success_deployment_id",
            how="left",
        )
    )
    if commit_ranges is None:
        shipped = eligible.select(pl.col("commit_sha").alias("merge_commit_sha"), "deployment_id", "started_at")
        how = "merge_commit"
    else:
        shipped = eligible.join(
            commit_ranges.select("old_commit_sha", "new_commit_sha", "commit_sha"),
            left_on=["commit_sha", "prev_commit_sha"],
            right_on=["new_commit_sha", "old_commit_sha"],
            how="inner",
        ).select(pl.col("commit_sha_right").alias("merge_commit_sha"), "deployment_id", "started_at")
        how = "commit_range"
    first_shipped = shipped.group_by("merge_commit_sha").agg(
        pl.col("deployment_id").sort_by("started_at", "deployment_id").first().alias("_inferred")
    )
    return (
        pull_requests.filter(pl.col("merged_at").is_not_null())
        .select("pr_id", "merge_commit_sha", "deployment_id")
        .join(first_shipped, on="merge_commit_sha", how="left")
        .select(
            "pr_id",
            pl.coalesce("deployment_id", "_inferred").alias("deployment_id"),
            pl.when(pl.col("deployment_id").is_not_null())
            .then(pl.lit("explicit"))
            .when(pl.col("_inferred").is_not_null())
            .then(pl.lit(how))
            .alias("deployment_link"),
        )
    )


def pr_cycle_times(
    pull_requests: pl.LazyFrame,
    deployments: pl.LazyFrame,
    commit_ranges: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """DevLake's cycle-time breakdown for every merged PR, in whole minutes.

    coding = first commit → opened; pickup = opened → first review; review = first review → merged;
    open = opened → merged; deploy = merged → finish of the deployment that shipped it;
    cycle = coding + open + deploy, a missing part counting as 0. Returns pr_id, repo, team_id,
    feature_id, deployment_id, deployment_link, first_commit_at, created_at, first_review_at,
    merged_at, deployed_at, coding_minutes, pickup_minutes, review_minutes, open_minutes,
    deploy_minutes, cycle_minutes.
    """
    links = link_pull_requests_to_deployments(pull_requests, deployments, commit_ranges)
    finished = deployments.select("deployment_id", pl.col("finished_at").alias("deployed_at"))
    parts = {
        "coding_minutes": _minutes("first_commit_at", "created_at"),
        "pickup_minutes": _minutes("created_at", "first_review_at"),
        "review_minutes": _minutes("first_review_at", "merged_at"),
        "open_minutes": _minutes("created_at", "merged_at"),
        "deploy_minutes": _minutes("merged_at", "deployed_at"),
    }
    return (
        pull_requests.filter(pl.col("merged_at").is_not_null())
        .select(
            "pr_id", "repo", "team_id", "feature_id", "first_commit_at", "created_at", "first_review_at", "merged_at"
        )
        .join(links, on="pr_id", how="left")
        .join(finished, on="deployment_id", how="left")
        .with_columns(**parts)
        .with_columns(
            pl.sum_horizontal(
                pl.col("coding_minutes").fill_null(0),
                pl.col("open_minutes").fill_null(0),
                pl.col("deploy_minutes").fill_null(0),
            ).alias("cycle_minutes")
        )
        .select(
            "pr_id",
            "repo",
            "team_id",
            "feature_id",
            "deployment_id",
            "deployment_link",
            "first_commit_at",
            "created_at",
            "first_review_at",
            "merged_at",
            "deployed_at",
            *parts,
            "cycle_minutes",
        )
    )


def feature_cycle_times(cycle_times: pl.LazyFrame, statistic: Statistic = "median") -> pl.LazyFrame:
    """Per feature, the median (or mean) of each cycle-time part over its merged PRs.

    Takes ``pr_cycle_times`` output. Returns feature_id, prs, first_commit_at, last_merged_at,
    last_deployed_at, coding_minutes, pickup_minutes, review_minutes, deploy_minutes, cycle_minutes.
    """
    parts = ("coding_minutes", "pickup_minutes", "review_minutes", "deploy_minutes", "cycle_minutes")
    return (
        cycle_times.filter(pl.col("feature_id").is_not_null())
        .group_by("feature_id")
        .agg(
            pl.len().alias("prs"),
            pl.col("first_commit_at").min(),
            pl.col("merged_at").max().alias("last_merged_at"),
            pl.col("deployed_at").max().alias("last_deployed_at"),
            *[_statistic(pl.col(p), statistic).alias(p) for p in parts],
        )
        .sort("feature_id")
    )


def production_deployments(deployments: pl.LazyFrame) -> pl.LazyFrame:
    """The deployment rows DORA counts: successful, to production, finished.

    Returns deployment_id, deployment_group (its ``pipeline_id``, else itself), team_id, service, repo,
    commit_sha, started_at, finished_at, day.
    """
    group = pl.col("pipeline_id") if "pipeline_id" in deployments.collect_schema() else pl.lit(None, pl.String)
    return deployments.filter(
        (pl.col("status") == "success")
        & pl.col("environment").str.to_lowercase().is_in(PRODUCTION_ENVIRONMENTS)
        & pl.col("finished_at").is_not_null()
    ).select(
        "deployment_id",
        pl.coalesce(group, pl.col("deployment_id")).alias("deployment_group"),
        "team_id",
        "service",
        "repo",
        "commit_sha",
        "started_at",
        "finished_at",
        pl.col("finished_at").dt.date().alias("day"),
    )


def production_deployment_groups(deployments: pl.LazyFrame) -> pl.LazyFrame:
    """One row per deployment as DORA counts it: the rows of one run, dated by their latest finish (DevLake).

    Returns deployment_id (the group), team_id, finished_at, day, rows.
    """
    return (
        production_deployments(deployments)
        .group_by("deployment_group")
        .agg(
            pl.col("team_id").drop_nulls().min(),
            pl.col("finished_at").max(),
            pl.len().cast(pl.UInt32).alias("rows"),
        )
        .select(
            pl.col("deployment_group").alias("deployment_id"),
            "team_id",
            "finished_at",
            pl.col("finished_at").dt.date().alias("day"),
            "rows",
        )
        .sort("finished_at", "deployment_id")
    )


def incident_deployments(
    incidents: pl.LazyFrame, deployments: pl.LazyFrame, settings: DoraSettings = DoraSettings()
) -> pl.LazyFrame:
    """The deployment each incident is blamed on; incidents tied to none are left out.

    'devlake': the successful production deployment with the latest finish strictly before the
    incident opened, within the incident's team (any team when the incident has none).
    'explicit': ``incidents.deployment_id``. Returns incident_id, opened_at, resolved_at, deployment_id.
    """
    columns = ("incident_id", "opened_at", "resolved_at", "deployment_id")
    if settings.incident_link == "explicit":
        return incidents.filter(pl.col("deployment_id").is_not_null()).select(columns)
    candidates = production_deployments(deployments).select("deployment_id", "team_id", "finished_at")
    candidates = candidates.sort("finished_at", "deployment_id")
    opened = incidents.select("incident_id", "team_id", "opened_at", "resolved_at").sort("opened_at")
    latest_before = {
        "left_on": "opened_at",
        "right_on": "finished_at",
        "strategy": "backward",
        "allow_exact_matches": False,
        "check_sortedness": False,
    }
    within_team = opened.filter(pl.col("team_id").is_not_null()).join_asof(
        candidates.filter(pl.col("team_id").is_not_null()), by="team_id", **latest_before
    )
    any_team = opened.filter(pl.col("team_id").is_null()).join_asof(candidates.drop("team_id"), **latest_before)
    return (
        pl.concat([within_team.select(columns), any_team.select(columns)])
        .filter(pl.col("deployment_id").is_not_null())
        .sort("incident_id")
    )


def deployed_changes(
    pull_requests: pl.LazyFrame,
    deployments: pl.LazyFrame,
    settings: DoraSettings = DoraSettings(),
    commit_ranges: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """Merged PRs that reached a successful production deployment, with their lead time.

    Returns pr_id, team_id, deployment_id, deployed_at, lead_minutes (cycle time from the first
    commit, or open + deploy time from the PR being opened, per ``settings.lead_time_start``).
    """
    lead = (
        pl.col("cycle_minutes")
        if settings.lead_time_start == "first_commit"
        else pl.col("open_minutes").fill_null(0) + pl.col("deploy_minutes").fill_null(0)
    )
    shipped = production_deployments(deployments).select("deployment_id")
    return (
        pr_cycle_times(pull_requests, deployments, commit_ranges)
        .join(shipped, on="deployment_id", how="semi")
        .select("pr_id", "team_id", "deployment_id", "deployed_at", lead.alias("lead_minutes"))
    )


def deployment_failures(
    deployments: pl.LazyFrame, incidents: pl.LazyFrame, settings: DoraSettings = DoraSettings()
) -> pl.LazyFrame:
    """Every successful production deployment (one per run) with the number of incidents tied to it.

    Returns deployment_id (the run), team_id, finished_at, day, incidents, failed.
    """
    tied = (
        incident_deployments(incidents, deployments, settings)
        .join(_group_of(deployments), on="deployment_id", how="inner")
        .group_by("deployment_group")
        .agg(pl.col("incident_id").n_unique().alias("incidents"))
        .rename({"deployment_group": "deployment_id"})
    )
    return (
        production_deployment_groups(deployments)
        .join(tied, on="deployment_id", how="left")
        .select(
            "deployment_id",
            "team_id",
            "finished_at",
            "day",
            pl.col("incidents").fill_null(0).cast(pl.UInt32),
            (pl.col("incidents").fill_null(0) > 0).alias("failed"),
        )
    )


def incident_recoveries(
    deployments: pl.LazyFrame, incidents: pl.LazyFrame, settings: DoraSettings = DoraSettings()
) -> pl.LazyFrame:
    """Resolved incidents tied to a successful production deployment, with their recovery time.

    ``settings.recovery_start`` 'deployment_finished' (DevLake): the deployment run's latest finish →
    resolved, counted in the period of the resolution; 'incident_opened': opened → resolved, counted in
    the period of the deployment's finish. Returns incident_id, deployment_id (the run),
    deployment_finished_at, opened_at, resolved_at, recovery_minutes, counted_at.
    """
    finished = production_deployment_groups(deployments).select(
        pl.col("deployment_id").alias("deployment_group"), pl.col("finished_at").alias("deployment_finished_at")
    )
    devlake = settings.recovery_start == "deployment_finished"
    return (
        incident_deployments(incidents, deployments, settings)
        .filter(pl.col("resolved_at").is_not_null())
        .join(_group_of(deployments), on="deployment_id", how="inner")
        .join(finished, on="deployment_group", how="inner")
        .select(
            "incident_id",
            pl.col("deployment_group").alias("deployment_id"),
            "deployment_finished_at",
            "opened_at",
            "resolved_at",
            _minutes("deployment_finished_at" if devlake else "opened_at", "resolved_at").alias("recovery_minutes"),
            pl.col("resolved_at" if devlake else "deployment_finished_at").alias("counted_at"),
        )
    )


def deployment_frequency(
    deployments: pl.LazyFrame,
    settings: DoraSettings = DoraSettings(),
    start: date | None = None,
    end: date | None = None,
) -> pl.LazyFrame:
    """Deployment days per week (median or mean over calendar weeks), one measure row.

    The period defaults to the first to the last deployment day. Returns the measure row layout:
    measure, value, unit, bucket, benchmark, sample_size, definition.
    """
    days = _in_period(production_deployment_groups(deployments), "day", start, end)
    weekly = _calendar(days, "day", "1w", start, end).join(
        days.group_by(pl.col("day").dt.truncate("1w").alias("period_start")).agg(pl.col("day").n_unique().alias("n")),
        on="period_start",
        how="left",
    )
    monthly = _calendar(days, "day", "1mo", start, end).join(
        days.group_by(pl.col("day").dt.truncate("1mo").alias("period_start")).agg(pl.col("day").n_unique().alias("n")),
        on="period_start",
        how="left",
    )
    per_week = weekly.select(_statistic(pl.col("n").fill_null(0), settings.statistic).alias("value"))
    per_month = monthly.select(_statistic(pl.col("n").fill_null(0), settings.statistic).alias("per_month"))
    count = days.select(pl.len().alias("sample_size"))
    elite, high, medium, low = DORA_2023["deployment_frequency"]
    return (
        pl.concat([per_week, per_month, count], how="horizontal")
        .with_columns(
            pl.when(pl.col("value") >= elite.bound)
            .then(pl.lit(elite.bucket))
            .when(pl.col("value") >= high.bound)
            .then(pl.lit(high.bucket))
            .when(pl.col("per_month") >= medium.bound)
            .then(pl.lit(medium.bucket))
            .when(pl.col("per_month").is_not_null())
            .then(pl.lit(low.bucket))
            .alias("bucket")
        )
        .pipe(_measure_row, "deployment_frequency", settings)
    )


def lead_time_for_changes(
    pull_requests: pl.LazyFrame,
    deployments: pl.LazyFrame,
    settings: DoraSettings = DoraSettings(),
    start: date | None = None,
    end: date | None = None,
    commit_ranges: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """Median (or mean) lead time in minutes of PRs deployed in the period, one measure row."""
    changes = _in_period(
        deployed_changes(pull_requests, deployments, settings, commit_ranges), "deployed_at", start, end
    )
    return (
        changes.select(
            _statistic(pl.col("lead_minutes"), settings.statistic).alias("value"),
            pl.len().alias("sample_size"),
        )
        .with_columns(_bucket("lead_time_for_changes", pl.col("value"), inclusive=False))
        .pipe(_measure_row, "lead_time_for_changes", settings)
    )


def change_failure_rate(
    deployments: pl.LazyFrame,
    incidents: pl.LazyFrame,
    settings: DoraSettings = DoraSettings(),
    start: date | None = None,
    end: date | None = None,
) -> pl.LazyFrame:
    """Share of successful production deployments in the period with an incident tied to them, one row."""
    failures = _in_period(deployment_failures(deployments, incidents, settings), "day", start, end)
    return (
        failures.select(
            _failure_share().alias("value"),
            pl.len().alias("sample_size"),
        )
        .with_columns(_bucket("change_failure_rate", pl.col("value"), inclusive=True))
        .pipe(_measure_row, "change_failure_rate", settings)
    )


def failed_deployment_recovery_time(
    deployments: pl.LazyFrame,
    incidents: pl.LazyFrame,
    settings: DoraSettings = DoraSettings(),
    start: date | None = None,
    end: date | None = None,
) -> pl.LazyFrame:
    """Median (or mean) recovery minutes of incidents tied to a deployment, one row (see ``incident_recoveries``)."""
    recoveries = _in_period(incident_recoveries(deployments, incidents, settings), "counted_at", start, end)
    return (
        recoveries.select(
            _statistic(pl.col("recovery_minutes"), settings.statistic).alias("value"),
            pl.col("recovery_minutes").count().alias("sample_size"),
        )
        .with_columns(_bucket("failed_deployment_recovery_time", pl.col("value"), inclusive=False))
        .pipe(_measure_row, "failed_deployment_recovery_time", settings)
    )


def deployment_rework(
    deployments: pl.LazyFrame,
    pull_requests: pl.LazyFrame,
    incidents: pl.LazyFrame,
    settings: DoraSettings = DoraSettings(),
    commit_ranges: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """Every successful production deployment (one per run), whether it was rework and why.

    Rework (DORA 2025): an unplanned deployment to fix a failure in production, marked by the rules of
    ``settings.rework_rules()``. Returns deployment_id (the run), team_id, finished_at, day, rework, reason.
    """
    groups = production_deployment_groups(deployments)
    rows = production_deployments(deployments)
    reasons: list[pl.LazyFrame] = []
    shipped = (
        link_pull_requests_to_deployments(pull_requests, deployments, commit_ranges)
        .filter(pl.col("deployment_id").is_not_null())
        .join(_group_of(deployments), on="deployment_id", how="inner")
    )
    for column, pattern in (("title", settings.rework_title_pattern), ("branch", settings.rework_branch_pattern)):
        # The few PRs whose text marks a fix are found first, so only they are joined to what shipped them
        # (joining every shipped PR's title and branch text cost more than the pattern match itself).
        marked_prs = pull_requests.filter(pl.col(column).str.contains(pattern).fill_null(False))
        reasons.append(
            shipped.join(marked_prs.select("pr_id", column), on="pr_id", how="inner").select(
                "deployment_group",
                pl.format("shipped PR {} whose {} `{}` marks a fix", "pr_id", pl.lit(column), column).alias("reason"),
            )
        )
    if settings.rework_redeploys:
        first = rows.group_by("service", "repo", "commit_sha").agg(
            pl.col("deployment_group").sort_by("finished_at", "deployment_group").first().alias("_first_group"),
            pl.col("finished_at").min().alias("_first_finish"),
        )
        reasons.append(
            rows.filter(pl.col("commit_sha").is_not_null())
            .join(first, on=["service", "repo", "commit_sha"], how="inner", nulls_equal=True)
            .filter(
                (pl.col("_first_group") != pl.col("deployment_group"))
                & (pl.col("finished_at") > pl.col("_first_finish"))
            )
            .select(
                "deployment_group",
                pl.format("redeployed commit {} first shipped by {} (a rollback)", "commit_sha", "_first_group").alias(
                    "reason"
                ),
            )
        )
    hours = settings.rework_after_incident_hours
    if hours > 0:
        opened = incidents.select("incident_id", "team_id", "opened_at").filter(pl.col("opened_at").is_not_null())
        finishes = groups.select(pl.col("deployment_id").alias("deployment_group"), "team_id", "finished_at")
        asof = {
            "left_on": "finished_at",
            "right_on": "opened_at",
            "strategy": "backward",
            "allow_exact_matches": False,
            "check_sortedness": False,
        }
        near = [
            finishes.filter(pl.col("team_id").is_not_null())
            .sort("finished_at")
            .join_asof(opened.filter(pl.col("team_id").is_not_null()).sort("opened_at"), by="team_id", **asof),
            finishes.sort("finished_at").join_asof(
                opened.filter(pl.col("team_id").is_null()).drop("team_id").sort("opened_at"), **asof
            ),
        ]
        for frame in near:
            reasons.append(
                frame.filter(
                    pl.col("opened_at").is_not_null()
                    & (pl.col("finished_at") - pl.col("opened_at") <= pl.duration(seconds=round(hours * 3600)))
                ).select(
                    "deployment_group",
                    pl.format(
                        "finished {} h after incident {} opened",
                        ((pl.col("finished_at") - pl.col("opened_at")).dt.total_minutes() / 60).round(1),
                        "incident_id",
                    ).alias("reason"),
                )
            )
    marked = (
        pl.concat(reasons)
        .unique(maintain_order=True)
        .group_by("deployment_group")
        .agg(pl.col("reason").sort().str.join("; "))
        .rename({"deployment_group": "deployment_id"})
    )
    return groups.join(marked, on="deployment_id", how="left").select(
        "deployment_id", "team_id", "finished_at", "day", pl.col("reason").is_not_null().alias("rework"), "reason"
    )


def deployment_rework_rate(
    deployments: pl.LazyFrame,
    pull_requests: pl.LazyFrame,
    incidents: pl.LazyFrame,
    settings: DoraSettings = DoraSettings(),
    start: date | None = None,
    end: date | None = None,
    commit_ranges: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """Share of successful production deployments in the period that were rework, one measure row (no bucket)."""
    marked = _in_period(
        deployment_rework(deployments, pull_requests, incidents, settings, commit_ranges), "day", start, end
    )
    return (
        marked.select(
            pl.when(pl.len() > 0).then(pl.col("rework").sum() / pl.len()).alias("value"),
            pl.len().alias("sample_size"),
        )
        .with_columns(pl.lit(None, pl.String).alias("bucket"))
        .pipe(_measure_row, "deployment_rework_rate", settings)
    )


def dora_measures(
    deployments: pl.LazyFrame,
    pull_requests: pl.LazyFrame,
    incidents: pl.LazyFrame,
    settings: DoraSettings = DoraSettings(),
    start: date | None = None,
    end: date | None = None,
    commit_ranges: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """The five DORA measures, one row each: measure, value, unit, bucket, benchmark, sample_size, definition."""
    return pl.concat(
        [
            deployment_frequency(deployments, settings, start, end),
            lead_time_for_changes(pull_requests, deployments, settings, start, end, commit_ranges),
            change_failure_rate(deployments, incidents, settings, start, end),
            failed_deployment_recovery_time(deployments, incidents, settings, start, end),
            deployment_rework_rate(deployments, pull_requests, incidents, settings, start, end, commit_ranges),
        ]
    )


def dora_trend(
    deployments: pl.LazyFrame,
    pull_requests: pl.LazyFrame,
    incidents: pl.LazyFrame,
    settings: DoraSettings = DoraSettings(),
    every: TrendPeriod = "week",
    start: date | None = None,
    end: date | None = None,
    commit_ranges: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """Each DORA measure per calendar week or month, every period present.

    Deployment frequency is the number of deployment days in the period (0 when none); the other
    measures are null in a period without data. Returns period_start, measure, value, sample_size.
    """
    interval = "1w" if every == "week" else "1mo"
    days = _in_period(production_deployment_groups(deployments), "day", start, end)
    calendar = _calendar(days, "day", interval, start, end)

    def per_period(frame: pl.LazyFrame, when: str, measure: str, value: pl.Expr, size: pl.Expr) -> pl.LazyFrame:
        rolled = (
            _in_period(frame, when, start, end)
            .group_by(pl.col(when).dt.date().dt.truncate(interval).alias("period_start"))
            .agg(value.cast(pl.Float64).alias("value"), size.cast(pl.UInt32).alias("sample_size"))
        )
        return calendar.join(rolled, on="period_start", how="left").select(
            "period_start", pl.lit(measure).alias("measure"), "value", pl.col("sample_size").fill_null(0)
        )

    return pl.concat(
        [
            per_period(days, "day", "deployment_frequency", pl.col("day").n_unique(), pl.len()).with_columns(
                pl.col("value").fill_null(0.0)
            ),
            per_period(
                deployed_changes(pull_requests, deployments, settings, commit_ranges),
                "deployed_at",
                "lead_time_for_changes",
                _statistic(pl.col("lead_minutes"), settings.statistic),
                pl.len(),
            ),
            per_period(
                deployment_failures(deployments, incidents, settings),
                "day",
                "change_failure_rate",
                _failure_share(),
                pl.len(),
            ),
            per_period(
                incident_recoveries(deployments, incidents, settings),
                "counted_at",
                "failed_deployment_recovery_time",
                _statistic(pl.col("recovery_minutes"), settings.statistic),
                pl.col("recovery_minutes").count(),
            ),
            per_period(
                deployment_rework(deployments, pull_requests, incidents, settings, commit_ranges),
                "day",
                "deployment_rework_rate",
                pl.col("rework").mean(),
                pl.len(),
            ),
        ]
    ).sort("measure", "period_start")


@dataclass(frozen=True)
class CountingRule:
    """One reason a deployment row is or is not counted by DORA, checked in order; the first that holds wins."""

    holds: Callable[[], pl.Expr]
    reason: str
    counted: bool = False


COUNTING_RULES: tuple[CountingRule, ...] = (
    CountingRule(lambda: pl.col("status") != "success", "not counted: the deployment did not succeed"),
    CountingRule(
        lambda: pl.col("environment").is_null() | (pl.col("environment").str.strip_chars() == ""),
        "not counted: no environment is set, so it is not production (as DevLake)",
    ),
    CountingRule(
        lambda: pl.col("environment").str.to_lowercase().str.strip_chars().is_in(PRODUCTION_ENVIRONMENTS).not_(),
        "not counted: its environment is not production",
    ),
    CountingRule(lambda: pl.col("finished_at").is_null(), "not counted: it has no finish time"),
    CountingRule(lambda: pl.lit(True), "counted: successful, to production, finished", counted=True),
)
"""Why a deployment row counts (or not) as a production deployment; the table is the documentation."""


def mapping_check(
    deployments: pl.LazyFrame,
    pull_requests: pl.LazyFrame,
    incidents: pl.LazyFrame,
    settings: DoraSettings = DoraSettings(),
    commit_ranges: pl.LazyFrame | None = None,
) -> dict[str, pl.LazyFrame]:
    """How the data was read: 'deployments' (counted and why), 'incidents' (tied to which run and why), 'prs'."""
    reason: pl.Expr | None = None
    counted: pl.Expr | None = None
    for rule in COUNTING_RULES:
        condition = rule.holds().fill_null(False)
        reason = (
            pl.when(condition).then(pl.lit(rule.reason))
            if reason is None
            else reason.when(condition).then(pl.lit(rule.reason))
        )  # type: ignore[attr-defined]
        counted = (
            pl.when(condition).then(pl.lit(rule.counted))
            if counted is None
            else counted.when(condition).then(pl.lit(rule.counted))
        )  # type: ignore[attr-defined]
    group = pl.col("pipeline_id") if "pipeline_id" in deployments.collect_schema() else pl.lit(None, pl.String)
    rows = deployments.select(
        "deployment_id",
        pl.coalesce(group, pl.col("deployment_id")).alias("deployment_group"),
        "team_id",
        "service",
        "repo",
        "environment",
        "status",
        "finished_at",
        "commit_sha",
        counted.alias("counted"),  # type: ignore[union-attr]
        reason.alias("reason"),  # type: ignore[union-attr]
    ).sort("finished_at", "deployment_id", nulls_last=True)
    tied = incident_deployments(incidents, deployments, settings).select("incident_id", "deployment_id")
    finished = production_deployments(deployments).select(
        "deployment_id", "deployment_group", pl.col("finished_at").alias("deployment_finished_at")
    )
    how = (
        "the latest successful production deployment of its team finished before it opened (DevLake)"
        if settings.incident_link == "devlake"
        else "the deployment named on the incident"
    )
    linked = (
        incidents.select("incident_id", "team_id", "opened_at", "resolved_at")
        .join(tied, on="incident_id", how="left")
        .join(finished, on="deployment_id", how="left")
        .with_columns(
            pl.when(pl.col("deployment_id").is_not_null())
            .then(pl.lit(f"tied to {how}"))
            .when(pl.lit(settings.incident_link == "devlake"))
            .then(pl.lit("tied to none: no successful production deployment of its team finished before it opened"))
            .otherwise(pl.lit("tied to none: it names no successful production deployment"))
            .alias("reason")
        )
        .sort("opened_at", "incident_id")
    )
    link_words = {
        "explicit": "named by the source (the DevLake preset resolves it from commits_diffs)",
        "commit_range": "its merge commit is in the deployment's commit range",
        "merge_commit": "its merge commit is the deployed commit",
    }
    prs = (
        link_pull_requests_to_deployments(pull_requests, deployments, commit_ranges)
        .join(pull_requests.select("pr_id", "title", "merged_at", "merge_commit_sha"), on="pr_id", how="left")
        .join(finished, on="deployment_id", how="left")
        .select(
            "deployment_group",
            "deployment_id",
            "pr_id",
            "title",
            "merged_at",
            "merge_commit_sha",
            pl.col("deployment_link")
            .replace_strict(link_words, default=None, return_dtype=pl.String)
            .fill_null("no successful production deployment shipped it (yet), or it went out with the first one")
            .alias("reason"),
        )
        .sort("deployment_group", "merged_at", "pr_id", nulls_last=True)
    )
    return {"deployments": rows, "incidents": linked, "prs": prs}


def _group_of(deployments: pl.LazyFrame) -> pl.LazyFrame:
    """deployment_id → deployment_group for every production row, and each group for itself."""
    rows = production_deployments(deployments).select("deployment_id", "deployment_group")
    groups = rows.select(pl.col("deployment_group").alias("deployment_id"), "deployment_group")
    return pl.concat([rows, groups]).unique("deployment_id", keep="first", maintain_order=True)


def _minutes(start: str, end: str) -> pl.Expr:
    """Whole minutes from ``start`` to ``end`` rounded up; null when negative (DevLake's computeTimeSpan)."""
    minutes = ((pl.col(end) - pl.col(start)).dt.total_microseconds() / 60_000_000).ceil().cast(pl.Int64)
    return pl.when(minutes >= 0).then(minutes)


def _failure_share() -> pl.Expr:
    """Failed deployments ÷ deployments; null when there are none."""
    return pl.when(pl.len() > 0).then(pl.col("failed").sum() / pl.len())


def _statistic(expr: pl.Expr, statistic: Statistic) -> pl.Expr:
    """The lower median (DevLake's ``percent_rank <= 0.5``) or the mean, as Float64."""
    if statistic == "mean":
        return expr.mean().cast(pl.Float64)
    return expr.quantile(0.5, interpolation="lower").cast(pl.Float64)


def _bucket(measure: str, value: pl.Expr, *, inclusive: bool) -> pl.Expr:
    """The DORA 2023 bucket of a lower-is-better measure; null when there is no value."""
    chain: pl.Expr | None = None
    for benchmark in DORA_2023[measure]:
        condition = value <= benchmark.bound if inclusive else value < benchmark.bound
        chain = (
            pl.when(condition).then(pl.lit(benchmark.bucket))
            if chain is None
            else chain.when(condition).then(pl.lit(benchmark.bucket))  # type: ignore[attr-defined]
        )
    assert chain is not None
    return chain.alias("bucket")


def _measure_row(frame: pl.LazyFrame, measure: str, settings: DoraSettings) -> pl.LazyFrame:
    definitions = {b.bucket: b.definition for b in DORA_2023.get(measure, ())}
    return frame.select(
        pl.lit(measure).alias("measure"),
        pl.col("value").cast(pl.Float64),
        pl.lit(UNITS[measure]).alias("unit"),
        pl.col("bucket").cast(pl.String),
        pl.col("bucket").replace_strict(definitions, default=None, return_dtype=pl.String).alias("benchmark"),
        pl.col("sample_size").cast(pl.UInt32),
        pl.lit(settings.definitions()[measure]).alias("definition"),
    )


def _in_period(frame: pl.LazyFrame, column: str, start: date | None, end: date | None) -> pl.LazyFrame:
    """Rows whose ``column`` falls on a day from ``start`` to ``end`` inclusive."""
    day = pl.col(column).dt.date() if frame.collect_schema()[column] != pl.Date else pl.col(column)
    if start is not None:
        frame = frame.filter(day >= start)
    if end is not None:
        frame = frame.filter(day <= end)
    return frame


def _calendar(days: pl.LazyFrame, column: str, interval: str, start: date | None, end: date | None) -> pl.LazyFrame:
    """Every period start (Monday weeks, first-of-month months) from ``start`` to ``end``, else the data span."""
    first = pl.lit(start) if start is not None else pl.col(column).min()
    last = pl.lit(end) if end is not None else pl.col(column).max()
    return (
        days.select(pl.date_ranges(first.dt.truncate(interval), last, interval).alias("period_start"))
        .explode("period_start")
        .drop_nulls()
    )

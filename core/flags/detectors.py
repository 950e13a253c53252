"""The vanity-flag detectors: one pure function per pattern over the roll-ups, each returning flags (``FLAG_SCHEMA``).

1. ``activity_up_value_flat`` — PRs merged, story points resolved or deployments up on the
   previous window (beyond count noise) while features confirmed and realised value did not rise.
2. ``unlinked_work`` — the share of merged PRs, or of cost, linked to no feature in a window.
3. ``story_point_inflation`` — points per work item up while cycle time and PR size held steady.
4. ``pr_splitting`` — more PRs per delivered feature and smaller PRs; ``agent_churn`` — agent PRs
   rising while fewer of them are merged or linked to a feature.
5. ``leadership_vanity`` — an activity-level metric configured on an executive view or an OKR.
6. ``decoupled_metric`` — an activity or output series rising for weeks (Kendall trend test)
   while no outcome metric of the team's features follows it at any lag (cross-correlation).

Every flag carries its window, the exact numbers behind it (``evidence``, JSON), a sentence with
those numbers and the outcome metric to watch instead. A flag's id is built from the detector,
its subject and its window, so an acknowledgement stays attached to it across recomputes.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from typing import TypeVar

import numpy as np
import polars as pl

from core import stats
from core.flags.rollups import outcomes_to_watch, team_periods, weekly_series
from core.flags.settings import DEFAULT_FLAG_SETTINGS, FlagSettings

DETECTORS: dict[str, str] = {
    "activity_up_value_flat": "Activity up, value flat",
    "unlinked_work": "Unlinked work",
    "story_point_inflation": "Story-point inflation",
    "pr_splitting": "PR splitting",
    "agent_churn": "Agent churn",
    "leadership_vanity": "Activity metric on a leadership view",
    "decoupled_metric": "Metric decoupled from outcomes",
}
"""Every detector id with its label."""

FLAG_SCHEMA = pl.Schema(
    {
        "flag_id": pl.String,
        "detector": pl.String,
        "severity": pl.String,
        "severity_score": pl.Float64,
        "team_id": pl.String,
        "metric_id": pl.String,
        "window_start": pl.Date,
        "window_end": pl.Date,
        "evidence": pl.String,
        "explanation": pl.String,
        "suggestion": pl.String,
        "detected_at": pl.Date,
    }
)
"""The columns of every detector's output; ``evidence`` is a JSON object of the numbers behind the flag."""

FLAG_COLUMNS = tuple(FLAG_SCHEMA.names())

SEVERITY_BANDS: tuple[tuple[str, float], ...] = (("high", 2.0), ("medium", 1.5), ("low", 0.0))
"""A flag's severity from its score: how far past its threshold the evidence lies (1.0 = at it)."""

_ACTIVITY = {
    "prs_merged": "PRs merged",
    "story_points_resolved": "story points resolved",
    "deployments": "production deployments",
}
_VARIANCE = {"prs_merged": "prs_merged", "story_points_resolved": "story_points_var", "deployments": "deployments"}
"""The column holding each activity total's variance under chance alone (a Poisson count is its own variance)."""
_DISPERSED = ("prs_merged", "deployments")
"""The activity counts whose Poisson variance is scaled by their weekly dispersion (``<measure>_chi2``)."""
_FALLBACK_WATCH = "features confirmed per quarter (business value throughput)"

_TREND_DTYPE = pl.Struct({"kendall_tau": pl.Float64, "kendall_p": pl.Float64, "kendall_z": pl.Float64})
_POINTS_PERMUTATIONS = 9999
"""Reassignments of features behind each story-point p-value (all of them when there are fewer)."""
_FOLLOW_PERMUTATIONS = 999
"""Shuffles of a series behind each decoupled-metric p-value (so the smallest is 1/1000)."""

Frame = TypeVar("Frame", pl.DataFrame, pl.LazyFrame)


def detect_all(
    frames: Mapping[str, pl.LazyFrame],
    verdicts: pl.LazyFrame,
    cost_lines: pl.LazyFrame | None = None,
    settings: FlagSettings = DEFAULT_FLAG_SETTINGS,
    as_of: date | None = None,
) -> pl.DataFrame:
    """Every vanity flag as of ``as_of`` (default: today), newest and most severe first.

    ``frames`` holds the canonical entities by name (teams, features, hypotheses, work_items,
    pull_requests, deployments, metrics, metric_observations); ``verdicts`` has feature_id,
    verdict and, when known, metric_id and estimate_abs (or realised_value); ``cost_lines`` are
    attributed cost lines (occurred_at, team_id, feature_id — null when unattributed — and amount).
    """
    as_of = as_of or date.today()
    # The roll-ups are small (a row per team window, per series week, per team) but costly to build
    # from the fact tables, and each detector reads them once or twice (``_period_pairs`` joins the
    # windows to themselves). Collected once together, the fact tables are scanned once for all of
    # them, not once per detector.
    periods, weekly, watch = (
        frame.lazy()
        for frame in pl.collect_all(
            [
                team_periods(frames, verdicts, cost_lines, as_of, settings.window_quarters),
                weekly_series(frames, as_of),
                outcomes_to_watch(frames["features"], frames["hypotheses"], frames["metrics"]),
            ]
        )
    )
    teams = frames["teams"]
    flags = [
        activity_up_value_flat(periods, teams, watch, settings),
        unlinked_work(periods, teams, watch, settings),
        story_point_inflation(periods, teams, watch, settings),
        pr_splitting(periods, teams, watch, settings),
        agent_churn(periods, teams, watch, settings),
        leadership_vanity(frames["metrics"], watch, settings, as_of),
        decoupled_metric(weekly, teams, watch, settings, as_of),
    ]
    return pl.concat(pl.collect_all(flags)).pipe(sort_flags)


def sort_flags(flags: Frame) -> Frame:
    """``flags`` newest first, then most severe, then by id (a stable order)."""
    return flags.sort(["detected_at", "severity_score", "flag_id"], descending=[True, True, False])


def activity_up_value_flat(
    periods: pl.LazyFrame, teams: pl.LazyFrame, watch: pl.LazyFrame, settings: FlagSettings = DEFAULT_FLAG_SETTINGS
) -> pl.LazyFrame:
    """Detector 1: a team's activity up ≥ ``activity_rise`` on the previous window, beyond chance, value not rising.

    Each activity total (PRs merged, story points resolved, production deployments) whose previous
    window had at least ``min_activity`` is tested for a rise: a one-sided z-test of the two
    windows' totals under a steady rate, z = (T − T_prev) / √(Var T + Var T_prev).

    The null each test uses. PRs and deployments: quasi-Poisson counts. A steady Poisson count is
    its own variance, but real counts come in bursts (a release week, a holiday), which Poisson
    ignores: at 12 PRs a week varying like 26 (dispersion 2.2), a Poisson z-test at 1% is a test at
    about 6% (P(Z ≥ 2.33 / √2.2)). So the variance is φ·(T + T_prev), with φ the counts' dispersion estimated from
    the same two windows' weekly counts — Pearson's χ² against each window's steady rate over its
    degrees of freedom (``rollups._weekly_chi2``), pooled over both windows, and never below 1
    (a window cannot be quieter than Poisson). Story points: compound Poisson over lumps — features
    arrive by chance and bring their items' points together, so the variance of a total is Σ over
    its lumps of the lump's points squared (``story_points_var``).

    Many tests at once. Every quarter this tests each team's three measures, and a steady
    organisation of 3 teams runs about 45 such tests over two years: at 1% each, 30 of 200 simulated
    steady organisations got a flag. The one-sided p-values of a quarter's tests (every team and
    measure judged that quarter) are therefore adjusted together (Benjamini–Hochberg,
    ``core.stats.fdr_adjust``) and a rise counts as beyond chance when its adjusted p-value is at
    most ``activity_alpha``. That holds the quarter's false-discovery rate at ``activity_alpha``
    (the tests are independent or positively dependent, as Benjamini–Hochberg needs), and in a
    quarter where nothing changed that is the chance of any false flag from this detector, however
    many teams there are; the simulation: 2 of 200 steady organisations flagged over two years
    (8 of 400 on other seeds). A rise must also
    be at least ``activity_rise``: the smallest change worth a conversation, whatever its p-value.
    """
    pairs = _period_pairs(periods)
    rises = {
        m: pl.when(pl.col(f"{m}_prev") >= settings.min_activity).then(_change(pl.col(m), pl.col(f"{m}_prev")))
        for m in _ACTIVITY
    }
    dispersion = {m: pl.lit(1.0) for m in _ACTIVITY}
    for m in _DISPERSED:
        pooled = (pl.col(f"{m}_chi2") + pl.col(f"{m}_chi2_prev")) / (pl.col("weeks") + pl.col("weeks_prev") - 2)
        dispersion[m] = pl.max_horizontal(pooled, pl.lit(1.0))
    noise = {
        m: (pl.col(m) - pl.col(f"{m}_prev"))
        / (pl.col(f"{m}_dispersion") * (pl.col(_VARIANCE[m]) + pl.col(f"{_VARIANCE[m]}_prev"))).sqrt()
        for m in _ACTIVITY
    }
    tested = (
        pairs.with_columns(
            *[rise.alias(f"{m}_rise") for m, rise in rises.items()],
            *[phi.alias(f"{m}_dispersion") for m, phi in dispersion.items()],
        )
        .with_columns(pl.when(pl.col(f"{m}_rise").is_not_null()).then(z).alias(f"{m}_z") for m, z in noise.items())
        .collect()
    )
    tested = _adjusted_per_quarter(
        tested, {m: stats.upper_tail(tested[f"{m}_z"].to_numpy(allow_copy=True)) for m in _ACTIVITY}
    )
    beyond = {m: pl.col(f"{m}_p_adjusted") <= settings.activity_alpha for m in _ACTIVITY}
    risen = [(pl.col(f"{m}_rise") >= settings.activity_rise) & beyond[m] for m in _ACTIVITY]
    value_flat = (pl.col("features_confirmed") <= pl.col("features_confirmed_prev")) & (
        pl.col("realised_value") <= pl.col("realised_value_prev")
    )
    value_fell = (pl.col("features_confirmed") < pl.col("features_confirmed_prev")) | (
        pl.col("realised_value") < pl.col("realised_value_prev")
    )
    found = (
        tested.lazy()
        .filter(pl.any_horizontal(risen).fill_null(False) & value_flat)
        .with_columns(
            pl.max_horizontal(pl.when(beyond[m]).then(pl.col(f"{m}_rise")) for m in _ACTIVITY).alias("top_rise")
        )
    )
    rose_text = pl.concat_str(
        [
            pl.when((pl.col(f"{m}_rise") >= settings.activity_rise) & beyond[m]).then(
                pl.format(
                    "{} {} ({} → {})", pl.lit(label), _signed_pct(pl.col(f"{m}_rise")), _num(f"{m}_prev"), _num(m)
                )
            )
            for m, label in _ACTIVITY.items()
        ],
        separator=", ",
        ignore_nulls=True,
    )
    explanation = pl.format(
        "{}: {} from {} to {} (commits approximated by PRs), while features confirmed went {} → {} "
        "and realised value {} → {}.",
        _team_name(),
        rose_text,
        _period_label("period_start_prev", "period_end_prev"),
        _period_label("period_start", "period_end"),
        _num("features_confirmed_prev"),
        _num("features_confirmed"),
        _num("realised_value_prev"),
        _num("realised_value"),
    )
    evidence = [
        *[pl.col(c) for m in _ACTIVITY for c in (f"{m}_prev", m)],
        *[pl.col(f"{m}_rise").round(4) for m in _ACTIVITY],
        *[pl.col(f"{m}_dispersion").round(3) for m in _DISPERSED],
        *[pl.col(f"{m}_z").round(3) for m in _ACTIVITY],
        *[pl.col(f"{m}_p").round(6) for m in _ACTIVITY],
        *[pl.col(f"{m}_p_adjusted").round(6) for m in _ACTIVITY],
        "tests_in_quarter",
        "features_delivered_prev",
        "features_delivered",
        "features_confirmed_prev",
        "features_confirmed",
        pl.col("realised_value_prev").round(2),
        pl.col("realised_value").round(2),
        pl.lit(settings.activity_rise).alias("threshold"),
        pl.lit(settings.activity_alpha).alias("alpha"),
    ]
    suggestion = _watch_sentence(
        "instead of activity counts: features confirmed per quarter is the value it should move"
    )
    return _flags(
        found.join(teams.select("team_id", pl.col("name").alias("team_name")), on="team_id", how="left").join(
            watch, on="team_id", how="left"
        ),
        "activity_up_value_flat",
        score=pl.col("top_rise") / settings.activity_rise + pl.when(value_fell).then(0.5).otherwise(0.0),
        window_start=pl.col("period_start_prev"),
        window_end=pl.col("period_end"),
        evidence=evidence,
        explanation=explanation,
        suggestion=suggestion,
    )


def unlinked_work(
    periods: pl.LazyFrame, teams: pl.LazyFrame, watch: pl.LazyFrame, settings: FlagSettings = DEFAULT_FLAG_SETTINGS
) -> pl.LazyFrame:
    """Detector 2: more than ``unlinked_share`` of a team's merged PRs or cost in a quarter is linked to no feature."""
    pr_share = pl.when(pl.col("prs_merged") >= settings.min_prs).then(pl.col("prs_unlinked") / pl.col("prs_merged"))
    cost_share = pl.when(pl.col("cost") > 0).then(pl.col("cost_unlinked").fill_null(0.0) / pl.col("cost"))
    found = periods.with_columns(pr_share.alias("pr_unlinked_share"), cost_share.alias("cost_unlinked_share")).filter(
        (pl.col("pr_unlinked_share") > settings.unlinked_share).fill_null(False)
        | (pl.col("cost_unlinked_share") > settings.unlinked_share).fill_null(False)
    )
    parts = pl.concat_str(
        [
            pl.when(pl.col("pr_unlinked_share").is_not_null()).then(
                pl.format(
                    "{} of its {} merged PRs ({})",
                    _pct(pl.col("pr_unlinked_share")),
                    _num("prs_merged"),
                    _num("prs_unlinked"),
                )
            ),
            pl.when(pl.col("cost_unlinked_share").is_not_null()).then(
                pl.format(
                    "{} of its cost of {} ({})",
                    _pct(pl.col("cost_unlinked_share")),
                    _num("cost"),
                    _num("cost_unlinked"),
                )
            ),
        ],
        separator=" and ",
        ignore_nulls=True,
    )
    explanation = pl.format(
        "{} in {}: {} not linked to any feature, so neither its cost nor its effect can be traced to an outcome.",
        _team_name(),
        _period_label("period_start", "period_end"),
        parts,
    )
    evidence = [
        "prs_merged",
        "prs_unlinked",
        pl.col("pr_unlinked_share").round(4),
        pl.col("cost").round(2),
        pl.col("cost_unlinked").round(2),
        pl.col("cost_unlinked_share").round(4),
        pl.lit(settings.unlinked_share).alias("threshold"),
    ]
    return _flags(
        found.join(teams.select("team_id", pl.col("name").alias("team_name")), on="team_id", how="left").join(
            watch, on="team_id", how="left"
        ),
        "unlinked_work",
        score=pl.max_horizontal("pr_unlinked_share", "cost_unlinked_share") / settings.unlinked_share,
        window_start=pl.col("period_start"),
        window_end=pl.col("period_end"),
        evidence=evidence,
        explanation=explanation,
        suggestion=_watch_sentence("once PRs carry a work-item key or feature, so the work shows up against it"),
    )


def story_point_inflation(
    periods: pl.LazyFrame, teams: pl.LazyFrame, watch: pl.LazyFrame, settings: FlagSettings = DEFAULT_FLAG_SETTINGS
) -> pl.LazyFrame:
    """Detector 3: points per resolved item up ≥ ``points_inflation``, beyond chance, cycle time and PR size steady.

    The null the rise is tested against: points per item of a window is a mean over work items
    that come in lumps — a feature's items are estimated together — so the independent units are
    the features, not the items, and a window holds only some 5–15 of them. Under "nothing
    changed", which feature fell in which of the two windows is chance, so the test reassigns
    whole features between the windows (``core.stats.clustered_mean_rise_test``: every
    reassignment when there are at most ``_POINTS_PERMUTATIONS``, else that many random ones seeded
    by team and window) and p is the share of reassignments whose rise in points per item is at
    least the one observed. This makes no assumption about how points are spread (1, 2, 3, 5, 8
    is far from normal). The normal z on a cluster-robust variance used before treated a
    variance resting on a handful of features as exact: in 200 simulated steady organisations
    26 got a flag. Each window needs at least ``min_pointed_items`` items from at least two
    features. A quarter's tests (every team judged that quarter) are adjusted together
    (Benjamini–Hochberg, ``core.stats.fdr_adjust``); the rise counts when its adjusted p-value is
    at most ``activity_alpha`` and it is at least ``points_inflation``, the smallest rise worth a
    conversation.
    """
    tested = (
        _period_pairs(periods)
        .filter(
            pl.col("pointed_items") >= settings.min_pointed_items,
            pl.col("pointed_items_prev") >= settings.min_pointed_items,
            pl.col("pointed_lumps") >= 2,
            pl.col("pointed_lumps_prev") >= 2,
        )
        .with_columns(
            _change(pl.col("points_per_item"), pl.col("points_per_item_prev")).alias("points_change"),
            _change(pl.col("cycle_days_median"), pl.col("cycle_days_median_prev")).alias("cycle_change"),
            _change(pl.col("pr_size_median"), pl.col("pr_size_median_prev")).alias("size_change"),
            pl.lit(_POINTS_PERMUTATIONS).alias("permutations"),
        )
        .collect()
    )
    p = [
        stats.clustered_mean_rise_test(
            (np.array(row["lump_points_prev"]), np.array(row["lump_items_prev"])),
            (np.array(row["lump_points"]), np.array(row["lump_items"])),
            _POINTS_PERMUTATIONS,
            zlib.crc32(f"{row['team_id']}|{row['period_start']}".encode()),
        )
        for row in tested.select(
            "team_id", "period_start", *[f"lump_{c}{w}" for c in ("points", "items") for w in ("", "_prev")]
        ).iter_rows(named=True)
    ]
    found = (
        _adjusted_per_quarter(tested, {"points": np.array(p, dtype=float)})
        .lazy()
        .filter(
            pl.col("points_change") >= settings.points_inflation,
            pl.col("points_p_adjusted") <= settings.activity_alpha,
            pl.col("cycle_change").abs() <= settings.steady_band,
            pl.col("size_change").abs() <= settings.steady_band,
        )
    )
    explanation = pl.format(
        "{}: story points per resolved work item rose {} ({} → {}) from {} to {}, while median cycle time "
        "({} → {} days, {}) and median PR size ({} → {} lines, {}) hardly changed — the same work is being "
        "estimated bigger.",
        _team_name(),
        _signed_pct(pl.col("points_change")),
        _num("points_per_item_prev", 2),
        _num("points_per_item", 2),
        _period_label("period_start_prev", "period_end_prev"),
        _period_label("period_start", "period_end"),
        _num("cycle_days_median_prev", 1),
        _num("cycle_days_median", 1),
        _signed_pct(pl.col("cycle_change")),
        _num("pr_size_median_prev"),
        _num("pr_size_median"),
        _signed_pct(pl.col("size_change")),
    )
    evidence = [
        "pointed_items_prev",
        "pointed_items",
        pl.col("points_per_item_prev").round(4),
        pl.col("points_per_item").round(4),
        "pointed_lumps_prev",
        "pointed_lumps",
        pl.col("points_change").round(4),
        pl.col("points_p").round(6),
        pl.col("points_p_adjusted").round(6),
        "tests_in_quarter",
        pl.col("cycle_days_median_prev").round(3),
        pl.col("cycle_days_median").round(3),
        pl.col("cycle_change").round(4),
        "pr_size_median_prev",
        "pr_size_median",
        pl.col("size_change").round(4),
        pl.lit(settings.points_inflation).alias("threshold"),
        pl.lit(settings.steady_band).alias("steady_band"),
        pl.lit(settings.activity_alpha).alias("alpha"),
        "permutations",
    ]
    return _flags(
        found.join(teams.select("team_id", pl.col("name").alias("team_name")), on="team_id", how="left").join(
            watch, on="team_id", how="left"
        ),
        "story_point_inflation",
        score=pl.col("points_change") / settings.points_inflation,
        window_start=pl.col("period_start_prev"),
        window_end=pl.col("period_end"),
        evidence=evidence,
        explanation=explanation,
        suggestion=_watch_sentence("instead of velocity; features delivered and cycle time show the flow"),
    )


def pr_splitting(
    periods: pl.LazyFrame, teams: pl.LazyFrame, watch: pl.LazyFrame, settings: FlagSettings = DEFAULT_FLAG_SETTINGS
) -> pl.LazyFrame:
    """Detector 4a: PRs per delivered feature up ≥ ``prs_per_feature_rise``, median PR size down ≥ ``pr_size_drop``."""
    found = (
        _period_pairs(periods)
        .filter(
            pl.col("features_delivered") >= settings.min_features,
            pl.col("features_delivered_prev") >= settings.min_features,
        )
        .with_columns(
            _change(pl.col("prs_per_feature"), pl.col("prs_per_feature_prev")).alias("per_feature_change"),
            _change(pl.col("pr_size_median"), pl.col("pr_size_median_prev")).alias("size_change"),
        )
        .filter(
            pl.col("per_feature_change") >= settings.prs_per_feature_rise,
            pl.col("size_change") <= -settings.pr_size_drop,
        )
    )
    explanation = pl.format(
        "{}: merged PRs per delivered feature rose {} ({} → {}) from {} to {} while the median PR shrank {} "
        "({} → {} lines) — the same features cut into more, smaller PRs.",
        _team_name(),
        _signed_pct(pl.col("per_feature_change")),
        _num("prs_per_feature_prev", 1),
        _num("prs_per_feature", 1),
        _period_label("period_start_prev", "period_end_prev"),
        _period_label("period_start", "period_end"),
        _pct(-pl.col("size_change")),
        _num("pr_size_median_prev"),
        _num("pr_size_median"),
    )
    evidence = [
        "features_delivered_prev",
        "features_delivered",
        pl.col("prs_per_feature_prev").round(4),
        pl.col("prs_per_feature").round(4),
        pl.col("per_feature_change").round(4),
        "pr_size_median_prev",
        "pr_size_median",
        pl.col("size_change").round(4),
        pl.lit(settings.prs_per_feature_rise).alias("threshold_prs_per_feature"),
        pl.lit(settings.pr_size_drop).alias("threshold_size_drop"),
    ]
    score = (
        pl.col("per_feature_change") / settings.prs_per_feature_rise - pl.col("size_change") / settings.pr_size_drop
    ) / 2
    return _flags(
        found.join(teams.select("team_id", pl.col("name").alias("team_name")), on="team_id", how="left").join(
            watch, on="team_id", how="left"
        ),
        "pr_splitting",
        score=score,
        window_start=pl.col("period_start_prev"),
        window_end=pl.col("period_end"),
        evidence=evidence,
        explanation=explanation,
        suggestion=_watch_sentence("instead of PR counts; features delivered per quarter is the output that matters"),
    )


def agent_churn(
    periods: pl.LazyFrame, teams: pl.LazyFrame, watch: pl.LazyFrame, settings: FlagSettings = DEFAULT_FLAG_SETTINGS
) -> pl.LazyFrame:
    """Detector 4b: agent PRs up ≥ ``agent_pr_rise`` beyond chance, share merged or linked down ≥ ``agent_share_drop``.

    The rise in agent PRs opened is tested as detector 1 tests PRs merged: a one-sided z-test of
    the two windows' counts under quasi-Poisson noise, z = (A − A_prev) / √(φ·(A + A_prev)), φ the
    dispersion of the weekly counts of agent PRs opened in both windows (``agent_prs_chi2``, never
    below 1), with the quarter's tests (every team judged that quarter) adjusted together
    (Benjamini–Hochberg); the rise is beyond chance when its adjusted p-value is at most
    ``activity_alpha``. A plain Poisson z-test at 1% per window pair, as before, ran about 15
    tests per steady 3-team organisation over two years.
    """
    pooled = (pl.col("agent_prs_chi2") + pl.col("agent_prs_chi2_prev")) / (pl.col("weeks") + pl.col("weeks_prev") - 2)
    tested = (
        _period_pairs(periods)
        .filter(pl.col("agent_prs_prev") >= settings.min_agent_prs)
        .with_columns(
            _change(pl.col("agent_prs"), pl.col("agent_prs_prev")).alias("agent_change"),
            pl.max_horizontal(pooled, pl.lit(1.0)).alias("agent_dispersion"),
            (pl.col("agent_merged_share") - pl.col("agent_merged_share_prev")).alias("merged_share_change"),
            (pl.col("agent_linked_share") - pl.col("agent_linked_share_prev")).alias("linked_share_change"),
        )
        .with_columns(
            (
                (pl.col("agent_prs") - pl.col("agent_prs_prev"))
                / (pl.col("agent_dispersion") * (pl.col("agent_prs") + pl.col("agent_prs_prev"))).sqrt()
            ).alias("agent_z")
        )
        .collect()
    )
    found = (
        _adjusted_per_quarter(tested, {"agent": stats.upper_tail(tested["agent_z"].to_numpy(allow_copy=True))})
        .lazy()
        .filter(
            pl.col("agent_change") >= settings.agent_pr_rise,
            pl.col("agent_p_adjusted") <= settings.activity_alpha,
            (pl.col("merged_share_change") <= -settings.agent_share_drop).fill_null(False)
            | (pl.col("linked_share_change") <= -settings.agent_share_drop).fill_null(False),
        )
    )
    explanation = pl.format(
        "{}: PRs opened by AI agents rose {} ({} → {}) from {} to {}, while the share of them merged went {} → {} "
        "and the share linked to a feature {} → {} — more agent output, less of it landing on planned work.",
        _team_name(),
        _signed_pct(pl.col("agent_change")),
        _num("agent_prs_prev"),
        _num("agent_prs"),
        _period_label("period_start_prev", "period_end_prev"),
        _period_label("period_start", "period_end"),
        _pct(pl.col("agent_merged_share_prev")),
        _pct(pl.col("agent_merged_share")),
        _pct(pl.col("agent_linked_share_prev")),
        _pct(pl.col("agent_linked_share")),
    )
    evidence = [
        "agent_prs_prev",
        "agent_prs",
        pl.col("agent_change").round(4),
        pl.col("agent_dispersion").round(3),
        pl.col("agent_z").round(3),
        pl.col("agent_p").round(6),
        pl.col("agent_p_adjusted").round(6),
        "tests_in_quarter",
        pl.col("agent_merged_share_prev").round(4),
        pl.col("agent_merged_share").round(4),
        pl.col("agent_linked_share_prev").round(4),
        pl.col("agent_linked_share").round(4),
        pl.lit(settings.agent_pr_rise).alias("threshold_agent_rise"),
        pl.lit(settings.agent_share_drop).alias("threshold_share_drop"),
    ]
    drop = -pl.min_horizontal("merged_share_change", "linked_share_change")
    score = (pl.col("agent_change") / settings.agent_pr_rise + drop / settings.agent_share_drop) / 2
    return _flags(
        found.join(teams.select("team_id", pl.col("name").alias("team_name")), on="team_id", how="left").join(
            watch, on="team_id", how="left"
        ),
        "agent_churn",
        score=score,
        window_start=pl.col("period_start_prev"),
        window_end=pl.col("period_end"),
        evidence=evidence,
        explanation=explanation,
        suggestion=_watch_sentence("and the cost per delivered feature, instead of agent PR counts"),
    )


def leadership_vanity(
    metrics: pl.LazyFrame,
    watch: pl.LazyFrame,
    settings: FlagSettings = DEFAULT_FLAG_SETTINGS,
    as_of: date | None = None,
    executive_view_metrics: Iterable[str] | pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """Detector 5: each activity-level metric configured on an executive view or an OKR, in the quarter of ``as_of``.

    The configured metric ids come from ``executive_view_metrics`` (a list, or a frame with a
    metric_id column) or, when not given, from ``settings.executive_view_metrics``.
    """
    as_of = as_of or date.today()
    if executive_view_metrics is None:
        executive_view_metrics = settings.executive_view_metrics
    if isinstance(executive_view_metrics, pl.LazyFrame):
        configured = executive_view_metrics.select(pl.col("metric_id").cast(pl.String)).unique()
    else:
        configured = pl.LazyFrame({"metric_id": sorted(set(executive_view_metrics))}, schema={"metric_id": pl.String})
    quarter_start = date(as_of.year, 3 * ((as_of.month - 1) // 3) + 1, 1)
    quarter_end = _quarter_end(quarter_start)
    found = metrics.join(configured, on="metric_id", how="semi").filter(pl.col("level") == "activity")
    explanation = pl.format(
        "{} ({}) is an activity-level metric, yet it is on an executive view or an OKR: once activity becomes a "
        "target it gets gamed and says nothing about what customers got.",
        pl.col("name"),
        pl.col("metric_id"),
    )
    evidence = ["metric_id", "name", "level", pl.lit("executive view or OKR").alias("configured_on")]
    return _flags(
        found.with_columns(
            pl.lit(quarter_start).alias("window_start"),
            pl.lit(quarter_end).alias("window_end"),
            pl.lit(min(quarter_end, as_of)).alias("detected_at"),
        ).join(watch, on="team_id", how="left"),
        "leadership_vanity",
        score=pl.lit(1.5),
        window_start=pl.col("window_start"),
        window_end=pl.col("window_end"),
        evidence=evidence,
        explanation=explanation,
        suggestion=_watch_sentence("on the executive view in its place; keep activity metrics inside the team"),
        metric_id=pl.col("metric_id"),
        detected_at=pl.col("detected_at"),
    )


def decoupled_metric(
    weekly: pl.LazyFrame,
    teams: pl.LazyFrame,
    watch: pl.LazyFrame,
    settings: FlagSettings = DEFAULT_FLAG_SETTINGS,
    as_of: date | None = None,
) -> pl.LazyFrame:
    """Detector 6: an activity or output series rising over ``rising_weeks`` while the team's outcomes do not follow.

    Windows are the last ``rising_weeks`` full weeks of each complete quarter. Rising: a Theil–Sen
    rise over the window of at least ``min_trend_rise`` of the series' median, and a one-sided
    Mann–Kendall test (``core.stats.kendall_trend``: exact without ties, tie-corrected with them)
    significant at ``trend_alpha`` (direction-adjusted: a "lower is better" metric rises by falling).
    Not followed: over every outcome metric of the team's features and every lag 0…``max_lag_weeks``
    (the outcome in week t against the series in week t − lag, at least 4 weeks paired), the largest
    |Pearson r| is within chance: its permutation p-value over that same search is at least
    ``follow_alpha`` (``core.stats.best_correlation_test``; a constant outcome counts as r = 0).

    Why a null distribution rather than a fixed bar on |r|: the best of 9 lags × each outcome on
    4–12 weeks is large by chance alone — an outcome of pure noise beside 12 weeks of a rising
    Poisson count passes 0.30 in 97% of draws with one outcome and in all of them with two (300
    seeded draws each) — so a fixed 0.30 took noise for "follows" and hid the very pattern this
    detector looks for. Shuffling the outcomes' weeks and repeating the whole lag × outcome search
    gives that maximum's distribution when the outcome is unrelated, at the lags and lengths
    actually compared; only a correlation beyond it counts as following (noise passes in 3.7–4.7% of
    the same draws). The shuffles are seeded from the series, team and window, so a flag and its
    p-value are the same on every recompute. A metric with no team, or a team with no observed
    outcome metric, is not judged.
    """
    as_of = as_of or date.today()
    n = settings.rising_weeks
    z_crit = stats.normal_score(settings.trend_alpha)
    windows = _weekly_windows(weekly, n, as_of)
    candidates = weekly.filter(pl.col("kind").is_in(["count", "activity", "output"]), pl.col("team_id").is_not_null())
    sign = pl.when(pl.col("direction") == "lower").then(-1.0).otherwise(1.0)
    keys = ["series_id", "team_id", "window_start"]
    inside = (
        candidates.join(windows, how="cross")
        .filter(pl.col("week") >= pl.col("window_start"), pl.col("week") <= pl.col("window_end"))
        .drop_nulls("value")
        .with_columns(
            ((pl.col("week") - pl.col("window_start")).dt.total_days() // 7).alias("i"),
            (pl.col("value") * sign).alias("v"),
        )
    )
    pairs = inside.join(inside.select(*keys, pl.col("i").alias("j"), pl.col("v").alias("w")), on=keys).filter(
        pl.col("i") < pl.col("j")
    )
    slopes = pairs.group_by(keys).agg(
        ((pl.col("w") - pl.col("v")) / (pl.col("j") - pl.col("i"))).median().alias("slope")
    )
    level = inside.group_by(keys).agg(
        pl.len().alias("weeks"),
        pl.col("value").median().alias("median_level"),
        pl.col("value").first().alias("first_value"),
        pl.col("value").last().alias("last_value"),
        pl.col(["label", "kind", "window_end", "quarter_end"]).first(),
        pl.col("i"),
        pl.col("v"),
    )
    n_obs = pl.col("weeks").cast(pl.Float64)
    rising = (
        level.join(slopes, on=keys)
        .filter(pl.col("weeks") >= n - 1)
        .with_columns((pl.col("slope") * (n_obs - 1) / pl.col("median_level").abs()).alias("trend_rise"))
        .filter(pl.col("trend_rise") >= settings.min_trend_rise)
        .with_columns(pl.struct("i", "v").map_elements(_rising_trend, return_dtype=_TREND_DTYPE).alias("__trend"))
        .unnest("__trend")
        .filter(pl.col("kendall_p") <= settings.trend_alpha)
        .drop("i", "v")
        .collect()
        .lazy()
    )
    best = _best_lagged_correlation(rising, weekly, watch, settings)
    found = rising.join(best, on=keys, how="inner").filter(pl.col("follow_p") >= settings.follow_alpha)
    explanation = pl.format(
        "{}: {} rose for {} weeks to {} ({} → {}, Kendall τ = {}, one-sided p = {}), while {} did not follow it: "
        "the best correlation over lags 0–{} weeks is r = {} at a lag of {} weeks, which chance alone matches "
        "{} of the time (permutation test).",
        _team_name(),
        pl.col("label"),
        pl.col("weeks"),
        pl.col("window_end").dt.to_string("%Y-%m-%d"),
        _num("first_value", 1),
        _num("last_value", 1),
        _num("kendall_tau", 2),
        pl.when(pl.col("kendall_p") < 0.0001).then(pl.lit("< 0.0001")).otherwise(_num("kendall_p", 4)),
        pl.col("outcome_name"),
        pl.lit(settings.max_lag_weeks),
        _num("best_r", 2),
        pl.col("best_lag"),
        _pct(pl.col("follow_p")),
    )
    evidence = [
        "series_id",
        "label",
        "weeks",
        pl.col("first_value").round(4),
        pl.col("last_value").round(4),
        pl.col("kendall_tau").round(4),
        pl.col("kendall_z").round(4),
        pl.col("kendall_p").round(6),
        pl.col("trend_rise").round(4),
        "outcome_metric_id",
        "outcome_name",
        "best_lag",
        pl.col("best_r").round(4),
        "outcomes_compared",
        pl.col("follow_p").round(4),
        "permutations",
        pl.lit(settings.trend_alpha).alias("alpha"),
        pl.lit(settings.follow_alpha).alias("follow_alpha"),
    ]
    return _flags(
        found.join(teams.select("team_id", pl.col("name").alias("team_name")), on="team_id", how="left").join(
            watch, on="team_id", how="left"
        ),
        "decoupled_metric",
        score=pl.col("kendall_z") / z_crit,
        window_start=pl.col("window_start"),
        window_end=pl.col("window_end"),
        evidence=evidence,
        explanation=explanation,
        suggestion=_watch_sentence("instead of this series; it has not moved with it"),
        metric_id=pl.when(pl.col("kind") != "count").then(pl.col("series_id")),
        subject=pl.col("series_id"),
        detected_at=pl.min_horizontal(pl.col("quarter_end"), pl.lit(as_of)),
    )


def _flags(
    found: pl.LazyFrame,
    detector: str,
    *,
    score: pl.Expr,
    window_start: pl.Expr,
    window_end: pl.Expr,
    evidence: list[str | pl.Expr],
    explanation: pl.Expr,
    suggestion: pl.Expr,
    metric_id: pl.Expr | None = None,
    subject: pl.Expr | None = None,
    detected_at: pl.Expr | None = None,
) -> pl.LazyFrame:
    """The found rows shaped as flags (``FLAG_SCHEMA``)."""
    metric = metric_id if metric_id is not None else pl.lit(None, pl.String)
    team = pl.col("team_id") if "team_id" in found.collect_schema().names() else pl.lit(None, pl.String)
    shaped = found.with_columns(
        team.cast(pl.String).alias("__team"),
        metric.cast(pl.String).alias("__metric"),
        (subject if subject is not None else metric).cast(pl.String).alias("__subject"),
        window_start.cast(pl.Date).alias("__start"),
        window_end.cast(pl.Date).alias("__end"),
        score.cast(pl.Float64).round(4).alias("__score"),
    )
    flag_id = pl.concat_str(
        pl.lit(detector),
        pl.col("__team").fill_null("-"),
        pl.col("__subject").fill_null("-"),
        pl.col("__start").dt.to_string("%Y-%m-%d"),
        pl.col("__end").dt.to_string("%Y-%m-%d"),
        separator="|",
    )
    severity = pl.when(pl.col("__score") >= SEVERITY_BANDS[0][1]).then(pl.lit(SEVERITY_BANDS[0][0]))
    for name, floor in SEVERITY_BANDS[1:]:
        severity = severity.when(pl.col("__score") >= floor).then(pl.lit(name))
    return shaped.select(
        flag_id.alias("flag_id"),
        pl.lit(detector).alias("detector"),
        severity.otherwise(pl.lit(SEVERITY_BANDS[-1][0])).alias("severity"),
        pl.col("__score").alias("severity_score"),
        pl.col("__team").alias("team_id"),
        pl.col("__metric").alias("metric_id"),
        pl.col("__start").alias("window_start"),
        pl.col("__end").alias("window_end"),
        pl.struct(
            pl.lit(detector).alias("detector"),
            pl.col("__start").dt.to_string("%Y-%m-%d").alias("window_start"),
            pl.col("__end").dt.to_string("%Y-%m-%d").alias("window_end"),
            *evidence,
        )
        .struct.json_encode()
        .alias("evidence"),
        explanation.cast(pl.String).alias("explanation"),
        suggestion.cast(pl.String).alias("suggestion"),
        (detected_at if detected_at is not None else pl.col("__end")).cast(pl.Date).alias("detected_at"),
    )


def _adjusted_per_quarter(tested: pl.DataFrame, p_values: Mapping[str, np.ndarray]) -> pl.DataFrame:
    """``tested`` (window pairs) with ``<name>_p`` and its Benjamini–Hochberg adjustment ``<name>_p_adjusted``.

    The family is a quarter's tests: every p-value (NaN: not tested) of every name in the rows
    judged at the same ``period_end``, each team and measure one test. ``tests_in_quarter`` says
    how many there were.
    """
    quarter = tested["period_end"].to_numpy()
    names = list(p_values)
    raw = np.column_stack([np.asarray(p_values[name], dtype=float) for name in names]) if names else np.empty((0, 0))
    adjusted = np.full(raw.shape, np.nan)
    family = np.zeros(tested.height, dtype=np.int64)
    for when in np.unique(quarter):
        rows = quarter == when
        adjusted[rows] = stats.fdr_adjust(raw[rows].ravel()).reshape(raw[rows].shape)
        family[rows] = int(np.count_nonzero(~np.isnan(raw[rows])))
    return tested.with_columns(
        *[pl.Series(f"{name}_p", raw[:, k], nan_to_null=True) for k, name in enumerate(names)],
        *[pl.Series(f"{name}_p_adjusted", adjusted[:, k], nan_to_null=True) for k, name in enumerate(names)],
        pl.Series("tests_in_quarter", family),
    )


def _period_pairs(periods: pl.LazyFrame) -> pl.LazyFrame:
    """Each team window beside the team's window just before it (its columns end in ``_prev``)."""
    previous = periods.rename({c: f"{c}_prev" for c in periods.collect_schema().names() if c != "team_id"})
    previous = previous.with_columns((pl.col("period_end_prev") + pl.duration(days=1)).alias("__next"))
    return periods.join(
        previous, left_on=["team_id", "period_start"], right_on=["team_id", "__next"], how="inner", nulls_equal=True
    )


def _weekly_windows(weekly: pl.LazyFrame, n: int, as_of: date) -> pl.LazyFrame:
    """Per complete quarter, the window of its last ``n`` full weeks (Monday to Sunday)."""
    first = weekly.select(pl.col("week").min().alias("first_week"))
    return (
        first.select(pl.date_ranges(pl.col("first_week").dt.truncate("1q"), pl.lit(as_of), "1q").alias("quarter_start"))
        .explode("quarter_start")
        .drop_nulls()
        .with_columns((pl.col("quarter_start").dt.offset_by("1q") - pl.duration(days=1)).alias("quarter_end"))
        .filter(pl.col("quarter_end") < as_of)
        .with_columns((pl.col("quarter_end") - pl.duration(days=6)).dt.truncate("1w").alias("__last_monday"))
        .with_columns(
            (pl.col("__last_monday") - pl.duration(weeks=n - 1)).alias("window_start"),
            (pl.col("__last_monday") + pl.duration(days=6)).alias("window_end"),
        )
        .join(first, how="cross")
        .filter(pl.col("window_start") >= pl.col("first_week"))
        .select("window_start", "window_end", "quarter_end")
    )


def _best_lagged_correlation(
    rising: pl.LazyFrame, weekly: pl.LazyFrame, watch: pl.LazyFrame, settings: FlagSettings
) -> pl.LazyFrame:
    """Per rising series, the team outcome and lag with the largest |r|, and that maximum's permutation p-value.

    Columns: the series keys, outcome_metric_id, outcome_name, best_lag, best_r, follow_p,
    permutations, outcomes_compared. Pairings are searched lag by lag, outcomes by id within a
    lag, so a tie goes to the shortest lag and then the first outcome.
    """
    keys = ["series_id", "team_id", "window_start"]
    lag_weeks = settings.max_lag_weeks
    outcomes = watch.select("team_id", pl.col("outcome_metric_ids").alias("outcome_metric_id")).explode(
        "outcome_metric_id"
    )
    outcome_weeks = (
        weekly.filter(pl.col("kind") == "outcome")
        .select(
            pl.col("series_id").alias("outcome_metric_id"),
            pl.col("label").alias("outcome_name"),
            pl.col("week"),
            pl.col("value").alias("outcome_value"),
        )
        .unique(["outcome_metric_id", "week"])
    )
    windows = rising.select(*keys, "window_end")
    targets = (
        windows.join(outcomes, on="team_id")
        .join(outcome_weeks, on="outcome_metric_id")
        .filter(pl.col("week").is_between(pl.col("window_start"), pl.col("window_end")))
        .sort(*keys, "outcome_metric_id", "week")
    )
    series = (
        windows.join(weekly.select("series_id", "team_id", "week", "value"), on=["series_id", "team_id"])
        .filter(
            pl.col("week").is_between(pl.col("window_start") - pl.duration(weeks=lag_weeks), pl.col("window_end")),
            pl.col("value").is_not_null(),
        )
        .sort(*keys, "week")
    )
    targets, series = pl.collect_all([targets, series])
    by_key = {key: group for key, group in targets.group_by(keys)}
    rows = []
    for key, weeks in series.group_by(keys, maintain_order=True):
        if key not in by_key:
            continue
        position = {week: i for i, week in enumerate(weeks["week"])}
        series_values = weeks["value"].to_numpy()
        found = by_key[key]
        names = dict(zip(found["outcome_metric_id"], found["outcome_name"], strict=False))
        outcomes = list(found.group_by("outcome_metric_id", maintain_order=True))
        pairings, labels = [], []
        for lag in range(lag_weeks + 1):
            for k, (outcome, observed) in enumerate(outcomes):
                at = [position.get(week - timedelta(weeks=lag)) for week in observed["week"]]
                kept = [i for i, series_at in enumerate(at) if series_at is not None]
                if len(kept) >= 4:
                    pairings.append((k, np.array(kept), series_values[[at[i] for i in kept]]))
                    labels.append((outcome[0], lag))
        if not pairings:
            continue
        seed = zlib.crc32("|".join(str(part) for part in key).encode())
        shuffled = [observed["outcome_value"].to_numpy() for _, observed in outcomes]
        best = stats.best_correlation_test(shuffled, pairings, _FOLLOW_PERMUTATIONS, seed)
        outcome, lag = labels[best.index]
        rows.append(
            dict(
                zip(keys, key, strict=True),
                outcome_metric_id=outcome,
                outcome_name=names[outcome],
                best_lag=lag,
                best_r=best.r,
                follow_p=best.p_value,
                permutations=best.permutations,
                outcomes_compared=len({name for name, _ in labels}),
            )
        )
    schema = {
        **{c: series.schema[c] for c in keys},
        "outcome_metric_id": pl.String,
        "outcome_name": pl.String,
        "best_lag": pl.Int64,
        "best_r": pl.Float64,
        "follow_p": pl.Float64,
        "permutations": pl.Int64,
        "outcomes_compared": pl.UInt32,
    }
    return pl.LazyFrame(rows, schema=schema)


def _rising_trend(series: Mapping[str, list[float]]) -> dict[str, float | None]:
    """The Mann–Kendall test of one window's values against their week: tau, one-sided p of a rise, its z."""
    trend = stats.kendall_trend(series["v"], series["i"])
    if trend.p_rising is None:
        return {"kendall_tau": None, "kendall_p": None, "kendall_z": None}
    return {"kendall_tau": trend.tau, "kendall_p": trend.p_rising, "kendall_z": stats.normal_score(trend.p_rising)}


def _quarter_end(start: date) -> date:
    month = start.month + 3
    following = date(start.year + (month > 12), (month - 1) % 12 + 1, 1)
    return following - timedelta(days=1)


def _change(current: pl.Expr, previous: pl.Expr) -> pl.Expr:
    """The relative change, rounded to 9 places so that 160 against 200 is exactly −20% at a threshold."""
    return pl.when(previous > 0).then((current / previous - 1).round(9))


def _team_name() -> pl.Expr:
    return pl.coalesce("team_name", "team_id", pl.lit("Teams without a team"))


def _period_label(start: str, end: str) -> pl.Expr:
    """``2026 Q3`` for one quarter, ``2026 Q2–Q3`` or ``2025 Q4–2026 Q1`` for several."""
    first, last = pl.col(start), pl.col(end)
    return (
        pl.when(first.dt.truncate("1q") == last.dt.truncate("1q"))
        .then(pl.format("{} Q{}", last.dt.year(), last.dt.quarter()))
        .when(first.dt.year() == last.dt.year())
        .then(pl.format("{} Q{}–Q{}", last.dt.year(), first.dt.quarter(), last.dt.quarter()))
        .otherwise(pl.format("{} Q{}–{} Q{}", first.dt.year(), first.dt.quarter(), last.dt.year(), last.dt.quarter()))
    )


def _watch_sentence(tail: str) -> pl.Expr:
    return pl.format(
        "Watch {} {}.",
        pl.when(pl.col("watch_name").is_not_null())
        .then(pl.format("{} (the outcome this team's features aim at)", pl.col("watch_name")))
        .otherwise(pl.lit(_FALLBACK_WATCH)),
        pl.lit(tail),
    )


def _pct(share: pl.Expr) -> pl.Expr:
    return pl.format("{}%", (share * 100).round(0).cast(pl.Int64))


def _signed_pct(change: pl.Expr) -> pl.Expr:
    percent = (change * 100).round(0).cast(pl.Int64)
    return pl.format("{}{}%", pl.when(percent > 0).then(pl.lit("+")).otherwise(pl.lit("")), percent)


def _num(column: str, decimals: int = 0) -> pl.Expr:
    """A number as text: thousands separated when whole, else with ``decimals`` places."""
    value = pl.col(column).cast(pl.Float64)
    if decimals:
        return value.round(decimals).cast(pl.String).fill_null("none")
    whole = value.round(0).abs().cast(pl.Int64).cast(pl.String)
    grouped = whole.str.reverse().str.replace_all(r"(\d{3})", "$1,").str.reverse().str.strip_chars_start(",")
    return pl.concat_str(pl.when(value.round(0) < 0).then(pl.lit("−")).otherwise(pl.lit("")), grouped).fill_null("none")

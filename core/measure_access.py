"""What each measure shows to each viewer: the audience rule of ``core.access`` applied column by column.

Pages and CLI reports both call these, so a throughput series, a DORA row or a vanity flag carries
exactly the levels its viewer may see wherever it is shown.
"""

from __future__ import annotations

import json

import polars as pl

from core import access, throughput
from core.access import Viewer


def restrict_throughput(viewer: Viewer, series: pl.LazyFrame, team_id: str | None) -> pl.LazyFrame:
    """The columns of a throughput series ``viewer`` may see for ``team_id`` (None: the organisation).

    Each level's block of columns (``core.throughput.LEVELS``) goes through ``access.restrict`` and is kept
    only where ``access.may_see`` allows it, so an executive's frame has no PR counts at all.
    """
    keys = ["period_start", "period_end"]
    scoped = series.with_columns(pl.lit(team_id, dtype=pl.String).alias("team_id"))
    names = series.collect_schema().names()
    visible = [c for c in names if c in throughput.LEVELS and access.may_see(viewer, throughput.LEVELS[c], team_id)]
    shown = scoped.select(keys)
    for level in ("output", "outcome", "activity"):
        block = [c for c in visible if throughput.LEVELS[c] == level]
        if block:
            allowed = access.restrict(viewer, scoped.select(*keys, "team_id", *block), level=level)
            shown = shown.join(allowed.drop("team_id"), on=keys, how="inner", maintain_order="left")
    return shown.select(*keys, *visible)


def restrict_dora(viewer: Viewer, rows: pl.LazyFrame, team_id: str | None) -> pl.LazyFrame:
    """DORA measure rows ``viewer`` may see (output level); sample sizes count PRs and deployments (activity)."""
    allowed = access.restrict(
        viewer, rows.with_columns(pl.lit(team_id, dtype=pl.String).alias("team_id")), level="output"
    ).drop("team_id")
    if not access.may_see(viewer, "activity", team_id):
        allowed = allowed.drop("sample_size")
    return allowed


def dora_frames(frames: dict[str, pl.LazyFrame], team_id: str | None) -> tuple[pl.LazyFrame, ...]:
    """Deployments, pull requests and incidents of one team (all of them for the organisation)."""
    chosen = [frames[name] for name in ("deployments", "pull_requests", "incidents")]
    if team_id is None:
        return tuple(chosen)
    return tuple(frame.filter(pl.col("team_id") == team_id) for frame in chosen)


FLAG_EVIDENCE_LEVELS: dict[str, str | None] = {
    **{key: "activity" for key in ("prs_merged", "prs_unlinked", "pr_unlinked_share", "story_points_resolved")},
    **{key: "activity" for key in ("deployments", "pointed_items", "points_per_item", "points_change", "points_z")},
    **{key: "activity" for key in ("pr_size_median", "size_change", "prs_per_feature", "per_feature_change")},
    **{key: "activity" for key in ("agent_prs", "agent_change", "agent_z", "agent_merged_share", "agent_linked_share")},
    **{f"{m}_{s}": "activity" for m in ("prs_merged", "story_points_resolved", "deployments") for s in ("rise", "z")},
    **{key: "output" for key in ("features_delivered", "cycle_days_median", "cycle_change")},
    **{key: "outcome" for key in ("features_confirmed", "realised_value", "cost", "cost_unlinked")},
    **{key: "outcome" for key in ("cost_unlinked_share", "outcome_metric_id", "outcome_name")},
    **{key: "series" for key in ("series_id", "label", "weeks", "first_value", "last_value", "trend_rise")},
    **{key: "series" for key in ("kendall_tau", "kendall_z", "kendall_p", "best_lag", "best_r", "outcomes_compared")},
    **{key: None for key in ("detector", "window_start", "window_end", "alpha", "steady_band", "max_abs_correlation")},
    **{key: None for key in ("threshold", "threshold_prs_per_feature", "threshold_size_drop")},
    **{key: None for key in ("threshold_agent_rise", "threshold_share_drop")},
    **{key: None for key in ("metric_id", "name", "level", "configured_on")},
}
"""The metric level of every number in a flag's evidence (``_prev`` keys as their measure; None: a setting or
label anyone may see; 'series': the level of the series a decoupled-metric flag tested). Unknown keys count
as activity."""


FLAG_MEASURE_LEVELS: dict[str, str] = {
    "prs_merged": "activity",
    "prs_unlinked": "activity",
    "story_points_resolved": "activity",
    "deployments": "activity",
    "points_per_item": "activity",
    "pr_size_median": "activity",
    "prs_per_feature": "activity",
    "agent_prs": "activity",
    "agent_merged_share": "activity",
    "agent_linked_share": "activity",
    "features_delivered": "output",
    "cycle_days_median": "output",
    "features_confirmed": "outcome",
    "realised_value": "outcome",
    "cost": "outcome",
    "cost_unlinked": "outcome",
}
"""The level of every ``core.flags.team_periods`` column a flag chart can show."""


_EXPLANATION_LEVEL = {"leadership_vanity": None, "decoupled_metric": "series"}
"""The level of the numbers in each detector's explanation (activity unless listed)."""


_PLAIN_EXPLANATIONS: dict[str, str] = {
    "activity_up_value_flat": "{team}: the team's activity rose by {activity_rise:.0%} or more over the previous "
    "window, beyond chance, while the features it got confirmed and the value they realised did not rise.",
    "unlinked_work": "{team}: more than {unlinked_share:.0%} of the team's work or cost in the window is not linked "
    "to any feature, so neither its cost nor its effect can be traced to an outcome.",
    "story_point_inflation": "{team}: estimates per work item rose by {points_inflation:.0%} or more while cycle time "
    "and change size held steady: the same work is being estimated bigger.",
    "pr_splitting": "{team}: delivered features were cut into {prs_per_feature_rise:.0%} or more pieces of work each, "
    "each {pr_size_drop:.0%} or more smaller: more activity for the same output.",
    "agent_churn": "{team}: work opened by AI agents rose by {agent_pr_rise:.0%} or more while less of it was merged "
    "or linked to planned work.",
    "decoupled_metric": "{team}: a team measure kept rising for {rising_weeks} weeks while the outcome metrics of the "
    "team's features did not follow it at any lag up to {max_lag_weeks} weeks.",
}
"""Each detector's finding in words without its numbers, for viewers who may not see them."""


def restrict_flags(
    viewer: Viewer, flags: pl.DataFrame, frames: dict[str, pl.LazyFrame], thresholds: object
) -> pl.DataFrame:
    """The flags ``viewer`` may see, each with only the evidence numbers (and explanation) of levels they may see.

    A viewer who reads activity (a team lead for their team, an admin) sees the flags of the teams whose
    activity they may see, whole; everyone else (executives, delivery leads) sees every flag, and of its
    evidence only the numbers of their levels: the explanation is then told without its numbers.
    ``hidden_numbers`` counts what was left out.
    """
    rows_level = "activity" if access.may_see(viewer, "activity", viewer.team_id) else "outcome"
    shown = access.restrict(viewer, flags.lazy(), level=rows_level, team_column="team_id").collect()
    metrics = frames["metrics"].select("metric_id", "level").collect()
    teams = frames["teams"].select("team_id", "name").collect()
    metric_levels = dict(zip(metrics["metric_id"], metrics["level"], strict=True))
    team_names = dict(zip(teams["team_id"], teams["name"], strict=True))
    words = {field: getattr(thresholds, field) for field in thresholds.__dataclass_fields__}  # type: ignore[attr-defined]
    evidence, explanations, hidden = [], [], []
    for flag in shown.select("detector", "team_id", "metric_id", "evidence", "explanation").to_dicts():
        series_level = metric_levels.get(flag["metric_id"], "activity") if flag["metric_id"] else "activity"

        def visible(level: str | None, flag: dict[str, object] = flag, series: str = series_level) -> bool:
            level = series if level == "series" else level
            return level is None or access.may_see(viewer, level, flag["team_id"])  # type: ignore[arg-type]

        numbers = json.loads(flag["evidence"])
        levels = {k: FLAG_EVIDENCE_LEVELS.get(k.removesuffix("_prev"), "activity") for k in numbers}
        kept = {k: v for k, v in numbers.items() if visible(levels[k])}
        evidence.append(json.dumps(kept))
        hidden.append(len(numbers) - len(kept))
        if visible(_EXPLANATION_LEVEL.get(flag["detector"], "activity")):
            explanations.append(flag["explanation"])
        else:
            team = team_names.get(flag["team_id"], flag["team_id"] or "The organisation")
            explanations.append(_PLAIN_EXPLANATIONS[flag["detector"]].format(team=team, **words))
    return shown.with_columns(
        pl.Series("evidence", evidence, dtype=pl.String),
        pl.Series("explanation", explanations, dtype=pl.String),
        pl.Series("hidden_numbers", hidden, dtype=pl.Int64),
    )


def restrict_flag_periods(viewer: Viewer, periods: pl.LazyFrame) -> pl.LazyFrame:
    """Team windows (``core.flags.team_periods``), each measure empty where ``viewer`` may not see its level."""
    keys = ["team_id", "period_start", "period_end"]
    shown = periods.select(keys)
    for level in ("activity", "output", "outcome"):
        block = [c for c, lvl in FLAG_MEASURE_LEVELS.items() if lvl == level]
        allowed = access.restrict(viewer, periods.select(*keys, *block), level=level)
        shown = shown.join(allowed, on=keys, how="left", nulls_equal=True, maintain_order="left")
    return shown


def restrict_weekly_series(viewer: Viewer, weekly: pl.LazyFrame) -> pl.LazyFrame:
    """Weekly series (``core.flags.weekly_series``) of the levels ``viewer`` may see; PR counts are activity."""
    level = pl.when(pl.col("kind") == "count").then(pl.lit("activity")).otherwise(pl.col("kind"))
    return pl.concat(
        [
            access.restrict(viewer, weekly.filter(level == name), level=name)
            for name in ("activity", "output", "outcome")
        ]
    )

"""The thresholds of every vanity-flag detector, and each default in words for the flags page."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True)
class FlagSettings:
    """The thresholds of every detector; changes are relative (0.30 means 30%) unless stated."""

    GROUP: ClassVar[str] = "flags"
    """The name these settings are kept under in the workspace."""

    window_quarters: int = 2
    activity_rise: float = 0.30
    activity_alpha: float = 0.01
    min_activity: int = 20
    unlinked_share: float = 0.25
    min_prs: int = 20
    points_inflation: float = 0.25
    steady_band: float = 0.10
    min_pointed_items: int = 10
    prs_per_feature_rise: float = 0.30
    pr_size_drop: float = 0.20
    min_features: int = 3
    agent_pr_rise: float = 0.30
    agent_share_drop: float = 0.10
    min_agent_prs: int = 20
    executive_view_metrics: tuple[str, ...] = ()
    rising_weeks: int = 12
    trend_alpha: float = 0.001
    min_trend_rise: float = 0.20
    max_lag_weeks: int = 8
    follow_alpha: float = 0.05

    def __post_init__(self) -> None:
        if self.window_quarters < 1:
            raise ValueError("window_quarters must be at least 1")
        if self.rising_weeks < 4:
            raise ValueError("rising_weeks must be at least 4 for a trend test")
        if not 0.0 < self.trend_alpha < 0.5:
            raise ValueError("trend_alpha must be between 0 and 0.5")
        if self.max_lag_weeks < 0:
            raise ValueError("max_lag_weeks cannot be negative")
        if not 0.0 < self.follow_alpha <= 1.0:
            raise ValueError("follow_alpha must be above 0 and at most 1")


DEFAULT_FLAG_SETTINGS = FlagSettings()

FLAG_DEFAULTS_TEXT: dict[str, str] = {
    "window_quarters": "Detectors 1–4 compare windows of 2 calendar quarters (a half-year) with the 2 quarters "
    "before, re-evaluated at the end of every quarter; 1 compares plain quarter over quarter.",
    "activity_rise": "Activity up, value flat: a team's PRs merged, story points resolved or production "
    "deployments rose by 30% or more over the previous window while its features confirmed and realised value "
    "did not rise ...",
    "activity_alpha": "... and the rise is beyond noise: a one-sided test of the two windows (PRs, deployments "
    "and agent PRs as counts as bursty as their weeks show, never less than Poisson; story points as lumps of whole "
    "features; points per item by reassigning whole features between the windows), with each quarter's tests, "
    "every team and measure, adjusted together (Benjamini–Hochberg) to 1%: in a quarter where nothing changed, "
    "the chance of any false flag from detectors 1, 3 or 4 is at most 1% each, whatever the number of teams.",
    "min_activity": "Activity up, value flat: an activity measure is compared only when the previous window "
    "had at least 20 of it (commits are approximated by PRs merged).",
    "unlinked_share": "Unlinked work: more than 25% of a team's merged PRs, or of its cost, in a window is not "
    "linked to any feature (PRs link through their feature, work-item key, or a key in title or branch).",
    "min_prs": "Unlinked work: the PR share is judged only for a window with at least 20 merged PRs.",
    "points_inflation": "Story-point inflation: story points per resolved work item rose by 25% or more over the "
    "previous window ...",
    "steady_band": "... while median work-item cycle time and median PR size each stayed within ±10%.",
    "min_pointed_items": "Story-point inflation: each window needs at least 10 resolved, pointed work items of "
    "features (points per item is taken over planned work, so more small bugs do not read as deflation).",
    "prs_per_feature_rise": "PR splitting: merged PRs per delivered feature rose by 30% or more ...",
    "pr_size_drop": "... and the median PR size (lines added + deleted) fell by 20% or more.",
    "min_features": "PR splitting: each window needs at least 3 delivered features.",
    "agent_pr_rise": "Agent churn: PRs opened by AI agents rose by 30% or more over the previous window ...",
    "agent_share_drop": "... while the share of them merged (of those merged or closed) or linked to a feature "
    "fell by 10 percentage points or more.",
    "min_agent_prs": "Agent churn: the previous window needs at least 20 agent PRs.",
    "executive_view_metrics": "Leadership-view vanity: every activity-level metric listed as shown on an "
    "executive view or an OKR is flagged (none listed by default).",
    "rising_weeks": "Decoupled metric: an activity or output series is tested over the last 12 full weeks of "
    "each quarter ...",
    "trend_alpha": "... and counts as rising when a one-sided Mann–Kendall trend test (tie-corrected) is "
    "significant at 0.1% — each series is tested every quarter, so a 3-team organisation runs some 50 tests in "
    "two years ...",
    "min_trend_rise": "... and its Theil–Sen trend over the window adds at least 20% of its median level ...",
    "max_lag_weeks": "... while no outcome metric of the team's features follows it at any lag of 0–8 weeks ...",
    "follow_alpha": "... that is, the best cross-correlation over those lags and outcomes is one that shuffled weeks "
    "reach at least 5% of the time (a permutation test over the same search).",
}
"""Each default in words, for the settings panel of the flags page."""

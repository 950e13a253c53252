"""Cost per feature: every cost event priced, attributed to the feature it served, and trended.

``pricing`` holds the one price table; ``rules`` the one table of attribution rules, in order of
trust; ``attribution`` the engines that walk it (cost lines, the grouped roll-up, the unreached
events, a feature's drill-down); ``explanations`` the text a line explains itself with;
``measures`` the figures over cost lines or their roll-up. Callers import what they need from here.
"""

from core.costs.attribution import (
    LINE_COLUMNS,
    attribute_cost_rollup,
    attribute_costs,
    branch_work_items,
    feature_activity,
    feature_candidate_events,
    feature_cost_lines,
    price_cost_events,
    pull_request_features,
    resolve_cost_events,
    review_counts,
    rollup_cost_groups,
    split_cost_lines,
    unattributed_cost_lines,
    unreached_cost_events,
    work_item_features,
)
from core.costs.explanations import describe_cost_lines
from core.costs.measures import (
    ALL,
    MIN_TREND_QUARTERS,
    NO_TEAM,
    SOURCE_LABELS,
    TOO_FEW_QUARTERS,
    TREND_METHOD,
    Period,
    activity_contrast,
    cost_by_source,
    cost_per_feature,
    cost_summary,
    parse_period,
    quarterly_cost_trend,
    rollup_cost_lines,
    trend_verdicts,
)
from core.costs.rules import DEFAULT_SETTINGS, RULE_LABELS, RULE_TABLE, RULES, CostSettings

__all__ = [
    "ALL",
    "DEFAULT_SETTINGS",
    "LINE_COLUMNS",
    "MIN_TREND_QUARTERS",
    "NO_TEAM",
    "RULES",
    "RULE_LABELS",
    "RULE_TABLE",
    "SOURCE_LABELS",
    "TOO_FEW_QUARTERS",
    "TREND_METHOD",
    "CostSettings",
    "Period",
    "activity_contrast",
    "attribute_cost_rollup",
    "attribute_costs",
    "branch_work_items",
    "cost_by_source",
    "cost_per_feature",
    "cost_summary",
    "describe_cost_lines",
    "feature_activity",
    "feature_candidate_events",
    "feature_cost_lines",
    "parse_period",
    "price_cost_events",
    "pull_request_features",
    "quarterly_cost_trend",
    "resolve_cost_events",
    "review_counts",
    "rollup_cost_groups",
    "rollup_cost_lines",
    "split_cost_lines",
    "trend_verdicts",
    "unattributed_cost_lines",
    "unreached_cost_events",
    "work_item_features",
]

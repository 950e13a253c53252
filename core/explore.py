"""Explore: ad hoc questions over a fixed catalogue of datasets, answered as aggregates through the access layer.

A question is an ``ExploreQuery``: a dataset, the dimensions to group by, a value and its
aggregation, filters on dimensions and an optional period. Every name in it is looked up in the
catalogue (``DATASETS``); only Polars expressions built from catalogue entries ever run, so
nothing a user types is executed as code or spliced into SQL. Before any row is read,
``core.access`` decides whether the viewer may see the value's metric level (and, for per-PR or
per-work-item datasets, detail at all); the rows are then passed through ``access.restrict``
(or ``access.restrict_metrics`` for metric observations), so a team lead gets other teams'
output and outcome aggregates but activity only for their own team. Results are grouped rows,
never records.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date

import polars as pl

from core import access, measures
from core.access import Viewer
from core.costs import DEFAULT_SETTINGS

Frames = Mapping[str, pl.LazyFrame]

AGGREGATIONS: dict[str, str] = {"count": "Number of", "sum": "Sum of", "mean": "Mean of", "median": "Median of"}
"""Every aggregation a value may allow, with the words that name its result."""

MAX_GROUP_BY = 3
MAX_GROUPS = 5_000
"""A result with more groups than this is refused with advice to group more coarsely or filter."""
MAX_FILTER_VALUES = 1_000
MAX_FILTER_TEXT = 200
NONE = "(none)"
"""The group label of rows with no value in a dimension (a feature not yet delivered has no quarter)."""


@dataclass(frozen=True)
class Dimension:
    """A way to group or filter a dataset: a column as it is, its period, or whether it is present."""

    name: str
    label: str
    column: str
    grain: str = "value"
    """``value`` (the column), ``quarter`` / ``month`` / ``week`` (of a date column), ``present`` (yes/no)."""

    @property
    def is_time(self) -> bool:
        """True for a period of a date column, whose groups sort in time order."""
        return self.grain in ("quarter", "month", "week")


@dataclass(frozen=True)
class Value:
    """A number a dataset can give: a count of records, or a column aggregated over them."""

    name: str
    label: str
    level: str | None
    """The metric level of the figure; None when each row carries its own (metric observations)."""
    aggregations: tuple[str, ...]
    column: str | None = None
    """None: the value counts records."""
    per: str | None = None
    """When set, ``column`` is first summed per this key (e.g. cost per feature), then aggregated."""
    unit: str = ""
    description: str = ""


@dataclass(frozen=True)
class Dataset:
    """An explorable dataset: its level, whether its rows are per-PR/per-person detail, dimensions and values."""

    name: str
    label: str
    level: str | None
    detail: bool
    team_column: str | None
    time_column: str | None
    dimensions: tuple[Dimension, ...]
    values: tuple[Value, ...]
    description: str

    def dimension(self, name: str) -> Dimension | None:
        """The dimension called ``name``, or None."""
        return next((d for d in self.dimensions if d.name == name), None)

    def value(self, name: str) -> Value | None:
        """The value called ``name``, or None."""
        return next((v for v in self.values if v.name == name), None)


@dataclass(frozen=True)
class ExploreQuery:
    """One question: ``aggregation`` of ``value`` in ``dataset`` per ``group_by``, under filters and a period."""

    dataset: str
    value: str
    aggregation: str
    group_by: tuple[str, ...] = ()
    filters: tuple[tuple[str, tuple[str, ...]], ...] = ()
    period_start: date | None = None
    period_end: date | None = None


class ExploreRefused(Exception):
    """A query the catalogue or the access layer does not allow; ``message`` says why in a user's words."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _time_dimensions(column: str, what: str) -> tuple[Dimension, ...]:
    return (
        Dimension("quarter", f"Quarter {what}", column, "quarter"),
        Dimension("month", f"Month {what}", column, "month"),
        Dimension("week", f"Week {what}", column, "week"),
    )


_TEAM = Dimension("team", "Team", "team_id")
_STATS = ("sum", "mean", "median")
_TYPICAL = ("mean", "median")

DATASETS: dict[str, Dataset] = {
    d.name: d
    for d in (
        Dataset(
            "features",
            "Features",
            level="output",
            detail=False,
            team_column="team_id",
            time_column="delivered_at",
            dimensions=(
                _TEAM,
                Dimension("status", "Status", "status"),
                Dimension("verdict", "Verdict", "verdict"),
                Dimension("milestone", "Milestone", "milestone_id"),
                *_time_dimensions("delivered_at", "delivered"),
            ),
            values=(
                Value("features", "features", "output", ("count",), description="features"),
                Value(
                    "cycle_days",
                    "days from start to delivery",
                    "output",
                    _TYPICAL,
                    column="cycle_days",
                    unit="days",
                    description="days from a feature's start to its delivery (cycle time)",
                ),
                Value(
                    "estimate_cost",
                    "estimated cost",
                    "output",
                    _STATS,
                    column="estimate_cost",
                    description="the cost estimated for a feature before it was built",
                ),
            ),
            description="Every feature with its team and status; periods are of the delivery date, so a feature "
            "not yet delivered has none. Verdict is its hypothesis's verdict, '(none)' without one.",
        ),
        Dataset(
            "verdicts",
            "Impact verdicts",
            level="outcome",
            detail=False,
            team_column="team_id",
            time_column="delivered_on",
            dimensions=(
                _TEAM,
                Dimension("verdict", "Verdict", "verdict"),
                Dimension("metric", "Outcome metric", "metric_name"),
                Dimension("method", "Method", "method"),
                *_time_dimensions("delivered_on", "delivered"),
            ),
            values=(
                Value(
                    "judged_features",
                    "features with a verdict",
                    "outcome",
                    ("count",),
                    description="delivered features with a hypothesis, whatever their verdict; judged ones "
                    "(core.outcomes.verdicts.JUDGED) are the confirmed, refuted and inconclusive: split by Verdict",
                ),
                Value(
                    "measured_change_pct",
                    "measured change (%)",
                    "outcome",
                    _TYPICAL,
                    column="measured_change_pct",
                    unit="%",
                    description="the measured change in the outcome metric, relative to the level it would have "
                    "had without the feature",
                ),
                Value(
                    "realised_value",
                    "realised value",
                    "outcome",
                    _STATS,
                    column="realised_value",
                    description="a confirmed feature's measured change times its metric's money value per unit "
                    "(0 for other verdicts)",
                ),
            ),
            description="One row per delivered feature with a hypothesis: did it move its outcome metric as "
            "predicted? Periods are of the delivery date.",
        ),
        Dataset(
            "cost_lines",
            "Cost",
            level="outcome",
            detail=False,
            team_column="team_id",
            time_column="occurred_at",
            dimensions=(
                _TEAM,
                Dimension("source", "Source", "source"),
                Dimension("attribution", "Attribution rule", "rule"),
                Dimension("attributed", "Attributed to a feature", "feature_id", "present"),
                *_time_dimensions("occurred_at", "incurred"),
            ),
            values=(
                Value(
                    "cost",
                    "cost",
                    "outcome",
                    _STATS,
                    column="amount",
                    description="the money of each cost line (an event's share attributed to one feature, or "
                    "left unattributed)",
                ),
                Value(
                    "cost_per_feature",
                    "cost per feature",
                    "outcome",
                    _STATS,
                    column="amount",
                    per="feature_id",
                    description="the cost attributed to each feature, summed per feature within each group",
                ),
                Value(
                    "cost_per_pr",
                    "cost per pull request",
                    "activity",
                    _STATS,
                    column="amount",
                    per="pr_id",
                    description="the cost of events that name a pull request, summed per pull request",
                ),
            ),
            description="Every cost event priced and attributed to features under the workspace's cost settings; "
            "the team is the feature's team, else the event's. Periods are of when the cost was incurred.",
        ),
        Dataset(
            "pull_requests",
            "Pull requests",
            level="activity",
            detail=True,
            team_column="team_id",
            time_column="created_at",
            dimensions=(
                _TEAM,
                Dimension("repo", "Repository", "repo"),
                Dimension("author_kind", "Author kind", "author_kind"),
                Dimension("state", "State", "state"),
                Dimension("linked", "Linked to a feature", "feature_id", "present"),
                *_time_dimensions("created_at", "opened"),
            ),
            values=(
                Value("pull_requests", "pull requests", "activity", ("count",), description="pull requests"),
                Value(
                    "lines_changed",
                    "lines changed",
                    "activity",
                    _STATS,
                    column="lines_changed",
                    description="additions plus deletions of a pull request",
                ),
                Value(
                    "reviews", "reviews", "activity", _STATS, column="reviews", description="reviews on a pull request"
                ),
                Value(
                    "hours_to_merge",
                    "hours to merge",
                    "activity",
                    _TYPICAL,
                    column="hours_to_merge",
                    unit="hours",
                    description="hours from opening a pull request to merging it (merged ones only)",
                ),
            ),
            description="Pull requests by the team of their author; periods are of when they were opened.",
        ),
        Dataset(
            "work_items",
            "Work items",
            level="activity",
            detail=True,
            team_column="team_id",
            time_column="created_at",
            dimensions=(
                _TEAM,
                Dimension("type", "Type", "type"),
                Dimension("status", "Status", "status"),
                Dimension("linked", "Linked to a feature", "feature_id", "present"),
                *_time_dimensions("created_at", "created"),
            ),
            values=(
                Value("work_items", "work items", "activity", ("count",), description="work items"),
                Value(
                    "story_points",
                    "story points",
                    "activity",
                    _STATS,
                    column="story_points",
                    description="the story points estimated on a work item",
                ),
                Value(
                    "days_to_resolve",
                    "days to resolve",
                    "activity",
                    _TYPICAL,
                    column="days_to_resolve",
                    unit="days",
                    description="days from creating a work item to resolving it (resolved ones only)",
                ),
            ),
            description="Work items (tickets) with their story points; periods are of when they were created.",
        ),
        Dataset(
            "deployments",
            "Deployments",
            level="activity",
            detail=False,
            team_column="team_id",
            time_column="finished_at",
            dimensions=(
                _TEAM,
                Dimension("service", "Service", "service"),
                Dimension("environment", "Environment", "environment"),
                Dimension("status", "Status", "status"),
                *_time_dimensions("finished_at", "finished"),
            ),
            values=(
                Value("deployments", "deployments", "activity", ("count",), description="deployments"),
                Value(
                    "deploy_minutes",
                    "minutes to deploy",
                    "activity",
                    _TYPICAL,
                    column="deploy_minutes",
                    unit="minutes",
                    description="minutes from a deployment's start to its finish",
                ),
            ),
            description="Every deployment, to any environment; periods are of when it finished. Deployment "
            "frequency and change failure rate, with their definitions, are on the DORA page.",
        ),
        Dataset(
            "incidents",
            "Incidents",
            level="outcome",
            detail=False,
            team_column="team_id",
            time_column="opened_at",
            dimensions=(
                _TEAM,
                Dimension("service", "Service", "service"),
                Dimension("severity", "Severity", "severity"),
                Dimension("from_deployment", "Linked to a deployment", "deployment_id", "present"),
                *_time_dimensions("opened_at", "opened"),
            ),
            values=(
                Value("incidents", "incidents", "outcome", ("count",), description="incidents (failure demand)"),
                Value(
                    "hours_to_resolve",
                    "hours to resolve",
                    "output",
                    _TYPICAL,
                    column="hours_to_resolve",
                    unit="hours",
                    description="hours from opening an incident to resolving it (recovery time; resolved ones only)",
                ),
            ),
            description="Incidents are failure demand: work the customer did not ask for. Periods are of when "
            "they were opened.",
        ),
        Dataset(
            "metric_observations",
            "Metric observations",
            level=None,
            detail=False,
            team_column="team_id",
            time_column="date",
            dimensions=(
                Dimension("metric", "Metric", "metric_name"),
                Dimension("metric_level", "Metric level", "level"),
                Dimension("segment", "Segment", "segment"),
                _TEAM,
                *_time_dimensions("date", "observed"),
            ),
            values=(
                Value(
                    "value",
                    "observed value",
                    None,
                    ("mean", "median", "sum"),
                    column="value",
                    description="the observed value of a metric on a day (group by metric: values of different "
                    "metrics are in different units)",
                ),
                Value("observations", "observations", None, ("count",), description="daily observations"),
            ),
            description="Daily observations of the metrics you may see, at each metric's own level; the team is "
            "the metric's owning team.",
        ),
    )
}
"""Every explorable dataset, in the order the page offers them."""


def datasets_for(viewer: Viewer) -> list[Dataset]:
    """The datasets ``viewer`` may explore: those with at least one value the viewer may see."""
    return [d for d in DATASETS.values() if values_for(viewer, d)]


def values_for(viewer: Viewer, dataset: Dataset) -> list[Value]:
    """The values of ``dataset`` that ``viewer`` may ask for."""
    return [v for v in dataset.values if _may_query(viewer, dataset, v)]


def check_query(viewer: Viewer, query: ExploreQuery) -> tuple[Dataset, Value]:
    """The dataset and value ``query`` names, or ``ExploreRefused`` saying what is unknown or not visible."""
    dataset = DATASETS.get(query.dataset) if isinstance(query.dataset, str) else None
    if dataset is None:
        raise ExploreRefused(f"There is no dataset {_shown(query.dataset)} to explore.")
    value = dataset.value(query.value) if isinstance(query.value, str) else None
    if value is None:
        raise ExploreRefused(f"{dataset.label} has no value {_shown(query.value)}.")
    if not _may_query(viewer, dataset, value):
        level = f"{value.level}-level" if value.level else "metric"
        kind = " per-record detail" if dataset.detail else " data"
        same = value.label == dataset.label.lower()
        subject = dataset.label if same else f"{value.label.capitalize()} in {dataset.label.lower()}"
        raise ExploreRefused(
            f"{subject}: {level}{kind}, which your role does not see. "
            "Choose one of the datasets and values this page offers you."
        )
    if not isinstance(query.aggregation, str) or query.aggregation not in value.aggregations:
        offered = ", ".join(value.aggregations)
        raise ExploreRefused(
            f"{_shown(query.aggregation)} is not an aggregation of {value.label}; choose one of {offered}."
        )
    group_by = _names(query.group_by, "grouping")
    if len(group_by) > MAX_GROUP_BY:
        raise ExploreRefused(f"Group by at most {MAX_GROUP_BY} dimensions.")
    if len(set(group_by)) != len(group_by):
        raise ExploreRefused("Each dimension can be grouped by only once.")
    for name in group_by:
        _dimension(dataset, name)
    filters = query.filters if isinstance(query.filters, tuple) else None
    if filters is None or not all(isinstance(f, tuple) and len(f) == 2 for f in filters):
        raise ExploreRefused("Filters must be pairs of a dimension and the values to keep.")
    filtered = [name for name, _ in filters]
    if len(set(map(str, filtered))) != len(filtered):
        raise ExploreRefused("Each dimension can be filtered only once.")
    for name, kept in filters:
        _dimension(dataset, name)
        kept_values = _names(kept, "filter values")
        if len(kept_values) > MAX_FILTER_VALUES:
            raise ExploreRefused(f"A filter keeps at most {MAX_FILTER_VALUES:,} values.")
        if any(len(v) > MAX_FILTER_TEXT for v in kept_values):
            raise ExploreRefused(f"A filter value is longer than {MAX_FILTER_TEXT} characters; no such value exists.")
    for bound in (query.period_start, query.period_end):
        if bound is not None and not isinstance(bound, date):
            raise ExploreRefused("The period must be given as dates.")
    if query.period_start is not None and query.period_end is not None and query.period_start > query.period_end:
        raise ExploreRefused("The period ends before it starts.")
    return dataset, value


def run_query(
    viewer: Viewer,
    frames: Frames,
    query: ExploreQuery,
    judged: pl.DataFrame | pl.LazyFrame | None = None,
    cost_lines: pl.DataFrame | pl.LazyFrame | None = None,
) -> pl.DataFrame:
    """The aggregated answer to ``query`` over the rows ``viewer`` may see: one row per group, sorted.

    Columns are the grouped dimensions' labels then the value (``result_label``). Time groups sort
    in time order; otherwise the largest value comes first. ``ExploreRefused`` when the query names
    anything the catalogue does not hold, asks for a level the viewer may not see, or has more than
    ``MAX_GROUPS`` groups.
    """
    dataset, value = check_query(viewer, query)
    rows = _visible_rows(viewer, frames, dataset, value, judged, cost_lines)
    for name, kept in query.filters:
        rows = rows.filter(_dimension_expr(_dimension(dataset, name)).is_in(list(kept)))
    rows = rows.filter(*_period(dataset, query.period_start, query.period_end))
    dimensions = [_dimension(dataset, name) for name in query.group_by]
    result = _aggregate(rows, dimensions, value, query.aggregation).collect()
    if result.height > MAX_GROUPS:
        raise ExploreRefused(
            f"That grouping has {result.height:,} groups; at most {MAX_GROUPS:,} can be shown. Group by fewer or "
            "coarser dimensions (quarter instead of week), or filter."
        )
    return _sorted(result, dimensions)


def dimension_values(
    viewer: Viewer,
    frames: Frames,
    dataset_name: str,
    dimension_name: str,
    judged: pl.DataFrame | pl.LazyFrame | None = None,
    cost_lines: pl.DataFrame | pl.LazyFrame | None = None,
) -> list[str]:
    """The values of a dimension over the rows ``viewer`` may see in the dataset, sorted (filter choices)."""
    dataset = DATASETS.get(dataset_name)
    if dataset is None:
        raise ExploreRefused(f"There is no dataset {_shown(dataset_name)} to explore.")
    dimension = _dimension(dataset, dimension_name)
    seen = [
        _visible_rows(viewer, frames, dataset, value, judged, cost_lines).select(_dimension_expr(dimension).alias("v"))
        for value in _one_value_per_level(values_for(viewer, dataset))
    ]
    if not seen:
        return []
    return pl.concat(seen).unique().sort("v").collect()["v"].to_list()


def result_label(query: ExploreQuery) -> str:
    """The name of the result's value column, e.g. 'Sum of story points'."""
    value = DATASETS[query.dataset].value(query.value)
    assert value is not None
    return f"{AGGREGATIONS[query.aggregation]} {value.label}"


def describe(query: ExploreQuery) -> str:
    """How the answer to ``query`` is computed, in a sentence or two for a caption."""
    dataset = DATASETS[query.dataset]
    value = dataset.value(query.value)
    assert value is not None
    labels = [d.label.lower() for name in query.group_by if (d := dataset.dimension(name)) is not None]
    grouped = f", per {' and '.join(labels)}" if labels else ", in total"
    if query.aggregation == "count":
        what = f"The number of {value.description}"
    else:
        what = f"The {query.aggregation} of {value.description}"
    filters = [
        f"{d.label.lower()} is {' or '.join(kept)}"
        for name, kept in query.filters
        if kept and (d := dataset.dimension(name)) is not None
    ]
    where = f", where {'; '.join(filters)}" if filters else ""
    period = ""
    if query.period_start is not None or query.period_end is not None:
        start = query.period_start.isoformat() if query.period_start else "the start"
        end = query.period_end.isoformat() if query.period_end else "the end"
        period = f", from {start} to {end}"
    return f"{what}{grouped}{where}{period}. {dataset.description}"


def _may_query(viewer: Viewer, dataset: Dataset, value: Value) -> bool:
    if dataset.detail and not access.may_see_detail(viewer, viewer.team_id):
        return False
    if value.level is None:
        return bool(access.visible_levels(viewer, viewer.team_id))
    return access.may_see(viewer, value.level, viewer.team_id)


def _visible_rows(
    viewer: Viewer,
    frames: Frames,
    dataset: Dataset,
    value: Value,
    judged: pl.DataFrame | pl.LazyFrame | None,
    cost_lines: pl.DataFrame | pl.LazyFrame | None,
) -> pl.LazyFrame:
    rows = _ROWS[dataset.name](viewer, frames, _Sources(frames, judged, cost_lines), value)
    if value.level is None:
        return rows
    return access.restrict(viewer, rows, level=value.level, detail=dataset.detail, team_column=dataset.team_column)


class _Sources:
    """The derived frames some datasets need, computed only when one is asked for and not given."""

    def __init__(
        self,
        frames: Frames,
        judged: pl.DataFrame | pl.LazyFrame | None,
        cost_lines: pl.DataFrame | pl.LazyFrame | None,
    ) -> None:
        self._frames = frames
        self._judged = judged
        self._cost_lines = cost_lines

    def judged(self) -> pl.LazyFrame:
        if self._judged is None:
            self._judged = measures.judged_hypotheses(self._frames, measures.as_of(self._frames))
        return self._judged.lazy()

    def cost_lines(self) -> pl.LazyFrame:
        if self._cost_lines is None:
            self._cost_lines = measures.cost_lines(self._frames, DEFAULT_SETTINGS)
        return self._cost_lines.lazy()


def _hours_between(start: str, end: str) -> pl.Expr:
    return (pl.col(end) - pl.col(start)).dt.total_seconds() / 3600.0


def _feature_rows(viewer: Viewer, frames: Frames, sources: _Sources, value: Value) -> pl.LazyFrame:
    return (
        frames["features"]
        .join(sources.judged().select("feature_id", "verdict"), on="feature_id", how="left")
        .with_columns((_hours_between("started_at", "delivered_at") / 24.0).alias("cycle_days"))
    )


def _verdict_rows(viewer: Viewer, frames: Frames, sources: _Sources, value: Value) -> pl.LazyFrame:
    judged = sources.judged()
    metrics = access.restrict_metrics(viewer, frames["metrics"]).select(
        "metric_id", pl.col("name").alias("metric_name")
    )
    realised = measures.realised_values(judged, frames["metrics"])
    return (
        judged.select("feature_id", "metric_id", "verdict", "method", "delivered_on", "estimate_rel")
        .join(frames["features"].select("feature_id", "team_id"), on="feature_id", how="left")
        .join(metrics, on="metric_id", how="inner")
        .join(realised, on="feature_id", how="left")
        .with_columns(
            (pl.col("estimate_rel") * 100.0).alias("measured_change_pct"),
            pl.col("realised_value").fill_null(0.0),
        )
    )


def _cost_rows(viewer: Viewer, frames: Frames, sources: _Sources, value: Value) -> pl.LazyFrame:
    lines = sources.cost_lines()
    if value.per != "pr_id":
        return lines
    return lines.join(frames["cost_events"].select("event_id", "pr_id"), on="event_id", how="left")


def _pull_request_rows(viewer: Viewer, frames: Frames, sources: _Sources, value: Value) -> pl.LazyFrame:
    return frames["pull_requests"].with_columns(
        (pl.col("additions").fill_null(0) + pl.col("deletions").fill_null(0)).alias("lines_changed"),
        _hours_between("created_at", "merged_at").alias("hours_to_merge"),
    )


def _work_item_rows(viewer: Viewer, frames: Frames, sources: _Sources, value: Value) -> pl.LazyFrame:
    return frames["work_items"].with_columns(
        (_hours_between("created_at", "resolved_at") / 24.0).alias("days_to_resolve")
    )


def _deployment_rows(viewer: Viewer, frames: Frames, sources: _Sources, value: Value) -> pl.LazyFrame:
    return frames["deployments"].with_columns(
        (_hours_between("started_at", "finished_at") * 60.0).alias("deploy_minutes")
    )


def _incident_rows(viewer: Viewer, frames: Frames, sources: _Sources, value: Value) -> pl.LazyFrame:
    return frames["incidents"].with_columns(_hours_between("opened_at", "resolved_at").alias("hours_to_resolve"))


def _observation_rows(viewer: Viewer, frames: Frames, sources: _Sources, value: Value) -> pl.LazyFrame:
    metrics = access.restrict_metrics(viewer, frames["metrics"]).select(
        "metric_id", pl.col("name").alias("metric_name"), "level", "team_id"
    )
    return frames["metric_observations"].join(metrics, on="metric_id", how="inner")


_ROWS: dict[str, Callable[[Viewer, Frames, _Sources, Value], pl.LazyFrame]] = {
    "features": _feature_rows,
    "verdicts": _verdict_rows,
    "cost_lines": _cost_rows,
    "pull_requests": _pull_request_rows,
    "work_items": _work_item_rows,
    "deployments": _deployment_rows,
    "incidents": _incident_rows,
    "metric_observations": _observation_rows,
}


def _dimension_expr(dimension: Dimension) -> pl.Expr:
    column = pl.col(dimension.column)
    if dimension.grain == "present":
        return pl.when(column.is_not_null()).then(pl.lit("yes")).otherwise(pl.lit("no")).alias(dimension.label)
    if dimension.grain == "quarter":
        text = pl.format("{}-Q{}", column.dt.year(), column.dt.quarter())
    elif dimension.grain == "month":
        text = column.dt.strftime("%Y-%m")
    elif dimension.grain == "week":
        text = pl.format("{}-W{}", column.dt.iso_year(), column.dt.week().cast(pl.String).str.zfill(2))
    else:
        text = column.cast(pl.String)
    return text.fill_null(pl.lit(NONE)).alias(dimension.label)


def _period(dataset: Dataset, start: date | None, end: date | None) -> list[pl.Expr]:
    if dataset.time_column is None:
        return [pl.lit(True)]
    day = pl.col(dataset.time_column).cast(pl.Date)
    bounds = [pl.lit(True)]
    if start is not None:
        bounds.append(day >= start)
    if end is not None:
        bounds.append(day <= end)
    return bounds


def _aggregate(rows: pl.LazyFrame, dimensions: list[Dimension], value: Value, aggregation: str) -> pl.LazyFrame:
    keys = [_dimension_expr(d) for d in dimensions]
    labels = [d.label for d in dimensions]
    if value.per is not None:
        per_key = rows.filter(pl.col(value.per).is_not_null()).group_by([*keys, pl.col(value.per)])
        rows = per_key.agg(pl.col(value.column).sum())
        keys = [pl.col(label) for label in labels]
    measured = _aggregation_expr(value, aggregation).alias(f"{AGGREGATIONS[aggregation]} {value.label}")
    if not keys:
        return rows.select(measured)
    return rows.group_by(keys).agg(measured)


def _aggregation_expr(value: Value, aggregation: str) -> pl.Expr:
    if value.column is None:
        return pl.len().cast(pl.Int64)
    column = pl.col(value.column)
    if aggregation == "count":
        return column.count().cast(pl.Int64)
    if aggregation == "sum":
        return column.sum().cast(pl.Float64)
    if aggregation == "mean":
        return column.mean().cast(pl.Float64)
    return column.median().cast(pl.Float64)


def _sorted(result: pl.DataFrame, dimensions: list[Dimension]) -> pl.DataFrame:
    labels = [d.label for d in dimensions]
    if not labels:
        return result
    periods = [d.label for d in dimensions if d.is_time]
    if periods:
        undated_last = [pl.col(label) == NONE for label in periods]
        others = [pl.col(d.label) for d in dimensions if not d.is_time]
        return result.sort([*undated_last, *map(pl.col, periods), *others])
    measured = result.columns[-1]
    return result.sort([measured, *labels], descending=[True] + [False] * len(labels), nulls_last=True)


def _one_value_per_level(values: list[Value]) -> list[Value]:
    chosen: dict[str | None, Value] = {}
    for value in values:
        chosen.setdefault(value.level, value)
    return list(chosen.values())


def _dimension(dataset: Dataset, name: object) -> Dimension:
    dimension = dataset.dimension(name) if isinstance(name, str) else None
    if dimension is None:
        raise ExploreRefused(f"{dataset.label} cannot be grouped or filtered by {_shown(name)}.")
    return dimension


def _names(items: object, what: str) -> tuple[str, ...]:
    if not isinstance(items, tuple | list) or not all(isinstance(i, str) for i in items):
        raise ExploreRefused(f"The {what} must be a list of names.")
    return tuple(items)


def _shown(text: object, limit: int = 40) -> str:
    """A user-given name quoted for a message: at most ``limit`` characters, without markup characters."""
    cleaned = "".join(ch for ch in str(text) if ch.isprintable() and ch not in "`*[]<>\\")
    if len(cleaned) > limit:
        cleaned = cleaned[:limit] + "…"
    return f"'{cleaned}'"

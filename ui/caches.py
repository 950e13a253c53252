"""The measures a page shows, computed once per data version and settings and shared by every session.

Big intermediate frames (verdicts, cost lines) sit in ``st.cache_resource`` (no copies); pages
aggregate from them. Keys are the workspace, its data version and the settings' fingerprint,
never a frame.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import polars as pl
import streamlit as st

from core import costs, derived, explore, measures, overview
from core.access import Viewer
from core.costs import CostSettings
from core.delivery import dora, throughput
from core.delivery.dora import DoraSettings
from core.explore import ExploreQuery
from core.flags.charts import flag_chart as chart_of_flag
from core.flags.settings import FlagSettings
from core.store import settings
from ui.data import PageData, loaded_frames
from ui.session import current_store


def settings_key(value: object) -> str:
    """A stable string of a settings value, for the keys of kept results and figures."""
    return settings.fingerprint(value)


def as_of(data: PageData) -> date:
    """The date the workspace's data runs up to."""
    return _as_of(data.store.workspace.home.as_posix(), data.version)


def judged(data: PageData) -> pl.DataFrame:
    """Every delivered feature's hypothesis verdict."""
    return _judged(data.store.workspace.home.as_posix(), data.version)


def cost_settings(data: PageData) -> CostSettings:
    """The workspace's cost rates and attribution rules."""
    return data.settings(CostSettings)  # type: ignore[no-any-return]


def cost_lines(data: PageData) -> pl.DataFrame:
    """Every cost event priced and attributed under the workspace's cost settings."""
    current = cost_settings(data)
    return _cost_lines(data.store.workspace.home.as_posix(), data.version, settings.fingerprint(current))


def cost_rollup(data: PageData) -> pl.DataFrame:
    """Attributed money per feature, team, source, rule and quarter under the workspace's cost settings."""
    current = cost_settings(data)
    return _cost_rollup(data.store.workspace.home.as_posix(), data.version, settings.fingerprint(current))


@st.cache_resource(max_entries=4, show_spinner="Attributing costs to features ...")
def _cost_rollup(home: str, version: int, fingerprint: str) -> pl.DataFrame:
    chosen = settings.from_dict(CostSettings, json.loads(fingerprint))
    return derived.cost_rollup(_snapshot_folder(version), _frames(home, version), chosen)


def daily_throughput(data: PageData) -> pl.DataFrame:
    """Per day and team: delivered, confirmed, value, cost and PRs merged."""
    current = settings.fingerprint(cost_settings(data))
    return _daily(data.store.workspace.home.as_posix(), data.version, current)


def _frames(home: str, version: int) -> dict[str, pl.LazyFrame]:
    return loaded_frames(home, version)


def _snapshot_folder(version: int) -> Path:
    """Where the snapshot of ``version`` and the results kept beside it live (``core.derived``)."""
    return current_store().snapshot_folder(version)


@st.cache_resource(max_entries=4, show_spinner=False)
def _as_of(home: str, version: int) -> date:
    return measures.as_of(_frames(home, version))


@st.cache_resource(max_entries=4, show_spinner="Judging hypotheses ...")
def _judged(home: str, version: int) -> pl.DataFrame:
    return derived.judged(_snapshot_folder(version), _frames(home, version), _as_of(home, version))


@st.cache_resource(max_entries=4, show_spinner="Attributing costs to features ...")
def _cost_lines(home: str, version: int, fingerprint: str) -> pl.DataFrame:
    chosen = settings.from_dict(CostSettings, json.loads(fingerprint))
    return measures.cost_lines(_frames(home, version), chosen).collect()


@st.cache_resource(max_entries=4, show_spinner=False)
def _daily(home: str, version: int, fingerprint: str) -> pl.DataFrame:
    chosen = settings.from_dict(CostSettings, json.loads(fingerprint))
    return derived.daily_throughput(
        _snapshot_folder(version),
        _frames(home, version),
        lambda: _judged(home, version),
        lambda: _cost_rollup(home, version, fingerprint),
        chosen,
    )


def outcome_progress(data: PageData) -> pl.DataFrame:
    """Every outcome metric's progress to target, trend and projected date."""
    return _outcome_progress(data.store.workspace.home.as_posix(), data.version)


@st.cache_resource(max_entries=4, show_spinner=False)
def _outcome_progress(home: str, version: int) -> pl.DataFrame:
    from core.outcomes.progress import outcome_progress as progress

    frames = _frames(home, version)
    return progress(frames["metrics"], frames["metric_observations"], _as_of(home, version)).collect()


def fitted_series(data: PageData, feature_id: str) -> pl.DataFrame:
    """One feature's verdict chart: observations, fitted lines and counterfactual (``verdicts.fitted_series``)."""
    return _fitted_series(data.store.workspace.home.as_posix(), data.version, feature_id)


def similar_feature_costs(data: PageData) -> pl.DataFrame:
    """Per undelivered feature: the median attributed cost of its team's delivered features (feature_id, cost).

    'Similar' means delivered by the same team; features of a team with no delivered, costed feature
    are absent, so the backlog falls back to their estimate.
    """
    current = settings.fingerprint(cost_settings(data))
    return _similar_feature_costs(data.store.workspace.home.as_posix(), data.version, current)


@st.cache_data(max_entries=64, show_spinner=False)
def _fitted_series(home: str, version: int, feature_id: str) -> pl.DataFrame:
    from core.outcomes.verdicts import fitted_series as fitted

    frames = _frames(home, version)
    return fitted(
        feature_id, frames["features"], frames["hypotheses"], frames["metric_observations"], _as_of(home, version)
    )


@st.cache_resource(max_entries=4, show_spinner=False)
def _similar_feature_costs(home: str, version: int, fingerprint: str) -> pl.DataFrame:
    lines = _cost_rollup(home, version, fingerprint).lazy()
    return measures.similar_feature_costs(_frames(home, version)["features"], lines).collect()


def throughput_span(data: PageData) -> tuple[date, date]:
    """The first day with throughput activity and the last day of data (never before the first).

    The data's last day (``as_of``) comes from observations, PRs and cost events; a workspace with only
    features delivered after them still shows its delivery days.
    """
    daily = daily_throughput(data)
    latest = as_of(data)
    if not daily.height:
        return latest, latest
    first, last = daily["day"].min(), max(latest, daily["day"].max())  # type: ignore[type-var]
    return min(first, last), last  # type: ignore[return-value,type-var]


def throughput_series(
    data: PageData, period: throughput.Period, team_id: str | None, start: date, end: date
) -> pl.DataFrame:
    """Throughput of the organisation (or one team) per period, every period present; all levels.

    Pages show it through ``core.access.restrict_throughput`` so each viewer sees only their levels.
    """
    current = settings.fingerprint(cost_settings(data))
    return _throughput_series(data.store.workspace.home.as_posix(), data.version, current, period, team_id, start, end)


def milestone_markers(
    data: PageData, period: throughput.Period, team_id: str | None, start: date, end: date
) -> pl.DataFrame:
    """Milestones from ``start`` to ``end`` with their period and the features (id and name) each carried."""
    return _milestone_markers(data.store.workspace.home.as_posix(), data.version, period, team_id, start, end)


def dora_settings(data: PageData) -> DoraSettings:
    """The workspace's DORA definitions (DevLake's by default)."""
    return data.settings(DoraSettings)  # type: ignore[no-any-return]


def dora_measures(data: PageData, chosen: DoraSettings, team_id: str | None, start: date, end: date) -> pl.DataFrame:
    """The four DORA measures of the organisation (or one team) from ``start`` to ``end``; unrestricted."""
    return _dora_measures(
        data.store.workspace.home.as_posix(), data.version, settings.fingerprint(chosen), team_id, start, end
    )


def dora_trend(
    data: PageData, chosen: DoraSettings, every: str, team_id: str | None, start: date, end: date
) -> pl.DataFrame:
    """Each DORA measure per calendar week or month from ``start`` to ``end``; unrestricted."""
    return _dora_trend(
        data.store.workspace.home.as_posix(), data.version, settings.fingerprint(chosen), every, team_id, start, end
    )


def pr_cycle_times(data: PageData, team_id: str | None, start: date, end: date) -> pl.DataFrame:
    """DevLake's cycle-time breakdown of every PR merged from ``start`` to ``end`` (of one team, if given)."""
    return _merged_in_view(_pr_cycle_times(data.store.workspace.home.as_posix(), data.version), team_id, start, end)


def _merged_in_view(every_pr: pl.DataFrame, team_id: str | None, start: date, end: date) -> pl.DataFrame:
    merged = pl.col("merged_at").dt.date().is_between(start, end)
    return every_pr.filter(merged if team_id is None else merged & (pl.col("team_id") == team_id))


def feature_cycle_times(data: PageData, statistic: str, team_id: str | None, start: date, end: date) -> pl.DataFrame:
    """Per feature whose last PR merged from ``start`` to ``end``: its team, name and median (or mean) cycle parts."""
    return _feature_cycle_times(data.store.workspace.home.as_posix(), data.version, statistic, team_id, start, end)


def overall_cycle_time(data: PageData, statistic: str, team_id: str | None, start: date, end: date) -> pl.DataFrame:
    """One row: the median (or mean) of each cycle-time part over the PRs merged from ``start`` to ``end``."""
    return _overall_cycle_time(data.store.workspace.home.as_posix(), data.version, statistic, team_id, start, end)


@st.cache_data(ttl=3600, max_entries=64, show_spinner=False)
def _overall_cycle_time(
    home: str, version: int, statistic: str, team_id: str | None, start: date, end: date
) -> pl.DataFrame:
    in_view = _merged_in_view(_pr_cycle_times(home, version), team_id, start, end)
    every_pr = in_view.lazy().with_columns(pl.lit("all").alias("feature_id"))
    return dora.feature_cycle_times(every_pr, statistic).drop("feature_id").collect()  # type: ignore[arg-type]


@st.cache_data(ttl=3600, max_entries=64, show_spinner=False)
def _throughput_series(
    home: str, version: int, fingerprint: str, period: throughput.Period, team_id: str | None, start: date, end: date
) -> pl.DataFrame:
    daily = _daily(home, version, fingerprint).lazy()
    return throughput.throughput_series(daily, period, team_id, start, end).collect()


@st.cache_data(ttl=3600, max_entries=64, show_spinner=False)
def _milestone_markers(
    home: str, version: int, period: throughput.Period, team_id: str | None, start: date, end: date
) -> pl.DataFrame:
    frames = _frames(home, version)
    markers = throughput.milestone_markers(frames["milestones"], frames["features"], period, team_id).filter(
        pl.col("date").is_between(start, end)
    )
    carried = (
        markers.select("milestone_id", pl.col("feature_ids").alias("feature_id"))
        .explode("feature_id")
        .drop_nulls("feature_id")
        .join(frames["features"].select("feature_id", "name"), on="feature_id", how="left")
        .group_by("milestone_id")
        .agg(pl.concat_str("feature_id", pl.lit(" "), pl.col("name").fill_null("")).sort().alias("carried"))
    )
    return (
        markers.join(carried, on="milestone_id", how="left", maintain_order="left")
        .with_columns(pl.col("carried").fill_null([]))
        .collect()
    )


def _dora_frames(home: str, version: int, team_id: str | None) -> tuple[pl.LazyFrame, ...]:
    from core.access import dora_frames

    return dora_frames(_frames(home, version), team_id)


@st.cache_data(ttl=3600, max_entries=64, show_spinner="Computing DORA measures ...")
def _dora_measures(
    home: str, version: int, fingerprint: str, team_id: str | None, start: date, end: date
) -> pl.DataFrame:
    chosen = settings.from_dict(DoraSettings, json.loads(fingerprint))
    deployments, pull_requests, incidents = _dora_frames(home, version, team_id)
    return dora.dora_measures(deployments, pull_requests, incidents, chosen, start, end).collect(engine=dora.ENGINE)


@st.cache_data(ttl=3600, max_entries=64, show_spinner=False)
def _dora_trend(
    home: str, version: int, fingerprint: str, every: str, team_id: str | None, start: date, end: date
) -> pl.DataFrame:
    chosen = settings.from_dict(DoraSettings, json.loads(fingerprint))
    deployments, pull_requests, incidents = _dora_frames(home, version, team_id)
    return dora.dora_trend(deployments, pull_requests, incidents, chosen, every, start, end).collect(  # type: ignore[arg-type]
        engine=dora.ENGINE
    )


@st.cache_resource(max_entries=4, show_spinner="Computing PR cycle times ...")
def _pr_cycle_times(home: str, version: int) -> pl.DataFrame:
    frames = _frames(home, version)
    return dora.pr_cycle_times(frames["pull_requests"], frames["deployments"]).collect()


@st.cache_data(ttl=3600, max_entries=64, show_spinner=False)
def _feature_cycle_times(
    home: str, version: int, statistic: str, team_id: str | None, start: date, end: date
) -> pl.DataFrame:
    features = _frames(home, version)["features"].select("feature_id", "name", "team_id")
    if team_id is not None:
        features = features.filter(pl.col("team_id") == team_id)
    per_feature = dora.feature_cycle_times(_pr_cycle_times(home, version).lazy(), statistic)  # type: ignore[arg-type]
    return (
        features.join(per_feature, on="feature_id", how="inner")
        .filter(pl.col("last_merged_at").dt.date().is_between(start, end))
        .sort("last_merged_at", descending=True)
        .collect()
    )


def explore_result(data: PageData, query: ExploreQuery) -> pl.DataFrame:
    """The Explore answer to ``query`` for the page's viewer (``core.explore.run_query``), checked on every call."""
    explore.check_query(data.viewer, query)
    current = settings.fingerprint(cost_settings(data))
    return _explore_result(data.store.workspace.home.as_posix(), data.version, current, data.viewer, query)


def explore_choices(data: PageData, dataset: str, dimension: str) -> list[str]:
    """The values the page's viewer may filter ``dimension`` of ``dataset`` by (``core.explore.dimension_values``)."""
    current = settings.fingerprint(cost_settings(data))
    return _explore_choices(
        data.store.workspace.home.as_posix(), data.version, current, data.viewer, dataset, dimension
    )


def _explore_sources(home: str, version: int, fingerprint: str, dataset: str) -> dict[str, pl.DataFrame | None]:
    return {
        "judged": _judged(home, version),
        "cost_lines": _cost_lines(home, version, fingerprint) if dataset == "cost_lines" else None,
    }


@st.cache_data(ttl=3600, max_entries=256, show_spinner=False)
def _explore_result(home: str, version: int, fingerprint: str, viewer: Viewer, query: ExploreQuery) -> pl.DataFrame:
    sources = _explore_sources(home, version, fingerprint, query.dataset)
    return explore.run_query(viewer, _frames(home, version), query, **sources)


@st.cache_data(ttl=3600, max_entries=256, show_spinner=False)
def _explore_choices(
    home: str, version: int, fingerprint: str, viewer: Viewer, dataset: str, dimension: str
) -> list[str]:
    sources = _explore_sources(home, version, fingerprint, dataset)
    return explore.dimension_values(viewer, _frames(home, version), dataset, dimension, **sources)


# --- Cost per feature (pages/cost.py) --------------------------------------------------------------


def cost_links(data: PageData) -> measures.CostLinks:
    """The PR and work-item links and split groups behind single cost lines (``core.measures.cost_links``)."""
    return _cost_links(data.store.workspace.home.as_posix(), data.version)


def feature_cost_lines(data: PageData, feature_id: str) -> pl.DataFrame:
    """One feature's described cost lines (link path per line); pages restrict them before showing."""
    current = settings.fingerprint(cost_settings(data))
    return _feature_cost_lines(data.store.workspace.home.as_posix(), data.version, current, feature_id)


def unattributed_cost_lines(data: PageData, generic: bool) -> pl.DataFrame:
    """The unattributed cost lines with their reason (``generic``: naming no person, PR or repository)."""
    current = settings.fingerprint(cost_settings(data))
    return _unattributed_lines(data.store.workspace.home.as_posix(), data.version, current, generic)


@st.cache_resource(max_entries=4, show_spinner="Linking PRs, work items and activity to features ...")
def _cost_links(home: str, version: int) -> measures.CostLinks:
    return measures.cost_links(_frames(home, version))


@st.cache_data(ttl=3600, max_entries=64, show_spinner=False)
def _feature_cost_lines(home: str, version: int, fingerprint: str, feature_id: str) -> pl.DataFrame:
    chosen = settings.from_dict(CostSettings, json.loads(fingerprint))
    return measures.feature_cost_lines(_frames(home, version), _cost_links(home, version), feature_id, chosen)


@st.cache_data(ttl=3600, max_entries=16, show_spinner=False)
def _unattributed_lines(home: str, version: int, fingerprint: str, generic: bool) -> pl.DataFrame:
    chosen = settings.from_dict(CostSettings, json.loads(fingerprint))
    events = derived.unattributed_events(
        _snapshot_folder(version), _frames(home, version), chosen, lambda: _cost_links(home, version)
    )
    pr_links = _cost_links(home, version).pr_links
    return costs.unattributed_cost_lines(events.lazy(), pr_links.lazy(), chosen, generic=generic).collect()


def flag_settings(data: PageData) -> FlagSettings:
    """The workspace's vanity-flag thresholds and executive-view metrics."""
    return data.settings(FlagSettings)  # type: ignore[no-any-return]


def flags(data: PageData) -> pl.DataFrame:
    """Every vanity flag under the workspace's thresholds, newest and most severe first; unrestricted.

    Pages show it through ``core.access.restrict_flags``.
    """
    return _flags(data.store.workspace.home.as_posix(), data.version, *_flag_fingerprints(data))


def flag_chart(data: PageData, flag_id: str) -> pl.DataFrame:
    """The small series behind one flag (``core.flags.charts.flag_chart``) as ``data.viewer`` may see it."""
    home, fingerprints = data.store.workspace.home.as_posix(), _flag_fingerprints(data)
    return _flag_chart(home, data.version, *fingerprints, data.viewer, flag_id)


@st.cache_resource(max_entries=256, show_spinner=False)
def _flag_chart(
    home: str, version: int, flags_fingerprint: str, cost_fingerprint: str, viewer: Viewer, flag_id: str
) -> pl.DataFrame:
    from core.access import restrict_flag_periods, restrict_weekly_series

    fingerprints = (flags_fingerprint, cost_fingerprint)
    flag = _flags(home, version, *fingerprints).filter(pl.col("flag_id") == flag_id)
    if flag.is_empty():
        return pl.DataFrame(schema={"period": pl.Date, "measure": pl.String, "value": pl.Float64, "role": pl.String})
    periods, weekly = _flag_roll_ups(home, version, *fingerprints)
    return (
        chart_of_flag(
            flag.row(0, named=True),
            restrict_flag_periods(viewer, periods.lazy()),
            restrict_weekly_series(viewer, weekly.lazy()),
        )
        .drop_nulls("value")
        .collect()
    )


def _flag_fingerprints(data: PageData) -> tuple[str, str]:
    return settings.fingerprint(flag_settings(data)), settings.fingerprint(cost_settings(data))


@st.cache_resource(max_entries=4, show_spinner="Looking for vanity flags ...")
def _flags(home: str, version: int, flags_fingerprint: str, cost_fingerprint: str) -> pl.DataFrame:
    chosen = settings.from_dict(FlagSettings, json.loads(flags_fingerprint))
    lines = _cost_rollup(home, version, cost_fingerprint).lazy()
    judged = _judged(home, version).lazy()
    return measures.vanity_flags(_frames(home, version), judged, lines, chosen, _as_of(home, version))


@st.cache_resource(max_entries=4, show_spinner=False)
def _flag_roll_ups(
    home: str, version: int, flags_fingerprint: str, cost_fingerprint: str
) -> tuple[pl.DataFrame, pl.DataFrame]:
    chosen = settings.from_dict(FlagSettings, json.loads(flags_fingerprint))
    lines = _cost_rollup(home, version, cost_fingerprint).lazy()
    judged = _judged(home, version).lazy()
    periods, weekly = measures.flag_roll_ups(_frames(home, version), judged, lines, chosen, _as_of(home, version))
    return periods.collect(), weekly.collect()


def quarterly_answer(data: PageData, period: str, team_id: str | None) -> overview.QuarterlyAnswer:
    """The quarterly review of ``period`` for the organisation or ``team_id`` (``core.overview.quarterly_answer``)."""
    current = settings.fingerprint(cost_settings(data))
    return _quarterly_answer(data.store.workspace.home.as_posix(), data.version, current, period, team_id)


@st.cache_resource(max_entries=16, show_spinner="Putting the quarter together ...")
def _quarterly_answer(
    home: str, version: int, fingerprint: str, period: str, team_id: str | None
) -> overview.QuarterlyAnswer:
    chosen = settings.from_dict(CostSettings, json.loads(fingerprint))
    return overview.quarterly_answer(
        _frames(home, version),
        _judged(home, version).lazy(),
        _cost_rollup(home, version, fingerprint).lazy(),
        costs.parse_period(period),
        chosen.currency,
        team_id,
    )

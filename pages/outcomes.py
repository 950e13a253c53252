"""Outcomes: each outcome metric's progress to target, and the capabilities, features and work under it."""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl
import streamlit as st

from core import access
from core.access import Viewer
from core.outcomes import progress as outcomes
from ui import caches
from ui.data import PageData, page_data
from ui.widgets import figure_builder, page_header, plain, table

PAGE = "outcomes"
STATUS_COLOURS = {
    "on track": "green",
    "reached": "green",
    "late": "orange",
    "moving away": "red",
    "no target": "gray",
    "no data": "gray",
}
HOW = (
    f"**Current** is the mean of the last {outcomes.CURRENT_DAYS} days (segment 'all'). **Progress** is "
    "(current − baseline) / (target − baseline). **Projected** is where a straight line fitted to the last "
    f"{outcomes.TREND_DAYS} days reaches the target; there is none when the line moves away from it. **Status**: "
    "reached, on track (projected by the target date), late (projected after it), moving away, or no target."
)


# Kept per data version and viewer: the outcome tree over every feature and work item, and each metric's
# series, would otherwise be rebuilt on every rerun.
@st.cache_resource(max_entries=16, show_spinner=False)
def outcome_overview(
    _data: PageData, home: str, version: int, viewer: Viewer
) -> tuple[pl.DataFrame, pl.DataFrame, list[str]]:
    """The viewer's outcome metrics with progress and feature counts, the outcome tree, and the teams seen in detail.

    Work item counts in the tree are blanked for teams whose detail the viewer may not see.
    """
    visible_metrics = access.restrict_metrics(viewer, _data["metrics"])
    progress = (
        access.restrict(viewer, caches.outcome_progress(_data).lazy(), level="outcome", team_column=None)
        .join(visible_metrics.select("metric_id"), on="metric_id", how="semi")
        .collect()
    )
    tree = access.restrict(
        viewer,
        outcomes.outcome_tree(
            visible_metrics, _data["capabilities"], _data["features"], _data["work_items"], _data["hypotheses"]
        ),
        level="outcome",
    ).collect()
    detail_teams = [t for t in tree["team_id"].drop_nulls().unique().sort() if access.may_see_detail(viewer, t)]
    tree = tree.with_columns(
        pl.when(pl.col("team_id").is_in(detail_teams)).then(pl.col(c)).alias(c)
        for c in ("work_items", "work_items_done", "work_progress")
    )
    open_by_metric = outcomes.open_features(tree.lazy()).collect()
    summary = progress.join(open_by_metric, on="metric_id", how="left").with_columns(
        pl.col("open_features").fill_null(0), pl.col("features").fill_null(0)
    )
    return summary, tree, detail_teams


@st.cache_resource(max_entries=64, show_spinner=False)
def metric_series(_data: PageData, home: str, version: int, metric_id: str) -> pl.DataFrame:
    """One metric's daily observations over every segment ('all'), by date."""
    observations = _data["metric_observations"]
    return observations.filter(pl.col("segment") == "all", pl.col("metric_id") == metric_id).sort("date").collect()


@figure_builder
def outcome_figure(
    series: pl.DataFrame, name: str, unit: str, target: float | None, baseline: float | None
) -> go.Figure:
    """The metric's daily observations, their rolling mean, and its target and baseline levels."""
    figure = go.Figure()
    figure.add_scatter(
        x=series["date"],
        y=series["value"],
        mode="lines",
        name="Observed daily",
        line={"color": "#aed6f1", "width": 1},
        hovertemplate=f"%{{x|%-d %b %Y}}: %{{y:.4g}} {unit}<extra>observed, segment 'all'</extra>",
    )
    figure.add_scatter(
        x=series["date"],
        y=series["value"].rolling_mean(outcomes.CURRENT_DAYS, min_samples=1),
        mode="lines",
        name=f"{outcomes.CURRENT_DAYS}-day mean",
        line={"color": "#1f77b4", "width": 3},
        hovertemplate=f"%{{x|%-d %b %Y}}: %{{y:.4g}} {unit}<extra>mean of the {outcomes.CURRENT_DAYS} days "
        "up to this day, as 'current'</extra>",
    )
    for level, label, dash in ((target, "Target", "dash"), (baseline, "Baseline", "dot")):
        if level is not None:
            figure.add_hline(
                y=level,
                line={"dash": dash, "color": "#d62728" if label == "Target" else "#7f8c8d"},
                annotation_text=f"{label} {level:.3g}",
                annotation_position="top left",
            )
    figure.update_layout(
        title=f"{name}: observations and target",
        yaxis_title=unit,
        height=320,
        margin={"t": 50, "b": 30},
        legend={"orientation": "h", "y": -0.15},
    )
    return figure


def _plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


data = page_data()
me = data.viewer
page_header(
    "Outcomes",
    "Are customers and the business better off? Each outcome metric against its target, and the work aimed at it.",
    me,
)

as_of = caches.as_of(data)
summary, tree, detail_teams = outcome_overview(data, data.store.workspace.home.as_posix(), data.version, me)
if summary.height == 0:
    st.info("No outcome metric is defined yet. Delivery leads and admins define them on the Metrics page.")
    st.stop()

table(
    summary.select(
        pl.col("name").alias("Outcome"),
        pl.col("unit").alias("Unit"),
        pl.col("baseline").alias("Baseline"),
        pl.col("current").alias("Current"),
        pl.col("target").alias("Target"),
        pl.col("target_date").alias("Target date"),
        (pl.col("progress") * 100).round(0).replace(-0.0, 0.0).alias("Progress"),
        pl.col("projected_date").alias("Projected"),
        pl.col("status").alias("Status"),
        pl.col("features").alias("Features"),
        pl.col("open_features").alias("Still open"),
    ),
    key=f"{PAGE}.summary",
    caption=f"As of {as_of:%-d %b %Y}. How is this computed? {HOW}",
    Progress=st.column_config.ProgressColumn(
        "Progress",
        format="%.0f%%",
        min_value=0,
        max_value=100,
        help="(current − baseline) / (target − baseline); above 100% the target is passed.",
    ),
    **{
        "Target date": st.column_config.DateColumn(format="D MMM YYYY"),
        "Projected": st.column_config.DateColumn(
            format="D MMM YYYY", help="When the trend of the last 90 days reaches the target; empty when moving away."
        ),
    },
    Current=st.column_config.NumberColumn(
        "Current", format="%.3g", help=f"Mean of the last {outcomes.CURRENT_DAYS} days"
    ),
)


@st.fragment
def outcome_section(outcome: dict[str, object], expanded: bool) -> None:
    """One metric's expander, drawn only while open: its figures, chart and the work under it.

    Each section is a fragment with a lazy expander: a page of nine metrics sends and draws one chart,
    not nine (the daily series were most of the page's bytes), and opening another reruns only it.
    """
    metric_id, unit = str(outcome["metric_id"]), str(outcome["unit"] or "")
    colour = STATUS_COLOURS.get(str(outcome["status"]), "gray")
    section = st.expander(
        f"{plain(outcome['name'])} · {outcome['status']}",
        expanded=expanded,
        key=f"{PAGE}.section.{metric_id}",
        on_change="rerun",
    )
    if not section.open:
        return
    with section:
        progress_text = (
            "" if outcome["progress"] is None else f" · {round(outcome['progress'] * 100):d}% of the way to target"
        )
        st.markdown(f":{colour}-badge[{outcome['status']}]{progress_text}")
        cells = st.columns(4)
        cells[0].metric("Baseline", "—" if outcome["baseline"] is None else f"{outcome['baseline']:.3g} {unit}")
        cells[1].metric(
            "Current",
            "—" if outcome["current"] is None else f"{outcome['current']:.3g} {unit}",
            help=f"Mean of the last {outcomes.CURRENT_DAYS} days of observations (segment 'all').",
        )
        target_text = "not set" if outcome["target"] is None else f"{outcome['target']:.3g} {unit}"
        by = f" by {outcome['target_date']:%-d %b %Y}" if outcome["target_date"] else ""
        cells[2].metric("Target", target_text, help=f"Target{by}; set on the Metrics page.")
        cells[3].metric(
            "Projected",
            "—" if outcome["projected_date"] is None else f"{outcome['projected_date']:%-d %b %Y}",
            help=f"When the straight line fitted to the last {outcomes.TREND_DAYS} days reaches the target.",
        )
        series = metric_series(data, data.store.workspace.home.as_posix(), data.version, metric_id)
        if series.height:
            figure = outcome_figure(series, outcome["name"], unit, outcome["target"], outcome["baseline"])
            st.plotly_chart(figure, key=f"{PAGE}.chart.{metric_id}")
        else:
            st.caption("No observations yet: import them on the Data page.")

        under = tree.filter(pl.col("metric_id") == metric_id, pl.col("feature_id").is_not_null())
        if under.height == 0:
            st.caption("No capability or feature is aimed at this outcome yet.")
            return
        still_open = under.filter(pl.col("is_open")).select("feature_id", "feature_name").unique().sort("feature_id")
        capabilities = _plural(under["capability_id"].drop_nulls().n_unique(), "capability", "capabilities")
        open_list = ", ".join(f"{plain(f)} {plain(n)}" for f, n in still_open.iter_rows())
        st.markdown(
            f"**{_plural(under['feature_id'].n_unique(), 'feature', 'features')}** under {capabilities}; "
            f"**{still_open.height} still open**" + (f": {open_list}" if open_list else ".")
        )
        columns = [
            pl.col("capability_name").fill_null("(no capability)").alias("Capability"),
            pl.col("feature_id").alias("Feature"),
            pl.col("feature_name").alias("Name"),
            pl.col("team_id").alias("Team"),
            pl.col("status").alias("Status"),
        ]
        if detail_teams:
            columns += [pl.col("work_items_done").alias("Work items done"), pl.col("work_items").alias("Work items")]
        table(
            under.sort(pl.col("is_open").not_(), "capability_id", "feature_id").select(columns),
            key=f"{PAGE}.tree.{metric_id}",
            caption="Open (planned or in progress) features first."
            + (" Work item counts are shown only for teams whose detail you may see." if detail_teams else ""),
        )


for index, outcome in enumerate(summary.iter_rows(named=True)):
    outcome_section(outcome, expanded=index == 0)

if detail_teams:
    st.subheader("Work items of a feature")
    visible_work = access.restrict(me, data["work_items"], level="activity", detail=True)
    options = (
        tree.filter(pl.col("team_id").is_in(detail_teams), pl.col("work_items") > 0)
        .select("feature_id", "feature_name")
        .unique()
        .sort("feature_id")
    )
    picked = st.selectbox(
        "Feature",
        options["feature_id"].to_list(),
        index=None,
        format_func=lambda f: f"{f} · {dict(options.iter_rows())[f]}",
        key=f"{PAGE}.work_feature",
        placeholder="Choose a feature of your team to list its work items",
    )
    if picked is not None:
        table(
            visible_work.filter(pl.col("feature_id") == picked)
            .select("work_item_key", "title", "type", "status", "story_points", "created_at", "resolved_at")
            .sort("created_at")
            .collect(),
            key=f"{PAGE}.work_items",
            caption="Work items linked to this feature; done once resolved.",
        )

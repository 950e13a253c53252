"""Home: where things stand, at the level the signed-in role works at."""

from __future__ import annotations

import polars as pl
import streamlit as st

from core import access, costs, overview
from core.delivery.throughput import throughput_series
from ui import caches
from ui.data import page_data
from ui.widgets import page_header, plain, table

PAGE = "home"
data = page_data()
viewer = data.viewer
as_of = caches.as_of(data)
q_start, q_end = overview.quarter_bounds(as_of)
quarter = overview.quarter_label(q_start)
money = caches.cost_settings(data).currency
page_header("Home", f"Where things stand; the data runs up to {as_of:%d %b %Y}.", viewer)


def _number(value: float) -> str:
    """A metric level with as many decimals as its size needs (894, 41.3, 0.39)."""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.1f}" if abs(value) >= 10 else f"{value:,.2f}"


# Outcomes against their targets: every role sees outcome level.
st.subheader("Outcomes against target")
progress = access.restrict(viewer, caches.outcome_progress(data).lazy(), level="outcome", team_column=None).collect()
if progress.is_empty():
    st.info("No outcome metric is defined yet. Delivery leads and admins define them on the Metrics page.")
for row_start in range(0, progress.height, 4):
    columns = st.columns(4)
    for column, metric in zip(columns, progress.slice(row_start, 4).iter_rows(named=True), strict=False):
        with column.container(border=True):
            unit = f" {metric['unit']}" if metric["unit"] and len(metric["unit"]) <= 5 else ""
            current = "no data" if metric["current"] is None else f"{_number(metric['current'])}{unit}"
            full_unit = f" {metric['unit']}" if metric["unit"] else ""
            target = "no target" if metric["target"] is None else f"target {_number(metric['target'])}{full_unit}"
            st.metric(
                plain(metric["name"]),
                current,
                delta=None if metric["progress"] is None else f"{metric['progress']:.0%} of the way",
                delta_color="off",
                help="Current = mean of the last 28 days; progress = (current − baseline) ÷ (target − baseline).",
            )
            projected = metric["projected_date"]
            when = f"; projected {projected:%b %Y}" if projected else ""
            by = f" by {metric['target_date']:%b %Y}" if metric["target_date"] else ""
            st.caption(f"{target}{by} · **{metric['status']}**{when}")

# Last complete quarter: value and cost for everyone, delivery figures for those who see output level.
own_team = viewer.team_id if viewer.role == "team_lead" else None
st.subheader(f"{quarter}" + (f" · team {own_team}" if own_team else " · organisation"))
daily = caches.daily_throughput(data).lazy()
if own_team:
    daily = daily.filter(pl.col("team_id") == own_team)
series = throughput_series(daily, "quarter", start=q_start, end=q_end).collect()
row = series.row(0, named=True) if series.height else {}
lines = caches.cost_rollup(data).lazy()
features = data["features"]
if own_team:
    lines, features = lines.filter(pl.col("team_id") == own_team), features.filter(pl.col("team_id") == own_team)
summary = (
    costs.cost_summary(lines, features, f"{q_start.year}Q{(q_start.month - 1) // 3 + 1}").collect().row(0, named=True)
)
cells = st.columns(4)
pending = row.get("features_pending", 0)
cells[0].metric(
    "Features confirmed",
    row.get("features_confirmed", 0),
    delta=f"{pending} still pending" if pending else None,
    delta_color="off",
    help="Features delivered this quarter whose hypothesis verdict is confirmed (outcome level); pending ones "
    "are still inside their judging window.",
)
cells[1].metric(
    "Realised value",
    f"{(row.get('realised_value') or 0):,.0f} {money}",
    help=f"Confirmed change in each metric × its money value per unit, in {money}.",
)
median_cost = summary["median_cost_per_delivered_feature"]
cells[2].metric(
    "Cost per delivered feature",
    "—" if median_cost is None else f"{median_cost:,.0f} {money}",
    help=f"Median of all attributed cost ({money}) of the features delivered in {quarter}. "
    f"Rules on: {summary['rules_on']}.",
)
cells[3].metric(
    "Attribution coverage",
    f"{summary['coverage_pct']:.0f}%" if summary["coverage_pct"] is not None else "—",
    help="Share of the quarter's cost that the attribution rules tied to a feature.",
)
if access.may_see(viewer, "output", own_team):
    lead = overview.feature_lead_times(features, q_start, q_end).collect()
    lead_days = lead["lead_days"].drop_nulls()
    cells = st.columns(4)
    cells[0].metric("Features delivered", row.get("features_delivered", 0), help="Output level.")
    cells[1].metric(
        "Median feature lead time",
        "—" if lead_days.is_empty() else f"{lead_days.median():.0f} days",
        help="Days from a feature's start of work to its delivery, median over features delivered this quarter"
        + (
            f"; {lead.height - lead_days.len()} of {lead.height} have no start date (set `started_at`, e.g. Jira's "
            "`Custom field (Start date)`)."
            if lead.height > lead_days.len()
            else "."
        ),
    )
    cells[2].metric(
        "Refuted or inconclusive",
        row.get("features_refuted", 0) + row.get("features_inconclusive", 0),
        help="Delivered features whose measured change did not confirm the prediction.",
    )
    if access.may_see(viewer, "activity", own_team):
        cells[3].metric("PRs merged", row.get("prs_merged", 0), help="Activity level: busy is not the same as value.")

if own_team and access.may_see_detail(viewer, own_team):
    st.subheader("Your team's features")
    listing = overview.team_features(data["features"], caches.judged(data).lazy(), own_team)
    table(
        access.restrict(viewer, listing.with_columns(pl.lit(own_team).alias("team_id")), level="output", detail=True)
        .drop("team_id")
        .collect(),
        key=f"{PAGE}.team_features",
    )

if viewer.role == "admin":
    st.subheader("Workspace")
    counts = data.store.counts()
    table(
        pl.DataFrame({"entity": list(counts), "rows": list(counts.values())}),
        key=f"{PAGE}.counts",
        caption=f"Snapshot version {data.version}; last write {data.store.get_meta('last_write_at') or 'never'} UTC.",
    )

"""Home: where things stand, at the level the signed-in role works at."""

from __future__ import annotations

from functools import partial

import polars as pl
import streamlit as st

from core import access, overview, setup
from core.delivery.throughput import throughput_series
from ui import caches
from ui import format as fmt
from ui.data import page_data
from ui.widgets import page_header, plain, table

PAGE = "home"
data = page_data()
viewer = data.viewer
as_of = caches.as_of(data)
q_start, q_end = overview.quarter_bounds(as_of)
quarter = overview.quarter_label(q_start)
page_header("Home", f"Where things stand; the data runs up to {as_of:%d %b %Y}.", viewer)


def _progress(progress: float | None, status: str) -> str | None:
    """How far a metric has come from its baseline to its target, in words that cannot contradict its status."""
    if progress is None:
        return None
    if status == "reached" or progress >= 1:
        return "target reached"
    if fmt.percent(progress) == "0%":
        return "no progress from the baseline yet"
    if progress < 0:
        return f"{fmt.percent(-progress)} further from target than the baseline"
    return f"{fmt.percent(progress)} of the way to target"


# Outcomes against their targets: every role sees outcome level.
st.subheader("Outcomes against target")
progress = access.restrict(viewer, caches.outcome_progress(data).lazy(), level="outcome", team_column=None).collect()
if progress.is_empty():
    st.info("No outcome metric is defined yet. Delivery leads and admins define them on the Metrics page.")
for row_start in range(0, progress.height, 4):
    columns = st.columns(4)
    for column, metric in zip(columns, progress.slice(row_start, 4).iter_rows(named=True), strict=False):
        with column.container(border=True):
            unit = f" {metric['unit']}" if metric["unit"] else ""
            current = "no data" if metric["current"] is None else f"{fmt.number(metric['current'])}{unit}"
            target = "no target" if metric["target"] is None else f"target {fmt.number(metric['target'])}{unit}"
            st.metric(
                plain(metric["name"]),
                current,
                delta=_progress(metric["progress"], metric["status"]),
                delta_color="off",
                help="Current = mean of the last 28 days; progress = (current − baseline) ÷ (target − baseline).",
            )
            projected = metric["projected_date"]
            when = f"; projected {projected:%b %Y}" if projected and metric["status"] != "reached" else ""
            by = f" by {metric['target_date']:%b %Y}" if metric["target_date"] else ""
            st.caption(f"{target}{by} · **{metric['status']}**{when}")

# Last complete quarter: the quarterly review's figures (the same answer as its page), activity for those who see it.
own_team = viewer.team_id if viewer.role == "team_lead" else None
st.subheader(f"{quarter}" + (f" · team {own_team}" if own_team else " · organisation"))
period = overview.last_complete_quarter(as_of)
answer = access.restrict_quarterly(viewer, caches.quarterly_answer(data, period.label, own_team))
money = partial(fmt.money, currency=answer.currency)
features = data["features"]
if own_team:
    features = features.filter(pl.col("team_id") == own_team)
cells = st.columns(4)
cells[0].metric(
    "Features delivered",
    answer.delivered,
    delta=f"{answer.with_hypothesis} with a hypothesis",
    delta_color="off",
    help=f"Features delivered in {quarter}; those with no hypothesis cannot show what they changed.",
)
cells[1].metric(
    "Features confirmed",
    answer.verdicts["confirmed"],
    delta=f"{answer.verdicts['pending']} still pending" if answer.verdicts["pending"] else None,
    delta_color="off",
    help=f"Of the {answer.judged} judged (confirmed, refuted or inconclusive) among the features delivered in "
    f"{quarter}; pending ones are still inside their judging window.",
)
cells[2].metric(
    "Realised value",
    money(answer.realised_value),
    help=f"Confirmed change in each metric × its money value per unit, for the features delivered in {quarter}; "
    f"they cost {money(answer.delivered_cost)}.",
)
cells[3].metric(
    "Median cost per delivered feature",
    money(answer.median_cost),
    help=fmt.figure_help(
        answer.median_cost,
        f"Median over the features delivered in {quarter} of all cost attributed to each up to the quarter's end; "
        f"the mean is {money(answer.mean_cost)}.",
        "no feature was delivered",
    ),
)
if access.may_see(viewer, "output", own_team):
    lead = overview.feature_lead_times(features, q_start, q_end).collect()
    lead_days = lead["lead_days"].drop_nulls()
    cells = st.columns(4)
    cells[0].metric(
        "Median feature lead time",
        fmt.MISSING if lead_days.is_empty() else fmt.duration(lead_days.median()),
        help=fmt.figure_help(
            None if lead_days.is_empty() else 0,
            "From a feature's start of work to its delivery, median over features delivered this quarter"
            + (
                f"; {lead.height - lead_days.len()} of {lead.height} have no start date (set `started_at`, e.g. "
                "Jira's `Custom field (Start date)`)."
                if lead.height > lead_days.len()
                else "."
            ),
            "no feature delivered this quarter has a start date",
        ),
    )
    cells[1].metric(
        "Refuted or inconclusive",
        answer.verdicts["refuted"] + answer.verdicts["inconclusive"],
        help="Delivered features whose measured change did not confirm the prediction.",
    )
    cells[2].metric(
        "Spend linked to no feature",
        fmt.percent(answer.unlinked_share),
        help=f"{money(answer.unlinked_spend)} of {money(answer.spend)} spent in {quarter}.",
    )
    if access.may_see(viewer, "activity", own_team):
        daily = caches.daily_throughput(data).lazy()
        if own_team:
            daily = daily.filter(pl.col("team_id") == own_team)
        series = throughput_series(daily, "quarter", start=q_start, end=q_end).collect()
        merged = series["prs_merged"][0] if series.height else 0
        cells[3].metric("PRs merged", merged, help="Activity level: busy is not the same as value.")
if access.may_open(viewer, "quarterly"):
    st.page_link("pages/quarterly.py", label=f"The {quarter} review, feature by feature", icon=":material/summarize:")

if own_team and access.may_see_detail(viewer, own_team):
    st.subheader("Your team's features")
    listing = overview.team_features(data["features"], caches.judged(data).lazy(), own_team)
    shown = (
        access.restrict(viewer, listing.with_columns(pl.lit(own_team).alias("team_id")), level="output", detail=True)
        .drop("team_id")
        .with_columns(
            pl.col("started_at").dt.strftime("%d %b %Y").fill_null(f"{fmt.MISSING} not started"),
            pl.col("delivered_at").dt.strftime("%d %b %Y").fill_null(f"{fmt.MISSING} not delivered yet"),
            pl.col("verdict").fill_null(f"{fmt.MISSING} no hypothesis"),
            pl.col("explanation").fill_null(""),
            pl.col("status").str.replace_all("_", " "),
        )
        .collect()
    )
    table(fmt.labelled(shown, {"feature_id": "Feature id", "name": "Feature"}), key=f"{PAGE}.team_features")

if viewer.role == "admin":
    counts = data.store.counts()
    if not setup.is_set_up(counts):
        st.subheader("Setup checklist")
        st.caption("What each headline number needs, what is there, and the next step.")
        reached = setup.reach(
            data["features"],
            data["metrics"],
            data["pull_requests"],
            data["deployments"],
            caches.judged(data),
            caches.cost_rollup(data),
            caches.cost_settings(data).currency,
        )
        for row in setup.setup_checklist(counts, reached):
            with st.container(border=True):
                left, right = st.columns([3, 2])
                left.markdown(f"**{row.number}** · coverage {fmt.percent(row.coverage)}")
                left.caption(f"Needs {row.needs}. There: {row.present}.")
                right.page_link(f"pages/{row.next_page}.py", label=row.next_step)
    st.subheader("Workspace")
    table(
        pl.DataFrame({"Entity": [fmt.human_label(e) for e in counts], "Rows": list(counts.values())}),
        key=f"{PAGE}.counts",
        caption=f"Snapshot version {data.version}; last write {data.store.get_meta('last_write_at') or 'never'} UTC.",
    )

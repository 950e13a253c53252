"""Quarterly review: did the work shipped last quarter change anything for customers, and what did it cost?"""

from __future__ import annotations

from functools import partial

import polars as pl
import streamlit as st

from core import access, overview
from core.cli import quarterly
from ui import caches
from ui import format as fmt
from ui.data import page_data
from ui.widgets import page_header, table, team_labels

PAGE = "quarterly"
data = page_data()
viewer = data.viewer
page_header(
    "Quarterly review",
    "What the quarter's delivered features changed for customers, and what they cost.",
    viewer,
)

quarters = overview.review_quarters(data["features"], caches.as_of(data))
names = team_labels(data["teams"])
scopes: list[str | None] = [None, *names]
pick_quarter, pick_scope = st.columns(2)
period = pick_quarter.selectbox(
    "Quarter", quarters, index=0, key=f"{PAGE}.quarter", help="The last complete quarter is chosen first."
)
team_id = pick_scope.selectbox(
    "Scope",
    scopes,
    index=scopes.index(viewer.team_id) if viewer.team_id in scopes else 0,
    format_func=lambda t: "Whole organisation" if t is None else names[t],
    key=f"{PAGE}.team",
)
answer = access.restrict_quarterly(viewer, caches.quarterly_answer(data, period, team_id))
money = partial(fmt.money, currency=answer.currency)

st.markdown("\n".join(f"- {sentence}" for sentence in answer.sentences()))
st.caption(answer.trend_sentence())

cells = st.columns(5)
cells[0].metric(
    "Features delivered",
    answer.delivered,
    help=f"Features delivered in {answer.period.label}; {answer.with_hypothesis} of them had a hypothesis.",
)
cells[1].metric(
    "Confirmed",
    answer.verdicts["confirmed"],
    help=f"Of {answer.judged} judged (confirmed, refuted or inconclusive); pending and confounded are not judged.",
)
cells[2].metric(
    "Median cost per delivered feature",
    fmt.money_compact(answer.median_cost, answer.currency),
    help=fmt.figure_help(
        answer.median_cost,
        f"{money(answer.median_cost)}: median over the features delivered in the quarter of every cost "
        "attributed to each up to the quarter's end.",
        "no feature was delivered",
    ),
)
cells[3].metric(
    "Mean cost per delivered feature",
    fmt.money_compact(answer.mean_cost, answer.currency),
    help=fmt.figure_help(
        answer.mean_cost,
        f"{money(answer.mean_cost)}: cost of the delivered features ({money(answer.delivered_cost)}) "
        f"÷ {answer.delivered}.",
        "no feature was delivered",
    ),
)
cells[4].metric(
    "Spend linked to no feature",
    fmt.percent(answer.unlinked_share),
    help=fmt.figure_help(
        answer.unlinked_share,
        f"{money(answer.unlinked_spend)} of {money(answer.spend)} spent in the quarter reached no feature.",
        "nothing was spent",
    ),
)

st.subheader("Delivered features")
if answer.features.is_empty():
    st.info(f"No feature was delivered in {answer.period.label}.")
else:
    table(
        answer.features.select(
            pl.col("name").alias("Feature"),
            pl.col("team").alias("Team"),
            pl.Series("Cost", [money(v) for v in answer.features["cost"]]),
            pl.col("outcome_metric").fill_null(fmt.MISSING).alias("Outcome metric"),
            pl.col("verdict").alias("Verdict"),
            pl.Series("Realised value", [money(v) for v in answer.features["realised_value"]]),
        ),
        key=f"{PAGE}.features",
        caption="Cost: every cost attributed to the feature up to the quarter's end. Realised value: the confirmed "
        "change in the metric × its money value per unit.",
    )

st.subheader("Outcome metrics that moved")
if answer.moved.is_empty():
    st.caption(f"No outcome metric's quarter mean moved by 2% or more against {answer.previous.label}.")
for metric in answer.moved.iter_rows(named=True):
    unit = f" {metric['unit']}" if metric["unit"] else ""
    aimed = (
        f"; {fmt.count(metric['features_aimed'], 'delivered feature')} aimed at it, "
        f"{metric['features_confirmed']} confirmed"
        if metric["features_aimed"]
        else ""
    )
    st.markdown(
        f"- **{metric['name']}**: {fmt.number(metric['previous_level'])} → {fmt.number(metric['level'])}{unit} "
        f"({fmt.change(metric['change_pct'], digits=1)}, {'better' if metric['better'] else 'worse'}){aimed}."
    )

st.subheader("Next steps")
missing = answer.without_hypothesis
if missing.height:
    listed = ", ".join(missing["name"].head(5).to_list()) + (" …" if missing.height > 5 else "")
    st.markdown(f"{fmt.count(missing.height, 'delivered feature')} shipped with no hypothesis: {listed}.")
    if access.may_open(viewer, "hypotheses"):
        st.page_link("pages/hypotheses.py", label="State their hypotheses", icon=":material/lightbulb:")
    else:
        st.caption("Their team leads or delivery leads state hypotheses on the Hypotheses page.")
if answer.unlinked_spend:
    st.markdown(f"{money(answer.unlinked_spend)} of the quarter's spend is linked to no feature.")
    st.page_link("pages/cost.py", label="See the unlinked spend", icon=":material/payments:")
st.page_link("pages/impact.py", label="Every verdict and how it was measured", icon=":material/fact_check:")

st.subheader("Forward it")
downloads = st.columns(len(quarterly.FORMATS))
for column, kind in zip(downloads, quarterly.FORMATS, strict=True):
    column.download_button(
        {"html": "Report (HTML)", "md": "Report (Markdown)", "csv": "Figures (CSV)"}[kind],
        data=partial(quarterly.quarterly_report, answer, kind),  # built on the click, not on every rerun
        file_name=quarterly.report_file_name(answer, kind),
        mime=quarterly.MEDIA_TYPES[kind],
        key=f"{PAGE}.download.{kind}",
    )
st.caption("The file opens offline and on a phone; it carries the same figures as this page.")

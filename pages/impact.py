"""Impact verdicts: did each delivered feature move its outcome metric as its hypothesis predicted?"""

from __future__ import annotations

from datetime import timedelta

import plotly.graph_objects as go
import polars as pl
import streamlit as st

from core import access
from core.access import Viewer
from ui import caches
from ui.data import PageData, page_data
from ui.widgets import page_header, plain, table

PAGE = "impact"
VERDICTS = ("confirmed", "refuted", "inconclusive", "pending", "confounded")
VERDICT_COLOURS = {
    "confirmed": "green",
    "refuted": "red",
    "inconclusive": "orange",
    "pending": "blue",
    "confounded": "violet",
}
METHOD_SHORT = {"interrupted time series": "ITS", "difference-in-differences": "DiD"}
HOW = (
    "Each delivered feature's outcome metric is compared before and after delivery: an interrupted time series "
    "(segmented regression on the daily observations with weekday effects, against the metric's own trend), or "
    "difference-in-differences against a control segment when the feature names one. Errors are corrected for "
    "autocorrelation (Prais–Winsten, then Newey–West). **Confirmed**: the 95% interval excludes zero in the predicted "
    "direction. **Refuted**: the interval excludes the predicted change, or the effect went the wrong way. "
    "**Pending**: the judging window is not over. **Confounded**: another feature aimed at the same metric shipped "
    "inside the window. Otherwise **inconclusive**."
)

data = page_data()
me = data.viewer
page_header(
    "Impact verdicts",
    "Did each delivered feature move the outcome metric its hypothesis named, by as much as predicted?",
    me,
)

RELATIVE = pl.col("change_kind") == "relative"


def _amount(value: pl.Expr, signed: bool = True) -> pl.Expr:
    """A change in the prediction's own kind as text: '+5.2%' for relative, '+0.25 days' for absolute."""
    sign = pl.when(value > 0).then(pl.lit("+")).otherwise(pl.lit("")) if signed else pl.lit("")
    unit = pl.when(pl.col("unit").is_not_null()).then(pl.lit(" ") + pl.col("unit")).otherwise(pl.lit(""))
    as_percent = pl.format("{}{}%", sign, (value * 100).round_sig_figs(3))
    as_units = pl.format("{}{}{}", sign, value.round_sig_figs(3), unit)
    return pl.when(value.is_null()).then(pl.lit(None, pl.String)).when(RELATIVE).then(as_percent).otherwise(as_units)


# Kept per data version and viewer: formatting every verdict costs more than the rest of a rerun at
# large-organisation scale, and the filters below only select from it.
@st.cache_resource(max_entries=16, show_spinner=False)
def verdict_rows(_data: PageData, home: str, version: int, viewer: Viewer) -> pl.DataFrame:
    """Every delivered feature's verdict the viewer may see, with its feature, metric and formatted changes."""
    features = _data["features"].select("feature_id", pl.col("name").alias("feature_name"), "team_id")
    metric_names = access.restrict_metrics(viewer, _data["metrics"]).select(
        "metric_id", pl.col("name").alias("metric_name"), "unit"
    )
    estimate = pl.when(RELATIVE).then(pl.col("estimate_rel")).otherwise(pl.col("estimate_abs"))
    low = pl.when(RELATIVE).then(pl.col("ci_low_rel")).otherwise(pl.col("ci_low_abs"))
    high = pl.when(RELATIVE).then(pl.col("ci_high_rel")).otherwise(pl.col("ci_high_abs"))
    return (
        access.restrict(
            viewer,
            caches.judged(_data).lazy().join(features, on="feature_id", how="left"),
            level="outcome",
        )
        .join(metric_names, on="metric_id", how="inner")
        .with_columns(
            _amount(pl.col("predicted_change")).alias("predicted"),
            _amount(estimate).alias("measured"),
            pl.when(low.is_not_null())
            .then(pl.format("{} to {}", _amount(low, signed=False), _amount(high, signed=False)))
            .alias("interval_95"),
            pl.col("confounded_by").list.join(", ").alias("confounded_with"),
            pl.when(pl.col("retrospective")).then(pl.lit("retrospective")).otherwise(pl.lit("")).alias("recorded"),
        )
        .sort(["delivered_on", "feature_id"], descending=[True, False])
        .collect()
    )


verdicts = verdict_rows(data, data.store.workspace.home.as_posix(), data.version, me)

if verdicts.height == 0:
    st.info(
        "No delivered feature has a hypothesis yet. Record hypotheses before building on the Hypotheses page; "
        "features are judged here once delivered."
    )
    st.stop()

team_ids = sorted(verdicts["team_id"].drop_nulls().unique().to_list())
metric_label = dict(verdicts.select("metric_id", "metric_name").unique().iter_rows())
delivered_quarters = verdicts.select(
    pl.format("{}Q{}", pl.col("delivered_on").dt.year(), pl.col("delivered_on").dt.quarter()).alias("quarter")
)["quarter"]
quarters = sorted(delivered_quarters.unique().to_list(), reverse=True)
period, left, middle, right = st.columns(4)
chosen_quarter = period.selectbox(
    "Delivered in",
    [None, *quarters],
    format_func=lambda q: "Any quarter" if q is None else q,
    key=f"{PAGE}.quarter",
)
chosen_verdicts = left.multiselect("Verdict", VERDICTS, key=f"{PAGE}.verdict", placeholder="All verdicts")
chosen_teams = middle.multiselect("Team", team_ids, key=f"{PAGE}.team", placeholder="All teams")
chosen_metrics = right.multiselect(
    "Outcome metric",
    sorted(metric_label),
    format_func=metric_label.get,
    key=f"{PAGE}.metric",
    placeholder="All outcome metrics",
)
shown = verdicts.filter(
    pl.col("verdict").is_in(chosen_verdicts or VERDICTS),
    pl.col("team_id").is_in(chosen_teams) if chosen_teams else pl.lit(True),
    pl.col("metric_id").is_in(chosen_metrics) if chosen_metrics else pl.lit(True),
    delivered_quarters == chosen_quarter if chosen_quarter else pl.lit(True),
)

counts = dict(shown["verdict"].value_counts().iter_rows())
for column, verdict in zip(st.columns(len(VERDICTS)), VERDICTS, strict=True):
    column.metric(
        verdict.capitalize(),
        counts.get(verdict, 0),
        help=f"Delivered features with a hypothesis whose verdict is {verdict}, under the filters above.",
    )
holding = shown.filter((pl.col("verdict") == "confirmed") & pl.col("holds_together").fill_null(False)).height
st.caption(
    f"As of {caches.as_of(data):%-d %b %Y}, the last day with data. Counts are each verdict judged on its own; "
    f"{holding} of the {counts.get('confirmed', 0)} confirmations still hold when each quarter's verdicts are "
    f"judged together (Benjamini–Hochberg, false discovery rate 5%). How is this computed? {HOW}"
)

table(
    shown.select(
        pl.col("feature_id").alias("Feature"),
        pl.col("feature_name").alias("Name"),
        pl.when(pl.col("recorded") == "retrospective")
        .then(pl.format("{} (retrospective)", pl.col("verdict")))
        .otherwise(pl.col("verdict"))
        .alias("Verdict"),
        pl.col("team_id").alias("Team"),
        pl.col("metric_name").alias("Outcome metric"),
        pl.col("predicted").alias("Predicted"),
        pl.col("measured").fill_null("—").alias("Measured"),
        pl.col("interval_95").fill_null("—").alias("95% interval"),
        pl.col("method").alias("Method"),
        pl.when(pl.col("holds_together"))
        .then(pl.format("yes, with {} judged together", pl.col("judged_together")))
        .when(~pl.col("holds_together"))
        .then(pl.format("no, with {} judged together", pl.col("judged_together")))
        .otherwise(pl.lit("—"))
        .alias("Holds together"),
        pl.col("delivered_on").alias("Delivered"),
        pl.col("judge_on").alias("Judged on"),
        pl.col("confounded_with").alias("Confounded with"),
        pl.col("explanation").alias("Explanation"),
    ),
    key=f"{PAGE}.table",
    caption="Relative changes are against the level the metric would have had without the feature; absolute "
    "changes are in the metric's unit. 'Judged on' is the last day of the judging window.",
)

st.subheader("A feature's verdict")
labels = dict(
    shown.select(
        "feature_id",
        pl.format("{} · {} · {}", "feature_id", pl.col("feature_name").fill_null(""), "verdict").alias("label"),
    ).iter_rows()
)
feature_id = st.selectbox(
    "Feature",
    list(labels),
    index=None,
    format_func=labels.get,
    key=f"{PAGE}.feature",
    placeholder="Choose a feature to see its chart and explanation",
)
if feature_id is None:
    st.stop()

row = shown.filter(pl.col("feature_id") == feature_id).row(0, named=True)
lag_days = (
    data["hypotheses"].filter(pl.col("feature_id") == feature_id).select(pl.col("lag_days").fill_null(0)).collect()
)
effect_start = row["delivered_on"] + timedelta(days=int(lag_days.item()) if lag_days.height else 0)
colour = VERDICT_COLOURS[row["verdict"]]
st.markdown(
    f"**{plain(row['feature_name'])}** ({plain(feature_id)}, team {plain(row['team_id'])}): "
    f":{colour}-badge[{row['verdict']}]"
)
st.markdown(plain(row["explanation"]))
cells = st.columns(4)
cells[0].metric("Predicted", row["predicted"], help="The hypothesis's predicted change, locked at delivery.")
cells[1].metric(
    "Measured",
    row["measured"] or "—",
    help=f"95% interval {row['interval_95'] or 'not available'}. Estimated by {row['method']}.",
)
cells[2].metric("Method", METHOD_SHORT.get(row["method"], row["method"]), help=row["method"])
cells[3].metric("Judged on", f"{row['judge_on']:%-d %b %Y}", help="The last day of the judging window.")
if row["confounded_with"]:
    others = verdicts.filter(pl.col("feature_id").is_in(row["confounded_by"]))
    names = ", ".join(f"{f} ({n})" for f, n in others.select("feature_id", "feature_name").iter_rows())
    st.warning(f"Confounded with {plain(names or row['confounded_with'])}: {plain(row['explanation'])}")

series = caches.fitted_series(data, feature_id)
if series.height == 0:
    st.info("No observations of this metric around the delivery date yet.")
    st.stop()

unit = row["unit"] or ""
source = f"{row['metric_name']}, segment 'all'"
figure = go.Figure()
phases = {
    "before": ("Observed before delivery", "#7f8c8d"),
    "lag": ("Observed during the lag", "#bdc3c7"),
    "after": ("Observed in the judging window", "#1f77b4"),
}
for phase, (name, marker_colour) in phases.items():
    part = series.filter(pl.col("phase") == phase)
    if part.height:
        figure.add_scatter(
            x=part["date"],
            y=part["observed"],
            mode="markers",
            name=name,
            marker={"color": marker_colour, "size": 5},
            hovertemplate=f"%{{x|%-d %b %Y}}: %{{y:.4g}} {unit}<extra>observed: {source}</extra>",
        )
if series["control"].is_not_null().any():
    figure.add_scatter(
        x=series["date"],
        y=series["control"],
        mode="lines",
        name="Control segment",
        line={"color": "#95a5a6"},
        hovertemplate=f"%{{x|%-d %b %Y}}: %{{y:.4g}} {unit}<extra>observed: control segment</extra>",
    )
lines = (
    ("fitted_pre", "Fitted before delivery", {"color": "#34495e", "width": 2}),
    ("counterfactual", "Without the feature (counterfactual)", {"color": "#34495e", "width": 2, "dash": "dash"}),
    ("fitted_post", "Fitted after delivery", {"color": "#d62728", "width": 3}),
)
for column, name, style in lines:
    if series[column].is_not_null().any():
        figure.add_scatter(
            x=series["date"],
            y=series[column],
            mode="lines",
            name=name,
            line=style,
            hovertemplate=f"%{{x|%-d %b %Y}}: %{{y:.4g}} {unit}<extra>{name}: regression fit, average weekday</extra>",
        )
if effect_start > row["delivered_on"]:
    figure.add_vrect(x0=row["delivered_on"], x1=effect_start, fillcolor="#bdc3c7", opacity=0.25, line_width=0)
figure.add_vrect(x0=effect_start, x1=row["judge_on"], fillcolor="#aed6f1", opacity=0.25, line_width=0)
figure.add_vline(x=row["delivered_on"], line={"color": "#2c3e50", "dash": "dot"})
figure.add_annotation(
    x=row["delivered_on"], y=1, yref="paper", text="delivered", showarrow=False, xanchor="left", yanchor="bottom"
)
figure.add_annotation(
    x=row["judge_on"], y=1, yref="paper", text="window ends", showarrow=False, xanchor="right", yanchor="bottom"
)
figure.update_layout(
    title=f"{row['metric_name']} around {feature_id}'s delivery",
    yaxis_title=unit or row["metric_name"],
    legend={"orientation": "h", "y": -0.15},
    margin={"t": 60},
    height=460,
)
st.plotly_chart(figure, key=f"{PAGE}.chart")
lag_text = (
    f"the grey band is the {lag_days.item()}-day lag left out of the fit, "
    if effect_start > row["delivered_on"]
    else ""
)
st.caption(
    f"Points are daily observations of {source}; {lag_text}the blue band is the judging window. Lines are the "
    "segmented regression at the average weekday (for difference-in-differences, on top of the control segment); "
    "the dashed line is the pre-delivery fit carried forward, what the metric would have done without the "
    "feature. The gap between the red and dashed lines is the measured change."
)

"""Predicted vs actual: how well each team's predictions held, and a backlog ranked by what that teaches."""

from __future__ import annotations

import plotly.express as px
import plotly.graph_objects as go
import polars as pl
import streamlit as st

from core import access
from core.outcomes import ledger
from ui import caches
from ui.data import page_data
from ui.widgets import figure_builder, page_header, table, team_labels

PAGE = "learning"
DEFINITIONS = (
    "**Judged**: verdict confirmed, refuted or inconclusive (pending and confounded predictions are not judged); "
    "an inconclusive one with no measured change (too few observed days) has nothing to compare and is left out. "
    "**Hit rate**: confirmed ÷ judged. **Mean actual ÷ predicted**: the mean over judged predictions of measured "
    "change ÷ predicted change, each in the prediction's own kind (1.0 = exactly as predicted, 0.5 = half of it). "
    "**Calibration**: the mean credit of judged predictions — measured ÷ predicted change clipped to 0–1 when "
    "confirmed or refuted, nothing when inconclusive, so a noisy measurement earns no credit. **Interval score**: "
    "the 95% interval's width plus 40 × how far the prediction lies outside it, per unit predicted (lower is better). "
    "**Discount**: (credit + 0.5) ÷ (judged + 1), so a team without a track record counts half its predictions and "
    "one lucky call is not taken as certainty. Retrospective predictions (recorded after delivery) are listed but "
    "earn no credit."
)
COST_BASIS = {
    "provided": "median attributed cost of the team's delivered features",
    "estimate": "the feature's own estimate",
}
TREND_MEASURES = {
    "calibration": "Calibration",
    "hit_rate": "Hit rate",
    "mean_actual_to_predicted": "Mean actual ÷ predicted",
}

data = page_data()
me = data.viewer
currency = caches.cost_settings(data).currency
page_header(
    "Predicted vs actual",
    "How close did each team's predictions come to what was measured, and what should be built next because of it?",
    me,
)

features = data["features"].select("feature_id", pl.col("name").alias("feature_name"))
metric_names = access.restrict_metrics(me, data["metrics"]).select(
    "metric_id", pl.col("name").alias("metric_name"), "unit"
)
relative = pl.col("change_kind") == "relative"


@figure_builder
def trend_figure(trend: pl.DataFrame, measure: str) -> go.Figure:
    """One line per team (and a thick one for all teams) of ``measure`` per delivery quarter."""
    figure = px.line(
        trend.to_pandas(),
        x="quarter",
        y=measure,
        color="team_id",
        markers=True,
        hover_data={"judged": True, "confirmed": True},
        labels={"quarter": "Delivery quarter", measure: TREND_MEASURES[measure], "team_id": "Team"},
        title=f"{TREND_MEASURES[measure]} per team by delivery quarter",
    )
    figure.update_xaxes(categoryorder="category ascending")
    figure.update_traces(selector={"name": "All teams"}, line={"width": 4, "color": "#2c3e50"})
    if measure != "mean_actual_to_predicted":
        figure.update_yaxes(tickformat=".0%", range=[-0.05, 1.05])
    figure.update_layout(height=380, margin={"t": 50})
    return figure


def _amount(value: pl.Expr) -> pl.Expr:
    """A change in the prediction's own kind as text: '+5.2%' for relative, '+0.25 days' for absolute."""
    sign = pl.when(value > 0).then(pl.lit("+")).otherwise(pl.lit(""))
    unit = pl.when(pl.col("unit").is_not_null()).then(pl.lit(" ") + pl.col("unit")).otherwise(pl.lit(""))
    as_percent = pl.format("{}{}%", sign, (value * 100).round_sig_figs(3))
    as_units = pl.format("{}{}{}", sign, value.round_sig_figs(3), unit)
    return pl.when(value.is_null()).then(pl.lit(None, pl.String)).when(relative).then(as_percent).otherwise(as_units)


team_names = team_labels(data["teams"])


def _team_name(team_id: pl.Expr) -> pl.Expr:
    """The team's name where it has one; "No team" for features without one."""
    return team_id.replace_strict(team_names, default=team_id, return_dtype=pl.String).fill_null("No team")


predictions = access.restrict(
    me, ledger.prediction_ledger(caches.judged(data).lazy(), data["features"]), level="outcome"
).collect()
calibration = ledger.team_calibration(predictions.lazy()).collect()

st.subheader("Per team")
table(
    calibration.select(
        _team_name(pl.col("team_id")).alias("Team"),
        pl.col("judged").alias("Judged"),
        pl.col("confirmed").alias("Confirmed"),
        (pl.col("hit_rate") * 100).alias("Hit rate"),
        pl.col("mean_actual_to_predicted").alias("Mean actual ÷ predicted"),
        (pl.col("calibration") * 100).alias("Calibration"),
        pl.col("discount").alias("Discount"),
    ),
    key=f"{PAGE}.teams",
    caption=f"How is this computed? {DEFINITIONS}",
    **{
        "Hit rate": st.column_config.NumberColumn(format="%.0f%%", help="Confirmed ÷ judged."),
        "Mean actual ÷ predicted": st.column_config.NumberColumn(
            format="%.2f", help="Mean of measured ÷ predicted change over judged predictions."
        ),
        "Calibration": st.column_config.NumberColumn(
            format="%.0f%%", help="Mean credit: measured ÷ predicted, clipped to 0–1; inconclusive earns 0."
        ),
        "Discount": st.column_config.NumberColumn(
            format="%.2f", help="(credit + 0.5) ÷ (judged + 1); multiplies the team's expected values below."
        ),
    },
)

st.subheader("Trend over quarters")
trend = pl.concat(
    [
        ledger.calibration_trend(predictions.lazy()).collect(),
        ledger.calibration_trend(predictions.with_columns(pl.lit("All teams").alias("team_id")).lazy()).collect(),
    ]
).with_columns(_team_name(pl.col("team_id")).alias("team_id"))
if trend.height:
    measure = (
        st.segmented_control(
            "Measure",
            list(TREND_MEASURES),
            default="calibration",
            format_func=TREND_MEASURES.get,
            key=f"{PAGE}.trend_measure",
        )
        or "calibration"
    )
    figure = trend_figure(trend, measure)
    st.plotly_chart(figure, key=f"{PAGE}.trend")
    st.caption(
        "Each point is one team's judged predictions of features delivered in that quarter (hover for how many); "
        "few predictions make a noisy point. The thick line is all teams together."
    )
else:
    st.caption("No judged prediction yet.")

st.subheader("Ledger: every judged prediction")
table(
    predictions.join(features.collect(), on="feature_id", how="left")
    .join(metric_names.collect(), on="metric_id", how="inner")
    .select(
        pl.col("feature_id").alias("Feature"),
        pl.col("feature_name").alias("Name"),
        _team_name(pl.col("team_id")).alias("Team"),
        pl.col("quarter").alias("Quarter"),
        pl.col("metric_name").alias("Outcome metric"),
        _amount(pl.col("predicted_change")).alias("Predicted"),
        _amount(pl.col("actual")).alias("Actual"),
        pl.format("{} to {}", _amount(pl.col("actual_low")), _amount(pl.col("actual_high"))).alias("95% interval"),
        pl.col("actual_to_predicted").alias("Actual ÷ predicted"),
        pl.col("contained").alias("Prediction inside interval"),
        pl.when(pl.col("retrospective"))
        .then(pl.format("{} (retrospective)", pl.col("verdict")))
        .otherwise(pl.col("verdict"))
        .alias("Verdict"),
    ),
    key=f"{PAGE}.ledger",
    caption="Predicted is the prediction locked at delivery; actual is the measured change with its 95% interval, "
    "both relative (%) or absolute (metric units) as the hypothesis stated. Each verdict's chart is on the Impact "
    "verdicts page.",
    **{"Actual ÷ predicted": st.column_config.NumberColumn(format="%.2f")},
)

st.subheader("Backlog ranked by discounted expected value per cost")
similar = caches.similar_feature_costs(data)
backlog = access.restrict(
    me,
    ledger.backlog_ranking(
        data["features"],
        data["hypotheses"],
        data["metrics"],
        data["metric_observations"],
        calibration.lazy(),
        caches.as_of(data),
        costs=similar.lazy(),
    ),
    level="outcome",
).collect()
bases = dict(backlog["cost_source"].fill_null("none").value_counts().iter_rows())
table(
    backlog.join(metric_names.collect(), on="metric_id", how="left").select(
        pl.col("rank").alias("Rank"),
        pl.col("feature_id").alias("Feature"),
        pl.col("name").alias("Name"),
        _team_name(pl.col("team_id")).alias("Team"),
        pl.col("status").alias("Status"),
        pl.col("metric_name").alias("Outcome metric"),
        _amount(pl.col("predicted_change")).alias("Predicted"),
        pl.col("discount").alias("Discount"),
        pl.col("expected_value").alias(f"Expected value ({currency})"),
        pl.col("cost").alias(f"Cost ({currency})"),
        pl.col("cost_source").replace_strict(COST_BASIS, default="none").alias("Cost basis"),
        pl.col("value_per_cost").alias("Value per cost"),
        (pl.col("improvement_rel_per_cost") * 1e6).alias(f"Relative improvement per 1M {currency}"),
        pl.col("basis").alias("Ranked by"),
    ),
    key=f"{PAGE}.backlog",
    caption=(
        "Undelivered features (planned or in progress). Expected improvement = predicted change in metric units "
        "(a relative change times the metric's current level, in its good direction) × the team's discount; "
        "expected value = that × the metric's money value per unit. Features whose metric has a money value are "
        "ranked by value per cost first, then the rest by relative improvement per cost; features without a "
        "hypothesis or cost come last. "
        f"Cost basis: {bases.get('provided', 0)} features use the median attributed cost of their team's delivered "
        f"features (cost engine), {bases.get('estimate', 0)} their own estimate (no delivered, costed feature in "
        f"the team), {bases.get('none', 0)} have neither."
    ),
    **{
        "Discount": st.column_config.NumberColumn(format="%.2f"),
        f"Expected value ({currency})": st.column_config.NumberColumn(format="%,.0f"),
        f"Cost ({currency})": st.column_config.NumberColumn(format="%,.0f"),
        "Value per cost": st.column_config.NumberColumn(
            format="%.2f", help=f"Expected value ÷ cost, {currency} per {currency}."
        ),
        f"Relative improvement per 1M {currency}": st.column_config.NumberColumn(format="%.3f"),
    },
)

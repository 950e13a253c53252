"""Value throughput: features delivered and confirmed per period, what they were worth and cost, beside PRs merged."""

from __future__ import annotations

from datetime import date

import plotly.graph_objects as go
import polars as pl
import streamlit as st
from plotly.subplots import make_subplots

from core import access
from core.access import restrict_throughput
from core.delivery import throughput
from ui import caches
from ui import format as fmt
from ui.data import page_data
from ui.widgets import figure_builder, page_header, scope_and_range, table, team_labels

PAGE = "throughput"
PERIODS = {"week": "Week", "month": "Month", "quarter": "Quarter"}
HOVER_DATES = {"week": "Week of %d %b %Y", "month": "%B %Y", "quarter": "%Y Q%q"}
X_PERIODS = {"week": 7 * 24 * 3600 * 1000, "month": "M1", "quarter": "M3"}
GREEN, BLUE, GREY, SLATE = "#2e7d32", "#9bbbd9", "#8a8f98", "#5b6b7f"
LABELS = {
    "period_start": "From",
    "period_end": "To",
    "features_delivered": "Delivered",
    "features_confirmed": "Confirmed",
    "features_pending": "Pending a verdict",
    "features_refuted": "Refuted",
    "features_inconclusive": "Inconclusive",
    "features_confounded": "Confounded",
    "realised_value": "Realised value",
    "cost": "Attributed cost",
    "value_to_cost": "Value ÷ cost",
    "prs_merged": "PRs merged",
}
DEFINITIONS = {
    "features_delivered": "features whose status is delivered, counted in the period of their delivery date "
    "(output level).",
    "features_confirmed": "delivered features whose hypothesis verdict is confirmed: the outcome metric moved as "
    "predicted, beyond its own trend (outcome level).",
    "features_pending": "delivered features whose judging window is not over yet: no verdict, so counted neither "
    "as confirmed nor as failed.",
    "features_refuted": "delivered features whose outcome metric did not move as predicted.",
    "features_inconclusive": "the interval is too wide to tell.",
    "features_confounded": "other features moved the same metric in the same window.",
    "realised_value": "for confirmed features whose outcome metric has a money value per unit: the measured change "
    "in the metric's good direction × that value, in the period the feature was delivered.",
    "cost": "every cost attributed to the features delivered in the period (agent tokens, CI, review, people "
    "time), over each feature's whole life.",
    "value_to_cost": "realised value ÷ attributed cost of the features delivered in the period; empty without cost.",
    "prs_merged": "pull requests merged in the period (activity level), on the right-hand axis.",
}

data = page_data()
viewer = data.viewer
page_header(
    "Value throughput",
    "Features delivered per period and whether they achieved their outcome, what that was worth and what it cost.",
    viewer,
)

team_names = team_labels(data["teams"])
currency = caches.cost_settings(data).currency

period_col, scope_col, range_col = st.columns([2, 2, 3])
period = period_col.segmented_control(
    "Per", list(PERIODS), format_func=PERIODS.get, default="week", required=True, key=f"{PAGE}.period"
)
team_id, start, end = scope_and_range(PAGE, team_names, caches.throughput_span(data), viewer, scope_col, range_col)

show_prs = access.may_see(viewer, "activity", team_id)
everything = caches.throughput_series(data, period, team_id, start, end)
series = restrict_throughput(viewer, everything.lazy(), team_id).collect()
markers = caches.milestone_markers(data, period, team_id, start, end)


def summary(changes: pl.DataFrame) -> None:
    """The data-driven summary line: the last complete period against the one before."""
    st.markdown(f"**{throughput.summary_line(changes, period)}**")


def headline(series: pl.DataFrame, start: date, end: date) -> None:
    """The chosen range in tiles: totals over every period in it, the mean per period under each."""
    periods = series.height
    pending = int(series["features_pending"].sum())
    st.caption(
        f"Totals over the {periods} {period}{'s' if periods != 1 else ''} from {start:%d %b %Y} to {end:%d %b %Y}, "
        f"with the mean per {period} under each; the line above compares the last complete {period} with the one "
        "before."
        + (
            f" {pending} feature(s) delivered in the range are still pending a verdict, so confirmed may rise."
            if pending
            else ""
        )
    )
    shown = [c for c in ("features_delivered", "features_confirmed", "realised_value") if c in series.columns]
    shown += ["value_to_cost", *(["prs_merged"] if show_prs else [])]
    for cell, column in zip(st.columns(len(shown)), shown, strict=True):
        text, mean, how = range_figure(series, column)
        cell.metric(
            f"{LABELS[column]}, {'over the range' if column == 'value_to_cost' else 'range total'}",
            text,
            mean,
            delta_color="off",
            delta_arrow="off",
            help=f"{DEFINITIONS[column].capitalize()} {how}",
            border=True,
        )


def range_figure(series: pl.DataFrame, column: str) -> tuple[str, str | None, str]:
    """One tile over the range: its total (a ratio of totals for value ÷ cost), the mean per period, and how."""
    if column == "value_to_cost":
        cost = series["cost"].sum()
        ratio = series["realised_value"].sum() / cost if cost else None
        how = fmt.figure_help(
            ratio, "Total realised value ÷ total attributed cost over the range.", "no cost is attributed in the range"
        )
        return fmt.number(ratio), None, how
    total = series[column].sum()
    mean = total / series.height
    how = f"Summed over the range; under it, the mean per {period}."
    if column == "realised_value":
        return fmt.money(total, currency), f"{fmt.money(mean, currency)} per {period}", how
    pending = int(series["features_pending"].sum())
    text = f"{int(total):,}" + (f" · {pending:,} pending" if column == "features_confirmed" and pending else "")
    return text, f"{fmt.number(mean)} per {period}", how


@figure_builder
def counts_figure(series: pl.DataFrame, markers: pl.DataFrame, period: str, show_prs: bool) -> go.Figure:
    """Delivered (wide bars), confirmed and pending (narrow bars), PRs merged (right axis) and milestones."""
    figure = make_subplots(specs=[[{"secondary_y": True}]])
    x = series["period_start"].to_list()
    along = {"x": x, "xperiod": X_PERIODS[period], "xperiod0": date(2024, 1, 1), "xperiodalignment": "middle"}
    if "features_delivered" in series.columns:
        figure.add_bar(
            **along,
            y=series["features_delivered"].to_list(),
            name="Features delivered",
            marker_color=BLUE,
            width=_width(0.85, period),
            hovertemplate="%{y} delivered (status delivered, by delivery date)<extra></extra>",
        )
    confirmed = series["features_confirmed"].to_list()
    figure.add_bar(
        **along,
        y=confirmed,
        name="Features confirmed",
        marker_color=GREEN,
        width=_width(0.45, period),
        hovertemplate="%{y} confirmed (verdict: outcome moved as predicted)<extra></extra>",
    )
    figure.add_bar(
        **along,
        y=series["features_pending"].to_list(),
        base=confirmed,
        name="Pending a verdict",
        marker={"color": "rgba(46,125,50,0.12)", "line": {"color": GREEN, "width": 1}, "pattern": {"shape": "/"}},
        width=_width(0.45, period),
        hovertemplate="%{customdata} pending (judging window not over)<extra></extra>",
        customdata=series["features_pending"].to_list(),
    )
    if show_prs:
        figure.add_scatter(
            **along,
            y=series["prs_merged"].to_list(),
            name="PRs merged (activity, right axis)",
            mode="lines",
            line={"color": GREY, "width": 1.5, "dash": "dot"},
            hovertemplate="%{y:,} PRs merged (activity)<extra></extra>",
            secondary_y=True,
        )
    stacked = [c + p for c, p in zip(confirmed, series["features_pending"], strict=True)]
    delivered = series["features_delivered"].to_list() if "features_delivered" in series.columns else []
    top = max([1, *stacked, *delivered]) * 1.15
    for index, marker in enumerate(markers.iter_rows(named=True)):
        carried = "<br>".join(marker["carried"]) or "no features"
        figure.add_scatter(
            x=[marker["period_start"]] * 2,
            xperiod=X_PERIODS[period],
            xperiod0=date(2024, 1, 1),
            xperiodalignment="middle",
            y=[0, top],
            mode="lines+markers",
            marker={"symbol": "triangle-down", "size": [0, 10], "color": "#b26a00"},
            line={"color": "#b26a00", "width": 1, "dash": "dash"},
            name="Milestones",
            legendgroup="milestones",
            showlegend=index == 0,
            hovertemplate=(
                f"<b>Milestone: {marker['name']}</b> ({marker['date']:%d %b %Y}), "
                f"{marker['features']} feature(s) carried:<br>{carried}<extra></extra>"
            ),
        )
    figure.update_layout(
        barmode="overlay",
        hovermode="x unified",
        height=430,
        margin={"t": 30, "b": 10, "l": 10, "r": 10},
        legend={"orientation": "h", "y": -0.12},
    )
    figure.update_xaxes(hoverformat=HOVER_DATES[period])
    figure.update_yaxes(title_text="Features", rangemode="tozero", range=[0, top], secondary_y=False)
    if show_prs:
        figure.update_yaxes(title_text="PRs merged", rangemode="tozero", showgrid=False, secondary_y=True)
    return figure


@figure_builder
def value_figure(series: pl.DataFrame, period: str, currency: str) -> go.Figure:
    """Realised value and attributed cost per period (bars) and their ratio (right axis)."""
    figure = make_subplots(specs=[[{"secondary_y": True}]])
    along = {
        "x": series["period_start"].to_list(),
        "xperiod": X_PERIODS[period],
        "xperiod0": date(2024, 1, 1),
        "xperiodalignment": "middle",
    }
    figure.add_bar(
        **along,
        y=series["realised_value"].to_list(),
        name="Realised value",
        marker_color=GREEN,
        hovertemplate=f"{currency} %{{y:,.0f}} realised (confirmed features × value per unit)<extra></extra>",
    )
    figure.add_bar(
        **along,
        y=series["cost"].to_list(),
        name="Attributed cost",
        marker_color=SLATE,
        hovertemplate=f"{currency} %{{y:,.0f}} attributed cost of the features delivered<extra></extra>",
    )
    figure.add_scatter(
        **along,
        y=series["value_to_cost"].to_list(),
        name="Value ÷ cost (right axis)",
        mode="lines+markers",
        line={"color": "#b26a00"},
        hovertemplate="value ÷ cost %{y:.2f}<extra></extra>",
        secondary_y=True,
    )
    figure.update_layout(
        barmode="group",
        hovermode="x unified",
        height=340,
        margin={"t": 30, "b": 10, "l": 10, "r": 10},
        legend={"orientation": "h", "y": -0.15},
    )
    figure.update_xaxes(hoverformat=HOVER_DATES[period])
    figure.update_yaxes(title_text=currency, rangemode="tozero", secondary_y=False)
    figure.update_yaxes(title_text="Value ÷ cost", rangemode="tozero", showgrid=False, secondary_y=True)
    return figure


def _width(share: float, period: str) -> float:
    """A bar width in milliseconds: ``share`` of the (average) period length."""
    days = {"week": 7, "month": 30.4, "quarter": 91.3}[period]
    return share * days * 24 * 3600 * 1000


def weekly_table(series: pl.DataFrame) -> pl.DataFrame:
    """The per-period rows as read: no value or cost reads 0, and value ÷ cost without cost an em dash saying why."""
    money = [c for c in ("realised_value", "cost") if c in series.columns]
    return series.with_columns(pl.col(money).fill_null(0.0)).with_columns(
        pl.struct("realised_value", "cost", "value_to_cost")
        .map_elements(_ratio_text, return_dtype=pl.String)
        .alias("value_to_cost")
    )


def _ratio_text(row: dict[str, float | None]) -> str:
    """A period's value ÷ cost in words, or an em dash with the reason it has none."""
    if row["value_to_cost"] is not None:
        return fmt.number(row["value_to_cost"])
    return fmt.number(None, "no cost attributed" if not row["cost"] else "no value measured")


def _column(column: str) -> object:
    """The table column of a series measure: its label (with the currency for money), definition and format."""
    help_text = DEFINITIONS[column].capitalize()
    if column in ("realised_value", "cost"):
        return st.column_config.NumberColumn(f"{LABELS[column]} ({currency})", help=help_text, format="%,.0f")
    if column == "value_to_cost":
        return st.column_config.TextColumn(LABELS[column], help=help_text)
    return st.column_config.NumberColumn(LABELS[column], help=help_text)


def definitions(columns: list[str]) -> str:
    """The 'how is this computed' note for the shown columns, one line each."""
    return "  \n".join(f"**{LABELS[c]}**: {DEFINITIONS[c]}" for c in columns if c in series.columns)


if series.is_empty():
    st.info("No delivered features or merged PRs in this range yet.")
    st.stop()

complete = everything.filter(pl.col("period_end") <= end).lazy()
changes = throughput.period_changes(complete, include_activity=show_prs).collect()
summary(changes.filter(pl.col("measure").is_in(series.columns)))
headline(series, start, end)

st.subheader(
    ("Features delivered and confirmed" if "features_delivered" in series.columns else "Features confirmed")
    + (", beside PRs merged" if show_prs else "")
)
st.plotly_chart(counts_figure(series, markers, period, show_prs), key=f"{PAGE}.counts")
st.caption(
    definitions(["features_delivered", "features_confirmed", "features_pending"])
    + "  \n**Milestones** (dashed lines): product milestones in the range; hover one for the features it carried."
    + (f"  \n**{LABELS['prs_merged']}**: {DEFINITIONS['prs_merged']}" if show_prs else "")
)

st.subheader("Realised value and cost")
st.plotly_chart(value_figure(series, period, currency), key=f"{PAGE}.value")
st.caption(definitions(["realised_value", "cost", "value_to_cost"]) + f"  \nAmounts in {currency}.")

st.subheader(f"Per {period}")
table(
    weekly_table(series),
    key=f"{PAGE}.table",
    caption=definitions(["features_refuted", "features_inconclusive", "features_confounded"]),
    period_start=st.column_config.DateColumn("From"),
    period_end=st.column_config.DateColumn("To"),
    **{c: _column(c) for c in series.columns if c in DEFINITIONS},
)

with st.expander(f"Milestones in the range ({markers.height})"):
    carried = markers.select(
        "name", "date", "period_start", "features", pl.col("carried").list.join(", ").alias("features carried")
    )
    table(
        carried,
        key=f"{PAGE}.milestones",
        **fmt.headings(
            carried,
            {"name": "Milestone", "period_start": f"In the {period} from", "features": "Features carried (count)"},
        ),
        caption=f"Each milestone sits in the {period} that contains its date; features carried are those whose "
        "milestone is set to it" + (f" in team {team_names[team_id]}." if team_id else "."),
    )

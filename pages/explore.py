"""Explore: ad hoc questions over the datasets and levels the viewer may see, as a chart, a table and a CSV."""

from __future__ import annotations

from datetime import date
from functools import partial

import plotly.graph_objects as go
import polars as pl
import streamlit as st

from core import explore
from core.cli.export import to_safe_csv
from core.explore import Dataset, ExploreQuery, ExploreRefused
from ui import caches
from ui import format as fmt
from ui.data import page_data
from ui.widgets import page_header, table

PAGE = "explore"
MONEY_VALUES = ("estimate_cost", "realised_value", "cost", "cost_per_feature", "cost_per_pr")
"""Values that are amounts of money, shown in the workspace currency."""
CHARTS = ("Bar", "Line", "Table")
AGGREGATION_NAMES = {"count": "Count", "sum": "Sum", "mean": "Mean", "median": "Median"}
LEVEL_NOTE = {
    "activity": "activity level",
    "output": "output level",
    "outcome": "outcome level",
    None: "each metric at its own level",
}


def _keys(dataset: str, value: str) -> dict[str, str]:
    """Session-state keys of the question's widgets; per dataset (and value), so every choice stays valid."""
    return {
        "value": f"{PAGE}.{dataset}.value",
        "aggregation": f"{PAGE}.{dataset}.{value}.aggregation",
        "group_by": f"{PAGE}.{dataset}.group_by",
    }


def _filter_key(dataset: str, dimension: str) -> str:
    return f"{PAGE}.{dataset}.filter.{dimension}"


def _raw(key: str) -> object:
    return st.session_state.get(key)


def _refuse_crafted_state() -> None:
    """Refuse, without running anything, a question whose widget state holds a choice the page does not offer.

    Streamlit would quietly reset such a widget to its first option; the state is instead checked
    through ``core.explore`` so the viewer sees why, and the offending keys are cleared.
    """
    raw_dataset = _raw(f"{PAGE}.dataset")
    if raw_dataset is None:
        return
    offered = {d.name: d for d in explore.datasets_for(me)}
    dataset = offered.get(raw_dataset) if isinstance(raw_dataset, str) else None
    offending: list[str] = []
    if dataset is None:
        offending.append(f"{PAGE}.dataset")
        name = raw_dataset if isinstance(raw_dataset, str) else ""
        catalogued = explore.DATASETS.get(name)
        raw_value = _raw(f"{PAGE}.{name}.value") or (catalogued.values[0].name if catalogued else "")
        chosen = catalogued.value(raw_value) if catalogued and isinstance(raw_value, str) else None
        raw_aggregation = _raw(f"{PAGE}.{name}.{raw_value}.aggregation") or (chosen.aggregations[0] if chosen else "")
        requested = ExploreQuery(dataset=raw_dataset, value=raw_value, aggregation=raw_aggregation)
    else:
        values = {v.name: v for v in explore.values_for(me, dataset)}
        raw_value = _raw(f"{PAGE}.{dataset.name}.value") or next(iter(values))
        keys = _keys(dataset.name, str(raw_value))
        value = values.get(raw_value) if isinstance(raw_value, str) else None
        if value is None:
            offending.append(keys["value"])
        raw_aggregation = _raw(keys["aggregation"]) or (value.aggregations[0] if value else "count")
        if value is not None and raw_aggregation not in value.aggregations:
            offending.append(keys["aggregation"])
        raw_group_by = _raw(keys["group_by"]) or []
        names = {d.name for d in dataset.dimensions}
        if (
            not isinstance(raw_group_by, list | tuple)
            or len(raw_group_by) > explore.MAX_GROUP_BY
            or not set(map(str, raw_group_by)) <= names
        ):
            offending.append(keys["group_by"])
        filters = []
        for dimension in dataset.dimensions:
            kept = _raw(_filter_key(dataset.name, dimension.name))
            if not kept:
                continue
            filters.append((dimension.name, tuple(kept) if isinstance(kept, list | tuple) else (str(kept),)))
            choices = caches.explore_choices(data, dataset.name, dimension.name)
            if not isinstance(kept, list | tuple) or not set(kept) <= set(choices):
                offending.append(_filter_key(dataset.name, dimension.name))
        requested = ExploreQuery(
            dataset=dataset.name,
            value=raw_value,
            aggregation=raw_aggregation,
            group_by=tuple(raw_group_by) if isinstance(raw_group_by, list | tuple) else raw_group_by,
            filters=tuple(filters),
        )
    for key in (f"{PAGE}.period.start", f"{PAGE}.period.end"):
        if _raw(key) is not None and not isinstance(_raw(key), date):
            offending.append(key)
    if _raw(f"{PAGE}.chart") not in (None, *CHARTS):
        offending.append(f"{PAGE}.chart")
    if not offending:
        return
    try:
        explore.check_query(me, requested)
        reason = "It asks for a choice this page does not offer you."
    except ExploreRefused as refusal:
        reason = refusal.message
    for key in offending:
        del st.session_state[key]
    st.warning(f"This question was refused and nothing was run. {reason}", icon=":material/block:")
    st.button("Start a new question", key=f"{PAGE}.restart")
    st.stop()


def _figure(result: pl.DataFrame, query: ExploreQuery, dataset: Dataset, chart: str) -> go.Figure:
    """The result as a bar or line chart: the first period (else first) dimension along x, the rest as series."""
    measured = result.columns[-1]
    result = result.filter(pl.col(measured).is_not_null())
    dimensions = [d for name in query.group_by if (d := dataset.dimension(name)) is not None]
    along = next((d for d in dimensions if d.is_time), dimensions[0])
    others = [d.label for d in dimensions if d is not along]
    series = (
        result.with_columns(pl.concat_str([pl.col(c) for c in others], separator=" · ").alias("series"))
        if others
        else result.with_columns(pl.lit(measured).alias("series"))
    )
    source = f"{measured} · {dataset.label.lower()}"
    figure = go.Figure()
    for (name,), rows in series.group_by(["series"], maintain_order=True):
        hover = f"{along.label} %{{x}}: %{{y:,.2f}}<extra>{name}<br>{source}</extra>"
        if chart == "Line":
            figure.add_scatter(
                x=rows[along.label], y=rows[measured], name=str(name), mode="lines+markers", hovertemplate=hover
            )
        else:
            figure.add_bar(x=rows[along.label], y=rows[measured], name=str(name), hovertemplate=hover)
    stacked = query.aggregation in ("count", "sum") and chart == "Bar"
    figure.update_layout(
        barmode="stack" if stacked else "group",
        xaxis_title=along.label,
        yaxis_title=measured,
        xaxis={
            "type": "category",
            "categoryorder": "array",
            "categoryarray": result[along.label].unique(maintain_order=True).to_list(),
        },
        showlegend=bool(others),
        legend={"orientation": "h", "y": -0.2},
        margin={"t": 30},
        height=440,
    )
    return figure


data = page_data()
me = data.viewer
page_header(
    "Explore",
    "Ask your own question of the data you may see: pick a dataset, what to count or add up, how to group and "
    "filter it, and how to draw it.",
    me,
)

offered = explore.datasets_for(me)
if not offered:
    st.info("Your role has no dataset to explore.")
    st.stop()
_refuse_crafted_state()

by_name = {d.name: d for d in offered}
left, middle, right = st.columns([2, 2, 2])
dataset = by_name[
    left.selectbox(
        "Dataset",
        list(by_name),
        format_func=lambda name: by_name[name].label,
        key=f"{PAGE}.dataset",
        help="Only the datasets your role may see are offered.",
    )
]
values = {v.name: v for v in explore.values_for(me, dataset)}
value = values[
    middle.selectbox(
        "Value",
        list(values),
        format_func=lambda name: values[name].label.capitalize(),
        key=f"{PAGE}.{dataset.name}.value",
        help="What to count or add up; only the values your role may see are offered.",
    )
]
keys = _keys(dataset.name, value.name)
aggregation = right.radio(
    "Aggregation",
    value.aggregations,
    format_func=AGGREGATION_NAMES.get,
    horizontal=True,
    key=keys["aggregation"],
    help="Count: how many records. Sum, mean, median: of the value over the records in each group.",
)
dimension_label = {d.name: d.label for d in dataset.dimensions}
left, middle, right = st.columns([3, 2, 1])
group_by = left.multiselect(
    "Group by",
    list(dimension_label),
    format_func=dimension_label.get,
    max_selections=explore.MAX_GROUP_BY,
    key=keys["group_by"],
    placeholder="No grouping: one number",
)
start = middle.date_input("From", value=None, key=f"{PAGE}.period.start", format="YYYY-MM-DD")
end = right.date_input("To", value=None, key=f"{PAGE}.period.end", format="YYYY-MM-DD")
st.caption(f"{LEVEL_NOTE[value.level].capitalize()}. {dataset.description}")

filters: list[tuple[str, tuple[str, ...]]] = []
with st.expander("Filters", expanded=False):
    columns = st.columns(3)
    for index, dimension in enumerate(dataset.dimensions):
        kept = columns[index % 3].multiselect(
            dimension.label,
            caches.explore_choices(data, dataset.name, dimension.name),
            key=_filter_key(dataset.name, dimension.name),
            placeholder="All",
        )
        if kept:
            filters.append((dimension.name, tuple(kept)))

chart = st.segmented_control("Chart", CHARTS, default="Bar", key=f"{PAGE}.chart") or "Bar"
query = ExploreQuery(
    dataset=dataset.name,
    value=value.name,
    aggregation=aggregation,
    group_by=tuple(group_by),
    filters=tuple(filters),
    period_start=start,
    period_end=end,
)
try:
    result = caches.explore_result(data, query)
except ExploreRefused as refusal:
    st.warning(refusal.message, icon=":material/block:")
    st.stop()

how = f"How is this computed? {explore.describe(query)}"
measured = explore.result_label(query)
currency = caches.cost_settings(data).currency
unit = "" if aggregation == "count" else currency if value.name in MONEY_VALUES else value.unit
heading = f"{measured} ({unit})" if unit else measured
if result.height == 0:
    st.info("No records match these filters and period.")
    st.caption(how)
    st.stop()
if not group_by:
    number = result.item(0, 0)
    if unit == currency:
        shown = fmt.money(number, currency)
    elif isinstance(number, int):
        shown = f"{number:,}"
    else:
        shown = fmt.number(number) + (f" {unit}" if unit and not fmt.is_missing(number) else "")
    st.metric(measured, shown, help=fmt.figure_help(number, how, "no record has this value"))
    st.caption(how)
else:
    if chart != "Table":
        st.plotly_chart(_figure(result, query, dataset, chart), key=f"{PAGE}.figure")
    headings = fmt.headings(result, dimension_label)
    table(
        result,
        key=f"{PAGE}.table",
        caption=how,
        **headings | {measured: st.column_config.NumberColumn(heading, format="localized")},
    )
st.download_button(
    "Download CSV",
    partial(to_safe_csv, result),  # built on the click, not on every rerun
    file_name=f"throughline-explore-{dataset.name}.csv",
    mime="text/csv",
    key=f"{PAGE}.download",
    help="The result table as CSV; cells a spreadsheet would read as formulas are prefixed with '.",
)

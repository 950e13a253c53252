"""Cost per feature: what each delivered feature cost in full, where the money came from, and its trend."""

from __future__ import annotations

from datetime import datetime, time
from functools import partial

import plotly.express as px
import plotly.graph_objects as go
import polars as pl
import streamlit as st

from core import access, costs, formatting
from core.access import Viewer
from core.cli import export
from core.costs import ALL, RULE_LABELS, RULES, SOURCE_LABELS, CostSettings
from ui import caches
from ui.data import PageData, page_data
from ui.widgets import figure_builder, page_header, plain, table, team_labels

PAGE = "cost"


def visible_rollup(data: PageData, viewer: Viewer) -> pl.LazyFrame:
    """The cost roll-up under the workspace's settings, as ``viewer`` may see it."""
    return access.restrict(viewer, caches.cost_rollup(data).lazy(), level="outcome")


# What a rerun would otherwise rebuild, kept per data version, settings and viewer: the quarterly trend
# with its significance tests, and the period's summary, feature costs and money per source.
@st.cache_resource(max_entries=16, show_spinner=False)
def quarterly_trend(
    _data: PageData, home: str, version: int, fingerprint: str, viewer: Viewer
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The viewer's quarter-over-quarter cost per delivered feature and each series' trend verdict."""
    visible = visible_rollup(_data, viewer)
    trend = access.restrict(viewer, costs.quarterly_cost_trend(visible, _data["features"]), level="outcome").collect()
    return trend, costs.trend_verdicts(trend)


@st.cache_resource(max_entries=64, show_spinner=False)
def period_costs(
    _data: PageData, home: str, version: int, fingerprint: str, viewer: Viewer, period_label: str, team: str | None
) -> tuple[dict[str, object], pl.DataFrame, pl.DataFrame]:
    """The period's summary, each feature's cost and the money per source, as the viewer may see them.

    Kept like the trend: the same frames on every rerun also keep the figures built from them.
    """
    period = costs.parse_period(period_label)
    visible = visible_rollup(_data, viewer)
    scoped = visible if team is None else visible.filter(pl.col("team_id") == team)
    features = _data["features"]
    team_features = features if team is None else features.filter(pl.col("team_id") == team)
    summary = costs.cost_summary(scoped, team_features, period, caches.cost_settings(_data)).collect()
    per_feature = access.restrict(viewer, costs.cost_per_feature(scoped, team_features, period), level="outcome")
    by_source = (
        costs.cost_by_source(scoped, period)
        .with_columns(pl.col("source").replace_strict(SOURCE_LABELS, default=pl.col("source")).alias("label"))
        .collect()
    )
    return summary.row(0, named=True), per_feature.collect(), by_source


@figure_builder
def source_figure(by_source: pl.DataFrame, money: str) -> go.Figure:
    """The period's money per source, attributed or not (stacked bars)."""
    return go.Figure(
        [
            go.Bar(
                x=by_source["label"].to_list(),
                y=by_source[column].to_list(),
                name=name,
                hovertemplate="%{x}: %{y:,.0f} " + money + " " + name + " (cost events in the period)<extra></extra>",
            )
            for column, name in (("attributed", "attributed"), ("unattributed", "unattributed"))
        ],
        layout={"barmode": "stack", "yaxis_title": money, "height": 340, "margin": {"t": 30}},
    )


@figure_builder
def distribution_figure(delivered: pl.DataFrame, money: str) -> go.Figure:
    """Each delivered feature's cost: a histogram with a box of its quartiles above."""
    histogram = px.histogram(
        delivered.to_pandas(),
        x="cost",
        nbins=30,
        marginal="box",
        hover_data=["feature_id", "name"],
        labels={"cost": f"cost of each delivered feature ({money})"},
    )
    histogram.update_layout(height=340, margin={"t": 30}, yaxis_title="features")
    return histogram


# The trend charts are the HTML report's too (``core.cli.export``), kept here once per distinct input.
team_trend_figure = figure_builder(export.team_trend_figure)
source_trend_figure = figure_builder(export.source_trend_figure)


data = page_data()
me = data.viewer
page_header(
    "Cost per feature",
    "What each delivered feature cost in full — agent tokens, CI minutes, review and people time — and whether "
    "that cost is falling quarter over quarter.",
    me,
)

current = caches.cost_settings(data)
fingerprint = caches.settings_key(current)
features = data["features"]
money = current.currency
rollup = visible_rollup(data, me)

quarter_starts = sorted(rollup.select(pl.col("occurred_at").unique()).collect()["occurred_at"].to_list(), reverse=True)
if not quarter_starts:
    st.info("No cost events are visible to you yet: import LLM, CI, review or people costs on the Data page.")
    st.stop()
quarters = [f"{q.year}Q{(q.month - 1) // 3 + 1}" for q in quarter_starts]
as_of = datetime.combine(caches.as_of(data), time())
complete = [label for label in quarters if costs.parse_period(label).end <= as_of]
team_names = team_labels(data["teams"])

left, right = st.columns(2)
period_label = left.selectbox(
    "Period",
    quarters,
    index=quarters.index(complete[0]) if complete else 0,
    key=f"{PAGE}.period",
    help="Quarters with cost events; the default is the latest complete quarter.",
)
team_choices = [None, *team_names]
team = right.selectbox(
    "Team",
    team_choices,
    index=team_choices.index(me.team_id) if me.role == "team_lead" and me.team_id in team_choices else 0,
    help="A team lead starts on their own team.",
    format_func=lambda t: "All teams" if t is None else team_names.get(t, t),
    key=f"{PAGE}.team",
)
period = costs.parse_period(period_label)
scope = ALL if team is None else team  # the team the trend and contrast rows are read for
scope_name = export.team_label(scope, team_names)
summary, per_feature, by_source = period_costs(
    data, data.store.workspace.home.as_posix(), data.version, fingerprint, me, period_label, team
)


def amount(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f} {money}"


st.subheader(f"{period.label} · {plain(scope_name)}")
coverage, median, mean, total = st.columns(4)
coverage.metric(
    "Attribution coverage",
    "—" if summary["coverage_pct"] is None else f"{summary['coverage_pct']:.1f}%",
    help="Money of the period's cost events that an attribution rule reached a feature with, over all their money. "
    "The rest is listed below as unattributed, with the reason — never spread.",
)
median.metric(
    "Median cost per delivered feature",
    amount(summary["median_cost_per_delivered_feature"]),
    help="Over the features delivered in the period: every cost attributed to each, up to the period's end.",
)
mean.metric(
    "Mean cost per delivered feature",
    amount(summary["mean_cost_per_delivered_feature"]),
    help="Total cost of the features delivered in the period ÷ their number; a few large features pull it up.",
)
total.metric(
    "Cost of the delivered features",
    amount(per_feature.filter(pl.col("delivered"))["cost"].sum()),
    help="The features the median and mean are over, each with every cost attributed to it up to the period's end.",
)
st.caption(
    f"{summary['delivered_features']:,} features delivered; {summary['wip_features']:,} in progress carrying "
    f"{amount(summary['wip_cost'])}. Of {amount(summary['total_cost'])} spent in the period, "
    f"{amount(summary['attributed_cost'])} is attributed to features (delivered or not) and "
    f"{amount(summary['unattributed_cost'])} is unattributed"
    + (f"; {summary['unpriced_events']:,} events had no price" if summary["unpriced_events"] else "")
    + f".  \n**Rules on:** {summary['rules_on']}."
)

with st.expander("Rates used to turn quantities into money"):
    rates_left, rates_right = st.columns(2)
    rates_left.dataframe(
        pl.DataFrame(list(current.ci_rates), schema=["runner", f"{money} per minute"], orient="row"),
        hide_index=True,
        key=f"{PAGE}.ci_rates",
    )
    rates_right.dataframe(
        pl.DataFrame(
            list(current.model_price_table),
            schema=["model", f"input {money}/M tokens", f"output {money}/M tokens"],
            orient="row",
        ),
        hide_index=True,
        key=f"{PAGE}.model_prices",
    )
    st.caption(
        "CI minutes × the runner type's rate (named in the runner label, else `default`); CircleCI credits × "
        f"{current.circleci_credit_price:.5f} {money}; tokens × the model's "
        f"price, plain tokens blended {current.input_token_share:.0%} input; review minutes and people hours × "
        "each person's loaded hourly cost from People. An amount given on the event is used as it is."
    )

chart_left, chart_right = st.columns(2)
with chart_left:
    st.markdown("**Where the money came from**")
    st.plotly_chart(source_figure(by_source, money), key=f"{PAGE}.by_source")
    st.caption("Money of the period's cost events per source, attributed to a feature or not.")

delivered = per_feature.filter(pl.col("delivered"))
with chart_right:
    st.markdown("**Cost of each delivered feature**")
    if delivered.height:
        st.plotly_chart(distribution_figure(delivered, money), key=f"{PAGE}.distribution")
        st.caption("Each delivered feature's total attributed cost; the box marks the median and quartiles.")
    else:
        st.info("No feature was delivered in this period.")

feature_columns = {
    "feature_id": st.column_config.TextColumn("Feature"),
    "name": st.column_config.TextColumn("Name"),
    "team_id": st.column_config.TextColumn("Team"),
    "delivered_at": st.column_config.DatetimeColumn("Delivered", format="YYYY-MM-DD"),
    "cost": st.column_config.NumberColumn(f"Cost ({money})", format="%.2f"),
    **{
        f"cost_{s}": st.column_config.NumberColumn(f"{label} ({money})", format="%.2f")
        for s, label in SOURCE_LABELS.items()
    },
}
shown = ["feature_id", "name", "team_id", "delivered_at", "cost", *[f"cost_{s}" for s in SOURCE_LABELS]]
st.markdown("**Delivered features**")
table(
    delivered.select(shown),
    key=f"{PAGE}.delivered",
    caption="Every cost attributed to each feature up to the period's end, by source.",
    **feature_columns,
)
wip = per_feature.filter(pl.col("stage") == "work in progress")
st.markdown("**Work in progress**")
table(
    wip.select([c for c in shown if c != "delivered_at"]),
    key=f"{PAGE}.wip",
    caption="Features not delivered by the period's end: their cost so far does not enter cost per delivered feature.",
    **feature_columns,
)

# --- Drill into one feature -------------------------------------------------------------------------------------


@st.fragment
def feature_drill_down() -> None:
    """One feature's cost by source and its cost lines; choosing another feature reruns only this part."""
    st.subheader("One feature's cost")
    choices = per_feature.select("feature_id", "name", "team_id", "stage")
    labels = dict(
        choices.select(
            "feature_id", pl.format("{} · {} ({})", "feature_id", pl.col("name").fill_null(""), "stage").alias("label")
        ).iter_rows()
    )
    feature_team = dict(zip(choices["feature_id"], choices["team_id"], strict=True))
    chosen = st.selectbox(
        "Feature",
        [None, *labels],
        format_func=lambda f: "Choose a feature …" if f is None else labels[f],
        key=f"{PAGE}.feature",
    )
    if chosen is not None:
        row = per_feature.filter(pl.col("feature_id") == chosen).row(0, named=True)
        split = pl.DataFrame(
            {
                "source": list(SOURCE_LABELS.values()),
                f"cost ({money})": [row[f"cost_{s}"] for s in SOURCE_LABELS],
            }
        )
        st.markdown(f"**{plain(labels[chosen])}** — {amount(row['cost'])} up to the end of {period.label}, by source:")
        st.dataframe(
            split,
            hide_index=True,
            key=f"{PAGE}.feature_split",
            column_config={f"cost ({money})": st.column_config.NumberColumn(format="%.2f")},
        )
        chosen_team = feature_team.get(chosen)
        lines = caches.feature_cost_lines(data, chosen).filter(pl.col("occurred_at") < period.end)
        if access.may_see_detail(me, chosen_team):
            visible = access.restrict(me, lines.lazy(), level="outcome", detail=True).collect()
            st.caption(f"{visible.height:,} cost lines; each says which link attributed it to this feature.")
            for source, label in SOURCE_LABELS.items():
                part = visible.filter(pl.col("source") == source)
                if part.height:
                    with st.expander(f"{label}: {part['amount'].sum():,.2f} {money} · {part.height:,} lines"):
                        table(
                            part.select(
                                "occurred_at",
                                "event_id",
                                "detail",
                                "quantity",
                                "unit",
                                "pricing",
                                "share",
                                "amount",
                                "link",
                            ),
                            key=f"{PAGE}.lines.{source}",
                        )
        elif access.may_see(me, "output", chosen_team):
            paths = (
                lines.group_by("source", "rule")
                .agg(pl.len().alias("cost lines"), pl.col("amount").sum().alias(f"amount ({money})"))
                .with_columns(
                    pl.col("source").replace_strict(SOURCE_LABELS, default=pl.col("source")),
                    pl.col("rule").replace_strict(RULE_LABELS, default=pl.col("rule")).alias("attributed by"),
                )
                .sort("source", "attributed by")
                .select("source", "attributed by", "cost lines", f"amount ({money})")
            )
            table(
                paths,
                key=f"{PAGE}.paths",
                **{f"amount ({money})": st.column_config.NumberColumn(format="%.2f")},
                caption="This feature's cost lines grouped by source and by the link that attributed them; the "
                "per-PR and per-person lines are shown to the team's own lead.",
            )
        else:
            st.caption("Per-line detail is shown to the team's own lead; this view shows the split by source.")


feature_drill_down()

# --- Unattributed -----------------------------------------------------------------------------------------------

st.subheader("Unattributed cost")


def in_scope(frame: pl.DataFrame) -> pl.DataFrame:
    scoped_rows = frame.filter(pl.col("occurred_at").is_between(period.start, period.end, closed="left"))
    return scoped_rows if team is None else scoped_rows.filter(pl.col("team_id") == team)


generic = in_scope(caches.unattributed_cost_lines(data, generic=True))
by_reason = (
    access.restrict(me, generic.lazy(), level="outcome")
    .group_by("reason")
    .agg(pl.len().alias("events"), pl.col("amount").sum().alias(f"amount ({money})"))
    .sort(f"amount ({money})", descending=True)
    .collect()
)
if by_reason.height == 0:
    st.success("Every cost event of the period reached a feature.")
else:
    table(
        by_reason,
        key=f"{PAGE}.unattributed_reasons",
        **{f"amount ({money})": st.column_config.NumberColumn(format="%.2f")},
        caption="Money no enabled rule could attribute, by reason; it counts in the total, never spread over features.",
    )
    detail = access.restrict(
        me, in_scope(caches.unattributed_cost_lines(data, generic=False)).lazy(), level="outcome", detail=True
    ).collect()
    if detail.height:
        with st.expander(f"Unattributed cost lines you may see in detail ({detail.height:,})"):
            table(
                detail.select("occurred_at", "event_id", "source", "detail", "team_id", "amount", "reason"),
                key=f"{PAGE}.unattributed_lines",
            )

# --- Quarter over quarter ---------------------------------------------------------------------------------------

st.subheader("Quarter over quarter")
trend, verdicts = quarterly_trend(data, data.store.workspace.home.as_posix(), data.version, fingerprint, me)
overall = trend.filter((pl.col("team_id") == scope) & (pl.col("source") == ALL)).sort("quarter_start")
verdict = verdicts.filter((pl.col("team_id") == scope) & (pl.col("source") == ALL))
if verdict.height:
    v = verdict.row(0, named=True)
    change = (
        "" if v["change_pct"] is None else f", {formatting.change(v['change_pct'] / 100)} from {v['first_quarter']}"
    )
    st.markdown(
        f"Mean cost per delivered feature over {v['quarters']} quarters with deliveries{change}: **{v['verdict']}**."
    )
    st.caption(f"Method: {v['method']}")
by_team = trend.filter(pl.col("source") == ALL).sort("quarter_start")
source_trend = trend.filter((pl.col("team_id") == scope) & (pl.col("source") != ALL)).sort("quarter_start")
trend_left, trend_right = st.columns(2)
with trend_left:
    st.markdown("**By team (all sources)**")
    st.plotly_chart(team_trend_figure(by_team, money, team_names), key=f"{PAGE}.scopes")
with trend_right:
    st.markdown(f"**By source ({plain(scope_name)})**")
    st.plotly_chart(source_trend_figure(source_trend, money), key=f"{PAGE}.trend_sources")
st.caption(
    "A feature counts in the quarter it was delivered, with every cost attributed to it up to that quarter's end."
)
table(
    overall.select("quarter", "delivered_features", "cost", "cost_per_delivered_feature", "pct_change"),
    key=f"{PAGE}.trend_table",
    delivered_features=st.column_config.NumberColumn("features delivered"),
    cost=st.column_config.NumberColumn(f"cost ({money})", format="%.0f"),
    cost_per_delivered_feature=st.column_config.NumberColumn(
        f"mean cost per delivered feature ({money})", format="%.0f"
    ),
    pct_change=st.column_config.NumberColumn("% change", format="%+.1f%%"),
)
csv_col, html_col = st.columns(2)
csv_col.download_button(
    "Download trend (CSV)",
    partial(export.to_safe_csv, trend.sort("team_id", "source", "quarter_start")),  # built on the click
    file_name="cost-per-feature-trend.csv",
    mime="text/csv",
    key=f"{PAGE}.download_csv",
)
html_col.download_button(
    "Download report (HTML)",
    partial(
        export.quarterly_trend_html,
        trend,
        verdicts,
        team=scope,
        team_names=team_names,
        currency=money,
        rules_on=current.rules_on,
    ),
    file_name="cost-per-feature-trend.html",
    mime="text/html",
    key=f"{PAGE}.download_html",
)

# --- Activity-level contrast ------------------------------------------------------------------------------------

contrast = access.restrict(
    me, costs.activity_contrast(rollup, caches.cost_links(data).pr_links.lazy(), features), level="activity"
).collect()
wanted = contrast.filter(pl.col("team_id") == scope)
contrast = wanted if wanted.height or team is not None else contrast
contrast_team = contrast["team_id"][0] if contrast.height else None
if contrast.height and access.may_see(me, "activity", None if contrast_team == ALL else contrast_team):
    st.subheader("For contrast: activity-level figures")
    st.warning(
        "Activity level, not output: cost per PR falls whenever work is split into more, smaller PRs — agents "
        "opening many PRs per feature make each PR look cheap while each delivered feature costs more. Judge cost "
        "per delivered feature above, not these."
    )
    table(
        contrast.select(
            "quarter", "team_id", "prs_merged", "agent_prs_merged", "cost_per_pr", "prs_per_delivered_feature"
        ),
        key=f"{PAGE}.contrast",
        caption="Cost per PR = all money of the quarter ÷ PRs merged in it; PRs per feature = merged PRs linked to "
        "the features delivered that quarter ÷ their number.",
        team_id=st.column_config.TextColumn("team"),
        prs_merged=st.column_config.NumberColumn("PRs merged"),
        agent_prs_merged=st.column_config.NumberColumn("by agents"),
        cost_per_pr=st.column_config.NumberColumn(f"cost per PR ({money})", format="%.0f"),
        prs_per_delivered_feature=st.column_config.NumberColumn("PRs per delivered feature", format="%.1f"),
    )

# --- Settings ---------------------------------------------------------------------------------------------------

if access.may_change_settings(me):
    with st.expander("Cost settings: rates, model prices and attribution rules"), st.form(f"{PAGE}.settings"):
        ci_rates = st.data_editor(
            pl.DataFrame(list(current.ci_rates), schema=["runner", "per_minute"], orient="row").to_pandas(),
            num_rows="dynamic",
            key=f"{PAGE}.settings.ci_rates",
        )
        model_prices = st.data_editor(
            pl.DataFrame(
                list(current.model_price_table),
                schema=["model", "input_per_million", "output_per_million"],
                orient="row",
            ).to_pandas(),
            num_rows="dynamic",
            key=f"{PAGE}.settings.model_prices",
        )
        credit_price = st.number_input(
            f"CircleCI credit price ({current.currency})",
            min_value=0.0,
            value=float(current.circleci_credit_price),
            step=0.0001,
            format="%.5f",
            key=f"{PAGE}.settings.credit",
        )
        st.caption(
            "These prices are the one price setting: imports turn tokens and credits into money with them, and "
            "attribution prices events that carry only a quantity. A model is priced by the longest name its model "
            "string starts with (`gpt-4o-2024-08-06` → `gpt-4o`)."
        )
        share = st.slider(
            "Input share of plain token counts", 0.0, 1.0, current.input_token_share, key=f"{PAGE}.settings.share"
        )
        rules_on = st.multiselect(
            "Attribution rules on (in order of trust)",
            list(RULES),
            default=list(current.rules),
            format_func=RULE_LABELS.get,
            key=f"{PAGE}.settings.rules",
        )
        if st.form_submit_button("Save cost settings"):
            try:
                chosen_settings = CostSettings(
                    ci_rates=tuple(
                        (str(r), float(p)) for r, p in ci_rates.dropna().itertuples(index=False) if str(r).strip()
                    ),
                    model_prices=tuple(
                        (str(m), float(i), float(o))
                        for m, i, o in model_prices.dropna().itertuples(index=False)
                        if str(m).strip()
                    ),
                    circleci_credit_price=float(credit_price),
                    input_token_share=float(share),
                    rules=tuple(r for r in RULES if r in rules_on),
                    currency=current.currency,
                )
            except (TypeError, ValueError) as error:
                st.error(f"Not saved: {error}")
            else:
                access.save_settings(data.store, me, chosen_settings)
                st.toast("Cost settings saved; the figures are recomputed with them.")
                st.rerun()

"""DORA: the five delivery measures with their buckets, definitions, trend, cycle-time breakdown and mapping check.

Lead time and recovery time read in hours everywhere (card, chart, tables); a sentence adds days above 72 h.
"""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl
import streamlit as st
from plotly.subplots import make_subplots

from core import access
from core.access import restrict_dora
from core.delivery.dora import DORA_2023, FIRST_DEPLOYMENT_NOTE, MEASURES, DoraSettings, mapping_check
from ui import caches
from ui import format as fmt
from ui.data import page_data
from ui.widgets import figure_builder, page_header, scope_and_range, table, team_labels

PAGE = "dora"
TITLES = {
    "deployment_frequency": "Deployment frequency",
    "lead_time_for_changes": "Lead time for changes",
    "change_failure_rate": "Change failure rate",
    "failed_deployment_recovery_time": "Recovery time",
    "deployment_rework_rate": "Deployment rework rate",
}
SAMPLES = {
    "deployment_frequency": "successful production deployments",
    "lead_time_for_changes": "deployed PRs",
    "change_failure_rate": "successful production deployments",
    "failed_deployment_recovery_time": "resolved incidents",
    "deployment_rework_rate": "successful production deployments",
}
BUCKET_COLOURS = {"elite": "green", "high": "blue", "medium": "orange", "low": "red"}
CHOICES = {
    "statistic": {"median": "Median (DevLake)", "mean": "Mean"},
    "lead_time_start": {"first_commit": "The PR's first commit (DevLake)", "pr_opened": "The PR being opened"},
    "incident_link": {
        "devlake": "The previous successful production deployment of the team (DevLake)",
        "explicit": "The deployment named on the incident",
    },
    "recovery_start": {
        "deployment_finished": "The finish of the deployment it is tied to, counted when resolved (DevLake)",
        "incident_opened": "The incident opening, counted when its deployment finished",
    },
}
PARTS = {
    "coding_minutes": ("Coding", "#5b8fc7", "first commit → PR opened"),
    "pickup_minutes": ("Pickup", "#f2a541", "PR opened → first review"),
    "review_minutes": ("Review", "#8e6bbf", "first review → merged"),
    "deploy_minutes": ("Deploy", "#2e7d32", "merged → finish of the production deployment that shipped it"),
}
HOURS_IN_DAYS_ABOVE = 72
DURATIONS = ("lead_time_for_changes", "failed_deployment_recovery_time")

data = page_data()
viewer = data.viewer
page_header(
    "DORA",
    "How often we ship to production, how long a change takes to get there, how often a deployment fails and how "
    "fast we recover: output-level delivery measures, DevLake-compatible by default.",
    viewer,
)

team_names = team_labels(data["teams"])

scope_col, range_col, every_col = st.columns([2, 3, 2])
team_id, start, end = scope_and_range(PAGE, team_names, caches.throughput_span(data), viewer, scope_col, range_col)
every = every_col.segmented_control(
    "Trend per", ["week", "month"], format_func=str.capitalize, default="week", required=True, key=f"{PAGE}.every"
)

chosen: DoraSettings = caches.dora_settings(data)
rows = restrict_dora(viewer, caches.dora_measures(data, chosen, team_id, start, end).lazy(), team_id).collect()
show_activity = access.may_see(viewer, "activity", team_id)


def shown_value(measure: str, value: float | None) -> str:
    """A measure's value in the unit a reader expects."""
    if value is None:
        return "—"
    if measure == "deployment_frequency":
        return f"{value:g} days/week"
    if measure in ("change_failure_rate", "deployment_rework_rate"):
        return f"{value:.1%}"
    return f"{value / 60:,.1f} h"


def in_words(measure: str, value: float | None) -> str:
    """A sentence for a duration measure: its hours, and its days when above 72 h."""
    if measure not in DURATIONS or value is None:
        return ""
    hours = value / 60
    days = f" ({hours / 24:.1f} days)" if hours > HOURS_IN_DAYS_ABOVE else ""
    return f"{TITLES[measure]}: {hours:,.1f} hours{days}."


def measure_cards() -> None:
    """The five measures, each with its bucket badge, benchmark and definition beside it."""
    cells = st.columns(len(MEASURES))
    for cell, row in zip(cells, rows.iter_rows(named=True), strict=True):
        measure = row["measure"]
        with cell.container(border=True):
            exact = "" if row["value"] is None else f" As measured: {fmt.number(row['value'])} {row['unit']}."
            unit = "hours" if measure in DURATIONS else row["unit"]
            explained = f"{fmt.human_label(measure)}, in {unit}.{exact}"
            st.metric(
                TITLES[measure],
                shown_value(measure, row["value"]),
                help=fmt.figure_help(row["value"], explained, "no deployment or incident in the range gives one"),
            )
            if in_words(measure, row["value"]):
                st.caption(in_words(measure, row["value"]))
            if measure == "deployment_rework_rate":
                st.caption("**Marked as rework when**: " + "; or ".join(chosen.rework_rules()) + ".")
                st.badge("No DORA buckets", color="gray", help="DORA publishes no performance buckets for rework.")
            elif row["bucket"]:
                st.badge(
                    row["bucket"].capitalize(),
                    color=BUCKET_COLOURS[row["bucket"]],  # type: ignore[arg-type]
                    help=f"DORA 2023 {row['bucket']}: {row['benchmark']}",
                )
            else:
                st.badge("No data", color="gray")
            if measure != "deployment_rework_rate":
                st.caption(f"**DORA 2023 {row['bucket'] or 'bucket'}**: {row['benchmark'] or 'no data in this range.'}")
            st.caption(f"**How it is computed**: {row['definition']}")
            if "sample_size" in row:
                st.caption(f"Over {row['sample_size']:,} {SAMPLES[measure]}.")


@figure_builder
def trend_figure(trend: pl.DataFrame, statistic: str, every: str, show_activity: bool) -> go.Figure:
    """Each measure per week or month in its own panel, with the elite boundary dotted."""
    figure = make_subplots(rows=3, cols=2, subplot_titles=[TITLES[m] for m in MEASURES], vertical_spacing=0.1)
    for index, measure in enumerate(MEASURES):
        part = trend.filter(pl.col("measure") == measure)
        scale, unit, shown = {
            "deployment_frequency": (1, "deployment days", "%{y:.0f} deployment days"),
            "lead_time_for_changes": (1 / 60, "hours", f"{statistic} %{{y:.1f}} h"),
            "change_failure_rate": (100, "%", "%{y:.1f}% of deployments failed"),
            "failed_deployment_recovery_time": (1 / 60, "hours", f"{statistic} %{{y:.1f}} h to recover"),
            "deployment_rework_rate": (100, "%", "%{y:.1f}% of deployments were rework"),
        }[measure]
        sizes = part["sample_size"].to_list()
        figure.add_scatter(
            x=part["period_start"].to_list(),
            y=[None if v is None else v * scale for v in part["value"]],
            customdata=sizes if show_activity else None,
            mode="lines+markers",
            marker={"size": 4},
            line={"color": "#2f5d8a", "width": 1.5},
            name=TITLES[measure],
            showlegend=False,
            hovertemplate=shown
            + (f" (over %{{customdata:,}} {SAMPLES[measure]})" if show_activity else "")
            + "<extra></extra>",
            row=index // 2 + 1,
            col=index % 2 + 1,
        )
        elite = DORA_2023[measure][0].bound if measure in DORA_2023 else None
        if measure == "deployment_frequency" and every == "month":
            elite = None
        if elite is not None:
            figure.add_hline(
                y=elite * scale,
                line={"dash": "dot", "color": "#2e7d32", "width": 1},
                annotation_text="elite",
                annotation_font_size=10,
                row=index // 2 + 1,
                col=index % 2 + 1,
            )
        figure.update_yaxes(title_text=unit, rangemode="tozero", row=index // 2 + 1, col=index % 2 + 1)
    figure.update_xaxes(hoverformat="Week of %d %b %Y" if every == "week" else "%B %Y")
    figure.update_layout(height=820, margin={"t": 40, "b": 10, "l": 10, "r": 10}, hovermode="x")
    return figure


@figure_builder
def breakdown_figure(overall: pl.DataFrame, features: pl.DataFrame, statistic: str) -> go.Figure:
    """Stacked horizontal bars of the cycle-time parts, in hours: all PRs in view, then each recent feature."""
    labels = [
        "All PRs in view",
        *(f"{f} {n}"[:48] for f, n in zip(features["feature_id"], features["name"], strict=True)),
    ]
    figure = go.Figure()
    for part, (name, colour, span) in PARTS.items():
        values = [*overall[part].to_list(), *features[part].to_list()]
        figure.add_bar(
            y=labels,
            x=[None if v is None else v / 60 for v in values],
            orientation="h",
            name=name,
            marker_color=colour,
            hovertemplate=f"%{{y}}<br>{name} ({span}): {statistic} %{{x:.1f}} h<extra></extra>",
        )
    figure.update_layout(
        barmode="stack",
        height=120 + 24 * len(labels),
        margin={"t": 10, "b": 10, "l": 10, "r": 10},
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "traceorder": "normal"},
        xaxis_title=f"{statistic} hours",
        yaxis={"autorange": "reversed"},
    )
    return figure


def definitions_panel() -> None:
    """The switchable definitions: editable by those who steward settings, read-only for the others."""
    if not access.may_change_settings(viewer):
        for name, options in CHOICES.items():
            st.markdown(f"- **{name.replace('_', ' ').capitalize()}**: {options[getattr(chosen, name)]}")
        st.markdown("- **Rework**: a deployment is rework when " + "; or ".join(chosen.rework_rules()) + ".")
        st.caption("Delivery leads and admins can switch these definitions.")
        return
    with st.form(f"{PAGE}.settings"):
        picked_settings = {
            name: st.radio(
                label,
                list(CHOICES[name]),
                index=list(CHOICES[name]).index(getattr(chosen, name)),
                format_func=CHOICES[name].get,
                key=f"{PAGE}.settings.{name}",
            )
            for name, label in (
                ("statistic", "Statistic over PRs, weeks and incidents"),
                ("lead_time_start", "Lead time for changes starts at"),
                ("incident_link", "An incident counts against"),
                ("recovery_start", "Recovery time starts at"),
            )
        }
        st.markdown("**Deployment rework rate: a deployment is rework when**")
        rework = {
            "rework_title_pattern": st.text_input(
                "it ships a PR whose title matches (regular expression)",
                chosen.rework_title_pattern,
                key=f"{PAGE}.settings.rework_title_pattern",
            ),
            "rework_branch_pattern": st.text_input(
                "it ships a PR whose branch matches (regular expression)",
                chosen.rework_branch_pattern,
                key=f"{PAGE}.settings.rework_branch_pattern",
            ),
            "rework_redeploys": st.checkbox(
                "it redeploys a commit already in production (a rollback)",
                chosen.rework_redeploys,
                key=f"{PAGE}.settings.rework_redeploys",
            ),
            "rework_after_incident_hours": st.number_input(
                "it finishes within this many hours after an incident of its team opened (0: off)",
                min_value=0.0,
                max_value=720.0,
                value=float(chosen.rework_after_incident_hours),
                step=1.0,
                key=f"{PAGE}.settings.rework_after_incident_hours",
            ),
        }
        if st.form_submit_button("Save definitions"):
            try:
                picked = DoraSettings(**picked_settings, **rework)
            except ValueError as error:
                st.error(f"Not saved: {error}")
            else:
                access.save_settings(data.store, viewer, picked)
                st.rerun()
    st.caption("Saved for the whole workspace (and audited); the DevLake choices are the defaults.")


if rows.is_empty():
    st.info("DORA measures are not part of this view.")
    st.stop()

measure_cards()
st.info(
    f"**The first deployment has no deploy time.** {FIRST_DEPLOYMENT_NOTE} Throughline follows that rule so its "
    "figures match a DevLake dashboard on the same data: such PRs keep their coding, pickup and review time (deploy "
    "counts as 0 in their cycle time) and are left out of lead time for changes.",
    icon=":material/info:",
)

with st.expander("Definitions (median or mean, lead time start, incident link, recovery start, rework rules)"):
    definitions_panel()

st.subheader("Trend")
trend = caches.dora_trend(data, chosen, every, team_id, start, end)
st.plotly_chart(trend_figure(trend, chosen.statistic, every, show_activity), key=f"{PAGE}.trend")
st.caption(
    f"Per calendar {every}: deployment days in the {every}; the {chosen.statistic} lead time of PRs deployed in it; "
    f"the share of its deployments with an incident tied to them; the {chosen.statistic} recovery time of incidents "
    f"tied to its deployments; the share of its deployments that were rework. Lead and recovery time in hours. "
    f"Empty where a {every} has no data. Dotted: the DORA 2023 elite boundary."
)

st.subheader("Cycle time breakdown")
st.caption(
    "DevLake's parts of a PR's cycle time: "
    + "; ".join(f"**{name.lower()}** = {span}" for name, _, span in PARTS.values())
    + f". Each bar shows the {chosen.statistic} of each part, so the parts need not add up to the "
    f"{chosen.statistic} cycle time (coding + open + deploy per PR)."
)
overall = caches.overall_cycle_time(data, chosen.statistic, team_id, start, end)
features = access.restrict(
    viewer, caches.feature_cycle_times(data, chosen.statistic, team_id, start, end).lazy(), level="output"
).collect()
if not show_activity:
    overall, features = overall.drop("prs"), features.drop("prs")
st.plotly_chart(breakdown_figure(overall, features.head(25), chosen.statistic), key=f"{PAGE}.breakdown")
st.caption(f"The {min(features.height, 25)} features whose last PR merged most recently in the range; all below.")
hours = {p: st.column_config.NumberColumn(f"{PARTS[p][0]} (h)", format="%,.1f") for p in PARTS}
in_hours = [(pl.col(p) / 60).alias(p) for p in (*PARTS, "cycle_minutes")]
per_feature = features.select(
    "feature_id", "name", "team_id", *(["prs"] if show_activity else []), *PARTS, "cycle_minutes", "last_merged_at"
).with_columns(in_hours)
table(
    per_feature,
    key=f"{PAGE}.features",
    caption=f"Per feature: the {chosen.statistic} of each part over the feature's merged PRs, in hours.",
    **fmt.headings(per_feature, {"prs": "PRs merged"})
    | hours
    | {
        "cycle_minutes": st.column_config.NumberColumn("Cycle (h)", format="%,.1f"),
        "last_merged_at": st.column_config.DatetimeColumn("Last PR merged", format="D MMM YYYY"),
    },
)

st.subheader("Per PR")
prs = access.restrict(
    viewer, caches.pr_cycle_times(data, team_id, start, end).lazy(), level="activity", detail=True
).collect()
if prs.is_empty():
    st.caption("Per-PR rows are activity-level detail: the team's own lead and admins see them.")
else:
    if not access.may_see_detail(viewer, team_id):
        st.caption("Only the PRs of teams whose detail you may see are listed.")
    per_pr = (
        prs.sort("merged_at", descending=True)
        .select("pr_id", "team_id", "feature_id", "merged_at", "deployment_id", "deployed_at", *PARTS, "cycle_minutes")
        .with_columns(in_hours)
    )
    table(
        per_pr,
        key=f"{PAGE}.prs",
        caption="Each merged PR, newest first, in hours (from whole minutes rounded up); an empty deploy time means "
        "no production deployment shipped it yet, or it went out with a service's first deployment.",
        **fmt.headings(per_pr)
        | hours
        | {
            "merged_at": st.column_config.DatetimeColumn("Merged", format="D MMM YYYY, HH:mm"),
            "deployed_at": st.column_config.DatetimeColumn("Deployed", format="D MMM YYYY, HH:mm"),
            "cycle_minutes": st.column_config.NumberColumn("Cycle (h)", format="%,.1f"),
        },
    )

if access.may_check_dora_mapping(viewer):
    st.subheader("Mapping check")
    st.caption(
        "How the source was read for these figures, from the first to the last day in view: which deployments "
        "counted as production and why, which deployment each incident was tied to and why, and the PRs each "
        "deployment shipped. Delivery leads and admins see this."
    )
    scoped = access.dora_frames({n: data[n] for n in ("deployments", "pull_requests", "incidents")}, team_id)
    check = mapping_check(*scoped, chosen)
    in_view = {"deployments": "finished_at", "incidents": "opened_at", "prs": "merged_at"}
    shown = {
        name: check[name].filter(pl.col(column).dt.date().is_between(start, end)).collect()
        for name, column in in_view.items()
    }
    table(
        shown["deployments"],
        key=f"{PAGE}.check.deployments",
        **fmt.headings(shown["deployments"]),
        caption="Every deployment row (one run × repo; rows of one run count once), counted or not, and why.",
    )
    table(
        shown["incidents"],
        key=f"{PAGE}.check.incidents",
        **fmt.headings(shown["incidents"]),
        caption="Every incident, the deployment row and run it was tied to, and why.",
    )
    table(
        shown["prs"],
        key=f"{PAGE}.check.prs",
        **fmt.headings(shown["prs"]),
        caption="Every merged PR with the deployment (run and row) that shipped it, and how that was established.",
    )

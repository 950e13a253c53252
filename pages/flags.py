"""Vanity flags: activity that looks like progress while the value it should create does not move, and why."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import timedelta

import plotly.graph_objects as go
import polars as pl
import streamlit as st
from plotly.subplots import make_subplots

from core import access
from core.access import restrict_flags
from core.flags.acknowledgements import MAX_COMMENT_CHARS, apply_acknowledgements
from core.flags.detectors import DETECTORS, sort_flags
from core.flags.settings import FLAG_DEFAULTS_TEXT, FlagSettings
from ui import caches
from ui import format as fmt
from ui.data import page_data
from ui.widgets import figure_builder, page_header, plain, table, team_labels

PAGE = "flags"
SEVERITY_ICONS = {"high": ":red-badge[High]", "medium": ":orange-badge[Medium]", "low": ":gray-badge[Low]"}
ACTIVITY = ("#c2410c", "#f59e0b", "#7c3aed")
VALUE = ("#2e7d32", "#0e7490", "#65a30d")
PAGE_SIZE = 10
"""Flag cards drawn per page (each a chart and a table; the reader asks for more): 20 took 2 s to draw."""

data = page_data()
viewer = data.viewer
page_header(
    "Vanity flags",
    "Where activity rises while the value it should create does not: each flag with its evidence, a plain "
    "explanation and the outcome metric to watch instead.",
    viewer,
)

thresholds: FlagSettings = caches.flag_settings(data)
currency = caches.cost_settings(data).currency
team_names = team_labels(data["teams"])
metric_names = dict(data["metrics"].select("metric_id", "name").collect().iter_rows())
shown = restrict_flags(viewer, caches.flags(data), data.frames, thresholds)
flags = sort_flags(apply_acknowledgements(shown, access.flag_acknowledgements(data.store)))

flash = st.session_state.pop(f"{PAGE}.flash", None)
if flash:
    st.success(flash)


def subject(flag: dict[str, object]) -> str:
    """The team (and metric) a flag is about, in words."""
    parts = []
    if flag["team_id"]:
        parts.append(team_names.get(str(flag["team_id"]), str(flag["team_id"])))
    if flag["metric_id"]:
        parts.append(metric_names.get(str(flag["metric_id"]), str(flag["metric_id"])))
    return " · ".join(parts) or "The organisation"


def chart(flag_id: str) -> go.Figure | None:
    """The flag's small chart: the measures it compared (left axis) beside the value they should move (right)."""
    rows = caches.flag_chart(data, flag_id)
    return None if rows.is_empty() else chart_figure(rows.sort("measure", "role", "period"))


@figure_builder
def chart_figure(rows: pl.DataFrame) -> go.Figure:
    """Each measure of ``rows`` as a line: activity solid on the left axis, value dotted on the right."""
    figure = make_subplots(specs=[[{"secondary_y": True}]])
    drawn = {"activity": 0, "value": 0}
    for (measure, role), series in rows.sort("period").group_by(["measure", "role"], maintain_order=True):
        is_value = role == "value"
        palette = VALUE if is_value else ACTIVITY
        color = palette[drawn[str(role)] % len(palette)]
        drawn[str(role)] += 1
        figure.add_scatter(
            x=series["period"].to_list(),
            y=series["value"].to_list(),
            name=str(measure),
            mode="lines+markers",
            line={"color": color, "dash": "dot" if is_value else "solid"},
            hovertemplate=f"{measure}: %{{y:,.4~g}}<br>period ending %{{x|%d %b %Y}}"
            "<br>from core.flags.charts.flag_chart<extra></extra>",
            secondary_y=is_value,
        )
    first, last = rows["period"].min(), rows["period"].max()
    pad = max((last - first) / 20, timedelta(days=7))  # type: ignore[operator]
    figure.update_layout(
        height=260,
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
        legend={"orientation": "h", "y": -0.25},
        hovermode="x unified",
    )
    # Dates, never times of day: a single window would otherwise be spread over a millisecond.
    figure.update_xaxes(type="date", tickformat="%d %b %Y", range=[first - pad, last + pad])  # type: ignore[operator]
    return figure


@dataclasses.dataclass(frozen=True)
class EvidenceUnit:
    """How the evidence numbers whose key ends with ``ending`` (or starts with it) read: money, a share, a change…"""

    ending: str
    kind: str
    at_start: bool = False

    def matches(self, key: str) -> bool:
        """True when ``key`` (without ``_prev``) is read in this unit."""
        return key.startswith(self.ending) if self.at_start else key.endswith(self.ending)


EVIDENCE_UNITS = (
    EvidenceUnit("threshold", "percent", at_start=True),
    EvidenceUnit("_share", "percent"),
    EvidenceUnit("_rise", "change"),
    EvidenceUnit("_change", "change"),
    EvidenceUnit("steady_band", "percent"),
    EvidenceUnit("drop", "percent"),
    EvidenceUnit("realised_value", "money"),
    EvidenceUnit("cost", "money"),
    EvidenceUnit("cost_unlinked", "money"),
    EvidenceUnit("cycle_days_median", "days"),
    EvidenceUnit("pr_size_median", "lines"),
    EvidenceUnit("best_lag", "weeks"),
    EvidenceUnit("weeks", "weeks"),
    EvidenceUnit("alpha", "p-value"),
    EvidenceUnit("_p", "p-value"),
)
"""Evidence units by the key's ending, first match wins; any other number is a plain figure."""

EVIDENCE_LABELS = {
    "kendall_tau": "Mann–Kendall tau",
    "kendall_z": "Trend z-score",
    "kendall_p": "Trend p-value",
    "trend_rise": "Rise over the window",
    "best_r": "Best correlation with the outcome (r)",
    "best_lag": "Lag of the best correlation",
    "follow_p": "Chance the outcome follows (p-value)",
    "series_id": "Series",
    "label": "Series name",
    "outcome_metric_id": "Outcome metric",
    "outcome_name": "Outcome metric name",
    "cycle_days_median": "Median cycle time",
    "pr_size_median": "Median PR size",
    "prs_per_feature": "PRs per delivered feature",
    "alpha": "Significance level",
    "follow_alpha": "Significance level for following",
    "threshold": "Threshold",
    "configured_on": "Configured on",
}
"""Reader's names of evidence keys that ``human_label`` alone would not make clear."""


def evidence_table(flag: dict[str, object]) -> pl.DataFrame:
    """The numbers behind the flag, one per row, each under a reader's label and with its unit."""
    numbers = json.loads(str(flag["evidence"]))
    return pl.DataFrame(
        {"number": [evidence_label(k) for k in numbers], "value": [evidence_value(k, v) for k, v in numbers.items()]},
        schema={"number": pl.String, "value": pl.String},
    )


def evidence_label(key: str) -> str:
    """``features_confirmed_prev`` → ``Features confirmed, previous window``; ``_z`` reads as a z-score."""
    base, previous = (key.removesuffix("_prev"), True) if key.endswith("_prev") else (key, False)
    label = EVIDENCE_LABELS.get(base) or (
        f"{fmt.human_label(base.removesuffix('_z'))}, z-score" if base.endswith("_z") else fmt.human_label(base)
    )
    return f"{label}, previous window" if previous else label


def evidence_value(key: str, value: object) -> str:
    """One evidence number in its unit, or the text as it is."""
    if isinstance(value, str):
        return value
    if value is None:
        return fmt.MISSING
    if isinstance(value, bool | list | dict):
        return json.dumps(value)
    base = key.removesuffix("_prev")
    kind = next((u.kind for u in EVIDENCE_UNITS if u.matches(base)), "number")
    amount = float(value)
    if kind == "money":
        return fmt.money(amount, currency)
    if kind == "percent":
        return fmt.percent(amount, digits=1)
    if kind == "change":
        return fmt.change(amount, digits=1)
    if kind == "days":
        return fmt.duration(amount)
    if kind == "p-value":
        return f"{amount:.3g}"
    if kind in ("lines", "weeks"):
        return f"{fmt.number(amount)} {kind}"
    return f"{value:,}" if isinstance(value, int) else fmt.number(amount)


def acknowledge_form(flag: dict[str, object], key: str) -> None:
    """A comment box that acknowledges the flag in the viewer's name."""
    with st.form(f"{PAGE}.ack.{key}", clear_on_submit=True, border=False):
        comment = st.text_area(
            "Comment",
            key=f"{PAGE}.ack.{key}.comment",
            max_chars=MAX_COMMENT_CHARS,
            placeholder="Why this is known or accepted, and what happens next",
            height=80,
        )
        if st.form_submit_button("Acknowledge" if not flag["acknowledged"] else "Acknowledge again"):
            if not comment.strip():
                st.error("Add a comment: what is known about this flag, or what will be done.")
                return
            access.acknowledge_flag(data.store, viewer, str(flag["flag_id"]), comment)
            st.session_state[f"{PAGE}.flash"] = f"Acknowledged: {DETECTORS[str(flag['detector'])]} · {subject(flag)}."
            st.rerun()


def flag_card(flag: dict[str, object]) -> None:
    """One flag: what, who, how severe, the evidence and chart, what to watch, and its acknowledgement."""
    key = hashlib.sha1(str(flag["flag_id"]).encode()).hexdigest()[:12]
    with st.container(border=True, key=f"{PAGE}.flag.{key}"):
        acked = ":blue-badge[:material/check: Acknowledged]" if flag["acknowledged"] else ""
        st.markdown(
            f"#### {DETECTORS[str(flag['detector'])]} · {plain(subject(flag))}\n"
            f"{SEVERITY_ICONS[str(flag['severity'])]} {acked} detected {flag['detected_at']:%d %b %Y} · window "
            f"{flag['window_start']:%d %b %Y} – {flag['window_end']:%d %b %Y}"
        )
        st.markdown(plain(flag["explanation"]))
        st.markdown(f":material/visibility: **Outcome to watch.** {plain(flag['suggestion'])}")
        if flag["acknowledged"]:
            st.info(
                f"Acknowledged by **{plain(flag['acknowledged_by'])}** "
                f"on {flag['acknowledged_at']:%d %b %Y %H:%M} UTC: "
                f"{plain(flag['comment'] or '(no comment)')}",
                icon=":material/check_circle:",
            )
        left, right = st.columns([1, 1])
        figure = chart(str(flag["flag_id"]))
        if figure is not None:
            left.plotly_chart(figure, key=f"{PAGE}.chart.{key}", config={"displayModeBar": False})
            left.caption(
                "Dotted: the value the activity should move (right axis), per window, dated by its last day. "
                "The activity it was compared with is not part of your view."
                if flag["hidden_numbers"]
                else "Solid: the activity the flag compared (left axis); dotted: the value it should move "
                "(right axis), per window, dated by its last day."
            )
        else:
            left.caption("No chart of this flag's measures is part of your view.")
        with right:
            table(
                evidence_table(flag),
                key=f"{PAGE}.evidence.{key}",
                caption="The exact numbers behind the flag over its window."
                + (
                    f" {flag['hidden_numbers']} activity-level number(s) are not part of your view."
                    if flag["hidden_numbers"]
                    else ""
                ),
            )
        with st.expander("Reproduce and acknowledge"):
            window = f"{flag['window_start']:%d %b %Y} to {flag['window_end']:%d %b %Y} (inclusive)"
            st.markdown(
                f"Flag id `{flag['flag_id']}`: detector `{flag['detector']}`, window {window}, data as of "
                f"{caches.as_of(data)}, under the thresholds below. "
                "Run `python -m core report flags --format json` for the same numbers."
                if viewer.role == "admin"
                else f"{DETECTORS[str(flag['detector'])]} over {window}, on the data as of "
                f"{caches.as_of(data):%d %b %Y}, under the thresholds below; the flags report gives the same numbers."
            )
            acknowledge_form(flag, key)


def thresholds_panel() -> None:
    """Every threshold with its default in words; delivery leads and admins can change them."""
    if not (access.may_change_settings(viewer) or access.may_see(viewer, "activity", viewer.team_id)):
        st.caption(
            "Delivery leads and admins set the detection thresholds; each flag above states its window and the "
            "evidence at your level."
        )
        return
    current = dataclasses.asdict(thresholds)
    defaults = dataclasses.asdict(FlagSettings())
    table(
        pl.DataFrame(
            {
                "setting": [fmt.human_label(name) for name in FLAG_DEFAULTS_TEXT],
                "current": [str(current[name]) for name in FLAG_DEFAULTS_TEXT],
                "default": [str(defaults[name]) for name in FLAG_DEFAULTS_TEXT],
                "meaning": list(FLAG_DEFAULTS_TEXT.values()),
            }
        ),
        key=f"{PAGE}.thresholds",
        caption="Changes are relative (0.30 = 30%) unless stated. The flags above are computed under 'current'.",
        meaning=st.column_config.TextColumn(width="large"),
    )
    if not access.may_change_settings(viewer):
        st.caption("Delivery leads and admins can change these thresholds.")
        return
    metrics = data["metrics"].select("metric_id", "name", "level").sort("name").collect()
    labels = {m: f"{n} ({lvl})" for m, n, lvl in metrics.iter_rows()}
    with st.form(f"{PAGE}.settings"):
        picked: dict[str, object] = {}
        columns = st.columns(3)
        numeric = [f for f in dataclasses.fields(FlagSettings) if f.name != "executive_view_metrics"]
        for i, field in enumerate(numeric):
            value = current[field.name]
            picked[field.name] = columns[i % 3].number_input(
                field.name.replace("_", " ").capitalize(),
                value=value,
                step=1 if isinstance(value, int) else 0.01,
                format=None if isinstance(value, int) else "%.3f",
                help=FLAG_DEFAULTS_TEXT.get(field.name),
                key=f"{PAGE}.settings.{field.name}",
            )
        picked["executive_view_metrics"] = tuple(
            st.multiselect(
                "Metrics shown on an executive view or an OKR (activity-level ones are flagged)",
                list(labels),
                default=[m for m in thresholds.executive_view_metrics if m in labels],
                format_func=labels.get,
                key=f"{PAGE}.settings.executive_view_metrics",
            )
        )
        saved, reset = st.columns([1, 4])
        save = saved.form_submit_button("Save thresholds")
        restore = reset.form_submit_button("Restore defaults")
    if save or restore:
        try:
            chosen = FlagSettings() if restore else FlagSettings(**picked)  # type: ignore[arg-type]
        except (TypeError, ValueError) as error:
            st.error(f"Not saved: {error}.")
            return
        access.save_settings(data.store, viewer, chosen)
        st.session_state[f"{PAGE}.flash"] = "Thresholds saved for the whole workspace; the flags were recomputed."
        st.rerun()


open_flags = flags.filter(~pl.col("acknowledged"))
cells = st.columns(3)
cells[0].metric(
    "Open flags",
    f"{open_flags.height:,}",
    help="Flags in your view not yet acknowledged; detectors re-run at the end of every quarter.",
    border=True,
)
cells[1].metric(
    "High severity",
    f"{open_flags.filter(pl.col('severity') == 'high').height:,}",
    help="Open flags whose evidence lies at least twice as far past its threshold as needed to flag.",
    border=True,
)
cells[2].metric(
    "Acknowledged",
    f"{flags.filter(pl.col('acknowledged')).height:,}",
    help="Flags someone acknowledged with a comment; the latest acknowledgement is shown on each.",
    border=True,
)

detector_col, team_col, hide_col = st.columns([3, 3, 2])
detectors = detector_col.multiselect(
    "Detectors", list(DETECTORS), format_func=DETECTORS.get, key=f"{PAGE}.detectors", placeholder="All detectors"
)
in_view = sorted(t for t in flags["team_id"].drop_nulls().unique() if t in team_names)
chosen_teams = team_col.multiselect(
    "Teams", in_view, format_func=team_names.get, key=f"{PAGE}.teams", placeholder="All teams"
)
hide_acknowledged = hide_col.toggle("Hide acknowledged", key=f"{PAGE}.hide_acknowledged")

listed = flags
if detectors:
    listed = listed.filter(pl.col("detector").is_in(detectors))
if chosen_teams:
    listed = listed.filter(pl.col("team_id").is_in(chosen_teams))
if hide_acknowledged:
    listed = listed.filter(~pl.col("acknowledged"))

if listed.is_empty():
    st.info(
        "No flags in your view."
        if flags.is_empty()
        else "No flags match these filters; acknowledged flags are hidden."
        if hide_acknowledged
        else "No flags match these filters."
    )
else:
    st.caption(
        f"{listed.height:,} flag(s), newest and most severe first. Each flag names its window; the same flag keeps "
        "its id (and acknowledgement) when the data is recomputed."
    )
    shown_count = PAGE_SIZE * st.session_state.get(f"{PAGE}.pages", 1)
    for flag in listed.head(shown_count).to_dicts():
        flag_card(flag)
    if listed.height > shown_count and st.button(
        f"Show {min(PAGE_SIZE, listed.height - shown_count)} more", key=f"{PAGE}.more"
    ):
        st.session_state[f"{PAGE}.pages"] = st.session_state.get(f"{PAGE}.pages", 1) + 1
        st.rerun()

with st.expander("Thresholds and defaults"):
    thresholds_panel()

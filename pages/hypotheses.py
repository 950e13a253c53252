"""Hypotheses: before a feature is built, which outcome it should move, by how much, and when to judge it."""

from __future__ import annotations

from datetime import datetime

import polars as pl
import streamlit as st

from core import access
from core.model.schema import ValidationError
from ui.data import page_data
from ui.widgets import page_header, table

PAGE = "hypotheses"
FLASH = f"{PAGE}.flash"
STATUS_ORDER = {"planned": 0, "in_progress": 1, "delivered": 2, "cancelled": 3}

data = page_data()
store, me = data.store, data.viewer
page_header(
    "Hypotheses",
    "Before a feature is built: the outcome metric it should move, the predicted change, and the window to judge it "
    "in. Once the feature is delivered its prediction is locked.",
    me,
)


def _may_edit(team_id: str | None) -> bool:
    return access.may_edit_hypothesis(me, team_id)


features = access.restrict(me, data["features"], level="outcome").collect()
editable_teams = [t for t in features["team_id"].unique().sort(nulls_last=True) if _may_edit(t)]
editable = features.filter(
    pl.col("team_id").is_in([t for t in editable_teams if t is not None])
    | (pl.col("team_id").is_null() & pl.lit(None in editable_teams))
).sort(pl.col("status").replace_strict(STATUS_ORDER, default=9), "feature_id")
outcome_metrics = (
    access.restrict_metrics(me, data["metrics"])
    .filter(pl.col("level") == "outcome")
    .select("metric_id", "name", "unit")
    .sort("name")
    .collect()
)
metric_label = dict(outcome_metrics.select("metric_id", "name").iter_rows())
hypotheses = data["hypotheses"].collect()

if flash := st.session_state.pop(FLASH, None):
    kind, message = flash
    getattr(st, kind)(message)

if editable.height == 0:
    st.info("You may not edit the hypotheses of any team's features.")
    st.stop()

scope = "every team" if len(editable_teams) > 1 else f"team {editable_teams[0] or '(none)'}"
retrospective = (pl.col("status") == "delivered") & (pl.col("created_at") > pl.col("delivered_at"))
table(
    editable.join(hypotheses, on="feature_id", how="left").select(
        pl.col("feature_id").alias("Feature"),
        pl.col("name").alias("Name"),
        pl.col("team_id").alias("Team"),
        pl.col("status").alias("Status"),
        pl.col("metric_id").replace_strict(metric_label, default=pl.col("metric_id")).alias("Outcome metric"),
        pl.when(pl.col("change_kind") == "relative")
        .then(pl.format("{}%", (pl.col("predicted_change") * 100).round_sig_figs(3)))
        .otherwise(pl.col("predicted_change").round_sig_figs(3).cast(pl.String))
        .alias("Predicted change"),
        pl.col("lag_days").alias("Lag (days)"),
        pl.col("window_days").alias("Window (days)"),
        pl.col("created_at").alias("Prediction made"),
        pl.when(retrospective).then(pl.lit("retrospective")).otherwise(pl.lit("")).alias("Made"),
        (pl.col("status") == "delivered").alias("Locked"),
    ),
    key=f"{PAGE}.table",
    caption=f"Features of {scope} you may edit; planned and in-progress first. 'Prediction made' is when the "
    "predicted change was last set; a delivered feature's prediction is locked. 'retrospective': recorded after "
    "delivery, judged but left out of calibration and the backlog discount.",
    **{"Prediction made": st.column_config.DatetimeColumn(format="D MMM YYYY HH:mm")},
)

st.subheader("A feature's hypothesis")
labels = {
    f: f"{f} · {n} · {t or 'no team'} · {s.replace('_', ' ')}"
    for f, n, t, s in editable.select("feature_id", "name", "team_id", "status").iter_rows()
}
feature_id = st.selectbox("Feature", list(labels), format_func=labels.get, key=f"{PAGE}.feature")
feature = editable.filter(pl.col("feature_id") == feature_id).row(0, named=True)
stored_rows = hypotheses.filter(pl.col("feature_id") == feature_id)
stored = stored_rows.row(0, named=True) if stored_rows.height else None
delivered_at: datetime | None = feature["delivered_at"] if feature["status"] == "delivered" else None

is_retrospective = bool(stored and delivered_at and stored["created_at"] > delivered_at)
if stored is None:
    st.caption("No hypothesis yet.")
else:
    st.caption(
        ("Current prediction (retrospective) made" if is_retrospective else "Current prediction made")
        + f" on {stored['created_at']:%-d %b %Y %H:%M} UTC."
        + (f" Locked since delivery on {delivered_at:%-d %b %Y}." if delivered_at else "")
    )
if delivered_at is not None and stored is None:
    st.info(
        f"{feature_id} was delivered on {delivered_at:%-d %b %Y} without a prediction. A hypothesis recorded now is "
        "saved as retrospective (made now): it is judged on the Impact page and labelled retrospective, and left "
        "out of calibration and the backlog discount."
    )
elif delivered_at is not None:
    st.warning(
        f"{feature_id} was delivered on {delivered_at:%-d %b %Y}: its prediction is locked. An edit saved here is "
        "kept in the history below, and the prediction made before delivery stays the one judged."
    )

current = stored or {}
kinds = ("relative", "absolute")
with st.form(f"{PAGE}.form.{feature_id}"):
    metric_ids = list(metric_label)
    metric_id = st.selectbox(
        "Outcome metric it should move",
        metric_ids,
        index=metric_ids.index(current["metric_id"]) if current.get("metric_id") in metric_ids else None,
        format_func=metric_label.get,
        key=f"{PAGE}.{feature_id}.metric",
    )
    kind = st.radio(
        "Predicted change is",
        kinds,
        index=kinds.index(current.get("change_kind") or "relative"),
        format_func={"relative": "relative (%)", "absolute": "absolute (metric units)"}.get,
        horizontal=True,
        key=f"{PAGE}.{feature_id}.kind",
    )
    shown_change = current.get("predicted_change")
    if shown_change is not None and current.get("change_kind") == "relative":
        shown_change = round(shown_change * 100, 6)
    change = st.number_input(
        "Predicted change (percent for a relative change; negative for a fall)",
        value=shown_change,
        step=0.5,
        format="%.3f",
        key=f"{PAGE}.{feature_id}.change",
    )
    left, right = st.columns(2)
    lag = left.number_input(
        "Lag before effects show (days)",
        min_value=0,
        value=int(current.get("lag_days") or 0),
        step=1,
        key=f"{PAGE}.{feature_id}.lag",
    )
    window = right.number_input(
        "Judging window after the lag (days)",
        min_value=1,
        value=int(current.get("window_days") or 60),
        step=1,
        key=f"{PAGE}.{feature_id}.window",
    )
    rationale = st.text_area(
        "Rationale", value=current.get("rationale") or "", max_chars=2000, key=f"{PAGE}.{feature_id}.rationale"
    )
    submitted = st.form_submit_button(
        "Save hypothesis"
        if delivered_at is None
        else ("Record retrospective hypothesis" if stored is None else "Record edit in history")
    )

if submitted:
    proposed = {
        "metric_id": metric_id,
        "predicted_change": None if change is None else (change / 100 if kind == "relative" else float(change)),
        "change_kind": kind,
        "lag_days": int(lag),
        "window_days": int(window),
        "rationale": rationale.strip() or None,
    }
    try:
        outcome = access.record_hypothesis(store, me, feature, stored, proposed)
    except ValidationError as error:
        st.error(error.message)
    else:
        if outcome.history_entry is None:
            (st.error if "not saved" in outcome.message else st.info)(outcome.message)
        else:
            st.session_state[FLASH] = ("success" if outcome.applied else "warning", outcome.message)
            for key in [k for k in st.session_state if str(k).startswith(f"{PAGE}.{feature_id}.")]:
                del st.session_state[key]
            st.rerun()

st.subheader("History")
history = access.hypothesis_history(store, me, feature)
if history.height == 0:
    st.caption("No edit recorded through Throughline yet; the current prediction is shown above.")
else:
    table(
        history.sort("edited_at", descending=True).select(
            pl.col("edited_at").alias("Edited at (UTC)"),
            pl.col("edited_by").alias("By"),
            pl.col("metric_id").replace_strict(metric_label, default=pl.col("metric_id")).alias("Outcome metric"),
            pl.when(pl.col("change_kind") == "relative")
            .then(pl.format("{}%", (pl.col("predicted_change") * 100).round_sig_figs(3)))
            .otherwise(pl.col("predicted_change").round_sig_figs(3).cast(pl.String))
            .alias("Predicted change"),
            pl.col("lag_days").alias("Lag"),
            pl.col("window_days").alias("Window"),
            pl.col("applied").alias("Applied"),
            pl.col("note").alias("Note"),
            pl.col("rationale").alias("Rationale"),
        ),
        key=f"{PAGE}.history",
        **{"Edited at (UTC)": st.column_config.DatetimeColumn(format="D MMM YYYY HH:mm")},
        caption="Every proposed version, newest first. Edits after delivery are kept here, not applied: "
        "the verdict is judged on the prediction standing at delivery.",
    )

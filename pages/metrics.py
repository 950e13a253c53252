"""Metrics: define and edit the metrics features are judged on — level, unit, direction, value, baseline and target."""

from __future__ import annotations

import polars as pl
import streamlit as st

from core import access
from core.model.schema import ENTITIES, LEVELS, ValidationError
from ui.data import page_data
from ui.widgets import page_header, table

PAGE = "metrics"
FLASH = f"{PAGE}.flash"
NEW = "__new__"
LEVEL_LABELS = {
    "activity": "activity (effort: commits, PRs, story points)",
    "output": "output (delivery: features, cycle time, DORA)",
    "outcome": "outcome (customer and business results)",
}
DIRECTIONS = {"higher": "higher is better", "lower": "lower is better"}

data = page_data()
store, me = data.store, data.viewer
page_header(
    "Metrics",
    "The metrics Throughline measures, each with its level; outcome metrics carry a baseline, a target and a date.",
    me,
)

if flash := st.session_state.pop(FLASH, None):
    kind, message = flash
    getattr(st, kind)(message)

metrics = access.restrict_metrics(me, data["metrics"]).sort("level", "name").collect()
observed = (
    data["metric_observations"]
    .group_by("metric_id")
    .agg(
        pl.len().alias("observations"),
        pl.col("date").min().alias("first_observed"),
        pl.col("date").max().alias("last_observed"),
        pl.col("segment").unique().sort().str.join(", ").alias("segments"),
    )
    .collect()
)
incomplete = (pl.col("level") == "outcome") & (
    pl.col("target").is_null() | pl.col("baseline").is_null() | pl.col("target_date").is_null()
)
table(
    metrics.join(observed, on="metric_id", how="left").select(
        pl.col("metric_id").alias("Id"),
        pl.col("name").alias("Name"),
        pl.col("level").alias("Level"),
        pl.when(incomplete)
        .then(pl.lit("incomplete: no baseline, target or date"))
        .otherwise(pl.lit("complete"))
        .alias("Definition"),
        pl.col("unit").alias("Unit"),
        pl.col("direction").replace_strict(DIRECTIONS, default=None).alias("Direction"),
        pl.col("value_per_unit").alias("Value per unit"),
        pl.col("baseline").alias("Baseline"),
        pl.col("target").alias("Target"),
        pl.col("target_date").alias("Target date"),
        pl.col("owner").alias("Owner"),
        pl.col("observations").fill_null(0).alias("Observations"),
        pl.col("last_observed").alias("Last observed"),
        pl.col("segments").alias("Segments"),
    ),
    key=f"{PAGE}.table",
    **{
        "Target date": st.column_config.DateColumn(format="D MMM YYYY"),
        "Last observed": st.column_config.DateColumn(format="D MMM YYYY"),
    },
    caption="An outcome metric without a baseline, target and target date is allowed but incomplete: its progress "
    "and projected date cannot be shown. Observations come from imported data or a mapped query on the Data page.",
)
missing = metrics.filter(incomplete)
if missing.height:
    st.warning(
        "Incomplete outcome metrics (no baseline, target or target date): " + ", ".join(missing["name"].to_list())
    )

st.subheader("Define or edit a metric")
labels = {NEW: "(new metric)", **dict(metrics.select("metric_id", "name").iter_rows())}
chosen = st.selectbox("Metric", list(labels), format_func=labels.get, key=f"{PAGE}.chosen")
current = {} if chosen == NEW else metrics.filter(pl.col("metric_id") == chosen).row(0, named=True)
levels = [level for level in LEVELS if access.may_see(me, level)]
teams = data["teams"].select("team_id", "name").sort("name").collect()
team_ids = [None, *teams["team_id"].to_list()]
team_label = dict(teams.iter_rows())

with st.form(f"{PAGE}.form.{chosen}"):
    metric_id = st.text_input(
        "Id (letters, digits and underscores; cannot change later)",
        value=current.get("metric_id", ""),
        disabled=chosen != NEW,
        max_chars=80,
        key=f"{PAGE}.{chosen}.id",
    )
    name = st.text_input("Name", value=current.get("name", ""), max_chars=200, key=f"{PAGE}.{chosen}.name")
    left, middle, right = st.columns(3)
    level = left.selectbox(
        "Level (required)",
        levels,
        index=levels.index(current["level"]) if current.get("level") in levels else None,
        format_func=LEVEL_LABELS.get,
        key=f"{PAGE}.{chosen}.level",
    )
    direction = middle.selectbox(
        "Direction",
        list(DIRECTIONS),
        index=list(DIRECTIONS).index(current.get("direction") or "higher"),
        format_func=DIRECTIONS.get,
        key=f"{PAGE}.{chosen}.direction",
    )
    unit = right.text_input("Unit", value=current.get("unit") or "", max_chars=60, key=f"{PAGE}.{chosen}.unit")
    left, middle, right = st.columns(3)
    baseline = left.number_input(
        "Baseline", value=current.get("baseline"), format="%.4g", key=f"{PAGE}.{chosen}.baseline"
    )
    target = middle.number_input("Target", value=current.get("target"), format="%.4g", key=f"{PAGE}.{chosen}.target")
    target_date = right.date_input("Target date", value=current.get("target_date"), key=f"{PAGE}.{chosen}.target_date")
    left, middle, right = st.columns(3)
    value_per_unit = left.number_input(
        "Money value per unit of change (optional)",
        value=current.get("value_per_unit"),
        format="%.4g",
        help="What one unit of improvement is worth; turns confirmed changes into realised value.",
        key=f"{PAGE}.{chosen}.value",
    )
    owner = middle.text_input("Owner", value=current.get("owner") or "", max_chars=200, key=f"{PAGE}.{chosen}.owner")
    team = right.selectbox(
        "Team (optional)",
        team_ids,
        index=team_ids.index(current.get("team_id")) if current.get("team_id") in team_ids else 0,
        format_func=lambda t: "—" if t is None else team_label[t],
        key=f"{PAGE}.{chosen}.team",
    )
    description = st.text_area(
        "Description (how it is measured)",
        value=current.get("description") or "",
        max_chars=2000,
        key=f"{PAGE}.{chosen}.description",
    )
    submitted = st.form_submit_button("Save metric")

if submitted:
    key = metric_id.strip()
    row = {
        "metric_id": key,
        "name": name.strip(),
        "level": level,
        "unit": unit.strip() or None,
        "direction": direction,
        "value_per_unit": value_per_unit,
        "baseline": baseline,
        "target": target,
        "target_date": target_date,
        "owner": owner.strip() or None,
        "description": description.strip() or None,
        "team_id": team,
    }
    problems = []
    if chosen == NEW and not key.replace("_", "").isalnum():
        problems.append("the id must be letters, digits and underscores")
    if chosen == NEW and key in labels:
        problems.append(f"a metric with id `{key}` exists already; choose it above to edit it")
    if not row["name"]:
        problems.append("give the metric a name")
    if level is None:
        problems.append("choose its level")
    if problems:
        st.error("Metric not saved: " + "; ".join(problems) + ".")
    else:
        try:
            store.write({"metrics": pl.DataFrame([row], schema=ENTITIES["metrics"].schema)}, source="metrics page")
        except ValidationError as error:
            st.error(error.message)
        else:
            changed = sorted(k for k, v in row.items() if current.get(k) != v) if current else ["created"]
            store.audit("metric.change", me.username, f"{key}: {', '.join(changed) or 'unchanged'}")
            gap = level == "outcome" and (target is None or baseline is None or target_date is None)
            message = f"Saved metric `{key}`." + (
                " It is incomplete: add a baseline, target and target date to show its progress." if gap else ""
            )
            st.session_state[FLASH] = ("warning" if gap else "success", message)
            st.rerun()

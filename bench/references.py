"""The headline figures three ways: the product's Polars measures, DuckDB SQL and idiomatic pandas.

Figures every engine computes exactly from the same Parquet snapshot:

* ``cost_by_rule`` — per feature and rule, the money every attribution rule attributes: ``direct`` (the
  event names a known feature); ``pull_request`` (the event's PR serves a feature, through its own
  feature, its work item, or the first key in its title or branch); ``work_item`` (the event's work-item
  key, else the key in its branch, belongs to a feature); ``account_key`` (the event's account key, else
  its account scope, is in the key map ``cost_keys``: to a known feature, else split by the mapped person's
  activity that week, else by the mapped team's); ``time_allocation`` (the event's person was
  active on features that week: their PRs open that week and the reviews they did, as weights) and
  ``repo_activity`` (the features with PRs open in the event's repository, else its team, that week).
  An event's money is its amount, else its quantity × the rate for its (source, detail, unit) — a small
  rate table built once from the cost settings and handed to DuckDB and pandas as data — × the person's
  hourly cost where the rate is hourly.
* ``weekly`` — per Monday week, features delivered and PRs merged (weeks with either).
* ``dora`` — deployment frequency (median deployment days per calendar week, lower median) and
  change failure rate (DevLake: an incident blames the latest successful production deployment of its
  team finished before it opened).
"""

from __future__ import annotations

import math
import re
from typing import Any

import polars as pl

from core import measures
from core.costs import DEFAULT_SETTINGS, CostSettings
from core.delivery import dora, throughput
from core.model.work_item_keys import WORK_ITEM_KEY_PATTERN

KEY_IN_TEXT = rf"(?:^|[^A-Za-z0-9])({WORK_ITEM_KEY_PATTERN})"
HEADLINES = ("cost_by_rule", "weekly", "dora")

# ---------------------------------------------------------------------------------------------
# Polars: the product's own measures
# ---------------------------------------------------------------------------------------------


def polars_cost_by_rule(frames: dict[str, pl.LazyFrame]) -> pl.DataFrame:
    """Per feature and rule, the attributed money from ``core.measures.cost_rollup``."""
    lines = measures.cost_rollup(frames, DEFAULT_SETTINGS)
    return (
        lines.filter(pl.col("feature_id").is_not_null())
        .group_by("feature_id", "rule")
        .agg(pl.col("amount").sum().alias("cost"))
        .collect()
    )


def polars_weekly(frames: dict[str, pl.LazyFrame]) -> pl.DataFrame:
    """Features delivered and PRs merged per week, from ``core.delivery.throughput``."""
    no_verdicts = pl.LazyFrame(schema={"feature_id": pl.String, "verdict": pl.String})
    daily = throughput.daily_throughput(frames["features"], frames["pull_requests"], no_verdicts)
    return (
        throughput.throughput_series(daily, "week")
        .select(pl.col("period_start").alias("week"), "features_delivered", "prs_merged")
        .filter((pl.col("features_delivered") > 0) | (pl.col("prs_merged") > 0))
        .collect()
    )


def polars_dora(frames: dict[str, pl.LazyFrame]) -> dict[str, float]:
    """Deployment frequency and change failure rate from ``core.delivery.dora``."""
    frequency, failure = pl.collect_all(
        [
            dora.deployment_frequency(frames["deployments"]),
            dora.change_failure_rate(frames["deployments"], frames["incidents"]),
        ],
        engine=dora.ENGINE,
    )
    return {"deployment_frequency": frequency["value"][0], "change_failure_rate": failure["value"][0]}


# ---------------------------------------------------------------------------------------------
# The rate table both references price with
# ---------------------------------------------------------------------------------------------

_MINUTES = {"minute": 1.0, "minutes": 1.0, "min": 1.0, "mins": 1.0, "hour": 60.0, "hours": 60.0, "h": 60.0}
_MINUTES |= {"hr": 60.0, "hrs": 60.0, "second": 1 / 60, "seconds": 1 / 60, "s": 1 / 60, "sec": 1 / 60}


def rate_rows(kinds: list[tuple[str | None, str | None, str | None]], settings: CostSettings) -> list[dict[str, Any]]:
    """Per distinct (source, detail, unit): money per unit, or hours per unit for hourly-cost sources."""
    prices = {m: (i, o) for m, i, o in settings.model_prices}
    rates = dict(settings.ci_rates)
    rows = []
    for source, detail, unit in kinds:
        text = (unit or "").lower().strip()
        per_unit = hours = None
        if source == "llm":
            model = re.sub(
                r"-(latest|\d{8}|\d{4}-\d{2}-\d{2})$", "", re.sub(r"^.*/", "", (detail or "").lower().strip())
            )
            if model in prices and (unit is None or "token" in text):
                price_in, price_out = prices[model]
                if "output" in text:
                    per_unit = price_out / 1e6
                elif "input" in text or "cache" in text:
                    per_unit = price_in / 1e6
                else:
                    share = settings.input_token_share
                    per_unit = (price_in * share + price_out * (1 - share)) / 1e6
        elif source == "ci":
            lowered = (detail or "").lower()
            runner = next((r for r in rates if r != "default" and r.lower() in lowered), "default")
            minutes = 1.0 if unit is None else _MINUTES.get(text)
            if runner in rates and minutes is not None:
                per_unit = minutes * rates[runner]
        elif source in ("review", "people"):
            minutes = (1.0 if source == "review" else 60.0) if unit is None else _MINUTES.get(text)
            hours = None if minutes is None else minutes / 60
        rows.append({"source": source, "detail": detail, "unit": unit, "per_unit": per_unit, "hours_per_unit": hours})
    return rows


# ---------------------------------------------------------------------------------------------
# DuckDB
# ---------------------------------------------------------------------------------------------

DUCKDB_COST_BY_RULE = """
WITH known AS (SELECT feature_id, team_id FROM features),
items AS (
    SELECT w.work_item_key, k.feature_id FROM work_items w LEFT JOIN known k ON w.feature_id = k.feature_id
),
prs AS (
    SELECT pr_id, repo, author_id, team_id, feature_id, work_item_key,
           NULLIF(regexp_extract(title, $key, 1), '') AS title_key,
           NULLIF(regexp_extract(upper(branch), $key, 1), '') AS branch_key,
           date_trunc('week', coalesce(first_commit_at, created_at))::DATE AS first_day,
           date_trunc('week', coalesce(merged_at, created_at))::DATE AS last_day
    FROM pull_requests
),
pr_links AS (
    SELECT p.pr_id, p.repo, p.author_id,
           CASE WHEN k.feature_id IS NOT NULL THEN p.feature_id
                ELSE coalesce(wi.feature_id, ti.feature_id, bi.feature_id) END AS feature_id,
           p.team_id AS own_team,
           least(p.first_day, p.last_day) AS first_week, greatest(p.first_day, p.last_day) AS last_week
    FROM prs p
    LEFT JOIN known k ON p.feature_id = k.feature_id
    LEFT JOIN items wi ON p.work_item_key = wi.work_item_key
    LEFT JOIN items ti ON p.title_key = ti.work_item_key
    LEFT JOIN items bi ON p.branch_key = bi.work_item_key
),
linked AS (
    SELECT l.*, coalesce(l.own_team, k.team_id) AS team_id
    FROM pr_links l JOIN known k ON l.feature_id = k.feature_id
),
pr_weeks AS (
    SELECT author_id, repo, team_id, feature_id,
           unnest(generate_series(first_week::TIMESTAMP, last_week::TIMESTAMP, INTERVAL 7 DAY))::DATE AS week
    FROM linked
),
reviews AS (
    SELECT e.person_id AS key, date_trunc('week', e.occurred_at)::DATE AS week, l.feature_id
    FROM cost_events e JOIN linked l ON e.pr_id = l.pr_id
    WHERE e.source = 'review' AND e.person_id IS NOT NULL
),
parts AS (
    SELECT 'person' AS kind, author_id AS key, week, feature_id FROM pr_weeks
    UNION ALL SELECT 'person', key, week, feature_id FROM reviews
    UNION ALL SELECT 'repo', repo, week, feature_id FROM pr_weeks
    UNION ALL SELECT 'team', team_id, week, feature_id FROM pr_weeks
),
activity AS (
    SELECT kind, key, week, feature_id, count(*) AS weight,
           sum(count(*)) OVER (PARTITION BY kind, key, week) AS total
    FROM parts WHERE key IS NOT NULL GROUP BY kind, key, week, feature_id
),
active AS (SELECT DISTINCT kind, key, week FROM activity),
events AS (
    SELECT e.feature_id AS tag, e.pr_id, e.work_item_key, e.person_id, e.repo, e.team_id,
           NULLIF(regexp_extract(upper(e.branch), $key, 1), '') AS branch_key,
           CASE WHEN ka.key IS NOT NULL THEN ka.feature_id ELSE ks.feature_id END AS key_feature,
           CASE WHEN ka.key IS NOT NULL THEN ka.person_id ELSE ks.person_id END AS key_person,
           CASE WHEN ka.key IS NOT NULL THEN ka.team_id ELSE ks.team_id END AS key_team,
           date_trunc('week', e.occurred_at)::DATE AS week,
           coalesce(e.amount, e.quantity * r.per_unit, e.quantity * r.hours_per_unit * p.hourly_cost) AS money
    FROM cost_events e
    LEFT JOIN people p ON e.person_id = p.person_id
    LEFT JOIN cost_keys ka ON e.account_key = ka.key
    LEFT JOIN cost_keys ks ON e.account_scope = ks.key
    LEFT JOIN rates r ON e.source IS NOT DISTINCT FROM r.source AND e.detail IS NOT DISTINCT FROM r.detail
                     AND e.unit IS NOT DISTINCT FROM r.unit
),
ruled AS (
    SELECT e.money, e.week,
           CASE WHEN k.feature_id IS NOT NULL THEN 'direct'
                WHEN pl.feature_id IS NOT NULL THEN 'pull_request'
                WHEN coalesce(wi.feature_id, bi.feature_id) IS NOT NULL THEN 'work_item'
                WHEN kf.feature_id IS NOT NULL OR kp.kind IS NOT NULL OR kt.kind IS NOT NULL THEN 'account_key'
                WHEN gp.kind IS NOT NULL THEN 'time_allocation'
                WHEN gr.kind IS NOT NULL OR gt.kind IS NOT NULL THEN 'repo_activity' END AS rule,
           CASE WHEN k.feature_id IS NOT NULL THEN k.feature_id
                WHEN pl.feature_id IS NOT NULL THEN pl.feature_id
                WHEN coalesce(wi.feature_id, bi.feature_id) IS NOT NULL THEN coalesce(wi.feature_id, bi.feature_id)
                ELSE kf.feature_id END AS feature_id,
           CASE WHEN kp.kind IS NOT NULL THEN 'person' WHEN kt.kind IS NOT NULL THEN 'team'
                WHEN gp.kind IS NOT NULL THEN 'person' WHEN gr.kind IS NOT NULL THEN 'repo'
                WHEN gt.kind IS NOT NULL THEN 'team' END AS split,
           CASE WHEN kp.kind IS NOT NULL THEN e.key_person WHEN kt.kind IS NOT NULL THEN e.key_team
                WHEN gp.kind IS NOT NULL THEN e.person_id WHEN gr.kind IS NOT NULL THEN e.repo
                WHEN gt.kind IS NOT NULL THEN e.team_id END AS split_key
    FROM events e
    LEFT JOIN known k ON e.tag = k.feature_id
    LEFT JOIN pr_links pl ON e.pr_id = pl.pr_id
    LEFT JOIN items wi ON e.work_item_key = wi.work_item_key
    LEFT JOIN items bi ON e.branch_key = bi.work_item_key
    LEFT JOIN known kf ON e.key_feature = kf.feature_id
    LEFT JOIN active kp ON kp.kind = 'person' AND kp.key = e.key_person AND kp.week = e.week
    LEFT JOIN active kt ON kt.kind = 'team' AND kt.key = e.key_team AND kt.week = e.week
    LEFT JOIN active gp ON gp.kind = 'person' AND gp.key = e.person_id AND gp.week = e.week
    LEFT JOIN active gr ON gr.kind = 'repo' AND gr.key = e.repo AND gr.week = e.week
    LEFT JOIN active gt ON gt.kind = 'team' AND gt.key = e.team_id AND gt.week = e.week
),
split_money AS (
    SELECT rule, split, split_key, week, sum(money) AS money FROM ruled
    WHERE feature_id IS NULL AND split IS NOT NULL GROUP BY ALL
)
SELECT feature_id, rule, coalesce(sum(money), 0) AS cost FROM (
    SELECT feature_id, rule, money FROM ruled WHERE feature_id IS NOT NULL
    UNION ALL
    SELECT a.feature_id, s.rule, s.money * a.weight / a.total
    FROM split_money s JOIN activity a ON a.kind = s.split AND a.key = s.split_key AND a.week = s.week
) GROUP BY feature_id, rule
"""
"""Every rule's money per feature: the product's attribution (``core.costs``) restated in SQL."""

DUCKDB_WEEKLY = """
WITH delivered AS (
    SELECT date_trunc('week', delivered_at)::DATE AS week, count(*) AS features_delivered FROM features
    WHERE status = 'delivered' AND delivered_at IS NOT NULL GROUP BY ALL
),
merged AS (
    SELECT date_trunc('week', merged_at)::DATE AS week, count(*) AS prs_merged FROM pull_requests
    WHERE merged_at IS NOT NULL GROUP BY ALL
)
SELECT week, coalesce(features_delivered, 0) AS features_delivered, coalesce(prs_merged, 0) AS prs_merged
FROM delivered FULL OUTER JOIN merged USING (week)
"""

DUCKDB_DORA = """
WITH prod AS (
    SELECT deployment_id, team_id, finished_at, finished_at::DATE AS day FROM deployments
    WHERE status = 'success' AND lower(environment) IN ('production', 'prod') AND finished_at IS NOT NULL
),
weeks AS (
    SELECT unnest(generate_series(date_trunc('week', min(day)), max(day)::TIMESTAMP, INTERVAL 7 DAY))::DATE AS week
    FROM prod
),
per_week AS (
    SELECT w.week, count(DISTINCT p.day) AS n FROM weeks w LEFT JOIN prod p ON date_trunc('week', p.day) = w.week
    GROUP BY w.week
),
blamed AS (
    SELECT d.deployment_id FROM incidents i ASOF JOIN prod d
        ON i.team_id = d.team_id AND i.opened_at > d.finished_at
    WHERE i.team_id IS NOT NULL
    UNION ALL
    SELECT d.deployment_id FROM incidents i ASOF JOIN prod d ON i.opened_at > d.finished_at
    WHERE i.team_id IS NULL
)
SELECT (SELECT quantile_disc(n, 0.5) FROM per_week)::DOUBLE AS deployment_frequency,
       (SELECT count(*) FILTER (WHERE deployment_id IN (SELECT deployment_id FROM blamed)) / count(*) FROM prod)
           AS change_failure_rate
"""


def duckdb_connect(folder: Any, tables: list[str]) -> Any:
    """An in-memory DuckDB with each snapshot table loaded from its Parquet file."""
    import duckdb

    connection = duckdb.connect()
    for table in tables:
        path = str(folder / f"{table}.parquet")
        connection.execute(f"CREATE TABLE {table} AS SELECT * FROM read_parquet($path)", {"path": path})
    if "cost_events" in tables and "cost_keys" not in tables:
        connection.execute(_NO_COST_KEYS)
    return connection


_NO_COST_KEYS = "CREATE TABLE cost_keys (key VARCHAR, team_id VARCHAR, person_id VARCHAR, feature_id VARCHAR)"
"""The key map of a snapshot taken before cost keys existed: no key mapped."""


def duckdb_rates(connection: Any) -> None:
    """The rate table as a DuckDB table, from the distinct kinds of cost event."""
    kinds = connection.execute("SELECT DISTINCT source, detail, unit FROM cost_events").fetchall()
    rows = rate_rows(kinds, DEFAULT_SETTINGS)
    rates = pl.DataFrame(
        rows,
        schema={
            "source": pl.String,
            "detail": pl.String,
            "unit": pl.String,
            "per_unit": pl.Float64,
            "hours_per_unit": pl.Float64,
        },
        orient="row",
    ).to_arrow()
    connection.register("rates_arrow", rates)
    connection.execute("CREATE OR REPLACE TABLE rates AS SELECT * FROM rates_arrow")


def _polars(result: Any) -> pl.DataFrame:
    frame = pl.from_arrow(result.to_arrow_table())
    assert isinstance(frame, pl.DataFrame)
    return frame


def duckdb_cost_by_rule(connection: Any) -> pl.DataFrame:
    """``cost_by_rule`` in DuckDB SQL."""
    duckdb_rates(connection)
    return _polars(connection.sql(DUCKDB_COST_BY_RULE, params={"key": KEY_IN_TEXT}))


def duckdb_weekly(connection: Any) -> pl.DataFrame:
    """``weekly`` in DuckDB SQL."""
    return _polars(connection.sql(DUCKDB_WEEKLY))


def duckdb_dora(connection: Any) -> dict[str, float]:
    """``dora`` in DuckDB SQL."""
    frequency, failure = connection.execute(DUCKDB_DORA).fetchone()
    return {"deployment_frequency": float(frequency), "change_failure_rate": float(failure)}


# ---------------------------------------------------------------------------------------------
# pandas
# ---------------------------------------------------------------------------------------------


def pandas_cost_by_rule(t: dict[str, Any]) -> pl.DataFrame:
    """``cost_by_rule`` in idiomatic pandas: merges, vectorised string extraction and group-bys, no row loops."""
    import numpy as np
    import pandas as pd

    def week(stamps: pd.Series) -> pd.Series:
        return stamps.dt.to_period("W-SUN").dt.start_time

    def flag(frame: pd.DataFrame, column: str) -> pd.Series:
        return frame[column].fillna(False).astype(bool)

    known = t["features"][["feature_id", "team_id"]].rename(columns={"team_id": "feature_team"}).assign(known=True)
    items = t["work_items"][["work_item_key", "feature_id"]].merge(known, on="feature_id", how="left")
    items["feature_id"] = items["feature_id"].where(flag(items, "known"))
    items = items[["work_item_key", "feature_id"]]

    prs = t["pull_requests"][
        [
            *("pr_id", "repo", "author_id", "team_id", "feature_id", "work_item_key", "title", "branch"),
            *("created_at", "first_commit_at", "merged_at"),
        ]
    ].copy()
    prs["title_key"] = prs["title"].str.extract(KEY_IN_TEXT, expand=False)
    prs["branch_key"] = prs["branch"].str.upper().str.extract(KEY_IN_TEXT, expand=False)
    prs = prs.merge(known[["feature_id", "known"]], on="feature_id", how="left")
    for key, alias in (("work_item_key", "wi"), ("title_key", "ti"), ("branch_key", "bi")):
        prs = prs.merge(items.rename(columns={"work_item_key": key, "feature_id": alias}), on=key, how="left")
    prs["pr_feature"] = prs["feature_id"].where(flag(prs, "known"), prs["wi"].fillna(prs["ti"]).fillna(prs["bi"]))
    pr_links = prs[["pr_id", "pr_feature"]]

    linked = prs[prs["pr_feature"].notna()].merge(
        known[["feature_id", "feature_team"]].rename(columns={"feature_id": "pr_feature"}), on="pr_feature"
    )
    first = week(linked["first_commit_at"].fillna(linked["created_at"]))
    last = week(linked["merged_at"].fillna(linked["created_at"]))
    linked = linked.assign(
        first_week=np.minimum(first, last),
        spans=((np.maximum(first, last) - np.minimum(first, last)).dt.days // 7 + 1).astype("int64"),
        team_id=linked["team_id"].fillna(linked["feature_team"]),
    )
    pr_weeks = linked.loc[linked.index.repeat(linked["spans"])].reset_index(drop=True)
    pr_weeks["week"] = pr_weeks["first_week"] + pd.to_timedelta(_week_offsets(linked["spans"]), unit="D")

    kinds = t["cost_events"][["source", "detail", "unit"]].drop_duplicates()
    plain = kinds.astype(object).where(kinds.notna(), None)
    rows = rate_rows(list(plain.itertuples(index=False, name=None)), DEFAULT_SETTINGS)
    rates = kinds.assign(
        per_unit=[r["per_unit"] for r in rows], hours_per_unit=[r["hours_per_unit"] for r in rows]
    ).astype({"per_unit": "float64", "hours_per_unit": "float64"})
    events = t["cost_events"][
        [
            *("source", "detail", "unit", "amount", "quantity", "occurred_at"),
            *("person_id", "team_id", "repo", "feature_id", "pr_id", "work_item_key", "branch"),
            *("account_key", "account_scope"),
        ]
    ]
    key_map = t.get("cost_keys", pd.DataFrame(columns=["key", "team_id", "person_id", "feature_id"]))
    for column, tag in (("account_key", "ka"), ("account_scope", "ks")):
        listed = key_map[["key", "feature_id", "person_id", "team_id"]].rename(
            columns={
                "key": column,
                "feature_id": f"{tag}_feature",
                "person_id": f"{tag}_person",
                "team_id": f"{tag}_team",
            }
        )
        events = events.merge(listed.assign(**{f"{tag}_hit": True}), on=column, how="left")
    by_key = flag(events, "ka_hit")
    for target in ("feature", "person", "team"):
        events[f"key_{target}"] = events[f"ka_{target}"].where(by_key, events[f"ks_{target}"])
    events = events.merge(t["people"][["person_id", "hourly_cost"]], on="person_id", how="left")
    events = events.merge(rates, on=["source", "detail", "unit"], how="left")
    money = events["amount"].fillna(events["quantity"] * events["per_unit"])
    events["money"] = money.fillna(events["quantity"] * events["hours_per_unit"] * events["hourly_cost"])
    events["week"] = week(events["occurred_at"])

    reviews = events[(events["source"] == "review") & events["person_id"].notna()].merge(
        linked[["pr_id", "pr_feature"]], on="pr_id"
    )
    parts = [
        pr_weeks[["author_id", "week", "pr_feature"]].rename(columns={"author_id": "key"}).assign(kind="person"),
        reviews[["person_id", "week", "pr_feature"]].rename(columns={"person_id": "key"}).assign(kind="person"),
        pr_weeks[["repo", "week", "pr_feature"]].rename(columns={"repo": "key"}).assign(kind="repo"),
        pr_weeks[["team_id", "week", "pr_feature"]].rename(columns={"team_id": "key"}).assign(kind="team"),
    ]
    activity = (
        pd.concat(parts).dropna(subset=["key"]).groupby(["kind", "key", "week", "pr_feature"]).size().rename("weight")
    ).reset_index()
    activity["total"] = activity.groupby(["kind", "key", "week"])["weight"].transform("sum")

    events["branch_key"] = events["branch"].str.upper().str.extract(KEY_IN_TEXT, expand=False)
    events = events.merge(known[["feature_id", "known"]], on="feature_id", how="left")
    events = events.merge(pr_links, on="pr_id", how="left")
    events = events.merge(items.rename(columns={"feature_id": "wi"}), on="work_item_key", how="left")
    events = events.merge(
        items.rename(columns={"work_item_key": "branch_key", "feature_id": "bi"}), on="branch_key", how="left"
    )
    events = events.merge(
        known[["feature_id", "known"]].rename(columns={"feature_id": "key_feature", "known": "key_known"}),
        on="key_feature",
        how="left",
    )
    active = activity[["kind", "key", "week"]].drop_duplicates().assign(active=True)
    for kind, column, name in (
        ("person", "person_id", "person"),
        ("repo", "repo", "repo"),
        ("team", "team_id", "team"),
        ("person", "key_person", "key_person"),
        ("team", "key_team", "key_team"),
    ):
        keys = (
            active[active["kind"] == kind]
            .drop(columns="kind")
            .rename(columns={"key": column, "active": f"{name}_active"})
        )
        events = events.merge(keys, on=[column, "week"], how="left")

    direct = flag(events, "known")
    via_pr = ~direct & events["pr_feature"].notna()
    item_feature = events["wi"].fillna(events["bi"])
    via_item = ~direct & ~via_pr & item_feature.notna()
    via_key = ~direct & ~via_pr & ~via_item & flag(events, "key_known")
    unlinked = ~direct & ~via_pr & ~via_item & ~via_key
    by_key_person = unlinked & flag(events, "key_person_active")
    by_key_team = unlinked & ~by_key_person & flag(events, "key_team_active")
    rest = unlinked & ~by_key_person & ~by_key_team
    by_person = rest & flag(events, "person_active")
    by_repo = rest & ~by_person & flag(events, "repo_active")
    by_team = rest & ~by_person & ~by_repo & flag(events, "team_active")
    split = pd.concat(
        [
            pd.DataFrame({"kind": kind, "key": events.loc[mask, column], "week": events.loc[mask, "week"]}).assign(
                money=events.loc[mask, "money"], rule=rule
            )
            for kind, column, mask, rule in (
                ("person", "key_person", by_key_person, "account_key"),
                ("team", "key_team", by_key_team, "account_key"),
                ("person", "person_id", by_person, "time_allocation"),
                ("repo", "repo", by_repo, "repo_activity"),
                ("team", "team_id", by_team, "repo_activity"),
            )
        ]
    )
    shared = (
        split.groupby(["rule", "kind", "key", "week"], as_index=False)["money"]
        .sum(min_count=0)
        .merge(activity, on=["kind", "key", "week"])
    )
    parts = [
        pd.DataFrame(
            {"feature_id": events.loc[direct, "feature_id"], "rule": "direct", "money": events.loc[direct, "money"]}
        ),
        pd.DataFrame(
            {
                "feature_id": events.loc[via_pr, "pr_feature"],
                "rule": "pull_request",
                "money": events.loc[via_pr, "money"],
            }
        ),
        pd.DataFrame(
            {"feature_id": item_feature[via_item], "rule": "work_item", "money": events.loc[via_item, "money"]}
        ),
        pd.DataFrame(
            {
                "feature_id": events.loc[via_key, "key_feature"],
                "rule": "account_key",
                "money": events.loc[via_key, "money"],
            }
        ),
        pd.DataFrame(
            {
                "feature_id": shared["pr_feature"],
                "rule": shared["rule"],
                "money": shared["money"] * shared["weight"] / shared["total"],
            }
        ),
    ]
    totals = pd.concat(parts).groupby(["feature_id", "rule"], as_index=False)["money"].sum(min_count=0)
    return pl.from_pandas(totals.rename(columns={"money": "cost"}))


def _week_offsets(spans: Any) -> Any:
    """For rows repeated ``spans`` times each: 0, 7, 14 ... days within each row's repeats."""
    import numpy as np

    counts = spans.to_numpy()
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    return (np.arange(counts.sum()) - starts) * 7


def pandas_weekly(t: dict[str, Any]) -> pl.DataFrame:
    """``weekly`` in pandas."""
    import pandas as pd

    features = t["features"]
    delivered = features[(features["status"] == "delivered") & features["delivered_at"].notna()]
    merged = t["pull_requests"]["merged_at"].dropna()

    def week(stamps: pd.Series) -> pd.Series:
        return stamps.dt.to_period("W-SUN").dt.start_time

    counts = pd.concat(
        [
            week(delivered["delivered_at"]).value_counts().rename("features_delivered"),
            week(merged).value_counts().rename("prs_merged"),
        ],
        axis=1,
    ).fillna(0)
    counts.index.name = "week"
    frame = pl.from_pandas(counts.reset_index())
    return frame.with_columns(pl.col("week").cast(pl.Date), pl.col("features_delivered", "prs_merged").cast(pl.Int64))


def pandas_dora(t: dict[str, Any]) -> dict[str, float]:
    """``dora`` in pandas: calendar weeks by resampling, incidents tied by ``merge_asof``."""
    import pandas as pd

    d = t["deployments"]
    prod = d[
        (d["status"] == "success")
        & d["environment"].str.lower().isin(["production", "prod"])
        & d["finished_at"].notna()
    ][["deployment_id", "team_id", "finished_at"]].sort_values("finished_at")
    days = prod["finished_at"].dt.normalize()
    per_week = days.groupby(days.dt.to_period("W-SUN")).nunique()
    calendar = pd.period_range(per_week.index.min(), per_week.index.max(), freq="W-SUN")
    weekly = per_week.reindex(calendar, fill_value=0)
    frequency = float(weekly.quantile(0.5, interpolation="lower"))

    incidents = t["incidents"][["incident_id", "team_id", "opened_at"]].sort_values("opened_at")
    asof = {"left_on": "opened_at", "right_on": "finished_at", "allow_exact_matches": False, "direction": "backward"}
    with_team = pd.merge_asof(incidents[incidents["team_id"].notna()], prod, by="team_id", **asof)
    without = pd.merge_asof(incidents[incidents["team_id"].isna()], prod.drop(columns="team_id"), **asof)
    blamed = pd.concat([with_team["deployment_id"], without["deployment_id"]]).dropna()
    failure = float(prod["deployment_id"].isin(blamed).mean()) if len(prod) else math.nan
    return {"deployment_frequency": frequency, "change_failure_rate": failure}


def pandas_tables(folder: Any, tables: list[str]) -> dict[str, Any]:
    """Each snapshot table read into a pandas DataFrame (pyarrow-backed strings, as pandas 3 reads them)."""
    import pandas as pd

    return {table: pd.read_parquet(folder / f"{table}.parquet") for table in tables}


# ---------------------------------------------------------------------------------------------
# Agreement
# ---------------------------------------------------------------------------------------------


def compare(headline: str, ours: Any, theirs: Any, rel: float = 1e-6, cents: float = 0.005) -> list[str]:
    """Where ``theirs`` differs from ``ours`` for ``headline``: an empty list when the figures agree."""
    if headline == "dora":
        return [
            f"{k}: {ours[k]!r} vs {theirs[k]!r}"
            for k in ours
            if not math.isclose(ours[k], theirs[k], rel_tol=rel, abs_tol=1e-12)
        ]
    keys = ["feature_id", "rule"] if headline == "cost_by_rule" else ["week"]
    values = [c for c in ours.columns if c not in keys]
    joined = ours.join(theirs.select(ours.columns), on=keys, how="full", coalesce=True, suffix="_ref")
    problems = []
    for column in values:
        a, b = pl.col(column).cast(pl.Float64).fill_null(0), pl.col(f"{column}_ref").cast(pl.Float64).fill_null(0)
        tolerance = pl.max_horizontal(a.abs() * rel, pl.lit(cents if headline == "cost_by_rule" else 0.0))
        bad = joined.filter((a - b).abs() > tolerance)
        if bad.height:
            problems.append(f"{column}: {bad.height} rows differ, e.g. {bad.head(3).to_dicts()}")
    return problems

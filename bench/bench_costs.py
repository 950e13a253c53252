"""``python -m bench.bench_costs --data DIR [--scale 50] [--runs 3]``: cost attribution at scale, Polars vs DuckDB.

Times the full attribution plus the quarterly report in Polars (``core.costs.attribute_cost_rollup``, then
``quarterly_cost_trend``, ``trend_verdicts`` and the latest quarter's ``cost_summary``): one cold run in a
fresh process, then the median of the warm runs. Then DuckDB SQL computes the same per-feature totals
(every rule: direct, PR, work item, person time split, repository/team split) over the same Parquet
files, in its own fresh process. The two engines' per-feature totals must agree to the cent. Prints the
times, the ratio and each process's peak memory (max RSS).

``DIR`` holds one Parquet file per entity (a snapshot). When it has none, the demo organisation is
generated at ``--scale`` (50 ≈ 1M pull requests and 5.4M cost events; 100 ≈ 2M and 10.8M) and written
there first.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import polars as pl

TABLES = ("cost_events", "pull_requests", "work_items", "features", "people")
TARGET_SECONDS = 5.0
TARGET_RATIO = 1.5

DUCKDB_FEATURE_TOTALS = """
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
           date_trunc('week', e.occurred_at)::DATE AS week,
           coalesce(e.amount, e.quantity * r.per_unit, e.quantity * r.hours_per_unit * p.hourly_cost) AS money
    FROM cost_events e
    LEFT JOIN people p ON e.person_id = p.person_id
    LEFT JOIN rates r ON e.source IS NOT DISTINCT FROM r.source AND e.detail IS NOT DISTINCT FROM r.detail
                     AND e.unit IS NOT DISTINCT FROM r.unit
),
ruled AS (
    SELECT e.money, e.week,
           CASE WHEN k.feature_id IS NOT NULL THEN k.feature_id
                WHEN pl.feature_id IS NOT NULL THEN pl.feature_id
                ELSE coalesce(wi.feature_id, bi.feature_id) END AS feature_id,
           CASE WHEN gp.kind IS NOT NULL THEN 'person' WHEN gr.kind IS NOT NULL THEN 'repo'
                WHEN gt.kind IS NOT NULL THEN 'team' END AS split,
           CASE WHEN gp.kind IS NOT NULL THEN e.person_id WHEN gr.kind IS NOT NULL THEN e.repo
                WHEN gt.kind IS NOT NULL THEN e.team_id END AS split_key
    FROM events e
    LEFT JOIN known k ON e.tag = k.feature_id
    LEFT JOIN pr_links pl ON e.pr_id = pl.pr_id
    LEFT JOIN items wi ON e.work_item_key = wi.work_item_key
    LEFT JOIN items bi ON e.branch_key = bi.work_item_key
    LEFT JOIN active gp ON gp.kind = 'person' AND gp.key = e.person_id AND gp.week = e.week
    LEFT JOIN active gr ON gr.kind = 'repo' AND gr.key = e.repo AND gr.week = e.week
    LEFT JOIN active gt ON gt.kind = 'team' AND gt.key = e.team_id AND gt.week = e.week
),
split_money AS (
    SELECT split, split_key, week, sum(money) AS money FROM ruled
    WHERE feature_id IS NULL AND split IS NOT NULL GROUP BY ALL
)
SELECT feature_id, coalesce(sum(money), 0) AS cost FROM (
    SELECT feature_id, money FROM ruled WHERE feature_id IS NOT NULL
    UNION ALL
    SELECT a.feature_id, s.money * a.weight / a.total
    FROM split_money s JOIN activity a ON a.kind = s.split AND a.key = s.split_key AND a.week = s.week
) GROUP BY feature_id
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_costs", description=__doc__)
    parser.add_argument("--data", type=Path, required=True, help="folder of <entity>.parquet files")
    parser.add_argument("--scale", type=float, default=50.0, help="demo scale to generate when DIR is empty")
    parser.add_argument("--runs", type=int, default=3, help="warm runs (median reported)")
    parser.add_argument(
        "--polars-engine", choices=("auto", "in-memory", "streaming"), default="auto", help="Polars collect engine"
    )
    parser.add_argument("--engine", choices=("polars", "duckdb"), help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.engine:
        measured = (
            _measure_polars(args.data, args.runs, args.polars_engine)
            if args.engine == "polars"
            else _measure_duckdb(args.data)
        )
        measured["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        args.result.write_text(json.dumps(measured))
        return 0
    if not all((args.data / f"{t}.parquet").exists() for t in TABLES):
        _generate(args.data, args.scale)
    polars_run = _child(args, "polars")
    duckdb_run = _child(args, "duckdb")
    return _report(args.data, polars_run, duckdb_run)


def _child(args: argparse.Namespace, engine: str) -> dict[str, Any]:
    result = args.data / f"bench-costs-{engine}.json"
    command = [
        sys.executable,
        "-m",
        "bench.bench_costs",
        "--data",
        str(args.data),
        "--runs",
        str(args.runs),
        "--polars-engine",
        args.polars_engine,
    ]
    subprocess.run([*command, "--engine", engine, "--result", str(result)], check=True)
    return json.loads(result.read_text())


def _generate(folder: Path, scale: float) -> None:
    from core.demo import generate_demo

    print(f"generating the demo organisation at scale {scale:g} into {folder} ...", flush=True)
    folder.mkdir(parents=True, exist_ok=True)
    demo = generate_demo(scale=scale)
    for name, frame in demo.frames.items():
        frame.write_parquet(folder / f"{name}.parquet")


def _measure_polars(folder: Path, runs: int, engine: str) -> dict[str, Any]:
    from core import costs

    frames = {t: pl.read_parquet(folder / f"{t}.parquet").lazy() for t in TABLES}
    times: list[float] = []
    totals = pl.DataFrame()
    for _ in range(runs + 1):
        start = time.perf_counter()
        rollup = costs.attribute_cost_rollup(
            frames["cost_events"], frames["pull_requests"], frames["work_items"], frames["features"], frames["people"]
        ).collect(engine=engine)  # type: ignore[arg-type]
        trend = costs.quarterly_cost_trend(rollup.lazy(), frames["features"]).collect()
        costs.trend_verdicts(trend)
        latest = rollup["occurred_at"].max()
        quarter = f"{latest.year}Q{(latest.month - 1) // 3 + 1}"  # type: ignore[union-attr]
        costs.cost_summary(rollup.lazy(), frames["features"], quarter).collect()
        totals = rollup.filter(pl.col("feature_id").is_not_null()).group_by("feature_id").agg(pl.col("amount").sum())
        times.append(time.perf_counter() - start)
    events = frames["cost_events"].select(pl.len()).collect().item()
    prs = frames["pull_requests"].select(pl.len()).collect().item()
    features = frames["features"].select(pl.len()).collect().item()
    totals.write_parquet(folder / "bench-costs-polars-totals.parquet")
    return {
        "cold_s": times[0],
        "warm_s": statistics.median(times[1:]),
        "warm_runs": times[1:],
        "events": events,
        "prs": prs,
        "features": features,
        "rollup_rows": rollup.height,
        "engine": engine,
    }


def _measure_duckdb(folder: Path) -> dict[str, Any]:
    from bench.references import KEY_IN_TEXT, duckdb_connect, duckdb_rates

    connection = duckdb_connect(folder, list(TABLES))
    times: list[float] = []
    for _ in range(2):
        start = time.perf_counter()
        duckdb_rates(connection)
        result = connection.sql(DUCKDB_FEATURE_TOTALS, params={"key": KEY_IN_TEXT}).pl()
        times.append(time.perf_counter() - start)
    result.write_parquet(folder / "bench-costs-duckdb-totals.parquet")
    return {"cold_s": times[0], "warm_s": times[1]}


def _report(folder: Path, polars_run: dict[str, Any], duckdb_run: dict[str, Any]) -> int:
    ours = pl.read_parquet(folder / "bench-costs-polars-totals.parquet")
    theirs = pl.read_parquet(folder / "bench-costs-duckdb-totals.parquet")
    both = ours.join(theirs, on="feature_id", how="full", coalesce=True).with_columns(
        pl.col("amount", "cost").fill_null(0.0)
    )
    worst = both.select((pl.col("amount") - pl.col("cost")).abs().max()).item() or 0.0
    equal = worst < 0.005
    ratio = polars_run["warm_s"] / duckdb_run["warm_s"]
    print(
        f"data: {polars_run['events']:,} cost events, {polars_run['prs']:,} pull requests, "
        f"{polars_run['features']:,} features ({polars_run['rollup_rows']:,} roll-up rows)\n"
        f"polars ({polars_run['engine']} engine) attribution + quarterly report: cold {polars_run['cold_s']:.2f} s, "
        f"warm median {polars_run['warm_s']:.2f} s (runs {', '.join(f'{t:.2f}' for t in polars_run['warm_runs'])}), "
        f"peak RSS {polars_run['peak_rss_mb']:,.0f} MB\n"
        f"duckdb per-feature totals: cold {duckdb_run['cold_s']:.2f} s, warm {duckdb_run['warm_s']:.2f} s, "
        f"peak RSS {duckdb_run['peak_rss_mb']:,.0f} MB\n"
        f"ratio polars / duckdb (warm): {ratio:.2f} (target ≤ {TARGET_RATIO}); "
        f"target < {TARGET_SECONDS:g} s: {'met' if polars_run['warm_s'] < TARGET_SECONDS else 'NOT met'}\n"
        f"per-feature totals: {both.height:,} features, largest difference {worst:.6f} "
        f"({'equal to the cent' if equal else 'DIFFERENT'})"
    )
    return 0 if equal else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""``python -m bench.bench_costs --data DIR [--scale 50] [--runs 3]``: cost attribution at scale, Polars vs DuckDB.

Times the full attribution plus the quarterly report in Polars (``core.costs.attribute_cost_rollup``, then
``quarterly_cost_trend``, ``trend_verdicts`` and the latest quarter's ``cost_summary``): one cold run in a
fresh process, then the median of the warm runs. Then DuckDB SQL computes the same per-feature totals
(every rule: direct, PR, work item, account key, person time split, repository/team split) over the same Parquet
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

TABLES = ("cost_events", "pull_requests", "work_items", "features", "people", "cost_keys")
TARGET_SECONDS = 5.0
TARGET_RATIO = 1.5


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
    from demo import generate_demo

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
            frames["cost_events"],
            frames["pull_requests"],
            frames["work_items"],
            frames["features"],
            frames["people"],
            cost_keys=frames["cost_keys"],
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
    from bench.references import duckdb_connect, duckdb_cost_by_rule

    connection = duckdb_connect(folder, list(TABLES))
    times: list[float] = []
    for _ in range(2):
        start = time.perf_counter()
        result = duckdb_cost_by_rule(connection)
        times.append(time.perf_counter() - start)
    totals = result.group_by("feature_id").agg(pl.col("cost").sum())
    totals.write_parquet(folder / "bench-costs-duckdb-totals.parquet")
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

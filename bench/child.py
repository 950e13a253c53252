"""One benchmark task in a fresh process: ``python -m bench.child TASK ... --result FILE``.

The parent starts one child per measure so each timing starts cold (no warm caches, no memory left
over from another measure) and the child's peak resident memory is the measure's own. Every task
writes a JSON object to ``--result``: times in seconds, ``peak_rss_mb`` and task details.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

from bench import references, sizes
from bench.polars_measures import MEASURES, upstream
from core.model.schema import ENTITIES

REFERENCE_TABLES = [
    *("features", "work_items", "pull_requests", "cost_events", "cost_keys", "people", "deployments", "incidents")
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.child")
    parser.add_argument("task", choices=["generate", "measure", "reference", "import", "app", "xl-generate", "xl"])
    parser.add_argument("--snapshot", type=Path, required=True)
    parser.add_argument("--result", type=Path, required=True)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--name", default="")
    parser.add_argument("--size", default="S")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--row-limit", type=int, default=0)
    parser.add_argument("--figures", type=Path)
    parser.add_argument("--divisions", type=int, default=5)
    parser.add_argument("--copies", type=int, default=2)
    args = parser.parse_args(argv)
    tasks: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
        "generate": _generate,
        "measure": _measure,
        "reference": _reference,
        "import": _import,
        "app": _app,
        "xl-generate": _xl_generate,
        "xl": _xl,
    }
    result = tasks[args.task](args)
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    args.result.write_text(json.dumps(result, default=str, indent=2))
    return 0


def timed(call: Callable[[], Any]) -> tuple[float, Any]:
    """Seconds ``call`` took, and what it returned."""
    start = time.perf_counter()
    value = call()
    return time.perf_counter() - start, value


def summary(first: float, warm: list[float], load: float = 0.0) -> dict[str, Any]:
    """Cold time (load + first run), each warm run and their median."""
    return {
        "load_s": round(load, 4),
        "first_run_s": round(first, 4),
        "cold_s": round(load + first, 4),
        "warm_s": [round(w, 4) for w in warm],
        "median_s": round(statistics.median(warm), 4) if warm else None,
    }


def _generate(args: argparse.Namespace) -> dict[str, Any]:
    seconds, counts = timed(lambda: sizes.write_snapshot(args.snapshot, sizes.SIZES[args.size], args.seed))
    return {"seconds": round(seconds, 2), "rows": counts}


def _measure(args: argparse.Namespace) -> dict[str, Any]:
    measure, needs_upstream = MEASURES[args.name]
    load, frames = timed(lambda: sizes.load_snapshot(args.snapshot))
    cached = upstream(frames) if needs_upstream else None
    first, _ = timed(lambda: measure(frames, cached))
    warm = [timed(lambda: measure(frames, cached))[0] for _ in range(args.runs)]
    return summary(first, warm, load)


def _reference(args: argparse.Namespace) -> dict[str, Any]:
    """The headline figures on one engine: load the snapshot, then each headline cold and warm."""
    engine = args.name
    if engine == "polars":
        load, data = timed(lambda: sizes.load_snapshot(args.snapshot))
        calls = {
            "cost_by_rule": references.polars_cost_by_rule,
            "weekly": references.polars_weekly,
            "dora": references.polars_dora,
        }
    elif engine == "duckdb":
        load, data = timed(lambda: references.duckdb_connect(args.snapshot, REFERENCE_TABLES))
        calls = {
            "cost_by_rule": references.duckdb_cost_by_rule,
            "weekly": references.duckdb_weekly,
            "dora": references.duckdb_dora,
        }
    else:
        load, data = timed(lambda: references.pandas_tables(args.snapshot, REFERENCE_TABLES))
        calls = {
            "cost_by_rule": references.pandas_cost_by_rule,
            "weekly": references.pandas_weekly,
            "dora": references.pandas_dora,
        }
    out: dict[str, Any] = {"engine": engine, "load_s": round(load, 4), "headlines": {}}
    assert args.figures is not None
    args.figures.mkdir(parents=True, exist_ok=True)
    for headline, call in calls.items():
        first, figures = timed(lambda call=call: call(data))  # type: ignore[misc]
        warm = [timed(lambda call=call: call(data))[0] for _ in range(args.runs)]  # type: ignore[misc]
        out["headlines"][headline] = summary(first, warm)
        if isinstance(figures, pl.DataFrame):
            figures.write_parquet(args.figures / f"{engine}-{headline}.parquet")
        else:
            (args.figures / f"{engine}-{headline}.json").write_text(json.dumps(figures))
    return out


def _import(args: argparse.Namespace) -> dict[str, Any]:
    """Store.write of every entity into a fresh SQLite workspace, snapshot refresh included."""
    from core.store.database import open_store
    from core.store.workspace import Workspace

    frames = {name: pl.read_parquet(args.snapshot / f"{name}.parquet") for name in ENTITIES}
    limited = {}
    if args.row_limit:
        for name, frame in frames.items():
            if frame.height > args.row_limit:
                limited[name] = {"rows": frame.height, "imported": args.row_limit}
                frames[name] = frame.head(args.row_limit)
    frames = _consistent(frames) if limited else frames
    rows = sum(f.height for f in frames.values())
    scratch = Path(tempfile.mkdtemp(prefix="tl-bench-import-"))

    def once(i: int) -> float:
        home = scratch / f"ws{i}"
        (home / "snapshot").mkdir(parents=True)
        store = open_store(Workspace(home=home, database_url=f"sqlite:///{home / 'throughline.db'}"))
        seconds, _ = timed(lambda: store.write(frames, mode="replace", source="bench"))
        store.engine.dispose()
        shutil.rmtree(home, ignore_errors=True)
        return seconds

    try:
        first = once(0)
        warm = [once(i + 1) for i in range(args.runs)]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return {
        **summary(first, warm),
        "rows": rows,
        "limited": limited,
        "rows_per_s": round(rows / statistics.median(warm or [first])),
    }


def _consistent(frames: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    """Drop references a row limit cut off, so the cut data set still validates."""
    out = dict(frames)
    for name, spec in ENTITIES.items():
        frame = out[name]
        for column in spec.columns:
            if column.references is None:
                continue
            target, key = column.references
            known = out[target].select(pl.col(key).alias(column.name))
            frame = frame.with_columns(
                pl.when(pl.col(column.name).is_in(known[column.name].implode()))
                .then(pl.col(column.name))
                .alias(column.name)
            )
            if column.required:
                frame = frame.filter(pl.col(column.name).is_not_null())
        out[name] = frame
    return out


def _app(args: argparse.Namespace) -> dict[str, Any]:
    from bench.app_timing import time_app

    return time_app(args.snapshot, args.runs)


def _xl_generate(args: argparse.Namespace) -> dict[str, Any]:
    from bench.xl import write_xl

    seconds, counts = timed(lambda: write_xl(args.snapshot, args.seed, args.divisions, args.copies, args.size))
    return {"seconds": round(seconds, 1), "rows": counts}


def _xl(args: argparse.Namespace) -> dict[str, Any]:
    from bench.xl import streaming_cost_per_feature

    seconds, result = timed(lambda: streaming_cost_per_feature(args.snapshot))
    return {"seconds": round(seconds, 2), **result}


if __name__ == "__main__":
    os.environ.setdefault("POLARS_MAX_THREADS", str(os.cpu_count() or 2))
    sys.exit(main())

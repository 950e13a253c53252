"""``python -m bench --sizes S,M,L [--no-targets] [--out bench/results]``: time the measures, check the references.

Per size: generate (or reuse) the snapshot, then in one fresh process each: the import, every measure,
each reference engine and the app through AppTest. The headline figures of DuckDB and pandas must equal
the product's (else the run fails, in CI too); the issue's targets are judged at L unless ``--no-targets``.
``--xl`` runs only the streaming cost-per-feature measure on the XL data set (long; see README).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import references, report, sizes
from bench.polars_measures import MEASURES

ENGINES = ("polars", "duckdb", "pandas")
IMPORT_ROW_LIMIT = {"S": 0, "M": 500_000, "L": 500_000}
"""Entities above this many rows are imported as their first rows at M and L (the SQLite write runs at
~25k rows/s, so the full L write of 11M rows would take about eight minutes per run)."""
CHILD_TIMEOUT_S = 3600


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--sizes", default="S", help="comma-separated sizes among S, M, L (default S)")
    parser.add_argument("--no-targets", action="store_true", help="report times without judging the targets")
    parser.add_argument("--out", type=Path, default=Path("bench/results"), help="where the JSON and markdown go")
    parser.add_argument("--cache", type=Path, default=None, help="snapshot cache (default OUT/cache)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--runs", type=int, default=3, help="warm runs per measure (at least 3)")
    parser.add_argument("--skip", default="", help="comma-separated parts to skip: import, measures, references, app")
    parser.add_argument("--app-size", default="", help="size whose workspace the AppTest timing uses (default: each)")
    parser.add_argument("--xl", action="store_true", help="run the streaming XL cost-per-feature measure only")
    parser.add_argument("--xl-divisions", type=int, default=5, help="XL: L-sized divisions (5 → 5M PRs)")
    parser.add_argument("--xl-copies", type=int, default=2, help="XL: copies of each division's cost events")
    parser.add_argument("--xl-base", default="L", help="XL: the size each division copies (S for a smoke run)")
    args = parser.parse_args(argv)
    args.runs = max(args.runs, 3)
    cache = args.cache or args.out / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")

    if args.xl:
        result = run_xl(cache, args)
        report.write(args.out, stamp, {"xl": result}, None)
        print(report.xl_text(result))
        return 0

    skip = set(filter(None, args.skip.split(",")))
    results: dict[str, Any] = {"started": stamp, "seed": args.seed, "runs": args.runs, "sizes": {}}
    failed: list[str] = []
    for name in [s.strip().upper() for s in args.sizes.split(",") if s.strip()]:
        size = sizes.SIZES[name]
        folder = sizes.snapshot_folder(cache, size, args.seed)
        print(f"== size {name}: {size.description}", flush=True)
        outcome: dict[str, Any] = {"snapshot": str(folder)}
        if sizes.is_complete(folder, size):
            outcome["generate"] = {"reused": True}
        else:
            outcome["generate"] = child("generate", folder, args, size=name)
            print(f"   generated in {outcome['generate']['seconds']} s", flush=True)
        outcome["rows"] = sizes.row_counts(folder)
        if "import" not in skip:
            outcome["import"] = child("import", folder, args, row_limit=IMPORT_ROW_LIMIT.get(name, 0))
            print(f"   import {report.brief(outcome['import'])}", flush=True)
        if "measures" not in skip:
            outcome["measures"] = {}
            for measure in MEASURES:
                outcome["measures"][measure] = child("measure", folder, args, name=measure)
                print(f"   {measure:<20} {report.brief(outcome['measures'][measure])}", flush=True)
        if "references" not in skip:
            outcome["references"], problems = run_references(folder, args)
            outcome["agreement"] = problems or "all headline figures equal"
            failed += [f"{name} {p}" for p in problems]
            print(f"   references: {report.ratios_text(outcome['references'])}", flush=True)
        if "app" not in skip and (not args.app_size or args.app_size.upper() == name):
            try:
                outcome["app"] = child("app", folder, args)
                print(f"   app {report.app_text(outcome['app'])}", flush=True)
            except RuntimeError as error:
                outcome["app"] = {"error": str(error)}
                print(f"   app timing failed: {error}", flush=True)
        results["sizes"][name] = outcome

    targets = None if args.no_targets else report.judge_targets(results)
    paths = report.write(args.out, stamp, results, targets)
    print(report.markdown(results, targets))
    print(f"results: {', '.join(str(p) for p in paths)}")
    if failed:
        print("FIGURES DIFFER:\n  " + "\n  ".join(failed), file=sys.stderr)
        return 1
    if targets and any(t["met"] is False for t in targets):
        print("some targets were missed (see the table); --no-targets reports without judging", file=sys.stderr)
        return 2
    return 0


def child(task: str, folder: Path, args: argparse.Namespace, **options: Any) -> dict[str, Any]:
    """Run one task in a fresh Python process and return its JSON result."""
    result = args.out / f".child-{task}-{time.monotonic_ns()}.json"
    command = [sys.executable, "-m", "bench.child", task, "--snapshot", str(folder), "--result", str(result)]
    command += ["--runs", str(args.runs), "--seed", str(args.seed)]
    for key, value in options.items():
        command += [f"--{key.replace('_', '-')}", str(value)]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S, check=False)
    if completed.returncode != 0 or not result.exists():
        raise RuntimeError(f"{task} {options} failed:\n{completed.stderr[-3000:]}")
    data = json.loads(result.read_text())
    result.unlink()
    return data


def run_references(folder: Path, args: argparse.Namespace) -> tuple[dict[str, Any], list[str]]:
    """Each engine's headline figures and times; the differences from the product's figures."""
    figures = args.out / "figures" / folder.name
    timings = {engine: child("reference", folder, args, name=engine, figures=figures) for engine in ENGINES}
    problems = []
    for headline in references.HEADLINES:
        ours = report.load_figures(figures, "polars", headline)
        for engine in ENGINES[1:]:
            differences = references.compare(headline, ours, report.load_figures(figures, engine, headline))
            problems += [f"{headline} {engine}: {d}" for d in differences]
    return timings, problems


def run_xl(cache: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Generate the XL data set once (divisions of the L organisation) and stream cost per feature over it."""
    folder = cache / f"XL-{args.xl_base}-seed{args.seed}-d{args.xl_divisions}x{args.xl_copies}"
    generated: dict[str, Any] = {"reused": True}
    if not sizes.is_complete(folder):
        print(f"== generating XL into {folder} (long: about a minute per division)", flush=True)
        generated = child(
            "xl-generate", folder, args, divisions=args.xl_divisions, copies=args.xl_copies, size=args.xl_base
        )
    print("== streaming cost per feature over XL", flush=True)
    return {"generate": generated, "rows": sizes.row_counts(folder), **child("xl", folder, args)}


if __name__ == "__main__":
    sys.exit(main())

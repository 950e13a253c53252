"""Importing a 1M-row pull request CSV into a fresh default (SQLite) workspace, next to a plain ``pl.read_csv``.

``python -m bench.bench_import [--rows 1000000]`` writes a CSV in the canonical ``pull_requests``
columns, maps it through the generic mapping (as the Data page's mapping screen would), and times
the whole import: read, map, validate against the store, one atomic write, and the snapshot
refresh. The people the pull requests reference are stored first (not timed). Target: < 20 s for
1M rows on the project's 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import polars as pl

from core.importing import GenericMapping, plan_import, run_import
from core.store.database import open_store
from core.store.workspace import Workspace

TARGET_SECONDS = 20.0
AUTHORS = 2_000
REPOS = ("acme/web", "acme/api", "acme/mobile", "acme/payments", "acme/data", "acme/infra")
COLUMNS = (
    "pr_id",
    "repo",
    "number",
    "title",
    "branch",
    "author_id",
    "author_kind",
    "state",
    "created_at",
    "merged_at",
    "additions",
    "deletions",
    "reviews",
)


def pull_request_csv(path: Path, rows: int, seed: int = 7) -> None:
    """Write ``rows`` pull requests in the canonical columns, with keys like ``PAY-123`` in titles and branches."""
    i = pl.int_range(0, rows, dtype=pl.Int64, eager=True).alias("i")
    frame = (
        pl.DataFrame(i)
        .with_columns(
            ((pl.col("i") * 2_654_435_761 + seed) % 1_000_003).alias("h"),
        )
        .with_columns(
            pl.lit(pl.Series(REPOS)).get(pl.col("i") % len(REPOS)).alias("repo"),
            (pl.col("i") // len(REPOS) + 1).alias("number"),
            pl.format("PAY-{} Improve checkout step {}", pl.col("h") % 5_000, pl.col("i")).alias("title"),
            pl.format("feature/PAY-{}-step", pl.col("h") % 5_000).alias("branch"),
            pl.format("dev-{}", pl.col("h") % AUTHORS).alias("author_id"),
            pl.when(pl.col("h") % 10 == 0).then(pl.lit("agent")).otherwise(pl.lit("human")).alias("author_kind"),
            (pl.datetime(2024, 1, 1) + pl.duration(minutes=pl.col("i") % 1_000_000)).alias("created_at"),
        )
        .with_columns(
            pl.format("{}#{}", pl.col("repo"), pl.col("number")).alias("pr_id"),
            pl.when(pl.col("h") % 7 == 0)
            .then(pl.lit("open"))
            .when(pl.col("h") % 11 == 0)
            .then(pl.lit("closed"))
            .otherwise(pl.lit("merged"))
            .alias("state"),
        )
        .with_columns(
            pl.when(pl.col("state") == "merged")
            .then(pl.col("created_at") + pl.duration(hours=1 + pl.col("h") % 200))
            .alias("merged_at"),
            (pl.col("h") % 900 + 1).alias("additions"),
            (pl.col("h") % 300).alias("deletions"),
            (pl.col("h") % 4).alias("reviews"),
        )
        .select(COLUMNS)
    )
    frame.write_csv(path, datetime_format="%Y-%m-%dT%H:%M:%SZ")


def people_frame() -> pl.DataFrame:
    """The authors the generated pull requests reference."""
    ids = [f"dev-{n}" for n in range(AUTHORS)]
    return pl.DataFrame({"person_id": ids, "name": ids, "kind": ["human"] * AUTHORS})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (CSV and workspace)")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="tl-bench-import-"))
    try:
        csv = folder / "pull_requests.csv"
        started = time.perf_counter()
        pull_request_csv(csv, args.rows)
        size = csv.stat().st_size / 2**20
        print(f"generated {args.rows:,} rows, {size:.0f} MiB in {time.perf_counter() - started:.1f} s")

        home = folder / "workspace"
        (home / "snapshot").mkdir(parents=True)
        store = open_store(Workspace(home=home, database_url=f"sqlite:///{home / 'throughline.db'}"))
        store.write({"people": people_frame()}, "upsert", source="bench")

        mapping = GenericMapping("pull_requests", {c: c for c in COLUMNS})
        version = store.data_version()
        started, cpu_started = time.perf_counter(), time.process_time()
        plan = plan_import(csv, mapping=mapping, store=store)
        planned, cpu_planned = time.perf_counter() - started, time.process_time() - cpu_started
        record = run_import(store, plan, "bench")
        total, cpu_total = time.perf_counter() - started, time.process_time() - cpu_started
        assert not plan.problems, plan.problems[:5]
        assert record.counts["pull_requests"]["added"] == args.rows, record.counts
        assert store.data_version() > version
        assert store.snapshot().scan("pull_requests").select(pl.len()).collect().item() == args.rows

        started, cpu_started = time.perf_counter(), time.process_time()
        plain = pl.read_csv(csv)
        read, cpu_read = time.perf_counter() - started, time.process_time() - cpu_started
        assert plain.height == args.rows

        print(f"load average while running: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (wall time suffers)")
        print(f"{'':30}{'wall':>9}{'CPU':>9}{'rows/s (wall)':>16}")
        print(f"{'import: read, map, validate':30}{planned:8.2f}s{cpu_planned:8.2f}s")
        print(f"{'import: write + snapshot':30}{total - planned:8.2f}s{cpu_total - cpu_planned:8.2f}s")
        print(f"{'import total':30}{total:8.2f}s{cpu_total:8.2f}s{args.rows / total:>16,.0f}")
        print(f"{'pl.read_csv':30}{read:8.2f}s{cpu_read:8.2f}s{args.rows / read:>16,.0f}")
        print(f"{'import / read_csv':30}{total / read:8.1f}x{cpu_total / cpu_read:8.1f}x")
        verdict = "meets" if total < TARGET_SECONDS * args.rows / 1_000_000 else "MISSES"
        print(f"{verdict} the target of {TARGET_SECONDS:.0f} s per 1M rows")
    finally:
        if args.keep:
            print(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()

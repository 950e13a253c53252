"""The benchmark sizes and their cached Parquet snapshots, written like the store's.

A size is the demo organisation at a ``scale`` (pull requests, work items, deployments, features)
with ``cost_event_scale`` more cost events per pull request. Each snapshot is written once per size
and seed under the cache folder and reused while its ``COMPLETE`` marker is present.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from core.schema import ENTITIES


@dataclass(frozen=True)
class Size:
    """One benchmark size: its name, the demo's scale and the extra cost events per pull request."""

    name: str
    scale: float
    cost_event_scale: float
    description: str


SIZES: dict[str, Size] = {
    "S": Size("S", 0.5, 1.0, "CI size: 10k PRs, 60k cost events"),
    "M": Size("M", 10.0, 1.85, "200k PRs, 2M cost events"),
    "L": Size("L", 50.0, 1.85, "1M PRs, 10M cost events (the brief's large organisation)"),
}

COMPLETE = "COMPLETE"
MANIFEST = "manifest.json"


def snapshot_folder(cache: Path, size: Size, seed: int) -> Path:
    """Where the snapshot of ``size`` generated from ``seed`` lives."""
    return cache / f"{size.name}-seed{seed}"


def is_complete(folder: Path) -> bool:
    """True when the snapshot in ``folder`` was written to the end."""
    return (folder / COMPLETE).exists()


def write_snapshot(folder: Path, size: Size, seed: int) -> dict[str, int]:
    """Generate the demo organisation of ``size`` and write it as the store writes a snapshot; returns row counts."""
    from core.demo import generate_demo

    demo = generate_demo(seed=seed, scale=size.scale, cost_event_scale=size.cost_event_scale)
    building = folder.with_name(folder.name + ".building")
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir(parents=True)
    counts = write_frames(building, demo.frames)
    (building / MANIFEST).write_text(json.dumps({"size": size.name, "seed": seed, "rows": counts}, indent=2))
    (building / COMPLETE).write_text(size.name)
    shutil.rmtree(folder, ignore_errors=True)
    building.rename(folder)
    return counts


def write_frames(folder: Path, frames: dict[str, pl.DataFrame]) -> dict[str, int]:
    """Each entity as ``<entity>.parquet`` sorted by its time column, as ``core.store`` refreshes a snapshot."""
    counts: dict[str, int] = {}
    for name, spec in ENTITIES.items():
        frame = frames[name]
        if spec.time_column:
            frame = frame.sort(spec.time_column, nulls_last=True)
        frame.write_parquet(folder / f"{name}.parquet", statistics=True)
        counts[name] = frame.height
    return counts


def row_counts(folder: Path) -> dict[str, int]:
    """The row counts recorded when the snapshot was written."""
    return json.loads((folder / MANIFEST).read_text())["rows"]


def scan_snapshot(folder: Path) -> dict[str, pl.LazyFrame]:
    """Every entity of the snapshot as a LazyFrame over its Parquet file."""
    return {name: pl.scan_parquet(folder / f"{name}.parquet") for name in ENTITIES}


def load_snapshot(folder: Path) -> dict[str, pl.LazyFrame]:
    """Every entity read into memory, as the app's ``st.cache_resource`` holds them."""
    return {name: frame.collect().lazy() for name, frame in scan_snapshot(folder).items()}

"""The benchmark sizes and their cached Parquet snapshots, written like the store's.

A size is the demo organisation at a ``scale`` (pull requests, work items, deployments, features)
with ``cost_event_scale`` more cost events per pull request; a size may set features, work items and
deployments on scales of their own. Each snapshot is written once per size and seed under the cache
folder and reused while its ``COMPLETE`` marker is present.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from core.model.schema import ENTITIES

if TYPE_CHECKING:
    from demo import Demo


@dataclass(frozen=True)
class Size:
    """One benchmark size: its name, the demo's scale and the extra cost events per pull request.

    ``feature_scale``, ``work_item_scale`` and ``deployment_scale`` replace ``scale`` for those
    entities (None keeps ``scale``), as ``demo.generate_demo`` takes them.
    """

    name: str
    scale: float
    cost_event_scale: float
    description: str
    feature_scale: float | None = None
    work_item_scale: float | None = None
    deployment_scale: float | None = None


SIZES: dict[str, Size] = {
    "S": Size("S", 0.5, 1.0, "CI size: 10k PRs, 60k cost events"),
    "M": Size("M", 10.0, 1.85, "200k PRs, 2M cost events"),
    "L": Size(
        "L",
        50.0,
        1.85,
        "1M PRs, 10M cost events, 20k features, 200k work items, 50k deployments (the brief's large organisation)",
        feature_scale=133.34,
        work_item_scale=138.0,
        deployment_scale=16.67,
    ),
}

COMPLETE = "COMPLETE"
MANIFEST = "manifest.json"


def snapshot_folder(cache: Path, size: Size, seed: int) -> Path:
    """Where the snapshot of ``size`` generated from ``seed`` lives."""
    return cache / f"{size.name}-seed{seed}"


def is_complete(folder: Path, size: Size | None = None) -> bool:
    """True when the snapshot in ``folder`` was written to the end (for ``size``: with its current settings).

    A snapshot cached before a size's composition changed is not reused: its manifest records the
    settings it was generated with.
    """
    if not (folder / COMPLETE).exists():
        return False
    if size is None:
        return True
    try:
        recorded = json.loads((folder / MANIFEST).read_text()).get("settings")
    except (OSError, ValueError):
        return False
    return recorded == asdict(size)


def generate(size: Size, seed: int) -> Demo:
    """The demo organisation of ``size`` generated from ``seed``."""
    from demo import generate_demo

    return generate_demo(
        seed=seed,
        scale=size.scale,
        cost_event_scale=size.cost_event_scale,
        feature_scale=size.feature_scale,
        work_item_scale=size.work_item_scale,
        deployment_scale=size.deployment_scale,
    )


def write_snapshot(folder: Path, size: Size, seed: int) -> dict[str, int]:
    """Generate the demo organisation of ``size`` and write it as the store writes a snapshot; returns row counts."""
    demo = generate(size, seed)
    building = folder.with_name(folder.name + ".building")
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir(parents=True)
    counts = write_frames(building, demo.frames)
    manifest = {"size": size.name, "seed": seed, "settings": asdict(size), "rows": counts}
    (building / MANIFEST).write_text(json.dumps(manifest, indent=2))
    (building / COMPLETE).write_text(size.name)
    shutil.rmtree(folder, ignore_errors=True)
    building.rename(folder)
    return counts


def write_frames(folder: Path, frames: dict[str, pl.DataFrame]) -> dict[str, int]:
    """Each entity as ``<entity>.parquet`` sorted by its time column, as the store refreshes a snapshot."""
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

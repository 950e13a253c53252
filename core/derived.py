"""Derived results kept beside the snapshot they were computed from, so a restarted app answers at once.

The heavy stage-1 results (hypothesis verdicts, the cost roll-up, the daily throughput roll-up) depend
only on one data version and the settings in force. The app keeps them in memory while it runs; this
module also writes each to ``<snapshot>/v<N>/derived/<name>-<key>.parquet`` the first time it is
computed, and reads it back after a restart instead of recomputing. A new data version is a new
snapshot folder, so nothing stale is ever read; old folders (and their derived files) are removed
with the snapshots they belong to.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import polars as pl

FOLDER = "derived"


def path_of(snapshot_folder: Path, name: str, key: str = "") -> Path:
    """Where the result ``name`` computed under ``key`` (e.g. a settings fingerprint) is kept."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return snapshot_folder / FOLDER / f"{name}-{digest}.parquet"


def remembered(snapshot_folder: Path, name: str, key: str, compute: Callable[[], pl.DataFrame]) -> pl.DataFrame:
    """The result ``name`` for ``key``: read from beside the snapshot when kept, else computed and kept.

    A file that cannot be read (cut short by a crash, written by another Polars version) is
    recomputed and replaced. Writes go to a temporary file renamed into place, so a reader never
    sees half a file, and a folder that cannot be written (read-only deployment) only costs the
    saving, never the answer.
    """
    path = path_of(snapshot_folder, name, key)
    if path.exists():
        try:
            return pl.read_parquet(path)
        except (OSError, pl.exceptions.PolarsError):
            path.unlink(missing_ok=True)
    frame = compute()
    if snapshot_folder.is_dir():
        partial = path.with_name(f".{path.name}.{os.getpid()}.part")
        try:
            path.parent.mkdir(exist_ok=True)
            frame.write_parquet(partial)
            os.replace(partial, path)
        except OSError:
            partial.unlink(missing_ok=True)
    return frame

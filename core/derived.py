"""Derived results kept beside the snapshot they were computed from, so a restarted app answers at once.

The heavy stage-1 results (hypothesis verdicts, the cost roll-up, the daily throughput roll-up, and
the cost events no attribution rule reaches) depend only on one data version and the settings in
force. The app keeps them in memory while it runs; this module also writes each to
``<snapshot>/v<N>/derived/<name>-<key>.parquet`` the first time it is computed, and reads it back
after a restart instead of recomputing. A new data version is a new
snapshot folder, so nothing stale is ever read; old folders (and their derived files) are removed
with the snapshots they belong to.

``keep_results`` computes all four for a new data version as soon as its snapshot is written (the
app runs it in the background after every write), so the first page after an import, or after a
server start, reads them instead of computing them. Two callers asking for the same result at once
compute it once: the second waits for the first and reads what it kept.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from core import measures
from core.costs import CostSettings
from core.store import settings

if TYPE_CHECKING:
    from core.store.database import Store

FOLDER = "derived"
KEEPER_THREAD = "throughline-keep-results"
"""The name of the thread ``keep_results_in_background`` starts."""
_log = logging.getLogger(__name__)
_guard = threading.Lock()
_locks: dict[Path, threading.Lock] = {}


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
    with _guard:
        lock = _locks.setdefault(path, threading.Lock())
    with lock:
        return _read_or_compute(snapshot_folder, path, compute)


def _read_or_compute(snapshot_folder: Path, path: Path, compute: Callable[[], pl.DataFrame]) -> pl.DataFrame:
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


# ---------------------------------------------------------------------------------------------
# The stage-1 results, kept
# ---------------------------------------------------------------------------------------------


def judged(folder: Path, frames: measures.Frames, as_of: date) -> pl.DataFrame:
    """Every delivered feature's verdict (``core.measures.judged_hypotheses``), kept beside the snapshot."""
    return remembered(folder, "judged", "", lambda: measures.judged_hypotheses(frames, as_of))


def cost_rollup(folder: Path, frames: measures.Frames, cost: CostSettings) -> pl.DataFrame:
    """The cost roll-up under ``cost`` (``core.measures.cost_rollup``), kept beside the snapshot."""
    return remembered(
        folder, "cost_rollup", settings.fingerprint(cost), lambda: measures.cost_rollup(frames, cost).collect()
    )


def daily_throughput(
    folder: Path,
    frames: measures.Frames,
    judged: Callable[[], pl.DataFrame],
    rollup: Callable[[], pl.DataFrame],
    cost: CostSettings,
) -> pl.DataFrame:
    """The daily throughput roll-up from the verdicts and the roll-up under ``cost``, kept beside the snapshot.

    ``judged`` and ``rollup`` give its inputs; they are only asked for when it is not kept yet.
    """
    return remembered(
        folder,
        "daily_throughput",
        settings.fingerprint(cost),
        lambda: measures.daily_throughput(frames, judged().lazy(), rollup().lazy()).collect(),
    )


def unattributed_events(
    folder: Path, frames: measures.Frames, cost: CostSettings, links: Callable[[], measures.CostLinks]
) -> pl.DataFrame:
    """The resolved events no rule under ``cost`` reaches (``core.measures.unattributed_events``), kept.

    ``links`` gives the cost links; they are only asked for when the events are not kept yet.
    """
    return remembered(
        folder,
        "unattributed_events",
        settings.fingerprint(cost),
        lambda: measures.unattributed_events(frames, links(), cost),
    )


def keep_results(store: Store) -> None:
    """Compute and keep the stage-1 results of the store's current data version under its cost settings."""
    snapshot = store.snapshot()
    frames = snapshot.frames()
    cost = settings.load(store, CostSettings)
    # The verdicts and the roll-up are independent and both are what a first page waits for: computed
    # at once (Polars and the verdicts' statistics release the GIL), the single-threaded stretches of
    # one overlap the other, and a page waiting on either lock gets both sooner than one after the other.
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix=KEEPER_THREAD) as pool:
        verdicts_future = pool.submit(judged, snapshot.folder, frames, measures.as_of(frames))
        rollup_future = pool.submit(cost_rollup, snapshot.folder, frames, cost)
        verdicts, rollup = verdicts_future.result(), rollup_future.result()
    daily_throughput(snapshot.folder, frames, lambda: verdicts, lambda: rollup, cost)
    unattributed_events(snapshot.folder, frames, cost, lambda: measures.cost_links(frames))


def keep_results_in_background(store: Store) -> threading.Thread:
    """``keep_results`` on a daemon thread; a failure is logged (the pages compute on demand instead)."""

    def run() -> None:
        try:
            keep_results(store)
        except Exception:  # a page recomputes what this could not keep; the app must not die of it
            _log.exception("keeping the results of data version %s failed", store.data_version())

    thread = threading.Thread(target=run, name=KEEPER_THREAD, daemon=True)
    thread.start()
    return thread

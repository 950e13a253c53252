"""The app through Streamlit's AppTest on a workspace built from a benchmark snapshot.

The workspace is a fresh SQLite database holding the demo users (``core.bootstrap.DEMO_USERS``,
random passwords) and the small dimension tables, with the size's Parquet files linked in as its
current snapshot, so the app reads exactly the data the measures were timed on. Times are the
script's run time inside AppTest, which is the server's time for a rerun (no browser, no network).
Pages registered in ``core.access`` whose file is not written yet are left out of the navigation.

AppTest gives every run a new script cache, so it compiles the app and page scripts again on each
rerun; a server compiles each script once and keeps the bytecode for every later run. The timings
here give each simulated server one script cache (``server_script_cache``), as the server has.
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import polars as pl

from core import access, bootstrap, derived, users
from core.model.schema import ENTITIES
from core.store.database import open_store
from core.store.workspace import Workspace

APP = str(Path(__file__).resolve().parents[1] / "app.py")
PAGE = "pages/throughput.py"
ROLE = "delivery_lead"
DIMENSIONS = ("teams", "people", "metrics", "capabilities", "milestones")


def build_workspace(snapshot: Path, home: Path) -> dict[str, str]:
    """A workspace at ``home`` whose current snapshot is ``snapshot``; returns each demo user's password."""
    (home / "snapshot").mkdir(parents=True, exist_ok=True)
    store = open_store(Workspace(home=home, database_url=f"sqlite:///{home / 'throughline.db'}"))
    store.write({name: pl.read_parquet(snapshot / f"{name}.parquet") for name in DIMENSIONS}, mode="replace")
    store.set_meta("workspace_kind", "demo")
    current = store.snapshot_folder()
    for name in ENTITIES:
        target = current / f"{name}.parquet"
        target.unlink(missing_ok=True)
        try:
            os.link(snapshot / f"{name}.parquet", target)
        except OSError:
            shutil.copyfile(snapshot / f"{name}.parquet", target)
    passwords: dict[str, str] = {}
    for username, name, role, team in bootstrap.DEMO_USERS:
        password = users.generate_password()
        users.create_user(store, username, name, role, password, team_id=team, actor="bench")
        passwords[role] = f"{username}\t{password}"
    store.engine.dispose()
    return passwords


def time_app(snapshot: Path, runs: int) -> dict[str, Any]:
    """Start to the first page, the throughput page's warm rerun, a team filter change, every page's warm
    rerun, and a start as users get it.

    The first start finds nothing kept beside the snapshot (it was linked in, not written by the app) and
    computes every result the first page needs; the warm reruns and filter changes are timed once the
    results the server start keeps in the background are done. Then, as the app does in the background
    after every write, ``core.derived.keep_results`` keeps the stage-1 results beside the snapshot (timed
    on its own), every Streamlit cache is cleared, as a new server process starts with none, and a new
    session signs in: the cold start from an existing snapshot.
    """

    pages = Path(APP).parent / "pages"
    access.PAGES = tuple(p for p in access.PAGES if (pages / f"{p.page_id}.py").exists())
    home = Path(tempfile.mkdtemp(prefix="tl-bench-app-"))
    try:
        username, password = build_workspace(snapshot, home)[ROLE].split("\t")
        os.environ["THROUGHLINE_HOME"] = str(home)
        os.environ["THROUGHLINE_DEMO"] = "0"
        os.environ.pop("THROUGHLINE_DATABASE_URL", None)

        with server_script_cache():
            cold_start, at = timed_sign_in(username, password)
            reruns, changes, first_page = _steady_state(at, snapshot, runs)
            every_page = _every_page(at, runs)
        # What every write does in the background: keep the new version's results beside its snapshot.
        import streamlit as st

        st.cache_resource.clear()
        st.cache_data.clear()
        store = open_store(Workspace(home=home, database_url=f"sqlite:///{home / 'throughline.db'}"))
        shutil.rmtree(store.snapshot_folder() / derived.FOLDER, ignore_errors=True)
        start = time.perf_counter()
        derived.keep_results(store)
        keep = time.perf_counter() - start
        store.engine.dispose()
        # A server start on that snapshot: every in-memory cache is gone, the results kept beside it are not.
        with server_script_cache():
            restart, _ = timed_sign_in(username, password)
        return {
            "role": ROLE,
            "keep_results_s": round(keep, 4),
            "cold_start_to_first_page_s": round(restart, 4),
            "page": PAGE,
            "cold_start_nothing_kept_s": round(cold_start, 4),
            "first_open_of_page_s": round(first_page, 4),
            "warm_rerun_s": [round(r, 4) for r in reruns],
            "warm_rerun_median_s": round(statistics.median(reruns), 4),
            "filter_change_s": [round(c, 4) for c in changes],
            "filter_change_median_s": round(statistics.median(changes), 4),
            "pages": every_page,
            "slowest_page_warm_rerun_s": max(p["warm_rerun_median_s"] for p in every_page.values()),
        }
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _steady_state(at: Any, snapshot: Path, runs: int) -> tuple[list[float], list[float], float]:
    """The page's first open, then its warm reruns and team filter changes once the server start's keeping is done."""
    start = time.perf_counter()
    at.switch_page(PAGE).run()
    first_page = time.perf_counter() - start
    _check(at)

    # Warm reruns are the steady state: first let the results kept in the background at server start
    # finish (they take both cores for seconds at L; keep_results_s below times that work on its own).
    for thread in threading.enumerate():
        if thread.name == derived.KEEPER_THREAD:
            thread.join()
    reruns = _warm_reruns(at, runs)

    teams = pl.read_parquet(snapshot / "teams.parquet")["team_id"].to_list()
    changes = []
    for team_id in (teams * runs)[: max(runs, 3)]:
        start = time.perf_counter()
        at.selectbox(key="throughput.team").select(team_id).run()
        changes.append(time.perf_counter() - start)
        _check(at)
    return reruns, changes, first_page


def _every_page(at: Any, runs: int) -> dict[str, dict[str, float]]:
    """Each page the role may open: its first open (its results computed or read) and its warm rerun median."""
    timings: dict[str, dict[str, float]] = {}
    for spec in access.PAGES:
        if ROLE not in spec.roles:
            continue
        start = time.perf_counter()
        at.switch_page(f"pages/{spec.page_id}.py").run()
        first = time.perf_counter() - start
        _check(at)
        timings[spec.page_id] = {
            "first_open_s": round(first, 4),
            "warm_rerun_median_s": round(statistics.median(_warm_reruns(at, runs)), 4),
        }
    return timings


def _warm_reruns(at: Any, runs: int) -> list[float]:
    """Seconds of each of ``runs`` reruns of the page ``at`` shows, with nothing changed."""
    reruns = []
    for _ in range(runs):
        start = time.perf_counter()
        at.run()
        reruns.append(time.perf_counter() - start)
        _check(at)
    return reruns


def timed_sign_in(username: str, password: str) -> tuple[float, Any]:
    """A new session of the app signing in through the form: seconds to its first page, and the AppTest."""
    from streamlit.testing.v1 import AppTest

    start = time.perf_counter()
    at = AppTest.from_file(APP, default_timeout=1800).run()
    at.text_input[0].input(username)
    at.text_input[1].input(password)
    at.button[0].click().run()
    seconds = time.perf_counter() - start
    _check(at)
    return seconds, at


def _check(at: Any) -> None:
    if at.exception:
        raise RuntimeError(f"the app raised: {at.exception[0].value}")


@contextmanager
def server_script_cache() -> Iterator[None]:
    """Within: every AppTest run shares one script cache, as every run of one server does."""
    from streamlit.runtime.scriptrunner.script_cache import ScriptCache
    from streamlit.testing.v1 import app_test, local_script_runner

    shared = ScriptCache()
    saved = app_test.ScriptCache, local_script_runner.ScriptCache
    app_test.ScriptCache = local_script_runner.ScriptCache = lambda: shared  # type: ignore[assignment,misc]
    try:
        yield
    finally:
        app_test.ScriptCache, local_script_runner.ScriptCache = saved

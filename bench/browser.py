"""``python -m bench.browser [--sizes S,M[,L]]``: what a person waits for, timed in Debian's Chromium.

Playwright drives ``/usr/bin/chromium`` against ``streamlit run app.py`` over a workspace built from the
size's bench snapshot (``bench.app_timing.build_workspace``), and times, from the click to a settled page
(the server's last ``script_finished`` message received, the app's script state ``notRunning`` and one
frame drawn): sign-in to Home (delivery lead) and to the quarterly review (executive), each page's first
open and its warm reopen, a team change and a period change on Cost, Value throughput and the quarterly
review, and a feature drill-down on Cost. Each is printed beside AppTest's time for the same action in
the same run (the script's run time, without websocket, serialisation or drawing), with the bytes the
browser received over the websocket for it. Medians of ``--runs`` (at least 5). The machine is shared:
read the figures as ratios within one run.

Every size named runs in the one invocation (S and M by default; L on request, under
``flock /work/wt/L.lock`` on the shared machine), one table per size with the load average at its start
and end and each action's goal at M. Both sides wait, after the first (cold) sign-in, for the results
the server keeps in the background at start, so the warm figures do not share the cores with it. A
selectbox change is timed from the click on the option, its list opened before the clock starts.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import app_timing, sizes

VIEWPORT = {"width": 1400, "height": 1000}
FILTERS = {  # page id -> (nav title, team selectbox key, period widget key)
    "cost": ("Cost per feature", "cost.team", "cost.period"),
    "throughput": ("Value throughput", "throughput.team", "throughput.period"),
    "quarterly": ("Quarterly review", "quarterly.team", "quarterly.quarter"),
}
THROUGHPUT_PERIODS = ("month", "quarter", "week")
DRILL_KEY = "cost.feature"


class Frames:
    """The websocket frames the page received since the last ``reset``: their bytes and finished script runs."""

    def __init__(self) -> None:
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        self._message = ForwardMsg
        self.bytes = 0
        self.finished = 0

    def reset(self) -> None:
        """Start counting a new action."""
        self.bytes = 0
        self.finished = 0

    def received(self, payload: bytes | str) -> None:
        """Count one frame; a successful end of a script or fragment run counts as finished."""
        data = payload.encode() if isinstance(payload, str) else payload
        self.bytes += len(data)
        message = self._message()
        try:
            message.ParseFromString(data)
        except Exception:  # a frame that is not a ForwardMsg is only counted
            return
        if message.WhichOneof("type") == "script_finished" and message.script_finished in (
            message.FINISHED_SUCCESSFULLY,
            message.FINISHED_FRAGMENT_RUN_SUCCESSFULLY,
        ):
            self.finished += 1


def _watch(page: Any) -> Frames:
    frames = Frames()
    page.on("websocket", lambda ws: ws.on("framereceived", frames.received))
    return frames


def _settle(page: Any, frames: Frames, ready: Callable[[], None] | None = None) -> None:
    """Wait until a script run has finished, ``ready`` holds, the script state is idle and a frame is drawn."""
    from tests.browser import wait_idle

    deadline = time.monotonic() + 90
    while frames.finished == 0:
        if time.monotonic() > deadline:
            raise TimeoutError(f"no script run finished within 90 s; frames: {frames.bytes} bytes")
        page.wait_for_timeout(5)
    if ready is not None:
        ready()
    wait_idle(page, timeout=180_000)
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")


def _timed(
    page: Any,
    frames: Frames,
    label: str,
    action: Callable[[], None],
    ready: Callable[[], None] | None = None,
    prepare: Callable[[], None] | None = None,
) -> dict:
    """Seconds from ``action`` to a settled page, and the bytes received meanwhile.

    ``prepare`` runs before the clock starts: what a person does before the click they then wait on
    (opening a drop-down list is not part of the wait for the option chosen in it).
    """
    page.wait_for_timeout(300)  # let any trailing rerun's frames arrive before counting
    if prepare is not None:
        prepare()
    frames.reset()
    start = time.perf_counter()
    action()
    _settle(page, frames, ready)
    seconds = time.perf_counter() - start
    print(f"   {label:<28}{seconds:8.3f} s {frames.bytes / 1024:9.1f} KB", file=sys.stderr, flush=True)
    return {"s": seconds, "bytes": frames.bytes}


def _open(page: Any, key: str) -> None:
    """Open the selectbox under ``key`` (its options listed, none chosen yet)."""
    box = page.locator(f".st-key-{key.replace('.', '-')}").get_by_role("combobox")
    box.scroll_into_view_if_needed()
    box.click()
    page.get_by_role("option").first.wait_for()


def _choose(page: Any, index: int) -> None:
    """Choose the option at ``index`` of the open selectbox: the click the reader then waits on."""
    page.get_by_role("option").nth(index).click()


def _pick_timed(page: Any, frames: Frames, label: str, key: str, index: int) -> dict:
    """The wait from choosing option ``index`` of the selectbox under ``key`` to a settled page (opened untimed)."""
    return _timed(page, frames, label, lambda: _choose(page, index), prepare=lambda: _open(page, key))


def _options(page: Any, key: str) -> tuple[int, int]:
    """The selectbox's number of options and the index of the chosen one."""
    box = page.locator(f".st-key-{key.replace('.', '-')}").get_by_role("combobox")
    box.scroll_into_view_if_needed()
    box.click()
    options = page.get_by_role("option")
    count = options.count()
    chosen = next((i for i in range(count) if options.nth(i).get_attribute("aria-selected") == "true"), 0)
    page.keyboard.press("Escape")
    return count, chosen


def _sequence(options: tuple[int, int], runs: int, limit: int | None = None) -> list[int]:
    """Option indices to pick in turn from the chosen one: the next, and the next, each unlike the one before."""
    count, chosen = options
    count = min(count, limit or count)
    if count < 2:
        return []
    return [(chosen + 1 + k) % count for k in range(runs)]


def _signed_in(browser: Any, url: str, login: str, heading: str, runs: int) -> tuple[list[dict], Any, Any, Frames]:
    """``runs`` sign-ins (a new session each) to a settled ``heading``; the last session is kept open."""
    from tests.browser import open_sign_in, wait_idle

    username, password = login.split("\t")
    timings = []
    for k in range(runs):
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        frames = _watch(page)
        open_sign_in(page, url)
        page.get_by_role("textbox", name="Username").fill(username)
        page.get_by_role("textbox", name="Password").fill(password)
        ready = lambda p=page: p.get_by_role("heading", name=heading).first.wait_for(timeout=180_000)  # noqa: E731
        timings.append(
            _timed(page, frames, f"sign in ({heading})", page.get_by_role("button", name="Sign in").click, ready)
        )
        page.wait_for_timeout(1_000)  # the sign-in cookie's own rerun
        wait_idle(page, timeout=180_000)
        if k < runs - 1:
            context.close()
    return timings, context, page, frames


def _wait_kept(home: Path, timeout: float = 900) -> None:
    """Wait until the server's background keeping of the stage-1 results is done (its last result written).

    ``core.derived.keep_results`` keeps the unattributed events last, so their file means all are kept.
    """
    from core import derived

    deadline = time.monotonic() + timeout
    while not any(home.glob(f"snapshot/**/{derived.FOLDER}/unattributed_events-*.parquet")):
        if time.monotonic() > deadline:
            print(f"   the results kept at start were not done within {timeout:.0f} s", file=sys.stderr)
            return
        time.sleep(0.5)


def _join_keeper() -> None:
    """Wait for this process's background keeping of results (``core.derived.KEEPER_THREAD``) to end."""
    import threading

    from core import derived

    for thread in threading.enumerate():
        if thread.name == derived.KEEPER_THREAD:
            thread.join()


def browser_timings(url: str, logins: dict[str, str], runs: int, home: Path | None = None) -> dict[str, Any]:
    """Every timed action in Chromium against the server at ``url`` (over the workspace ``home``)."""
    from playwright.sync_api import sync_playwright

    from core import access
    from tests.browser import CHROMIUM_ARGS

    out: dict[str, Any] = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        # The first session warms the server; its time is the cold sign-in. The warm figures wait until
        # the results the server keeps in the background at start are kept (both cores for seconds at M).
        signs, context, page, frames = _signed_in(browser, url, logins["delivery_lead"], "Home", 1)
        out["sign_in_cold"] = signs
        context.close()
        if home is not None:
            _wait_kept(home)
        signs, context, page, frames = _signed_in(browser, url, logins["delivery_lead"], "Home", runs)
        out["sign_in_home"] = signs
        context.close()
        execs, context, page, frames = _signed_in(browser, url, logins["executive"], "Quarterly review", runs)
        out["sign_in_quarterly"] = execs
        context.close()

        signs, context, page, frames = _signed_in(browser, url, logins["delivery_lead"], "Home", 1)
        titles = {p.page_id: p.title for p in access.PAGES if "delivery_lead" in p.roles}
        titles = dict([*list(titles.items())[1:], *list(titles.items())[:1]])  # signed in on Home: open it last
        for cycle in range(runs + 1):
            for page_id, title in titles.items():
                link = page.get_by_role("link", name=title).first
                ready = lambda t=title: page.get_by_role("heading", name=t).first.wait_for(timeout=180_000)  # noqa: E731
                key = f"page.{page_id}.{'first' if cycle == 0 else 'warm'}"
                out.setdefault(key, []).append(_timed(page, frames, key, link.click, ready))

        for page_id, (title, team_key, period_key) in FILTERS.items():
            page.get_by_role("link", name=title).first.click()
            page.get_by_role("heading", name=title).first.wait_for(timeout=180_000)
            wait_idle_page(page)
            for index in _sequence(_options(page, team_key), runs):
                timing = _pick_timed(page, frames, f"{page_id}.team", team_key, index)
                out.setdefault(f"{page_id}.team", []).append(timing)
            if _options(page, team_key)[1] != 0:
                _pick_timed(page, frames, "(every team)", team_key, 0)  # back to every team
            if page_id == "throughput":
                for k in range(runs):
                    label = THROUGHPUT_PERIODS[k % 3].capitalize()
                    button = page.locator(".st-key-throughput-period").get_by_text(label, exact=True)
                    out.setdefault(f"{page_id}.period", []).append(
                        _timed(page, frames, f"{page_id}.period", button.click)
                    )
            else:
                for index in _sequence(_options(page, period_key), runs):
                    timing = _pick_timed(page, frames, f"{page_id}.period", period_key, index)
                    out.setdefault(f"{page_id}.period", []).append(timing)
            if page_id == "cost":
                for index in _sequence(_options(page, DRILL_KEY), runs, limit=6):
                    timing = _pick_timed(page, frames, "cost.drill_down", DRILL_KEY, index)
                    out.setdefault("cost.drill_down", []).append(timing)
        context.close()
        browser.close()
    return out


def wait_idle_page(page: Any) -> None:
    """The script state idle, with a long timeout for a first open at M."""
    from tests.browser import wait_idle

    wait_idle(page, timeout=180_000)


def apptest_timings(logins: dict[str, str], runs: int) -> dict[str, list[float]]:
    """The same actions through AppTest (the script's run time on the server), as ``bench.app_timing`` times them."""
    from core import access

    pages = Path(app_timing.APP).parent / "pages"
    access.PAGES = tuple(p for p in access.PAGES if (pages / f"{p.page_id}.py").exists())
    out: dict[str, list[float]] = {}

    def clock(key: str, run: Callable[[], Any]) -> None:
        start = time.perf_counter()
        at = run()
        out.setdefault(key, []).append(time.perf_counter() - start)
        app_timing._check(at)

    with app_timing.server_script_cache():
        user, password = logins["delivery_lead"].split("\t")
        for k in range(runs + 1):
            seconds, at = app_timing.timed_sign_in(user, password)
            out.setdefault("sign_in_cold" if k == 0 else "sign_in_home", []).append(seconds)
            if k == 0:
                _join_keeper()  # as the browser side waits for the results kept at start
        user, password = logins["executive"].split("\t")
        for _ in range(runs):
            out.setdefault("sign_in_quarterly", []).append(app_timing.timed_sign_in(user, password)[0])
        _, at = app_timing.timed_sign_in(*logins["delivery_lead"].split("\t"))
        chosen = [p.page_id for p in access.PAGES if "delivery_lead" in p.roles]
        for cycle in range(runs + 1):
            for page_id in chosen:
                key = f"page.{page_id}.{'first' if cycle == 0 else 'warm'}"
                clock(key, lambda p=page_id: at.switch_page(f"pages/{p}.py").run())
        for page_id, (_title, team_key, period_key) in FILTERS.items():
            at.switch_page(f"pages/{page_id}.py").run()
            box = at.selectbox(key=team_key)
            for index in _sequence((len(box.proto.options), box.index or 0), runs):
                clock(f"{page_id}.team", lambda i=index, k=team_key: at.selectbox(key=k).select_index(i).run())
            if at.selectbox(key=team_key).index:
                at.selectbox(key=team_key).select_index(0).run()
            if page_id == "throughput":
                for k in range(runs):
                    period = THROUGHPUT_PERIODS[k % 3]
                    clock(
                        f"{page_id}.period",
                        lambda p=period, k=period_key: at.segmented_control(key=k).set_value(p).run(),
                    )
            else:
                box = at.selectbox(key=period_key)
                for index in _sequence((len(box.proto.options), box.index or 0), runs):
                    clock(f"{page_id}.period", lambda i=index, k=period_key: at.selectbox(key=k).select_index(i).run())
            if page_id == "cost":
                box = at.selectbox(key=DRILL_KEY)
                for index in _sequence((len(box.proto.options), box.index or 0), runs, limit=6):
                    clock("cost.drill_down", lambda i=index: at.selectbox(key=DRILL_KEY).select_index(i).run())
    return out


def _forget_apptest_caches() -> None:
    """Drop what the AppTest side keeps in this process (the frames at M are GBs) before the server starts."""
    import gc

    import streamlit as st

    st.cache_resource.clear()
    st.cache_data.clear()
    gc.collect()


def run_size(snapshot: Path, runs: int, with_apptest: bool = True) -> dict[str, Any]:
    """Both timings on workspaces built alike from ``snapshot``; AppTest first, then the browser."""
    from tests.browser import streamlit_server

    app_home = Path(tempfile.mkdtemp(prefix="tl-bench-apptest-"))
    web_home = Path(tempfile.mkdtemp(prefix="tl-bench-browser-"))
    try:
        logins = app_timing.build_workspace(snapshot, app_home)
        os.environ.update({"THROUGHLINE_HOME": str(app_home), "THROUGHLINE_DEMO": "0"})
        os.environ.pop("THROUGHLINE_DATABASE_URL", None)
        load = [os.getloadavg()[0]]
        apptest = apptest_timings(logins, runs) if with_apptest else {}
        _forget_apptest_caches()
        web_logins = app_timing.build_workspace(snapshot, web_home)
        with streamlit_server(web_home) as url:
            web = browser_timings(url, web_logins, runs, web_home)
        load.append(os.getloadavg()[0])
    finally:
        shutil.rmtree(app_home, ignore_errors=True)
        shutil.rmtree(web_home, ignore_errors=True)
    rows = {}
    for action, timings in web.items():
        seconds = [t["s"] for t in timings]
        rows[action] = {
            "browser_median_s": round(statistics.median(seconds), 3),
            "browser_s": [round(s, 3) for s in seconds],
            "bytes_median": int(statistics.median(t["bytes"] for t in timings)),
            "apptest_median_s": round(statistics.median(apptest[action]), 3) if action in apptest else None,
            "apptest_s": [round(s, 3) for s in apptest.get(action, [])],
        }
    return {"load_average_1min": [round(x, 2) for x in load], "actions": rows}


def goal(action: str) -> float | None:
    """The issue's goal at M for an action, in seconds (None: no goal)."""
    if action == "sign_in_home":
        return 2.0
    if action.endswith((".team", ".period")) or action == "cost.drill_down" or action.endswith(".warm"):
        return 1.0
    return None


def text(size: str, result: dict[str, Any]) -> str:
    """The table of one size: browser and AppTest medians, their ratio, the bytes per action and the goal."""
    start, end = result["load_average_1min"]
    lines = [
        f"== size {size} (medians; load average {start:.1f} at start, {end:.1f} at end; the machine is shared, "
        "compare within one run)"
    ]
    lines.append(f"{'action':<28}{'browser s':>10}{'AppTest s':>10}{'gap ×':>8}{'KB recv':>10}{'goal s':>8}")
    for action, row in result["actions"].items():
        app = row["apptest_median_s"]
        gap = f"{row['browser_median_s'] / app:.1f}" if app else "-"
        wanted = goal(action)
        mark = "-" if wanted is None else f"{wanted:.1f}{'' if row['browser_median_s'] <= wanted else ' ✗'}"
        lines.append(
            f"{action:<28}{row['browser_median_s']:>10.3f}{app if app is not None else '-':>10}{gap:>8}"
            f"{row['bytes_median'] / 1024:>10.1f}{mark:>8}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.browser", description=__doc__)
    parser.add_argument("--sizes", default="S,M", help="comma-separated sizes among S, M, L (default S,M)")
    parser.add_argument("--runs", type=int, default=5, help="timings per action (at least 5)")
    parser.add_argument("--cache", type=Path, default=Path("bench/results/cache"), help="bench snapshot cache")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-apptest", action="store_true", help="time the browser only")
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    args = parser.parse_args(argv)
    runs = max(args.runs, 5) if not args.no_apptest else max(args.runs, 1)
    results = {}
    for name in [s.strip().upper() for s in args.sizes.split(",") if s.strip()]:
        size = sizes.SIZES[name]
        folder = sizes.snapshot_folder(args.cache, size, args.seed)
        if not sizes.is_complete(folder, size):
            start = time.perf_counter()
            sizes.write_snapshot(folder, size, args.seed)
            print(f"generated the {name} snapshot in {time.perf_counter() - start:.0f} s", flush=True)
        results[name] = run_size(folder, runs, not args.no_apptest)
        print(text(name, results[name]), flush=True)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

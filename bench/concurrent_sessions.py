"""Concurrent sessions on the demo workspace: N headless browsers sign in and open pages for a bounded time.

Starts ``streamlit run app.py`` over a fresh demo workspace, then drives N Playwright contexts in one
Debian chromium (``/usr/bin/chromium``) at once: each signs in as one of the demo users (round robin)
and opens that role's pages in turn until the time is up. A page time is from the click on its
navigation link to its heading drawn and the script finished. Errors are exceptions in the browser
driver, a Streamlit exception box, or "This app has encountered an error".

    python -m bench.concurrent_sessions --sessions 20 --seconds 120 --scale 1
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core import access
from core.access import Viewer
from core.bootstrap import DEMO_USERS, seed_demo
from core.store.database import open_store
from core.store.workspace import Workspace

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
APP_ERROR = "This app has encountered an error"


@dataclass
class Tally:
    """What the sessions saw: page times in seconds, sign-in times, and every error with its session."""

    page_seconds: list[float] = field(default_factory=list)
    sign_in_seconds: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def main(argv: list[str] | None = None) -> int:
    """Run the measure and print the report; exit 1 when any session saw an error."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=120.0, help="how long sessions keep opening pages")
    parser.add_argument("--scale", type=float, default=1.0, help="demo size multiplier")
    parser.add_argument("--browsers", type=int, default=4, help="how many of the sessions are Chromium contexts")
    args = parser.parse_args(argv)
    chromium = shutil.which("chromium")
    if chromium is None:
        print("Debian's chromium is not installed (apt-get install chromium).", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="tl-sessions-") as folder:
        home = Path(folder)
        logins = demo_workspace(home, args.scale)
        with streamlit_server(home) as url:
            started = time.monotonic()
            tally = asyncio.run(drive(url, chromium, logins, args.sessions, args.seconds, args.browsers))
            elapsed = time.monotonic() - started
    print(report(tally, args.sessions, elapsed, args.scale))
    print(f"  server log: {Path(tempfile.gettempdir()) / 'tl-concurrent-sessions.log'}")
    return 1 if tally.errors else 0


def demo_workspace(home: Path, scale: float) -> list[tuple[str, str, str]]:
    """Seed the demo at ``home``; (username, password, role) of each demo user (no forced change, for the bench)."""
    (home / "snapshot").mkdir(parents=True, exist_ok=True)
    store = open_store(Workspace(home=home, database_url=f"sqlite:///{home / 'throughline.db'}"))
    seeded = seed_demo(store, seed=7, scale=scale, must_change_password=False)
    store.snapshot()
    store.engine.dispose()
    return [(login.username, login.password, login.role) for login in seeded]


@contextmanager
def streamlit_server(home: Path) -> Iterator[str]:
    """`streamlit run app.py` on a free port over ``home``; yields its URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    env = os.environ | {"THROUGHLINE_HOME": str(home)}
    env.pop("THROUGHLINE_DATABASE_URL", None)
    env.pop("THROUGHLINE_DEMO", None)
    log = (home / "streamlit.log").open("w")
    command = [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port", str(port)]
    command += ["--server.headless", "true", "--server.address", "127.0.0.1"]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2):
                    break
            except OSError:
                time.sleep(0.3)
        else:
            raise RuntimeError("streamlit did not start")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
        shutil.copyfile(home / "streamlit.log", Path(tempfile.gettempdir()) / "tl-concurrent-sessions.log")


async def drive(
    url: str, chromium: str, logins: list[tuple[str, str, str]], sessions: int, seconds: float, browsers: int
) -> Tally:
    """Run ``sessions`` sessions at once against ``url`` until ``seconds`` have passed.

    The first ``browsers`` are Chromium contexts; the others speak Streamlit's websocket protocol
    directly (as the browser does, without drawing), so 20 sessions fit on a small machine.
    """
    from playwright.async_api import async_playwright

    tally = Tally()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        stop_at = time.monotonic() + seconds
        visitors = [
            session(browser, url, logins[i % len(logins)], i, stop_at, tally)
            if i < browsers
            else socket_session(url, logins[i % len(logins)], i, stop_at, tally)
            for i in range(sessions)
        ]
        await asyncio.gather(*visitors)
        await browser.close()
    return tally


class _Socket:
    """One Streamlit session over its websocket: send a rerun, collect what the run drew."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.pages: dict[str, str] = {}  # page title -> page script hash, from the navigation message

    async def run(self, widgets: list[Any] | None = None, page_hash: str = "") -> list[Any]:
        """Rerun the script (on ``page_hash``) with ``widgets``; the elements drawn, once the run has finished."""
        from streamlit.proto.BackMsg_pb2 import BackMsg
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        message = BackMsg()
        message.rerun_script.query_string = ""
        message.rerun_script.page_script_hash = page_hash
        message.rerun_script.widget_states.widgets.extend(widgets or [])
        await self.connection.send(message.SerializeToString())
        elements: list[Any] = []
        while True:
            forward = ForwardMsg()
            forward.ParseFromString(await asyncio.wait_for(self.connection.recv(), timeout=300))
            kind = forward.WhichOneof("type")
            if kind == "delta" and forward.delta.WhichOneof("type") == "new_element":
                elements.append(forward.delta.new_element)
            elif kind == "navigation":
                self.pages = {page.page_name: page.page_script_hash for page in forward.navigation.app_pages}
            elif kind == "script_finished":
                if forward.script_finished == ForwardMsg.FINISHED_EARLY_FOR_RERUN:
                    elements = []
                    continue
                return elements


def _shown(elements: list[Any], kind: str) -> list[Any]:
    return [getattr(e, kind) for e in elements if e.WhichOneof("type") == kind]


async def socket_session(url: str, login: tuple[str, str, str], number: int, stop_at: float, tally: Tally) -> None:
    """One visitor over the websocket: sign in through the form, then open the role's pages until ``stop_at``."""
    import websockets
    from streamlit.proto.WidgetStates_pb2 import WidgetState

    username, password, role = login
    team = next((team for name, _, _, team in DEMO_USERS if name == username), None)
    titles = [p.title for p in access.pages_for(Viewer(username, username, role, team)) if p.page_id != "home"]
    address = url.replace("http://", "ws://") + "/_stcore/stream"
    try:
        async with websockets.connect(address, subprotocols=["streamlit"], max_size=None, open_timeout=300) as ws:
            client = _Socket(ws)
            started = time.monotonic()
            form = await client.run()
            inputs = {t.label: t.id for t in _shown(form, "text_input")}
            submit = next(b.id for b in _shown(form, "button") if b.label == "Sign in")
            states = [
                WidgetState(id=inputs["Username"], string_value=username),
                WidgetState(id=inputs["Password"], string_value=password),
                WidgetState(id=submit, trigger_value=True),
            ]
            home = await client.run(states)
            if not any("Viewing as" in m.body for m in _shown(home, "markdown")):
                raise RuntimeError(f"not signed in; the run drew {_texts(home)}")
            tally.sign_in_seconds.append(time.monotonic() - started)
            visit = 0
            while time.monotonic() < stop_at:
                title = titles[visit % len(titles)]
                visit += 1
                clicked = time.monotonic()
                drawn = await client.run(page_hash=client.pages[title])
                tally.page_seconds.append(time.monotonic() - clicked)
                if _shown(drawn, "exception") or not any(h.body == title for h in _shown(drawn, "heading")):
                    tally.errors.append(f"session {number} ({username}) page {title}: {_texts(drawn)}")
    except Exception as error:  # a bench reports every failure and goes on with the other sessions
        what = str(error).splitlines()[0] if str(error) else ""
        tally.errors.append(f"session {number} ({username}, websocket): {type(error).__name__} {what}")


def _texts(elements: list[Any]) -> str:
    """The headings, alerts and exceptions of a run, short, for an error line."""
    parts = [h.body for h in _shown(elements, "heading")] + [a.body for a in _shown(elements, "alert")]
    parts += [f"exception {x.type}: {x.message}" for x in _shown(elements, "exception")]
    return "; ".join(parts)[:300]


async def session(
    browser: Any, url: str, login: tuple[str, str, str], number: int, stop_at: float, tally: Tally
) -> None:
    """One visitor: sign in, then open the role's pages in turn until ``stop_at``."""

    username, password, role = login
    team = next((team for name, _, _, team in DEMO_USERS if name == username), None)
    titles = [p.title for p in access.pages_for(Viewer(username, username, role, team)) if p.page_id != "home"]
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await context.new_page()
    try:
        started = time.monotonic()
        await page.goto(url, timeout=300_000)
        await page.get_by_role("textbox", name="Username").wait_for(timeout=300_000)
        await page.wait_for_selector(IDLE, timeout=300_000)
        await page.get_by_role("textbox", name="Username").fill(username)
        await page.get_by_role("textbox", name="Password").fill(password)
        await page.get_by_role("button", name="Sign in").click()
        await page.get_by_text("Viewing as").first.wait_for(timeout=300_000)
        await page.wait_for_selector(IDLE, timeout=300_000)
        tally.sign_in_seconds.append(time.monotonic() - started)
        await page.wait_for_timeout(1_000)
        visit = 0
        while time.monotonic() < stop_at:
            title = titles[visit % len(titles)]
            visit += 1
            clicked = time.monotonic()
            await page.get_by_role("link", name=title).first.click(timeout=300_000)
            await page.get_by_role("heading", name=title).first.wait_for(timeout=300_000)
            await page.wait_for_selector(IDLE, timeout=300_000)
            tally.page_seconds.append(time.monotonic() - clicked)
            if await page.get_by_text(APP_ERROR).count() or await page.locator("[data-testid='stException']").count():
                tally.errors.append(f"session {number} ({username}) page {title}: the app showed an error")
    except Exception as error:  # a bench reports every failure and goes on with the other sessions
        shown = " ".join((await page.inner_text("body", timeout=5_000)).split())[:300]
        what = str(error).splitlines()[0] if str(error) else ""
        tally.errors.append(f"session {number} ({username}): {type(error).__name__} {what}; the page showed: {shown}")
    finally:
        await context.close()


def report(tally: Tally, sessions: int, elapsed: float, scale: float) -> str:
    """The measure as lines: sessions, pages opened, errors, p50/p95 page and sign-in times."""
    lines = [f"{sessions} concurrent sessions on the demo workspace (scale {scale:g}), {elapsed:.0f} s in all"]
    for label, values in (("page", tally.page_seconds), ("sign-in", tally.sign_in_seconds)):
        if values:
            p50, p95 = _percentile(values, 50), _percentile(values, 95)
            lines.append(f"  {label} times: n={len(values)} p50={p50:.2f} s p95={p95:.2f} s max={max(values):.2f} s")
    lines.append(f"  errors: {len(tally.errors)}")
    lines += [f"    {error}" for error in tally.errors[:20]]
    return "\n".join(lines)


def _percentile(values: list[float], percent: int) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[percent - 1]


if __name__ == "__main__":
    raise SystemExit(main())

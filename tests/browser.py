"""Driving the app in Debian's headless Chromium with Playwright, against a real `streamlit run`."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]


def chromium_path() -> str:
    """Debian's chromium, or skip (fail in CI) with the reason."""
    path = shutil.which("chromium")
    if path is None:
        from tests.conftest import service_unavailable

        service_unavailable("Debian's chromium is not installed (apt-get install chromium)")
    return path  # type: ignore[return-value]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def streamlit_server(home: Path) -> Iterator[str]:
    """`streamlit run app.py` on a free port over the workspace ``home``; yields its base URL."""
    port = _free_port()
    env = os.environ | {"THROUGHLINE_HOME": str(home), "THROUGHLINE_DEMO": "0"}
    env.pop("THROUGHLINE_DATABASE_URL", None)
    log = (home / f"streamlit-{port}.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(ROOT / "app.py"),
            "--server.port",
            str(port),
            "--server.headless",
            "true",
            "--server.address",
            "127.0.0.1",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.3)
        else:
            pytest.fail(f"streamlit did not start; see {log.name}")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def wait_idle(page: object, timeout: float = 60_000) -> None:
    """Wait until Streamlit has finished running the script after the last action."""
    page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']", timeout=timeout)  # type: ignore[attr-defined]


def open_sign_in(page: object, url: str) -> None:
    """Open the app and wait for the sign-in form (no cookie component runs there, so no late rerun)."""
    page.goto(url)  # type: ignore[attr-defined]
    page.get_by_role("textbox", name="Username").wait_for(timeout=60_000)  # type: ignore[attr-defined]
    wait_idle(page)


def sign_in(page: object, url: str, username: str, password: str) -> None:
    """Open the app and sign in through the login form."""
    open_sign_in(page, url)
    page.get_by_role("textbox", name="Username").fill(username)  # type: ignore[attr-defined]
    page.get_by_role("textbox", name="Password").fill(password)  # type: ignore[attr-defined]
    page.get_by_role("button", name="Sign in").click()  # type: ignore[attr-defined]
    page.get_by_text("Viewing as").first.wait_for(timeout=60_000)  # type: ignore[attr-defined]
    wait_idle(page)
    page.wait_for_timeout(1_000)  # type: ignore[attr-defined]  # the sign-in cookie's own rerun
    wait_idle(page)


def open_page(page: object, link: str, timeout: float = 60_000) -> None:
    """Open a page from the navigation and wait until its heading is drawn and the script is done.

    A click that lands while the sign-in cookie's rerun is on its way can be undone by that rerun,
    leaving the app where it was; like a person would, click again (at most three times).
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    heading = page.get_by_role("heading", name=link).first  # type: ignore[attr-defined]
    for attempt in range(3):
        page.get_by_role("link", name=link).click(timeout=timeout)  # type: ignore[attr-defined]
        try:
            heading.wait_for(timeout=timeout if attempt == 2 else 20_000)
            break
        except PlaywrightTimeout:
            if attempt == 2:
                raise
    wait_idle(page, timeout=max(timeout, 60_000))


def screenshot(page: object, name: str) -> Path:
    """Save a full-page screenshot under test-artifacts/."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
    return path

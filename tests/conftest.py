"""Shared fixtures: throwaway workspaces on SQLite and on the machine's PostgreSQL, and a seeded demo."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from core.store.database import Store, open_store
from core.store.workspace import Workspace

ROOT = Path(__file__).resolve().parents[1]
PG_ADMIN_URL = os.environ.get("THROUGHLINE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REQUIRE_SERVICES = os.environ.get("THROUGHLINE_REQUIRE_SERVICES") == "1"


def service_unavailable(reason: str) -> None:
    """Skip (on a developer machine) or fail (in CI, where the service must run) a service test."""
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (THROUGHLINE_REQUIRE_SERVICES=1: CI must have it running)")
    pytest.skip(reason)


@pytest.fixture
def sqlite_workspace(tmp_path: Path) -> Workspace:
    """A fresh workspace folder with an SQLite database."""
    return Workspace(home=tmp_path, database_url=f"sqlite:///{tmp_path / 'throughline.db'}")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """The URL of a fresh, empty PostgreSQL database, dropped afterwards."""
    name = f"tl_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as error:
        admin.dispose()
        service_unavailable(f"PostgreSQL at {PG_ADMIN_URL} does not answer: {error.__class__.__name__}")
    url = sa.make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    yield url
    sa.create_engine(url).dispose()
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """An empty store, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        workspace = Workspace(home=tmp_path, database_url=f"sqlite:///{tmp_path / 'throughline.db'}")
    else:
        url = request.getfixturevalue("pg_url")
        workspace = Workspace(home=tmp_path, database_url=url)
    (tmp_path / "snapshot").mkdir(exist_ok=True)
    opened = open_store(workspace)
    yield opened
    opened.engine.dispose()


DEMO_TEST_SCALE = float(os.environ.get("THROUGHLINE_TEST_DEMO_SCALE", "0.25"))


FLAG_DEMO_SCALE = 0.5
"""The smallest demo whose planted Growth rise is still evidence once a quarter's flag tests are judged together:
at 0.25 the team makes ~230 PRs a quarter and its +31% rise has p ≈ 0.001 alone, 0.017 after the
Benjamini–Hochberg adjustment over the quarter's 18 tests, which the 1% level rightly does not flag."""


@pytest.fixture(scope="session")
def demo_workspace(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A demo workspace seeded once per test process: its folder and each role's sign-in."""
    return seed_demo_workspace(tmp_path_factory.mktemp("demo"), DEMO_TEST_SCALE)


def seed_demo_workspace(home: Path, scale: float) -> dict[str, object]:
    """Seed the demo organisation at ``scale`` into the workspace folder ``home``; its folder and sign-ins."""
    from core.bootstrap import seed_demo

    workspace = Workspace(home=home, database_url=f"sqlite:///{home / 'throughline.db'}")
    (home / "snapshot").mkdir(exist_ok=True)
    store = open_store(workspace)
    logins = seed_demo(store, seed=7, scale=scale, must_change_password=False)
    store.snapshot()
    store.engine.dispose()
    return {"home": home, "logins": {login.role: login for login in logins}}


@pytest.fixture(scope="session")
def server(demo_workspace: dict[str, object]) -> Iterator[str]:
    """`streamlit run app.py` over the shared demo workspace, for the browser tests."""
    from tests.browser import streamlit_server

    with streamlit_server(demo_workspace["home"]) as url:  # type: ignore[arg-type]
        yield url


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """Debian's headless Chromium driven by Playwright (skipped, or failed in CI, when missing)."""
    from tests.browser import CHROMIUM_ARGS, chromium_path

    playwright_api = pytest.importorskip("playwright.sync_api")
    executable = chromium_path()
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[pytest.TestReport]:
    report = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    return report


@pytest.fixture(autouse=True)
def _explain_browser_failures(request: pytest.FixtureRequest) -> Iterator[None]:
    """When a browser test fails, print what each open page showed and the server's last log lines.

    A browser failure on a CI machine is otherwise a bare timeout; this says what the user saw.
    """
    yield
    if "browser" not in request.fixturenames:
        return
    call = request.node.stash.get(_REPORTS, {}).get("call")
    if call is None or not call.failed:
        return
    launched = request.getfixturevalue("browser")
    for context in launched.contexts:
        for page in context.pages:
            try:
                shown = page.inner_text("body", timeout=5_000)
                state = page.get_attribute("[data-testid='stApp']", "data-test-script-state", timeout=5_000)
            except Exception as error:  # diagnostics must never mask the real failure
                shown, state = f"(could not read the page: {error})", "?"
            print(f"--- page {page.url} (script state {state}) showed:\n{shown[:4000]}")
        context.close()
    home = request.getfixturevalue("demo_workspace")["home"]
    for log in sorted(home.glob("streamlit-*.log")):
        print(f"--- last lines of {log.name}:\n" + "\n".join(log.read_text().splitlines()[-40:]))

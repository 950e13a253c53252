"""In a real browser: an admin uploads a Jira CSV and a GitHub PR JSON on the Data page and sees both in the history."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

from core.importing import import_history
from core.store.database import open_store
from core.store.workspace import Workspace
from tests.browser import open_page, screenshot, sign_in, streamlit_server, wait_idle

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

FIXTURES = Path(__file__).parent / "fixtures" / "imports"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A fresh small demo workspace, so uploads here leave the shared session workspace untouched."""
    from core.bootstrap import seed_demo

    home = tmp_path_factory.mktemp("browser-data")
    (home / "snapshot").mkdir()
    store = open_store(Workspace(home=home, database_url=f"sqlite:///{home / 'throughline.db'}"))
    logins = seed_demo(store, seed=7, scale=0.1, must_change_password=False)
    store.snapshot()
    store.engine.dispose()
    return {"home": home, "logins": {login.role: login for login in logins}}


@pytest.fixture(scope="module")
def server(workspace: dict[str, object]) -> Iterator[str]:
    with streamlit_server(workspace["home"]) as url:  # type: ignore[arg-type]
        yield url


def _upload_and_import(page: object, path: Path, recognised: str) -> None:
    page.locator(".st-key-data-upload-file input[type=file]").set_input_files(str(path))  # type: ignore[attr-defined]
    page.get_by_text(f"Recognised as {recognised}").wait_for(timeout=60_000)  # type: ignore[attr-defined]
    wait_idle(page)
    page.locator(".st-key-data-upload-import button").click()  # type: ignore[attr-defined]
    page.get_by_text(f"of {path.name} done:").wait_for(timeout=60_000)  # type: ignore[attr-defined]
    wait_idle(page)


def test_an_admin_uploads_jira_and_github_exports_and_sees_them_in_the_history(
    server: str, browser: object, workspace: dict[str, object]
) -> None:
    login = workspace["logins"]["admin"]  # type: ignore[index]
    context = browser.new_context(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
    page = context.new_page()
    sign_in(page, server, login.username, login.password)
    more = page.get_by_test_id("stSidebarNav").get_by_role("button", name=re.compile(r"View .*more"))
    if more.count():
        more.click()  # a long navigation is folded after its first entries
    open_page(page, "Data")

    _upload_and_import(page, FIXTURES / "jira_export.csv", "Jira CSV export (all fields)")
    screenshot(page, "data-upload-jira")
    _upload_and_import(page, FIXTURES / "github_pulls_rest.json", "GitHub pull requests (REST API JSON)")

    page.get_by_role("tab", name="Import history").click()
    wait_idle(page)
    page.get_by_text("Undo an import").wait_for(timeout=30_000)
    page.locator(".st-key-data-history-import").click()
    options = page.get_by_role("option")
    options.first.wait_for(timeout=30_000)
    listed = " ".join(options.all_inner_texts())
    assert "github_pulls_rest.json" in listed and "jira_export.csv" in listed
    page.keyboard.press("Escape")
    wait_idle(page)
    screenshot(page, "data-import-history")
    home = Path(str(workspace["home"]))
    store = open_store(Workspace(home=home, database_url=f"sqlite:///{home / 'throughline.db'}"))
    done = import_history(store).filter(pl.col("status") == "done")
    assert {"jira_export.csv", "github_pulls_rest.json"} <= set(done["source"])
    assert set(done["actor"]) == {login.username}
    context.close()

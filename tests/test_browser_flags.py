"""In a real browser: a delivery lead acknowledges a vanity flag with a comment and it stays acknowledged on reload."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.bootstrap import seed_demo
from core.store.database import open_store
from core.store.workspace import Workspace
from tests.browser import open_page, screenshot, sign_in, streamlit_server, wait_idle

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]
COMMENT = "Known: Growth's experiment push; agreed to watch 30-day retention"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A fresh demo workspace of this module's own, so the acknowledgement does not leak into other tests."""
    home = tmp_path_factory.mktemp("flags-browser")
    (home / "snapshot").mkdir()
    store = open_store(Workspace(home=home, database_url=f"sqlite:///{home / 'throughline.db'}"))
    logins = seed_demo(store, seed=7, scale=0.5, must_change_password=False)
    store.snapshot()
    store.engine.dispose()
    return {"home": home, "logins": {login.role: login for login in logins}}


@pytest.fixture(scope="module")
def server(workspace: dict[str, object]) -> Iterator[str]:
    with streamlit_server(Path(str(workspace["home"]))) as url:
        yield url


def _open_flags(page: object) -> object:
    open_page(page, "Vanity flags")
    card = page.locator("[class*='st-key-flags-flag-']").first  # type: ignore[attr-defined]
    card.wait_for(state="visible", timeout=60_000)
    return card


def test_a_delivery_lead_acknowledges_a_flag_and_it_stays_acknowledged_after_reload(
    server: str, browser: object, workspace: dict[str, object]
) -> None:
    login = workspace["logins"]["delivery_lead"]  # type: ignore[index]
    context = browser.new_context(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
    page = context.new_page()
    sign_in(page, server, login.username, login.password)

    card = _open_flags(page)
    title = card.locator("h4").first.inner_text()  # type: ignore[attr-defined]
    assert title.startswith("Activity up, value flat · Growth")
    card.locator("[data-testid='stPlotlyChart']").first.wait_for(state="visible", timeout=60_000)  # type: ignore[attr-defined]
    card.get_by_text("Reproduce and acknowledge").click()  # type: ignore[attr-defined]
    card.get_by_role("textbox", name="Comment").fill(COMMENT)  # type: ignore[attr-defined]
    card.get_by_role("button", name="Acknowledge").click()  # type: ignore[attr-defined]
    wait_idle(page)
    page.get_by_text(f"Acknowledged by {login.username}").first.wait_for(timeout=60_000)

    page.reload()
    if page.get_by_role("textbox", name="Username").count():
        sign_in(page, server, login.username, login.password)
    card = _open_flags(page)
    assert card.locator("h4").first.inner_text() == title  # type: ignore[attr-defined]
    note = card.get_by_text(f"Acknowledged by {login.username}")  # type: ignore[attr-defined]
    note.wait_for(timeout=60_000)
    assert COMMENT in card.inner_text()  # type: ignore[attr-defined]
    page.wait_for_timeout(500)
    screenshot(page, "flags-acknowledged-delivery_lead")
    context.close()

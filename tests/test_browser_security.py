"""In a real browser: a page outside the role has no URL, and a cookie replayed after sign-out is refused."""

from __future__ import annotations

import pytest

from tests.browser import open_page, open_sign_in, screenshot, sign_in, wait_idle

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]


def test_a_team_lead_cannot_open_the_explore_page_by_url(
    server: str, browser: object, demo_workspace: dict[str, object]
) -> None:
    login = demo_workspace["logins"]["team_lead"]  # type: ignore[index]
    context = browser.new_context(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
    page = context.new_page()
    sign_in(page, server, login.username, login.password)
    page.goto(f"{server}/explore")
    page.get_by_text("Viewing as").first.wait_for(timeout=60_000)
    wait_idle(page)
    assert page.get_by_role("heading", name="Explore").count() == 0
    assert page.get_by_role("heading", name="Home").first.is_visible()
    assert page.get_by_test_id("stSidebarNav").get_by_text("Explore").count() == 0
    screenshot(page, "security-teamlead-explore-refused")
    context.close()


def test_a_session_cookie_replayed_after_sign_out_is_refused(
    server: str, browser: object, demo_workspace: dict[str, object]
) -> None:
    login = demo_workspace["logins"]["executive"]  # type: ignore[index]
    first = browser.new_context()  # type: ignore[attr-defined]
    page = first.new_page()
    sign_in(page, server, login.username, login.password)
    page.wait_for_timeout(1_000)
    copied = [c for c in first.cookies() if c["name"] == "throughline_session"]
    assert copied, "the sign-in set no session cookie"

    replay_before = browser.new_context()  # type: ignore[attr-defined]
    replay_before.add_cookies(copied)
    early = replay_before.new_page()
    early.goto(server)
    early.get_by_text("Viewing as").first.wait_for(timeout=60_000)
    replay_before.close()

    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("textbox", name="Username").wait_for(timeout=60_000)
    first.close()

    replay_after = browser.new_context()  # type: ignore[attr-defined]
    replay_after.add_cookies(copied)
    late = replay_after.new_page()
    open_sign_in(late, server)
    assert late.get_by_text("Viewing as").count() == 0
    screenshot(late, "security-replayed-cookie-refused")
    replay_after.close()


def test_a_delivery_lead_cannot_reach_the_connection_or_mapping_editor(
    server: str, browser: object, demo_workspace: dict[str, object]
) -> None:
    login = demo_workspace["logins"]["delivery_lead"]  # type: ignore[index]
    context = browser.new_context(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
    page = context.new_page()
    sign_in(page, server, login.username, login.password)
    open_page(page, "Data")
    page.get_by_role("tab", name="Connect a database").click()
    wait_idle(page)
    page.get_by_text("An admin adds connections").first.wait_for(timeout=30_000)
    for label in ("SQLAlchemy URL (leave the password out)", "Password", "Query"):
        assert page.get_by_label(label, exact=True).count() == 0, label
    for button in ("Save connection", "Save mapping", "List tables", "Use the DevLake preset"):
        assert page.get_by_role("button", name=button).count() == 0, button
    screenshot(page, "security-lead-no-connection-editor")
    context.close()

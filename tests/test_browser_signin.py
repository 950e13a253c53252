"""In a real browser: each role signs in and sees its home page; a wrong password is refused."""

from __future__ import annotations

import pytest

from tests.browser import (
    open_sign_in,
    screenshot,
    sign_in,
    wait_idle,
)

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]


@pytest.mark.parametrize("role", ["executive", "delivery_lead", "team_lead", "admin"])
def test_each_role_signs_in_and_sees_its_home_page(
    server: str, browser: object, demo_workspace: dict[str, object], role: str
) -> None:
    login = demo_workspace["logins"][role]  # type: ignore[index]
    context = browser.new_context(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
    page = context.new_page()
    sign_in(page, server, login.username, login.password)
    landing = "Quarterly review" if role == "executive" else "Home"  # an executive lands on the quarter's answer
    assert page.get_by_role("heading", name=landing).first.is_visible()
    screenshot(page, f"home-{role}")
    context.close()


def test_a_wrong_password_is_refused(server: str, browser: object) -> None:
    context = browser.new_context()  # type: ignore[attr-defined]
    page = context.new_page()
    open_sign_in(page, server)
    page.get_by_role("textbox", name="Username").fill("exec")
    page.get_by_role("textbox", name="Password").fill("not the password at all")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("Username or password is incorrect.").wait_for(timeout=30_000)
    wait_idle(page)
    assert page.get_by_text("Viewing as").count() == 0
    context.close()

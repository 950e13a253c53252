"""In a real browser: a delivery lead opens Cost per feature, drills into one feature and sees its cost lines."""

from __future__ import annotations

import pytest

from tests.browser import open_page, screenshot, sign_in, wait_idle

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]


def test_a_delivery_lead_drills_into_a_features_cost(
    server: str, browser: object, demo_workspace: dict[str, object]
) -> None:
    login = demo_workspace["logins"]["delivery_lead"]  # type: ignore[index]
    context = browser.new_context(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
    page = context.new_page()
    sign_in(page, server, login.username, login.password)
    open_page(page, "Cost per feature", timeout=120_000)
    assert page.get_by_text("Attribution coverage").first.is_visible()
    assert page.get_by_text("Rules on:").first.is_visible()

    picker = page.locator(".st-key-cost-feature")
    picker.scroll_into_view_if_needed()
    picker.click()
    page.get_by_role("option").nth(1).click()
    wait_idle(page, timeout=120_000)
    screenshot(page, "cost-page-delivery-lead")
    page.get_by_text("One feature's cost").first.scroll_into_view_if_needed()
    page.get_by_text("by source:").first.wait_for(timeout=60_000)
    wait_idle(page, timeout=120_000)
    lines = page.get_by_text("grouped by source and by the link that attributed them").first
    lines.scroll_into_view_if_needed()
    assert lines.is_visible()
    screenshot(page, "cost-drill-down-delivery-lead")
    context.close()

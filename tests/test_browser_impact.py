"""In a real browser: a delivery lead opens the Impact verdicts page, picks a feature and sees its chart."""

from __future__ import annotations

import pytest

from tests.browser import open_page, screenshot, sign_in, wait_idle

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]


def test_a_delivery_lead_opens_a_verdict_and_sees_its_chart(
    server: str, browser: object, demo_workspace: dict[str, object]
) -> None:
    login = demo_workspace["logins"]["delivery_lead"]  # type: ignore[index]
    context = browser.new_context(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
    page = context.new_page()
    sign_in(page, server, login.username, login.password)

    open_page(page, "Impact verdicts")
    assert page.locator("[data-testid='stPlotlyChart']").count() == 0

    picker = page.locator(".st-key-impact-feature").get_by_role("combobox")
    picker.wait_for(timeout=90_000)
    picker.click()
    if picker.get_attribute("aria-expanded") != "true":
        picker.press("ArrowDown")
    option = page.get_by_role("option").filter(has_text="confirmed").first
    feature_id = option.inner_text().split(" · ")[0]
    option.click()
    wait_idle(page)

    chart = page.locator(".st-key-impact-chart [data-testid='stPlotlyChart']")
    chart.wait_for(state="visible", timeout=60_000)
    chart.scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    assert chart.is_visible()
    assert page.get_by_text(f"around {feature_id}'s delivery").first.is_visible()
    assert page.get_by_text("Fitted after delivery").first.is_visible()
    screenshot(page, "impact-verdict-delivery_lead")
    context.close()

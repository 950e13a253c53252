"""In a real browser: an executive explores cost by quarter and source, and sees a chart, a table and a CSV."""

from __future__ import annotations

import re

import pytest

from tests.browser import open_page, screenshot, sign_in, wait_idle

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

ACTIVITY_WORDS = re.compile(r"story point|pull request|\bPRs?\b|work item|lines changed|velocity", re.IGNORECASE)


def _pick(page: object, key: str, option: str) -> None:
    wait_idle(page, timeout=120_000)
    page.locator(f".st-key-{key}").get_by_role("combobox").click()  # type: ignore[attr-defined]
    page.get_by_role("option", name=option, exact=True).click(timeout=60_000)  # type: ignore[attr-defined]
    page.keyboard.press("Escape")  # type: ignore[attr-defined]
    page.wait_for_timeout(500)  # type: ignore[attr-defined]
    wait_idle(page, timeout=120_000)


def test_an_executive_explores_cost_by_quarter_and_source(
    server: str, browser: object, demo_workspace: dict[str, object]
) -> None:
    login = demo_workspace["logins"]["executive"]  # type: ignore[index]
    context = browser.new_context(viewport={"width": 1400, "height": 1100})  # type: ignore[attr-defined]
    page = context.new_page()
    sign_in(page, server, login.username, login.password)

    open_page(page, "Explore")
    _pick(page, "explore-dataset", "Cost")
    _pick(page, "explore-cost_lines-group_by", "Quarter incurred")
    _pick(page, "explore-cost_lines-group_by", "Source")

    chart = page.locator(".st-key-explore-figure [data-testid='stPlotlyChart']")
    chart.wait_for(state="visible", timeout=120_000)
    assert page.get_by_text("How is this computed?").first.is_visible()
    assert page.get_by_role("button", name="Download CSV").is_visible()
    body = page.locator("[data-testid='stMain']").inner_text()
    assert "Sum of cost" in body
    assert not ACTIVITY_WORDS.search(body), ACTIVITY_WORDS.search(body)
    screenshot(page, "explore-executive-cost")
    context.close()

"""In a real browser: a delivery lead opens Cost per feature, drills into one feature and sees its cost lines."""

from __future__ import annotations

from pathlib import Path

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


def test_the_trend_downloads_are_built_when_clicked(
    server: str, browser: object, demo_workspace: dict[str, object]
) -> None:
    """The CSV and HTML report are made on the click (not on every rerun), and arrive whole."""
    login = demo_workspace["logins"]["delivery_lead"]  # type: ignore[index]
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)  # type: ignore[attr-defined]
    page = context.new_page()
    sign_in(page, server, login.username, login.password)
    open_page(page, "Cost per feature", timeout=120_000)
    csv = _download(page, "Download trend (CSV)")
    assert csv.suggested_filename == "cost-per-feature-trend.csv"
    rows = Path(csv.path()).read_text(encoding="utf-8").splitlines()
    assert rows[0].startswith("quarter,quarter_start,team_id,source,delivered_features,cost,") and len(rows) > 10
    report = _download(page, "Download report (HTML)")
    html = Path(report.path()).read_text(encoding="utf-8")
    assert report.suggested_filename == "cost-per-feature-trend.html"
    assert "Mean cost per delivered feature" in html and "</html>" in html
    assert "By source (all teams)" in html

    # With one team chosen, the report charts that team's sources, named as the page names them.
    wait_idle(page, timeout=120_000)
    team_box = page.locator(".st-key-cost-team").get_by_role("combobox")
    team_box.scroll_into_view_if_needed()
    team_box.click()
    option = page.get_by_role("option").nth(1)
    team_name = option.inner_text().strip()
    option.click()
    wait_idle(page, timeout=120_000)
    html = Path(_download(page, "Download report (HTML)").path()).read_text(encoding="utf-8")
    assert f"By source ({team_name})" in html
    assert f"<td>{team_name}</td>" in html and "AI agents / LLM" in html
    context.close()


def _download(page: object, label: str) -> object:
    """Click a download button once the page has settled; the file it gives.

    The button's file is made on the click, under an id the latest script run gave it. A click that
    lands while a rerun is replacing that id (the sign-in cookie's rerun, say) gets nothing, as it
    would for a person; like a person, click again (at most three times).
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    button = page.get_by_role("button", name=label)  # type: ignore[attr-defined]
    for attempt in range(3):
        wait_idle(page, timeout=120_000)
        button.scroll_into_view_if_needed()
        try:
            with page.expect_download(timeout=20_000 if attempt < 2 else 60_000) as download:  # type: ignore[attr-defined]
                button.click()
            return download.value
        except PlaywrightTimeout:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")

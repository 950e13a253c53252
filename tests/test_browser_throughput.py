"""In a real browser: a delivery lead opens the value throughput page and hovers a week on the chart."""

from __future__ import annotations

import pytest

from tests.browser import open_page, screenshot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]


def test_a_delivery_lead_hovers_a_week_and_reads_its_label(
    server: str, browser: object, demo_workspace: dict[str, object]
) -> None:
    login = demo_workspace["logins"]["delivery_lead"]  # type: ignore[index]
    context = browser.new_context(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
    page = context.new_page()
    sign_in(page, server, login.username, login.password)
    open_page(page, "Value throughput")
    chart = page.locator(".st-key-throughput-counts .js-plotly-plot").first
    chart.wait_for(timeout=60_000)
    chart.scroll_into_view_if_needed()
    plot = chart.locator(".nsewdrag").first.bounding_box()
    assert plot is not None
    page.mouse.move(plot["x"] + plot["width"] * 0.55, plot["y"] + plot["height"] * 0.8)
    label = chart.locator(".hoverlayer")
    page.wait_for_function("(el) => el.textContent.includes('Week of')", arg=label.element_handle(), timeout=10_000)
    text = label.text_content() or ""
    assert "Week of" in text
    assert "delivered" in text and "confirmed" in text
    assert "PRs merged" not in text, "a delivery lead sees output and outcome, not activity"
    screenshot(page, "throughput-hover-delivery_lead")
    context.close()

"""In a real browser: an executive signs in, lands on the quarterly review, and forwards its report.

The figures on the page are asserted equal to ``python -m core report quarterly --format csv`` for the same
quarter, and the downloaded report, opened offline at a phone's width, is the screenshot in the docs.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from core import formatting
from tests.browser import ARTIFACTS, ROOT, screenshot, sign_in, wait_idle

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

ACTIVITY_WORDS = re.compile(r"\bPRs?\b|pull request|merged|commit|story point", re.IGNORECASE)


def _csv_figures(home: Path, period: str) -> dict[str, float | None]:
    env = os.environ | {"THROUGHLINE_HOME": str(home)}
    env.pop("THROUGHLINE_DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "core", "report", "quarterly", "--period", period, "--format", "csv", "--as", "exec"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    figures = pl.read_csv(io.StringIO(done.stdout))
    return dict(zip(figures["figure"], figures["value"], strict=True))


def _download(page: object, label: str) -> object:
    """Click a download button (again, at most three times, if a rerun swallowed the click); the file it gives."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    button = page.get_by_role("button", name=label)  # type: ignore[attr-defined]
    for attempt in range(3):
        wait_idle(page, timeout=120_000)
        button.scroll_into_view_if_needed()
        try:
            with page.expect_download(timeout=30_000) as download:  # type: ignore[attr-defined]
                button.click()
            return download.value
        except PlaywrightTimeout:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def test_an_executive_answers_the_quarter_and_forwards_the_report(
    server: str, browser: object, demo_workspace: dict[str, object]
) -> None:
    login = demo_workspace["logins"]["executive"]  # type: ignore[index]
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)  # type: ignore[attr-defined]
    page = context.new_page()
    sign_in(page, server, login.username, login.password)
    page.get_by_role("heading", name="Quarterly review").first.wait_for(timeout=120_000)  # the landing page
    wait_idle(page, timeout=120_000)

    body = page.locator("[data-testid='stMain']").inner_text()
    headline = re.search(r"In (\d{4}Q[1-4]), the organisation delivered", body)
    assert headline, body[:500]
    period = headline.group(1)
    expected = _csv_figures(Path(demo_workspace["home"]), period)  # type: ignore[arg-type]
    labels = [t.strip() for t in page.locator("[data-testid='stMetricLabel']").all_inner_texts()]
    values = [t.strip() for t in page.locator("[data-testid='stMetricValue']").all_inner_texts()]
    shown = dict(zip(labels, values, strict=True))
    assert shown["Features delivered"] == f"{expected['delivered']:.0f}"
    assert shown["Confirmed"] == f"{expected['confirmed']:.0f}"
    assert shown["Median cost per delivered feature"] == formatting.money_compact(expected["median_cost"], "USD")
    assert shown["Mean cost per delivered feature"] == formatting.money_compact(expected["mean_cost"], "USD")
    assert shown["Spend linked to no feature"] == formatting.percent(expected["unlinked_share"])
    assert f"delivered {formatting.count(int(expected['delivered']), 'feature')}" in body
    assert not ACTIVITY_WORDS.search(body), ACTIVITY_WORDS.search(body)
    screenshot(page, "quarterly-review-executive")

    report = _download(page, "Report (HTML)")
    assert report.suggested_filename == f"quarterly-review-{period}.html"  # type: ignore[attr-defined]
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / report.suggested_filename  # type: ignore[attr-defined]
    report.save_as(path)  # type: ignore[attr-defined]  # kept: the download goes when its context closes
    html = path.read_text(encoding="utf-8")
    assert len(html.encode()) < 1_000_000 and "<script" not in html
    assert formatting.money(expected["median_cost"], "USD") in html
    context.close()

    phone = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, offline=True)  # type: ignore[attr-defined]
    opened = phone.new_page()
    opened.goto(path.as_uri())
    opened.get_by_role("heading", name=f"Quarterly review {period}").first.wait_for(timeout=30_000)
    assert opened.evaluate("document.documentElement.scrollWidth") <= 390  # nothing runs off a phone's screen
    opened.screenshot(path=str(ROOT / "docs" / "quarterly-report.png"), full_page=True)
    phone.close()

"""Exports users open elsewhere: CSV cells a spreadsheet would run are neutralised; the report stands alone."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import datetime

import plotly.io as pio
import polars as pl
import pytest

from core.cli.export import REPORT_TEMPLATE, neutralise_formulas, quarterly_trend_html, to_safe_csv
from core.costs import ALL, trend_verdicts

RISKY = ['=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)", "\tcmd", "\r=1"]


def test_every_formula_prefix_is_neutralised_in_every_string_column() -> None:
    frame = pl.DataFrame(
        {
            "title": [*RISKY, "plain", None],
            "team": pl.Series(["=T1", "T2", "T3", "T4", "T5", "T6", "T7", "T8"], dtype=pl.Categorical),
            "amount": [-1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0],
        }
    )
    safe = neutralise_formulas(frame)
    assert safe["title"].to_list() == [*("'" + v for v in RISKY), "plain", None]
    assert safe["team"].to_list()[:2] == ["'=T1", "T2"]
    assert safe["amount"].to_list() == frame["amount"].to_list()


def test_lazy_frames_are_neutralised_too() -> None:
    lazy = pl.LazyFrame({"name": ["@me", "you"]})
    assert neutralise_formulas(lazy).collect()["name"].to_list() == ["'@me", "you"]


def test_csv_text_reads_back_with_no_cell_starting_a_formula() -> None:
    text = to_safe_csv(pl.DataFrame({"title": RISKY, "n": list(range(len(RISKY)))}))
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["title", "n"]
    assert all(not row[0].startswith(("=", "+", "-", "@", "\t", "\r")) for row in rows[1:])
    assert [row[0] for row in rows[1:]] == ["'" + v for v in RISKY]


def test_html_report_is_self_contained_and_escapes_names() -> None:
    trend = pl.DataFrame(
        {
            "quarter": ["2025Q3", "2025Q4", "2026Q1", "2026Q2"] * 2,
            "quarter_start": [datetime(2025, 7, 1), datetime(2025, 10, 1), datetime(2026, 1, 1), datetime(2026, 4, 1)]
            * 2,
            "team_id": ["<script>alert(1)</script>"] * 4 + [ALL] * 4,
            "source": [ALL] * 4 + ["llm"] * 4,
            "delivered_features": [2, 3, 4, 5] * 2,
            "cost": [2000.0, 2400.0, 2400.0, 2000.0] * 2,
            "cost_per_delivered_feature": [1000.0, 800.0, 600.0, 400.0] * 2,
            "previous_quarter": [None, "2025Q3", "2025Q4", "2026Q1"] * 2,
            "pct_change": [None, -20.0, -25.0, -33.3] * 2,
        }
    )
    report = quarterly_trend_html(trend, trend_verdicts(trend), rules_on="1. explicit feature on the event")
    assert report.startswith("<!DOCTYPE html>")
    assert "<script src=" not in report
    assert "Plotly" in report and "declining" in report and "Kendall" in report
    assert "<script>alert(1)</script>" not in report.split("<table>", 1)[1]


def _two_team_trend() -> pl.DataFrame:
    quarters = ["2026Q1", "2026Q2"]
    starts = [datetime(2026, 1, 1), datetime(2026, 4, 1)]
    rows = [
        # team, source, cost per delivered feature in Q1 and Q2
        ("pay", ALL, 300.0, 200.0),
        ("pay", "llm", 100.0, 50.0),
        ("pay", "ci", 200.0, 150.0),
        ("web", ALL, 500.0, 700.0),
        ("web", "review", 500.0, 700.0),
        (ALL, ALL, 400.0, 450.0),
        (ALL, "llm", 50.0, 25.0),
        (ALL, "ci", 100.0, 75.0),
        (ALL, "review", 250.0, 350.0),
    ]
    return pl.DataFrame(
        [
            {
                "quarter": quarter,
                "quarter_start": start,
                "team_id": team,
                "source": source,
                "delivered_features": 2,
                "cost": 2 * value,
                "cost_per_delivered_feature": value,
                "previous_quarter": None,
                "pct_change": None,
            }
            for team, source, *values in rows
            for quarter, start, value in zip(quarters, starts, values, strict=True)
        ]
    )


def _chart_traces(report: str) -> list[list[str]]:
    """The trace names of each chart in the report, chart by chart."""
    charts = re.findall(r"Plotly\.newPlot\(\s*\"[^\"]+\",\s*(\[.*?\]),\s*\{", report, flags=re.S)
    return [[trace["name"] for trace in json.loads(chart)] for chart in charts]


def test_the_report_names_teams_and_sources_as_the_page_does_and_charts_the_chosen_team() -> None:
    trend = _two_team_trend()
    report = quarterly_trend_html(
        trend, trend_verdicts(trend, min_quarters=2), team="pay", team_names={"pay": "Payments", "web": "Web"}
    )
    teams, sources = _chart_traces(report)
    assert sorted(teams) == ["Payments", "Web", "all teams"]
    assert sorted(sources) == ["AI agents / LLM", "CI"]  # the chosen team's sources only: not Web's review
    assert "By source (Payments)" in report
    figures = report.split("<h2>Quarterly figures</h2>", 1)[1]
    assert "<td>Payments</td><td>AI agents / LLM</td>" in figures
    assert "<td>all teams</td><td>all sources</td>" in figures
    assert "<td>pay</td>" not in figures and "<td>llm</td>" not in figures


def test_the_report_for_all_teams_charts_every_teams_sources() -> None:
    trend = _two_team_trend()
    _, sources = _chart_traces(quarterly_trend_html(trend, trend_verdicts(trend, min_quarters=2)))
    assert sorted(sources) == ["AI agents / LLM", "CI", "Code review"]


def test_the_reports_charts_keep_their_colours_outside_the_app(monkeypatch: pytest.MonkeyPatch) -> None:
    """In the app plotly's default template is Streamlit's, whose colours only its front end fills in."""
    from streamlit.elements.lib.streamlit_plotly_theme import configure_streamlit_plotly_theme

    configure_streamlit_plotly_theme()
    monkeypatch.setattr(pio.templates, "default", "streamlit")
    assert pio.templates["streamlit"].layout.colorway[0] == "#000001"  # the placeholder a file would draw
    trend = _two_team_trend()
    report = quarterly_trend_html(trend, trend_verdicts(trend, min_quarters=2), team="pay")
    layouts = re.findall(r"Plotly\.newPlot\(\s*\"[^\"]+\",\s*\[.*?\],\s*(\{.*?\}),\s*\{\"responsive\"", report, re.S)
    assert len(layouts) == 2
    for layout in layouts:
        colorway = json.loads(layout)["template"]["layout"]["colorway"]
        assert colorway == list(pio.templates[REPORT_TEMPLATE].layout.colorway)
        assert not any(colour.startswith("#00000") for colour in colorway)


def test_formula_characters_after_white_space_or_full_width_are_neutralised() -> None:
    hidden = [
        " =1+1",
        "\t@SUM(A1)",
        "\n+1",
        "\r\n-2",
        "  \u3000=X",
        "\uff1dHYPERLINK(1)",
        "\uff0b1",
        "\uff0d1",
        "\uff20A",
    ]
    harmless = ["a =1", "plain", " text", "1-2", "x\uff1d"]
    safe = neutralise_formulas(pl.DataFrame({"title": [*hidden, *harmless]}))
    assert safe["title"].to_list() == [*("'" + v for v in hidden), *harmless]

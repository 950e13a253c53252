"""Exports users open elsewhere: CSV cells a spreadsheet would run are neutralised; the report stands alone."""

from __future__ import annotations

import csv
import io
from datetime import datetime

import polars as pl

from core.costs import ALL, trend_verdicts
from core.export import neutralise_formulas, quarterly_trend_html, to_safe_csv

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

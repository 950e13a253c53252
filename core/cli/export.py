"""Downloads: CSV that is safe to open in a spreadsheet, and a self-contained HTML cost-trend report.

A cell that begins with ``=``, ``+``, ``-`` or ``@`` (or a tab or carriage return) is read as a
formula by Excel, LibreOffice and Google Sheets, and so is one where those characters, or their
full-width forms ``＝ ＋ － ＠``, follow leading spaces, tabs or line breaks; every such string
cell is prefixed with a single quote so it is shown as text instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import TypeVar

import plotly.graph_objects as go
import plotly.io as pio
import polars as pl
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from core.costs import ALL, SOURCE_LABELS

FORMULA_PREFIXES: tuple[str, ...] = ("=", "+", "-", "@", "\t", "\r")
"""Leading characters that make a spreadsheet evaluate a cell."""

FORMULA_PATTERN = r"^[\s\u3000]*[=+\-@\uff1d\uff0b\uff0d\uff20]"
"""A formula character, half- or full-width, after any leading white space (a spreadsheet trims it)."""

Frame = TypeVar("Frame", pl.DataFrame, pl.LazyFrame)


def neutralise_formulas(frame: Frame) -> Frame:
    """``frame`` with every string cell that a spreadsheet would evaluate prefixed by ``'``.

    String, categorical and enum columns are checked (the latter two come back as strings);
    other columns are left as they are.
    """
    schema = frame.collect_schema()
    textual = [name for name, dtype in schema.items() if dtype in (pl.String, pl.Categorical) or dtype == pl.Enum]
    return frame.with_columns(neutralised_text(pl.col(name).cast(pl.String)).alias(name) for name in textual)


def neutralised_text(text: pl.Expr) -> pl.Expr:
    """``text`` with a ``'`` in front of values that begin with a formula character."""
    risky = pl.any_horizontal(
        [*(text.str.starts_with(prefix) for prefix in FORMULA_PREFIXES), text.str.contains(FORMULA_PATTERN)]
    )
    return pl.when(risky).then(pl.concat_str(pl.lit("'"), text)).otherwise(text)


def to_safe_csv(frame: pl.DataFrame) -> str:
    """``frame`` as CSV text with formula-like cells neutralised."""
    return neutralise_formulas(frame).write_csv()


def team_trend_figure(
    by_team: pl.DataFrame, currency: str, team_names: Mapping[str, str], title: str | None = None
) -> go.Figure:
    """Mean cost per delivered feature per quarter: one line per team and one for all teams.

    ``by_team`` holds a ``quarterly_cost_trend``'s all-sources rows (``source == ALL``), by quarter.
    """
    return go.Figure(
        [
            go.Scatter(
                x=rows["quarter"].to_list(),
                y=rows["cost_per_delivered_feature"].to_list(),
                customdata=rows.select("delivered_features", "cost", "pct_change").rows(),
                name=team_label(str(team), team_names),
                mode="lines+markers",
                hovertemplate="%{x}: %{y:,.0f} "
                + currency
                + " mean per delivered feature<br>%{customdata[1]:,.0f} attributed to "
                "%{customdata[0]} features delivered"
                "<br>%{customdata[2]:+.1f}% on the quarter before<extra>%{fullData.name}</extra>",
            )
            for (team,), rows in by_team.group_by(["team_id"], maintain_order=True)
        ],
        layout=_trend_layout(currency, title),
    )


def source_trend_figure(by_source: pl.DataFrame, currency: str, title: str | None = None) -> go.Figure:
    """Cost per delivered feature per quarter, stacked by source.

    ``by_source`` holds one team's (or all teams') per-source rows of a ``quarterly_cost_trend``, by quarter.
    """
    return go.Figure(
        [
            go.Bar(
                x=rows["quarter"].to_list(),
                y=rows["cost_per_delivered_feature"].to_list(),
                name=SOURCE_LABELS.get(str(source), str(source)),
                hovertemplate="%{x}: %{y:,.0f} "
                + currency
                + " per delivered feature from %{fullData.name}<extra></extra>",
            )
            for (source,), rows in by_source.group_by(["source"], maintain_order=True)
        ],
        layout={**_trend_layout(currency, title), "barmode": "stack"},
    )


def _trend_layout(currency: str, title: str | None) -> dict[str, object]:
    layout: dict[str, object] = {
        "yaxis_title": f"mean {currency} per delivered feature",
        "height": 380,
        "margin": {"t": 30 if title is None else 60},
    }
    return layout if title is None else {**layout, "title": title}


def quarterly_trend_html(
    trend: pl.DataFrame,
    verdicts: pl.DataFrame,
    *,
    team: str = ALL,
    team_names: Mapping[str, str] | None = None,
    title: str = "Mean cost per delivered feature, quarter over quarter",
    currency: str = "USD",
    rules_on: str = "",
    generated_at: datetime | None = None,
) -> str:
    """A self-contained HTML report (charts with plotly.js inline, from ``templates/cost_trend.html.j2``) of the trend.

    ``trend`` is a collected ``quarterly_cost_trend``; ``verdicts`` its ``trend_verdicts``. The
    charts are the Cost page's: every team's line, and the sources of ``team`` (``ALL``: every
    team). Teams are named by ``team_names`` and sources by ``SOURCE_LABELS``, as on the page.
    """
    names = dict(team_names or {})
    scope = team_label(team, names)
    by_team = trend.filter(pl.col("source") == ALL).sort("quarter_start")
    by_source = trend.filter((pl.col("team_id") == team) & (pl.col("source") != ALL)).sort("quarter_start")
    charts = [
        _standalone(team_trend_figure(by_team, currency, names, title="By team (all sources)"), with_plotlyjs=True),
        _standalone(source_trend_figure(by_source, currency, title=f"By source ({scope})"), with_plotlyjs=False),
    ]
    method = verdicts["method"][0] if verdicts.height else ""
    stamp = (generated_at or datetime.now()).strftime("%Y-%m-%d %H:%M")
    verdict_columns = [
        "team",
        "source",
        "quarters",
        "first_quarter",
        "last_quarter",
        "change_pct",
        "tau",
        "p_declining",
        "verdict",
    ]
    trend_columns = [
        "quarter",
        "team",
        "source",
        "delivered_features",
        "cost",
        "cost_per_delivered_feature",
        "pct_change",
    ]
    figures = _labelled(trend.sort("team_id", "source", "quarter_start"), names)
    verdict_rows = _labelled(verdicts, names)
    return _TEMPLATES.get_template("cost_trend.html.j2").render(
        title=title,
        generated=stamp,
        currency=currency,
        rules_on=rules_on,
        method=method,
        charts=charts,
        verdict_columns=[c for c in verdict_columns if c in verdict_rows.columns],
        verdict_rows=verdict_rows.select(c for c in verdict_columns if c in verdict_rows.columns).rows(),
        trend_columns=[c for c in trend_columns if c in figures.columns],
        figure_rows=figures.select(c for c in trend_columns if c in figures.columns).rows(),
    )


_TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html", "html.j2"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
"""The report templates, HTML-escaped: a team or feature name is text, never markup."""


REPORT_TEMPLATE = "plotly_white"
"""The plotly template of a chart in a downloaded report.

Inside the app plotly's default template is Streamlit's, whose colours are placeholders the app's
front end swaps for its theme; a file opened elsewhere would draw every trace in them (near black).
"""


def _standalone(figure: go.Figure, *, with_plotlyjs: bool) -> str:
    """``figure`` as an HTML fragment that draws the same wherever the file is opened."""
    figure.update_layout(template=REPORT_TEMPLATE)
    return pio.to_html(figure, full_html=False, include_plotlyjs=with_plotlyjs)


def team_label(team: str, team_names: Mapping[str, str]) -> str:
    """How a team (or ``ALL``) is named on the Cost page and in its report."""
    return "all teams" if team == ALL else team_names.get(team, team)


def _labelled(frame: pl.DataFrame, team_names: Mapping[str, str]) -> pl.DataFrame:
    """``frame`` with ``team`` (the team's name) and ``source`` (its label) as the page shows them."""
    team = pl.col("team_id")
    return frame.with_columns(
        pl.when(team == ALL)
        .then(pl.lit("all teams"))
        .otherwise(team.replace_strict(dict(team_names), default=team, return_dtype=pl.String))
        .alias("team"),
        pl.when(pl.col("source") == ALL)
        .then(pl.lit("all sources"))
        .otherwise(pl.col("source").replace_strict(SOURCE_LABELS, default=pl.col("source"), return_dtype=pl.String))
        .alias("source"),
    )

"""The quarterly review as a file a leader forwards: HTML (self-contained, charts as inline SVG), Markdown or CSV.

Every figure comes from one ``core.overview.QuarterlyAnswer``, the one the quarterly page shows, so the
page, ``python -m core report quarterly`` and the downloaded file agree by construction. Charts are drawn
as inline SVG from the templates in ``templates/``: plotly.js inline would make the file several
megabytes, and a file with scripts may not open from a mail attachment at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import polars as pl
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from core import formatting
from core.cli.export import neutralise_formulas
from core.overview import NO_HYPOTHESIS, QuarterlyAnswer

FORMATS = ("html", "md", "csv")
"""The formats of the quarterly report."""

MEDIA_TYPES = {"html": "text/html", "md": "text/markdown", "csv": "text/csv"}

VERDICT_COLOURS = {
    "confirmed": "#1a7f37",
    "refuted": "#cf222e",
    "inconclusive": "#9a6700",
    "confounded": "#8250df",
    "pending": "#57606a",
    NO_HYPOTHESIS: "#afb8c1",
}
"""The colour of each verdict in the charts and table (colour-blind readers also get the word)."""

TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html", "html.j2"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
TEMPLATES.filters["money"] = formatting.money
TEMPLATES.filters["percent"] = formatting.percent
TEMPLATES.filters["change"] = formatting.change
TEMPLATES.filters["number"] = formatting.number
TEMPLATES.filters["md_cell"] = lambda text: str(text).replace("|", "\\|").replace("\n", " ")


def quarterly_report(answer: QuarterlyAnswer, fmt: str, generated_at: datetime | None = None) -> str:
    """The quarterly review of ``answer`` as ``fmt`` (``html``, ``md`` or ``csv``)."""
    if fmt == "csv":
        return neutralise_formulas(answer.figures()).write_csv()
    if fmt not in FORMATS:
        raise ValueError(f"`{fmt}` is not a quarterly report format; choose one of {', '.join(FORMATS)}")
    stamp = (generated_at or datetime.now()).strftime("%d %b %Y %H:%M")
    template = TEMPLATES.get_template("quarterly.html.j2" if fmt == "html" else "quarterly.md.j2")
    return template.render(
        answer=answer,
        sentences=answer.sentences(),
        trend_sentence=answer.trend_sentence(),
        features=answer.features.to_dicts(),
        moved=answer.moved.to_dicts(),
        trend=answer.trend.to_dicts(),
        statistics=answer.trend_statistics.to_dicts(),
        charts=[] if fmt != "html" else _charts(answer),
        colours=VERDICT_COLOURS,
        generated=stamp,
    )


def report_file_name(answer: QuarterlyAnswer, fmt: str) -> str:
    """``quarterly-review-2026Q3.html`` (with the team for a team's review)."""
    team = f"-{answer.team_id}" if answer.team_id else ""
    return f"quarterly-review-{answer.period.label}{team}.{fmt}"


@dataclass(frozen=True)
class Bar:
    """One bar of an SVG bar chart, placed in the chart's own coordinates."""

    label: str
    value_text: str
    x: float
    y: float
    width: float
    height: float
    colour: str


@dataclass(frozen=True)
class Chart:
    """An inline SVG chart: a title, what it shows, its size and its marks."""

    title: str
    caption: str
    width: int
    height: int
    bars: tuple[Bar, ...] = ()
    lines: tuple[tuple[str, str, str], ...] = ()
    """(name, SVG points, colour) of each line."""
    points: tuple[tuple[float, float, str], ...] = ()
    """(x, y, hover text) of each marker."""
    ticks: tuple[tuple[float, str], ...] = ()
    """(x, label) of each category tick on a line chart."""
    zero: float | None = None
    """The x of the zero line of a diverging bar chart."""


_WIDTH, _LABEL_WIDTH, _ROW, _VALUE_WIDTH = 640, 220, 30, 190


def _charts(answer: QuarterlyAnswer) -> list[Chart]:
    charts = [_feature_costs(answer)]
    if answer.trend.height >= 2:
        charts.append(_cost_trend(answer))
    if answer.metrics.height:
        charts.append(_metric_changes(answer))
    return charts


def _feature_costs(answer: QuarterlyAnswer) -> Chart:
    rows = answer.features.head(20)
    top = max([r for r in rows["cost"].to_list() if r] or [1.0])
    span = _WIDTH - _LABEL_WIDTH - _VALUE_WIDTH
    bars = tuple(
        Bar(
            label=_short(row["name"]),
            value_text=f"{formatting.money(row['cost'], answer.currency)} · {row['verdict']}",
            x=_LABEL_WIDTH,
            y=10 + i * _ROW,
            width=max(1.0, span * (row["cost"] or 0) / top),
            height=_ROW - 8,
            colour=VERDICT_COLOURS.get(row["verdict"], "#57606a"),
        )
        for i, row in enumerate(rows.iter_rows(named=True))
    )
    cut = f" (the 20 costliest of {answer.features.height})" if answer.features.height > 20 else ""
    return Chart(
        title="Cost of each delivered feature, coloured by verdict",
        caption=f"Every cost attributed to the feature up to the end of {answer.period.label}{cut}.",
        width=_WIDTH,
        height=20 + len(bars) * _ROW,
        bars=bars,
    )


def _cost_trend(answer: QuarterlyAnswer) -> Chart:
    trend = answer.trend
    height, left, right, top, bottom = 260, 40, 40, 20, 40
    values = [v for v in [*trend["median_cost"].to_list(), *trend["mean_cost"].to_list()] if v is not None]
    peak = max(values or [1.0]) * 1.1
    step = (_WIDTH - left - right) / max(1, trend.height - 1)

    def place(i: int, value: float) -> tuple[float, float]:
        return left + i * step, top + (height - top - bottom) * (1 - value / peak)

    lines, points = [], []
    for name, column, colour in (("median", "median_cost", "#0969da"), ("mean", "mean_cost", "#bc4c00")):
        placed = [(place(i, v), q, v) for i, (q, v) in enumerate(zip(trend["quarter"], trend[column], strict=True))]
        lines.append((name, " ".join(f"{x:.1f},{y:.1f}" for (x, y), _, _ in placed), colour))
        points += [
            (x, y, f"{q}: {name} cost per delivered feature {formatting.money(v, answer.currency)}")
            for (x, y), q, v in placed
        ]
    return Chart(
        title="Median and mean cost per delivered feature, by quarter",
        caption="Blue: median; orange: mean. Each quarter counts the features delivered in it.",
        width=_WIDTH,
        height=height,
        lines=tuple(lines),
        points=tuple(points),
        ticks=tuple((left + i * step, q) for i, q in enumerate(trend["quarter"])),
    )


def _metric_changes(answer: QuarterlyAnswer) -> Chart:
    rows = answer.metrics.filter(pl.col("change_pct").is_not_null())
    reach = max([abs(v) for v in rows["change_pct"].to_list()] or [0.01]) or 0.01
    half = (_WIDTH - _LABEL_WIDTH - _VALUE_WIDTH) / 2
    zero = _LABEL_WIDTH + half
    bars = []
    for i, row in enumerate(rows.iter_rows(named=True)):
        length = half * abs(row["change_pct"]) / reach
        bars.append(
            Bar(
                label=_short(row["name"]),
                value_text=f"{formatting.change(row['change_pct'], digits=1)} ("
                + ("better" if row["better"] else "worse")
                + ")",
                x=zero if row["change_pct"] >= 0 else zero - length,
                y=10 + i * _ROW,
                width=max(1.0, length),
                height=_ROW - 8,
                colour="#1a7f37" if row["better"] else "#cf222e",
            )
        )
    return Chart(
        title=f"Outcome metrics, {answer.period.label} against {answer.previous.label}",
        caption="Change in each metric's quarter mean; green is better in the metric's own direction.",
        width=_WIDTH,
        height=20 + len(bars) * _ROW,
        bars=tuple(bars),
        zero=zero,
    )


def _short(text: str, limit: int = 24) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"

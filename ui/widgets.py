"""Page furniture shared by every page: headers with the 'how is this computed' note, tables, downloads."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from functools import partial
from typing import TYPE_CHECKING, ParamSpec

import polars as pl
import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from core.access import Viewer
from core.cli.export import to_safe_csv
from core.users import ROLE_LABELS

if TYPE_CHECKING:
    import plotly.graph_objects as go

P = ParamSpec("P")

MAX_TABLE_ROWS = 2_000
PAGE_ROWS = 250
"""A longer table is sent a page of this many rows at a time, the reader choosing the page.

Streamlit's lazy delivery sends the first 1,000 rows of any table (its page size) and every table of
up to 1,000 rows whole, so it cut nothing for the tables a page shows; a reader sees a screenful.
"""
_MARKDOWN_SPECIALS = frozenset("\\`*_{}[]()<>#+-.!|~:$&=^\"'")


def plain(text: object) -> str:
    """``text`` (a name from imported data) escaped so Markdown shows it literally: no image, link or HTML."""
    shown = " ".join(str(text).split())
    return "".join(f"\\{ch}" if ch in _MARKDOWN_SPECIALS else ch for ch in shown)


def figure_builder(build: Callable[P, go.Figure]) -> Callable[P, go.Figure]:
    """Decorate a page's figure builder: each figure is built once per distinct arguments and then shared.

    A page script runs top to bottom on every click, and plotly validates every property a figure is
    given, which costs more than the rest of a rerun. A builder takes everything it draws as arguments
    (``tests/test_page_caches.py`` fails if it reads page state instead, which would serve a stale chart
    or another viewer's); st.plotly_chart only reads the figure, so one object serves every session.
    """
    return st.cache_resource(max_entries=64, show_spinner=False)(build)


def page_header(title: str, caption: str, viewer: Viewer) -> None:
    """The page title, what the page answers, and whose view it is."""
    st.title(title)
    scope = ROLE_LABELS.get(viewer.role, viewer.role)
    if viewer.team_id:
        scope += f" · team {viewer.team_id}"
    st.caption(f"{caption}  \nViewing as **{plain(viewer.name)}** ({plain(scope)}).")


def table(frame: pl.DataFrame, key: str, caption: str | None = None, **column_config: object) -> None:
    """A table of at most ``MAX_TABLE_ROWS`` rows, saying so when it was cut; ``PAGE_ROWS`` at a time."""
    shown = frame.head(MAX_TABLE_ROWS)
    if shown.height > PAGE_ROWS:
        # Every rerun would otherwise send all its rows (DORA's per-PR and mapping tables were most of its
        # 0.5 MB per rerun); a fragment, so turning the page redraws only the table.
        _paged_table(shown, key, column_config)
    else:
        _draw(shown, key, column_config)
    if frame.height > MAX_TABLE_ROWS:
        st.caption(f"Showing the first {MAX_TABLE_ROWS:,} of {frame.height:,} rows; download for all.")
        st.download_button(
            "Download all rows (CSV)",
            data=partial(to_safe_csv, frame),  # built on the click, not on every rerun
            file_name=f"{key.replace('.', '-')}.csv",
            mime="text/csv",
            key=f"{key}.download",
        )
    if caption:
        st.caption(caption)


def _draw(shown: pl.DataFrame, key: str, column_config: dict[str, object]) -> None:
    # As Arrow: Streamlit serialises an Arrow table as it is, where a Polars frame takes a detour through pandas.
    st.dataframe(shown.to_arrow(), key=key, hide_index=True, column_config=column_config or None)


def _show_page(shown: pl.DataFrame, key: str, column_config: dict[str, object]) -> None:
    """``shown`` one page of ``PAGE_ROWS`` rows at a time, with the page to show chosen above it."""
    pages = -(-shown.height // PAGE_ROWS)
    page = st.selectbox(
        f"Rows ({shown.height:,} in all)",
        range(pages),
        format_func=lambda p: f"{p * PAGE_ROWS + 1:,}–{min((p + 1) * PAGE_ROWS, shown.height):,}",
        key=f"{key}.page",
        width=240,
    )
    _draw(shown.slice((page or 0) * PAGE_ROWS, PAGE_ROWS), key, column_config)


_paged_table = st.fragment(_show_page)
"""``_show_page`` as a fragment: turning the page reruns only the table."""


def team_labels(frame: pl.LazyFrame) -> dict[str, str]:
    """Team id -> name, sorted by name, from the teams frame."""
    teams = frame.select("team_id", "name").sort("name").collect()
    return dict(zip(teams["team_id"], teams["name"], strict=True))


def scope_and_range(
    page: str,
    names: dict[str, str],
    span: tuple[date, date],
    viewer: Viewer,
    scope_column: DeltaGenerator,
    range_column: DeltaGenerator,
) -> tuple[str | None, date, date]:
    """The organisation-or-team picker (a team lead starts on their team) and the date range within ``span``."""
    scopes: list[str | None] = [None, *names]
    team_id = scope_column.selectbox(
        "Scope",
        scopes,
        index=scopes.index(viewer.team_id) if viewer.team_id in scopes else 0,
        format_func=lambda t: "Whole organisation" if t is None else names[t],
        key=f"{page}.team",
    )
    first_day, last_day = span
    picked = range_column.date_input(
        "From – to", value=(first_day, last_day), min_value=first_day, max_value=last_day, key=f"{page}.range"
    )
    start, end = picked if len(picked) == 2 else (picked[0], last_day)
    return team_id, start, end

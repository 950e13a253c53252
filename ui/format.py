"""Formatting on screen: the words of ``core.formatting`` plus the Streamlit pieces (labels, dashes with reasons).

Pages format every figure through here, so money carries its currency, shares never read ``-0%``, durations
carry their unit and a missing value is an em dash whose reason is shown on hover, never ``None``.
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from core.formatting import (
    MISSING,
    change,
    count,
    duration,
    human_label,
    is_missing,
    money,
    money_compact,
    number,
    percent,
)

__all__ = [
    "MISSING",
    "change",
    "count",
    "duration",
    "figure_help",
    "headings",
    "human_label",
    "is_missing",
    "labelled",
    "money",
    "money_compact",
    "number",
    "percent",
]


def labelled(frame: pl.DataFrame, labels: Mapping[str, str] | None = None) -> pl.DataFrame:
    """``frame`` with reader's column labels: ``labels`` where given, else the column name in words."""
    chosen = dict(labels or {})
    return frame.rename({c: chosen.get(c, human_label(c)) for c in frame.columns})


def headings(frame: pl.DataFrame, labels: Mapping[str, str] | None = None) -> dict[str, str]:
    """A table's column headings for ``st.dataframe``: ``labels`` where given, else each column name in words."""
    chosen = dict(labels or {})
    return {c: chosen.get(c, human_label(c)) for c in frame.columns}


def figure_help(value: object, explanation: str, reason: str) -> str:
    """A metric's hover text: how it is computed, and why it is an em dash when it could not be."""
    return f"{MISSING} because {reason}. {explanation}" if is_missing(value) else explanation

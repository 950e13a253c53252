"""How a number is written for a reader: money with its currency, percentages, durations, and the missing value.

The one place the app's pages (through ``ui.format``), the CLI and the reports turn a figure into words, so
the same figure reads the same everywhere: no cents above 1,000, no ``-0%``, a unit on every duration,
and an em dash with its reason instead of ``None``.
"""

from __future__ import annotations

import math

MISSING = "—"
"""What a cell or a figure shows when there is no value; the reason goes beside it or on hover."""

MINUS = "−"
"""The typographic minus sign, so a negative figure does not read as a hyphenated word."""


def is_missing(value: object) -> bool:
    """True for None and NaN: a figure that could not be computed."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def number(value: float | int | None, reason: str = "") -> str:
    """A plain figure with as many decimals as its size needs (1,234 · 41.3 · 0.39)."""
    if is_missing(value):
        return _missing(reason)
    magnitude = abs(float(value))  # type: ignore[arg-type]
    text = f"{magnitude:,.0f}" if magnitude >= 100 else f"{magnitude:,.1f}" if magnitude >= 10 else f"{magnitude:,.2f}"
    return _signed(float(value), text)  # type: ignore[arg-type]


def money(value: float | int | None, currency: str, reason: str = "") -> str:
    """``1,065,704 USD`` or ``698.13 USD``: money with its currency, cents only below 1,000."""
    if is_missing(value):
        return _missing(reason)
    magnitude = abs(float(value))  # type: ignore[arg-type]
    text = f"{magnitude:,.0f}" if magnitude >= 1000 or magnitude == 0 else f"{magnitude:,.2f}"
    return f"{_signed(float(value), text)} {currency}"  # type: ignore[arg-type]


def money_compact(value: float | int | None, currency: str, reason: str = "") -> str:
    """``1.07M USD``, ``48.2k USD`` or ``698 USD``: money short enough for a tile, three significant figures."""
    if is_missing(value):
        return _missing(reason)
    magnitude = abs(float(value))  # type: ignore[arg-type]
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if magnitude >= size * 0.9995:
            scaled = magnitude / size
            text = f"{scaled:.3g}" if scaled < 1000 else f"{scaled:,.0f}"
            return f"{_signed(float(value), text + suffix)} {currency}"  # type: ignore[arg-type]
    return money(value, currency, reason)


def percent(fraction: float | None, reason: str = "", digits: int = 0) -> str:
    """``37%`` for 0.37; a share that rounds to nothing reads ``0%``, never ``-0%``."""
    if is_missing(fraction):
        return _missing(reason)
    text = f"{abs(fraction) * 100:,.{digits}f}"  # type: ignore[operator]
    return f"{_signed(fraction, text)}%"  # type: ignore[arg-type]


def change(fraction: float | None, reason: str = "", digits: int = 0) -> str:
    """A relative change with its sign (``+12%``, ``−3%``), or ``no change`` when it rounds to nothing."""
    if is_missing(fraction):
        return _missing(reason)
    text = f"{abs(fraction) * 100:,.{digits}f}"  # type: ignore[operator]
    if float(text.replace(",", "")) == 0:
        return "no change"
    return f"{'+' if fraction > 0 else MINUS}{text}%"  # type: ignore[operator]


def duration(days: float | None, reason: str = "") -> str:
    """A span in the unit that reads best: ``40 minutes``, ``5.5 hours``, ``3 days``, ``12 weeks``."""
    if is_missing(days):
        return _missing(reason)
    hours = float(days) * 24  # type: ignore[arg-type]
    if abs(hours) < 1:
        return f"{hours * 60:,.0f} minutes"
    if abs(hours) < 48:
        return f"{hours:,.1f} hours".replace(".0 hours", " hours")
    if abs(days) < 70:  # type: ignore[arg-type]
        return f"{days:,.0f} days"
    return f"{days / 7:,.0f} weeks"  # type: ignore[operator]


def count(value: int, singular: str, plural: str | None = None) -> str:
    """``1 feature``, ``10 features``."""
    return f"{value:,} {singular if value == 1 else plural or singular + 's'}"


WORDS = {"pr": "PR", "prs": "PRs", "ci": "CI", "url": "URL", "dora": "DORA", "p": "p", "usd": "USD", "eur": "EUR"}
"""Words a column name spells in lower case that a reader writes otherwise."""

DROPPED_ENDINGS = ("id", "at")
"""Last words of a column name that say its type: ``team_id`` is the team, ``merged_at`` when it merged."""


def human_label(column: str) -> str:
    """A column name as a reader's label: ``last_merged_at`` → ``Last merged``, ``team_id`` → ``Team``."""
    words = [w for w in column.strip("_").split("_") if w]
    if len(words) > 1 and words[-1] in DROPPED_ENDINGS:
        words = words[:-1]
    text = " ".join(WORDS.get(w, w) for w in words)
    return text[:1].upper() + text[1:]


def _signed(value: float, text: str) -> str:
    """``text`` (a magnitude) with a minus sign when ``value`` is negative and does not round to zero."""
    return f"{MINUS}{text}" if value < 0 and any(c in "123456789" for c in text) else text


def _missing(reason: str) -> str:
    return f"{MISSING} ({reason})" if reason else MISSING

"""Polars expressions that turn the text of an export cell into a value the canonical model accepts.

Each cleaner returns a *string* expression: the cleaned value where the text could be read,
otherwise the text exactly as found. Validation then types the column and reports any cell
that still does not read, naming its row, column and value, so nothing fails silently.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import polars as pl

from core.model.dates import EXPORT_NAIVE, EXPORT_ZONED, ISO_NAIVE, ISO_ZONED
from core.model.work_item_keys import WORK_ITEM_KEY_PATTERN, first_work_item_key

ISO_OUT = "%Y-%m-%d %H:%M:%S%.6f"
"""How a cleaned timestamp is written: naive UTC, read back by the canonical schema."""

ZONED_FORMATS = (*ISO_ZONED, *EXPORT_ZONED)
"""Zoned shapes, ISO first."""
NAIVE_FORMATS = (*ISO_NAIVE, *EXPORT_NAIVE)
"""Zone-less shapes, ISO first."""


def text(expr: pl.Expr) -> pl.Expr:
    """Trimmed text with blank cells and literal ``\\N`` or ``\\\\N`` (a dump's null, maybe escaped twice) as null."""
    trimmed = expr.cast(pl.String).str.strip_chars()
    return pl.when(trimmed.is_in(["", "\\N", "\\\\N"])).then(None).otherwise(trimmed)


def number(expr: pl.Expr) -> pl.Expr:
    """A number written as an export writes it: ``$1,234.50``, ``1.234,5``, ``(12)``, ``59200.0``.

    Cells that already read as a number pass through untouched; only the rest are cleaned.
    """
    return text(expr).map_batches(_read_numbers, return_dtype=pl.String, is_elementwise=True)


def _read_numbers(raw: pl.Series) -> pl.Series:
    """``number`` on one column: the cleaning patterns run only on cells that do not read as they are."""
    messy = raw.is_not_null() & raw.cast(pl.Float64, strict=False).is_null()
    if not messy.any():
        return raw
    index = messy.arg_true()
    cleaned = pl.select(_cleaned_number(pl.lit(raw.gather(index)))).to_series()
    return raw.scatter(index, cleaned)


def _cleaned_number(raw: pl.Expr) -> pl.Expr:
    plain = raw.str.replace_all(r"[\s\u00a0$€£¥₹]|USD|EUR|GBP|usd|eur|gbp", "")
    negative = plain.str.contains(r"^\(.*\)$")
    plain = pl.when(negative).then(pl.lit("-") + plain.str.strip_chars("()")).otherwise(plain)
    cleaned = (
        pl.when(plain.str.contains(r"^[-+]?\d{1,3}(,\d{3})+(\.\d+)?$"))
        .then(plain.str.replace_all(",", ""))
        .when(plain.str.contains(r"^[-+]?\d{1,3}(\.\d{3})+,\d+$"))
        .then(plain.str.replace_all(r"\.", "").str.replace(",", "."))
        .when(plain.str.contains(r"^[-+]?\d+,\d{1,2}$"))
        .then(plain.str.replace(",", "."))
        .when(plain.str.contains(r"^[-+]?\d+(\.\d+)?%$"))
        .then(plain.str.strip_chars_end("%"))
        .otherwise(plain)
    )
    return pl.when(cleaned.cast(pl.Float64, strict=False).is_not_null()).then(cleaned).otherwise(raw)


def timestamp(expr: pl.Expr, timezone: str = "UTC", formats: Sequence[str] = ()) -> pl.Expr:
    """A date-time in any common export shape, as naive UTC text; zone-less times are read in ``timezone``.

    ``formats`` (strftime patterns, e.g. a generic mapping's ``%d.%m.%Y``) are tried first.
    Unix epoch seconds are read too. Text that matches no shape is returned unchanged.
    """
    read = partial(_read_timestamps, timezone=timezone, formats=tuple(formats))
    return text(expr).map_batches(read, return_dtype=pl.String, is_elementwise=True)


def _read_timestamps(raw: pl.Series, timezone: str, formats: tuple[str, ...]) -> pl.Series:
    """``timestamp`` on one column: each shape is tried only on the cells no earlier shape read.

    The order of precedence is: the given zoned patterns, then the common zoned shapes (on text
    whose zone suffix is normalised to ``+hhmm``), then the given and common zone-less patterns
    (read in ``timezone``), then epoch seconds. An export's column is almost always one shape,
    so the first pattern that fits reads nearly every cell and the rest run on what is left;
    trying every shape on every cell cost seconds per million rows.
    """
    reader = _Remaining(raw)
    if not formats:
        # ISO 8601 with a literal Z, as most APIs write it: the zoned shapes read it the same way.
        reader.attempt(lambda cells: cells.str.to_datetime("%Y-%m-%dT%H:%M:%S%.fZ", strict=False, time_unit="us"))
    zoned = (*[f for f in formats if "%z" in f], *ZONED_FORMATS)
    reader.attempt(lambda cells: _zoned(cells, zoned), where=lambda cells: cells.str.contains(_ZONE_SUFFIX))
    naive = (*[f for f in formats if "%z" not in f], *NAIVE_FORMATS)
    reader.attempt(lambda cells: _local(cells, naive, timezone))
    reader.attempt(_epoch, where=lambda cells: cells.str.contains(r"^\d{9,10}(\.\d+)?$"))
    written = reader.parsed.dt.to_string(ISO_OUT)
    return written.zip_with(written.is_not_null(), raw).alias(raw.name)


_ZONE_SUFFIX = r"(?i)(Z|UTC|GMT|[+-]\d{2}(:?\d{2})?)(\s*\([^)]*\))?$"
"""Text a zoned shape could read ends like this: a zone name or offset, maybe then ``(zone name)``."""


class _Remaining:
    """The cells of a text column not read yet, and the naive UTC datetimes of those that were."""

    def __init__(self, raw: pl.Series) -> None:
        self.raw = raw
        self.parsed = pl.Series(raw.name, [None] * raw.len(), dtype=pl.Datetime("us"))
        self.todo = raw.is_not_null()

    def attempt(
        self,
        read: Callable[[pl.Series], pl.Series],
        where: Callable[[pl.Series], pl.Series] | None = None,
    ) -> None:
        """Read the remaining cells (those ``where`` holds for) with ``read``; keep what it read."""
        if not self.todo.any():
            return
        index = self.todo.arg_true()
        cells = self.raw.gather(index)
        if where is not None:
            keep = where(cells).fill_null(False)
            index, cells = index.filter(keep), cells.filter(keep)
        got = read(cells)
        hit = got.is_not_null()
        rows = index.filter(hit)
        self.parsed = self.parsed.scatter(rows, got.filter(hit))
        self.todo = self.todo.scatter(rows, False)


def _zoned(cells: pl.Series, patterns: Sequence[str]) -> pl.Series:
    """Cells with a zone, read by the first pattern that fits, as naive UTC."""
    normalised = (
        cells.str.replace(r"\s*\([^)]*\)$", "")
        .str.replace(r"(?i)\s*(Z|UTC|GMT)$", "+00:00")
        .str.replace(r"(\d{2}:\d{2}(:\d{2}(\.\d+)?)?) ?([+-]\d{2}):?(\d{2})$", "${1}${4}${5}")
    )
    return _first_fit(normalised, patterns, zoned=True)


def _local(cells: pl.Series, patterns: Sequence[str], timezone: str) -> pl.Series:
    """Zone-less cells read by the first pattern that fits, as local time in ``timezone``, then naive UTC."""
    local = _first_fit(cells, patterns, zoned=False)
    return (
        local.dt.replace_time_zone(timezone, ambiguous="earliest", non_existent="null")
        .dt.convert_time_zone("UTC")
        .dt.replace_time_zone(None)
    )


def _first_fit(cells: pl.Series, patterns: Sequence[str], *, zoned: bool) -> pl.Series:
    """Each cell read by the first of ``patterns`` that reads it, naive (UTC when ``zoned``).

    A date-only pattern gives midnight.
    """
    reader = _Remaining(cells)
    for pattern in patterns:

        def read(part: pl.Series, pattern: str = pattern) -> pl.Series:
            if zoned:
                utc = part.str.to_datetime(pattern, strict=False, time_unit="us", time_zone="UTC")
                return utc.dt.replace_time_zone(None)
            if _has_time(pattern):
                return part.str.to_datetime(pattern, strict=False, time_unit="us")
            return part.str.to_date(pattern, strict=False).cast(pl.Datetime("us"))

        reader.attempt(read)
    return reader.parsed


def _epoch(cells: pl.Series) -> pl.Series:
    """Unix epoch seconds as naive UTC datetimes."""
    return pl.from_epoch((cells.cast(pl.Float64, strict=False) * 1_000_000).cast(pl.Int64), time_unit="us")


def day(expr: pl.Expr, formats: Sequence[str] = ()) -> pl.Expr:
    """A calendar date in any common export shape as ``YYYY-MM-DD`` text (time of day dropped)."""
    parsed = timestamp(expr, "UTC", formats)
    as_dt = parsed.str.to_datetime(ISO_OUT, strict=False, time_unit="us")
    return pl.coalesce(as_dt.dt.date().cast(pl.String), parsed)


_KEY_NOT_VERSION = rf"(?:^|[^A-Za-z0-9])({WORK_ITEM_KEY_PATTERN})(?:$|[^0-9.]|\.(?:$|[^0-9]))"
"""A key in lower-cased text (branch names), but not a version such as ``lodash-4.17.21``."""


def work_item_key(*texts: pl.Expr) -> pl.Expr:
    """The first work-item key in the first of ``texts`` that holds one (branch names read case-blind)."""
    candidates = [first_work_item_key(t) for t in texts] + [
        t.str.to_uppercase().str.extract(_KEY_NOT_VERSION, 1) for t in texts
    ]
    return pl.coalesce(candidates)


def team_id(name: pl.Expr) -> pl.Expr:
    """The id a team name is stored under: lower case, other runs as ``-`` (``Payments Squad`` → ``payments-squad``)."""
    slug = text(name).str.to_lowercase().str.replace_all(r"[^\p{L}\p{N}]+", "-").str.strip_chars("-")
    return pl.when(slug != "").then(slug)


def line_item_id(prefix: str, parts: Sequence[pl.Expr]) -> pl.Expr:
    """A stable id for a line item: its identifying fields plus its occurrence among identical rows.

    Exports such as the Anthropic Console cost report hold rows that look identical but are
    separate charges; numbering each occurrence keeps every one, and re-importing the same
    file produces the same ids, so nothing is counted twice.
    """
    fields = [p.cast(pl.String).fill_null("") for p in parts]
    identity = pl.concat_str(fields, separator="|")
    occurrence = pl.int_range(pl.len()).over(identity) + 1
    return pl.concat_str([pl.lit(prefix), identity, occurrence.cast(pl.String)], separator="|")


def _has_time(pattern: str) -> bool:
    return any(code in pattern for code in ("%H", "%I", "%M", "%S", "%T", "%R"))

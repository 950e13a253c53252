"""Outcome metric observations: ``date, metric, value[, segment]`` (long) or one column per metric (wide).

Long: one row per observation with columns ``date``, ``metric``, ``value`` and optionally
``segment`` (``all`` when absent or blank). Wide: a ``date`` column and one column per metric
(named by metric id or metric name); every non-empty cell is one observation. Metrics are
matched to the workspace's metrics by id or name, case-blind; values may carry thousands
separators, currency symbols or a percent sign.
"""

from __future__ import annotations

import polars as pl

from core.importing import values as v
from core.importing.errors import ImportFailed
from core.importing.formats.base import ROW, Columns, Format, Mapped, with_rows
from core.importing.options import ImportOptions
from core.importing.reading import RawTable

_DATE_NAMES = ("date", "day", "week", "month", "period")


def build_long(raw: RawTable, options: ImportOptions) -> Mapped:
    """Observations from a long file (one row per date, metric and segment)."""
    c = Columns(raw.frame)
    frame = with_rows(raw.frame).select(
        ROW,
        _metric_id(v.text(c("metric", "metric_id", "metric_name")), options).alias("metric_id"),
        v.day(c(*_DATE_NAMES)).alias("date"),
        pl.coalesce(v.text(c("segment")), pl.lit("all")).alias("segment"),
        v.number(c("value")).alias("value"),
    )
    return Mapped({"metric_observations": frame})


def build_wide(raw: RawTable, options: ImportOptions) -> Mapped:
    """Observations from a wide file (a date column, then one column per metric)."""
    c = Columns(raw.frame)
    date_col = c.name(*_DATE_NAMES)
    if date_col is None:
        raise ImportFailed(f"{raw.filename}: a wide observations file needs a `date` column.")
    metric_cols = [m for m in raw.frame.columns if m != date_col and m.casefold() != "segment"]
    segment = pl.coalesce(v.text(c("segment")), pl.lit("all"))
    long = (
        with_rows(raw.frame)
        .with_columns(segment.alias("__segment"), v.day(pl.col(date_col)).alias("__date"))
        .unpivot(index=[ROW, "__date", "__segment"], on=metric_cols, variable_name="__metric", value_name="__value")
        .filter(v.text(pl.col("__value")).is_not_null())
        .sort(ROW, maintain_order=True)
    )
    frame = long.select(
        ROW,
        _metric_id(pl.col("__metric"), options).alias("metric_id"),
        pl.col("__date").alias("date"),
        pl.col("__segment").alias("segment"),
        v.number(pl.col("__value")).alias("value"),
    )
    return Mapped({"metric_observations": frame})


def _metric_id(name: pl.Expr, options: ImportOptions) -> pl.Expr:
    if not options.metric_ids:
        return name
    lookup = pl.DataFrame({"k": list(options.metric_ids), "v": list(options.metric_ids.values())})
    return name.str.to_lowercase().replace_strict(lookup["k"], lookup["v"], default=name)


def _is_wide(raw: RawTable) -> bool:
    c = Columns(raw.frame)
    date_col = c.name(*_DATE_NAMES)
    if date_col is None or raw.frame.width < 2 or "metric" in c or "value" in c:
        return False
    others = [m for m in raw.frame.columns if m != date_col and m.casefold() != "segment"]
    sample = raw.frame.head(50)
    return bool(others) and all(
        sample.select(v.number(pl.col(m)).cast(pl.Float64, strict=False).is_not_null().sum()).item()
        >= sample.select(v.text(pl.col(m)).is_not_null().sum()).item()
        for m in others
    )


LONG = Format(
    name="metric_observations_long",
    label="Outcome metric observations (date, metric, value[, segment])",
    entities=("metric_observations",),
    signature=("date", "metric", "value"),
    hints=("segment",),
    kinds=("csv", "excel", "parquet", "json"),
    build=build_long,
    mapping={
        "metric_observations": {
            "date": "date",
            "metric_id": "metric (id or name)",
            "value": "value",
            "segment": "segment ('all' when blank)",
        }
    },
)


class _WideFormat(Format):
    """The wide layout, recognised by its shape (a date column, then number columns) rather than names."""

    def score(self, raw: RawTable) -> float:
        return 0.6 if raw.kind in self.kinds and _is_wide(raw) else 0.0


WIDE = _WideFormat(
    name="metric_observations_wide",
    label="Outcome metric observations (wide: date, then one column per metric)",
    entities=("metric_observations",),
    signature=(),
    kinds=("csv", "excel", "parquet", "json"),
    build=build_wide,
    mapping={
        "metric_observations": {
            "date": "date",
            "metric_id": "each other column's name",
            "value": "the cell",
            "segment": "segment column or 'all'",
        }
    },
)

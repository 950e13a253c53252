"""What a recognised export format is: how to spot it from its columns and how it maps onto entities."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import polars as pl

from core.importing.options import ImportOptions
from core.importing.reading import RawTable

ROW = "__row"
"""The source row number (1 = first data row) every mapped frame carries for problem reports."""


@dataclass(frozen=True)
class Mapped:
    """Frames of canonical columns produced from one file, ready for validation."""

    frames: dict[str, pl.DataFrame]
    """Rows to add or update, by entity."""
    fills: dict[str, pl.DataFrame] = field(default_factory=dict)
    """Rows that only fill gaps (authors, placeholder epics): added when the key is new, never replacing."""
    notes: tuple[str, ...] = ()
    skipped: int = 0
    """Source rows left out on purpose (empty usage buckets, unfinished deployments)."""


@dataclass(frozen=True)
class Format:
    """A known export format."""

    name: str
    label: str
    entities: tuple[str, ...]
    signature: tuple[str, ...]
    build: Callable[[RawTable, ImportOptions], Mapped]
    hints: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ("csv", "excel", "parquet")
    mapping: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    """entity → canonical column → where its value comes from, for the mapping screen."""
    excludes: tuple[str, ...] = ()
    """Columns whose presence means the file is a different (more specific) format."""

    def score(self, raw: RawTable) -> float:
        """How sure we are that ``raw`` is this format: 0 (not it) to 1 (every expected column)."""
        if raw.kind not in self.kinds:
            return 0.0
        present = {c.casefold() for c in (*raw.frame.columns, *raw.header)}
        if any(s.casefold() not in present for s in self.signature):
            return 0.0
        if any(e.casefold() in present for e in self.excludes):
            return 0.0
        if not self.hints:
            return 1.0
        found = sum(1 for h in self.hints if h.casefold() in present)
        return round(0.7 + 0.3 * found / len(self.hints), 3)


class Columns:
    """Case-blind access to a raw frame's columns; a missing column reads as all-null text."""

    def __init__(self, frame: pl.DataFrame) -> None:
        self._names = {c.casefold(): c for c in reversed(frame.columns)}

    def __contains__(self, name: str) -> bool:
        return name.casefold() in self._names

    def __call__(self, *names: str) -> pl.Expr:
        """The first of ``names`` the file has, as a string expression."""
        for name in names:
            actual = self._names.get(name.casefold())
            if actual is not None:
                return pl.col(actual).cast(pl.String)
        return pl.lit(None, dtype=pl.String)

    def name(self, *names: str) -> str | None:
        """The file's spelling of the first of ``names`` it has."""
        for name in names:
            if name.casefold() in self._names:
                return self._names[name.casefold()]
        return None


def with_rows(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with the source row number column added (1 = first data row)."""
    return frame.with_row_index(ROW, offset=1).with_columns(pl.col(ROW).cast(pl.Int64))


def people_from(
    frame: pl.DataFrame, id_column: str, kind_column: str | None = None, name_column: str | None = None
) -> pl.DataFrame:
    """One person per distinct id in ``frame`` (add-only: stored people keep their details)."""
    kind = pl.col(kind_column) if kind_column else pl.lit("human")
    name = pl.coalesce(pl.col(name_column), pl.col(id_column)) if name_column else pl.col(id_column)
    return (
        frame.filter(pl.col(id_column).is_not_null())
        .group_by(id_column, maintain_order=True)
        .agg(name.first().alias("name"), kind.first().alias("kind"), pl.col(ROW).first())
        .rename({id_column: "person_id"})
        .select(ROW, "person_id", "name", "kind")
    )

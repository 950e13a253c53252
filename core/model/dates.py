"""The date and time shapes Throughline reads, in one list: ISO first, then the shapes exports write.

``core.model.schema`` reads the ISO shapes when it types a column; the importers' value cleaners
(``core.importing.values``) try the same ISO shapes first and then each export's own.
"""

from __future__ import annotations

ISO_ZONED = (
    "%Y-%m-%dT%H:%M:%S%.f%z",
    "%Y-%m-%dT%H:%M:%S%z",
    "%Y-%m-%d %H:%M:%S%.f%z",
    "%Y-%m-%d %H:%M:%S%z",
)
"""ISO 8601 timestamps with a UTC offset (``Z`` is read as ``+00:00``)."""

ISO_NAIVE = (
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M",
)
"""ISO 8601 timestamps without an offset, to the second, the minute or finer."""

ISO_DATE = "%Y-%m-%d"
"""An ISO calendar date."""

EXPORT_ZONED = (
    "%Y-%m-%dT%H:%M%z",
    "%a %b %d %Y %H:%M:%S GMT%z",
    "%a, %d %b %Y %H:%M:%S %z",
)
"""Zoned shapes vendors' exports write: minutes with an offset, JavaScript's ``Date`` string, RFC 2822."""

EXPORT_NAIVE = (
    "%d/%b/%y %I:%M %p",
    "%d/%b/%Y %I:%M %p",
    "%d/%b/%y %H:%M",
    "%d/%b/%Y %H:%M",
    "%d/%b/%y",
    "%d/%b/%Y",
    "%d %b %Y %H:%M",
    "%d %b %Y",
    "%b %d, %Y %I:%M %p",
    "%b %d, %Y",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d",
)
"""Zone-less shapes of exports: Jira's ``05/Mar/26 2:14 PM``, ``Mar 5, 2026``, slashed ISO."""

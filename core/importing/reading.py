"""Reading an uploaded file into a frame of its own columns, whatever shape it arrives in.

CSV and TSV (UTF-8, UTF-8 with BOM, UTF-16 with BOM, else Windows-1252/Latin-1; the delimiter
is sniffed), Parquet, Excel ``.xlsx`` (one sheet at a time), a JSON array, NDJSON and the
``git log`` text described in :mod:`core.importing.formats.gitlog`. Text formats are read with
every column as a string, so a cell such as ``=SUM(A1)`` or ``+44 20`` stays exactly as typed;
parsing numbers and dates is the job of the format that maps the columns. The size is checked
before anything is read, and again on the bytes actually read. A workbook's zip and each sheet's
extent are checked before a native reader sees them, and Excel and Parquet are read in a child
process (:mod:`core.importing.isolated`), so a hostile file costs one refused import, never the
server. Every failure, a Rust panic included, is an :class:`ImportFailed` with a user message.
"""

from __future__ import annotations

import csv
import html
import io
import json
import os
import re
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from core.importing.errors import ImportFailed
from core.importing.isolated import read_isolated

DEFAULT_MAX_BYTES = 1 << 30
"""Files larger than this (1 GiB) are refused before they are read."""

MAX_COLUMNS = 2_000
"""A file (or sheet) with more columns than this is refused: no export the model maps is that wide."""

MAX_JSON_KEYS = 2_000
"""JSON records whose flattened fields number more than this, all records together, are refused."""

MAX_SHEET_CELLS = 25_000_000
"""A sheet whose extent (rows × columns, from A1) is larger than this is refused before it is read."""

MAX_UNCOMPRESSED = 1 << 30
"""A workbook whose zip members unpack to more than this (1 GiB) is refused as a likely zip bomb."""

_CHUNK = 1 << 20

GITLOG_RECORD = "\x1e"
GITLOG_FIELD = "\x1f"
_DELIMITERS = (",", ";", "\t", "|")
_MAX_JSON_DEPTH = 12


@dataclass(frozen=True)
class RawTable:
    """One table read from a file: its columns as found (repeated names made unique)."""

    frame: pl.DataFrame
    kind: str
    filename: str
    header: tuple[str, ...] = ()
    encoding: str | None = None
    delimiter: str | None = None
    sheet: str | None = None
    sheets: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    def repeated(self, name: str) -> list[str]:
        """The unique column names of every column the file headed ``name`` (Jira repeats some)."""
        return [unique for unique, original in zip(self.frame.columns, self.header, strict=False) if original == name]


def read_source(
    source: Path | str | bytes,
    filename: str | None = None,
    *,
    sheet: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> RawTable:
    """The table in ``source`` (a path or the uploaded bytes), or ``ImportFailed``."""
    name = filename or (Path(source).name if not isinstance(source, bytes) else "upload")
    data = _load_bytes(source, name, max_bytes)
    try:
        return _read(data, name, sheet)
    except ImportFailed:
        raise
    except RecursionError:
        raise ImportFailed(f"{name}: the JSON is nested too deeply to read.") from None
    except MemoryError:
        raise ImportFailed(f"{name}: the file is too large to read in the memory available.") from None
    except Exception as error:
        raise ImportFailed(f"{name}: could not be read ({_short(error)}).") from None
    except BaseException as error:
        if not is_panic(error):
            raise
        raise ImportFailed(f"{name}: could not be read (the reader failed: {_short(error)}).") from None


def is_panic(error: BaseException) -> bool:
    """True for a Rust panic raised through pyo3 (``PanicException``, a ``BaseException`` of each extension)."""
    return type(error).__name__ == "PanicException"


def excel_sheets(
    source: Path | str | bytes, filename: str | None = None, max_bytes: int = DEFAULT_MAX_BYTES
) -> list[str]:
    """The sheet names of an Excel workbook, in workbook order."""
    name = filename or (Path(source).name if not isinstance(source, bytes) else "upload.xlsx")
    data = _load_bytes(source, name, max_bytes)
    return [sheet for sheet, _ in _workbook_sheets(data, name)]


def format_size(size: int) -> str:
    """A byte count in the largest binary unit that keeps it above 1 (``1.0 GiB``)."""
    value = float(size)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def _load_bytes(source: Path | str | bytes, name: str, max_bytes: int) -> bytes:
    if isinstance(source, bytes):
        size = len(source)
        check_size(size, name, max_bytes)
        data = source
    else:
        path = Path(source)
        try:
            size = os.stat(path).st_size
        except OSError as error:
            raise ImportFailed(f"{name}: cannot be opened ({error.strerror or error}).") from None
        check_size(size, name, max_bytes)
        data = _read_at_most(path, name, max_bytes)
    if not data.strip():
        raise ImportFailed(f"{name}: the file is empty.")
    return data


def _read_at_most(path: Path, name: str, max_bytes: int) -> bytes:
    """The bytes of ``path``, read in chunks and refused past ``max_bytes`` (a device or pipe has no true size)."""
    read = bytearray()
    try:
        with open(path, "rb") as stream:
            while chunk := stream.read(min(_CHUNK, max_bytes + 1 - len(read))):
                read += chunk
                if len(read) > max_bytes:
                    raise ImportFailed(
                        f"{name}: holds more than the import limit of {format_size(max_bytes)} "
                        "(setting `import.max_bytes`). Split the export into smaller files."
                    )
    except OSError as error:
        raise ImportFailed(f"{name}: cannot be read ({error.strerror or error}).") from None
    return bytes(read)


def check_size(size: int, name: str, max_bytes: int) -> None:
    """Refuse (``ImportFailed``, naming the limit) a file of ``size`` bytes over ``max_bytes``, before it is read."""
    if size > max_bytes:
        raise ImportFailed(
            f"{name}: the file is {format_size(size)}, larger than the import limit of {format_size(max_bytes)} "
            "(setting `import.max_bytes`). Split the export into smaller files."
        )


def _read(data: bytes, name: str, sheet: str | None) -> RawTable:
    kind = _kind(data, name)
    if kind == "parquet":
        frame = read_isolated("parquet", data, name)
        return _finish(frame, "parquet", name, tuple(frame.columns))
    if kind == "excel":
        return _read_excel(data, name, sheet)
    if kind == "xls":
        raise ImportFailed(f"{name}: old Excel .xls workbooks are not supported; save it as .xlsx or CSV.")
    text, encoding = _decode(data, name)
    stripped = text.lstrip(" \t\r\n\ufeff")
    if stripped.startswith(GITLOG_RECORD):
        return _finish(_read_gitlog(stripped, name), "gitlog", name, (), encoding=encoding)
    if kind in ("json", "ndjson") or (kind == "text" and stripped[:1] in "[{"):
        records = _json_records(stripped, name, ndjson=kind == "ndjson")
        frame = _records_frame(records, name)
        return _finish(frame, "json", name, tuple(frame.columns), encoding=encoding)
    return _read_csv(text, name, encoding, kind)


def _kind(data: bytes, name: str) -> str:
    suffix = Path(name).suffix.lower()
    if data[:4] == b"PAR1":
        return "parquet"
    if data[:4] == b"PK\x03\x04":
        return "excel"
    if data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        return "xls"
    if suffix in (".parquet", ".pq"):
        raise ImportFailed(f"{name}: is named .parquet but is not a Parquet file.")
    if suffix in (".xlsx", ".xlsm"):
        raise ImportFailed(f"{name}: is named {suffix} but is not an Excel workbook.")
    if suffix == ".json":
        return "json"
    if suffix in (".ndjson", ".jsonl"):
        return "ndjson"
    if suffix == ".tsv":
        return "tsv"
    return "text"


def _decode(data: bytes, name: str) -> tuple[str, str]:
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="replace"), "utf-8-sig"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace"), "utf-16"
    if b"\x00" in data[:8192]:
        raise ImportFailed(f"{name}: does not look like a text file (CSV, TSV or JSON); it contains binary data.")
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), "windows-1252"
    except UnicodeDecodeError:
        return data.decode("latin-1"), "latin-1"


def _read_csv(text: str, name: str, encoding: str, kind: str) -> RawTable:
    delimiter = "\t" if kind == "tsv" else _sniff_delimiter(text)
    _check_header_width(text, name, delimiter)
    frame = pl.read_csv(
        io.StringIO(text),
        has_header=False,
        infer_schema=False,
        separator=delimiter,
        quote_char='"',
        truncate_ragged_lines=True,
        raise_if_empty=False,
    )
    if frame.height == 0:
        raise ImportFailed(f"{name}: the file is empty.")
    header = tuple("" if v is None else str(v).strip() for v in frame.row(0))
    keep = _width_without_empty_tail(frame, header)
    frame, header = frame.select(frame.columns[:keep]), header[:keep]
    body = frame.slice(1)
    body = body.filter(~pl.all_horizontal(pl.all().is_null() | (pl.all().str.strip_chars() == "")))
    if body.height == 0:
        raise ImportFailed(f"{name}: has a header row but no data rows.")
    return _finish(body, "csv", name, header, encoding=encoding, delimiter=delimiter)


def _check_header_width(text: str, name: str, delimiter: str) -> None:
    """Refuse a CSV whose header row has more fields than :data:`MAX_COLUMNS`, before it is parsed."""
    try:
        header = next(csv.reader(io.StringIO(text[: 64 << 20]), delimiter=delimiter), [])
    except csv.Error:
        return
    if len(header) > MAX_COLUMNS:
        named = sum(1 for field in header if field.strip())
        raise ImportFailed(
            f"{name}: the header row has {len(header):,} columns ({named:,} of them named), more than the limit "
            f"of {MAX_COLUMNS:,}; delete the empty columns at the end, or split the file."
        )


def _width_without_empty_tail(frame: pl.DataFrame, header: tuple[str, ...]) -> int:
    """How many columns remain once trailing columns with no header and no data are dropped (one pass)."""
    named = max((i + 1 for i, title in enumerate(header) if title), default=0)
    tail = frame.columns[named:]
    if not tail:
        return len(header)
    nulls = frame.select(tail).null_count().row(0)
    keep = len(header)
    for count in reversed(nulls):
        if keep <= 1 or count < frame.height - 1:
            break
        keep -= 1
    return keep


def _sniff_delimiter(text: str) -> str:
    sample_lines = [line for line in text[:65536].splitlines()[:30] if line.strip()]
    if not sample_lines:
        return ","
    best, best_score = ",", 0.0
    for delimiter in _DELIMITERS:
        try:
            rows = list(csv.reader(sample_lines, delimiter=delimiter))
        except csv.Error:
            continue
        counts = [len(r) for r in rows]
        header = counts[0]
        if header < 2:
            continue
        consistent = sum(1 for c in counts if c == header) / len(counts)
        score = consistent * header
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _read_excel(data: bytes, name: str, sheet: str | None) -> RawTable:
    sheets = _workbook_sheets(data, name)
    names = tuple(sheet_name for sheet_name, _ in sheets)
    if not names:
        raise ImportFailed(f"{name}: the workbook has no sheets.")
    if sheet is not None and sheet not in names:
        raise ImportFailed(f"{name}: has no sheet `{sheet}`; its sheets are {', '.join(names)}.")
    chosen = sheet or names[0]
    _check_sheet_extent(data, name, chosen, dict(sheets)[chosen])
    frame = read_isolated("excel", data, name, chosen)
    if frame.height == 0:
        raise ImportFailed(f"{name}: sheet `{chosen}` is empty.")
    header = tuple("" if v is None else str(v).strip() for v in frame.row(0))
    body = frame.slice(1).filter(~pl.all_horizontal(pl.all().is_null()))
    if body.height == 0:
        raise ImportFailed(f"{name}: sheet `{chosen}` has a header row but no data rows.")
    return _finish(body, "excel", name, header, sheet=chosen, sheets=names)


_SHEET = re.compile(r"<(?:\w+:)?sheet\b([^>]*)/?>")
_RELATIONSHIP = re.compile(r"<(?:\w+:)?Relationship\b([^>]*)/?>")
_ATTRIBUTE = re.compile(r'([\w:]+)\s*=\s*"([^"]*)"')
_CELL_REF = re.compile(
    rb'<(?:\w+:)?(?:c|dimension)\b[^>]*?\sr(?:ef)?="\$?([A-Z]{1,4})\$?(\d{1,10})(?::\$?([A-Z]{1,4})\$?(\d{1,10}))?"'
)
"""A cell's reference (``<c r="B7">``) or the sheet's declared dimension (``<dimension ref="A1:XFD1048576"/>``)."""


def _workbook_sheets(data: bytes, name: str) -> list[tuple[str, str | None]]:
    """Each sheet's name and zip member, in workbook order, after the zip itself is checked for a bomb."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
            if unpacked > MAX_UNCOMPRESSED:
                raise ImportFailed(
                    f"{name}: the workbook unpacks to {format_size(unpacked)}, more than the limit of "
                    f"{format_size(MAX_UNCOMPRESSED)}; it is refused as a likely zip bomb."
                )
            workbook = _small_member(archive, "xl/workbook.xml", name)
            relations = _small_member(archive, "xl/_rels/workbook.xml.rels", name)
            members = set(archive.namelist())
    except zipfile.BadZipFile as error:
        raise ImportFailed(f"{name}: is not a readable Excel workbook ({_short(error)}).") from None
    targets = {}
    for match in _RELATIONSHIP.finditer(relations):
        attributes = dict(_ATTRIBUTE.findall(match.group(1)))
        target = attributes.get("Target", "")
        target = target.lstrip("/") if target.startswith("/") else f"xl/{target}"
        targets[attributes.get("Id")] = target
    sheets = []
    for match in _SHEET.finditer(workbook):
        attributes = dict(_ATTRIBUTE.findall(match.group(1)))
        relation = next((v for k, v in attributes.items() if k.endswith(":id")), None)
        member = targets.get(relation)
        sheets.append((html.unescape(attributes.get("name", "")), member if member in members else None))
    return sheets


def _small_member(archive: zipfile.ZipFile, member: str, name: str) -> str:
    """The text of a workbook's index member (at most 16 MiB of it)."""
    try:
        with archive.open(member) as stream:
            return stream.read(16 << 20).decode("utf-8", errors="replace")
    except KeyError:
        raise ImportFailed(f"{name}: is not a readable Excel workbook (it has no {member}).") from None


def _check_sheet_extent(data: bytes, name: str, sheet: str, member: str | None) -> None:
    """Refuse a sheet whose declared dimension or furthest cell reaches past the column or cell limits."""
    if member is None:
        return
    rows = columns = 0
    tail = b""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive, archive.open(member) as stream:
            while chunk := stream.read(_CHUNK):
                for match in _CELL_REF.finditer(tail + chunk):
                    for letters, digits in ((match[1], match[2]), (match[3], match[4])):
                        if letters is None:
                            continue
                        rows, columns = max(rows, int(digits)), max(columns, _column_number(letters))
                tail = chunk[-200:]
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise ImportFailed(f"{name}: sheet `{sheet}` cannot be unpacked ({_short(error)}).") from None
    if columns > MAX_COLUMNS or rows * columns > MAX_SHEET_CELLS:
        raise ImportFailed(
            f"{name}: sheet `{sheet}` reaches row {rows:,} and column {columns:,} ({rows * columns:,} cells), "
            f"more than the limit of {MAX_COLUMNS:,} columns and {MAX_SHEET_CELLS:,} cells; delete the empty rows and "
            "columns past the data, or export the sheet as CSV."
        )


def _column_number(letters: bytes) -> int:
    """The 1-based number of a spreadsheet column written in letters (``XFD`` → 16384)."""
    number = 0
    for letter in letters:
        number = number * 26 + letter - 64
    return number


def _json_records(text: str, name: str, ndjson: bool) -> list[Any]:
    if not ndjson:
        try:
            value = json.loads(text)
        except json.JSONDecodeError as error:
            if text.count("\n") > 0 and text.lstrip().startswith("{"):
                return _json_records(text, name, ndjson=True)
            raise ImportFailed(
                f"{name}: is not valid JSON (line {error.lineno}, column {error.colno}: {error.msg})."
            ) from None
        if isinstance(value, dict):
            lists = [v for v in value.values() if isinstance(v, list) and v and all(isinstance(i, dict) for i in v)]
            value = lists[0] if len(lists) == 1 else [value]
        if not isinstance(value, list):
            raise ImportFailed(f"{name}: the JSON holds a single value, not a list of records.")
        return value
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as error:
            raise ImportFailed(f"{name}: line {number} is not valid JSON ({error.msg}).") from None
    return records


def _records_frame(records: list[Any], name: str) -> pl.DataFrame:
    if not records:
        raise ImportFailed(f"{name}: the JSON list is empty: there are no records to import.")
    flat: list[dict[str, str | None]] = []
    columns: dict[str, None] = {}
    for number, record in enumerate(records, start=1):
        row = _flatten(record) if isinstance(record, dict) else {"value": _text(record)}
        flat.append(row)
        columns.update(dict.fromkeys(row))
        if len(columns) > MAX_JSON_KEYS:
            raise ImportFailed(
                f"{name}: the records have more than {MAX_JSON_KEYS:,} distinct fields (counted to record "
                f"{number:,}, nested fields flattened); no export the model maps is that wide."
            )
    if not columns:
        raise ImportFailed(f"{name}: the JSON records have no fields.")
    data = {c: [row.get(c) for row in flat] for c in columns}
    return pl.DataFrame(data, schema={c: pl.String for c in columns})


def _flatten(record: dict[str, Any], prefix: str = "", depth: int = 0) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and depth < _MAX_JSON_DEPTH:
            out.update(_flatten(value, f"{name}.", depth + 1))
        else:
            out[name] = _text(value)
    return out


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value, ensure_ascii=False)


def _read_gitlog(text: str, name: str) -> pl.DataFrame:
    rows: list[dict[str, Any]] = []
    for chunk in text.split(GITLOG_RECORD):
        if not chunk.strip():
            continue
        head, _, rest = chunk.partition("\n")
        fields = head.split(GITLOG_FIELD)
        if len(fields) < 7:
            raise ImportFailed(
                f"{name}: the git log text is not in the documented format (see `python -m core import --help` "
                "or core/importing/formats/gitlog.py for the exact command)."
            )
        additions = deletions = files = 0
        for line in rest.splitlines():
            parts = line.split("\t")
            if len(parts) >= 3:
                files += 1
                additions += int(parts[0]) if parts[0].isdigit() else 0
                deletions += int(parts[1]) if parts[1].isdigit() else 0
        rows.append(
            {
                "sha": fields[0].strip(),
                "parents": fields[1].strip(),
                "author_name": fields[2],
                "author_email": fields[3],
                "authored_at": fields[4],
                "committed_at": fields[5],
                "subject": GITLOG_FIELD.join(fields[6:]).strip(),
                "additions": str(additions),
                "deletions": str(deletions),
                "files": str(files),
            }
        )
    if not rows:
        raise ImportFailed(f"{name}: the git log text holds no commits.")
    return pl.DataFrame(rows, schema={k: pl.String for k in rows[0]})


def _finish(frame: pl.DataFrame, kind: str, name: str, header: tuple[str, ...], **extra: Any) -> RawTable:
    header = header or tuple(frame.columns)
    if len(header) > MAX_COLUMNS:
        raise ImportFailed(f"{name}: has {len(header):,} columns, more than the limit of {MAX_COLUMNS:,}.")
    _refuse_nul(frame, name, header)
    unique = _unique_names(header)
    frame = frame.rename(dict(zip(frame.columns, unique, strict=True))) if frame.columns != unique else frame
    if frame.height == 0:
        raise ImportFailed(f"{name}: holds no data rows.")
    return RawTable(frame=frame, kind=kind, filename=name, header=header, **extra)


def _refuse_nul(frame: pl.DataFrame, name: str, header: tuple[str, ...]) -> None:
    """Refuse, naming row and column, a NUL character (no text export holds one; databases reject it)."""
    for index, title in enumerate(header):
        if "\x00" in title:
            raise ImportFailed(f"{name}: the header of column {index + 1} holds a NUL character (code 0).")
    textual = [c for c, dtype in frame.schema.items() if dtype == pl.String]
    if not textual:
        return
    flags = frame.select(pl.col(textual).str.contains("\x00", literal=True).fill_null(False))
    for column, title in zip(frame.columns, header, strict=False):
        if column in flags.columns and flags[column].any():
            row = int(flags[column].arg_true()[0]) + 1
            raise ImportFailed(
                f"{name}: row {row}, column `{title or column}` holds a NUL character (code 0), which no text "
                "export contains; the file may be damaged."
            )


def _unique_names(header: Iterable[str]) -> list[str]:
    seen: dict[str, int] = {}
    names: list[str] = []
    for index, raw in enumerate(header):
        base = raw or f"column_{index + 1}"
        count = seen.get(base, 0) + 1
        seen[base] = count
        names.append(base if count == 1 else f"{base} ({count})")
    taken: set[str] = set()
    result = []
    for name in names:
        candidate = name
        while candidate in taken:
            candidate += "_"
        taken.add(candidate)
        result.append(candidate)
    return result


def _short(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text[:200]

"""Reading uploads: encodings, delimiters, Excel sheets, size limits, and hostile input that only gets a message."""

from __future__ import annotations

import contextlib
import io
import json
import os
import threading
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.importing import ImportFailed, ImportOptions, plan_import, read_source, reading, recognise
from core.importing import plan as plan_module
from core.importing.isolated import read_isolated

FIXTURES = Path(__file__).parent / "fixtures" / "imports"


def test_utf8_bom_and_latin1_are_decoded() -> None:
    text = "Ticket;Opened;Sev;System\nINC-1;03.02.2026 14:05;SEV2;Zürich café\n"
    bom = read_source(b"\xef\xbb\xbf" + text.encode("utf-8"), "a.csv")
    latin = read_source(text.encode("latin-1"), "b.csv")
    assert bom.encoding == "utf-8-sig" and latin.encoding in ("windows-1252", "latin-1")
    for raw in (bom, latin):
        assert raw.frame.columns == ["Ticket", "Opened", "Sev", "System"]
        assert raw.frame["System"][0] == "Zürich café"
        assert raw.delimiter == ";"


def test_tab_and_pipe_delimiters_are_sniffed() -> None:
    assert read_source(b"a\tb\n1\t2\n", "x.tsv").frame.columns == ["a", "b"]
    assert read_source(b"a|b|c\n1|2|3\n", "x.txt").delimiter == "|"


def test_repeated_headers_are_kept_apart() -> None:
    raw = read_source(FIXTURES / "jira_export.csv")
    assert raw.repeated("Labels") == ["Labels", "Labels (2)", "Labels (3)"]
    row = raw.frame.filter(pl.col("Issue key") == "PAY-10")
    assert [row[c][0] for c in raw.repeated("Labels")] == ["mortgage", "frontend", "api"]
    assert row["Description"][0].startswith("As an applicant\nI want")


def test_formula_like_cells_stay_text() -> None:
    raw = read_source(b"name,value\n=1+2,+44 20\n@SUM(A1),-3\n", "f.csv")
    assert raw.frame["name"].to_list() == ["=1+2", "@SUM(A1)"]
    assert raw.frame["value"].to_list() == ["+44 20", "-3"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"   \n\n", "empty"),
        (b"a,b,c\n", "header row but no data"),
        (b'[{"number": 1,', "not valid JSON"),
        (b"[]", "empty"),
        (b"\x00\x01\x02\xff" * 100, "binary"),
        (b"PK\x03\x04garbage", "Excel"),
    ],
)
def test_broken_files_get_a_message(data: bytes, message: str) -> None:
    with pytest.raises(ImportFailed, match=message):
        recognise(data, "upload.json" if data.startswith(b"[") else "upload.csv")


def test_a_file_above_the_limit_is_refused_before_reading(tmp_path: Path) -> None:
    big = tmp_path / "huge.csv"
    with big.open("wb") as handle:
        handle.truncate(2 * 1024**3)  # sparse: 2 GiB on paper, nothing in memory
    with pytest.raises(ImportFailed, match=r"2\.0 GiB, larger than the import limit of 1\.0 GiB"):
        recognise(big)
    with pytest.raises(ImportFailed, match=r"limit of 1\.0 KiB"):
        plan_import(b"a,b\n" + b"1,2\n" * 1000, "x.csv", options=ImportOptions(max_bytes=1024))


def test_excel_with_several_sheets_picks_the_recognised_one(tmp_path: Path) -> None:
    import xlsxwriter

    path = tmp_path / "usage.xlsx"
    book = xlsxwriter.Workbook(path)
    notes = book.add_worksheet("Read me")
    notes.write_row(0, 0, ["This export was made on 2026-02-05"])
    notes.write_row(1, 0, ["Ask finance"])
    sheet = book.add_worksheet("Costs")
    table = pl.read_csv(FIXTURES / "anthropic_cost.csv", infer_schema=False)
    sheet.write_row(0, 0, table.columns)
    for r, line in enumerate(table.rows(), start=1):
        sheet.write_row(r, 0, line)
    book.close()
    recognition = recognise(path)
    assert recognition.sheets == ("Read me", "Costs") and recognition.sheet == "Costs"
    assert recognition.format == "anthropic_cost"
    plan = plan_import(path)
    assert plan.frames["cost_events"].height == 6
    with pytest.raises(ImportFailed, match="no sheet `Missing`"):
        plan_import(path, options=ImportOptions(sheet="Missing"))


def test_parquet_and_ndjson(tmp_path: Path) -> None:
    records = json.loads((FIXTURES / "gh_pr_list.json").read_text())
    ndjson = "\n".join(json.dumps(r) for r in records).encode()
    assert recognise(ndjson, "prs.ndjson").format == "github_pulls_gh"
    frame = pl.DataFrame({"date": ["2026-01-05"], "metric": ["m"], "value": [1.5]})
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    assert recognise(buffer.getvalue(), "obs.parquet").format == "metric_observations_long"


def test_numbers_with_separators_and_symbols_are_read() -> None:
    data = b'date,metric,value\n2026-01-05,m,"$1,234.50"\n2026-01-06,m,"1.234,5"\n2026-01-07,m,(12)\n'
    plan = plan_import(data, "m.csv")
    assert plan.preview("metric_observations")["value"].to_list() == [1234.5, 1234.5, -12.0]


def test_unreadable_value_is_reported_with_row_column_and_value() -> None:
    data = b"date,metric,value\n2026-01-05,m,12\n2026-01-06,m,twelve\n"
    plan = plan_import(data, "m.csv")
    assert [(p.row, p.column, p.value, p.expected) for p in plan.problems] == [
        (2, "value", "twelve", "is not a number")
    ]
    assert str(plan.problems[0]).startswith("m.csv: metric_observations row 2, column `value`: `twelve`")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=2048), name=st.sampled_from(["x.csv", "x.json", "x.ndjson", "x.tsv", "x", "x.xlsx"]))
def test_arbitrary_bytes_only_ever_raise_import_failed(data: bytes, name: str) -> None:
    with contextlib.suppress(ImportFailed):
        plan_import(data, name, entity="incidents")


cells = st.one_of(st.none(), st.text(max_size=12), st.integers(), st.floats(allow_nan=True), st.booleans())


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    header=st.lists(st.text(max_size=10), min_size=1, max_size=6),
    rows=st.lists(st.lists(cells, max_size=7), max_size=8),
    delimiter=st.sampled_from([",", ";", "\t"]),
)
def test_arbitrary_tables_only_ever_raise_import_failed(
    header: list[str], rows: list[list[object]], delimiter: str
) -> None:
    import csv

    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter)
    writer.writerow(header)
    writer.writerows(rows)
    as_json = json.dumps([dict(zip(header, r, strict=False)) for r in rows])
    for data, name in ((out.getvalue().encode(), "t.csv"), (as_json.encode(), "t.json")):
        with contextlib.suppress(ImportFailed):
            recognise(data, name)
            plan_import(data, name, entity="cost_events")


def _workbook(rows: list[list[str]], sheet_xml: Callable[[bytes], bytes] = lambda xml: xml) -> bytes:
    """An .xlsx of one sheet `Data` holding ``rows``, its sheet XML passed through ``sheet_xml``."""
    import xlsxwriter

    written = io.BytesIO()
    book = xlsxwriter.Workbook(written)
    sheet = book.add_worksheet("Data")
    for index, row in enumerate(rows):
        sheet.write_row(index, 0, row)
    book.close()
    source, out = zipfile.ZipFile(written), io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            body = source.read(info.filename)
            target.writestr(info.filename, sheet_xml(body) if info.filename == "xl/worksheets/sheet1.xml" else body)
    return out.getvalue()


FAR_CELL = b'</row><row r="1048576"><c r="XFD1048576"><v>1</v></c></row></sheetData>'


def test_a_sheet_reaching_the_last_cell_is_refused_before_calamine_reads_it() -> None:
    hostile = _workbook([["a", "b"], ["1", "2"]], lambda xml: xml.replace(b"</row></sheetData>", FAR_CELL))
    assert len(hostile) < 8192
    with pytest.raises(ImportFailed) as refused:
        read_source(hostile, "far.xlsx")
    assert str(refused.value).startswith("far.xlsx: sheet `Data` reaches row 1,048,576 and column 16,384")
    declared = _workbook(
        [["a"], ["1"]], lambda xml: xml.replace(b'<dimension ref="A1:A2"/>', b'<dimension ref="A1:XFD1048576"/>')
    )
    with pytest.raises(ImportFailed, match="sheet `Data` reaches row 1,048,576 and column 16,384"):
        read_source(declared, "declared.xlsx")
    wide = _workbook(
        [["a"], ["1"]],
        lambda xml: xml.replace(b"</row></sheetData>", b'</row><row r="3"><c r="CCC3"><v>1</v></c></row></sheetData>'),
    )
    with pytest.raises(ImportFailed, match="column 2,109"):  # CCC = 3·26² + 3·26 + 3
        read_source(wide, "wide.xlsx")


def test_a_reader_that_aborts_costs_one_import_not_the_process() -> None:
    hostile = _workbook([["a"], ["1"]], lambda xml: xml.replace(b"</row></sheetData>", FAR_CELL))
    with pytest.raises(ImportFailed, match=r"far\.xlsx: the Excel reader stopped \(SIGABRT\)"):
        read_isolated("excel", hostile, "far.xlsx", "Data")
    with pytest.raises(ImportFailed, match=r"slow\.parquet: reading it took longer than 0 s"):
        read_isolated("parquet", b"PAR1", "slow.parquet", seconds=0.01)
    assert read_isolated("excel", _workbook([["a"], ["1"]]), "ok.xlsx", "Data").to_series().to_list() == ["a", "1"]


def test_a_zip_bomb_workbook_is_refused_by_its_unpacked_size(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reading, "MAX_UNCOMPRESSED", 1 << 20)
    bomb = _workbook([["a"], ["1"]], lambda xml: xml.replace(b"<sheetData>", b"<sheetData>" + b" " * (2 << 20)))
    assert len(bomb) < 20_000
    with pytest.raises(
        ImportFailed, match=r"bomb\.xlsx: the workbook unpacks to 2\.0 MiB, more than the limit of 1\.0 MiB"
    ):
        read_source(bomb, "bomb.xlsx")


def test_the_limit_counts_bytes_read_not_the_reported_size(tmp_path: Path) -> None:
    with pytest.raises(ImportFailed, match=r"zero: holds more than the import limit of 1\.0 KiB"):
        read_source("/dev/zero", "zero", max_bytes=1024)
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_bytes(b"a,b\n" + b"1,2\n" * 2000))
    writer.start()
    with pytest.raises(ImportFailed, match=r"pipe\.csv: holds more than the import limit of 1\.0 KiB"):
        read_source(fifo, max_bytes=1024)
    with contextlib.suppress(OSError):  # the reader stopped early: unblock the writer
        os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    writer.join(timeout=5)


def test_twenty_thousand_empty_header_columns_are_refused_quickly() -> None:
    data = b"a,b" + b"," * 20_000 + b"\n1,2\n"
    started = time.perf_counter()
    with pytest.raises(ImportFailed, match=r"wide\.csv: the header row has 20,002 columns \(2 of them named\)"):
        read_source(data, "wide.csv")
    assert time.perf_counter() - started < 2.0
    trailing = read_source(b"a,b" + b"," * 500 + b"\n1,2\n3,4\n", "tail.csv")
    assert trailing.frame.columns == ["a", "b"] and trailing.frame["b"].to_list() == ["2", "4"]


def test_too_many_columns_or_json_keys_are_refused() -> None:
    header = ",".join(f"c{i}" for i in range(2001)).encode()
    with pytest.raises(ImportFailed, match="2,001 columns"):
        read_source(header + b"\n" + b"1," * 2000 + b"1\n", "many.csv")
    records = [{f"k{i}": 1} for i in range(20_000)]
    started = time.perf_counter()
    with pytest.raises(
        ImportFailed, match=r"keys\.json: the records have more than 2,000 distinct fields \(counted to record 2,001"
    ):
        read_source(json.dumps(records).encode(), "keys.json")
    assert time.perf_counter() - started < 2.0
    nested = [{"a": {f"k{i}": 1 for i in range(2001)}}]
    with pytest.raises(ImportFailed, match="more than 2,000 distinct fields"):
        read_source(json.dumps(nested).encode(), "nested.json")


def test_a_nul_byte_anywhere_is_refused_with_row_and_column() -> None:
    late = b"incident_id,title,opened_at\n" + b"INC-1,fine,2026-01-05\n" * 500 + b"INC-9,bad\x00title,2026-01-06\n"
    assert late.index(b"\x00") > 8192
    with pytest.raises(ImportFailed, match=r"late\.csv: row 501, column `title` holds a NUL character"):
        plan_import(late, "late.csv", entity="incidents")
    escaped = json.dumps([{"incident_id": "INC-1", "title": "a\u0000b"}]).encode()
    with pytest.raises(ImportFailed, match=r"esc\.json: row 1, column `title` holds a NUL character"):
        read_source(escaped, "esc.json")


def test_a_parquet_with_datetimes_out_of_range_is_refused_per_row() -> None:
    frame = pl.DataFrame(
        {
            "deployment_id": ["d1", "d2", "d3"],
            "environment": ["prod"] * 3,
            "status": ["success"] * 3,
            "finished_at": pl.Series([2**62, -(2**62), 1_767_225_600_000_000], dtype=pl.Int64).cast(pl.Datetime("us")),
        }
    )
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    plan = plan_import(buffer.getvalue(), "far.parquet", entity="deployments")
    assert [(p.row, p.column) for p in plan.problems] == [(1, "finished_at"), (2, "finished_at")]
    assert all("outside the accepted dates 1970-01-01 to 2100-12-31" in p.expected for p in plan.problems)


def test_a_rust_panic_in_a_reader_becomes_import_failed(monkeypatch: pytest.MonkeyPatch) -> None:
    panic = type("PanicException", (BaseException,), {})

    def explode(*_: object, **__: object) -> None:
        raise panic("called `Option::unwrap()` on a `None` value")

    monkeypatch.setattr(reading, "_read_csv", explode)
    with pytest.raises(ImportFailed, match=r"p\.csv: could not be read \(the reader failed: called `Option::unwrap"):
        read_source(b"a,b\n1,2\n", "p.csv")
    monkeypatch.setattr(plan_module, "_read_best", explode)
    with pytest.raises(ImportFailed, match=r"p\.csv: could not be mapped \(the reader failed"):
        plan_import(b"a,b\n1,2\n", "p.csv")
    monkeypatch.setattr(reading, "_read_csv", lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        read_source(b"a,b\n1,2\n", "p.csv")

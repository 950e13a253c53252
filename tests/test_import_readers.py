"""Reading uploads: encodings, delimiters, Excel sheets, size limits, and hostile input that only gets a message."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.importing import ImportFailed, ImportOptions, plan_import, read_source, recognise

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

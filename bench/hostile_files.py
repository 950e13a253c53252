"""``python -m bench.hostile_files --count 10000``: import a corpus of hostile files and count what happens.

Each file is generated from a seed (so a run can be repeated file for file) by one of the families
below: truncated or garbled CSV, JSON and NDJSON, wrong encodings, NUL bytes, NaN/inf/negative
amounts, year-0 dates, empty trailing headers, thousands of columns or JSON keys, deep nesting,
workbooks declaring the last cell of the sheet, zip bombs, Parquet with out-of-range datetimes...
A worker process imports them one by one through the real path (``plan_import`` then
``run_import``) into a throwaway SQLite workspace; the parent watches it, so a file that hangs
(over ``--timeout`` seconds) or kills the process is counted and the worker restarted.

Every file is classed ``refused`` (an ``ImportFailed``), ``accepted``, ``traceback`` (any other
exception, a Rust panic included), ``memory`` (``MemoryError``), ``hang`` or ``abort``. After a refusal
the workspace's database must be byte-identical to before (its SQL dump hashed), and the refusal
must name the file. The counts, the peak resident memory and the worst cases are printed.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import io
import json
import os
import random
import resource
import select
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

if TYPE_CHECKING:
    from core.store.database import Store

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "imports"
HANG_SECONDS = 30.0
OUTCOMES = ("refused", "accepted", "traceback", "memory", "hang", "abort")


@dataclass(frozen=True)
class HostileFile:
    """One generated file: its family, its name (which the refusal must repeat) and the entity it claims."""

    family: str
    filename: str
    data: bytes
    entity: str | None = None


def corpus(count: int, seed: int = 20261204) -> Iterator[HostileFile]:
    """``count`` hostile files, the families taken in turn, each file from its own seeded generator."""
    names = list(FAMILIES)
    for index in range(count):
        family = names[index % len(names)]
        rng = random.Random(f"{seed}-{index}")
        stem, suffix, data, entity = FAMILIES[family](rng)
        yield HostileFile(family, f"{index:05d}-{stem}{suffix}", data, entity)


def main(argv: list[str] | None = None) -> int:
    """Generate, import and report; exit 1 when any file gave a traceback, hang, abort or changed the store."""
    parser = argparse.ArgumentParser(prog="python -m bench.hostile_files", description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=20261204)
    parser.add_argument("--timeout", type=float, default=HANG_SECONDS, help="seconds before a file counts as a hang")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return _work(args.worker)
    started = time.perf_counter()
    summary = judge_corpus(corpus(args.count, args.seed), args.timeout)
    print(format_summary(summary, time.perf_counter() - started))
    bad = sum(summary.outcomes[o] for o in ("traceback", "hang", "abort", "memory"))
    return 1 if bad or summary.changed or summary.unnamed else 0


@dataclass
class Summary:
    """What the corpus did: outcomes counted overall and per family, and the files that went wrong."""

    outcomes: Counter[str]
    by_family: dict[str, Counter[str]]
    changed: list[str]
    unnamed: list[str]
    failures: list[tuple[str, str, str]]
    peak_rss_mb: float
    reader_peak_rss_mb: float
    slowest: tuple[float, str]
    seconds: Counter[str]


def judge_corpus(files: Iterator[HostileFile], timeout: float = HANG_SECONDS) -> Summary:
    """Import every file in a watched worker and class the outcome of each."""
    summary = Summary(Counter(), {}, [], [], [], 0.0, 0.0, (0.0, ""), Counter())
    with tempfile.TemporaryDirectory(prefix="hostile-") as folder:
        home = Path(folder)
        worker: _Worker | None = None
        for file in files:
            path = home / "in" / file.filename
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(file.data)
            worker = worker or _Worker(home)
            result = worker.judge(path, file.entity, timeout)
            if result["outcome"] in ("hang", "abort"):
                worker = None
            path.unlink()
            _count(summary, file, result)
            done = sum(summary.outcomes.values())
            if done % 1000 == 0:
                print(f"{done:,} files: " + ", ".join(f"{o} {summary.outcomes[o]}" for o in OUTCOMES), file=sys.stderr)
        if worker is not None:
            worker.close()
    return summary


def format_summary(summary: Summary, seconds: float) -> str:
    """The counts, per family and overall, with peak memory and the first failures."""
    total = sum(summary.outcomes.values())
    lines = [f"{total:,} hostile files in {seconds:,.0f} s"]
    lines.append("  " + ", ".join(f"{o} {summary.outcomes[o]:,}" for o in OUTCOMES))
    lines.append(
        f"  store changed after a refusal: {len(summary.changed)}; refusals not naming the file: {len(summary.unnamed)}"
    )
    lines.append(
        f"  peak RSS: worker {summary.peak_rss_mb:,.0f} MB, reader children {summary.reader_peak_rss_mb:,.0f} MB"
    )
    lines.append(f"  slowest file: {summary.slowest[0]:.1f} s ({summary.slowest[1]})")
    for family, counts in sorted(summary.by_family.items()):
        mean = summary.seconds[family] / max(1, sum(counts.values()))
        found = ", ".join(f"{o} {counts[o]}" for o in OUTCOMES if counts[o])
        lines.append(f"  {family:28} {found} ({mean:.2f} s a file)")
    for name, outcome, detail in summary.failures[:20]:
        lines.append(f"  ! {name}: {outcome}: {detail}")
    for name in [*summary.changed, *summary.unnamed][:20]:
        lines.append(f"  ! {name}: store changed or refusal unnamed")
    return "\n".join(lines)


def _count(summary: Summary, file: HostileFile, result: dict[str, object]) -> None:
    outcome = str(result["outcome"])
    summary.outcomes[outcome] += 1
    summary.by_family.setdefault(file.family, Counter())[outcome] += 1
    if outcome not in ("refused", "accepted"):
        summary.failures.append((file.filename, outcome, str(result.get("detail", ""))[:300]))
    if outcome == "refused":
        if result.get("changed"):
            summary.changed.append(file.filename)
        if file.filename not in str(result.get("detail", "")):
            summary.unnamed.append(file.filename)
    summary.peak_rss_mb = max(summary.peak_rss_mb, float(result.get("rss_mb", 0.0)))  # type: ignore[arg-type]
    summary.reader_peak_rss_mb = max(summary.reader_peak_rss_mb, float(result.get("reader_rss_mb", 0.0)))  # type: ignore[arg-type]
    seconds = float(result.get("seconds", 0.0))  # type: ignore[arg-type]
    summary.seconds[file.family] += seconds  # type: ignore[assignment]
    if seconds > summary.slowest[0]:
        summary.slowest = (seconds, file.filename)


class _Worker:
    """A ``--worker`` process importing one file per request line, answering one JSON line each."""

    def __init__(self, home: Path) -> None:
        env = {**os.environ, "THROUGHLINE_HOME": str(home / "workspace")}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.hostile_files", "--worker", str(home / "workspace")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            cwd=Path(__file__).resolve().parent.parent,
            text=True,
        )

    def judge(self, path: Path, entity: str | None, timeout: float) -> dict[str, object]:
        """The worker's verdict on ``path``, or ``hang``/``abort`` when it does not answer."""
        assert self.process.stdin is not None and self.process.stdout is not None
        started = time.perf_counter()
        try:
            self.process.stdin.write(json.dumps({"path": str(path), "entity": entity}) + "\n")
            self.process.stdin.flush()
        except BrokenPipeError:
            return self._stop("abort", started)
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        if not ready:
            return self._stop("hang", started)
        line = self.process.stdout.readline()
        if not line:
            return self._stop("abort", started)
        return json.loads(line)

    def _stop(self, outcome: str, started: float) -> dict[str, object]:
        self.process.kill()
        code = self.process.wait()
        return {"outcome": outcome, "detail": f"exit code {code}", "seconds": time.perf_counter() - started}

    def close(self) -> None:
        """End the worker by closing its input."""
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=60)


def _work(folder: Path) -> int:
    """The worker loop: import each requested file into the workspace in ``folder``, answer its outcome."""
    from core.importing import ImportFailed, plan_import, run_import
    from core.store.database import open_store
    from core.store.workspace import Workspace

    folder.mkdir(parents=True, exist_ok=True)
    database = folder / "throughline.db"
    store = open_store(Workspace(home=folder, database_url=f"sqlite:///{database}"))
    _seed(store)
    for line in sys.stdin:
        request = json.loads(line)
        path, entity = Path(request["path"]), request["entity"]
        before = database.read_bytes()
        started = time.perf_counter()
        result: dict[str, object]
        try:
            plan = plan_import(path, path.name, entity=entity, store=store)
            run_import(store, plan, "hostile")
            result = {"outcome": "accepted"}
        except ImportFailed as error:
            result = {"outcome": "refused", "detail": str(error)[:2000], "changed": _changed(database, before)}
        except MemoryError:
            result = {"outcome": "memory"}
        except BaseException as error:  # a Rust panic is a BaseException: it is a traceback here
            if isinstance(error, KeyboardInterrupt | SystemExit):
                raise
            result = {"outcome": "traceback", "detail": f"{type(error).__name__}: {str(error)[:300]}"}
        result["seconds"] = time.perf_counter() - started
        result["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        result["reader_rss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(json.dumps(result), flush=True)
    return 0


def _seed(store: Store) -> None:
    """A few teams and people, so references resolve and a refusal has data to leave untouched."""
    from core.importing import plan_import, run_import

    teams = b"team_id,name\nT1,Payments\nT2,Search\n"
    people = b"person_id,name,team_id,kind,hourly_cost\np1,Ada,T1,human,90\nbot,Bot,T2,agent,0\n"
    run_import(store, plan_import(teams, "teams.csv", entity="teams", store=store), "seed")
    run_import(store, plan_import(people, "people.csv", entity="people", store=store), "seed")


def _changed(database: Path, before: bytes) -> bool:
    """True when a table of ``database`` differs from the copy ``before`` (same file bytes: no dump needed)."""
    if database.read_bytes() == before:
        return False
    with tempfile.NamedTemporaryFile(suffix=".db") as copy:
        copy.write(before)
        copy.flush()
        return _table_hash(Path(copy.name)) != _table_hash(database)


def _table_hash(database: Path) -> str:
    """A hash of every table's rows in ``database`` (its SQL dump)."""
    connection = sqlite3.connect(database)
    try:
        digest = hashlib.sha256()
        for statement in connection.iterdump():
            digest.update(statement.encode("utf-8", errors="surrogatepass"))
        return digest.hexdigest()
    finally:
        connection.close()


# ---------------------------------------------------------------- the families of hostile files

Generated = tuple[str, str, bytes, str | None]
"""A family's output: name stem, suffix, bytes and the entity to import it as (None: let it be recognised)."""

HOSTILE_VALUES = (
    "NaN", "nan", "inf", "-inf", "Infinity", "1e309", "-1e309", "-1", "-0.01", "-1e12", "1e308",
    "0000-01-01", "-0001-01-01", "0000-00-00", "9999-12-31", "1969-12-31", "2101-01-01", "-999999-01-01",
    "+275760-09-13", "2024-02-30", "2024-13-01", "\x00", "a\x00b", "=HYPERLINK(\"http://x\")", " =1+1",
    "\uff1dSUM(A1)", "@cmd", "+1", "\t=1", "\r\n=1", "", " ", "\\N", "null", "None", "\u202etxt", "\ufeff",
    "x" * 10_000, "99999999999999999999999999", "0x1F", "1,2,3", '"', '""', "'", "\\", "\u0000\u0001\u0002",
)  # fmt: skip
"""Cell values that have broken importers: non-finite and negative numbers, impossible dates, NUL, formulas."""

ENTITY_HEADERS = {
    "cost_events": ["event_id", "occurred_at", "source", "amount", "currency", "quantity", "unit", "person_id"],
    "incidents": ["incident_id", "title", "service", "team_id", "severity", "opened_at", "resolved_at"],
    "deployments": ["deployment_id", "service", "environment", "status", "started_at", "finished_at"],
    "work_items": ["work_item_key", "title", "team_id", "status", "story_points", "created_at", "resolved_at"],
    "people": ["person_id", "name", "team_id", "kind", "hourly_cost"],
    "milestones": ["milestone_id", "name", "date"],
}
_GOOD = {
    "event_id": "e{i}", "occurred_at": "2026-01-0{d}", "source": "llm", "amount": "{n}.5", "currency": "USD",
    "quantity": "{n}", "unit": "tokens", "person_id": "p1", "incident_id": "INC-{i}", "title": "Title {i}",
    "service": "api", "team_id": "T1", "severity": "SEV2", "opened_at": "2026-01-0{d} 10:00",
    "resolved_at": "2026-01-0{d} 12:00", "deployment_id": "D{i}", "environment": "prod", "status": "success",
    "started_at": "2026-01-0{d}T09:00:00Z", "finished_at": "2026-01-0{d}T09:05:00Z", "work_item_key": "PAY-{i}",
    "story_points": "{n}", "created_at": "2026-01-0{d}", "person_id_": "p{i}", "name": "Name {i}", "kind": "human",
    "hourly_cost": "{n}0", "milestone_id": "M{i}", "date": "2026-02-0{d}",
}  # fmt: skip


def _table(rng: random.Random, entity: str, rows: int, hostile: float) -> list[list[str]]:
    header = ENTITY_HEADERS[entity]
    body = []
    for i in range(1, rows + 1):
        row = []
        for column in header:
            key = "person_id_" if entity == "people" and column == "person_id" else column
            value = _GOOD[key].format(i=i, d=rng.randint(1, 9), n=rng.randint(0, 99))
            row.append(rng.choice(HOSTILE_VALUES) if rng.random() < hostile else value)
        body.append(row)
    return [header, *body]


def _csv(rows: list[list[str]], delimiter: str = ",") -> str:
    out = io.StringIO()
    import csv

    csv.writer(out, delimiter=delimiter, lineterminator="\n").writerows(rows)
    return out.getvalue()


def _entity(rng: random.Random) -> str:
    return rng.choice(list(ENTITY_HEADERS))


def csv_hostile_values(rng: random.Random) -> Generated:
    """A canonical CSV of one entity with hostile values sprinkled in."""
    entity = _entity(rng)
    text = _csv(_table(rng, entity, rng.randint(1, 40), rng.choice([0.05, 0.2, 0.6])), rng.choice([",", ";", "\t"]))
    return entity, ".csv", text.encode("utf-8", errors="surrogatepass"), entity


def csv_truncated(rng: random.Random) -> Generated:
    """A good CSV cut off at a random byte."""
    entity = _entity(rng)
    data = _csv(_table(rng, entity, rng.randint(2, 60), 0.0)).encode()
    return entity, ".csv", data[: rng.randint(0, len(data))], rng.choice([entity, None])


def csv_garbled(rng: random.Random) -> Generated:
    """A good CSV with random bytes overwritten, inserted or deleted."""
    entity = _entity(rng)
    data = bytearray(_csv(_table(rng, entity, rng.randint(2, 60), 0.0)).encode())
    for _ in range(rng.randint(1, 30)):
        at = rng.randrange(len(data))
        action = rng.random()
        if action < 0.5:
            data[at] = rng.randrange(256)
        elif action < 0.8:
            data[at:at] = bytes([rng.choice(b'"\n\r,;\x00\xff\xfe')])
        else:
            del data[at]
    return entity, rng.choice([".csv", ".tsv", ".txt", ""]), bytes(data), rng.choice([entity, None])


def csv_nul_late(rng: random.Random) -> Generated:
    """A CSV whose first NUL byte comes after the first 8 KiB (the binary sniff looks no further)."""
    rows = _table(rng, "incidents", 200, 0.0)
    rows[rng.randint(150, 200)][1] = "bad\x00title"
    return "incidents", ".csv", _csv(rows).encode(), "incidents"


def csv_empty_trailing_headers(rng: random.Random) -> Generated:
    """A CSV whose header ends in thousands of empty columns (quadratic to trim, once)."""
    rows = _table(rng, "milestones", rng.randint(1, 20), 0.0)
    tail = "," * rng.choice([10, 500, 1999, 2500, 20_000, 50_000, 100_000])
    text = tail.join(["\n".join(",".join(r) for r in rows[:1]), ""]) + "\n" + _csv(rows[1:])
    return "milestones", ".csv", text.encode(), rng.choice(["milestones", None])


def csv_many_columns(rng: random.Random) -> Generated:
    """A CSV with thousands of named columns."""
    width = rng.choice([1999, 2001, 5000, 30_000])
    header = ",".join(f"c{i}" for i in range(width))
    row = ",".join(str(i) for i in range(width))
    return "wide", ".csv", f"{header}\n{row}\n".encode(), rng.choice(["incidents", None])


def csv_wrong_encoding(rng: random.Random) -> Generated:
    """A CSV in UTF-16 or UTF-32 without a BOM, Shift-JIS, or UTF-8 cut inside a character."""
    entity = _entity(rng)
    text = _csv(_table(rng, entity, rng.randint(1, 20), 0.1)).replace("Title", "Tïtlé ünïcødé 東京")
    encoding = rng.choice(["utf-16-le", "utf-16-be", "utf-32", "shift_jis", "utf-8-cut", "cp1252"])
    if encoding == "utf-8-cut":
        data = text.encode("utf-8", errors="surrogatepass")
        data = data[: data.find("東".encode()) + 1] if "東" in text else data[:-1]
    else:
        data = text.encode(encoding, errors="replace")
    return entity, ".csv", data, rng.choice([entity, None])


def csv_huge_field(rng: random.Random) -> Generated:
    """A CSV with one enormous or unterminated quoted field."""
    size = rng.choice([1 << 16, 1 << 20, 5 << 20])
    quote = rng.choice(['"', ""])
    text = f"incident_id,title,opened_at\nINC-1,{quote}{'x' * size},2026-01-05\nINC-2,t,2026-01-06\n"
    return "incidents", ".csv", text.encode(), "incidents"


def json_deep(rng: random.Random) -> Generated:
    """JSON nested thousands of levels deep, as arrays or objects."""
    depth = rng.choice([50, 1000, 10_000, 200_000])
    if rng.random() < 0.5:
        text = "[" * depth + "1" + "]" * depth
    else:
        text = '[{"incident_id": "INC-1", "x": ' + '{"a": ' * depth + "1" + "}" * depth + "}]"
    return "deep", ".json", text.encode(), rng.choice(["incidents", None])


def json_many_keys(rng: random.Random) -> Generated:
    """JSON records with thousands of distinct keys, flat or nested."""
    keys = rng.choice([1500, 2001, 20_000, 50_000])
    if rng.random() < 0.5:
        records = [{f"k{i}": i} for i in range(keys)]
    else:
        records = [{"incident_id": "INC-1", "nested": {f"k{i}": i for i in range(keys)}}]
    return "keys", ".json", json.dumps(records).encode(), rng.choice(["incidents", None])


def json_hostile_values(rng: random.Random) -> Generated:
    """JSON records of one entity with hostile values, numbers as numbers where they parse."""
    entity = _entity(rng)
    rows = _table(rng, entity, rng.randint(1, 30), 0.3)
    records = [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]
    for record in records:
        for key, value in record.items():
            with contextlib.suppress(ValueError):
                record[key] = float(value) if rng.random() < 0.5 else value  # type: ignore[assignment]
    text = json.dumps(records, allow_nan=True)
    return entity, ".json", text.encode("utf-8", errors="surrogatepass"), entity


def json_garbled(rng: random.Random) -> Generated:
    """JSON or NDJSON truncated or with bytes flipped."""
    records = json.loads((FIXTURES / rng.choice(["gh_pr_list.json", "github_pulls_rest.json"])).read_text())
    ndjson = rng.random() < 0.5
    text = "\n".join(json.dumps(r) for r in records) if ndjson else json.dumps(records)
    data = bytearray(text.encode())
    if rng.random() < 0.5:
        data = data[: rng.randint(0, len(data))]
    for _ in range(rng.randint(0, 10)):
        if data:
            data[rng.randrange(len(data))] = rng.randrange(256)
    return "prs", ".ndjson" if ndjson else ".json", bytes(data), None


def fixture_mutated(rng: random.Random) -> Generated:
    """A real export from the test fixtures with lines dropped, duplicated or cut, and values swapped."""
    path = rng.choice(sorted(p for p in FIXTURES.iterdir() if p.is_file()))
    lines = path.read_bytes().split(b"\n")
    for _ in range(rng.randint(1, 6)):
        at = rng.randrange(len(lines))
        action = rng.random()
        if action < 0.3 and len(lines) > 1:
            del lines[at]
        elif action < 0.6:
            lines.insert(at, lines[rng.randrange(len(lines))])
        else:
            value = rng.choice(HOSTILE_VALUES).encode("utf-8", errors="surrogatepass")
            parts = lines[at].split(b",")
            parts[rng.randrange(len(parts))] = value
            lines[at] = b",".join(parts)
    return path.stem, path.suffix, b"\n".join(lines), None


def gitlog_garbled(rng: random.Random) -> Generated:
    """``git log`` text with fields missing, numbers mangled or NULs."""
    text = (FIXTURES / "acme-web.gitlog").read_bytes()
    data = bytearray(text[: rng.randint(1, len(text))])
    for _ in range(rng.randint(0, 8)):
        if data:
            data[rng.randrange(len(data))] = rng.choice(b"\x1e\x1f\x00\t\n-9")
    return "acme", ".gitlog", bytes(data), None


def binary_noise(rng: random.Random) -> Generated:
    """Random bytes under a text, JSON, Excel or Parquet name, sometimes with the right magic number."""
    magic = rng.choice([b"", b"PAR1", b"PK\x03\x04", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", b"\xef\xbb\xbf", b"\xff\xfe"])
    suffix = rng.choice([".csv", ".json", ".xlsx", ".parquet", ".ndjson", ".xls", ""])
    return "noise", suffix, magic + rng.randbytes(rng.randint(0, 4096)), rng.choice([None, _entity(rng)])


def xlsx_far_cell(rng: random.Random) -> Generated:
    """A tiny workbook whose sheet declares, or holds, a cell far out (up to XFD1048576)."""
    entity = _entity(rng)
    book = _workbook(_table(rng, entity, 3, 0.0))
    cell = rng.choice(["XFD1048576", "A1048576", "XFD1", "ZZ99999", "AAAA1", "CV250000"])
    if rng.random() < 0.5:
        patched = _patch_sheet(book, lambda xml: _replace_dimension(xml, f"A1:{cell}"))
    else:
        row = "".join(ch for ch in cell if ch.isdigit())
        far = f'<row r="{row}"><c r="{cell}"><v>1</v></c></row></sheetData>'.encode()
        patched = _patch_sheet(book, lambda xml: xml.replace(b"</sheetData>", far))
    return "far", ".xlsx", patched, rng.choice([entity, None])


def xlsx_zip_bomb(rng: random.Random) -> Generated:
    """A workbook whose sheet unpacks to many MiB of white space, or whose zip claims to unpack to over 1 GiB."""
    variant = rng.choice(["real-16", "real-64", "claims-huge", "claims-small"])
    if variant.startswith("real"):
        data = _bomb(int(variant.split("-")[1]) << 20)
    else:
        claimed = (1 << 30) + rng.randint(1, 1 << 30) if variant == "claims-huge" else rng.randint(1, 100)
        data = _claiming(_bomb(1 << 20), "xl/worksheets/sheet1.xml", claimed)
    return f"bomb-{variant}", ".xlsx", data, rng.choice(["incidents", None])


def xlsx_garbled(rng: random.Random) -> Generated:
    """A workbook truncated, with bytes flipped inside its zip, or with sheet XML made invalid."""
    entity = _entity(rng)
    book = bytearray(_workbook(_table(rng, entity, rng.randint(1, 20), 0.1)))
    action = rng.random()
    if action < 0.3:
        book = book[: rng.randint(4, len(book))]
    elif action < 0.6:
        for _ in range(rng.randint(1, 20)):
            book[rng.randrange(4, len(book))] = rng.randrange(256)
    else:
        junk = rng.choice([b"<c r=", b"&#0;", b"<!DOCTYPE x [<!ENTITY a 'aaaa'>]>", b"\x00", b"</row>"])
        book = bytearray(_patch_sheet(bytes(book), lambda xml: xml.replace(b"<sheetData>", b"<sheetData>" + junk)))
    return entity, ".xlsx", bytes(book), rng.choice([entity, None])


def xlsx_hostile_values(rng: random.Random) -> Generated:
    """A well-formed workbook of one entity with hostile values in its cells."""
    entity = _entity(rng)
    rows = [[v.replace("\x00", "") for v in r] for r in _table(rng, entity, rng.randint(1, 30), 0.3)]
    return entity, ".xlsx", _workbook(rows), entity


def parquet_out_of_range(rng: random.Random) -> Generated:
    """Parquet whose datetimes or dates lie far outside what Python's ``datetime`` can hold."""
    extreme = rng.choice([2**62, -(2**62), 2**63 - 1, -(2**63), 253402300800_000_000, -62135596800_000_001])
    unit = rng.choice(["ns", "us", "ms"])
    frame = pl.DataFrame(
        {
            "deployment_id": ["D1", "D2"],
            "environment": ["prod", "prod"],
            "status": ["success", "failure"],
            "finished_at": pl.Series([extreme, 1_767_225_600_000_000], dtype=pl.Int64).cast(pl.Datetime(unit)),
        }
    )
    if rng.random() < 0.3:
        frame = frame.with_columns(started_at=pl.Series([2**31 - 1, -(2**31)], dtype=pl.Int32).cast(pl.Date))
    return "deployments", ".parquet", _parquet(frame), rng.choice(["deployments", None])


def parquet_hostile_values(rng: random.Random) -> Generated:
    """Parquet cost events with NaN, infinite and negative amounts as real floats, and NUL in text."""
    values = [rng.choice([float("nan"), float("inf"), -float("inf"), -1.0, 1e308, 2.5]) for _ in range(10)]
    frame = pl.DataFrame(
        {
            "event_id": [f"e{i}" for i in range(10)],
            "occurred_at": ["2026-01-05"] * 10,
            "source": ["llm"] * 10,
            "amount": values,
            "detail": [rng.choice(["ok", "a\x00b", "=1+1"]) for _ in range(10)],
        }
    )
    return "costs", ".parquet", _parquet(frame), "cost_events"


def parquet_garbled(rng: random.Random) -> Generated:
    """A Parquet file truncated or with bytes flipped (footer and pages alike)."""
    entity = _entity(rng)
    rows = _table(rng, entity, rng.randint(1, 50), 0.0)
    data = bytearray(_parquet(pl.DataFrame(rows[1:], schema=rows[0], orient="row")))
    if rng.random() < 0.4:
        data = data[: rng.randint(4, len(data))]
    for _ in range(rng.randint(1, 12)):
        data[rng.randrange(len(data))] = rng.randrange(256)
    return entity, ".parquet", bytes(data), rng.choice([entity, None])


FAMILIES: dict[str, Callable[[random.Random], Generated]] = {
    f.__name__: f
    for f in (
        csv_hostile_values,
        csv_truncated,
        csv_garbled,
        csv_nul_late,
        csv_empty_trailing_headers,
        csv_many_columns,
        csv_wrong_encoding,
        csv_huge_field,
        json_deep,
        json_many_keys,
        json_hostile_values,
        json_garbled,
        fixture_mutated,
        gitlog_garbled,
        binary_noise,
        xlsx_far_cell,
        xlsx_zip_bomb,
        xlsx_garbled,
        xlsx_hostile_values,
        parquet_out_of_range,
        parquet_hostile_values,
        parquet_garbled,
    )
}
"""Every family, in the order the corpus takes them."""


def _workbook(rows: list[list[str]]) -> bytes:
    import xlsxwriter

    out = io.BytesIO()
    book = xlsxwriter.Workbook(out, {"strings_to_numbers": False, "strings_to_formulas": False})
    book.set_properties({"created": datetime(2026, 1, 1)})
    sheet = book.add_worksheet("Data")
    for index, row in enumerate(rows):
        sheet.write_row(index, 0, row)
    book.close()
    return out.getvalue()


def _patch_sheet(book: bytes, patch: Callable[[bytes], bytes]) -> bytes:
    try:
        source = zipfile.ZipFile(io.BytesIO(book))
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
            for info in source.infolist():
                body = source.read(info.filename)
                target.writestr(info, patch(body) if info.filename == "xl/worksheets/sheet1.xml" else body)
        return out.getvalue()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):
        return book


def _replace_dimension(xml: bytes, ref: str) -> bytes:
    start = xml.find(b"<dimension ")
    end = xml.find(b"/>", start)
    return xml[:start] + f'<dimension ref="{ref}"'.encode() + xml[end:] if start >= 0 else xml


@functools.cache
def _bomb(size: int) -> bytes:
    """A workbook whose sheet XML holds ``size`` bytes of spaces (built once per size: deflate is slow)."""
    book = _workbook([["incident_id", "title", "opened_at"], ["INC-1", "t", "2026-01-05"]])
    source = zipfile.ZipFile(io.BytesIO(book))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            body = source.read(info.filename)
            if info.filename == "xl/worksheets/sheet1.xml":
                head, _, tail = body.partition(b"<sheetData>")
                with target.open(info, "w", force_zip64=True) as stream:
                    stream.write(head + b"<sheetData>")
                    block = b" " * (1 << 20)
                    for _ in range(size >> 20):
                        stream.write(block)
                    stream.write(tail)
            else:
                target.writestr(info, body)
    return out.getvalue()


def _claiming(book: bytes, member: str, size: int) -> bytes:
    """``book`` with the unpacked size of ``member`` rewritten to ``size`` in its local and central headers."""
    info = zipfile.ZipFile(io.BytesIO(book)).getinfo(member)
    data = bytearray(book)
    data[info.header_offset + 22 : info.header_offset + 26] = struct.pack("<I", size & 0xFFFFFFFF)
    central = data.find(b"PK\x01\x02")
    while central >= 0:
        length = struct.unpack_from("<H", data, central + 28)[0]
        if bytes(data[central + 46 : central + 46 + length]) == member.encode():
            data[central + 24 : central + 28] = struct.pack("<I", size & 0xFFFFFFFF)
            break
        central = data.find(b"PK\x01\x02", central + 4)
    return bytes(data)


def _parquet(frame: pl.DataFrame) -> bytes:
    out = io.BytesIO()
    frame.write_parquet(out)
    return out.getvalue()


if __name__ == "__main__":
    sys.exit(main())

"""Reading an Excel sheet or a Parquet file in a child process, so a reader that aborts costs one import.

calamine (behind fastexcel) and the Parquet reader are native code: a hostile file can make them
allocate hundreds of GiB or panic, and a Rust abort ends the whole process. Here they run in a
fresh ``python`` process with an address-space limit and a time limit; the parent gets the table
back as Arrow IPC, or an :class:`ImportFailed` naming the file when the child fails in any way.

This file also runs as that child (``python isolated.py KIND SHEET``: file bytes on stdin, the
table on stdout); as a script it imports only polars and fastexcel, never the rest of the app.
"""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
from pathlib import Path

import polars as pl

READER_MEMORY = 4 << 30
"""Address space a child reader may use (4 GiB); past it the read fails instead of the server."""

READER_SECONDS = 180.0
"""Wall-clock time a child reader may take before it is stopped and the file refused."""

_USER_ERROR = 3
"""Exit code of a child that read the file and found it unreadable (its message is on stderr)."""


def read_isolated(
    kind: str,
    data: bytes,
    name: str,
    sheet: str | None = None,
    *,
    memory: int = READER_MEMORY,
    seconds: float = READER_SECONDS,
) -> pl.DataFrame:
    """The ``kind`` (``excel`` or ``parquet``) table in ``data`` as a polars frame, read in a child process."""
    from core.importing.errors import ImportFailed

    command = [sys.executable, "-I", str(Path(__file__).resolve()), kind, json.dumps(sheet), str(memory)]
    try:
        done = subprocess.run(command, input=data, capture_output=True, timeout=seconds, check=False)
    except subprocess.TimeoutExpired:
        raise ImportFailed(f"{name}: reading it took longer than {seconds:.0f} s, so it was stopped.") from None
    if done.returncode == 0:
        return pl.read_ipc(io.BytesIO(done.stdout))
    message = done.stderr.decode("utf-8", errors="replace").strip().splitlines()
    if done.returncode == _USER_ERROR and message:
        raise ImportFailed(f"{name}: {message[-1][:300]}")
    if done.returncode < 0:
        stop = signal.Signals(-done.returncode).name
        raise ImportFailed(
            f"{name}: the {_label(kind)} reader stopped ({stop}) reading it, most likely because it needed "
            f"more than {memory >> 30} GiB of memory; the file was not imported."
        )
    raise ImportFailed(f"{name}: the {_label(kind)} reader failed on it (exit code {done.returncode}).")


def _label(kind: str) -> str:
    return "Excel" if kind == "excel" else "Parquet"


def _child(kind: str, sheet: str | None, memory: int) -> int:
    """Read stdin as ``kind`` and write the table as Arrow IPC to stdout; 3 and a message on a bad file."""
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    data = sys.stdin.buffer.read()
    try:
        frame = _read_excel(data, sheet) if kind == "excel" else _read_parquet(data)
        out = io.BytesIO()
        frame.write_ipc(out)
    except MemoryError:
        print(f"it needs more than {memory >> 30} GiB of memory to read.", file=sys.stderr)
        return _USER_ERROR
    except BaseException as error:  # a Rust panic is a BaseException
        if isinstance(error, KeyboardInterrupt | SystemExit):
            raise
        text = str(error).strip().splitlines()
        detail = text[0][:200] if text else type(error).__name__
        print(f"is not a readable {_label(kind)} file ({detail}).", file=sys.stderr)
        return _USER_ERROR
    sys.stdout.buffer.write(out.getvalue())
    return 0


def _read_excel(data: bytes, sheet: str | None) -> pl.DataFrame:
    import fastexcel

    reader = fastexcel.read_excel(data)
    chosen = sheet if sheet is not None else reader.sheet_names[0]
    loaded = reader.load_sheet(chosen, header_row=None, dtypes="string", whitespace_as_null=True)
    return loaded.to_polars().select(pl.all().cast(pl.String))


def _read_parquet(data: bytes) -> pl.DataFrame:
    return pl.read_parquet(io.BytesIO(data))


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])))

"""The Data page's Streamlit side: the upload flow as plain functions, import settings, progress and failures.

:func:`import_upload` is the whole upload flow without widgets (bytes and a file name in, an
import record out), so tests drive it directly; the page calls the cached :func:`recognised`
and :func:`planned` while the user adjusts the mapping, then :func:`run_planned` with a
:class:`ProgressAfterASecond` bar.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import polars as pl
import sqlalchemy as sa
import streamlit as st

from core.importing import (
    GENERIC,
    GenericMapping,
    ImportFailed,
    ImportOptions,
    ImportPlan,
    ImportRecord,
    Recognition,
    import_options,
    plan_import,
    propose_mapping,
    recognise,
    run_import,
)
from core.importing.metric_definitions import MetricDefinition, define_metrics
from core.importing.reading import check_size
from core.model.schema import Problem
from core.store.database import Store

PROBLEMS_LISTED = 50
"""How many problems the page lists before it only counts the rest."""

UPLOAD_TYPES = ("csv", "tsv", "txt", "parquet", "xlsx", "json", "ndjson", "jsonl", "log")
"""File name endings the uploader accepts (``.txt``/``.log`` for ``git log`` output)."""

SETTING_KEYS = (
    "import.timezone",
    "import.agent_logins",
    "import.max_bytes",
    "import.work_item_projects",
    "import.currency_rates",
)
"""The workspace settings every import reads (see ``core.importing.options``); prices are the cost settings'."""


@dataclass(frozen=True)
class UploadChoice:
    """How the user wants an upload read: a format (``None``: the recognised one, or generic + mapping) and sheet."""

    format: str | None = None
    mapping: GenericMapping | None = None
    sheet: str | None = None

    def fingerprint(self) -> str:
        """A stable string of the choice, for cache keys."""
        return json.dumps(asdict(self), sort_keys=True, default=dict)


def upload_options(store: Store, sheet: str | None = None) -> ImportOptions:
    """The import options the workspace settings give, for ``sheet`` of a workbook."""
    return import_options(store, sheet=sheet)


def recognise_upload(store: Store, data: bytes, filename: str, sheet: str | None = None) -> Recognition:
    """What the uploaded file is: its format with confidence and alternatives, column mapping and preview."""
    return recognise(data, filename, sheet=sheet, options=upload_options(store, sheet))


def plan_upload(store: Store, data: bytes, filename: str, choice: UploadChoice) -> ImportPlan:
    """The uploaded file mapped as ``choice`` says and validated against the store; nothing written."""
    options = upload_options(store, choice.sheet)
    if choice.mapping is not None:
        return plan_import(data, filename, format=GENERIC, mapping=choice.mapping, options=options, store=store)
    return plan_import(data, filename, format=choice.format, options=options, store=store)


def import_upload(
    store: Store,
    data: bytes,
    filename: str,
    actor: str | None,
    choice: UploadChoice | None = None,
    *,
    skip_invalid: bool = False,
    progress: Any = None,
) -> ImportRecord:
    """Plan and store an uploaded file in one atomic write: the Data page's upload flow without the widgets."""
    plan = plan_upload(store, data, filename, choice or UploadChoice())
    return run_import(store, plan, actor, progress, skip_invalid=skip_invalid)


def define_metrics_and_import(
    store: Store,
    data: bytes,
    filename: str,
    choice: UploadChoice,
    definitions: Sequence[MetricDefinition],
    actor: str,
) -> tuple[ImportRecord, ImportRecord]:
    """Define the metrics an observations upload names, then import it: the metrics' import and the file's."""
    metrics = define_metrics(store, definitions, actor)
    return metrics, run_planned(store, plan_upload(store, data, filename, choice), actor, skip_invalid=False)


def proposed_mapping(store: Store, data: bytes, filename: str, entity: str, sheet: str | None) -> GenericMapping:
    """The column mapping onto ``entity`` guessed from the file's column names."""
    return propose_mapping(data, filename, entity=entity, options=upload_options(store, sheet))


def refuse_oversized(store: Store, filename: str, size: int) -> None:
    """``ImportFailed`` naming the limit when an upload is larger than ``import.max_bytes``."""
    check_size(size, filename, upload_options(store).max_bytes)


# -- cached while the user adjusts the mapping (keyed on the upload's id, never on its bytes) ----
@st.cache_resource(max_entries=4, ttl=900, show_spinner=False)
def recognised(
    file_id: str, sheet: str | None, settings: str, _store: Store, _data: bytes, filename: str
) -> Recognition:
    """:func:`recognise_upload`, once per upload, sheet and import settings."""
    return recognise_upload(_store, _data, filename, sheet)


@st.cache_resource(max_entries=4, ttl=900, show_spinner=False)
def planned(
    file_id: str,
    choice: str,
    version: int,
    settings: str,
    _store: Store,
    _data: bytes,
    filename: str,
    _choice: UploadChoice,
) -> ImportPlan:
    """:func:`plan_upload`, once per upload, choice, data version and import settings."""
    return plan_upload(_store, _data, filename, _choice)


@st.cache_resource(max_entries=16, ttl=900, show_spinner=False)
def proposed(
    file_id: str, entity: str, sheet: str | None, _store: Store, _data: bytes, filename: str
) -> GenericMapping:
    """:func:`proposed_mapping`, once per upload, entity and sheet."""
    return proposed_mapping(_store, _data, filename, entity, sheet)


def settings_fingerprint(store: Store) -> str:
    """A stable string of the import settings and the prices they take from the cost settings, for cache keys."""
    return json.dumps({**store.settings("import."), **store.settings("settings.cost")}, sort_keys=True)


def run_planned(store: Store, plan: ImportPlan, actor: str, *, skip_invalid: bool) -> ImportRecord:
    """Store ``plan`` with a progress bar (rows so far) that appears when the import takes over a second."""
    bar = ProgressAfterASecond("Importing")
    try:
        return run_import(store, plan, actor, bar, skip_invalid=skip_invalid)
    finally:
        bar.clear()


class ProgressAfterASecond:
    """A ``progress(done, total)`` callback drawing ``st.progress`` with rows so far, once a second has passed."""

    def __init__(self, label: str, delay: float = 1.0) -> None:
        self._label = label
        self._delay = delay
        self._started = time.monotonic()
        self._slot = st.empty()

    def __call__(self, done: int, total: int) -> None:
        if time.monotonic() - self._started < self._delay:
            return
        share = min(done / total, 1.0) if total else 1.0
        self._slot.progress(share, text=f"{self._label}: {done:,} of {total:,} rows")

    def clear(self) -> None:
        """Remove the bar once the work is done."""
        self._slot.empty()


# -- what the page shows -----------------------------------------------------------------------
def show_failure(error: ImportFailed, key: str) -> None:
    """The failure's message, and its problems as a table (first ones listed, total counted)."""
    headline = str(error.message).split("\n", 1)[0] if error.problems else error.message
    st.error(headline, icon=":material/error:")
    if error.problems:
        show_problems(error.problems, error.total, key)


def show_problems(problems: Sequence[Problem], total: int, key: str) -> None:
    """The first :data:`PROBLEMS_LISTED` problems as a table: file, row, column, value and what was expected."""
    listed = problems_frame(problems[:PROBLEMS_LISTED])
    st.dataframe(listed, key=key, hide_index=True)
    more = f"the first {listed.height:,} of {total:,} problems" if total > listed.height else f"all {total:,} problems"
    st.caption(f"Showing {more}. Row 1 is the first data row of the file (the header is not counted).")


def problems_frame(problems: Sequence[Problem]) -> pl.DataFrame:
    """Problems one per row: file, entity, row, column, value, expected."""
    schema = {
        "file": pl.String,
        "entity": pl.String,
        "row": pl.Int64,
        "column": pl.String,
        "value": pl.String,
        "expected": pl.String,
    }
    rows = [(p.source, p.entity, p.row, p.column, p.value, p.expected) for p in problems]
    return pl.DataFrame(rows, schema=schema, orient="row")


def counts_frame(record: ImportRecord) -> pl.DataFrame:
    """Rows added, updated and rejected per entity of one import."""
    rows = [(e, c.get("added", 0), c.get("updated", 0), c.get("rejected", 0)) for e, c in record.counts.items()]
    schema = {"entity": pl.String, "added": pl.Int64, "updated": pl.Int64, "rejected": pl.Int64}
    return pl.DataFrame(rows, schema=schema, orient="row")


def mapping_frame(mapping: Mapping[str, Mapping[str, str]]) -> pl.DataFrame:
    """How a format's columns map: entity, Throughline column, where the value comes from in the file."""
    rows = [(entity, column, source) for entity, columns in mapping.items() for column, source in columns.items()]
    schema = {"entity": pl.String, "Throughline column": pl.String, "from the file": pl.String}
    return pl.DataFrame(rows, schema=schema, orient="row")


def with_password(url: str, password: str) -> str:
    """``url`` with ``password`` set (for ``connect.save_connection``); ``url`` unchanged if it does not parse."""
    if not password:
        return url
    try:
        return sa.make_url(url.strip()).set(password=password).render_as_string(hide_password=False)
    except Exception:
        return url


# -- import settings ---------------------------------------------------------------------------
def save_import_settings(store: Store, values: Mapping[str, Any], actor: str) -> list[str]:
    """Store the changed ``import.`` settings (each change audited); the keys that changed."""
    current = store.settings("import.")
    changed = [key for key, value in values.items() if key in SETTING_KEYS and current.get(key) != value]
    for key in changed:
        store.set_setting(key, values[key], actor)
    return changed


def currency_rates_setting(text: str) -> dict[str, float]:
    """The ``import.currency_rates`` setting from ``EUR=1.08, GBP=1.27``; ValueError naming a bad pair."""
    rates: dict[str, float] = {}
    for pair in (p.strip() for p in text.split(",")):
        if not pair:
            continue
        code, _, rate = pair.partition("=")
        try:
            value = float(rate)
        except ValueError:
            value = -1.0
        if not code.strip() or value <= 0:
            raise ValueError(f"`{pair}` is not CURRENCY=RATE with a positive rate, e.g. EUR=1.08.")
        rates[code.strip().upper()] = value
    return rates

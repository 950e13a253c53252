"""Data (admin, delivery lead): upload exports, connect a database, and the import history with undo."""

from __future__ import annotations

import zlib
import zoneinfo

import polars as pl
import streamlit as st

from core import access
from core.access import may_manage_connections
from core.importing import (
    FORMATS,
    GENERIC,
    GenericMapping,
    ImportFailed,
    ImportPlan,
    ImportRecord,
    Recognition,
    import_history,
    undo_import,
)
from core.importing.metric_definitions import MetricDefinition, proposed_metric, unknown_metrics
from core.model.schema import ENTITIES, LEVELS
from core.sources import connect
from ui.data import page_data
from ui.data_import import (
    UPLOAD_TYPES,
    ProgressAfterASecond,
    UploadChoice,
    counts_frame,
    currency_rates_setting,
    define_metrics_and_import,
    mapping_frame,
    planned,
    proposed,
    recognised,
    refuse_oversized,
    run_planned,
    save_import_settings,
    settings_fingerprint,
    show_failure,
    show_problems,
    upload_options,
    with_password,
)
from ui.widgets import page_header, plain, table

PAGE = "data"
NEW_CONNECTION = "+ New connection"
DEVLAKE_ENTITIES = ("pull_requests", "deployments", "incidents", "features", "work_items")
_UPLOAD = f"{PAGE}.upload."
_DONE = f"{PAGE}.upload.done"  # file id → the import record of each uploaded file already imported
_KEEP_ON_NEW_FILE = (f"{PAGE}.upload.file", f"{PAGE}.upload.current", _DONE)

data = page_data()
store, me = data.store, data.viewer
page_header(
    "Data",
    "Bring exports and databases into the workspace: every file is recognised, mapped and checked before "
    "anything is written, and every import can be undone.",
    me,
)


def render_upload() -> None:
    """Upload tab: settings, the files, what each was recognised as, the mapping, problems, import.

    Several files can be dropped at once; each is recognised, checked and imported in turn, and the
    next one comes up when the one before is imported.
    """
    render_import_settings()
    files = st.file_uploader(
        "Export files",
        type=list(UPLOAD_TYPES),
        key=f"{PAGE}.upload.file",
        accept_multiple_files=True,
        help="CSV/TSV, Parquet, Excel (.xlsx), JSON, NDJSON, or `git log` output (.txt/.log). Drop several at once: "
        "each is checked and imported in turn.",
    )
    if not files:
        st.caption(
            "Recognised without any mapping: " + ", ".join(f.label for f in FORMATS.values()) + ". Anything else "
            "opens the column mapping screen."
        )
        return
    done: dict[str, ImportRecord] = {
        k: v for k, v in st.session_state.get(_DONE, {}).items() if k in {f.file_id for f in files}
    }
    st.session_state[_DONE] = done
    pending = [f for f in files if f.file_id not in done]
    for finished in (f for f in files if f.file_id in done):
        if pending or finished is not files[-1]:
            show_result(done[finished.file_id], key=None)
        else:
            show_result(done[finished.file_id], key=f"{PAGE}.upload.result_table")
    if not pending:
        return
    uploaded = pending[0]
    if len(files) > 1:
        st.markdown(f"**{plain(uploaded.name)}**, file {files.index(uploaded) + 1} of {len(files)}")
    _forget_previous_upload(uploaded.file_id)
    settings = settings_fingerprint(store)
    sheet = st.session_state.get(f"{PAGE}.upload.sheet")
    try:
        refuse_oversized(store, uploaded.name, uploaded.size)
        content = uploaded.getvalue()
        with st.spinner(f"Reading {uploaded.name} ..."):
            recognition = recognised(uploaded.file_id, sheet, settings, store, content, uploaded.name)
    except ImportFailed as error:
        show_failure(error, key=f"{PAGE}.upload.failure")
        return
    show_recognition(recognition)
    choice = choose_mapping(recognition, uploaded.file_id, content)
    try:
        with st.spinner(f"Mapping and checking {recognition.rows:,} rows ..."):
            plan = planned(
                uploaded.file_id,
                choice.fingerprint(),
                store.data_version(),
                settings,
                store,
                content,
                uploaded.name,
                choice,
            )
    except ImportFailed as error:
        show_failure(error, key=f"{PAGE}.upload.failure")
        return
    unknown = unknown_metrics(plan)
    if unknown:
        render_metric_definitions(unknown, uploaded.file_id, content, uploaded.name, choice)
        return
    show_plan(plan)
    render_import_button(plan, uploaded.file_id)


_DIRECTIONS = {"higher": "Higher is better", "lower": "Lower is better"}


def render_metric_definitions(
    names: list[str], file_id: str, content: bytes, filename: str, choice: UploadChoice
) -> None:
    """One form defining the metrics the observations name (guessed from each name), then importing the file."""
    st.info(
        f"{filename} names {len(names)} metric(s) this workspace does not define yet. Check what was guessed from "
        "each name, then define them and import the file in one step (both imports can be undone).",
        icon=":material/add_chart:",
    )
    key = f"{PAGE}.upload.metrics.{file_id}"
    definitions = []
    with st.form(key):
        for i, name in enumerate(names):
            proposed = proposed_metric(name)
            st.markdown(f"**`{name}`**")
            left, level_col, unit_col, direction_col = st.columns([3, 2, 1, 2])
            display = left.text_input("Name", proposed.name, key=f"{key}.{i}.name")
            level = level_col.selectbox("Level", LEVELS, LEVELS.index(proposed.level), key=f"{key}.{i}.level")
            unit = unit_col.text_input("Unit", proposed.unit, key=f"{key}.{i}.unit", help="%, count, s, money, …")
            direction = direction_col.selectbox(
                "Direction",
                list(_DIRECTIONS),
                list(_DIRECTIONS).index(proposed.direction),
                format_func=_DIRECTIONS.get,
                key=f"{key}.{i}.direction",
            )
            definitions.append(
                MetricDefinition(proposed.metric_id, display.strip() or name, level, unit.strip(), direction)
            )
        submitted = st.form_submit_button(f"Define {len(names)} metric(s) and import", type="primary")
    if not submitted:
        return
    try:
        _, record = define_metrics_and_import(store, content, filename, choice, definitions, me.username)
    except ImportFailed as error:
        show_failure(error, key=f"{PAGE}.upload.metrics_failure")
        return
    st.session_state[_DONE] = st.session_state.get(_DONE, {}) | {file_id: record}
    st.rerun()


def render_import_settings() -> None:
    """The settings every import reads, stored under ``import.*``."""
    options = upload_options(store)
    with (
        st.expander("Import settings: time zone, agent logins, upload limit"),
        st.form(f"{PAGE}.settings"),
    ):
        zones = sorted(zoneinfo.available_timezones() | {"UTC"})
        left, right = st.columns(2)
        timezone = left.selectbox(
            "Time zone of dates written without one",
            zones,
            index=zones.index(options.timezone) if options.timezone in zones else zones.index("UTC"),
            key=f"{PAGE}.settings.timezone",
            help="Dates carrying a zone or offset are converted to UTC; dates without one are read in this zone.",
        )
        max_mib = right.number_input(
            "Largest file to import (MiB)",
            min_value=1,
            max_value=1 << 20,
            value=max(1, options.max_bytes >> 20),
            key=f"{PAGE}.settings.max_mib",
            help="Larger files are refused before they are read. The web uploader itself stops at 1 GiB.",
        )
        logins = left.text_area(
            "Agent logins (one a line)",
            "\n".join(options.agent_logins),
            key=f"{PAGE}.settings.agents",
            help="Pull request authors counted as agents besides `[bot]` logins, e.g. `devin-ai-integration`.",
        )
        projects = right.text_input(
            "Work-item projects (comma-separated)",
            ", ".join(options.work_item_projects),
            key=f"{PAGE}.settings.projects",
            help="Prefixes such as `PAY, ENG`: a key in a branch name or PR title is kept only when its prefix is a "
            "project of the imported work items or one listed here, so `patch-1` is not read as a key.",
        )
        rates = left.text_input(
            "Exchange rates into the workspace currency",
            ", ".join(f"{code}={rate:g}" for code, rate in sorted(options.currency_rates.items())),
            key=f"{PAGE}.settings.rates",
            placeholder="EUR=1.08, GBP=1.27",
            help="One unit of each currency in the workspace currency (Cost page settings). Cost in a currency "
            "without a rate is refused, naming its file, row and value.",
        )
        st.caption(
            "Token counts and CircleCI credits are priced from the model prices and credit price in the Cost "
            "page's settings: the same prices attribute cost there, so a price is changed in one place."
        )
        if st.form_submit_button("Save import settings"):
            values = {
                "import.timezone": timezone,
                "import.agent_logins": [line.strip() for line in logins.splitlines() if line.strip()],
                "import.max_bytes": int(max_mib) << 20,
                "import.work_item_projects": [p.strip().upper() for p in projects.split(",") if p.strip()],
            }
            try:
                values["import.currency_rates"] = currency_rates_setting(rates)
            except ValueError as error:
                st.error(str(error))
                return
            changed = save_import_settings(store, values, me.username)
            st.success(f"Saved: {', '.join(changed)}." if changed else "Nothing changed.")


def show_recognition(recognition: Recognition) -> None:
    """Which format the file was recognised as (confidence, alternatives), the sheet picker and a preview."""
    st.subheader(plain(recognition.filename))
    read = recognition.kind.upper() + (f", {recognition.encoding}" if recognition.encoding else "")
    if recognition.delimiter:
        read += f", separated by `{'tab' if recognition.delimiter == chr(9) else recognition.delimiter}`"
    if recognition.format == GENERIC:
        st.warning(
            f"Not a format Throughline knows ({read}, {recognition.rows:,} rows): map its columns below.",
            icon=":material/help:",
        )
    else:
        others = [f"{FORMATS[name].label} ({score:.0%})" for name, score in recognition.candidates[1:]]
        also = f" Also fits: {', '.join(others)}." if others else ""
        st.success(
            f"Recognised as **{recognition.label}**, confidence {recognition.confidence:.0%} ({read}, "
            f"{recognition.rows:,} rows).{also}",
            icon=":material/check_circle:",
        )
        st.caption("Confidence is the share of the format's telltale columns found in the file (100%: all of them).")
    if recognition.kind == "excel" and len(recognition.sheets) > 1:
        st.selectbox(
            "Sheet",
            recognition.sheets,
            index=recognition.sheets.index(recognition.sheet) if recognition.sheet in recognition.sheets else 0,
            key=f"{PAGE}.upload.sheet",
            help="This workbook has several sheets; the one that best fits a known format is picked first.",
        )
    st.markdown(f"**File preview** (first {recognition.preview.height} of {recognition.rows:,} rows)")
    st.dataframe(recognition.preview, key=f"{PAGE}.upload.preview", hide_index=True)


def choose_mapping(recognition: Recognition, file_id: str, content: bytes) -> UploadChoice:
    """The format to read the file as, or the generic column mapping the user set."""
    sheet = recognition.sheet
    ordered = [recognition.format, *(name for name, _ in recognition.candidates), *FORMATS, GENERIC]
    options = list(dict.fromkeys(ordered))
    scores = dict(recognition.candidates)

    def label(name: str) -> str:
        if name == GENERIC:
            return "Map the columns myself (generic)"
        return FORMATS[name].label + (f" ({scores[name]:.0%})" if name in scores else "")

    # Keyed per file: a browser keeps a widget's last choice while its key stays, so a new file needs new keys.
    fmt = st.selectbox("Read as", options, format_func=label, key=f"{PAGE}.upload.format.{file_id}")
    if fmt != GENERIC:
        st.markdown("**How the columns map onto Throughline**")
        table(mapping_frame(FORMATS[fmt].mapping), key=f"{PAGE}.upload.mapping")
        return UploadChoice(format=fmt, sheet=sheet)
    return UploadChoice(mapping=generic_mapping(recognition, file_id, content), sheet=sheet)


def generic_mapping(recognition: Recognition, file_id: str, content: bytes) -> GenericMapping:
    """The mapping screen: entity, one column picker per Throughline column, date format, unit and currency."""
    entities = list(ENTITIES)
    first = recognition.proposal.entity if recognition.proposal else recognition.entities[0]
    entity = st.selectbox(
        "These rows are",
        entities,
        index=entities.index(first),
        format_func=lambda e: ENTITIES[e].label,
        key=f"{PAGE}.upload.entity.{file_id}",
    )
    try:
        guess = proposed(file_id, entity, recognition.sheet, store, content, recognition.filename).columns
    except ImportFailed:
        guess = {}
    columns = [None, *recognition.columns]
    spec = ENTITIES[entity]
    with st.form(f"{PAGE}.upload.mapping_form.{file_id}"):
        st.markdown(f"**Columns of {spec.label.lower()}** (\\* required; pre-filled from the file's column names)")
        cells = st.columns(3)
        chosen: dict[str, str] = {}
        for i, column in enumerate(spec.columns):
            source = cells[i % 3].selectbox(
                f"{column.name}{' *' if column.required else ''}",
                columns,
                index=columns.index(guess.get(column.name)) if guess.get(column.name) in columns else 0,
                format_func=lambda c: "— not in the file" if c is None else c,
                key=f"{PAGE}.upload.map.{file_id}.{entity}.{column.name}",
                help=column.description or None,
            )
            if source is not None:
                chosen[column.name] = source
        left, mid, right = st.columns(3)
        date_format = left.text_input(
            "Date format (optional)",
            key=f"{PAGE}.upload.date_format.{file_id}",
            placeholder="%d/%m/%Y %H:%M",
            help="A strftime pattern tried before the common date shapes (ISO 8601, Jira, US and EU dates).",
        )
        unit = currency = source_name = ""
        if entity == "cost_events":
            unit = mid.text_input("Unit of quantities", key=f"{PAGE}.upload.unit", placeholder="tokens, minutes")
            currency = right.text_input("Currency of amounts", key=f"{PAGE}.upload.currency", placeholder="USD")
            if "source" not in chosen:
                source_name = left.text_input(
                    "Cost source for every row", key=f"{PAGE}.upload.source", placeholder="ci, llm, review"
                )
        st.form_submit_button("Check this mapping")
    return GenericMapping(
        entity=entity,
        columns=chosen,
        date_format=date_format.strip() or None,
        unit=unit.strip() or None,
        currency=currency.strip() or None,
        constants={"source": source_name.strip()} if source_name.strip() else {},
    )


def show_plan(plan: ImportPlan) -> None:
    """What the import will write per entity, every problem found, and a preview of the mapped rows."""
    st.markdown("**What will be imported**")
    summary = pl.DataFrame(
        [(ENTITIES[e].label, plan.rows(e), plan.rejected.get(e, 0)) for e in plan.entities],
        schema={"entity": pl.String, "rows": pl.Int64, "rows with problems": pl.Int64},
        orient="row",
    )
    table(
        summary,
        key=f"{PAGE}.upload.summary",
        caption="Rows per entity after mapping, before they are compared with what is stored: rows whose key is "
        "already stored are updated, the others added. Gap-filling rows (authors, placeholder epics) are only "
        "added where new." + (f" {plan.skipped:,} source rows were left out on purpose." if plan.skipped else ""),
    )
    for note in plan.notes:
        st.info(note, icon=":material/info:")
    if plan.problems:
        bad_rows = sum(plan.rejected.values())
        st.warning(
            f"{len(plan.problems):,} problem(s) in {bad_rows:,} row(s). Nothing is written while there are problems, "
            "unless you choose to skip the invalid rows.",
            icon=":material/warning:",
        )
        show_problems(plan.problems, len(plan.problems), key=f"{PAGE}.upload.problems")
    if plan.entities:
        main_first = sorted(plan.entities, key=lambda e: e not in plan.frames)
        entity = st.selectbox(
            "Preview the mapped rows of",
            main_first,
            format_func=lambda e: ENTITIES[e].label,
            key=f"{PAGE}.upload.preview_entity",
        )
        table(plan.preview(entity), key=f"{PAGE}.upload.plan_preview", caption="First rows as they will be stored.")


def render_import_button(plan: ImportPlan, file_id: str) -> None:
    """The Import button (with 'skip invalid rows'), its progress bar and the result."""
    skip = st.checkbox(
        "Skip invalid rows (import the valid ones; count the others as rejected)",
        key=f"{PAGE}.upload.skip_invalid",
        disabled=plan.ok,
    )
    if st.button("Import", type="primary", key=f"{PAGE}.upload.import", disabled=bool(plan.problems) and not skip):
        try:
            record = run_planned(store, plan, me.username, skip_invalid=skip)
        except ImportFailed as error:
            show_failure(error, key=f"{PAGE}.upload.import_failure")
            return
        st.session_state[_DONE] = st.session_state.get(_DONE, {}) | {file_id: record}
        st.rerun()  # the result is shown above, and the next file, if any, comes up


def show_result(record: ImportRecord, key: str | None) -> None:
    """A success message with rows added, updated and rejected per entity (the table too, given a ``key``)."""
    st.success(
        f"Import #{record.import_id} of {record.source} done: {record.added:,} rows added, {record.updated:,} "
        f"updated, {sum(c.get('rejected', 0) for c in record.counts.values()):,} rejected. Every page now shows "
        "the new data; undo it under Import history.",
        icon=":material/task_alt:",
    )
    if key is not None:
        table(counts_frame(record), key=key)


def _forget_previous_upload(file_id: str) -> None:
    """A new file starts from its own recognition: drop the choices made for the previous one."""
    if st.session_state.get(f"{PAGE}.upload.current") == file_id:
        return
    for key in [k for k in st.session_state if str(k).startswith(_UPLOAD) and k not in _KEEP_ON_NEW_FILE]:
        del st.session_state[key]
    st.session_state[f"{PAGE}.upload.current"] = file_id


def render_connect() -> None:
    """Connect tab: save a connection, test it, list tables, map entities, preview, import now / refresh."""
    connections = {c.name: c for c in connect.list_connections(store)}
    if not may_manage_connections(me):
        render_connections_to_refresh(connections)
        return
    pending = st.session_state.pop(f"{PAGE}.connect.select_next", None)
    if pending is not None:
        st.session_state[f"{PAGE}.connect.name"] = pending
    picked = st.selectbox("Connection", [NEW_CONNECTION, *connections], key=f"{PAGE}.connect.name")
    current = connections.get(picked)
    with st.form(f"{PAGE}.connect.form", clear_on_submit=True):
        if current is None:
            name = st.text_input(
                "Name", key=f"{PAGE}.connect.form.name", max_chars=60, help="Letters, digits, '-' and '_'."
            )
        else:
            name = current.name
            st.markdown(f"**Change the URL or password of `{current.name}`**")
        url = st.text_input(
            "SQLAlchemy URL (leave the password out)",
            value=current.url if current else "",
            key=f"{PAGE}.connect.form.url" + (f".{current.name}" if current else ""),
            placeholder="postgresql+psycopg://reader@db.internal:5432/warehouse",
            help="PostgreSQL (postgresql+psycopg://), MySQL/MariaDB (mysql+pymysql://), SQLite (sqlite:///path) "
            "or any installed dialect.",
        )
        password = st.text_input(
            "Password",
            type="password",
            key=f"{PAGE}.connect.form.password",
            help="Kept only in this workspace's local secrets file; never shown again, logged or stored in the "
            "database. Leave empty to keep the saved one.",
        )
        if st.form_submit_button("Save connection"):
            st.session_state.pop(f"{PAGE}.connect.form.password", None)
            try:
                saved = connect.save_connection(store, name.strip(), with_password(url, password), me)
            except connect.ConnectFailed as error:
                st.error(error.message)
            else:
                st.session_state[f"{PAGE}.connect.select_next"] = saved.name
                st.rerun()
    if current is None:
        st.caption("Save a connection to test it, list its tables and map them onto Throughline's entities.")
        return
    password = "saved in the secrets file" if connect.has_password(store, current.name) else "none"
    st.caption(f"`{current.url}` · password {password}")
    render_connection(current)


def render_connections_to_refresh(connections: dict[str, connect.Connection]) -> None:
    """Connect tab for a delivery lead: preview and refresh what an admin connected and mapped."""
    if not connections:
        st.info("No database is connected yet. An admin adds connections and maps what they read.")
        return
    picked = st.selectbox("Connection", list(connections), key=f"{PAGE}.connect.name")
    current = connections[picked]
    st.caption(f"`{current.url}` · an admin adds connections and maps what they read; you may preview and refresh.")
    render_mappings(current)
    render_preview_and_refresh(current)


def render_connection(current: connect.Connection) -> None:
    """Test, tables, preset, mappings, preview and refresh of one saved connection."""
    name = current.name
    tables_key = f"{PAGE}.connect.tables"
    test_col, tables_col, preset_col = st.columns(3)
    if test_col.button("Test connection", key=f"{PAGE}.connect.test", width="stretch"):
        try:
            st.success(f"Connected: {connect.test_connection(store, name)}.")
        except connect.ConnectFailed as error:
            st.error(error.message)
    if tables_col.button("List tables", key=f"{PAGE}.connect.list_tables", width="stretch"):
        try:
            st.session_state[tables_key] = (name, connect.list_tables(store, name))
        except connect.ConnectFailed as error:
            st.error(error.message)
    if preset_col.button("Use the DevLake preset", key=f"{PAGE}.connect.devlake", width="stretch"):
        try:
            connect.use_preset(store, name, "devlake", me)
        except connect.ConnectFailed as error:
            st.error(error.message)
        else:
            st.rerun()
    listed = st.session_state.get(tables_key)
    tables = listed[1] if listed and listed[0] == name else None
    if tables is not None:
        st.caption(f"Tables and views ({len(tables)}): " + ", ".join(f"`{t}`" for t in tables[:200]))
    render_mappings(current)
    render_mapping_form(current, tables)
    render_preview_and_refresh(current)


def render_mappings(current: connect.Connection) -> None:
    """What the connection reads: the DevLake preset, or one row per mapped entity."""
    if current.preset == "devlake":
        st.info(
            "Mapped with the **Apache DevLake** preset: `pull_requests` (+ commits and comments) → pull requests, "
            "`cicd_deployment_commits` → deployments, `incidents` → incidents, `issues` → features (epics) and "
            "work items. Mapping an entity below replaces the preset.",
            icon=":material/link:",
        )
    elif current.mappings:
        rows = [
            (m.entity, m.table, m.query, ", ".join(f"{k}←{v}" for k, v in m.columns.items())) for m in current.mappings
        ]
        frame = pl.DataFrame(
            rows,
            schema={"entity": pl.String, "table": pl.String, "query": pl.String, "columns": pl.String},
            orient="row",
        )
        table(frame, key=f"{PAGE}.connect.mappings", caption="Columns not listed are taken by the same name.")


def render_mapping_form(current: connect.Connection, tables: list[str] | None) -> None:
    """Map one entity onto a table or a read-only query, with optional column names."""
    st.markdown("**Map a table or a read-only query onto an entity**")
    entities = list(ENTITIES)
    left, right = st.columns(2)
    entity = left.selectbox(
        "Entity", entities, format_func=lambda e: ENTITIES[e].label, key=f"{PAGE}.connect.map.entity"
    )
    kind = right.radio("From", ["Table", "Read-only query"], horizontal=True, key=f"{PAGE}.connect.map.kind")
    existing = next((m for m in current.mappings if m.entity == entity), None)
    with st.form(f"{PAGE}.connect.map.form"):
        table_name = query = None
        if kind == "Table" and tables:
            index = tables.index(existing.table) if existing and existing.table in tables else 0
            table_name = st.selectbox("Table", tables, index=index, key=f"{PAGE}.connect.map.table")
        elif kind == "Table":
            table_name = st.text_input(
                "Table",
                value=(existing.table or "") if existing else "",
                key=f"{PAGE}.connect.map.table_name",
                help="Press 'List tables' above to pick from a list.",
            )
        else:
            query = st.text_area(
                "Query",
                value=(existing.query or "") if existing else "",
                key=f"{PAGE}.connect.map.query",
                placeholder="SELECT id AS pr_id, repo, created_at, merged_at FROM pulls",
                help="One SELECT or WITH statement; anything that writes is refused.",
            )
        known = dict(existing.columns) if existing else {}
        spec = ENTITIES[entity]
        columns = st.data_editor(
            pl.DataFrame(
                {
                    "Throughline column": [c.name for c in spec.columns],
                    "required": [c.required for c in spec.columns],
                    "source column": [known.get(c.name, "") for c in spec.columns],
                }
            ),
            disabled=["Throughline column", "required"],
            hide_index=True,
            key=f"{PAGE}.connect.map.columns.{entity}",
            width="stretch",
        )
        st.caption("Leave a source column empty to take the column of the same name (case-blind).")
        if st.form_submit_button("Save mapping"):
            edited = pl.DataFrame(columns)
            names = {
                str(c): str(s).strip()
                for c, s in zip(edited["Throughline column"], edited["source column"], strict=True)
                if s is not None and str(s).strip()
            }
            from_query = query is not None
            mapping = connect.SourceMapping(
                entity,
                table=None if from_query else (table_name or "").strip() or None,
                query=(query or "").strip() or None if from_query else None,
                columns=names,
            )
            try:
                connect.set_mapping(store, current.name, mapping, me)
            except connect.ConnectFailed as error:
                st.error(error.message, icon=":material/block:")
            else:
                st.success(f"{spec.label} now come from {mapping.table or 'the query'}.")
                st.rerun()


def render_preview_and_refresh(current: connect.Connection) -> None:
    """Preview what an entity would receive, and import now / refresh with a progress bar."""
    mapped = DEVLAKE_ENTITIES if current.preset == "devlake" else tuple(m.entity for m in current.mappings)
    if not mapped:
        return
    st.markdown("**Preview and import**")
    left, right = st.columns([3, 1], vertical_alignment="bottom")
    entity = left.selectbox(
        "Preview", mapped, format_func=lambda e: ENTITIES[e].label, key=f"{PAGE}.connect.preview.entity"
    )
    if right.button("Show preview", key=f"{PAGE}.connect.preview", width="stretch"):
        try:
            rows = connect.preview(store, current.name, entity)
        except ImportFailed as error:
            show_failure(error, key=f"{PAGE}.connect.preview_failure")
        else:
            table(rows, key=f"{PAGE}.connect.preview_table", caption="First rows as they would be imported.")
    skip = st.checkbox(
        "Skip invalid rows (import the valid ones; count the others as rejected)",
        key=f"{PAGE}.connect.skip_invalid",
    )
    if st.button("Import now / refresh", type="primary", key=f"{PAGE}.connect.refresh"):
        bar = ProgressAfterASecond("Refreshing")
        try:
            record = connect.refresh(store, current.name, me.username, bar, skip_invalid=skip)
        except ImportFailed as error:
            show_failure(error, key=f"{PAGE}.connect.refresh_failure")
        else:
            show_result(record, key=f"{PAGE}.connect.result")
        finally:
            bar.clear()


def render_cost_keys() -> None:
    """Cost account keys: identifiers of imported cost no key-map row covers, with their spend, and mapping one."""
    accounts = access.unmapped_cost_accounts(store, me)
    if accounts.is_empty():
        st.info(
            "Every account identifier of the imported cost events is mapped (or none carries one). Anthropic and "
            "OpenAI API keys, GitHub Actions users and CircleCI trigger users arrive with their cost exports."
        )
    else:
        table(
            accounts,
            key=f"{PAGE}.keys.unmapped",
            caption="Account key (API key, CI user) and scope (workspace, project, repository) of cost events that "
            "no row of the key map covers, with their spend. Map the key or the scope to a team, a person or agent, "
            "or a feature.",
        )
    if not access.may_manage_teams(me):
        st.caption(
            "An admin maps account keys (or import a key map: `python -m core import keys.csv --entity cost_keys`)."
        )
        return
    # Keys first (by spend), then scopes: once a key is mapped, the next key is the one offered.
    identifiers = list(
        dict.fromkeys(
            [v for v in accounts["account_key"] if v is not None] + [v for v in accounts["account_scope"] if v]
        )
    )
    if not identifiers:
        return
    st.markdown("**Map an account identifier**")
    left, right = st.columns(2)
    # Keyed by the list itself: when an import or a mapping changes it, the top spender is offered again.
    listed = zlib.crc32("\n".join(identifiers).encode())
    key = left.selectbox("Account key or scope", identifiers, key=f"{PAGE}.keys.key.{listed:08x}")
    kinds = {
        "team_id": ("teams", "Team"),
        "person_id": ("people", "Person or agent"),
        "feature_id": ("features", "Feature"),
    }
    names: dict[tuple[str, str], str] = {}
    for kind, (entity, noun) in kinds.items():
        rows = data[entity].select(pl.col(kind), pl.col("name")).sort("name", nulls_last=True).collect()
        names |= {(kind, i): f"{noun} · {n} ({i})" for i, n in rows.rows()}
    if not names:
        right.caption("No team, person or feature is stored yet: import a Jira or Linear export first.")
        return
    target = right.selectbox(
        "Map it to",
        list(names),
        index=None,
        format_func=names.get,
        key=f"{PAGE}.keys.target",
        placeholder="A team, a person or agent, or a feature (type to search)",
    )
    if st.button("Map it", type="primary", key=f"{PAGE}.keys.map", disabled=target is None) and target is not None:
        kind, target_id = target
        try:
            access.map_cost_account(store, me, key, **{kind: target_id})
        except (ValueError, access.AccessDenied) as error:
            st.error(str(error))
            return
        st.session_state[f"{PAGE}.keys.done"] = f"`{key}` is mapped to {names[target].split(' · ', 1)[1]}."
        st.session_state.pop(f"{PAGE}.keys.target", None)  # the next key starts from a blank target
        st.rerun()


def render_history() -> None:
    """Import history tab: one row per import and entity, and undo with a confirmation."""
    history = import_history(store)
    if history.is_empty():
        if store.get_meta("workspace_kind") == "demo":
            rows = sum(store.counts().values())
            st.info(
                f"This is the demo workspace: its {rows:,} rows are the demo organisation, seeded when the workspace "
                "was created. No file has been imported into it yet; imports you make are listed here."
            )
        else:
            st.info("Nothing imported yet: this workspace is empty. Import a file above to begin.")
        return
    shown = history.rename(
        {"import_id": "import", "at": "when (UTC)", "actor": "who", "source": "file", "entity": "entity"}
    )
    table(
        shown,
        key=f"{PAGE}.history.table",
        caption="Newest first; one row per import and entity. Added: keys that were new; updated: stored rows "
        "replaced; rejected: rows with problems left out.",
        **{
            "when (UTC)": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
            "file": st.column_config.TextColumn(width="medium"),
            "format": st.column_config.TextColumn(width="medium"),
        },
    )
    done = history.filter(pl.col("status") == "done").unique("import_id", keep="first", maintain_order=True)
    if done.is_empty():
        return
    labels = {
        row["import_id"]: f"#{row['import_id']} · {row['source']} · {row['format']} · "
        f"{row['at']:%Y-%m-%d %H:%M} · {row['actor'] or '—'}"
        for row in done.select("import_id", "source", "format", "at", "actor").to_dicts()
    }
    st.markdown("**Undo an import**")
    left, right = st.columns([3, 1], vertical_alignment="bottom")
    chosen = left.selectbox("Import", list(labels), format_func=labels.get, key=f"{PAGE}.history.import")
    confirm_key = f"{PAGE}.history.confirm"
    if right.button("Undo …", key=f"{PAGE}.history.undo", width="stretch"):
        st.session_state[confirm_key] = chosen
    pending = st.session_state.get(confirm_key)
    if pending is None or pending not in labels:
        return
    st.warning(
        f"Undo import {labels[pending]}? The rows it added are removed and the rows it replaced are restored.",
        icon=":material/undo:",
    )
    yes, no = st.columns(2)
    if yes.button(f"Yes, undo import #{pending}", type="primary", key=f"{PAGE}.history.yes", width="stretch"):
        del st.session_state[confirm_key]
        try:
            undo_import(store, pending, me.username)
        except ImportFailed as error:
            show_failure(error, key=f"{PAGE}.history.failure")
            return
        st.session_state[f"{PAGE}.history.undone"] = pending
        st.rerun()
    if no.button("Cancel", key=f"{PAGE}.history.no", width="stretch"):
        del st.session_state[confirm_key]
        st.rerun()


upload_tab, connect_tab, history_tab, keys_tab = st.tabs(
    ["Upload", "Connect a database", "Import history", "Cost account keys"]
)
with upload_tab:
    render_upload()
with connect_tab:
    render_connect()
with history_tab:
    undone = st.session_state.pop(f"{PAGE}.history.undone", None)
    if undone is not None:
        st.success(f"Import #{undone} undone: its rows were removed and the rows it replaced restored.")
    render_history()
with keys_tab:
    mapped_message = st.session_state.pop(f"{PAGE}.keys.done", None)
    if mapped_message:
        st.success(mapped_message)
    render_cost_keys()

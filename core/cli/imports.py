"""``python -m core import``, ``imports`` and ``connect``: the Data page without the UI, for scheduled imports.

:func:`add_commands` registers the subcommands on the main parser; each sets ``run(store, args)``
returning the exit code. A failure prints the same message the Data page shows and exits 1.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable

import polars as pl

from core import users
from core.access import Viewer
from core.importing.errors import ImportFailed
from core.importing.formats import FORMATS
from core.importing.formats.gitlog import COMMAND as GITLOG_COMMAND
from core.importing.history import import_history, run_import, undo_import
from core.importing.metric_definitions import metrics_csv, proposed_metric, unknown_metrics
from core.importing.options import GenericMapping, import_options
from core.importing.plan import GENERIC, plan_import, recognise
from core.model.schema import ENTITIES
from core.sources import connect
from core.store.database import Store

Handler = Callable[[Store, argparse.Namespace], int]


def add_commands(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``import``, ``imports`` and ``connect`` on the ``python -m core`` parser."""
    imp = subparsers.add_parser(
        "import",
        help="import a file (CSV, TSV, Parquet, Excel, JSON, NDJSON, git log)",
        description="Import an export file. Known formats: "
        + ", ".join(FORMATS)
        + f". For git log use: {GITLOG_COMMAND}",
    )
    imp.add_argument("file")
    imp.add_argument("--as", dest="format", choices=[*FORMATS, GENERIC], help="the file's format (default: recognised)")
    imp.add_argument("--entity", choices=list(ENTITIES), help="only this entity, or the entity of a generic mapping")
    imp.add_argument("--map", action="append", default=[], metavar="COLUMN=SOURCE", help="generic mapping, repeatable")
    imp.add_argument("--date-format", help="strftime pattern of the file's dates (generic mapping)")
    imp.add_argument("--unit", help="unit of quantities (generic cost events)")
    imp.add_argument("--currency", help="currency of amounts (generic cost events)")
    imp.add_argument("--sheet", help="Excel sheet to read (default: the recognised one)")
    imp.add_argument("--timezone", help="time zone of dates written without one (default: setting or UTC)")
    imp.add_argument("--repo", help="repository name when the file does not say (git log, deployments)")
    imp.add_argument("--actor", default="cli", help="who is importing (recorded in the history)")
    imp.add_argument("--skip-invalid", action="store_true", help="import the valid rows, count the rest as rejected")
    imp.add_argument("--dry-run", action="store_true", help="recognise and validate only; write nothing")
    imp.set_defaults(run=_guard(_import))

    hist = subparsers.add_parser("imports", help="import history and undo")
    hist_sub = hist.add_subparsers(title="imports commands", required=True)
    show = hist_sub.add_parser("history", help="one line per import and entity, newest first")
    show.set_defaults(run=_guard(_history))
    undo = hist_sub.add_parser("undo", help="undo an import by its id")
    undo.add_argument("import_id", type=int)
    undo.add_argument("--actor", default="cli")
    undo.set_defaults(run=_guard(_undo))

    con = subparsers.add_parser("connect", help="database connections: add, map, preview, refresh")
    con_sub = con.add_subparsers(title="connect commands", required=True)
    add = con_sub.add_parser("add", help="save a connection (the password goes to the secrets file only)")
    add.add_argument("name")
    add.add_argument("url", help="SQLAlchemy URL, e.g. postgresql+psycopg://user@host:5432/db")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    _add_identity(add)
    add.set_defaults(run=_guard(_connect_add))
    lst = con_sub.add_parser("list", help="saved connections and their mappings")
    lst.set_defaults(run=_guard(_connect_list))
    test = con_sub.add_parser("test", help="connect and show the server version")
    test.add_argument("name")
    test.set_defaults(run=_guard(lambda store, a: _print(connect.test_connection(store, a.name))))
    tables = con_sub.add_parser("tables", help="list the tables and views")
    tables.add_argument("name")
    tables.set_defaults(run=_guard(lambda store, a: _print("\n".join(connect.list_tables(store, a.name)))))
    mapping = con_sub.add_parser("map", help="map an entity to a table or a read-only query")
    mapping.add_argument("name")
    mapping.add_argument("entity", choices=list(ENTITIES))
    source = mapping.add_mutually_exclusive_group(required=True)
    source.add_argument("--table")
    source.add_argument("--query")
    mapping.add_argument("--map", action="append", default=[], metavar="COLUMN=SOURCE")
    _add_identity(mapping)
    mapping.set_defaults(run=_guard(_connect_map))
    preset = con_sub.add_parser("preset", help="map with a preset (devlake)")
    preset.add_argument("name")
    preset.add_argument("preset", choices=list(connect.PRESETS))
    _add_identity(preset)
    preset.set_defaults(
        run=_guard(lambda store, a: _print(str(connect.use_preset(store, a.name, a.preset, _viewer(store, a)))))
    )
    prev = con_sub.add_parser("preview", help="the first rows an entity would receive")
    prev.add_argument("name")
    prev.add_argument("entity", choices=list(ENTITIES))
    prev.set_defaults(run=_guard(lambda store, a: _print(str(connect.preview(store, a.name, a.entity)))))
    refresh = con_sub.add_parser("refresh", help="import now / refresh every mapped entity")
    refresh.add_argument("name")
    _add_identity(refresh)
    refresh.add_argument("--skip-invalid", action="store_true")
    refresh.set_defaults(run=_guard(_connect_refresh))


def _import(store: Store, args: argparse.Namespace) -> int:
    options = import_options(store, timezone=args.timezone, repo=args.repo, sheet=args.sheet)
    mapping = None
    if args.map:
        if not args.entity:
            raise ImportFailed("--map needs --entity: the entity the columns map onto.")
        mapping = GenericMapping(args.entity, _pairs(args.map), args.date_format, args.unit, args.currency)
    recognition = recognise(args.file, options=options)
    plan = plan_import(args.file, format=args.format, entity=args.entity, mapping=mapping, options=options, store=store)
    print(f"{recognition.filename}: {plan.format} ({recognition.rows} rows)")
    for note in plan.notes:
        print(f"note: {note}")
    unknown = unknown_metrics(plan)
    if unknown and not args.skip_invalid:
        raise ImportFailed(undefined_metrics_message(args.file, unknown))
    if args.dry_run:
        for entity in plan.entities:
            print(f"{entity}: {plan.rows(entity)} rows, {plan.rejected.get(entity, 0)} with problems")
        if plan.problems:
            raise ImportFailed(f"{plan.source}: {len(plan.problems)} problem(s) found.", plan.problems)
        return 0
    record = run_import(store, plan, args.actor, _progress, skip_invalid=args.skip_invalid)
    _print_record(record.import_id, record.counts)
    return 0


def undefined_metrics_message(filename: str, names: list[str]) -> str:
    """What to run when an observations file names metrics the workspace lacks: a ready metrics CSV and its import."""
    listed = ", ".join(f"`{name}`" for name in names)
    csv_text = metrics_csv([proposed_metric(name) for name in names])
    return (
        f"{filename} names {len(names)} metric(s) the workspace does not define: {listed}. Nothing was written.\n"
        "Define them (the level, unit and direction are guessed from each name; edit them if wrong), "
        "then import this file again:\n\n"
        f"cat > metrics.csv <<'EOF'\n{csv_text}EOF\n"
        "python -m core import metrics.csv --entity metrics\n"
        f"python -m core import {filename}"
    )


def _history(store: Store, args: argparse.Namespace) -> int:
    with pl.Config(tbl_rows=100, tbl_cols=12, tbl_width_chars=200):
        print(import_history(store))
    return 0


def _undo(store: Store, args: argparse.Namespace) -> int:
    undo_import(store, args.import_id, args.actor)
    print(f"import #{args.import_id} undone")
    return 0


def _connect_add(store: Store, args: argparse.Namespace) -> int:
    url = args.url
    if args.password_stdin:
        import sqlalchemy as sa

        url = sa.make_url(url).set(password=sys.stdin.readline().rstrip("\n")).render_as_string(hide_password=False)
    connection = connect.save_connection(store, args.name, url, _viewer(store, args))
    print(f"saved connection {connection.name}: {connection.url}")
    return 0


def _connect_list(store: Store, args: argparse.Namespace) -> int:
    for c in connect.list_connections(store):
        mapped = c.preset or ", ".join(f"{m.entity} ← {m.table or 'query'}" for m in c.mappings) or "nothing mapped"
        print(f"{c.name}: {c.url} ({mapped})")
    return 0


def _connect_map(store: Store, args: argparse.Namespace) -> int:
    mapping = connect.SourceMapping(args.entity, args.table, args.query, _pairs(args.map))
    connect.set_mapping(store, args.name, mapping, _viewer(store, args))
    print(f"{args.name}: {args.entity} ← {args.table or 'query'}")
    return 0


def _connect_refresh(store: Store, args: argparse.Namespace) -> int:
    viewer = _viewer(store, args)
    record = connect.refresh(store, args.name, viewer.username, _progress, skip_invalid=args.skip_invalid)
    _print_record(record.import_id, record.counts)
    return 0


def _add_identity(command: argparse.ArgumentParser) -> None:
    command.add_argument("--actor", default="cli", help="who is acting (recorded), when run as the local admin")
    command.add_argument("--as", dest="as_user", default=None, help="act as this user, with their role")


def _viewer(store: Store, args: argparse.Namespace) -> Viewer:
    """Who a ``connect`` command acts as: ``--as USER`` with that user's role, else the local admin as ``--actor``."""
    if args.as_user is None:
        return dataclasses.replace(Viewer.local_admin(), username=args.actor)
    user = users.get_user(store, args.as_user)
    if user is None or user.disabled:
        raise connect.ConnectFailed(f"No active user `{args.as_user}`.")
    return Viewer(user.username, user.name, user.role, user.team_id)


def _guard(handler: Handler) -> Handler:
    def run(store: Store, args: argparse.Namespace) -> int:
        try:
            return int(handler(store, args) or 0)
        except ImportFailed as error:
            print(f"error: {error.message}", file=sys.stderr)
            return 1

    return run


def _pairs(items: list[str]) -> dict[str, str]:
    pairs = {}
    for item in items:
        column, sep, source = item.partition("=")
        if not sep or not column.strip() or not source.strip():
            raise ImportFailed(f"`{item}` is not COLUMN=SOURCE.")
        pairs[column.strip()] = source.strip()
    return pairs


def _print(text: str) -> int:
    print(text)
    return 0


def _print_record(import_id: int, counts: dict[str, dict[str, int]]) -> None:
    print(f"import #{import_id} done")
    for entity, c in counts.items():
        print(f"  {entity}: {c['added']} added, {c['updated']} updated, {c['rejected']} rejected")


def _progress(done: int, total: int) -> None:
    print(f"  rows {done}/{total}", file=sys.stderr)

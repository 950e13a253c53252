"""The command line: create workspaces, manage users, show status (import and report commands join it)."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from core import bootstrap, derived, users
from core.cli import digest, reports
from core.cli import imports as importing_cli
from core.model.schema import ROLES, ValidationError
from core.store.database import Store, open_store
from core.store.workspace import SECRETS_FILE, read_secrets, workspace_from_env, workspace_home


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    if not getattr(args, "creates_workspace", True) and not _workspace_exists():
        print(
            f"No workspace at {workspace_home()}: create one with `python -m core init --demo` or `--empty`"
            " (THROUGHLINE_HOME names the folder).",
            file=sys.stderr,
        )
        return 1
    try:
        store = open_store(workspace_from_env())
        return int(args.run(store, args) or 0)
    except (users.UserError, ValidationError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(prog="python -m core", description="Throughline workspace commands.")
    sub = parser.add_subparsers(title="commands")

    init = sub.add_parser("init", help="create the workspace (demo organisation or empty)")
    kind = init.add_mutually_exclusive_group(required=True)
    kind.add_argument("--demo", action="store_true", help="seed the demo organisation and one user per role")
    kind.add_argument("--empty", action="store_true", help="an empty workspace; create the first admin next")
    init.add_argument("--seed", type=int, default=7, help="demo seed (default 7)")
    init.add_argument("--scale", type=float, default=1.0, help="demo size multiplier (default 1)")
    init.add_argument("--if-missing", action="store_true", help="do nothing when the workspace already exists")
    init.add_argument("--force", action="store_true", help="erase an existing workspace first")
    init.add_argument("--port", type=int, default=8501, help="the port the app is served on, for the sign-in message")
    init.set_defaults(run=_init)

    user_cmd = sub.add_parser("users", help="add, list and change users")
    user_sub = user_cmd.add_subparsers(title="users commands", required=True)
    add = user_sub.add_parser("add", help="add a user (password read from stdin, or generated and printed)")
    add.add_argument("username")
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--team", default=None, help="team id (required for team_lead)")
    add.add_argument("--name", default=None, help="display name (default: the username)")
    add.add_argument("--email", default=None)
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    add.set_defaults(run=_users_add)
    lst = user_sub.add_parser("list", help="one user a line: name, role, team")
    lst.set_defaults(run=_users_list)
    setpw = user_sub.add_parser("set-password", help="set a user's password (stdin, or generated and printed)")
    setpw.add_argument("username")
    setpw.add_argument("--password-stdin", action="store_true")
    setpw.add_argument("--must-change", action="store_true", help="the user must choose a new one at next sign-in")
    setpw.set_defaults(run=_users_set_password)

    token = user_sub.add_parser(
        "setup-token", help="print a new one-time token for creating the first admin in the browser"
    )
    token.set_defaults(run=_users_setup_token)

    status = sub.add_parser("status", help="row counts per entity, last import, snapshot version")
    status.add_argument("--format", choices=("text", "json"), default="text")
    status.set_defaults(run=_status, creates_workspace=False)

    importing_cli.add_commands(sub)
    reports.add_commands(sub)
    digest.add_commands(sub)
    return parser


def _init(store: Store, args: argparse.Namespace) -> int:
    existing = store.get_meta("workspace_kind")
    if existing and args.if_missing:
        print(bootstrap.sign_in_message(store, port=args.port))
        return 0
    if existing and not args.force:
        print(
            f"error: a {existing} workspace already exists at {store.workspace.home}; use --force to erase it",
            file=sys.stderr,
        )
        return 1
    if existing:
        store.drop_all()
        store.create()
    if args.demo:
        print("Creating the demo organisation ...", flush=True)
        logins = bootstrap.seed_demo(store, seed=args.seed, scale=args.scale)
        derived.keep_results(store)
        print(bootstrap.sign_in_message(store, logins, port=args.port))
    else:
        token = bootstrap.init_empty(store)
        print(f"Empty workspace created at {store.workspace.home}.")
        print(bootstrap.setup_token_message(token))
        print(f"The app serves http://localhost:{args.port} once started.")
    return 0


def _workspace_exists() -> bool:
    """True when the environment's workspace folder holds a workspace, looked at without creating anything."""
    from sqlalchemy.engine import make_url

    home = workspace_home()
    if not home.is_dir():
        return False
    url = os.environ.get("THROUGHLINE_DATABASE_URL") or read_secrets(home / SECRETS_FILE).get("database_url")
    if url and not str(url).startswith("sqlite"):
        return True
    database = make_url(str(url)).database if url else str(home / "throughline.db")
    return database is not None and Path(database).exists()


def _read_or_generate_password(from_stdin: bool) -> tuple[str, bool]:
    if from_stdin:
        if sys.stdin.isatty():
            return getpass.getpass("Password: "), False
        return sys.stdin.readline().rstrip("\n"), False
    return users.generate_password(), True


def _users_add(store: Store, args: argparse.Namespace) -> int:
    password, generated = _read_or_generate_password(args.password_stdin)
    user = users.create_user(
        store,
        args.username,
        args.name or args.username,
        args.role,
        password,
        team_id=args.team,
        email=args.email,
        must_change_password=generated,
        actor="cli",
    )
    print(f"Added {user.username} ({user.role}{', ' + user.team_id if user.team_id else ''}).")
    if generated:
        print(f"One-time password (must be changed at first sign-in): {password}")
    return 0


def _users_list(store: Store, _args: argparse.Namespace) -> int:
    for user in users.list_users(store):
        flags = " (disabled)" if user.disabled else ""
        print(f"{user.username}\t{user.role}\t{user.team_id or '-'}{flags}")
    return 0


def _users_set_password(store: Store, args: argparse.Namespace) -> int:
    password, generated = _read_or_generate_password(args.password_stdin)
    must_change = args.must_change or generated
    users.set_password(store, args.username, password, must_change=must_change, actor="cli")
    print(f"Password of {args.username} changed.")
    if generated:
        print(f"One-time password (must be changed at next sign-in): {password}")
    return 0


def _users_setup_token(store: Store, _args: argparse.Namespace) -> int:
    print(bootstrap.setup_token_message(users.issue_setup_token(store)))
    return 0


def _status(store: Store, args: argparse.Namespace) -> int:
    info = workspace_status(store)
    if args.format == "json":
        print(json.dumps(info, indent=2, default=str))
        return 0
    print(f"Workspace: {info['home']} ({info['kind'] or 'not initialised'})")
    print(f"Database:  {info['database']}")
    print(f"Snapshot:  version {info['snapshot_version']}")
    print(f"Last import: {info['last_import'] or 'none'}")
    for entity, count in info["rows"].items():
        print(f"  {entity:<20} {count:>10,}")
    return 0


def workspace_status(store: Store) -> dict[str, object]:
    """Row counts per entity, last import and snapshot version (the password never shown)."""
    from sqlalchemy.engine import make_url

    from core.store.database import imports_table

    with store.engine.connect() as conn:
        import sqlalchemy as sa

        last = conn.execute(
            sa.select(imports_table.c.at, imports_table.c.source, imports_table.c.format)
            .order_by(imports_table.c.id.desc())
            .limit(1)
        ).first()
    return {
        "home": str(store.workspace.home),
        "database": make_url(store.workspace.database_url).render_as_string(hide_password=True),
        "kind": store.get_meta("workspace_kind"),
        "snapshot_version": store.data_version(),
        "last_write_at": store.get_meta("last_write_at"),
        "last_import": None if last is None else {"at": last.at, "source": last.source, "format": last.format},
        "rows": store.counts(),
    }

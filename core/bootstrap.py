"""Creating a workspace: the embedded demo organisation with one user per role, or an empty one."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from core import users
from core.store.database import Store

DEMO_CREDENTIALS_FILE = "demo-credentials.txt"
DEMO_USERS = (
    ("exec", "Erin Executive", "executive", None),
    ("delivery", "Dana Delivery", "delivery_lead", None),
    ("teamlead", "Theo Teamlead", "team_lead", "PAY"),
    ("admin", "Ada Admin", "admin", None),
)


@dataclass(frozen=True)
class DemoLogin:
    """A demo user's sign-in, shown once on the console and kept in an owner-only file."""

    username: str
    role: str
    password: str


def seed_demo(store: Store, seed: int = 7, scale: float = 1.0, must_change_password: bool = True) -> list[DemoLogin]:
    """Fill ``store`` with the demo organisation and one user per role with random passwords to change at first sign-in.

    ``must_change_password=False`` is for test fixtures that sign in many times with the printed passwords.
    """
    from demo import generate_demo

    demo = generate_demo(seed=seed, scale=scale)
    store.write(demo.frames, mode="replace", source="demo")
    store.set_meta("workspace_kind", "demo")
    store.set_meta("demo_seed", str(seed))
    team_ids = set(demo.frames["teams"]["team_id"].to_list())
    logins: list[DemoLogin] = []
    for username, name, role, team in DEMO_USERS:
        team_id = team if team in team_ids else (sorted(team_ids)[0] if role == "team_lead" else None)
        password = users.generate_password()
        users.create_user(
            store,
            username,
            name,
            role,
            password,
            team_id=team_id,
            must_change_password=must_change_password,
            actor="demo-seed",
        )
        logins.append(DemoLogin(username, role, password))
    write_demo_credentials(store.workspace.home, logins)
    store.audit("workspace.init", "demo-seed", f"demo organisation seed={seed} scale={scale}")
    return logins


def init_empty(store: Store) -> str:
    """Mark ``store`` as a real (non-demo) workspace; returns the one-time setup token for its first admin."""
    store.set_meta("workspace_kind", "empty")
    store.audit("workspace.init", None, "empty workspace")
    return users.issue_setup_token(store)


def first_admin_message(store: Store) -> str:
    """What the server console says on a workspace with no users: a setup token for the first admin."""
    if users.has_setup_token(store):
        return (
            "This workspace has no users yet: create the first admin in the browser with the setup token printed"
            " earlier, or print a new one with `python -m core users setup-token`."
        )
    token = users.issue_setup_token(store)
    return setup_token_message(token)


def setup_token_message(token: str) -> str:
    """How to use a freshly issued setup token (shown once, only on the server's console)."""
    return (
        "Create the first admin in the browser with this one-time setup token (shown once):\n"
        f"  {token}\n"
        "or on the command line: python -m core users add NAME --role admin"
    )


def write_demo_credentials(home: Path, logins: list[DemoLogin]) -> Path:
    """Save the demo sign-ins to a file only the owner can read."""
    path = home / DEMO_CREDENTIALS_FILE
    lines = ["# Throughline demo workspace sign-ins (generated; keep private)"]
    lines += [f"{login.username}\t{login.role}\t{login.password}" for login in logins]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    os.chmod(path, 0o600)
    return path


def sign_in_message(store: Store, logins: list[DemoLogin] | None = None, port: int = 8501) -> str:
    """What the console says about signing in to this workspace."""
    path = store.workspace.home / DEMO_CREDENTIALS_FILE
    if logins:
        rows = "\n".join(
            f"  {login.role:<14} user: {login.username:<10} password: {login.password}" for login in logins
        )
        return (
            f"Throughline demo workspace created. Sign in at http://localhost:{port} with one of:\n"
            f"{rows}\n(These passwords are shown once; they are also saved, owner-only, in {path}."
            " Each user chooses a new password at first sign-in.)"
        )
    if path.exists():
        return f"Sign in with the demo users listed in {path} (owner-only file)."
    if not users.has_users(store):
        return (
            "This workspace has no users yet: print a setup token with `python -m core users setup-token` and"
            " create the first admin in the browser, or run `python -m core users add NAME --role admin`."
        )
    return "Sign in with your Throughline user."

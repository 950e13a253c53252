"""Workspace users: bcrypt-hashed passwords, roles, lock-out after failed sign-ins, revocable sessions.

Users live in the workspace database (``tl_users``); nothing here knows about Streamlit. The
app turns ``credentials`` into what streamlit-authenticator expects on every run.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import bcrypt
import polars as pl
import sqlalchemy as sa

from core.model.schema import ROLES
from core.store.database import Store, users_table, utc_now

MIN_PASSWORD_LENGTH = 12
LOCK_AFTER_FAILURES = 5
LOCK_MINUTES = 15
ROLE_LABELS = {
    "executive": "Executive",
    "delivery_lead": "Delivery lead",
    "team_lead": "Team lead",
    "admin": "Admin",
}


class UserError(ValueError):
    """A user change that cannot be made, with a message for the person making it."""


@dataclass(frozen=True)
class User:
    """A workspace user as the app and the access layer see it."""

    username: str
    name: str
    role: str
    team_id: str | None
    email: str | None = None
    must_change_password: bool = False
    disabled: bool = False
    failed_logins: int = 0
    locked_until: datetime | None = None
    sessions_valid_after: datetime | None = None

    def is_locked(self, now: datetime | None = None) -> bool:
        """True while the account is locked after too many failed sign-ins."""
        return self.locked_until is not None and self.locked_until > (now or utc_now())


def generate_password() -> str:
    """A random password strong enough to print once and hand over."""
    return secrets.token_urlsafe(15)


def hash_password(password: str) -> str:
    """The bcrypt hash of ``password``."""
    return bcrypt.hashpw(password.encode("utf-8"), bcrypt.gensalt(rounds=12)).decode("ascii")


def check_password(password: str, password_hash: str) -> bool:
    """True when ``password`` matches the bcrypt ``password_hash``."""
    try:
        return bcrypt.checkpw(password.encode("utf-8"), password_hash.encode("ascii"))
    except ValueError:
        return False


def create_user(
    store: Store,
    username: str,
    name: str,
    role: str,
    password: str,
    team_id: str | None = None,
    email: str | None = None,
    must_change_password: bool = False,
    actor: str | None = None,
) -> User:
    """Add a user; raises ``UserError`` when the username is taken or a field is invalid."""
    username = _clean_username(username)
    _check_role(role, team_id)
    _check_password(password)
    if not name.strip():
        raise UserError("Name is required.")
    with store.engine.begin() as conn:
        taken = conn.execute(sa.select(users_table.c.username).where(users_table.c.username == username)).first()
        if taken:
            raise UserError(f"User `{username}` already exists.")
        conn.execute(
            users_table.insert().values(
                username=username,
                name=name.strip(),
                email=email,
                role=role,
                team_id=team_id if role == "team_lead" else None,
                password_hash=hash_password(password),
                must_change_password=must_change_password,
                disabled=False,
                failed_logins=0,
                created_at=utc_now(),
            )
        )
    store.audit("user.add", actor, f"{username} as {role}" + (f" of {team_id}" if team_id else ""))
    return get_user(store, username)  # type: ignore[return-value]


def get_user(store: Store, username: str) -> User | None:
    """The user called ``username``, or None."""
    with store.engine.connect() as conn:
        row = (
            conn.execute(sa.select(users_table).where(users_table.c.username == username.strip().lower()))
            .mappings()
            .first()
        )
    return _user(row) if row else None


def list_users(store: Store) -> list[User]:
    """Every user, sorted by username."""
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(users_table).order_by(users_table.c.username)).mappings().all()
    return [_user(r) for r in rows]


def users_frame(store: Store) -> pl.DataFrame:
    """Every user as a table for the admin page (no password hashes)."""
    users = list_users(store)
    return pl.DataFrame(
        {
            "username": [u.username for u in users],
            "name": [u.name for u in users],
            "role": [u.role for u in users],
            "team_id": [u.team_id for u in users],
            "disabled": [u.disabled for u in users],
            "must_change_password": [u.must_change_password for u in users],
            "locked_until": [u.locked_until for u in users],
        },
        schema={
            "username": pl.String,
            "name": pl.String,
            "role": pl.String,
            "team_id": pl.String,
            "disabled": pl.Boolean,
            "must_change_password": pl.Boolean,
            "locked_until": pl.Datetime("us"),
        },
    )


def has_users(store: Store) -> bool:
    """True when at least one user exists (a new workspace asks for its first admin)."""
    with store.engine.connect() as conn:
        return conn.execute(sa.select(users_table.c.username).limit(1)).first() is not None


def set_password(
    store: Store, username: str, password: str, must_change: bool = False, actor: str | None = None
) -> None:
    """Replace a user's password; ``must_change`` makes them choose a new one at next sign-in."""
    _check_password(password)
    _update(
        store,
        username,
        password_hash=hash_password(password),
        must_change_password=must_change,
        failed_logins=0,
        locked_until=None,
        sessions_valid_after=utc_now(),
    )
    store.audit("user.password", actor, f"{username}" + (" (reset, must change)" if must_change else ""))


def set_role(store: Store, username: str, role: str, team_id: str | None, actor: str | None = None) -> None:
    """Change a user's role (and team for a team lead)."""
    _check_role(role, team_id)
    _update(store, username, role=role, team_id=team_id if role == "team_lead" else None)
    store.audit("user.role", actor, f"{username} -> {role}" + (f" of {team_id}" if team_id else ""))


def set_disabled(store: Store, username: str, disabled: bool, actor: str | None = None) -> None:
    """Disable (or re-enable) a user; disabling also ends their sessions."""
    _update(store, username, disabled=disabled, sessions_valid_after=utc_now())
    store.audit("user.disable" if disabled else "user.enable", actor, username)


def record_failed_login(store: Store, username: str) -> User | None:
    """Count a failed sign-in; lock the account for a while after too many."""
    user = get_user(store, username)
    if user is None:
        store.audit("signin.failed", None, f"unknown user {username[:100]}")
        return None
    failures = user.failed_logins + 1
    locked = utc_now() + timedelta(minutes=LOCK_MINUTES) if failures >= LOCK_AFTER_FAILURES else None
    _update(store, user.username, failed_logins=failures, locked_until=locked)
    store.audit("signin.failed", user.username, f"attempt {failures}" + (" - locked" if locked else ""))
    return get_user(store, user.username)


def record_login(store: Store, username: str) -> None:
    """Reset the failure count after a successful sign-in."""
    _update(store, username, failed_logins=0, locked_until=None)
    store.audit("signin", username, "")


def end_sessions(store: Store, username: str) -> None:
    """Invalidate every session cookie issued to ``username`` until now (sign-out)."""
    _update(store, username, sessions_valid_after=utc_now())
    store.audit("signout", username, "")


def session_is_valid(user: User, issued_at: datetime) -> bool:
    """True when a session issued at ``issued_at`` (naive UTC) may still be used."""
    if user.disabled:
        return False
    return user.sessions_valid_after is None or issued_at > user.sessions_valid_after


def credentials(store: Store) -> dict[str, dict[str, dict[str, object]]]:
    """Active users in the shape streamlit-authenticator expects (hashes only, never passwords)."""
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(users_table).where(users_table.c.disabled.is_(False))).mappings().all()
    now = utc_now()
    out: dict[str, dict[str, object]] = {}
    for row in rows:
        user = _user(row)
        out[user.username] = {
            "name": user.name,
            "email": user.email or f"{user.username}@localhost",
            "password": row["password_hash"],
            "roles": [user.role],
            "failed_login_attempts": LOCK_AFTER_FAILURES if user.is_locked(now) else 0,
            "logged_in": False,
        }
    return {"usernames": out}


def _user(row: sa.RowMapping) -> User:
    return User(
        username=row["username"],
        name=row["name"],
        role=row["role"],
        team_id=row["team_id"],
        email=row["email"],
        must_change_password=bool(row["must_change_password"]),
        disabled=bool(row["disabled"]),
        failed_logins=int(row["failed_logins"] or 0),
        locked_until=row["locked_until"],
        sessions_valid_after=row["sessions_valid_after"],
    )


def _update(store: Store, username: str, **values: object) -> None:
    with store.engine.begin() as conn:
        updated = conn.execute(
            users_table.update().where(users_table.c.username == username.strip().lower()).values(**values)
        ).rowcount
    if not updated:
        raise UserError(f"No user `{username}`.")


def _clean_username(username: str) -> str:
    cleaned = username.strip().lower()
    if not cleaned or len(cleaned) > 100 or not all(ch.isalnum() or ch in "._-@" for ch in cleaned):
        raise UserError("Username must be 1-100 characters: letters, digits, '.', '_', '-' or '@'.")
    return cleaned


def _check_role(role: str, team_id: str | None) -> None:
    if role not in ROLES:
        raise UserError(f"Role must be one of {', '.join(ROLES)}; got `{role}`.")
    if role == "team_lead" and not team_id:
        raise UserError("A team lead must be bound to a team.")


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"Password must be at least {MIN_PASSWORD_LENGTH} characters.")
    if len(password.encode("utf-8")) > 72:
        raise UserError("Password must be at most 72 bytes (a bcrypt limit).")

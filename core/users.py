"""Workspace users: bcrypt-hashed passwords, roles, lock-out after failed sign-ins, revocable sessions.

Users live in the workspace database (``tl_users``); nothing here knows about Streamlit. A sign-in
attempt (``attempt_sign_in``) costs one bcrypt check and gives the same answer whether or not the
username exists: failures of real accounts are counted in the database in one statement that also
sets the lock, failures of names that are no account in memory (``SignInGuard``), with the same rule.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections import OrderedDict, deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

import bcrypt
import polars as pl
import sqlalchemy as sa

from core.model.schema import ROLES
from core.store.database import Store, meta_table, users_table, utc_now

MIN_PASSWORD_LENGTH = 12
LOCK_AFTER_FAILURES = 5
LOCK_MINUTES = 15
ADDRESS_FAILURES_PER_MINUTE = 20
INCORRECT = "Username or password is incorrect."
LOCKED = (
    f"Too many failed sign-ins for this username: it is locked for {LOCK_MINUTES} minutes. "
    "Try again later or ask an admin to reset the password."
)
THROTTLED = "Too many failed sign-ins from your address: wait a minute before trying again."
SETUP_TOKEN_KEY = "setup_token_sha256"
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
) -> datetime:
    """Replace a user's password and end their sessions; ``must_change`` makes them choose one at next sign-in.

    Returns the moment sessions were ended, so the person who changed their own password keeps theirs.
    """
    _check_password(password)
    now = utc_now()
    _update(
        store,
        username,
        password_hash=hash_password(password),
        must_change_password=must_change,
        failed_logins=0,
        locked_until=None,
        sessions_valid_after=now,
    )
    store.audit("user.password", actor, f"{username}" + (" (reset, must change)" if must_change else ""))
    return now


def set_role(store: Store, username: str, role: str, team_id: str | None, actor: str | None = None) -> None:
    """Change a user's role (and team for a team lead)."""
    _check_role(role, team_id)
    _update(store, username, role=role, team_id=team_id if role == "team_lead" else None)
    store.audit("user.role", actor, f"{username} -> {role}" + (f" of {team_id}" if team_id else ""))


def set_disabled(store: Store, username: str, disabled: bool, actor: str | None = None) -> None:
    """Disable (or re-enable) a user; disabling also ends their sessions."""
    _update(store, username, disabled=disabled, sessions_valid_after=utc_now())
    store.audit("user.disable" if disabled else "user.enable", actor, username)


@dataclass(frozen=True)
class SignIn:
    """One sign-in attempt's outcome: the user when accepted, else the message every refusal of its kind shows."""

    user: User | None
    message: str = ""
    failures: int = 0


class SignInGuard:
    """The in-memory sign-in limits of one server: failures per client address, and lock-outs of unknown names.

    A name that is no account locks after the same number of failures, for the same time, as a real
    one, so a lock-out tells an attacker nothing. Memory is bounded: the oldest entries are dropped.
    """

    def __init__(self, per_minute: int = ADDRESS_FAILURES_PER_MINUTE, max_entries: int = 10_000) -> None:
        self.per_minute = per_minute
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._addresses: OrderedDict[str, deque[datetime]] = OrderedDict()
        self._unknown: OrderedDict[str, tuple[int, datetime | None]] = OrderedDict()

    def address_blocked(self, address: str, now: datetime) -> bool:
        """True while ``address`` has failed ``per_minute`` times within the last minute."""
        with self._lock:
            recent = self._addresses.get(address)
            if recent is None:
                return False
            while recent and recent[0] <= now - timedelta(minutes=1):
                recent.popleft()
            return len(recent) >= self.per_minute

    def record_address_failure(self, address: str, now: datetime) -> None:
        """Count one failed sign-in from ``address``."""
        with self._lock:
            self._addresses.setdefault(address, deque()).append(now)
            self._addresses.move_to_end(address)
            _trim(self._addresses, self.max_entries)

    def fail_unknown(self, username: str, now: datetime) -> tuple[int, datetime | None]:
        """Count a failure for a name that is no account; its failure count and lock end, as for a real one."""
        with self._lock:
            failures, locked_until = self._unknown.get(username, (0, None))
            failures, locked_until = next_failure(failures, locked_until, now)
            self._unknown[username] = (failures, locked_until)
            self._unknown.move_to_end(username)
            _trim(self._unknown, self.max_entries)
            return failures, locked_until


def next_failure(failures: int, locked_until: datetime | None, now: datetime) -> tuple[int, datetime | None]:
    """The failure count and lock end after one more failure (counting restarts once a lock has expired)."""
    failures = 1 if locked_until is not None and locked_until <= now else failures + 1
    if failures >= LOCK_AFTER_FAILURES:
        return failures, now + timedelta(minutes=LOCK_MINUTES)
    return failures, None if locked_until is not None and locked_until <= now else locked_until


def attempt_sign_in(store: Store, username: str, password: str, guard: SignInGuard, address: str) -> SignIn:
    """Check one sign-in: one bcrypt check whether or not the user exists, the lock decided in the same statement."""
    now = utc_now()
    if guard.address_blocked(address, now):
        store.audit("signin.throttled", None, f"address {address[:60]}")
        return SignIn(None, THROTTLED)
    name = username.strip().lower()[:100]
    with store.engine.connect() as conn:
        row = conn.execute(
            sa.select(users_table.c.password_hash, users_table.c.disabled).where(users_table.c.username == name)
        ).first()
    known = row is not None and not row.disabled
    matches = check_password(password, row.password_hash if known else _dummy_hash())
    if known and matches:
        if _accept(store, name, row.password_hash, now):
            store.audit("signin", name, "")
            return SignIn(get_user(store, name))
        store.audit("signin.refused", name, "locked")
        return SignIn(None, LOCKED)
    guard.record_address_failure(address, now)
    if known:
        failures, locked_until = _count_failure(store, name, now)
        store.audit(
            "signin.failed", name, f"attempt {failures}" + (" - locked" if failures >= LOCK_AFTER_FAILURES else "")
        )
    else:
        failures, locked_until = guard.fail_unknown(name, now)
        store.audit("signin.failed", None, f"unknown user {name}")
    locked = locked_until is not None and locked_until > now
    return SignIn(None, LOCKED if locked else INCORRECT, failures)


def record_failed_login(store: Store, username: str) -> User | None:
    """Count a failed sign-in of a real account in one statement; lock it for a while after too many."""
    user = get_user(store, username)
    if user is None:
        store.audit("signin.failed", None, f"unknown user {username[:100]}")
        return None
    failures, _locked_until = _count_failure(store, user.username, utc_now())
    store.audit(
        "signin.failed", user.username, f"attempt {failures}" + (" - locked" if failures >= LOCK_AFTER_FAILURES else "")
    )
    return get_user(store, user.username)


def record_login(store: Store, username: str) -> None:
    """Reset the failure count after a successful sign-in."""
    _update(store, username, failed_logins=0, locked_until=None)
    store.audit("signin", username, "")


def end_sessions(store: Store, username: str) -> datetime:
    """Invalidate every session of ``username`` begun until now (sign-out); returns that moment."""
    now = utc_now()
    _update(store, username, sessions_valid_after=now)
    store.audit("signout", username, "")
    return now


def session_is_valid(user: User, issued_at: datetime) -> bool:
    """True when a session begun at ``issued_at`` (naive UTC) may still be used: not ended, password unchanged since."""
    if user.disabled:
        return False
    return user.sessions_valid_after is None or issued_at >= user.sessions_valid_after


def issue_setup_token(store: Store) -> str:
    """A new one-time token that lets its holder create the first admin (only its hash is kept)."""
    if has_users(store):
        raise UserError("This workspace already has users: admins add the others on the Users page.")
    token = secrets.token_urlsafe(24)
    store.set_meta(SETUP_TOKEN_KEY, _token_hash(token))
    store.audit("setup_token.issued", None, "")
    return token


def has_setup_token(store: Store) -> bool:
    """True when a setup token for the first admin has been issued and not used."""
    return store.get_meta(SETUP_TOKEN_KEY) is not None


def create_first_admin(store: Store, token: str, username: str, name: str, password: str) -> User:
    """Create the first admin of an empty workspace with its one-time setup token, which is used up."""
    username = _clean_username(username)
    _check_password(password)
    with store.engine.begin() as conn:
        if conn.execute(sa.select(users_table.c.username).limit(1)).first() is not None:
            raise UserError("This workspace already has users: sign in instead.")
        used = conn.execute(
            meta_table.delete().where(
                meta_table.c.key == SETUP_TOKEN_KEY, meta_table.c.value == _token_hash(token.strip())
            )
        ).rowcount
        if not used:
            raise UserError(
                "The setup token is wrong or was already used. Print a new one on the server with "
                "`python -m core users setup-token`."
            )
        conn.execute(
            users_table.insert().values(
                username=username,
                name=name.strip() or username,
                role="admin",
                password_hash=hash_password(password),
                must_change_password=False,
                disabled=False,
                failed_logins=0,
                created_at=utc_now(),
            )
        )
    store.audit("user.add", "first-run", f"{username} as admin (setup token)")
    return get_user(store, username)  # type: ignore[return-value]


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


def _count_failure(store: Store, username: str, now: datetime) -> tuple[int, datetime | None]:
    """One more failure of ``username``, counted and locked in one statement (no lost increments)."""
    table = users_table
    failures = sa.func.coalesce(table.c.failed_logins, 0)
    expired = sa.and_(table.c.locked_until.is_not(None), table.c.locked_until <= now)
    counted = sa.case((expired, 1), else_=failures + 1)
    locked = sa.case(
        (counted >= LOCK_AFTER_FAILURES, now + timedelta(minutes=LOCK_MINUTES)),
        (expired, sa.null()),
        else_=table.c.locked_until,
    )
    with store.engine.begin() as conn:
        row = conn.execute(
            table.update()
            .where(table.c.username == username)
            .values(failed_logins=counted, locked_until=locked)
            .returning(table.c.failed_logins, table.c.locked_until)
        ).first()
    if row is None:
        raise UserError(f"No user `{username}`.")
    return int(row.failed_logins), row.locked_until


def _accept(store: Store, username: str, password_hash: str, now: datetime) -> bool:
    """Reset the failures of a correct sign-in if the account is still unlocked, enabled and its password unchanged."""
    table = users_table
    with store.engine.begin() as conn:
        row = conn.execute(
            table.update()
            .where(
                table.c.username == username,
                table.c.disabled.is_(False),
                table.c.password_hash == password_hash,
                sa.or_(table.c.locked_until.is_(None), table.c.locked_until <= now),
            )
            .values(failed_logins=0, locked_until=None)
            .returning(table.c.username)
        ).first()
    return row is not None


@cache
def _dummy_hash() -> str:
    """A bcrypt hash no password matches, checked for unknown names so they cost what real ones cost."""
    return hash_password(secrets.token_urlsafe(24))


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _trim(entries: OrderedDict, limit: int) -> None:
    while len(entries) > limit:
        entries.popitem(last=False)

"""Users: hashed passwords, no defaults, lock-out, revocable sessions, role rules."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from core import users
from core.store.database import Store, users_table, utc_now


def test_a_fresh_workspace_has_no_users_and_no_default_credentials(store: Store) -> None:
    assert not users.has_users(store)
    assert users.credentials(store) == {"usernames": {}}


def test_passwords_are_stored_as_bcrypt_hashes(store: Store) -> None:
    users.create_user(store, "Ada", "Ada Admin", "admin", "correct horse battery")
    with store.engine.connect() as conn:
        stored = conn.execute(sa.select(users_table.c.password_hash)).scalar_one()
    assert stored.startswith("$2b$12$") and "correct horse" not in stored
    assert users.check_password("correct horse battery", stored)
    assert not users.check_password("correct horse batterY", stored)
    assert users.get_user(store, "ADA").username == "ada"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"password": "short"}, "Password must be at least 12 characters."),
        ({"role": "owner"}, "Role must be one of executive, delivery_lead, team_lead, admin; got `owner`."),
        ({"role": "team_lead"}, "A team lead must be bound to a team."),
        ({"username": "robert'); DROP TABLE tl_users;--"}, "Username must be 1-100 characters"),
    ],
)
def test_invalid_users_are_refused_with_a_message(store: Store, kwargs: dict[str, str], message: str) -> None:
    fields = {"username": "ana", "name": "Ana", "role": "executive", "password": "a long enough password"} | kwargs
    with pytest.raises(users.UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        users.create_user(store, **fields)
    assert not users.has_users(store)


def test_duplicate_usernames_are_refused(store: Store) -> None:
    users.create_user(store, "ana", "Ana", "executive", "a long enough password")
    with pytest.raises(users.UserError, match="already exists"):
        users.create_user(store, "ANA", "Ana again", "admin", "a long enough password")


def test_repeated_failures_lock_the_account_and_a_success_resets(store: Store) -> None:
    users.create_user(store, "ana", "Ana", "executive", "a long enough password")
    for _ in range(users.LOCK_AFTER_FAILURES - 1):
        assert not users.record_failed_login(store, "ana").is_locked()
    locked = users.record_failed_login(store, "ana")
    assert locked.is_locked()
    assert locked.locked_until - utc_now() <= timedelta(minutes=users.LOCK_MINUTES)
    assert users.credentials(store)["usernames"]["ana"]["failed_login_attempts"] == users.LOCK_AFTER_FAILURES
    users.record_login(store, "ana")
    assert not users.get_user(store, "ana").is_locked()
    actions = store.audit_log()["action"].to_list()
    assert actions.count("signin.failed") == users.LOCK_AFTER_FAILURES and actions[0] == "signin"


def test_signing_out_invalidates_sessions_issued_before(store: Store) -> None:
    users.create_user(store, "ana", "Ana", "executive", "a long enough password")
    issued = utc_now() - timedelta(seconds=1)
    assert users.session_is_valid(users.get_user(store, "ana"), issued)
    users.end_sessions(store, "ana")
    assert not users.session_is_valid(users.get_user(store, "ana"), issued)
    assert users.session_is_valid(users.get_user(store, "ana"), utc_now() + timedelta(seconds=1))


def test_disabled_users_cannot_sign_in(store: Store) -> None:
    users.create_user(store, "ana", "Ana", "executive", "a long enough password")
    users.set_disabled(store, "ana", True, actor="ada")
    assert "ana" not in users.credentials(store)["usernames"]
    assert not users.session_is_valid(users.get_user(store, "ana"), utc_now() + timedelta(seconds=1))


def test_a_reset_password_must_be_changed(store: Store) -> None:
    users.create_user(store, "ana", "Ana", "executive", "a long enough password")
    users.set_password(store, "ana", "temporary password 1", must_change=True, actor="ada")
    user = users.get_user(store, "ana")
    assert user.must_change_password
    assert users.check_password("temporary password 1", users.credentials(store)["usernames"]["ana"]["password"])


def test_names_with_sql_metacharacters_are_stored_as_text(store: Store) -> None:
    name = "Robert'); DROP TABLE tl_users;-- " + "x" * 150
    users.create_user(store, "bobby", name, "executive", "a long enough password")
    assert users.get_user(store, "bobby").name == name.strip()
    assert users.has_users(store)

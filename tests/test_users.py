"""Users: hashed passwords, no defaults, lock-out, revocable sessions, role rules."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import bcrypt
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


RIGHT = "a long enough password"
WRONG = "not the right password"


def _hammer(store: Store, passwords: list[str], guard: users.SignInGuard) -> list[users.SignIn]:
    """Every password tried at once for `ana`, one thread each, released together."""
    barrier = threading.Barrier(len(passwords))

    def attempt(password: str) -> users.SignIn:
        barrier.wait()
        return users.attempt_sign_in(store, "ana", password, guard, "10.0.0.1")

    with ThreadPoolExecutor(max_workers=len(passwords)) as pool:
        return list(pool.map(attempt, passwords))


def test_concurrent_failures_are_all_counted_and_a_right_password_checked_before_the_lock_is_refused(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    users.create_user(store, "ana", "Ana", "executive", RIGHT)
    real_check = users.check_password

    def slow_right_check(password: str, password_hash: str) -> bool:
        matched = real_check(password, password_hash)
        if password == RIGHT:  # the right password was read and checked; commit only once the lock has landed
            deadline = time.monotonic() + 60
            while users.get_user(store, "ana").failed_logins < users.LOCK_AFTER_FAILURES:
                assert time.monotonic() < deadline, "the wrong passwords never locked the account"
                time.sleep(0.01)
        return matched

    monkeypatch.setattr(users, "check_password", slow_right_check)
    results = _hammer(store, [WRONG] * 20 + [RIGHT], users.SignInGuard(per_minute=1_000))
    assert [r.user for r in results] == [None] * 21
    assert results[-1].message == users.LOCKED
    ana = users.get_user(store, "ana")
    assert ana.failed_logins == 20 and ana.is_locked()
    assert sorted(r.failures for r in results[:20]) == list(range(1, 21))


def test_twenty_wrong_and_one_right_at_once_count_every_failure_exactly_once(store: Store) -> None:
    users.create_user(store, "ana", "Ana", "executive", RIGHT)
    results = _hammer(store, [WRONG] * 20 + [RIGHT], users.SignInGuard(per_minute=1_000))
    counted = sorted(r.failures for r in results[:20])
    final = users.get_user(store, "ana").failed_logins
    if results[-1].user is None:  # refused: it came after the fifth failure
        assert results[-1].message == users.LOCKED
        assert counted == list(range(1, 21)) and final == 20
    else:  # accepted before the lock: it reset the count once, fewer than five failures before it
        before = 20 - final
        assert before < users.LOCK_AFTER_FAILURES
        assert counted == sorted([*range(1, before + 1), *range(1, final + 1)])


def test_a_locked_account_refuses_the_right_password_and_an_expired_lock_restarts_the_count(store: Store) -> None:
    users.create_user(store, "ana", "Ana", "executive", RIGHT)
    guard = users.SignInGuard()
    answers = [users.attempt_sign_in(store, "ana", WRONG, guard, "a").message for _ in range(5)]
    assert answers == [users.INCORRECT] * 4 + [users.LOCKED]
    refused = users.attempt_sign_in(store, "ana", RIGHT, guard, "a")
    assert refused.user is None and refused.message == users.LOCKED
    assert users.get_user(store, "ana").failed_logins == 5  # the right password is not a failure
    with store.engine.begin() as conn:
        conn.execute(users_table.update().values(locked_until=utc_now() - timedelta(seconds=1)))
    again = users.attempt_sign_in(store, "ana", WRONG, guard, "a")
    assert (again.failures, again.message) == (1, users.INCORRECT)
    assert users.get_user(store, "ana").locked_until is None
    assert users.attempt_sign_in(store, "ana", RIGHT, guard, "a").user.username == "ana"
    assert users.get_user(store, "ana").failed_logins == 0


def test_real_and_unknown_usernames_cost_one_bcrypt_check_and_get_the_same_answers(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    users.create_user(store, "ana", "Ana", "executive", RIGHT)
    users.create_user(store, "bo", "Bo", "executive", RIGHT)
    users.set_disabled(store, "bo", True)
    assert users._dummy_hash()[:7] == "$2b$12$"  # the same cost factor as real hashes
    checks: list[str] = []
    real_checkpw = bcrypt.checkpw
    monkeypatch.setattr(bcrypt, "checkpw", lambda pw, hashed: checks.append(pw) or real_checkpw(pw, hashed))
    guard = users.SignInGuard()

    def answers(username: str) -> list[tuple[str, int]]:
        before = len(checks)
        out = [users.attempt_sign_in(store, username, WRONG, guard, "b") for _ in range(6)]
        assert len(checks) - before == 6  # one bcrypt check per attempt, real account or not
        return [(a.message, a.failures) for a in out]

    expected = [(users.INCORRECT, n) for n in range(1, 5)] + [(users.LOCKED, 5), (users.LOCKED, 6)]
    assert answers("ana") == expected
    assert answers("nobody") == expected
    assert answers("bo") == expected  # a disabled account answers as if it did not exist
    checks.clear()
    assert users.attempt_sign_in(store, "bo", RIGHT, guard, "b").message == users.LOCKED
    assert len(checks) == 1


def test_an_address_with_too_many_failures_waits_a_minute(store: Store) -> None:
    users.create_user(store, "ana", "Ana", "executive", RIGHT)
    guard = users.SignInGuard(per_minute=3)
    for name in ("x1", "x2", "ana"):
        assert users.attempt_sign_in(store, name, WRONG, guard, "10.0.0.9").message == users.INCORRECT
    throttled = users.attempt_sign_in(store, "ana", RIGHT, guard, "10.0.0.9")
    assert throttled.user is None and throttled.message == users.THROTTLED
    assert users.attempt_sign_in(store, "ana", RIGHT, guard, "10.0.0.10").user is not None  # another address
    assert not guard.address_blocked("10.0.0.9", utc_now() + timedelta(seconds=61))


def test_unknown_name_lock_state_is_bounded_in_memory() -> None:
    guard = users.SignInGuard(max_entries=2)
    now = utc_now()
    for name in ("a", "b", "c"):
        guard.fail_unknown(name, now)
    assert guard.fail_unknown("a", now) == (1, None)  # "a" was dropped as the oldest, so counting restarts
    assert guard.fail_unknown("c", now) == (2, None)


def test_a_password_change_ends_sessions_begun_before_it(store: Store) -> None:
    users.create_user(store, "ana", "Ana", "executive", RIGHT)
    began = utc_now()
    changed = users.set_password(store, "ana", "another long password", actor="ana")
    ana = users.get_user(store, "ana")
    assert not users.session_is_valid(ana, began)
    assert users.session_is_valid(ana, changed)  # the session that changed it carries on

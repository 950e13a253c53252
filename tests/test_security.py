"""Security you can show a CISO: no default credentials, lock-out, revoked sessions, inert input."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from core import users
from core.store.database import open_store
from core.store.workspace import Workspace
from tests.apptest import APP

PASSWORD = "a long enough passphrase"


@pytest.fixture
def small_workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    workspace = Workspace(home=tmp_path, database_url=f"sqlite:///{tmp_path / 'throughline.db'}")
    (tmp_path / "snapshot").mkdir()
    store = open_store(workspace)
    store.write({"teams": pl.DataFrame({"team_id": ["PAY"], "name": ["Payments"]})})
    users.create_user(store, "ana", "Ana", "admin", PASSWORD)
    monkeypatch.setenv("THROUGHLINE_HOME", str(tmp_path))
    monkeypatch.setenv("THROUGHLINE_DEMO", "0")
    return workspace


def _attempt(at: AppTest, username: str, password: str) -> AppTest:
    at.text_input[0].input(username)
    at.text_input[1].input(password)
    return at.button[0].click().run()


def test_a_fresh_empty_workspace_has_no_user_and_asks_for_the_first_admin(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("THROUGHLINE_HOME", str(tmp_path))
    monkeypatch.setenv("THROUGHLINE_DEMO", "0")
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Welcome to Throughline"]
    store = open_store(Workspace(home=tmp_path, database_url=f"sqlite:///{tmp_path / 'throughline.db'}"))
    assert not users.has_users(store)


def test_the_first_admin_is_created_in_the_browser_form(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("THROUGHLINE_HOME", str(tmp_path))
    monkeypatch.setenv("THROUGHLINE_DEMO", "0")
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.text_input(key="first_admin.username").input("root")
    at.text_input(key="first_admin.name").input("Root Admin")
    at.text_input(key="first_admin.password").input(PASSWORD)
    at.text_input(key="first_admin.repeat").input(PASSWORD)
    at.button[0].click().run()
    assert not at.exception
    assert [s.value for s in at.success] == ["Admin `root` created."]
    at.button(key="first_admin.continue").click().run()
    assert [t.label for t in at.text_input] == ["Username", "Password"]
    _attempt(at, "root", PASSWORD)
    assert not at.exception
    assert "Root Admin" in " ".join(m.value for m in at.sidebar.markdown)


def test_repeated_failures_lock_the_account_even_for_the_right_password(small_workspace: Workspace) -> None:
    at = AppTest.from_file(APP, default_timeout=60).run()
    for _ in range(users.LOCK_AFTER_FAILURES):
        _attempt(at, "ana", "wrong password!!")
    assert "locked" in at.error[0].value
    _attempt(at, "ana", PASSWORD)
    assert "locked" in at.error[0].value
    assert "Viewing as" not in " ".join(c.value for c in at.caption)
    store = open_store(small_workspace)
    assert users.get_user(store, "ana").is_locked()


def test_a_disabled_user_cannot_sign_in(small_workspace: Workspace) -> None:
    store = open_store(small_workspace)
    users.create_user(store, "bo", "Bo", "executive", PASSWORD)
    users.set_disabled(store, "bo", True, actor="ana")
    at = _attempt(AppTest.from_file(APP, default_timeout=60).run(), "bo", PASSWORD)
    assert [e.value for e in at.error] == ["Username or password is incorrect."]


def test_a_reset_password_must_be_changed_before_any_page(small_workspace: Workspace) -> None:
    store = open_store(small_workspace)
    users.create_user(store, "bo", "Bo", "executive", PASSWORD, must_change_password=True)
    at = _attempt(AppTest.from_file(APP, default_timeout=60).run(), "bo", PASSWORD)
    assert [t.value for t in at.title] == ["Choose a new password"]
    at.text_input(key="change_password.new").input("my own new passphrase")
    at.text_input(key="change_password.repeat").input("my own new passphrase")
    at.button(key="FormSubmitter:change_password-Save password").click().run()
    assert not at.exception
    assert not users.get_user(store, "bo").must_change_password
    assert users.check_password("my own new passphrase", users.credentials(store)["usernames"]["bo"]["password"])


def test_hostile_text_in_user_fields_is_stored_and_shown_as_plain_text(small_workspace: Workspace) -> None:
    at = _attempt(AppTest.from_file(APP, default_timeout=60).run(), "ana", PASSWORD)
    at.switch_page(str(Path(APP).parent / "pages" / "users.py")).run()
    hostile = ("Robert'); DROP TABLE tl_users;-- <script>alert(1)</script> " + "ж" * 150)[:200]
    at.text_input(key="users.add.username").input("bobby")
    at.text_input(key="users.add.name").input(hostile)
    at.button(key="FormSubmitter:users.add-Add user").click().run()
    assert not at.exception
    store = open_store(small_workspace)
    assert users.get_user(store, "bobby").name == hostile
    assert hostile in at.dataframe[0].value["Name"].to_list()

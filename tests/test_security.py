"""Security you can show a CISO: no default credentials, lock-out, revoked sessions, inert input."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from core import users
from core.store.database import Store, open_store
from core.store.workspace import Workspace
from tests.apptest import APP, run_main_script

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
    run_main_script(at)
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


def _first_admin_form(at: AppTest, token: str, username: str = "root") -> AppTest:
    at.text_input(key="first_admin.token").input(token)
    at.text_input(key="first_admin.username").input(username)
    at.text_input(key="first_admin.name").input("Root Admin")
    at.text_input(key="first_admin.password").input(PASSWORD)
    at.text_input(key="first_admin.repeat").input(PASSWORD)
    return at.button[0].click().run()


def test_the_first_admin_needs_the_setup_token_printed_on_the_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("THROUGHLINE_HOME", str(tmp_path))
    monkeypatch.delenv("THROUGHLINE_DEMO", raising=False)
    at = AppTest.from_file(APP, default_timeout=60).run()
    printed = capsys.readouterr().out
    token = printed.split("(shown once):\n", 1)[1].split()[0]
    _first_admin_form(at, "not-the-token", username="mallory")
    assert [e.value for e in at.error] == [
        "The setup token is wrong or was already used. Print a new one on the server with "
        "`python -m core users setup-token`."
    ]
    store = open_store(Workspace(home=tmp_path, database_url=f"sqlite:///{tmp_path / 'throughline.db'}"))
    assert not users.has_users(store)
    _first_admin_form(at, token)
    assert not at.exception
    assert not users.has_setup_token(store)
    assert "Root Admin" in " ".join(m.value for m in at.sidebar.markdown)  # signed in by the form itself
    again = AppTest.from_file(APP, default_timeout=60).run()  # another browser signs in with the password
    assert [t.label for t in again.text_input] == ["Username", "Password"]
    _attempt(again, "root", PASSWORD)
    assert not again.exception
    assert "Root Admin" in " ".join(m.value for m in again.sidebar.markdown)


def test_a_setup_token_creates_one_admin_only_once(store: Store) -> None:
    token = users.issue_setup_token(store)
    with pytest.raises(users.UserError, match="at least 12 characters"):
        users.create_first_admin(store, token, "root", "Root", "short")
    assert users.has_setup_token(store)  # a refused form does not use the token up
    users.create_first_admin(store, token, "root", "Root", PASSWORD)
    assert [(u.username, u.role) for u in users.list_users(store)] == [("root", "admin")]
    assert not users.has_setup_token(store)
    with pytest.raises(users.UserError, match="already has users"):
        users.create_first_admin(store, token, "eve", "Eve", PASSWORD)
    with pytest.raises(users.UserError, match="already has users"):
        users.issue_setup_token(store)


def test_a_replaced_setup_token_no_longer_works(store: Store) -> None:
    first = users.issue_setup_token(store)
    second = users.issue_setup_token(store)
    with pytest.raises(users.UserError, match="wrong or was already used"):
        users.create_first_admin(store, first, "root", "Root", PASSWORD)
    assert "setup_token" not in str(store.get_meta(users.SETUP_TOKEN_KEY))
    assert store.get_meta(users.SETUP_TOKEN_KEY) != second  # only its hash is stored
    users.create_first_admin(store, second, "root", "Root", PASSWORD)
    assert users.has_users(store)


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
    assert at.sidebar.button(key="signout") and "Choose a new password" not in [t.value for t in at.title]
    at.run()  # changing one's own password keeps this session
    assert at.sidebar.button(key="signout") and not at.text_input


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


def test_the_users_page_heads_its_tables_with_labels_not_column_names(small_workspace: Workspace) -> None:
    at = _attempt(AppTest.from_file(APP, default_timeout=60).run(), "ana", PASSWORD)
    at.switch_page(str(Path(APP).parent / "pages" / "users.py")).run()
    assert not at.exception, at.exception
    people, audit = at.dataframe[0], at.dataframe[1]
    assert "Must choose a new password" in people.value.columns and "Team" in people.value.columns
    assert not [c for c in people.value.columns if "_" in c], "no raw column name on the users table"
    headings = json.loads(audit.proto.columns)
    assert audit.value.columns.size and all("_" not in headings[c]["label"] for c in audit.value.columns)


def test_signing_out_shows_the_sign_in_form_without_an_error(small_workspace: Workspace) -> None:
    at = _attempt(AppTest.from_file(APP, default_timeout=60).run(), "ana", PASSWORD)
    assert "Ana" in " ".join(m.value for m in at.sidebar.markdown)
    at.sidebar.button(key="signout").click().run()
    assert not at.exception, at.exception
    assert [t.label for t in at.text_input] == ["Username", "Password"]
    assert users.get_user(open_store(small_workspace), "ana").sessions_valid_after is not None


def test_signing_out_or_a_password_reset_ends_the_other_open_sessions(small_workspace: Workspace) -> None:
    store = open_store(small_workspace)
    users.create_user(store, "bo", "Bo", "executive", PASSWORD)
    first = _attempt(AppTest.from_file(APP, default_timeout=60).run(), "ana", PASSWORD)
    second = _attempt(AppTest.from_file(APP, default_timeout=60).run(), "ana", PASSWORD)
    bo = _attempt(AppTest.from_file(APP, default_timeout=60).run(), "bo", PASSWORD)
    for at in (first, second, bo):
        assert not at.exception and at.sidebar.button(key="signout")
    first.sidebar.button(key="signout").click().run()
    second.run()  # the other session's next rerun
    assert [t.label for t in second.text_input] == ["Username", "Password"]
    assert [i.value for i in second.info] == [
        "Your session ended (signed out elsewhere, or the password changed). Sign in again."
    ]
    bo.run()
    assert "Bo" in " ".join(m.value for m in bo.sidebar.markdown)  # another user's session is untouched
    users.set_password(store, "bo", "a reset one-time password", must_change=True, actor="ana")
    bo.run()
    assert [t.label for t in bo.text_input] == ["Username", "Password"]


def test_demo_users_must_choose_a_new_password_at_first_sign_in(tmp_path: Path) -> None:
    from core.bootstrap import seed_demo

    (tmp_path / "snapshot").mkdir()
    store = open_store(Workspace(home=tmp_path, database_url=f"sqlite:///{tmp_path / 'throughline.db'}"))
    logins = seed_demo(store, seed=3, scale=0.05)
    assert sorted(login.username for login in logins) == ["admin", "delivery", "exec", "teamlead"]
    assert [u.must_change_password for u in users.list_users(store)] == [True] * 4


def test_init_empty_and_setup_token_print_a_token_for_the_first_admin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from core.cli.commands import main

    monkeypatch.setenv("THROUGHLINE_HOME", str(tmp_path))
    monkeypatch.delenv("THROUGHLINE_DATABASE_URL", raising=False)
    assert main(["init", "--empty"]) == 0
    first = capsys.readouterr().out.split("(shown once):\n", 1)[1].split()[0]
    assert main(["users", "setup-token"]) == 0
    second = capsys.readouterr().out.split("(shown once):\n", 1)[1].split()[0]
    store = open_store(Workspace(home=tmp_path, database_url=f"sqlite:///{tmp_path / 'throughline.db'}"))
    with pytest.raises(users.UserError, match="wrong or was already used"):
        users.create_first_admin(store, first, "root", "Root", PASSWORD)
    users.create_first_admin(store, second, "root", "Root", PASSWORD)
    assert main(["users", "setup-token"]) == 1
    assert "already has users" in capsys.readouterr().err


def test_the_app_never_seeds_demo_users_unless_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("THROUGHLINE_HOME", str(tmp_path))
    monkeypatch.delenv("THROUGHLINE_DEMO", raising=False)
    monkeypatch.delenv("THROUGHLINE_DATABASE_URL", raising=False)
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    store = open_store(Workspace(home=tmp_path, database_url=f"sqlite:///{tmp_path / 'throughline.db'}"))
    assert store.get_meta("workspace_kind") is None
    assert not users.has_users(store) and not (tmp_path / "demo-credentials.txt").exists()


HOSTILE_NAME = "![x](http://127.0.0.1:9/x.png)"


def _markdown_sources(at: AppTest) -> list[str]:
    """Every Markdown source the run sent to the browser: bodies, captions, headings, labels."""
    kinds = ("markdown", "caption", "subheader", "title", "info", "warning", "success")
    sources = [str(e.value) for kind in kinds for e in getattr(at, kind)]
    sources += [m.label for m in at.metric] + [e.label for e in at.expander]
    return sources


def test_names_from_imported_data_are_shown_as_text_never_as_markdown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.bootstrap import seed_demo

    (tmp_path / "snapshot").mkdir()
    store = open_store(Workspace(home=tmp_path, database_url=f"sqlite:///{tmp_path / 'throughline.db'}"))
    logins = {login.role: login for login in seed_demo(store, seed=7, scale=0.1, must_change_password=False)}
    renamed = {
        entity: store.read(entity).with_columns(pl.format(HOSTILE_NAME + " {}", pl.col(key)).alias("name"))
        for entity, key in (("features", "feature_id"), ("metrics", "metric_id"), ("teams", "team_id"))
    }
    store.write(renamed, mode="upsert", source="test")
    store.snapshot()
    monkeypatch.setenv("THROUGHLINE_HOME", str(tmp_path))
    monkeypatch.delenv("THROUGHLINE_DATABASE_URL", raising=False)
    at = _attempt(AppTest.from_file(APP, default_timeout=120).run(), "admin", logins["admin"].password)
    escaped = r"\!\[x\]\(http\://127\.0\.0\.1\:9/x\.png\)"
    shown: list[str] = []
    for page in ("home", "impact", "outcomes", "cost", "flags"):
        at.switch_page(str(Path(APP).parent / "pages" / f"{page}.py")).run()
        assert not at.exception, (page, at.exception)
        sources = _markdown_sources(at)
        assert not [s for s in sources if "![x](" in s], page  # no image a browser would fetch
        shown += [s for s in sources if escaped in s]
    assert len(shown) >= 3, shown  # the names are there, as literal text


def test_a_sign_in_survives_a_rerun_that_interrupts_the_submitted_run(
    small_workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cookie component's first value reruns the script; landing in the submit's run, it keeps the click."""
    import streamlit as st

    from ui import session

    calls: list[int] = []
    original = session._signed_in_user

    def interrupted_once(*args: object, **kwargs: object) -> object:
        calls.append(1)
        if len(calls) == 2:  # the run that carries the Sign in click: a rerun arrives before the form is drawn
            st.rerun()
        return original(*args, **kwargs)

    monkeypatch.setattr(session, "_signed_in_user", interrupted_once)
    at = _attempt(AppTest.from_file(APP, default_timeout=60).run(), "ana", PASSWORD)
    assert not at.exception, at.exception
    assert len(calls) == 3  # the first run, the interrupted one, and the rerun
    assert [t.label for t in at.text_input] == []
    assert "Ana" in " ".join(m.value for m in at.sidebar.markdown)

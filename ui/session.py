"""The signed-in session: the workspace store, sign-in, the viewer, and the checks every rerun makes.

Users live in the workspace database. ``core.users.attempt_sign_in`` checks the password and the
lock-out in the database; the sign-in cookie is a signed token written by a small cookie component
drawn only while a cookie is to be set or deleted (drawn on every run, its first value would rerun
the script a moment after the page loads and swallow a sign-in typed in that moment). Every rerun
checks the session is still valid (user exists and is enabled, not signed out elsewhere, password
unchanged since the session began), so signing out or a password reset ends every open session.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import extra_streamlit_components
import jwt
import streamlit as st
import streamlit.components.v1 as components

from core import bootstrap, derived, users
from core.access import Viewer
from core.store.database import Store, open_store, utc_now
from core.store.workspace import Workspace, cookie_key, workspace_from_env

COOKIE_NAME = "throughline_session"
COOKIE_EXPIRY_DAYS = 1.0
_VIEWER = "tl.viewer"
_SIGNED_IN_AT = "tl.signed_in_at"
_DELETE_COOKIE = "tl.delete_cookie"
_ENDED = "tl.session_ended"
_LOCAL_ADDRESS = "local"
_USERNAME = "signin.username"
_PASSWORD = "signin.password"
_REFUSED = "tl.signin_refused"
_SET_COOKIE = "tl.set_cookie"
_COOKIE_WRITER = components.declare_component(
    "cookie_writer", path=str(Path(extra_streamlit_components.__file__).parent / "CookieManager" / "frontend" / "build")
)


def current_store() -> Store:
    """The store of the workspace named by the environment (the demo seeded only when THROUGHLINE_DEMO=1)."""
    workspace = workspace_from_env()
    return _store(workspace.home.as_posix(), workspace.database_url)


@st.cache_resource(show_spinner="Preparing the workspace ...")
def _store(home: str, database_url: str) -> Store:
    store = open_store(Workspace(home=Path(home), database_url=database_url))
    if store.get_meta("workspace_kind") is None and os.environ.get("THROUGHLINE_DEMO") == "1":
        logins = bootstrap.seed_demo(store)
        print(bootstrap.sign_in_message(store, logins), flush=True)
    elif not users.has_users(store):
        print(bootstrap.first_admin_message(store), flush=True)
    store.after_write = derived.keep_results_in_background
    if store.is_initialised() and store.data_version() > 0:
        derived.keep_results_in_background(store)
    return store


@st.cache_resource
def _guard(home: str) -> users.SignInGuard:
    """The sign-in limits of this server process for the workspace at ``home``."""
    return users.SignInGuard()


def viewer() -> Viewer:
    """The signed-in viewer; pages run only after sign-in, so this is always set there."""
    return st.session_state[_VIEWER]


def sign_in(store: Store) -> Viewer | None:
    """Check the session, or draw the sign-in form; the signed-in viewer, or None while signed out."""
    _write_cookie()
    user = _signed_in_user(store) or _resume_from_cookie(store)
    if user is None:
        _sign_in_form(store)
        return None
    current = Viewer(username=user.username, name=user.name, role=user.role, team_id=user.team_id)
    st.session_state[_VIEWER] = current
    st.session_state["tl.must_change_password"] = user.must_change_password
    return current


def sign_out_button(store: Store) -> None:
    """The sidebar sign-out button: ends every session of this user, then shows the sign-in form."""

    def _sign_out() -> None:
        username = st.session_state.get("username")
        if isinstance(username, str):
            users.end_sessions(store, username)
        _forget_session()
        st.session_state.pop(_SET_COOKIE, None)
        st.session_state[_DELETE_COOKIE] = True

    st.sidebar.button("Sign out", key="signout", on_click=_sign_out)


def keep_session_after_own_password_change(changed_at: datetime) -> None:
    """The person who just changed their password keeps this session (their other sessions end)."""
    st.session_state[_SIGNED_IN_AT] = changed_at
    _ask_for_cookie(str(st.session_state["username"]), current_store())


def sign_in_first_admin(user: users.User) -> None:
    """Sign in the first admin who just created their account with the setup token and their password."""
    _remember(user, utc_now())
    _ask_for_cookie(user.username, current_store())


def client_address() -> str:
    """The client's address as the sign-in throttle counts it (all local connections count as one)."""
    return st.context.ip_address or _LOCAL_ADDRESS


def _signed_in_user(store: Store) -> users.User | None:
    """The user of this session when it is signed in and still valid; otherwise forget the session."""
    if not st.session_state.get("authentication_status"):
        return None
    username, began = st.session_state.get("username"), st.session_state.get(_SIGNED_IN_AT)
    user = users.get_user(store, username) if isinstance(username, str) else None
    if user is not None and isinstance(began, datetime) and users.session_is_valid(user, began):
        return user
    _forget_session()
    st.session_state[_ENDED] = True
    return None


def _resume_from_cookie(store: Store) -> users.User | None:
    """The user of a valid sign-in cookie, unless this tab signed out or the cookie predates a sign-out."""
    if st.session_state.get("logout"):
        return None
    token = st.context.cookies.get(COOKIE_NAME)
    if not token:
        return None
    try:
        payload = jwt.decode(token, cookie_key(store.workspace), algorithms=["HS256"])
        expires = datetime.fromtimestamp(float(payload["exp_date"]), UTC).replace(tzinfo=None)
        user = users.get_user(store, str(payload["username"]))
    except (jwt.PyJWTError, KeyError, TypeError, ValueError, OverflowError):
        return None
    began = expires - timedelta(days=COOKIE_EXPIRY_DAYS)
    if user is None or expires <= utc_now() or not users.session_is_valid(user, began):
        return None
    _remember(user, began)
    return user


def _sign_in_form(store: Store) -> None:
    """Draw the sign-in form; its submit is checked in the button's callback (see ``_submit_sign_in``)."""
    if st.session_state.pop(_ENDED, False):
        st.info("Your session ended (signed out elsewhere, or the password changed). Sign in again.")
    with st.form("signin"):
        st.subheader("Sign in to Throughline")
        st.text_input("Username", autocomplete="off", key=_USERNAME)
        st.text_input("Password", type="password", autocomplete="off", key=_PASSWORD)
        st.form_submit_button("Sign in", on_click=_submit_sign_in, args=(store,))
    refused = st.session_state.get(_REFUSED)
    if refused:
        st.error(refused)
        st.session_state.pop(_REFUSED, None)


def _submit_sign_in(store: Store) -> None:
    """Check the submitted name and password; on success remember the user and ask for the cookie.

    This runs as the button's callback, before the script body, so a rerun that interrupts the
    body (the cookie component's first value arrives a moment after the page loads) cannot lose
    the submit: the outcome is already in the session state when the next run starts.
    """
    username, password = st.session_state.get(_USERNAME) or "", st.session_state.get(_PASSWORD) or ""
    attempt = users.attempt_sign_in(
        store, username, password, _guard(store.workspace.home.as_posix()), client_address()
    )
    if attempt.user is None:
        time.sleep(min(attempt.failures, 4) * 0.5)
        st.session_state[_REFUSED] = attempt.message
        return
    st.session_state[_PASSWORD] = ""
    st.session_state.pop(_REFUSED, None)
    _remember(attempt.user, utc_now())
    _ask_for_cookie(attempt.user.username, store)


def _ask_for_cookie(username: str, store: Store) -> None:
    """Have the browser keep a signed sign-in cookie for ``username`` (written by the next runs)."""
    expires = datetime.now() + timedelta(days=COOKIE_EXPIRY_DAYS)
    token = jwt.encode({"username": username, "exp_date": expires.timestamp()}, cookie_key(store.workspace), "HS256")
    st.session_state.pop(_DELETE_COOKIE, None)
    st.session_state[_SET_COOKIE] = (token, expires.isoformat())


def _write_cookie() -> None:
    """Draw the cookie component while a cookie is to be set or deleted, until the browser says it is done."""
    pending = st.session_state.get(_SET_COOKIE)
    if pending:
        token, expires = pending
        options = {"path": "/", "expires": expires, "sameSite": "strict"}
        done = _COOKIE_WRITER(method="set", cookie=COOKIE_NAME, value=token, options=options, key=_SET_COOKIE)
        if done:
            st.session_state.pop(_SET_COOKIE, None)
    elif st.session_state.get(_DELETE_COOKIE) and _COOKIE_WRITER(
        method="delete", cookie=COOKIE_NAME, key=_DELETE_COOKIE, default=False
    ):
        st.session_state.pop(_DELETE_COOKIE, None)


def _remember(user: users.User, began: datetime) -> None:
    st.session_state["authentication_status"] = True
    st.session_state["username"] = user.username
    st.session_state["name"] = user.name
    st.session_state["logout"] = None
    st.session_state[_SIGNED_IN_AT] = began


def _forget_session() -> None:
    for key in ("authentication_status", "username", "name", "roles", "email"):
        st.session_state[key] = None
    st.session_state["logout"] = True
    for key in (_VIEWER, _SIGNED_IN_AT, "tl.must_change_password"):
        st.session_state.pop(key, None)

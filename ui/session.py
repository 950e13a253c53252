"""The signed-in session: the workspace store, sign-in through streamlit-authenticator, the viewer.

Users live in the workspace database; streamlit-authenticator renders the form, checks the
bcrypt hash and sets the cookie. Around it this module adds what a pilot needs: lock-out after
repeated failures (slowed first), server-side sign-out (a copied cookie stops working), disabled
accounts and the forced password change after a reset.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import streamlit as st
import streamlit_authenticator as stauth
from streamlit_authenticator.utilities import LoginError

from core import bootstrap, derived, users
from core.access import Viewer
from core.store.database import Store, open_store
from core.store.workspace import Workspace, cookie_key, workspace_from_env

COOKIE_NAME = "throughline_session"
COOKIE_EXPIRY_DAYS = 1.0
_VIEWER = "tl.viewer"
_SIGNED_IN_AUDITED = "tl.signin_audited"


def current_store() -> Store:
    """The store of the workspace named by the environment (seeded with the demo on first run)."""
    workspace = workspace_from_env()
    return _store(workspace.home.as_posix(), workspace.database_url)


@st.cache_resource(show_spinner="Preparing the workspace ...")
def _store(home: str, database_url: str) -> Store:
    store = open_store(Workspace(home=Path(home), database_url=database_url))
    if store.get_meta("workspace_kind") is None and os.environ.get("THROUGHLINE_DEMO", "1") != "0":
        logins = bootstrap.seed_demo(store)
        print(bootstrap.sign_in_message(store, logins), flush=True)
    store.after_write = derived.keep_results_in_background
    if store.is_initialised() and store.data_version() > 0:
        derived.keep_results_in_background(store)
    return store


def viewer() -> Viewer:
    """The signed-in viewer; pages run only after sign-in, so this is always set there."""
    return st.session_state[_VIEWER]


def sign_in(store: Store) -> Viewer | None:
    """Render the sign-in form when needed; the signed-in viewer, or None while signed out."""
    credentials = users.credentials(store)
    before = {name: data["failed_login_attempts"] for name, data in credentials["usernames"].items()}
    _refuse_revoked_cookie(store)
    authenticator = stauth.Authenticate(
        credentials,
        cookie_name=COOKIE_NAME,
        cookie_key=cookie_key(store.workspace),
        cookie_expiry_days=COOKIE_EXPIRY_DAYS,
        auto_hash=False,
        login_sleep_time=0,
    )
    st.session_state["tl.authenticator"] = authenticator
    try:
        authenticator.login(
            location="main",
            max_login_attempts=users.LOCK_AFTER_FAILURES,
            fields={"Form name": "Sign in to Throughline", "Login": "Sign in"},
            key="signin",
        )
    except LoginError:
        st.error(
            f"This account is locked after {users.LOCK_AFTER_FAILURES} failed sign-ins. "
            f"Try again in {users.LOCK_MINUTES} minutes or ask an admin to reset the password."
        )
        return None
    status = st.session_state.get("authentication_status")
    if status is False:
        _record_failure(store, credentials, before)
        return None
    if not status:
        return None
    user = users.get_user(store, st.session_state["username"])
    if user is None or user.disabled:
        _forget_session()
        st.error("This account is disabled.")
        return None
    if not st.session_state.get(_SIGNED_IN_AUDITED):
        users.record_login(store, user.username)
        st.session_state[_SIGNED_IN_AUDITED] = True
    current = Viewer(username=user.username, name=user.name, role=user.role, team_id=user.team_id)
    st.session_state[_VIEWER] = current
    st.session_state["tl.must_change_password"] = user.must_change_password
    return current


def sign_out_button(store: Store) -> None:
    """The sidebar sign-out button; signing out also invalidates the cookie server-side."""
    authenticator: stauth.Authenticate = st.session_state["tl.authenticator"]

    def _ended(info: dict[str, object]) -> None:
        username = info.get("username")
        if isinstance(username, str):
            users.end_sessions(store, username)
        for key in (_VIEWER, _SIGNED_IN_AUDITED, "tl.must_change_password"):
            st.session_state.pop(key, None)

    authenticator.logout("Sign out", location="sidebar", key="signout", callback=_ended)


def _record_failure(store: Store, credentials: dict, before: dict[str, int]) -> None:
    after = credentials["usernames"]
    failed = [name for name, data in after.items() if data.get("failed_login_attempts", 0) > before.get(name, 0)]
    if not failed:
        store.audit("signin.failed", None, "unknown username")
        st.error("Username or password is incorrect.")
        return
    user = users.record_failed_login(store, failed[0])
    failures = user.failed_logins if user else 1
    time.sleep(min(failures, 4) * 0.5)
    if user is not None and user.is_locked():
        st.error(f"Too many failed sign-ins: the account is locked for {users.LOCK_MINUTES} minutes.")
    else:
        st.error("Username or password is incorrect.")


def _refuse_revoked_cookie(store: Store) -> None:
    """Ignore a session cookie issued before its user signed out (or was disabled)."""
    if st.session_state.get("authentication_status"):
        return
    token = st.context.cookies.get(COOKIE_NAME)
    if not token:
        return
    try:
        payload = jwt.decode(token, cookie_key(store.workspace), algorithms=["HS256"])
        issued = datetime.fromtimestamp(float(payload["exp_date"]), UTC).replace(tzinfo=None) - timedelta(
            days=COOKIE_EXPIRY_DAYS
        )
        user = users.get_user(store, str(payload["username"]))
    except (jwt.PyJWTError, KeyError, TypeError, ValueError):
        user, issued = None, datetime.min
    if user is None or not users.session_is_valid(user, issued):
        st.session_state["logout"] = True


def _forget_session() -> None:
    for key in ("authentication_status", "username", "name", "roles", "email"):
        st.session_state[key] = None
    st.session_state["logout"] = True
    st.session_state.pop(_VIEWER, None)

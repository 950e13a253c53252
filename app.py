"""Throughline: sign in, then the pages this viewer's role may open (and no others)."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from core import access, users
from core.users import ROLE_LABELS
from ui import session
from ui.widgets import plain

PAGES_DIR = Path(__file__).parent / "pages"

st.set_page_config(page_title="Throughline", page_icon=":material/timeline:", layout="wide")


def _first_admin() -> None:
    store = session.current_store()
    st.title("Welcome to Throughline")
    st.write(
        "This workspace has no users yet. Create the first admin with the one-time setup token printed on the"
        " server by `python -m core init --empty` (or print a new one with `python -m core users setup-token`)."
    )
    with st.form("first_admin"):
        token = st.text_input("Setup token", type="password", key="first_admin.token")
        username = st.text_input("Username", key="first_admin.username")
        name = st.text_input("Full name", key="first_admin.name")
        password = st.text_input("Password", type="password", key="first_admin.password")
        repeat = st.text_input("Repeat password", type="password", key="first_admin.repeat")
        submitted = st.form_submit_button("Create admin")
    if submitted:
        if password != repeat:
            st.error("The two passwords differ.")
            return
        try:
            admin = users.create_first_admin(store, token, username, name or username, password)
        except users.UserError as error:
            st.error(str(error))
            return
        session.sign_in_first_admin(admin)  # they just proved the token and chose the password
        st.rerun()


def _change_password() -> None:
    store = session.current_store()
    current = session.viewer()
    st.title("Choose a new password")
    st.write("Your password was set for you (by an admin, or for the demo); choose your own before continuing.")
    with st.form("change_password"):
        password = st.text_input("New password", type="password", key="change_password.new")
        repeat = st.text_input("Repeat new password", type="password", key="change_password.repeat")
        submitted = st.form_submit_button("Save password")
    if submitted:
        if password != repeat:
            st.error("The two passwords differ.")
            return
        try:
            changed_at = users.set_password(
                store, current.username, password, must_change=False, actor=current.username
            )
        except users.UserError as error:
            st.error(str(error))
            return
        session.keep_session_after_own_password_change(changed_at)
        st.session_state["tl.must_change_password"] = False
        st.rerun()


def main() -> None:
    store = session.current_store()
    if not users.has_users(store):
        st.navigation([st.Page(_first_admin, title="Create admin", url_path="setup")], position="hidden").run()
        return
    viewer = session.sign_in(store)
    if viewer is None:
        st.navigation([st.Page(_signed_out, title="Sign in", url_path="signin")], position="hidden").run()
        return
    with st.sidebar:
        team = f" · {viewer.team_id}" if viewer.team_id else ""
        st.markdown(f"**{plain(viewer.name)}**  \n{ROLE_LABELS.get(viewer.role, viewer.role)}{plain(team)}")
        session.sign_out_button(store)
    if st.session_state.get("tl.must_change_password"):
        st.navigation([st.Page(_change_password, title="New password", url_path="password")], position="hidden").run()
        return
    sections: dict[str, list[st.Page]] = {}
    landing = access.landing_page(viewer)
    for spec in access.pages_for(viewer):
        page = st.Page(
            PAGES_DIR / f"{spec.page_id}.py",
            title=spec.title,
            icon=spec.icon,
            url_path=spec.page_id,
            default=spec.page_id == landing,
        )
        sections.setdefault(spec.section, []).append(page)
    st.navigation(sections, expanded=True).run()


def _signed_out() -> None:
    """Signed out: ``session.sign_in`` already drew the sign-in form; no page content is shown."""


main()

"""Users (admin): add users, change role and team, reset passwords, disable; the audit log."""

from __future__ import annotations

import polars as pl
import streamlit as st

from core import users
from core.model.schema import ROLES
from core.users import ROLE_LABELS
from ui import format as fmt
from ui.data import page_data
from ui.widgets import page_header, table, team_labels

PAGE = "users"
data = page_data()
store, me = data.store, data.viewer
page_header("Users", "Who may sign in to this workspace, with which role, and what they did.", me)

team_label = team_labels(data["teams"])
team_ids = list(team_label)

flash = st.session_state.pop(f"{PAGE}.flash", None)
if flash:
    st.success(flash)
table(
    fmt.labelled(users.users_frame(store), {"team_id": "Team", "must_change_password": "Must choose a new password"}),
    key=f"{PAGE}.table",
)

add_tab, change_tab, audit_tab = st.tabs(["Add a user", "Change a user", "Audit log"])

with add_tab, st.form(f"{PAGE}.add", clear_on_submit=True):
    username = st.text_input("Username", key=f"{PAGE}.add.username", max_chars=100)
    name = st.text_input("Full name", key=f"{PAGE}.add.name", max_chars=200)
    role = st.selectbox("Role", ROLES, format_func=ROLE_LABELS.get, key=f"{PAGE}.add.role")
    team = st.selectbox(
        "Team (team leads only)",
        [None, *team_ids],
        format_func=lambda t: "—" if t is None else team_label[t],
        key=f"{PAGE}.add.team",
    )
    if st.form_submit_button("Add user"):
        password = users.generate_password()
        try:
            users.create_user(
                store,
                username,
                name or username,
                role,
                password,
                team_id=team,
                must_change_password=True,
                actor=me.username,
            )
        except users.UserError as error:
            st.error(str(error))
        else:
            st.session_state[f"{PAGE}.flash"] = (
                f"Added `{username.strip().lower()}`. One-time password (shown once; they must change it at first "
                f"sign-in): `{password}`"
            )
            st.rerun()

with change_tab:
    everyone = [u.username for u in users.list_users(store)]
    target = st.selectbox("User", everyone, key=f"{PAGE}.change.user")
    chosen = users.get_user(store, target) if target else None
    if chosen is not None:
        with st.form(f"{PAGE}.role"):
            new_role = st.selectbox(
                "Role", ROLES, index=ROLES.index(chosen.role), format_func=ROLE_LABELS.get, key=f"{PAGE}.change.role"
            )
            options = [None, *team_ids]
            new_team = st.selectbox(
                "Team (team leads only)",
                options,
                index=options.index(chosen.team_id) if chosen.team_id in options else 0,
                format_func=lambda t: "—" if t is None else team_label[t],
                key=f"{PAGE}.change.team",
            )
            if st.form_submit_button("Save role"):
                try:
                    users.set_role(store, chosen.username, new_role, new_team, actor=me.username)
                except users.UserError as error:
                    st.error(str(error))
                else:
                    st.session_state[f"{PAGE}.flash"] = f"{chosen.username} is now {ROLE_LABELS[new_role]}."
                    st.rerun()
        left, right = st.columns(2)
        if left.button("Reset password", key=f"{PAGE}.change.reset"):
            password = users.generate_password()
            users.set_password(store, chosen.username, password, must_change=True, actor=me.username)
            st.session_state[f"{PAGE}.flash"] = (
                f"New one-time password for `{chosen.username}` (shown once): `{password}`"
            )
            st.rerun()
        if chosen.username == me.username:
            right.caption("You cannot disable your own account.")
        elif right.button("Enable" if chosen.disabled else "Disable", key=f"{PAGE}.change.disable"):
            users.set_disabled(store, chosen.username, not chosen.disabled, actor=me.username)
            st.rerun()

with audit_tab:
    log = store.audit_log(limit=1000)
    actions = sorted(log["action"].unique().to_list()) if log.height else []
    picked = st.multiselect("Actions", actions, key=f"{PAGE}.audit.actions")
    if picked:
        log = log.filter(pl.col("action").is_in(picked))
    table(
        log,
        key=f"{PAGE}.audit.table",
        **fmt.headings(log),
        caption="Sign-ins, failed sign-ins, imports, metric, hypothesis, setting and user changes; newest first.",
    )

"""Teams (admin): the teams imports found, with what names them; create, rename and merge teams."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from core import access
from ui.data import page_data
from ui.widgets import page_header, table

PAGE = "teams"
data = page_data()
store, me = data.store, data.viewer
page_header(
    "Teams",
    "Teams come from the data (Jira's Team field, Linear's Team, GitLab namespaces); here an admin adds the ones "
    "no export names, gives them readable names and merges duplicates.",
    me,
)

flash = st.session_state.pop(f"{PAGE}.flash", None)
if flash:
    st.success(flash)

overview = access.teams_overview(store)
if overview.is_empty():
    st.info(
        "No team yet. Import a Jira export with its `Custom field (Team)` column, a Linear export, GitLab merge "
        "requests, or a list of team names (`python -m core import teams.csv --entity teams`), or create one below."
    )
else:
    table(
        overview,
        key=f"{PAGE}.table",
        caption="Rows of each entity that name the team. Merging moves all of them, and the team's leads.",
    )
labels = {t: f"{n} ({t})" for t, n in overview.select("team_id", "name").rows()}


def _apply(message: Callable[[Any], str], work: Callable[[], Any]) -> None:
    """Run ``work``; on success rerun with ``message(result)`` shown, else show why it was refused."""
    try:
        result = work()
    except (ValueError, access.AccessDenied) as error:
        st.error(str(error))
        return
    st.session_state[f"{PAGE}.flash"] = message(result)
    st.rerun()


create_tab, rename_tab, merge_tab = st.tabs(["Create a team", "Rename a team", "Merge two teams"])
with create_tab, st.form(f"{PAGE}.create", clear_on_submit=True):
    name = st.text_input("Name", key=f"{PAGE}.create.name", max_chars=120)
    team_id = st.text_input(
        "Id (optional)", key=f"{PAGE}.create.id", max_chars=120, help="Default: the name in lower case with dashes."
    )
    if st.form_submit_button("Create team"):
        _apply(lambda made: f"Team `{made}` created.", lambda: access.create_team(store, me, name, team_id or None))

if labels:
    with rename_tab, st.form(f"{PAGE}.rename"):
        chosen = st.selectbox("Team", list(labels), format_func=labels.get, key=f"{PAGE}.rename.team")
        new_name = st.text_input("New name", key=f"{PAGE}.rename.name", max_chars=120)
        if st.form_submit_button("Rename team"):
            _apply(lambda _: f"Team `{chosen}` renamed.", lambda: access.rename_team(store, me, chosen, new_name))
    with merge_tab, st.form(f"{PAGE}.merge"):
        left, right = st.columns(2)
        source = left.selectbox("Merge this team", list(labels), format_func=labels.get, key=f"{PAGE}.merge.source")
        into = right.selectbox("into this one", list(labels), format_func=labels.get, key=f"{PAGE}.merge.into")
        st.caption(
            "Every feature, work item, person, pull request, cost and user of the first team moves to the second."
        )
        if st.form_submit_button("Merge teams"):
            _apply(
                lambda moved: (
                    f"Team `{source}` merged into `{into}`; rows moved: "
                    + (", ".join(f"{n} {entity}" for entity, n in moved.items()) or "none")
                    + "."
                ),
                lambda: access.merge_teams(store, me, source, into),
            )

"""Driving the app in Streamlit's AppTest: sign in as a role, open pages, collect what was rendered."""

from __future__ import annotations

import json
from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[1] / "app.py")


def signed_in(demo: dict[str, object], role: str, monkeypatch: object) -> AppTest:
    """An AppTest of the app with ``role``'s demo user signed in, showing the home page."""
    monkeypatch.setenv("THROUGHLINE_HOME", str(demo["home"]))  # type: ignore[attr-defined]
    monkeypatch.setenv("THROUGHLINE_DEMO", "0")  # type: ignore[attr-defined]
    monkeypatch.delenv("THROUGHLINE_DATABASE_URL", raising=False)  # type: ignore[attr-defined]
    login = demo["logins"][role]  # type: ignore[index]
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.text_input[0].input(login.username)
    at.text_input[1].input(login.password)
    at.button[0].click().run()
    assert not at.exception, at.exception
    return at


def run_main_script(at: AppTest) -> AppTest:
    """Make every later run of ``at`` start at app.py, as a served app does on every rerun.

    AppTest re-derives "uses a pages/ directory" on each run and then runs the last page's file on
    its own, skipping app.py (the sign-in and session checks); a real server runs app.py each time.
    """
    from streamlit.util import calc_hash

    at._page_hash = calc_hash(at._script_path)
    return at


def rendered_text(at: AppTest) -> str:
    """Every piece of text, table cell, metric and chart payload the run produced, as one string."""
    parts: list[str] = []
    for kind in ("title", "header", "subheader", "markdown", "caption", "text", "info", "warning", "error", "success"):
        parts.extend(str(e.value) for e in getattr(at, kind))
    parts.extend(f"{m.label} {m.value} {m.delta}" for m in at.metric)
    for frame in at.dataframe:
        parts.append(" ".join(str(c) for c in frame.value.columns))
        parts.append(frame.value.to_csv())
    parts.extend(_plotly_specs(at))
    return "\n".join(parts)


def _plotly_specs(at: AppTest) -> list[str]:
    specs: list[str] = []
    for node in _walk(at._tree):
        proto = getattr(node, "proto", None)
        spec = getattr(proto, "spec", None) if proto is not None else None
        if isinstance(spec, str) and spec.startswith("{"):
            figure = json.loads(spec)
            specs.append(json.dumps(figure.get("data", [])))
            specs.append(json.dumps(figure.get("layout", {})))  # titles and axis labels, on a line of their own
    return specs


def _walk(node: object):
    yield node
    children = getattr(node, "children", None)
    if isinstance(children, dict):
        for child in children.values():
            yield from _walk(child)

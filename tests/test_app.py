"""The app in Streamlit's AppTest: sign-in, per-role navigation, and every page for every role."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core import access
from core.access import Viewer
from tests.apptest import APP, rendered_text, signed_in

ROLES = ("executive", "delivery_lead", "team_lead", "admin")
PAGES_DIR = Path(APP).parent / "pages"


def _allowed(role: str) -> list[str]:
    return [p.page_id for p in access.pages_for(Viewer("u", "U", role, "PAY" if role == "team_lead" else None))]


def _registered(at: AppTest) -> list[str]:
    return [Path(str(info["script_path"])).stem for info in at._registered_pages.values() if info.get("script_path")]


def test_every_registered_page_has_its_file() -> None:
    assert sorted(p.page_id for p in access.PAGES) == sorted(f.stem for f in PAGES_DIR.glob("*.py"))


def test_signed_out_visitors_see_only_the_sign_in_form(demo_workspace: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("THROUGHLINE_HOME", str(demo_workspace["home"]))
    at = AppTest.from_file(APP, default_timeout=120).run()
    assert not at.exception
    assert [t.label for t in at.text_input] == ["Username", "Password"]
    assert _registered(at) == []
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page(str(PAGES_DIR / "home.py"))


def test_a_wrong_password_is_refused(demo_workspace: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("THROUGHLINE_HOME", str(demo_workspace["home"]))
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.text_input[0].input("exec")
    at.text_input[1].input("not the right password")
    at.button[0].click().run()
    assert [e.value for e in at.error] == ["Username or password is incorrect."]
    assert "Viewing as" not in rendered_text(at)
    assert _registered(at) == []


@pytest.mark.parametrize("role", ROLES)
def test_navigation_lists_exactly_the_role_pages(
    role: str, demo_workspace: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = signed_in(demo_workspace, role, monkeypatch)
    assert _registered(at) == _allowed(role)
    for page in access.PAGES:
        if page.page_id not in _allowed(role):
            with pytest.raises(ValueError, match="Could not find a navigation page"):
                at.switch_page(str(PAGES_DIR / f"{page.page_id}.py"))


@pytest.mark.parametrize(("role", "page_id"), [(role, page) for role in ROLES for page in _allowed(role)])
def test_every_page_renders_for_every_role_that_may_open_it(
    role: str, page_id: str, demo_workspace: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = signed_in(demo_workspace, role, monkeypatch)
    at.switch_page(str(PAGES_DIR / f"{page_id}.py")).run()
    assert not at.exception, at.exception
    spec = next(p for p in access.PAGES if p.page_id == page_id)
    assert spec.title in [t.value for t in at.title] or page_id == "home"

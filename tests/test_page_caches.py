"""A page's cached builders (figures, formatted tables) depend only on their arguments.

Streamlit keys ``st.cache_resource`` and ``st.cache_data`` on a function's arguments. A cached function
in a page script that read the page's own state (a filter, the viewer, a setting picked above it)
would hand every later rerun the result built for the first one: a stale chart after a filter change,
or one user's view served to another. This reads each page's source and names any such read.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PAGES = sorted((Path(__file__).resolve().parents[1] / "pages").glob("*.py"))


CACHING = ("cache_resource", "cache_data", "figure_builder")


def _is_cached(function: ast.FunctionDef) -> bool:
    for decorator in function.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", None)
        if name in CACHING:
            return True
    return False


def _page_state(tree: ast.Module) -> set[str]:
    """Names the page script binds at module level by running (assignments, loops, with), not constants."""
    bound: set[str] = set()
    for statement in tree.body:
        if isinstance(statement, ast.FunctionDef | ast.ClassDef | ast.Import | ast.ImportFrom):
            continue
        for node in ast.walk(statement):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                bound.add(node.id)
    return {name for name in bound if not name.isupper()}


def _reads_of_state(function: ast.FunctionDef, state: set[str], helpers: dict[str, ast.FunctionDef]) -> set[str]:
    """The page-state names ``function`` reads, directly or through the page's own helper functions."""
    seen: set[str] = set()
    found: set[str] = set()
    pending = [function]
    while pending:
        current = pending.pop()
        if current.name in seen:
            continue
        seen.add(current.name)
        arguments = current.args
        local = {a.arg for a in [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]}
        local |= {a.arg for a in (arguments.vararg, arguments.kwarg) if a is not None}
        local |= {n.id for n in ast.walk(current) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        for node in ast.walk(current):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id not in local:
                if node.id in state:
                    found.add(node.id)
                elif node.id in helpers:
                    pending.append(helpers[node.id])
    return found


def _cached_functions(path: Path) -> list[tuple[str, set[str]]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    helpers = {s.name: s for s in tree.body if isinstance(s, ast.FunctionDef)}
    state = _page_state(tree)
    return [(f.name, _reads_of_state(f, state, helpers)) for f in helpers.values() if _is_cached(f)]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.stem)
def test_a_cached_builder_reads_no_page_state(page: Path) -> None:
    for name, reads in _cached_functions(page):
        assert not reads, f"{page.name}: cached {name}() reads page state {sorted(reads)}; pass it as an argument"


def test_the_check_finds_a_cached_builder_reading_a_filter(tmp_path: Path) -> None:
    page = tmp_path / "page.py"
    page.write_text(
        "import streamlit as st\n"
        "LIMIT = 3\n"
        "team = st.selectbox('Team', ['a', 'b'])\n"
        "def label(x):\n    return f'{team}: {x}'\n"
        "@st.cache_resource(max_entries=4)\n"
        "def figure(series, period):\n    return [label(s) for s in series][:LIMIT]\n"
        "@st.cache_resource\n"
        "def table(series, team):\n    return [team, *series]\n"
        "@figure_builder\n"
        "def chart(series):\n    return [team, *series]\n",
        encoding="utf-8",
    )
    assert _cached_functions(page) == [("figure", {"team"}), ("table", set()), ("chart", {"team"})]

"""Work-item keys (``PAY-123``) as they appear in PR titles, branch names and commit messages.

One place defines what a key looks like, so importers and the cost attribution agree on it.
A key is a project prefix (a capital letter, then capitals, digits or underscores) and an
issue number: Jira ``PAY-123``, Linear ``ENG-42``. It must not continue a longer word, so
``v2PAY-1`` holds no key, while ``feature/PAY-1_login`` holds ``PAY-1``.
"""

from __future__ import annotations

import polars as pl

WORK_ITEM_KEY_PATTERN = r"[A-Z][A-Z0-9_]+-[0-9]+"
"""A work-item key on its own, e.g. ``PAY-123``."""

_KEY_IN_TEXT = rf"(?:^|[^A-Za-z0-9])({WORK_ITEM_KEY_PATTERN})"


def first_work_item_key(text: pl.Expr, *, case_insensitive: bool = False) -> pl.Expr:
    """The first work-item key in ``text`` (null when there is none).

    ``case_insensitive`` reads lower-case keys too (``eng-42`` in a Linear branch name) and
    returns them upper-cased, as trackers spell them.
    """
    source = text.str.to_uppercase() if case_insensitive else text
    return source.str.extract(_KEY_IN_TEXT, 1)


def work_item_keys(text: pl.Expr, *, case_insensitive: bool = False) -> pl.Expr:
    """Every work-item key in ``text``, in order of appearance, as a list of strings."""
    source = text.str.to_uppercase() if case_insensitive else text
    return source.str.extract_all(_KEY_IN_TEXT).list.eval(pl.element().str.extract(f"({WORK_ITEM_KEY_PATTERN})", 1))

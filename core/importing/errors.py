"""The one exception an import raises: a message a user can act on, with the problems behind it."""

from __future__ import annotations

from collections.abc import Sequence

from core.model.schema import Problem

SHOWN_PROBLEMS = 20
"""How many problems a message lists before it only counts the rest."""


class ImportFailed(Exception):
    """An import (or a database read) could not be done; ``message`` says why in user words."""

    def __init__(self, message: str, problems: Sequence[Problem] = (), total: int | None = None) -> None:
        self.problems = list(problems)
        self.total = total if total is not None else len(self.problems)
        self.message = _with_problems(message, self.problems, self.total)
        super().__init__(self.message)


def _with_problems(message: str, problems: list[Problem], total: int) -> str:
    if not problems:
        return message
    lines = [str(p) for p in problems[:SHOWN_PROBLEMS]]
    more = total - len(lines)
    return "\n".join([message, *lines, *([f"... and {more} more"] if more > 0 else [])])

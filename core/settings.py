"""Workspace settings: the typed, defaulted knobs of every measure, kept as JSON in the store.

Each group is a frozen dataclass owned by its measure module (``CostSettings``, ``DoraSettings``,
...). A stored group that no longer fits its dataclass falls back to the defaults rather than
breaking a page; ``save`` validates by constructing the dataclass first.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, TypeVar

from core.costs import CostSettings
from core.dora import DoraSettings
from core.flags import FlagSettings
from core.store import Store

SettingsT = TypeVar("SettingsT")

GROUPS: dict[str, type] = {"cost": CostSettings, "dora": DoraSettings, "flags": FlagSettings}
"""Settings group name -> its dataclass."""


def load(store: Store, group: str) -> Any:
    """The stored settings of ``group``, or its defaults when unset or no longer valid."""
    cls = GROUPS[group]
    raw = store.get_setting(f"settings.{group}")
    if not isinstance(raw, dict):
        return cls()
    try:
        return from_dict(cls, raw)
    except (TypeError, ValueError):
        return cls()


def save(store: Store, group: str, value: object, actor: str | None) -> None:
    """Store ``value`` (an instance of the group's dataclass) and audit the change."""
    cls = GROUPS[group]
    if not isinstance(value, cls):
        raise TypeError(f"settings group {group} takes {cls.__name__}")
    store.set_setting(f"settings.{group}", to_dict(value), actor=actor)


def to_dict(value: object) -> dict[str, Any]:
    """A settings dataclass as JSON-ready data."""
    return json.loads(json.dumps(dataclasses.asdict(value)))  # type: ignore[call-overload]


def from_dict(cls: type[SettingsT], raw: dict[str, Any]) -> SettingsT:
    """Build ``cls`` from stored data: unknown keys ignored, lists turned back into tuples."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: _tuplify(v) for k, v in raw.items() if k in names})


def fingerprint(value: object) -> str:
    """A stable string of a settings value, for cache keys."""
    return json.dumps(to_dict(value), sort_keys=True)


def _tuplify(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_tuplify(v) for v in value)
    return value

"""Workspace settings: the typed, defaulted knobs of every measure, kept as JSON in the store.

Each group is a frozen dataclass owned by its measure module (``CostSettings``, ``DoraSettings``,
``FlagSettings``) that names its group in a ``GROUP`` class attribute; the store knows none of them.
A stored group that no longer fits its dataclass falls back to the defaults rather than breaking a
page; ``save`` validates by constructing the dataclass first.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, TypeVar

from core.store.database import Store

SettingsT = TypeVar("SettingsT")


def load(store: Store, cls: type[SettingsT]) -> SettingsT:
    """The stored settings of the group ``cls`` (a settings dataclass), or its defaults when unset or invalid."""
    raw = store.get_setting(f"settings.{cls.GROUP}")  # type: ignore[attr-defined]
    if not isinstance(raw, dict):
        return cls()
    try:
        return from_dict(cls, raw)
    except (TypeError, ValueError):
        return cls()


def save(store: Store, value: object, actor: str | None) -> None:
    """Store ``value`` (an instance of a settings dataclass) under its group and audit the change."""
    group = getattr(type(value), "GROUP", None)
    if not dataclasses.is_dataclass(value) or not isinstance(group, str):
        raise TypeError(f"{type(value).__name__} is not a settings group")
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

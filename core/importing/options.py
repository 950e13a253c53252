"""What an import may be told beyond the file: time zone, agent logins, model prices, a column mapping.

Workspace settings hold the defaults (``import.timezone``, ``import.agent_logins``,
``import.model_prices``, ``import.max_bytes``, ``import.circleci_credit_price``,
``import.date_range``);
:func:`options_from_settings` reads them so the Data page and the CLI import alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from core.importing.reading import DEFAULT_MAX_BYTES
from core.schema import DATE_RANGE


@dataclass(frozen=True)
class ModelPrice:
    """Money per million tokens of one model family."""

    input: float
    output: float
    cached_input: float | None = None
    cache_write: float | None = None


DEFAULT_MODEL_PRICES: dict[str, ModelPrice] = {
    "gpt-5-nano": ModelPrice(0.05, 0.40, 0.005),
    "gpt-5-mini": ModelPrice(0.25, 2.00, 0.025),
    "gpt-5": ModelPrice(1.25, 10.00, 0.125),
    "gpt-4.1-nano": ModelPrice(0.10, 0.40, 0.025),
    "gpt-4.1-mini": ModelPrice(0.40, 1.60, 0.10),
    "gpt-4.1": ModelPrice(2.00, 8.00, 0.50),
    "gpt-4o-mini": ModelPrice(0.15, 0.60, 0.075),
    "gpt-4o": ModelPrice(2.50, 10.00, 1.25),
    "o4-mini": ModelPrice(1.10, 4.40, 0.275),
    "o3": ModelPrice(2.00, 8.00, 0.50),
    "claude-opus-4": ModelPrice(15.00, 75.00, 1.50, 18.75),
    "claude-sonnet-4": ModelPrice(3.00, 15.00, 0.30, 3.75),
    "claude-3-7-sonnet": ModelPrice(3.00, 15.00, 0.30, 3.75),
    "claude-3-5-sonnet": ModelPrice(3.00, 15.00, 0.30, 3.75),
    "claude-haiku-4": ModelPrice(1.00, 5.00, 0.10, 1.25),
    "claude-3-5-haiku": ModelPrice(0.80, 4.00, 0.08, 1.00),
}
"""List prices in USD per million tokens; the ``import.model_prices`` setting overrides them.

A model is priced by the longest key its name starts with (``gpt-4o-2024-08-06`` → ``gpt-4o``).
"""

CIRCLECI_CREDIT_PRICE = 0.0006
"""USD per CircleCI credit (25,000 credits for $15) unless ``import.circleci_credit_price`` says otherwise."""


@dataclass(frozen=True)
class GenericMapping:
    """How the columns of an unrecognised file map onto one entity.

    ``columns`` maps a canonical column to the file's column; ``constants`` fills a canonical
    column with one value for every row (e.g. ``source="ci"``). ``date_format`` is a strftime
    pattern tried before the common shapes; ``unit`` and ``currency`` fill cost events.
    """

    entity: str
    columns: Mapping[str, str]
    date_format: str | None = None
    unit: str | None = None
    currency: str | None = None
    constants: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ImportOptions:
    """Everything an import may be told beyond the file itself."""

    timezone: str = "UTC"
    agent_logins: tuple[str, ...] = ()
    repo: str | None = None
    sheet: str | None = None
    model_prices: Mapping[str, ModelPrice] = field(default_factory=lambda: dict(DEFAULT_MODEL_PRICES))
    circleci_credit_price: float = CIRCLECI_CREDIT_PRICE
    max_bytes: int = DEFAULT_MAX_BYTES
    date_range: tuple[date, date] = DATE_RANGE
    """The first and last day an imported date may fall on; anything outside is a problem of its row."""
    metric_ids: Mapping[str, str] = field(default_factory=dict)
    """Lower-cased metric id or name → metric id, so observation files may name metrics either way."""

    def price_of(self, model: str) -> ModelPrice | None:
        """The price of ``model`` by its longest matching family prefix, or None when unknown."""
        name = model.lower()
        matches = [k for k in self.model_prices if name.startswith(k.lower())]
        return self.model_prices[max(matches, key=len)] if matches else None


def options_from_settings(settings: Mapping[str, Any], **overrides: Any) -> ImportOptions:
    """Import options from workspace settings (``store.settings("import.")``), then ``overrides``."""
    options = ImportOptions()
    prices = dict(options.model_prices)
    for key, value in dict(settings.get("import.model_prices") or {}).items():
        if isinstance(value, Mapping):
            prices[str(key)] = ModelPrice(
                float(value.get("input", 0.0)),
                float(value.get("output", 0.0)),
                _float_or_none(value.get("cached_input")),
                _float_or_none(value.get("cache_write")),
            )
    options = replace(
        options,
        timezone=str(settings.get("import.timezone") or options.timezone),
        agent_logins=tuple(str(a) for a in settings.get("import.agent_logins") or ()),
        model_prices=prices,
        max_bytes=int(settings.get("import.max_bytes") or options.max_bytes),
        circleci_credit_price=float(settings.get("import.circleci_credit_price") or options.circleci_credit_price),
        date_range=_date_range(settings.get("import.date_range")) or options.date_range,
    )
    return replace(options, **{k: v for k, v in overrides.items() if v is not None})


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


def _date_range(value: Any) -> tuple[date, date] | None:
    """``import.date_range`` (two ISO days, first and last) as dates; None when unset."""
    if not value:
        return None
    first, last = (v if isinstance(v, date) else date.fromisoformat(str(v)) for v in value)
    return first, last

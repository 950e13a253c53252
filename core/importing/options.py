"""What an import may be told beyond the file: time zone, agent logins, model prices, a column mapping.

Workspace settings hold the defaults (``import.timezone``, ``import.agent_logins``,
``import.max_bytes``, ``import.work_item_projects``, ``import.currency_rates``,
``import.date_range``); :func:`import_options` reads them so the Data page and the CLI import
alike. Prices are not an import setting: tokens and CircleCI credits are priced from the cost
settings (``CostSettings.model_prices``, ``CostSettings.circleci_credit_price``), the same one
setting attribution prices from, so a price changed once changes both.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from core.costs.pricing import CIRCLECI_CREDIT, MODEL_PRICES, ModelPrice, model_price
from core.costs.rules import DEFAULT_SETTINGS, CostSettings
from core.importing.reading import DEFAULT_MAX_BYTES
from core.model.schema import DATE_RANGE
from core.store import settings as workspace_settings
from core.store.database import Store

DEFAULT_MODEL_PRICES: Mapping[str, ModelPrice] = MODEL_PRICES
"""The one price table (``core.costs.pricing``); the cost setting ``model_prices`` overrides its entries."""

CIRCLECI_CREDIT_PRICE = CIRCLECI_CREDIT.price
"""USD per CircleCI credit from the one price table unless the cost setting ``circleci_credit_price`` says otherwise."""


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
    work_item_projects: tuple[str, ...] = ()
    """Project prefixes (``PAY``) a work-item key in a branch or title may have, beyond imported work items'."""
    currency: str | None = None
    """The workspace currency; None: the cost settings' currency when planned against a store, else USD."""
    currency_rates: Mapping[str, float] = field(default_factory=dict)
    """Currency code → how much of the workspace currency one unit is worth; other currencies are refused."""

    def price_of(self, model: str) -> ModelPrice | None:
        """The price of ``model`` by its longest matching family prefix, or None when unknown."""
        return model_price(model, self.model_prices)


def import_options(store: Store, **overrides: Any) -> ImportOptions:
    """The import options of a workspace (``import.*`` and the cost settings' prices), then ``overrides``."""
    return options_from_settings(
        store.settings("import."), cost=workspace_settings.load(store, CostSettings), **overrides
    )


def options_from_settings(
    settings: Mapping[str, Any], cost: CostSettings = DEFAULT_SETTINGS, **overrides: Any
) -> ImportOptions:
    """Import options from ``import.*`` settings and the prices of the cost settings ``cost``, then ``overrides``."""
    options = ImportOptions()
    options = replace(
        options,
        timezone=str(settings.get("import.timezone") or options.timezone),
        agent_logins=tuple(str(a) for a in settings.get("import.agent_logins") or ()),
        model_prices=cost.model_price_map,
        max_bytes=int(settings.get("import.max_bytes") or options.max_bytes),
        circleci_credit_price=cost.circleci_credit_price,
        work_item_projects=tuple(str(p).strip().upper() for p in settings.get("import.work_item_projects") or ()),
        currency_rates={
            str(k).strip().upper(): float(r) for k, r in dict(settings.get("import.currency_rates") or {}).items()
        },
        date_range=_date_range(settings.get("import.date_range")) or options.date_range,
    )
    return replace(options, **{k: v for k, v in overrides.items() if v is not None})


def _date_range(value: Any) -> tuple[date, date] | None:
    """``import.date_range`` (two ISO days, first and last) as dates; None when unset."""
    if not value:
        return None
    first, last = (v if isinstance(v, date) else date.fromisoformat(str(v)) for v in value)
    return first, last

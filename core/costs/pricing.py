"""The one price table: money per million tokens of each model family and per CI minute or credit.

Every unit price the product uses lives here, each with the vendor page it was read from and the
date it was read. Importers (tokens in a usage export, CircleCI credits) and attribution (events
that carry a quantity but no amount) both price from this table; the cost setting ``model_prices``
overrides single entries, it never adds a second table. A model name is matched by the longest
family key it starts with, after its provider prefix (``anthropic/``) is dropped:
``claude-opus-4-5-20251101`` → ``claude-opus-4-5``, ``gpt-5-mini-2025-08-07`` → ``gpt-5-mini``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import polars as pl

ANTHROPIC_PRICING = "https://docs.anthropic.com/en/docs/about-claude/pricing"
ANTHROPIC_4_5_PRICING = "https://deploybase.ai/articles/claude-api-pricing (Anthropic list prices, March 2026)"
OPENAI_PRICING = "https://platform.openai.com/docs/pricing"
GITHUB_ACTIONS_PRICING = "https://docs.github.com/en/billing/managing-billing-for-github-actions"
CIRCLECI_PRICING = "https://circleci.com/pricing/"
READ_ON = "2026-12-04"
"""The day the vendor pages above were read for this table."""


@dataclass(frozen=True)
class ModelPrice:
    """Money per million tokens of one model family, with the vendor page and the date it was read."""

    input: float
    output: float
    cached_input: float | None = None
    cache_write: float | None = None
    source: str = ""
    read_on: str = ""


@dataclass(frozen=True)
class UnitPrice:
    """Money per CI minute (by runner type) or per CI credit, with the vendor page and the date it was read."""

    price: float
    source: str
    read_on: str = READ_ON


def _anthropic(i: float, o: float, cached: float, write: float, page: str = ANTHROPIC_PRICING) -> ModelPrice:
    return ModelPrice(i, o, cached, write, page, READ_ON)


def _openai(i: float, o: float, cached: float) -> ModelPrice:
    return ModelPrice(i, o, cached, None, OPENAI_PRICING, READ_ON)


MODEL_PRICES: Mapping[str, ModelPrice] = {
    "claude-opus-4-6": _anthropic(5.00, 25.00, 0.50, 6.25, ANTHROPIC_4_5_PRICING),
    "claude-opus-4-5": _anthropic(5.00, 25.00, 0.50, 6.25, ANTHROPIC_4_5_PRICING),
    "claude-opus-4-1": _anthropic(15.00, 75.00, 1.50, 18.75),
    "claude-opus-4": _anthropic(15.00, 75.00, 1.50, 18.75),
    "claude-sonnet-4-6": _anthropic(3.00, 15.00, 0.30, 3.75, ANTHROPIC_4_5_PRICING),
    "claude-sonnet-4-5": _anthropic(3.00, 15.00, 0.30, 3.75, ANTHROPIC_4_5_PRICING),
    "claude-sonnet-4": _anthropic(3.00, 15.00, 0.30, 3.75),
    "claude-3-7-sonnet": _anthropic(3.00, 15.00, 0.30, 3.75),
    "claude-3-5-sonnet": _anthropic(3.00, 15.00, 0.30, 3.75),
    "claude-haiku-4-5": _anthropic(1.00, 5.00, 0.10, 1.25, ANTHROPIC_4_5_PRICING),
    "claude-3-5-haiku": _anthropic(0.80, 4.00, 0.08, 1.00),
    "claude-3-haiku": _anthropic(0.25, 1.25, 0.03, 0.30),
    "gpt-5-nano": _openai(0.05, 0.40, 0.005),
    "gpt-5-mini": _openai(0.25, 2.00, 0.025),
    "gpt-5": _openai(1.25, 10.00, 0.125),
    "gpt-4.1-nano": _openai(0.10, 0.40, 0.025),
    "gpt-4.1-mini": _openai(0.40, 1.60, 0.10),
    "gpt-4.1": _openai(2.00, 8.00, 0.50),
    "gpt-4o-mini": _openai(0.15, 0.60, 0.075),
    "gpt-4o": _openai(2.50, 10.00, 1.25),
    "o4-mini": _openai(1.10, 4.40, 0.275),
    "o3-mini": _openai(1.10, 4.40, 0.55),
    "o3": _openai(2.00, 8.00, 0.50),
}
"""List prices in USD per million tokens by model family (input, output, cached input, cache write)."""

CI_MINUTE_PRICES: Mapping[str, UnitPrice] = {
    "ubuntu": UnitPrice(0.008, GITHUB_ACTIONS_PRICING),
    "linux": UnitPrice(0.008, GITHUB_ACTIONS_PRICING),
    "windows": UnitPrice(0.016, GITHUB_ACTIONS_PRICING),
    "macos": UnitPrice(0.08, GITHUB_ACTIONS_PRICING),
    "default": UnitPrice(0.008, GITHUB_ACTIONS_PRICING),
}
"""USD per CI minute by runner type (GitHub-hosted list prices); ``default`` for any other runner."""

CIRCLECI_CREDIT = UnitPrice(15.0 / 25_000, CIRCLECI_PRICING)
"""USD per CircleCI credit: $15 buys 25,000 credits."""


def model_price(model: str | None, overrides: Mapping[str, ModelPrice] | None = None) -> ModelPrice | None:
    """The price of ``model`` by its longest matching family key (overrides first), or None when unknown."""
    if not model:
        return None
    table = {**MODEL_PRICES, **(overrides or {})}
    name = model.strip().lower().rsplit("/", 1)[-1]
    matches = [key for key in table if name.startswith(key.lower())]
    return table[max(matches, key=len)] if matches else None


def model_prices_with(overrides: Iterable[tuple[str, float, float]] = ()) -> dict[str, ModelPrice]:
    """The one model price table with the cost setting's ``(model, input, output)`` rows overriding its entries.

    A row equal to the table's entry leaves that entry (and its source) as it is. A changed row keeps
    the cached-input and cache-write prices in the ratio to the input price of the family it falls in
    (none for a model of no known family: importers then price cache tokens as input).
    """
    prices = dict(MODEL_PRICES)
    for model, i, o in overrides:
        name, per_input, per_output = str(model).strip(), float(i), float(o)
        listed = model_price(name)
        if listed is not None and name in MODEL_PRICES and (listed.input, listed.output) == (per_input, per_output):
            continue
        scale = per_input / listed.input if listed is not None and listed.input else None
        prices[name] = ModelPrice(
            per_input,
            per_output,
            None if scale is None or listed is None or listed.cached_input is None else listed.cached_input * scale,
            None if scale is None or listed is None or listed.cache_write is None else listed.cache_write * scale,
            "the cost setting model_prices",
        )
    return prices


def model_price_rows(overrides: Iterable[tuple[str, float, float]] = ()) -> tuple[tuple[str, float, float], ...]:
    """The table as ``(model, input, output)`` rows, with ``overrides`` replacing or adding entries."""
    rows = {model: (p.input, p.output) for model, p in MODEL_PRICES.items()}
    rows.update({str(m): (float(i), float(o)) for m, i, o in overrides})
    return tuple((m, i, o) for m, (i, o) in rows.items())


def ci_rate_rows() -> tuple[tuple[str, float], ...]:
    """The CI minute prices as ``(runner, price)`` rows."""
    return tuple((runner, p.price) for runner, p in CI_MINUTE_PRICES.items())


def longest_prefix(model: pl.Expr, prices: Mapping[str, float]) -> pl.Expr:
    """The price of each model name in ``model`` by the longest key of ``prices`` it starts with (null: none)."""
    result: pl.Expr = pl.lit(None, dtype=pl.Float64)
    for key in sorted(prices, key=len):
        result = pl.when(model.str.starts_with(key.lower())).then(pl.lit(float(prices[key]))).otherwise(result)
    return result

"""LLM usage and cost exports: OpenAI (cost and completions usage) and the Anthropic Console (cost and usage).

OpenAI's usage dashboard exports daily buckets: the cost export has ``start_time``,
``end_time``, ``start_time_iso``, ``end_time_iso``, ``amount_value``, ``amount_currency``,
``line_item``, ``project_id``, ``organization_id``, ``organization_name``; the completions
export has ``num_model_requests``, ``model``, ``batch``, ``service_tier``, ``input_tokens``,
``output_tokens``, ``input_cached_tokens`` and more, with token counts written as floats
(``59200.0``). A bucket with no usage is a row of empty cells, sometimes with extra trailing
separators; such rows are skipped, not rejected.

The Anthropic Console cost export has ``usage_date_utc``, ``model``, ``workspace``,
``api_key``, ``usage_type``, ``context_window``, ``token_type``, ``cost_usd`` (USD); its usage
export has ``usage_date_utc``, ``model_version``, ``api_key``, ``workspace``, ``usage_type``,
``usage_input_tokens_no_cache``, ``usage_input_tokens_cache_write_5m``,
``usage_input_tokens_cache_write_1h``, ``usage_input_tokens_cache_read``,
``usage_output_tokens``. Rows that look identical are separate line items: every row becomes
its own cost event (numbered by occurrence), so totals are summed, never de-duplicated. The
Console writes ``--`` where a field does not apply (a web search has no model or token type);
``--`` is read as empty.

Each event keeps the provider's account identifiers for the key map (entity ``cost_keys``):
Anthropic ``api_key`` as the account key and ``workspace`` as its scope; OpenAI ``api_key_id``
(else ``user_id``) as the key and ``project_id`` as the scope.

Where only tokens are given, the one model price table (cost setting ``model_prices``) turns
them into money; a model with no price keeps its tokens and an empty amount.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import polars as pl

from core.importing import values as v
from core.importing.formats.base import ROW, Columns, Format, Mapped, with_rows
from core.importing.options import ImportOptions, ModelPrice
from core.importing.reading import RawTable


def build_openai_cost(raw: RawTable, options: ImportOptions) -> Mapped:
    """One cost event per non-empty line of an OpenAI cost export."""
    c = Columns(raw.frame)
    rows = with_rows(raw.frame)
    keep = v.text(c("amount_value")).is_not_null()
    project = pl.coalesce(v.text(c("project_name")), v.text(c("project_id")))
    line = v.text(c("line_item"))
    events = rows.filter(keep).select(
        ROW,
        v.line_item_id(
            "openai-cost", [c("start_time_iso", "start_time"), c("project_id"), line, c("organization_id")]
        ).alias("event_id"),
        v.timestamp(pl.coalesce(v.text(c("start_time_iso")), v.text(c("start_time")))).alias("occurred_at"),
        pl.lit("llm").alias("source"),
        v.number(c("amount_value")).alias("amount"),
        pl.coalesce(v.text(c("amount_currency")).str.to_uppercase(), pl.lit("USD")).alias("currency"),
        _detail("OpenAI", line, project).alias("detail"),
        v.text(c("project_id")).alias("account_scope"),
    )
    return Mapped(
        {"cost_events": events}, skipped=rows.height - events.height, notes=_skipped_note(rows.height - events.height)
    )


def build_openai_usage(raw: RawTable, options: ImportOptions) -> Mapped:
    """One cost event (tokens, priced by model) per non-empty bucket of an OpenAI completions export."""
    c = Columns(raw.frame)
    rows = with_rows(raw.frame)
    model = v.text(c("model"))
    tokens = {
        "input": v.number(c("input_tokens")),
        "cached": v.number(c("input_cached_tokens")),
        "output": v.number(c("output_tokens")),
    }
    keep = model.is_not_null() | v.text(c("input_tokens")).is_not_null()
    uncached = _f(tokens["input"]) - _f(tokens["cached"]).fill_null(0)
    priced = _with_prices(rows.filter(keep), model, options.model_prices, options)
    amount = (
        uncached * pl.col("__p_input")
        + _f(tokens["cached"]).fill_null(0) * pl.col("__p_cached")
        + _f(tokens["output"]).fill_null(0) * pl.col("__p_output")
    ) / 1_000_000
    batch = v.text(c("batch")).str.to_lowercase() == "true"
    events = priced.select(
        ROW,
        v.line_item_id(
            "openai-usage",
            [
                c("start_time_iso", "start_time"),
                c("project_id"),
                c("user_id"),
                c("api_key_id"),
                model,
                c("batch"),
                c("service_tier"),
            ],
        ).alias("event_id"),
        v.timestamp(pl.coalesce(v.text(c("start_time_iso")), v.text(c("start_time")))).alias("occurred_at"),
        pl.lit("llm").alias("source"),
        amount.cast(pl.String).alias("amount"),
        pl.when(amount.is_not_null()).then(pl.lit("USD")).alias("currency"),
        _sum_numbers([tokens["input"], tokens["output"]]).alias("quantity"),
        pl.lit("tokens").alias("unit"),
        pl.concat_str(
            [
                pl.lit("OpenAI "),
                pl.coalesce(model, pl.lit("unknown model")),
                pl.when(batch.fill_null(False)).then(pl.lit(" (batch)")).otherwise(pl.lit("")),
            ]
        ).alias("detail"),
        pl.coalesce(v.text(c("api_key_id")), v.text(c("user_id"))).alias("account_key"),
        v.text(c("project_id")).alias("account_scope"),
    )
    skipped = rows.height - events.height
    notes = [*_skipped_note(skipped), *_unpriced_note(priced, model)]
    return Mapped({"cost_events": events}, skipped=skipped, notes=tuple(notes))


def build_anthropic_cost(raw: RawTable, options: ImportOptions) -> Mapped:
    """One cost event per line of an Anthropic Console cost export (look-alike lines are all kept)."""
    c = Columns(raw.frame)
    rows = with_rows(raw.frame)
    keep = _console_text(c("cost_usd")).is_not_null()
    model = _console_text(c("model"))
    token_type = _console_text(c("token_type"))
    events = rows.filter(keep).select(
        ROW,
        v.line_item_id(
            "anthropic-cost",
            [
                c("usage_date_utc"),
                model,
                c("workspace"),
                c("api_key_id", "api_key"),
                c("usage_type"),
                c("context_window"),
                token_type,
                c("cost_type"),
                c("speed"),
            ],
        ).alias("event_id"),
        v.timestamp(c("usage_date_utc")).alias("occurred_at"),
        pl.lit("llm").alias("source"),
        v.number(_console_text(c("cost_usd"))).alias("amount"),
        pl.lit("USD").alias("currency"),
        _detail(
            "Anthropic",
            pl.concat_str([model, token_type], separator=" ", ignore_nulls=True),
            _console_text(c("workspace")),
        ).alias("detail"),
        _console_text(c("api_key")).alias("account_key"),
        _console_text(c("workspace")).alias("account_scope"),
    )
    return Mapped(
        {"cost_events": events}, skipped=rows.height - events.height, notes=_skipped_note(rows.height - events.height)
    )


def build_anthropic_usage(raw: RawTable, options: ImportOptions) -> Mapped:
    """One cost event (tokens, priced by model) per line of an Anthropic Console usage export."""
    c = Columns(raw.frame)
    rows = with_rows(raw.frame)
    model = _console_text(c("model_version", "model"))
    parts = {
        "no_cache": v.number(_console_text(c("usage_input_tokens_no_cache"))),
        "write_5m": v.number(_console_text(c("usage_input_tokens_cache_write_5m"))),
        "write_1h": v.number(_console_text(c("usage_input_tokens_cache_write_1h"))),
        "read": v.number(_console_text(c("usage_input_tokens_cache_read"))),
        "output": v.number(_console_text(c("usage_output_tokens"))),
    }
    keep = model.is_not_null()
    priced = _with_prices(rows.filter(keep), model, options.model_prices, options)
    amount = (
        _f(parts["no_cache"]).fill_null(0) * pl.col("__p_input")
        + (_f(parts["write_5m"]).fill_null(0) + _f(parts["write_1h"]).fill_null(0)) * pl.col("__p_write")
        + _f(parts["read"]).fill_null(0) * pl.col("__p_cached")
        + _f(parts["output"]).fill_null(0) * pl.col("__p_output")
    ) / 1_000_000
    events = priced.select(
        ROW,
        v.line_item_id(
            "anthropic-usage",
            [
                c("usage_date_utc"),
                model,
                c("workspace"),
                c("api_key"),
                c("usage_type"),
                c("context_window"),
                c("inference_geo"),
                c("speed"),
            ],
        ).alias("event_id"),
        v.timestamp(c("usage_date_utc")).alias("occurred_at"),
        pl.lit("llm").alias("source"),
        amount.cast(pl.String).alias("amount"),
        pl.when(amount.is_not_null()).then(pl.lit("USD")).alias("currency"),
        _sum_numbers(list(parts.values())).alias("quantity"),
        pl.lit("tokens").alias("unit"),
        _detail("Anthropic", model, _console_text(c("workspace"))).alias("detail"),
        _console_text(c("api_key")).alias("account_key"),
        _console_text(c("workspace")).alias("account_scope"),
    )
    skipped = rows.height - events.height
    return Mapped(
        {"cost_events": events}, skipped=skipped, notes=(*_skipped_note(skipped), *_unpriced_note(priced, model))
    )


def reconcile_openai(mapped: Mapped, format_name: str, stored: pl.DataFrame) -> Mapped:
    """OpenAI spend counted once per day: the cost export is the money; usage adds tokens only.

    Importing usage leaves the amount empty on days a stored cost export already prices (its
    tokens are kept); importing a cost export empties the amount of stored usage buckets of
    its days. The plan's notes say which was done, so the import result names it.
    """
    events = mapped.frames.get("cost_events")
    if events is None or events.is_empty() or format_name not in ("openai_cost", "openai_usage"):
        return mapped
    stored_days = stored.select(
        pl.col("event_id"), pl.col("occurred_at").dt.date().cast(pl.String).alias("__day"), pl.col("amount")
    )
    if format_name == "openai_usage":
        priced = stored_days.filter(pl.col("event_id").str.starts_with("openai-cost|") & pl.col("amount").is_not_null())
        covered = priced["__day"].unique().to_list()
        on_covered = pl.col("occurred_at").str.slice(0, 10).is_in(covered) & pl.col("amount").is_not_null()
        moved = events.filter(on_covered).height
        events = events.with_columns(
            pl.when(on_covered).then(None).otherwise(pl.col(name)).alias(name) for name in ("amount", "currency")
        )
        own = events.filter(pl.col("amount").is_not_null()).height
        notes = [
            f"{moved} usage bucket(s) fall on days an imported OpenAI cost export already prices: their tokens are "
            "kept, their money is the cost export's."
            if moved
            else "No imported OpenAI cost export covers these days.",
            f"{own} usage bucket(s) priced from their tokens with the model price table." if own else "",
        ]
        return replace(
            mapped, frames={**mapped.frames, "cost_events": events}, notes=(*mapped.notes, *filter(None, notes))
        )
    days = events["occurred_at"].str.slice(0, 10).unique().to_list()
    usage_ids = stored_days.filter(
        pl.col("event_id").str.starts_with("openai-usage|")
        & pl.col("amount").is_not_null()
        & pl.col("__day").is_in(days)
    )["event_id"]
    if usage_ids.is_empty():
        note = "The cost export is the money for its days; no usage bucket of these days was priced before."
        return replace(mapped, notes=(*mapped.notes, note))
    unpriced = (
        stored.filter(pl.col("event_id").is_in(usage_ids.implode()))
        .with_columns(pl.lit(None, dtype=pl.Float64).alias("amount"), pl.lit(None, dtype=pl.String).alias("currency"))
        .select(pl.lit(0, dtype=pl.Int64).alias(ROW), pl.all().cast(pl.String))
    )
    note = (
        f"{unpriced.height} stored OpenAI usage bucket(s) of these days keep their tokens; their amount is cleared, "
        "as this cost export is the money for those days."
    )
    merged = pl.concat([events, unpriced], how="diagonal_relaxed")
    return replace(mapped, frames={**mapped.frames, "cost_events": merged}, notes=(*mapped.notes, note))


def _with_prices(
    frame: pl.DataFrame, model: pl.Expr, prices: Mapping[str, ModelPrice], options: ImportOptions
) -> pl.DataFrame:
    frame = frame.with_columns(model.alias("__model"))
    models = [m for m in frame["__model"].unique().to_list() if m is not None]
    table: dict[str, list[object]] = {
        "__model": [],
        "__p_input": [],
        "__p_output": [],
        "__p_cached": [],
        "__p_write": [],
    }
    for name in models:
        price = options.price_of(name)
        if price is None:
            continue
        table["__model"].append(name)
        table["__p_input"].append(price.input)
        table["__p_output"].append(price.output)
        table["__p_cached"].append(price.cached_input if price.cached_input is not None else price.input)
        table["__p_write"].append(price.cache_write if price.cache_write is not None else price.input * 1.25)
    schema = {"__model": pl.String, **{k: pl.Float64 for k in table if k != "__model"}}
    return frame.join(pl.DataFrame(table, schema=schema), on="__model", how="left", maintain_order="left")


def _console_text(expr: pl.Expr) -> pl.Expr:
    """An Anthropic Console cell as text, with its ``--`` placeholder (field does not apply) as empty."""
    cell = v.text(expr)
    return pl.when(cell == "--").then(None).otherwise(cell)


def _f(expr: pl.Expr) -> pl.Expr:
    return expr.cast(pl.Float64, strict=False)


def _sum_numbers(parts: list[pl.Expr]) -> pl.Expr:
    """The sum of number cells as text, or the first cell that is not a number (so validation names it)."""
    bad = pl.coalesce([pl.when(p.is_not_null() & _f(p).is_null()).then(p) for p in parts])
    total = pl.sum_horizontal([_f(p) for p in parts])
    return pl.coalesce(bad, total.cast(pl.String))


def _detail(vendor: str, item: pl.Expr, scope: pl.Expr) -> pl.Expr:
    base = pl.concat_str([pl.lit(vendor), item], separator=" ", ignore_nulls=True)
    return pl.when(scope.is_not_null()).then(pl.concat_str([base, pl.lit(" ["), scope, pl.lit("]")])).otherwise(base)


def _skipped_note(skipped: int) -> tuple[str, ...]:
    return (f"{skipped} empty usage bucket(s) skipped.",) if skipped else ()


def _unpriced_note(priced: pl.DataFrame, model: pl.Expr) -> tuple[str, ...]:
    missing = priced.filter(pl.col("__p_input").is_null() & pl.col("__model").is_not_null())["__model"].unique().sort()
    if missing.len() == 0:
        return ()
    return (
        f"No price for model(s) {', '.join(missing.to_list())}: their tokens are kept without an amount; "
        "add them to the model prices in the Cost page's settings.",
    )


OPENAI_COST = Format(
    name="openai_cost",
    label="OpenAI cost export (CSV)",
    entities=("cost_events",),
    signature=("amount_value", "amount_currency", "start_time"),
    hints=("start_time_iso", "end_time", "line_item", "project_id", "organization_id"),
    build=build_openai_cost,
    mapping={
        "cost_events": {
            "event_id": "start time + project + line item (+ occurrence)",
            "occurred_at": "start_time_iso",
            "amount": "amount_value",
            "currency": "amount_currency",
            "detail": "line_item [project]",
            "account_scope": "project_id",
            "source": "'llm'",
        }
    },
)

OPENAI_USAGE = Format(
    name="openai_usage",
    label="OpenAI completions usage export (CSV)",
    entities=("cost_events",),
    signature=("num_model_requests", "input_tokens", "output_tokens", "model"),
    hints=("start_time_iso", "project_id", "api_key_id", "input_cached_tokens", "batch", "service_tier"),
    build=build_openai_usage,
    mapping={
        "cost_events": {
            "event_id": "bucket + project + user + key + model (+ occurrence)",
            "occurred_at": "start_time_iso",
            "quantity": "input_tokens + output_tokens",
            "amount": "tokens × model price table (none on days a cost export already prices)",
            "detail": "model",
            "account_key": "api_key_id, else user_id",
            "account_scope": "project_id",
            "source": "'llm'",
        }
    },
)

ANTHROPIC_COST = Format(
    name="anthropic_cost",
    label="Anthropic Console cost export (CSV)",
    entities=("cost_events",),
    signature=("usage_date_utc", "model", "cost_usd"),
    hints=("workspace", "api_key", "usage_type", "token_type", "context_window"),
    build=build_anthropic_cost,
    mapping={
        "cost_events": {
            "event_id": "every field of the line (+ occurrence: look-alike lines are kept)",
            "occurred_at": "usage_date_utc",
            "amount": "cost_usd",
            "currency": "'USD'",
            "detail": "model token_type [workspace]",
            "account_key": "api_key",
            "account_scope": "workspace",
            "source": "'llm'",
        }
    },
)

ANTHROPIC_USAGE = Format(
    name="anthropic_usage",
    label="Anthropic Console usage export (CSV)",
    entities=("cost_events",),
    signature=("usage_date_utc", "model_version", "usage_output_tokens"),
    hints=("usage_input_tokens_no_cache", "usage_input_tokens_cache_read", "workspace", "api_key"),
    build=build_anthropic_usage,
    mapping={
        "cost_events": {
            "event_id": "every field of the line (+ occurrence)",
            "occurred_at": "usage_date_utc",
            "quantity": "all input and output tokens",
            "amount": "tokens × model price table",
            "detail": "model_version [workspace]",
            "account_key": "api_key",
            "account_scope": "workspace",
            "source": "'llm'",
        }
    },
)

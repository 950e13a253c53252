"""CI usage exports: GitHub Actions usage reports (older and newer) and the CircleCI usage export.

GitHub's older usage report (billing → "Get usage report") has ``Date``, ``Product``, ``SKU``,
``Quantity``, ``Unit Type``, ``Price Per Unit ($)``, ``Multiplier``, ``Owner``,
``Repository Slug``, ``Username``, ``Actions Workflow``, ``Notes``; the amount is
quantity × price per unit. ``Price Per Unit ($)`` is already the runner's own per-minute price
(macOS $0.08, Windows $0.016); ``Multiplier`` only says how fast its minutes use up the free
quota, so it is not applied again. ``Username`` is kept as the account key and
``Repository Slug`` as the account scope. The newer report (enhanced billing) has ``date`` (or
``usage_at``), ``product``, ``sku``, ``quantity``, ``unit_type``, ``applied_cost_per_quantity``,
``gross_amount``, ``discount_amount``, ``net_amount``, ``organization``, ``repository`` and,
in the detailed variant, ``username`` and ``workflow_path``; the amount is ``gross_amount``
(what the usage cost before included minutes are discounted); ``username`` and ``repository``
are the account key and scope. Actions lines become ``ci``
costs, Copilot lines ``llm``, other products ``other``. Identical lines are separate usage.

The CircleCI usage export (API v2 ``/usage``) has one line per job run with
``PROJECT_NAME``, ``VCS_URL``, ``VCS_BRANCH``, ``WORKFLOW_NAME``, ``JOB_NAME``, ``JOB_ID``,
``JOB_RUN_STARTED_AT``, ``RESOURCE_CLASS``, ``JOB_RUN_SECONDS``, ``TOTAL_CREDITS`` ... and
writes nulls as a literal ``\\N``. Credits become money at the CircleCI credit price (cost
setting ``circleci_credit_price``); the branch's work-item key is kept for attribution, the
pipeline's trigger user as the account key and the project as the account scope.
"""

from __future__ import annotations

import polars as pl

from core.importing import values as v
from core.importing.formats.base import ROW, Columns, Format, Mapped, with_rows
from core.importing.options import ImportOptions
from core.importing.reading import RawTable


def build_actions_legacy(raw: RawTable, options: ImportOptions) -> Mapped:
    """Cost events from GitHub's older per-repository/workflow usage report."""
    c = Columns(raw.frame)
    rows = with_rows(raw.frame).filter(v.text(c("Quantity")).is_not_null())
    quantity, price = (v.number(c(n)) for n in ("Quantity", "Price Per Unit ($)"))
    amount = _f(quantity) * _f(price)
    owner, slug = v.text(c("Owner")), v.text(c("Repository Slug"))
    events = rows.select(
        ROW,
        v.line_item_id(
            "gha", [c("Date"), c("Product"), c("SKU"), owner, slug, c("Username"), c("Actions Workflow")]
        ).alias("event_id"),
        v.timestamp(c("Date"), options.timezone).alias("occurred_at"),
        _source(c("Product")).alias("source"),
        pl.coalesce(amount.cast(pl.String), _first_bad([quantity, price])).alias("amount"),
        pl.lit("USD").alias("currency"),
        quantity.alias("quantity"),
        v.text(c("Unit Type")).alias("unit"),
        pl.concat_str([v.text(c("SKU")), v.text(c("Actions Workflow"))], separator=" ", ignore_nulls=True).alias(
            "detail"
        ),
        pl.when(slug.is_not_null() & ~slug.is_in(["Organization Packages"]))
        .then(pl.concat_str([owner, slug], separator="/", ignore_nulls=True))
        .alias("repo"),
        v.text(c("Username")).alias("account_key"),
        slug.alias("account_scope"),
    )
    return Mapped({"cost_events": events})


def build_actions(raw: RawTable, options: ImportOptions) -> Mapped:
    """Cost events from GitHub's newer (enhanced billing) usage report, summarized or detailed."""
    c = Columns(raw.frame)
    rows = with_rows(raw.frame).filter(v.text(c("quantity")).is_not_null())
    org = v.text(c("organization"))
    repo = v.text(c("repository", "repository_name"))
    events = rows.select(
        ROW,
        v.line_item_id(
            "gha",
            [
                c("date", "usage_at"),
                c("product"),
                c("sku"),
                org,
                repo,
                c("username"),
                c("workflow_path", "workflow_name"),
                c("cost_center_name"),
            ],
        ).alias("event_id"),
        v.timestamp(c("date", "usage_at"), options.timezone).alias("occurred_at"),
        _source(c("product")).alias("source"),
        v.number(c("gross_amount")).alias("amount"),
        pl.lit("USD").alias("currency"),
        v.number(c("quantity")).alias("quantity"),
        v.text(c("unit_type")).alias("unit"),
        pl.concat_str(
            [v.text(c("sku")), v.text(c("workflow_path", "workflow_name"))], separator=" ", ignore_nulls=True
        ).alias("detail"),
        pl.when(repo.is_not_null())
        .then(
            pl.when(repo.str.contains("/"))
            .then(repo)
            .otherwise(pl.concat_str([org, repo], separator="/", ignore_nulls=True))
        )
        .alias("repo"),
        v.text(c("username")).alias("account_key"),
        repo.alias("account_scope"),
    )
    return Mapped({"cost_events": events})


def build_circleci(raw: RawTable, options: ImportOptions) -> Mapped:
    """Cost events (credits and their price) from a CircleCI usage export, one per job run."""
    c = Columns(raw.frame)
    rows = with_rows(raw.frame).filter(v.text(c("TOTAL_CREDITS")).is_not_null() | v.text(c("JOB_ID")).is_not_null())
    credits = v.number(c("TOTAL_CREDITS"))
    branch = v.text(c("VCS_BRANCH"))
    repo = pl.coalesce(
        v.text(c("VCS_URL")).str.extract(r"(?:github\.com|bitbucket\.org|gitlab\.com)[/:]([^/]+/[^/.]+)", 1),
        v.text(c("PROJECT_NAME")),
    )
    amount = _f(credits) * options.circleci_credit_price
    events = rows.select(
        ROW,
        v.line_item_id("circleci", [c("JOB_ID"), c("JOB_RUN_NUMBER"), c("WORKFLOW_ID")]).alias("event_id"),
        v.timestamp(
            pl.coalesce(v.text(c("JOB_RUN_STARTED_AT")), v.text(c("JOB_RUN_DATE")), v.text(c("PIPELINE_CREATED_AT"))),
            options.timezone,
        ).alias("occurred_at"),
        pl.lit("ci").alias("source"),
        pl.coalesce(amount.cast(pl.String), _first_bad([credits])).alias("amount"),
        pl.lit("USD").alias("currency"),
        credits.alias("quantity"),
        pl.lit("credits").alias("unit"),
        pl.concat_str(
            [
                v.text(c("WORKFLOW_NAME")),
                pl.lit("/"),
                v.text(c("JOB_NAME")),
                pl.lit(" ("),
                v.text(c("RESOURCE_CLASS")).fill_null("?"),
                pl.lit(")"),
            ]
        ).alias("detail"),
        repo.alias("repo"),
        branch.alias("branch"),
        v.work_item_key(branch).alias("work_item_key"),
        v.text(c("PIPELINE_TRIGGER_USER_ID")).alias("account_key"),
        v.text(c("PROJECT_NAME")).alias("account_scope"),
    )
    return Mapped({"cost_events": events})


def _source(product: pl.Expr) -> pl.Expr:
    name = v.text(product).str.to_lowercase()
    return (
        pl.when(name.str.contains("actions"))
        .then(pl.lit("ci"))
        .when(name.str.contains("copilot"))
        .then(pl.lit("llm"))
        .otherwise(pl.lit("other"))
    )


def _f(expr: pl.Expr) -> pl.Expr:
    return expr.cast(pl.Float64, strict=False)


def _first_bad(parts: list[pl.Expr]) -> pl.Expr:
    return pl.coalesce([pl.when(p.is_not_null() & _f(p).is_null()).then(p) for p in parts])


ACTIONS_LEGACY = Format(
    name="github_actions_usage_legacy",
    label="GitHub Actions usage report (older per-repository/workflow format)",
    entities=("cost_events",),
    signature=("Date", "Product", "SKU", "Quantity", "Price Per Unit ($)"),
    hints=("Unit Type", "Multiplier", "Owner", "Repository Slug", "Actions Workflow", "Username"),
    build=build_actions_legacy,
    mapping={
        "cost_events": {
            "occurred_at": "Date",
            "amount": "Quantity × Price Per Unit ($)",
            "account_key": "Username",
            "account_scope": "Repository Slug",
            "quantity": "Quantity",
            "unit": "Unit Type",
            "repo": "Owner/Repository Slug",
            "detail": "SKU + Actions Workflow",
            "source": "ci (Actions) / other",
        }
    },
)

ACTIONS = Format(
    name="github_actions_usage",
    label="GitHub Actions usage report (enhanced billing format)",
    entities=("cost_events",),
    signature=("product", "sku", "quantity", "unit_type", "gross_amount"),
    hints=("date", "applied_cost_per_quantity", "net_amount", "organization", "repository", "workflow_path"),
    build=build_actions,
    mapping={
        "cost_events": {
            "occurred_at": "date",
            "amount": "gross_amount",
            "quantity": "quantity",
            "unit": "unit_type",
            "repo": "organization/repository",
            "detail": "sku + workflow_path",
            "account_key": "username",
            "account_scope": "repository",
            "source": "ci (actions) / llm (copilot) / other",
        }
    },
)

CIRCLECI = Format(
    name="circleci_usage",
    label="CircleCI usage export (CSV)",
    entities=("cost_events",),
    signature=("JOB_ID", "TOTAL_CREDITS"),
    hints=(
        "PROJECT_NAME",
        "VCS_BRANCH",
        "WORKFLOW_NAME",
        "JOB_NAME",
        "JOB_RUN_STARTED_AT",
        "RESOURCE_CLASS",
        "JOB_RUN_SECONDS",
    ),
    build=build_circleci,
    mapping={
        "cost_events": {
            "event_id": "JOB_ID",
            "occurred_at": "JOB_RUN_STARTED_AT",
            "quantity": "TOTAL_CREDITS",
            "amount": "credits × credit price",
            "branch": "VCS_BRANCH",
            "work_item_key": "key in VCS_BRANCH",
            "repo": "VCS_URL / PROJECT_NAME",
            "detail": "WORKFLOW_NAME/JOB_NAME (RESOURCE_CLASS)",
            "account_key": "PIPELINE_TRIGGER_USER_ID",
            "account_scope": "PROJECT_NAME",
            "source": "'ci'",
        }
    },
)

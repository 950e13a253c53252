"""Stage-1 roll-ups pushed down to the user's database: SQLAlchemy Core queries and their Polars twins.

An organisation whose facts live in PostgreSQL, Trino, Snowflake, BigQuery or Databricks need not
pull ten million cost events to answer: these queries run inside its database and return the small
roll-ups (day or week × entity) that stage 2 consumes. Each query has a Polars twin over the canonical
LazyFrames returning the same rows, so both paths give the same numbers (``tests/test_pushdown.py``).

* ``direct_costs_per_day`` — money given on cost events that name a feature, PR or team, per day,
  source, feature, PR and team.
* ``weekly_counts`` — features delivered and PRs merged per team per Monday week.
* ``deployments_per_day`` — deployments per day, team, environment and status.

Queries are built from ``sqlalchemy`` constructs only: values travel as bound parameters and the
dialect renders day and week truncation (``day_of``, ``week_of``), so nothing is spliced into SQL.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement, FunctionElement

from core.store.database import ENTITY_TABLES

DIRECT_COST_SCHEMA = pl.Schema(
    {
        "day": pl.Date,
        "source": pl.String,
        "feature_id": pl.String,
        "pr_id": pl.String,
        "team_id": pl.String,
        "amount": pl.Float64,
        "events": pl.Int64,
    }
)
WEEKLY_SCHEMA = pl.Schema(
    {"week": pl.Date, "team_id": pl.String, "features_delivered": pl.Int64, "prs_merged": pl.Int64}
)
DEPLOYMENT_SCHEMA = pl.Schema(
    {"day": pl.Date, "team_id": pl.String, "environment": pl.String, "status": pl.String, "deployments": pl.Int64}
)


# ---------------------------------------------------------------------------------------------
# The queries
# ---------------------------------------------------------------------------------------------


def direct_costs_per_day(cost_events: sa.FromClause = ENTITY_TABLES["cost_events"]) -> sa.Select[Any]:
    """Money given on events naming a feature, PR or team, per day, source, feature, PR and team."""
    c = cost_events.c
    day = day_of(c.occurred_at).label("day")
    linked = sa.or_(c.feature_id.is_not(None), c.pr_id.is_not(None), c.team_id.is_not(None))
    return (
        sa.select(
            day,
            c.source,
            c.feature_id,
            c.pr_id,
            c.team_id,
            sa.func.sum(c.amount).label("amount"),
            sa.func.count().label("events"),
        )
        .where(c.amount.is_not(None), linked)
        .group_by(day, c.source, c.feature_id, c.pr_id, c.team_id)
    )


def weekly_counts(
    features: sa.FromClause = ENTITY_TABLES["features"], pull_requests: sa.FromClause = ENTITY_TABLES["pull_requests"]
) -> sa.Select[Any]:
    """Features delivered and PRs merged per team per Monday week."""
    f, p = features.c, pull_requests.c
    zero = sa.literal(0, sa.Integer)
    delivered = sa.select(
        week_of(f.delivered_at).label("week"),
        f.team_id.label("team_id"),
        sa.literal(1, sa.Integer).label("d"),
        zero.label("m"),
    ).where(f.status == "delivered", f.delivered_at.is_not(None))
    merged = sa.select(
        week_of(p.merged_at).label("week"),
        p.team_id.label("team_id"),
        zero.label("d"),
        sa.literal(1, sa.Integer).label("m"),
    ).where(p.merged_at.is_not(None))
    both = sa.union_all(delivered, merged).subquery("facts")
    return sa.select(
        both.c.week,
        both.c.team_id,
        sa.func.sum(both.c.d).label("features_delivered"),
        sa.func.sum(both.c.m).label("prs_merged"),
    ).group_by(both.c.week, both.c.team_id)


def deployments_per_day(deployments: sa.FromClause = ENTITY_TABLES["deployments"]) -> sa.Select[Any]:
    """Deployments per day (of finishing), team, environment and status."""
    c = deployments.c
    day = day_of(c.finished_at).label("day")
    return (
        sa.select(day, c.team_id, c.environment, c.status, sa.func.count().label("deployments"))
        .where(c.finished_at.is_not(None))
        .group_by(day, c.team_id, c.environment, c.status)
    )


def run(engine: Engine, query: sa.Select[Any], schema: pl.Schema) -> pl.DataFrame:
    """Run a roll-up inside the database and return its (small) result in ``schema``, sorted."""
    with engine.connect() as conn:
        result = conn.execute(query)
        rows = [tuple(row) for row in result]
    raw = pl.DataFrame(rows, schema=list(schema.names()), orient="row", infer_schema_length=None)
    return conform_rollup(raw, schema)


# ---------------------------------------------------------------------------------------------
# The Polars twins (what the same roll-ups are in memory, on the streaming or a distributed engine)
# ---------------------------------------------------------------------------------------------


def direct_costs_per_day_plan(cost_events: pl.LazyFrame) -> pl.LazyFrame:
    """``direct_costs_per_day`` over the canonical cost events."""
    linked = pl.any_horizontal(pl.col("feature_id", "pr_id", "team_id").is_not_null())
    return (
        cost_events.filter(pl.col("amount").is_not_null() & linked)
        .group_by(pl.col("occurred_at").dt.date().alias("day"), "source", "feature_id", "pr_id", "team_id")
        .agg(pl.col("amount").sum(), pl.len().cast(pl.Int64).alias("events"))
    )


def weekly_counts_plan(features: pl.LazyFrame, pull_requests: pl.LazyFrame) -> pl.LazyFrame:
    """``weekly_counts`` over the canonical features and pull requests."""
    delivered = features.filter((pl.col("status") == "delivered") & pl.col("delivered_at").is_not_null()).select(
        _week("delivered_at"), "team_id", pl.lit(1, pl.Int64).alias("d"), pl.lit(0, pl.Int64).alias("m")
    )
    merged = pull_requests.filter(pl.col("merged_at").is_not_null()).select(
        _week("merged_at"), "team_id", pl.lit(0, pl.Int64).alias("d"), pl.lit(1, pl.Int64).alias("m")
    )
    return (
        pl.concat([delivered, merged])
        .group_by("week", "team_id")
        .agg(pl.col("d").sum().alias("features_delivered"), pl.col("m").sum().alias("prs_merged"))
    )


def deployments_per_day_plan(deployments: pl.LazyFrame) -> pl.LazyFrame:
    """``deployments_per_day`` over the canonical deployments."""
    return (
        deployments.filter(pl.col("finished_at").is_not_null())
        .group_by(pl.col("finished_at").dt.date().alias("day"), "team_id", "environment", "status")
        .agg(pl.len().cast(pl.Int64).alias("deployments"))
    )


def conform_rollup(frame: pl.DataFrame, schema: pl.Schema) -> pl.DataFrame:
    """A roll-up cast to ``schema`` (dates from ISO text where the database returns text) and sorted."""
    columns = []
    for name, dtype in schema.items():
        column = pl.col(name)
        if dtype == pl.Date and frame.schema[name] == pl.String:
            column = column.str.to_date("%Y-%m-%d")
        columns.append(column.cast(dtype))
    keys = [n for n, t in schema.items() if t in (pl.Date, pl.String)]
    return frame.select(columns).sort(keys, nulls_last=True)


def _week(column: str) -> pl.Expr:
    return pl.col(column).dt.truncate("1w").dt.date().alias("week")


# ---------------------------------------------------------------------------------------------
# Day and week truncation, rendered per dialect
# ---------------------------------------------------------------------------------------------


class day_of(FunctionElement[date]):
    """The calendar day of a timestamp, as a date."""

    type = sa.Date()
    inherit_cache = True
    name = "day_of"


class week_of(FunctionElement[date]):
    """The Monday that starts a timestamp's ISO week, as a date."""

    type = sa.Date()
    inherit_cache = True
    name = "week_of"


def _argument(element: FunctionElement[Any]) -> ColumnElement[Any]:
    return next(iter(element.clauses))  # type: ignore[return-value]


@compiles(day_of)
def _day_default(element: day_of, compiler: Any, **kw: Any) -> str:
    return compiler.process(sa.cast(_argument(element), sa.Date), **kw)


@compiles(day_of, "sqlite")
def _day_sqlite(element: day_of, compiler: Any, **kw: Any) -> str:
    return compiler.process(sa.func.date(_argument(element)), **kw)


@compiles(week_of)
def _week_default(element: week_of, compiler: Any, **kw: Any) -> str:
    truncated = sa.func.date_trunc(sa.literal_column("'week'"), _argument(element))
    return compiler.process(sa.cast(truncated, sa.Date), **kw)


@compiles(week_of, "sqlite")
def _week_sqlite(element: week_of, compiler: Any, **kw: Any) -> str:
    modifiers = (sa.literal_column("'weekday 0'"), sa.literal_column("'-6 days'"))
    return compiler.process(sa.func.date(_argument(element), *modifiers), **kw)


@compiles(week_of, "mysql")
@compiles(week_of, "mariadb")
def _week_mysql(element: week_of, compiler: Any, **kw: Any) -> str:
    value = _argument(element)
    return compiler.process(sa.func.subdate(sa.func.date(value), sa.func.weekday(value)), **kw)


@compiles(week_of, "bigquery")
def _week_bigquery(element: week_of, compiler: Any, **kw: Any) -> str:
    return compiler.process(
        sa.func.date_trunc(sa.cast(_argument(element), sa.Date), sa.literal_column("ISOWEEK")), **kw
    )

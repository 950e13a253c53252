"""The canonical model: every entity Throughline knows, as Polars schemas with validation rules.

Importers, the demo generator and the store all speak this model. ``validate`` reports every
problem in a frame (entity, row, column, value, expectation) instead of raising on the first;
``conform`` returns a frame cast to the canonical schema or raises ``ValidationError`` carrying
those problems, so a user always gets a message they can act on, never a traceback.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import polars as pl

from core.model.dates import ISO_DATE, ISO_NAIVE, ISO_ZONED

DATETIME = pl.Datetime("us")
"""Every timestamp is stored as naive UTC with microsecond precision."""

DATE_RANGE = (date(1970, 1, 1), date(2100, 12, 31))
"""The first and last day a date or date-time may fall on (setting ``import.date_range``).

Activity data never predates Unix time nor lies generations ahead; a date outside is a typo or a
hostile file, and a year such as 0 cannot even be written back by Python's ``datetime``.
"""

LEVELS = ("activity", "output", "outcome")
ROLES = ("executive", "delivery_lead", "team_lead", "admin")
COST_SOURCES = ("llm", "ci", "review", "people", "other")


@dataclass(frozen=True)
class Column:
    """One column of an entity: its type and the rules a value must satisfy."""

    name: str
    dtype: pl.DataType
    required: bool = False
    allowed: tuple[str, ...] | None = None
    references: tuple[str, str] | None = None
    minimum: float | None = None
    description: str = ""


@dataclass(frozen=True)
class Entity:
    """A table of the canonical model with its natural key."""

    name: str
    label: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    time_column: str | None = None

    @property
    def schema(self) -> pl.Schema:
        """The Polars schema of a conformed frame of this entity."""
        return pl.Schema({c.name: c.dtype for c in self.columns})

    def column(self, name: str) -> Column:
        """The column called ``name``."""
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(name)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one value (or with the frame as a whole when ``row`` is None)."""

    entity: str
    row: int | None
    column: str
    value: str
    expected: str
    source: str = ""

    def __str__(self) -> str:
        where = f"{self.source}: " if self.source else ""
        row = f"row {self.row}, " if self.row is not None else ""
        value = f"`{self.value}` " if self.value != "" else ""
        return f"{where}{self.entity} {row}column `{self.column}`: {value}{self.expected}"


@dataclass
class ValidationError(Exception):
    """Raised when a frame cannot be conformed; carries every problem found."""

    problems: list[Problem] = field(default_factory=list)
    total: int | None = None
    shown: int = 20

    def __post_init__(self) -> None:
        super().__init__(self.message)

    @property
    def message(self) -> str:
        """The first problems, one a line, with the total counted."""
        total = self.total if self.total is not None else len(self.problems)
        lines = [str(p) for p in self.problems[: self.shown]]
        more = total - len(lines)
        head = f"{total} problem{'s' if total != 1 else ''} found; nothing was written."
        tail = [f"... and {more} more"] if more > 0 else []
        return "\n".join([head, *lines, *tail])


def _c(name: str, dtype: pl.DataType, **rules: object) -> Column:
    return Column(name, dtype, **rules)  # type: ignore[arg-type]


ENTITIES: dict[str, Entity] = {
    e.name: e
    for e in (
        Entity(
            "teams",
            "Teams",
            (
                _c("team_id", pl.String, required=True),
                _c("name", pl.String, required=True),
            ),
            key=("team_id",),
        ),
        Entity(
            "people",
            "People and agents",
            (
                _c("person_id", pl.String, required=True),
                _c("name", pl.String, required=True),
                _c("team_id", pl.String, references=("teams", "team_id")),
                _c("kind", pl.String, required=True, allowed=("human", "agent")),
                _c("hourly_cost", pl.Float64, minimum=0.0, description="loaded cost per hour"),
            ),
            key=("person_id",),
        ),
        Entity(
            "metrics",
            "Metrics",
            (
                _c("metric_id", pl.String, required=True),
                _c("name", pl.String, required=True),
                _c("level", pl.String, required=True, allowed=LEVELS),
                _c("unit", pl.String),
                _c("direction", pl.String, required=True, allowed=("higher", "lower")),
                _c("value_per_unit", pl.Float64, description="money per unit of change"),
                _c("baseline", pl.Float64),
                _c("target", pl.Float64),
                _c("target_date", pl.Date),
                _c("owner", pl.String),
                _c("description", pl.String),
                _c("team_id", pl.String, references=("teams", "team_id")),
            ),
            key=("metric_id",),
        ),
        Entity(
            "capabilities",
            "Capabilities",
            (
                _c("capability_id", pl.String, required=True),
                _c("name", pl.String, required=True),
                _c("metric_id", pl.String, references=("metrics", "metric_id")),
            ),
            key=("capability_id",),
        ),
        Entity(
            "milestones",
            "Milestones",
            (
                _c("milestone_id", pl.String, required=True),
                _c("name", pl.String, required=True),
                _c("date", pl.Date, required=True),
            ),
            key=("milestone_id",),
            time_column="date",
        ),
        Entity(
            "features",
            "Features",
            (
                _c("feature_id", pl.String, required=True),
                _c("name", pl.String, required=True),
                _c("team_id", pl.String, references=("teams", "team_id")),
                _c("capability_id", pl.String, references=("capabilities", "capability_id")),
                _c(
                    "status",
                    pl.String,
                    required=True,
                    allowed=("planned", "in_progress", "delivered", "cancelled"),
                ),
                _c("started_at", DATETIME),
                _c("delivered_at", DATETIME),
                _c("milestone_id", pl.String, references=("milestones", "milestone_id")),
                _c("estimate_cost", pl.Float64, minimum=0.0),
                _c("control_segment", pl.String),
            ),
            key=("feature_id",),
            time_column="delivered_at",
        ),
        Entity(
            "hypotheses",
            "Hypotheses",
            (
                _c("feature_id", pl.String, required=True, references=("features", "feature_id")),
                _c("metric_id", pl.String, required=True, references=("metrics", "metric_id")),
                _c("predicted_change", pl.Float64, required=True),
                _c("change_kind", pl.String, required=True, allowed=("relative", "absolute")),
                _c("lag_days", pl.Int64, minimum=0),
                _c("window_days", pl.Int64, required=True, minimum=1),
                _c(
                    "min_meaningful_change",
                    pl.Float64,
                    minimum=0.0,
                    description="smallest change that matters, in the prediction's kind (default: half of it)",
                ),
                _c("rationale", pl.String),
                _c("created_at", DATETIME, required=True),
            ),
            key=("feature_id",),
        ),
        Entity(
            "work_items",
            "Work items",
            (
                _c("work_item_key", pl.String, required=True),
                _c("title", pl.String),
                _c("feature_id", pl.String, references=("features", "feature_id")),
                _c("team_id", pl.String, references=("teams", "team_id")),
                _c("type", pl.String),
                _c("status", pl.String),
                _c("story_points", pl.Float64, minimum=0.0),
                _c("assignee_id", pl.String, references=("people", "person_id")),
                _c("created_at", DATETIME),
                _c("started_at", DATETIME),
                _c("resolved_at", DATETIME),
            ),
            key=("work_item_key",),
            time_column="created_at",
        ),
        Entity(
            "pull_requests",
            "Pull requests",
            (
                _c("pr_id", pl.String, required=True, description="repo#number"),
                _c("repo", pl.String, required=True),
                _c("number", pl.Int64),
                _c("title", pl.String),
                _c("branch", pl.String),
                _c("author_id", pl.String, references=("people", "person_id")),
                _c("author_kind", pl.String, required=True, allowed=("human", "agent")),
                _c("team_id", pl.String, references=("teams", "team_id")),
                _c("feature_id", pl.String, references=("features", "feature_id")),
                _c("work_item_key", pl.String),
                _c("state", pl.String, required=True, allowed=("open", "merged", "closed")),
                _c("created_at", DATETIME, required=True),
                _c("first_commit_at", DATETIME),
                _c("first_review_at", DATETIME),
                _c("merged_at", DATETIME),
                _c("additions", pl.Int64, minimum=0),
                _c("deletions", pl.Int64, minimum=0),
                _c("reviews", pl.Int64, minimum=0),
                _c("merge_commit_sha", pl.String),
                _c("deployment_id", pl.String, description="deployment that shipped it"),
            ),
            key=("pr_id",),
            time_column="created_at",
        ),
        Entity(
            "deployments",
            "Deployments",
            (
                _c("deployment_id", pl.String, required=True),
                _c("pipeline_id", pl.String, description="the deployment run this row is one repo of; counted once"),
                _c("service", pl.String),
                _c("repo", pl.String),
                _c("team_id", pl.String, references=("teams", "team_id")),
                _c("environment", pl.String, required=True),
                _c("status", pl.String, required=True, allowed=("success", "failure")),
                _c("started_at", DATETIME),
                _c("finished_at", DATETIME, required=True),
                _c("commit_sha", pl.String),
            ),
            key=("deployment_id",),
            time_column="finished_at",
        ),
        Entity(
            "incidents",
            "Incidents",
            (
                _c("incident_id", pl.String, required=True),
                _c("title", pl.String),
                _c("service", pl.String),
                _c("team_id", pl.String, references=("teams", "team_id")),
                _c("severity", pl.String),
                _c("opened_at", DATETIME, required=True),
                _c("resolved_at", DATETIME),
                _c("deployment_id", pl.String, description="explicitly linked deployment"),
            ),
            key=("incident_id",),
            time_column="opened_at",
        ),
        Entity(
            "cost_events",
            "Cost events",
            (
                _c("event_id", pl.String, required=True),
                _c("occurred_at", DATETIME, required=True),
                _c("source", pl.String, required=True, allowed=COST_SOURCES),
                _c("amount", pl.Float64, minimum=0.0, description="money; empty when only a quantity is known"),
                _c("currency", pl.String),
                _c("quantity", pl.Float64, minimum=0.0),
                _c("unit", pl.String, description="tokens, minutes, hours ..."),
                _c("detail", pl.String, description="model, runner type or line item"),
                _c("person_id", pl.String, references=("people", "person_id")),
                _c("team_id", pl.String, references=("teams", "team_id")),
                _c("feature_id", pl.String, references=("features", "feature_id")),
                _c("pr_id", pl.String),
                _c("work_item_key", pl.String),
                _c("repo", pl.String),
                _c("branch", pl.String),
                _c(
                    "account_key",
                    pl.String,
                    description="the provider's most specific account identifier: API key, CI user",
                ),
                _c(
                    "account_scope",
                    pl.String,
                    description="the provider's broader account: workspace, project, repository",
                ),
            ),
            key=("event_id",),
            time_column="occurred_at",
        ),
        Entity(
            "cost_keys",
            "Cost account keys",
            (
                _c("key", pl.String, required=True, description="an account_key or account_scope of cost events"),
                _c("team_id", pl.String, references=("teams", "team_id")),
                _c("person_id", pl.String, references=("people", "person_id")),
                _c("feature_id", pl.String, references=("features", "feature_id")),
            ),
            key=("key",),
        ),
        Entity(
            "metric_observations",
            "Metric observations",
            (
                _c("metric_id", pl.String, required=True, references=("metrics", "metric_id")),
                _c("date", pl.Date, required=True),
                _c("segment", pl.String, required=True, description="'all' when unsegmented"),
                _c("value", pl.Float64, required=True),
            ),
            key=("metric_id", "date", "segment"),
            time_column="date",
        ),
    )
}
"""Every entity in dependency order: an entity only references entities listed before it."""


def validate(
    entity: str,
    frame: pl.DataFrame,
    known: Mapping[str, pl.DataFrame] | None = None,
    source: str = "",
    date_range: tuple[date, date] = DATE_RANGE,
) -> list[Problem]:
    """Every problem in ``frame`` as an instance of ``entity``; empty when it conforms.

    ``known`` holds frames of other entities (already stored or imported together) that
    references may resolve to. Rows are numbered from 1 as a user counts data rows. Numbers
    must be finite, and dates fall within ``date_range`` (first and last day, inclusive).
    """
    spec = ENTITIES[entity]
    problems: list[Problem] = []
    present = set(frame.columns)
    for col in spec.columns:
        if col.required and col.name not in present:
            problems.append(Problem(entity, None, col.name, "", "is a required column and is missing", source))
    if problems:
        return problems

    indexed = frame.with_row_index("__row", offset=1)
    cast = _cast_columns(spec, indexed)
    for col in spec.columns:
        if col.name not in present:
            continue
        raw, typed = pl.col(col.name), pl.col(f"__typed_{col.name}")
        checks: list[tuple[pl.Expr, str]] = [
            (raw.is_not_null() & typed.is_null() & _non_blank(raw), _type_phrase(col.dtype)),
        ]
        if col.required:
            checks.append((typed.is_null() & ~(raw.is_not_null() & _non_blank(raw)), "is required"))
        if col.allowed:
            checks.append(
                (
                    typed.is_not_null() & ~typed.is_in(list(col.allowed)),
                    "is not one of " + ", ".join(col.allowed),
                )
            )
        if col.dtype == pl.Float64:
            checks.append((typed.is_not_null() & ~typed.is_finite(), "is not a finite number"))
        if col.minimum is not None:
            below = typed.is_not_null() & (typed < col.minimum) & (typed > -math.inf)
            checks.append((below, f"is below the minimum {col.minimum:g}"))
        if col.dtype in (DATETIME, pl.Date):
            checks.append((typed.is_not_null() & _outside(typed, col.dtype, date_range), _range_phrase(date_range)))
        for condition, expected in checks:
            bad = cast.filter(condition).select("__row", raw.cast(pl.String).alias("v"))
            problems.extend(
                Problem(entity, row, col.name, "" if v is None else v, expected, source)
                for row, v in bad.head(1000).rows()
            )

    problems.extend(_one_target_problems(entity, cast, present, source))
    key_cols = [f"__typed_{k}" for k in spec.key]
    duplicated = cast.filter(
        pl.struct(key_cols).is_duplicated() & pl.all_horizontal([pl.col(k).is_not_null() for k in key_cols])
    )
    if duplicated.height:
        label = ", ".join(spec.key)
        firsts = duplicated.select("__row", pl.concat_str(key_cols, separator=", ").alias("v"))
        problems.extend(
            Problem(entity, row, label, v, f"repeats the key ({label}) of another row", source)
            for row, v in firsts.head(1000).rows()
        )

    for col in spec.columns:
        if col.references is None or col.name not in present:
            continue
        ref_entity, ref_col = col.references
        pool = _reference_pool(ref_entity, ref_col, entity, cast, known)
        if pool is None:
            continue
        typed = pl.col(f"__typed_{col.name}")
        dangling = cast.filter(typed.is_not_null() & ~typed.is_in(pool.implode())).select("__row", typed.alias("v"))
        problems.extend(
            Problem(entity, row, col.name, v, f"does not match any {ref_entity}.{ref_col}", source)
            for row, v in dangling.head(1000).rows()
        )
    return sorted(problems, key=lambda p: (p.row or 0, p.column))


_ONE_TARGET = {"cost_keys": ("team_id", "person_id", "feature_id")}
"""Entities whose rows must set exactly one of these columns (a key maps to one team, person or feature)."""


def _one_target_problems(entity: str, cast: pl.DataFrame, present: set[str], source: str) -> list[Problem]:
    """A problem for each row of ``entity`` that sets none or several of its ``_ONE_TARGET`` columns."""
    if entity not in _ONE_TARGET:
        return []
    targets = [pl.col(f"__typed_{c}") for c in _ONE_TARGET[entity] if c in present] or [pl.lit(None, pl.String)]
    count = pl.sum_horizontal([t.is_not_null().cast(pl.Int32) for t in targets])
    label = ", ".join(_ONE_TARGET[entity])
    bad = cast.filter(count != 1).select(
        "__row", pl.concat_str(targets, separator=", ", ignore_nulls=True).alias("__value"), count.alias("__count")
    )
    return [
        Problem(entity, row, label, value or "", _ONE_TARGET_MISSES[min(n, 2)], source)
        for row, value, n in bad.head(1000).rows()
    ]


_ONE_TARGET_MISSES = {
    0: "maps to none of a team, a person or a feature; set exactly one",
    2: "maps to more than one of a team, a person or a feature; set exactly one",
}


def conform(
    entity: str,
    frame: pl.DataFrame,
    known: Mapping[str, pl.DataFrame] | None = None,
    source: str = "",
) -> pl.DataFrame:
    """``frame`` cast to the canonical schema of ``entity``, or ``ValidationError``."""
    problems = validate(entity, frame, known, source)
    if problems:
        raise ValidationError(problems)
    return coerce(entity, frame)


def coerce(entity: str, frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` cast to the canonical schema without checks; unknown columns dropped."""
    spec = ENTITIES[entity]
    cast = _cast_columns(spec, frame)
    return cast.select(
        [
            pl.col(f"__typed_{c.name}").alias(c.name)
            if c.name in frame.columns
            else pl.repeat(None, frame.height, dtype=c.dtype).alias(c.name)
            for c in spec.columns
        ]
    )


def empty(entity: str) -> pl.DataFrame:
    """An empty frame of ``entity`` with its canonical schema."""
    return pl.DataFrame(schema=ENTITIES[entity].schema)


def parse_datetime(expr: pl.Expr) -> pl.Expr:
    """Strings in the common ISO shapes (with or without zone) as naive UTC datetimes."""
    text = expr.str.strip_chars()
    zoned, naive = ISO_ZONED, (*ISO_NAIVE, ISO_DATE)
    normalised = text.str.replace(r"Z$", "+00:00")
    candidates = [
        normalised.str.to_datetime(f, strict=False, time_unit="us", time_zone="UTC").dt.replace_time_zone(None)
        for f in zoned
    ] + [text.str.to_datetime(f, strict=False, time_unit="us") for f in naive]
    return pl.coalesce(candidates)


def _cast_columns(spec: Entity, frame: pl.DataFrame) -> pl.DataFrame:
    exprs = []
    for col in spec.columns:
        if col.name not in frame.columns:
            continue
        typed = f"__typed_{col.name}"
        uniform = _uniform_datetimes(frame[col.name]) if col.dtype in (DATETIME, pl.Date) else None
        if uniform is not None:
            exprs.append(pl.lit(uniform if col.dtype == DATETIME else uniform.dt.date()).alias(typed))
        else:
            exprs.append(_cast(pl.col(col.name), frame.schema[col.name], col.dtype).alias(typed))
    return frame.with_columns(exprs)


_COMMON_SHAPES = ("%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f", ISO_DATE)


def _uniform_datetimes(values: pl.Series) -> pl.Series | None:
    """The column parsed in one pass when every value has the same common ISO shape (the usual case).

    Trying each shape of ``parse_datetime`` on every value is what makes a million-row import slow;
    a column written in one shape, as importers write them, needs only that one.
    """
    if values.dtype != pl.String or values.len() == 0:
        return None
    text = values.str.strip_chars()
    present = text.is_not_null() & (text != "")
    for shape in _COMMON_SHAPES:
        parsed = text.str.to_datetime(shape, strict=False, time_unit="us")
        if (parsed.is_not_null() == present).all():
            return parsed
    return None


def _cast(expr: pl.Expr, source: pl.DataType, target: pl.DataType) -> pl.Expr:
    if source == target:
        return expr
    if source == pl.String:
        text = expr.str.strip_chars()
        blank_to_null = pl.when(text == "").then(None).otherwise(text)
        if target == DATETIME:
            return parse_datetime(blank_to_null)
        if target == pl.Date:
            return parse_datetime(blank_to_null).dt.date()
        if target == pl.String:
            return expr
        return blank_to_null.cast(target, strict=False)
    if source == pl.Null:
        return expr.cast(target)
    if target == pl.Date and isinstance(source, pl.Datetime):
        return expr.dt.date()
    if target == DATETIME and isinstance(source, pl.Datetime):
        if source.time_zone is not None:  # type: ignore[attr-defined]
            expr = expr.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
        return expr.dt.cast_time_unit("us")
    if target == DATETIME and source == pl.Date:
        return expr.cast(DATETIME)
    if target == pl.String:
        return expr.cast(pl.String)
    if target == pl.Int64 and source.is_float():
        return pl.when(expr == expr.round(0)).then(expr).otherwise(None).cast(pl.Int64, strict=False)
    return expr.cast(target, strict=False)


def _outside(typed: pl.Expr, dtype: pl.DataType, date_range: tuple[date, date]) -> pl.Expr:
    """True where a date or date-time falls before the first or after the last day of ``date_range``."""
    first, last = date_range
    if dtype == pl.Date:
        return (typed < first) | (typed > last)
    end = datetime.combine(last, datetime.min.time()) + timedelta(days=1)
    return (typed < datetime.combine(first, datetime.min.time())) | (typed >= end)


def _range_phrase(date_range: tuple[date, date]) -> str:
    first, last = date_range
    return f"is outside the accepted dates {first.isoformat()} to {last.isoformat()} (setting `import.date_range`)"


def _non_blank(raw: pl.Expr) -> pl.Expr:
    return raw.cast(pl.String).str.strip_chars() != ""


def _type_phrase(dtype: pl.DataType) -> str:
    if dtype == DATETIME:
        return "is not a date-time (expected e.g. 2026-02-15 16:51 or ISO 8601)"
    if dtype == pl.Date:
        return "is not a date (expected YYYY-MM-DD)"
    if dtype == pl.Int64:
        return "is not a whole number"
    if dtype == pl.Float64:
        return "is not a number"
    return f"is not a {dtype}"


def _reference_pool(
    ref_entity: str,
    ref_col: str,
    entity: str,
    cast: pl.DataFrame,
    known: Mapping[str, pl.DataFrame] | None,
) -> pl.Series | None:
    pools: list[pl.Series] = []
    if ref_entity == entity:
        pools.append(cast[f"__typed_{ref_col}"])
    if known is not None and ref_entity in known and ref_col in known[ref_entity].columns:
        pools.append(known[ref_entity][ref_col].cast(pl.String))
    if not pools:
        return None
    return pl.concat(pools).unique()

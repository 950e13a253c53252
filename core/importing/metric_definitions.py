"""Metrics an observations file names that the workspace does not define, and their definitions guessed from the name.

:func:`unknown_metrics` reads them off a plan's problems; :func:`proposed_metric` guesses level,
unit and direction from the words of the name (the guesses are the rows of :data:`NAME_RULES`);
:func:`define_metrics` stores the definitions as one undoable import, so the observations
import that named them can run next.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from core.importing.history import ImportRecord, run_import
from core.importing.plan import ImportPlan, plan_import
from core.store.database import Store

UNKNOWN_METRIC = "does not match any metrics.metric_id"
"""The problem an observation row has when its metric is not defined."""

METRIC_COLUMNS = ("metric_id", "name", "level", "unit", "direction")
"""The columns a metric definition sets (the rest of the metrics entity stays empty)."""


@dataclass(frozen=True)
class MetricDefinition:
    """One metric to define: its id, display name, level, unit and which direction is better."""

    metric_id: str
    name: str
    level: str = "outcome"
    unit: str = ""
    direction: str = "higher"


@dataclass(frozen=True)
class NameRule:
    """A word in a metric's name that says something about it: which field it sets to what."""

    words: frozenset[str]
    field: str
    value: str


def _rule(field: str, value: str, words: str) -> NameRule:
    return NameRule(frozenset(words.split()), field, value)


NAME_RULES: tuple[NameRule, ...] = (
    _rule("unit", "%", "rate conversion ratio share percent pct percentage churn retention activation adoption"),
    _rule("unit", "ms", "ms milliseconds"),
    _rule("unit", "s", "seconds secs latency duration"),
    _rule("unit", "min", "minutes mins"),
    _rule("unit", "money", "revenue arr mrr gmv spend cost price aov"),
    _rule("unit", "count", "count users signups orders sessions visits tickets incidents errors"),
    _rule("direction", "lower", "churn latency duration error errors incidents bounce abandonment abandoned"),
    _rule("direction", "lower", "cost spend defects tickets complaints wait failures failed refunds time"),
    _rule("level", "activity", "clicks views visits sessions opens logins pageviews"),
    _rule("level", "output", "releases deploys deployments shipped launched published"),
)
"""Words of a metric's name and what each says; the first rule matching a field wins; else outcome, no unit, higher."""


def unknown_metrics(plan: ImportPlan) -> list[str]:
    """The metric names the plan's observations use that no stored metric has, in file order."""
    seen = {
        p.value: None
        for p in plan.problems
        if p.entity == "metric_observations" and p.column == "metric_id" and p.expected == UNKNOWN_METRIC
    }
    return [str(name) for name in seen]


def proposed_metric(name: str) -> MetricDefinition:
    """The definition guessed from ``name``: ``checkout_conversion_rate`` is an outcome in %, higher is better."""
    words = [w for w in re.split(r"[^0-9a-z]+", name.casefold()) if w]
    fields: dict[str, str] = {}
    for rule in NAME_RULES:
        if rule.field not in fields and rule.words.intersection(words):
            fields[rule.field] = rule.value
    return MetricDefinition(metric_id=metric_id_of(name), name=display_name(name), **fields)


def metric_id_of(name: str) -> str:
    """A name's metric id: lower case, words joined by ``_`` (``Checkout conversion``: ``checkout_conversion``)."""
    return "_".join(w for w in re.split(r"[^0-9a-z]+", name.casefold()) if w) or name.strip()


def display_name(name: str) -> str:
    """The name as written when it reads as a name, else the id's words (``checkout_rate`` → ``Checkout rate``)."""
    stripped = name.strip()
    if " " in stripped or stripped != stripped.lower():
        return stripped
    words = " ".join(w for w in re.split(r"[_\-.]+", stripped) if w)
    return words[:1].upper() + words[1:]


def metrics_csv(definitions: Sequence[MetricDefinition]) -> str:
    """The definitions as a metrics CSV that ``python -m core import FILE --entity metrics`` reads."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(METRIC_COLUMNS)
    for d in definitions:
        writer.writerow([getattr(d, column) for column in METRIC_COLUMNS])
    return out.getvalue()


def define_metrics(
    store: Store,
    definitions: Sequence[MetricDefinition],
    actor: str,
    progress: Callable[[int, int], None] | None = None,
) -> ImportRecord:
    """Store the definitions as one import (undoable); ``ImportFailed`` naming row, column and value when one is bad."""
    text = metrics_csv(definitions).encode()
    plan = plan_import(text, "metric definitions", entity="metrics", store=store)
    return run_import(store, plan, actor, progress)

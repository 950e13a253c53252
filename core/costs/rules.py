"""The attribution rules as one table: their order of trust, the keys each reads and how it explains a line.

Every engine in ``core.costs.attribution`` (per-event lines, the grouped roll-up, the unreached
events, a feature's drill-down candidates) walks ``RULE_TABLE``; adding a rule is one entry here
plus its tests. A rule is a sequence of steps tried in order: a ``Link`` step looks the event's
key up and reaches one feature; a ``Split`` step finds the key's feature-linked activity that
week and shares the money over those features by weight.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

from core.costs.pricing import CIRCLECI_CREDIT, ModelPrice, ci_rate_rows, model_price_rows, model_prices_with


@dataclass(frozen=True)
class Link:
    """A step that reaches one feature: the event column it reads, the table it looks in, the link text."""

    column: str
    table: str
    """``features`` (a known feature id), ``pull_requests`` (a PR's feature) or ``work_items`` (a key's feature)."""
    found: str
    """The flag column kept for explanations: true when the key was found in ``table`` at all."""


@dataclass(frozen=True)
class Split:
    """A step that shares the money over the features active that week: the activity kind and the event column."""

    kind: str
    """``person``, ``repo`` or ``team``: which activity of ``core.costs.attribution.feature_activity``."""
    column: str


@dataclass(frozen=True)
class Rule:
    """One attribution rule: its order of trust, its name, the event keys it reads, its steps and its explanation."""

    order: int
    name: str
    keys: tuple[str, ...]
    steps: tuple[Link | Split, ...]
    explanation: str


RULE_TABLE: tuple[Rule, ...] = (
    Rule(
        1,
        "direct",
        ("feature_id",),
        (Link("feature_id", "features", "feature_found"),),
        "explicit feature on the event",
    ),
    Rule(2, "pull_request", ("pr_id",), (Link("pr_id", "pull_requests", "pr_found"),), "the event's PR → its feature"),
    Rule(
        3,
        "work_item",
        ("work_item_key", "branch"),
        (Link("work_item_key", "work_items", "wi_found"), Link("branch_key", "work_items", "bk_found")),
        "the event's work-item key → its feature",
    ),
    Rule(
        4,
        "account_key",
        ("account_key", "account_scope"),
        (
            Link("key_feature_id", "features", "key_found"),
            Split("person", "key_person_id"),
            Split("team", "key_team_id"),
        ),
        "the event's account key (else scope) → the feature, person or team it is mapped to",
    ),
    Rule(
        5,
        "time_allocation",
        ("person_id",),
        (Split("person", "person_id"),),
        "person or agent time split by their weekly activity",
    ),
    Rule(
        6,
        "repo_activity",
        ("repo", "team_id"),
        (Split("repo", "repo"), Split("team", "team_id")),
        "repository or team cost split by features active that week",
    ),
)
"""Every attribution rule in order of trust: an event goes by the first step of the first enabled rule that reaches."""

RULES: tuple[str, ...] = tuple(rule.name for rule in RULE_TABLE)
"""The attribution rules' names in order of trust."""

RULE_LABELS: dict[str, str] = {rule.name: rule.explanation for rule in RULE_TABLE}
"""What each rule does, in words for a caption."""


@dataclass(frozen=True)
class CostSettings:
    """Rates that turn quantities into money, and which attribution rules are on.

    ``model_prices``, ``ci_rates`` and ``circleci_credit_price`` are the one price table
    (``core.costs.pricing``) as rows; a saved setting overrides the entries it lists and leaves the
    others as the table has them. Importers and attribution both price from this one setting.
    """

    GROUP: ClassVar[str] = "cost"
    """The name these settings are kept under in the workspace."""

    ci_rates: tuple[tuple[str, float], ...] = ci_rate_rows()
    model_prices: tuple[tuple[str, float, float], ...] = model_price_rows()
    circleci_credit_price: float = CIRCLECI_CREDIT.price
    input_token_share: float = 0.75
    rules: tuple[str, ...] = RULES
    currency: str = "USD"

    def __post_init__(self) -> None:
        unknown = [r for r in self.rules if r not in RULES]
        if unknown:
            raise ValueError(f"unknown attribution rule {unknown[0]!r}; known rules: {', '.join(RULES)}")
        if not 0.0 <= self.input_token_share <= 1.0:
            raise ValueError("input_token_share must be between 0 and 1")
        if not self.circleci_credit_price >= 0.0:
            raise ValueError(f"the CircleCI credit price must be 0 or more, not {self.circleci_credit_price!r}")

    def without(self, *rules: str) -> CostSettings:
        """These settings with ``rules`` switched off."""
        return replace(self, rules=tuple(r for r in self.rules if r not in rules))

    @property
    def rules_on(self) -> str:
        """The enabled rules in order of trust, as a sentence for a caption."""
        if not self.rules:
            return "no attribution rule is on"
        return "; ".join(f"{i}. {RULE_LABELS[r]}" for i, r in enumerate(RULES, start=1) if r in self.rules)

    @property
    def model_price_table(self) -> tuple[tuple[str, float, float], ...]:
        """The one model price table with this setting's entries overriding it."""
        return model_price_rows(self.model_prices)

    @property
    def model_price_map(self) -> dict[str, ModelPrice]:
        """The one model price table with this setting's entries overriding it, with cache prices (importers)."""
        return model_prices_with(self.model_prices)

    def enabled(self) -> tuple[Rule, ...]:
        """The rules of ``RULE_TABLE`` that are on, in order of trust."""
        return tuple(rule for rule in RULE_TABLE if rule.name in self.rules)


DEFAULT_SETTINGS = CostSettings()

"""The demo organisation: a deterministic two-year history of a mid-sized fintech engineering org.

``generate_demo`` builds every entity of the canonical model from a seed: six teams, people and
AI agents, outcome metrics with daily observations, capabilities, features with hypotheses, work
items, pull requests, deployments, incidents and cost events from every source. Everything is
vectorised with numpy and Polars (loops run over teams, repos, metrics and features only), so
``scale=50`` yields about a million pull requests for benchmarks.

With ``planted=True`` the history carries patterns the analytics must find, recorded as truth:
step changes in outcome metrics caused by some delivered features (``Demo.planted_effects``),
features still inside their judging window, pairs of features confounding each other, and one
team (Growth) whose activity climbs quarter over quarter while the value it delivers does not.
With ``planted=False`` the organisation is in a steady state: a false-positive check.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np
import polars as pl
import pyarrow as pa
from scipy.special import ndtri

from core.model.schema import DATETIME, ENTITIES, coerce

DEMO_END: date = date(2026, 11, 15)
"""The day the demo history ends; fixed so the demo is deterministic."""

HISTORY_DAYS = 730
"""Length of the history: two years before ``end`` (timestamps are day offsets in [0, 730])."""


@dataclass(frozen=True)
class Demo:
    """A generated organisation: its frames and the truth planted in them.

    ``frames`` holds every entity of ``core.model.schema.ENTITIES``, conformed. ``planted_effects`` has
    one row per feature: feature_id, metric_id (its capability's outcome metric) and true_effect,
    the relative step its delivery planted in that metric's 'all' segment (0.0 when none).
    ``high_activity_team`` is the team planted with rising activity and flat value (None when
    nothing is planted).
    """

    frames: dict[str, pl.DataFrame]
    planted_effects: pl.DataFrame
    high_activity_team: str | None


def generate_demo(
    seed: int = 7,
    scale: float = 1.0,
    end: date = DEMO_END,
    planted: bool = True,
    cost_event_scale: float = 1.0,
    feature_scale: float | None = None,
    work_item_scale: float | None = None,
    deployment_scale: float | None = None,
) -> Demo:
    """The demo organisation for ``seed`` and ``scale``, its history ending at midnight on ``end``.

    Every frame conforms to ``core.model.schema`` and every reference resolves. ``scale`` multiplies
    features (capped at 20,000), work items, pull requests, deployments, incidents and cost events;
    teams, people and metrics stay as they are. Above scale 1, predicted and planted effects shrink
    by ``1 / scale`` so that many more features still leave the metrics at realistic levels.
    ``cost_event_scale`` multiplies the per-PR cost events (LLM sessions, CI runs, reviews) on top of
    ``scale``, for benchmarks that need more cost events per pull request; 1.0 leaves the demo as it is.
    ``feature_scale``, ``work_item_scale`` and ``deployment_scale`` replace ``scale`` for features
    (with the shrinking of their effects), work items, and deployments with their incidents, so a
    benchmark can set each entity's count on its own; None (the default) uses ``scale``.
    """
    feature_scale = scale if feature_scale is None else feature_scale
    work_item_scale = scale if work_item_scale is None else work_item_scale
    deployment_scale = scale if deployment_scale is None else deployment_scale
    for name, value in (
        ("scale", scale),
        ("cost_event_scale", cost_event_scale),
        ("feature_scale", feature_scale),
        ("work_item_scale", work_item_scale),
        ("deployment_scale", deployment_scale),
    ):
        if value <= 0:
            raise ValueError(f"{name} must be positive")
    rng = np.random.default_rng(seed)
    clock = _Clock(end)
    people = _people(rng)
    milestones = _milestones(rng, clock)
    plan = _plan_features(rng, feature_scale, planted)
    items = _work_items(rng, plan, people, work_item_scale, clock, planted)
    prs = _pull_requests(rng, items, people, scale, clock, planted)
    deployments, prs = _deployments(rng, prs, deployment_scale, clock, planted)
    hypotheses = _hypotheses_frame(rng, plan)
    raw = {
        "teams": pl.DataFrame({"team_id": _TEAM_IDS, "name": [name for _, name in _TEAMS]}),
        "people": people,
        "metrics": _metrics(),
        "capabilities": _capabilities_frame(),
        "milestones": milestones,
        "features": _features_frame(rng, plan, clock, milestones),
        "hypotheses": hypotheses.with_columns(clock.timestamps(hypotheses["_created"].to_numpy()).alias("created_at")),
        "work_items": items.with_columns(
            clock.timestamps(items[f"_{c}"].to_numpy()).alias(f"{c}_at") for c in ("created", "started", "resolved")
        ),
        "pull_requests": prs,
        "deployments": deployments,
        "incidents": _incidents(rng, deployments, deployment_scale, clock),
        "cost_events": _cost_events(rng, prs, people, plan, items, clock, cost_event_scale),
        "metric_observations": _observations(rng, clock, plan, planted),
        "cost_keys": _cost_keys(),
    }
    frames = {name: coerce(name, raw[name]) for name in ENTITIES}
    effects = pl.DataFrame(
        {"feature_id": plan.ids, "metric_id": plan.metric, "true_effect": plan.effect},
        schema={"feature_id": pl.String, "metric_id": pl.String, "true_effect": pl.Float64},
    )
    return Demo(frames=frames, planted_effects=effects, high_activity_team=GROWTH if planted else None)


# --- The organisation's fixed shape -------------------------------------------------------------

GROWTH = "GRO"
_TEAMS = (
    ("PAY", "Payments"),
    ("ONB", "Onboarding"),
    ("SRCH", "Search"),
    ("MOB", "Mobile"),
    ("PLAT", "Platform"),
    ("GRO", "Growth"),
)
_TEAM_IDS = tuple(t for t, _ in _TEAMS)
_HUMANS_PER_TEAM = (12, 11, 8, 10, 10, 9)
_ORG = "acme"
_REPOS: dict[str, tuple[str, ...]] = {
    "PAY": ("payments-api", "payouts-service", "checkout-web"),
    "ONB": ("onboarding-web", "kyc-service", "mortgage-engine"),
    "SRCH": ("search-api", "help-centre"),
    "MOB": ("mobile-ios", "mobile-android"),
    "PLAT": ("platform-infra", "api-gateway", "ledger-core"),
    "GRO": ("growth-web", "experiments-service"),
}
_AGENTS = (
    ("copilot-swe-agent[bot]", "copilot/", ("gpt-4.1", "claude-sonnet-4")),
    ("claude[bot]", "claude/", ("claude-sonnet-4", "claude-opus-4")),
    ("devin-ai-integration[bot]", "devin/", ("gpt-4.1", "claude-sonnet-4")),
    ("cursor[bot]", "cursor/", ("claude-sonnet-4", "gpt-4.1-mini")),
)
_AGENT_WEIGHTS = np.array([0.45, 0.25, 0.15, 0.15])
_LLM_PRICE_PER_MTOK = {
    "gpt-4.1": 4.0,
    "gpt-4.1-mini": 0.8,
    "claude-sonnet-4": 6.0,
    "claude-opus-4": 30.0,
}
_FIRST_NAMES = (
    "Aisha",
    "Ben",
    "Carla",
    "Dev",
    "Elena",
    "Farid",
    "Grace",
    "Hiro",
    "Ines",
    "Jonas",
    "Kemi",
    "Liam",
    "Maya",
    "Nikhil",
    "Olga",
    "Pablo",
    "Quinn",
    "Rosa",
    "Sami",
    "Tara",
    "Umar",
    "Vera",
    "Wei",
    "Ximena",
    "Yusuf",
    "Zoe",
    "Amara",
    "Bruno",
    "Chloe",
    "Diego",
)
_LAST_NAMES = (
    "Adeyemi",
    "Bauer",
    "Chen",
    "Dubois",
    "Evans",
    "Fischer",
    "Garcia",
    "Haddad",
    "Ivanova",
    "Jensen",
    "Kowalski",
    "Lindqvist",
    "Moreau",
    "Novak",
    "Okafor",
    "Patel",
    "Quintero",
    "Rossi",
    "Sato",
    "Turner",
    "Ueda",
    "Varga",
    "Walsh",
    "Xu",
    "Yilmaz",
    "Zhang",
)


@dataclass(frozen=True)
class _MetricSpec:
    metric_id: str
    name: str
    level: str
    unit: str
    direction: str
    value_per_unit: float | None
    baseline: float
    target: float
    target_date: date
    owner: str
    team_id: str
    description: str
    typical_change: float
    trend_per_year: float
    weekend_factor: float
    noise: float
    decimals: int
    control: bool = False


_METRICS = (
    _MetricSpec(
        "mortgage_application_days",
        "Mortgage application time",
        "outcome",
        "days",
        "lower",
        40_000.0,
        14.0,
        3.0,
        date(2027, 6, 30),
        "Head of Lending",
        "ONB",
        "Days from a mortgage application being started to a decision; money value per day saved per year.",
        -0.12,
        0.0,
        1.05,
        0.025,
        2,
    ),
    _MetricSpec(
        "activation_rate",
        "Activation rate",
        "outcome",
        "%",
        "higher",
        60_000.0,
        38.0,
        45.0,
        date(2027, 3, 31),
        "VP Growth",
        "GRO",
        "Share of sign-ups who complete a first transaction within 7 days; 'control' is a holdout market.",
        0.05,
        0.01,
        0.95,
        0.015,
        2,
        True,
    ),
    _MetricSpec(
        "checkout_conversion",
        "Checkout conversion",
        "outcome",
        "%",
        "higher",
        180_000.0,
        3.2,
        3.8,
        date(2026, 12, 31),
        "Head of Payments",
        "PAY",
        "Share of checkout sessions ending in a payment; 'control' is the legacy web checkout holdout.",
        0.04,
        -0.02,
        1.06,
        0.015,
        3,
        True,
    ),
    _MetricSpec(
        "support_tickets_weekly",
        "Support tickets per week",
        "outcome",
        "tickets/week",
        "lower",
        1_200.0,
        1200.0,
        800.0,
        date(2027, 3, 31),
        "Head of Customer Operations",
        "SRCH",
        "Failure demand: customer support tickets, as a weekly rate measured daily.",
        -0.08,
        0.06,
        0.6,
        0.03,
        0,
    ),
    _MetricSpec(
        "retention_30d",
        "30-day retention",
        "outcome",
        "%",
        "higher",
        95_000.0,
        62.0,
        70.0,
        date(2027, 6, 30),
        "VP Product",
        "MOB",
        "Share of customers active 30 days after their first transaction.",
        0.03,
        0.005,
        0.99,
        0.01,
        2,
    ),
    _MetricSpec(
        "cost_per_transaction",
        "Cost per transaction",
        "outcome",
        "USD",
        "lower",
        2_500_000.0,
        0.42,
        0.30,
        date(2027, 6, 30),
        "CFO",
        "PLAT",
        "Processing and infrastructure cost per payment; money value per USD saved across a year's volume.",
        -0.06,
        -0.01,
        1.08,
        0.015,
        4,
    ),
    _MetricSpec(
        "search_success_rate",
        "Search success rate",
        "outcome",
        "%",
        "higher",
        None,
        71.0,
        80.0,
        date(2026, 12, 31),
        "Head of Search",
        "SRCH",
        "Share of searches followed by a click on a result within 30 seconds.",
        0.04,
        0.0,
        1.01,
        0.012,
        2,
    ),
    _MetricSpec(
        "growth_experiments_weekly",
        "Growth experiments launched per week",
        "activity",
        "experiments/week",
        "higher",
        None,
        4.0,
        12.0,
        date(2026, 12, 31),
        "Growth lead",
        "GRO",
        "Experiments switched on in the experimentation platform, as a weekly rate.",
        0.0,
        0.0,
        0.5,
        0.08,
        1,
    ),
    _MetricSpec(
        "lead_time_hours",
        "Lead time for changes",
        "output",
        "hours",
        "lower",
        None,
        30.0,
        12.0,
        date(2027, 3, 31),
        "Head of Platform",
        "PLAT",
        "Median hours from first commit to running in production.",
        0.0,
        -0.1,
        1.3,
        0.06,
        1,
    ),
)
_OUTCOMES = tuple(m for m in _METRICS if m.level == "outcome")
_METRIC_BY_ID = {m.metric_id: m for m in _METRICS}


@dataclass(frozen=True)
class _Capability:
    capability_id: str
    name: str
    team_id: str
    metric_id: str
    features: tuple[str, ...]
    rationale: str


_CAPABILITIES = (
    _Capability(
        "CAP-01",
        "One-click checkout",
        "PAY",
        "checkout_conversion",
        (
            "Saved cards",
            "Apple Pay at checkout",
            "Address autocomplete",
            "Guest checkout",
            "Checkout error recovery",
            "Fewer checkout fields",
            "Instalments at checkout",
            "Smart retry on declines",
        ),
        "Removing steps and failures at checkout should convert more sessions.",
    ),
    _Capability(
        "CAP-02",
        "Payment processing efficiency",
        "PAY",
        "cost_per_transaction",
        (
            "Network tokenisation",
            "Cheaper acquirer routing",
            "Batch payouts",
            "Retry to payouts",
            "Fraud rules tuning",
            "Automated ledger reconciliation",
            "Direct debit migration",
            "Fee-aware routing",
        ),
        "Cheaper routes and fewer manual touches should lower the cost of each payment.",
    ),
    _Capability(
        "CAP-03",
        "Instant mortgage decision",
        "ONB",
        "mortgage_application_days",
        (
            "Automated income verification",
            "Open banking affordability check",
            "Digital document upload",
            "Instant valuation",
            "Underwriter queue triage",
            "E-signature for offers",
            "Pre-filled application",
            "Broker status tracking",
        ),
        "Automating a manual step of the application should take days off the time to decision.",
    ),
    _Capability(
        "CAP-04",
        "Digital identity verification",
        "ONB",
        "activation_rate",
        (
            "Selfie ID check",
            "NFC passport scan",
            "Faster KYC review",
            "Address proof via open banking",
            "Resume onboarding later",
            "Onboarding progress bar",
        ),
        "Faster identity checks should let more sign-ups reach their first transaction.",
    ),
    _Capability(
        "CAP-05",
        "Search relevance",
        "SRCH",
        "search_success_rate",
        (
            "Typo tolerance",
            "Synonym dictionary",
            "Learning-to-rank model",
            "Query autocomplete",
            "Zero-result fallback",
            "Personalised ranking",
        ),
        "Better ranking should put the right result first more often.",
    ),
    _Capability(
        "CAP-06",
        "Self-serve help",
        "SRCH",
        "support_tickets_weekly",
        (
            "Help centre search",
            "Chatbot answers",
            "Card freeze self-service",
            "Dispute a payment in app",
            "Proactive outage banner",
            "Statement download",
        ),
        "Customers who can help themselves should not need to open a ticket.",
    ),
    _Capability(
        "CAP-07",
        "Mobile wallet payments",
        "MOB",
        "checkout_conversion",
        (
            "Google Pay in app",
            "Biometric payment confirmation",
            "One-tap reorder",
            "Offline-tolerant checkout",
            "Card scan",
        ),
        "Paying with a wallet on mobile should convert more checkout sessions.",
    ),
    _Capability(
        "CAP-08",
        "Smart notifications",
        "MOB",
        "retention_30d",
        (
            "Spending insights push",
            "Bill reminder notifications",
            "Quiet hours",
            "Notification preferences",
            "Savings goal nudges",
        ),
        "Useful, timely notifications should bring customers back in their first month.",
    ),
    _Capability(
        "CAP-09",
        "Reliability",
        "PLAT",
        "support_tickets_weekly",
        (
            "Idempotent payment API",
            "Circuit breakers for partners",
            "Zero-downtime deploys",
            "Queue backpressure",
            "Database failover drills",
        ),
        "Fewer failures customers notice should mean fewer tickets.",
    ),
    _Capability(
        "CAP-10",
        "Infrastructure efficiency",
        "PLAT",
        "cost_per_transaction",
        (
            "Autoscaling workers",
            "Spot instances for batch",
            "Cache hot reads",
            "Right-size databases",
            "Compress event payloads",
        ),
        "Less infrastructure per payment should lower the cost of each transaction.",
    ),
    _Capability(
        "CAP-11",
        "Referral programme",
        "GRO",
        "activation_rate",
        (
            "Referral rewards",
            "Invite link sharing",
            "Referral leaderboard",
            "Double-sided bonus",
            "Referral landing pages",
            "Social sharing cards",
        ),
        "Referred sign-ups arrive with intent and should activate more often.",
    ),
    _Capability(
        "CAP-12",
        "Lifecycle messaging",
        "GRO",
        "retention_30d",
        (
            "Win-back emails",
            "Onboarding email series",
            "Dormant user nudges",
            "Personalised offers",
            "In-app tips carousel",
            "Milestone celebrations",
        ),
        "Well-timed messages should keep new customers active through their first month.",
    ),
)

_ITEM_TITLES: dict[str, tuple[str, ...]] = {
    "PAY": (
        "Add retry to payouts",
        "Validate IBAN on entry",
        "Handle 3DS challenge timeout",
        "Store card tokens",
        "Show fee breakdown",
        "Refactor charge service",
        "Log acquirer responses",
        "Support partial refunds",
        "Fix rounding in settlement",
        "Expose payout status API",
    ),
    "ONB": (
        "Parse payslip uploads",
        "Call affordability API",
        "Add document checklist",
        "Prefill from credit file",
        "Route cases to underwriters",
        "Send offer for e-signature",
        "Fix upload size limit",
        "Track application status",
        "Validate postcode lookup",
        "Add KYC webhook handler",
    ),
    "SRCH": (
        "Tune BM25 weights",
        "Add synonym table",
        "Train ranking model",
        "Cache autocomplete results",
        "Log zero-result queries",
        "Index help articles",
        "Fix accent folding",
        "Add chatbot intents",
        "Expose search analytics",
        "Handle empty queries",
    ),
    "MOB": (
        "Integrate Google Pay SDK",
        "Add biometric prompt",
        "Cache cart offline",
        "Scan card with camera",
        "Schedule bill reminders",
        "Add quiet hours setting",
        "Fix crash on login",
        "Upgrade push library",
        "Support dark mode",
        "Add deep links",
    ),
    "PLAT": (
        "Add idempotency keys",
        "Configure circuit breaker",
        "Enable blue-green deploys",
        "Tune HPA thresholds",
        "Move batch jobs to spot",
        "Add read-through cache",
        "Right-size RDS instances",
        "Compress Kafka payloads",
        "Rotate TLS certificates",
        "Fix connection pool leak",
    ),
    "GRO": (
        "Add referral reward service",
        "Generate invite links",
        "Build leaderboard widget",
        "Send win-back email",
        "Add onboarding email step",
        "Create landing page variant",
        "Track referral attribution",
        "Add sharing card images",
        "Launch A/B test variant",
        "Tweak CTA copy",
    ),
}
_CHORES = (
    ("Bump axios from 1.6.0 to 1.6.8", "dependabot/npm_and_yarn/axios-1.6.8"),
    ("Update CI cache key", "chore/ci-cache-key"),
    ("Fix flaky integration test", "fix/flaky-integration-test"),
    ("Refactor logging setup", "chore/logging-refactor"),
    ("Upgrade Python to 3.12", "chore/python-3.12"),
    ("Tidy README", "docs/readme"),
    ("Add dashboard panel for latency", "chore/latency-panel"),
    ("Bump boto3 from 1.34.0 to 1.34.9", "dependabot/pip/boto3-1.34.9"),
)
_RUNNERS = ("ubuntu-latest", "macos-latest", "windows-latest")
_RUNNER_PRICE_PER_MIN = np.array([0.008, 0.08, 0.016])
_VENDORS = (
    ("Datadog monthly invoice", None, 4_200.0),
    ("Sentry monthly invoice", None, 650.0),
    ("LaunchDarkly monthly invoice", "GRO", 900.0),
    ("Algolia monthly invoice", "SRCH", 2_100.0),
    ("Apple and Google developer accounts", "MOB", 180.0),
)
_FEATURE_VENDORS = ("UX research agency", "Security penetration test", "Design sprint contractor")
_INCIDENT_TITLES = (
    "Elevated error rate",
    "Latency spike",
    "Failed payments",
    "Timeouts to partner API",
    "Login failures",
    "Degraded results",
)
_MILESTONES = (
    "Checkout v2 launch",
    "Open banking go-live",
    "Mobile app 3.0",
    "Instant mortgage decision beta",
    "Search relaunch",
    "EU expansion",
    "Peak season readiness",
    "Platform migration complete",
)
_FIBONACCI = np.array([1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 21.0])


class _Clock:
    """Day offsets from the start of the history, and their conversion to timestamps and dates."""

    def __init__(self, end: date) -> None:
        self.start = datetime(end.year, end.month, end.day) - timedelta(days=HISTORY_DAYS)
        self.start_us = (self.start - datetime(1970, 1, 1)) // timedelta(microseconds=1)
        self.days = np.arange(HISTORY_DAYS + 1)
        self.dates = [self.start.date() + timedelta(days=int(d)) for d in self.days]
        self.weekend = np.array([d.weekday() >= 5 for d in self.dates])
        self.holiday = np.array([(d.month == 12 and d.day >= 23) or (d.month == 1 and d.day <= 2) for d in self.dates])

    def timestamps(self, days: np.ndarray) -> pl.Series:
        """Day offsets (NaN for none) as naive UTC timestamps."""
        offsets = pl.Series(np.asarray(days, dtype=np.float64), nan_to_null=True)
        return ((offsets * 86_400_000_000.0).round(0).cast(pl.Int64) + self.start_us).cast(DATETIME)

    def day_of(self, when: date) -> int:
        """The day offset of midnight on ``when``."""
        return (when - self.start.date()).days


_LAST_MOMENT = HISTORY_DAYS - 1e-4
"""The latest day offset an event may carry (a few seconds before midnight on ``end``)."""


def _pick(values: tuple[str, ...] | list[str], index: np.ndarray) -> pl.Series:
    """``values[index]`` as a string Series; a negative index gives null."""
    index = np.asarray(index, dtype=np.int64)
    picked = pl.Series("picked", list(values), dtype=pl.String).gather(np.maximum(index, 0))
    if (index >= 0).all():
        return picked
    return pl.select(pl.when(pl.Series(index >= 0)).then(picked))["picked"]


def _working_time(rng: np.random.Generator, n: int, agent: np.ndarray | None = None) -> np.ndarray:
    """Fractions of a day: office hours (UTC) for people, round the clock for agents."""
    office = (7.0 + 15.0 * rng.beta(3.0, 3.2, n)) / 24.0
    if agent is None:
        return office
    return np.where(agent, rng.random(n) * 0.999, office)


def _lognormal_days(rng: np.random.Generator, median_hours: float | np.ndarray, sigma: float, n: int) -> np.ndarray:
    """Right-skewed durations in days around ``median_hours`` (minutes to days apart)."""
    return rng.lognormal(np.log(median_hours), sigma, n) / 24.0


def _calendar(clock: _Clock) -> np.ndarray:
    """Relative working activity per day: quiet weekends and a holiday dip at the turn of the year."""
    days = slice(0, HISTORY_DAYS)
    return np.where(clock.weekend[days], 0.1, 1.0) * np.where(clock.holiday[days], 0.5, 1.0)


def _activity_weights(clock: _Clock, planted: bool) -> np.ndarray:
    """Expected relative activity per team (rows) and day (columns); Growth's climbs when planted."""
    base = np.array([1.15, 1.0, 0.8, 0.95, 1.0, 0.7 if planted else 1.0])
    growth = np.ones((len(_TEAMS), HISTORY_DAYS))
    if planted:
        growth[_TEAM_IDS.index(GROWTH)] = np.exp(np.log(3.0) * clock.days[:HISTORY_DAYS] / HISTORY_DAYS)
    return base[:, None] * growth * _calendar(clock)[None, :]


def _steady_counts(rng: np.random.Generator, expected: np.ndarray, weekly_spread: float) -> np.ndarray:
    """Whole counts per row and day whose running totals track ``expected`` (systematic sampling).

    Each row's weeks vary by a random factor (``weekly_spread``, log-normal), but over a quarter
    the count stays within a few percent of its expectation, as a steady team's output does.
    """
    weeks = rng.lognormal(0.0, weekly_spread, (expected.shape[0], expected.shape[1] // 7 + 1))
    varied = expected * np.repeat(weeks, 7, axis=1)[:, : expected.shape[1]]
    varied *= expected.sum() / max(varied.sum(), 1e-12)
    marks = np.floor(np.cumsum(varied, axis=1) + rng.random((expected.shape[0], 1)))
    return np.diff(marks, axis=1, prepend=0).astype(np.int64)


def _steady_flags(rng: np.random.Generator, probability: np.ndarray) -> np.ndarray:
    """True for a ``probability`` share of rows, spread evenly along the array (systematic sampling)."""
    marks = np.floor(np.cumsum(probability) + rng.random())
    return np.diff(marks, prepend=0) > 0


def _balanced_draws(rng: np.random.Generator, pattern: tuple[int, ...], n: int) -> np.ndarray:
    """``n`` category indices where every block of ``sum(pattern)`` holds category i ``pattern[i]`` times."""
    block = np.repeat(np.arange(len(pattern)), pattern)
    blocks = -(-n // len(block))
    return rng.permuted(np.tile(block, (max(blocks, 1), 1)), axis=1).ravel()[:n]


_GOLDEN = (np.sqrt(5.0) - 1.0) / 2.0


def _even_fractions(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` fractions in (0, 1) spread evenly along the array (a golden-ratio sequence from a random start).

    Any run of consecutive rows covers (0, 1) almost uniformly, so a quarter's rows sample a
    distribution the way a steady team's work does: without the swings of independent draws.
    """
    return np.clip((rng.random() + np.arange(n) * _GOLDEN) % 1.0, 1e-6, 1 - 1e-6)


def _even_draws(rng: np.random.Generator, pattern: tuple[int, ...], n: int) -> np.ndarray:
    """``n`` category indices where any run of rows holds category i about ``pattern[i] / sum(pattern)`` of the time."""
    shares = np.cumsum(pattern) / sum(pattern)
    return np.minimum(np.searchsorted(shares, _even_fractions(rng, n), side="right"), len(pattern) - 1)


def _sha(rng: np.random.Generator, n: int) -> pl.Series:
    """``n`` random 40-character hexadecimal commit hashes."""
    raw = rng.integers(0, 256, size=(n, 20), dtype=np.uint8)
    binary = pa.FixedSizeBinaryArray.from_buffers(pa.binary(20), n, [None, pa.py_buffer(raw.tobytes())])
    return pl.Series(pl.from_arrow(binary)).cast(pl.Binary).bin.encode("hex")


def _numbered(prefix: str, n: int, width: int) -> pl.Series:
    """``prefix0001``, ``prefix0002``, ... for ``n`` rows."""
    number = pl.int_range(1, n + 1, dtype=pl.Int64).cast(pl.String).str.zfill(width)
    return pl.select((pl.lit(prefix) + number).alias("id"))["id"]


_REPO_NAMES = tuple(f"{_ORG}/{r}" for t in _TEAM_IDS for r in _REPOS[t])
_REPO_TEAM = np.array([i for i, t in enumerate(_TEAM_IDS) for _ in _REPOS[t]])
_MOBILE_REPOS = np.array([r.startswith(f"{_ORG}/mobile-") for r in _REPO_NAMES])


# --- People, metrics, capabilities, milestones ----------------------------------------------------


def _people(rng: np.random.Generator) -> pl.DataFrame:
    """Humans of every team with loaded hourly costs, then the shared AI agents (no hourly cost)."""
    n_humans = sum(_HUMANS_PER_TEAM)
    pairs = rng.choice(len(_FIRST_NAMES) * len(_LAST_NAMES), size=n_humans, replace=False)
    first = [_FIRST_NAMES[p // len(_LAST_NAMES)] for p in pairs]
    last = [_LAST_NAMES[p % len(_LAST_NAMES)] for p in pairs]
    humans = pl.DataFrame(
        {
            "person_id": [f"{f}.{s}".lower() for f, s in zip(first, last, strict=True)],
            "name": [f"{f} {s}" for f, s in zip(first, last, strict=True)],
            "team_id": np.repeat(np.array(_TEAM_IDS), _HUMANS_PER_TEAM).tolist(),
            "kind": "human",
            "hourly_cost": np.round(rng.uniform(55.0, 140.0, n_humans) * 2) / 2,
            "activity": rng.gamma(3.0, 1.0, n_humans),
        }
    )
    agents = pl.DataFrame(
        {
            "person_id": [a for a, _, _ in _AGENTS],
            "name": [a for a, _, _ in _AGENTS],
            "team_id": None,
            "kind": "agent",
            "hourly_cost": None,
            "activity": _AGENT_WEIGHTS,
        },
        schema=humans.schema,
    )
    return pl.concat([humans, agents])


def _metrics() -> pl.DataFrame:
    """Outcome metrics with baselines and targets, plus one activity and one output metric."""
    fields = ENTITIES["metrics"].schema.names()
    return pl.DataFrame([{f: getattr(m, f) for f in fields} for m in _METRICS], schema=ENTITIES["metrics"].schema)


def _capabilities_frame() -> pl.DataFrame:
    """Two capabilities per team, each linked to the outcome metric it exists to move."""
    return pl.DataFrame(
        {
            "capability_id": [c.capability_id for c in _CAPABILITIES],
            "name": [c.name for c in _CAPABILITIES],
            "metric_id": [c.metric_id for c in _CAPABILITIES],
        }
    )


def _milestones(rng: np.random.Generator, clock: _Clock) -> pl.DataFrame:
    """Product milestones spread over the history."""
    anchors = np.linspace(80, HISTORY_DAYS - 20, len(_MILESTONES)) + rng.integers(-12, 12, len(_MILESTONES))
    return pl.DataFrame(
        {
            "milestone_id": [f"M{i + 1:02d}" for i in range(len(_MILESTONES))],
            "name": list(_MILESTONES),
            "date": [clock.dates[int(d)] for d in np.minimum(anchors, HISTORY_DAYS)],
        }
    )


# --- Features, hypotheses and the effects planted in outcome metrics -------------------------------


@dataclass
class _FeaturePlan:
    """Every feature as parallel arrays (days are offsets; NaN when there is none)."""

    ids: list[str]
    team: np.ndarray
    capability: np.ndarray
    metric: list[str]
    status: np.ndarray
    started: np.ndarray
    delivered: np.ndarray
    ended: np.ndarray
    has_hypothesis: np.ndarray
    predicted: np.ndarray
    lag: np.ndarray
    window: np.ndarray
    effect: np.ndarray


_FIRST_SCHEDULED_DAY = 30
_PENDING_DAYS = (4, 26)
"""Days before the end within which each team shipped its latest feature."""
_BURST_SHARE = 0.25
"""Share of a team's deliveries that ship within days of the previous one (a release carrying several)."""
_STATUSES = np.array(["delivered", "in_progress", "planned", "cancelled"])


def _plan_features(rng: np.random.Generator, scale: float, planted: bool) -> _FeaturePlan:
    """Features with statuses, delivery dates from each team's roadmap, hypotheses and true effects."""
    n = int(np.clip(round(150 * scale), 12, 20_000))
    caps_by_team = [[i for i, c in enumerate(_CAPABILITIES) if c.team_id == t] for t in _TEAM_IDS]
    team = rng.choice(len(_TEAMS), size=n, p=np.array([1.1, 1.0, 0.8, 0.9, 0.9, 1.0]) / 5.7)
    capability = np.array([caps_by_team[t][rng.integers(len(caps_by_team[t]))] for t in team])
    metric = [_CAPABILITIES[c].metric_id for c in capability]
    status = rng.choice(_STATUSES, size=n, p=[0.6, 0.14, 0.16, 0.1])
    status[:6] = "delivered"  # even a tiny demo has verdicts to show
    has_hypothesis = rng.random(n) < np.where(status == "delivered", 0.9, 0.8)
    has_hypothesis[:6] = True
    typical = np.array([_METRIC_BY_ID[m].typical_change for m in metric])
    predicted = np.round(typical * rng.uniform(0.6, 1.5, n) * min(1.0, 1.0 / scale), 3)
    lag = rng.choice(np.array([0, 2, 3, 7, 7, 14]), size=n)
    window = rng.choice(np.array([28, 28, 35, 42, 60, 90]), size=n)
    delivered = np.full(n, np.nan)
    for t in range(len(_TEAMS)):
        shipped = np.flatnonzero((status == "delivered") & (team == t))
        delivered[shipped] = _roadmap(rng, len(shipped))
    delivered = delivered + _working_time(rng, n)

    duration = np.clip(rng.lognormal(np.log(50), 0.5, n), 14, 200)
    started = delivered - duration
    started = np.where(started < 1, rng.uniform(0.3, 0.9, n) * np.minimum(delivered, 10), started)
    started = np.where(status == "in_progress", rng.uniform(HISTORY_DAYS - 160, HISTORY_DAYS - 5, n), started)
    cancelled_start = rng.uniform(5, HISTORY_DAYS - 60, n)
    started = np.where(status == "cancelled", cancelled_start, started)
    ended = np.where(status == "cancelled", cancelled_start + rng.uniform(10, 55, n), delivered)

    effect = _true_effects(rng, team, metric, predicted, delivered, lag, has_hypothesis, planted)
    width = max(4, len(str(n)))
    plan = _FeaturePlan(
        ids=[f"FEAT-{i + 1:0{width}d}" for i in range(n)],
        team=team,
        capability=capability,
        metric=metric,
        status=status,
        started=started,
        delivered=delivered,
        ended=ended,
        has_hypothesis=has_hypothesis,
        predicted=predicted,
        lag=lag,
        window=window,
        effect=effect,
    )
    return plan if planted else _cover_gaps(rng, plan)


_GAP_DAYS = 14
"""The longest stretch a steady team goes without any feature open."""


def _cover_gaps(rng: np.random.Generator, plan: _FeaturePlan) -> _FeaturePlan:
    """``plan`` plus features without hypotheses wherever a team had no feature open for over ``_GAP_DAYS``.

    A steady team always has planned work on. A small organisation's roadmap leaves weeks or months
    between a team's features, in which every work item and PR would belong to no feature; fillers
    of about 50 days run back to back across each such gap, delivered at their end (still in
    progress when the history ends there).
    """
    ended = np.where(np.isnan(plan.ended), HISTORY_DAYS, plan.ended)
    team, start, end = [], [], []
    for t in range(len(_TEAMS)):
        own = np.flatnonzero((plan.team == t) & ~np.isnan(plan.started))
        own = own[np.argsort(plan.started[own], kind="stable")]
        cursor, gaps = 0.0, []
        for i in own:
            if plan.started[i] - cursor > _GAP_DAYS:
                gaps.append((cursor, float(plan.started[i])))
            cursor = max(cursor, float(ended[i]))
        if HISTORY_DAYS - cursor > _GAP_DAYS:
            gaps.append((cursor, float(HISTORY_DAYS)))
        for first, last in gaps:
            at = first
            while at < last - 1:
                length = float(np.clip(rng.lognormal(np.log(30.0), 0.3), 14.0, 60.0))
                finish = min(at + length, last + 1.0)
                if last - finish < 21.0:
                    finish = last + 1.0
                team.append(t)
                start.append(at)
                end.append(finish)
                at = finish - 1.0
    if not team:
        return plan
    k = len(team)
    filler_team = np.array(team)
    started = np.array(start)
    finished = np.floor(np.array(end)) + _working_time(rng, k)
    running = finished >= _LAST_MOMENT
    caps_by_team = [[i for i, c in enumerate(_CAPABILITIES) if c.team_id == t] for t in _TEAM_IDS]
    capability = np.array([caps_by_team[t][rng.integers(len(caps_by_team[t]))] for t in filler_team])
    metric = [_CAPABILITIES[c].metric_id for c in capability]
    delivered = np.where(running, np.nan, finished)
    width = len(plan.ids[0]) - len("FEAT-")
    first_number = len(plan.ids) + 1
    return _FeaturePlan(
        ids=[*plan.ids, *(f"FEAT-{first_number + i:0{width}d}" for i in range(k))],
        team=np.concatenate([plan.team, filler_team]),
        capability=np.concatenate([plan.capability, capability]),
        metric=[*plan.metric, *metric],
        status=np.concatenate([plan.status, np.where(running, "in_progress", "delivered")]),
        started=np.concatenate([plan.started, started]),
        delivered=np.concatenate([plan.delivered, delivered]),
        ended=np.concatenate([plan.ended, delivered]),
        has_hypothesis=np.concatenate([plan.has_hypothesis, np.zeros(k, dtype=bool)]),
        predicted=np.concatenate([plan.predicted, np.array([_METRIC_BY_ID[m].typical_change for m in metric])]),
        lag=np.concatenate([plan.lag, np.zeros(k, dtype=plan.lag.dtype)]),
        window=np.concatenate([plan.window, np.full(k, 28, dtype=plan.window.dtype)]),
        effect=np.concatenate([plan.effect, np.zeros(k)]),
    )


def _roadmap(rng: np.random.Generator, count: int) -> np.ndarray:
    """Whole delivery days of one team's ``count`` shipped features, in random order, as a roadmap puts them.

    The team ships every few weeks at an uneven pace (lognormal gaps), sometimes several features
    in one release (a ``_BURST_SHARE`` of gaps last under a week), paying no attention to which
    metric each feature aims at; its latest delivery falls within ``_PENDING_DAYS`` of the end.
    """
    if count == 0:
        return np.empty(0)
    gaps = np.where(rng.random(count) < _BURST_SHARE, rng.uniform(0.0, 0.1, count), rng.lognormal(0.0, 0.6, count))
    cumulative = np.cumsum(gaps)
    last = HISTORY_DAYS - float(rng.integers(*_PENDING_DAYS))
    days = _FIRST_SCHEDULED_DAY + (last - _FIRST_SCHEDULED_DAY) * cumulative / cumulative[-1]
    return np.floor(days)[rng.permutation(count)]


def _true_effects(
    rng: np.random.Generator,
    team: np.ndarray,
    metric: list[str],
    predicted: np.ndarray,
    delivered: np.ndarray,
    lag: np.ndarray,
    has_hypothesis: np.ndarray,
    planted: bool,
) -> np.ndarray:
    """The relative step each delivered feature with a hypothesis plants in its metric (0 when none).

    Half move their metric about as predicted, the rest not at all, the wrong way or weakly; every
    outcome metric gets at least one that works. Growth's features of the last year move nothing
    when the pattern is planted.
    """
    n = len(team)
    kind = rng.choice(4, size=n, p=[0.55, 0.25, 0.1, 0.1])  # as predicted, none, the wrong way, weak
    stale = planted & (team == _TEAM_IDS.index(GROWTH)) & (delivered >= HISTORY_DAYS - 365)
    eligible = has_hypothesis & ~np.isnan(delivered) & ~stale
    metric_of = np.array(metric)
    for spec in _OUTCOMES:
        mine = np.flatnonzero(eligible & (metric_of == spec.metric_id))
        if len(mine) and not (kind[mine] == 0).any():
            kind[mine[np.argmin(delivered[mine])]] = 0
    size = np.choose(
        kind, [rng.uniform(0.75, 1.3, n), np.zeros(n), -rng.uniform(0.3, 0.8, n), rng.uniform(0.15, 0.4, n)]
    )
    visible = eligible & (np.floor(delivered) + lag <= HISTORY_DAYS)
    return np.where(visible, np.round(predicted * size, 4), 0.0) + 0.0


def _features_frame(
    rng: np.random.Generator, plan: _FeaturePlan, clock: _Clock, milestones: pl.DataFrame
) -> pl.DataFrame:
    """Features named after their capability, tagged with the milestone they shipped for."""
    n = len(plan.ids)
    names = []
    seen: dict[str, int] = {}
    for c in plan.capability:
        fragments = _CAPABILITIES[c].features
        base = fragments[int(rng.integers(len(fragments)))]
        seen[base] = seen.get(base, 0) + 1
        names.append(base if seen[base] == 1 else f"{base} (phase {seen[base]})")
    milestone_days = np.array([clock.day_of(d) for d in milestones["date"].to_list()])
    upcoming = np.searchsorted(milestone_days, np.nan_to_num(plan.delivered, nan=1e9))
    upcoming_day = milestone_days[np.minimum(upcoming, len(milestone_days) - 1)]
    tagged = (upcoming < len(milestone_days)) & (upcoming_day - plan.delivered <= 45) & (rng.random(n) < 0.6)
    estimate = np.round(rng.lognormal(np.log(45_000), 0.6, n), -3)
    return pl.DataFrame(
        {
            "feature_id": plan.ids,
            "name": names,
            "team_id": _pick(_TEAM_IDS, plan.team),
            "capability_id": _pick([c.capability_id for c in _CAPABILITIES], plan.capability),
            "status": plan.status.tolist(),
            "started_at": clock.timestamps(plan.started),
            "delivered_at": clock.timestamps(plan.delivered),
            "milestone_id": _pick(milestones["milestone_id"].to_list(), np.where(tagged, upcoming, -1)),
            "estimate_cost": pl.Series(np.where(rng.random(n) < 0.85, estimate, np.nan), nan_to_null=True),
            "control_segment": _pick(["control"], np.where([_METRIC_BY_ID[m].control for m in plan.metric], 0, -1)),
        }
    )


def _hypotheses_frame(rng: np.random.Generator, plan: _FeaturePlan) -> pl.DataFrame:
    """Hypotheses written before each feature started (day offset of writing in ``_created``)."""
    n = len(plan.ids)
    before = np.where(plan.started >= 30, plan.started - rng.uniform(3, 30, n), plan.started * rng.random(n))
    created = np.where(np.isnan(plan.started), rng.uniform(HISTORY_DAYS - 120, HISTORY_DAYS - 1, n), before)
    keep = plan.has_hypothesis
    return pl.DataFrame(
        {
            "feature_id": np.array(plan.ids)[keep].tolist(),
            "metric_id": np.array(plan.metric)[keep].tolist(),
            "predicted_change": plan.predicted[keep],
            "change_kind": "relative",
            "lag_days": plan.lag[keep].astype(np.int64),
            "window_days": plan.window[keep].astype(np.int64),
            "rationale": [_CAPABILITIES[c].rationale for c in plan.capability[keep]],
            "_created": created[keep],
        }
    )


def _observations(rng: np.random.Generator, clock: _Clock, plan: _FeaturePlan, planted: bool) -> pl.DataFrame:
    """Daily values per metric: trend, weekly seasonality, AR(1) noise and the planted steps."""
    days = clock.days
    dates = pl.Series(clock.dates, dtype=pl.Date)
    metric_of = np.array(plan.metric)
    frames = []
    for spec in _METRICS:
        trend = np.log(3.0) / 2 if spec.metric_id == "growth_experiments_weekly" and planted else spec.trend_per_year
        shape = np.log(spec.baseline) + trend * days / 365 + np.where(clock.weekend, np.log(spec.weekend_factor), 0.0)
        common = _ar1(rng, len(days), spec.noise * 0.9)
        mine = np.flatnonzero((metric_of == spec.metric_id) & (plan.effect != 0))
        steps = np.zeros(len(days) + 1)
        np.add.at(steps, (np.floor(plan.delivered[mine]) + plan.lag[mine]).astype(int), np.log1p(plan.effect[mine]))
        segments = [("all", shape + common + np.cumsum(steps)[:-1] + _ar1(rng, len(days), spec.noise * 0.45))]
        if spec.control:
            segments.append(("control", shape + np.log(0.97) + common + _ar1(rng, len(days), spec.noise * 0.45)))
        for segment, log_value in segments:
            value = np.round(np.exp(log_value), spec.decimals)
            if spec.unit == "%":
                value = np.clip(value, 0.0, 100.0)
            frames.append(
                pl.DataFrame({"metric_id": spec.metric_id, "date": dates, "segment": segment, "value": value})
            )
    return pl.concat(frames)


def _ar1(rng: np.random.Generator, n: int, sd: float, phi: float = 0.6) -> np.ndarray:
    """Autocorrelated noise with stationary standard deviation ``sd``."""
    shocks = rng.normal(0.0, sd * np.sqrt(1 - phi**2), n)
    shocks[0] = rng.normal(0.0, sd)
    out = np.empty(n)
    out[0] = shocks[0]
    for i in range(1, n):
        out[i] = phi * out[i - 1] + shocks[i]
    return out


# --- Work items, pull requests, deployments, incidents ---------------------------------------------


def _work_items(
    rng: np.random.Generator, plan: _FeaturePlan, people: pl.DataFrame, scale: float, clock: _Clock, planted: bool
) -> pl.DataFrame:
    """Work items started at each team's steady pace, each in the feature the team had open at the time.

    Items started while none of the team's features was open, and a share of bugs and tasks, belong
    to no feature; planned features carry a few items not yet started. Day offsets are kept in
    ``_created``/``_started``/``_resolved`` and the owning team's index in ``_team``.
    """
    pace = np.array([1.1, 1.0, 0.8, 0.9, 0.9, 1.0])[:, None] * _calendar(clock)[None, :]
    counts = _steady_counts(rng, 1400 * scale * pace / pace.sum(), weekly_spread=0.1)
    cell = np.repeat(np.arange(counts.size), counts.ravel())
    team, started = cell // HISTORY_DAYS, cell % HISTORY_DAYS + _working_time(rng, len(cell))
    feature = _open_feature(rng, plan, team, started)
    feature[rng.random(len(cell)) < 0.05] = -1

    planned = np.flatnonzero(plan.status == "planned")
    waiting = np.repeat(planned, rng.poisson(2, len(planned)))
    shipped = np.flatnonzero(plan.status == "delivered")
    empty = np.setdiff1d(shipped, feature)
    feature = np.concatenate([feature, waiting, empty])
    team = np.concatenate([team, plan.team[waiting], plan.team[empty]])
    started = np.concatenate(
        [started, np.full(len(waiting), np.nan), plan.started[empty] + rng.uniform(0, 1, len(empty))]
    )
    n = len(feature)
    linked = feature >= 0
    status = np.where(linked, plan.status[np.maximum(feature, 0)], "none")
    stop = np.where(linked & (status != "in_progress"), plan.ended[np.maximum(feature, 0)], _LAST_MOMENT)
    created = np.where(
        np.isnan(started), rng.uniform(HISTORY_DAYS - 90, HISTORY_DAYS - 1, n), started - rng.exponential(3.0, n)
    )
    created = np.clip(created, 0.05, np.nan_to_num(started, nan=HISTORY_DAYS - 1))
    resolved = started + rng.lognormal(np.log(4.0), 0.7, n)
    cancelled = (status == "cancelled") & (resolved > stop)
    resolved = np.where(
        (status == "delivered") & (resolved > stop), np.maximum(stop - rng.uniform(0, 1, n), started), resolved
    )
    resolved = np.where(cancelled, stop, resolved)
    resolved = np.where(resolved >= _LAST_MOMENT, np.nan, resolved)
    item_status = np.select(
        [cancelled, ~np.isnan(resolved), ~np.isnan(started)], ["Cancelled", "Done", "In Progress"], "To Do"
    )

    kinds = np.array(["Story", "Bug", "Task"])
    if planted:
        kind = np.where(
            linked,
            rng.choice(kinds, size=n, p=[0.65, 0.15, 0.2]),
            rng.choice(kinds[1:], size=n, p=[0.6, 0.4]),
        )
    else:  # a steady team's mix of stories, bugs and tasks holds from one quarter to the next
        kind = np.where(linked, kinds[_even_draws(rng, (13, 3, 4), n)], kinds[1:][_even_draws(rng, (3, 2), n)])
    step = np.zeros(n, dtype=np.int64)
    for name, pattern in (("Story", (2, 5, 7, 4, 2)), ("Bug", (7, 7, 4, 2)), ("Task", (7, 7, 4, 2))):
        rows = np.flatnonzero(kind == name)
        step[rows] = _balanced_draws(rng, pattern, len(rows)) if planted else _even_draws(rng, pattern, len(rows))
    if planted:
        inflating = team == _TEAM_IDS.index(GROWTH)
        step = step + np.where(inflating, rng.binomial(2, np.clip(created / HISTORY_DAYS, 0, 1)), 0)
    unpointed = rng.random(n) < 0.3 if planted else _steady_flags(rng, np.full(n, 0.3))
    points = np.where((kind == "Bug") & unpointed, np.nan, _FIBONACCI[np.minimum(step, 6)])

    humans = people.filter(pl.col("kind") == "human").with_row_index("_i")
    assignee = np.full(n, -1)
    title = np.zeros(n, dtype=np.int64)
    titles: list[str] = []
    for t, team_id in enumerate(_TEAM_IDS):
        rows = np.flatnonzero(team == t)
        members = humans.filter(pl.col("team_id") == team_id)["_i"].to_numpy()
        assignee[rows] = members[rng.integers(0, len(members), len(rows))]
        title[rows] = len(titles) + rng.integers(0, len(_ITEM_TITLES[team_id]), len(rows))
        titles.extend(_ITEM_TITLES[team_id])
    assignee[np.isnan(started) & (rng.random(n) < 0.7)] = -1

    frame = pl.DataFrame(
        {
            "team_id": _pick(_TEAM_IDS, team),
            "title": _pick(titles, title),
            "feature_id": _pick(plan.ids, feature),
            "type": kind.tolist(),
            "status": item_status.tolist(),
            "story_points": pl.Series(points, nan_to_null=True),
            "assignee_id": _pick(humans["person_id"].to_list(), assignee),
            "_team": team,
            "_created": created,
            "_started": started,
            "_resolved": resolved,
        }
    )
    frame = frame.sort("_team", "_created", maintain_order=True).with_columns(
        (pl.col("team_id") + "-" + (pl.int_range(pl.len()).over("_team") + 101).cast(pl.String)).alias("work_item_key"),
    )
    slug = pl.col("title").str.to_lowercase().str.replace_all(r"[^a-z0-9]+", "-").str.strip_chars("-")
    return frame.sort("_created", "work_item_key").with_columns(slug.str.slice(0, 32).alias("_slug"))


def _open_feature(rng: np.random.Generator, plan: _FeaturePlan, team: np.ndarray, at: np.ndarray) -> np.ndarray:
    """For each (team, moment), one of the team's features open at that moment, or -1 when none is."""
    chosen = np.full(len(team), -1)
    end = np.where(np.isnan(plan.ended), HISTORY_DAYS, plan.ended)
    for t in range(len(_TEAMS)):
        own = np.flatnonzero((plan.team == t) & ~np.isnan(plan.started))
        own = own[np.argsort(plan.started[own], kind="stable")]
        rows = np.flatnonzero(team == t)
        first = np.searchsorted(plan.started[own], at[rows] - 200, side="left")
        past = np.searchsorted(plan.started[own], at[rows], side="right")
        for _ in range(12):
            open_rows = chosen[rows] < 0
            guess = first + np.floor(rng.random(len(rows)) * (past - first)).astype(np.int64)
            candidate = own[np.minimum(guess, max(len(own) - 1, 0))] if len(own) else np.full(len(rows), -1)
            fits = open_rows & (past > first) & (end[np.maximum(candidate, 0)] >= at[rows])
            chosen[rows[fits]] = candidate[fits]
    return chosen


def _pull_requests(
    rng: np.random.Generator, items: pl.DataFrame, people: pl.DataFrame, scale: float, clock: _Clock, planted: bool
) -> pl.DataFrame:
    """Pull requests by people and agents: timelines, sizes, and links to work items and features.

    Day offsets are kept in ``_created``/``_first_commit``/``_first_review``/``_merged`` and the
    repo and author as indices in ``_repo``/``_author`` for the generators that follow.
    """
    weights = _activity_weights(clock, planted)
    counts = _steady_counts(rng, 20_000 * scale * weights / weights.sum(), weekly_spread=0.1)
    cell = np.repeat(np.arange(counts.size), counts.ravel())
    team, day = cell // HISTORY_DAYS, cell % HISTORY_DAYS
    n = len(cell)
    progress = day / HISTORY_DAYS
    growth = team == _TEAM_IDS.index(GROWTH)
    agent = _steady_flags(rng, np.where(growth & planted, 0.08 + 0.47 * progress, 0.1))
    created = day + _working_time(rng, n, agent)

    kind = people["kind"].to_numpy()
    person_team = people["team_id"].to_numpy()
    activity = people["activity"].to_numpy()
    agents = np.flatnonzero(kind == "agent")
    author = np.full(n, -1)
    author[agent] = agents[rng.choice(len(agents), size=int(agent.sum()), p=_AGENT_WEIGHTS)]
    repo = np.zeros(n, dtype=np.int64)
    item = np.full(n, -1)
    item_team = items["_team"].to_numpy()
    item_started = items["_started"].to_numpy()
    item_linked = items["feature_id"].is_not_null().to_numpy()
    for t, team_id in enumerate(_TEAM_IDS):
        rows = np.flatnonzero(team == t)
        human_rows = rows[~agent[rows]]
        members = np.flatnonzero((kind == "human") & (person_team == team_id))
        weight = activity[members] / activity[members].sum()
        author[human_rows] = members[rng.choice(len(members), size=len(human_rows), p=weight)]
        repos = np.flatnonzero(t == _REPO_TEAM)
        repo_weight = np.linspace(1.5, 0.7, len(repos))
        repo[rows] = repos[rng.choice(len(repos), size=len(rows), p=repo_weight / repo_weight.sum())]
        loose = rng.random(len(rows)) < 0.03
        for pool, wanted in ((item_linked, ~loose), (~item_linked, loose)):
            item[rows[wanted]] = _recent_item(rng, item_started, (item_team == t) & pool, created[rows[wanted]])
    item[_steady_flags(rng, np.full(n, 0.12))] = -1
    linked = item >= 0

    closed = rng.random(n) < np.where(agent, 0.14, 0.07)
    first_commit = created - _lognormal_days(rng, 4.0, 1.2, n)
    first_commit = np.where(first_commit < 0, created * rng.random(n), first_commit)
    reviewed = rng.random(n) >= np.where(linked, 0.04, 0.2)
    reviews = np.where(reviewed, 1 + rng.poisson(np.where(agent, 0.4, 0.6)), 0)
    first_review = np.where(reviewed, created + _lognormal_days(rng, 3.0, 1.3, n), np.nan)
    merged = np.where(reviewed, first_review, created) + _lognormal_days(rng, 8.0, 1.2, n)
    stale = rng.random(n) < 0.015
    merged = np.where(closed | stale | (merged >= HISTORY_DAYS), np.nan, merged)
    late_review = first_review >= HISTORY_DAYS
    first_review = np.where(late_review, np.nan, first_review)
    reviews = np.where(late_review, 0, reviews)
    state = np.where(~np.isnan(merged), "merged", np.where(closed, "closed", "open"))

    shrink = np.where(growth & planted, np.exp(-np.log(2.5) * progress), 1.0)
    if planted:
        additions = np.round(rng.lognormal(np.log(np.where(agent, 90.0, 140.0) * shrink), 1.1))
    else:  # a steady team's PR sizes: any quarter's PRs sample the same log-normal evenly
        additions = np.round(np.where(agent, 90.0, 140.0) * np.exp(1.1 * ndtri(_even_fractions(rng, n))))
    additions = np.clip(additions, 1, 20_000)
    deletions = np.round(additions * rng.beta(2, 5, n) * 1.2)

    safe_item = np.maximum(item, 0)
    title_mode = rng.random(n)
    agent_prefix = {a: prefix for a, prefix, _ in _AGENTS}
    prefix = [agent_prefix.get(p, "") for p in people["person_id"].to_list()]
    chore = np.where(linked, -1, rng.integers(0, len(_CHORES), n))
    frame = pl.DataFrame(
        {
            "repo": _pick(_REPO_NAMES, repo),
            "author_id": _pick(people["person_id"].to_list(), author),
            "author_kind": np.where(agent, "agent", "human").tolist(),
            "team_id": _pick(_TEAM_IDS, team),
            "state": state.tolist(),
            "created_at": clock.timestamps(created),
            "first_commit_at": clock.timestamps(first_commit),
            "first_review_at": clock.timestamps(first_review),
            "merged_at": clock.timestamps(merged),
            "additions": additions.astype(np.int64),
            "deletions": deletions.astype(np.int64),
            "reviews": reviews.astype(np.int64),
            "_repo": repo,
            "_author": author,
            "_created": created,
            "_first_commit": first_commit,
            "_first_review": first_review,
            "_merged": merged,
            "_linked": linked,
            "_key": items["work_item_key"].gather(safe_item),
            "_item_title": items["title"].gather(safe_item),
            "_slug": items["_slug"].gather(safe_item),
            "_item_feature": items["feature_id"].gather(safe_item),
            "_bug": items["type"].gather(safe_item) == "Bug",
            "_title_mode": title_mode,
            "_branch_key": (rng.random(n) < 0.85) | (title_mode >= 0.85),
            "_prefix": _pick(prefix, author),
            "_chore_title": _pick([c[0] for c in _CHORES], chore),
            "_chore_branch": _pick([c[1] for c in _CHORES], chore),
            "_direct_feature": rng.random(n) < 0.2,
            "_direct_key": rng.random(n) < 0.35,
        }
    )
    key, item_title, slug, is_linked = pl.col("_key"), pl.col("_item_title"), pl.col("_slug"), pl.col("_linked")
    human_prefix = pl.when(pl.col("_bug")).then(pl.lit("fix/")).otherwise(pl.lit("feature/"))
    prefix_expr = pl.when(pl.col("author_kind") == "agent").then(pl.col("_prefix")).otherwise(human_prefix)
    frame = frame.with_columns(
        pl.when(~is_linked)
        .then(pl.col("_chore_title"))
        .when(pl.col("_title_mode") < 0.75)
        .then(key + " " + item_title)
        .when(pl.col("_title_mode") < 0.85)
        .then("[" + key + "] " + item_title)
        .otherwise(item_title)
        .alias("title"),
        pl.when(~is_linked)
        .then(pl.col("_chore_branch"))
        .when(pl.col("_branch_key"))
        .then(prefix_expr + key + "-" + slug)
        .otherwise(prefix_expr + slug)
        .alias("branch"),
        pl.when(is_linked & pl.col("_direct_feature")).then(pl.col("_item_feature")).alias("feature_id"),
        pl.when(is_linked & pl.col("_direct_key")).then(key).alias("work_item_key"),
    ).drop(
        "_linked",
        "_key",
        "_item_title",
        "_slug",
        "_item_feature",
        "_bug",
        "_title_mode",
        "_branch_key",
        "_prefix",
        "_chore_title",
        "_chore_branch",
        "_direct_feature",
        "_direct_key",
    )
    first_number = pl.Series(rng.integers(40, 900, len(_REPO_NAMES))).gather(frame["_repo"])
    frame = (
        frame.with_columns(first=first_number)
        .sort("_repo", "_created", maintain_order=True)
        .with_columns((pl.int_range(pl.len()).over("_repo") + pl.col("first")).alias("number"))
        .with_columns((pl.col("repo") + "#" + pl.col("number").cast(pl.String)).alias("pr_id"))
        .sort("_created", "pr_id")
    )
    sha = _sha(rng, frame.height)
    return frame.with_columns(pl.when(pl.col("state") == "merged").then(sha).alias("merge_commit_sha"))


def _recent_item(rng: np.random.Generator, started: np.ndarray, pool: np.ndarray, at: np.ndarray) -> np.ndarray:
    """For each moment in ``at``, one of the items in ``pool`` started most recently before it (-1 when none)."""
    candidates = np.flatnonzero(pool & ~np.isnan(started))
    if len(candidates) == 0:
        return np.full(len(at), -1)
    candidates = candidates[np.argsort(started[candidates], kind="stable")]
    active = max(3, round(len(candidates) * 8 / HISTORY_DAYS))
    latest = np.searchsorted(started[candidates], at, side="right") - 1
    pick = np.clip(latest - rng.integers(0, active, len(at)), 0, len(candidates) - 1)
    return np.where(latest >= 0, candidates[pick], -1)


def _deployments(
    rng: np.random.Generator, prs: pl.DataFrame, scale: float, clock: _Clock, planted: bool
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Deployments per repo following each team's activity; merged PRs tied to the one that shipped them."""
    weights = _activity_weights(clock, planted)
    per_repo = np.array([weights[t] / np.sum(t == _REPO_TEAM) for t in _REPO_TEAM])
    counts = _steady_counts(rng, 3_000 * scale * per_repo / per_repo.sum(), weekly_spread=0.15)
    cell = np.repeat(np.arange(counts.size), counts.ravel())
    repo, day = cell // HISTORY_DAYS, cell % HISTORY_DAYS
    n = len(cell)
    finished = day + _working_time(rng, n)
    started = finished - rng.uniform(4, 30, n) / 1440
    production = rng.random(n) < 0.8
    failure = rng.random(n) < np.where(production, 0.1, 0.14)
    order = np.lexsort((repo, started))
    repo, finished, started, production, failure = (a[order] for a in (repo, finished, started, production, failure))

    pr_repo = prs["_repo"].to_numpy()
    pr_merged = prs["_merged"].to_numpy()
    commit_pr = np.full(n, -1)
    shipped_by = np.full(prs.height, -1)
    for r in range(len(_REPO_NAMES)):
        mine = np.flatnonzero(repo == r)
        merged_rows = np.flatnonzero((pr_repo == r) & ~np.isnan(pr_merged))
        merged_rows = merged_rows[np.argsort(pr_merged[merged_rows], kind="stable")]
        latest = np.searchsorted(pr_merged[merged_rows], started[mine], side="right") - 1
        commit_pr[mine] = np.where(latest >= 0, merged_rows[np.maximum(latest, 0)], -1)
        shipping = mine[production[mine] & ~failure[mine]]
        following = np.searchsorted(started[shipping], pr_merged[merged_rows], side="left")
        found = following < len(shipping)
        shipped_by[merged_rows[found]] = shipping[following[found]]
    deployment_id = _numbered("dep-", n, 7)
    merged_sha = prs["merge_commit_sha"].gather(np.maximum(commit_pr, 0))
    deployments = pl.DataFrame(
        {
            "deployment_id": deployment_id,
            "service": _pick([r.split("/")[1] for r in _REPO_NAMES], repo),
            "repo": _pick(_REPO_NAMES, repo),
            "team_id": _pick(_TEAM_IDS, _REPO_TEAM[repo]),
            "environment": np.where(production, "production", "staging").tolist(),
            "status": np.where(failure, "failure", "success").tolist(),
            "started_at": clock.timestamps(started),
            "finished_at": clock.timestamps(finished),
            "commit_sha": pl.select(pl.when(pl.Series(commit_pr >= 0)).then(merged_sha).otherwise(_sha(rng, n)))[
                merged_sha.name
            ],
            "_finished": finished,
        }
    )
    prs = prs.with_columns(_pick(deployment_id.to_list(), shipped_by).alias("deployment_id"))
    return deployments, prs


def _incidents(rng: np.random.Generator, deployments: pl.DataFrame, scale: float, clock: _Clock) -> pl.DataFrame:
    """Incidents opened shortly after production deployments (failed ones far more often)."""
    prod = deployments.filter(pl.col("environment") == "production")
    weight = np.where(prod["status"].to_numpy() == "failure", 8.0, 1.0)
    n = min(round(150 * scale), prod.height)
    source = prod[np.sort(rng.choice(prod.height, size=n, replace=False, p=weight / weight.sum()))]
    opened = source["_finished"].to_numpy() + np.minimum(_lognormal_days(rng, 1.5, 1.0, n), 2.0)
    resolved = opened + _lognormal_days(rng, 3.0, 1.1, n)
    frame = pl.DataFrame(
        {
            "title": _pick(_INCIDENT_TITLES, rng.integers(0, len(_INCIDENT_TITLES), n)) + " on " + source["service"],
            "service": source["service"],
            "team_id": source["team_id"],
            "severity": rng.choice(np.array(["SEV1", "SEV2", "SEV3", "SEV4"]), size=n, p=[0.05, 0.2, 0.45, 0.3]),
            "opened_at": clock.timestamps(opened),
            "resolved_at": clock.timestamps(np.where(resolved < HISTORY_DAYS, resolved, np.nan)),
            "deployment_id": pl.select(pl.when(pl.Series(rng.random(n) < 0.6)).then(source["deployment_id"]))[
                "deployment_id"
            ],
            "_opened": opened,
        }
    )
    frame = frame.filter(pl.col("_opened") < HISTORY_DAYS).sort("_opened")
    return frame.with_columns(_numbered("INC-", frame.height, 4).alias("incident_id"))


# --- Cost events --------------------------------------------------------------------------------


def _cost_events(
    rng: np.random.Generator,
    prs: pl.DataFrame,
    people: pl.DataFrame,
    plan: _FeaturePlan,
    items: pl.DataFrame,
    clock: _Clock,
    per_pr_scale: float = 1.0,
) -> pl.DataFrame:
    """Cost events from every source: LLM tokens, CI minutes, review time, people time and other.

    ``per_pr_scale`` repeats each PR-linked event (LLM, CI, review) that many times on average.
    """
    per_pr = [_llm_costs(rng, prs, people), _ci_costs(rng, prs), _review_costs(rng, prs, people)]
    if per_pr_scale != 1.0:
        per_pr = [_repeated(rng, part, per_pr_scale) for part in per_pr]
    parts = [
        *per_pr,
        _people_costs(rng, people, clock),
        _other_costs(rng, plan, items, clock),
    ]
    frame = pl.concat(parts, how="diagonal_relaxed").sort("_at", "source", maintain_order=True)
    return frame.with_columns(
        _numbered("ce-", frame.height, 8).alias("event_id"),
        clock.timestamps(frame["_at"].to_numpy()).alias("occurred_at"),
        pl.when(pl.col("amount").is_not_null()).then(pl.lit("USD")).alias("currency"),
    )


def _repeated(rng: np.random.Generator, part: pl.DataFrame, factor: float) -> pl.DataFrame:
    """Each row ``factor`` times on average (whole repeats plus a random share for the fraction)."""
    whole = int(factor)
    repeats = whole + (rng.random(part.height) < factor - whole)
    return part[np.repeat(np.arange(part.height), repeats)]


def _llm_costs(rng: np.random.Generator, prs: pl.DataFrame, people: pl.DataFrame) -> pl.DataFrame:
    """Token usage: agent sessions on a PR's branch, and people's assistant use known only by person."""
    m = prs.height
    agent_pr = prs["author_kind"].to_numpy() == "agent"
    human_sessions = (rng.random(m) < 0.6) * (1 + rng.poisson(0.8, m))
    row = np.repeat(np.arange(m), np.where(agent_pr, 1 + rng.poisson(2.5, m), human_sessions))
    n = len(row)
    agent = agent_pr[row]
    begin = prs["_first_commit"].to_numpy()[row] - 0.5 * rng.random(n)
    until = prs["_created"].to_numpy()[row]
    at = np.clip(begin + rng.random(n) * (until - begin), 0.0, _LAST_MOMENT)
    tokens = np.round(rng.lognormal(np.where(agent, np.log(900_000), np.log(60_000)), 0.9))
    author = prs["_author"].to_numpy()[row]
    agent_rank = np.cumsum(people["kind"].to_numpy() == "agent") - 1
    models = [m for _, _, pair in _AGENTS for m in pair]
    human_models = ("gpt-4.1", "claude-sonnet-4", "gpt-4.1-mini")
    model_index = np.where(agent, agent_rank[author] * 2 + rng.integers(0, 2, n), len(models) + rng.integers(0, 3, n))
    model = _pick([*models, *human_models], model_index)
    price = model.replace_strict(_LLM_PRICE_PER_MTOK, return_dtype=pl.Float64).to_numpy()
    priced = rng.random(n) < 0.65
    team = np.where(
        agent, _REPO_TEAM[prs["_repo"].to_numpy()[row]], _HUMAN_TEAM[np.minimum(author, len(_HUMAN_TEAM) - 1)]
    )
    return pl.DataFrame(
        {
            "_at": at,
            "source": "llm",
            "amount": pl.Series(np.where(priced, np.round(tokens * price / 1e6, 4), np.nan), nan_to_null=True),
            "quantity": tokens,
            "unit": "tokens",
            "detail": model,
            "person_id": prs["author_id"].gather(row),
            "_agent": agent,
            "_repo": prs["repo"].gather(row),
            "_branch": prs["branch"].gather(row),
            "account_key": _account_keys(team, np.where(agent, agent_rank[author], -1)),
            "account_scope": pl.Series(np.where(model.str.starts_with("claude").to_numpy(), "Default", "proj_acme")),
        }
    ).with_columns(
        pl.when("_agent").then(pl.col("_repo")).alias("repo"),
        pl.when("_agent").then(pl.col("_branch")).alias("branch"),
    )


_SANDBOX_KEY = "acme-sandbox"
"""The org-wide API key some people and agents use for experiments; nobody mapped it to a team."""

_HUMAN_TEAM = np.repeat(np.arange(len(_HUMANS_PER_TEAM)), _HUMANS_PER_TEAM)
"""The team index of each human, in the order ``_people`` lists them."""


def _agent_key_name(agent: str) -> str:
    return agent.split("[", 1)[0].split("-", 1)[0]


def _account_keys(team: np.ndarray, agent: np.ndarray) -> pl.Series:
    """The API key each LLM session was billed to: its team's developer key, or the team's key for that agent.

    About one session in twelve went through the shared sandbox key instead (chosen by a generator of
    its own, so the rest of the demo draws the same numbers as before keys were added).
    """
    sandbox = np.random.default_rng([len(team), 12]).random(len(team)) < 1 / 12
    teams = np.array([t.lower() for t in _TEAM_IDS])[team]
    agents = np.array(["devs", *[_agent_key_name(a) for a, _, _ in _AGENTS]])[agent + 1]
    keys = np.char.add(np.char.add(teams, "-"), agents)
    return pl.Series("account_key", np.where(sandbox, _SANDBOX_KEY, keys), dtype=pl.String)


def _cost_keys() -> pl.DataFrame:
    """The API key map: each team's developer key to its team, each team's agent keys to the agent."""
    rows = [{"key": f"{t.lower()}-devs", "team_id": t, "person_id": None, "feature_id": None} for t in _TEAM_IDS] + [
        {"key": f"{t.lower()}-{_agent_key_name(a)}", "team_id": None, "person_id": a, "feature_id": None}
        for t in _TEAM_IDS
        for a, _, _ in _AGENTS
    ]
    return pl.DataFrame(rows, schema=ENTITIES["cost_keys"].schema)


def _ci_costs(rng: np.random.Generator, prs: pl.DataFrame) -> pl.DataFrame:
    """CI minutes per PR branch run, plus runs on main after merges (not attributable to a feature)."""
    m = prs.height
    agent_pr = prs["author_kind"].to_numpy() == "agent"
    merged = prs["_merged"].to_numpy()
    created = prs["_created"].to_numpy()
    row = np.repeat(np.arange(m), 1 + rng.poisson(np.where(agent_pr, 1.8, 1.0)))
    main = np.flatnonzero(~np.isnan(merged) & (rng.random(m) < 0.4))
    n_branch, n = len(row), len(row) + len(main)
    begin = prs["_first_commit"].to_numpy()[row]
    until = np.minimum(np.where(np.isnan(merged), created + 1.0, merged)[row], _LAST_MOMENT)
    at = np.concatenate(
        [
            begin + rng.random(n_branch) * (until - begin),
            np.minimum(merged[main] + rng.uniform(0, 0.02, len(main)), _LAST_MOMENT),
        ]
    )
    source_row = np.concatenate([row, main])
    mobile = _MOBILE_REPOS[prs["_repo"].to_numpy()[source_row]]
    u = rng.random(n)
    runner = np.where(mobile, (u > 0.3).astype(int), np.where(u < 0.9, 0, 2))
    minutes = np.round(rng.lognormal(np.log(np.where(mobile, 18.0, 7.0)), 0.6), 1)
    priced = rng.random(n) >= 0.2
    on_branch = np.arange(n) < n_branch
    return pl.DataFrame(
        {
            "_at": at,
            "source": "ci",
            "amount": pl.Series(
                np.where(priced, np.round(minutes * _RUNNER_PRICE_PER_MIN[runner], 4), np.nan), nan_to_null=True
            ),
            "quantity": minutes,
            "unit": "minutes",
            "detail": _pick(_RUNNERS, runner),
            "repo": prs["repo"].gather(source_row),
            "_branch": prs["branch"].gather(source_row),
            "_on_branch": on_branch,
        }
    ).with_columns(pl.when("_on_branch").then(pl.col("_branch")).otherwise(pl.lit("main")).alias("branch"))


def _review_costs(rng: np.random.Generator, prs: pl.DataFrame, people: pl.DataFrame) -> pl.DataFrame:
    """Reviewers' time on each review, priced at the reviewer's loaded hourly cost."""
    row = np.repeat(np.arange(prs.height), prs["reviews"].to_numpy())
    n = len(row)
    first_review = prs["_first_review"].to_numpy()[row]
    merged = prs["_merged"].to_numpy()[row]
    at = np.minimum(first_review + rng.exponential(0.3, n), np.where(np.isnan(merged), _LAST_MOMENT, merged))
    at = np.maximum(at, first_review)
    author = prs["_author"].to_numpy()[row]
    team_of_row = _REPO_TEAM[prs["_repo"].to_numpy()[row]]
    kind = people["kind"].to_numpy()
    person_team = people["team_id"].to_numpy()
    reviewer = np.zeros(n, dtype=np.int64)
    for t, team_id in enumerate(_TEAM_IDS):
        rows = np.flatnonzero(team_of_row == t)
        members = np.flatnonzero((kind == "human") & (person_team == team_id))
        slot = rng.integers(0, len(members), len(rows))
        slot = np.where(members[slot] == author[rows], (slot + 1) % len(members), slot)
        reviewer[rows] = members[slot]
    agent_pr = prs["author_kind"].to_numpy()[row] == "agent"
    minutes = np.round(rng.lognormal(np.log(np.where(agent_pr, 25.0, 18.0)), 0.8), 1)
    rate = people["hourly_cost"].fill_null(0.0).to_numpy()[reviewer]
    return pl.DataFrame(
        {
            "_at": at,
            "source": "review",
            "amount": np.round(minutes / 60 * rate, 2),
            "quantity": minutes,
            "unit": "minutes",
            "detail": "code review",
            "person_id": _pick(people["person_id"].to_list(), reviewer),
            "pr_id": prs["pr_id"].gather(row),
            "repo": prs["repo"].gather(row),
        }
    )


def _people_costs(rng: np.random.Generator, people: pl.DataFrame, clock: _Clock) -> pl.DataFrame:
    """Each person's loaded cost per week (Mondays), known only by person."""
    humans = people.filter(pl.col("kind") == "human")
    first_monday = (7 - clock.start.weekday()) % 7
    weeks = np.arange(first_monday, HISTORY_DAYS, 7, dtype=float)
    person = np.repeat(np.arange(humans.height), len(weeks))
    at = np.tile(weeks, humans.height)
    u = rng.random(len(at))
    hours = np.round(40 * np.where(u < 0.06, 0.0, np.where(u < 0.1, 0.5, rng.uniform(0.9, 1.05, len(at)))), 1)
    worked = hours > 0
    rate = humans["hourly_cost"].to_numpy()[person]
    return pl.DataFrame(
        {
            "_at": at[worked],
            "source": "people",
            "amount": np.round(hours * rate, 2)[worked],
            "quantity": hours[worked],
            "unit": "hours",
            "detail": "loaded salary",
            "person_id": humans["person_id"].gather(person[worked]),
        }
    )


def _other_costs(rng: np.random.Generator, plan: _FeaturePlan, items: pl.DataFrame, clock: _Clock) -> pl.DataFrame:
    """Vendor invoices: monthly tooling (some by team), per-feature purchases, contractor work items."""
    months = [d for d in clock.dates[:HISTORY_DAYS] if d.day == 1]
    month_days = np.array([clock.day_of(d) for d in months], dtype=float)
    vendor = np.repeat(np.arange(len(_VENDORS)), len(months))
    base = np.array([v[2] for v in _VENDORS])[vendor]
    monthly = pl.DataFrame(
        {
            "_at": np.tile(month_days, len(_VENDORS)) + 0.4,
            "source": "other",
            "amount": np.round(base * rng.uniform(0.9, 1.15, len(vendor)), 2),
            "detail": _pick([v[0] for v in _VENDORS], vendor),
            "team_id": _pick([v[1] or "" for v in _VENDORS], vendor).replace("", None),
        }
    )
    bought = np.flatnonzero(~np.isnan(plan.started) & (rng.random(len(plan.ids)) < 0.1))
    until = np.where(np.isnan(plan.ended[bought]), _LAST_MOMENT, plan.ended[bought])
    per_feature = pl.DataFrame(
        {
            "_at": plan.started[bought] + rng.random(len(bought)) * (until - plan.started[bought]),
            "source": "other",
            "amount": np.round(rng.lognormal(np.log(8_000), 0.6, len(bought)), 2),
            "detail": _pick(_FEATURE_VENDORS, rng.integers(0, len(_FEATURE_VENDORS), len(bought))),
            "feature_id": _pick(plan.ids, bought),
        }
    )
    resolved = items["_resolved"].to_numpy()
    contracted = np.flatnonzero(~np.isnan(resolved) & (rng.random(items.height) < 0.03))
    contractors = pl.DataFrame(
        {
            "_at": np.minimum(resolved[contracted] + rng.uniform(1, 10, len(contracted)), _LAST_MOMENT),
            "source": "other",
            "amount": np.round(rng.uniform(500, 4_000, len(contracted)), 2),
            "detail": "Contractor invoice",
            "work_item_key": items["work_item_key"].gather(contracted),
        }
    )
    return pl.concat([monthly, per_feature, contractors], how="diagonal_relaxed")

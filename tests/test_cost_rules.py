"""The rule table, the account-key rule and the one price table, on tiny organisations worked out by hand."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from core import users
from core.cli import commands as cli
from core.costs import RULE_TABLE, RULES, CostSettings, attribute_cost_rollup, attribute_costs
from core.costs.pricing import CIRCLECI_CREDIT, MODEL_PRICES, model_price
from core.importing import import_options, plan_import, run_import
from core.model.schema import coerce, validate
from core.store import settings as workspace_settings
from core.store.database import Store, open_store
from core.store.workspace import Workspace


def _frame(entity: str, rows: list[dict[str, object]]) -> pl.LazyFrame:
    return coerce(entity, pl.DataFrame(rows, infer_schema_length=None)).lazy()


FEATURES = _frame(
    "features",
    [
        {"feature_id": "F1", "name": "Autosave", "team_id": "T1", "status": "in_progress"},
        {"feature_id": "F2", "name": "Export", "team_id": "T1", "status": "in_progress"},
    ],
)
PEOPLE = _frame("people", [{"person_id": "alice", "name": "Alice", "team_id": "T1", "kind": "human"}])
PULL_REQUESTS = _frame(
    "pull_requests",
    [
        {
            "pr_id": f"api#{n}",
            "repo": "api",
            "number": n,
            "author_id": "alice",
            "author_kind": "human",
            "team_id": "T1",
            "state": "merged",
            "created_at": "2026-01-06 10:00",
            "merged_at": "2026-01-07 10:00",
            "title": "change",
            "branch": "main-change",
            "feature_id": feature,
        }
        for n, feature in ((1, "F1"), (2, "F2"))
    ],
)
WORK_ITEMS = _frame("work_items", [{"work_item_key": "PAY-1", "feature_id": "F1", "title": "x", "type": "story"}])
COST_KEYS = _frame(
    "cost_keys",
    [
        {"key": "sk-export", "feature_id": "F2"},
        {"key": "sk-alice", "person_id": "alice"},
        {"key": "ws-team", "team_id": "T1"},
    ],
)


def _event(event_id: str, amount: float, **fields: object) -> dict[str, object]:
    return {"event_id": event_id, "occurred_at": "2026-01-06 12:00", "source": "llm", "amount": amount, **fields}


COST_EVENTS = _frame(
    "cost_events",
    [
        _event("K1", 10.0, account_key="sk-export"),  # key → feature F2: 10 to F2
        _event("K2", 8.0, account_key="sk-alice"),  # key → alice, active on F1 and F2 (1 PR each): 4 + 4
        _event("K3", 6.0, account_key="unknown", account_scope="ws-team"),  # scope → team T1: 3 + 3
        _event("K4", 5.0, account_key="sk-export", pr_id="api#1"),  # the PR link comes first: 5 to F1
        _event("K5", 7.0, account_key="sk-alice", account_scope="ws-team"),  # the key before the scope: 3.5 + 3.5
        _event("K6", 2.0, account_key="nobody"),  # mapped nowhere: unattributed
    ],
)


def _attribute(settings: CostSettings | None = None) -> pl.DataFrame:
    return attribute_costs(
        COST_EVENTS, PULL_REQUESTS, WORK_ITEMS, FEATURES, PEOPLE, settings or CostSettings(), COST_KEYS
    ).collect()


def test_rule_table_orders_account_key_after_links_and_before_splits() -> None:
    assert RULES == ("direct", "pull_request", "work_item", "account_key", "time_allocation", "repo_activity")
    assert [rule.order for rule in RULE_TABLE] == [1, 2, 3, 4, 5, 6]
    assert RULE_TABLE[3].keys == ("account_key", "account_scope")


def test_account_key_lines_by_hand() -> None:
    lines = _attribute()
    per_feature = dict(lines.group_by("feature_id").agg(pl.col("amount").sum()).iter_rows())
    assert per_feature["F1"] == pytest.approx(4 + 3 + 5 + 3.5)
    assert per_feature["F2"] == pytest.approx(10 + 4 + 3 + 3.5)
    assert per_feature[None] == pytest.approx(2.0)
    by_rule = dict(lines.group_by("rule").agg(pl.col("amount").sum()).iter_rows())
    assert by_rule == pytest.approx({"account_key": 31.0, "pull_request": 5.0, "unattributed": 2.0})
    k1 = lines.filter(pl.col("event_id") == "K1").row(0, named=True)
    assert (k1["feature_id"], k1["share"], k1["link"]) == ("F2", 1.0, "via account key sk-export → feature F2")
    k5 = lines.filter(pl.col("event_id") == "K5").sort("feature_id")
    assert k5["share"].to_list() == [0.5, 0.5]
    assert k5["link"][0] == "via account key sk-alice → via time allocation (alice, 2026-W02: 1 of 2)"
    k3 = lines.filter(pl.col("event_id") == "K3")
    assert k3["link"][0].startswith("via account key ws-team → via team activity (T1, 2026-W02")
    k6 = lines.filter(pl.col("event_id") == "K6").row(0, named=True)
    assert k6["reason"] == "account key nobody is not mapped to a team, person or feature"


def test_account_key_rollup_equals_lines_and_shows_coverage() -> None:
    rollup = attribute_cost_rollup(
        COST_EVENTS, PULL_REQUESTS, WORK_ITEMS, FEATURES, PEOPLE, CostSettings(), COST_KEYS
    ).collect()
    by_rule = dict(rollup.group_by("rule").agg(pl.col("amount").sum()).iter_rows())
    assert by_rule == pytest.approx({"account_key": 31.0, "pull_request": 5.0, "unattributed": 2.0})
    assert rollup.filter(pl.col("rule") == "account_key")["lines"].sum() == 1 + 2 + 2 + 2


def test_account_key_rule_off_leaves_key_only_events_unattributed() -> None:
    lines = _attribute(CostSettings().without("account_key"))
    assert dict(lines.group_by("rule").agg(pl.col("amount").sum()).iter_rows()) == pytest.approx(
        {"pull_request": 5.0, "unattributed": 33.0}
    )


def test_cost_keys_must_map_to_exactly_one_target() -> None:
    frame = pl.DataFrame(
        {"key": ["a", "b"], "team_id": ["T1", None], "person_id": ["alice", None], "feature_id": [None, None]}
    )
    problems = [str(p) for p in validate("cost_keys", frame)]
    assert problems == [
        "cost_keys row 1, column `team_id, person_id, feature_id`: `T1, alice` maps to more than one of a team, "
        "a person or a feature; set exactly one",
        "cost_keys row 2, column `team_id, person_id, feature_id`: maps to none of a team, a person or a feature; "
        "set exactly one",
    ]


# --- the one price table ---------------------------------------------------------------------------------------


def test_price_table_matches_longest_prefix_and_names_its_source() -> None:
    assert model_price("claude-opus-4-5-20251101") == MODEL_PRICES["claude-opus-4-5"]
    assert (MODEL_PRICES["claude-opus-4-5"].input, MODEL_PRICES["claude-opus-4-5"].output) == (5.0, 25.0)
    assert model_price("anthropic/claude-opus-4-20250514") == MODEL_PRICES["claude-opus-4"]
    assert model_price("gpt-5-mini-2025-08-07").input == 0.25  # type: ignore[union-attr]
    assert model_price("in-house-llm") is None
    assert all(p.source.startswith("https://") and p.read_on for p in MODEL_PRICES.values())
    assert CIRCLECI_CREDIT.price == pytest.approx(0.0006)


def test_attribution_prices_from_the_one_table() -> None:
    events = _frame(
        "cost_events",
        [
            {"event_id": "P1", "occurred_at": "2026-01-06", "source": "llm", "quantity": 1e6, "unit": "input tokens",
             "detail": "claude-opus-4-5-20251101"},
            {"event_id": "P2", "occurred_at": "2026-01-06", "source": "llm", "quantity": 1e6, "unit": "output tokens",
             "detail": "claude-sonnet-4-5"},
            {"event_id": "P3", "occurred_at": "2026-01-06", "source": "llm", "quantity": 2e6, "unit": "input tokens",
             "detail": "gpt-5-mini"},
            {"event_id": "P4", "occurred_at": "2026-01-06", "source": "ci", "quantity": 25_000.0, "unit": "credits",
             "detail": "medium"},
        ],
    )  # fmt: skip
    lines = attribute_costs(events, PULL_REQUESTS, WORK_ITEMS, FEATURES, PEOPLE).collect().sort("event_id")
    assert lines["event_amount"].to_list() == pytest.approx([5.0, 15.0, 0.5, 15.0])


@pytest.fixture
def import_store(tmp_path: Path) -> Store:
    return open_store(Workspace(home=tmp_path, database_url=f"sqlite:///{tmp_path / 't.db'}"))


def _import(store: Store, path: Path) -> None:
    run_import(store, plan_import(path, store=store), actor="tester")


def test_importers_price_from_the_one_table(import_store: Store, tmp_path: Path) -> None:
    anthropic = tmp_path / "anthropic_usage.csv"
    anthropic.write_text(
        "usage_date_utc,model_version,api_key,workspace,usage_type,context_window,usage_input_tokens_no_cache,"
        "usage_input_tokens_cache_write_5m,usage_input_tokens_cache_write_1h,usage_input_tokens_cache_read,"
        "usage_output_tokens,web_search_count,inference_geo,speed\n"
        "2026-02-04,claude-opus-4-5-20251101,ci-agent,Default,message,≤ 200k,1000000,0,0,0,100000,0,not_available,\n"
        "2026-02-04,claude-sonnet-4-5,ci-agent,Default,message,≤ 200k,1000000,0,0,0,0,0,not_available,\n"
    )
    openai = tmp_path / "openai_completions_usage.csv"
    openai.write_text(
        "start_time,end_time,start_time_iso,end_time_iso,project_id,num_model_requests,user_id,api_key_id,model,"
        "batch,service_tier,input_tokens,output_tokens,input_cached_tokens,input_uncached_tokens\n"
        "1769904000,1769990400,2026-02-01T00:00:00+00:00,2026-02-02T00:00:00+00:00,proj_1,3,user-1,key_1,"
        "gpt-5-mini-2025-08-07,FALSE,default,1000000,100000,0,1000000\n"
    )
    circleci = tmp_path / "circleci_usage.csv"
    source = (Path(__file__).parent / "fixtures" / "imports" / "circleci_usage.csv").read_text().splitlines()
    header, first = source[0], source[1]
    cells = first.split(",")
    cells[-1] = "25000"
    circleci.write_text(header + "\n" + ",".join(cells) + "\n")
    for path in (anthropic, openai, circleci):
        _import(import_store, path)
    costs = import_store.read("cost_events")
    by_detail = {d: a for d, a in costs.select("detail", "amount").iter_rows()}
    opus = next(a for d, a in by_detail.items() if "opus-4-5" in (d or ""))
    sonnet = next(a for d, a in by_detail.items() if "sonnet-4-5" in (d or ""))
    mini = next(a for d, a in by_detail.items() if "gpt-5-mini" in (d or ""))
    assert opus == pytest.approx(1.0 * 5.0 + 0.1 * 25.0)
    assert sonnet == pytest.approx(3.0)
    assert mini == pytest.approx(0.25 + 0.1 * 2.0)
    assert costs.filter(pl.col("source") == "ci")["amount"].sum() == pytest.approx(25_000 * 0.0006)


def test_a_price_set_once_changes_the_imported_and_the_attributed_amount(store: Store, tmp_path: Path) -> None:
    workspace_settings.save(
        store,
        CostSettings(model_prices=(("claude-opus-4-5", 10.0, 50.0),), circleci_credit_price=0.001),
        actor="admin",
    )
    anthropic = tmp_path / "anthropic_usage.csv"
    anthropic.write_text(
        "usage_date_utc,model_version,api_key,workspace,usage_type,context_window,usage_input_tokens_no_cache,"
        "usage_input_tokens_cache_write_5m,usage_input_tokens_cache_write_1h,usage_input_tokens_cache_read,"
        "usage_output_tokens,web_search_count,inference_geo,speed\n"
        "2026-02-04,claude-opus-4-5-20251101,ci-agent,Default,message,≤ 200k,1000000,0,0,1000000,100000,0,"
        "not_available,\n"
    )
    circleci = tmp_path / "circleci_usage.csv"
    source = (Path(__file__).parent / "fixtures" / "imports" / "circleci_usage.csv").read_text().splitlines()
    cells = source[1].split(",")
    cells[-1] = "25000"
    circleci.write_text(source[0] + "\n" + ",".join(cells) + "\n")
    for path in (anthropic, circleci):
        run_import(store, plan_import(path, store=store, options=import_options(store)), actor="tester")
    imported = store.read("cost_events")
    # 1M input × $10 + 1M cache reads × $1 (the table's 0.5 at a doubled input price) + 0.1M output × $50
    assert imported.filter(pl.col("source") == "llm")["amount"].sum() == pytest.approx(10.0 + 1.0 + 5.0)
    assert imported.filter(pl.col("source") == "ci")["amount"].sum() == pytest.approx(25_000 * 0.001)
    events = _frame(
        "cost_events",
        [
            {"event_id": "Q1", "occurred_at": "2026-01-06", "source": "llm", "quantity": 1e6, "unit": "input tokens",
             "detail": "claude-opus-4-5-20251101"},
            {"event_id": "Q2", "occurred_at": "2026-01-06", "source": "ci", "quantity": 25_000.0, "unit": "credits",
             "detail": "medium"},
        ],
    )  # fmt: skip
    saved = workspace_settings.load(store, CostSettings)
    lines = attribute_costs(events, PULL_REQUESTS, WORK_ITEMS, FEATURES, PEOPLE, saved).collect().sort("event_id")
    assert lines["event_amount"].to_list() == pytest.approx([10.0, 25.0])
    rollup = attribute_cost_rollup(events, PULL_REQUESTS, WORK_ITEMS, FEATURES, PEOPLE, saved).collect()
    assert rollup["amount"].sum() == pytest.approx(35.0)


def test_an_unchanged_price_row_keeps_the_table_entry_and_a_bad_credit_price_is_refused() -> None:
    assert CostSettings().model_price_map == dict(MODEL_PRICES)
    assert CostSettings(model_prices=(("in-house-llm", 0.5, 1.0),)).model_price_map["in-house-llm"].cached_input is None
    with pytest.raises(ValueError, match="CircleCI credit price"):
        CostSettings(circleci_credit_price=-1.0)


# --- python -m core report cost-lines ----------------------------------------------------------------------------


@pytest.fixture
def cli_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    store = open_store(Workspace(home=tmp_path, database_url=f"sqlite:///{tmp_path / 'throughline.db'}"))
    store.write(
        {
            "teams": pl.DataFrame({"team_id": ["T1", "T2"], "name": ["Payments", "Web"]}),
            "people": PEOPLE.collect(),
            "features": FEATURES.collect(),
            "work_items": WORK_ITEMS.collect(),
            "pull_requests": PULL_REQUESTS.collect(),
            "cost_keys": COST_KEYS.collect(),
            "cost_events": COST_EVENTS.collect(),
        }
    )
    users.create_user(store, "lead2", "Lead Two", "team_lead", "a-long-password-1", team_id="T2")
    store.engine.dispose()
    monkeypatch.setenv("THROUGHLINE_HOME", str(tmp_path))
    monkeypatch.delenv("THROUGHLINE_DATABASE_URL", raising=False)
    return tmp_path


def test_cost_lines_report_lists_the_lines_behind_a_feature(cli_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["report", "cost-lines", "--feature", "F2", "--format", "json"]) == 0
    rows = sorted(json.loads(capsys.readouterr().out), key=lambda r: r["event_id"])
    assert [(r["event_id"], r["rule"], r["share"], r["amount"], r["currency"]) for r in rows] == [
        ("K1", "account_key", 1.0, 10.0, "USD"),
        ("K2", "account_key", 0.5, 4.0, "USD"),
        ("K3", "account_key", 0.5, 3.0, "USD"),
        ("K5", "account_key", 0.5, 3.5, "USD"),
    ]
    assert rows[0]["explanation"] == "via account key sk-export → feature F2"
    assert set(rows[0]) == {"event_id", "occurred_at", "source", "amount", "currency", "rule", "share", "explanation"}


def test_cost_lines_report_refuses_a_viewer_without_detail(cli_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["report", "cost-lines", "--feature", "F2", "--as", "lead2"]) == 1
    assert "lead2 may not see the cost lines of feature `F2`" in capsys.readouterr().err

"""The pilot's own exports: vendor samples priced to the cent, teams from the data, account keys, one currency.

Each sample is written to the vendor's documented columns; each expected total is worked out by hand in the test.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
from pathlib import Path

import polars as pl
import pytest

from core import access
from core.access import Viewer
from core.cli.commands import build_parser
from core.cli.imports import add_commands
from core.importing import ImportOptions, plan_import, run_import, undo_import
from core.store.database import Store

FIXTURES = Path(__file__).parent / "fixtures" / "imports"
ADMIN = Viewer.local_admin()
CIRCLECI_COLUMNS = (FIXTURES / "circleci_usage.csv").read_text().splitlines()[0].split(",")

OPENAI_COST_HEADER = (
    "start_time,end_time,start_time_iso,end_time_iso,amount_value,amount_currency,line_item,project_id,"
    "organization_id,organization_name\n"
)
OPENAI_COST = OPENAI_COST_HEADER + (
    "1772409600,1772496000,2026-03-02T00:00:00+00:00,2026-03-03T00:00:00+00:00,1.25,usd,"
    '"gpt-4o-2024-08-06, input",proj_A,org-1,Acme\n'
    "1772409600,1772496000,2026-03-02T00:00:00+00:00,2026-03-03T00:00:00+00:00,1.74,usd,"
    '"gpt-4o-2024-08-06, output",proj_A,org-1,Acme\n'
)
OPENAI_USAGE = (
    "start_time,end_time,start_time_iso,end_time_iso,project_id,num_model_requests,user_id,api_key_id,model,batch,"
    "service_tier,input_tokens,output_tokens,input_cached_tokens\n"
    "1772409600,1772496000,2026-03-02T00:00:00+00:00,2026-03-03T00:00:00+00:00,proj_A,40.0,user-1,key_A,"
    "gpt-4o-2024-08-06,FALSE,default,1000000.0,100000.0,200000.0\n"
    "1772496000,1772582400,2026-03-03T00:00:00+00:00,2026-03-04T00:00:00+00:00,proj_A,12.0,user-1,key_A,"
    "gpt-4o-mini-2024-07-18,FALSE,default,1000000.0,500000.0,0.0\n"
)
ANTHROPIC_HEADER = (
    "usage_date_utc,model,workspace,api_key,usage_type,context_window,token_type,cost_usd,list_price_usd,cost_type,"
    "inference_geo,speed,api_key_id,api_key_status\n"
)


def circleci(*rows: dict[str, str]) -> str:
    """A CircleCI usage export with the given cells (the rest `\\N`, as CircleCI writes nulls)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CIRCLECI_COLUMNS)
    for row in rows:
        writer.writerow([row.get(c, "\\N") for c in CIRCLECI_COLUMNS])
    return out.getvalue()


def job(job_id: str, branch: str, credits: str, **cells: str) -> dict[str, str]:
    """One CircleCI job run of project `web` on ``branch``."""
    return {
        "PROJECT_NAME": "web",
        "VCS_URL": "https://github.com/acme/web",
        "VCS_BRANCH": branch,
        "WORKFLOW_NAME": "build-test",
        "JOB_NAME": "test",
        "JOB_ID": job_id,
        "JOB_RUN_STARTED_AT": "2026-03-02 10:00:00.000",
        "RESOURCE_CLASS": "medium",
        "TOTAL_CREDITS": credits,
        **cells,
    }


def pull(number: int, title: str, branch: str, login: str, bot: bool = False) -> dict[str, object]:
    """One pull request as GitHub's REST list endpoint returns it (the fields the importer reads)."""
    return {
        "url": f"https://api.github.com/repos/acme/web/pulls/{number}",
        "html_url": f"https://github.com/acme/web/pull/{number}",
        "number": number,
        "state": "closed",
        "title": title,
        "user": {"login": login, "type": "Bot" if bot else "User"},
        "created_at": "2026-03-01T09:00:00Z",
        "merged_at": "2026-03-02T15:00:00Z",
        "merge_commit_sha": f"abc{number}",
        "head": {"ref": branch},
        "base": {"ref": "main", "repo": {"full_name": "acme/web"}},
    }


def imported(store: Store, name: str, text: str, tmp_path: Path, **kwargs: object):  # type: ignore[no-untyped-def]
    """Plan ``text`` as the file ``name`` against ``store`` and import it; the plan (with its notes)."""
    path = tmp_path / name
    path.write_text(text)
    plan = plan_import(path, store=store, **kwargs)  # type: ignore[arg-type]
    assert plan.problems == [], [str(p) for p in plan.problems]
    record = run_import(store, plan, actor="tester")
    return plan, record


def total(store: Store, source: str | None = None) -> float:
    events = store.read("cost_events")
    if source is not None:
        events = events.filter(pl.col("source") == source)
    return round(float(events["amount"].sum()), 6)


# -- OpenAI: the cost export is the money --------------------------------------------------------------
def test_openai_usage_after_the_cost_export_adds_tokens_not_money(store: Store, tmp_path: Path) -> None:
    imported(store, "openai_costs.csv", OPENAI_COST, tmp_path)
    plan, _ = imported(store, "openai_usage.csv", OPENAI_USAGE, tmp_path)
    # 2 Mar: the cost export's 1.25 + 1.74; 3 Mar has no cost export, so usage prices it:
    # gpt-4o-mini 1,000,000 input × $0.15/M + 500,000 output × $0.60/M = 0.15 + 0.30.
    assert total(store) == pytest.approx(1.25 + 1.74 + 0.15 + 0.30)
    assert any("1 usage bucket(s) fall on days an imported OpenAI cost export already prices" in n for n in plan.notes)
    usage = store.read("cost_events").filter(pl.col("event_id").str.starts_with("openai-usage|")).sort("occurred_at")
    assert usage["amount"].to_list()[0] is None and usage["quantity"].to_list() == [1_100_000, 1_500_000]
    assert usage["account_key"].to_list() == ["key_A", "key_A"] and set(usage["account_scope"]) == {"proj_A"}


def test_an_openai_cost_export_after_usage_takes_over_the_money_and_undo_gives_it_back(
    store: Store, tmp_path: Path
) -> None:
    imported(store, "openai_usage.csv", OPENAI_USAGE, tmp_path)
    # Usage alone, 2 Mar: gpt-4o 800,000 uncached × 2.50/M + 200,000 cached × 1.25/M + 100,000 output × 10/M.
    assert total(store) == pytest.approx(2.00 + 0.25 + 1.00 + 0.45)
    plan, record = imported(store, "openai_costs.csv", OPENAI_COST, tmp_path)
    assert any("1 stored OpenAI usage bucket(s) of these days keep their tokens" in n for n in plan.notes)
    assert total(store) == pytest.approx(2.99 + 0.45)
    assert store.read("cost_events")["quantity"].sum() == 1_100_000 + 1_500_000
    undo_import(store, record.import_id, "tester")
    assert total(store) == pytest.approx(3.25 + 0.45)


# -- CircleCI and Anthropic placeholders ---------------------------------------------------------------
def test_circleci_nulls_written_with_one_or_two_backslashes_are_empty(store: Store, tmp_path: Path) -> None:
    text = circleci(
        job("j-1", "feature/PAY-7-retry", "1000", RESOURCE_CLASS="\\\\N", PIPELINE_TRIGGER_USER_ID="u-123"),
        job("j-2", "\\N", "250", PIPELINE_TRIGGER_USER_ID="\\\\N"),
    )
    imported(store, "circleci.csv", text, tmp_path, options=ImportOptions(work_item_projects=("PAY",)))
    events = store.read("cost_events").sort("quantity", descending=True)
    assert total(store) == pytest.approx(1000 * 0.0006 + 250 * 0.0006)  # 0.60 + 0.15
    assert events["detail"].to_list() == ["build-test/test (?)", "build-test/test (medium)"]
    assert events["branch"].to_list() == ["feature/PAY-7-retry", None]
    assert events["work_item_key"].to_list() == ["PAY-7", None]
    assert events["account_key"].to_list() == ["u-123", None] and set(events["account_scope"]) == {"web"}


def test_anthropic_placeholders_are_empty_and_each_api_key_is_kept(store: Store, tmp_path: Path) -> None:
    text = ANTHROPIC_HEADER + (
        "2026-03-02,Claude Sonnet 4.5,Default,checkout-agent,message,≤ 200k,input_no_cache,1.20,1.20,token,"
        "not_available,--,apikey_01A,active\n"
        "2026-03-02,--,Agents,growth-agent,web_search,--,--,0.10,0.10,web_search,--,--,apikey_01B,active\n"
        "2026-03-02,--,Agents,growth-agent,code_execution,--,--,--,--,--,--,--,apikey_01B,active\n"
    )
    plan, _ = imported(store, "anthropic_cost.csv", text, tmp_path)
    events = store.read("cost_events").sort("amount")
    assert total(store) == pytest.approx(1.20 + 0.10)  # the `--` cost line has no money and is skipped
    assert plan.skipped == 1
    assert not any("--" in d for d in events["detail"])
    assert events["account_key"].to_list() == ["growth-agent", "checkout-agent"]
    assert events["account_scope"].to_list() == ["Agents", "Default"]


# -- work-item keys only from known projects ---------------------------------------------------------
def test_branch_names_give_keys_only_for_known_projects(store: Store, tmp_path: Path) -> None:
    pulls = json.dumps(
        [
            pull(1, "Fix typo", "patch-1", "alice"),
            pull(2, "Add code of conduct", "add-code-of-conduct-1", "alice"),
            pull(3, "Bump dbt", "upgrade-dbt-0-17", "dependabot[bot]", bot=True),
            pull(4, "Retry payments", "pay-12-retry", "alice"),
        ]
    )
    plan, _ = imported(store, "pulls.json", pulls, tmp_path)
    assert store.read("pull_requests")["work_item_key"].null_count() == 4  # no project is known yet
    assert any("not a known project" in n and "PATCH-1" in n for n in plan.notes)
    store.write({"work_items": pl.DataFrame({"work_item_key": ["PAY-3"]})})
    imported(store, "pulls.json", pulls, tmp_path)
    keys = dict(store.read("pull_requests").select("number", "work_item_key").rows())
    assert keys == {1: None, 2: None, 3: None, 4: "PAY-12"}


# -- one currency ------------------------------------------------------------------------------------
def test_cost_in_another_currency_is_refused_naming_file_row_and_value_unless_a_rate_is_set(
    store: Store, tmp_path: Path
) -> None:
    text = OPENAI_COST_HEADER + (
        "1772409600,1772496000,2026-03-02T00:00:00+00:00,2026-03-03T00:00:00+00:00,1.00,usd,a,proj_A,org-1,Acme\n"
        "1772409600,1772496000,2026-03-02T00:00:00+00:00,2026-03-03T00:00:00+00:00,2.00,eur,b,proj_A,org-1,Acme\n"
    )
    path = tmp_path / "costs_eur.csv"
    path.write_text(text)
    refused = plan_import(path, store=store)
    assert [str(p) for p in refused.problems] == [
        "costs_eur.csv: cost_events row 2, column `currency`: `EUR` is not the workspace currency USD; set its rate "
        "to USD in the import settings (`import.currency_rates`) to convert it"
    ]
    assert refused.rejected == {"cost_events": 1}
    store.set_setting("import.currency_rates", {"EUR": 1.1})
    from core.importing import options_from_settings

    plan, _ = imported(store, "costs_eur.csv", text, tmp_path, options=options_from_settings(store.settings("import.")))
    assert total(store) == pytest.approx(1.00 + 2.00 * 1.1)
    assert set(store.read("cost_events")["currency"]) == {"USD"}
    assert any("1 amount(s) in EUR converted to USD at the set rate 1.1" in n for n in plan.notes)


# -- teams ---------------------------------------------------------------------------------------------
def test_teams_are_created_renamed_and_merged_with_every_row_moved(store: Store) -> None:
    payments = access.create_team(store, ADMIN, "Payments Squad")
    assert payments == "payments-squad"
    store.write({"teams": pl.DataFrame({"team_id": ["pay"], "name": ["pay"]})})
    store.write(
        {
            "features": pl.DataFrame(
                {"feature_id": ["F1"], "name": ["Checkout"], "team_id": ["pay"], "status": ["planned"]}
            ),
            "people": pl.DataFrame({"person_id": ["alice"], "name": ["Alice"], "team_id": ["pay"], "kind": ["human"]}),
        }
    )
    access.rename_team(store, ADMIN, payments, "Payments")
    moved = access.merge_teams(store, ADMIN, "pay", payments)
    assert moved == {"people": 1, "features": 1}
    assert store.read("teams").rows() == [("payments-squad", "Payments")]
    assert store.read("features")["team_id"].to_list() == ["payments-squad"]
    with pytest.raises(access.AccessDenied):
        access.create_team(store, Viewer("dl", "Dana", "delivery_lead"), "Growth")
    with pytest.raises(ValueError, match="already exists"):
        access.create_team(store, ADMIN, "Payments Squad")


def test_unmapped_account_keys_list_their_spend_until_mapped(store: Store) -> None:
    store.write({"teams": pl.DataFrame({"team_id": ["pay"], "name": ["Payments"]})})
    events = pl.DataFrame(
        {
            "event_id": ["a", "b", "c"],
            "occurred_at": ["2026-03-02"] * 3,
            "source": ["llm"] * 3,
            "amount": [1.20, 4.50, 2.30],
            "currency": ["USD"] * 3,
            "account_key": ["checkout-agent", "checkout-agent", "growth-agent"],
            "account_scope": ["Default", "Default", "Agents"],
        }
    )
    store.write({"cost_events": events})
    listed = access.unmapped_cost_accounts(store, ADMIN)
    assert listed.select("account_key", "events", "spend").rows() == [
        ("checkout-agent", 2, 5.70),
        ("growth-agent", 1, 2.30),
    ]
    access.map_cost_account(store, ADMIN, "checkout-agent", team_id="pay")
    assert access.unmapped_cost_accounts(store, ADMIN)["account_key"].to_list() == ["growth-agent"]
    assert store.read("cost_keys").rows() == [("checkout-agent", "pay", None, None)]
    with pytest.raises(ValueError, match="exactly one"):
        access.map_cost_account(store, ADMIN, "growth-agent", team_id="pay", feature_id="F1")


def test_a_key_map_row_must_name_exactly_one_target(store: Store, tmp_path: Path) -> None:
    store.write({"teams": pl.DataFrame({"team_id": ["pay"], "name": ["Payments"]})})
    path = tmp_path / "keys.csv"
    path.write_text("key,team_id,person_id,feature_id\nk1,pay,,\nk2,,,\nk3,Payments,,\n")
    plan = plan_import(path, entity="cost_keys", store=store)
    assert [(p.row, p.expected) for p in plan.problems] == [
        (2, "maps to none of a team, a person or a feature; set exactly one")
    ]
    run_import(store, plan, actor="tester", skip_invalid=True)
    assert dict(store.read("cost_keys").select("key", "team_id").rows()) == {"k1": "pay", "k3": "pay"}  # by name


def test_report_help_prints_instead_of_raising(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        build_parser().parse_args(["report", "--help"])
    assert done.value.code == 0
    assert "95% interval" in capsys.readouterr().out


# -- the pilot, through the command line ---------------------------------------------------------------
JIRA_COLUMNS = (
    "Summary,Issue key,Issue id,Issue Type,Status,Status Category,Resolution,Created,Resolved,Assignee,Assignee Id,"
    "Custom field (Team),Custom field (Story point estimate),Parent,Parent summary"
)
JIRA_PILOT = (
    "\n".join(
        [
            JIRA_COLUMNS,
            "Faster checkout,PAY-1,10001,Epic,Done,Done,Done,02/Feb/26 9:00 AM,27/Feb/26 5:00 PM,,,Payments Squad,,,",
            "Onboarding emails,GRO-1,10002,Epic,In Progress,In Progress,,03/Feb/26 9:00 AM,,,,Growth,,,",
            "Checkout form,PAY-2,10003,Story,Done,Done,Done,04/Feb/26 9:00 AM,20/Feb/26 5:00 PM,Alice Martin,acc-alice,"
            ",3,10001,Faster checkout",
            "Card retry,PAY-3,10004,Story,Done,Done,Done,05/Feb/26 9:00 AM,25/Feb/26 5:00 PM,Alice Martin,acc-alice,"
            "Payments Squad,5,10001,Faster checkout",
            "Welcome email,GRO-2,10005,Story,In Progress,In Progress,,06/Feb/26 9:00 AM,,Bob Okafor,acc-bob,"
            "Growth,2,10002,Onboarding emails",
        ]
    )
    + "\n"
)
METRICS = """metric_id,name,level,unit,direction
checkout_conversion,Checkout conversion,outcome,%,higher
activation,Activation rate,outcome,%,higher
"""
OBSERVATIONS = """date,metric,value
2026-02-02,Checkout conversion,0.31
2026-03-02,Checkout conversion,0.34
2026-02-02,Activation rate,0.52
2026-03-02,Activation rate,0.55
"""
KEYS = """key,team_id,person_id,feature_id
checkout-agent,,,PAY-1
growth-agent,Growth,,
"""


PILOT_EXPORTS = {
    "jira.csv": JIRA_PILOT,
    "pulls.json": json.dumps(
        [
            pull(11, "Checkout form", "PAY-2-checkout-form", "alice-gh"),
            pull(12, "Bump lodash", "dependabot/npm_and_yarn/lodash-4.17.21", "dependabot[bot]", bot=True),
            pull(13, "GRO-2: welcome email", "claude/welcome", "claude-agent[bot]", bot=True),
        ]
    ),
    "circleci.csv": circleci(
        job("j-1", "PAY-2-checkout-form", "1000", PIPELINE_TRIGGER_USER_ID="u-alice"),
        job("j-2", "patch-1", "500", PIPELINE_TRIGGER_USER_ID="u-bob"),
    ),
    "anthropic.csv": ANTHROPIC_HEADER
    + "2026-03-02,Claude Sonnet 4.5,Default,checkout-agent,message,≤ 200k,input_no_cache,1.20,1.20,token,,,k1,"
    + "active\n"
    + "2026-03-02,Claude Sonnet 4.5,Default,checkout-agent,message,≤ 200k,output,4.50,4.50,token,,,k1,active\n"
    + "2026-03-03,Claude Haiku 4.5,Agents,growth-agent,message,≤ 200k,output,2.30,2.30,token,,,k2,active\n",
}
"""The pilot's four vendor exports, in each vendor's exact format (the browser pilot uploads the same files)."""


def cli(store: Store, *argv: str) -> int:
    parser = argparse.ArgumentParser(prog="python -m core")
    add_commands(parser.add_subparsers())
    args = parser.parse_args(list(argv))
    return args.run(store, args)


def test_a_pilot_imports_its_own_exports_through_the_cli(
    store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = {
        **PILOT_EXPORTS,
        "metrics.csv": METRICS,
        "observations.csv": OBSERVATIONS,
        "keys.csv": KEYS,
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    for name in ("jira.csv", "pulls.json", "circleci.csv", "anthropic.csv"):
        assert cli(store, "import", str(tmp_path / name)) == 0, capsys.readouterr().err
    assert cli(store, "import", str(tmp_path / "metrics.csv"), "--entity", "metrics") == 0
    assert cli(store, "import", str(tmp_path / "observations.csv")) == 0, capsys.readouterr().err
    assert cli(store, "import", str(tmp_path / "keys.csv"), "--entity", "cost_keys") == 0, capsys.readouterr().err

    assert sorted(store.read("teams").rows()) == [("growth", "Growth"), ("payments-squad", "Payments Squad")]
    assert dict(store.read("features").select("feature_id", "team_id").rows()) == {
        "PAY-1": "payments-squad",
        "GRO-1": "growth",
    }
    assert dict(store.read("work_items").select("work_item_key", "team_id").rows()) == {
        "PAY-2": "payments-squad",  # no Team of its own: its epic's
        "PAY-3": "payments-squad",
        "GRO-2": "growth",
    }
    people = dict(store.read("people").select("person_id", "team_id").rows())
    assert (people["acc-alice"], people["acc-bob"]) == ("payments-squad", "growth")
    prs = store.read("pull_requests").sort("number")
    assert prs.select("number", "work_item_key", "team_id", "author_kind").rows() == [
        (11, "PAY-2", "payments-squad", "human"),
        (12, None, None, "agent"),
        (13, "GRO-2", "growth", "agent"),
    ]
    ci = store.read("cost_events").filter(pl.col("source") == "ci").sort("quantity", descending=True)
    assert ci.select("work_item_key", "account_key", "account_scope").rows() == [
        ("PAY-2", "u-alice", "web"),
        (None, "u-bob", "web"),  # patch-1 names no project
    ]
    assert total(store, "ci") == pytest.approx(1000 * 0.0006 + 500 * 0.0006)  # $0.90
    assert total(store, "llm") == pytest.approx(1.20 + 4.50 + 2.30)  # $8.00
    llm = store.read("cost_events").filter(pl.col("source") == "llm")
    assert llm.group_by("account_key").agg(pl.col("amount").sum()).sort("account_key").rows() == [
        ("checkout-agent", pytest.approx(5.70)),
        ("growth-agent", pytest.approx(2.30)),
    ]
    assert set(store.read("cost_events")["currency"]) == {"USD"}
    assert sorted(store.read("cost_keys").rows()) == [
        ("checkout-agent", None, None, "PAY-1"),
        ("growth-agent", "growth", None, None),  # named by the team's name, stored by its id
    ]
    assert store.count("metric_observations") == 4
    unmapped = access.unmapped_cost_accounts(store, ADMIN)
    assert sorted(unmapped["account_key"].to_list()) == ["u-alice", "u-bob"]


# -- the pages on a pilot workspace ------------------------------------------------------------------
@pytest.fixture
def pilot_workspace(tmp_path: Path) -> dict[str, object]:
    """A workspace with one admin, the pilot's Jira export (no start dates) and two unmapped Anthropic keys."""
    from core import users
    from core.store.database import open_store
    from core.store.workspace import Workspace

    (tmp_path / "snapshot").mkdir()
    store = open_store(Workspace(home=tmp_path, database_url=f"sqlite:///{tmp_path / 'throughline.db'}"))
    store.create()
    users.create_user(store, "ada", "Ada", "admin", "pilot-password-1")
    imported(store, "jira.csv", JIRA_PILOT, tmp_path)
    text = ANTHROPIC_HEADER + (
        "2026-04-02,Claude Sonnet 4.5,Default,checkout-agent,message,≤ 200k,output,4.50,4.50,token,,,k1,active\n"
        "2026-04-03,Claude Haiku 4.5,Agents,growth-agent,message,≤ 200k,output,2.30,2.30,token,,,k2,active\n"
    )  # April: the last complete quarter is 2026 Q1, when PAY-1 was delivered without a start date
    imported(store, "anthropic.csv", text, tmp_path)
    store.snapshot()
    store.engine.dispose()

    class Login:
        username, password = "ada", "pilot-password-1"

    return {"home": tmp_path, "logins": {"admin": Login}}


def test_home_teams_and_key_map_pages_work_on_a_pilot_workspace(
    pilot_workspace: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.apptest import rendered_text, signed_in

    at = signed_in(pilot_workspace, "admin", monkeypatch)  # Home: its features have no start date
    text = rendered_text(at)
    assert "2026 Q1" in text and "Features delivered 1" in text
    assert "Median feature lead time — " in text and "1 of 1 have no start date" not in text  # help is not rendered
    assert "USD" in text and "$" not in text
    # the checklist's coverage is what was reached: none of the 4.50 + 2.30 of agent cost reaches a feature
    assert "**Cost per feature** · coverage 0%" in text
    assert "0.00 of 6.80 USD attributed to a feature" in text

    at.switch_page("pages/teams.py").run()
    assert not at.exception, at.exception
    assert "Payments Squad" in rendered_text(at)
    at.text_input(key="teams.create.name").input("Platform")
    at.button(key="FormSubmitter:teams.create-Create team").click().run()
    assert not at.exception, at.exception
    assert any("Team `platform` created." in s.value for s in at.success)

    at.switch_page("pages/data.py").run()
    assert not at.exception, at.exception
    assert "checkout-agent" in rendered_text(at) and "growth-agent" in rendered_text(at)
    next(s for s in at.selectbox if s.label == "Account key or scope").set_value("growth-agent").run()
    at.selectbox(key="data.keys.target").set_value(("team_id", "growth")).run()
    at.button(key="data.keys.map").click().run()
    assert not at.exception, at.exception
    assert any("`growth-agent` is mapped to Growth (growth)." in s.value for s in at.success)
    keys_table = [d.value for d in at.dataframe if "account_key" in d.value.columns]
    assert [list(t["account_key"]) for t in keys_table] == [["checkout-agent"]]

"""The Data page: the upload flow as a function, and the page in AppTest for admin and delivery lead."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from core.importing import ImportFailed, import_history
from core.importing.options import DEFAULT_MODEL_PRICES
from core.store.database import Store, open_store
from core.store.workspace import Workspace, read_secrets
from tests.apptest import rendered_text, signed_in
from ui.data_import import (
    UploadChoice,
    import_upload,
    plan_upload,
    recognise_upload,
    save_import_settings,
    upload_options,
)

FIXTURES = Path(__file__).parent / "fixtures" / "imports"
JIRA = (FIXTURES / "jira_export.csv").read_bytes()
PULLS = (FIXTURES / "github_pulls_rest.json").read_bytes()
INCIDENTS = (FIXTURES / "incidents_generic.csv").read_bytes()
DATA_PAGE = "pages/data.py"


@pytest.fixture
def empty_store(sqlite_workspace: Workspace) -> Store:
    (sqlite_workspace.home / "snapshot").mkdir(exist_ok=True)
    return open_store(sqlite_workspace)


@pytest.fixture(scope="module")
def data_workspace(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A small demo workspace of this module's own, so imports and undos here disturb no other test."""
    from core.bootstrap import seed_demo

    home = tmp_path_factory.mktemp("data-page")
    (home / "snapshot").mkdir()
    store = open_store(Workspace(home=home, database_url=f"sqlite:///{home / 'throughline.db'}"))
    logins = seed_demo(store, seed=11, scale=0.1, must_change_password=False)
    store.snapshot()
    store.engine.dispose()
    return {"home": home, "logins": {login.role: login for login in logins}}


def _store(workspace: dict[str, object]) -> Store:
    home = Path(str(workspace["home"]))
    return open_store(Workspace(home=home, database_url=f"sqlite:///{home / 'throughline.db'}"))


# -- the upload flow without widgets -----------------------------------------------------------------
def test_a_jira_export_is_recognised_imported_once_and_visible_in_the_next_snapshot(empty_store: Store) -> None:
    recognition = recognise_upload(empty_store, JIRA, "jira_export.csv")
    assert (recognition.format, recognition.confidence, recognition.rows) == ("jira_csv", 1.0, 8)
    before = empty_store.data_version()

    record = import_upload(empty_store, JIRA, "jira_export.csv", "admin")

    assert record.counts["work_items"] == {"added": 6, "updated": 0, "rejected": 0}
    assert record.counts["features"]["added"] == 3  # two epics and one referenced placeholder
    assert empty_store.data_version() > before
    snapshot = empty_store.snapshot()
    assert snapshot.version == empty_store.data_version()
    assert snapshot.scan("work_items").select(pl.len()).collect().item() == 6
    again = import_upload(empty_store, JIRA, "jira_export.csv", "admin")
    assert again.added == 0 and empty_store.count("work_items") == 6


def test_github_pull_requests_json_imports_with_agent_authors(empty_store: Store) -> None:
    save_import_settings(empty_store, {"import.agent_logins": ["claude-agent"]}, "admin")
    record = import_upload(empty_store, PULLS, "github_pulls_rest.json", "admin")
    assert record.counts["pull_requests"]["added"] == 4
    agents = empty_store.read("pull_requests").filter(pl.col("author_kind") == "agent")
    assert sorted(agents["author_id"]) == ["claude-agent", "dependabot[bot]"]


def test_the_generic_mapping_imports_an_unknown_file(empty_store: Store) -> None:
    assert recognise_upload(empty_store, INCIDENTS, "incidents.csv").format == "generic"
    choice = UploadChoice(
        mapping=_incident_mapping(),
    )
    record = import_upload(empty_store, INCIDENTS, "incidents.csv", "admin", choice)
    assert record.counts["incidents"]["added"] == 2
    opened = empty_store.read("incidents").sort("incident_id")["opened_at"].to_list()
    assert str(opened[0]) == "2026-02-03 14:05:00"


@pytest.mark.parametrize(
    ("content", "filename", "expected"),
    [
        (b"", "empty.csv", "the file is empty"),
        (b"   \n", "blank.csv", "the file is empty"),
        (b'[{"number": 1, "title": ', "broken.json", "broken.json"),
        (b"a,b\n", "header_only.csv", "header_only.csv"),
        (b"\xff\xfe\x00garbage\x00\x00\xd8", "binary.parquet", "binary.parquet"),
    ],
)
def test_hostile_uploads_fail_with_a_message_and_write_nothing(
    empty_store: Store, content: bytes, filename: str, expected: str
) -> None:
    before = (empty_store.data_version(), empty_store.counts())
    with pytest.raises(ImportFailed) as failure:
        import_upload(empty_store, content, filename, "admin")
    assert expected in failure.value.message
    assert (empty_store.data_version(), empty_store.counts()) == before


def test_a_file_over_the_upload_limit_is_refused_naming_the_limit(empty_store: Store) -> None:
    save_import_settings(empty_store, {"import.max_bytes": 1024}, "admin")
    with pytest.raises(ImportFailed, match=r"larger than the import limit of 1\.0 KiB"):
        import_upload(empty_store, JIRA, "jira_export.csv", "admin")
    assert empty_store.count("work_items") == 0


def test_invalid_rows_refuse_the_import_unless_skipped(empty_store: Store) -> None:
    bad = INCIDENTS + b"INC-903;not a date;;SEV1;web\n"
    choice = UploadChoice(mapping=_incident_mapping())
    plan = plan_upload(empty_store, bad, "incidents.csv", choice)
    assert plan.rejected == {"incidents": 1}
    assert [(p.row, p.column) for p in plan.problems] == [(3, "opened_at")]
    with pytest.raises(ImportFailed, match="problem"):
        import_upload(empty_store, bad, "incidents.csv", "admin", choice)
    assert empty_store.count("incidents") == 0
    record = import_upload(empty_store, bad, "incidents.csv", "admin", choice, skip_invalid=True)
    assert record.counts["incidents"] == {"added": 2, "updated": 0, "rejected": 1}


def test_progress_reports_rows_so_far_up_to_the_total(empty_store: Store) -> None:
    calls: list[tuple[int, int]] = []
    import_upload(
        empty_store, JIRA, "jira_export.csv", "admin", progress=lambda done, total: calls.append((done, total))
    )
    totals = {total for _, total in calls}
    assert len(totals) == 1 and calls[0][0] == 0 and calls[-1][0] == calls[-1][1] == totals.pop()
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)


def test_import_settings_are_stored_under_the_keys_the_importer_reads(empty_store: Store) -> None:
    changed = save_import_settings(
        empty_store,
        {
            "import.timezone": "Europe/Berlin",
            "import.agent_logins": ["devin-ai-integration"],
            "import.max_bytes": 5 << 20,
            "import.model_prices": {"gpt-4o": {"input": 99.0, "output": 99.0}},
        },
        "admin",
    )
    assert sorted(changed) == ["import.agent_logins", "import.max_bytes", "import.timezone"]
    options = upload_options(empty_store)
    assert options.timezone == "Europe/Berlin" and options.agent_logins == ("devin-ai-integration",)
    assert options.max_bytes == 5 << 20
    assert options.price_of("gpt-4o-2024-08-06") == DEFAULT_MODEL_PRICES["gpt-4o"]
    assert options.price_of("gpt-5") == DEFAULT_MODEL_PRICES["gpt-5"]
    assert save_import_settings(empty_store, {"import.timezone": "Europe/Berlin"}, "admin") == []


def _incident_mapping():  # type: ignore[no-untyped-def]
    from core.importing import GenericMapping

    return GenericMapping(
        entity="incidents",
        columns={"incident_id": "Ticket", "opened_at": "Opened", "resolved_at": "Closed", "severity": "Sev"},
        date_format="%d.%m.%Y %H:%M",
    )


# -- the page in AppTest -------------------------------------------------------------------------------
def _data_page(workspace: dict[str, object], role: str, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    at = signed_in(workspace, role, monkeypatch)
    at.switch_page(DATA_PAGE).run()
    assert not at.exception, at.exception
    return at


def _frame_with(at: AppTest, column: str):  # type: ignore[no-untyped-def]
    """The (pandas) value of the one table on screen that has ``column``."""
    frames = [d.value for d in at.dataframe if column in d.value.columns]
    assert len(frames) == 1, [list(d.value.columns) for d in at.dataframe]
    return frames[0]


def _per_file(widgets, prefix: str, suffix: str = ""):  # type: ignore[no-untyped-def]
    """The one widget whose key is ``prefix`` + the upload's id + ``suffix`` (upload widgets are keyed per file)."""
    found = [w for w in widgets if str(w.key).startswith(prefix) and str(w.key).endswith(suffix)]
    assert len(found) == 1, [w.key for w in widgets]
    return found[0]


def _upload(at: AppTest, filename: str, content: bytes) -> AppTest:
    at.file_uploader(key="data.upload.file").set_value((filename, content, "application/octet-stream")).run()
    assert not at.exception, at.exception
    return at


@pytest.mark.parametrize("role", ["admin", "delivery_lead"])
def test_stewards_upload_import_and_undo_through_the_page(
    data_workspace: dict[str, object], role: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _data_page(data_workspace, role, monkeypatch)
    assert [t.label for t in at.tabs] == ["Upload", "Connect a database", "Import history", "Cost account keys"]
    assert at.title[0].value == "Data"
    store = _store(data_workspace)
    version = store.data_version()

    _upload(at, "jira_export.csv", JIRA)
    assert "Recognised as **Jira CSV export (all fields)**, confidence 100%" in at.success[0].value
    text = rendered_text(at)
    assert "Custom field (Story Points)" in text and "work_item_key" in text

    at.button(key="data.upload.import").click().run()
    assert not at.exception, at.exception
    done = [s.value for s in at.success if "done:" in s.value]
    assert done and "rows added" in done[0]
    assert store.data_version() > version
    history = import_history(store)
    latest = history.filter(pl.col("import_id") == history["import_id"].max())
    assert latest["source"].unique().to_list() == ["jira_export.csv"]
    assert latest["actor"].unique().to_list() == [data_workspace["logins"][role].username]  # type: ignore[index]

    at.selectbox(key="data.history.import").set_value(latest["import_id"][0]).run()
    at.button(key="data.history.undo").click().run()
    assert any("Undo import #" in w.value for w in at.warning)
    at.button(key="data.history.yes").click().run()
    assert not at.exception, at.exception
    assert any("undone" in s.value for s in at.success)
    assert import_history(store).filter(pl.col("import_id") == latest["import_id"][0])["status"][0] == "undone"


def test_hostile_uploads_show_the_message_not_a_traceback(
    data_workspace: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _data_page(data_workspace, "admin", monkeypatch)
    _upload(at, "broken.json", b'[{"number": 1, "title": ')
    assert at.error and "broken.json" in at.error[0].value
    _upload(at, "empty.csv", b"")
    assert at.error and "empty.csv: the file is empty." in at.error[0].value


def test_an_unknown_file_opens_the_mapping_screen_and_shows_problems(
    data_workspace: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _data_page(data_workspace, "admin", monkeypatch)
    _upload(at, "incidents.csv", INCIDENTS + b"INC-903;soon;;SEV1;web\n")
    assert any("Not a format Throughline knows" in w.value for w in at.warning)
    assert _per_file(at.selectbox, "data.upload.format.").value == "generic"
    _per_file(at.selectbox, "data.upload.entity.").set_value("incidents").run()
    _per_file(at.selectbox, "data.upload.map.", ".incidents.incident_id").set_value("Ticket")
    _per_file(at.selectbox, "data.upload.map.", ".incidents.opened_at").set_value("Opened")
    _per_file(at.text_input, "data.upload.date_format.").input("%d.%m.%Y %H:%M")
    _per_file(at.button, "FormSubmitter:data.upload.mapping_form.", "-Check this mapping").click().run()
    assert not at.exception, at.exception
    assert any("1 problem(s) in 1 row(s)" in w.value for w in at.warning)
    problems = _frame_with(at, "expected")
    assert problems[["row", "column", "value"]].values.tolist() == [[3, "opened_at", "soon"]]
    assert at.button(key="data.upload.import").disabled
    at.checkbox(key="data.upload.skip_invalid").check().run()
    at.button(key="data.upload.import").click().run()
    assert any("2 rows added" in s.value and "1 rejected" in s.value for s in at.success)


def test_connect_a_database_map_preview_refresh_and_refuse_writes(
    data_workspace: dict[str, object], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    source = tmp_path / "warehouse.db"
    with sqlite3.connect(source) as db:
        db.execute("CREATE TABLE deploys (id TEXT, svc TEXT, env TEXT, status TEXT, finished_at TEXT)")
        db.execute("INSERT INTO deploys VALUES ('wh-1', 'web', 'production', 'success', '2026-02-01 10:00:00')")
        db.execute("INSERT INTO deploys VALUES ('wh-2', 'web', 'production', 'failure', '2026-02-02 10:00:00')")
    monkeypatch.setenv("THROUGHLINE_SQLITE_SOURCES", str(tmp_path))
    at = _data_page(data_workspace, "admin", monkeypatch)
    at.text_input(key="data.connect.form.name").input("warehouse")
    at.text_input(key="data.connect.form.url").input(f"sqlite:///{source}")
    at.button(key="FormSubmitter:data.connect.form-Save connection").click().run()
    assert at.selectbox(key="data.connect.name").value == "warehouse"

    at.button(key="data.connect.test").click().run()
    assert any("Connected: sqlite" in s.value for s in at.success)
    at.button(key="data.connect.list_tables").click().run()
    assert any("`deploys`" in c.value for c in at.caption)

    at.selectbox(key="data.connect.map.entity").set_value("deployments").run()
    at.radio(key="data.connect.map.kind").set_value("Read-only query").run()
    at.text_area(key="data.connect.map.query").input("DELETE FROM deploys")
    at.button(key="FormSubmitter:data.connect.map.form-Save mapping").click().run()
    assert any("Only read queries are accepted" in e.value for e in at.error)

    query = "SELECT id AS deployment_id, svc AS service, env AS environment, status, finished_at FROM deploys"
    at.text_area(key="data.connect.map.query").input(query)
    at.button(key="FormSubmitter:data.connect.map.form-Save mapping").click().run()
    assert not at.exception, at.exception
    at.button(key="data.connect.preview").click().run()
    assert _frame_with(at, "deployment_id")["deployment_id"].tolist() == ["wh-1", "wh-2"]
    at.button(key="data.connect.refresh").click().run()
    assert any("2 rows added" in s.value for s in at.success)
    assert _store(data_workspace).read("deployments").filter(pl.col("deployment_id") == "wh-1").height == 1


def test_a_connection_password_is_kept_in_the_secrets_file_and_never_shown(
    data_workspace: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "s3cret-Pa55word"
    at = _data_page(data_workspace, "admin", monkeypatch)
    at.text_input(key="data.connect.form.name").input("pg-warehouse")
    at.text_input(key="data.connect.form.url").input("postgresql+psycopg://reader@db.invalid:5432/warehouse")
    at.text_input(key="data.connect.form.password").input(secret)
    at.button(key="FormSubmitter:data.connect.form-Save connection").click().run()
    assert not at.exception, at.exception
    assert secret not in rendered_text(at)
    assert all(secret not in (t.value or "") for t in at.text_input)
    store = _store(data_workspace)
    assert secret not in json.dumps(store.settings("connections."))
    assert secret not in store.audit_log(limit=50).write_csv()
    secrets = read_secrets(store.workspace.secrets_path)
    assert secrets["connections"]["pg-warehouse"] == secret  # type: ignore[index]


@pytest.mark.parametrize("role", ["executive", "team_lead"])
def test_executives_and_team_leads_have_no_data_page(
    data_workspace: dict[str, object], role: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = signed_in(data_workspace, role, monkeypatch)
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page(DATA_PAGE)


def test_a_delivery_lead_can_refresh_a_connection_but_not_add_or_map_one(
    data_workspace: dict[str, object], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from core.access import Viewer
    from core.sources import connect

    source = tmp_path / "lead-source.db"
    with sqlite3.connect(source) as db:
        db.execute("CREATE TABLE incidents (incident_id TEXT, title TEXT, opened_at TEXT)")
        db.execute("INSERT INTO incidents VALUES ('LEAD-1', 'Checkout down', '2026-02-01 10:00:00')")
    monkeypatch.setenv("THROUGHLINE_SQLITE_SOURCES", str(tmp_path))
    store = _store(data_workspace)
    admin = Viewer("admin", "Admin", "admin")
    connect.save_connection(store, "lead-source", f"sqlite:///{source}", admin)
    connect.set_mapping(store, "lead-source", connect.SourceMapping("incidents", table="incidents"), admin)
    at = _data_page(data_workspace, "delivery_lead", monkeypatch)
    at.selectbox(key="data.connect.name").set_value("lead-source").run()
    keys = {
        getattr(e, "key", None) for kind in ("button", "text_input", "text_area", "radio") for e in getattr(at, kind)
    }
    editing = ("data.connect.form", "data.connect.map", "FormSubmitter:data.connect")
    assert not [k for k in keys if k and k.startswith(editing)], keys
    assert not {"data.connect.test", "data.connect.list_tables", "data.connect.devlake"} & keys
    assert {"data.connect.preview", "data.connect.refresh"} <= keys
    assert any("an admin adds connections" in c.value for c in at.caption)
    at.button(key="data.connect.refresh").click().run()
    assert not at.exception, at.exception
    assert any("1 rows added" in s.value or "1 row added" in s.value for s in at.success), [s.value for s in at.success]
    assert store.read("incidents").filter(pl.col("incident_id") == "LEAD-1").height == 1


def test_observations_naming_unknown_metrics_open_one_form_that_defines_them_and_imports(
    data_workspace: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _store(data_workspace)
    at = _data_page(data_workspace, "admin", monkeypatch)
    observations = (
        b"date,metric,value\n"
        b"2026-02-02,checkout_conversion_rate,31%\n"
        b"2026-03-02,checkout_conversion_rate,34%\n"
        b"2026-03-02,Support wait time,42\n"
    )
    _upload(at, "observations.csv", observations)
    assert "names 2 metric(s) this workspace does not define yet" in at.info[0].value
    assert "does not match any" not in rendered_text(at)
    assert "data.upload.import" not in [b.key for b in at.button]
    assert _per_file(at.text_input, "data.upload.metrics.", ".0.name").value == "Checkout conversion rate"
    assert _per_file(at.selectbox, "data.upload.metrics.", ".0.level").value == "outcome"
    assert _per_file(at.text_input, "data.upload.metrics.", ".0.unit").value == "%"
    assert _per_file(at.selectbox, "data.upload.metrics.", ".0.direction").value == "higher"
    assert _per_file(at.selectbox, "data.upload.metrics.", ".1.direction").value == "lower"
    _per_file(at.text_input, "data.upload.metrics.", ".1.unit").input("min")
    _per_file(at.button, "FormSubmitter:data.upload.metrics.").click().run()
    assert not at.exception, at.exception
    assert any("observations.csv done: 3 rows added" in s.value for s in at.success)
    metrics = store.read("metrics").filter(pl.col("metric_id").is_in(["checkout_conversion_rate", "support_wait_time"]))
    assert sorted(metrics.select("metric_id", "name", "unit", "direction").rows()) == [
        ("checkout_conversion_rate", "Checkout conversion rate", "%", "higher"),
        ("support_wait_time", "Support wait time", "min", "lower"),
    ]
    observed = store.read("metric_observations").filter(pl.col("metric_id") == "support_wait_time")
    assert observed["value"].to_list() == [42.0]

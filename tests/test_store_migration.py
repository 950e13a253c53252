"""A workspace made by the schema of 10f3d17 opens with the current Store: tables and columns added, rows kept."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa

from core.store.database import ENTITY_TABLES, metadata, open_store
from core.store.workspace import Workspace

OLD_COLUMNS = {
    "cost_events": [
        "event_id",
        "occurred_at",
        "source",
        "amount",
        "currency",
        "quantity",
        "unit",
        "detail",
        "person_id",
        "team_id",
        "feature_id",
        "pr_id",
        "work_item_key",
        "repo",
        "branch",
    ],
    "hypotheses": [
        "feature_id",
        "metric_id",
        "predicted_change",
        "change_kind",
        "lag_days",
        "window_days",
        "rationale",
        "created_at",
    ],
    "deployments": [
        "deployment_id",
        "service",
        "repo",
        "team_id",
        "environment",
        "status",
        "started_at",
        "finished_at",
        "commit_sha",
    ],
}
"""The columns these tables had at 10f3d17 (written out from that commit's core/schema.py); cost_keys did not exist."""


def _old_workspace(url: str) -> sa.Engine:
    """A database laid out as 10f3d17 made it, holding one row in each changed table."""
    engine = sa.create_engine(url)
    old = sa.MetaData()
    for table in metadata.tables.values():
        if table.name == "cost_keys":
            continue
        keep = OLD_COLUMNS.get(table.name)
        columns = [
            sa.Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable)
            for c in table.columns
            if keep is None or c.name in keep
        ]
        sa.Table(table.name, old, *columns)
    old.create_all(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO tl_meta (key, value) VALUES ('data_version', '3')"))
        conn.execute(old.tables["features"].insert().values(feature_id="F1", name="Checkout"))
        conn.execute(old.tables["metrics"].insert().values(metric_id="conv", name="Conversion", level="outcome"))
        conn.execute(
            old.tables["cost_events"]
            .insert()
            .values(
                event_id="e1",
                occurred_at=datetime(2026, 3, 2, 10, 0),
                source="llm",
                amount=12.5,
                currency="USD",
                feature_id="F1",
            )
        )
        conn.execute(
            old.tables["hypotheses"]
            .insert()
            .values(feature_id="F1", metric_id="conv", predicted_change=0.02, change_kind="absolute", lag_days=7)
        )
        conn.execute(
            old.tables["deployments"]
            .insert()
            .values(deployment_id="d1", service="web", status="success", started_at=datetime(2026, 3, 3, 9, 0))
        )
    return engine


@pytest.fixture(params=["sqlite", "postgresql"])
def old_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'throughline.db'}"
    return str(request.getfixturevalue("pg_url"))


def test_an_older_workspace_opens_gains_the_new_columns_and_keeps_its_rows(old_url: str, tmp_path: Path) -> None:
    _old_workspace(old_url).dispose()
    store = open_store(Workspace(home=tmp_path, database_url=old_url))
    try:
        inspector = sa.inspect(store.engine)
        assert inspector.has_table("cost_keys")
        columns = {c["name"] for c in inspector.get_columns("cost_events")}
        assert {"account_key", "account_scope"} <= columns
        assert "min_meaningful_change" in {c["name"] for c in inspector.get_columns("hypotheses")}
        assert "pipeline_id" in {c["name"] for c in inspector.get_columns("deployments")}

        events = store.read("cost_events")
        assert events.select("event_id", "amount", "feature_id", "account_key").rows() == [("e1", 12.5, "F1", None)]
        hypothesis = store.read("hypotheses").row(0, named=True)
        assert (hypothesis["predicted_change"], hypothesis["lag_days"], hypothesis["min_meaningful_change"]) == (
            0.02,
            7,
            None,
        )
        assert store.read("deployments")["pipeline_id"].to_list() == [None]
        assert store.data_version() == 4  # moved on once, so the snapshot and caches are rebuilt
        assert store.audit_log()["action"].to_list() == ["store.migrate"]

        # the new columns work: a key map row and a cost event billed to an API key
        store.write(
            {
                "cost_keys": pl.DataFrame({"key": ["sk-ant-1"], "feature_id": ["F1"]}),
                "cost_events": pl.DataFrame(
                    {
                        "event_id": ["e2"],
                        "occurred_at": [datetime(2026, 3, 4)],
                        "source": ["llm"],
                        "amount": [3.0],
                        "currency": ["USD"],
                        "account_key": ["sk-ant-1"],
                        "account_scope": ["api_key"],
                    }
                ),
            }
        )
        snapshot = store.snapshot()
        keys = snapshot.scan("cost_events").sort("event_id").select("event_id", "account_key").collect()
        assert keys.rows() == [("e1", None), ("e2", "sk-ant-1")]
        assert snapshot.scan("cost_keys").collect()["key"].to_list() == ["sk-ant-1"]
    finally:
        store.engine.dispose()

    again = open_store(Workspace(home=tmp_path, database_url=old_url))  # a second open changes nothing
    try:
        assert again.data_version() == 5
        assert again.audit_log()["action"].to_list() == ["store.migrate"]
        assert again.count("cost_events") == 2
    finally:
        again.engine.dispose()


def test_a_current_workspace_is_left_as_it_is(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'throughline.db'}"
    store = open_store(Workspace(home=tmp_path, database_url=url))
    store.engine.dispose()
    again = open_store(Workspace(home=tmp_path, database_url=url))
    try:
        assert again.data_version() == 0
        assert again.audit_log().height == 0
        assert set(sa.inspect(again.engine).get_table_names()) >= set(ENTITY_TABLES)
    finally:
        again.engine.dispose()

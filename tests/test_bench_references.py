"""The benchmark's DuckDB and pandas references restate every attribution rule, the account-key rule included."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from bench import references
from tests.test_cost_rules import COST_EVENTS, COST_KEYS, FEATURES, PEOPLE, PULL_REQUESTS, WORK_ITEMS

TABLES = ["features", "work_items", "pull_requests", "cost_events", "cost_keys", "people"]


@pytest.fixture
def snapshot(tmp_path: Path) -> Path:
    frames = {
        "features": FEATURES,
        "work_items": WORK_ITEMS,
        "pull_requests": PULL_REQUESTS,
        "cost_events": COST_EVENTS,
        "cost_keys": COST_KEYS,
        "people": PEOPLE,
    }
    for name, frame in frames.items():
        frame.collect().write_parquet(tmp_path / f"{name}.parquet")
    return tmp_path


def _by_feature_and_rule(figures: pl.DataFrame) -> dict[tuple[str, str], float]:
    return {(f, r): c for f, r, c in figures.select("feature_id", "rule", "cost").iter_rows()}


# K1 10 → F2 by key; K2 8 → alice's key, 4 + 4; K3 6 → scope ws-team, 3 + 3; K4 5 → its PR to F1;
# K5 7 → alice's key before the scope, 3.5 + 3.5; K6 2 → unmapped, in no feature.
BY_HAND = {
    ("F1", "account_key"): 4 + 3 + 3.5,
    ("F2", "account_key"): 10 + 4 + 3 + 3.5,
    ("F1", "pull_request"): 5.0,
}


def test_duckdb_reference_applies_the_account_key_rule(snapshot: Path) -> None:
    figures = references.duckdb_cost_by_rule(references.duckdb_connect(snapshot, TABLES))
    assert _by_feature_and_rule(figures) == pytest.approx(BY_HAND)


def test_pandas_reference_applies_the_account_key_rule(snapshot: Path) -> None:
    figures = references.pandas_cost_by_rule(references.pandas_tables(snapshot, TABLES))
    assert _by_feature_and_rule(figures) == pytest.approx(BY_HAND)


def test_references_agree_with_the_product_on_the_tiny_org(snapshot: Path) -> None:
    frames = {name: pl.read_parquet(snapshot / f"{name}.parquet").lazy() for name in TABLES}
    ours = references.polars_cost_by_rule(frames)
    assert _by_feature_and_rule(ours) == pytest.approx(BY_HAND)
    assert (
        references.compare(
            "cost_by_rule", ours, references.duckdb_cost_by_rule(references.duckdb_connect(snapshot, TABLES))
        )
        == []
    )


def test_a_snapshot_without_a_key_map_maps_no_key(snapshot: Path) -> None:
    tables = [t for t in TABLES if t != "cost_keys"]
    figures = references.duckdb_cost_by_rule(references.duckdb_connect(snapshot, tables))
    assert _by_feature_and_rule(figures) == pytest.approx({("F1", "pull_request"): 5.0})

"""The stage-1 roll-ups pushed down as SQL give exactly the Polars roll-ups, on SQLite and on PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from core.sources import pushdown
from core.store.database import Store, open_store
from core.store.workspace import Workspace
from demo import generate_demo

ROLLUPS = {
    "direct_costs_per_day": (
        lambda: pushdown.direct_costs_per_day(),
        lambda f: pushdown.direct_costs_per_day_plan(f["cost_events"]),
        pushdown.DIRECT_COST_SCHEMA,
    ),
    "weekly_counts": (
        lambda: pushdown.weekly_counts(),
        lambda f: pushdown.weekly_counts_plan(f["features"], f["pull_requests"]),
        pushdown.WEEKLY_SCHEMA,
    ),
    "deployments_per_day": (
        lambda: pushdown.deployments_per_day(),
        lambda f: pushdown.deployments_per_day_plan(f["deployments"]),
        pushdown.DEPLOYMENT_SCHEMA,
    ),
}


@pytest.fixture(scope="module")
def demo_frames() -> dict[str, pl.DataFrame]:
    return generate_demo(seed=11, scale=0.1).frames


@pytest.fixture(params=["sqlite", "postgresql"])
def loaded(request: pytest.FixtureRequest, tmp_path: Path, demo_frames: dict[str, pl.DataFrame]) -> Store:
    """A store on each database holding the small demo."""
    url = f"sqlite:///{tmp_path / 'throughline.db'}"
    if request.param == "postgresql":
        url = request.getfixturevalue("pg_url")
    (tmp_path / "snapshot").mkdir(exist_ok=True)
    store = open_store(Workspace(home=tmp_path, database_url=url))
    store.write(demo_frames, mode="replace", source="test")
    yield store
    store.engine.dispose()


@pytest.mark.parametrize("rollup", list(ROLLUPS))
def test_the_database_computes_the_same_rollup_as_polars(rollup: str, loaded: Store) -> None:
    query, plan, schema = ROLLUPS[rollup]
    in_database = pushdown.run(loaded.engine, query(), schema)
    in_polars = pushdown.conform_rollup(plan(loaded.snapshot().frames()).collect(), schema)
    assert in_database.height > 0
    assert_frame_equal(in_database, in_polars, check_exact=False, rel_tol=1e-9, abs_tol=1e-6)


def test_rollups_keep_every_fact_once(loaded: Store, demo_frames: dict[str, pl.DataFrame]) -> None:
    weekly = pushdown.run(loaded.engine, pushdown.weekly_counts(), pushdown.WEEKLY_SCHEMA)
    features, prs = demo_frames["features"], demo_frames["pull_requests"]
    delivered = features.filter((pl.col("status") == "delivered") & pl.col("delivered_at").is_not_null()).height
    assert weekly["features_delivered"].sum() == delivered
    assert weekly["prs_merged"].sum() == prs["merged_at"].is_not_null().sum()
    assert (weekly["week"].dt.weekday() == 1).all()
    costs = pushdown.run(loaded.engine, pushdown.direct_costs_per_day(), pushdown.DIRECT_COST_SCHEMA)
    events = demo_frames["cost_events"].filter(
        pl.col("amount").is_not_null() & pl.any_horizontal(pl.col("feature_id", "pr_id", "team_id").is_not_null())
    )
    assert costs["events"].sum() == events.height
    assert costs["amount"].sum() == pytest.approx(events["amount"].sum(), rel=1e-9)


def test_queries_carry_values_as_bound_parameters() -> None:
    compiled = pushdown.weekly_counts().compile()
    assert "delivered" in compiled.params.values()
    assert "'delivered'" not in str(compiled)

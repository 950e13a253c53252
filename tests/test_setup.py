"""The setup checklist: counts per entity in, one row per headline number out, worked out by hand."""

from __future__ import annotations

from core.setup import is_set_up, setup_checklist


def test_an_empty_workspace_needs_everything_and_starts_with_the_first_missing_import() -> None:
    rows = {r.number: r for r in setup_checklist({})}
    assert list(rows) == ["Cost per feature", "Impact verdicts", "Value throughput", "DORA", "Vanity flags"]
    assert {r.coverage for r in rows.values()} == {0.0}
    assert rows["Cost per feature"].next_step.startswith("Bring a Jira or Linear export")
    assert rows["DORA"].next_page == "data" and rows["DORA"].present == "nothing yet"
    assert not is_set_up({})


def test_a_pilot_with_jira_and_cost_has_cost_per_feature_and_half_of_dora_is_not_counted_as_done() -> None:
    counts = {"features": 2, "cost_events": 3, "pull_requests": 5, "metrics": 1}
    rows = {r.number: r for r in setup_checklist(counts)}
    cost = rows["Cost per feature"]
    assert (cost.coverage, cost.present, cost.next_page) == (1.0, "2 features, 3 cost events", "cost")
    verdicts = rows["Impact verdicts"]
    assert verdicts.coverage == 2 / 4  # features and metrics of the four it needs
    assert verdicts.next_step == "Bring a `date, metric, value` observations file."
    assert rows["DORA"].coverage == 1 / 2 and rows["DORA"].next_step.startswith("Bring a deployments export")
    flags = rows["Vanity flags"]
    assert (flags.coverage, flags.next_page) == (2 / 3, "teams")
    assert not is_set_up(counts)


def test_everything_present_is_set_up() -> None:
    counts = dict.fromkeys(
        ("features", "cost_events", "pull_requests", "deployments", "metrics", "metric_observations"), 1
    ) | {"hypotheses": 1, "teams": 1}
    assert is_set_up(counts)


# -- coverage as what each number reached ------------------------------------------------------------
def _frames() -> dict[str, object]:
    """Three delivered features of four, their verdicts, 8.00 USD of cost, three production deployments."""
    from datetime import datetime

    import polars as pl

    from core.model.schema import coerce

    features = coerce(
        "features",
        pl.DataFrame(
            {
                "feature_id": ["F1", "F2", "F3", "F4"],
                "name": ["a", "b", "c", "d"],
                "status": ["delivered", "delivered", "in_progress", "delivered"],
            }
        ),
    )
    metrics = coerce(
        "metrics",
        pl.DataFrame(
            {
                "metric_id": ["m1", "m2"],
                "name": ["Conversion", "Activation"],
                "level": ["outcome", "outcome"],
                "direction": ["higher", "higher"],
                "value_per_unit": [1000.0, None],
            }
        ),
    )
    judged = pl.DataFrame(
        {
            "feature_id": ["F1", "F2", "F4"],
            "metric_id": ["m1", "m1", "m2"],
            "verdict": ["confirmed", "pending", "inconclusive"],
            "estimate_abs": [0.02, None, 0.01],
        }
    )
    rollup = pl.DataFrame({"feature_id": ["F1", None, "F4"], "amount": [5.0, 2.0, 1.0]})
    day = datetime(2026, 3, 1)
    deployments = coerce(
        "deployments",
        pl.DataFrame(
            {
                "deployment_id": ["d0", "d1", "d2", "d3"],
                "service": ["web"] * 4,
                "environment": ["production"] * 4,
                "status": ["success", "success", "success", "failure"],
                "started_at": [day.replace(day=d) for d in (1, 2, 3, 4)],
                "finished_at": [day.replace(day=d, hour=1) for d in (1, 2, 3, 4)],
                "commit_sha": ["s0", "s1", "s2", "s3"],
            }
        ),
    )
    pulls = coerce(
        "pull_requests",
        pl.DataFrame(
            {
                "pr_id": ["p1", "p2"],
                "state": ["merged", "merged"],
                "created_at": [day, day],
                "merged_at": [day, day.replace(day=2)],
                "merge_commit_sha": ["s1", "s3"],  # s3 went out only in the failed deployment
            }
        ),
    )
    return {
        "features": features.lazy(),
        "metrics": metrics.lazy(),
        "pull_requests": pulls.lazy(),
        "deployments": deployments.lazy(),
        "judged": judged,
        "cost_rollup": rollup,
        "currency": "USD",
    }


def test_coverage_is_what_each_number_reached() -> None:
    from core.setup import reach

    reached = reach(**_frames())  # type: ignore[arg-type]
    # 5.00 + 1.00 of 8.00 attributed to a feature
    assert reached["Cost per feature"].share == 0.75
    assert reached["Cost per feature"].detail == "6.00 of 8.00 USD attributed to a feature"
    # delivered F1, F2, F4: F1 confirmed and F4 inconclusive are judged, F2 is pending
    assert reached["Impact verdicts"].share == 2 / 3
    # only F1 realises value (confirmed, on a metric worth 1000 per unit)
    assert reached["Value throughput"].share == 1 / 3
    # successful production deployments d0, d1, d2; only d1 shipped a merged PR
    assert reached["DORA"].share == 1 / 3
    assert reached["DORA"].detail == "1 of 3 production deployments linked to a merged PR"

    counts = {e: 1 for e in ("features", "cost_events", "pull_requests", "deployments", "metrics")} | {
        "metric_observations": 1,
        "hypotheses": 1,
    }
    rows = {r.number: r for r in setup_checklist(counts, reached)}
    assert (rows["Cost per feature"].coverage, rows["Cost per feature"].next_page) == (0.75, "data")
    assert rows["Cost per feature"].present == "1 features, 1 cost events; 6.00 of 8.00 USD attributed to a feature"
    assert (rows["Impact verdicts"].coverage, rows["Impact verdicts"].next_page) == (2 / 3, "hypotheses")
    assert rows["Value throughput"].next_step == "Give outcome metrics a money value per unit."
    assert rows["Vanity flags"].coverage == 2 / 3  # teams missing: the inputs present
    assert rows["Vanity flags"].next_page == "teams"


def test_nothing_delivered_or_deployed_reaches_nothing() -> None:
    import polars as pl

    from core.setup import reach

    frames = _frames()
    frames["features"] = frames["features"].with_columns(pl.lit("planned").alias("status"))  # type: ignore[attr-defined]
    frames["deployments"] = frames["deployments"].with_columns(pl.lit("failure").alias("status"))  # type: ignore[attr-defined]
    reached = reach(**frames)  # type: ignore[arg-type]
    assert reached["Impact verdicts"].share == reached["Value throughput"].share == reached["DORA"].share == 0.0
    assert reached["DORA"].detail == "no successful production deployment yet"

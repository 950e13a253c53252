"""Metrics from observations: unknown names are listed, their definitions guessed from the name, defined in one step."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from core.cli.imports import add_commands
from core.importing import ImportFailed, plan_import, run_import
from core.importing.metric_definitions import (
    MetricDefinition,
    define_metrics,
    proposed_metric,
    unknown_metrics,
)
from core.store.database import Store

OBSERVATIONS = """date,metric,value
2026-02-02,Checkout conversion,0.31
2026-03-02,Checkout conversion,0.34
2026-02-02,p95_latency_ms,412
2026-03-02,p95_latency_ms,380
"""


def cli(store: Store, *argv: str) -> int:
    parser = argparse.ArgumentParser(prog="python -m core")
    add_commands(parser.add_subparsers())
    args = parser.parse_args(list(argv))
    return args.run(store, args)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "checkout_conversion_rate",
            ("checkout_conversion_rate", "Checkout conversion rate", "outcome", "%", "higher"),
        ),
        ("Checkout conversion", ("checkout_conversion", "Checkout conversion", "outcome", "%", "higher")),
        ("p95_latency_ms", ("p95_latency_ms", "P95 latency ms", "outcome", "ms", "lower")),
        ("Error rate", ("error_rate", "Error rate", "outcome", "%", "lower")),
        ("weekly-signups", ("weekly_signups", "Weekly signups", "outcome", "count", "higher")),
        ("Page views", ("page_views", "Page views", "activity", "", "higher")),
        ("Deploys", ("deploys", "Deploys", "output", "", "higher")),
        ("NPS", ("nps", "NPS", "outcome", "", "higher")),
    ],
)
def test_a_metric_is_proposed_from_the_words_of_its_name(name: str, expected: tuple[str, ...]) -> None:
    d = proposed_metric(name)
    assert (d.metric_id, d.name, d.level, d.unit, d.direction) == expected


def test_unknown_metrics_are_listed_once_each_in_file_order(store: Store) -> None:
    store.create()
    plan = plan_import(OBSERVATIONS.encode(), "observations.csv", store=store)
    assert len(plan.problems) == 4  # every row names a metric that is not defined
    assert unknown_metrics(plan) == ["Checkout conversion", "p95_latency_ms"]


def test_defined_metrics_let_the_same_file_import_and_undo_with_one_import(store: Store) -> None:
    store.create()
    plan = plan_import(OBSERVATIONS.encode(), "observations.csv", store=store)
    record = define_metrics(store, [proposed_metric(n) for n in unknown_metrics(plan)], "ada")
    assert record.counts["metrics"]["added"] == 2
    stored = store.read("metrics").sort("metric_id")
    assert stored.select("metric_id", "name", "level", "unit", "direction").rows() == [
        ("checkout_conversion", "Checkout conversion", "outcome", "%", "higher"),
        ("p95_latency_ms", "P95 latency ms", "outcome", "ms", "lower"),
    ]
    again = plan_import(OBSERVATIONS.encode(), "observations.csv", store=store)
    assert again.ok and unknown_metrics(again) == []
    run_import(store, again, "ada")
    assert sorted(store.read("metric_observations").select("metric_id", "value").rows()) == [
        ("checkout_conversion", 0.31),
        ("checkout_conversion", 0.34),
        ("p95_latency_ms", 380.0),
        ("p95_latency_ms", 412.0),
    ]


def test_a_bad_definition_is_refused_naming_row_column_and_value(store: Store) -> None:
    store.create()
    with pytest.raises(ImportFailed) as failed:
        define_metrics(store, [MetricDefinition("nps", "NPS", level="vibes")], "ada")
    [problem] = failed.value.problems
    assert (problem.row, problem.column, problem.value) == (1, "level", "vibes")
    assert store.count("metrics") == 0


def test_the_cli_names_unknown_metrics_and_prints_the_commands_that_define_them(
    store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    store.create()
    (tmp_path / "observations.csv").write_text(OBSERVATIONS)
    monkeypatch.chdir(tmp_path)
    assert cli(store, "import", "observations.csv") == 1
    err = capsys.readouterr().err
    assert (
        "observations.csv names 2 metric(s) the workspace does not define: `Checkout conversion`, `p95_latency_ms`"
        in err
    )
    assert "does not match any" not in err and store.count("metric_observations") == 0
    heredoc = re.search(r"cat > metrics.csv <<'EOF'\n(.*?)EOF\n", err, re.S)
    assert heredoc is not None
    assert heredoc.group(1) == (
        "metric_id,name,level,unit,direction\n"
        "checkout_conversion,Checkout conversion,outcome,%,higher\n"
        "p95_latency_ms,P95 latency ms,outcome,ms,lower\n"
    )
    assert "python -m core import metrics.csv --entity metrics\npython -m core import observations.csv" in err
    (tmp_path / "metrics.csv").write_text(heredoc.group(1))  # run what it printed
    assert cli(store, "import", "metrics.csv", "--entity", "metrics") == 0
    assert cli(store, "import", "observations.csv") == 0, capsys.readouterr().err
    assert store.count("metric_observations") == 4

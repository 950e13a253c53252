"""The product's measures as the benchmark times them: ``core`` functions over the loaded snapshot.

Each measure takes the loaded frames and the upstream results it consumes (as the app's caches hold
them: the as-of date, the hypothesis verdicts, the cost lines) and returns its collected result.
``full_recompute`` starts from the frames alone and computes every page's measures.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from typing import Any

import polars as pl

from core import costs, measures
from core.costs import DEFAULT_SETTINGS
from core.delivery import dora, throughput
from core.flags import detectors
from core.outcomes import progress

Frames = dict[str, pl.LazyFrame]


@dataclass(frozen=True)
class Upstream:
    """What a page's cache already holds when a measure runs."""

    as_of: date
    judged: pl.DataFrame
    lines: pl.DataFrame


def upstream(frames: Frames) -> Upstream:
    """The as-of date, verdicts and cost lines every downstream measure consumes."""
    as_of = measures.as_of(frames)
    judged = measures.judged_hypotheses(frames, as_of)
    lines = measures.cost_rollup(frames, DEFAULT_SETTINGS).collect()
    return Upstream(as_of, judged, lines)


def cost_per_feature(frames: Frames, _: Upstream | None) -> pl.DataFrame:
    """Every cost event priced and attributed, then each feature's cost (``core.costs.cost_per_feature``)."""
    lines = measures.cost_rollup(frames, DEFAULT_SETTINGS).collect()
    return costs.cost_per_feature(lines.lazy(), frames["features"]).collect()


def value_throughput(frames: Frames, up: Upstream | None) -> pl.DataFrame:
    """The daily roll-up and its weekly series, from the cached verdicts and cost lines."""
    assert up is not None
    daily = measures.daily_throughput(frames, up.judged.lazy(), up.lines.lazy()).collect()
    return throughput.throughput_series(daily.lazy(), "week").collect()


def dora_measures(frames: Frames, _: Upstream | None) -> list[pl.DataFrame]:
    """The four DORA measures and their weekly trend."""
    args = (frames["deployments"], frames["pull_requests"], frames["incidents"])
    return pl.collect_all([dora.dora_measures(*args), dora.dora_trend(*args)], engine=dora.ENGINE)


def hypothesis_verdicts(frames: Frames, up: Upstream | None) -> pl.DataFrame:
    """Every delivered feature's verdict (``core.outcomes.verdicts.judge_hypotheses``)."""
    assert up is not None
    return measures.judged_hypotheses(frames, up.as_of)


def vanity_flags(frames: Frames, up: Upstream | None) -> pl.DataFrame:
    """Every vanity flag (``core.flags.detectors.detect_all``) from the cached verdicts and cost lines."""
    assert up is not None
    return detectors.detect_all(frames, up.judged.lazy(), up.lines.lazy(), as_of=up.as_of)


def full_recompute(frames: Frames, _: Upstream | None) -> dict[str, Any]:
    """Every page's measures from the frames alone: what a new data version costs before pages answer warm.

    Run as the app's caches fill: the verdicts, the cost roll-up and the measures that need neither
    (DORA, cycle times, outcome progress, milestones) at once on threads (Polars and the verdicts'
    statistics release the GIL, so the single-threaded parts of one overlap the others), then what
    consumes the verdicts and the roll-up, the flags beside the rest.
    """
    as_of = measures.as_of(frames)
    deploys, prs, incidents = frames["deployments"], frames["pull_requests"], frames["incidents"]
    independent = [
        dora.dora_measures(deploys, prs, incidents),
        dora.dora_trend(deploys, prs, incidents),
        dora.pr_cycle_times(prs, deploys),
    ]
    with ThreadPoolExecutor(max_workers=3) as pool:
        judged_future = pool.submit(measures.judged_hypotheses, frames, as_of)
        lines_future = pool.submit(lambda: measures.cost_rollup(frames, DEFAULT_SETTINGS).collect())
        independent_future = pool.submit(pl.collect_all, independent, engine=dora.ENGINE)
        judged, lines = judged_future.result(), lines_future.result()
        daily = measures.daily_throughput(frames, judged.lazy(), lines.lazy()).collect()
        quarter = f"{as_of.year}Q{(as_of.month - 1) // 3 + 1}"
        flags_future = pool.submit(detectors.detect_all, frames, judged.lazy(), lines.lazy(), as_of=as_of)
        dependent = pl.collect_all(
            [
                costs.cost_per_feature(lines.lazy(), frames["features"]),
                costs.cost_summary(lines.lazy(), frames["features"], quarter),
                costs.quarterly_cost_trend(lines.lazy(), frames["features"]),
                throughput.throughput_series(daily.lazy(), "week"),
                throughput.throughput_series(daily.lazy(), "quarter"),
                throughput.milestone_markers(frames["milestones"], frames["features"]),
                progress.outcome_progress(frames["metrics"], frames["metric_observations"], as_of),
            ]
        )
        flagged = flags_future.result()
    results = [*dependent, *independent_future.result()]
    return {"judged": judged, "lines": lines.height, "results": results, "flags": flagged}


Measure = Callable[[Frames, Upstream | None], Any]

MEASURES: dict[str, tuple[Measure, bool]] = {
    "cost_per_feature": (cost_per_feature, False),
    "value_throughput": (value_throughput, True),
    "dora": (dora_measures, False),
    "hypothesis_verdicts": (hypothesis_verdicts, True),
    "vanity_flags": (vanity_flags, True),
    "full_recompute": (full_recompute, False),
}
"""Each timed measure and whether it consumes the cached upstream results."""

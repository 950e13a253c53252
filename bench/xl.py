"""The XL data set (5M PRs, 100M cost events by default) and cost per feature on Polars' streaming engine.

XL is the L organisation generated once, then written as ``divisions`` divisions whose ids, work-item
keys and repositories are made distinct (``PAY-12`` → ``PAYD2-12``, ``acme/api`` → ``acme/api-d2``),
each division's cost events written ``copies`` times with distinct event ids. Every entity is a folder
of Parquet parts, scanned lazily, so the measure reads the data from disk in streaming batches instead
of holding it in memory. Writing the default XL takes about 10 minutes and ~2 GB of disk
(``df -h`` the cache folder first); it is not part of ``make bench`` or CI.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

from bench import sizes
from core import costs, measures
from core.costs import DEFAULT_SETTINGS
from core.model.schema import ENTITIES

SHARED = ("teams", "people", "metrics", "capabilities", "milestones", "metric_observations")
KEY_PREFIX = r"(?i)(^|[^A-Za-z0-9])(PAY|ONB|SRCH|MOB|PLAT|GRO)-(\d)"


def write_xl(folder: Path, seed: int, divisions: int, copies: int, base_size: str = "L") -> dict[str, int]:
    """Write the XL data set into ``folder`` (one sub-folder of parts per entity); returns row counts.

    ``base_size`` is the organisation each division copies (L for XL; S for a quick smoke run).
    """
    frames = sizes.generate(sizes.SIZES[base_size], seed).frames
    folder.mkdir(parents=True, exist_ok=True)
    counts = dict.fromkeys(ENTITIES, 0)
    for name in ENTITIES:
        (folder / name).mkdir(exist_ok=True)
    for name in SHARED:
        frames[name].write_parquet(folder / name / "part-0.parquet")
        counts[name] = frames[name].height
    for division in range(divisions):
        for name in ENTITIES:
            if name in SHARED:
                continue
            frame = division_of(name, frames[name], division)
            if name == "cost_events":
                for copy in range(copies):
                    part = frame.with_columns(pl.col("event_id") + f"-c{copy}")
                    part.write_parquet(folder / name / f"part-{division}-{copy}.parquet")
                    counts[name] += part.height
            else:
                frame.write_parquet(folder / name / f"part-{division}.parquet")
                counts[name] += frame.height
    (folder / sizes.MANIFEST).write_text(json.dumps({"size": "XL", "seed": seed, "rows": counts}, indent=2))
    (folder / sizes.COMPLETE).write_text("XL")
    return counts


def division_of(entity: str, frame: pl.DataFrame, division: int) -> pl.DataFrame:
    """``frame`` with every id, key and repository of ``division`` made distinct (division 0 unchanged)."""
    if division == 0:
        return frame
    tag = f"D{division}"
    rewrites: dict[str, pl.Expr] = {
        "feature_id": pl.col("feature_id") + f"-{tag}",
        "work_item_key": pl.col("work_item_key").str.replace(KEY_PREFIX, f"${{1}}${{2}}{tag}-${{3}}"),
        "title": pl.col("title").str.replace_all(KEY_PREFIX, f"${{1}}${{2}}{tag}-${{3}}"),
        "branch": pl.col("branch").str.replace_all(KEY_PREFIX, f"${{1}}${{2}}{tag}-${{3}}"),
        "repo": pl.col("repo") + f"-{tag.lower()}",
        "pr_id": pl.col("pr_id").str.replace("#", f"-{tag.lower()}#", literal=True),
        "deployment_id": pl.col("deployment_id") + f"-{tag}",
        "incident_id": pl.col("incident_id") + f"-{tag}",
        "event_id": pl.col("event_id") + f"-{tag}",
    }
    return frame.with_columns(expr.alias(column) for column, expr in rewrites.items() if column in frame.columns)


def scan_xl(folder: Path) -> dict[str, pl.LazyFrame]:
    """Every entity of the XL folder as a lazy scan over its Parquet parts."""
    return {name: pl.scan_parquet(folder / name / "*.parquet") for name in ENTITIES}


def streaming_cost_per_feature(folder: Path) -> dict[str, Any]:
    """Cost per feature over XL on the streaming engine: the same ``core`` plan, read from disk in batches."""
    frames = scan_xl(folder)
    lines = measures.cost_rollup(frames, DEFAULT_SETTINGS)
    per_feature = costs.cost_per_feature(lines, frames["features"]).collect(engine="streaming")
    return {
        "engine": "streaming",
        "features_costed": per_feature.height,
        "total_cost": round(float(per_feature["cost"].sum()), 2),
    }

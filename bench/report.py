"""The benchmark's JSON result, its markdown table and the issue's targets judged at size L."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

TARGET_SIZE = "L"
PER_MEASURE = ("cost_per_feature", "value_throughput", "dora", "hypothesis_verdicts", "vanity_flags")


def load_figures(folder: Path, engine: str, headline: str) -> Any:
    """The figures one engine wrote for one headline."""
    frame = folder / f"{engine}-{headline}.parquet"
    if frame.exists():
        return pl.read_parquet(frame)
    return json.loads((folder / f"{engine}-{headline}.json").read_text())


def brief(timing: dict[str, Any]) -> str:
    """Cold, warm median and peak memory on one line."""
    extra = f", {timing['rows_per_s']:,} rows/s" if "rows_per_s" in timing else ""
    limited = " (row-limited)" if timing.get("limited") else ""
    return (
        f"cold {timing['cold_s']:.3f} s, warm median {timing['median_s']:.3f} s, "
        f"peak {timing['peak_rss_mb']:,.0f} MB{extra}{limited}"
    )


def ratios(refs: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Per headline (and end to end): warm medians per engine and the ratios to Polars."""
    out: dict[str, dict[str, float]] = {}
    headlines = list(refs["polars"]["headlines"])
    for headline in [*headlines, "end_to_end"]:
        if headline == "end_to_end":
            times = {e: sum(refs[e]["headlines"][h]["median_s"] for h in headlines) for e in refs}
        else:
            times = {e: refs[e]["headlines"][headline]["median_s"] for e in refs}
        out[headline] = {
            **{f"{e}_s": round(t, 4) for e, t in times.items()},
            "polars_vs_duckdb": round(times["polars"] / times["duckdb"], 2) if times["duckdb"] else float("nan"),
            "pandas_vs_polars": round(times["pandas"] / times["polars"], 2) if times["polars"] else float("nan"),
        }
    return out


def ratios_text(refs: dict[str, Any]) -> str:
    """The time ratios on one line."""
    parts = [
        f"{h}: polars/duckdb {r['polars_vs_duckdb']}×, pandas/polars {r['pandas_vs_polars']}×"
        for h, r in ratios(refs).items()
    ]
    return "; ".join(parts)


def app_text(app: dict[str, Any]) -> str:
    """The app timings on one line."""
    return (
        f"cold start to first page {app['cold_start_to_first_page_s']:.2f} s "
        f"(results kept at write, {app.get('keep_results_s', float('nan')):.2f} s in the background), "
        f"with nothing kept {app.get('cold_start_nothing_kept_s', float('nan')):.2f} s, "
        f"warm rerun {app['warm_rerun_median_s'] * 1000:.0f} ms, "
        f"filter change {app['filter_change_median_s'] * 1000:.0f} ms"
        + (
            "; every page's warm rerun: "
            + ", ".join(f"{page} {t['warm_rerun_median_s'] * 1000:.0f} ms" for page, t in app["pages"].items())
            if app.get("pages")
            else ""
        )
    )


def judge_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets at size L: each with the measured value and whether it was met (None: not measured)."""
    at = results["sizes"].get(TARGET_SIZE)
    app_size, app_source = None, None
    for size in (TARGET_SIZE, "M", "S"):
        candidate = results["sizes"].get(size, {}).get("app", {})
        if "cold_start_to_first_page_s" in candidate:
            app_size, app_source = size, candidate
            break
    targets: list[dict[str, Any]] = []

    def add(
        name: str, value: float | None, limit: float, unit: str, higher_is_better: bool = False, size: str = "L"
    ) -> None:
        met = None if value is None else (value >= limit if higher_is_better else value < limit)
        targets.append({"target": name, "value": value, "limit": limit, "unit": unit, "met": met, "size": size})

    measures = (at or {}).get("measures", {})
    add("full recompute of every page's measures", measures.get("full_recompute", {}).get("median_s"), 5.0, "s")
    for name in PER_MEASURE:
        add(f"measure {name}", measures.get(name, {}).get("median_s"), 1.5, "s")
    refs = (at or {}).get("references")
    table = ratios(refs) if refs else {}
    for headline, row in table.items():
        if headline != "end_to_end":
            add(f"{headline}: Polars ÷ DuckDB", row["polars_vs_duckdb"], 1.5, "×")
    add("end to end: pandas ÷ Polars", table.get("end_to_end", {}).get("pandas_vs_polars"), 3.0, "×", True)
    app = app_source or {}
    size = app_size or "-"
    add("page warm rerun (server)", app.get("warm_rerun_median_s"), 0.1, "s", size=size)
    add("slowest page's warm rerun (server)", app.get("slowest_page_warm_rerun_s"), 0.1, "s", size=size)
    add("filter change", app.get("filter_change_median_s"), 0.5, "s", size=size)
    add(
        "cold app start to first page (results kept at write)",
        app.get("cold_start_to_first_page_s"),
        5.0,
        "s",
        size=size,
    )
    add("cold app start, nothing kept yet", app.get("cold_start_nothing_kept_s"), 5.0, "s", size=size)
    peaks = [m.get("peak_rss_mb", 0) for m in measures.values()]
    peaks += [r.get("peak_rss_mb", 0) for r in (refs or {}).values() if r.get("engine") == "polars"]
    add("peak memory of any measure", max(peaks) / 1024 if peaks else None, 8.0, "GB")
    return targets


def markdown(results: dict[str, Any], targets: list[dict[str, Any]] | None) -> str:
    """A short markdown report: per size the measures, the references and the app; then the targets."""
    lines = [f"# Throughline benchmark {results.get('started', '')}", ""]
    for name, outcome in results.get("sizes", {}).items():
        rows = outcome.get("rows", {})
        lines += [
            f"## Size {name}",
            "",
            f"{rows.get('pull_requests', 0):,} PRs · {rows.get('cost_events', 0):,} cost events · "
            f"{rows.get('features', 0):,} features · {rows.get('work_items', 0):,} work items · "
            f"{rows.get('deployments', 0):,} deployments · {rows.get('metric_observations', 0):,} metric observations",
            "",
            "| measure (fresh process) | cold s | warm median s | peak MB |",
            "|---|---:|---:|---:|",
        ]
        timed = {**({"import + snapshot refresh": outcome["import"]} if "import" in outcome else {})}
        timed |= outcome.get("measures", {})
        for measure, t in timed.items():
            lines.append(f"| {measure} | {t['cold_s']:.3f} | {t['median_s']:.3f} | {t['peak_rss_mb']:,.0f} |")
        if "import" in outcome and outcome["import"].get("limited"):
            cut = ", ".join(f"{k} {v['imported']:,} of {v['rows']:,}" for k, v in outcome["import"]["limited"].items())
            full = sum(rows.values()) / outcome["import"]["rows_per_s"]
            lines.append(
                f"\nImport timed on a representative set ({cut} rows; the rest whole) at "
                f"{outcome['import']['rows_per_s']:,} rows/s; the full write would take about {full / 60:.0f} min."
            )
        if "references" in outcome:
            lines += [
                "",
                "| headline (warm median) | Polars s | DuckDB s | pandas s | Polars ÷ DuckDB | pandas ÷ Polars |",
                "|---|---:|---:|---:|---:|---:|",
            ]
            for headline, r in ratios(outcome["references"]).items():
                lines.append(
                    f"| {headline} | {r['polars_s']:.3f} | {r['duckdb_s']:.3f} | {r['pandas_s']:.3f} | "
                    f"{r['polars_vs_duckdb']} | {r['pandas_vs_polars']} |"
                )
            lines.append(f"\nFigures: {outcome['agreement']}.")
        if "app" in outcome:
            app = outcome["app"]
            lines.append("")
            lines.append(
                f"App ({app.get('role', '')}, {app.get('page', '')}): "
                + (app_text(app) if "error" not in app else f"failed: {app['error'][:300]}")
            )
        lines.append("")
    if targets:
        lines += ["## Targets (size L)", "", "| target | measured | limit | met |", "|---|---:|---:|---|"]
        for t in targets:
            value = "—" if t["value"] is None else f"{t['value']:.3f} {t['unit']}"
            met = "not measured" if t["met"] is None else ("yes" if t["met"] else "**no**")
            where = "" if t["size"] == "L" else f" (at {t['size']})"
            lines.append(f"| {t['target']}{where} | {value} | {t['limit']} {t['unit']} | {met} |")
    if "xl" in results:
        lines += ["", xl_text(results["xl"])]
    return "\n".join(lines) + "\n"


def xl_text(xl: dict[str, Any]) -> str:
    """The XL streaming run on one line."""
    rows = xl.get("rows", {})
    return (
        f"XL streaming cost per feature: {rows.get('pull_requests', 0):,} PRs, {rows.get('cost_events', 0):,} cost "
        f"events → {xl.get('features_costed', 0):,} features in {xl['seconds']:.1f} s, "
        f"peak {xl['peak_rss_mb'] / 1024:.1f} GB"
    )


def write(out: Path, stamp: str, results: dict[str, Any], targets: list[dict[str, Any]] | None) -> list[Path]:
    """``bench-<stamp>.json`` and ``.md`` under ``out``, plus ``latest.json`` and ``latest.md``."""
    payload = {**results, "targets": targets}
    text = json.dumps(payload, indent=2, default=str)
    page = markdown(results, targets) if "sizes" in results else xl_text(results["xl"]) + "\n"
    kind = "bench" if "sizes" in results else "xl"
    paths = [
        out / f"{kind}-{stamp}.json",
        out / f"{kind}-{stamp}.md",
        out / f"{kind}-latest.json",
        out / f"{kind}-latest.md",
    ]
    for path in paths:
        path.write_text(text if path.suffix == ".json" else page)
    return paths[:2]

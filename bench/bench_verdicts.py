"""How honest the impact verdicts are on an organisation that launches often: a simulation.

``python -m bench.bench_verdicts`` builds metrics the way product metrics behave — a level, a slow
trend, weekly seasonality and AR(1) noise with ρ ∈ {0, 0.3, 0.6} — and launches a feature on each
metric every 30–60 days (no two judged windows overlap). Each feature predicts a change of two noise
standard deviations; its true effect is nothing, the prediction, or half of it. The verdicts come
from ``core.outcomes.verdicts.judge_hypotheses`` exactly as the product runs it, and the run prints:

* coverage — share of judged features whose 95% interval holds the true effect, per ρ (goal 0.93–0.97);
* confounded — share of verdicts given up as confounded (goal at most 5%);
* false confirmations of null effects and false refutations of effects as large as predicted
  (goal at most 5% each), and power — confirmed share of effects as large as predicted (goal 80%);
* the time to judge the whole simulated organisation (about 17,000 hypotheses, the size L count;
  goal under 1.5 s), also as a ratio to a reference computation timed in the same run — a batched
  least-squares fit of the same windows — so slower machines can be compared.
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import date, datetime, timedelta

import numpy as np
import polars as pl

from core.outcomes.verdicts import judge_hypotheses

HISTORY_DAYS = 730
END = date(2026, 11, 15)
RHOS = (0.0, 0.3, 0.6)
NOISE_SD = 1.0
PREDICTED_SDS = 2.0
TARGET_HYPOTHESES = 17_000
GOALS = {
    "coverage": (0.93, 0.97),
    "confounded": 0.05,
    "false_confirmations": 0.05,
    "false_refutations": 0.05,
    "power": 0.80,
    "seconds": 1.5,
}


def simulate(metrics: int, seed: int = 11) -> dict[str, pl.DataFrame]:
    """Features, hypotheses, metrics and daily observations of ``metrics`` metrics launched on every 30–60 days."""
    rng = np.random.default_rng(seed)
    start = END - timedelta(days=HISTORY_DAYS)
    rho = np.array(RHOS)[np.arange(metrics) % len(RHOS)]
    features: dict[str, list] = {"feature_id": [], "metric_id": [], "delivered": [], "lag": [], "window": []}
    for m in range(metrics):
        day = 125 + int(rng.integers(0, 30))
        while True:
            gap = int(rng.integers(30, 61))
            lag = int(rng.choice([0, 2, 3, 7]))
            window = int(min(rng.choice([28, 35, 42, 60]), gap - lag))
            if day + lag + window > HISTORY_DAYS:
                break
            features["feature_id"].append(f"F{m:04d}-{len(features['feature_id']):05d}")
            features["metric_id"].append(f"m{m:04d}")
            features["delivered"].append(day)
            features["lag"].append(lag)
            features["window"].append(window)
            day += gap
    n = len(features["feature_id"])
    metric_index = np.array([int(m[1:]) for m in features["metric_id"]])
    delivered = np.array(features["delivered"])
    lag = np.array(features["lag"])
    sign = rng.choice([-1.0, 1.0], n)
    predicted = sign * PREDICTED_SDS * NOISE_SD
    share = rng.choice([0.0, 1.0, 0.5], n)
    effect = predicted * share

    days = np.arange(HISTORY_DAYS)
    innovations = rng.normal(0.0, 1.0, (metrics, HISTORY_DAYS)) * (NOISE_SD * np.sqrt(1 - rho**2))[:, None]
    noise = np.empty((metrics, HISTORY_DAYS))
    noise[:, 0] = rng.normal(0.0, NOISE_SD, metrics)
    for d in range(1, HISTORY_DAYS):
        noise[:, d] = rho * noise[:, d - 1] + innovations[:, d]
    trend = rng.normal(0.0, 1.0, metrics)[:, None] * days[None, :] / 365.0
    weekly = 0.6 * NOISE_SD * np.sin(2 * np.pi * ((days + rng.integers(0, 7, metrics)[:, None]) % 7) / 7)
    steps = np.zeros((metrics, HISTORY_DAYS + 1))
    np.add.at(steps, (metric_index, delivered + lag), effect)
    values = 50.0 + trend + weekly + noise + np.cumsum(steps, axis=1)[:, :HISTORY_DAYS]

    dates = pl.date_range(start, start + timedelta(days=HISTORY_DAYS - 1), eager=True)
    observations = pl.DataFrame(
        {
            "metric_id": np.repeat([f"m{m:04d}" for m in range(metrics)], HISTORY_DAYS),
            "date": pl.concat([dates] * metrics),
            "segment": "all",
            "value": values.ravel(),
        }
    )
    delivered_at = pl.Series([datetime.combine(start + timedelta(days=int(d)), datetime.min.time()) for d in delivered])
    delivered_at = delivered_at + timedelta(hours=15)
    frames = {
        "features": pl.DataFrame(
            {
                "feature_id": features["feature_id"],
                "status": "delivered",
                "delivered_at": delivered_at,
                "control_segment": pl.Series([None] * n, dtype=pl.String),
                "team_id": pl.Series([f"t{i % 6}" for i in range(n)]),
            }
        ),
        "hypotheses": pl.DataFrame(
            {
                "feature_id": features["feature_id"],
                "metric_id": features["metric_id"],
                "predicted_change": predicted,
                "change_kind": "absolute",
                "lag_days": lag,
                "window_days": np.array(features["window"]),
                "created_at": delivered_at - timedelta(days=40),
            }
        ),
        "metrics": pl.DataFrame(
            {
                "metric_id": [f"m{m:04d}" for m in range(metrics)],
                "name": "metric",
                "unit": pl.Series([None] * metrics, dtype=pl.String),
            }
        ),
        "metric_observations": observations,
        "truth": pl.DataFrame(
            {
                "feature_id": features["feature_id"],
                "rho": rho[metric_index],
                "true_effect": effect,
                "share": share,
            }
        ),
    }
    return frames


def judge(frames: dict[str, pl.DataFrame]) -> tuple[pl.DataFrame, float]:
    """The product's verdicts on the simulated organisation and the seconds they took (wall clock)."""
    began = time.perf_counter()
    judged = judge_hypotheses(
        frames["features"].lazy(),
        frames["hypotheses"].lazy(),
        frames["metrics"].lazy(),
        frames["metric_observations"].lazy(),
        END,
    )
    return judged, time.perf_counter() - began


def reference_seconds(frames: dict[str, pl.DataFrame]) -> float:
    """Seconds for a plain batched least-squares fit of one 180-day window per hypothesis (the yardstick)."""
    n = frames["hypotheses"].height
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 180, 12))
    y = rng.normal(size=(n, 180, 1))
    began = time.perf_counter()
    for lo in range(0, n, 512):
        xb, yb = x[lo : lo + 512], y[lo : lo + 512]
        xt = xb.transpose(0, 2, 1)
        np.linalg.solve(xt @ xb, xt @ yb)
    return time.perf_counter() - began


def summarise(judged: pl.DataFrame, truth: pl.DataFrame) -> dict[str, object]:
    """Coverage per ρ, share confounded, false confirmations and refutations, and power."""
    rows = judged.join(truth, on="feature_id")
    decided = rows.filter(pl.col("verdict").is_in(("confirmed", "refuted", "inconclusive")))
    covered = decided.filter(pl.col("ci_low_abs").is_not_null()).with_columns(
        pl.col("true_effect").is_between(pl.col("ci_low_abs"), pl.col("ci_high_abs")).alias("covered")
    )
    coverage = {
        float(r["rho"]): (float(r["covered"]), int(r["n"]))
        for r in covered.group_by("rho").agg(pl.col("covered").mean(), pl.len().alias("n")).iter_rows(named=True)
    }

    def share(frame: pl.DataFrame, verdict: str) -> float:
        return float((frame["verdict"] == verdict).mean()) if frame.height else float("nan")

    nulls = decided.filter(pl.col("share") == 0.0)
    full = decided.filter(pl.col("share") == 1.0)
    return {
        "hypotheses": rows.height,
        "judged": decided.height,
        "coverage": dict(sorted(coverage.items())),
        "confounded": share(rows, "confounded"),
        "false_confirmations": share(nulls, "confirmed"),
        "false_refutations": share(full, "refuted"),
        "power": share(full, "confirmed"),
        "power_by_rho": {
            float(r["rho"]): float(r["power"])
            for r in full.group_by("rho")
            .agg((pl.col("verdict") == "confirmed").mean().alias("power"))
            .iter_rows(named=True)
        },
        "verdicts": dict(rows["verdict"].value_counts().sort("verdict").iter_rows()),
    }


def main(argv: list[str] | None = None) -> None:
    """Simulate, judge and print the figures beside their goals."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metrics", type=int, default=1350, help="simulated metrics (1350 gives about 17k hypotheses)")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args(argv)
    frames = simulate(args.metrics, args.seed)
    judge(frames)  # warm-up: imports, caches and thread pools start outside the timed run
    cpu = time.process_time()
    judged, seconds = judge(frames)
    cpu = time.process_time() - cpu
    reference = reference_seconds(frames)
    figures = summarise(judged, frames["truth"])
    low, high = GOALS["coverage"]
    print(f"hypotheses: {figures['hypotheses']}  judged: {figures['judged']}  verdicts: {figures['verdicts']}")
    for rho, (value, count) in figures["coverage"].items():  # type: ignore[attr-defined]
        status = "meets" if low <= value <= high else "MISSES"
        print(f"coverage at rho={rho:.1f}: {value:.3f} of {count} ({status} {low}-{high})")
    for name in ("confounded", "false_confirmations", "false_refutations"):
        value = figures[name]
        status = "meets" if value <= GOALS[name] else "MISSES"
        print(f"{name.replace('_', ' ')}: {value:.3f} ({status} <= {GOALS[name]})")
    power = figures["power"]
    print(
        f"power for effects of {PREDICTED_SDS:g} noise SDs: {power:.3f} "
        f"({'meets' if power >= GOALS['power'] else 'MISSES'} >= {GOALS['power']})"
    )
    print(
        "power by rho: "
        + ", ".join(f"{rho:.1f}: {value:.3f}" for rho, value in sorted(figures["power_by_rho"].items()))
    )  # type: ignore[attr-defined]
    status = "meets" if seconds < GOALS["seconds"] else "MISSES"
    print(
        f"time: {seconds:.2f} s for {figures['hypotheses']} hypotheses ({status} < {GOALS['seconds']} s); "
        f"{seconds / reference:.1f}x the reference least-squares fit ({reference:.3f} s); "
        f"{cpu:.2f} s of CPU over all threads; load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}"
    )


if __name__ == "__main__":
    main()

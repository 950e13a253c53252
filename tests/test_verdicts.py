"""Impact verdicts: known steps are measured, intervals are honest, and the verdict rules hold."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import numpy as np
import polars as pl
import pytest
import statsmodels.api as sm

from core.model.schema import empty
from core.outcomes.verdicts import (
    DESIGN,
    DID,
    ITS,
    VERDICT_COLUMNS,
    _ols_hac,
    confounders,
    fitted_series,
    judge_hypotheses,
    judging_schedule,
    observation_windows,
)

START = date(2024, 1, 1)
WEEKLY = np.array([1.0, 0.5, 0.0, 0.0, -0.5, -2.0, 1.0])
"""A weekday pattern (Monday first) averaging zero."""


def org(
    series: dict[str, np.ndarray],
    plans: list[dict],
    controls: dict[str, np.ndarray] | None = None,
) -> dict[str, pl.LazyFrame]:
    """Frames for metrics observed daily from START and features delivered per ``plans``.

    Each plan: feature_id, metric_id, day (delivery day index), predicted (fraction unless
    kind='absolute'), window, lag, control (segment name), status.
    """
    obs = [
        pl.DataFrame(
            {
                "metric_id": metric_id,
                "date": pl.date_range(START, START + timedelta(days=len(values) - 1), eager=True),
                "segment": segment,
                "value": values,
            }
        )
        for source, segment in ((series, "all"), (controls or {}, "control"))
        for metric_id, values in source.items()
    ]
    features = pl.DataFrame(
        {
            "feature_id": [p["feature_id"] for p in plans],
            "name": [p["feature_id"] for p in plans],
            "status": [p.get("status", "delivered") for p in plans],
            "delivered_at": [datetime.combine(START + timedelta(days=p["day"]), time(15)) for p in plans],
            "control_segment": [p.get("control") for p in plans],
        },
        schema_overrides={"control_segment": pl.String},
    )
    hypotheses = pl.DataFrame(
        {
            "feature_id": [p["feature_id"] for p in plans],
            "metric_id": [p["metric_id"] for p in plans],
            "predicted_change": [float(p.get("predicted", 0.05)) for p in plans],
            "change_kind": [p.get("kind", "relative") for p in plans],
            "lag_days": [p.get("lag", 0) for p in plans],
            "window_days": [p.get("window", 60) for p in plans],
            "created_at": [datetime(2023, 12, 1)] * len(plans),
        }
    )
    metric_ids = sorted(series)
    metrics = pl.DataFrame(
        {"metric_id": metric_ids, "name": ["Activation"] * len(metric_ids), "unit": ["pp"] * len(metric_ids)}
    )
    return {
        "features": features.lazy(),
        "hypotheses": hypotheses.lazy(),
        "metrics": metrics.lazy(),
        "metric_observations": pl.concat(obs).lazy(),
    }


def weekdays(days: int) -> np.ndarray:
    return WEEKLY[[(START + timedelta(days=i)).weekday() for i in range(days)]]


def ar1(rng: np.random.Generator, shape: tuple[int, int], sigma: float, phi: float) -> np.ndarray:
    shocks = rng.normal(0.0, sigma * np.sqrt(1 - phi**2), shape)
    noise = np.empty(shape)
    noise[:, 0] = rng.normal(0.0, sigma, shape[0])
    for day in range(1, shape[1]):
        noise[:, day] = phi * noise[:, day - 1] + shocks[:, day]
    return noise


def simulate(count: int, step: float, trend: float, seed: int, predicted: float = 0.05) -> pl.DataFrame:
    """Verdicts for ``count`` independent metrics, each with its own feature delivered on day 120."""
    rng = np.random.default_rng(seed)
    days, delivery = 180, 120
    t = np.arange(days) - delivery
    values = 100.0 + trend * t + weekdays(days) + step * (t >= 0) + ar1(rng, (count, days), 2.0, 0.3)
    series = {f"m{i:03d}": values[i] for i in range(count)}
    plans = [
        {"feature_id": f"f{i:03d}", "metric_id": f"m{i:03d}", "day": delivery, "predicted": predicted}
        for i in range(count)
    ]
    return judge_hypotheses(**org(series, plans), as_of=START + timedelta(days=days - 1))


def test_noiseless_step_is_measured_exactly_against_the_trend():
    days, delivery = 176, 120
    t = np.arange(days) - delivery
    values = 100.0 + 0.1 * t + weekdays(days) + 5.0 * (t >= 0)
    frames = org({"m": values}, [{"feature_id": "f", "metric_id": "m", "day": delivery, "window": 56}])
    verdict = judge_hypotheses(**frames, as_of=START + timedelta(days=days - 1)).row(0, named=True)
    assert verdict["method"] == ITS
    assert verdict["estimate_abs"] == pytest.approx(5.0, abs=1e-9)
    # Without the feature the window (t = 0..55, 8 whole weeks) would have averaged 100 + 0.1 * 27.5.
    assert verdict["estimate_rel"] == pytest.approx(5.0 / 102.75, abs=1e-9)
    assert verdict["ci_low_abs"] == pytest.approx(5.0, abs=1e-6)
    assert verdict["ci_high_abs"] == pytest.approx(5.0, abs=1e-6)


def test_five_percent_step_at_day_100_with_known_noise():
    rng = np.random.default_rng(42)
    days, delivery, sigma = 160, 100, 1.0
    t = np.arange(days) - delivery
    values = 100.0 + weekdays(days) + 5.0 * (t >= 0) + rng.normal(0.0, sigma, days)
    frames = org({"m": values}, [{"feature_id": "f", "metric_id": "m", "day": delivery, "window": 60}])
    verdict = judge_hypotheses(**frames, as_of=START + timedelta(days=days - 1)).row(0, named=True)

    # With white noise of known sigma the step's standard error is sigma * sqrt((X'X)^-1) for the
    # design const, trend, step and six weekday dummies over 100 + 60 days: 0.3000.
    design = np.column_stack(
        [np.ones(days), t / 100.0, (t >= 0).astype(float)]
        + [np.array([(START + timedelta(days=i)).weekday() == d for i in range(days)], float) for d in range(1, 7)]
    )
    expected_se = sigma * np.sqrt(np.linalg.inv(design.T @ design)[2, 2])
    assert expected_se == pytest.approx(0.3000, abs=1e-4)
    half_width = (verdict["ci_high_abs"] - verdict["ci_low_abs"]) / 2
    assert 0.7 * 1.97 * expected_se < half_width < 1.3 * 1.97 * expected_se
    assert abs(verdict["estimate_abs"] - 5.0) < 3 * expected_se
    assert verdict["ci_low_abs"] < 5.0 < verdict["ci_high_abs"]
    assert verdict["ci_low_rel"] < 0.05 < verdict["ci_high_rel"]
    assert verdict["estimate_rel"] == pytest.approx(0.05, abs=0.01)
    assert verdict["verdict"] == "confirmed"
    assert verdict["explanation"].startswith("Activation rose by ")
    assert verdict["explanation"].endswith("the prediction was +5%: confirmed.")
    assert "after delivery on 10 Apr 2024" in verdict["explanation"]


def test_interval_covers_the_true_effect_in_90_to_99_percent_of_simulated_series():
    verdicts = simulate(400, step=5.0, trend=0.02, seed=1)
    true_rel = 5.0 / (100.0 + 0.02 * 29.5)
    covered = ((verdicts["ci_low_rel"] <= true_rel) & (verdicts["ci_high_rel"] >= true_rel)).mean()
    assert 0.90 <= covered <= 0.99
    assert (verdicts["verdict"] == "confirmed").mean() > 0.95


def test_no_effect_is_rarely_confirmed():
    verdicts = simulate(400, step=0.0, trend=0.0, seed=2)
    assert (verdicts["verdict"] == "confirmed").mean() <= 0.07


def test_a_trend_without_a_step_is_rarely_taken_for_an_effect():
    verdicts = simulate(400, step=0.0, trend=0.05, seed=3)
    found = (verdicts["ci_low_abs"] > 0) | (verdicts["ci_high_abs"] < 0)
    assert found.mean() <= 0.07


def test_hac_covariance_matches_statsmodels():
    rng = np.random.default_rng(5)
    days = 150
    t = np.arange(days) - 100
    values = 50 + 0.05 * t + weekdays(days) + 2.0 * (t >= 0) + ar1(rng, (1, days), 1.0, 0.5)[0]
    frames = org({"m": values}, [{"feature_id": "f", "metric_id": "m", "day": 100, "window": 50}])
    schedule = judging_schedule(frames["features"], frames["hypotheses"], START + timedelta(days=days - 1))
    windows = observation_windows(schedule, frames["metric_observations"], START + timedelta(days=days - 1)).collect()
    x, y = windows.select(DESIGN).to_numpy(), windows["y"].to_numpy()
    beta, cov, dof, _ = _ols_hac(x[None], y[None], np.ones((1, len(y)), bool))
    lags = int(np.floor(4 * (len(y) / 100) ** (2 / 9)))
    reference = sm.OLS(y, x).fit(cov_type="HAC", cov_kwds={"maxlags": lags, "use_correction": True})
    np.testing.assert_allclose(beta[0], reference.params, rtol=1e-9)
    np.testing.assert_allclose(cov[0], reference.cov_params(), rtol=1e-9, atol=1e-12)
    assert dof[0] == len(y) - len(DESIGN)


def test_wrong_direction_is_refuted_and_a_noisy_metric_is_inconclusive():
    rng = np.random.default_rng(8)
    days = 180
    t = np.arange(days) - 120
    falling = 100.0 - 5.0 * (t >= 0) + rng.normal(0, 1.0, days)
    noisy = 100.0 + rng.normal(0, 40.0, days)
    frames = org(
        {"down": falling, "noisy": noisy},
        [
            {"feature_id": "f-down", "metric_id": "down", "day": 120},
            {"feature_id": "f-noisy", "metric_id": "noisy", "day": 120},
        ],
    )
    verdicts = judge_hypotheses(**frames, as_of=START + timedelta(days=days - 1))
    by_feature = dict(zip(verdicts["feature_id"], verdicts["verdict"], strict=True))
    assert by_feature == {"f-down": "refuted", "f-noisy": "inconclusive"}


def test_control_segment_uses_difference_in_differences():
    rng = np.random.default_rng(9)
    days = 180
    t = np.arange(days) - 120
    # A company-wide jump of +20 on delivery day hits both segments; only 'all' gets the feature's +5.
    shared = 100.0 + 20.0 * (t >= 0) + weekdays(days)
    control = shared + rng.normal(0, 1.0, days)
    treated = shared + 5.0 * (t >= 0) + rng.normal(0, 1.0, days)
    plan = {"feature_id": "f", "metric_id": "m", "day": 120, "kind": "absolute", "predicted": 5.0}
    as_of = START + timedelta(days=days - 1)
    did = judge_hypotheses(**org({"m": treated}, [{**plan, "control": "control"}], {"m": control}), as_of=as_of)
    its = judge_hypotheses(**org({"m": treated}, [plan], {"m": control}), as_of=as_of)
    assert did["method"][0] == DID
    assert did["ci_low_abs"][0] < 5.0 < did["ci_high_abs"][0]
    assert did["verdict"][0] == "confirmed"
    assert "against control segment 'control'" in did["explanation"][0]
    assert its["method"][0] == ITS
    assert its["estimate_abs"][0] > 20.0


def test_features_on_the_same_metric_inside_the_window_are_confounded():
    days = 420
    values = 100.0 + np.random.default_rng(4).normal(0, 1.0, days)
    frames = org(
        {"m": values, "other": values},
        [
            {"feature_id": "f-1", "metric_id": "m", "day": 150},
            {"feature_id": "f-2", "metric_id": "m", "day": 180},
            {"feature_id": "f-3", "metric_id": "m", "day": 350},
            {"feature_id": "f-4", "metric_id": "other", "day": 180},
        ],
    )
    verdicts = judge_hypotheses(**frames, as_of=START + timedelta(days=days - 1))
    rows = {r["feature_id"]: r for r in verdicts.iter_rows(named=True)}
    assert rows["f-1"]["verdict"] == "confounded"
    assert rows["f-1"]["confounded_by"] == ["f-2"]
    assert rows["f-2"]["confounded_by"] == ["f-1"]
    # f-3 ships 170 days after f-2: outside its 120-day pre-period and 60-day window.
    assert rows["f-3"]["confounded_by"] == []
    assert rows["f-3"]["verdict"] != "confounded"
    assert rows["f-4"]["confounded_by"] == []
    assert rows["f-1"]["estimate_abs"] is not None
    assert "f-2 aimed at the same metric" in rows["f-1"]["explanation"]


def test_a_confounder_counts_from_the_first_day_of_the_pre_period_to_the_judging_day_inclusive():
    def shipped(feature_id: str, metric_id: str, day: int) -> dict[str, object]:
        delivered = START + timedelta(days=day)
        return {
            "feature_id": feature_id,
            "metric_id": metric_id,
            "delivered_on": delivered,
            "pre_start": delivered - timedelta(days=120),
            "judge_on": delivered + timedelta(days=59),
        }

    # "a" spans days 200-120 = 80 to 200+59 = 259: "on-first-day" and "on-judging-day" sit on its
    # bounds, "day-before" and "day-after" one day outside, "other-metric" inside on another metric.
    schedule = pl.DataFrame(
        [
            shipped("a", "m", 200),
            shipped("on-first-day", "m", 80),
            shipped("day-before", "m", 79),
            shipped("on-judging-day", "m", 259),
            shipped("day-after", "m", 260),
            shipped("other-metric", "n", 200),
        ]
    )
    found = dict(confounders(schedule.lazy()).collect().iter_rows())
    assert found["a"] == ["on-first-day", "on-judging-day"]
    assert "other-metric" not in found


def test_window_not_over_is_pending_with_its_judging_date():
    days = 131
    values = 100.0 + np.random.default_rng(6).normal(0, 1.0, days)
    frames = org({"m": values}, [{"feature_id": "f", "metric_id": "m", "day": 120, "lag": 7, "window": 30}])
    as_of = START + timedelta(days=days - 1)
    verdict = judge_hypotheses(**frames, as_of=as_of).row(0, named=True)
    # Delivered 30 Apr 2024, effects from 7 May, judged once the 30 days to 5 Jun are observed.
    assert verdict["verdict"] == "pending"
    assert verdict["judge_on"] == date(2024, 6, 5)
    assert verdict["estimate_abs"] is None
    assert verdict["explanation"].startswith("Pending: judged on 5 Jun 2024")
    judged_later = judge_hypotheses(**frames, as_of=date(2024, 6, 5)).row(0, named=True)
    assert judged_later["verdict"] == "inconclusive"  # observations stop on 10 May: 4 days into the window
    assert "cannot be judged" in judged_later["explanation"]


def test_only_delivered_features_with_hypotheses_are_judged_with_every_column():
    days = 200
    values = 100.0 + np.random.default_rng(7).normal(0, 1.0, days)
    frames = org(
        {"m": values},
        [
            {"feature_id": "f-done", "metric_id": "m", "day": 130},
            {"feature_id": "f-planned", "metric_id": "m", "day": 130, "status": "planned"},
        ],
    )
    verdicts = judge_hypotheses(**frames, as_of=START + timedelta(days=days - 1))
    assert verdicts["feature_id"].to_list() == ["f-done"]
    assert set(VERDICT_COLUMNS) <= set(verdicts.columns)
    assert verdicts.schema["confounded_by"] == pl.List(pl.String)


def test_no_hypotheses_gives_an_empty_frame():
    frames = {name: empty(name).lazy() for name in ("features", "hypotheses", "metrics", "metric_observations")}
    verdicts = judge_hypotheses(**frames, as_of=date(2025, 1, 1))
    assert verdicts.height == 0
    assert set(VERDICT_COLUMNS) <= set(verdicts.columns)


def test_chart_series_shows_fitted_lines_and_counterfactual():
    days, delivery = 176, 120
    t = np.arange(days) - delivery
    values = 100.0 + 0.1 * t + weekdays(days) + 5.0 * (t >= 0)
    frames = org({"m": values}, [{"feature_id": "f", "metric_id": "m", "day": delivery, "window": 56, "lag": 3}])
    chart = fitted_series(
        "f",
        frames["features"],
        frames["hypotheses"],
        frames["metric_observations"],
        as_of=START + timedelta(days=days - 1),
    )
    assert chart.columns == ["date", "phase", "observed", "control", "fitted_pre", "fitted_post", "counterfactual"]
    # The window (days 123 to 178) is not over on day 175, so the chart shows it so far.
    assert chart.height == days
    before, lag, after = (chart.filter(pl.col("phase") == p) for p in ("before", "lag", "after"))
    assert (before.height, lag.height, after.height) == (120, 3, 53)
    # Lines are drawn at the average weekday: the pre line is the trend 100 + 0.1 (day - 120).
    np.testing.assert_allclose(before["fitted_pre"].to_numpy(), 100.0 + 0.1 * (np.arange(120) - 120), atol=1e-9)
    assert after["fitted_pre"].null_count() == after.height
    np.testing.assert_allclose((after["fitted_post"] - after["counterfactual"]).to_numpy(), 5.0, atol=1e-9)
    assert lag["counterfactual"].null_count() == 0 and lag["fitted_post"].null_count() == lag.height

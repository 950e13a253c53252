"""Impact verdicts: known steps are measured, intervals are honest, and the verdict rules hold."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import numpy as np
import polars as pl
import pytest
import statsmodels.api as sm
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from core.model.schema import empty
from core.outcomes.verdicts import (
    DID,
    ITS,
    VERDICT_COLUMNS,
    _fit_batch,
    _SeriesBatches,
    _verdict,
    fitted_series,
    judge_hypotheses,
    judging_schedule,
    metric_series,
    neighbours,
    series_members,
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
            "created_at": [p.get("created_at", datetime(2023, 12, 1)) for p in plans],
            "min_meaningful_change": [p.get("mmc") for p in plans],
        },
        schema_overrides={"min_meaningful_change": pl.Float64},
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
    assert verdict["explanation"].endswith(
        "the prediction was +5% (smallest change that matters 2.5%): confirmed; "
        "holds when 1 features are judged together."
    )
    assert "after delivery on 10 Apr 2024" in verdict["explanation"]


def test_interval_covers_the_true_effect_in_90_to_99_percent_of_simulated_series():
    verdicts = simulate(400, step=5.0, trend=0.02, seed=1)
    true_rel = 5.0 / (100.0 + 0.02 * 29.5)
    covered = ((verdicts["ci_low_rel"] <= true_rel) & (verdicts["ci_high_rel"] >= true_rel)).mean()
    assert 0.90 <= covered <= 0.99
    # Confirmed needs the whole interval beyond half the prediction (2.5%), not merely beyond zero.
    assert (verdicts["verdict"] == "confirmed").mean() > 0.85
    assert (verdicts["verdict"] == "refuted").mean() < 0.02


def test_no_effect_is_rarely_confirmed():
    verdicts = simulate(400, step=0.0, trend=0.0, seed=2)
    assert (verdicts["verdict"] == "confirmed").mean() <= 0.07


def test_a_trend_without_a_step_is_rarely_taken_for_an_effect():
    verdicts = simulate(400, step=0.0, trend=0.05, seed=3)
    found = (verdicts["ci_low_abs"] > 0) | (verdicts["ci_high_abs"] < 0)
    assert found.mean() <= 0.07


def test_the_whole_pipeline_matches_statsmodels_on_a_series_with_missing_days():
    rng = np.random.default_rng(5)
    days = 260
    t = np.arange(days)
    # Two launches on one metric: +2 on day 100 ramping over a 3-day lag, -1.5 on day 170 at once.
    effects = 2.0 * np.clip((t - 100) / 3, 0, 1) - 1.5 * (t >= 170)
    values = 50 + 0.05 * t + weekdays(days) + effects + ar1(rng, (1, days), 1.0, 0.5)[0]
    plans = [
        {"feature_id": "f", "metric_id": "m", "day": 100, "window": 45, "lag": 3},
        {"feature_id": "g", "metric_id": "m", "day": 170, "window": 45},
    ]
    frames = org({"m": values}, plans)
    # Days 30-34, 60 and 101 are missing: rows are not consecutive days.
    observed = frames["metric_observations"].filter(
        ~pl.col("date").is_in([START + timedelta(days=d) for d in (30, 31, 32, 33, 34, 60, 101)])
    )
    as_of = START + timedelta(days=days - 1)
    schedule = judging_schedule(frames["features"], frames["hypotheses"], as_of)
    rows = metric_series(schedule, observed, as_of).collect()
    x, y, mask, gap, first_step, _, _ = _SeriesBatches(rows, series_members(schedule, as_of).collect()).batch(0, 1)
    effects_at = np.arange(first_step, x.shape[2])
    fit = _fit_batch(x, y, mask, gap, effects_at)
    x, y, gap = x[0], y[0], gap[0]
    day = rows["day"].to_numpy()
    # The design by hand: const, trend, six weekday dummies, f's ramp (0 on day 100, 1 from day 103), g's step.
    assert first_step == 8
    since = day - day[0]
    np.testing.assert_allclose(x[:, 1], since / 100)
    np.testing.assert_allclose(x[:, 8], np.clip((since - 100) / 3, 0, 1))
    np.testing.assert_allclose(x[:, 9], (since >= 170).astype(float))

    # The oracle: AR(1) from statsmodels' OLS residuals on consecutive days, bias-corrected as documented.
    resid = sm.OLS(y, x).fit().resid
    pairs = gap[1:] == 1
    rho = (resid[1:] * resid[:-1])[pairs].sum() / ((resid[1:] ** 2 + resid[:-1] ** 2) / 2)[pairs].sum()
    n, k = len(y), x.shape[1]
    rho = float(np.clip(rho + (1 + 3 * rho + k) / n, -0.95, 0.95))
    assert fit.rho[0] == pytest.approx(rho, rel=1e-9)
    # Prais–Winsten with gaps is the GLS whitening of AR(1) errors, cov(e_i, e_j) ∝ ρ^|day_i − day_j|.
    whiten = np.zeros((n, n))
    whiten[0, 0] = np.sqrt(1 - rho**2)
    for i in range(1, n):
        carried = rho ** gap[i]
        scale = np.sqrt((1 - rho**2) / (1 - carried**2))
        whiten[i, i], whiten[i, i - 1] = scale, -carried * scale
    sigma = rho ** np.abs(day[:, None] - day[None, :]) / (1 - rho**2)
    np.testing.assert_allclose(whiten.T @ whiten, np.linalg.inv(sigma), rtol=1e-7, atol=1e-9)
    lags = int(np.floor(4 * (n / 100) ** (2 / 9)))
    reference = sm.OLS(whiten @ y, whiten @ x).fit(cov_type="HAC", cov_kwds={"maxlags": lags, "use_correction": True})
    np.testing.assert_allclose(fit.beta[0], reference.params, rtol=1e-8)
    # Only the effects' variances are computed (each sandwich collapsed onto its row): statsmodels' entries.
    np.testing.assert_allclose(fit.variance[0], np.diag(reference.cov_params())[effects_at], rtol=1e-8)
    # Degrees of freedom: the Bartlett HAC's equivalent 3n / (2(L + 1)), at most n − k.
    assert fit.dof[0] == min(n - k, np.floor(3 * n / (2 * (lags + 1))))
    # The white-noise correction: E[HAC variance] under white noise, written out with the hat matrix.
    xw = whiten @ x
    bread = np.linalg.inv(xw.T @ xw)
    hat = xw @ bread @ xw.T
    weights = np.maximum(1 - np.abs(np.arange(n)[:, None] - np.arange(n)[None, :]) / (lags + 1), 0)
    for j, column in enumerate(effects_at):
        influence = xw @ bread[:, column]
        expected = (weights * np.outer(influence, influence) * (np.eye(n) - hat)).sum()
        corrected = fit.variance[0, j] * fit.correction[0, j]
        wanted = reference.cov_params()[column, column] * bread[column, column] / expected * (n - k) / n
        assert corrected == pytest.approx(wanted, rel=1e-8)
    # And the verdicts report these numbers: the estimate and the interval with the t quantile at that dof.
    verdicts = judge_hypotheses(
        frames["features"], frames["hypotheses"], frames["metrics"], observed, as_of=as_of
    ).sort("feature_id")
    se = np.sqrt(fit.variance[0] * fit.correction[0])
    half = stats.t.ppf(0.975, fit.dof[0]) * se
    np.testing.assert_allclose(verdicts["estimate_abs"].to_numpy(), reference.params[effects_at], rtol=1e-8)
    np.testing.assert_allclose(
        verdicts["ci_high_abs"].to_numpy() - verdicts["estimate_abs"].to_numpy(), half, rtol=1e-8
    )


def test_noiseless_launches_with_a_ramp_give_exactly_their_steps():
    # A level of 40, a trend of 0.02 a day, +3 from day 150 (no lag), -2 ramping from delivery on
    # day 196 over a 4-day lag (day 196: 0, 197: -0.5, 198: -1, 199: -1.5, 200 on: -2), and +1 on day
    # 260 two days after a 0-effect launch on day 258; every day observed, weekly pattern included.
    days = 330
    t = np.arange(days)
    values = 40.0 + 0.02 * t + weekdays(days) + 3.0 * (t >= 150) - 2.0 * np.clip((t - 196) / 4, 0, 1) + 1.0 * (t >= 260)
    plans = [
        {"feature_id": "a", "metric_id": "m", "day": 150, "kind": "absolute", "predicted": 3.0, "window": 40},
        {
            "feature_id": "b",
            "metric_id": "m",
            "day": 196,
            "lag": 4,
            "kind": "absolute",
            "predicted": -2.0,
            "window": 42,
        },
        {"feature_id": "c", "metric_id": "m", "day": 258, "kind": "absolute", "predicted": 1.0, "window": 40},
        {"feature_id": "d", "metric_id": "m", "day": 260, "kind": "absolute", "predicted": 1.0, "window": 40},
    ]
    rows = {
        r["feature_id"]: r
        for r in judge_hypotheses(**org({"m": values}, plans), as_of=START + timedelta(days=days - 1)).iter_rows(
            named=True
        )
    }
    assert rows["a"]["estimate_abs"] == pytest.approx(3.0, abs=1e-8)
    assert rows["b"]["estimate_abs"] == pytest.approx(-2.0, abs=1e-8)
    assert rows["c"]["estimate_abs"] == pytest.approx(0.0, abs=1e-8)
    assert rows["d"]["estimate_abs"] == pytest.approx(1.0, abs=1e-8)
    # Without the feature, b's window (days 200 to 241, six whole weeks) would have averaged 40 + 0.02 * 220.5 + 3.
    assert rows["b"]["estimate_rel"] == pytest.approx(-2.0 / (40 + 0.02 * 220.5 + 3.0), abs=1e-9)
    assert rows["a"]["ci_low_abs"] == pytest.approx(3.0, abs=1e-6)
    assert rows["b"]["estimated_with"] == ["a"]


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


def test_launches_on_the_same_metric_are_estimated_jointly_not_given_up():
    rng = np.random.default_rng(4)
    days = 420
    t = np.arange(days)
    # f-1 adds +4 on day 150, f-2 adds -3 on day 210, f-3 nothing on day 320; "other" is another metric.
    values = 100.0 + 0.01 * t + 4.0 * (t >= 150) - 3.0 * (t >= 210) + rng.normal(0, 1.0, days)
    frames = org(
        {"m": values, "other": 100.0 + rng.normal(0, 1.0, days)},
        [
            {"feature_id": "f-1", "metric_id": "m", "day": 150, "kind": "absolute", "predicted": 4.0},
            {"feature_id": "f-2", "metric_id": "m", "day": 210, "kind": "absolute", "predicted": -3.0},
            {"feature_id": "f-3", "metric_id": "m", "day": 320, "kind": "absolute", "predicted": 2.0},
            {"feature_id": "f-4", "metric_id": "other", "day": 180},
        ],
    )
    verdicts = judge_hypotheses(**frames, as_of=START + timedelta(days=days - 1))
    rows = {r["feature_id"]: r for r in verdicts.iter_rows(named=True)}
    # f-1's span is days 30 to 209, so f-2 (day 210) falls just after it; f-2's span (90 to 269) holds
    # f-1, and f-3's (200 to 379) holds f-2.
    assert rows["f-1"]["estimated_with"] == []
    assert rows["f-2"]["estimated_with"] == ["f-1"]
    assert rows["f-3"]["estimated_with"] == ["f-2"]
    assert rows["f-4"]["estimated_with"] == []
    assert {r["verdict"] for r in rows.values()} <= {"confirmed", "refuted", "inconclusive"}
    assert rows["f-1"]["ci_low_abs"] < 4.0 < rows["f-1"]["ci_high_abs"]
    assert rows["f-2"]["ci_low_abs"] < -3.0 < rows["f-2"]["ci_high_abs"]
    assert rows["f-3"]["ci_low_abs"] < 0.0 < rows["f-3"]["ci_high_abs"]
    assert rows["f-2"]["verdict"] == "confirmed"
    assert rows["f-3"]["verdict"] == "refuted"
    assert "estimated jointly with f-1 (launched on the same metric in this span)" in rows["f-2"]["explanation"]


def test_an_earlier_launch_with_no_effect_is_modelled_not_blamed():
    # The pilot's case: a -6 step three months after a launch that moved nothing.
    rng = np.random.default_rng(12)
    days = 330
    t = np.arange(days)
    values = 80.0 + weekdays(days) - 6.0 * (t >= 240) + ar1(rng, (1, days), 1.5, 0.3)[0]
    frames = org(
        {"m": values},
        [
            {"feature_id": "earlier", "metric_id": "m", "day": 150, "kind": "absolute", "predicted": -4.0},
            {"feature_id": "planted", "metric_id": "m", "day": 240, "kind": "absolute", "predicted": -6.0},
        ],
    )
    row = judge_hypotheses(**frames, as_of=START + timedelta(days=days - 1)).row(1, named=True)
    assert row["feature_id"] == "planted"
    assert row["confounded_by"] == []
    assert row["estimated_with"] == ["earlier"]
    assert row["ci_low_abs"] < -6.0 < row["ci_high_abs"]
    assert row["verdict"] == "confirmed"


def test_launches_that_cannot_be_told_apart_are_confounded_naming_the_other_and_why():
    rng = np.random.default_rng(13)
    days = 300
    t = np.arange(days)
    values = 100.0 + 5.0 * (t >= 150) + rng.normal(0, 1.0, days)
    frames = org(
        {"same-day": values, "close": values},
        [
            # Same day: no observed day between the two steps, the design is singular.
            {"feature_id": "a-1", "metric_id": "same-day", "day": 150},
            {"feature_id": "a-2", "metric_id": "same-day", "day": 150},
            # Two days apart: both steps are estimable but their estimates move together.
            {"feature_id": "b-1", "metric_id": "close", "day": 150},
            {"feature_id": "b-2", "metric_id": "close", "day": 152},
        ],
    )
    rows = {r["feature_id"]: r for r in judge_hypotheses(**frames, as_of=date(2024, 10, 1)).iter_rows(named=True)}
    assert rows["a-1"]["verdict"] == "confounded" and rows["a-1"]["confounded_by"] == ["a-2"]
    assert "a-2 (no observed day falls between the two launches)" in rows["a-1"]["explanation"]
    assert rows["b-2"]["verdict"] == "confounded" and rows["b-2"]["confounded_by"] == ["b-1"]
    assert "b-1 (the two estimates are correlated at -0." in rows["b-2"]["explanation"]
    assert rows["b-2"]["explanation"].endswith("aimed at the same metric: confounded.")


def test_a_neighbour_counts_when_its_effect_starts_after_the_pre_period_starts_and_by_the_judging_day():
    def shipped(feature_id: str, metric_id: str, day: int) -> dict[str, object]:
        delivered = START + timedelta(days=day)
        return {
            "feature_id": feature_id,
            "metric_id": metric_id,
            "effect_start": delivered,
            "pre_start": delivered - timedelta(days=120),
            "judge_on": delivered + timedelta(days=59),
        }

    # "a" spans days 200-120 = 80 to 200+59 = 259: a step on day 80 is constant over the span, one on
    # day 81 is the first that varies; "on-judging-day" sits on its last day, "day-after" one outside.
    schedule = pl.DataFrame(
        [
            shipped("a", "m", 200),
            shipped("on-first-day", "m", 80),
            shipped("day-after-first", "m", 81),
            shipped("on-judging-day", "m", 259),
            shipped("day-after", "m", 260),
            shipped("other-metric", "n", 200),
        ]
    )
    found = neighbours(schedule.lazy()).filter(pl.col("feature_id") == "a").collect()
    assert found["other_id"].to_list() == ["day-after-first", "on-judging-day"]


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
    # The effect ramps over the 3 lag days, as the model has it: 0 on delivery, 5 from day 123 on.
    values = 100.0 + 0.1 * t + weekdays(days) + 5.0 * np.clip(t / 3, 0, 1)
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


RANK = {"refuted": 0, "inconclusive": 1, "confirmed": 2}


def rule(predicted: float, low: float, high: float, mmc: float | None = None) -> str:
    """The verdict the rule gives an interval against a prediction (absolute kind, not pending)."""
    frame = pl.DataFrame(
        {
            "pending": [False],
            "confounded_by": [[]],
            "predicted_change": [predicted],
            "min_meaningful_change": [abs(predicted) / 2 if mmc is None else mmc],
            "_low": [low],
            "_high": [high],
        },
        schema_overrides={"confounded_by": pl.List(pl.String)},
    )
    return frame.select(_verdict()).item()


def test_the_rule_compares_the_interval_with_the_minimum_meaningful_change():
    # The contradictions against +5%: [+0.1%, +0.3%] falls short of 2.5%, [-1%, +2%] too.
    assert rule(0.05, 0.001, 0.003) == "refuted"
    assert rule(0.05, -0.01, 0.02) == "refuted"
    assert rule(0.05, 0.01, 0.04) == "inconclusive"
    assert rule(0.05, 0.026, 0.09) == "confirmed"
    assert rule(-6.0, -9.5, -5.2) == "confirmed"
    # A prediction of no change: a ±50% interval proves nothing; within ± the MMC it is confirmed.
    assert rule(0.0, -0.5, 0.5, mmc=0.02) == "inconclusive"
    assert rule(0.0, -0.01, 0.01, mmc=0.02) == "confirmed"
    assert rule(0.0, 0.03, 0.05, mmc=0.02) == "refuted"
    # A hypothesis's own MMC replaces half the prediction.
    assert rule(0.05, 0.01, 0.04, mmc=0.005) == "confirmed"


interval = st.tuples(
    st.floats(-10, 10),  # prediction
    st.floats(-20, 20),  # centre
    st.floats(0.01, 10),  # half width
    st.floats(0, 10),  # shift towards the prediction
    st.floats(0, 10),  # extra width
)


@given(interval)
def test_a_larger_effect_in_the_predicted_direction_never_gets_a_worse_verdict(case: tuple) -> None:
    predicted, centre, half, shift, _ = case
    direction = 1.0 if predicted >= 0 else -1.0
    moved = centre + direction * shift
    if predicted == 0:
        return
    before = rule(predicted, centre - half, centre + half)
    after = rule(predicted, moved - half, moved + half)
    assert RANK[after] >= RANK[before]


@given(interval)
def test_a_wider_interval_never_turns_inconclusive_into_confirmed(case: tuple) -> None:
    predicted, centre, half, _, extra = case
    before = rule(predicted, centre - half, centre + half)
    after = rule(predicted, centre - half - extra, centre + half + extra)
    if before == "inconclusive":
        assert after == "inconclusive"
    if before != "confirmed":
        assert after != "confirmed"


def test_a_prediction_recorded_after_delivery_is_judged_as_retrospective():
    rng = np.random.default_rng(21)
    days = 200
    t = np.arange(days)
    values = 100.0 + 5.0 * (t >= 130) + rng.normal(0, 1.0, days)
    later = datetime.combine(START + timedelta(days=150), time(9))
    frames = org(
        {"m": values, "n": values},
        [
            {"feature_id": "after", "metric_id": "m", "day": 130, "created_at": later},
            {"feature_id": "before", "metric_id": "n", "day": 130},
        ],
    )
    rows = {r["feature_id"]: r for r in judge_hypotheses(**frames, as_of=date(2024, 7, 18)).iter_rows(named=True)}
    assert rows["after"]["retrospective"] is True and rows["before"]["retrospective"] is False
    assert rows["after"]["verdict"] == rows["before"]["verdict"] == "confirmed"
    assert rows["after"]["explanation"].startswith("Retrospective (the prediction was recorded after delivery")


def test_a_quarters_verdicts_are_adjusted_for_the_false_discovery_rate_together():
    rng = np.random.default_rng(22)
    days = 200
    t = np.arange(days)
    strong = 100.0 + 8.0 * (t >= 130) + rng.normal(0, 1.0, days)
    flat = 100.0 + rng.normal(0, 1.0, days)
    plans = [{"feature_id": "strong", "metric_id": "s", "day": 130, "kind": "absolute", "predicted": 8.0}]
    plans += [
        {"feature_id": f"flat-{i}", "metric_id": f"f{i}", "day": 131, "kind": "absolute", "predicted": 8.0}
        for i in range(3)
    ]
    series = {"s": strong, **{f"f{i}": flat for i in range(3)}}
    rows = judge_hypotheses(**org(series, plans), as_of=date(2024, 7, 18))
    # All four were delivered in 2024-Q2: judged together; p-values adjusted by Benjamini–Hochberg.
    assert rows["judged_together"].to_list() == [4, 4, 4, 4]
    q = rows["q_value"].to_numpy()
    assert (q >= 0).all() and (q <= 1).all()
    strong_row = rows.filter(pl.col("feature_id") == "strong").row(0, named=True)
    assert strong_row["verdict"] == "confirmed" and strong_row["holds_together"] is True
    assert "holds when 4 features are judged together" in strong_row["explanation"]
    flat_rows = rows.filter(pl.col("feature_id") != "strong")
    assert flat_rows["verdict"].to_list() == ["refuted"] * 3
    assert flat_rows["holds_together"].to_list() == [True] * 3

"""Predicted versus actual: how well each team's predictions held, and a backlog that learns from it.

Definitions (shown beside the numbers):

* judged — verdict confirmed, refuted or inconclusive (pending and confounded are not judged).
* hit rate — confirmed / judged.
* mean actual/predicted — mean over judged predictions of measured change / predicted change,
  each in the prediction's own kind (relative or absolute).
* credit — what of the prediction was realised: measured / predicted change, clipped to [0, 1], for a
  confirmed or refuted prediction; an inconclusive one earns nothing (a noisy measurement is no
  evidence either way, so wide intervals cannot buy credit). A confirmed prediction of no change earns 1.
* calibration — mean credit over judged predictions.
* interval score — the 95% interval score of the measurement against the prediction, as a multiple of
  the predicted change: width + 40 × how far the prediction lies outside (Gneiting and Raftery's
  proper score at α = 0.05); lower is better, and a wide interval scores worse, never better.
* discount — (credit + 0.5) / (judged + 1), the calibration with one half-realised prediction added,
  so a team without a track record counts half its predictions and one lucky call does not count as
  certainty. Backlog expected values are multiplied by it.

Retrospective predictions (recorded after delivery) are listed but left out of every score.
"""

from __future__ import annotations

from datetime import date

import polars as pl

from core.outcomes.progress import current_levels
from core.outcomes.verdicts import JUDGED

PRIOR_DISCOUNT = 0.5
"""Discount of a team with no judged prediction: (0 + 0.5) / (0 + 1)."""
_INTERVAL_PENALTY = 2 / 0.05
"""The interval score's penalty per unit the prediction lies outside a 95% interval: 2 / α."""


def prediction_ledger(verdicts: pl.LazyFrame, features: pl.LazyFrame) -> pl.LazyFrame:
    """Every judged prediction beside its measurement, with its team and delivery quarter."""
    relative = pl.col("change_kind") == "relative"
    actual = pl.when(relative).then(pl.col("estimate_rel")).otherwise(pl.col("estimate_abs"))
    low = pl.when(relative).then(pl.col("ci_low_rel")).otherwise(pl.col("ci_low_abs"))
    high = pl.when(relative).then(pl.col("ci_high_rel")).otherwise(pl.col("ci_high_abs"))
    present = verdicts.collect_schema().names()
    retrospective = pl.col("retrospective").fill_null(False) if "retrospective" in present else pl.lit(False)
    return (
        verdicts.filter(pl.col("verdict").is_in(JUDGED) & actual.is_not_null())
        .join(features.select("feature_id", "team_id"), on="feature_id", how="left")
        .select(
            "feature_id",
            "team_id",
            "metric_id",
            "delivered_on",
            pl.format("{}-Q{}", pl.col("delivered_on").dt.year(), pl.col("delivered_on").dt.quarter()).alias("quarter"),
            "predicted_change",
            "change_kind",
            actual.alias("actual"),
            low.alias("actual_low"),
            high.alias("actual_high"),
            "verdict",
            "method",
            retrospective.alias("retrospective"),
        )
        .with_columns(
            (pl.col("verdict") == "confirmed").alias("hit"),
            pl.when(pl.col("predicted_change") != 0)
            .then(pl.col("actual") / pl.col("predicted_change"))
            .alias("actual_to_predicted"),
            pl.col("predicted_change").is_between(pl.col("actual_low"), pl.col("actual_high")).alias("contained"),
            _credit().alias("credit"),
            _interval_score().alias("interval_score"),
        )
        .sort("delivered_on", "feature_id")
    )


def team_calibration(ledger: pl.LazyFrame) -> pl.LazyFrame:
    """Per team: judged predictions, hit rate, mean actual/predicted, calibration, interval score and discount."""
    return (
        _scores(ledger, ["team_id"])
        .with_columns(((pl.col("_credit") + 0.5) / (pl.col("judged") + 1)).alias("discount"))
        .drop("_credit")
        .sort("team_id", nulls_last=True)
    )


def calibration_trend(ledger: pl.LazyFrame) -> pl.LazyFrame:
    """Per team and delivery quarter: judged predictions, hit rate, mean actual/predicted, calibration."""
    return _scores(ledger, ["team_id", "quarter"]).drop("_credit").sort("team_id", "quarter", nulls_last=True)


def backlog_ranking(
    features: pl.LazyFrame,
    hypotheses: pl.LazyFrame,
    metrics: pl.LazyFrame,
    metric_observations: pl.LazyFrame,
    calibration: pl.LazyFrame,
    as_of: date,
    costs: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """Undelivered features ranked by discounted expected value per cost.

    The predicted change becomes an improvement in metric units (a relative change times the
    metric's current level; negated for lower-is-better metrics), multiplied by the team's
    ``discount`` from ``team_calibration``. Where the metric has a ``value_per_unit`` that is
    money and the ranking is value per cost; features whose metric has no money value follow,
    ranked by relative improvement per cost; features without a hypothesis or a cost come last.
    Cost is ``costs.cost`` (columns feature_id, cost) where given, else ``features.estimate_cost``.
    """
    provided = (
        costs.select("feature_id", pl.col("cost").alias("_provided"))
        if costs is not None
        else features.select("feature_id", pl.lit(None, pl.Float64).alias("_provided"))
    )
    sign = pl.when(pl.col("direction") == "lower").then(-1.0).otherwise(1.0)
    change = (
        pl.when(pl.col("change_kind") == "relative")
        .then(pl.col("predicted_change") * pl.col("current"))
        .otherwise(pl.col("predicted_change"))
    )
    level = pl.col("current").abs()
    cost = pl.coalesce("_provided", "estimate_cost")
    positive_cost = pl.when(cost > 0).then(cost)
    ranked = (
        features.filter(pl.col("status").is_in(("planned", "in_progress")))
        .select("feature_id", "name", "team_id", "status", "estimate_cost")
        .join(
            hypotheses.select("feature_id", "metric_id", "predicted_change", "change_kind"),
            on="feature_id",
            how="left",
        )
        .join(metrics.select("metric_id", "direction", "value_per_unit"), on="metric_id", how="left")
        .join(current_levels(metric_observations, as_of), on="metric_id", how="left")
        .join(calibration.select("team_id", "discount"), on="team_id", how="left")
        .join(provided, on="feature_id", how="left")
        .with_columns(
            pl.col("discount").fill_null(PRIOR_DISCOUNT),
            cost.alias("cost"),
            pl.when(pl.col("_provided").is_not_null())
            .then(pl.lit("provided"))
            .when(pl.col("estimate_cost").is_not_null())
            .then(pl.lit("estimate"))
            .alias("cost_source"),
        )
        .with_columns((change * sign * pl.col("discount")).alias("expected_improvement"))
        .with_columns(
            (pl.col("expected_improvement") * pl.col("value_per_unit")).alias("expected_value"),
            pl.when(level > 0).then(pl.col("expected_improvement") / level).alias("expected_improvement_rel"),
        )
        .with_columns(
            (pl.col("expected_value") / positive_cost).alias("value_per_cost"),
            (pl.col("expected_improvement_rel") / positive_cost).alias("improvement_rel_per_cost"),
            pl.when(pl.col("expected_value").is_not_null() & positive_cost.is_not_null())
            .then(pl.lit("money"))
            .when(pl.col("expected_improvement_rel").is_not_null() & positive_cost.is_not_null())
            .then(pl.lit("relative change"))
            .otherwise(pl.lit("unranked"))
            .alias("basis"),
        )
        .with_columns(
            pl.col("basis").replace_strict({"money": 0, "relative change": 1, "unranked": 2}).alias("_tier"),
            pl.coalesce("value_per_cost", "improvement_rel_per_cost").alias("_score"),
        )
        .sort(["_tier", "_score", "feature_id"], descending=[False, True, False], nulls_last=True)
    )
    return ranked.with_row_index("rank", offset=1).select(
        pl.col("rank").cast(pl.Int64),
        "feature_id",
        "name",
        "team_id",
        "status",
        "metric_id",
        "predicted_change",
        "change_kind",
        "discount",
        "expected_improvement",
        "expected_improvement_rel",
        "expected_value",
        "cost",
        "cost_source",
        "value_per_cost",
        "improvement_rel_per_cost",
        "basis",
    )


def _scores(ledger: pl.LazyFrame, by: list[str]) -> pl.LazyFrame:
    return (
        ledger.filter(~pl.col("retrospective"))
        .group_by(by)
        .agg(
            pl.len().cast(pl.Int64).alias("judged"),
            pl.col("hit").sum().cast(pl.Int64).alias("confirmed"),
            pl.col("contained").sum().cast(pl.Int64).alias("contained"),
            pl.col("actual_to_predicted").mean().alias("mean_actual_to_predicted"),
            pl.col("credit").sum().alias("_credit"),
            pl.col("credit").mean().alias("calibration"),
            pl.col("interval_score").mean().alias("mean_interval_score"),
        )
        .with_columns((pl.col("confirmed") / pl.col("judged")).alias("hit_rate"))
    )


def _credit() -> pl.Expr:
    """Realised share of the prediction: 0 when inconclusive, measured / predicted clipped to [0, 1] otherwise."""
    no_change = pl.col("predicted_change") == 0
    realised = (pl.col("actual") / pl.col("predicted_change")).clip(0.0, 1.0)
    return (
        pl.when(pl.col("verdict") == "inconclusive")
        .then(0.0)
        .when(no_change)
        .then(pl.when(pl.col("verdict") == "confirmed").then(1.0).otherwise(0.0))
        .otherwise(realised)
    )


def _interval_score() -> pl.Expr:
    """The 95% interval score of the measurement at the prediction, per unit of predicted change."""
    predicted, low, high = pl.col("predicted_change"), pl.col("actual_low"), pl.col("actual_high")
    score = (
        (high - low)
        + _INTERVAL_PENALTY * (low - predicted).clip(lower_bound=0.0)
        + _INTERVAL_PENALTY * (predicted - high).clip(lower_bound=0.0)
    )
    return pl.when(predicted != 0).then(score / predicted.abs())

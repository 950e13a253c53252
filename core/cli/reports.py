"""``python -m core report NAME``: every measure as CSV, JSON or a text table, through the access layer.

A report is a function ``(ReportContext, args) -> DataFrame``; ``REPORTS`` lists them. The
context carries the snapshot frames and the viewer (``--as USER``, else the local admin), and
each report restricts what it returns with ``core.access`` exactly as its page does.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl

from core import access, costs, measures, overview, users
from core.access import (
    Viewer,
    dora_frames,
    restrict_dora,
    restrict_flags,
    restrict_throughput,
)
from core.cli import quarterly
from core.cli.export import neutralise_formulas
from core.costs import CostSettings
from core.delivery import dora, throughput
from core.delivery.dora import DoraSettings
from core.flags.settings import FlagSettings
from core.store import settings
from core.store.database import Store


@dataclass(frozen=True)
class ReportContext:
    """What a report works with: the store, its snapshot frames and who asked."""

    store: Store
    frames: dict[str, pl.LazyFrame]
    viewer: Viewer


@dataclass(frozen=True)
class Report:
    """One report command: its name, help line, extra arguments and builder."""

    name: str
    help: str
    build: Callable[[ReportContext, argparse.Namespace], pl.DataFrame]
    arguments: Callable[[argparse.ArgumentParser], None] | None = None
    formats: tuple[str, ...] = ("table", "csv", "json")
    document: Callable[[ReportContext, argparse.Namespace], str] | None = None
    """Writes the whole report in ``args.format`` (a report that is a document, not one frame)."""


REPORTS: list[Report] = []
"""Every report; measure modules' report builders are listed in ``_register``."""


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``report NAME`` under the CLI's subcommands."""
    _register()
    report = sub.add_parser("report", help="print a measure as csv, json or a table")
    names = report.add_subparsers(title="reports", required=True)
    for spec in REPORTS:
        cmd = names.add_parser(spec.name, help=spec.help.replace("%", "%%"), description=spec.help)
        cmd.add_argument("--format", choices=spec.formats, default=spec.formats[0])
        cmd.add_argument("--as", dest="as_user", default=None, help="run as this user (default: local admin)")
        if spec.arguments:
            spec.arguments(cmd)
        cmd.set_defaults(run=_runner(spec))


def viewer_for(store: Store, username: str | None) -> Viewer:
    """The viewer a CLI report runs as: ``--as USER``, else the local admin."""
    if username is None:
        return Viewer.local_admin()
    user = users.get_user(store, username)
    if user is None or user.disabled:
        raise users.UserError(f"No active user `{username}`.")
    return Viewer(user.username, user.name, user.role, user.team_id)


def render(frame: pl.DataFrame, fmt: str) -> str:
    """A report frame as text in ``fmt``; CSV cells that could run as formulas are neutralised."""
    if fmt == "csv":
        return neutralise_formulas(frame).write_csv()
    if fmt == "json":
        return json.dumps(frame.to_dicts(), indent=2, default=str)
    with pl.Config(tbl_rows=200, tbl_cols=30, tbl_width_chars=200, fmt_str_lengths=60):
        return str(frame)


def _runner(spec: Report) -> Callable[[Store, argparse.Namespace], int]:
    def run(store: Store, args: argparse.Namespace) -> int:
        context = ReportContext(store, store.snapshot().frames(), viewer_for(store, args.as_user))
        try:
            if spec.document is not None:
                text = spec.document(context, args)
            else:
                text = render(spec.build(context, args), args.format)
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        if getattr(args, "output", None):
            Path(args.output).write_text(text, encoding="utf-8")
            print(f"Wrote {args.output} ({len(text.encode()):,} bytes).")
        else:
            print(text, end="" if text.endswith("\n") else "\n")
        return 0

    return run


def _register() -> None:
    if REPORTS:
        return
    REPORTS.extend(
        [
            Report(
                "throughput",
                "features delivered and confirmed, value, cost and PRs merged per period",
                _throughput_report,
                _throughput_arguments,
            ),
            Report("dora", "the five DORA measures with their buckets and definitions", _dora_report, _dora_arguments),
            Report(
                "verdicts",
                "every judged feature: outcome metric, predicted and measured change with its 95% interval, verdict",
                _verdicts_report,
            ),
            Report(
                "flags",
                "every vanity flag: team or metric, severity, window, evidence, explanation, acknowledgement",
                _flags_report,
                _flags_arguments,
            ),
            Report(
                "quarterly",
                "the quarterly review: features delivered, verdicts, value against cost, unlinked spend",
                lambda context, args: quarterly_answer_for(context, args.period, args.team).figures(),
                _quarterly_arguments,
                formats=quarterly.FORMATS,
                document=_quarterly_document,
            ),
            Report(
                "cost-per-feature",
                "each feature's attributed cost in a quarter, by source, delivered or work in progress",
                _cost_per_feature_report,
                _cost_per_feature_arguments,
            ),
            Report(
                "cost-lines",
                "the cost lines behind one feature's total: event, source, amount, rule, share and its link",
                _cost_lines_report,
                _cost_lines_arguments,
            ),
        ]
    )


def _known_team(frames: dict[str, pl.LazyFrame], team_id: str | None) -> str | None:
    if team_id is None:
        return None
    known = frames["teams"].select("team_id").collect()["team_id"].to_list()
    if team_id not in known:
        raise ValueError(f"No team `{team_id}`; the teams are {', '.join(sorted(known))}.")
    return team_id


def _period_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--team", default=None, help="team id (default: the whole organisation)")
    parser.add_argument("--from", dest="start", type=_day, default=None, help="first day, YYYY-MM-DD")
    parser.add_argument("--to", dest="end", type=_day, default=None, help="last day, YYYY-MM-DD")


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"`{text}` is not a date (YYYY-MM-DD)") from None


def _throughput_arguments(parser: argparse.ArgumentParser) -> None:
    _period_arguments(parser)
    parser.add_argument("--period", choices=("week", "month", "quarter"), default="week")


def _dora_arguments(parser: argparse.ArgumentParser) -> None:
    _period_arguments(parser)
    parser.add_argument("--statistic", choices=("median", "mean"), default=None, help="default: the stored setting")
    parser.add_argument("--lead-time-start", choices=("first_commit", "pr_opened"), default=None)
    parser.add_argument("--incident-link", choices=("devlake", "explicit"), default=None)
    parser.add_argument("--recovery-start", choices=("deployment_finished", "incident_opened"), default=None)


def _throughput_report(context: ReportContext, args: argparse.Namespace) -> pl.DataFrame:
    frames = context.frames
    team_id = _known_team(frames, args.team)
    judged = measures.judged_hypotheses(frames, measures.as_of(frames))
    cost_settings = settings.load(context.store, CostSettings)
    lines = measures.cost_rollup(frames, cost_settings)
    daily = measures.daily_throughput(frames, judged.lazy(), lines)
    series = throughput.throughput_series(daily, args.period, team_id, args.start, args.end)
    shown = restrict_throughput(context.viewer, series, team_id).collect()
    return shown.with_columns(  # money to the cent, in the currency named beside it
        pl.col("realised_value", "cost").round(2),
        pl.col("value_to_cost").round(4),
        pl.lit(cost_settings.currency).alias("currency"),
    )


def _dora_report(context: ReportContext, args: argparse.Namespace) -> pl.DataFrame:
    frames = context.frames
    team_id = _known_team(frames, args.team)
    if not access.may_see(context.viewer, "output", team_id):
        raise ValueError("DORA measures are output-level figures, which this user's role does not see.")
    stored = settings.load(context.store, DoraSettings)
    chosen = dataclasses.replace(
        stored,
        statistic=args.statistic or stored.statistic,
        lead_time_start=args.lead_time_start or stored.lead_time_start,
        incident_link=args.incident_link or stored.incident_link,
        recovery_start=args.recovery_start or stored.recovery_start,
    )
    deployments, pull_requests, incidents = dora_frames(frames, team_id)
    rows = dora.dora_measures(deployments, pull_requests, incidents, chosen, args.start, args.end)
    return restrict_dora(context.viewer, rows, team_id).collect(engine=dora.ENGINE)


def _verdicts_report(context: ReportContext, _args: argparse.Namespace) -> pl.DataFrame:
    """Every delivered feature's verdict (as the Impact page): predicted vs measured change, interval, method.

    Changes are in the prediction's own kind: a fraction for relative (0.05 = +5%), metric units for absolute.
    """
    frames, viewer = context.frames, context.viewer
    judged = measures.judged_hypotheses(frames, measures.as_of(frames)).lazy()
    names = frames["features"].select("feature_id", pl.col("name").alias("feature_name"), "team_id")
    metrics = access.restrict_metrics(viewer, frames["metrics"]).select(
        "metric_id", pl.col("name").alias("metric_name"), "unit"
    )

    def in_kind(relative: str, absolute: str) -> pl.Expr:
        return pl.when(pl.col("change_kind") == "relative").then(pl.col(relative)).otherwise(pl.col(absolute))

    return (
        access.restrict(viewer, judged.join(names, on="feature_id", how="left"), level="outcome")
        .join(metrics, on="metric_id", how="inner")
        .select(
            "feature_id",
            "feature_name",
            "team_id",
            "metric_id",
            "metric_name",
            "unit",
            "delivered_on",
            "change_kind",
            "predicted_change",
            in_kind("estimate_rel", "estimate_abs").alias("measured_change"),
            in_kind("ci_low_rel", "ci_low_abs").alias("ci_low_95"),
            in_kind("ci_high_rel", "ci_high_abs").alias("ci_high_95"),
            "method",
            "verdict",
            "judge_on",
            pl.col("confounded_by").list.join(" ").alias("confounded_by"),
        )
        .sort("feature_id")
        .collect()
    )


def _flags_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--hide-acknowledged", action="store_true", help="leave out flags already acknowledged")


def _flags_report(context: ReportContext, args: argparse.Namespace) -> pl.DataFrame:
    """Every vanity flag the viewer may see (as the Vanity flags page), newest and most severe first."""
    from core.flags.acknowledgements import apply_acknowledgements, read_acks
    from core.flags.detectors import DETECTORS

    frames = context.frames
    as_of = measures.as_of(frames)
    thresholds = settings.load(context.store, FlagSettings)
    judged = measures.judged_hypotheses(frames, as_of).lazy()
    cost_settings = settings.load(context.store, CostSettings)
    lines = measures.cost_rollup(frames, cost_settings)
    flags = measures.vanity_flags(frames, judged, lines, thresholds, as_of)
    shown = apply_acknowledgements(restrict_flags(context.viewer, flags, frames, thresholds), read_acks(context.store))
    if args.hide_acknowledged:
        shown = shown.filter(~pl.col("acknowledged"))
    return shown.select(
        "flag_id",
        pl.col("detector").replace_strict(DETECTORS, default=pl.col("detector")).alias("flag"),
        "severity",
        "team_id",
        "metric_id",
        "window_start",
        "window_end",
        "detected_at",
        "explanation",
        "suggestion",
        "evidence",
        pl.lit(cost_settings.currency).alias("currency"),  # of the money amounts in the evidence
        "acknowledged",
        "acknowledged_by",
        "acknowledged_at",
        "comment",
    )


def _cost_per_feature_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--period", required=True, help="a quarter such as 2026Q3, or a year such as 2026")
    parser.add_argument("--team", default=None, help="team id (default: every team)")


def _cost_per_feature_report(context: ReportContext, args: argparse.Namespace) -> pl.DataFrame:
    """Each feature delivered in the period (and each in progress) with its cost by source, as the Cost page."""
    from core import costs

    frames = context.frames
    team_id = _known_team(frames, args.team)
    period = costs.parse_period(args.period)
    chosen = settings.load(context.store, CostSettings)
    rollup = costs.attribute_cost_rollup(
        frames["cost_events"],
        frames["pull_requests"],
        frames["work_items"],
        frames["features"],
        frames["people"],
        chosen,
    )
    features = frames["features"]
    if team_id is not None:
        rollup, features = rollup.filter(pl.col("team_id") == team_id), features.filter(pl.col("team_id") == team_id)
    per_feature = costs.cost_per_feature(rollup, features, period).select(
        pl.lit(period.label).alias("period"),
        pl.exclude("lines", "events", "delivered"),
        pl.lit(chosen.currency).alias("currency"),
    )
    return access.restrict(context.viewer, per_feature, level="outcome").collect()


def _cost_lines_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--feature", required=True, help="feature id")


def _cost_lines_report(context: ReportContext, args: argparse.Namespace) -> pl.DataFrame:
    """The cost lines behind one feature's total, as the Cost page's drill-down lists them."""
    frames = context.frames
    feature = frames["features"].filter(pl.col("feature_id") == args.feature).select("team_id").collect()
    if feature.height == 0:
        raise ValueError(f"no feature `{args.feature}`")
    if not access.may_see_detail(context.viewer, feature["team_id"][0]):
        raise ValueError(
            f"{context.viewer.username} may not see the cost lines of feature `{args.feature}`: "
            "per-line detail is shown to admins and the feature's own team lead"
        )
    chosen = settings.load(context.store, CostSettings)
    lines = measures.feature_cost_lines(frames, measures.cost_links(frames), args.feature, chosen)
    visible = access.restrict(context.viewer, lines.lazy(), level="outcome", detail=True)
    return visible.select(
        "event_id",
        "occurred_at",
        "source",
        "amount",
        pl.lit(chosen.currency).alias("currency"),
        "rule",
        "share",
        pl.col("link").alias("explanation"),
    ).collect()


def _quarterly_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--period", default=None, help="a quarter such as 2026Q3 (default: the last complete one)")
    parser.add_argument("--team", default=None, help="team id (default: the whole organisation)")
    parser.add_argument("--output", default=None, help="write the report to this file instead of printing it")


def quarterly_answer_for(context: ReportContext, period: str | None, team: str | None) -> overview.QuarterlyAnswer:
    """The quarterly review the quarterly page shows ``context.viewer`` for ``period`` (default: last complete)."""
    frames = context.frames
    team_id = _known_team(frames, team)
    as_of = measures.as_of(frames)
    chosen = overview.last_complete_quarter(as_of) if period is None else costs.parse_period(period)
    if "Q" not in chosen.label:
        raise ValueError(f"`{period}` is a year; the quarterly review takes a quarter such as {chosen.label}Q3")
    cost_settings = settings.load(context.store, CostSettings)
    answer = overview.quarterly_answer(
        frames,
        measures.judged_hypotheses(frames, as_of).lazy(),
        measures.cost_rollup(frames, cost_settings),
        chosen,
        cost_settings.currency,
        team_id,
    )
    return access.restrict_quarterly(context.viewer, answer)


def _quarterly_document(context: ReportContext, args: argparse.Namespace) -> str:
    return quarterly.quarterly_report(quarterly_answer_for(context, args.period, args.team), args.format)

"""``python -m core digest``: the recipient's role-level headline of last week, as an HTML e-mail.

The figures are the Value throughput page's weekly row and Home's outcome tiles, passed through the
same access layer, so a recipient reads exactly what their role sees in the app. The SMTP server is
configured in the workspace's ``secrets.toml``::

    [smtp]
    host = "smtp.example.com"
    port = 587
    username = "throughline@example.com"
    password = "..."
    sender = "Throughline <throughline@example.com>"
    starttls = true
"""

from __future__ import annotations

import argparse
import smtplib
import sys
from dataclasses import dataclass
from datetime import date, timedelta
from email.message import EmailMessage
from pathlib import Path

import polars as pl
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from core import access, formatting, measures, users
from core.cli.reports import ReportContext, viewer_for
from core.costs import CostSettings
from core.delivery import throughput
from core.outcomes.progress import outcome_progress
from core.store import settings
from core.store.database import Store
from core.store.workspace import read_secrets

_TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html", "html.j2"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)

_FIGURES: tuple[tuple[str, str, str], ...] = (
    ("features_delivered", "Features delivered", "count"),
    ("features_confirmed", "Features confirmed", "count"),
    ("features_refuted", "Features refuted", "count"),
    ("realised_value", "Realised value", "money"),
    ("cost", "Cost of the features delivered", "money"),
    ("prs_merged", "PRs merged", "count"),
)
"""The weekly figures a digest may carry, in order; each is shown only to a role that sees its level."""


@dataclass(frozen=True)
class Digest:
    """One recipient's e-mail: its subject, HTML body and plain-text body."""

    subject: str
    html: str
    text: str


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``digest`` under the CLI's subcommands."""
    cmd = sub.add_parser("digest", help="e-mail a user's weekly headline (SMTP settings in secrets.toml)")
    cmd.add_argument("--period", choices=("last-week",), default="last-week", help="the last complete week")
    cmd.add_argument("--as", dest="as_user", default=None, help="the recipient's user (default: local admin)")
    cmd.add_argument("--to", default=None, help="recipient address (default: the user's e-mail)")
    cmd.add_argument(
        "--dry-run", nargs="?", const="", default=None, metavar="FILE", help="write the e-mail's HTML here"
    )
    cmd.add_argument("--app-url", default="http://localhost:8501", help="where the app is served, for the link")
    cmd.set_defaults(run=_run)


def last_week(as_of: date) -> tuple[date, date]:
    """Monday and Sunday of the last complete week on or before ``as_of``."""
    monday = as_of - timedelta(days=as_of.weekday())
    if as_of.weekday() == 6:
        return monday, as_of
    return monday - timedelta(days=7), monday - timedelta(days=1)


def weekly_digest(context: ReportContext, week: tuple[date, date], app_url: str) -> Digest:
    """The headline of ``week`` at the level ``context.viewer``'s role sees, against the week before."""
    frames, viewer = context.frames, context.viewer
    team_id = viewer.team_id if viewer.role == "team_lead" else None
    start, end = week
    chosen = settings.load(context.store, CostSettings)
    judged = measures.judged_hypotheses(frames, measures.as_of(frames)).lazy()
    daily = measures.daily_throughput(frames, judged, measures.cost_rollup(frames, chosen))
    series = throughput.throughput_series(daily, "week", team_id, start - timedelta(days=7), end)
    rows = access.restrict_throughput(viewer, series, team_id).collect()
    now = rows.filter(pl.col("period_start") == start)
    before = rows.filter(pl.col("period_start") == start - timedelta(days=7))
    figures = []
    for column, label, kind in _FIGURES:
        if column not in rows.columns:
            continue
        value = now[column][0] if now.height else 0
        previous = before[column][0] if before.height else None
        say = (lambda v: formatting.money(v or 0, chosen.currency)) if kind == "money" else (lambda v: f"{v or 0:,}")
        figures.append({"label": label, "value": say(value), "previous": None if previous is None else say(previous)})
    progress = access.restrict(
        viewer,
        outcome_progress(frames["metrics"], frames["metric_observations"], end),
        level="outcome",
        team_column=None,
    ).collect()
    outcomes = [
        {
            "name": m["name"],
            "current": formatting.number(m["current"], "no data") + (f" {m['unit']}" if m["unit"] else ""),
            "status": m["status"],
        }
        for m in progress.iter_rows(named=True)
    ]
    scope = f"team {team_id}" if team_id else "the organisation"
    subject = f"Throughline · week of {start:%-d %b %Y} · {scope}"
    values = {
        "subject": subject,
        "name": viewer.name,
        "scope": scope,
        "start": f"{start:%a %-d %b}",
        "end": f"{end:%a %-d %b %Y}",
        "figures": figures,
        "outcomes": outcomes,
        "app_url": app_url,
    }
    html = _TEMPLATES.get_template("digest.html.j2").render(**values)
    text = "\n".join(
        [
            subject,
            "",
            *[
                f"{f['label']}: {f['value']}" + (f" (week before {f['previous']})" if f["previous"] else "")
                for f in figures
            ],
            "",
            *[f"{o['name']}: {o['current']} · {o['status']}" for o in outcomes],
            "",
            app_url,
        ]
    )
    return Digest(subject=subject, html=html, text=text)


def send_digest(digest: Digest, recipient: str, smtp: dict[str, object]) -> None:
    """Send ``digest`` to ``recipient`` through the SMTP server ``smtp`` (``[smtp]`` of secrets.toml)."""
    host = smtp.get("host")
    if not host:
        raise ValueError("No SMTP server: set host (and port, username, password, sender) under [smtp] in secrets.toml")
    message = EmailMessage()
    message["Subject"] = digest.subject
    message["From"] = str(smtp.get("sender") or smtp.get("username") or "throughline@localhost")
    message["To"] = recipient
    message.set_content(digest.text)
    message.add_alternative(digest.html, subtype="html")
    with smtplib.SMTP(str(host), int(smtp.get("port") or 25), timeout=30) as server:  # type: ignore[call-overload]
        if smtp.get("starttls"):
            server.starttls()
        if smtp.get("username"):
            server.login(str(smtp["username"]), str(smtp.get("password") or ""))
        server.send_message(message)


def _run(store: Store, args: argparse.Namespace) -> int:
    viewer = viewer_for(store, args.as_user)
    recipient = args.to
    if recipient is None and args.as_user:
        user = users.get_user(store, args.as_user)
        recipient = getattr(user, "email", None)
    if not recipient and args.dry_run is None:
        print("error: no recipient: give --to ADDRESS (the user has no e-mail address)", file=sys.stderr)
        return 1
    context = ReportContext(store, store.snapshot().frames(), viewer)
    week = last_week(measures.as_of(context.frames))
    digest = weekly_digest(context, week, args.app_url)
    if args.dry_run is not None:
        path = Path(args.dry_run or f"digest-{week[0]:%Y-%m-%d}-{viewer.username}.html")
        path.write_text(digest.html, encoding="utf-8")
        print(f"Wrote {path} ({digest.subject}); nothing was sent.")
        return 0
    smtp = read_secrets(store.workspace.secrets_path).get("smtp") or {}
    try:
        send_digest(digest, recipient, smtp if isinstance(smtp, dict) else {})
    except (OSError, smtplib.SMTPException, ValueError) as error:
        print(f"error: the digest was not sent: {error}", file=sys.stderr)
        return 1
    print(f"Sent {digest.subject!r} to {recipient}.")
    return 0

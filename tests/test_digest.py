"""The weekly digest: the recipient's role-level headline, sent through a real SMTP server the test starts."""

from __future__ import annotations

import socket
from datetime import date
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from core.cli import commands, digest
from core.store.workspace import SECRETS_FILE, write_secret


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Inbox:
    """An aiosmtpd handler that keeps every message it receives."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))  # type: ignore[attr-defined]
        return "250 OK"


@pytest.fixture
def smtp_server(demo_workspace: dict, monkeypatch: pytest.MonkeyPatch) -> _Inbox:
    from aiosmtpd.controller import Controller

    inbox, port = _Inbox(), _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    secrets = Path(demo_workspace["home"]) / SECRETS_FILE
    before = secrets.read_bytes() if secrets.exists() else None
    write_secret(secrets, "host", "127.0.0.1", section="smtp")
    write_secret(secrets, "port", str(port), section="smtp")
    write_secret(secrets, "sender", "Throughline <digest@example.com>", section="smtp")
    monkeypatch.setenv("THROUGHLINE_HOME", str(demo_workspace["home"]))
    monkeypatch.delenv("THROUGHLINE_DATABASE_URL", raising=False)
    yield inbox
    controller.stop()
    if before is None:
        secrets.unlink()
    else:
        secrets.write_bytes(before)


def test_last_week_is_the_last_complete_monday_to_sunday() -> None:
    assert digest.last_week(date(2026, 11, 15)) == (date(2026, 11, 9), date(2026, 11, 15))  # a Sunday: that week
    assert digest.last_week(date(2026, 11, 18)) == (date(2026, 11, 9), date(2026, 11, 15))  # a Wednesday


def test_an_executive_gets_an_html_email_with_no_activity_figure(smtp_server: _Inbox) -> None:
    assert commands.main(["digest", "--period", "last-week", "--as", "exec", "--to", "erin@example.com"]) == 0
    [(sender, recipients, raw)] = smtp_server.messages
    assert sender == "digest@example.com" and recipients == ["erin@example.com"]
    mail = message_from_bytes(raw, policy=policy.default)
    assert mail["Subject"].startswith("Throughline · week of ") and mail["Subject"].endswith("the organisation")
    html = mail.get_body(preferencelist=("html",)).get_content()
    assert "Features confirmed" in html and "Realised value" in html and " USD" in html
    assert "PRs merged" not in html and "Features delivered" not in html  # activity and output: not an executive's


def test_a_team_lead_gets_their_team_with_its_activity(smtp_server: _Inbox) -> None:
    assert commands.main(["digest", "--as", "teamlead", "--to", "theo@example.com"]) == 0
    [(_, _, raw)] = smtp_server.messages
    mail = message_from_bytes(raw, policy=policy.default)
    assert "team PAY" in mail["Subject"]
    assert "PRs merged" in mail.get_body(preferencelist=("plain",)).get_content()


def test_a_dry_run_writes_the_email_and_sends_nothing(smtp_server: _Inbox, tmp_path: Path) -> None:
    target = tmp_path / "digest.html"
    assert commands.main(["digest", "--as", "delivery", "--to", "dana@example.com", "--dry-run", str(target)]) == 0
    assert smtp_server.messages == []
    html = target.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and "Features delivered" in html and "PRs merged" not in html


def test_an_unreachable_server_is_a_message_not_a_traceback(
    demo_workspace: dict, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    secrets = Path(demo_workspace["home"]) / SECRETS_FILE
    before = secrets.read_bytes() if secrets.exists() else None
    write_secret(secrets, "host", "127.0.0.1", section="smtp")
    write_secret(secrets, "port", str(_free_port()), section="smtp")
    monkeypatch.setenv("THROUGHLINE_HOME", str(demo_workspace["home"]))
    try:
        assert commands.main(["digest", "--as", "exec", "--to", "erin@example.com"]) == 1
    finally:
        if before is None:
            secrets.unlink()
        else:
            secrets.write_bytes(before)
    assert "the digest was not sent" in capsys.readouterr().err

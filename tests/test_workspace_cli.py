"""`python -m core init` and `status` as a new user meets them: the port given is the port printed, and
asking for the status of a folder with no workspace never creates one."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.cli import commands


def test_status_of_a_folder_with_no_workspace_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "nowhere"
    monkeypatch.setenv("THROUGHLINE_HOME", str(home))
    monkeypatch.delenv("THROUGHLINE_DATABASE_URL", raising=False)
    assert commands.main(["status"]) == 1
    assert not home.exists()
    assert "No workspace at" in capsys.readouterr().err

    home.mkdir()  # an empty folder is not a workspace either, and stays empty
    assert commands.main(["status"]) == 1
    assert list(home.iterdir()) == []


def test_status_reads_an_existing_workspace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("THROUGHLINE_HOME", str(tmp_path))
    monkeypatch.delenv("THROUGHLINE_DATABASE_URL", raising=False)
    assert commands.main(["init", "--empty", "--port", "9123"]) == 0
    assert "http://localhost:9123" in capsys.readouterr().out
    assert commands.main(["status"]) == 0
    assert "(empty)" in capsys.readouterr().out


def test_the_demo_sign_in_message_names_the_port_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("THROUGHLINE_HOME", str(tmp_path))
    monkeypatch.delenv("THROUGHLINE_DATABASE_URL", raising=False)
    assert commands.main(["init", "--demo", "--scale", "0.05", "--port", "8765"]) == 0
    out = capsys.readouterr().out
    assert "Sign in at http://localhost:8765 " in out and "8501" not in out
    assert commands.main(["init", "--demo", "--if-missing", "--port", "8765"]) == 0

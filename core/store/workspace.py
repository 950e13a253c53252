"""Where a workspace lives: its folder, database URL and local secrets file.

``THROUGHLINE_HOME`` names the workspace folder (default ``./data``); the SQLite database,
the columnar snapshot, the secrets file and the logs live under it.
``THROUGHLINE_DATABASE_URL`` (or ``database_url`` in the secrets file) points the store at
another database such as PostgreSQL instead of the SQLite file.
"""

from __future__ import annotations

import os
import secrets
import tempfile
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import tomli_w

SECRETS_FILE = "secrets.toml"


@dataclass(frozen=True)
class Workspace:
    """The folder and database of one Throughline workspace."""

    home: Path
    database_url: str

    @property
    def secrets_path(self) -> Path:
        """The local secrets file (cookie key, database and connection passwords)."""
        return self.home / SECRETS_FILE

    @property
    def snapshot_dir(self) -> Path:
        """The folder of columnar snapshots the analytics read."""
        return self.home / "snapshot"

    @property
    def log_dir(self) -> Path:
        """The folder of the workspace's log files."""
        return self.home / "logs"

    @property
    def is_sqlite(self) -> bool:
        """True when the system of record is the embedded SQLite file."""
        return self.database_url.startswith("sqlite")


def workspace_from_env(env: Mapping[str, str] | None = None) -> Workspace:
    """The workspace named by the environment, its folders created if missing."""
    env = os.environ if env is None else env
    home = workspace_home(env)
    for folder in (home, home / "snapshot", home / "logs"):
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    if home.stat().st_mode & 0o077:
        home.chmod(0o700)  # the database, snapshot and secrets inside are the organisation's data
    stored = read_secrets(home / SECRETS_FILE)
    url = env.get("THROUGHLINE_DATABASE_URL") or stored.get("database_url") or ""
    if not url:
        url = f"sqlite:///{home / 'throughline.db'}"
    return Workspace(home=home, database_url=str(url))


def workspace_home(env: Mapping[str, str] | None = None) -> Path:
    """The workspace folder the environment names (``THROUGHLINE_HOME``, else ``./data``), created or not."""
    env = os.environ if env is None else env
    return Path(env.get("THROUGHLINE_HOME", "data")).expanduser().resolve()


def read_secrets(path: Path) -> dict[str, object]:
    """The secrets file as a dict; empty when it does not exist yet."""
    if not path.exists():
        return {}
    with path.open("rb") as handle:
        return tomllib.load(handle)


def write_secret(path: Path, key: str, value: str, section: str | None = None) -> None:
    """Set one secret in the secrets file, keeping the others; the file stays owner-only."""
    data = read_secrets(path)
    target: dict[str, object] = data
    if section:
        target = data.setdefault(section, {})  # type: ignore[assignment]
    target[key] = value
    _write_toml(path, data)


def cookie_key(workspace: Workspace) -> str:
    """The cookie signing key, generated on first use and kept in the secrets file."""
    stored = read_secrets(workspace.secrets_path).get("cookie_key")
    if isinstance(stored, str) and len(stored) >= 32:
        return stored
    key = secrets.token_urlsafe(48)
    write_secret(workspace.secrets_path, "cookie_key", key)
    return key


def _write_toml(path: Path, data: Mapping[str, object]) -> None:
    """Replace the secrets file with ``data`` only once a private copy of it reads back identical."""
    text = tomli_w.dumps(data)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        with open(temporary, "rb") as handle:
            if tomllib.load(handle) != data:
                raise ValueError(f"{path.name} was not changed: the new secrets did not read back as written")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    _sync_folder(path.parent)


def _sync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

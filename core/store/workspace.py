"""Where a workspace lives: its folder, database URL and local secrets file.

``THROUGHLINE_HOME`` names the workspace folder (default ``./data``); the SQLite database,
the columnar snapshot, the secrets file and the logs live under it.
``THROUGHLINE_DATABASE_URL`` (or ``database_url`` in the secrets file) points the store at
another database such as PostgreSQL instead of the SQLite file.
"""

from __future__ import annotations

import os
import secrets
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

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
    home = Path(env.get("THROUGHLINE_HOME", "data")).expanduser().resolve()
    for folder in (home, home / "snapshot", home / "logs"):
        folder.mkdir(parents=True, exist_ok=True)
    stored = read_secrets(home / SECRETS_FILE)
    url = env.get("THROUGHLINE_DATABASE_URL") or stored.get("database_url") or ""
    if not url:
        url = f"sqlite:///{home / 'throughline.db'}"
    return Workspace(home=home, database_url=str(url))


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
    lines: list[str] = []
    tables: list[tuple[str, Mapping[str, object]]] = []
    for key, value in data.items():
        if isinstance(value, Mapping):
            tables.append((key, value))
        else:
            lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
    for name, table in tables:
        lines.append(f"\n[{_toml_key(name)}]")
        for key, value in table.items():
            if isinstance(value, Mapping):
                lines.append(
                    f"{_toml_key(key)} = {{ "
                    + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items())
                    + " }"
                )
            else:
                lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    os.replace(tmp, path)
    os.chmod(path, 0o600)


def _toml_key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() else _toml_value(key)


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    text = str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{text}"'

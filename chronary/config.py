"""Settings kept as data: each option has a default, an env var, a parser and help text.

Precedence is flag > environment (`CHRONARY_*`) > default, and the defaults run with no setup.
The CLI builds its `serve` flags from the same table, so the two can never drift apart.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import platformdirs


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"not a boolean: {value!r}")


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("chronary", appauthor=False))


@dataclass(frozen=True)
class Settings:
    host: str = field(default="127.0.0.1", metadata={"help": "Address to listen on"})
    port: int = field(default=8765, metadata={"help": "Port to listen on"})
    data_dir: Path = field(default_factory=default_data_dir, metadata={"help": "Where chronary.db lives"})
    public_url: str | None = field(
        default=None, metadata={"help": "Base URL used in ical_url links (default: http://host:port)"}
    )
    feed_past_days: int = field(default=90, metadata={"help": "Days of past events in iCal feeds"})
    feed_rate_limit_per_minute: int = field(default=120, metadata={"help": "Feed requests per IP a minute"})
    allow_private_network_targets: bool = field(
        default=True,
        metadata={"help": "Allow webhooks/subscriptions to LAN addresses (10.x, 192.168.x, …)"},
    )
    workers: bool = field(default=True, metadata={"help": "Run background workers inside serve"})
    log_level: str = field(default="info", metadata={"help": "Log level"})

    @property
    def db_path(self) -> Path:
        return self.data_dir / "chronary.db"

    @property
    def key_path(self) -> Path:
        return self.data_dir / "secret.key"

    @property
    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in {"0.0.0.0", "::", ""} else self.host
        return f"http://{host}:{self.port}"

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)


_PARSERS: dict[str, Callable[[str], Any]] = {
    "int": int,
    "bool": _bool,
    "Path": lambda v: Path(v).expanduser(),
    "str": str,
    "str | None": lambda v: v or None,
}


def env_name(option: str) -> str:
    return "CHRONARY_" + option.upper()


def load_settings(overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Defaults, then `CHRONARY_*` variables, then explicit overrides (CLI flags) that are not None."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for f in fields(Settings):
        raw = environ.get(env_name(f.name))
        if raw is not None and raw != "":
            parser = _PARSERS[str(f.type)]
            try:
                values[f.name] = parser(raw)
            except ValueError as exc:
                raise SystemExit(f"{env_name(f.name)}: {exc}") from None
    for key, value in (overrides or {}).items():
        if value is not None:
            values[key] = Path(value).expanduser() if key == "data_dir" else value
    return Settings(**values)


def describe() -> list[tuple[str, str, Any, str]]:
    """(option, env var, default, help) rows for `--help` and the README."""
    rows = []
    for f in fields(Settings):
        default = f.default_factory() if callable(f.default_factory) else f.default  # type: ignore[misc]
        rows.append((f.name, env_name(f.name), default, f.metadata.get("help", "")))
    return rows

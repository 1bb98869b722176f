"""Settings kept as data: each option is defined once (default, env var, flag, help, parser).

Precedence is flag > environment (`CHRONARY_*`) > default, and the defaults run with no setup.
`chronary serve` builds its flags from `OPTIONS` and `chronary config` prints every value with
the place it came from, so the CLI, the environment and the README can never drift apart.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

import platformdirs

Source = Literal["flag", "environment", "default"]
SYNCHRONOUS_MODES = ("full", "normal")
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")


def parse_bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"not a boolean: {value!r}")


def _port(value: str) -> int:
    port = int(value)
    if not 1 <= port <= 65535:
        raise ValueError(f"port must be 1–65535 (got {port})")
    return port


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise ValueError(f"must be at least 1 (got {number})")
    return number


def _non_negative(value: str) -> int:
    number = int(value)
    if number < 0:
        raise ValueError(f"must be 0 or more (got {number})")
    return number


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        lowered = value.strip().lower()
        if lowered not in choices:
            raise ValueError(f"must be one of {', '.join(choices)} (got {value!r})")
        return lowered

    return parse


def _public_url(value: str) -> str | None:
    value = value.strip()
    if not value:
        return None
    if not value.startswith(("http://", "https://")):
        raise ValueError(f"must start with http:// or https:// (got {value!r})")
    return value


def _https_or_http_url(value: str) -> str:
    value = value.strip().rstrip("/")
    if not value.startswith(("http://", "https://")):
        raise ValueError(f"must start with https:// (or http://) (got {value!r})")
    return value


def _optional_text(value: str) -> str | None:
    return value.strip() or None


def _origins(value: str) -> tuple[str, ...]:
    """Comma-separated origins (scheme://host[:port]) a return_url may point at."""
    out = []
    for part in (p.strip().rstrip("/") for p in value.split(",")):
        if not part:
            continue
        if not part.startswith(("http://", "https://")) or part.count("/") != 2:
            raise ValueError(f"each origin is scheme://host[:port], without a path (got {part!r})")
        out.append(part.lower())
    return tuple(out)


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("chronary", appauthor=False))


@dataclass(frozen=True)
class Option:
    """One setting: its field name, parser/validator (str → value), help, and whether `serve` has a flag."""

    name: str
    parse: Callable[[str], Any]
    help: str
    flag: bool = True
    metavar: str | None = None
    secret: bool = False  # never printed by `chronary config`, never a command-line flag

    @property
    def env(self) -> str:
        return env_name(self.name)

    @property
    def flag_name(self) -> str:
        return "--" + self.name.replace("_", "-")


@dataclass(frozen=True)
class Settings:
    """The resolved configuration; defaults are here, everything else about an option in `OPTIONS`."""

    host: str = "127.0.0.1"
    port: int = 8765
    data_dir: Path = field(default_factory=default_data_dir)
    public_url: str | None = None
    feed_past_days: int = 90
    feed_rate_limit_per_minute: int = 120
    allow_private_network_targets: bool = True
    workers: bool = True
    log_level: str = "info"
    sqlite_synchronous: str = "full"
    oauth_return_origins: tuple[str, ...] = ()
    google_client_id: str | None = None
    google_client_secret: str | None = None
    google_auth_url: str = "https://accounts.google.com/o/oauth2/v2/auth"
    google_token_url: str = "https://oauth2.googleapis.com/token"
    google_revoke_url: str = "https://oauth2.googleapis.com/revoke"
    google_api_url: str = "https://www.googleapis.com/calendar/v3"
    google_requests_per_minute: int = 300
    microsoft_client_id: str | None = None
    microsoft_client_secret: str | None = None
    microsoft_authority: str = "https://login.microsoftonline.com/common"
    microsoft_graph_url: str = "https://graph.microsoft.com/v1.0"
    slack_api_url: str = "https://slack.com/api"
    discord_api_url: str = "https://discord.com/api/v10"
    telegram_api_url: str = "https://api.telegram.org"
    connect_proxy_requests_per_minute: int = 60
    connect_proxy_timeout_seconds: int = 30
    connect_proxy_max_bytes: int = 5 * 1024 * 1024
    moments_grace_minutes: int = 60
    execution_retention_days: int = 30
    execution_payload_max_bytes: int = 64 * 1024
    flow_concurrency: int = 4
    max_tables: int = 100
    max_rows_per_table: int = 1_000_000
    record_payload_max_bytes: int = 256 * 1024
    record_retention_days: int = 90

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


OPTIONS: tuple[Option, ...] = (
    Option("host", str, "Address to listen on (0.0.0.0 for the LAN)"),
    Option("port", _port, "Port to listen on"),
    Option("data_dir", lambda v: Path(v).expanduser(), "Directory holding chronary.db and secret.key", metavar="DIR"),
    Option("public_url", _public_url, "Base URL used in ical_url links (default: http://host:port)", metavar="URL"),
    Option("feed_past_days", _non_negative, "Days of past events in iCal feeds"),
    Option("feed_rate_limit_per_minute", _positive, "Feed requests per client address a minute"),
    Option(
        "allow_private_network_targets",
        parse_bool,
        "Allow webhooks/subscriptions to LAN addresses (10.x, 192.168.x, …)",
        metavar="BOOL",
    ),
    Option("workers", parse_bool, "Run background workers inside serve", metavar="BOOL"),
    Option("log_level", _choice(*LOG_LEVELS), "Log level"),
    Option(
        "sqlite_synchronous",
        _choice(*SYNCHRONOUS_MODES),
        "SQLite durability: full (an acknowledged write survives power loss) or normal (faster; "
        "the last commits may be lost on power loss or an OS crash, never corrupted)",
    ),
    Option(
        "oauth_return_origins",
        _origins,
        "Origins besides this server's own that an OAuth return_url may point at (comma-separated)",
        metavar="ORIGINS",
    ),
    Option("google_client_id", _optional_text, "Your Google OAuth client id (Google Cloud Console)", flag=False),
    Option("google_client_secret", _optional_text, "Its client secret", flag=False, secret=True),
    Option("google_auth_url", _https_or_http_url, "Google's authorization endpoint", flag=False),
    Option("google_token_url", _https_or_http_url, "Google's token endpoint", flag=False),
    Option("google_revoke_url", _https_or_http_url, "Google's token revocation endpoint", flag=False),
    Option("google_api_url", _https_or_http_url, "Google Calendar API v3 base URL", flag=False),
    Option(
        "google_requests_per_minute",
        _positive,
        "Most Google API requests one connection makes a minute (Google allows 600 per user)",
        flag=False,
    ),
    Option("microsoft_client_id", _optional_text, "Your Azure app registration's client id", flag=False),
    Option("microsoft_client_secret", _optional_text, "Its client secret", flag=False, secret=True),
    Option(
        "microsoft_authority",
        _https_or_http_url,
        "Microsoft identity authority (…/common, …/consumers or …/<tenant id>)",
        flag=False,
    ),
    Option("microsoft_graph_url", _https_or_http_url, "Microsoft Graph base URL", flag=False),
    Option("slack_api_url", _https_or_http_url, "Slack Web API base URL", flag=False),
    Option("discord_api_url", _https_or_http_url, "Discord REST API base URL", flag=False),
    Option("telegram_api_url", _https_or_http_url, "Telegram Bot API base URL", flag=False),
    Option(
        "connect_proxy_requests_per_minute",
        _positive,
        "Connect proxy and action calls one connection may make a minute (then 429 with Retry-After)",
        flag=False,
    ),
    Option("connect_proxy_timeout_seconds", _positive, "Time limit of one proxied call or action", flag=False),
    Option("connect_proxy_max_bytes", _positive, "Largest request or response body the proxy passes on", flag=False),
    Option(
        "moments_grace_minutes",
        _non_negative,
        "After downtime, event start/end/reminder moments missed by at most this much still fire; older ones are skipped",
    ),
    Option("execution_retention_days", _positive, "Days flow executions (and their step logs) are kept"),
    Option(
        "execution_payload_max_bytes",
        _positive,
        "Largest step input or output an execution's log keeps (bigger ones: a preview)",
    ),
    Option("flow_concurrency", _positive, "Executions of one flow that run at the same time"),
    Option("max_tables", _positive, "Connect tables an org may have (then 429)"),
    Option("max_rows_per_table", _positive, "Rows one Connect table may hold (then 429)"),
    Option("record_payload_max_bytes", _positive, "Largest payload kept as a record (bigger ones: 413)"),
    Option("record_retention_days", _positive, "Days records (inbound payloads, imports) are kept"),
)
_BY_NAME = {option.name: option for option in OPTIONS}
assert set(_BY_NAME) == {f.name for f in fields(Settings)}, "every Settings field needs exactly one Option"


def env_name(option: str) -> str:
    return "CHRONARY_" + option.upper()


def option(name: str) -> Option:
    return _BY_NAME[name]


def resolve(
    overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> tuple[Settings, dict[str, Source]]:
    """Settings plus where each value came from. Bad values raise SystemExit naming the setting."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    sources: dict[str, Source] = {o.name: "default" for o in OPTIONS}
    for opt in OPTIONS:
        raw = environ.get(opt.env)
        if raw is not None and raw != "":
            values[opt.name] = _parse(opt, raw, opt.env)
            sources[opt.name] = "environment"
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        opt = _BY_NAME[key]
        values[key] = _parse(opt, value, opt.flag_name) if isinstance(value, str) else value
        sources[key] = "flag"
    return Settings(**values), sources


def _parse(opt: Option, raw: str, where: str) -> Any:
    try:
        return opt.parse(raw)
    except ValueError as exc:
        raise SystemExit(f"{where}: {exc}") from None


def load_settings(overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Defaults, then `CHRONARY_*` variables, then explicit overrides (CLI flags) that are not None."""
    return resolve(overrides, environ)[0]


def describe() -> list[tuple[str, str, Any, str]]:
    """(option, env var, default, help) rows for `--help` and the README."""
    defaults = Settings()
    return [(o.name, o.env, getattr(defaults, o.name), o.help) for o in OPTIONS]

"""Time at the edges: parse ISO 8601 with an offset, answer UTC with `Z`; store epoch seconds."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from chronary.errors import ValidationError

_ZONES: frozenset[str] | None = None


def valid_timezone(name: str) -> bool:
    global _ZONES
    if _ZONES is None:
        _ZONES = frozenset(available_timezones())
    if name in _ZONES or name == "UTC":
        return True
    if len(name) > 64:  # no IANA name is this long; ZoneInfo would hit the filesystem with it
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return "/" in name or name in {"UTC", "GMT"}


def require_timezone(name: str, param: str) -> ZoneInfo:
    if not isinstance(name, str) or not valid_timezone(name):
        raise ValidationError(f"{param} must be an IANA timezone name such as Europe/Berlin", param)
    return ZoneInfo(name)


def parse_instant(value: str, param: str) -> datetime:
    """An ISO 8601 timestamp that must carry an offset or `Z` (naive times are ambiguous)."""
    if not isinstance(value, str) or not value:
        raise ValidationError(f"{param} must be an ISO 8601 timestamp with an offset", param)
    try:
        parsed = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        raise ValidationError(f"{param} is not a valid ISO 8601 timestamp: {value!r}", param) from None
    if parsed.tzinfo is None:
        raise ValidationError(f"{param} must include a UTC offset or Z (got {value!r})", param)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+14:00 lies before datetime.min in UTC
        raise ValidationError(f"{param} is out of range: {value!r}", param) from None


def parse_date(value: str, param: str) -> date:
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        raise ValidationError(f"{param} must be a date YYYY-MM-DD (got {value!r})", param) from None


def iso(dt: datetime | None) -> str | None:
    """UTC ISO 8601 with `Z`, seconds precision — the one format the API answers with."""
    if dt is None:
        return None
    utc = dt.astimezone(UTC)
    if utc.year < 1000:  # strftime's year has no leading zeros; isoformat's has
        return utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    return utc.isoformat(timespec="seconds")[:19] + "Z"  # isoformat: the same text, in C (every write)


def iso_ms(dt: datetime) -> str:
    """Millisecond precision, for created_at/updated_at columns that must sort by write order."""
    utc = dt.astimezone(UTC)
    if utc.year < 1000:
        return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"
    return utc.isoformat(timespec="milliseconds")[:23] + "Z"


def to_ts(dt: datetime) -> int:
    return int(dt.timestamp())


def from_ts(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def ts_iso(ts: int | None) -> str | None:
    return None if ts is None else iso(from_ts(ts))


def parse_stored(value: str | None) -> datetime | None:
    """Read back a timestamp column written by `iso` or `iso_ms`."""
    if value is None:
        return None
    return datetime.fromisoformat(value).astimezone(UTC)

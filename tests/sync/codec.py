"""The VEVENT codec as the sync path drives it: stored rows → `Outgoing` → text, and back."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from chronary.ical.decode import decode_resource
from chronary.ical.encode import encode
from chronary.ical.model import Resource
from chronary.services.sync.outgoing import outgoing


def build(master: dict[str, Any], exceptions: list[dict[str, Any]], tz: ZoneInfo, base: str | None, now: datetime) -> str:
    """The resource text a push sends for a stored series (or single event) and its exceptions."""
    row = {"id": "evt_test", "source": None, "reminders": None, **master}
    rows = [{"reminders": None, **e} for e in exceptions]
    calendar = {"id": "cal_test", "timezone": tz.key}
    return encode(outgoing(row, rows, calendar, {"ical": base} if base else None), now)


def parse(text: str, tz: ZoneInfo) -> Resource | None:
    """One CalDAV resource as a pull reads it (lenient)."""
    return decode_resource(text, tz, strict=False)

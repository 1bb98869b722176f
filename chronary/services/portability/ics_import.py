"""Importing a .ics file (a Google, Apple or Outlook export) into one calendar.

The file is read with the subscriptions' decoder (`ical.decode.decode_feed`, strict: a file is
imported whole or not at all) before any transaction opens; recurrences (RRULE, RDATE, EXDATE),
RECURRENCE-ID overrides (moved or cancelled occurrences), VTIMEZONEs with Windows zone names,
all-day dates and VALARM reminders come through as they do for a subscribed feed. The events
are then written by `write.Writer` in one transaction: re-importing the same file, or a newer
export of the same calendar, updates by UID rather than duplicating.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from chronary.errors import ValidationError
from chronary.ical.decode import decode_feed, iana
from chronary.ical.model import CodecError, Resource
from chronary.schemas.calendars import CalendarCreate
from chronary.services import calendars as calendar_service
from chronary.services.calendars import load as load_calendar
from chronary.services.context import Ctx
from chronary.services.portability.write import Progress, Stats, Writer
from chronary.store.db import Tx

MAX_FILE_BYTES = 200 * 1024 * 1024
_CALNAME = re.compile(r"^X-WR-CALNAME(?:;[^:\n]*)?:([^\n]*)", re.MULTILINE | re.IGNORECASE)
_WR_TZ = re.compile(r"^X-WR-TIMEZONE(?:;[^:\n]*)?:([^\n]*)", re.MULTILINE | re.IGNORECASE)
_VTZ_ID = re.compile(r"^BEGIN:VTIMEZONE\n(?:[^\n]*\n)*?TZID(?:;[^:\n]*)?:([^\n]*)", re.MULTILINE | re.IGNORECASE)


class ImportFailed(ValidationError):
    """The input cannot be imported; the message names the file (and the event) and is safe to show."""


@dataclass(frozen=True)
class IcsFile:
    """A read .ics file: its text, and what it says about the calendar it came from."""

    path: str
    body: bytes
    name: str | None  # X-WR-CALNAME
    timezone: str | None  # X-WR-TIMEZONE, else the first VTIMEZONE's TZID (as an IANA name)


def read_bytes(path: Path, what: str = "file") -> bytes:
    """The file's bytes, or ImportFailed saying why not (missing, a folder, too large)."""
    if not path.exists():
        raise ImportFailed(f"no such {what}: {path}")
    if not path.is_file():
        raise ImportFailed(f"not a file: {path}")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise ImportFailed(f"{path} is {size} bytes; the limit is {MAX_FILE_BYTES} bytes")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ImportFailed(f"cannot read {path}: {exc.strerror}") from None


def hints(text: str) -> tuple[str | None, str | None]:
    """(calendar name, IANA timezone) an export names in its header, where it does."""
    text = text.replace("\r\n", "\n").replace("\n ", "").replace("\n\t", "")
    name = _CALNAME.search(text)
    zone: str | None = None
    for pattern in (_WR_TZ, _VTZ_ID):
        found = pattern.search(text)
        zone = iana(found.group(1).strip().strip('"')) if found else None
        if zone:
            break
    return (name.group(1).strip() or None) if name else None, zone


def open_file(path: Path) -> IcsFile:
    body = read_bytes(path)
    name, zone = hints(body.decode("utf-8", "replace"))
    return IcsFile(str(path), body, name, zone)


def decode(source: IcsFile, timezone: str) -> list[Resource]:
    """Every UID of the file (strict), all-day dates read in `timezone`; ImportFailed otherwise."""
    try:
        return decode_feed(source.body, ZoneInfo(timezone), strict=True)
    except CodecError as exc:
        raise ImportFailed(f"{source.path}: {exc}") from None
    except Exception as exc:  # a parser bug on odd input: still one clear line, nothing written
        raise ImportFailed(f"{source.path}: the file cannot be read ({type(exc).__name__})") from None


def calendar_timezone(tx: Tx, ctx: Ctx, calendar_id: str) -> str:
    """The zone all-day dates are read in (and the 404 for an unknown calendar), before decoding."""
    return str(load_calendar(tx, ctx.principal, calendar_id)["timezone"])


def into_calendar(
    tx: Tx,
    ctx: Ctx,
    calendar_id: str,
    resources: list[Resource],
    *,
    announce: bool = False,
    progress: Progress | None = None,
) -> Stats:
    """Write decoded resources into an existing calendar (one transaction: the caller's)."""
    calendar = load_calendar(tx, ctx.principal, calendar_id)
    return Writer(tx, calendar, announce=announce, progress=progress).write(resources)


def into_new_calendar(
    tx: Tx,
    ctx: Ctx,
    agent_id: str | None,
    data: CalendarCreate,
    resources: list[Resource],
    *,
    announce: bool = False,
    progress: Progress | None = None,
) -> tuple[str, Stats]:
    """Create the calendar (agent-owned, or org-level for None) and write into it, in one transaction."""
    created = calendar_service.create(tx, ctx, agent_id, data)
    return created.id, into_calendar(tx, ctx, created.id, resources, announce=announce, progress=progress)

"""Events as they happen in a time window: single events plus expanded recurring series.

A series is stored once (its `recurrence` lines). Each occurrence is named
`<series id>_<original start UTC as YYYYMMDDTHHMMSSZ>` and carries `recurring_event_id`.
A changed or cancelled occurrence is stored as its own row whose id is that occurrence id, with
`recurring_event_id` = the series and `recurrence_id_ts` = the original start; it replaces the
generated occurrence (a cancelled one simply has status cancelled, and stays listed as such).
A deleted occurrence is an EXDATE on the series (`with_exdate`), exactly what a sync pull
stores for an EXDATE made on a phone: it is generated nowhere any more, and goes out to feeds
and providers as the EXDATE it is.

Availability, feeds and windowed event lists all read through `in_window`, so they agree.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from chronary.ical.recurrence import expand, occurrence_key, parse_occurrence_key
from chronary.store import calendars as cal_store
from chronary.store import events as event_store
from chronary.store.db import Tx
from chronary.store.events import EventFilter
from chronary.timeutil import from_ts, to_ts


def occurrence_id(series_id: str, original_start_ts: int) -> str:
    return f"{series_id}_{occurrence_key(from_ts(original_start_ts))}"


def series_zone(master: dict[str, Any], calendar: dict[str, Any]) -> ZoneInfo:
    """The zone a series repeats in: the calendar's, or an imported series' own (remote.tzid),
    so a feed's 09:00 America/New_York meeting stays at 09:00 there across DST."""
    remote = master.get("remote")
    if isinstance(remote, dict) and isinstance(remote.get("tzid"), str) and not master["all_day"]:
        try:
            return ZoneInfo(remote["tzid"])
        except (ValueError, KeyError, OSError):
            pass
    return ZoneInfo(calendar["timezone"])


def split_id(event_id: str) -> tuple[str, int] | None:
    """(series id, original start ts) of an occurrence id, or None when it is not one."""
    series_id, sep, key = event_id.rpartition("_")
    if not sep or "_" not in series_id:
        return None
    original = parse_occurrence_key(key)
    return None if original is None else (series_id, to_ts(original))


def virtual(tx: Tx, calendar: dict[str, Any], event_id: str) -> dict[str, Any] | None:
    """The generated (not stored) occurrence named `event_id`, if its series really has it."""
    parts = split_id(event_id)
    if parts is None:
        return None
    series_id, original = parts
    master = event_store.get(tx.conn, series_id)
    if master is None or master["calendar_id"] != calendar["id"]:
        return None
    return generated(master, series_zone(master, calendar), original)


def generated(master: dict[str, Any], tz: ZoneInfo, original_start_ts: int) -> dict[str, Any] | None:
    """The occurrence the series itself generates at this original start (EXDATEs applied)."""
    if not master["recurrence"]:
        return None
    for occ in expand_series(master, tz, original_start_ts, original_start_ts + 1, []):
        if occ["recurrence_id_ts"] == original_start_ts:
            return occ
    return None


def with_exdate(lines: list[str], original_start_ts: int, all_day: bool, tz: ZoneInfo) -> list[str]:
    """The series' recurrence lines with one more EXDATE, written as a sync pull writes a
    remote one (UTC `Z`, a date for all-day series in the calendar's zone `tz`), so a delete
    made here and one made on a phone are the same stored state."""
    start = from_ts(original_start_ts)
    prefix, value = (
        ("EXDATE;VALUE=DATE:", start.astimezone(tz).strftime("%Y%m%d")) if all_day else ("EXDATE:", occurrence_key(start))
    )
    out = list(lines)
    for i, line in enumerate(out):
        if not line.upper().startswith(prefix):
            continue
        values = line[len(prefix) :].split(",")
        if value in values:
            return out
        if all_day or all(v.upper().endswith("Z") for v in values):
            out[i] = f"{line},{value}"
            return out
    return [*out, prefix + value]


def exdates(lines: list[str] | None, tz: ZoneInfo) -> set[int]:
    """Original starts (unix seconds) a series' EXDATE lines exclude; floating values and dates
    are local time in `tz` (the zone the series repeats in)."""
    out: set[int] = set()
    for line in lines or []:
        head, _, values = line.partition(":")
        name, *params = head.split(";")
        if name.strip().upper() != "EXDATE":
            continue
        zone = tz
        for param in params:
            key, _, tzid = param.partition("=")
            if key.strip().upper() == "TZID":
                with contextlib.suppress(ValueError, KeyError, OSError):  # unknown zone: read as `tz`
                    zone = ZoneInfo(tzid.strip('"'))
        for raw in values.split(","):
            value = raw.strip()
            try:
                if len(value) == 8:
                    dt = datetime.combine(date(int(value[:4]), int(value[4:6]), int(value[6:])), time(0), zone)
                elif value.upper().endswith("Z"):
                    dt = datetime.strptime(value[:-1], "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
                else:
                    dt = datetime.strptime(value, "%Y%m%dT%H%M%S").replace(tzinfo=zone)
            except ValueError:
                continue
            out.add(to_ts(dt))
    return out


def expand_series(
    master: dict[str, Any], tz: ZoneInfo, start_ts: int, end_ts: int, exceptions: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Occurrence rows of one series overlapping [start_ts, end_ts), exceptions applied."""
    overrides = {e["recurrence_id_ts"]: e for e in exceptions}
    out: list[dict[str, Any]] = []
    for occ_start, occ_end in expand(
        from_ts(master["start_ts"]),
        from_ts(master["end_ts"]),
        master["recurrence"],
        tz,
        from_ts(start_ts),
        from_ts(end_ts),
        bool(master["all_day"]),
    ):
        original = to_ts(occ_start)
        if original in overrides:
            continue  # the stored exception stands in for it (added below if in the window)
        out.append(
            {
                **master,
                "id": occurrence_id(master["id"], original),
                "start_ts": original,
                "end_ts": to_ts(occ_end),
                "recurrence": None,
                "recurring_event_id": master["id"],
                "recurrence_id_ts": original,
            }
        )
    for exc in exceptions:
        if exc["start_ts"] < end_ts and exc["end_ts"] > start_ts:
            out.append(exc)
    return out


def in_window(
    tx: Tx, scope: EventFilter, start_ts: int, end_ts: int, calendars: dict[str, dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """Every event and occurrence in scope overlapping the window, sorted by start then id.

    `calendars` is a cache of calendar rows by id (filled as needed) for timezone lookups.
    """
    calendars = {} if calendars is None else calendars
    singles, masters, exceptions = event_store.in_window(tx.conn, scope, start_ts, end_ts)
    by_series: dict[str, list[dict[str, Any]]] = {}
    for exc in exceptions:
        by_series.setdefault(exc["recurring_event_id"], []).append(exc)
    rows = list(singles)
    for master in masters:
        cal = calendars.get(master["calendar_id"])
        if cal is None:
            fetched = cal_store.get(tx.conn, master["calendar_id"])
            if fetched is None:
                continue  # cannot happen (events go with their calendar); keeps the types honest
            cal = calendars[master["calendar_id"]] = fetched
        rows.extend(expand_series(master, series_zone(master, cal), start_ts, end_ts, by_series.get(master["id"], [])))
    if scope.status is not None:
        rows = [r for r in rows if r["status"] == scope.status]
    rows.sort(key=lambda r: (r["start_ts"], r["id"]))
    return rows

"""Writing decoded events into one calendar, idempotently by UID: the one write path of every import.

A Resource (one UID: master + RECURRENCE-ID overrides, from `ical/decode.py`) is matched to the
calendar's series or single event with that `ical_uid`; it is created when there is none and
updated in place when there is (only the fields that differ are written, so importing the same
file twice changes nothing). Overrides are matched by their original start; an override the file
no longer has is deleted. Events of the calendar that the file does not mention are left alone:
an import merges, it does not mirror. Events mirrored from a connection or subscription
(read-only) are never overwritten by an import; they are counted as skipped.

A restore (the whole-org import, `extras`) also gives each row back its id, created_at and
updated_at and every stored value the .ics does not read back as (metadata, priority, a hold,
attendee agent ids, the exact recurrence lines): see `services/portability/org.py`.

Every row goes through `services.events.record_event_change` (the change log, feeds, provider
push queues), quiet unless `announce`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from chronary import ids
from chronary.errors import Conflict
from chronary.ical.model import EventData, Resource
from chronary.services.events import record_event_change
from chronary.services.occurrences import occurrence_id
from chronary.services.sync.merge import event_fields
from chronary.store import agents as agent_store
from chronary.store import calendars as cal_store
from chronary.store import events as event_store
from chronary.store import sync as sync_store
from chronary.store.db import Tx
from chronary.timeutil import iso_ms

Progress = Callable[[int], None]
# (uid, original start ts or None for the master) → {"id": …, column: stored value, …} (org.py)
Extras = Mapping[tuple[str, int | None], dict[str, Any]]
# the columns a restore sets even where iCalendar says nothing about them
RESTORE_BASELINE: dict[str, Any] = {"metadata": {}, "priority": None, "hold_expires_at": None}


PAGE = 500


def _every(fetch: Callable[[int, int], tuple[list[dict[str, Any]], int]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        rows, total = fetch(PAGE, len(out))
        out.extend(rows)
        if not rows or len(out) >= total:
            return out


def every_agent(tx: Tx) -> list[dict[str, Any]]:
    """Every agent row of the org (the store pages; an import or export wants them all)."""
    return _every(lambda n, o: agent_store.list_(tx.conn, only_id=None, type_=None, status=None, limit=n, offset=o))


def every_calendar(tx: Tx) -> list[dict[str, Any]]:
    """Every calendar row, agents' and org-level ones."""
    return _every(lambda n, o: cal_store.list_(tx.conn, agent_id=None, include_agent_owned=True, limit=n, offset=o))


@dataclass
class Stats:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0  # overrides the file no longer has
    skipped: int = 0  # read-only mirrored events with the same UID

    def add(self, other: Stats) -> None:
        for name in ("created", "updated", "unchanged", "deleted", "skipped"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def summary(self) -> str:
        parts = [f"{self.created} created", f"{self.updated} updated", f"{self.unchanged} unchanged"]
        if self.deleted:
            parts.append(f"{self.deleted} overrides removed")
        if self.skipped:
            parts.append(f"{self.skipped} skipped (read-only mirrored events)")
        return ", ".join(parts)


def fields(f: EventData, calendar_tz: str) -> dict[str, Any]:
    """The stored columns of one decoded piece (as the sync merge stores them)."""
    out: dict[str, Any] = {**event_fields(f), "read_only": False}
    if f.recurrence_id_ts is None:
        out["recurrence"] = f.recurrence
        # a timed series repeats in the zone it was written in (services/occurrences.series_zone)
        tzid = f.tzid if f.recurrence and not f.all_day and f.tzid != calendar_tz else None
        out["remote"] = {"type": "import", "tzid": tzid} if tzid else None
    else:
        out["recurrence"] = None
        out["remote"] = None
    return out


@dataclass
class Writer:
    """One calendar's import inside one write transaction."""

    tx: Tx
    calendar: dict[str, Any]
    announce: bool = False
    extras: Extras | None = None  # a restore: per-row values iCalendar cannot carry
    progress: Progress | None = None
    stats: Stats = field(default_factory=Stats)

    @property
    def restoring(self) -> bool:
        return self.extras is not None

    def write(self, resources: list[Resource]) -> Stats:
        for resource in resources:
            self.resource(resource)
            if self.progress is not None:
                self.progress(1)
        return self.stats

    def _extra(self, uid: str, rid_ts: int | None) -> dict[str, Any]:
        return dict(self.extras.get((uid, rid_ts), {})) if self.extras is not None else {}

    def _values(self, piece: EventData, extra: dict[str, Any]) -> dict[str, Any]:
        values = fields(piece, self.calendar["timezone"])
        if self.restoring:
            values.update(RESTORE_BASELINE)
            values.update({k: v for k, v in extra.items() if k != "id"})
        return values

    def _existing(self, uid: str, extra: dict[str, Any]) -> dict[str, Any] | None:
        if extra.get("id"):
            row = event_store.get(self.tx.conn, extra["id"])
            if row is not None and row["calendar_id"] != self.calendar["id"]:
                raise Conflict(f"event {extra['id']} already exists in another calendar ({row['calendar_id']})", "id")
            if row is not None:
                return row
        return sync_store.master_by_uid(self.tx.conn, self.calendar["id"], uid)

    def resource(self, res: Resource) -> None:
        extra = self._extra(res.uid, None)
        existing = self._existing(res.uid, extra)
        if existing is not None and existing["read_only"]:
            self.stats.skipped += 1
            return
        values = self._values(res.master, extra)
        if existing is None:
            master = self._create(extra.get("id") or ids.new_id("evt"), res.uid, values, None, None)
        else:
            master = self._patch(existing, values)
        old = {e["recurrence_id_ts"]: e for e in sync_store.exceptions_of(self.tx.conn, master["id"])}
        for ov in res.overrides:
            assert ov.recurrence_id_ts is not None
            ov_extra = self._extra(res.uid, ov.recurrence_id_ts)
            ov_values = self._values(ov, ov_extra)
            if ov.recurrence_id_ts in old:
                self._patch(old.pop(ov.recurrence_id_ts), ov_values)
            else:
                event_id = ov_extra.get("id") or occurrence_id(master["id"], ov.recurrence_id_ts)
                self._create(event_id, res.uid, ov_values, master["id"], ov.recurrence_id_ts)
        for gone in old.values():
            event_store.delete(self.tx.conn, gone["id"])
            self._record("deleted", gone, None)
            self.stats.deleted += 1

    def _record(self, kind: str, before: dict[str, Any] | None, after: dict[str, Any] | None) -> None:
        record_event_change(self.tx, kind, before, after, self.calendar, webhook=self.announce)

    def _create(
        self, event_id: str, uid: str, values: dict[str, Any], series: str | None, rid_ts: int | None
    ) -> dict[str, Any]:
        now = iso_ms(self.tx.now)
        row: dict[str, Any] = {
            "id": event_id,
            "calendar_id": self.calendar["id"],
            "ical_uid": uid,
            "hold_expires_at": None,
            "priority": None,
            "recurring_event_id": series,
            "recurrence_id_ts": rid_ts,
            "metadata": {},
            "source": "internal",  # imported events are Chronary's own from now on: writable, no remote side
            "created_at": now,
            "updated_at": now,
            **values,
        }
        event_store.create(self.tx.conn, row)
        self._record("created", None, row)
        self.stats.created += 1
        return row

    def _patch(self, row: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
        if not self.restoring:  # holds go out as TENTATIVE (as the sync merge reads them back): keep them holds
            if row.get("status") == "hold" and values.get("status") == "tentative":
                values = {**values, "status": "hold", "transparency": "opaque"}
            elif values.get("status") != "hold" and row.get("hold_expires_at") is not None:
                values = {**values, "hold_expires_at": None}
        diff = {k: v for k, v in values.items() if row.get(k) != v}
        if not diff:
            self.stats.unchanged += 1
            return row
        if not self.restoring:  # a newer version from the source: our SEQUENCE moves past the old one
            if int(values.get("sequence") or 0) <= int(row.get("sequence") or 0) and set(diff) - {"sequence"}:
                diff["sequence"] = int(row.get("sequence") or 0) + 1
            diff["updated_at"] = iso_ms(self.tx.now)
        event_store.patch(self.tx.conn, row["id"], diff)
        after = {**row, **diff}
        self._record("updated", row, after)
        self.stats.updated += 1
        return after

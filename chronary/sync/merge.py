"""Applying pulled provider changes to Chronary, inside one write transaction per calendar.

Conflict rule (both sides changed the same resource since the last sync):
- edit vs edit: the side with the later modification time wins — the remote LAST-MODIFIED
  (or DTSTAMP) against the local updated_at; a tie goes to the remote side. The losing
  version is stored in sync_conflicts (local rows as JSON, or the remote iCalendar text) and
  counted in last_sync.conflicts, so it is never silently lost.
- edit vs delete: the edit wins (the event is recreated on the side that deleted it), since a
  deletion shows less intent than an edit and is the only change that cannot be recovered.
A resource is linked to its mirror by (connection, remote calendar, UID); overrides inside it by
RECURRENCE-ID ↔ the exception row's recurrence_id_ts.

Every row the merge writes goes through the one change path (services/changes.record, via
services/events.record_event_change) with origin `sync:<connection id>`: the calendar revision
and feed move, the change is logged, and the push queue skips this same connection (no echo).
A calendar's first import is logged but not sent as webhooks (connection.synced counts it).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from chronary import ids
from chronary.services.changes import Change, record, sync_origin
from chronary.services.events import present as present_event
from chronary.services.events import record_event_change
from chronary.services.occurrences import exdates, generated, occurrence_id, series_zone
from chronary.store import calendars as cal_store
from chronary.store import connections as con_store
from chronary.store import events as event_store
from chronary.store import sync as sync_store
from chronary.store.db import Tx
from chronary.sync import convert
from chronary.sync.base import Changes, RemoteItem
from chronary.timeutil import iso_ms, parse_stored

log = logging.getLogger("chronary.sync")


def parse_all(items: list[RemoteItem], tz: ZoneInfo, stats: Stats) -> dict[str, convert.Resource | None]:
    """Parse bodies before the write transaction (icalendar is slow: keep the writer free)."""
    out: dict[str, convert.Resource | None] = {}
    for item in items:
        if item.ical is None:
            continue
        try:
            out[item.href] = convert.parse(item.ical, tz)
        except Exception as exc:  # noqa: BLE001 - one bad resource must not stop the calendar
            stats.skipped += 1
            log.warning("skipped unparsable resource %s (%s)", item.href, type(exc).__name__)
    return out


@dataclass
class Stats:
    pulled: int = 0
    pushed: int = 0
    conflicts: int = 0
    full_resyncs: int = 0
    skipped: int = 0
    errors: list[str] = field(default_factory=list)


def _fields(f: convert.Fields) -> dict[str, Any]:
    return {
        "title": f.title,
        "description": f.description,
        "location": f.location,
        "start_ts": f.start_ts,
        "end_ts": f.end_ts,
        "all_day": f.all_day,
        "status": f.status,
        "attendees": f.attendees,
        "sequence": f.sequence,
        "reminders": f.reminders,
        "transparency": f.transparency,
    }


class Merger:
    """One calendar's merge: the connection, its mapping row and the Chronary calendar."""

    def __init__(self, tx: Tx, con: dict[str, Any], mapping: dict[str, Any], stats: Stats, quiet: bool = False) -> None:
        self.tx, self.con, self.mapping, self.stats = tx, con, mapping, stats
        self.quiet = quiet  # first import of a calendar: no per-event webhooks (connection.synced counts them)
        self.conn = tx.conn
        self.calendar = cal_store.get(tx.conn, mapping["calendar_id"])
        self.tz = ZoneInfo(self.calendar["timezone"]) if self.calendar else ZoneInfo("UTC")
        self.now = iso_ms(tx.now)
        self.origin = sync_origin(con["id"])

    def key(self) -> tuple[str, str]:
        return self.con["id"], self.mapping["remote_id"]

    def remote_json(self, uid: str, item: RemoteItem) -> dict[str, Any]:
        return {
            "connection_id": self.con["id"],
            "calendar_remote_id": self.mapping["remote_id"],
            "uid": uid,
            "etag": item.etag,
            "href": item.href,
        }

    # -- entry points ----------------------------------------------------------------------------
    def apply_items(self, items: list[RemoteItem], parsed: dict[str, convert.Resource | None]) -> None:
        """Merge changed resources (bodies already parsed outside the transaction)."""
        if self.calendar is None:
            return
        for item in items:
            self.item(item, parsed.get(item.href))

    def finish(self, changes: Changes) -> None:
        """Remote deletions (incremental list, or absent from a full listing), then the new cursor."""
        if self.calendar is None:
            return
        cid, rid = self.key()
        gone = set(changes.deleted)
        if changes.full:
            gone |= {
                link["href"]
                for link in sync_store.links(self.conn, cid, rid)
                if link["href"] and link["href"] not in changes.present
            }
        for href in sorted(gone):
            self.remote_deleted(href)
        con_store.patch_calendar(self.conn, cid, rid, {"cursor": changes.cursor})

    def _record(self, kind: str, before: dict[str, Any] | None, after: dict[str, Any] | None, announce: bool = True) -> None:
        assert self.calendar is not None
        record_event_change(
            self.tx, kind, before, after, self.calendar, origin=self.origin, webhook=not self.quiet, announce=announce
        )

    def item(self, item: RemoteItem, res: convert.Resource | None) -> None:
        cid, rid = self.key()
        if res is None or not res.uid or res.master is None:
            return
        link = sync_store.link_by_uid(self.conn, cid, rid, res.uid)
        if link is None:
            # a local event we pushed but could not record (crash between PUT and commit), or one
            # created here with the same UID: adopt it rather than mirror it a second time
            local = sync_store.master_by_uid(self.conn, self.calendar["id"], res.uid)  # type: ignore[index]
            if local is not None:
                link = {
                    "connection_id": cid,
                    "remote_id": rid,
                    "uid": res.uid,
                    "href": None,
                    "etag": None,
                    "event_id": local["id"],
                    "ical": None,
                }
        if link and link["etag"] == item.etag and link["href"] == item.href and item.etag:
            return  # our own push echoed back by the server
        pend = sync_store.pending_for(self.conn, cid, rid, link["event_id"]) if link else None
        if pend is None:
            self.apply(res, item, link)
            return
        self.stats.conflicts += 1
        local = event_store.get(self.conn, link["event_id"])  # type: ignore[index]
        if pend["op"] == "delete" or local is None:
            self.conflict(res.uid, link, "remote", "deleted locally, edited remotely: the edit wins", "deleted")
            sync_store.drop_pending(self.conn, cid, rid, pend["event_id"])
            self.apply(res, item, link)
            return
        exceptions = sync_store.exceptions_of(self.conn, local["id"])
        local_time = max(parse_stored(r["updated_at"]) for r in [local, *exceptions])  # type: ignore[type-var]
        stamps = [f.last_modified for f in [res.master, *res.overrides] if f.last_modified]
        remote_time = max(stamps) if stamps else None
        if remote_time is not None and local_time is not None and local_time > remote_time:
            self.conflict(res.uid, link, "local", "edited on both sides; the local edit is newer", item.ical)
            # push next, on top of the remote body, with the etag we now know
            sync_store.put_link(self.conn, {**link, "href": item.href, "etag": item.etag, "ical": item.ical})  # type: ignore[dict-item]
            return
        losing = json.dumps([present_event(r, self.calendar) for r in [local, *exceptions]])  # type: ignore[arg-type]
        self.conflict(res.uid, link, "remote", "edited on both sides; the remote edit is newer (or as new)", losing)
        sync_store.drop_pending(self.conn, cid, rid, pend["event_id"])
        self.apply(res, item, link)

    def conflict(self, uid: str, link: dict[str, Any] | None, winner: str, reason: str, losing: str | None) -> None:
        cid, rid = self.key()
        sync_store.record_conflict(
            self.conn,
            {
                "connection_id": cid,
                "remote_id": rid,
                "uid": uid,
                "event_id": link["event_id"] if link else None,
                "winner": winner,
                "reason": reason,
                "losing_version": losing or "",
                "created_at": self.now,
            },
        )
        log.info("connection %s: conflict on %s, %s wins (%s)", cid, uid, winner, reason)

    # -- writes ----------------------------------------------------------------------------------
    def apply(self, res: convert.Resource, item: RemoteItem, link: dict[str, Any] | None) -> None:
        assert res.master is not None and self.calendar is not None
        cid, rid = self.key()
        remote = self.remote_json(res.uid, item)
        read_only = bool(self.mapping["read_only"])
        master_values = {
            **_fields(res.master),
            "recurrence": res.master.recurrence,
            "remote": remote,
            "read_only": read_only,
        }
        existing = event_store.get(self.conn, link["event_id"]) if link else None
        if existing is None:
            master = self._create(ids.new_id("evt"), res.uid, master_values, None, None)
        else:
            master = self._patch(existing, master_values)
        old = {e["recurrence_id_ts"]: e for e in sync_store.exceptions_of(self.conn, master["id"])}
        if existing is not None:
            self._excluded(existing, master, set(old))
        for ov in res.overrides:
            values = {**_fields(ov), "recurrence": None, "remote": remote, "read_only": read_only}
            if ov.recurrence_id_ts in old:
                self._patch(old.pop(ov.recurrence_id_ts), values)
            else:
                self._create(
                    occurrence_id(master["id"], ov.recurrence_id_ts),  # type: ignore[arg-type]
                    res.uid,
                    values,
                    master["id"],
                    ov.recurrence_id_ts,
                )
        for gone in old.values():
            self._delete(gone)
        sync_store.put_link(
            self.conn,
            {
                "connection_id": cid,
                "remote_id": rid,
                "uid": res.uid,
                "href": item.href,
                "etag": item.etag,
                "event_id": master["id"],
                "ical": item.ical,
            },
        )
        self.stats.pulled += 1

    def _create(
        self, event_id: str, uid: str, values: dict[str, Any], series: str | None, rid_ts: int | None
    ) -> dict[str, Any]:
        row = {
            "id": event_id,
            "calendar_id": self.calendar["id"],  # type: ignore[index]
            "ical_uid": uid,
            "hold_expires_at": None,
            "priority": None,
            "reminders": None,
            "recurring_event_id": series,
            "recurrence_id_ts": rid_ts,
            "metadata": {},
            "source": self.con["provider"],
            "created_at": self.now,
            "updated_at": self.now,
            **values,
        }
        event_store.create(self.conn, row)
        self._record("created", None, row)
        return row

    def _patch(self, row: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
        # `source` stays what it was: where the event was born (a Chronary booking that is
        # mirrored to the phone stays "internal"; its `remote` link says it is mirrored)
        if row.get("status") == "hold" and values.get("status") == "tentative":
            values = {**values, "status": "hold", "transparency": "opaque"}  # holds go out as TENTATIVE;
            # keep them holds, and opaque (a hold reserves time even if the phone marks it free)
        elif values.get("status", "hold") != "hold" and row.get("hold_expires_at") is not None:
            values = {**values, "hold_expires_at": None}
        diff = {k: v for k, v in values.items() if row.get(k) != v}
        if not diff:
            return row
        if set(diff) - {"remote"}:
            diff["updated_at"] = self.now
        event_store.patch(self.conn, row["id"], diff)
        after = {**row, **diff}
        # only the link or the counters moved: bookkeeping, not an edit to announce
        self._record("updated", row, after, announce=bool(set(diff) - {"remote", "updated_at", "sequence"}))
        return after

    def _excluded(self, before: dict[str, Any], after: dict[str, Any], stored: set[int | None]) -> None:
        """A remote EXDATE deletes an occurrence just as a local delete does (services/events
        stores that as an EXDATE too): event.deleted for each generated occurrence it removed.
        One with a stored exception is announced when that row goes (`_delete`)."""
        if self.quiet or not before["recurrence"] or before["recurrence"] == after.get("recurrence"):
            return
        assert self.calendar is not None
        zone = series_zone(before, self.calendar)
        for ts in sorted(exdates(after.get("recurrence"), zone) - exdates(before["recurrence"], zone) - stored):
            occ = generated(before, zone, ts)
            if occ is not None:  # no stored row of its own: announced, the series' row change is recorded
                obj = present_event(occ, self.calendar)
                record(
                    self.tx,
                    Change(
                        "event.deleted", obj, agent_id=self.calendar["agent_id"], origin=self.origin, calendar=self.calendar
                    ),
                )

    def _delete(self, row: dict[str, Any]) -> None:
        event_store.delete(self.conn, row["id"])
        self._record("deleted", row, None)

    def remote_deleted(self, href: str) -> None:
        cid, rid = self.key()
        link = sync_store.link_by_href(self.conn, cid, rid, href)
        if link is None:
            return
        pend = sync_store.pending_for(self.conn, cid, rid, link["event_id"])
        if pend is not None and pend["op"] == "upsert":
            self.stats.conflicts += 1
            self.conflict(link["uid"], link, "local", "deleted remotely, edited locally: the edit wins", "deleted")
            sync_store.delete_link(self.conn, cid, rid, link["uid"])
            sync_store.forget_remote(self.conn, cid, rid, link["event_id"])
            return
        master = event_store.get(self.conn, link["event_id"])
        if master is not None:
            for exc in sync_store.exceptions_of(self.conn, master["id"]):
                self._delete(exc)
            self._delete(master)
        sync_store.drop_pending(self.conn, cid, rid, link["event_id"])
        sync_store.delete_link(self.conn, cid, rid, link["uid"])
        self.stats.pulled += 1

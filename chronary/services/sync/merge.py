"""Applying pulled remote events to Chronary, inside write transactions: one merge for every mirror.

A `Mirror` is one remote calendar mirrored into one Chronary calendar: a connection's calendar
(CalDAV, iCloud, Google, Microsoft) or an iCal subscription's feed. Both go through this code;
they differ only in data (whose links, read-only or not, the events' `source`, whether changes
are announced as webhooks).

Conflict rule (both sides changed the same event since the last sync; only writable mirrors):
- edit vs edit: the side with the later modification time wins — the remote LAST-MODIFIED
  (or DTSTAMP) against the local updated_at; a tie goes to the remote side. The losing
  version is stored in sync_conflicts (local rows as JSON, or the remote raw data) and
  counted in last_sync.conflicts, so it is never silently lost.
- edit vs delete: the edit wins (the event is recreated on the side that deleted it), since a
  deletion shows less intent than an edit and is the only change that cannot be recovered.
A remote event is linked to its mirror by (owner, remote calendar, UID); overrides inside it by
RECURRENCE-ID ↔ the exception row's recurrence_id_ts. An unchanged remote event (same remote id
and etag as the link: our own push echoed back, or a feed entry whose digest did not move) is
skipped.

Every row the merge writes goes through the one change path (services/changes.record, via
services/events.record_event_change) with the mirror's origin (`sync:<connection>` or
`subscription:<id>`): the calendar revision and feed move, the change is logged, and the push
queue skips that same connection (no echo). A quiet mirror (a calendar's first import, every
subscription import) is logged but not sent as webhooks.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from chronary import ids
from chronary.ical.model import EventData
from chronary.providers.base import Changes, RemoteEvent
from chronary.services.changes import Change, record
from chronary.services.event_present import present as present_event
from chronary.services.events import record_event_change
from chronary.services.occurrences import exdates, generated, occurrence_id, series_zone
from chronary.store import calendars as cal_store
from chronary.store import events as event_store
from chronary.store import sync as sync_store
from chronary.store.db import Tx
from chronary.timeutil import iso_ms, parse_stored

log = logging.getLogger("chronary.sync")


@dataclass
class Stats:
    pulled: int = 0
    pushed: int = 0
    conflicts: int = 0
    full_resyncs: int = 0
    skipped: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Mirror:
    """Where one remote calendar is mirrored, and how its rows look."""

    owner_id: str  # con_… or isub_…: whose links these are
    remote_id: str  # the remote calendar's id ("feed" for a subscription)
    calendar_id: str
    read_only: bool
    source: str  # `source` of the events it creates: the provider's name, or external_ical
    origin: str  # the change log origin
    kind: str = "connection"  # connection | ical_subscription: the shape of the events' `remote`

    def remote_json(self, ev: RemoteEvent, tzid: str | None) -> dict[str, Any]:
        if self.kind == "ical_subscription":
            return {"type": "ical_subscription", "subscription_id": self.owner_id, "tzid": tzid}
        out: dict[str, Any] = {
            "connection_id": self.owner_id,
            "calendar_remote_id": self.remote_id,
            "uid": ev.uid,
            "etag": ev.etag,
            "href": ev.remote_id,
        }
        if tzid:
            out["tzid"] = tzid
        return out


def event_fields(f: EventData) -> dict[str, Any]:
    """The stored columns a decoded piece sets (every merge of decoded events: sync, imports)."""
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


def _series_tzid(master: EventData) -> str | None:
    """The zone a timed series repeats in, when it names one (kept in `remote.tzid`)."""
    return master.tzid if master.recurrence and not master.all_day else None


class Merger:
    """One mirror's merge inside one transaction."""

    def __init__(self, tx: Tx, mirror: Mirror, stats: Stats, quiet: bool = False) -> None:
        self.tx, self.mirror, self.stats = tx, mirror, stats
        self.quiet = quiet  # no per-event webhooks (first import, subscriptions): logged only
        self.conn = tx.conn
        self.calendar = cal_store.get(tx.conn, mirror.calendar_id)
        self.now = iso_ms(tx.now)
        self.origin = mirror.origin
        self._links: dict[str, dict[str, Any]] = {}  # apply_events' prefetch, by UID
        self._locals: dict[str, dict[str, Any]] = {}
        self._fresh: set[str] = set()  # UIDs whose prefetched rows are still current
        # new resources' rows and links, written together (`_flush`) before anything reads them
        self._created: list[dict[str, Any]] = []
        self._linked: list[dict[str, Any]] = []

    def key(self) -> tuple[str, str]:
        return self.mirror.owner_id, self.mirror.remote_id

    # -- entry points ----------------------------------------------------------------------------
    def apply_events(self, events: list[RemoteEvent]) -> None:
        """Merge changed remote events (decoded by the provider, outside the transaction).

        The links and same-UID local events of the whole batch are read in two queries up front
        (a first import merges thousands); a UID met twice in one batch is looked up again."""
        if self.calendar is None:
            return
        cid, rid = self.key()
        uids = list(dict.fromkeys(ev.uid for ev in events))
        self._links = sync_store.links_by_uids(self.conn, cid, rid, uids)
        self._locals = sync_store.masters_by_uids(self.conn, self.calendar["id"], [u for u in uids if u not in self._links])
        self._fresh = set(uids)
        for ev in events:
            self.item(ev)
        self._flush()

    def _flush(self) -> None:
        """Write the buffered new rows (one executemany), record their changes in the order they
        were made, then their links: what a row-by-row merge does, in fewer statements."""
        created, self._created = self._created, []
        if created:
            sync_store.insert_events(self.conn, created)
            for row in created:
                self._record("created", None, row)
        linked, self._linked = self._linked, []
        sync_store.put_links(self.conn, linked)

    def _lookup(self, uid: str) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """(link, same-UID local master) for `uid`: prefetched the first time, read after."""
        cid, rid = self.key()
        assert self.calendar is not None
        if uid in self._fresh:
            self._fresh.discard(uid)
            link = self._links.get(uid)
            return link, None if link else self._locals.get(uid)
        self._flush()  # a UID met again: the rows just made must be readable
        link = sync_store.link_by_uid(self.conn, cid, rid, uid)
        return link, None if link else sync_store.master_by_uid(self.conn, self.calendar["id"], uid)

    def finish(self, changes: Changes) -> None:
        """Remote deletions: listed as deleted, or (full listing) absent from `present`."""
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

    def _record(self, kind: str, before: dict[str, Any] | None, after: dict[str, Any] | None, announce: bool = True) -> None:
        assert self.calendar is not None
        record_event_change(
            self.tx, kind, before, after, self.calendar, origin=self.origin, webhook=not self.quiet, announce=announce
        )

    def item(self, ev: RemoteEvent) -> None:
        assert self.calendar is not None
        cid, rid = self.key()
        link, local = self._lookup(ev.uid)
        if link is None and local is not None:
            # a local event we pushed but could not record (crash between PUT and commit), or one
            # created here with the same UID: adopt it rather than mirror it a second time
            link = {
                "owner_id": cid,
                "remote_id": rid,
                "uid": ev.uid,
                "href": None,
                "etag": None,
                "event_id": local["id"],
            }
        if link is None:
            self.apply(ev, None)  # new here: its rows wait for the batch's flush
            return
        self._flush()  # everything below reads or changes stored rows in order
        if link["etag"] == ev.etag and link["href"] == ev.remote_id and ev.etag:
            return  # unchanged: our own push echoed back, or a feed entry that did not move
        pend = sync_store.pending_for(self.conn, cid, rid, link["event_id"])
        if pend is None:
            self.apply(ev, link)
            return
        self.stats.conflicts += 1
        local = event_store.get(self.conn, link["event_id"])
        if pend["op"] == "delete" or local is None:
            self.conflict(ev.uid, link, "remote", "deleted locally, edited remotely: the edit wins", "deleted")
            sync_store.drop_pending(self.conn, cid, rid, pend["event_id"])
            self.apply(ev, link)
            return
        rows = [local, *sync_store.exceptions_of(self.conn, local["id"])]
        local_time = max(t for t in (parse_stored(r["updated_at"]) for r in rows) if t is not None)
        stamps = [f.last_modified for f in [ev.master, *ev.overrides] if f.last_modified]
        remote_time = max(stamps) if stamps else None
        if remote_time is not None and local_time > remote_time:
            self.conflict(ev.uid, link, "local", "edited on both sides; the local edit is newer", ev.raw)
            # push next, on top of the remote body, with the etag we now know
            sync_store.put_link(self.conn, {**link, "href": ev.remote_id, "etag": ev.etag, "ical": ev.raw})
            return
        losing = json.dumps([present_event(r, self.calendar) for r in rows])
        self.conflict(ev.uid, link, "remote", "edited on both sides; the remote edit is newer (or as new)", losing)
        sync_store.drop_pending(self.conn, cid, rid, pend["event_id"])
        self.apply(ev, link)

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
    def apply(self, ev: RemoteEvent, link: dict[str, Any] | None) -> None:
        cid, rid = self.key()
        read_only = self.mirror.read_only
        master_values = {
            **event_fields(ev.master),
            "recurrence": ev.master.recurrence,
            "remote": self.mirror.remote_json(ev, _series_tzid(ev.master)),
            "read_only": read_only,
        }
        bulk = link is None  # a new resource: rows and link buffered until `_flush`
        existing = event_store.get(self.conn, link["event_id"]) if link else None
        if existing is None:
            master = self._create(ids.new_id("evt"), ev.uid, master_values, None, None, bulk)
        else:
            master = self._patch(existing, master_values)
        old: dict[int | None, dict[str, Any]] = {}
        if existing is not None:  # a master created just now has no exceptions yet
            old = {e["recurrence_id_ts"]: e for e in sync_store.exceptions_of(self.conn, master["id"])}
            self._excluded(existing, master, set(old))
        remote = self.mirror.remote_json(ev, None)
        for ov in ev.overrides:
            assert ov.recurrence_id_ts is not None
            values = {**event_fields(ov), "recurrence": None, "remote": remote, "read_only": read_only}
            if ov.recurrence_id_ts in old:
                self._patch(old.pop(ov.recurrence_id_ts), values)
            else:
                self._create(
                    occurrence_id(master["id"], ov.recurrence_id_ts),
                    ev.uid,
                    values,
                    master["id"],
                    ov.recurrence_id_ts,
                    bulk,
                )
        for gone in old.values():
            self._delete(gone)
        new_link = {
            "owner_id": cid,
            "remote_id": rid,
            "uid": ev.uid,
            "href": ev.remote_id,
            "etag": ev.etag,
            "event_id": master["id"],
            "ical": ev.raw,
        }
        if bulk:
            self._linked.append(new_link)
        else:
            sync_store.put_link(self.conn, new_link)
        self.stats.pulled += 1

    def _create(
        self, event_id: str, uid: str, values: dict[str, Any], series: str | None, rid_ts: int | None, bulk: bool = False
    ) -> dict[str, Any]:
        assert self.calendar is not None
        row = {
            "id": event_id,
            "calendar_id": self.calendar["id"],
            "ical_uid": uid,
            "hold_expires_at": None,
            "priority": None,
            "reminders": None,
            "recurring_event_id": series,
            "recurrence_id_ts": rid_ts,
            "metadata": {},
            "source": self.mirror.source,
            "created_at": self.now,
            "updated_at": self.now,
            **values,
        }
        if bulk:
            self._created.append(row)  # inserted, then recorded, by `_flush`
            return row
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
        edited = bool(set(diff) - {"remote", "sequence"})
        if edited and int(values.get("sequence") or 0) <= int(row.get("sequence") or 0):
            diff["sequence"] = int(row.get("sequence") or 0) + 1  # a remote edit that kept SEQUENCE still moves ours
        if set(diff) - {"remote"}:
            diff["updated_at"] = self.now
        event_store.patch(self.conn, row["id"], diff)
        after = {**row, **diff}
        # only the link or the counters moved: bookkeeping, not an edit to announce
        self._record("updated", row, after, announce=edited)
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

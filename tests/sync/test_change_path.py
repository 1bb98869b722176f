"""Every writer of events goes through the one change path (services/changes.record): an API
edit, an iCal subscription import (a real local feed server) and a sync pull (a real Radicale)
each leave change-log rows with their origin, webhook deliveries where webhooks are due, and move
the calendar's revision and its feed's ETag; a pull queues nothing back to its own connection."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from chronary.services import changes
from chronary.store import changes as change_store
from chronary.webhooks import dispatch
from chronary.workers.subscriptions import SubscriptionWorker
from tests.conftest import Api
from tests.ical.feedserver import FeedServer, vcalendar
from tests.ical.feedserver import vevent as feed_vevent
from tests.sync.conftest import Radicale, connect, enable, events, sync, vevent


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    server = FeedServer()
    yield server
    server.close()


class Watch:
    """One calendar's revision and feed ETag, the change log and the webhook deliveries."""

    def __init__(self, api: Api, calendar_id: str) -> None:
        self.api, self.calendar_id = api, calendar_id
        self.feed = urlsplit(api.get(f"/v1/calendars/{calendar_id}").json()["ical_url"]).path
        hook = api.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/hook", "events": ["*"]})
        assert hook.status_code == 201, hook.text
        self.hook_id = hook.json()["id"]
        self.mark()

    def _state(self) -> tuple[int, str, int]:
        db = self.api.runtime.db
        revision = db.read_sync(
            lambda tx: list(tx.conn.execute("SELECT revision FROM calendars WHERE id = ?", (self.calendar_id,)))[0]
        )["revision"]
        feed = self.api.get(self.feed)
        assert feed.status_code == 200
        return revision, feed.headers["etag"], db.read_sync(lambda tx: change_store.high_water(tx.conn))

    def mark(self) -> None:
        self.revision, self.etag, self.seq = self._state()

    def moved(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Assert revision and ETag moved; the new changes and the deliveries fanned out for them."""
        revision, etag, seq = self._state()
        assert revision > self.revision and etag != self.etag
        db = self.api.runtime.db
        new = db.read_sync(lambda tx: change_store.after(tx.conn, self.seq, 10_000))
        asyncio.run(changes.consume(db, dispatch.CONSUMER, dispatch.fan_out))
        sent = {d["event_id"] for d in self.deliveries()}
        delivered = [r for r in new if r["id"] in sent]
        self.revision, self.etag, self.seq = revision, etag, seq
        return new, delivered

    def deliveries(self) -> list[dict[str, Any]]:
        r = self.api.get(f"/v1/webhooks/{self.hook_id}/deliveries", params={"limit": 100})
        assert r.status_code == 200, r.text
        return r.json()["data"]


def _summary(rows: list[dict[str, Any]]) -> list[tuple[str, str, bool]]:
    return [(r["type"], r["origin"], r["webhook"]) for r in rows]


def test_api_edits_go_through_the_change_path(api: Api) -> None:
    agent = api.agent()
    cal = api.calendar(agent["id"])
    watch = Watch(api, cal["id"])
    evt = api.event(cal["id"], "2027-03-02T09:00:00Z", "2027-03-02T10:00:00Z")
    new, delivered = watch.moved()
    assert _summary(new) == [("event.created", "api", True)] and delivered == new
    assert new[0]["calendar_id"] == cal["id"] and new[0]["agent_id"] == agent["id"]
    r = api.patch(f"/v1/calendars/{cal['id']}/events/{evt['id']}", json={"title": "Moved"})
    assert r.status_code == 200
    new, delivered = watch.moved()
    assert _summary(new) == [("event.updated", "api", True)] and delivered == new
    assert new[0]["resource_id"] == evt["id"]


def _sweep(api: Api) -> int:
    worker = SubscriptionWorker(api.runtime)
    return api.client.blocking_portal.call(worker.sweep)


def test_subscription_imports_go_through_the_change_path(api: Api, feed_server: FeedServer) -> None:
    a = feed_vevent("a@test", "20270302T090000Z", "20270302T100000Z", "Alpha")
    a2 = feed_vevent("a@test", "20270302T090000Z", "20270302T103000Z", "Alpha v2")
    feed_server.serve("/cal.ics", vcalendar(a))
    agent = api.agent()
    cal = api.calendar(agent["id"])
    watch = Watch(api, cal["id"])
    r = api.post(
        f"/v1/agents/{agent['id']}/ical-subscriptions", json={"calendar_id": cal["id"], "url": feed_server.url("/cal.ics")}
    )
    assert r.status_code == 201, r.text
    origin = f"subscription:{r.json()['id']}"
    _sweep(api)
    new, delivered = watch.moved()
    # imported events are logged (for consumers) but were never sent as webhooks, and still are not
    assert _summary(new) == [("event.created", origin, False), ("ical_subscription.synced", origin, True)]
    assert [d["type"] for d in delivered] == ["ical_subscription.synced"]
    feed_server.serve("/cal.ics", vcalendar(a2), modified=1767312000.0)
    api.post(f"/v1/ical-subscriptions/{r.json()['id']}/sync")
    _sweep(api)
    new, delivered = watch.moved()
    assert _summary(new) == [("event.updated", origin, False), ("ical_subscription.synced", origin, True)]
    (title,) = [e["title"] for e in events(api, cal["id"])]
    assert title == "Alpha v2"


def test_sync_pulls_go_through_the_change_path_and_do_not_echo(api: Api, radicale: Radicale) -> None:
    user = radicale.new_user()
    remote = radicale.make_calendar(user)
    agent = api.agent()
    con = connect(api, agent["id"], user, radicale.url)
    mapped = enable(api, con, f"/{user}/work/")
    watch = Watch(api, mapped["calendar_id"])
    origin = f"sync:{con['id']}"
    remote.save_event(vevent("phone-a", "Dentist", "20270105T090000Z", "20270105T100000Z"))
    assert sync(api, con["id"])["pulled"] == 1  # type: ignore[index]
    new, delivered = watch.moved()
    # a calendar's first import: logged, not sent (connection.synced counts it)
    assert _summary(new) == [("event.created", origin, False), ("connection.synced", origin, True)]
    assert [d["type"] for d in delivered] == ["connection.synced"]
    (phone,) = remote.get_events()
    phone.icalendar_component["SUMMARY"] = "Dentist (moved)"
    phone.save()
    assert sync(api, con["id"])["pulled"] == 1  # type: ignore[index]
    new, delivered = watch.moved()
    assert _summary(new) == [("event.updated", origin, True), ("connection.synced", origin, True)]
    assert delivered == new
    # the pulled change reached the push queue listener, which skipped its own connection
    assert api.get(f"/v1/connections/{con['id']}").json()["pending_pushes"] == 0
    (local,) = events(api, mapped["calendar_id"])
    assert local["title"] == "Dentist (moved)"


def test_system_writers_go_through_the_change_path(make_api: Any, clock: Any) -> None:
    """Hold expiry (the worker) and re-anchoring all-day events on a timezone change."""
    from chronary.workers.holds import HoldExpiryWorker

    api = make_api(clock=clock)
    agent = api.agent()
    cal = api.calendar(agent["id"], timezone="Europe/Berlin")
    day = api.event(cal["id"], "2026-07-01", "2026-07-02", all_day=True)
    hold = api.event(cal["id"], "2026-01-06T09:00:00Z", "2026-01-06T10:00:00Z", status="hold")
    watch = Watch(api, cal["id"])
    clock.advance(minutes=16)
    assert api.client.blocking_portal.call(HoldExpiryWorker(api.runtime).sweep) == [hold["id"]]
    new, delivered = watch.moved()
    assert _summary(new) == [("event.hold_expired", "system", True)] and delivered == new
    assert api.patch(f"/v1/calendars/{cal['id']}", json={"timezone": "America/New_York"}).status_code == 200
    new, delivered = watch.moved()
    assert _summary(new) == [("event.updated", "system", True), ("calendar.updated", "api", True)]
    assert new[0]["resource_id"] == day["id"] and delivered == new

"""iCal subscriptions over HTTP against a real local feed server: CRUD, sync, worker, hostile feeds."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from chronary.clock import ManualClock
from chronary.store import subscriptions as sub_store
from tests.conftest import wait_until
from tests.ical.feedserver import vcalendar, vevent
from tests.ical.subsync import run_subscription_worker

A = vevent("a@test", "20260302T090000Z", "20260302T100000Z", "Alpha")
B = vevent("b@test", "20260303T090000Z", "20260303T100000Z", "Bravo")
C = vevent("c@test", "20260302T120000Z", "20260302T130000Z", "Charlie series", "RRULE:FREQ=DAILY;COUNT=3")
A2 = vevent("a@test", "20260302T090000Z", "20260302T103000Z", "Alpha v2")
D = vevent("d@test", "20260304T090000Z", "20260304T100000Z", "Delta")


def _setup(api, feed_server, body: str, path: str = "/cal.ics", **extra):
    feed_server.serve(path, body)
    agent = api.agent()
    cal = api.calendar(agent["id"])
    r = api.post(
        f"/v1/agents/{agent['id']}/ical-subscriptions",
        json={"calendar_id": cal["id"], "url": feed_server.url(path), **extra},
    )
    assert r.status_code == 201, r.text
    run_subscription_worker(api)  # the request marked it due; the worker syncs it
    return agent, cal, r.json()


def _titles(api, cal_id: str) -> dict[str, dict]:
    data = api.get(f"/v1/calendars/{cal_id}/events", params={"limit": 200}).json()["data"]
    return {e["title"]: e for e in data}


def _outbox_types(api) -> list[str]:
    return api.runtime.db.read_sync(lambda tx: [r["type"] for r in tx.conn.execute("SELECT type FROM outbox ORDER BY seq")])


def test_create_validate_list_get_patch_delete(api, feed_server):
    feed_server.serve("/cal.ics", vcalendar(A))
    agent, other = api.agent(), api.agent("Other")
    cal, other_cal = api.calendar(agent["id"]), api.calendar(other["id"])
    url = f"/v1/agents/{agent['id']}/ical-subscriptions"
    good = {"calendar_id": cal["id"], "url": feed_server.url("/cal.ics").replace("http://", "webcal://")}
    for body, param in (
        ({**good, "calendar_id": other_cal["id"]}, "calendar_id"),
        ({**good, "url": "ftp://example.com/x.ics"}, "url"),
        ({**good, "url": "https://user:pw@example.com/x.ics"}, "url"),
        ({**good, "refresh_interval_minutes": 5}, "refresh_interval_minutes"),
        ({**good, "refresh_interval_minutes": 1441}, "refresh_interval_minutes"),
        ({**good, "colour": "red"}, "colour"),
        ({"calendar_id": cal["id"]}, "url"),
        ({**good, "password": "secret"}, "username"),
    ):
        r = api.post(url, json=body)
        assert r.status_code == 400, (body, r.text)
        assert r.json()["error"]["param"] == param
    assert api.post(url, json={**good, "calendar_id": "cal_missing"}).status_code == 404

    r = api.post(url, json={**good, "label": "Team", "refresh_interval_minutes": 30})
    assert r.status_code == 201
    sub = r.json()
    assert run_subscription_worker(api) == 1
    assert sub["id"].startswith("isub_") and sub["url"].startswith("http://127.0.0.1:")
    assert (sub["label"], sub["refresh_interval_minutes"], sub["agent_id"]) == ("Team", 30, agent["id"])
    assert set(sub) >= {"status", "last_synced_at", "last_error", "event_count", "created_at", "updated_at"}
    got = api.get(f"/v1/ical-subscriptions/{sub['id']}").json()
    assert got["event_count"] == 1 and got["status"] == "active" and got["last_synced_at"]
    listing = api.get(url).json()
    assert listing["total"] == 1 and listing["data"][0]["id"] == sub["id"]

    assert api.patch(f"/v1/ical-subscriptions/{sub['id']}", json={}).status_code == 400
    r = api.patch(f"/v1/ical-subscriptions/{sub['id']}", json={"label": "Renamed", "status": "paused"})
    assert r.status_code == 200 and (r.json()["label"], r.json()["status"]) == ("Renamed", "paused")
    assert api.patch(f"/v1/ical-subscriptions/{sub['id']}", json={"status": "error"}).status_code == 400

    other_key = api.as_key(api.agent_key(other["id"]))
    assert other_key.get(f"/v1/ical-subscriptions/{sub['id']}").status_code == 404
    assert other_key.delete(f"/v1/ical-subscriptions/{sub['id']}").status_code == 404
    assert other_key.get(url).status_code == 404
    own_key = api.as_key(api.agent_key(agent["id"]))
    assert own_key.get(url).json()["total"] == 1

    assert api.delete(f"/v1/ical-subscriptions/{sub['id']}").status_code == 204
    assert api.get(f"/v1/ical-subscriptions/{sub['id']}").status_code == 404
    assert _titles(api, cal["id"]) == {}


def test_credentials_are_encrypted_used_and_never_returned(api, feed_server):
    feed_server.auth["/private.ics"] = ("ada", "s3cret-pass")
    agent, cal, sub = _setup(api, feed_server, vcalendar(A), "/private.ics", username="ada", password="s3cret-pass")
    got = api.get(f"/v1/ical-subscriptions/{sub['id']}").json()
    assert got["has_credentials"] is True and got["status"] == "active" and got["event_count"] == 1
    assert "password" not in got and "username" not in got and "s3cret" not in str(got)
    stored = api.runtime.db.read_sync(lambda tx: list(tx.conn.execute("SELECT credentials FROM ical_subscriptions")))
    assert "s3cret-pass" not in stored[0]["credentials"] and "ada" not in stored[0]["credentials"]

    r = api.patch(f"/v1/ical-subscriptions/{sub['id']}", json={"password": "wrong"})
    assert r.status_code == 200
    run_subscription_worker(api)
    got = api.get(f"/v1/ical-subscriptions/{sub['id']}").json()
    assert got["status"] == "error" and "401" in got["last_error"]
    assert set(_titles(api, cal["id"])) == {"Alpha"}  # a failed sync changes nothing


def test_sync_upserts_removes_and_uses_conditional_get(make_api, feed_server):
    clock = ManualClock(datetime(2026, 2, 1, tzinfo=UTC))
    api = make_api(clock=clock)
    agent, cal, sub = _setup(api, feed_server, vcalendar(A, B, C))
    sync = f"/v1/ical-subscriptions/{sub['id']}/sync"
    before = _titles(api, cal["id"])
    assert set(before) == {"Alpha", "Bravo", "Charlie series"}
    assert all(e["source"] == "external_ical" and e["read_only"] for e in before.values())

    # unchanged feed: a conditional GET answered 304, nothing rewritten
    clock.advance(minutes=1)
    assert api.post(sync).status_code == 202
    run_subscription_worker(api)
    assert feed_server.not_modified["/cal.ics"] == 1
    got = api.get(f"/v1/ical-subscriptions/{sub['id']}").json()
    assert got["last_synced_at"].startswith("2026-02-01T00:01") and got["event_count"] == 3

    feed_server.serve("/cal.ics", vcalendar(A2, C, D))
    clock.advance(minutes=1)
    assert api.post(sync).status_code == 202
    run_subscription_worker(api)
    after = _titles(api, cal["id"])
    assert set(after) == {"Alpha v2", "Charlie series", "Delta"}
    assert after["Alpha v2"]["id"] == before["Alpha"]["id"]  # same UID → same event, updated
    assert after["Alpha v2"]["sequence"] == 1 and after["Alpha v2"]["end_time"] == "2026-03-02T10:30:00Z"
    assert after["Charlie series"]["updated_at"] == before["Charlie series"]["updated_at"]  # untouched
    assert api.get(f"/v1/ical-subscriptions/{sub['id']}").json()["event_count"] == 3
    assert _outbox_types(api).count("ical_subscription.synced") == 2  # first import and this change

    # imported events are read-only, occurrences included, and block holds like native events
    base = f"/v1/calendars/{cal['id']}/events"
    alpha = after["Alpha v2"]["id"]
    assert api.patch(f"{base}/{alpha}", json={"title": "x"}).status_code == 403
    assert api.delete(f"{base}/{alpha}").json()["error"]["type"] == "forbidden"
    assert api.post(f"{base}/{alpha}/cancel").status_code == 403
    occurrence = f"{after['Charlie series']['id']}_20260303T120000Z"
    assert api.get(f"{base}/{occurrence}").status_code == 200
    assert api.patch(f"{base}/{occurrence}", json={"title": "x"}).status_code == 403
    hold = {"title": "Hold", "status": "hold", "start_time": "2026-03-03T12:15:00Z", "end_time": "2026-03-03T12:45:00Z"}
    mine = api.calendar(agent["id"], name="Mine")
    assert api.post(f"/v1/calendars/{mine['id']}/events", json=hold).status_code == 409

    # deleting the subscription removes what it imported
    assert api.delete(f"/v1/ical-subscriptions/{sub['id']}").status_code == 204
    assert _titles(api, cal["id"]) == {}


BAD_DATES = vcalendar(vevent("bad@test", "20261345T250000Z", "20261346T250000Z", "Broken"))
BACKWARDS = vcalendar(vevent("back@test", "20260302T100000Z", "20260302T090000Z", "Backwards"))
FAR = vcalendar(vevent("far@test", "99990101T000000Z", "99990101T010000Z", "Far"))
BAD_RULE = vcalendar(vevent("rule@test", "20260302T100000Z", "20260302T110000Z", "Rule", "RRULE:FREQ=SOMETIMES"))


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda fs: fs.serve("/cal.ics", "<!DOCTYPE html><html><body>Sign in</body></html>"), "HTML page"),
        (lambda fs: fs.serve("/cal.ics", "BEGIN:VCALENDAR\r\nthis is : not ; valid\r\n\x00"), "cannot"),
        (lambda fs: fs.serve("/cal.ics", BAD_DATES), "invalid DTSTART"),
        (lambda fs: fs.serve("/cal.ics", BACKWARDS), "DTEND is before DTSTART"),
        (lambda fs: fs.serve("/cal.ics", FAR), "outside 1900"),
        (lambda fs: fs.serve("/cal.ics", BAD_RULE), "rule@test"),
        (lambda fs: fs.stream_bytes.__setitem__("/cal.ics", 11 * 1024 * 1024), "limit"),
        (lambda fs: fs.redirects.__setitem__("/cal.ics", "/cal.ics"), "too many redirects"),
        (lambda fs: fs.bodies.pop("/cal.ics"), "404"),
    ],
)
def test_hostile_feed_records_error_and_keeps_import(api, feed_server, setup, message):
    agent, cal, sub = _setup(api, feed_server, vcalendar(A, C))
    before = _titles(api, cal["id"])
    setup(feed_server)
    assert api.post(f"/v1/ical-subscriptions/{sub['id']}/sync").status_code == 202
    run_subscription_worker(api)
    got = api.get(f"/v1/ical-subscriptions/{sub['id']}").json()
    assert got["status"] == "error"
    assert message in got["last_error"], got["last_error"]
    assert _titles(api, cal["id"]) == before
    assert got["event_count"] == 2
    assert "ical_subscription.failed" in _outbox_types(api)

    feed_server.redirects.clear()
    feed_server.stream_bytes.clear()
    feed_server.serve("/cal.ics", vcalendar(A))  # the feed recovers: so does the subscription
    api.post(f"/v1/ical-subscriptions/{sub['id']}/sync")
    run_subscription_worker(api)
    got = api.get(f"/v1/ical-subscriptions/{sub['id']}").json()
    assert (got["status"], got["last_error"], got["event_count"]) == ("active", None, 1)


def test_subscription_to_this_server_itself_is_refused(api, feed_server):
    agent, cal, sub = _setup(api, feed_server, vcalendar(A))
    own = api.calendar(agent["id"], name="Own")
    r = api.patch(f"/v1/ical-subscriptions/{sub['id']}", json={"url": own["ical_url"]})
    assert r.status_code == 400 and r.json()["error"]["param"] == "url"  # refused when saved
    assert "this Chronary server itself" in r.json()["error"]["message"]
    # a URL stored before this rule existed is refused again when the worker would fetch it
    api.runtime.db.write_sync(lambda tx: sub_store.patch(tx.conn, sub["id"], {"url": own["ical_url"], "next_sync_ts": 0}))
    run_subscription_worker(api)
    got = api.get(f"/v1/ical-subscriptions/{sub['id']}").json()
    assert got["status"] == "error" and "this Chronary server itself" in got["last_error"]
    assert set(_titles(api, cal["id"])) == {"Alpha"}


def test_worker_refreshes_on_its_interval(live_server, feed_server):
    clock = ManualClock(datetime(2026, 2, 1, tzinfo=UTC))
    server = live_server(clock=clock, workers=True)
    feed_server.serve("/cal.ics", vcalendar(A, B))
    with server.client() as http:
        agent = http.post("/v1/agents", json={"name": "Ada"}).json()
        cal = http.post(f"/v1/agents/{agent['id']}/calendars", json={"name": "W", "timezone": "UTC"}).json()
        sub = http.post(
            f"/v1/agents/{agent['id']}/ical-subscriptions",
            json={"calendar_id": cal["id"], "url": feed_server.url("/cal.ics"), "refresh_interval_minutes": 15},
        ).json()

        def titles():
            return {e["title"] for e in http.get(f"/v1/calendars/{cal['id']}/events").json()["data"]}

        wait_until(lambda: titles() == {"Alpha", "Bravo"})
        requests_after_first = feed_server.requests["/cal.ics"]
        feed_server.serve("/cal.ics", vcalendar(A2, D))
        clock.advance(minutes=14)
        time.sleep(1.5)  # more than one worker poll: not due yet, so no request is made
        assert feed_server.requests["/cal.ics"] == requests_after_first
        clock.advance(minutes=2)
        wait_until(lambda: titles() == {"Alpha v2", "Delta"})
        clock.advance(minutes=16)
        wait_until(lambda: feed_server.not_modified["/cal.ics"] >= 1)
        got = http.get(f"/v1/ical-subscriptions/{sub['id']}").json()
        assert got["status"] == "active" and got["event_count"] == 2

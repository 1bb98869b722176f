"""GET /ical/{token}.ics: RFC 5545 content that icalendar reads back exactly, and HTTP caching."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime

from chronary.clock import ManualClock
from tests.ical.conftest import feed_path, parse, vevents

TRICKY = "Standup 😀, with; semis \\ backslash\nand a second line"
LONG = ("Très long titre — " * 40)[:500]


def _by_summary(cal):
    return {str(ev["SUMMARY"]): ev for ev in vevents(cal)}


def test_feed_round_trips_through_icalendar(make_api):
    api = make_api(clock=ManualClock(datetime(2026, 1, 5, 9, tzinfo=UTC)))
    cal = api.calendar(name="Ops; team, Berlin", timezone="Europe/Berlin", default_reminders=[10, 60])
    cid = cal["id"]
    api.event(
        cid,
        "2026-02-02T09:00:00+01:00",
        "2026-02-02T09:30:00+01:00",
        title=TRICKY,
        description="Line 1\nLine 2, with comma; and semicolon\n\n🎉 done",
        location="Room 4; 2nd floor, HQ",
    )
    api.event(cid, "2026-02-03T10:00:00Z", "2026-02-03T11:00:00Z", title=LONG, reminders=[5])
    api.event(cid, "2026-02-04T10:00:00Z", "2026-02-04T11:00:00Z", title="No alarms", reminders=[])
    api.event(cid, "2026-02-10", "2026-02-12", title="Offsite", all_day=True)
    api.event(
        cid,
        "2026-02-05T10:00:00Z",
        "2026-02-05T11:00:00Z",
        title="Held",
        status="hold",
        hold_expires_at="2026-01-06T09:00:00Z",
    )
    api.event(cid, "2026-02-06T10:00:00Z", "2026-02-06T11:00:00Z", title="Maybe", status="tentative")
    api.event(cid, "2026-02-07T10:00:00Z", "2026-02-07T11:00:00Z", title="Gone", status="cancelled")

    r = api.client.get(feed_path(cal))
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/calendar; charset=utf-8"
    raw = r.content
    assert b"\n" not in raw.replace(b"\r\n", b"")  # CRLF only
    for line in raw.split(b"\r\n"):
        assert len(line) <= 75, line
        line.decode("utf-8")  # folding never splits a UTF-8 sequence

    parsed = parse(raw)
    assert str(parsed["VERSION"]) == "2.0"
    assert "Chronary" in str(parsed["PRODID"])
    assert str(parsed["CALSCALE"]) == "GREGORIAN"
    assert str(parsed["X-WR-CALNAME"]) == "Ops; team, Berlin"
    assert str(parsed["X-WR-TIMEZONE"]) == "Europe/Berlin"
    assert [str(tz["TZID"]) for tz in parsed.walk("VTIMEZONE")] == ["Europe/Berlin"]

    events = _by_summary(parsed)
    assert set(events) == {TRICKY, LONG, "No alarms", "Offsite", "Held", "Maybe"}  # cancelled omitted
    tricky = events[TRICKY]
    assert str(tricky["DESCRIPTION"]) == "Line 1\nLine 2, with comma; and semicolon\n\n🎉 done"
    assert str(tricky["LOCATION"]) == "Room 4; 2nd floor, HQ"
    assert tricky.decoded("DTSTART") == datetime(2026, 2, 2, 8, tzinfo=UTC)
    assert str(tricky["DTSTART"].params["TZID"]) == "Europe/Berlin"
    assert [a.decoded("TRIGGER") for a in tricky.walk("VALARM")] == [timedelta(minutes=-10), timedelta(minutes=-60)]
    assert all(str(a["ACTION"]) == "DISPLAY" for a in tricky.walk("VALARM"))
    assert [a.decoded("TRIGGER") for a in events[LONG].walk("VALARM")] == [timedelta(minutes=-5)]
    assert list(events["No alarms"].walk("VALARM")) == []
    assert events["Offsite"].decoded("DTSTART") == date(2026, 2, 10)
    assert events["Offsite"].decoded("DTEND") == date(2026, 2, 12)
    assert str(events["Held"]["STATUS"]) == "TENTATIVE"
    assert str(events["Held"]["X-CHRONARY-HOLD"]) == "TRUE"
    assert str(events["Held"]["TRANSP"]) == "OPAQUE"
    assert str(events["Maybe"]["STATUS"]) == "TENTATIVE" and "X-CHRONARY-HOLD" not in events["Maybe"]
    assert str(events[TRICKY]["STATUS"]) == "CONFIRMED"
    for ev in events.values():
        for prop in ("UID", "DTSTAMP", "SEQUENCE", "LAST-MODIFIED", "CREATED"):
            assert prop in ev, prop


def test_edits_change_etag_and_sequence_and_conditional_get(make_api):
    clock = ManualClock(datetime(2026, 1, 5, 9, tzinfo=UTC))
    api = make_api(clock=clock)
    cal = api.calendar(timezone="UTC")
    ev = api.event(cal["id"], "2026-02-02T09:00:00Z", "2026-02-02T10:00:00Z", title="Plan")
    path = feed_path(cal)

    first = api.client.get(path)
    etag = first.headers["etag"]
    assert etag.startswith('"') and not etag.startswith("W/")
    assert first.headers["cache-control"] == "max-age=300"
    assert first.headers["last-modified"] == format_datetime(datetime(2026, 1, 5, 9, tzinfo=UTC), usegmt=True)
    uid = str(vevents(parse(first.content))[0]["UID"])
    assert uid == ev["ical_uid"]

    again = api.client.get(path, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    since = api.client.get(path, headers={"If-Modified-Since": first.headers["last-modified"]})
    assert since.status_code == 304

    clock.advance(minutes=5)
    r = api.patch(f"/v1/calendars/{cal['id']}/events/{ev['id']}", json={"title": "Plan v2"})
    assert r.status_code == 200
    changed = api.client.get(path, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    item = vevents(parse(changed.content))[0]
    assert str(item["UID"]) == uid and str(item["SUMMARY"]) == "Plan v2"
    assert int(item["SEQUENCE"]) == 1
    assert item.decoded("LAST-MODIFIED") == datetime(2026, 1, 5, 9, 5, tzinfo=UTC)
    assert api.client.get(path, headers={"If-Modified-Since": first.headers["last-modified"]}).status_code == 200

    # deleting an event also moves ETag and Last-Modified
    clock.advance(minutes=5)
    assert api.delete(f"/v1/calendars/{cal['id']}/events/{ev['id']}").status_code == 204
    after_delete = api.client.get(path, headers={"If-None-Match": changed.headers["etag"]})
    assert after_delete.status_code == 200 and vevents(parse(after_delete.content)) == []
    assert after_delete.headers["last-modified"] == format_datetime(datetime(2026, 1, 5, 9, 10, tzinfo=UTC), usegmt=True)

    # a calendar change (name) is in the feed too
    api.patch(f"/v1/calendars/{cal['id']}", json={"name": "Renamed"})
    assert str(parse(api.client.get(path).content)["X-WR-CALNAME"]) == "Renamed"


def test_unknown_rotated_and_deleted_feeds_answer_404(api):
    agent = api.agent()
    cal = api.calendar(agent["id"])
    path = feed_path(cal)
    assert api.client.get(path).status_code == 200
    assert api.client.get(path[:-4]).status_code == 404  # no .ics
    assert api.client.get(path[:-5] + "x.ics").status_code == 404
    assert api.client.get("/ical/short.ics").status_code == 404
    body = api.client.get("/ical/" + "A" * 32 + ".ics").json()
    assert body["error"]["type"] == "not_found"

    agent_api = api.as_key(api.agent_key(agent["id"]))
    rotated = agent_api.post(f"/v1/calendars/{cal['id']}/rotate-feed")
    assert rotated.status_code == 200
    new_path = feed_path(rotated.json())
    assert new_path != path
    assert api.client.get(path).status_code == 404
    assert api.client.get(new_path).status_code == 200
    other = api.as_key(api.agent_key(api.agent("Other")["id"]))
    assert other.post(f"/v1/calendars/{cal['id']}/rotate-feed").status_code == 404
    assert api.post("/v1/calendars/cal_nope/rotate-feed").status_code == 404

    assert api.delete(f"/v1/calendars/{cal['id']}").status_code == 204
    assert api.client.get(new_path).status_code == 404


def test_rate_limit_per_ip(make_api):
    api = make_api(feed_rate_limit_per_minute=3)
    path = feed_path(api.calendar())
    assert [api.client.get(path).status_code for _ in range(3)] == [200, 200, 200]
    r = api.client.get(path)
    assert r.status_code == 429
    assert int(r.headers["retry-after"]) >= 1
    assert r.json()["error"]["type"] == "rate_limited"


def test_feed_window_keeps_90_past_days_and_all_future(make_api):
    api = make_api(clock=ManualClock(datetime(2026, 6, 1, tzinfo=UTC)))
    cid = (cal := api.calendar())["id"]
    api.event(cid, "2026-02-01T09:00:00Z", "2026-02-01T10:00:00Z", title="Too old")
    api.event(cid, "2026-03-15T09:00:00Z", "2026-03-15T10:00:00Z", title="Recent past")
    api.event(cid, "2030-01-01T09:00:00Z", "2030-01-01T10:00:00Z", title="Far future")
    api.event(cid, "2025-01-06T09:00:00Z", "2025-01-06T10:00:00Z", title="Old series", recurrence=["RRULE:FREQ=WEEKLY"])
    titles = set(_by_summary(parse(api.client.get(feed_path(cal)).content)))
    assert titles == {"Recent past", "Far future", "Old series"}


def test_feed_past_days_is_configurable(make_api):
    api = make_api(clock=ManualClock(datetime(2026, 6, 1, tzinfo=UTC)), feed_past_days=7)
    cid = (cal := api.calendar())["id"]
    api.event(cid, "2026-05-20T09:00:00Z", "2026-05-20T10:00:00Z", title="Twelve days ago")
    api.event(cid, "2026-05-29T09:00:00Z", "2026-05-29T10:00:00Z", title="Three days ago")
    assert set(_by_summary(parse(api.client.get(feed_path(cal)).content))) == {"Three days ago"}

"""Recurring events: windowed expansion, DST, single-occurrence edits/cancels/deletes and their feed form."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import recurring_ical_events

from chronary.clock import ManualClock
from tests.ical.conftest import feed_path, parse, vevents


def _window(api, url, after, before, **params):
    r = api.get(url, params={"start_after": after, "start_before": before, "limit": 200, **params})
    assert r.status_code == 200, r.text
    return r.json()


def _local_times(items, zone):
    return [
        datetime.fromisoformat(e["start_time"].replace("Z", "+00:00")).astimezone(ZoneInfo(zone)).strftime("%m-%d %H:%M")
        for e in items
    ]


def test_weekly_0900_stays_at_0900_local_across_dst(make_api):
    api = make_api(clock=ManualClock(datetime(2026, 1, 5, tzinfo=UTC)))
    for zone, start, dst_day in (
        ("Europe/Berlin", "2026-03-16T09:00:00+01:00", "03-30"),
        ("America/New_York", "2026-03-02T09:00:00-05:00", "03-09"),
    ):
        cal = api.calendar(name=zone, timezone=zone)
        series = api.event(
            cal["id"], start, start.replace("T09:00", "T09:45"), title="Weekly", recurrence=["RRULE:FREQ=WEEKLY;COUNT=4"]
        )
        items = _window(api, f"/v1/calendars/{cal['id']}/events", "2026-02-01T00:00:00Z", "2026-05-01T00:00:00Z")["data"]
        assert len(items) == 4
        assert {t[-5:] for t in _local_times(items, zone)} == {"09:00"}
        utc_hours = [e["start_time"][11:13] for e in items]
        assert len(set(utc_hours)) == 2  # the UTC instant moves by an hour at the switch
        assert dst_day in _local_times(items, zone)[1] or dst_day in _local_times(items, zone)[2]
        assert all(e["recurring_event_id"] == series["id"] for e in items)
        assert all(e["id"].startswith(series["id"] + "_") for e in items)
        # a calendar app expanding our feed puts them at the same instants
        parsed = parse(api.client.get(feed_path(cal)).content)
        expanded = recurring_ical_events.of(parsed).between(datetime(2026, 2, 1), datetime(2026, 5, 1))
        assert sorted(ev.decoded("DTSTART").astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") for ev in expanded) == [
            e["start_time"] for e in items
        ]


def test_fall_back_dst_in_berlin(make_api):
    api = make_api(clock=ManualClock(datetime(2026, 9, 1, tzinfo=UTC)))
    cal = api.calendar(timezone="Europe/Berlin")
    api.event(cal["id"], "2026-10-19T09:00:00+02:00", "2026-10-19T10:00:00+02:00", recurrence=["RRULE:FREQ=WEEKLY;COUNT=3"])
    items = _window(api, f"/v1/calendars/{cal['id']}/events", "2026-10-01T00:00:00Z", "2026-12-01T00:00:00Z")["data"]
    assert [e["start_time"] for e in items] == ["2026-10-19T07:00:00Z", "2026-10-26T08:00:00Z", "2026-11-02T08:00:00Z"]


def test_list_without_window_shows_series_once(api):
    cal = api.calendar()
    api.event(cal["id"], "2026-03-02T09:00:00Z", "2026-03-02T10:00:00Z", recurrence=["RRULE:FREQ=DAILY"])
    r = api.get(f"/v1/calendars/{cal['id']}/events")
    assert r.json()["total"] == 1 and r.json()["data"][0]["recurrence"] == ["RRULE:FREQ=DAILY"]
    # only one side of the window: no expansion either
    r = api.get(f"/v1/calendars/{cal['id']}/events", params={"start_after": "2026-01-01T00:00:00Z"})
    assert r.json()["total"] == 1
    # both sides: expanded, paged
    page = _window(api, f"/v1/calendars/{cal['id']}/events", "2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z")
    assert page["total"] == 30
    r = api.get(
        f"/v1/calendars/{cal['id']}/events",
        params={"start_after": "2026-03-01T00:00:00Z", "start_before": "2026-04-01T00:00:00Z", "limit": 5, "offset": 10},
    )
    assert [e["start_time"][:10] for e in r.json()["data"]] == [f"2026-03-{d}" for d in (12, 13, 14, 15, 16)]


def test_occurrence_get_patch_cancel_delete_and_feed(make_api):
    api = make_api(clock=ManualClock(datetime(2026, 1, 5, tzinfo=UTC)))
    agent = api.agent()
    cal = api.calendar(agent["id"], timezone="Europe/Berlin")
    base = f"/v1/calendars/{cal['id']}/events"
    series = api.event(
        cal["id"],
        "2026-03-02T09:00:00+01:00",
        "2026-03-02T09:30:00+01:00",
        title="Sync",
        recurrence=["RRULE:FREQ=WEEKLY;COUNT=5"],
    )
    items = _window(api, base, "2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z")["data"]
    ids = [e["id"] for e in items]
    assert len(ids) == 5

    got = api.get(f"{base}/{ids[1]}")
    assert got.status_code == 200
    assert got.json()["recurring_event_id"] == series["id"] and got.json()["start_time"] == "2026-03-09T08:00:00Z"
    assert api.get(f"{base}/{series['id']}_20260310T080000Z").status_code == 404  # not an occurrence
    assert api.get(f"{base}/{series['id']}_garbage").status_code == 404

    moved = api.patch(
        f"{base}/{ids[1]}",
        json={"title": "Sync (moved)", "start_time": "2026-03-09T11:00:00+01:00", "end_time": "2026-03-09T11:30:00+01:00"},
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["id"] == ids[1] and moved.json()["recurring_event_id"] == series["id"]
    assert api.patch(f"{base}/{ids[1]}", json={"title": "Sync (moved again)"}).json()["sequence"] == 2
    assert api.patch(f"{base}/{ids[2]}", json={"recurrence": ["RRULE:FREQ=DAILY"]}).status_code == 400
    assert api.post(f"{base}/{ids[2]}/cancel").json()["status"] == "cancelled"
    assert api.delete(f"{base}/{ids[3]}").status_code == 204

    after = _window(api, base, "2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z")["data"]
    assert [(e["id"], e["status"], e["start_time"]) for e in after] == [
        (ids[0], "confirmed", "2026-03-02T08:00:00Z"),
        (ids[1], "confirmed", "2026-03-09T10:00:00Z"),
        (ids[2], "cancelled", "2026-03-16T08:00:00Z"),  # cancelled: still listed, says so
        (ids[4], "confirmed", "2026-03-30T07:00:00Z"),  # deleted ids[3]: gone
    ]
    assert api.get(f"{base}/{ids[3]}").status_code == 404
    confirmed = _window(api, base, "2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z", status="confirmed")
    assert confirmed["total"] == 3
    agent_view = _window(api, f"/v1/agents/{agent['id']}/events", "2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z")
    assert [e["id"] for e in agent_view["data"]] == [ids[0], ids[1], ids[2], ids[4]]

    parsed = parse(api.client.get(feed_path(cal)).content)
    items_in_feed = vevents(parsed)
    master = next(ev for ev in items_in_feed if "RRULE" in ev)
    override = next(ev for ev in items_in_feed if "RECURRENCE-ID" in ev)
    assert str(override["UID"]) == str(master["UID"]) == series["ical_uid"]
    assert override.decoded("RECURRENCE-ID") == datetime(2026, 3, 9, 8, tzinfo=UTC)
    assert str(override["SUMMARY"]) == "Sync (moved again)"
    exdates = sorted(
        d.dt.astimezone(UTC)
        for prop in (master["EXDATE"] if isinstance(master["EXDATE"], list) else [master["EXDATE"]])
        for d in prop.dts
    )
    assert exdates == [datetime(2026, 3, 16, 8, tzinfo=UTC), datetime(2026, 3, 23, 8, tzinfo=UTC)]
    expanded = recurring_ical_events.of(parsed).between(datetime(2026, 3, 1), datetime(2026, 4, 1))
    assert sorted((ev.decoded("DTSTART").astimezone(UTC), str(ev["SUMMARY"])) for ev in expanded) == [
        (datetime(2026, 3, 2, 8, tzinfo=UTC), "Sync"),
        (datetime(2026, 3, 9, 10, tzinfo=UTC), "Sync (moved again)"),
        (datetime(2026, 3, 30, 7, tzinfo=UTC), "Sync"),
    ]

    # deleting the series deletes its exceptions
    assert api.delete(f"{base}/{series['id']}").status_code == 204
    assert api.get(f"{base}/{ids[1]}").status_code == 404
    assert api.get(base).json()["total"] == 0
    assert vevents(parse(api.client.get(feed_path(cal)).content)) == []


def test_holds_conflict_with_occurrences_of_confirmed_series(api):
    agent = api.agent()
    cal = api.calendar(agent["id"])
    base = f"/v1/calendars/{cal['id']}/events"
    series = api.event(cal["id"], "2026-03-02T10:00:00Z", "2026-03-02T11:00:00Z", recurrence=["RRULE:FREQ=WEEKLY"])
    hold = {"title": "Hold", "status": "hold", "start_time": "2026-04-13T10:30:00Z", "end_time": "2026-04-13T11:30:00Z"}
    r = api.post(base, json=hold)
    assert r.status_code == 409 and r.json()["error"]["type"] == "conflict"
    off_day = {**hold, "start_time": "2026-04-14T10:30:00Z", "end_time": "2026-04-14T11:30:00Z"}
    assert api.post(base, json=off_day).status_code == 201
    assert api.delete(f"{base}/{series['id']}_20260413T100000Z").status_code == 204
    assert api.post(base, json=hold).status_code == 201

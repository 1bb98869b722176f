"""Deleting one occurrence of a series removes it (an EXDATE on the series); cancelling one keeps
it listed with status cancelled (issue 11, item 4)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import icalendar
import recurring_ical_events

from tests.conftest import Api
from tests.ical.conftest import feed_path

WINDOW = {"start_after": "2027-02-01T00:00:00Z", "start_before": "2027-05-01T00:00:00Z", "limit": 200}


def _series(api: Api, **fields: Any) -> tuple[dict[str, Any], dict[str, Any], str]:
    agent = api.agent()
    cal = api.calendar(agent["id"], timezone="Europe/Berlin")
    series = api.event(
        cal["id"],
        "2027-03-01T09:00:00+01:00",
        "2027-03-01T10:00:00+01:00",
        title="Weekly",
        recurrence=["RRULE:FREQ=WEEKLY;COUNT=5"],
        **fields,
    )
    return agent, series, f"/v1/calendars/{cal['id']}/events"


def _window(api: Api, url: str) -> list[dict[str, Any]]:
    r = api.get(url, params=WINDOW)
    assert r.status_code == 200, r.text
    return r.json()["data"]


def _outbox(api: Api) -> list[tuple[str, str, str]]:
    rows = api.runtime.db.read_sync(
        lambda tx: list(tx.conn.execute("SELECT type, payload FROM outbox WHERE type LIKE 'event.%' ORDER BY seq"))
    )
    out = []
    for r in rows:
        obj = json.loads(r["payload"])["data"]["object"]
        out.append((r["type"], obj["id"], obj["status"]))
    return out


def _feed(api: Api, calendar_id: str) -> icalendar.Calendar:
    cal = api.get(f"/v1/calendars/{calendar_id}").json()
    r = api.client.get(feed_path(cal))
    assert r.status_code == 200
    return icalendar.Calendar.from_ical(r.content)


def test_deleted_occurrence_is_gone_and_cancelled_ones_stay_listed(api: Api) -> None:
    api.receive_webhooks()  # changes are logged with the payloads an endpoint gets
    agent, series, base = _series(api)
    ids = [e["id"] for e in _window(api, base)]
    assert len(ids) == 5
    assert api.delete(f"{base}/{ids[1]}").status_code == 204
    assert api.post(f"{base}/{ids[2]}/cancel").json()["status"] == "cancelled"
    r = api.patch(f"{base}/{ids[3]}", json={"status": "cancelled"})
    assert r.status_code == 200 and r.json()["status"] == "cancelled"

    listed = [(e["id"], e["status"]) for e in _window(api, base)]
    assert listed == [(ids[0], "confirmed"), (ids[2], "cancelled"), (ids[3], "cancelled"), (ids[4], "confirmed")]
    agent_view = _window(api, f"/v1/agents/{agent['id']}/events")
    assert [e["id"] for e in agent_view] == [ids[0], ids[2], ids[3], ids[4]]
    assert api.get(f"{base}/{ids[1]}").status_code == 404
    assert api.get(f"{base}/{ids[2]}").json()["status"] == "cancelled"
    assert api.delete(f"{base}/{ids[1]}").status_code == 404  # already gone
    assert api.patch(f"{base}/{ids[1]}", json={"title": "back?"}).status_code == 404
    # stored as an EXDATE of the series, the form a sync pull gives a remote EXDATE
    got = api.get(f"{base}/{series['id']}").json()
    assert got["recurrence"] == ["RRULE:FREQ=WEEKLY;COUNT=5", "EXDATE:20270308T080000Z"]
    # webhooks: event.deleted for the deleted occurrence, event.cancelled for the cancelled ones
    sent = _outbox(api)
    assert ("event.deleted", ids[1], "confirmed") in sent
    assert ("event.cancelled", ids[2], "cancelled") in sent and ("event.cancelled", ids[3], "cancelled") in sent
    assert not [s for s in sent if s[0] == "event.updated"]
    # availability: the deleted slot is free
    r = api.get(
        f"/v1/agents/{agent['id']}/availability", params={"start": "2027-03-01T00:00:00Z", "end": "2027-03-14T00:00:00Z"}
    )
    assert r.status_code == 200, r.text
    assert [b["event_id"] for b in r.json()["busy"]] == [ids[0]]
    # the feed: EXDATE for the deleted occurrence (cancelled ones too: feeds omit cancelled events)
    feed = _feed(api, got["calendar_id"])
    (master,) = [c for c in feed.walk("VEVENT") if "RRULE" in c]
    exdates = sorted(
        d.dt.astimezone(UTC)
        for prop in (master["EXDATE"] if isinstance(master["EXDATE"], list) else [master["EXDATE"]])
        for d in prop.dts
    )
    assert datetime(2027, 3, 8, 8, tzinfo=UTC) in exdates
    shown = recurring_ical_events.of(feed).between(datetime(2027, 2, 1), datetime(2027, 5, 1))
    assert sorted(ev.decoded("DTSTART").astimezone(UTC) for ev in shown) == [
        datetime(2027, 3, 1, 8, tzinfo=UTC),
        datetime(2027, 3, 29, 7, tzinfo=UTC),
    ]


def test_deleting_a_moved_occurrence_removes_it_at_both_times(api: Api) -> None:
    api.receive_webhooks()  # changes are logged with the payloads an endpoint gets
    _, series, base = _series(api)
    ids = [e["id"] for e in _window(api, base)]
    moved = api.patch(
        f"{base}/{ids[2]}", json={"start_time": "2027-03-16T14:00:00+01:00", "end_time": "2027-03-16T15:00:00+01:00"}
    )
    assert moved.status_code == 200, moved.text
    assert api.delete(f"{base}/{ids[2]}").status_code == 204
    assert [e["id"] for e in _window(api, base)] == [ids[0], ids[1], ids[3], ids[4]]
    assert api.get(f"{base}/{ids[2]}").status_code == 404
    stored = api.runtime.db.read_sync(
        lambda tx: list(tx.conn.execute("SELECT id FROM events WHERE recurring_event_id = ?", (series["id"],)))
    )
    assert stored == []
    assert ("event.deleted", ids[2], "confirmed") in _outbox(api)
    # deleting another occurrence adds to the same EXDATE line
    assert api.delete(f"{base}/{ids[4]}").status_code == 204
    got = api.get(f"{base}/{series['id']}").json()
    assert got["recurrence"] == ["RRULE:FREQ=WEEKLY;COUNT=5", "EXDATE:20270315T080000Z,20270329T070000Z"]


def test_deleting_an_occurrence_of_an_all_day_series(api: Api) -> None:
    cal = api.calendar(timezone="Europe/Berlin")
    base = f"/v1/calendars/{cal['id']}/events"
    series = api.event(
        cal["id"], "2027-03-01", "2027-03-02", title="Daily", all_day=True, recurrence=["RRULE:FREQ=DAILY;COUNT=3"]
    )
    ids = [e["id"] for e in _window(api, base)]
    assert len(ids) == 3
    assert api.delete(f"{base}/{ids[1]}").status_code == 204
    listed = _window(api, base)
    assert [e["start_date"] for e in listed] == ["2027-03-01", "2027-03-03"]
    assert api.get(f"{base}/{ids[1]}").status_code == 404
    assert api.get(f"{base}/{series['id']}").json()["recurrence"] == [
        "RRULE:FREQ=DAILY;COUNT=3",
        "EXDATE;VALUE=DATE:20270302",
    ]
    (master,) = _feed(api, cal["id"]).walk("VEVENT")
    assert [d.dt for d in master["EXDATE"].dts] == [datetime(2027, 3, 2).date()]

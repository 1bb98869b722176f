"""One deleted occurrence reaches CalDAV as an EXDATE (not a STATUS:CANCELLED override, which
servers and phones keep showing), and an EXDATE made on the phone pulls into the same
deleted state (issue 11, item 4). Against a real Radicale."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import icalendar

from tests.conftest import Api
from tests.sync.conftest import Radicale, sync
from tests.sync.test_sync_roundtrip import _remote, _setup

BERLIN = ZoneInfo("Europe/Berlin")
WINDOW = (datetime(2027, 2, 1, tzinfo=UTC), datetime(2027, 5, 1, tzinfo=UTC))


def _z(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _listed(api: Api, cal_id: str) -> dict[str, str]:
    r = api.get(
        f"/v1/calendars/{cal_id}/events",
        params={"start_after": _z(WINDOW[0]), "start_before": _z(WINDOW[1]), "limit": 200},
    )
    assert r.status_code == 200, r.text
    return {e["start_time"]: e["status"] for e in r.json()["data"]}


def _server(cal: Any, uid: str) -> dict[str, str]:
    """Radicale's own CALDAV:expand: start → STATUS of each instance it still yields."""
    found = cal.search(start=WINDOW[0], end=WINDOW[1], event=True, expand=True, server_expand=True)
    comps = [c for obj in found for c in icalendar.Calendar.from_ical(obj.data).walk("VEVENT") if str(c["UID"]) == uid]
    return {_z(c.decoded("DTSTART")): str(c.get("STATUS", "CONFIRMED")).lower() for c in comps}


def _exdates(comp: Any) -> list[datetime]:
    props = comp.get("EXDATE")
    return sorted(d.dt for p in (props if isinstance(props, list) else [props] if props else []) for d in p.dts)


def _series(api: Api, cal_id: str) -> dict[str, Any]:
    return api.event(
        cal_id,
        "2027-03-01T09:00:00+01:00",
        "2027-03-01T09:30:00+01:00",
        title="Standup",
        recurrence=["RRULE:FREQ=WEEKLY;COUNT=6"],
    )


def test_deleted_occurrence_goes_up_as_an_exdate_and_a_cancelled_one_as_cancelled(api: Api, radicale: Radicale) -> None:
    cal, con, mapped, _ = _setup(api, radicale, tz="Europe/Berlin")
    cal_id = mapped["calendar_id"]
    base = f"/v1/calendars/{cal_id}/events"
    series = _series(api, cal_id)
    moved = api.patch(
        f"{base}/{series['id']}_20270322T080000Z",
        json={"start_time": "2027-03-23T09:00:00+01:00", "end_time": "2027-03-23T09:30:00+01:00"},
    )
    assert moved.status_code == 200, moved.text
    sync(api, con["id"])
    assert any("RECURRENCE-ID" in c for c in icalendar.Calendar.from_ical(_remote(cal)[series["ical_uid"]].data).walk())

    assert api.delete(f"{base}/{series['id']}_20270308T080000Z").status_code == 204  # generated occurrence
    assert api.delete(f"{base}/{series['id']}_20270322T080000Z").status_code == 204  # the moved one
    assert api.post(f"{base}/{series['id']}_20270315T080000Z/cancel").status_code == 200
    summary = sync(api, con["id"])
    assert summary and summary["pushed"] == 1 and summary["error"] is None, summary

    stored = icalendar.Calendar.from_ical(_remote(cal)[series["ical_uid"]].data)
    master = next(c for c in stored.walk("VEVENT") if "RECURRENCE-ID" not in c)
    overrides = [c for c in stored.walk("VEVENT") if "RECURRENCE-ID" in c]
    assert _exdates(master) == [datetime(2027, 3, 8, 9, tzinfo=BERLIN), datetime(2027, 3, 22, 9, tzinfo=BERLIN)]
    # the only override left is the cancelled occurrence: cancelled stays cancelled, deleted is no override
    assert [(c.decoded("RECURRENCE-ID"), str(c["STATUS"])) for c in overrides] == [
        (datetime(2027, 3, 15, 9, tzinfo=BERLIN), "CANCELLED")
    ]
    listed = _listed(api, cal_id)
    assert listed == {
        "2027-03-01T08:00:00Z": "confirmed",
        "2027-03-15T08:00:00Z": "cancelled",
        "2027-03-29T07:00:00Z": "confirmed",
        "2027-04-05T07:00:00Z": "confirmed",
    }
    server = _server(cal, series["ical_uid"])
    assert "2027-03-08T08:00:00Z" not in server and "2027-03-23T08:00:00Z" not in server
    assert server == listed  # the server yields what the API lists, the cancelled one as cancelled
    summary = sync(api, con["id"])
    assert summary and (summary["pulled"], summary["pushed"]) == (0, 0), summary


def test_an_exdate_made_on_the_phone_pulls_into_the_deleted_state(api: Api, radicale: Radicale) -> None:
    api.receive_webhooks()  # changes are logged with the payloads an endpoint gets
    cal, con, mapped, _ = _setup(api, radicale, tz="Europe/Berlin")
    cal_id = mapped["calendar_id"]
    base = f"/v1/calendars/{cal_id}/events"
    series = _series(api, cal_id)
    sync(api, con["id"])
    # the phone deletes the 15 March occurrence: an EXDATE in the series' own zone
    obj = _remote(cal)[series["ical_uid"]]
    obj.icalendar_component.add("EXDATE", datetime(2027, 3, 15, 9, tzinfo=BERLIN))
    obj.save()
    summary = sync(api, con["id"])
    assert summary and summary["pulled"] == 1, summary

    occ = f"{series['id']}_20270315T080000Z"
    assert "2027-03-15T08:00:00Z" not in _listed(api, cal_id)
    assert api.get(f"{base}/{occ}").status_code == 404
    got = api.get(f"{base}/{series['id']}").json()
    assert got["recurrence"] == ["RRULE:FREQ=WEEKLY;COUNT=6", "EXDATE:20270315T080000Z"]
    sent = api.runtime.db.read_sync(
        lambda tx: [
            (r["type"], json.loads(r["payload"])["data"]["object"]["id"])
            for r in tx.conn.execute("SELECT type, payload FROM outbox WHERE type LIKE 'event.%' ORDER BY seq")
        ]
    )
    assert ("event.deleted", occ) in sent  # as a local delete of the occurrence announces it

    # the same state as a local delete: another one deleted here joins that EXDATE
    assert api.delete(f"{base}/{series['id']}_20270329T070000Z").status_code == 204
    got = api.get(f"{base}/{series['id']}").json()
    assert got["recurrence"] == ["RRULE:FREQ=WEEKLY;COUNT=6", "EXDATE:20270315T080000Z,20270329T070000Z"]
    summary = sync(api, con["id"])
    assert summary and summary["pushed"] == 1, summary
    (master,) = icalendar.Calendar.from_ical(_remote(cal)[series["ical_uid"]].data).walk("VEVENT")
    assert _exdates(master) == [datetime(2027, 3, 15, 9, tzinfo=BERLIN), datetime(2027, 3, 29, 9, tzinfo=BERLIN)]
    assert set(_server(cal, series["ical_uid"])) == set(_listed(api, cal_id))

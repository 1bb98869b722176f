"""TRANSP through CalDAV sync against a real Radicale: a phone's free-time marker arrives
transparent (and stops blocking), a change of TRANSP on either side reaches the other, and
the rest of a phone's event survives Chronary writing TRANSP."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from tests.conftest import Api
from tests.sync import codec as convert
from tests.sync.conftest import Radicale, connect, enable, events, sync, vevent

DAY = ("2026-01-05T00:00:00Z", "2026-01-06T00:00:00Z")


def _setup(api: Api, radicale: Radicale) -> tuple[Any, dict[str, Any], str, str]:
    user = radicale.new_user()
    cal = radicale.make_calendar(user)
    agent = api.agent()
    con = connect(api, agent["id"], user, radicale.url)
    mapped = enable(api, con, f"/{user}/work/")
    return cal, con, mapped["calendar_id"], agent["id"]


def _remote(cal: Any) -> dict[str, Any]:
    return {str(e.icalendar_component["UID"]): e for e in cal.get_events()}


def _busy(api: Api, agent_id: str) -> list[str | None]:
    r = api.get(f"/v1/agents/{agent_id}/availability", params={"start": DAY[0], "end": DAY[1]})
    assert r.status_code == 200, r.text
    return [b["event_id"] for b in r.json()["busy"]]


def test_transp_round_trips_both_ways(api: Api, radicale: Radicale) -> None:
    cal, con, cal_id, agent_id = _setup(api, radicale)
    cal.save_event(
        vevent(
            "phone-wfh",
            "Working from home",
            "20260105T080000Z",
            "20260105T170000Z",
            "TRANSP:TRANSPARENT\r\nCATEGORIES:Personal\r\nX-PHONE-KEEP:yes\r\n",
        )
    )
    cal.save_event(vevent("phone-busy", "Dentist", "20260105T090000Z", "20260105T100000Z", "TRANSP:OPAQUE\r\n"))
    summary = sync(api, con["id"])
    assert summary and summary["pulled"] == 2 and summary["error"] is None, summary
    local = {e["ical_uid"]: e for e in events(api, cal_id)}
    assert local["phone-wfh"]["transparency"] == "transparent"
    assert local["phone-busy"]["transparency"] == "opaque"
    assert _busy(api, agent_id) == [local["phone-busy"]["id"]]

    # phone flips the marker to OPAQUE: it blocks after the next sync
    remote = _remote(cal)
    comp = remote["phone-wfh"].icalendar_component
    comp["TRANSP"] = "OPAQUE"
    remote["phone-wfh"].save()
    assert sync(api, con["id"])["pulled"] == 1  # type: ignore[index]
    wfh = api.get(f"/v1/calendars/{cal_id}/events/{local['phone-wfh']['id']}").json()
    assert wfh["transparency"] == "opaque"
    assert _busy(api, agent_id) == [None]  # 08:00–17:00 now merges with the dentist

    # Chronary flips it back and creates a transparent event of its own: both pushed as TRANSPARENT
    r = api.patch(f"/v1/calendars/{cal_id}/events/{wfh['id']}", json={"transparency": "transparent"})
    assert r.status_code == 200, r.text
    holiday = api.event(cal_id, "2026-01-06", "2026-01-07", title="Holiday", all_day=True, transparency="transparent")
    plain = api.event(cal_id, "2026-01-07T09:00:00Z", "2026-01-07T10:00:00Z", title="Plain")
    summary = sync(api, con["id"])
    assert summary and summary["pushed"] == 3, summary
    remote = _remote(cal)
    transp = {uid: str(ev.icalendar_component.get("TRANSP")) for uid, ev in remote.items()}
    assert transp == {
        "phone-wfh": "TRANSPARENT",
        "phone-busy": "OPAQUE",
        holiday["ical_uid"]: "TRANSPARENT",
        plain["ical_uid"]: "OPAQUE",
    }
    kept = remote["phone-wfh"].icalendar_component
    assert str(kept["X-PHONE-KEEP"]) == "yes" and "CATEGORIES" in kept  # only TRANSP was rewritten
    assert str(kept["SUMMARY"]) == "Working from home"
    # nothing echoes back, and the pushed value stays
    summary = sync(api, con["id"])
    assert summary and (summary["pulled"], summary["pushed"], summary["conflicts"]) == (0, 0, 0)
    local = {e["ical_uid"]: e for e in events(api, cal_id)}
    assert (
        local["phone-wfh"]["transparency"] == "transparent" and local[holiday["ical_uid"]]["transparency"] == "transparent"
    )
    assert _busy(api, agent_id) == [local["phone-busy"]["id"]]


def test_a_synced_hold_stays_opaque_when_the_phone_marks_it_free(api: Api, radicale: Radicale) -> None:
    cal, con, cal_id, agent_id = _setup(api, radicale)
    hold = api.event(cal_id, "2026-01-05T09:00:00Z", "2026-01-05T10:00:00Z", title="Hold", status="hold")
    assert sync(api, con["id"])["pushed"] == 1  # type: ignore[index]
    ev = _remote(cal)[hold["ical_uid"]]
    assert str(ev.icalendar_component["TRANSP"]) == "OPAQUE"
    ev.icalendar_component["TRANSP"] = "TRANSPARENT"
    ev.icalendar_component["SUMMARY"] = "Hold (renamed on the phone)"
    ev.save()
    assert sync(api, con["id"])["pulled"] == 1  # type: ignore[index]
    after = api.get(f"/v1/calendars/{cal_id}/events/{hold['id']}").json()
    assert after["title"] == "Hold (renamed on the phone)" and after["status"] == "hold"
    assert after["transparency"] == "opaque"
    assert _busy(api, agent_id) == [hold["id"]]


def test_convert_reads_and_writes_transp_without_a_server() -> None:
    tz = ZoneInfo("UTC")
    body = vevent("u1", "Free", extra="TRANSP:TRANSPARENT\r\n")
    res = convert.parse(body, tz)
    assert res is not None and res.master is not None and res.master.transparency == "transparent"
    assert convert.parse(vevent("u2", "Busy"), tz).master.transparency == "opaque"  # type: ignore[union-attr]
    row = {
        "ical_uid": "u1",
        "title": "Free",
        "description": None,
        "location": None,
        "start_ts": 1_767_603_600,
        "end_ts": 1_767_607_200,
        "all_day": False,
        "status": "confirmed",
        "recurrence": None,
        "recurring_event_id": None,
        "attendees": [],
        "reminders": None,
        "sequence": 0,
        "transparency": "opaque",
    }
    out = convert.build(row, [], tz, body, datetime(2026, 1, 1, tzinfo=UTC))
    assert "TRANSP:OPAQUE" in out and "TRANSPARENT" not in out
    fresh = convert.build({**row, "transparency": "transparent"}, [], tz, None, datetime(2026, 1, 1, tzinfo=UTC))
    assert "TRANSP:TRANSPARENT" in fresh

"""The one VEVENT codec's rules (chronary/ical/decode.py) on one shared set of fixture VEVENTs,
imported through both paths: an iCal subscription (a feed server) and a CalDAV pull (Radicale).
Both must store the same events; they differ only where the data is wrong (strict vs lenient)."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from chronary.ical.decode import decode_feed, decode_resource
from tests.conftest import Api
from tests.ical.conftest import feed_server  # noqa: F401 - the fixture, used by name
from tests.ical.feedserver import FeedServer
from tests.ical.subsync import run_subscription_worker
from tests.sync.conftest import Radicale, connect, enable, events, sync

STAMP = "DTSTAMP:20260101T000000Z"
NY = "America/New_York"

# One VEVENT (or one UID's VEVENTs) per rule of the codec.
FIXTURES: dict[str, str] = {
    # reminders: durations before the start only (RELATED=END and absolute triggers are not ours)
    "alarms": (
        f"BEGIN:VEVENT\r\nUID:alarms\r\n{STAMP}\r\nDTSTART:20270104T090000Z\r\nDTEND:20270104T100000Z\r\n"
        "SUMMARY:Alarms\r\nBEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT30M\r\nEND:VALARM\r\n"
        "BEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER;RELATED=END:-PT5M\r\nEND:VALARM\r\n"
        "BEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT10M\r\nEND:VALARM\r\n"
        "BEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER;VALUE=DATE-TIME:20270104T080000Z\r\nEND:VALARM\r\nEND:VEVENT\r\n"
    ),
    # an all-day weekly series: EXDATE as dates, whatever value type the source used
    "all-day-series": (
        f"BEGIN:VEVENT\r\nUID:all-day-series\r\n{STAMP}\r\nDTSTART;VALUE=DATE:20270105\r\n"
        "DTEND;VALUE=DATE:20270106\r\nSUMMARY:Bins out\r\nRRULE:COUNT=4;FREQ=WEEKLY\r\n"
        "EXDATE;VALUE=DATE:20270112\r\nEND:VEVENT\r\n"
    ),
    # a zoned series with an EXDATE in that zone, an RDATE, and a moved occurrence
    "zoned-series": (
        f"BEGIN:VEVENT\r\nUID:zoned-series\r\n{STAMP}\r\nDTSTART;TZID={NY}:20270301T090000\r\n"
        f"DTEND;TZID={NY}:20270301T093000\r\nSUMMARY:Standup\r\nRRULE:FREQ=DAILY;COUNT=20;INTERVAL=7\r\n"
        f"EXDATE;TZID={NY}:20270315T090000\r\nRDATE:20270320T130000Z\r\nEND:VEVENT\r\n"
        f"BEGIN:VEVENT\r\nUID:zoned-series\r\n{STAMP}\r\nRECURRENCE-ID;TZID={NY}:20270322T090000\r\n"
        f"DTSTART;TZID={NY}:20270322T110000\r\nDTEND;TZID={NY}:20270322T113000\r\nSUMMARY:Standup (moved)\r\n"
        "END:VEVENT\r\n"
    ),
    # a cancelled event is kept, marked cancelled; TRANSP and TENTATIVE map to their fields
    "cancelled": (
        f"BEGIN:VEVENT\r\nUID:cancelled\r\n{STAMP}\r\nDTSTART:20270106T120000Z\r\nDTEND:20270106T130000Z\r\n"
        "SUMMARY:Lunch\r\nSTATUS:CANCELLED\r\nEND:VEVENT\r\n"
    ),
    "transparent": (
        f"BEGIN:VEVENT\r\nUID:transparent\r\n{STAMP}\r\nDTSTART:20270107T120000Z\r\nDURATION:PT2H\r\n"
        "SUMMARY:Maybe\r\nSTATUS:TENTATIVE\r\nTRANSP:TRANSPARENT\r\nEND:VEVENT\r\n"
    ),
    # an empty SUMMARY, attendees with and without a CN
    "attendees": (
        f"BEGIN:VEVENT\r\nUID:attendees\r\n{STAMP}\r\nDTSTART:20270109T090000Z\r\nDTEND:20270109T100000Z\r\n"
        "SUMMARY:\r\nATTENDEE;CN=Ann:mailto:ann@example.com\r\nATTENDEE:mailto:bob@example.com\r\nEND:VEVENT\r\n"
    ),
}
# no UID: one is synthesized from DTSTART and SUMMARY (CalDAV servers refuse such a resource, so
# this one is checked on the two decoders directly)
NO_UID = f"BEGIN:VEVENT\r\n{STAMP}\r\nDTSTART:20270108T090000Z\r\nDTEND:20270108T100000Z\r\nSUMMARY:Anon\r\nEND:VEVENT\r\n"
WRONG_END = (
    f"BEGIN:VEVENT\r\nUID:wrong-end\r\n{STAMP}\r\nDTSTART:20270110T100000Z\r\nDTEND:20270110T090000Z\r\n"
    "SUMMARY:Backwards\r\nEND:VEVENT\r\n"
)
COMPARED = (
    "ical_uid",
    "title",
    "start_time",
    "end_time",
    "all_day",
    "start_date",
    "end_date",
    "status",
    "recurrence",
    "reminders",
    "attendees",
    "transparency",
    "read_only",
)


def _wrap(*vevents: str) -> str:
    return "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//fixtures//EN\r\n" + "".join(vevents) + "END:VCALENDAR\r\n"


def _stored(api: Api, calendar_id: str) -> dict[tuple[str, str], dict[str, Any]]:
    """The stored events and the expanded occurrences of 2027 Q1, keyed by (UID, start)."""
    listed = events(api, calendar_id, start_after="2027-01-01T00:00:00Z", start_before="2027-06-01T00:00:00Z")
    stored = events(api, calendar_id)
    out = {}
    for e in [*listed, *stored]:
        out[(e["ical_uid"], e["start_time"])] = {k: e[k] for k in COMPARED} | {"series": e["recurring_event_id"] is not None}
    return out


def _without(stored: dict[Any, dict[str, Any]], key: str) -> dict[Any, dict[str, Any]]:
    return {k: {f: v for f, v in e.items() if f != key} for k, e in stored.items()}


def _subscribed(api: Api, feed: FeedServer, body: str) -> tuple[dict[str, Any], dict[str, Any]]:
    agent = api.agent(timezone="Europe/Berlin")
    cal = api.calendar(agent["id"], name="Feed", timezone="Europe/Berlin")
    feed.serve("/fixtures.ics", body)
    r = api.post(
        f"/v1/agents/{agent['id']}/ical-subscriptions", json={"calendar_id": cal["id"], "url": feed.url("/fixtures.ics")}
    )
    assert r.status_code == 201, r.text
    run_subscription_worker(api)
    return cal, api.get(f"/v1/ical-subscriptions/{r.json()['id']}").json()


def _pulled(api: Api, radicale: Radicale, resources: dict[str, str]) -> tuple[str, dict[str, Any]]:
    user = radicale.new_user()
    remote = radicale.make_calendar(user)
    for body in resources.values():
        remote.save_event(body)
    agent = api.agent(timezone="Europe/Berlin")
    con = connect(api, agent["id"], user, radicale.url)
    mapped = enable(api, con, f"/{user}/work/")
    summary = sync(api, con["id"])
    assert summary is not None and summary["error"] is None, summary
    return mapped["calendar_id"], summary


def test_both_import_paths_store_the_same_events(api: Api, radicale: Radicale, feed_server: FeedServer) -> None:  # noqa: F811
    feed_cal, sub = _subscribed(api, feed_server, _wrap(*FIXTURES.values()))
    assert sub["status"] == "active", sub
    dav_cal, _ = _pulled(api, radicale, {name: _wrap(body) for name, body in FIXTURES.items()})
    from_feed, from_dav = _stored(api, feed_cal["id"]), _stored(api, dav_cal)
    assert all(e["read_only"] for e in from_feed.values())  # a feed is read-only,
    assert not any(e["read_only"] for e in from_dav.values())  # this remote calendar writable
    assert _without(from_feed, "read_only") == _without(from_dav, "read_only")
    by_uid = {uid: e for (uid, _), e in from_feed.items() if not e["series"]}

    assert by_uid["alarms"]["reminders"] == [10, 30]
    assert by_uid["all-day-series"]["recurrence"] == ["RRULE:FREQ=WEEKLY;COUNT=4", "EXDATE;VALUE=DATE:20270112"]
    bins = sorted(e["start_date"] for (uid, _), e in from_feed.items() if uid == "all-day-series" and e["series"])
    assert bins == ["2027-01-19", "2027-01-26"]  # 05 is the series row itself, 12 is excluded
    zoned = by_uid["zoned-series"]
    assert zoned["recurrence"] == [
        "RRULE:FREQ=DAILY;COUNT=20;INTERVAL=7",
        "RDATE:20270320T130000Z",
        "EXDATE:20270315T130000Z",
    ]
    standups = {start for (uid, start), e in from_feed.items() if uid == "zoned-series"}
    assert "2027-03-08T14:00:00Z" in standups and "2027-03-15T13:00:00Z" not in standups  # 09:00 New York, DST
    assert "2027-03-22T15:00:00Z" in standups and "2027-03-22T13:00:00Z" not in standups  # moved to 11:00
    assert by_uid["cancelled"]["status"] == "cancelled"
    assert (by_uid["transparent"]["status"], by_uid["transparent"]["transparency"]) == ("tentative", "transparent")
    assert by_uid["transparent"]["end_time"] == "2027-01-07T14:00:00Z"
    assert by_uid["attendees"]["title"] == "(no title)"
    assert [(a["email"], a["name"]) for a in by_uid["attendees"]["attendees"]] == [
        ("ann@example.com", "Ann"),
        ("bob@example.com", None),
    ]


def test_wrong_data_fails_a_feed_but_is_clamped_in_a_calendar(
    api: Api,
    radicale: Radicale,
    feed_server: FeedServer,  # noqa: F811
) -> None:
    feed_cal, sub = _subscribed(api, feed_server, _wrap(FIXTURES["alarms"], WRONG_END))
    assert sub["status"] == "error" and "event wrong-end: DTEND is before DTSTART" in sub["last_error"]
    assert _stored(api, feed_cal["id"]) == {}  # strict: the whole feed or nothing
    dav_cal, _ = _pulled(api, radicale, {"alarms": _wrap(FIXTURES["alarms"]), "wrong": _wrap(WRONG_END)})
    stored = {uid: e for (uid, _), e in _stored(api, dav_cal).items()}
    assert stored["wrong-end"]["start_time"] == stored["wrong-end"]["end_time"] == "2027-01-10T10:00:00Z"  # lenient
    assert "alarms" in stored


def test_a_missing_uid_is_synthesized_the_same_way_by_both_decoders() -> None:
    zone = ZoneInfo("Europe/Berlin")
    (from_feed,) = decode_feed(_wrap(NO_UID).encode(), zone, strict=True)
    from_resource = decode_resource(_wrap(NO_UID), zone, strict=False)
    assert from_resource is not None and from_feed.uid == from_resource.uid
    assert from_feed.uid.startswith("chronary-import-") and from_feed.master == from_resource.master
    (again,) = decode_feed(_wrap(NO_UID).encode(), zone)
    assert again.uid == from_feed.uid  # stable across reads: the next sync finds the same event

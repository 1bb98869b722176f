"""Events over HTTP: create/get/list/patch/delete, filters, paging, all-day events, field rules."""

from __future__ import annotations

import pytest

from tests.api._helpers import assert_error

T0, T1 = "2030-01-07T09:00:00Z", "2030-01-07T10:00:00Z"


@pytest.fixture
def cal(api):
    return api.calendar(api.agent()["id"], timezone="Europe/Berlin")


@pytest.fixture
def shared_cal(shared_api):
    """A fresh calendar on the module-wide app, for cases that are rejected or only read."""
    return shared_api.calendar(shared_api.agent()["id"], timezone="Europe/Berlin")


def _url(cal, suffix=""):
    return f"/v1/calendars/{cal['id']}/events{suffix}"


def test_create_defaults(api, cal):
    r = api.post(
        _url(cal),
        json={"title": "Standup", "start_time": "2030-01-07T10:00:00+01:00", "end_time": "2030-01-07T10:15:00+01:00"},
    )
    assert r.status_code == 201
    e = r.json()
    assert e["id"].startswith("evt_") and e["calendar_id"] == cal["id"] and e["agent_id"] == cal["agent_id"]
    assert (e["start_time"], e["end_time"]) == ("2030-01-07T09:00:00Z", "2030-01-07T09:15:00Z")  # answered in UTC
    assert e["status"] == "confirmed" and e["source"] == "internal" and e["read_only"] is False
    assert e["all_day"] is False and e["start_date"] is None and e["end_date"] is None
    assert e["description"] is None and e["location"] is None and e["hold_expires_at"] is None
    assert e["attendees"] == [] and e["metadata"] == {} and e["recurring_event_id"] is None
    assert e["created_at"] == e["updated_at"]
    assert api.get(_url(cal, f"/{e['id']}")).json() == e


def test_create_with_every_field(api, cal):
    body = {
        "title": "Review",
        "start_time": T0,
        "end_time": T1,
        "description": "d",
        "location": "Room 1",
        "status": "tentative",
        "priority": 3,
        "reminders": [10],
        "metadata": {"k": [1, 2]},
        "attendees": [{"email": "x@example.com", "name": "X"}, {"email": "y@example.com"}],
    }
    e = api.event(cal["id"], **{k: v for k, v in body.items() if k not in ("start_time", "end_time")}, start=T0, end=T1)
    for k in ("title", "description", "location", "status", "priority", "reminders", "metadata"):
        assert e[k] == body[k], k
    assert [a["email"] for a in e["attendees"]] == ["x@example.com", "y@example.com"]
    assert e["attendees"][0]["name"] == "X"


@pytest.mark.parametrize(
    "patch,param",
    [
        ({"title": ""}, "title"),
        ({"title": "x" * 501}, "title"),
        ({"title": None}, "title"),
        ({"start_time": None}, "start_time"),
        ({"start_time": "tomorrow"}, "start_time"),
        ({"start_time": "2030-01-07T09:00:00"}, "start_time"),  # no offset
        ({"start_time": "2030-01-07"}, "start_time"),  # a date without all_day
        ({"end_time": "2030-01-07T08:00:00Z"}, "end_time"),
        ({"end_time": T0}, "end_time"),  # end == start
        ({"status": "maybe"}, "status"),
        ({"priority": 11}, "priority"),
        ({"priority": -1}, "priority"),
        ({"reminders": [0]}, "reminders[0]"),
        ({"reminders": [1, 2, 3, 4, 5, 6]}, "reminders"),
        ({"attendees": [{"email": "nope"}]}, "attendees[0].email"),
        ({"attendees": [{"name": "no email"}]}, "attendees[0].email"),
        ({"metadata": "x"}, "metadata"),
        ({"all_day": "yes"}, "all_day"),
        ({"source": "google"}, "source"),
        ({"read_only": True}, "read_only"),
        ({"calendar_id": "cal_x"}, "calendar_id"),
    ],
)
def test_create_validation(shared_api, shared_cal, patch, param):
    api, cal = shared_api, shared_cal
    body = {"title": "t", "start_time": T0, "end_time": T1, **patch}
    assert_error(api.post(_url(cal), json=body), 400, "validation_error", param)
    assert api.get(_url(cal)).json()["total"] == 0


def test_required_fields(api, cal):
    for missing in ("title", "start_time", "end_time"):
        body = {k: v for k, v in {"title": "t", "start_time": T0, "end_time": T1}.items() if k != missing}
        assert_error(api.post(_url(cal), json=body), 400, "validation_error", missing)


def test_title_boundaries_and_unicode(api, cal):
    assert api.event(cal["id"], T0, T1, title="x")["title"] == "x"
    assert api.event(cal["id"], T0, T1, title="é" * 500)["title"] == "é" * 500
    assert api.event(cal["id"], T0, T1, title="会議 📅")["title"] == "会議 📅"


def test_metadata_over_16_kb_is_413_with_param(api, cal):
    big = {"k": "x" * (16 * 1024)}
    r = api.post(_url(cal), json={"title": "t", "start_time": T0, "end_time": T1, "metadata": big})
    assert_error(r, 413, "payload_too_large", "metadata")
    e = api.event(cal["id"], T0, T1)
    assert_error(api.patch(_url(cal, f"/{e['id']}"), json={"metadata": big}), 413, "payload_too_large", "metadata")


# --- all-day events ------------------------------------------------------------------------------


def test_all_day_is_stored_as_local_midnight_with_exclusive_end(api, cal):
    e = api.event(cal["id"], "2030-07-01", "2030-07-03", all_day=True)
    assert e["all_day"] is True
    assert (e["start_date"], e["end_date"]) == ("2030-07-01", "2030-07-03")
    # Europe/Berlin is UTC+2 in summer: local midnight is 22:00Z the day before
    assert (e["start_time"], e["end_time"]) == ("2030-06-30T22:00:00Z", "2030-07-02T22:00:00Z")
    row = api.runtime.db.read_sync(
        lambda tx: list(tx.conn.execute("SELECT start_ts, end_ts, all_day FROM events WHERE id = ?", (e["id"],)))
    )[0]
    from datetime import datetime
    from zoneinfo import ZoneInfo

    berlin = ZoneInfo("Europe/Berlin")
    assert row["start_ts"] == int(datetime(2030, 7, 1, tzinfo=berlin).timestamp())
    assert row["end_ts"] == int(datetime(2030, 7, 3, tzinfo=berlin).timestamp())
    assert row["all_day"] == 1


def test_all_day_single_day_and_dst_day(api):
    ny = api.calendar(timezone="America/New_York")
    e = api.event(ny["id"], "2030-03-10", "2030-03-11", all_day=True)  # DST starts: a 23-hour day
    assert (e["start_time"], e["end_time"]) == ("2030-03-10T05:00:00Z", "2030-03-11T04:00:00Z")
    assert (e["start_date"], e["end_date"]) == ("2030-03-10", "2030-03-11")


def test_all_day_accepts_local_midnight_instants(api, cal):
    e = api.event(cal["id"], "2030-01-10T00:00:00+01:00", "2030-01-11T00:00:00+01:00", all_day=True)
    assert (e["start_date"], e["end_date"]) == ("2030-01-10", "2030-01-11")


@pytest.mark.parametrize("zone", ["America/Los_Angeles", "Pacific/Kiritimati", "UTC"])
def test_all_day_accepts_utc_midnight_as_that_date(api, zone):
    """Clients of the hosted Chronary API send all-day dates as UTC midnight: the date is kept
    whatever the calendar's zone (Los Angeles is behind UTC, Kiritimati 14 hours ahead)."""
    calendar = api.calendar(timezone=zone)
    e = api.event(calendar["id"], "2027-03-12T00:00:00Z", "2027-03-13T00:00:00Z", all_day=True)
    assert (e["start_date"], e["end_date"]) == ("2027-03-12", "2027-03-13")
    stored = api.get(_url(calendar, f"/{e['id']}")).json()
    assert (stored["start_date"], stored["end_date"], stored["all_day"]) == ("2027-03-12", "2027-03-13", True)
    moved = api.patch(
        _url(calendar, f"/{e['id']}"), json={"start_time": "2027-03-20T00:00:00+00:00", "end_time": "2027-03-22T00:00:00Z"}
    )
    assert moved.status_code == 200, moved.text
    assert (moved.json()["start_date"], moved.json()["end_date"]) == ("2027-03-20", "2027-03-22")


@pytest.mark.parametrize(
    "start,end,param",
    [
        ("2030-01-10", "2030-01-10", "end_time"),  # end date is exclusive: same day is empty
        ("2030-01-10", "2030-01-09", "end_time"),
        ("2030-01-10T09:00:00+01:00", "2030-01-11", "start_time"),  # not local midnight
        ("2030-01-10T00:00:00+05:00", "2030-01-11", "start_time"),  # midnight, but neither local nor UTC
        ("2030-01-10", "2030-01-11T12:00:00Z", "end_time"),  # UTC, but not midnight
        ("2030-02-30", "2030-03-01", "start_time"),
        ("10/01/2030", "2030-01-11", "start_time"),
    ],
)
def test_all_day_validation(shared_api, shared_cal, start, end, param):
    api, cal = shared_api, shared_cal
    body = {"title": "t", "start_time": start, "end_time": end, "all_day": True}
    assert_error(api.post(_url(cal), json=body), 400, "validation_error", param)


# --- listing ---------------------------------------------------------------------------------------


@pytest.fixture
def listed(api, cal):
    evts = [
        api.event(cal["id"], f"2030-01-{d:02d}T09:00:00Z", f"2030-01-{d:02d}T10:00:00Z", title=f"e{d}")
        for d in (5, 1, 3, 2, 4)
    ]
    api.post(_url(cal, f"/{evts[2]['id']}/cancel"))
    api.patch(_url(cal, f"/{evts[3]['id']}"), json={"status": "tentative"})
    return sorted(evts, key=lambda e: e["start_time"])  # e1..e5


def _titles(r):
    assert r.status_code == 200, r.text
    return [e["title"] for e in r.json()["data"]]


def test_list_is_ordered_by_start_with_total(api, cal, listed):
    body = api.get(_url(cal)).json()
    assert [e["title"] for e in body["data"]] == ["e1", "e2", "e3", "e4", "e5"]
    assert (body["total"], body["limit"], body["offset"]) == (5, 50, 0)


def test_list_filters(api, cal, listed):
    get = lambda **q: api.get(_url(cal), params=q)  # noqa: E731
    assert _titles(get(start_after="2030-01-03T09:00:00Z")) == ["e3", "e4", "e5"]  # inclusive
    assert _titles(get(start_before="2030-01-03T09:00:00Z")) == ["e1", "e2"]  # exclusive
    assert _titles(get(start_after="2030-01-02T00:00:00Z", start_before="2030-01-04T00:00:00Z")) == ["e2", "e3"]
    assert _titles(get(start_after="2030-01-03T10:00:00+01:00")) == ["e3", "e4", "e5"]  # offsets honoured
    assert _titles(get(status="cancelled")) == ["e3"]
    assert _titles(get(status="tentative")) == ["e2"]
    assert _titles(get(status="confirmed")) == ["e1", "e4", "e5"]
    assert _titles(get(source="internal")) == ["e1", "e2", "e3", "e4", "e5"]
    assert _titles(get(source="google")) == []
    filtered = get(status="confirmed", start_after="2030-01-02T00:00:00Z").json()
    assert filtered["total"] == 2 and [e["title"] for e in filtered["data"]] == ["e4", "e5"]


@pytest.mark.parametrize(
    "query,param",
    [
        ({"start_after": "yesterday"}, "start_after"),
        ({"start_before": "2030-01-01T00:00:00"}, "start_before"),
        ({"start_after": "2030-01-05T00:00:00Z", "start_before": "2030-01-01T00:00:00Z"}, "start_before"),
        ({"status": "done"}, "status"),
        ({"source": "outlook"}, "source"),
        ({"limit": 0}, "limit"),
        ({"limit": 201}, "limit"),
        ({"offset": -1}, "offset"),
    ],
)
def test_list_query_validation(shared_api, shared_cal, query, param):
    api, cal = shared_api, shared_cal
    assert_error(api.get(_url(cal), params=query), 400, "validation_error", param)
    assert_error(api.get(f"/v1/agents/{cal['agent_id']}/events", params=query), 400, "validation_error", param)


def test_paging(api, cal, listed):
    seen = []
    for offset in range(0, 6, 2):
        page = api.get(_url(cal), params={"limit": 2, "offset": offset}).json()
        assert page["total"] == 5 and page["limit"] == 2 and page["offset"] == offset
        seen += [e["title"] for e in page["data"]]
    assert seen == ["e1", "e2", "e3", "e4", "e5"]
    assert api.get(_url(cal), params={"limit": 200}).json()["limit"] == 200
    assert api.get(_url(cal), params={"limit": 1, "status": "confirmed"}).json()["total"] == 3


def test_list_for_agent_spans_its_calendars(api, cal, listed):
    second = api.calendar(cal["agent_id"], name="Second", timezone="UTC")
    extra = api.event(second["id"], "2030-01-03T12:00:00Z", "2030-01-03T13:00:00Z", title="x")
    api.event(api.calendar(api.agent(name="Other")["id"])["id"], T0, T1, title="not mine")
    api.event(api.calendar()["id"], T0, T1, title="org")
    url = f"/v1/agents/{cal['agent_id']}/events"
    assert _titles(api.get(url)) == ["e1", "e2", "e3", "x", "e4", "e5"]
    body = api.get(url, params={"start_after": "2030-01-03T10:00:00Z", "limit": 1}).json()
    assert body["total"] == 3 and body["data"][0]["id"] == extra["id"]
    assert body["data"][0]["calendar_id"] == second["id"]
    assert _titles(api.get(url, params={"status": "cancelled"})) == ["e3"]
    assert _titles(api.get(url, params={"source": "internal", "start_before": "2030-01-02T00:00:00Z"})) == ["e1"]
    assert_error(api.get("/v1/agents/agt_nope/events"), 404, "not_found")


# --- get / patch / delete ------------------------------------------------------------------------


def test_patch_semantics(api, cal):
    e = api.event(cal["id"], T0, T1, description="notes", location="Room", metadata={"a": 1, "b": 2})
    url = _url(cal, f"/{e['id']}")
    assert_error(api.patch(url, json={}), 400, "validation_error")
    f = api.patch(url, json={"metadata": {"c": 3}}).json()
    assert f["metadata"] == {"c": 3} and f["description"] == "notes" and f["title"] == e["title"]
    f = api.patch(url, json={"description": None}).json()
    assert f["description"] is None and f["location"] == "Room"
    f = api.patch(url, json={"location": None, "title": "New"}).json()
    assert f["location"] is None and f["title"] == "New"
    f = api.patch(url, json={"end_time": "2030-01-07T11:30:00Z"}).json()
    assert (f["start_time"], f["end_time"]) == (T0, "2030-01-07T11:30:00Z")
    f = api.patch(url, json={"start_time": "2030-01-07T11:00:00Z"}).json()
    assert (f["start_time"], f["end_time"]) == ("2030-01-07T11:00:00Z", "2030-01-07T11:30:00Z")
    assert f["sequence"] > e["sequence"] and f["updated_at"] >= e["updated_at"] and f["created_at"] == e["created_at"]
    assert api.get(url).json() == f


@pytest.mark.parametrize(
    "body,param",
    [
        ({"title": None}, "title"),
        ({"title": ""}, "title"),
        ({"start_time": None}, "start_time"),
        ({"end_time": "2030-01-07T08:00:00Z"}, "end_time"),
        ({"start_time": "2030-01-07T10:00:00Z"}, "end_time"),
        ({"status": None}, "status"),
        ({"all_day": None}, "all_day"),
        ({"priority": 99}, "priority"),
        ({"hold_expires_at": "2030-01-07T08:00:00Z"}, "hold_expires_at"),
        ({"id": "evt_x"}, "id"),
        ({"source": "google"}, "source"),
    ],
)
def test_patch_validation_changes_nothing(shared_api, shared_cal, body, param):
    api, cal = shared_api, shared_cal
    e = api.event(cal["id"], T0, T1)
    url = _url(cal, f"/{e['id']}")
    assert_error(api.patch(url, json=body), 400, "validation_error", param)
    assert api.get(url).json() == e


def test_patch_to_all_day_and_back(api, cal):
    e = api.event(cal["id"], T0, T1)
    url = _url(cal, f"/{e['id']}")
    f = api.patch(url, json={"all_day": True, "start_time": "2030-02-01", "end_time": "2030-02-02"}).json()
    assert f["all_day"] is True and (f["start_date"], f["end_date"]) == ("2030-02-01", "2030-02-02")
    assert f["start_time"] == "2030-01-31T23:00:00Z"
    g = api.patch(url, json={"all_day": False, "start_time": T0, "end_time": T1}).json()
    assert g["all_day"] is False and g["start_date"] is None and (g["start_time"], g["end_time"]) == (T0, T1)


def test_delete_and_404s(api, cal):
    e = api.event(cal["id"], T0, T1)
    other = api.calendar(name="Other")
    assert_error(api.get(f"/v1/calendars/{other['id']}/events/{e['id']}"), 404, "not_found")  # wrong calendar
    assert_error(api.delete(f"/v1/calendars/{other['id']}/events/{e['id']}"), 404, "not_found")
    r = api.delete(_url(cal, f"/{e['id']}"))
    assert r.status_code == 204 and r.content == b""
    for method in ("GET", "DELETE", "PATCH"):
        kw = {"json": {"title": "x"}} if method == "PATCH" else {}
        assert_error(api.request(method, _url(cal, f"/{e['id']}"), **kw), 404, "not_found")
    assert api.get(_url(cal)).json()["total"] == 0


def test_sub_second_times_never_make_a_zero_length_event(api, cal):
    r = api.post(
        _url(cal), json={"title": "t", "start_time": "2030-01-01T09:00:00.100Z", "end_time": "2030-01-01T09:00:00.900Z"}
    )
    assert_error(r, 400, "validation_error", "end_time")
    e = api.event(cal["id"], "2030-01-01T09:00:00.900Z", "2030-01-01T09:00:01.100Z")
    assert (e["start_time"], e["end_time"]) == ("2030-01-01T09:00:00Z", "2030-01-01T09:00:01Z")

"""Feeds per device (issue 21, item 5): POST/GET/DELETE /v1/calendars/{id}/feed-tokens, each token
its own feed URL with a scope (full, busy, a rolling window), revocable alone; last fetch time and
User-Agent; REFRESH-INTERVAL / X-PUBLISHED-TTL; HEAD; webcal:// links."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import icalendar
import pytest

from chronary.clock import ManualClock
from chronary.services import feed_scope
from chronary.services.occurrences import occurrence_id
from chronary.timeutil import to_ts
from tests.api._helpers import assert_error
from tests.ical.conftest import feed_path, parse, vevents
from tests.ical.test_feed_rebuild import START, Writer, tiny_chunks  # noqa: F401  (a fixture)

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
# every private thing the busy feed must not carry, as given to the API
SECRETS = {
    "title": "Merger talks with Initech",
    "description": "Bring the term sheet; dial-in 555-0199",
    "location": "Board room 7, Acme HQ",
    "attendee_name": "Peter Gibbons",
    "attendee_email": "peter@initech.example",
    "moved_title": "Merger talks (moved) with Initech",
    "series_title": "Weekly one-on-one with Lumbergh",
    "hold_title": "Tentative dinner with Joanna",
    "metadata": "metadata-secret-value",
    "calendar_name": "Ada private diary",
}
ALLOWED_BUSY = {"UID", "DTSTAMP", "DTSTART", "DTEND", "RRULE", "EXDATE", "RECURRENCE-ID", "TRANSP", "STATUS"}
ALLOWED_BUSY |= {"SEQUENCE", "SUMMARY"}


def _tokens(api, cal_id: str) -> str:
    return f"/v1/calendars/{cal_id}/feed-tokens"


def _token(api, cal_id: str, label: str = "Ada's phone", **scope) -> dict:
    body = {"label": label, **({"scope": scope} if scope else {})}
    r = api.post(_tokens(api, cal_id), json=body)
    assert r.status_code == 201, r.text
    return r.json()


def _get(api, url: str, **headers: str):
    return api.client.get(urlsplit(url).path, headers=headers)


def _private_calendar(api) -> dict:
    """A calendar with every kind of detail: text fields, attendees, alarms, a hold, a series
    with a moved and a cancelled occurrence, metadata."""
    cal = api.calendar(name=SECRETS["calendar_name"], timezone="Europe/Berlin", default_reminders=[15])
    cid = cal["id"]
    api.event(
        cid,
        "2026-03-03T10:00:00Z",
        "2026-03-03T11:00:00Z",
        title=SECRETS["title"],
        description=SECRETS["description"],
        location=SECRETS["location"],
        attendees=[{"email": SECRETS["attendee_email"], "name": SECRETS["attendee_name"]}],
        reminders=[10, 60],
        metadata={"note": SECRETS["metadata"]},
    )
    api.event(
        cid,
        "2026-03-04T18:00:00Z",
        "2026-03-04T20:00:00Z",
        title=SECRETS["hold_title"],
        status="hold",
        hold_expires_at="2026-03-04T12:00:00Z",
    )
    api.event(cid, "2026-03-06", "2026-03-07", title="Offsite day", all_day=True, description="secret offsite")
    first = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
    series = api.event(
        cid,
        first.isoformat(),
        (first + timedelta(minutes=30)).isoformat(),
        title=SECRETS["series_title"],
        location=SECRETS["location"],
        recurrence=["RRULE:FREQ=WEEKLY;COUNT=6"],
    )
    moved = occurrence_id(series["id"], to_ts(first + timedelta(weeks=1)))
    r = api.patch(
        f"/v1/calendars/{cid}/events/{moved}",
        json={
            "title": SECRETS["moved_title"],
            "start_time": (first + timedelta(weeks=1, hours=2)).isoformat(),
            "end_time": (first + timedelta(weeks=1, hours=3)).isoformat(),
        },
    )
    assert r.status_code == 200, r.text
    gone = occurrence_id(series["id"], to_ts(first + timedelta(weeks=2)))
    assert api.delete(f"/v1/calendars/{cid}/events/{gone}").status_code == 204
    return cal


def _ical(value) -> list[bytes] | None:
    return None if value is None else [x.to_ical() for x in (value if isinstance(value, list) else [value])]


def _props(component) -> set[str]:
    return {name.upper() for name in component}


def test_create_list_and_the_url_is_shown_once(make_api):
    api = make_api(clock=ManualClock(NOW))
    cal = api.calendar()
    assert cal["webcal_url"] == "webcal://" + cal["ical_url"].split("://", 1)[1]
    tok = _token(api, cal["id"])
    assert tok["id"].startswith("ftk_") and tok["calendar_id"] == cal["id"] and tok["label"] == "Ada's phone"
    assert tok["scope"] == {"kind": "full", "past_days": None, "future_days": None, "busy": False}
    assert tok["ical_url"].startswith("http://127.0.0.1:8765/ical/") and tok["ical_url"].endswith(".ics")
    assert tok["ical_url"] != cal["ical_url"]
    assert tok["webcal_url"] == "webcal://" + tok["ical_url"].split("://", 1)[1]
    assert tok["last_fetched_at"] is None and tok["last_user_agent"] is None
    listed = api.get(_tokens(api, cal["id"])).json()
    assert listed["total"] == 1
    assert listed["data"] == [{k: v for k, v in tok.items() if k not in ("ical_url", "webcal_url")}]
    # the token itself is stored only as a hash
    secret = urlsplit(tok["ical_url"]).path.removeprefix("/ical/").removesuffix(".ics")
    rows = api.runtime.db.read_sync(lambda tx: list(tx.conn.execute("SELECT * FROM feed_tokens")))
    assert secret not in repr(rows) and len(secret) >= 40
    # a full token serves the calendar's feed itself
    own, device = api.client.get(feed_path(cal)), _get(api, tok["ical_url"])
    assert own.status_code == device.status_code == 200 and own.content == device.content
    assert own.headers["etag"] == device.headers["etag"]
    window = _token(api, cal["id"], "tablet", kind="window", past_days=3, future_days=10)
    assert window["scope"] == {"kind": "window", "past_days": 3, "future_days": 10, "busy": False}
    default_window = _token(api, cal["id"], "tv", kind="window")
    assert default_window["scope"] == {"kind": "window", "past_days": 30, "future_days": 365, "busy": False}
    assert _token(api, cal["id"], "pa", kind="busy")["scope"]["busy"] is True


def test_revoking_one_token_leaves_the_others(make_api):
    api = make_api(clock=ManualClock(NOW))
    cal = api.calendar()
    api.event(cal["id"], "2026-03-03T10:00:00Z", "2026-03-03T11:00:00Z", title="Standup")
    phone = _token(api, cal["id"], "phone")
    laptop = _token(api, cal["id"], "laptop")
    assistant = _token(api, cal["id"], "assistant", kind="busy")
    for url in (phone["ical_url"], laptop["ical_url"], assistant["ical_url"], cal["ical_url"]):
        assert _get(api, url).status_code == 200
    assert api.delete(f"{_tokens(api, cal['id'])}/{laptop['id']}").status_code == 204
    assert _get(api, laptop["ical_url"]).status_code == 404
    for url in (phone["ical_url"], assistant["ical_url"], cal["ical_url"]):
        assert _get(api, url).status_code == 200
    listed = api.get(_tokens(api, cal["id"])).json()
    assert [t["id"] for t in listed["data"]] == [phone["id"], assistant["id"]] and listed["total"] == 2
    assert_error(api.delete(f"{_tokens(api, cal['id'])}/{laptop['id']}"), 404, "not_found")
    assert_error(api.delete(f"{_tokens(api, cal['id'])}/ftk_missing"), 404, "not_found")
    # rotating the calendar's own URL leaves the device URLs alone
    rotated = api.post(f"/v1/calendars/{cal['id']}/rotate-feed").json()
    assert _get(api, cal["ical_url"]).status_code == 404
    assert _get(api, rotated["ical_url"]).status_code == 200 and _get(api, phone["ical_url"]).status_code == 200
    assert rotated["webcal_url"] == "webcal://" + rotated["ical_url"].split("://", 1)[1]
    # a token of one calendar cannot be revoked through another
    other = api.calendar(name="Other")
    assert_error(api.delete(f"{_tokens(api, other['id'])}/{phone['id']}"), 404, "not_found")
    assert _get(api, phone["ical_url"]).status_code == 200
    # deleting the calendar ends all its URLs
    assert api.delete(f"/v1/calendars/{cal['id']}").status_code == 204
    assert _get(api, phone["ical_url"]).status_code == 404 and _get(api, assistant["ical_url"]).status_code == 404


def test_busy_feed_has_times_but_no_titles_or_details(make_api):
    api = make_api(clock=ManualClock(NOW))
    cal = _private_calendar(api)
    busy = _token(api, cal["id"], "shared with Bob", kind="busy")
    full = parse(api.client.get(feed_path(cal)).content)
    r = _get(api, busy["ical_url"])
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/calendar")
    raw = r.content
    # raw bytes: none of the real titles or details, in any case, folded or not
    unfolded = raw.replace(b"\r\n ", b"").decode().lower()
    for name, value in SECRETS.items():
        assert value.lower() not in unfolded, name
    for word in ("initech", "lumbergh", "offsite", "dinner", "peter", "mailto", "valarm", "x-chronary"):
        assert word not in unfolded, word
    cal_ical = parse(raw)
    assert str(cal_ical["X-WR-CALNAME"]) == "Busy"
    events = vevents(cal_ical)
    full_events = vevents(full)
    assert len(events) == len(full_events) == 5  # 3 singles, the series and its moved occurrence
    for ev in events:
        assert str(ev["SUMMARY"]) == "Busy"
        assert _props(ev) <= ALLOWED_BUSY, _props(ev) - ALLOWED_BUSY
        assert not ev.subcomponents  # no VALARM
    # times, recurrence and status are those of the full feed
    key = lambda ev: (str(ev["UID"]), str(ev.get("RECURRENCE-ID").dt) if ev.get("RECURRENCE-ID") else "")  # noqa: E731
    by_key = {key(ev): ev for ev in full_events}
    for ev in events:
        twin = by_key[key(ev)]
        for prop in ("DTSTART", "DTEND", "STATUS", "TRANSP"):
            assert ev[prop].to_ical() == twin[prop].to_ical(), prop
        assert ev.get("RRULE") == twin.get("RRULE")
        assert _ical(ev.get("EXDATE")) == _ical(twin.get("EXDATE"))
    series = [ev for ev in events if ev.get("RRULE")]
    assert len(series) == 1 and series[0].get("EXDATE") is not None
    assert any(ev.get("RECURRENCE-ID") for ev in events)
    assert {str(ev["STATUS"]) for ev in events} == {"CONFIRMED", "TENTATIVE"}
    assert any(isinstance(ev["DTSTART"].dt, type(NOW.date())) and not hasattr(ev["DTSTART"].dt, "hour") for ev in events)


def test_full_then_busy_then_full_never_mixes(make_api):
    """The feed cache holds rendered full events: a busy token must never be served them, and a
    full token never the busy text, whatever order they are fetched in."""
    api = make_api(clock=ManualClock(NOW))
    cal = _private_calendar(api)
    full_tok = _token(api, cal["id"], "me")
    busy_tok = _token(api, cal["id"], "them", kind="busy")
    window_busy = _token(api, cal["id"], "them, soon", kind="window", past_days=0, future_days=14, busy=True)

    def check_full(body: bytes) -> None:
        assert SECRETS["title"].encode() in body and SECRETS["calendar_name"].encode() in body
        assert b"SUMMARY:Busy" not in body and b"BEGIN:VALARM" in body

    def check_busy(body: bytes) -> None:
        assert SECRETS["title"].encode() not in body and b"SUMMARY:Busy" in body and b"VALARM" not in body

    for _ in range(2):
        check_full(_get(api, full_tok["ical_url"]).content)
        check_busy(_get(api, busy_tok["ical_url"]).content)
        check_busy(_get(api, window_busy["ical_url"]).content)
        check_full(api.client.get(feed_path(cal)).content)
        check_full(_get(api, full_tok["ical_url"]).content)
    # an edit moves both; each keeps its own form
    ev = api.get(f"/v1/calendars/{cal['id']}/events", params={"limit": 100}).json()["data"]
    target = next(e for e in ev if e["title"] == SECRETS["title"])
    r = api.patch(f"/v1/calendars/{cal['id']}/events/{target['id']}", json={"title": "Renamed secret thing"})
    assert r.status_code == 200, r.text
    busy_body = _get(api, busy_tok["ical_url"]).content
    assert b"Renamed secret thing" not in busy_body and b"SUMMARY:Busy" in busy_body
    full_body = _get(api, full_tok["ical_url"]).content
    assert b"Renamed secret thing" in full_body
    assert b"Renamed secret thing" not in _get(api, busy_tok["ical_url"]).content


def test_window_feed_shows_only_the_events_overlapping_it(make_api):
    clock = ManualClock(NOW)
    api = make_api(clock=clock, feed_rate_limit_per_minute=10**6)
    cal = api.calendar(timezone="UTC")
    cid = cal["id"]
    api.event(cid, "2026-02-01T10:00:00Z", "2026-02-01T11:00:00Z", title="A month ago")
    api.event(cid, "2026-02-27T10:00:00Z", "2026-02-27T11:00:00Z", title="Three days ago")
    api.event(cid, "2026-02-25T23:00:00Z", "2026-02-26T01:00:00Z", title="Spans the start")
    api.event(cid, "2026-03-10T10:00:00Z", "2026-03-10T11:00:00Z", title="Next week")
    api.event(cid, "2026-05-01T10:00:00Z", "2026-05-01T11:00:00Z", title="In two months")
    api.event(cid, "2026-03-20", "2026-03-21", title="All-day soon", all_day=True)
    api.event(cid, "2025-01-06T09:00:00Z", "2025-01-06T10:00:00Z", title="Open series", recurrence=["RRULE:FREQ=WEEKLY"])
    api.event(
        cid, "2025-06-02T09:00:00Z", "2025-06-02T10:00:00Z", title="Ended series", recurrence=["RRULE:FREQ=WEEKLY;COUNT=3"]
    )
    future = api.event(
        cid, "2026-04-01T09:00:00Z", "2026-04-01T10:00:00Z", title="Later series", recurrence=["RRULE:FREQ=DAILY;COUNT=5"]
    )
    # an occurrence of a later series moved into the window: it shows, its master does not
    moved = occurrence_id(future["id"], to_ts(datetime(2026, 4, 1, 9, tzinfo=UTC)))
    r = api.patch(
        f"/v1/calendars/{cid}/events/{moved}",
        json={"start_time": "2026-03-05T09:00:00Z", "end_time": "2026-03-05T10:00:00Z"},
    )
    assert r.status_code == 200, r.text
    tok = _token(api, cid, "wall screen", kind="window", past_days=5, future_days=21)

    def titles() -> set[str]:
        r = _get(api, tok["ical_url"])
        assert r.status_code == 200
        return {str(ev["SUMMARY"]) for ev in vevents(parse(r.content))}

    shown = titles()
    assert shown == {"Three days ago", "Spans the start", "Next week", "All-day soon", "Open series", "Later series"}
    full = {str(ev["SUMMARY"]) for ev in vevents(parse(api.client.get(feed_path(cal)).content))}
    assert {"A month ago", "In two months", "Ended series"} <= full
    first = _get(api, tok["ical_url"])
    assert _get(api, tok["ical_url"], **{"If-None-Match": first.headers["etag"]}).status_code == 304
    # the window rolls with the days
    clock.advance(days=10)
    later = _get(api, tok["ical_url"])
    assert later.headers["etag"] != first.headers["etag"]
    assert _get(api, tok["ical_url"], **{"If-None-Match": first.headers["etag"]}).status_code == 200
    shown = titles()
    assert "Three days ago" not in shown and "Next week" in shown and "All-day soon" in shown


def test_last_fetch_time_and_client_are_recorded_at_most_once_a_minute(make_api):
    clock = ManualClock(NOW)
    api = make_api(clock=clock)
    cal = api.calendar()
    phone = _token(api, cal["id"], "phone")
    laptop = _token(api, cal["id"], "laptop", kind="busy")

    def listed() -> dict[str, dict]:
        return {t["id"]: t for t in api.get(_tokens(api, cal["id"])).json()["data"]}

    first = _get(api, phone["ical_url"], **{"User-Agent": "iOS/17.4 (21E219) dataaccessd/1.0"})
    assert first.status_code == 200
    seen = listed()
    assert seen[phone["id"]]["last_fetched_at"] == "2026-03-02T09:00:00.000Z"
    assert seen[phone["id"]]["last_user_agent"] == "iOS/17.4 (21E219) dataaccessd/1.0"
    assert seen[laptop["id"]]["last_fetched_at"] is None
    # within the minute: a poll (even a 304) is not written
    clock.advance(seconds=30)
    assert _get(api, phone["ical_url"], **{"If-None-Match": first.headers["etag"], "User-Agent": "Other"}).status_code == 304
    assert listed()[phone["id"]]["last_fetched_at"] == "2026-03-02T09:00:00.000Z"
    # later: written again, from a 304 too; a long User-Agent is cut at 256 characters
    clock.advance(seconds=60)
    ua = "Thunderbird/115 " + "x" * 400
    assert _get(api, phone["ical_url"], **{"If-None-Match": first.headers["etag"], "User-Agent": ua}).status_code == 304
    after = listed()[phone["id"]]
    assert after["last_fetched_at"] == "2026-03-02T09:01:30.000Z" and after["last_user_agent"] == ua[:256]
    _get(api, laptop["ical_url"], **{"User-Agent": "Google-Calendar-Importer"})
    assert listed()[laptop["id"]]["last_user_agent"] == "Google-Calendar-Importer"
    # the calendar's own feed has no token row to record into; nothing breaks
    assert api.client.get(feed_path(cal)).status_code == 200


def test_head_refresh_interval_and_conditional_get_on_token_feeds(make_api):
    api = make_api(clock=ManualClock(NOW))
    cal = api.calendar(name="Team")
    api.event(cal["id"], "2026-03-03T10:00:00Z", "2026-03-03T11:00:00Z", title="Standup", reminders=[5])
    api.event(cal["id"], "2026-06-01T10:00:00Z", "2026-06-01T11:00:00Z", title="Not this week")
    tokens = [
        _token(api, cal["id"], "a"),
        _token(api, cal["id"], "b", kind="busy"),
        _token(api, cal["id"], "c", kind="window", past_days=1, future_days=7),
    ]
    for url in [cal["ical_url"]] + [t["ical_url"] for t in tokens]:
        get = _get(api, url)
        assert get.status_code == 200
        ical = icalendar.Calendar.from_ical(get.content)
        assert ical["REFRESH-INTERVAL"].to_ical() == b"PT5M" and str(ical["X-PUBLISHED-TTL"]) == "PT5M"
        head = api.client.head(urlsplit(url).path)
        assert head.status_code == 200 and head.content == b""
        for name in ("etag", "last-modified", "content-type", "content-length", "cache-control"):
            assert head.headers[name] == get.headers[name], name
        assert int(get.headers["content-length"]) == len(get.content)
        assert _get(api, url, **{"If-None-Match": get.headers["etag"]}).status_code == 304
        since = get.headers["last-modified"]
        assert _get(api, url, **{"If-Modified-Since": since}).status_code == 304
    etags = {_get(api, t["ical_url"]).headers["etag"] for t in tokens}
    assert len(etags) == 3  # three scopes, three bodies
    assert _get(api, "http://x/ical/" + "B" * 43 + ".ics").status_code == 404


def test_agent_keys_reach_only_their_agents_calendars(make_api):
    api = make_api(clock=ManualClock(NOW))
    ada, bob = api.agent("Ada"), api.agent("Bob")
    ada_cal, bob_cal, org_cal = api.calendar(ada["id"]), api.calendar(bob["id"]), api.calendar(name="Org")
    as_ada = api.as_key(api.agent_key(ada["id"]))
    tok = _token(as_ada, ada_cal["id"], "Ada's laptop")
    assert as_ada.get(_tokens(as_ada, ada_cal["id"])).json()["total"] == 1
    bobs = _token(api, bob_cal["id"], "Bob's phone")
    for cal_id in (bob_cal["id"], org_cal["id"], "cal_missing"):
        assert_error(as_ada.post(_tokens(as_ada, cal_id), json={"label": "x"}), 404, "not_found")
        assert_error(as_ada.get(_tokens(as_ada, cal_id)), 404, "not_found")
    assert_error(as_ada.delete(f"{_tokens(as_ada, bob_cal['id'])}/{bobs['id']}"), 404, "not_found")
    assert_error(as_ada.delete(f"{_tokens(as_ada, ada_cal['id'])}/{bobs['id']}"), 404, "not_found")
    assert _get(api, bobs["ical_url"]).status_code == 200
    assert as_ada.delete(f"{_tokens(as_ada, ada_cal['id'])}/{tok['id']}").status_code == 204


def test_bodies_are_checked(make_api):
    api = make_api(clock=ManualClock(NOW))
    cid = api.calendar()["id"]
    url = _tokens(api, cid)
    cases = [
        ({}, "label"),
        ({"label": ""}, "label"),
        ({"label": "x", "scope": {"kind": "everything"}}, "scope.kind"),
        ({"label": "x", "scope": {"kind": "busy", "past_days": 3}}, "scope.past_days"),
        ({"label": "x", "scope": {"kind": "full", "busy": True}}, "scope.busy"),
        ({"label": "x", "scope": {"kind": "window", "future_days": -1}}, "scope.future_days"),
        ({"label": "x", "scope": {"kind": "window", "past_days": 99999}}, "scope.past_days"),
        ({"label": "x", "extra": 1}, "extra"),
    ]
    for body, param in cases:
        r = api.post(url, json=body)
        assert r.status_code == 400, (body, r.text)
        assert r.json()["error"]["param"] == param, (body, r.json())
    assert api.get(url).json()["total"] == 0


def test_openapi_documents_feed_tokens(api):
    spec = api.as_key("").get("/schema/openapi.json").json()
    paths = spec["paths"]
    base = "/v1/calendars/{calendar_id}/feed-tokens"
    assert {"post", "get"} <= set(paths[base]) and "delete" in paths[base + "/{token_id}"]
    schemas = spec["components"]["schemas"]
    assert {"ical_url", "webcal_url", "scope", "last_fetched_at", "last_user_agent"} <= set(
        schemas["FeedTokenWithUrl"]["properties"]
    )
    assert "webcal_url" in schemas["Calendar"]["properties"]


def _busy_of(full: bytes) -> bytes:
    """What a busy feed must be, made from a full body independently of the chunk cache."""
    at = full.index(b"BEGIN:VEVENT\r\n") if b"BEGIN:VEVENT\r\n" in full else full.index(b"END:VCALENDAR")
    end = full.rindex(b"END:VCALENDAR")
    return feed_scope.busy_head(full[:at]) + feed_scope.busy_vevent(full[at:end]) + full[end:]


@pytest.mark.usefixtures("tiny_chunks")
@pytest.mark.parametrize("seed", [1, 2])
def test_busy_feed_follows_every_rebuild(make_api, seed) -> None:
    """After random writes (tiny chunks, so rebuilds reuse some and remake others), the busy feed
    is exactly the busy form of the full feed served at the same moment."""
    clock = ManualClock(START - timedelta(days=1))
    api = make_api(clock=clock, feed_rate_limit_per_minute=10**6)
    cal = api.calendar(name="Rebuilt", timezone="UTC", default_reminders=[15])
    busy = _token(api, cal["id"], "busy", kind="busy")
    rng = random.Random(seed)
    writer = Writer(api, clock, cal["id"], rng)
    for _ in range(40):
        writer.create()
    for _ in range(40):
        for _ in range(rng.choice([1, 1, 2, 5])):
            writer.step()
        order = [busy["ical_url"], cal["ical_url"]]
        rng.shuffle(order)
        bodies = {url: _get(api, url).content for url in order}
        assert bodies[busy["ical_url"]] == _busy_of(bodies[cal["ical_url"]])
        assert b"SUMMARY:Busy" not in bodies[cal["ical_url"]]

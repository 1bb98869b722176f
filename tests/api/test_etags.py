"""Optimistic concurrency (issue 21, item 2): events, calendars and agents answer a strong ETag
that moves with every change a client can see; PATCH, DELETE and the event actions honour
If-Match (412 precondition_failed with the current ETag, nothing written); two clients racing
with the same ETag over a real socket: exactly one wins."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from chronary.clock import ManualClock
from chronary.services import events as event_svc
from chronary.store import events as event_store
from tests.api._helpers import assert_error
from tests.conftest import Api
from tests.ical.feedserver import FeedServer, vcalendar, vevent
from tests.ical.subsync import run_subscription_worker

START, END = "2030-01-07T09:00:00Z", "2030-01-07T10:00:00Z"


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    server = FeedServer()
    yield server
    server.close()


def _etag(r: httpx.Response) -> str:
    tag = r.headers.get("etag")
    assert tag and tag.startswith('"') and tag.endswith('"') and not tag.startswith("W/"), r.headers
    return tag


def _setup(api: Api, **event: Any) -> tuple[dict[str, Any], dict[str, Any], str]:
    agent = api.agent()
    cal = api.calendar(agent["id"])
    ev = api.event(cal["id"], START, END, **event)
    return agent, cal, f"/v1/calendars/{cal['id']}/events/{ev['id']}"


def _current(api: Api, url: str) -> str:
    r = api.get(url)
    assert r.status_code == 200, r.text
    return _etag(r)


def _changed(api: Api, url: str, r: httpx.Response, old: str) -> str:
    """A write's answer carries the new ETag: different from `old`, the same a GET then gives."""
    assert r.status_code in (200, 201), r.text
    new = _etag(r)
    assert new != old
    assert _current(api, url) == new
    return new


def test_create_get_and_patch_answer_the_same_etag_a_get_gives(api: Api) -> None:
    r = api.post("/v1/agents", json={"name": "Ada"})
    agent_url = f"/v1/agents/{r.json()['id']}"
    assert _etag(r) == _current(api, agent_url)
    r = api.post(f"{agent_url}/calendars", json={"name": "Work", "timezone": "UTC"})
    cal_url = f"/v1/calendars/{r.json()['id']}"
    assert _etag(r) == _current(api, cal_url)
    r = api.post("/v1/calendars", json={"name": "Org", "timezone": "UTC"})
    assert _etag(r) == _current(api, f"/v1/calendars/{r.json()['id']}")
    body = {"title": "T", "start_time": START, "end_time": END, "metadata": {"z": 1, "a": {"y": 2, "b": 3}}}
    r = api.post(f"{cal_url}/events", json=body)
    event_url = f"{cal_url}/events/{r.json()['id']}"
    tag = _etag(r)
    assert tag == _current(api, event_url)
    assert _current(api, event_url) == tag  # stable while nothing changes

    tag = _changed(api, event_url, api.patch(event_url, json={"title": "T2"}), tag)
    tag = _changed(api, event_url, api.patch(event_url, json={"metadata": {"b": 1, "a": 2}}), tag)
    for url, change in ((agent_url, {"name": "Ada L."}), (cal_url, {"name": "Work 2"})):
        before = _current(api, url)
        _changed(api, url, api.patch(url, json=change), before)


def test_every_visible_event_change_moves_the_etag(api: Api) -> None:
    agent, cal, url = _setup(api)
    tag = _current(api, url)
    tag = _changed(api, url, api.post(f"{url}/cancel"), tag)
    tag = _changed(api, url, api.patch(url, json={"status": "confirmed"}), tag)

    # a hold confirmed
    base = f"/v1/calendars/{cal['id']}/events"
    hold = api.post(base, json={"title": "H", "status": "hold", "start_time": START, "end_time": END, "allow_overlap": True})
    hold_url = f"{base}/{hold.json()['id']}"
    _changed(api, hold_url, api.post(f"{hold_url}/confirm"), _etag(hold))

    # a series: an occurrence edit, cancel and delete; the occurrence has its own ETag
    series = api.event(cal["id"], START, END, title="Weekly", recurrence=["RRULE:FREQ=WEEKLY;COUNT=4"])
    series_url = f"{base}/{series['id']}"
    occ_url = f"{series_url}_20300114T090000Z"
    occ_tag, series_tag = _current(api, occ_url), _current(api, series_url)
    assert occ_tag != series_tag
    occ_tag = _changed(api, occ_url, api.patch(occ_url, json={"title": "Moved"}), occ_tag)
    assert _current(api, series_url) == series_tag  # the series itself did not change
    occ_tag = _changed(api, occ_url, api.post(f"{occ_url}/cancel"), occ_tag)
    other_occ = f"{series_url}_20300121T090000Z"
    other_tag = _current(api, other_occ)
    assert api.delete(other_occ).status_code == 204
    series_tag = _changed(api, series_url, api.get(series_url), series_tag)  # its EXDATE is visible
    # a series change shows in the occurrences it generates
    third = f"{series_url}_20300128T090000Z"
    third_tag = _current(api, third)
    _changed(api, series_url, api.patch(series_url, json={"location": "Room 2"}), series_tag)
    assert _current(api, third) != third_tag
    assert other_tag  # (deleted: 404 from here on)
    assert api.get(other_occ).status_code == 404


def test_changes_made_elsewhere_move_the_etag(api: Api) -> None:
    """A calendar's new timezone re-anchors its all-day events; a store write by another writer
    (the sync merge's path) shows in the ETag as well: it hashes what clients see, not a counter."""
    agent = api.agent()
    cal = api.calendar(agent["id"], timezone="Europe/Berlin")
    day = api.event(cal["id"], "2030-07-01", "2030-07-02", all_day=True)
    url = f"/v1/calendars/{cal['id']}/events/{day['id']}"
    tag = _current(api, url)
    cal_url = f"/v1/calendars/{cal['id']}"
    assert api.patch(cal_url, json={"timezone": "America/New_York"}).status_code == 200
    tag = _changed(api, url, api.get(url), tag)

    def merge(tx: Any) -> None:
        row = event_store.get(tx.conn, day["id"])
        assert row is not None
        values = {"location": "Synced in", "sequence": row["sequence"] + 1}
        event_store.patch(tx.conn, day["id"], values)
        event_svc.record_event_change(tx, "updated", row, {**row, **values}, event_svc.calendar_of(tx, row))

    api.runtime.db.write_sync(merge)
    _changed(api, url, api.get(url), tag)


def test_a_subscription_sync_moves_an_imported_events_etag(make_api: Any, feed_server: FeedServer) -> None:
    clock = ManualClock(datetime(2026, 2, 1, tzinfo=UTC))
    api = make_api(clock=clock)
    feed_server.serve("/cal.ics", vcalendar(vevent("a@test", "20260302T090000Z", "20260302T100000Z", "Alpha")))
    agent = api.agent()
    cal = api.calendar(agent["id"])
    sub = api.post(
        f"/v1/agents/{agent['id']}/ical-subscriptions",
        json={"calendar_id": cal["id"], "url": feed_server.url("/cal.ics")},
    ).json()
    run_subscription_worker(api)
    base = f"/v1/calendars/{cal['id']}/events"
    (event,) = api.get(base).json()["data"]
    url = f"{base}/{event['id']}"
    tag = _current(api, url)
    feed_server.serve("/cal.ics", vcalendar(vevent("a@test", "20260302T090000Z", "20260302T103000Z", "Alpha v2")))
    clock.advance(minutes=1)
    assert api.post(f"/v1/ical-subscriptions/{sub['id']}/sync").status_code == 202
    run_subscription_worker(api)
    _changed(api, url, api.get(url), tag)
    # read-only: a stale If-Match does not turn the 403 into a 412
    r = api.patch(url, json={"title": "x"}, headers={"If-Match": tag})
    assert_error(r, 403, "forbidden")


def test_if_match_current_star_and_lists_pass(api: Api) -> None:
    _, _, url = _setup(api)
    tag = _current(api, url)
    r = api.patch(url, json={"title": "A"}, headers={"If-Match": tag})
    tag = _changed(api, url, r, tag)
    r = api.patch(url, json={"title": "B"}, headers={"If-Match": "*"})
    tag = _changed(api, url, r, tag)
    r = api.patch(url, json={"title": "C"}, headers={"If-Match": f'"nope", {tag} ,"x,y"'})
    tag = _changed(api, url, r, tag)
    # no If-Match: the last write wins, as before
    assert api.patch(url, json={"title": "D"}).status_code == 200
    assert api.get(url).json()["title"] == "D"


@pytest.mark.parametrize(
    "header",
    ["stale", "weak", "other"],
)
def test_if_match_mismatch_is_412_with_the_current_etag_and_nothing_written(api: Api, header: str) -> None:
    _, _, url = _setup(api, title="Original")
    stale = _current(api, url)
    current = _changed(api, url, api.patch(url, json={"title": "Now"}), stale)
    sent = {"stale": stale, "weak": f"W/{current}", "other": '"0123", "4567"'}[header]
    r = api.patch(url, json={"title": "Lost update"}, headers={"If-Match": sent})
    err = assert_error(r, 412, "precondition_failed", "If-Match")
    assert r.headers["etag"] == current and current in err["message"]
    got = api.get(url)
    assert got.json()["title"] == "Now" and _etag(got) == current


def test_malformed_if_match_is_a_validation_error(api: Api) -> None:
    _, _, url = _setup(api)
    for bad in ("abc", '"a" "b"', "W/abc", ",", ""):
        r = api.patch(url, json={"title": "x"}, headers={"If-Match": bad})
        assert_error(r, 400, "validation_error", "If-Match")
    assert api.get(url).json()["title"] == "Meeting"


def test_delete_and_event_actions_honour_if_match(api: Api) -> None:
    agent, cal, url = _setup(api)
    base = f"/v1/calendars/{cal['id']}/events"
    stale = _current(api, url)
    current = _changed(api, url, api.patch(url, json={"title": "x"}), stale)
    for method, path in (("DELETE", url), ("POST", f"{url}/cancel")):
        r = api.request(method, path, headers={"If-Match": stale})
        assert_error(r, 412, "precondition_failed", "If-Match")
        assert r.headers["etag"] == current
    assert api.get(url).json()["status"] == "confirmed"
    cancelled = api.post(f"{url}/cancel", headers={"If-Match": current})
    current = _changed(api, url, cancelled, current)
    assert api.delete(url, headers={"If-Match": current}).status_code == 204
    assert api.get(url).status_code == 404
    assert_error(api.delete(url, headers={"If-Match": "*"}), 404, "not_found")  # gone: 404, not 412

    body = {"title": "H", "status": "hold", "start_time": START, "end_time": END, "allow_overlap": True}
    for action, after in (("confirm", 200), ("release", 204)):
        hold = api.post(base, json=body)
        hold_url = f"{base}/{hold.json()['id']}"
        first = _etag(hold)
        moved = _changed(api, hold_url, api.patch(hold_url, json={"location": "Here"}), first)
        r = api.post(f"{hold_url}/{action}", headers={"If-Match": first})
        assert_error(r, 412, "precondition_failed")
        assert r.headers["etag"] == moved and api.get(hold_url).json()["status"] == "hold"
        assert api.post(f"{hold_url}/{action}", headers={"If-Match": moved}).status_code == after


def test_occurrence_if_match_before_it_is_stored(api: Api) -> None:
    """An occurrence's ETag before its first change is that of the generated occurrence; the
    check runs before the exception row is stored (a refused write stores nothing)."""
    _, cal, _ = _setup(api)
    series = api.event(cal["id"], START, END, title="Weekly", recurrence=["RRULE:FREQ=WEEKLY;COUNT=3"])
    series_url = f"/v1/calendars/{cal['id']}/events/{series['id']}"
    occ_url = f"{series_url}_20300114T090000Z"
    generated = _current(api, occ_url)
    assert_error(api.patch(occ_url, json={"title": "x"}, headers={"If-Match": '"old"'}), 412, "precondition_failed")
    assert api.runtime.db.read_sync(lambda tx: event_store.get(tx.conn, f"{series['id']}_20300114T090000Z")) is None
    _changed(api, occ_url, api.patch(occ_url, json={"title": "x"}, headers={"If-Match": generated}), generated)


def test_calendars_and_agents_honour_if_match(api: Api) -> None:
    agent, cal, _ = _setup(api)
    for url, change in ((f"/v1/calendars/{cal['id']}", {"name": "N"}), (f"/v1/agents/{agent['id']}", {"name": "M"})):
        stale = _current(api, url)
        current = _changed(api, url, api.patch(url, json=change, headers={"If-Match": stale}), stale)
        for method, kw in (("PATCH", {"json": {"name": "lost"}}), ("DELETE", {})):
            r = api.request(method, url, headers={"If-Match": stale}, **kw)
            assert_error(r, 412, "precondition_failed", "If-Match")
            assert r.headers["etag"] == current
        assert api.get(url).json()["name"] == change["name"]
        assert api.delete(url, headers={"If-Match": current}).status_code == 204
        assert api.get(url).status_code == 404


def test_if_none_match_answers_304_while_current(api: Api) -> None:
    agent, cal, url = _setup(api)
    for path in (url, f"/v1/calendars/{cal['id']}", f"/v1/agents/{agent['id']}"):
        tag = _current(api, path)
        for sent in (tag, f"W/{tag}", f'"x", {tag}', "*"):
            r = api.get(path, headers={"If-None-Match": sent})
            assert r.status_code == 304 and r.content == b"" and r.headers["etag"] == tag
        r = api.get(path, headers={"If-None-Match": '"other"'})
        assert r.status_code == 200 and r.json()["id"] and _etag(r) == tag


def test_idempotent_retry_replays_the_etag(api: Api) -> None:
    agent, cal, _ = _setup(api)
    body = {"title": "Once", "start_time": START, "end_time": END}
    first = api.post(f"/v1/calendars/{cal['id']}/events", json=body, headers={"Idempotency-Key": "k-etag-1"})
    again = api.post(f"/v1/calendars/{cal['id']}/events", json=body, headers={"Idempotency-Key": "k-etag-1"})
    assert again.headers.get("idempotent-replayed") == "true"
    assert _etag(again) == _etag(first)


def test_openapi_documents_if_match_and_etag(api: Api) -> None:
    paths = api.as_key("").get("/schema/openapi.json").json()["paths"]
    event = "/v1/calendars/{calendar_id}/events/{event_id}"
    writes = [
        (event, "patch"),
        (event, "delete"),
        (f"{event}/cancel", "post"),
        (f"{event}/confirm", "post"),
        (f"{event}/release", "post"),
        ("/v1/calendars/{calendar_id}", "patch"),
        ("/v1/calendars/{calendar_id}", "delete"),
        ("/v1/agents/{agent_id}", "patch"),
        ("/v1/agents/{agent_id}", "delete"),
    ]
    for path, method in writes:
        op = paths[path][method]
        params = {p["name"]: p for p in op["parameters"]}
        assert params["If-Match"]["in"] == "header" and not params["If-Match"]["required"], (path, method)
        assert "412" in op["responses"], (path, method)
    tagged = [(event, "get"), (event, "patch"), (f"{event}/cancel", "post"), ("/v1/calendars/{calendar_id}/events", "post")]
    tagged += [("/v1/calendars/{calendar_id}", "get"), ("/v1/agents/{agent_id}", "get"), ("/v1/agents", "post")]
    for path, method in tagged:
        responses = paths[path][method]["responses"]
        (ok,) = (c for c in responses if c.startswith("2"))
        assert responses[ok]["headers"]["ETag"]["schema"]["type"] == "string", (path, method)
    assert "If-None-Match" in {p["name"] for p in paths[event]["get"]["parameters"]}


def _race(url: str, clients: list[httpx.Client], suffix: str) -> dict[str, httpx.Response]:
    """Each client reads the event's ETag; once both hold it, both PATCH with If-Match at once."""
    barrier = threading.Barrier(len(clients))
    answers: dict[str, httpx.Response] = {}

    def edit(name: str, client: httpx.Client) -> None:
        tag = _etag(client.get(url))
        barrier.wait()  # both hold the same ETag before either writes
        answers[name] = client.patch(url, json={"title": f"{name} {suffix}"}, headers={"If-Match": tag})

    threads = [threading.Thread(target=edit, args=(n, cl)) for n, cl in zip("ab", clients, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return answers


def test_two_clients_racing_with_one_etag_one_wins(live_server: Any) -> None:
    """Both read the same ETag, then PATCH with If-Match at the same moment, over real sockets:
    one 200, one 412 naming the winner's ETag, and the stored event is the winner's."""
    server = live_server(workers=False)
    with server.client() as c:
        agent = c.post("/v1/agents", json={"name": "Ada"}).json()
        cal = c.post(f"/v1/agents/{agent['id']}/calendars", json={"name": "W", "timezone": "UTC"}).json()
        ev = c.post(f"/v1/calendars/{cal['id']}/events", json={"title": "T", "start_time": START, "end_time": END})
        url = f"/v1/calendars/{cal['id']}/events/{ev.json()['id']}"
    clients = [server.client(), server.client()]
    try:
        for round_ in range(5):
            answers = _race(url, clients, str(round_))
            assert sorted(r.status_code for r in answers.values()) == [200, 412], {k: v.text for k, v in answers.items()}
            (winner,) = (n for n, r in answers.items() if r.status_code == 200)
            (loser,) = (n for n, r in answers.items() if r.status_code == 412)
            assert answers[loser].json()["error"]["type"] == "precondition_failed"
            assert answers[loser].headers["etag"] == _etag(answers[winner])
            final = clients[0].get(url)
            assert final.json()["title"] == f"{winner} {round_}" and _etag(final) == _etag(answers[winner])
    finally:
        for cl in clients:
            cl.close()

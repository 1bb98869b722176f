"""Idempotency-Key on POST and PATCH: retries answer the first result and never act twice."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest

from chronary.services import idempotency
from tests.api._helpers import assert_error

T0, T1 = "2030-01-07T09:00:00Z", "2030-01-07T10:00:00Z"


def _events(api: Any, cal_id: str) -> list[dict[str, Any]]:
    r = api.get(f"/v1/calendars/{cal_id}/events?limit=100")
    assert r.status_code == 200, r.text
    return r.json()["data"]


def _book(api: Any, cal_id: str, key: str, title: str = "Design review", **extra: Any) -> httpx.Response:
    body = {"title": title, "start_time": T0, "end_time": T1, **extra}
    return api.post(f"/v1/calendars/{cal_id}/events", json=body, headers={"Idempotency-Key": key})


def test_retry_answers_the_first_result_and_books_once(api):
    cal = api.calendar()
    first = _book(api, cal["id"], "book-1")
    assert first.status_code == 201, first.text
    again = _book(api, cal["id"], "book-1")
    assert again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert [e["id"] for e in _events(api, cal["id"])] == [first.json()["id"]]
    # another key is another request
    other = _book(api, cal["id"], "book-2")
    assert other.status_code == 201 and other.json()["id"] != first.json()["id"]
    assert len(_events(api, cal["id"])) == 2


def test_same_json_in_another_key_order_is_the_same_request(api):
    cal = api.calendar()
    url = f"/v1/calendars/{cal['id']}/events"
    a = api.post(
        url,
        content=f'{{"title":"x","start_time":"{T0}","end_time":"{T1}"}}',
        headers={"Idempotency-Key": "k", "Content-Type": "application/json"},
    )
    b = api.post(
        url,
        content=f'{{ "end_time": "{T1}", "start_time": "{T0}", "title": "x" }}',
        headers={"Idempotency-Key": "k", "Content-Type": "application/json"},
    )
    assert a.status_code == b.status_code == 201
    assert a.json()["id"] == b.json()["id"]


def test_reused_key_with_a_different_body_or_path_is_refused_naming_it(api):
    cal = api.calendar()
    assert _book(api, cal["id"], "k1").status_code == 201
    r = _book(api, cal["id"], "k1", title="Something else", location="Room 2")
    assert_error(r, 422, "idempotency_mismatch", "Idempotency-Key")
    assert "location, title" in r.json()["error"]["message"]
    other = api.calendar(name="Other")
    r = _book(api, other["id"], "k1")
    assert_error(r, 422, "idempotency_mismatch", "Idempotency-Key")
    assert f"/v1/calendars/{cal['id']}/events" in r.json()["error"]["message"]
    assert _events(api, other["id"]) == []


def test_keys_belong_to_their_holder(api):
    agent = api.agent()
    cal = api.calendar(agent["id"])
    agent_api = api.as_key(api.agent_key(agent["id"]))
    mine = _book(api, cal["id"], "shared-key")
    theirs = _book(agent_api, cal["id"], "shared-key")
    assert mine.status_code == theirs.status_code == 201
    assert mine.json()["id"] != theirs.json()["id"]


def test_client_errors_are_kept_but_server_side_refusals_are_not(api):
    cal = api.calendar()
    bad = _book(api, cal["id"], "bad", end_time="2030-01-07T08:00:00Z")
    assert_error(bad, 400, "validation_error", "end_time")
    again = _book(api, cal["id"], "bad", end_time="2030-01-07T08:00:00Z")
    assert again.json() == bad.json() and again.headers["idempotent-replayed"] == "true"
    assert idempotency.worth_keeping(201) and idempotency.worth_keeping(404)
    assert not idempotency.worth_keeping(500) and not idempotency.worth_keeping(429)


def test_patch_is_idempotent_too_and_get_ignores_the_header(api):
    cal = api.calendar()
    event = api.event(cal["id"], T0, T1)
    url = f"/v1/calendars/{cal['id']}/events/{event['id']}"
    first = api.patch(url, json={"title": "Renamed"}, headers={"Idempotency-Key": "p1"})
    assert first.status_code == 200
    api.patch(url, json={"title": "Changed later"})
    retry = api.patch(url, json={"title": "Renamed"}, headers={"Idempotency-Key": "p1"})
    assert retry.json()["title"] == "Renamed" and retry.headers["idempotent-replayed"] == "true"
    assert api.get(url).json()["title"] == "Changed later"  # the retry did not write again
    got = api.get(url, headers={"Idempotency-Key": "p1"})
    assert got.status_code == 200 and "idempotent-replayed" not in got.headers


@pytest.mark.parametrize("key", ["", " ", "x" * 256, "a b", "ké"])
def test_bad_keys_are_refused_and_nothing_is_written(api, key):
    cal = api.calendar()
    r = api.post(
        f"/v1/calendars/{cal['id']}/events",
        json={"title": "t", "start_time": T0, "end_time": T1},
        headers={"Idempotency-Key": key.encode()},
    )
    assert_error(r, 400, "validation_error", "Idempotency-Key")
    assert _events(api, cal["id"]) == []
    longest = _book(api, cal["id"], "x" * idempotency.MAX_KEY_LENGTH)
    assert longest.status_code == 201


def test_without_a_valid_api_key_nothing_is_replayed(api):
    cal = api.calendar()
    assert _book(api, cal["id"], "k").status_code == 201
    anonymous = api.as_key("")
    assert_error(_book(anonymous, cal["id"], "k"), 401, "unauthorized", None)


def test_expired_keys_run_again(make_api, clock):
    api = make_api(clock=clock)
    cal = api.calendar()
    first = _book(api, cal["id"], "k")
    clock.advance(seconds=idempotency.TTL_SECONDS + 1)
    second = _book(api, cal["id"], "k")
    assert second.status_code == 201 and second.json()["id"] != first.json()["id"]


def test_connect_api_posts_are_idempotent(api):
    body = {"name": "Orders", "slug": "orders", "columns": [{"name": "code", "type": "text"}]}
    first = api.post("/connect/v1/tables", json=body, headers={"Idempotency-Key": "table"})
    assert first.status_code == 201, first.text
    retry = api.post("/connect/v1/tables", json=body, headers={"Idempotency-Key": "table"})
    assert retry.status_code == 201 and retry.json() == first.json()
    assert retry.headers["idempotent-replayed"] == "true"
    plain = api.post("/connect/v1/tables", json=body)
    assert plain.status_code == 409  # without the key the second one is a duplicate slug, as before


def test_concurrent_retries_make_one_event(live_server):
    server = live_server()
    with server.client() as c:
        cal = c.post("/v1/calendars", json={"name": "Work", "timezone": "UTC"}).json()
    answers: list[httpx.Response] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def retry() -> None:
        with server.client() as c:
            start.wait()
            r = c.post(
                f"/v1/calendars/{cal['id']}/events",
                json={"title": "Once", "start_time": T0, "end_time": T1},
                headers={"Idempotency-Key": "race"},
            )
            with lock:
                answers.append(r)

    threads = [threading.Thread(target=retry) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.status_code for r in answers] == [201] * 8
    assert len({r.json()["id"] for r in answers}) == 1
    assert sum(r.headers.get("idempotent-replayed") == "true" for r in answers) == 7
    with server.client() as c:
        assert len(c.get(f"/v1/calendars/{cal['id']}/events").json()["data"]) == 1


def test_a_restart_between_request_and_retry_answers_the_first_result(live_server, data_dir):
    server = live_server()
    key = server.key
    with server.client() as c:
        cal = c.post("/v1/calendars", json={"name": "Work", "timezone": "UTC"}).json()
        body = {"title": "Before restart", "start_time": T0, "end_time": T1}
        first = c.post(f"/v1/calendars/{cal['id']}/events", json=body, headers={"Idempotency-Key": "r1"})
    assert first.status_code == 201
    server.stop()
    again = live_server()
    with again.client(key) as c:
        retry = c.post(f"/v1/calendars/{cal['id']}/events", json=body, headers={"Idempotency-Key": "r1"})
        assert retry.status_code == 201 and retry.json() == first.json()
        assert retry.headers["idempotent-replayed"] == "true"
        assert len(c.get(f"/v1/calendars/{cal['id']}/events").json()["data"]) == 1


def test_a_key_left_running_by_a_stopped_server_is_taken_over(api):
    """A crash mid-request leaves the key running under the old process; the retry runs it."""
    cal = api.calendar()
    target = f"/v1/calendars/{cal['id']}/events"
    body = b'{"title":"t","start_time":"%s","end_time":"%s"}' % (T0.encode(), T1.encode())
    fp = idempotency.fingerprint("POST", target, body)
    holder = api.runtime.db.read_sync(lambda tx: tx.conn.execute("SELECT id FROM api_keys LIMIT 1").fetchone()["id"])
    now = int(api.runtime.clock.now().timestamp())
    api.runtime.db.write_sync(lambda tx: idempotency.begin(tx, holder, "crashed", fp, "run_gone", now, api.runtime.secrets))
    r = api.post(target, content=body, headers={"Idempotency-Key": "crashed", "Content-Type": "application/json"})
    assert r.status_code == 201, r.text
    assert len(_events(api, cal["id"])) == 1


def test_a_running_first_request_makes_the_retry_wait_or_409(api, monkeypatch):
    from chronary.api import _idempotency

    cal = api.calendar()
    target = f"/v1/calendars/{cal['id']}/events"
    body = b'{"title":"t","start_time":"%s","end_time":"%s"}' % (T0.encode(), T1.encode())
    fp = idempotency.fingerprint("POST", target, body)
    holder = api.runtime.db.read_sync(lambda tx: tx.conn.execute("SELECT id FROM api_keys LIMIT 1").fetchone()["id"])
    owner = api.runtime.extras.get("idempotency_owner")
    if owner is None:  # the middleware names its process on first use
        api.post(target, content=body, headers={"Idempotency-Key": "warm", "Content-Type": "application/json"})
        owner = api.runtime.extras["idempotency_owner"]
    now = int(api.runtime.clock.now().timestamp())
    api.runtime.db.write_sync(lambda tx: idempotency.begin(tx, holder, "busy", fp, owner, now, api.runtime.secrets))
    monkeypatch.setattr(_idempotency, "WAIT_SECONDS", 0.3)
    r = api.post(target, content=body, headers={"Idempotency-Key": "busy", "Content-Type": "application/json"})
    assert_error(r, 409, "idempotency_in_progress", "Idempotency-Key")
    assert r.headers["retry-after"] == "2"


def test_openapi_documents_the_header_on_writes_only(api):
    doc = api.get("/schema/openapi.json").json()
    create = doc["paths"]["/v1/calendars/{calendar_id}/events"]
    names = [p["name"] for p in create["post"].get("parameters", [])]
    assert "Idempotency-Key" in names
    assert "Idempotency-Key" not in [p["name"] for p in create["get"].get("parameters", [])]
    header = next(p for p in create["post"]["parameters"] if p["name"] == "Idempotency-Key")
    assert header["in"] == "header" and header["schema"]["maxLength"] == 255
    assert "Idempotency-Key" in [p["name"] for p in doc["paths"]["/connect/v1/tables"]["post"]["parameters"]]


def test_kept_answers_are_encrypted_at_rest(api):
    """A new API key's secret is shown once; the kept answer must not hold it readable."""
    r = api.post("/v1/keys", json={"name": "bot"}, headers={"Idempotency-Key": "key-1"})
    assert r.status_code == 201
    secret = r.json()["secret"]
    stored = api.runtime.db.read_sync(lambda tx: tx.conn.execute("SELECT body FROM idempotency_keys").fetchone()["body"])
    assert secret.encode() not in bytes(stored) and b"secret" not in bytes(stored)
    again = api.post("/v1/keys", json={"name": "bot"}, headers={"Idempotency-Key": "key-1"})
    assert again.json()["secret"] == secret and again.headers["idempotent-replayed"] == "true"

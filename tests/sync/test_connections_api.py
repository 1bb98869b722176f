"""Connections API against a real Radicale: login before storing, secrets never shown, PATCH
mapping rules, refresh rate limit, delete keeps mirrors as local events."""

from __future__ import annotations

import base64
import logging

from tests.conftest import Api, free_port
from tests.sync.conftest import PASSWORD, Radicale, connect, enable, events, sync, vevent


def _no_secret(text: str, user: str) -> None:
    assert PASSWORD not in text
    assert base64.b64encode(f"{user}:{PASSWORD}".encode()).decode() not in text


def test_wrong_password_is_400_and_stores_nothing(api: Api, radicale: Radicale) -> None:
    user = radicale.new_user()
    agent = api.agent()
    r = api.post(
        "/v1/connections",
        json={
            "provider": "caldav",
            "agent_id": agent["id"],
            "username": user,
            "password": "nope",
            "server_url": radicale.url,
        },
    )
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["type"] == "validation_error" and err["param"] == "password"
    assert "username or password" in err["message"]
    assert api.get("/v1/connections").json()["total"] == 0


def test_create_discovers_calendars_and_never_returns_the_password(api: Api, radicale: Radicale, caplog) -> None:
    api.receive_webhooks()  # changes are logged with the payloads an endpoint gets
    caplog.set_level(logging.DEBUG)
    user = radicale.new_user()
    radicale.make_calendar(user, "work", "Work")
    radicale.make_calendar(user, "home", "Home")
    agent = api.agent()
    con = connect(api, agent["id"], user, radicale.url)
    assert con["id"].startswith("con_") and con["object"] == "connection"
    assert con["provider"] == "caldav" and con["status"] == "active" and con["sync_mode"] == "polling"
    assert con["sync_interval_minutes"] == 5 and con["username"] == user and con["agent_id"] == agent["id"]
    assert con["webhook_subscription"] is None and con["token_refresh"]["failures_count"] == 0
    assert sorted(c["name"] for c in con["calendars"]) == ["Home", "Work"]
    assert all(c["sync"] is False and c["calendar_id"] is None for c in con["calendars"])
    # default view lists synced calendars only; expand[]=calendars lists all
    assert api.get(f"/v1/connections/{con['id']}").json()["calendars"] == []
    full = api.get(f"/v1/connections/{con['id']}", params={"expand[]": "calendars"}).json()
    assert len(full["calendars"]) == 2
    mapped = enable(api, con, f"/{user}/work/")
    sync(api, con["id"])
    webhooks = api.runtime.db.read_sync(lambda tx: [r["payload"] for r in tx.conn.execute("SELECT payload FROM outbox")])
    bodies = [
        api.get("/v1/connections").text,
        api.get(f"/v1/connections/{con['id']}").text,
        repr(full),
        caplog.text,
        *webhooks,
    ]
    for body in bodies:
        _no_secret(body, user)
    stored = api.runtime.db.read_sync(lambda tx: list(tx.conn.execute("SELECT secret FROM connections")))
    assert PASSWORD not in stored[0]["secret"] and stored[0]["secret"]
    assert mapped["name"] == "Work"


def test_validation_and_access(api: Api, radicale: Radicale) -> None:
    agent = api.agent()
    user = radicale.new_user()
    base = {"agent_id": agent["id"], "username": user, "password": PASSWORD}
    r = api.post("/v1/connections", json={**base, "provider": "caldav"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "server_url"
    for provider in ("google", "microsoft"):
        r = api.post("/v1/connections", json={**base, "provider": provider})
        assert r.status_code == 400 and "OAuth" in r.json()["error"]["message"], r.text
    r = api.post("/v1/connections", json={**base, "provider": "exchange", "server_url": radicale.url})
    assert r.status_code == 400
    r = api.post("/v1/connections", json={**base, "provider": "caldav", "server_url": "http://127.0.0.1:8765/dav/"})
    assert r.status_code == 400 and "itself" in r.json()["error"]["message"]  # never aimed at this server
    r = api.post("/v1/connections", json={**base, "provider": "caldav", "server_url": f"http://{user}:pw@127.0.0.1/"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "server_url"
    r = api.post("/v1/connections", json={**base, "provider": "caldav", "server_url": "ftp://x"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "server_url"
    r = api.post("/v1/connections", json={**base, "provider": "caldav", "server_url": radicale.url, "extra": 1})
    assert r.status_code == 400
    r = api.post("/v1/connections", json={**base, "provider": "caldav", "server_url": f"http://127.0.0.1:{free_port()}/"})
    assert r.status_code == 502 and r.json()["error"]["type"] == "upstream_error", r.text
    r = api.post(
        "/v1/connections", json={**base, "agent_id": "agt_missing", "provider": "caldav", "server_url": radicale.url}
    )
    assert r.status_code == 404
    assert api.get("/v1/connections").json()["total"] == 0
    con = connect(api, agent["id"], user, radicale.url)
    agent_api = api.as_key(api.agent_key(agent["id"]))
    for method, url in (
        ("GET", "/v1/connections"),
        ("GET", f"/v1/connections/{con['id']}"),
        ("POST", f"/v1/connections/{con['id']}/refresh"),
        ("DELETE", f"/v1/connections/{con['id']}"),
    ):
        assert agent_api.request(method, url).status_code == 403
    r = agent_api.post("/v1/connections", json={**base, "provider": "caldav", "server_url": radicale.url})
    assert r.status_code == 403
    r = api.post("/v1/connections", json={**base, "provider": "caldav", "server_url": radicale.url})
    assert r.status_code == 409
    assert api.get("/v1/connections/con_nope").status_code == 404


def test_list_filters_and_paging(api: Api, radicale: Radicale) -> None:
    a, b = api.agent("A"), api.agent("B")
    c1 = connect(api, a["id"], radicale.new_user(), radicale.url)
    connect(api, b["id"], radicale.new_user(), radicale.url, provider="icloud")
    assert api.get("/v1/connections").json()["total"] == 2
    assert [c["id"] for c in api.get("/v1/connections", params={"agent_id": a["id"]}).json()["data"]] == [c1["id"]]
    assert api.get("/v1/connections", params={"provider": "icloud"}).json()["total"] == 1
    assert api.get("/v1/connections", params={"status": "error"}).json()["total"] == 0
    page = api.get("/v1/connections", params={"limit": 1, "offset": 1}).json()
    assert page["total"] == 2 and len(page["data"]) == 1 and page["limit"] == 1
    assert api.get("/v1/connections", params={"provider": "nope"}).status_code == 400
    assert api.get("/v1/connections", params={"expand[]": "nope"}).status_code == 400


def test_patch_mapping_rules(api: Api, radicale: Radicale) -> None:
    user = radicale.new_user()
    radicale.make_calendar(user, "work", "Work")
    radicale.make_calendar(user, "home", "Home")
    agent, other = api.agent("A"), api.agent("B")
    con = connect(api, agent["id"], user, radicale.url)
    url = f"/v1/connections/{con['id']}"
    assert api.patch(url, json={}).status_code == 400
    r = api.patch(url, json={"calendars": [{"remote_id": "/nope/", "sync": True}]})
    assert r.status_code == 400 and r.json()["error"]["param"] == "calendars[0].remote_id"
    foreign = api.calendar(other["id"])
    r = api.patch(url, json={"calendars": [{"remote_id": f"/{user}/work/", "sync": True, "calendar_id": foreign["id"]}]})
    assert r.status_code == 400 and r.json()["error"]["param"] == "calendars[0].calendar_id"
    assert api.patch(url, json={"sync_interval_minutes": 0}).status_code == 400
    # sync on without calendar_id: a calendar owned by the agent is created for it
    mapped = enable(api, con, f"/{user}/work/")
    cal = api.get(f"/v1/calendars/{mapped['calendar_id']}").json()
    assert cal["agent_id"] == agent["id"] and cal["name"] == "Work"
    # with calendar_id: an existing calendar of the agent; its local events go up
    mine = api.calendar(agent["id"], name="Mine")
    api.event(mine["id"], "2026-02-02T10:00:00Z", "2026-02-02T11:00:00Z", title="Local first")
    enable(api, con, f"/{user}/home/", mine["id"])
    r = api.patch(url, json={"calendars": [{"remote_id": f"/{user}/work/", "sync": True, "calendar_id": mine["id"]}]})
    assert r.status_code == 409
    r = api.patch(url, json={"sync_interval_minutes": 15})
    assert r.status_code == 200 and r.json()["sync_interval_minutes"] == 15
    sync(api, con["id"])
    remote = radicale.client(user).calendar(url=f"{radicale.url}{user}/home/").get_events()
    assert [e.icalendar_component["SUMMARY"] for e in remote] == ["Local first"]
    # sync off: mapping cleared, mirrors stay as plain local events
    r = api.patch(url, json={"calendars": [{"remote_id": f"/{user}/home/", "sync": False}]})
    assert r.status_code == 200
    home = next(c for c in r.json()["calendars"] if c["remote_id"] == f"/{user}/home/")
    assert home == {**home, "sync": False, "calendar_id": None}
    (ev,) = events(api, mine["id"])
    assert ev["remote"] is None and ev["source"] == "internal" and ev["read_only"] is False


def test_refresh_is_rate_limited(api: Api, radicale: Radicale) -> None:
    con = connect(api, api.agent()["id"], radicale.new_user(), radicale.url)
    r = api.post(f"/v1/connections/{con['id']}/refresh")
    assert r.status_code == 202 and r.json()["id"] == con["id"]
    r = api.post(f"/v1/connections/{con['id']}/refresh")
    assert r.status_code == 429 and r.json()["error"]["type"] == "rate_limited"
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    assert api.post("/v1/connections/con_nope/refresh").status_code == 404


def test_delete_keeps_mirrors_as_local_events(api: Api, radicale: Radicale) -> None:
    user = radicale.new_user()
    cal = radicale.make_calendar(user)
    cal.save_event(vevent("phone-1", "From the phone"))
    agent = api.agent()
    con = connect(api, agent["id"], user, radicale.url)
    mapped = enable(api, con, f"/{user}/work/")
    sync(api, con["id"])
    (ev,) = events(api, mapped["calendar_id"])
    assert ev["source"] == "caldav" and ev["remote"]["uid"] == "phone-1" and ev["remote"]["connection_id"] == con["id"]
    assert api.delete(f"/v1/connections/{con['id']}").status_code == 204
    assert api.get(f"/v1/connections/{con['id']}").status_code == 404
    (ev,) = events(api, mapped["calendar_id"])
    assert ev["source"] == "internal" and ev["remote"] is None and ev["read_only"] is False
    r = api.patch(f"/v1/calendars/{mapped['calendar_id']}/events/{ev['id']}", json={"title": "Mine now"})
    assert r.status_code == 200
    assert [e.icalendar_component["SUMMARY"] for e in cal.get_events()] == ["From the phone"]
    types = api.runtime.db.read_sync(
        lambda tx: [
            r["type"] for r in tx.conn.execute("SELECT type FROM outbox WHERE type LIKE 'connection.%' ORDER BY seq")
        ]
    )
    assert types[0] == "connection.created" and "connection.synced" in types and types[-1] == "connection.deleted"


def test_calendar_home_on_another_host_like_icloud(api: Api, radicale: Radicale, flaky) -> None:
    user = radicale.new_user()
    cal = radicale.make_calendar(user)
    cal.save_event(vevent("far-1", "Lives on the home host"))
    flaky.home_elsewhere = True
    con = connect(api, api.agent()["id"], user, flaky.url, provider="icloud")
    mapped = enable(api, con, f"/{user}/work/")
    before = flaky.seen
    summary = sync(api, con["id"])
    assert summary and summary["error"] is None and summary["pulled"] == 1
    (ev,) = events(api, mapped["calendar_id"])
    api.patch(f"/v1/calendars/{mapped['calendar_id']}/events/{ev['id']}", json={"title": "Edited"})
    summary = sync(api, con["id"])
    assert summary and summary["pushed"] == 1
    assert [str(e.icalendar_component["SUMMARY"]) for e in cal.get_events()] == ["Edited"]
    # after discovery through server_url, calendar traffic went to the home's own host
    assert all(line.startswith("PROPFIND") for line in flaky.log[before:]), flaky.log[before:]

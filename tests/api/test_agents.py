"""Agents over HTTP: create/list/get/update/delete, filters, paging and every field rule."""

from __future__ import annotations

import pytest

from tests.api._helpers import assert_error


def test_create_defaults_and_fields(api):
    r = api.post("/v1/agents", json={"name": "Ada"})
    assert r.status_code == 201
    a = r.json()
    assert a["id"].startswith("agt_")
    assert a["type"] == "ai" and a["status"] == "active" and a["timezone"] == "UTC"
    assert a["email"] is None and a["metadata"] == {}
    assert a["created_at"] == a["updated_at"] and a["created_at"].endswith("Z")
    assert api.get(f"/v1/agents/{a['id']}").json() == a


def test_create_with_every_field(api):
    body = {
        "name": "Room 4",
        "type": "resource",
        "email": "room4@example.com",
        "timezone": "Europe/Berlin",
        "metadata": {"floor": 2, "tags": ["a", "b"]},
    }
    a = api.agent(**body)
    for k, v in body.items():
        assert a[k] == v


@pytest.mark.parametrize(
    "body,param",
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "x" * 256}, "name"),
        ({"name": 5}, "name"),
        ({"name": None}, "name"),
        ({"name": "A", "type": "robot"}, "type"),
        ({"name": "A", "timezone": "Mars/Olympus"}, "timezone"),
        ({"name": "A", "timezone": "Europe/Berlinn"}, "timezone"),
        ({"name": "A", "timezone": ""}, "timezone"),
        ({"name": "A", "email": "not-an-email"}, "email"),
        ({"name": "A", "email": "a@b.co\n"}, "email"),
        ({"name": "A", "metadata": [1, 2]}, "metadata"),
        ({"name": "A", "metadata": "x"}, "metadata"),
        ({"name": "A", "status": "paused"}, "status"),  # status is not settable at creation
        ({"name": "A", "colour": "red"}, "colour"),
    ],
)
def test_create_validation_names_the_field(shared_api, body, param):
    api = shared_api
    assert_error(api.post("/v1/agents", json=body), 400, "validation_error", param)


def test_name_boundaries(api):
    assert api.agent(name="x")["name"] == "x"
    assert api.agent(name="x" * 255)["name"] == "x" * 255
    assert api.agent(name="Ådå 🤖 名前")["name"] == "Ådå 🤖 名前"


def test_metadata_limit_is_16_kb(api):
    # {"k":"…"} is 8 bytes of framing around the value
    ok = {"k": "x" * (16 * 1024 - 8)}
    assert api.post("/v1/agents", json={"name": "A", "metadata": ok}).status_code == 201
    too_big = {"k": "x" * (16 * 1024 - 7)}
    assert_error(api.post("/v1/agents", json={"name": "A", "metadata": too_big}), 413, "payload_too_large", "metadata")
    a = api.agent()
    r = api.patch(f"/v1/agents/{a['id']}", json={"metadata": too_big})
    assert_error(r, 413, "payload_too_large", "metadata")


def test_list_filters_and_paging(api):
    made = [api.agent(name=f"a{i}", type="human" if i % 2 else "ai") for i in range(5)]
    r = api.get("/v1/agents").json()
    assert r["total"] == 5 and r["limit"] == 50 and r["offset"] == 0
    assert [a["id"] for a in r["data"]] == [a["id"] for a in made]  # ids sort by creation
    humans = api.get("/v1/agents", params={"type": "human"}).json()
    assert humans["total"] == 2 and {a["type"] for a in humans["data"]} == {"human"}
    api.patch(f"/v1/agents/{made[0]['id']}", json={"status": "paused"})
    paused = api.get("/v1/agents", params={"status": "paused"}).json()
    assert [a["id"] for a in paused["data"]] == [made[0]["id"]]
    both = api.get("/v1/agents", params={"status": "active", "type": "ai"}).json()
    assert both["total"] == 2
    page = api.get("/v1/agents", params={"limit": 2, "offset": 2}).json()
    assert page["total"] == 5 and page["limit"] == 2 and page["offset"] == 2
    assert [a["id"] for a in page["data"]] == [a["id"] for a in made[2:4]]
    tail = api.get("/v1/agents", params={"limit": 2, "offset": 4}).json()
    assert [a["id"] for a in tail["data"]] == [made[4]["id"]]
    past = api.get("/v1/agents", params={"offset": 99}).json()
    assert past["data"] == [] and past["total"] == 5


@pytest.mark.parametrize(
    "query,param",
    [
        ({"limit": 0}, "limit"),
        ({"limit": 201}, "limit"),
        ({"limit": "abc"}, "limit"),
        ({"offset": -1}, "offset"),
        ({"status": "asleep"}, "status"),
        ({"type": "robot"}, "type"),
    ],
)
def test_list_query_validation(shared_api, query, param):
    api = shared_api
    err = assert_error(api.get("/v1/agents", params=query), 400, "validation_error", param)
    assert param in err["message"]


def test_limit_bounds_accepted(api):
    assert api.get("/v1/agents", params={"limit": 1}).status_code == 200
    assert api.get("/v1/agents", params={"limit": 200}).status_code == 200


def test_patch_semantics(api):
    a = api.agent(email="a@example.com", metadata={"a": 1, "b": 2})
    assert_error(api.patch(f"/v1/agents/{a['id']}", json={}), 400, "validation_error")
    r = api.patch(f"/v1/agents/{a['id']}", json={"name": "Bea", "metadata": {"c": 3}})
    assert r.status_code == 200
    b = r.json()
    assert b["name"] == "Bea" and b["metadata"] == {"c": 3}  # metadata replaces, never merges
    assert b["email"] == "a@example.com" and b["timezone"] == a["timezone"]
    assert b["updated_at"] >= a["updated_at"] and b["created_at"] == a["created_at"]
    b = api.patch(f"/v1/agents/{a['id']}", json={"email": None}).json()
    assert b["email"] is None
    b = api.patch(f"/v1/agents/{a['id']}", json={"metadata": None}).json()
    assert b["metadata"] == {}
    b = api.patch(
        f"/v1/agents/{a['id']}", json={"status": "decommissioned", "type": "human", "timezone": "America/New_York"}
    ).json()
    assert (b["status"], b["type"], b["timezone"]) == ("decommissioned", "human", "America/New_York")
    assert api.get(f"/v1/agents/{a['id']}").json() == b


@pytest.mark.parametrize(
    "body,param",
    [
        ({"name": None}, "name"),
        ({"name": ""}, "name"),
        ({"timezone": "Nowhere/Land"}, "timezone"),
        ({"timezone": None}, "timezone"),
        ({"status": "gone"}, "status"),
        ({"type": None}, "type"),
        ({"email": "nope"}, "email"),
        ({"id": "agt_x"}, "id"),
        ({"created_at": "2020-01-01T00:00:00Z"}, "created_at"),
    ],
)
def test_patch_validation(shared_api, body, param):
    api = shared_api
    a = api.agent()
    assert_error(api.patch(f"/v1/agents/{a['id']}", json=body), 400, "validation_error", param)
    assert api.get(f"/v1/agents/{a['id']}").json() == a


def test_unknown_agent_is_404(api):
    for method in ("GET", "PATCH", "DELETE"):
        kw = {"json": {"name": "x"}} if method == "PATCH" else {}
        assert_error(api.request(method, "/v1/agents/agt_nope", **kw), 404, "not_found")


def test_delete_removes_calendars_events_and_revokes_keys(api):
    a = api.agent()
    other = api.agent(name="Other")
    cal = api.calendar(a["id"])
    kept = api.calendar(other["id"])
    api.event(cal["id"], "2030-01-01T10:00:00Z", "2030-01-01T11:00:00Z")
    kept_evt = api.event(kept["id"], "2030-01-01T10:00:00Z", "2030-01-01T11:00:00Z")
    key = api.agent_key(a["id"])
    assert api.as_key(key).get(f"/v1/agents/{a['id']}").status_code == 200

    r = api.delete(f"/v1/agents/{a['id']}")
    assert r.status_code == 204 and r.content == b""
    assert_error(api.get(f"/v1/agents/{a['id']}"), 404, "not_found")
    assert_error(api.get(f"/v1/calendars/{cal['id']}"), 404, "not_found")
    assert_error(api.get(f"/v1/calendars/{cal['id']}/events"), 404, "not_found")
    assert_error(api.as_key(key).get(f"/v1/agents/{a['id']}"), 401, "unauthorized")
    assert all(k["agent_id"] != a["id"] for k in api.get("/v1/keys").json()["data"])
    counts = api.runtime.db.read_sync(
        lambda tx: list(
            tx.conn.execute(
                "SELECT (SELECT count(*) FROM calendars WHERE agent_id = ?) AS c,"
                " (SELECT count(*) FROM events WHERE calendar_id = ?) AS e",
                (a["id"], cal["id"]),
            )
        )
    )
    assert counts == [{"c": 0, "e": 0}]
    # the other agent is untouched
    assert api.get(f"/v1/calendars/{kept['id']}/events/{kept_evt['id']}").status_code == 200
    assert_error(api.delete(f"/v1/agents/{a['id']}"), 404, "not_found")

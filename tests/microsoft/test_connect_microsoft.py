"""A Microsoft 365 connection made through /v1/connections serves the Connect API too: status,
the proxy to Graph, and create_event (with attendees) on the remote calendar."""

from __future__ import annotations

from tests.conftest import Api
from tests.fakes.microsoft import FakeMicrosoft
from tests.microsoft.conftest import EMAIL, connect


def test_graph_through_the_proxy_and_create_event(mapi: Api, microsoft: FakeMicrosoft) -> None:
    agent = mapi.agent(timezone="Europe/Berlin")
    con = connect(mapi, microsoft, agent["id"])
    status = mapi.get("/connect/v1/providers/microsoft/status").json()
    assert [c["id"] for c in status["connections"]] == [con["id"]] and status["connections"][0]["account"] == EMAIL

    microsoft.expire_access_tokens(EMAIL)
    me = mapi.post("/connect/v1/proxy/microsoft", json={"method": "GET", "path": "/me"})
    assert me.status_code == 200, me.text
    assert me.json()["status"] == 200 and me.json()["body"]["mail"] == EMAIL

    default = next(c for c in con["calendars"] if c["name"] == "Calendar")
    r = mapi.post(
        "/connect/v1/providers/microsoft/actions/create_event",
        json={
            "calendar_id": default["remote_id"],
            "subject": "Quarterly review",
            "start": "2026-12-14T09:00:00",
            "end": "2026-12-14T10:00:00",
            "time_zone": "Europe/Berlin",
            "attendees": ["ada@example.com"],
            "body": "Agenda",
        },
    )
    assert r.status_code == 200, r.text
    created = r.json()["output"]
    assert created["subject"] == "Quarterly review" and created["id"]
    stored = [e for e in microsoft.stored_events(default["remote_id"]) if e["subject"] == "Quarterly review"]
    assert len(stored) == 1 and stored[0]["attendees"][0]["emailAddress"]["address"] == "ada@example.com"
    missing = mapi.post(
        "/connect/v1/providers/microsoft/actions/create_event",
        json={"calendar_id": "AAMk-nope", "subject": "x", "start": "2026-12-14T09:00:00", "end": "2026-12-14T10:00:00"},
    )
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "calendar_id", missing.text

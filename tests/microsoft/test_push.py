"""Graph subscriptions against a running https server: the validation handshake, notifications
acknowledged at once and synced within seconds, clientState checked, lifecycle events handled."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from chronary.config import Settings
from tests.conftest import free_port, wait_until
from tests.fakes.microsoft import FakeMicrosoft
from tests.fakes.tls import make_tls
from tests.google.test_push import HttpsServer
from tests.microsoft.conftest import CLIENT_ID, CLIENT_SECRET, EMAIL, microsoft_settings


@pytest.fixture
def server(microsoft: FakeMicrosoft, tmp_path: Path) -> Iterator[HttpsServer]:
    port = free_port()
    public = f"https://127.0.0.1:{port}"
    microsoft.add_client(CLIENT_ID, CLIENT_SECRET, [f"{public}/v1/connections/callback"])
    live = HttpsServer(Settings(data_dir=tmp_path / "data", port=port, public_url=public, **microsoft_settings(microsoft)))
    yield live
    live.stop()


def _connect(server: HttpsServer, fake: FakeMicrosoft) -> dict[str, Any]:
    api = server.client
    agent = api.post("/v1/agents", json={"name": "Ben"}).json()
    started = api.post(
        "/v1/connections/start",
        json={"provider": "microsoft", "agent_id": agent["id"], "return_url": f"{api.base_url}/done"},
    ).json()
    location = fake.sign_in(started["redirect_url"])
    back = api.get(location.replace(str(api.base_url), ""), follow_redirects=False, headers={"Authorization": ""})
    assert back.status_code == 302 and "connection_id=" in back.headers["location"], back.text
    con_id = back.headers["location"].split("connection_id=")[1].split("&")[0]
    con = api.get(f"/v1/connections/{con_id}?expand[]=calendars").json()
    remote_id = next(c["remote_id"] for c in con["calendars"] if c["name"] == "Calendar")
    r = api.patch(f"/v1/connections/{con_id}", json={"calendars": [{"remote_id": remote_id, "sync": True}]})
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def test_notifications_sync_within_seconds_and_lifecycle_renews(server: HttpsServer, microsoft: FakeMicrosoft) -> None:
    con = _connect(server, microsoft)
    assert con["sync_mode"] == "realtime"
    api = server.client
    calendar_id = next(c["calendar_id"] for c in con["calendars"] if c["sync"])
    sub = wait_until(lambda: next(iter(microsoft.subscriptions), None), timeout=15)  # validated, so created
    assert sub["notificationUrl"] == f"{api.base_url}/v1/connections/notifications/microsoft"
    wait_until(lambda: api.get(f"/v1/connections/{con['id']}").json()["last_synced_at"], timeout=15)

    event_id = microsoft.user_create(
        EMAIL,
        subject="Pushed",
        start={"dateTime": "2027-07-01T09:00:00", "timeZone": "UTC"},
        end={"dateTime": "2027-07-01T10:00:00", "timeZone": "UTC"},
    )
    status, seconds = microsoft.notify(sub["id"], "created", event_id)
    assert status in (200, 202) and seconds < 3  # acknowledged at once, processed afterwards

    def pulled() -> bool:
        return any(e["title"] == "Pushed" for e in api.get(f"/v1/calendars/{calendar_id}/events").json()["data"])

    started = time.monotonic()
    wait_until(pulled, timeout=10)
    assert time.monotonic() - started < 10

    # a forged notification (wrong clientState) is refused
    forged = {"value": [{"subscriptionId": sub["id"], "clientState": "wrong", "changeType": "updated", "resource": "x"}]}
    r = httpx.post(f"{api.base_url}/v1/connections/notifications/microsoft", json=forged, verify=make_tls().cafile)
    assert r.status_code == 404

    # Graph asks for reauthorization: the next round renews the subscription
    status, _ = microsoft.lifecycle(sub["id"], "reauthorizationRequired")
    assert status in (200, 202)
    wait_until(lambda: microsoft.requests_to(f"/subscriptions/{sub['id']}", "PATCH"), timeout=15)
    assert [s["id"] for s in microsoft.subscriptions] == [sub["id"]]  # renewed in place, still live

    assert api.delete(f"/v1/connections/{con['id']}").status_code == 204
    assert list(microsoft.subscriptions) == []  # deleted at Graph

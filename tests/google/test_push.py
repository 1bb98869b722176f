"""Realtime: with an https public URL the connection opens Google watch channels, a notification
makes the running server sync that calendar within seconds, and a wrong token changes nothing."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from chronary.app import create_app
from chronary.config import Settings
from tests.conftest import free_port, wait_until
from tests.fakes.google import FakeGoogle
from tests.fakes.tls import make_tls
from tests.google.conftest import CLIENT_ID, CLIENT_SECRET, EMAIL, google_settings


class HttpsServer:
    """`chronary serve` in a thread, on https (the fake's test CA), with its background workers."""

    def __init__(self, settings: Settings) -> None:
        tls = make_tls()
        self.app = create_app(settings)
        self.key = self.app.state.runtime.first_key
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=settings.port,
            log_level="warning",
            lifespan="on",
            ssl_certfile=tls.certfile,
            ssl_keyfile=tls.keyfile,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("https server did not start")
            time.sleep(0.02)
        self.client = httpx.Client(
            base_url=settings.base_url, headers={"Authorization": f"Bearer {self.key}"}, verify=tls.cafile, timeout=10
        )

    def stop(self) -> None:
        self.client.close()
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def server(google: FakeGoogle, tmp_path: Path) -> Iterator[HttpsServer]:
    port = free_port()
    public = f"https://127.0.0.1:{port}"
    google.add_client(CLIENT_ID, CLIENT_SECRET, [f"{public}/v1/connections/callback"])
    settings = Settings(data_dir=tmp_path / "data", port=port, public_url=public, **google_settings(google))
    live = HttpsServer(settings)
    yield live
    live.stop()


def _connect(server: HttpsServer, google: FakeGoogle) -> dict[str, Any]:
    api = server.client
    agent = api.post("/v1/agents", json={"name": "Ada"}).json()
    started = api.post(
        "/v1/connections/start",
        json={"provider": "google", "agent_id": agent["id"], "return_url": f"{api.base_url}/done"},
    ).json()
    location = google.consent(started["redirect_url"])
    back = api.get(location.replace(str(api.base_url), ""), follow_redirects=False, headers={"Authorization": ""})
    assert back.status_code == 302 and "connection_id=" in back.headers["location"], back.text
    con_id = back.headers["location"].split("connection_id=")[1].split("&")[0]
    r = api.patch(f"/v1/connections/{con_id}", json={"calendars": [{"remote_id": EMAIL, "sync": True}]})
    assert r.status_code == 200, r.text
    con: dict[str, Any] = r.json()
    return con


def test_a_notification_makes_the_server_sync_within_seconds(server: HttpsServer, google: FakeGoogle) -> None:
    con = _connect(server, google)
    assert con["sync_mode"] == "realtime"
    api = server.client
    calendar_id = next(c["calendar_id"] for c in con["calendars"] if c["remote_id"] == EMAIL)
    channel = wait_until(lambda: next((c for c in google.channels if not c["stopped"]), None), timeout=15)
    assert channel["address"] == f"{api.base_url}/v1/connections/notifications/google"
    shown = wait_until(lambda: api.get(f"/v1/connections/{con['id']}").json()["webhook_subscription"], timeout=10)
    assert shown["id"] == channel["id"]

    # let the first rounds settle, then change the calendar on the "phone" and notify
    wait_until(lambda: api.get(f"/v1/connections/{con['id']}").json()["last_synced_at"], timeout=15)
    google.put_event(
        EMAIL,
        {"summary": "Pushed", "start": {"dateTime": "2027-07-01T09:00:00Z"}, "end": {"dateTime": "2027-07-01T10:00:00Z"}},
    )
    started = time.monotonic()
    assert google.notify(channel["id"]) == 200

    def pulled() -> bool:
        data = api.get(f"/v1/calendars/{calendar_id}/events").json()["data"]
        return any(e["title"] == "Pushed" for e in data)

    wait_until(pulled, timeout=10)
    assert time.monotonic() - started < 10

    # a wrong token or an unknown channel is refused and changes nothing
    headers = {"X-Goog-Channel-ID": channel["id"], "X-Goog-Channel-Token": "wrong", "X-Goog-Resource-State": "exists"}
    verify = make_tls().cafile
    bad = httpx.post(f"{api.base_url}/v1/connections/notifications/google", headers=headers, verify=verify)
    assert bad.status_code == 404
    unknown = httpx.post(
        f"{api.base_url}/v1/connections/notifications/google",
        headers={**headers, "X-Goog-Channel-ID": "nope"},
        verify=verify,
    )
    assert unknown.status_code == 404

    # disconnecting stops the channel at Google
    assert api.delete(f"/v1/connections/{con['id']}").status_code == 204
    assert all(c["stopped"] for c in google.channels if c["id"] == channel["id"])


def test_channels_are_renewed_before_they_expire(make_api: Any, google: FakeGoogle) -> None:
    from datetime import UTC, datetime

    from chronary.clock import ManualClock
    from tests.google.conftest import connect, enable
    from tests.sync.conftest import sync

    clock = ManualClock(datetime.now(UTC))
    google.add_client(CLIENT_ID, CLIENT_SECRET, ["https://127.0.0.1:8765/v1/connections/callback"])
    api = make_api(clock=clock, public_url="https://127.0.0.1:8765", **google_settings(google))
    con = connect(api, google, api.agent()["id"])
    assert con["sync_mode"] == "realtime"
    enable(api, con)
    assert sync(api, con["id"])["error"] is None  # type: ignore[index]
    (first,) = [c for c in google.channels if not c["stopped"]]
    assert api.get(f"/v1/connections/{con['id']}").json()["webhook_subscription"]["id"] == first["id"]
    assert sync(api, con["id"])["error"] is None  # type: ignore[index]
    assert [c["id"] for c in google.channels if not c["stopped"]] == [first["id"]]  # still fresh: kept

    clock.advance(days=6, hours=12)  # less than a day left of its week
    assert sync(api, con["id"])["error"] is None  # type: ignore[index]
    live = [c for c in google.channels if not c["stopped"]]
    assert len(live) == 1 and live[0]["id"] != first["id"]
    assert api.get(f"/v1/connections/{con['id']}").json()["webhook_subscription"]["id"] == live[0]["id"]

"""Telegram, Home Assistant and email (SMTP) through `/connect/v1` on a real server against their
local fakes (a real aiosmtpd server for email): connect with good and bad credentials, each
action, Telegram given the inbound URL and its updates relayed, an invitation to a Chronary event
sent as iMIP and cancelled."""

from __future__ import annotations

from typing import Any

import httpx
import icalendar
import pytest

from tests.fakes import home_assistant as ha_fake
from tests.fakes import smtp as smtp_fake
from tests.fakes import telegram as tg_fake
from tests.fakes.home_assistant import FakeHomeAssistant
from tests.fakes.smtp import FakeSMTP
from tests.fakes.telegram import FakeTelegram
from tests.webhooks.receiver import Receiver

PUBLIC = "https://chronary.example.net"  # what Telegram is told (its webhooks must be HTTPS)
HOOK_SECRET = "telegram-secret_token-0123"


@pytest.fixture
def telegram() -> Any:
    with FakeTelegram() as fake:
        yield fake


def _local(server: Any, inbound_url: str) -> str:
    return server.base_url + inbound_url.removeprefix(PUBLIC)


def test_telegram_connects_sends_and_relays_updates(live_server: Any, telegram: FakeTelegram) -> None:
    server = live_server(workers=True, telegram_api_url=telegram.url, public_url=PUBLIC)
    c = server.client()
    wrong = c.post("/connect/v1/providers/telegram/connect", json={"credentials": {"apiKey": "123:wrong-token"}})
    assert wrong.status_code == 400, wrong.text
    con = c.post(
        "/connect/v1/providers/telegram/connect",
        json={"credentials": {"apiKey": tg_fake.TOKEN, "apiSecret": HOOK_SECRET}},
    )
    assert con.status_code == 201, con.text
    body = con.json()
    assert body["account"] == "@chronary_test_bot" and tg_fake.TOKEN not in con.text and HOOK_SECRET not in con.text
    sent = c.post("/connect/v1/providers/telegram/actions/send_message", json={"chat_id": 123456789, "text": "Standup"})
    assert sent.status_code == 200, sent.text
    assert sent.json()["output"]["text"] == "Standup" and telegram.messages[-1]["text"] == "Standup"
    lost = c.post("/connect/v1/providers/telegram/actions/send_message", json={"chat_id": 42, "text": "x"})
    assert lost.status_code == 400 and lost.json()["error"]["param"] == "chat_id"
    telegram.rate_limit(9)
    slow = c.post("/connect/v1/providers/telegram/actions/send_message", json={"chat_id": 123456789, "text": "x"})
    assert slow.status_code == 429 and slow.headers["retry-after"] == "9" and tg_fake.TOKEN not in slow.text

    receiver = Receiver().start()
    try:
        sub = c.post("/connect/v1/providers/telegram/webhooks", json={"url": receiver.url})
        assert sub.status_code == 201, sub.text
        assert telegram.webhook["url"] == body["inboundUrl"] and telegram.webhook["secret_token"] == HOOK_SECRET
        inbound = _local(server, body["inboundUrl"])
        anonymous = httpx.Client(timeout=10)
        update = telegram.update("message", text="/agenda")
        refused = anonymous.post(inbound, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": "guess"})
        assert refused.status_code == 401
        ok = anonymous.post(inbound, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": HOOK_SECRET})
        assert ok.status_code == 200 and ok.json()["event"] == "message", ok.text
        (got,) = receiver.wait_for(1, timeout=20)
        assert got.json["type"] == "telegram.message"
        assert got.json["data"]["object"]["payload"]["message"]["text"] == "/agenda"
    finally:
        receiver.close()


def test_home_assistant_calls_services(live_server: Any) -> None:
    with FakeHomeAssistant() as ha:
        c = live_server().client()
        connect = "/connect/v1/providers/home_assistant/connect"
        bad = c.post(connect, json={"credentials": {"baseUrl": ha.url, "apiKey": "x"}})
        assert bad.status_code == 400, bad.text
        con = c.post(connect, json={"credentials": {"baseUrl": ha.url, "apiKey": ha_fake.TOKEN}})
        assert con.status_code == 201 and con.json()["account"] == "Home", con.text
        on = c.post(
            "/connect/v1/providers/home_assistant/actions/call_service",
            json={"domain": "light", "service": "turn_on", "entity_id": "light.office", "data": {"brightness_pct": 60}},
        )
        assert on.status_code == 200, on.text
        changed = on.json()["output"]["changed_states"]
        assert any(s["entity_id"] == "light.office" and s["state"] == "on" for s in changed)
        assert ha.states["light.office"]["state"] == "on"
        forecast = c.post(
            "/connect/v1/providers/home_assistant/actions/call_service",
            json={"domain": "weather", "service": "get_forecasts", "entity_id": "weather.home", "return_response": True,
                  "data": {"type": "daily"}},
        )  # fmt: skip
        assert forecast.status_code == 200 and "service_response" in forecast.json()["output"], forecast.text
        unknown = c.post(
            "/connect/v1/providers/home_assistant/actions/call_service", json={"domain": "light", "service": "explode"}
        )
        assert unknown.status_code == 400 and unknown.json()["error"]["param"] == "service", unknown.text
        state = c.post("/connect/v1/proxy/home_assistant", json={"method": "GET", "path": "/api/states/light.office"})
        assert state.status_code == 200 and state.json()["body"]["state"] == "on"


def test_email_connects_sends_and_invites_to_a_chronary_event(live_server: Any) -> None:
    with FakeSMTP() as smtp:
        c = live_server().client()
        creds = {"host": smtp.host, "port": str(smtp.port), "security": "none", "username": smtp.username,
                 "fromAddress": "Ada <calendar@example.com>"}  # fmt: skip
        bad = c.post("/connect/v1/providers/smtp/connect", json={"credentials": {**creds, "password": "wrong"}})
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "credentials.password", bad.text
        con = c.post("/connect/v1/providers/smtp/connect", json={"credentials": {**creds, "password": smtp.password}})
        assert con.status_code == 201 and smtp_fake.PASSWORD not in con.text, con.text
        assert con.json()["settings"]["host"] == smtp.host and "password" not in con.json()["settings"]

        mail = c.post(
            "/connect/v1/providers/smtp/actions/send_email",
            json={"to": ["ben@example.com"], "subject": "Moved", "text": "Now at 10:00", "html": "<p><b>10:00</b></p>"},
        )
        assert mail.status_code == 200, mail.text
        assert mail.json()["output"]["accepted"] == ["ben@example.com"]
        assert smtp.messages[-1]["Subject"] == "Moved"

        agent = c.post("/v1/agents", json={"name": "Ada", "timezone": "Europe/Berlin"}).json()
        cal = c.post(f"/v1/agents/{agent['id']}/calendars", json={"name": "Work", "timezone": "Europe/Berlin"}).json()
        event = c.post(
            f"/v1/calendars/{cal['id']}/events",
            json={"title": "Design review", "start_time": "2026-12-15T09:00:00+01:00", "end_time": "2026-12-15T10:00+01:00"},
        ).json()
        invite = c.post(
            "/connect/v1/providers/smtp/actions/send_invitation",
            json={"to": ["ben@example.com"], "calendar_id": cal["id"], "event_id": event["id"]},
        )
        assert invite.status_code == 200, invite.text
        out = invite.json()["output"]
        assert out["uid"] == event["ical_uid"] and out["method"] == "REQUEST"
        part = next(p for p in smtp.messages[-1].walk() if p.get_content_type() == "text/calendar")
        assert part.get_param("method") == "REQUEST"
        parsed = icalendar.Calendar.from_ical(part.get_content())
        (vevent,) = parsed.walk("VEVENT")
        assert str(vevent["UID"]) == event["ical_uid"] and str(vevent["SUMMARY"]) == "Design review"
        assert "ben@example.com" in str(vevent["ATTENDEE"]).lower()
        assert "calendar@example.com" in str(vevent["ORGANIZER"]).lower()

        cancel = c.post(
            "/connect/v1/providers/smtp/actions/send_invitation",
            json={"to": ["ben@example.com"], "method": "CANCEL", "calendar_id": cal["id"], "event_id": event["id"]},
        )
        assert cancel.status_code == 200 and cancel.json()["output"]["method"] == "CANCEL", cancel.text
        other = c.post(
            "/connect/v1/providers/smtp/actions/send_invitation",
            json={"to": ["ben@example.com"], "calendar_id": cal["id"], "event_id": "evt_01J9Z3M2W7R5T8Y1U4I6O9P0A2"},
        )
        assert other.status_code == 404, other.text
        neither = c.post("/connect/v1/providers/smtp/actions/send_invitation", json={"to": ["ben@example.com"]})
        assert neither.status_code == 400

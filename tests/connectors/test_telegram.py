"""The Telegram connector against FakeTelegram over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from chronary.config import Settings
from chronary.connectors import load
from chronary.connectors.base import BadCredentials, BadInput, BadSignature, ConnectorError, Unreachable
from chronary.connectors.telegram import ALLOWED_UPDATES, Connector
from tests.conftest import free_port
from tests.connectors._support import run_connector
from tests.fakes.telegram import TOKEN, FakeTelegram

SECRET = "hook-Secret_123"
NOW = datetime(2025, 3, 10, 9, 0, tzinfo=UTC)


@pytest.fixture
def fake() -> Iterator[FakeTelegram]:
    with FakeTelegram() as fake:
        yield fake


@pytest.fixture
def settings(tmp_path: Path, fake: FakeTelegram) -> Settings:
    return Settings(data_dir=tmp_path, telegram_api_url=fake.url)


def call(settings: Settings, credentials: dict[str, str], fn: Callable[[Connector], Awaitable[Any]]) -> Any:
    return run_connector(Connector, settings, credentials, fn)


def creds(**extra: str) -> dict[str, str]:
    return {"bot_token": TOKEN, **extra}


def test_the_registry_loads_this_connector() -> None:
    assert load("telegram") is Connector


def test_the_target_carries_the_token_in_the_path_only(settings: Settings, fake: FakeTelegram) -> None:
    target = Connector(creds(), settings, None)  # type: ignore[arg-type]
    t = target.target()
    assert t.base_url == fake.url
    assert t.path_prefix == f"/bot{TOKEN}"
    assert TOKEN not in json.dumps(dict(t.headers)) and not t.query


def test_check_answers_the_bots_username(settings: Settings, fake: FakeTelegram) -> None:
    assert call(settings, creds(), lambda c: c.check()) == "@chronary_test_bot"
    [req] = fake.requests
    assert (req.method, req.path) == ("GET", f"/bot{TOKEN}/getMe")
    assert "authorization" not in req.headers


def test_check_refuses_an_unknown_token(settings: Settings, fake: FakeTelegram) -> None:
    other = "987654321:ZZHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw9"
    with pytest.raises(BadCredentials) as err:
        call(settings, {"bot_token": other}, lambda c: c.check())
    assert err.value.field == "bot_token" and err.value.status == 401
    assert other not in str(err.value) and other.split(":")[1] not in err.value.reason
    assert fake.requests[0].path == f"/bot{other}/getMe"


def test_a_malformed_token_is_refused_before_any_request(settings: Settings, fake: FakeTelegram) -> None:
    for bad in ("not-a-token", "123:abc/../../getMe?x=1", f"{TOKEN}/x"):
        with pytest.raises(BadCredentials) as err:
            call(settings, {"bot_token": bad}, lambda c: c.check())
        assert err.value.field == "bot_token"
        assert bad not in err.value.reason
    assert fake.requests == []


def test_send_message_posts_json_and_answers_the_message(settings: Settings, fake: FakeTelegram) -> None:
    inputs = {"chat_id": 123456789, "text": "Design review moved to <b>10:00</b>", "parse_mode": "HTML"}
    message = call(settings, creds(), lambda c: c.run("send_message", dict(inputs)))
    assert message["text"] == "Design review moved to 10:00"
    assert message["chat"]["id"] == 123456789
    assert isinstance(message["message_id"], int) and isinstance(message["date"], int)
    [req] = fake.requests
    assert (req.method, req.path) == ("POST", f"/bot{TOKEN}/sendMessage")
    assert req.header("content-type") == "application/json"
    assert req.json() == inputs
    assert fake.messages[0]["message_id"] == message["message_id"]


def test_send_message_to_a_channel_by_username_silently(settings: Settings, fake: FakeTelegram) -> None:
    inputs = {"chat_id": "@chronary_updates", "text": "Standup cancelled", "disable_notification": True}
    message = call(settings, creds(), lambda c: c.run("send_message", inputs))
    assert message["chat"]["id"] == -1001234567890
    assert fake.requests[0].json() == inputs


def test_an_unknown_chat_is_a_bad_chat_id(settings: Settings, fake: FakeTelegram) -> None:
    with pytest.raises(BadInput) as err:
        call(settings, creds(), lambda c: c.run("send_message", {"chat_id": 42, "text": "hi"}))
    assert err.value.field == "chat_id" and err.value.status == 400
    assert "chat not found" in err.value.reason
    assert fake.messages == []


def test_a_bad_request_about_the_text_names_text(settings: Settings, fake: FakeTelegram) -> None:
    with pytest.raises(BadInput) as err:
        call(settings, creds(), lambda c: c.run("send_message", {"chat_id": 123456789, "text": "<b", "parse_mode": "HTML"}))
    assert err.value.field == "text"
    assert "can't parse entities" in err.value.reason


def test_a_rate_limit_answers_retry_after(settings: Settings, fake: FakeTelegram) -> None:
    fake.rate_limit(7)
    with pytest.raises(ConnectorError) as err:
        call(settings, creds(), lambda c: c.run("send_message", {"chat_id": 123456789, "text": "hi"}))
    assert type(err.value) is ConnectorError
    assert err.value.retry_after == 7 and err.value.status == 429
    # the limit has passed: the next call goes through
    assert call(settings, creds(), lambda c: c.run("send_message", {"chat_id": 123456789, "text": "hi"}))["text"] == "hi"


def test_a_blocked_chat_is_a_403_not_a_bad_input(settings: Settings, fake: FakeTelegram) -> None:
    fake.blocked.add(123456789)
    with pytest.raises(ConnectorError) as err:
        call(settings, creds(), lambda c: c.run("send_message", {"chat_id": 123456789, "text": "hi"}))
    assert type(err.value) is ConnectorError
    assert err.value.status == 403 and err.value.field == "chat_id"
    assert "blocked" in err.value.reason


def test_an_unknown_action_is_refused(settings: Settings, fake: FakeTelegram) -> None:
    with pytest.raises(BadInput) as err:
        call(settings, creds(), lambda c: c.run("send_photo", {}))
    assert err.value.field == "actionName"
    assert fake.requests == []


def test_register_inbound_sets_the_webhook_with_the_secret(settings: Settings, fake: FakeTelegram) -> None:
    url = "https://chronary.example/connect/v1/inbound/con_1/abc"
    call(settings, creds(webhook_secret=SECRET), lambda c: c.register_inbound(url))
    [req] = fake.requests
    assert req.path == f"/bot{TOKEN}/setWebhook"
    assert req.json() == {"url": url, "secret_token": SECRET, "allowed_updates": list(ALLOWED_UPDATES)}
    assert set(ALLOWED_UPDATES) == {"message", "edited_message", "channel_post", "callback_query"}

    async def info(c: Connector) -> Any:
        return (await c.send("GET", "/getWebhookInfo")).json()

    assert call(settings, creds(), info)["result"]["url"] == url


def test_register_inbound_without_a_secret_sends_none(settings: Settings, fake: FakeTelegram) -> None:
    call(settings, creds(), lambda c: c.register_inbound("https://chronary.example/in"))
    assert "secret_token" not in fake.requests[0].json()
    assert fake.webhook["url"] == "https://chronary.example/in"


def test_register_inbound_raises_when_telegram_refuses(settings: Settings, fake: FakeTelegram) -> None:
    with pytest.raises(ConnectorError) as err:
        call(settings, creds(), lambda c: c.register_inbound("http://chronary.example/in"))
    assert err.value.status == 400 and "HTTPS URL" in err.value.reason
    assert fake.webhook == {}


def test_a_malformed_webhook_secret_is_refused(settings: Settings, fake: FakeTelegram) -> None:
    with pytest.raises(BadCredentials) as err:
        call(settings, creds(webhook_secret="has spaces!"), lambda c: c.register_inbound("https://x.example/in"))
    assert err.value.field == "webhook_secret"
    assert fake.requests == []


@pytest.mark.parametrize("kind", ["message", "edited_message", "channel_post", "callback_query"])
def test_inbound_names_the_update_type(settings: Settings, fake: FakeTelegram, kind: str) -> None:
    chat = -1001234567890 if kind == "channel_post" else 123456789
    update = fake.update(kind, chat_id=chat, text="ping")
    connector = Connector(creds(webhook_secret=SECRET), settings, None)  # type: ignore[arg-type]
    headers = {"content-type": "application/json", "x-telegram-bot-api-secret-token": SECRET}
    got = connector.inbound(headers, json.dumps(update).encode(), NOW)
    assert got.event == kind
    assert got.payload == update
    assert got.reply is None


def test_inbound_checks_the_secret_token_header(settings: Settings, fake: FakeTelegram) -> None:
    body = json.dumps(fake.update("message")).encode()
    connector = Connector(creds(webhook_secret=SECRET), settings, None)  # type: ignore[arg-type]
    with pytest.raises(BadSignature):
        connector.inbound({"content-type": "application/json"}, body, NOW)
    with pytest.raises(BadSignature) as err:
        connector.inbound({"x-telegram-bot-api-secret-token": SECRET + "x"}, body, NOW)
    assert SECRET not in err.value.reason
    with pytest.raises(BadSignature):
        connector.inbound({"x-telegram-bot-api-secret-token": ""}, body, NOW)


def test_inbound_without_a_secret_accepts_any_update(settings: Settings, fake: FakeTelegram) -> None:
    connector = Connector(creds(), settings, None)  # type: ignore[arg-type]
    update = {"update_id": 5, "my_chat_member": {"chat": {"id": 1}}}
    assert connector.inbound({}, json.dumps(update).encode(), NOW).event == "my_chat_member"
    with pytest.raises(BadInput):
        connector.inbound({}, b"not json", NOW)
    with pytest.raises(BadInput):
        connector.inbound({}, b'{"message": {}}', NOW)  # no update_id


def test_no_reason_ever_contains_the_token(tmp_path: Path, settings: Settings, fake: FakeTelegram) -> None:
    reasons: list[str] = []
    fake.fail_next(500, {"ok": False, "error_code": 500, "description": f"Internal error for bot{TOKEN}"})
    fake.rate_limit(3)
    fake.blocked.add(123456789)
    for _ in range(3):
        with pytest.raises(ConnectorError) as err:
            call(settings, creds(), lambda c: c.run("send_message", {"chat_id": 123456789, "text": "hi"}))
        reasons.append(err.value.reason)
        reasons.append(str(err.value))
    assert any("Internal error" in r for r in reasons)
    # nobody listening: a network error (the URL, which holds the token, is never in it)
    closed = Settings(data_dir=tmp_path, telegram_api_url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(Unreachable) as down:
        call(closed, creds(), lambda c: c.check())
    reasons += [down.value.reason, str(down.value), repr(down.value)]
    assert all(TOKEN not in r and TOKEN.split(":")[1] not in r for r in reasons), reasons

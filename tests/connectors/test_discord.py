"""The Discord connector against FakeDiscord on 127.0.0.1: /users/@me, Create Message and Discord's
JSON error codes and 429s."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from chronary.config import Settings
from chronary.connectors import load
from chronary.connectors.base import BadCredentials, BadInput, ConnectorError, Unreachable
from chronary.connectors.discord import Connector
from tests.connectors._support import run_connector
from tests.fakes.discord import FakeDiscord

TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4OQ.GaBcDe.fake-signature-part_0123456789abcdef"
OTHER = "OTg3NjU0MzIxMDk4NzY1NDMyMQ.GxYzAb.another-fake-token_9876543210"
WRITABLE = "1234567890123456789"
READ_ONLY = "1234567890123456790"
HIDDEN = "1234567890123456791"
T = TypeVar("T")


@pytest.fixture
def discord() -> Iterator[FakeDiscord]:
    with FakeDiscord() as fake:
        fake.add_bot(TOKEN, "chronary-bot")
        fake.add_bot(OTHER, "other-bot")
        fake.add_channel(WRITABLE, send=(TOKEN,))
        fake.add_channel(READ_ONLY, view=(TOKEN,))
        fake.add_channel(HIDDEN, send=(OTHER,))
        yield fake


@pytest.fixture
def settings(discord: FakeDiscord, tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, discord_api_url=discord.api_url)


def call(settings: Settings, credentials: dict[str, str], fn: Callable[[Connector], Awaitable[T]]) -> T:
    return run_connector(Connector, settings, credentials, fn)


def send(settings: Settings, token: str = TOKEN, **inputs: Any) -> dict[str, Any]:
    return call(settings, {"bot_token": token}, lambda c: c.run("send_message", inputs))


def test_the_registry_loads_this_connector() -> None:
    assert load("discord") is Connector


def test_target_uses_the_bot_scheme_and_a_discord_user_agent(tmp_path: Path) -> None:
    target = Connector({"bot_token": TOKEN}, Settings(data_dir=tmp_path), httpx.AsyncClient()).target()
    assert target.base_url == "https://discord.com/api/v10"
    assert target.headers["Authorization"] == f"Bot {TOKEN}"
    assert target.headers["User-Agent"].startswith("DiscordBot (")
    pasted = Connector({"bot_token": f"Bot {TOKEN}"}, Settings(data_dir=tmp_path), httpx.AsyncClient())
    assert pasted.target().headers["Authorization"] == f"Bot {TOKEN}"  # not "Bot Bot …"


def test_check_answers_the_bot_username(discord: FakeDiscord, settings: Settings) -> None:
    assert call(settings, {"bot_token": TOKEN}, lambda c: c.check()) == "chronary-bot"
    (seen,) = discord.requests
    assert (seen.method, seen.path) == ("GET", "/api/v10/users/@me")
    assert seen.header("authorization") == f"Bot {TOKEN}"
    assert (seen.header("user-agent") or "").startswith("DiscordBot (")


def test_check_with_a_bad_token_is_bad_credentials(discord: FakeDiscord, settings: Settings) -> None:
    bad = "MTAx.bad.token-that-discord-does-not-know"
    with pytest.raises(BadCredentials) as caught:
        call(settings, {"bot_token": bad}, lambda c: c.check())
    assert (caught.value.field, caught.value.status) == ("bot_token", 401)
    assert bad not in caught.value.reason


def test_a_missing_token_is_refused_before_any_request(discord: FakeDiscord, settings: Settings) -> None:
    with pytest.raises(BadCredentials) as caught:
        call(settings, {}, lambda c: c.check())
    assert caught.value.field == "bot_token"
    assert discord.requests == []


def test_send_message_posts_content_and_answers_the_message(discord: FakeDiscord, settings: Settings) -> None:
    answer = send(settings, channel_id=WRITABLE, content="Design review moved to 10:00")
    (seen,) = discord.requests
    assert (seen.method, seen.path) == ("POST", f"/api/v10/channels/{WRITABLE}/messages")
    assert seen.header("authorization") == f"Bot {TOKEN}"
    assert seen.header("content-type") == "application/json"
    assert seen.json() == {"content": "Design review moved to 10:00"}
    assert answer["channel_id"] == WRITABLE and answer["id"] == discord.messages[0]["id"]
    assert answer["content"] == "Design review moved to 10:00"
    assert answer["author"]["username"] == "chronary-bot" and answer["author"]["bot"] is True


def test_send_message_with_embeds(discord: FakeDiscord, settings: Settings) -> None:
    embeds = [{"title": "Design review", "description": "Moved to 10:00", "color": 0x5865F2}]
    answer = send(settings, channel_id=WRITABLE, embeds=embeds)
    assert discord.requests[0].json() == {"embeds": embeds}
    assert answer["embeds"][0]["title"] == "Design review"
    assert answer["content"] == ""


def test_an_unknown_channel_is_bad_input_naming_the_channel(discord: FakeDiscord, settings: Settings) -> None:
    with pytest.raises(BadInput) as caught:
        send(settings, channel_id="1111111111111111111", content="x")
    assert (caught.value.field, caught.value.status) == ("channel_id", 404)
    assert "Unknown Channel" in caught.value.reason and "10003" in caught.value.reason


@pytest.mark.parametrize(
    ("channel", "code", "text"), [(HIDDEN, 50001, "Missing Access"), (READ_ONLY, 50013, "Missing Permissions")]
)
def test_missing_access_or_permissions_is_a_403(
    discord: FakeDiscord, settings: Settings, channel: str, code: int, text: str
) -> None:
    with pytest.raises(ConnectorError) as caught:
        send(settings, channel_id=channel, content="x")
    assert caught.value.status == 403
    assert text in caught.value.reason and str(code) in caught.value.reason
    assert not isinstance(caught.value, BadInput | BadCredentials)
    assert TOKEN not in caught.value.reason
    assert discord.messages == []


def test_discord_form_errors_name_the_field(discord: FakeDiscord, settings: Settings) -> None:
    # inputs the schema would refuse, to see Discord's own answers mapped (Connect validates first)
    with pytest.raises(BadInput) as too_long:
        send(settings, channel_id=WRITABLE, content="x" * 2001)
    assert (too_long.value.field, too_long.value.status) == ("content", 400)
    assert "Invalid Form Body" in too_long.value.reason
    with pytest.raises(BadInput) as too_many:
        send(settings, channel_id=WRITABLE, embeds=[{"title": str(i)} for i in range(11)])
    assert too_many.value.field == "embeds"
    with pytest.raises(BadInput) as empty:
        send(settings, channel_id=WRITABLE, content="")
    assert empty.value.field == "content" and "50006" in empty.value.reason


def test_a_revoked_token_at_run_time_is_bad_credentials(discord: FakeDiscord, settings: Settings) -> None:
    with pytest.raises(BadCredentials) as caught:
        send(settings, token="revoked.token.value", channel_id=WRITABLE, content="x")
    assert (caught.value.status, caught.value.field) == (401, "bot_token")
    assert "revoked.token.value" not in caught.value.reason


def test_a_429_carries_the_bodys_float_retry_after(discord: FakeDiscord, settings: Settings) -> None:
    discord.ratelimit_next(retry_after=2.5)
    with pytest.raises(ConnectorError) as caught:
        send(settings, channel_id=WRITABLE, content="x")
    assert (caught.value.status, caught.value.retry_after) == (429, 2.5)  # not the header's rounded 3
    assert "on this route" in caught.value.reason
    discord.ratelimit_next(retry_after=64.57, global_=True)
    with pytest.raises(ConnectorError) as global_limit:
        send(settings, channel_id=WRITABLE, content="x")
    assert global_limit.value.retry_after == 64.57 and "globally" in global_limit.value.reason
    assert discord.messages == []
    assert send(settings, channel_id=WRITABLE, content="later")["content"] == "later"


def test_a_429_without_a_body_falls_back_to_retry_after(discord: FakeDiscord, settings: Settings) -> None:
    discord.fail_next(429, headers={"Retry-After": "7"})
    with pytest.raises(ConnectorError) as caught:
        send(settings, channel_id=WRITABLE, content="x")
    assert caught.value.retry_after == 7.0


def test_a_server_error_is_a_connector_error(discord: FakeDiscord, settings: Settings) -> None:
    discord.fail_next(502, {"message": "Bad Gateway", "code": 0})
    with pytest.raises(ConnectorError) as caught:
        send(settings, channel_id=WRITABLE, content="x")
    assert caught.value.status == 502 and caught.value.retry_after is None
    assert not isinstance(caught.value, BadInput | BadCredentials)


def test_a_token_echoed_by_discord_is_masked(discord: FakeDiscord, settings: Settings) -> None:
    discord.fail_next(400, {"message": f"token {TOKEN} is odd", "code": 40001})
    with pytest.raises(ConnectorError) as caught:
        send(settings, channel_id=WRITABLE, content="x")
    assert TOKEN not in caught.value.reason and "***" in caught.value.reason


def test_a_non_numeric_channel_never_reaches_discord(discord: FakeDiscord, settings: Settings) -> None:
    with pytest.raises(BadInput) as caught:
        send(settings, channel_id="../../users/@me", content="x")
    assert caught.value.field == "channel_id"
    assert discord.requests == []


def test_an_unreachable_discord_is_reported_without_the_token(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once the block ends
    settings = Settings(data_dir=tmp_path, discord_api_url=f"http://127.0.0.1:{port}/api/v10")
    for run in (lambda c: c.check(), lambda c: c.run("send_message", {"channel_id": WRITABLE, "content": "x"})):
        with pytest.raises(Unreachable) as caught:
            call(settings, {"bot_token": TOKEN}, run)
        assert TOKEN not in caught.value.reason and "discord" in caught.value.reason

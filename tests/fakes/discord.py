"""A local fake of Discord's REST API v10 (https://discord.com/developers/docs), built on `tests.fakes.server`.

    GET  /api/v10/users/@me                       the bot's User object
    POST /api/v10/channels/{channel.id}/messages  Create Message: {"content", "embeds"} → the Message object

(`api_url` is the base URL to configure; v9 is served too.)

Auth is `Authorization: Bot <token>` (tokens from `add_bot`); anything else answers 401
`{"message": "401: Unauthorized", "code": 0}`. Errors carry Discord's JSON error codes:
404 Unknown Channel (10003), 403 Missing Access (50001: the bot cannot see the channel) and
Missing Permissions (50013: it may not send there), 400 Cannot send an empty message (50006)
and Invalid Form Body (50035, with `errors` nested by field). `ratelimit_next` answers Discord's
429: `{"message", "retry_after" (float seconds), "global"}` with Retry-After and X-RateLimit-*
headers. Sent messages are kept in `messages`.
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tests.fakes.server import FakeServer, Reply, Request, route

DISCORD_EPOCH_MS = 1_420_070_400_000
API = r"/api/v(?:9|10)"  # the API versions Discord still serves
MAX_CONTENT = 2000
MAX_EMBEDS = 10


def error(status: int, code: int, message: str, **extra: Any) -> Reply:
    return Reply.json(status, {"message": message, "code": code, **extra})


def _too_long(field_name: str, limit: int) -> Reply:
    detail = {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH", "message": f"Must be {limit} or fewer in length."}]}
    return error(400, 50035, "Invalid Form Body", errors={field_name: detail})


@dataclass
class Channel:
    id: str
    can_view: set[str] = field(default_factory=set)  # bot tokens that see the channel
    can_send: set[str] = field(default_factory=set)  # … and may send messages in it


class FakeDiscord(FakeServer):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[dict[str, Any]] = []
        self._bots: dict[str, dict[str, Any]] = {}
        self._channels: dict[str, Channel] = {}
        self._sequence = itertools.count()
        self._state = threading.Lock()

    @property
    def api_url(self) -> str:
        """The base URL to configure (`discord_api_url`), like https://discord.com/api/v10."""
        return self.url + "/api/v10"

    # -- controls ------------------------------------------------------------------------------
    def snowflake(self) -> str:
        return str(((int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22) | (next(self._sequence) & 0xFFF))

    def add_bot(self, token: str, username: str = "Chronary") -> dict[str, Any]:
        user = {
            "id": self.snowflake(),
            "username": username,
            "discriminator": "0",
            "global_name": None,
            "avatar": None,
            "bot": True,
            "verified": True,
            "flags": 0,
            "mfa_enabled": False,
        }
        with self._state:
            self._bots[token] = user
        return user

    def add_channel(self, channel_id: str, *, view: tuple[str, ...] = (), send: tuple[str, ...] = ()) -> Channel:
        """A channel the bots of `view` can see and those of `send` can also write to."""
        channel = Channel(channel_id, set(view) | set(send), set(send))
        with self._state:
            self._channels[channel_id] = channel
        return channel

    def ratelimit_next(self, retry_after: float = 1.5, *, global_: bool = False, times: int = 1) -> None:
        headers = {
            "Retry-After": str(math.ceil(retry_after)),
            "X-RateLimit-Limit": "5",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset-After": str(retry_after),
            "X-RateLimit-Scope": "global" if global_ else "user",
        }
        if global_:
            headers["X-RateLimit-Global"] = "true"
        body = {"message": "You are being rate limited.", "retry_after": retry_after, "global": global_}
        self.fail_next(429, body, headers, times=times)

    # -- routes --------------------------------------------------------------------------------
    def _bot(self, req: Request) -> tuple[str, dict[str, Any]] | Reply:
        header = req.header("authorization") or ""
        token = header[4:] if header.startswith("Bot ") else None
        with self._state:
            user = self._bots.get(token) if token else None
        if token is None or user is None:
            return error(401, 0, "401: Unauthorized")
        return token, user

    @route("GET", API + r"/users/@me")
    def me(self, req: Request) -> Reply:
        bot = self._bot(req)
        return bot if isinstance(bot, Reply) else Reply.json(200, bot[1])

    @route("POST", API + r"/channels/(\d+)/messages")
    def create_message(self, req: Request, channel_id: str) -> Reply:
        bot = self._bot(req)
        if isinstance(bot, Reply):
            return bot
        token, user = bot
        with self._state:
            channel = self._channels.get(channel_id)
        if channel is None:
            return error(404, 10003, "Unknown Channel")
        if token not in channel.can_view:
            return error(403, 50001, "Missing Access")
        if token not in channel.can_send:
            return error(403, 50013, "Missing Permissions")
        if not (req.header("content-type") or "").startswith("application/json"):
            return error(400, 50109, "The request body contains invalid JSON.")
        try:
            body = req.json() or {}
        except ValueError:
            return error(400, 50109, "The request body contains invalid JSON.")
        content, embeds = body.get("content") or "", body.get("embeds") or []
        if len(content) > MAX_CONTENT:
            return _too_long("content", MAX_CONTENT)
        if len(embeds) > MAX_EMBEDS:
            return _too_long("embeds", MAX_EMBEDS)
        if not content and not embeds:
            return error(400, 50006, "Cannot send an empty message")
        message = {
            "id": self.snowflake(),
            "type": 0,
            "channel_id": channel_id,
            "content": content,
            "author": {k: user[k] for k in ("id", "username", "discriminator", "global_name", "avatar", "bot")},
            "timestamp": datetime.now(UTC).isoformat(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": "@everyone" in content,
            "mentions": [],
            "mention_roles": [],
            "attachments": [],
            "embeds": [{"type": "rich", **e} for e in embeds],
            "pinned": False,
            "flags": 0,
            "components": [],
        }
        with self._state:
            self.messages.append(message)
        return Reply.json(200, message)

    def not_found(self, req: Request) -> Reply:
        return error(404, 0, "404: Not Found")

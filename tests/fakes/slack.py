"""A local fake of the Slack Web API (https://docs.slack.dev), built on `tests.fakes.server`, and
the signing of Events API deliveries.

    POST /auth.test          {"ok": true, "url", "team", "user", "team_id", "user_id", "bot_id"}
    POST /chat.postMessage   {"ok": true, "channel", "ts", "message"}; JSON or form body

As Slack does, methods answer HTTP 200 with `{"ok": false, "error": "<code>"}` for every failure
(not_authed, invalid_auth, token_revoked, account_inactive, missing_scope, channel_not_found,
not_in_channel, is_archived, no_text, msg_too_long, invalid_blocks), except rate limits: HTTP 429
with Retry-After and `{"ok": false, "error": "ratelimited"}` (`ratelimit_next`). A JSON body
must carry the token in `Authorization: Bearer`; without `charset=utf-8` the answer carries
Slack's `missing_charset` warning. An unknown method answers 404 `unknown_method`.

`sign(secret, timestamp, body)` gives the headers Slack sends with an Events API request;
`delivery(secret, payload, timestamp)` the headers and body of one.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.server import FakeServer, Reply, Request, route

MAX_TEXT = 40_000
MAX_BLOCKS = 50


def sign(secret: str, timestamp: int | str, body: bytes) -> dict[str, str]:
    """The signature headers (lower-cased, as Connect hands them on) of an Events API request."""
    base = f"v0:{timestamp}:".encode() + body
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {
        "content-type": "application/json",
        "x-slack-request-timestamp": str(timestamp),
        "x-slack-signature": f"v0={digest}",
    }


def delivery(secret: str, payload: dict[str, Any], timestamp: int | None = None) -> tuple[dict[str, str], bytes]:
    body = json.dumps(payload).encode()
    return sign(secret, int(time.time()) if timestamp is None else timestamp, body), body


def event_callback(event: dict[str, Any], team_id: str = "T0FAKE0001") -> dict[str, Any]:
    """An Events API envelope around `event`."""
    return {
        "token": "verification-token-deprecated",
        "team_id": team_id,
        "api_app_id": "A0FAKE0001",
        "event": event,
        "type": "event_callback",
        "event_id": "Ev0FAKE0001",
        "event_time": int(time.time()),
        "authorizations": [{"team_id": team_id, "user_id": "U0BOT00001", "is_bot": True}],
    }


@dataclass
class Token:
    team: str
    user: str
    team_id: str
    user_id: str
    bot_id: str
    scopes: tuple[str, ...]
    revoked: bool = False
    inactive: bool = False


@dataclass
class Channel:
    id: str
    name: str
    member: bool = True
    archived: bool = False
    messages: list[dict[str, Any]] = field(default_factory=list)


class FakeSlack(FakeServer):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[dict[str, Any]] = []  # every posted message, with its "channel"
        self._tokens: dict[str, Token] = {}
        self._channels: dict[str, Channel] = {}
        self._ts = itertools.count(1)
        self._state = threading.Lock()

    # -- controls ------------------------------------------------------------------------------
    def add_token(
        self, token: str, *, team: str = "Acme", user: str = "chronary", scopes: tuple[str, ...] = ("chat:write",)
    ) -> Token:
        n = len(self._tokens) + 1
        entry = Token(team, user, f"T0FAKE{n:04d}", f"U0BOT{n:05d}", f"B0BOT{n:05d}", scopes)
        with self._state:
            self._tokens[token] = entry
        return entry

    def revoke(self, token: str) -> None:
        with self._state:
            self._tokens[token].revoked = True

    def add_channel(self, channel_id: str, name: str, *, member: bool = True, archived: bool = False) -> Channel:
        channel = Channel(channel_id, name, member, archived)
        with self._state:
            self._channels[channel_id] = channel
        return channel

    def ratelimit_next(self, retry_after: int = 30, times: int = 1) -> None:
        self.fail_next(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(retry_after)}, times=times)

    # -- request reading -----------------------------------------------------------------------
    def _args(self, req: Request) -> tuple[dict[str, Any], str | None, list[str]]:
        """The method's arguments, the token and the warnings, read as Slack reads them."""
        content_type = (req.header("content-type") or "").lower()
        warnings: list[str] = []
        token: str | None = None
        header = req.header("authorization") or ""
        if header.lower().startswith("bearer "):
            token = header[7:]
        args: dict[str, Any] = {k: v[0] for k, v in req.query.items()}
        if content_type.startswith("application/json"):
            if "charset" not in content_type:
                warnings.append("missing_charset")
            parsed = req.json() if req.body else {}
            args.update(parsed if isinstance(parsed, dict) else {})
        elif req.body:
            args.update(req.form())
            token = token or args.pop("token", None)
        return args, token, warnings

    def _auth(self, token: str | None) -> Token | Reply:
        if not token:
            return self._fail("not_authed")
        with self._state:
            entry = self._tokens.get(token)
        if entry is None:
            return self._fail("invalid_auth")
        if entry.revoked:
            return self._fail("token_revoked")
        if entry.inactive:
            return self._fail("account_inactive")
        return entry

    @staticmethod
    def _fail(error: str, **extra: Any) -> Reply:
        return Reply.json(200, {"ok": False, "error": error, **extra})

    @staticmethod
    def _ok(body: dict[str, Any], warnings: list[str]) -> Reply:
        if warnings:
            body = {**body, "warning": ",".join(warnings), "response_metadata": {"warnings": warnings}}
        return Reply.json(200, {"ok": True, **body})

    # -- methods -------------------------------------------------------------------------------
    @route("POST", r"/auth\.test")
    def auth_test(self, req: Request) -> Reply:
        _, token, warnings = self._args(req)
        entry = self._auth(token)
        if isinstance(entry, Reply):
            return entry
        slug = entry.team.lower().replace(" ", "-")
        return self._ok(
            {
                "url": f"https://{slug}.slack.com/",
                "team": entry.team,
                "user": entry.user,
                "team_id": entry.team_id,
                "user_id": entry.user_id,
                "bot_id": entry.bot_id,
                "is_enterprise_install": False,
            },
            warnings,
        )

    @route("POST", r"/chat\.postMessage")
    def post_message(self, req: Request) -> Reply:
        args, token, warnings = self._args(req)
        entry = self._auth(token)
        if isinstance(entry, Reply):
            return entry
        if "chat:write" not in entry.scopes:
            return self._fail("missing_scope", needed="chat:write", provided=",".join(entry.scopes))
        channel = self._channel(str(args.get("channel") or ""))
        if channel is None:
            return self._fail("channel_not_found")
        if channel.archived:
            return self._fail("is_archived")
        if not channel.member:
            return self._fail("not_in_channel")
        text, blocks = args.get("text"), args.get("blocks")
        if isinstance(blocks, str):  # form bodies carry blocks as a JSON string
            try:
                blocks = json.loads(blocks)
            except ValueError:
                return self._fail("invalid_blocks_format")
        if not text and not blocks:
            return self._fail("no_text")
        if isinstance(text, str) and len(text) > MAX_TEXT:
            return self._fail("msg_too_long")
        if blocks is not None and (
            not isinstance(blocks, list)
            or len(blocks) > MAX_BLOCKS
            or not all(isinstance(b, dict) and isinstance(b.get("type"), str) for b in blocks)
        ):
            return self._fail("invalid_blocks")
        ts = f"{int(time.time())}.{next(self._ts):06d}"
        message: dict[str, Any] = {
            "type": "message",
            "subtype": "bot_message",
            "text": text or "",
            "user": entry.user_id,
            "bot_id": entry.bot_id,
            "team": entry.team_id,
            "ts": ts,
        }
        if blocks:
            message["blocks"] = blocks
        if args.get("thread_ts"):
            message["thread_ts"] = args["thread_ts"]
        with self._state:
            channel.messages.append(message)
            self.messages.append({"channel": channel.id, **message})
        return self._ok({"channel": channel.id, "ts": ts, "message": message}, warnings)

    def _channel(self, ref: str) -> Channel | None:
        with self._state:
            if ref in self._channels:
                return self._channels[ref]
            name = ref.removeprefix("#")
            return next((c for c in self._channels.values() if c.name == name), None)

    def not_found(self, req: Request) -> Reply:
        return Reply.json(404, {"ok": False, "error": "unknown_method", "req_method": req.path.lstrip("/")})

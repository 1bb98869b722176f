"""A local fake of an ntfy server (https://docs.ntfy.sh), built on `tests.fakes.server`.

What it plays, as ntfy documents and implements it:

    GET  /v1/health     {"healthy": true} (or false after `healthy = False`)
    GET  /v1/account    the account of the access token; anonymous: {"username": "*", "role": "anonymous"}
    POST|PUT /          JSON publishing: {"topic", "message", "title", "priority", "tags", "click", "actions"}
    POST|PUT /<topic>   plain publishing: the body is the message, options in X-Title/X-Priority/X-Tags/X-Click

Auth is `Authorization: Bearer <token>` with tokens added by `add_token`; an unknown token is
answered 401 (40101) on every endpoint, as ntfy does. `protect(topic, *tokens)` makes a topic
publishable only with one of those tokens: anyone else gets 403 (40301). Errors are ntfy's JSON
`{"code", "http", "error", "link"}`. Published messages are kept in `messages`.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from typing import Any

from tests.fakes.server import FakeServer, Reply, Request, route

TOPIC = re.compile(r"[-_A-Za-z0-9]{1,64}")
AUTH_LINK = "https://ntfy.sh/docs/publish/#authentication"
MESSAGE_FIELDS = ("topic", "message", "title", "priority", "tags", "click", "actions")
CACHE_SECONDS = 12 * 3600  # ntfy.sh keeps messages 12 hours


def error(code: int, status: int, text: str, link: str = "", headers: dict[str, str] | None = None) -> Reply:
    body: dict[str, Any] = {"code": code, "http": status, "error": text}
    if link:
        body["link"] = link
    return Reply.json(status, body, headers)


UNAUTHORIZED = (40101, 401, "unauthorized", AUTH_LINK)
FORBIDDEN = (40301, 403, "forbidden", AUTH_LINK)
TOO_MANY = (42901, 429, "limit reached: too many requests, please be nice", "https://ntfy.sh/docs/publish/#limitations")


class FakeNtfy(FakeServer):
    def __init__(self) -> None:
        super().__init__()
        self.healthy = True
        self.messages: list[dict[str, Any]] = []
        self._users: dict[str, str] = {}  # token -> username
        self._protected: dict[str, set[str]] = {}  # topic -> tokens that may publish
        self._state = threading.Lock()

    # -- controls ------------------------------------------------------------------------------
    def add_token(self, username: str, token: str | None = None) -> str:
        token = token or "tk_" + secrets.token_hex(15)
        with self._state:
            self._users[token] = username
        return token

    def protect(self, topic: str, *tokens: str) -> None:
        """Only these tokens may publish to `topic` (ntfy's auth-default-access deny-all plus ACLs)."""
        with self._state:
            self._protected[topic] = set(tokens)

    def limit_next(self, retry_after: int | None = None, times: int = 1) -> None:
        """The next requests answer ntfy's 429 (ntfy itself sends no Retry-After; a proxy may)."""
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
        code, status, text, link = TOO_MANY
        self.fail_next(status, {"code": code, "http": status, "error": text, "link": link}, headers, times=times)

    # -- auth ----------------------------------------------------------------------------------
    def _user(self, req: Request) -> tuple[str | None, str | None] | Reply:
        """(username, token) of the request, (None, None) when anonymous, or ntfy's 401."""
        header = req.header("authorization")
        if header is None:
            return None, None
        scheme, _, token = header.partition(" ")
        with self._state:
            username = self._users.get(token) if scheme.lower() == "bearer" else None
        if username is None:
            return error(*UNAUTHORIZED)
        return username, token

    # -- routes --------------------------------------------------------------------------------
    @route("GET", r"/v1/health")
    def health(self, req: Request) -> Reply:
        return Reply.json(200, {"healthy": self.healthy})

    @route("GET", r"/v1/account")
    def account(self, req: Request) -> Reply:
        who = self._user(req)
        if isinstance(who, Reply):
            return who
        username, _ = who
        if username is None:
            return Reply.json(200, {"username": "*", "role": "anonymous", "language": "en"})
        return Reply.json(200, {"username": username, "role": "user", "language": "en", "tier": {"code": "free"}})

    @route("POST", r"/")
    def publish_json(self, req: Request) -> Reply:
        who = self._user(req)
        if isinstance(who, Reply):
            return who
        try:
            body = req.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return error(
                40017,
                400,
                "invalid request: request body must be message JSON",
                "https://ntfy.sh/docs/publish/#publish-as-json",
            )
        return self._publish(who[1], {k: body[k] for k in MESSAGE_FIELDS if k in body})

    @route("PUT", r"/")
    def publish_json_put(self, req: Request) -> Reply:
        return self.publish_json(req)

    @route("POST", r"/([-_A-Za-z0-9]{1,64})")
    def publish_plain(self, req: Request, topic: str) -> Reply:
        who = self._user(req)
        if isinstance(who, Reply):
            return who
        fields: dict[str, Any] = {"topic": topic, "message": req.body.decode("utf-8", "replace")}
        for name, headers in (("title", ("x-title", "title", "t")), ("click", ("x-click", "click"))):
            value = next((req.header(h) for h in headers if req.header(h)), None)
            if value:
                fields[name] = value
        priority = req.header("x-priority") or req.header("priority") or req.header("p")
        if priority:
            named = {"min": 1, "low": 2, "default": 3, "high": 4, "max": 5, "urgent": 5}
            fields["priority"] = named.get(priority, int(priority) if priority.isdigit() else -1)
        tags = req.header("x-tags") or req.header("tags") or req.header("ta")
        if tags:
            fields["tags"] = [t.strip() for t in tags.split(",") if t.strip()]
        return self._publish(who[1], fields)

    @route("PUT", r"/([-_A-Za-z0-9]{1,64})")
    def publish_plain_put(self, req: Request, topic: str) -> Reply:
        return self.publish_plain(req, topic)

    def _publish(self, token: str | None, fields: dict[str, Any]) -> Reply:
        topic = fields.get("topic")
        if not isinstance(topic, str) or not TOPIC.fullmatch(topic):
            return error(40009, 400, "invalid request: topic invalid")
        priority = fields.get("priority", 0)
        if not isinstance(priority, int) or not 0 <= priority <= 5:
            return error(40007, 400, "invalid priority parameter", "https://ntfy.sh/docs/publish/#message-priority")
        actions = fields.get("actions")
        if actions is not None and (not isinstance(actions, list) or len(actions) > 3):
            return error(40018, 400, "invalid request: actions invalid", "https://ntfy.sh/docs/publish/#action-buttons")
        with self._state:
            allowed = self._protected.get(topic)
        if allowed is not None and token not in allowed:
            return error(*FORBIDDEN)
        now = int(time.time())
        message: dict[str, Any] = {
            "id": secrets.token_urlsafe(9)[:12],
            "time": now,
            "expires": now + CACHE_SECONDS,
            "event": "message",
            "topic": topic,
            "message": fields.get("message") or "triggered",  # ntfy's text for an empty message
        }
        for name in ("title", "tags", "click"):
            if fields.get(name):
                message[name] = fields[name]
        if priority:
            message["priority"] = priority
        if actions:
            message["actions"] = [{"id": secrets.token_urlsafe(7)[:10], **a} for a in actions]
        with self._state:
            self.messages.append(message)
        return Reply.json(200, message)

    def not_found(self, req: Request) -> Reply:
        return error(40401, 404, "page not found")

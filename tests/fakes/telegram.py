"""A local fake of the Telegram Bot API (`/bot<token>/<method>`), on the shared FakeServer.

Methods: getMe, sendMessage, setWebhook, deleteWebhook, getWebhookInfo, each by GET (query
parameters) or POST (JSON or form body), answering as Telegram does: `{"ok": true, "result": …}`
or `{"ok": false, "error_code": N, "description": "…"}` with N also the HTTP status: 401
Unauthorized for an unknown token, 404 Not Found for an unknown method, 400 "Bad Request: chat
not found" for a chat the bot does not know, 403 "Forbidden: bot was blocked by the user" for a
chat in `blocked`. `rate_limit(seconds)` makes the next call answer 429 with
`parameters.retry_after`. Sent messages are kept in `messages`, the webhook in `webhook`;
`update(kind, …)` builds the Update JSON Telegram would push.
"""

from __future__ import annotations

import html
import itertools
import json
import re
import threading
import time
from typing import Any

from tests.fakes.server import FakeServer, Reply, Request, route

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw0"
_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")
_METHOD = r"/bot([^/]+)/([A-Za-z]+)"


def error(code: int, description: str, parameters: dict[str, Any] | None = None) -> Reply:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return Reply.json(code, body)


def ok(result: Any, description: str | None = None) -> Reply:
    body: dict[str, Any] = {"ok": True, "result": result}
    if description:
        body["description"] = description
    return Reply.json(200, body)


class FakeTelegram(FakeServer):
    def __init__(self, token: str = TOKEN, username: str = "chronary_test_bot") -> None:
        super().__init__()
        self.token = token
        self.bot = {
            "id": int(token.split(":")[0]),
            "is_bot": True,
            "first_name": "Chronary",
            "username": username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }
        self.chats: dict[int, dict[str, Any]] = {}
        self.blocked: set[int] = set()
        self.messages: list[dict[str, Any]] = []
        self.webhook: dict[str, Any] = {}
        self._ids = itertools.count(1)
        self._updates = itertools.count(100000)
        self._state = threading.Lock()
        self.add_chat(123456789, type="private", first_name="Ada", username="ada")
        self.add_chat(-1001234567890, type="channel", title="Chronary updates", username="chronary_updates")

    # -- controls --------------------------------------------------------------------------------
    def add_chat(self, chat_id: int, **fields: Any) -> dict[str, Any]:
        chat = {"id": chat_id, **fields}
        self.chats[chat_id] = chat
        return chat

    def rate_limit(self, retry_after: int, *, times: int = 1) -> None:
        self.fail_next(
            429,
            {
                "ok": False,
                "error_code": 429,
                "description": f"Too Many Requests: retry after {retry_after}",
                "parameters": {"retry_after": retry_after},
            },
            times=times,
        )

    def update(self, kind: str, *, chat_id: int = 123456789, text: str = "hello") -> dict[str, Any]:
        """The Update Telegram would push for `kind` (message, edited_message, channel_post, callback_query)."""
        chat = self.chats[chat_id]
        user = {"id": chat_id, "is_bot": False, "first_name": chat.get("first_name", "Ada")}
        message = {"message_id": next(self._ids), "date": int(time.time()), "chat": chat, "text": text}
        update_id = next(self._updates)
        if kind == "callback_query":
            body = {"id": str(update_id), "from": user, "message": message, "chat_instance": "42", "data": text}
            return {"update_id": update_id, kind: body}
        if kind == "edited_message":
            message["edit_date"] = int(time.time())
        if kind != "channel_post":
            message["from"] = user
        return {"update_id": update_id, kind: message}

    # -- the Bot API ---------------------------------------------------------------------------
    @route("GET", _METHOD)
    def get(self, req: Request, token: str, method: str) -> Reply:
        return self._method(token, method, {k: v[0] for k, v in req.query.items()})

    @route("POST", _METHOD)
    def post(self, req: Request, token: str, method: str) -> Reply:
        params: dict[str, Any] = {k: v[0] for k, v in req.query.items()}
        content_type = req.header("content-type") or ""
        if req.body and "json" in content_type:
            try:
                body = req.json()
            except ValueError:
                return error(400, "Bad Request: can't parse JSON object")
            if not isinstance(body, dict):
                return error(400, "Bad Request: parameters must be a JSON object")
            params.update(body)
        elif req.body:
            params.update(req.form())
        return self._method(token, method, params)

    def not_found(self, req: Request) -> Reply:
        return error(404, "Not Found")

    def _method(self, token: str, method: str, params: dict[str, Any]) -> Reply:
        if token != self.token:
            return error(401, "Unauthorized")
        handler = {
            "getme": self._get_me,
            "sendmessage": self._send_message,
            "setwebhook": self._set_webhook,
            "deletewebhook": self._delete_webhook,
            "getwebhookinfo": self._get_webhook_info,
        }.get(method.lower())  # Telegram's method names are case-insensitive
        if handler is None:
            return error(404, "Not Found")
        return handler(params)

    def _get_me(self, params: dict[str, Any]) -> Reply:
        return ok(self.bot)

    def _chat(self, value: Any) -> dict[str, Any] | None:
        if isinstance(value, str) and value.startswith("@"):
            return next((c for c in self.chats.values() if c.get("username") == value[1:]), None)
        try:
            return self.chats.get(int(value))
        except (TypeError, ValueError):
            return None

    def _send_message(self, params: dict[str, Any]) -> Reply:
        if "chat_id" not in params:
            return error(400, "Bad Request: chat_id is empty")
        text = params.get("text")
        if not isinstance(text, str) or not text.strip():
            return error(400, "Bad Request: message text is empty")
        parse_mode = params.get("parse_mode")
        if parse_mode not in (None, "", "HTML", "MarkdownV2", "Markdown"):
            return error(400, "Bad Request: unsupported parse_mode")
        if parse_mode == "HTML":
            if text.count("<") != text.count(">"):
                return error(400, "Bad Request: can't parse entities: Unclosed start tag at byte offset 0")
            text = html.unescape(re.sub(r"<[^>]*>", "", text))
        if len(text) > 4096:
            return error(400, "Bad Request: message is too long")
        chat = self._chat(params["chat_id"])
        if chat is None:
            return error(400, "Bad Request: chat not found")
        if chat["id"] in self.blocked:
            return error(403, "Forbidden: bot was blocked by the user")
        with self._state:
            message: dict[str, Any] = {
                "message_id": next(self._ids),
                "from": {k: self.bot[k] for k in ("id", "is_bot", "first_name", "username")},
                "chat": chat,
                "date": int(time.time()),
                "text": text,
            }
            if chat.get("type") == "channel":
                message.pop("from")
                message["sender_chat"] = chat
            self.messages.append({**message, "params": params})
        return ok(message)

    def _set_webhook(self, params: dict[str, Any]) -> Reply:
        url = params.get("url")
        if not url:  # an empty url removes the webhook, as deleteWebhook does
            self.webhook = {}
            return ok(True, "Webhook was deleted")
        if not isinstance(url, str) or not url.startswith("https://"):
            return error(400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook")
        secret = params.get("secret_token")
        if secret is not None and not (isinstance(secret, str) and _SECRET.fullmatch(secret)):
            return error(400, "Bad Request: secret token contains unallowed characters")
        allowed = params.get("allowed_updates")
        if isinstance(allowed, str):  # GET/form: a JSON-serialized list
            allowed = json.loads(allowed)
        self.webhook = {"url": url, "secret_token": secret, "allowed_updates": allowed}
        return ok(True, "Webhook was set")

    def _delete_webhook(self, params: dict[str, Any]) -> Reply:
        self.webhook = {}
        return ok(True, "Webhook was deleted")

    def _get_webhook_info(self, params: dict[str, Any]) -> Reply:
        info: dict[str, Any] = {
            "url": self.webhook.get("url", ""),
            "has_custom_certificate": False,
            "pending_update_count": 0,
        }
        if self.webhook.get("allowed_updates") is not None:
            info["allowed_updates"] = self.webhook["allowed_updates"]
        return ok(info)

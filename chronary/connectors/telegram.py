"""Telegram Bot API: `send_message` (sendMessage), the getMe check, setWebhook and its updates.

Every method is `{telegram_api_url}/bot<token>/<method>`: the token is part of the path (the
proxy target's `path_prefix`), never a header, and it is scrubbed from every reason we raise.
Telegram answers `{"ok": true, "result": …}` or `{"ok": false, "error_code": 400, "description":
"Bad Request: chat not found", "parameters": {"retry_after": 5}}`; the error code is also the HTTP
status. Updates pushed to the webhook carry the `secret_token` given to setWebhook in the
`X-Telegram-Bot-Api-Secret-Token` header, and each holds exactly one field besides `update_id`
(message, edited_message, channel_post, callback_query, …), which names the event.
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import httpx

from chronary.catalogue.telegram import PROVIDER
from chronary.connectors import base
from chronary.connectors.base import (
    BadCredentials,
    BadInput,
    BadSignature,
    ConnectorError,
    Inbound,
    RawResponse,
    Target,
    retry_after_seconds,
)

SECRET_HEADER = "x-telegram-bot-api-secret-token"
SEND_FIELDS = ("chat_id", "text", "parse_mode", "disable_notification")
# the update kinds the catalogue offers as events: what setWebhook asks Telegram to deliver
ALLOWED_UPDATES = tuple(event.name for event in PROVIDER.webhook_events)
DEFAULT_RETRY_AFTER = 30.0
_TOKEN = re.compile(r"[0-9]{1,20}:[A-Za-z0-9_-]{20,100}")
_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")


class Connector(base.Connector):
    type = "telegram"

    # -- credentials ---------------------------------------------------------------------------
    def _token(self) -> str:
        token = self.cred("bot_token")
        if token is None:
            raise BadCredentials("bot_token is required", field="bot_token")
        if not _TOKEN.fullmatch(token):  # it goes into a URL path: nothing but the documented shape
            raise BadCredentials("bot_token does not look like a token from @BotFather (digits:letters)", field="bot_token")
        return token

    def _secret(self) -> str | None:
        secret = self.cred("webhook_secret")
        if secret is not None and not _SECRET.fullmatch(secret):
            raise BadCredentials("webhook_secret must be 1–256 characters of A-Z, a-z, 0-9, _ and -", field="webhook_secret")
        return secret

    def target(self) -> Target:
        return Target(self.settings.telegram_api_url, path_prefix=f"/bot{self._token()}")

    def _scrub(self, text: str) -> str:
        token = self.cred("bot_token")
        if token:
            text = text.replace(token, "<bot token>")
            secret = token.partition(":")[2]
            if len(secret) >= 8:
                text = text.replace(secret, "<bot token>")
        return text

    # -- calls ---------------------------------------------------------------------------------
    async def _call(self, method: str, payload: dict[str, Any] | None = None) -> tuple[Any, RawResponse]:
        """One Bot API method: its `result`, or the Telegram error as a ConnectorError."""
        try:
            if payload is None:
                response = await self.send("GET", f"/{method}")
            else:
                response = await self.send_json("POST", f"/{method}", payload)
        except ConnectorError as exc:  # reasons from the shared request never hold the URL; be sure anyway
            exc.reason = self._scrub(exc.reason)
            exc.args = (exc.reason,)
            raise
        body = response.json()
        if isinstance(body, dict) and body.get("ok") is True and response.status == 200:
            return body.get("result"), response
        raise self._error(method, response, body)

    def _error(self, method: str, response: RawResponse, body: Any) -> ConnectorError:
        if not isinstance(body, dict):
            return ConnectorError(
                f"Telegram answered {method} with HTTP {response.status} and no Bot API answer", status=response.status
            )
        code = body.get("error_code")
        status = code if isinstance(code, int) else response.status
        description = body.get("description")
        said = self._scrub(description) if isinstance(description, str) and description else f"error {status}"
        reason = f"Telegram refused {method}: {said}"
        found = body.get("parameters")
        parameters: dict[str, Any] = found if isinstance(found, dict) else {}
        if status == 429:
            wait = parameters.get("retry_after")
            if not isinstance(wait, int | float) or isinstance(wait, bool):
                header = retry_after_seconds(httpx.Headers(response.headers))
                wait = header if header is not None else DEFAULT_RETRY_AFTER
            return ConnectorError(reason, status=429, retry_after=float(wait))
        if status in (401, 404) and method == "getMe":
            # Telegram answers 401 for an unknown token and 404 for one it cannot even parse
            return BadCredentials("Telegram does not accept this bot token", field="bot_token", status=status)
        if status == 401:
            return ConnectorError("Telegram no longer accepts this bot token", field="bot_token", status=401)
        if method != "sendMessage":
            return ConnectorError(reason, status=status)
        lowered = said.lower()
        if status == 400:
            migrated = parameters.get("migrate_to_chat_id")
            if isinstance(migrated, int):
                return BadInput(f"{reason} (the group is now the supergroup {migrated})", field="chat_id", status=400)
            return BadInput(reason, field=_input_field(lowered), status=400)
        if status == 403:  # blocked by the user, kicked from the group, not a member of the channel
            return ConnectorError(reason, field="chat_id", status=403)
        return ConnectorError(reason, status=status)

    # -- the interface -------------------------------------------------------------------------
    async def check(self) -> str | None:
        me, _ = await self._call("getMe")
        username = me.get("username") if isinstance(me, dict) else None
        return f"@{username}" if isinstance(username, str) and username else None

    async def run(self, action: str, inputs: dict[str, Any]) -> dict[str, Any]:
        if action != "send_message":
            return await super().run(action, inputs)
        payload = {name: inputs[name] for name in SEND_FIELDS if inputs.get(name) is not None}
        message, response = await self._call("sendMessage", payload)
        if not isinstance(message, dict):
            raise ConnectorError("Telegram answered sendMessage without the sent message", status=response.status)
        return message

    def inbound(self, headers: Mapping[str, str], body: bytes, now: datetime) -> Inbound:
        secret = self._secret()
        if secret is not None:
            given = headers.get(SECRET_HEADER)
            if given is None:
                raise BadSignature("the delivery has no X-Telegram-Bot-Api-Secret-Token header")
            if not hmac.compare_digest(given.encode(), secret.encode()):
                raise BadSignature("the delivery's X-Telegram-Bot-Api-Secret-Token does not match webhook_secret")
        try:
            update = json.loads(body) if body else None
        except ValueError:
            update = None
        if not isinstance(update, dict) or not isinstance(update.get("update_id"), int):
            raise BadInput("the delivery is not a Telegram Update (a JSON object with update_id)", field="body")
        kinds = [key for key in update if key != "update_id"]
        return Inbound(kinds[0] if kinds else None, update)

    async def register_inbound(self, url: str) -> None:
        payload: dict[str, Any] = {"url": url, "allowed_updates": list(ALLOWED_UPDATES)}
        secret = self._secret()
        if secret is not None:
            payload["secret_token"] = secret
        result, response = await self._call("setWebhook", payload)
        if result is not True:
            raise ConnectorError("Telegram did not confirm setWebhook", status=response.status)


def _input_field(description: str) -> str | None:
    """The sendMessage input a Bad Request description is about."""
    if "parse entities" in description or "parse_mode" in description:
        return "parse_mode" if "unsupported" in description else "text"
    if "text" in description or "too long" in description:
        return "text"
    if "chat" in description or "user" in description or "peer" in description:
        return "chat_id"
    return None

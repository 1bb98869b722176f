"""Slack: the Web API with a bot token, and Events API deliveries checked with the signing secret.

Web API methods answer HTTP 200 with `{"ok": false, "error": "<code>"}` for almost every failure;
only rate limits are HTTP 429 (with Retry-After). `post_message` is `chat.postMessage` sent as
JSON, which Slack wants with `charset=utf-8` (it warns `missing_charset` otherwise).

Events API: every delivery carries `X-Slack-Request-Timestamp` and `X-Slack-Signature`,
`v0=` + hex HMAC-SHA256(signing secret, `v0:{timestamp}:{raw body}`); deliveries more than five
minutes from now are refused as replays. The `url_verification` handshake is answered with its
challenge and is no event; `event_callback` deliveries are events named by `event.type`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from chronary.connectors import base
from chronary.connectors.base import (
    BadCredentials,
    BadInput,
    BadSignature,
    ConnectorError,
    Inbound,
    RawResponse,
    Target,
)
from chronary.connectors.http import http_url, redact, retry_after

JSON_UTF8 = "application/json; charset=utf-8"
MAX_SKEW_SECONDS = 5 * 60
DEFAULT_RETRY_AFTER = 30.0
MESSAGE_FIELDS = ("channel", "text", "blocks", "thread_ts")
AUTH_ERRORS = frozenset({"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired"})
FORBIDDEN = frozenset({"missing_scope", "no_permission", "restricted_action", "ekm_access_denied"})
RATE_LIMITED = frozenset({"ratelimited", "rate_limited"})
INPUT_ERRORS = {  # chat.postMessage error codes that name an input
    "channel_not_found": "channel",
    "not_in_channel": "channel",
    "is_archived": "channel",
    "no_text": "text",
    "msg_too_long": "text",
    "invalid_blocks": "blocks",
    "invalid_blocks_format": "blocks",
    "too_many_blocks": "blocks",
    "restricted_action_read_only_channel": "channel",
    "restricted_action_thread_only_channel": "thread_ts",
    "restricted_action_non_threadable_channel": "thread_ts",
}
_ERROR_CODE = re.compile(r"[a-z0-9_]{1,64}")


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The `X-Slack-Signature` Slack computes for a delivery."""
    base_string = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base_string, hashlib.sha256).hexdigest()


class Connector(base.Connector):
    type = "slack"

    def token(self) -> str:
        token = self.cred("bot_token")
        if token is None:
            raise BadCredentials("a bot token (xoxb-…) is required", field="bot_token")
        if not token.isprintable() or " " in token:
            raise BadCredentials("the bot token may not contain spaces or control characters", field="bot_token")
        return token

    def target(self) -> Target:
        base_url = http_url(self.settings.slack_api_url, "slack_api_url")
        return Target(base_url, headers={"Authorization": f"Bearer {self.token()}"})

    async def check(self) -> str | None:
        answer = await self._call("auth.test", None, "the token check")
        team, user = answer.get("team"), answer.get("user")
        if isinstance(team, str) and isinstance(user, str):
            return f"{team} ({user})"
        return team if isinstance(team, str) else None

    async def run(self, action: str, inputs: dict[str, Any]) -> dict[str, Any]:
        if action != "post_message":
            return await super().run(action, inputs)
        payload = {name: inputs[name] for name in MESSAGE_FIELDS if inputs.get(name) is not None}
        return await self._call("chat.postMessage", payload, "the message")

    async def _call(self, method: str, payload: dict[str, Any] | None, what: str) -> dict[str, Any]:
        """One Web API method (POST, JSON body when given); its answer when ok, else the error mapped."""
        body = None if payload is None else json.dumps(payload).encode()
        response = await self.send("POST", f"/{method}", body=body, content_type=JSON_UTF8 if body else None)
        answer = response.json()
        if response.status == 429:
            raise self._rate_limited(response, what)
        if response.status != 200 or not isinstance(answer, dict):
            raise ConnectorError(f"Slack answered {what} with HTTP {response.status}", status=response.status)
        if answer.get("ok") is True:
            return answer
        raise self._error(response, answer, what)

    def _rate_limited(self, response: RawResponse, what: str) -> ConnectorError:
        wait = retry_after(response)
        return ConnectorError(
            f"Slack rate-limited {what}; try again later",
            status=429,
            retry_after=wait if wait is not None else DEFAULT_RETRY_AFTER,
        )

    def _error(self, response: RawResponse, answer: dict[str, Any], what: str) -> ConnectorError:
        raw = answer.get("error")
        code = raw if isinstance(raw, str) and _ERROR_CODE.fullmatch(raw) else "unknown_error"
        reason = redact(f"Slack refused {what}: {code}", [self.cred("bot_token"), self.cred("signing_secret")])
        if code in AUTH_ERRORS:
            return BadCredentials(reason, field="bot_token", status=401)
        if code in RATE_LIMITED:
            return self._rate_limited(response, what)
        if code in FORBIDDEN:
            needed = answer.get("needed")
            if code == "missing_scope" and isinstance(needed, str) and re.fullmatch(r"[a-z:._,]{1,100}", needed):
                reason += f" (the bot token needs the {needed} scope)"
            return ConnectorError(reason, status=403)
        if code in INPUT_ERRORS:
            return BadInput(reason, field=INPUT_ERRORS[code], status=response.status)
        return ConnectorError(reason, status=response.status)

    # -- Events API ----------------------------------------------------------------------------
    def inbound(self, headers: Mapping[str, str], body: bytes, now: datetime) -> Inbound:
        secret = self.cred("signing_secret")
        if secret is None:
            raise BadSignature("this Slack connection has no signing secret to verify Events API requests with")
        timestamp = headers.get("x-slack-request-timestamp", "")
        given = headers.get("x-slack-signature", "")
        if not timestamp or not given:
            raise BadSignature("the request has no X-Slack-Signature or X-Slack-Request-Timestamp")
        if not timestamp.isascii() or not timestamp.isdigit():
            raise BadSignature("X-Slack-Request-Timestamp is not a Unix time")
        if abs(now.timestamp() - int(timestamp)) > MAX_SKEW_SECONDS:
            raise BadSignature("X-Slack-Request-Timestamp is more than five minutes away (a replayed request?)")
        if not hmac.compare_digest(signature(secret, timestamp, body).encode(), given.encode("utf-8", "replace")):
            raise BadSignature("X-Slack-Signature does not match the signing secret")
        try:
            payload = json.loads(body)
        except ValueError:
            raise BadInput("the Events API request body is not JSON", field="body") from None
        if not isinstance(payload, dict):
            raise BadInput("the Events API request body is not a JSON object", field="body")
        kind = payload.get("type")
        if kind == "url_verification":
            challenge = payload.get("challenge")
            if not isinstance(challenge, str):
                raise BadInput("url_verification without a challenge", field="body")
            return Inbound(None, payload, reply={"challenge": challenge})
        if kind == "event_callback":
            event = payload.get("event")
            name = event.get("type") if isinstance(event, dict) else None
            if not isinstance(name, str) or not name:
                raise BadInput("event_callback without an event type", field="body")
            return Inbound(name, payload)
        return Inbound(None, payload)  # app_rate_limited and other notices: nothing to relay

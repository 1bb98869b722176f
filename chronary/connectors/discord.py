"""Discord: the REST API (v10) as a bot, `Authorization: Bot <token>`.

Discord answers errors as `{"code": <JSON error code>, "message": "…"}` (Invalid Form Body,
50035, adds `errors`, nested by the offending field); a rate limit is 429 with
`{"message", "retry_after" (seconds, a float), "global"}` and a Retry-After header. Discord asks
HTTP clients to identify themselves as `User-Agent: DiscordBot ($url, $version)`, so the proxy
target sends that too.
"""

from __future__ import annotations

from typing import Any

import httpx

from chronary import __version__
from chronary.connectors import base
from chronary.connectors.base import (
    BadCredentials,
    BadInput,
    ConnectorError,
    RawResponse,
    Target,
    Unreachable,
    clean_headers,
)
from chronary.connectors.http import http_url, redact, retry_after
from chronary.outbound import OutboundError

USER_AGENT = f"DiscordBot (Chronary, {__version__})"
DEFAULT_RETRY_AFTER = 5.0
MESSAGE_FIELDS = ("content", "embeds")
UNKNOWN_CHANNEL = 10003
MISSING_ACCESS = 50001
MISSING_PERMISSIONS = 50013
EMPTY_MESSAGE = 50006
INVALID_FORM_BODY = 50035


class Connector(base.Connector):
    type = "discord"

    def token(self) -> str:
        token = self.cred("bot_token")
        if token is None:
            raise BadCredentials("a bot token is required", field="bot_token")
        token = token.removeprefix("Bot ")  # pasted with the scheme: the header adds it
        if not token or not token.isprintable() or " " in token:
            raise BadCredentials("the bot token may not contain spaces or control characters", field="bot_token")
        return token

    def target(self) -> Target:
        base_url = http_url(self.settings.discord_api_url, "discord_api_url")
        return Target(base_url, headers={"Authorization": f"Bot {self.token()}", "User-Agent": USER_AGENT})

    async def check(self) -> str | None:
        response = await self._get_me()
        if response.status != 200:
            raise self._error(response, "the token check")
        user = response.json()
        name = user.get("username") if isinstance(user, dict) else None
        return name if isinstance(name, str) and name else None

    async def run(self, action: str, inputs: dict[str, Any]) -> dict[str, Any]:
        if action != "send_message":
            return await super().run(action, inputs)
        channel = str(inputs["channel_id"])
        if not channel.isascii() or not channel.isdigit():
            raise BadInput("channel_id must be a channel's numeric id", field="channel_id")
        payload = {name: inputs[name] for name in MESSAGE_FIELDS if inputs.get(name) is not None}
        response = await self.send_json("POST", f"/channels/{channel}/messages", payload)
        if response.status != 200:
            raise self._error(response, "the message")
        message = response.json()
        if not isinstance(message, dict):
            raise ConnectorError("Discord answered the message with something other than a message", status=200)
        return message

    async def _get_me(self) -> RawResponse:
        """GET /users/@me. `send` cannot make it: its path guard refuses `@` (rightly, for proxied
        paths), so this one fixed path is requested here, with the same auth, time and size limits."""
        target = self.target()
        url = target.base_url.rstrip("/") + "/users/@me"
        limit = self.settings.connect_proxy_max_bytes
        timeout = self.settings.connect_proxy_timeout_seconds
        try:
            async with self.http.stream("GET", url, headers=dict(target.headers)) as resp:
                chunks, size = [], 0
                async for chunk in resp.aiter_bytes():
                    size += len(chunk)
                    if size > limit:
                        raise ConnectorError(f"the provider's answer is larger than the {limit}-byte limit")
                    chunks.append(chunk)
                return RawResponse(
                    resp.status_code, clean_headers(resp.headers), b"".join(chunks), resp.headers.get("content-type", "")
                )
        except httpx.TimeoutException:
            raise Unreachable(f"discord did not answer within {timeout} s") from None
        except httpx.HTTPError as exc:
            cause = exc.__cause__ or exc.__context__
            why = next((e.reason for e in (exc, cause) if isinstance(e, OutboundError)), type(exc).__name__)
            raise Unreachable(f"could not reach discord: {why}") from None

    def _error(self, response: RawResponse, what: str) -> ConnectorError:
        body = response.json()
        body = body if isinstance(body, dict) else {}
        code, message = body.get("code"), body.get("message")
        said = message if isinstance(message, str) and message else f"HTTP {response.status}"
        if isinstance(code, int) and code:
            said += f" (code {code})"
        reason = redact(f"Discord refused {what}: {said}", [self.cred("bot_token")])
        status = response.status
        if status == 429:
            wait = body.get("retry_after")
            seconds = float(wait) if isinstance(wait, int | float) and wait >= 0 else retry_after(response)
            scope = "globally" if body.get("global") is True else "on this route"
            return ConnectorError(
                f"Discord rate-limited {what} {scope}; try again later",
                status=429,
                retry_after=seconds if seconds is not None else DEFAULT_RETRY_AFTER,
            )
        if status == 401:
            return BadCredentials(reason, field="bot_token", status=401)
        if code == UNKNOWN_CHANNEL or (status == 404 and what == "the message"):
            return BadInput(reason, field="channel_id", status=status)
        if status == 403 or code in (MISSING_ACCESS, MISSING_PERMISSIONS):
            return ConnectorError(reason, status=403)
        if code == EMPTY_MESSAGE:
            return BadInput(reason, field="content", status=status)
        if code == INVALID_FORM_BODY:
            return BadInput(reason, field=_form_field(body.get("errors")), status=status)
        return ConnectorError(reason, status=status)


def _form_field(errors: Any) -> str | None:
    """The top-level input an Invalid Form Body error names (`{"content": {"_errors": […]}}`)."""
    if isinstance(errors, dict):
        for name in errors:
            if name in MESSAGE_FIELDS:
                return str(name)
    return None

"""ntfy (ntfy.sh or self-hosted): `publish` is JSON publishing, `POST /` with the topic in the body.

An access token (tk_…) goes in `Authorization: Bearer`. ntfy answers errors as JSON
`{"code": 40301, "http": 403, "error": "forbidden", "link": …}`; 401 means the token is unknown
(ntfy refuses a bad token on every endpoint, even for public topics), 403 that the token (or
anonymous access) may not publish to that topic, 429 a rate limit.
"""

from __future__ import annotations

from typing import Any

from chronary.connectors import base
from chronary.connectors.base import BadCredentials, BadInput, ConnectorError, RawResponse, Target
from chronary.connectors.http import http_url, redact, retry_after

DEFAULT_URL = "https://ntfy.sh"
DEFAULT_RETRY_AFTER = 60.0
PUBLISH_FIELDS = ("topic", "message", "title", "priority", "tags", "click", "actions")
_INPUT_ERRORS = {  # ntfy error codes that name an input
    40007: "priority",
    40009: "topic",
    40010: "topic",
    40011: "message",
    40018: "actions",
    41303: "message",
}


class Connector(base.Connector):
    type = "ntfy"

    def target(self) -> Target:
        base_url = http_url(self.cred("base_url", DEFAULT_URL), "base_url")
        token = self.cred("access_token")
        if token is None:
            return Target(base_url)
        if not token.isprintable():
            raise BadCredentials("access_token may not contain control characters", field="access_token")
        return Target(base_url, headers={"Authorization": f"Bearer {token}"})

    async def check(self) -> str | None:
        if self.cred("access_token") is None:
            health = await self.send("GET", "/v1/health")
            if health.status != 200:
                raise self._error(health, "the health check")
            value = health.json()
            if not isinstance(value, dict) or value.get("healthy") is not True:
                raise ConnectorError("the ntfy server says it is not healthy", status=health.status)
            return None
        account = await self.send("GET", "/v1/account")
        if account.status == 401:
            raise BadCredentials("ntfy does not know this access token", field="access_token", status=401)
        if account.status != 200:
            raise self._error(account, "the account check")
        value = account.json()
        name = value.get("username") if isinstance(value, dict) else None
        # "*" is ntfy's name for anonymous access (a server without auth ignores the token)
        return name if isinstance(name, str) and name and name != "*" else None

    async def run(self, action: str, inputs: dict[str, Any]) -> dict[str, Any]:
        if action != "publish":
            return await super().run(action, inputs)
        payload = {name: inputs[name] for name in PUBLISH_FIELDS if inputs.get(name) is not None}
        response = await self.send_json("POST", "/", payload)
        if response.status != 200:
            raise self._error(response, "publishing")
        message = response.json()
        if not isinstance(message, dict):
            raise ConnectorError("ntfy answered publishing with something other than a message", status=response.status)
        return message

    def _error(self, response: RawResponse, doing: str) -> ConnectorError:
        """ntfy's error JSON as a ConnectorError: its text, its status, the input it names."""
        body = response.json()
        text = body.get("error") if isinstance(body, dict) else None
        code = body.get("code") if isinstance(body, dict) else None
        said = redact(text, [self.cred("access_token")]) if isinstance(text, str) and text else f"HTTP {response.status}"
        reason = f"ntfy refused {doing}: {said}"
        if response.status == 429:
            wait = retry_after(response)
            return ConnectorError(reason, status=429, retry_after=wait if wait is not None else DEFAULT_RETRY_AFTER)
        if response.status == 401:
            return BadCredentials(reason, field="access_token", status=401)
        if isinstance(code, int) and code in _INPUT_ERRORS:
            return BadInput(reason, field=_INPUT_ERRORS[code], status=response.status)
        return ConnectorError(reason, status=response.status)

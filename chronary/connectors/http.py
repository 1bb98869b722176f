"""Any HTTP API: a base URL and an optional API key (also the connector of custom providers).

The key goes where the connection says (`auth_style`): `Authorization: Bearer <key>`, a header of
its own (`header_name`, default X-API-Key) or a query parameter (`query_param`, default api_key).
The `request` action answers whatever the API answered, non-2xx included: for a generic API a
4xx is an answer to show, not a failure of the call. There is no generic cheap credential check.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx

from chronary.connectors import base
from chronary.connectors.base import HOP_BY_HOP, BadCredentials, Inbound, RawResponse, Target, retry_after_seconds

AuthStyle = Literal["bearer", "header", "query"]
AUTH_STYLES: tuple[AuthStyle, ...] = ("bearer", "header", "query")
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an HTTP field name (RFC 9110 token)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# inbound headers whose name says they carry a secret (shared tokens, keys, signatures, cookies)
_SECRET_WORDS = ("auth", "token", "secret", "key", "password", "passwd", "signature", "cookie", "session", "credential")
_INBOUND_HEADERS = ("content-type", "user-agent")


def http_url(value: str | None, field: str) -> str:
    """`value` as a base URL (http or https, a host, no query or fragment), or BadCredentials."""
    parts = urlsplit(value or "")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadCredentials(f"{field} must be an http:// or https:// URL", field=field)
    if parts.query or parts.fragment or parts.username or parts.password or _CONTROL.search(value or ""):
        raise BadCredentials(f"{field} may not carry a query, fragment, user name or control characters", field=field)
    return value or ""


def redact(text: str, secrets: list[str | None], limit: int = 200) -> str:
    """Provider text fit for a `reason`: secrets masked, control characters dropped, length capped."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    text = _CONTROL.sub(" ", text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def answer_headers(response: RawResponse) -> dict[str, str]:
    """Response headers as a dict with lower-case names, repeated ones joined with ", "."""
    joined: dict[str, str] = {}
    for name, value in response.headers:
        key = name.lower()
        joined[key] = f"{joined[key]}, {value}" if key in joined else value
    return joined


def retry_after(response: RawResponse) -> float | None:
    """The Retry-After header in seconds (None when absent or an HTTP date)."""
    return retry_after_seconds(httpx.Headers(response.headers))


def _secret_header(name: str) -> bool:
    return any(word in name for word in _SECRET_WORDS)


class Connector(base.Connector):
    type = "http"

    # -- credentials ---------------------------------------------------------------------------
    def auth_style(self) -> AuthStyle:
        style = self.cred("auth_style", "bearer")
        for known in AUTH_STYLES:
            if style == known:
                return known
        raise BadCredentials("auth_style must be bearer, header or query", field="auth_style")

    def target(self) -> Target:
        base_url = http_url(self.cred("base_url"), "base_url")
        key = self.cred("api_key")
        if key is None:
            return Target(base_url)
        if _CONTROL.search(key):
            raise BadCredentials("api_key may not contain control characters or line breaks", field="api_key")
        style = self.auth_style()
        if style == "bearer":
            return Target(base_url, headers={"Authorization": f"Bearer {key}"})
        if style == "header":
            name = self.cred("header_name", "X-API-Key") or "X-API-Key"
            if not _TOKEN.fullmatch(name) or name.lower() in HOP_BY_HOP:
                raise BadCredentials("header_name must be a plain HTTP header name", field="header_name")
            return Target(base_url, headers={name: key})
        param = self.cred("query_param", "api_key") or "api_key"
        return Target(base_url, query={param: key})

    # -- the raw request -----------------------------------------------------------------------
    async def send(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        content_type: str | None = None,
    ) -> RawResponse:
        """The base request, but header names compared case-insensitively: a caller's `x-api-key`
        beside the key's `X-Api-Key` (or a second content-type) would otherwise be sent as well."""
        taken = {name.lower() for name in self.target().headers}
        if content_type:
            taken.add("content-type")
        kept = {k: v for k, v in (headers or {}).items() if k.lower() not in taken}
        return await super().send(method, path, query=query, headers=kept, body=body, content_type=content_type)

    # -- actions -------------------------------------------------------------------------------
    async def run(self, action: str, inputs: dict[str, Any]) -> dict[str, Any]:
        if action != "request":
            return await super().run(action, inputs)
        method = str(inputs.get("method") or "GET").upper()
        headers = dict(inputs.get("headers") or {})
        body: bytes | None = None
        content_type: str | None = None
        if inputs.get("body") is not None:
            body = json.dumps(inputs["body"]).encode()
            # the caller's own JSON media type (application/merge-patch+json, …) is kept
            given = next((v for k, v in headers.items() if k.lower() == "content-type"), None)
            content_type = given if given and "json" in given.lower() else "application/json"
        response = await self.send(
            method, inputs["path"], query=inputs.get("query") or None, headers=headers, body=body, content_type=content_type
        )
        return {"status": response.status, "headers": answer_headers(response), "body": response.json_or_text()}

    # -- inbound -------------------------------------------------------------------------------
    def inbound(self, headers: Mapping[str, str], body: bytes, now: datetime) -> Inbound:
        """A `request` event: the parsed body and the headers a flow can use (content-type,
        user-agent, x-*), never one whose name says it carries a secret."""
        kept = {
            name: value
            for name, value in headers.items()
            if (name in _INBOUND_HEADERS or name.startswith("x-")) and not _secret_header(name)
        }
        return Inbound("request", {"headers": kept, "body": super().inbound(headers, body, now).payload})

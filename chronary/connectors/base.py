"""The interface every Connect connector implements, and the raw-request plumbing they share.

A connector speaks one API-key provider's documented API (ntfy, Slack, Discord, Telegram, Home
Assistant, SMTP, any HTTP API): a cheap credential check for connect, the provider's actions, the
proxy `Target` (base URL plus the auth the caller cannot override) and the verification of what
the provider pushes to Connect's inbound URL. Calendar providers (Google, Microsoft, CalDAV) are
`chronary.providers`; the Connect service reaches their APIs through those.

Connectors import nothing from `chronary.services`: they get plain credentials (already
decrypted), the settings and an httpx client built on `chronary.outbound.GuardedTransport`, and
they raise `ConnectorError`s whose `reason` is safe to show (never a token, never a body).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import unquote, urlsplit

import httpx

from chronary.config import Settings
from chronary.outbound import OutboundError

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)
# never passed on in either direction: credentials and cookies belong to the connection, not the caller
AUTH_HEADERS = frozenset({"authorization", "cookie", "set-cookie", "x-api-key", "www-authenticate"})
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class ConnectorError(Exception):
    """A call that failed; `reason` names what went wrong without echoing secrets.

    `field` names the input or credential at fault; `retry_after` (seconds) when the provider
    rate-limited us; `status` the provider's HTTP status when it answered.
    """

    def __init__(
        self,
        reason: str,
        *,
        field: str | None = None,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.field = field
        self.status = status
        self.retry_after = retry_after


class BadCredentials(ConnectorError):
    """The provider refused the credentials (connect answers 400 and stores nothing)."""


class BadInput(ConnectorError):
    """An input the schema allows but the provider cannot take (answered 400 naming `field`)."""


class Unreachable(ConnectorError):
    """The provider could not be reached or did not answer in time (answered 502)."""


class BadSignature(ConnectorError):
    """An inbound delivery whose signature does not check out (answered 401, nothing kept)."""


@dataclass(frozen=True)
class Target:
    """Where proxied requests go: `base_url` + `path_prefix` + the caller's path, plus the auth."""

    base_url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, str] = field(default_factory=dict)
    path_prefix: str = ""  # e.g. Telegram's /bot<token>: part of the secret, never logged


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: list[tuple[str, str]]  # as received, minus hop-by-hop and auth headers
    body: bytes
    content_type: str

    def json_or_text(self) -> Any:
        """The body as an action answers it: parsed JSON when it is JSON, else text."""
        if not self.body:
            return None
        if "json" in self.content_type:
            try:
                return json.loads(self.body)
            except ValueError:
                pass
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None


@dataclass(frozen=True)
class Inbound:
    """What one delivery to the inbound URL carried: an `event` to relay (None: a handshake only)
    and, where the provider expects one, the JSON `reply` (Slack's url_verification challenge)."""

    event: str | None
    payload: Any
    reply: Any = None


def safe_path(path: str) -> str:
    """The caller's proxy path, or BadInput: it must stay below the provider's base URL.

    Refused: anything not starting with a single `/`, absolute URLs, `\\`, a raw `@`, control
    characters, `?`/`#` (query parameters go in `query`), and `.`/`..` segments, also when
    percent-encoded (decoded repeatedly, so %252e%252e is caught too). An encoded @ (%40) is data.
    """
    if not isinstance(path, str) or not path.startswith("/") or path.startswith("//"):
        raise BadInput("path must start with a single / (a path below the provider's base URL)", field="path")
    decoded, previous = path, None
    for _ in range(5):
        if decoded == previous:
            break
        previous, decoded = decoded, unquote(decoded)
    if "@" in path:  # userinfo-looking paths; an @ that is data (a calendar id) is sent as %40
        raise BadInput("path may not contain @ (percent-encode it as %40 where it is data)", field="path")
    for text in (path, decoded):
        if _CONTROL.search(text) or "\\" in text:
            raise BadInput("path may not contain control characters or backslashes", field="path")
        if "?" in text or "#" in text:
            raise BadInput("path may not contain ? or #: put query parameters in query", field="path")
        if "://" in text or text.startswith("//"):
            raise BadInput("path must be relative to the provider's base URL, not a URL", field="path")
        if any(segment in (".", "..") for segment in text.split("/")):
            raise BadInput("path may not contain . or .. segments", field="path")
    return path


def join(target: Target, path: str) -> str:
    """The URL for `path` below the target, checked to stay on the base URL's origin and path."""
    base = target.base_url.rstrip("/")
    url = base + target.path_prefix + safe_path(path)
    want, got = urlsplit(base), urlsplit(url)
    if (got.scheme, got.netloc) != (want.scheme, want.netloc) or not got.path.startswith(want.path):
        raise BadInput("path must stay on the provider's host", field="path")
    return url


def clean_headers(headers: httpx.Headers) -> list[tuple[str, str]]:
    return [(k, v) for k, v in headers.multi_items() if k.lower() not in HOP_BY_HOP | AUTH_HEADERS]


def retry_after_seconds(headers: httpx.Headers) -> float | None:
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


class Connector:
    """One provider's API. Subclasses set `type`, and override what the provider has."""

    type: ClassVar[str]

    def __init__(self, credentials: Mapping[str, str], settings: Settings, http: httpx.AsyncClient) -> None:
        self.credentials = dict(credentials)
        self.settings = settings
        self.http = http

    def cred(self, name: str, default: str | None = None) -> str | None:
        value = self.credentials.get(name)
        return value if value not in (None, "") else default

    # -- what each provider supplies ---------------------------------------------------------
    def target(self) -> Target:
        """Where the proxy sends requests and with which auth (override where the provider proxies)."""
        raise BadInput(f"{self.type} has no HTTP API to proxy to", field="providerType")

    async def check(self) -> str | None:
        """Check the credentials cheaply; answer the account's name where the provider tells it.
        Raise BadCredentials when the provider refuses them. Default: no check is possible."""
        return None

    async def run(self, action: str, inputs: dict[str, Any]) -> dict[str, Any]:
        """Run one of the provider's catalogue actions with schema-valid inputs."""
        raise BadInput(f"{self.type} has no action {action!r}", field="actionName")

    def inbound(self, headers: Mapping[str, str], body: bytes, now: datetime) -> Inbound:
        """Verify and read one delivery to the connection's inbound URL (headers lower-cased).
        Default: a JSON (or text) body relayed as a `request` event."""
        return Inbound("request", _body_value(headers, body))

    async def register_inbound(self, url: str) -> None:
        """Tell the provider where to push (Telegram's setWebhook); default: the user does it."""
        return None

    # -- the raw request every proxy call and most actions make ------------------------------
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
        """One request below the target with its auth; the response body is capped at
        `connect_proxy_max_bytes`, the whole call at `connect_proxy_timeout_seconds`."""
        target = self.target()
        url = join(target, path)
        dropped = HOP_BY_HOP | AUTH_HEADERS | {k.lower() for k in target.headers}
        if content_type:
            dropped = dropped | {"content-type"}
        send_headers = {k: v for k, v in (headers or {}).items() if k.lower() not in dropped}
        if content_type:
            send_headers["Content-Type"] = content_type
        send_headers.update(target.headers)  # last: the caller cannot override the auth
        params = {**(query or {}), **target.query}
        limit = self.settings.connect_proxy_max_bytes
        timeout = self.settings.connect_proxy_timeout_seconds
        deadline = time.monotonic() + timeout
        try:
            async with self.http.stream(method, url, params=params or None, headers=send_headers, content=body) as resp:
                declared = resp.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > limit:
                    raise ConnectorError(f"the provider's answer is {declared} bytes; the limit is {limit}")
                chunks, size = [], 0
                async for chunk in resp.aiter_bytes():
                    size += len(chunk)
                    if size > limit:
                        raise ConnectorError(f"the provider's answer is larger than the {limit}-byte limit")
                    if time.monotonic() > deadline:
                        raise Unreachable(f"{self.type} did not answer within {timeout} s")
                    chunks.append(chunk)
                return RawResponse(
                    resp.status_code, clean_headers(resp.headers), b"".join(chunks), resp.headers.get("content-type", "")
                )
        except httpx.TimeoutException:
            raise Unreachable(f"{self.type} did not answer within {timeout} s") from None
        except httpx.HTTPError as exc:
            raise Unreachable(f"could not reach {self.type}: {_network_reason(exc)}") from None

    async def send_json(self, method: str, path: str, payload: Any = None, **kwargs: Any) -> RawResponse:
        body = None if payload is None else json.dumps(payload).encode()
        return await self.send(method, path, body=body, content_type="application/json" if body else None, **kwargs)


def _body_value(headers: Mapping[str, str], body: bytes) -> Any:
    if not body:
        return None
    if "json" in headers.get("content-type", "") or body[:1] in (b"{", b"["):
        try:
            return json.loads(body)
        except ValueError:
            pass
    return body.decode("utf-8", "replace")


def _network_reason(exc: httpx.HTTPError) -> str:
    """A short reason without the URL (it may carry a token in its path, as Telegram's does)."""
    cause = exc.__cause__ or exc.__context__
    for err in (exc, cause):
        if isinstance(err, OutboundError):
            return err.reason
    return type(exc).__name__

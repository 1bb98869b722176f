"""The one way out: outbound HTTP for webhooks, iCal subscriptions and providers.

Every request goes through `check_target` (http/https only; never this server itself; private
networks only when `allow_private_network_targets` is on, which it is by default because
self-hosters post to their LAN) and through `fetch`, which has a timeout, a response size cap,
and follows a bounded number of redirects, re-checking each hop.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import httpx

from chronary.config import Settings

DEFAULT_TIMEOUT = 10.0
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_MAX_REDIRECTS = 5
USER_AGENT = "Chronary/0.1 (+self-hosted calendar server)"


class OutboundError(Exception):
    """A request we refused to make or that failed; `reason` is safe to show users."""

    def __init__(self, reason: str, *, retryable: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


class BlockedTarget(OutboundError):
    pass


@dataclass
class Response:
    status: int
    headers: httpx.Headers
    body: bytes
    url: str
    elapsed_ms: float = 0.0
    redirects: list[str] = field(default_factory=list)


def _addresses(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise OutboundError(f"cannot resolve host {host!r}: {exc.strerror}", retryable=True) from None
    return [ipaddress.ip_address(info[4][0]) for info in infos]


def _is_private(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return addr.is_private or addr.is_loopback or addr.is_link_local or addr.is_reserved or addr.is_unspecified


def _own_endpoints(settings: Settings) -> set[tuple[str, int]]:
    """(host, port) pairs that reach this server: its bind address, loopback, its public URL."""
    own = {
        (settings.host, settings.port),
        ("127.0.0.1", settings.port),
        ("::1", settings.port),
        ("localhost", settings.port),
    }
    if settings.public_url:
        parts = urlsplit(settings.public_url)
        if parts.hostname:
            own.add((parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)))
    return own


def check_target(url: str, settings: Settings, *, schemes: tuple[str, ...] = ("http", "https")) -> None:
    """Raise BlockedTarget unless `url` is one we may call."""
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise BlockedTarget(f"not a valid URL: {url!r}") from None
    if parts.scheme not in schemes:
        raise BlockedTarget(f"URL scheme must be one of {', '.join(schemes)} (got {parts.scheme or 'none'!r})")
    if not parts.hostname:
        raise BlockedTarget("URL has no host")
    if parts.username or parts.password:
        raise BlockedTarget("put credentials in the username/password fields, not in the URL")
    host = parts.hostname
    own = _own_endpoints(settings)
    addrs = _addresses(host, port)
    own_addrs = set()
    for own_host, own_port in own:
        if own_port == port:
            try:
                own_addrs.update(_addresses(own_host, own_port))
            except OutboundError:
                continue
    if (host, port) in own or (
        settings.host in {"0.0.0.0", "::"}
        and port == settings.port
        and any(a.is_loopback or a.is_unspecified for a in addrs)
    ):
        raise BlockedTarget("refusing to call this Chronary server itself")
    if any(a in own_addrs for a in addrs):
        raise BlockedTarget("refusing to call this Chronary server itself")
    if not settings.allow_private_network_targets and any(_is_private(a) for a in addrs):
        raise BlockedTarget(f"{host} is a private/loopback address and allow_private_network_targets is off")


async def fetch(
    url: str,
    settings: Settings,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    content: bytes | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_redirects: int = DEFAULT_MAX_REDIRECTS,
    auth: tuple[str, str] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Response:
    """One guarded request. Network errors and timeouts raise OutboundError(retryable=True)."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    redirects: list[str] = []
    send_headers = {"User-Agent": USER_AGENT, **(headers or {})}
    async with httpx.AsyncClient(timeout=timeout, follow_redirects=False, transport=transport) as client:
        current = url
        for _ in range(max_redirects + 1):
            await asyncio.to_thread(check_target, current, settings)
            try:
                async with client.stream(method, current, headers=send_headers, content=content, auth=auth) as resp:
                    if resp.has_redirect_location and method in {"GET", "HEAD"}:
                        location = resp.headers.get("location", "")
                        redirects.append(current)
                        current = urljoin(current, location)
                        continue
                    declared = resp.headers.get("content-length")
                    if declared and declared.isdigit() and int(declared) > max_bytes:
                        raise OutboundError(f"response is {declared} bytes; the limit is {max_bytes}")
                    chunks, size = [], 0
                    async for chunk in resp.aiter_bytes():
                        size += len(chunk)
                        if size > max_bytes:
                            raise OutboundError(f"response is larger than the {max_bytes}-byte limit")
                        chunks.append(chunk)
                    return Response(
                        resp.status_code, resp.headers, b"".join(chunks), current, (loop.time() - started) * 1000, redirects
                    )
            except httpx.TimeoutException:
                raise OutboundError(f"timed out after {timeout:g} s", retryable=True) from None
            except httpx.HTTPError as exc:
                raise OutboundError(f"network error: {type(exc).__name__}: {exc}", retryable=True) from None
        raise OutboundError(f"too many redirects (more than {max_redirects})")

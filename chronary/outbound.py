"""The one way out: outbound HTTP for webhooks, iCal subscriptions and providers.

Three layers keep requests away from this server itself (and, with
`allow_private_network_targets` off, from private networks):

1. `parse_url` — strict syntax, shared by every URL field: http(s)/webcal only, no control
   characters, spaces or backslashes, no userinfo, a real host (IPv4 only as a.b.c.d, so `127.1`,
   `0x7f.1` or `2130706433` are refused outright rather than left to parser differences).
2. `check_target` — at save time and before every redirect hop: resolve the host and refuse
   if any address reaches this machine on the server's port (loopback, 0.0.0.0/::, IPv4-mapped
   IPv6, and every address of the machine's interfaces), or is the `public_url` endpoint.
3. `GuardedTransport` (httpx) and `guarded_getaddrinfo` (for other clients, e.g. the CalDAV
   library's niquests resolver) — at connect time: resolve once, check the addresses, and
   connect to exactly those, so DNS rebinding between check and connect cannot slip through.

`fetch` is the guarded request itself: timeout, response size cap, bounded redirects.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import re
import socket
import ssl
import threading
import time
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpcore
import httpx

from chronary.config import Settings

DEFAULT_TIMEOUT = 10.0
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_MAX_REDIRECTS = 5
USER_AGENT = "Chronary/0.1 (+self-hosted calendar server)"
HTTP_SCHEMES = ("http", "https")
DEFAULT_PORTS = {"http": 80, "https": 443, "webcal": 80, "webcals": 443}
OWN_SERVER = "refusing to call this Chronary server itself"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
AddrInfo = tuple[Any, Any, int, str, tuple[Any, ...]]


class OutboundError(Exception):
    """A request we refused to make or that failed; `reason` is safe to show users."""

    def __init__(self, reason: str, *, retryable: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


class BlockedTarget(OutboundError):
    pass


class InvalidUrl(BlockedTarget):
    """The URL itself is malformed (as opposed to well-formed but pointing somewhere forbidden)."""


@dataclass
class Response:
    status: int
    headers: httpx.Headers
    body: bytes
    url: str
    elapsed_ms: float = 0.0
    redirects: list[str] = field(default_factory=list)


# -- 1. syntax ------------------------------------------------------------------------------------

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*")  # WHATWG: such a last label makes the host IPv4


@dataclass(frozen=True)
class Target:
    """A syntactically valid URL: lower-case scheme, normalized host (no brackets/trailing dot)."""

    url: str
    scheme: str
    host: str
    port: int
    ip: IPAddress | None


def _describe(ch: str) -> str:
    if ch == " ":
        return "a space"
    if ch == "\\":
        return "a backslash"
    return f"a control or invisible character (U+{ord(ch):04X})"


def _bad_char(url: str) -> tuple[int, str] | None:
    for i, ch in enumerate(url):
        if ch == "\\" or ch.isspace() or unicodedata.category(ch).startswith("C"):
            return i, ch
    return None


def _host(raw: str) -> tuple[str, IPAddress | None]:
    if raw.startswith("["):
        if not raw.endswith("]"):
            raise InvalidUrl("URL has an unterminated [IPv6] host")
        if "%" in raw:
            raise InvalidUrl("URL host has an IPv6 zone (%…), which is not accepted")
        try:
            return raw[1:-1].lower(), normalize_ip(ipaddress.IPv6Address(raw[1:-1]))
        except ValueError:
            raise InvalidUrl("URL host is not a valid IPv6 address") from None
    if not raw:
        raise InvalidUrl("URL has no host")
    try:
        host = raw.encode("idna").decode("ascii").lower() if not raw.isascii() else raw.lower()
    except UnicodeError:
        raise InvalidUrl("URL host is not a valid host name") from None
    host = host[:-1] if host.endswith(".") else host
    labels = host.split(".")
    if not host or len(host) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise InvalidUrl(f"URL host {raw!r} is not a valid host name")
    if _NUMERIC_LABEL.fullmatch(labels[-1]):
        try:
            return host, ipaddress.IPv4Address(host)
        except ValueError:
            raise InvalidUrl("write an IPv4 host as four decimal numbers, e.g. 192.168.1.10") from None
    return host, None


def parse_url(url: str, schemes: Iterable[str] = HTTP_SCHEMES) -> Target:
    """Check `url` strictly (raises InvalidUrl with a reason safe to show) and split it."""
    allowed = tuple(schemes)
    if not isinstance(url, str):
        raise InvalidUrl("URL must be a string")
    match = _SCHEME.match(url)
    scheme = match.group(1).lower() if match else None
    if scheme not in allowed:
        raise InvalidUrl(f"URL scheme must be one of {', '.join(allowed)} (got {scheme or 'none'!r})")
    bad = _bad_char(url)
    if bad is not None:
        raise InvalidUrl(f"URL contains {_describe(bad[1])} at position {bad[0]}; percent-encode it or remove it")
    if not url[len(scheme) + 1 :].startswith("//"):
        raise InvalidUrl(f"URL must look like {scheme}://host/path")
    try:
        netloc = urlsplit(url).netloc
    except ValueError:
        raise InvalidUrl("URL has a malformed host") from None
    if "@" in netloc:
        raise InvalidUrl("credentials do not belong in the URL; use the username and password fields")
    host_part, port_part = netloc, ""
    if netloc.startswith("["):
        end = netloc.find("]")
        host_part, rest = (netloc, "") if end < 0 else (netloc[: end + 1], netloc[end + 1 :])
        if rest and not rest.startswith(":"):
            raise InvalidUrl("URL has text after its [IPv6] host")
        port_part = rest[1:]
    elif ":" in netloc:
        host_part, _, port_part = netloc.rpartition(":")
    if port_part and not (port_part.isascii() and port_part.isdigit() and 0 < int(port_part) < 65536):
        raise InvalidUrl(f"URL port {port_part!r} is not a number from 1 to 65535")
    host, ip = _host(host_part)
    return Target(url, scheme, host, int(port_part) if port_part else DEFAULT_PORTS.get(scheme, 80), ip)


# -- 2. addresses ---------------------------------------------------------------------------------


def normalize_ip(addr: IPAddress) -> IPAddress:
    """The address a connection really goes to: IPv4-mapped/-compatible IPv6 → IPv4, no zone."""
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return addr.ipv4_mapped
        if addr.scope_id:
            addr = ipaddress.IPv6Address(int(addr))
        if 1 < int(addr) < 2**32:  # deprecated IPv4-compatible ::a.b.c.d
            return ipaddress.IPv4Address(int(addr))
    return addr


def _assigned_here(addr: IPAddress) -> bool:
    """Is `addr` one of this machine's interface addresses? Only those can be bound."""
    family = socket.AF_INET if addr.version == 4 else socket.AF_INET6
    scopes = [0]
    if addr.version == 6 and addr.is_link_local:
        scopes = [index for index, _ in socket.if_nameindex()]
    for scope in scopes:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((str(addr), 0) if family == socket.AF_INET else (str(addr), 0, 0, scope))
                return True
            except OSError:
                continue
    return False


def reaches_this_machine(addr: IPAddress) -> bool:
    """Loopback (all of 127.0.0.0/8), 0.0.0.0/:: ("this host"), or an address of an interface."""
    addr = normalize_ip(addr)
    return addr.is_loopback or addr.is_unspecified or _assigned_here(addr)


def _is_private(addr: IPAddress) -> bool:
    addr = normalize_ip(addr)
    return (
        addr.is_private
        or addr.is_loopback
        or addr.is_link_local
        or addr.is_reserved
        or addr.is_unspecified
        or addr.is_multicast
    )


_LOOPBACK: list[IPAddress] = [ipaddress.IPv4Address("127.0.0.1"), ipaddress.IPv6Address("::1")]
_public_cache: dict[tuple[str, int], tuple[float, frozenset[IPAddress]]] = {}
_public_lock = threading.Lock()
_PUBLIC_TTL = 30.0


def _lookup(host: str, port: int) -> list[IPAddress]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, socket.gaierror) else "not a valid host name"
        raise OutboundError(f"cannot resolve host {host!r}: {reason}", retryable=True) from None
    return [normalize_ip(ipaddress.ip_address(info[4][0])) for info in infos]


def resolve(host: str, port: int) -> list[IPAddress]:
    """Addresses of a normalized host; `localhost` and `*.localhost` are loopback (RFC 6761)."""
    try:
        return [normalize_ip(ipaddress.ip_address(host))]
    except ValueError:
        pass
    if host == "localhost" or host.endswith(".localhost"):
        return list(_LOOPBACK)
    return _lookup(host, port)


def _public_target(settings: Settings) -> Target | None:
    """public_url as a target: a reverse proxy in front of us is us too."""
    if not settings.public_url:
        return None
    try:
        return parse_url(settings.public_url)
    except InvalidUrl:
        return None


def _public_addresses(public: Target) -> frozenset[IPAddress]:
    key = (public.host, public.port)
    now = time.monotonic()
    with _public_lock:
        cached = _public_cache.get(key)
    if cached is None or cached[0] < now:
        try:
            addrs = frozenset(resolve(public.host, public.port))
        except OutboundError:
            addrs = frozenset()
        cached = (now + _PUBLIC_TTL, addrs)
        with _public_lock:
            _public_cache[key] = cached
    return cached[1]


def _is_public_name(host: str, port: int, settings: Settings) -> bool:
    public = _public_target(settings)
    return public is not None and (host.lower().rstrip(".").strip("[]"), port) == (public.host, public.port)


def check_addresses(host: str, port: int, addrs: Iterable[IPAddress], settings: Settings) -> None:
    """Raise BlockedTarget if connecting to (any of) `addrs`:`port` would reach this server."""
    addrs = [normalize_ip(a) for a in addrs]
    if port == settings.port and any(reaches_this_machine(a) for a in addrs):
        raise BlockedTarget(OWN_SERVER)
    public = _public_target(settings)
    if (
        public is not None
        and port == public.port
        and (_is_public_name(host, port, settings) or any(a in _public_addresses(public) for a in addrs))
    ):
        raise BlockedTarget(OWN_SERVER)
    if not settings.allow_private_network_targets and any(_is_private(a) for a in addrs):
        raise BlockedTarget(f"{host} is a private/loopback address and allow_private_network_targets is off")


def check_target(url: str, settings: Settings, *, schemes: Iterable[str] = HTTP_SCHEMES) -> Target:
    """Raise BlockedTarget unless `url` is one we may call (does DNS: call it from a thread)."""
    return checked_addresses(url, settings, schemes=schemes)[0]


def checked_addresses(
    url: str,
    settings: Settings,
    *,
    schemes: Iterable[str] = HTTP_SCHEMES,
    lookup: Callable[[str, int], list[IPAddress]] = resolve,
) -> tuple[Target, list[IPAddress]]:
    """`check_target` that also returns the addresses it approved, for a client that connects to
    exactly those (webhooks/http.py). `lookup` may be a caching `resolve`; the check runs anyway."""
    target = parse_url(url, schemes)
    if _is_public_name(target.host, target.port, settings):  # before DNS, which may not know the name
        raise BlockedTarget(OWN_SERVER)
    addrs = lookup(target.host, target.port)
    check_addresses(target.host, target.port, addrs, settings)
    return target, addrs


def needs_no_dns(host: str) -> bool:
    """Does `resolve` answer for this normalized host without DNS (an IP literal, localhost)?"""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def public_url_known(settings: Settings) -> bool:
    """Can `check_addresses` compare with public_url's addresses without a DNS query now?"""
    public = _public_target(settings)
    if public is None or needs_no_dns(public.host):
        return True
    with _public_lock:
        cached = _public_cache.get((public.host, public.port))
    return cached is not None and cached[0] > time.monotonic()


# -- 3. connect time ------------------------------------------------------------------------------


def guarded_getaddrinfo(
    host: str, port: int, settings: Settings, family: int = 0, type: int = socket.SOCK_STREAM, proto: int = 0
) -> list[AddrInfo]:
    """socket.getaddrinfo, refusing (BlockedTarget) when any answer reaches this server.

    Clients must connect to exactly the returned addresses; that closes the gap a second DNS
    answer (rebinding) would otherwise open between `check_target` and the connection.
    """
    try:
        infos = socket.getaddrinfo(host, port, family, type, proto)
    except (socket.gaierror, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, socket.gaierror) else "not a valid host name"
        raise OutboundError(f"cannot resolve host {host!r}: {reason}", retryable=True) from None
    check_addresses(host, port, [ipaddress.ip_address(info[4][0]) for info in infos], settings)
    return infos


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore network backend: resolve, check, then connect to the checked IP itself.

    TLS SNI and the Host header come from the request URL (httpcore), so https stays correct.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):  # DNS counts against the connect timeout
                infos = await asyncio.to_thread(guarded_getaddrinfo, host, port, self._settings)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from None
        ips = list(dict.fromkeys(str(info[4][0]) for info in infos))
        error: Exception = httpcore.ConnectError(f"no address for {host}")
        for ip in ips:
            try:
                return await self._inner.connect_tcp(
                    ip, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        raise error

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise BlockedTarget("unix sockets are not outbound targets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


_ssl_context: ssl.SSLContext | None = None  # tests may pin one context for every request
_ssl_contexts: dict[tuple[str | None, str | None], ssl.SSLContext] = {}
_ssl_lock = threading.Lock()


def _trust_store() -> tuple[str | None, str | None]:
    """The CA bundle the operator chose (SSL_CERT_FILE, or requests' REQUESTS_CA_BUNDLE) and
    SSL_CERT_DIR; both None means certifi's bundle. A private CA works by setting either."""
    cafile = os.environ.get("SSL_CERT_FILE") or os.environ.get("REQUESTS_CA_BUNDLE") or None
    return cafile, os.environ.get("SSL_CERT_DIR") or None


def _shared_ssl_context() -> ssl.SSLContext:
    """One verifying context per trust store: building one costs ~30 ms of CPU."""
    if _ssl_context is not None:
        return _ssl_context
    key = _trust_store()
    with _ssl_lock:
        ctx = _ssl_contexts.get(key)
        if ctx is None:
            cafile, capath = key
            if cafile or capath:
                ctx = ssl.create_default_context(cafile=cafile, capath=capath)
            else:
                ctx = httpx.create_ssl_context(trust_env=False)
            _ssl_contexts[key] = ctx
        return ctx


def ssl_context() -> ssl.SSLContext:
    """The verifying context outbound clients use (providers building their own httpx clients)."""
    return _shared_ssl_context()


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx transport whose every connection goes through `_GuardedBackend` (no env proxies).

    httpx's transport only wraps `self._pool`; we build that pool ourselves (with our network
    backend) instead of calling the parent constructor, which would build an unused one.
    """

    def __init__(self, settings: Settings) -> None:
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=_shared_ssl_context(),
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=_GuardedBackend(settings),
        )


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
    """One guarded request. Network errors and timeouts raise OutboundError(retryable=True).

    `transport` replaces the guarded one (tests only); every hop is still `check_target`ed.
    """
    loop = asyncio.get_running_loop()
    started = loop.time()
    redirects: list[str] = []
    send_headers = {"User-Agent": USER_AGENT, **(headers or {})}
    async with httpx.AsyncClient(
        timeout=timeout, follow_redirects=False, transport=transport or GuardedTransport(settings), trust_env=False
    ) as client:
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
            except httpx.InvalidURL as exc:
                raise InvalidUrl(f"not a valid URL: {exc}") from None
            except httpx.HTTPError as exc:
                raise OutboundError(f"network error: {type(exc).__name__}: {exc}", retryable=True) from None
        raise OutboundError(f"too many redirects (more than {max_redirects})")

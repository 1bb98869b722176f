"""The senders' HTTP/1.1 client: guarded like `outbound.fetch`, with keep-alive connections.

Why not httpx here: a sender posts hundreds of small requests a second to the same receivers,
and per request httpx + httpcore + anyio cost several times the work of the request itself
(and each `fetch` builds a new client, so nothing was kept alive). This client is h11 (the
parser httpcore uses) over asyncio streams, and does only what a webhook POST needs.

Every request is checked as `fetch` checks it (`outbound.checked_addresses`: syntax, this
server's own addresses, private networks, public_url), then goes over a connection from the pool
of (scheme, host, port, approved IP): a kept-alive connection is reused only by a request whose
own check approved the address it is connected to, so DNS rebinding cannot move it. DNS answers
are reused for `dns_ttl` seconds (the address check runs on every request); without a DNS
query to wait for, the check runs inline (microseconds), otherwise in a thread. TLS verifies
the host name (SNI and certificate) while connecting to the IP. Redirects are never followed: a
3xx is returned like any other answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Callable
from urllib.parse import quote, urlsplit

import h11
import httpx

from chronary import outbound
from chronary.config import Settings
from chronary.outbound import IPAddress, OutboundError, Response, Target

PoolKey = tuple[str, str, int, str]  # scheme, host, port, the approved IP the connections go to
_SAFE_PATH = "/%:@!$&'()*+,;=-._~"  # RFC 3986 pchar and "/": kept; anything else percent-encoded
_SAFE_QUERY = _SAFE_PATH + "?"
_Request = tuple[bytes, list[tuple[str, str]], bytes]  # target, header fields, body


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.h11 = h11.Connection(h11.CLIENT)
        self.idle_since = 0.0

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


class WebhookSession:
    """Keep-alive guarded POSTs for one event loop (a sender thread's); `aclose` when done.

    `transport` (tests only) sends through `outbound.fetch` with that httpx transport instead,
    still checked before every request.
    """

    def __init__(
        self,
        *,
        keepalive_expiry: float = 5.0,
        max_idle: int = 4,
        dns_ttl: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.keepalive_expiry = keepalive_expiry
        self.max_idle = max_idle
        self.dns_ttl = dns_ttl
        self.transport = transport
        self._idle: dict[PoolKey, list[_Connection]] = {}
        self._dns: dict[tuple[str, int], tuple[float, list[IPAddress]]] = {}
        self._dns_lock = threading.Lock()  # the lookup may run in a worker thread

    # --- the guard ------------------------------------------------------------------------

    def _lookup(self, host: str, port: int) -> list[IPAddress]:
        """`outbound.resolve`, answers kept for `dns_ttl` seconds."""
        now = time.monotonic()
        with self._dns_lock:
            cached = self._dns.get((host, port))
        if cached is not None and cached[0] > now:
            return cached[1]
        addrs = outbound.resolve(host, port)
        with self._dns_lock:
            if len(self._dns) >= 1024:
                self._dns.clear()
            self._dns[(host, port)] = (now + self.dns_ttl, addrs)
        return addrs

    def _no_dns_needed(self, url: str, settings: Settings) -> bool:
        try:
            target = outbound.parse_url(url)
        except outbound.InvalidUrl:
            return True  # refused without DNS
        if not outbound.needs_no_dns(target.host):
            with self._dns_lock:
                cached = self._dns.get((target.host, target.port))
            if cached is None or cached[0] <= time.monotonic():
                return False
        return outbound.public_url_known(settings)

    async def _check(self, url: str, settings: Settings) -> tuple[Target, list[IPAddress]]:
        check: Callable[[], tuple[Target, list[IPAddress]]] = lambda: outbound.checked_addresses(  # noqa: E731
            url, settings, lookup=self._lookup
        )
        return check() if self._no_dns_needed(url, settings) else await asyncio.to_thread(check)

    # --- requests -------------------------------------------------------------------------

    async def post(
        self, url: str, settings: Settings, *, headers: dict[str, str], content: bytes, timeout: float, max_bytes: int
    ) -> Response:
        """One guarded POST. Network errors and timeouts raise OutboundError(retryable=True),
        refusals BlockedTarget."""
        if self.transport is not None:
            return await outbound.fetch(
                url,
                settings,
                method="POST",
                headers=headers,
                content=content,
                timeout=timeout,
                max_bytes=max_bytes,
                max_redirects=0,
                transport=self.transport,
            )
        started = time.monotonic()
        target, addrs = await self._check(url, settings)
        request = (*self._request(url, target, headers, content), content)
        try:
            async with asyncio.timeout(timeout):
                status, raw_headers, body = await self._send(target, addrs, request, max_bytes)
        except TimeoutError:
            raise OutboundError(f"timed out after {timeout:g} s", retryable=True) from None
        return Response(status, httpx.Headers(raw_headers), body, url, (time.monotonic() - started) * 1000)

    @staticmethod
    def _request(url: str, target: Target, headers: dict[str, str], content: bytes) -> tuple[bytes, list[tuple[str, str]]]:
        """The request target and headers (h11 validates them when the request is written)."""
        parts = urlsplit(url)
        path = quote(parts.path or "/", safe=_SAFE_PATH)
        if parts.query:
            path += "?" + quote(parts.query, safe=_SAFE_QUERY)
        host = f"[{target.host}]" if ":" in target.host else target.host
        if target.port != outbound.DEFAULT_PORTS.get(target.scheme):
            host = f"{host}:{target.port}"
        fields = [("Host", host), ("User-Agent", outbound.USER_AGENT), *headers.items()]
        fields.append(("Content-Length", str(len(content))))
        return path.encode("ascii"), fields

    async def _send(
        self, target: Target, addrs: list[IPAddress], request: _Request, max_bytes: int
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        error: Exception = OutboundError(f"no address for {target.host}", retryable=True)
        for ip in dict.fromkeys(str(a) for a in addrs):  # the host's next address if one refuses
            key = (target.scheme, target.host, target.port, ip)
            conn = self._take_idle(key)
            if conn is not None:
                try:
                    return await self._exchange(key, conn, request, max_bytes)
                except _Stale:
                    pass  # the receiver closed the kept-alive connection before reading: new one
            try:
                conn = await self._connect(target, ip)
            except OSError as exc:
                error = OutboundError(f"network error: ConnectError: {exc}", retryable=True)
                continue
            try:
                return await self._exchange(key, conn, request, max_bytes)
            except _Stale as exc:
                raise OutboundError(
                    "network error: the receiver closed the connection without answering", retryable=True
                ) from exc.__cause__
        raise error

    def _take_idle(self, key: PoolKey) -> _Connection | None:
        idle = self._idle.get(key)
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            if now - conn.idle_since < self.keepalive_expiry and not conn.reader.at_eof():
                return conn
            conn.close()
        return None

    def _put_idle(self, key: PoolKey, conn: _Connection) -> None:
        idle = self._idle.setdefault(key, [])
        if len(idle) >= self.max_idle:
            conn.close()
            return
        conn.idle_since = time.monotonic()
        idle.append(conn)

    @staticmethod
    async def _connect(target: Target, ip: str) -> _Connection:
        tls = outbound.ssl_context() if target.scheme == "https" else None
        reader, writer = await asyncio.open_connection(
            ip, target.port, ssl=tls, server_hostname=target.host if tls is not None else None
        )
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return _Connection(reader, writer)

    async def _exchange(
        self, key: PoolKey, conn: _Connection, request: _Request, max_bytes: int
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """Write the request, read the answer; the connection goes back to the pool only when
        both sides finished cleanly and the receiver keeps it open."""
        reusable = False
        answered = False
        try:
            path, fields, content = request
            head = conn.h11.send(h11.Request(method="POST", target=path, headers=fields)) or b""
            body = conn.h11.send(h11.Data(data=content)) or b"" if content else b""
            conn.h11.send(h11.EndOfMessage())
            conn.writer.write(head + body)  # one write: one segment for a small request
            await conn.writer.drain()
            status, headers, chunks, size = 0, [], [], 0
            while True:
                event = conn.h11.next_event()
                if event is h11.NEED_DATA:
                    data = await conn.reader.read(65536)
                    if data:
                        answered = True
                    conn.h11.receive_data(data)
                elif isinstance(event, h11.InformationalResponse):
                    continue
                elif isinstance(event, h11.Response):
                    status, headers = event.status_code, list(event.headers)
                    declared = dict(headers).get(b"content-length")
                    if declared and declared.isdigit() and int(declared) > max_bytes:
                        raise OutboundError(f"response is {declared.decode()} bytes; the limit is {max_bytes}")
                elif isinstance(event, h11.Data):
                    size += len(event.data)
                    if size > max_bytes:
                        raise OutboundError(f"response is larger than the {max_bytes}-byte limit")
                    chunks.append(bytes(event.data))
                elif isinstance(event, h11.EndOfMessage):
                    break
                else:  # ConnectionClosed before the answer was complete
                    raise h11.RemoteProtocolError("connection closed before the answer was complete")
            # bytes after the answer would be read as the next one: such a connection is not reused
            done = conn.h11.our_state is h11.DONE and conn.h11.their_state is h11.DONE
            reusable = done and not conn.h11.trailing_data[0]
            if reusable:
                conn.h11.start_next_cycle()
            return status, headers, b"".join(chunks)
        except (h11.RemoteProtocolError, OSError) as exc:
            if not answered:
                raise _Stale() from exc
            raise OutboundError(f"network error: {type(exc).__name__}: {exc}", retryable=True) from None
        finally:
            if reusable:
                self._put_idle(key, conn)
            else:
                conn.close()

    async def aclose(self) -> None:
        idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                conn.close()


class _Stale(Exception):
    """The connection failed before any byte of an answer (a closed keep-alive connection)."""

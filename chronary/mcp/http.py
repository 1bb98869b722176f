"""`/mcp`: MCP's Streamable HTTP transport in the same app and process as the REST API.

Authentication: every HTTP request to /mcp carries an API key, exactly as /v1 takes it
(`Authorization: Bearer chr_sk_…|chr_ak_…`, or `x-api-key`), checked by the same
`services.keys.authenticate`; without a valid key the answer is 401 with the error envelope and
the SDK never sees the request. The key's Principal rides in the ASGI scope to the tools
(chronary/mcp/server.py), so an agent key's tools see and change only its agent's data, as REST.
The web UI's session cookie is not accepted here: only an explicit key authenticates.

Hosts (the SDK's DNS-rebinding protection answers 421 to Host headers it does not list):
- bound to a loopback address (the default 127.0.0.1, localhost, ::1) the protection is on and
  allows the loopback names on any port plus the host of `public_url` (so a reverse proxy or a
  LAN name given as CHRONARY_PUBLIC_URL works);
- bound to anything else (0.0.0.0, ::, a LAN address or name) the server is meant to be reached
  under LAN names and addresses nobody can list in advance (http://192.168.1.20:8765/mcp,
  http://nas.local:8765/mcp), so the Host check is off. What DNS rebinding would buy an attacker
  is a browser talking to the server without its consent; here every request must present an
  API key in a header, which a rebinding page does not have (no cookie authenticates /mcp), so
  the key check is what protects a LAN-facing server.

Sessions: the SDK's StreamableHTTPSessionManager (stateful sessions, SSE or JSON answers) runs in
the app's lifespan. This module imports the SDK, so the app mounts it through chronary/mcp/mount.py,
which imports it and enters `session_manager.run()` when /mcp is first requested.
"""

from __future__ import annotations

import ipaddress
import json
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from litestar.types import Scope, Send
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings

from chronary.config import Settings
from chronary.errors import ChronaryError
from chronary.mcp.server import PRINCIPAL_KEY, ChronaryMCP
from chronary.services import keys

if TYPE_CHECKING:
    from chronary.runtime import Runtime

_LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def transport_security(settings: Settings) -> TransportSecuritySettings:
    """The Host/Origin policy described in the module docstring."""
    if not is_loopback(settings.host):
        return TransportSecuritySettings(enable_dns_rebinding_protection=False)
    names = list(_LOOPBACK_NAMES)  # any port
    origins = [f"http://{n}" for n in _LOOPBACK_NAMES]
    if settings.public_url:
        parts = urlsplit(settings.public_url)
        if parts.hostname:
            name = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
            names.append(name)
            origins.append(f"{parts.scheme}://{name}")
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[*names, *(f"{n}:*" for n in names)],
        allowed_origins=[*origins, *(f"{o}:*" for o in origins)],
    )


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def presented_key(scope: Scope) -> str | None:
    """The Bearer token, else `x-api-key`; "" (malformed) for another Authorization scheme alone."""
    auth = _header(scope, b"authorization")
    if auth:
        scheme, _, token = auth.strip().partition(" ")
        if scheme.lower() == "bearer":
            return token.strip()
    header = _header(scope, b"x-api-key")
    if header is not None:
        return header.strip()
    return "" if auth else None


async def _refuse(scope: Scope, send: Send, exc: ChronaryError) -> None:
    request_id = (scope.get("state") or {}).get("request_id")
    body = json.dumps(
        {"error": {"type": exc.type, "message": exc.message, "param": exc.param, "request_id": request_id}}
    ).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if exc.status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="chronary"'))
    headers.extend((k.lower().encode(), v.encode()) for k, v in exc.headers.items())
    await send({"type": "http.response.start", "status": exc.status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


class McpEndpoint:
    """The ASGI app behind /mcp: authenticate, then hand the request to the SDK's session manager."""

    def __init__(self, runtime: Runtime, settings: Settings) -> None:
        self.runtime = runtime
        self.server = ChronaryMCP(runtime, settings.base_url)
        # builds the session manager (the Starlette app it returns is not used: we route ourselves)
        self.server.streamable_http_app(
            streamable_http_path="/", transport_security=transport_security(settings), host=settings.host
        )
        self.session_manager: StreamableHTTPSessionManager = self.server.session_manager

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        presented = presented_key(scope)
        try:
            principal = await self.runtime.db.read(lambda tx: keys.authenticate(tx, presented))
        except ChronaryError as exc:
            await _refuse(scope, send, exc)
            return
        scope[PRINCIPAL_KEY] = principal
        await self.session_manager.handle_request(scope, receive, send)

"""Home Assistant's REST API: `call_service`, the `/api/` check, and state changes posted to us.

A long-lived access token goes in `Authorization: Bearer`; Home Assistant answers 401
"401: Unauthorized" without a valid one. `POST /api/services/<domain>/<service>` takes the
service data as its body and answers the list of states that changed, or, with
`?return_response`, `{"changed_states": […], "service_response": {…}}`; the action answers the
second shape in both cases. Home Assistant answers 400 for an unknown service, for data the
service refuses and for a missing or unwanted return_response (those two with a JSON
`{"message": …}`); older versions and proxies may answer 404. Which input is at fault is then
read from `GET /api/services`.

Home Assistant sends no webhooks of its own: an automation with a `rest_command` posts JSON (e.g.
`{"entity_id": …, "old_state": …, "new_state": …}` from a state trigger) to the inbound URL,
which is relayed as `state_changed` with that payload.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import httpx

from chronary.connectors import base
from chronary.connectors.base import (
    BadCredentials,
    BadInput,
    ConnectorError,
    Inbound,
    RawResponse,
    Target,
    retry_after_seconds,
)
from chronary.outbound import InvalidUrl, parse_url

DEFAULT_URL = "http://homeassistant.local:8123"
EVENT = "state_changed"


class Connector(base.Connector):
    type = "home_assistant"

    def _token(self) -> str:
        token = self.cred("access_token")
        if token is None:
            raise BadCredentials("access_token is required", field="access_token")
        if not token.isascii() or not token.isprintable() or " " in token:
            raise BadCredentials("access_token may only hold printable characters without spaces", field="access_token")
        return token

    def target(self) -> Target:
        url = self.cred("base_url", DEFAULT_URL) or DEFAULT_URL
        try:
            parse_url(url)
        except InvalidUrl as exc:
            raise BadCredentials(f"base_url: {exc.reason}", field="base_url") from None
        if "?" in url or "#" in url:
            raise BadCredentials("base_url may not have a query or fragment", field="base_url")
        return Target(url.rstrip("/"), headers={"Authorization": f"Bearer {self._token()}"})

    def _scrub(self, text: str) -> str:
        token = self.cred("access_token")
        return text.replace(token, "<access token>") if token else text

    def _error(self, response: RawResponse, doing: str) -> ConnectorError:
        said = _message(response)
        reason = f"Home Assistant refused {doing}: {self._scrub(said)}"
        if response.status == 401:
            return ConnectorError("Home Assistant no longer accepts this access token", field="access_token", status=401)
        if response.status == 429:
            wait = retry_after_seconds(httpx.Headers(response.headers))
            return ConnectorError(reason, status=429, retry_after=wait if wait is not None else 60.0)
        return ConnectorError(reason, status=response.status)

    # -- the interface -------------------------------------------------------------------------
    async def check(self) -> str | None:
        response = await self.send("GET", "/api/")
        if response.status == 401:
            raise BadCredentials("Home Assistant does not accept this access token", field="access_token", status=401)
        if response.status == 403:  # after failed logins Home Assistant bans the client's address
            raise BadCredentials(
                "Home Assistant refused this client (403; its ip_ban may have blocked Chronary's address)",
                field="access_token",
                status=403,
            )
        if response.status == 404:
            raise BadCredentials(
                "base_url answers, but not as Home Assistant's REST API (no /api/)", field="base_url", status=404
            )
        body = response.json()
        if response.status != 200 or not isinstance(body, dict) or "message" not in body:
            raise ConnectorError(
                f"base_url did not answer like Home Assistant (HTTP {response.status})",
                field="base_url",
                status=response.status,
            )
        try:
            config = await self.send("GET", "/api/config")
        except ConnectorError:
            return None
        name = config.json().get("location_name") if config.status == 200 and isinstance(config.json(), dict) else None
        return name if isinstance(name, str) and name else None

    async def run(self, action: str, inputs: dict[str, Any]) -> dict[str, Any]:
        if action != "call_service":
            return await super().run(action, inputs)
        domain, service = inputs["domain"], inputs["service"]
        for name, value in (("domain", domain), ("service", service)):
            # the schema's pattern, enforced again: both become path segments
            if not isinstance(value, str) or not value or not all(c.isascii() and (c.isalnum() or c == "_") for c in value):
                raise BadInput(f"{name} may only hold a-z, 0-9 and _", field=name)
        data: dict[str, Any] = dict(inputs.get("data") or {})
        if inputs.get("entity_id") is not None:
            data["entity_id"] = inputs["entity_id"]
        wants_response = bool(inputs.get("return_response"))
        response = await self.send_json(
            "POST",
            f"/api/services/{domain.lower()}/{service.lower()}",
            data,
            query={"return_response": ""} if wants_response else None,
        )
        if response.status in (400, 404):
            raise await self._bad_call(response, domain.lower(), service.lower())
        if response.status != 200:
            raise self._error(response, f"{domain}.{service}")
        body = response.json()
        if wants_response:
            if not isinstance(body, dict) or not isinstance(body.get("changed_states"), list):
                raise ConnectorError(f"Home Assistant answered {domain}.{service} in an unknown shape", status=200)
            answer: dict[str, Any] = {"changed_states": body["changed_states"]}
            if body.get("service_response") is not None:
                answer["service_response"] = body["service_response"]
            return answer
        if not isinstance(body, list):
            raise ConnectorError(f"Home Assistant answered {domain}.{service} in an unknown shape", status=200)
        return {"changed_states": body}

    async def _bad_call(self, response: RawResponse, domain: str, service: str) -> ConnectorError:
        """A 400/404 as BadInput naming the input at fault (domain, service, return_response or data)."""
        said = self._scrub(_message(response))
        name = f"{domain}.{service}"
        lowered = said.lower()
        if "return_response" in lowered or "responses" in lowered:
            return BadInput(f"Home Assistant refused {name}: {said}", field="return_response", status=response.status)
        if "valid json" in lowered:
            return BadInput(f"Home Assistant refused the data for {name}: {said}", field="data", status=response.status)
        known = await self._services()
        if known is not None and domain not in known:
            return BadInput(f"Home Assistant has no service domain {domain!r}", field="domain", status=response.status)
        if known is not None and service not in known[domain]:
            return BadInput(f"Home Assistant has no service {name}", field="service", status=response.status)
        if response.status == 404:
            return BadInput(f"Home Assistant has no service {name}", field="service", status=404)
        return BadInput(
            f"Home Assistant refused the data for {name} (a missing or invalid field, or an unknown entity_id): {said}",
            field="data",
            status=response.status,
        )

    async def _services(self) -> dict[str, set[str]] | None:
        """domain → its services, from GET /api/services (None when that fails)."""
        try:
            response = await self.send("GET", "/api/services")
        except ConnectorError:
            return None
        body = response.json()
        if response.status != 200 or not isinstance(body, list):
            return None
        found: dict[str, set[str]] = {}
        for entry in body:
            if isinstance(entry, dict) and isinstance(entry.get("domain"), str) and isinstance(entry.get("services"), dict):
                found.setdefault(entry["domain"], set()).update(entry["services"])
        return found

    def inbound(self, headers: Mapping[str, str], body: bytes, now: datetime) -> Inbound:
        try:
            payload = json.loads(body) if body else None
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            raise BadInput(
                "Home Assistant deliveries must be a JSON object (a rest_command with content_type application/json)",
                field="body",
            )
        return Inbound(EVENT, payload)


def _message(response: RawResponse) -> str:
    """Home Assistant's `{"message": …}`, or its short text answer (aiohttp's "400: Bad Request")."""
    body = response.json()
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return body["message"][:300]
    text = response.body[:200].decode("utf-8", "replace").strip()
    if text and "text/plain" in response.content_type and text.isprintable():
        return text
    return f"HTTP {response.status}"

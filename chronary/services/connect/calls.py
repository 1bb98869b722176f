"""Calls out through a connection: the proxy and provider actions, rate-limited and audited.

Proxy: `<provider base URL><path>` with the connection's credentials injected (OAuth tokens
refreshed as needed, the refreshed set stored encrypted); the path cannot leave the provider's
host (`connectors.base.safe_path`), the caller cannot set an auth header, bodies and answers
are capped (`connect_proxy_max_bytes`), calls time out (`connect_proxy_timeout_seconds`).

Every connection has a token bucket (`connect_proxy_requests_per_minute`, bursts of a sixth of
it) shared by its proxy calls and actions: an empty bucket answers 429 with Retry-After. Every
call — refused ones too — lands in the audit log (`connect_calls`): who, when, provider,
method, path (never its query), status, duration; never a body, a header or a secret.
"""

from __future__ import annotations

import json
import math
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from chronary.catalogue import Action, Provider
from chronary.connectors.base import (
    AUTH_HEADERS,
    HOP_BY_HOP,
    BadCredentials,
    BadInput,
    ConnectorError,
    RawResponse,
    Target,
    Unreachable,
    clean_headers,
    join,
)
from chronary.errors import ChronaryError, NotFound, PayloadTooLarge, RateLimited, UpstreamError, ValidationError
from chronary.providers import base as provider_base
from chronary.providers.http import Budget
from chronary.schemas.connect import ActionResult, ProxyCall, ProxyCallList, ProxyRequest, ProxyResponse
from chronary.services.connect import catalogue as org_catalogue
from chronary.services.connect import chronary_actions
from chronary.services.connect import connections as cons
from chronary.services.context import Ctx
from chronary.services.sync.accounts import make_provider
from chronary.store import connect as store
from chronary.store import connections as con_store
from chronary.store.db import Tx
from chronary.timeutil import iso_ms

if TYPE_CHECKING:
    from chronary.runtime import Runtime

OAUTH_API = ("google", "microsoft")
_buckets: dict[str, Budget] = {}


def _bucket(connection_id: str, per_minute: int) -> Budget:
    found = _buckets.get(connection_id)
    if found is None or found.per_minute != per_minute:
        found = _buckets[connection_id] = Budget(per_minute)
    return found


def _take(connection_id: str, per_minute: int) -> None:
    bucket = _bucket(connection_id, per_minute)
    wait = bucket.reserve()
    if wait > 0:
        bucket.refund()
        seconds = max(1, math.ceil(wait))
        raise RateLimited(
            f"This connection made more than {per_minute} proxy or action calls a minute; try again in {seconds} s",
            seconds,
        )


class _Audit:
    """One audit-log row, written however the call ends."""

    def __init__(self, runtime: Runtime, ctx: Ctx, kind: str, provider_type: str, method: str | None, path: str) -> None:
        self.runtime, self.ctx = runtime, ctx
        self.row: dict[str, Any] = {
            "org_id": ctx.principal.org_id,
            "key_id": ctx.principal.key_id,
            "kind": kind,
            "provider_type": provider_type,
            "connection_id": None,
            "method": method,
            "path": path,
            "status": None,
            "error": None,
        }
        self.started = time.monotonic()

    async def write(self, status: int | None, error: str | None) -> int:
        duration = int((time.monotonic() - self.started) * 1000)
        row = {**self.row, "status": status, "error": error, "duration_ms": duration}

        def log(tx: Tx) -> None:
            store.log_call(tx.conn, {**row, "created_at": iso_ms(tx.now)})
            if row["connection_id"] and status is not None and status < 500 and error is None:
                cons.touch(tx, row["connection_id"])

        await self.runtime.db.write(log)
        return duration


async def _audited(audit: _Audit, call: Any) -> Any:
    try:
        result = await call
    except ChronaryError as exc:
        await audit.write(exc.status, str(exc))
        raise
    return result


# --- the proxy -----------------------------------------------------------------------------------


def _check_headers(headers: dict[str, str] | None, target_headers: set[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in (headers or {}).items():
        low = name.lower()
        if low in AUTH_HEADERS or low in target_headers or low.startswith("proxy-"):
            raise ValidationError(f"headers.{name}: the connection supplies the credentials", f"headers.{name}")
        if low in HOP_BY_HOP:
            continue
        if any(ch in value for ch in "\r\n\x00") or not name.replace("-", "").isalnum():
            raise ValidationError(f"headers.{name}: not a valid header", f"headers.{name}")
        out[name] = value
    return out


def _body(data: ProxyRequest, max_bytes: int) -> tuple[bytes | None, str | None]:
    if data.body is None:
        return None, None
    if isinstance(data.body, str) and any(k.lower() == "content-type" for k in (data.headers or {})):
        raw = data.body.encode()
        content_type = None  # the caller's own
    else:
        raw = json.dumps(data.body).encode()
        content_type = "application/json"
    if len(raw) > max_bytes:
        raise PayloadTooLarge(f"body is {len(raw)} bytes; the proxy passes at most {max_bytes}", "body")
    return raw, content_type


def _answer(resp: RawResponse, connection_id: str, duration: int) -> ProxyResponse:
    headers: dict[str, str] = {}
    for k, v in resp.headers:
        low = k.lower()
        headers[low] = f"{headers[low]}, {v}" if low in headers else v
    return ProxyResponse(
        status=resp.status, headers=headers, body=resp.json_or_text(), connection_id=connection_id, duration_ms=duration
    )


async def proxy(runtime: Runtime, ctx: Ctx, provider_type: str, data: ProxyRequest) -> ProxyResponse:
    ctx.principal.require("proxy.execute")
    audit = _Audit(runtime, ctx, "proxy", provider_type, data.method, data.path.split("?", 1)[0][:500])
    return await _audited(audit, _proxy(runtime, ctx, provider_type, data, audit))


async def _proxy(runtime: Runtime, ctx: Ctx, provider_type: str, data: ProxyRequest, audit: _Audit) -> ProxyResponse:
    principal = ctx.principal

    def read(tx: Tx) -> tuple[Provider, dict[str, Any], tuple[str, dict[str, str]] | None]:
        provider = org_catalogue.get(tx, principal.org_id, provider_type)
        if "proxy" not in provider.capabilities:
            raise ValidationError(f"{provider.name} has no API behind the proxy", "providerType")
        row = cons.pick(tx, principal, provider_type, data.connection_id)
        kind = None if provider_type in OAUTH_API else cons.connector_type(tx, principal.org_id, provider_type)
        return provider, row, kind

    provider, row, kind = await runtime.db.read(read)
    audit.row["connection_id"] = row["id"]
    body, content_type = _body(data, runtime.settings.connect_proxy_max_bytes)
    _take(row["id"], runtime.settings.connect_proxy_requests_per_minute)
    if kind is None:
        resp = await _oauth_call(runtime, row, data, body)
    else:
        connector = cons.open_connector(runtime, kind[0], {**cons.decrypt(runtime, row), **kind[1]})
        try:
            headers = _check_headers(data.headers, {h.lower() for h in connector.target().headers})
            resp = await connector.send(
                data.method, data.path, query=data.query, headers=headers, body=body, content_type=content_type
            )
        except ConnectorError as exc:
            raise _refusal(exc, provider) from None
        finally:
            await cons.close(connector)
    duration = await audit.write(resp.status, None)
    return _answer(resp, row["id"], duration)


async def _oauth_call(runtime: Runtime, row: dict[str, Any], data: ProxyRequest, body: bytes | None) -> RawResponse:
    """Google / Microsoft: the sync provider makes the call with its token handling."""
    headers = _check_headers(data.headers, set())
    provider = make_provider(runtime, row)
    try:
        base = provider.api_base()
        assert base is not None
        join(Target(base), data.path)  # the path guard, same as for API-key providers
        payload = json.loads(body) if body is not None else None
        resp = await provider.api_request(data.method, data.path, params=data.query, json_body=payload, headers=headers)
        raw = RawResponse(
            resp.status_code,
            clean_headers(resp.headers),
            resp.content[: runtime.settings.connect_proxy_max_bytes],
            resp.headers.get("content-type", ""),
        )
    except BadInput as exc:
        raise ValidationError(exc.reason, exc.field) from None
    except provider_base.AuthFailed as exc:
        reason = exc.reason
        await runtime.db.write(lambda tx: cons.mark_refused(tx, row["id"], reason))
        raise UpstreamError(f"{exc.reason}; reconnect through /v1/connections/start") from None
    except provider_base.ProviderError as exc:
        if exc.retry_after:
            raise RateLimited(exc.reason, max(1, math.ceil(exc.retry_after))) from None
        raise UpstreamError(exc.reason) from None
    finally:
        fresh = provider.refreshed_secrets()
        if fresh:
            secret = runtime.secrets.encrypt(json.dumps(fresh))
            await runtime.db.write(lambda tx: con_store.patch(tx.conn, row["id"], {"secret": secret}))
        await provider.close()
    return raw


def _refusal(exc: ConnectorError, provider: Provider) -> ChronaryError:
    if isinstance(exc, BadInput):
        return ValidationError(exc.reason, exc.field)
    if exc.retry_after is not None:
        return RateLimited(f"{provider.name} is rate-limiting: {exc.reason}", max(1, math.ceil(exc.retry_after)))
    if isinstance(exc, BadCredentials) or exc.status == 401:
        return UpstreamError(f"{provider.name} refused the stored credentials ({exc.reason}); connect again")
    if isinstance(exc, Unreachable):
        return UpstreamError(exc.reason)
    return UpstreamError(f"{provider.name}: {exc.reason}")


# --- actions -------------------------------------------------------------------------------------


def _validate(action: Action, inputs: dict[str, Any]) -> None:
    """Inputs against the action's JSON Schema; the error names the field (inputs' own names)."""
    import jsonschema  # here, not at the top: ~30 ms of imports `serve` would pay before any action runs

    validator = jsonschema.Draft202012Validator(action.input_schema, format_checker=jsonschema.FormatChecker())
    error = jsonschema.exceptions.best_match(validator.iter_errors(inputs))
    if error is None:
        return
    path = ".".join(str(p) for p in error.absolute_path)
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = next((r for r in error.validator_value if r not in error.instance), None)
        if missing is not None:
            path = f"{path}.{missing}" if path else str(missing)
    elif error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set(error.schema.get("properties", {}))
        extra = next((k for k in error.instance if k not in allowed), None)
        if extra is not None:
            path = f"{path}.{extra}" if path else extra
            raise ValidationError(f"{path}: {action.name} takes no such input", path)
    raise ValidationError(f"{path or 'inputs'}: {error.message}", path or None)


async def run_action(
    runtime: Runtime, ctx: Ctx, provider_type: str, action_name: str, inputs: dict[str, Any], connection_id: str | None
) -> ActionResult:
    ctx.principal.require("actions.execute")
    audit = _Audit(runtime, ctx, "action", provider_type, None, action_name)
    return await _audited(audit, _run(runtime, ctx, provider_type, action_name, inputs, connection_id, audit))


async def _run(
    runtime: Runtime,
    ctx: Ctx,
    provider_type: str,
    action_name: str,
    inputs: dict[str, Any],
    connection_id: str | None,
    audit: _Audit,
) -> ActionResult:
    principal = ctx.principal
    provider = await runtime.db.read(lambda tx: org_catalogue.get(tx, principal.org_id, provider_type))
    action = provider.action(action_name)
    if action is None:
        raise NotFound("Action not found", "actionName")
    _validate(action, inputs)
    if provider.type == "chronary":
        if connection_id is not None:
            raise ValidationError("chronary actions run on this server and take no connectionId", "connectionId")
        output = await chronary_actions.run(runtime, ctx, action.name, inputs)
        duration = await audit.write(200, None)
        return ActionResult(
            provider_type=provider.type, action=action.name, connection_id=None, output=output, duration_ms=duration
        )
    row = await runtime.db.read(lambda tx: cons.pick(tx, principal, provider.type, connection_id))
    audit.row["connection_id"] = row["id"]
    _take(row["id"], runtime.settings.connect_proxy_requests_per_minute)
    if provider.type in OAUTH_API:
        output = await _oauth_action(runtime, row, provider, action.name, inputs)
    else:
        output = await _connector_action(runtime, ctx, row, provider, action.name, inputs)
    duration = await audit.write(200, None)
    return ActionResult(
        provider_type=provider.type, action=action.name, connection_id=row["id"], output=output, duration_ms=duration
    )


async def _connector_action(
    runtime: Runtime, ctx: Ctx, row: dict[str, Any], provider: Provider, name: str, inputs: dict[str, Any]
) -> dict[str, Any]:
    if provider.type == "smtp" and name == "send_invitation" and "event_id" in inputs:
        inputs = dict(inputs)
        calendar_id, event_id = inputs.pop("calendar_id", None), inputs.pop("event_id")
        if calendar_id is None:
            raise ValidationError("event_id goes with calendar_id", "calendar_id")
        inputs["event"] = await runtime.db.read(
            lambda tx: chronary_actions.invitation_event(tx, ctx.principal, calendar_id, event_id)
        )
    connector = await cons.connector_for(runtime, row)
    try:
        return await connector.run(name, inputs)
    except ConnectorError as exc:
        if isinstance(exc, BadCredentials) or exc.status == 401:  # revoked or rotated since connect
            reason = f"credentials refused: {exc.reason}"
            await runtime.db.write(lambda tx: cons.mark_refused(tx, row["id"], reason))
        raise _refusal(exc, provider) from None
    finally:
        await cons.close(connector)


def _event_body(provider_type: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """events.insert (Google) / POST …/calendars/{id}/events (Graph) from the action's inputs."""
    zone = inputs.get("time_zone")
    if provider_type == "google":

        def when(value: str) -> dict[str, str]:
            moment: dict[str, str] = {"date": value} if len(value) == 10 else {"dateTime": value}
            if zone and "dateTime" in moment:
                moment["timeZone"] = zone
            return moment

        body: dict[str, Any] = {"summary": inputs["summary"], "start": when(inputs["start"]), "end": when(inputs["end"])}
        for key in ("description", "location"):
            if inputs.get(key):
                body[key] = inputs[key]
        return f"/calendars/{quote(inputs['calendar_id'], safe='')}/events", body
    return _graph_event(inputs)


def _graph_event(inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    zone = inputs.get("time_zone") or "UTC"
    all_day = bool(inputs.get("is_all_day"))

    def when(value: str) -> dict[str, str]:
        return {"dateTime": value, "timeZone": zone}

    body: dict[str, Any] = {"subject": inputs["subject"], "start": when(inputs["start"]), "end": when(inputs["end"])}
    if all_day:
        body["isAllDay"] = True
    if inputs.get("body"):
        body["body"] = {"contentType": inputs.get("body_content_type", "text"), "content": inputs["body"]}
    if inputs.get("attendees"):
        body["attendees"] = [{"emailAddress": {"address": a}, "type": "required"} for a in inputs["attendees"]]
    if inputs.get("location"):
        body["location"] = {"displayName": inputs["location"]}
    calendar = inputs.get("calendar_id")
    path = f"/me/calendars/{quote(calendar, safe='')}/events" if calendar else "/me/events"
    return path, body


async def _oauth_action(
    runtime: Runtime, row: dict[str, Any], provider: Provider, name: str, inputs: dict[str, Any]
) -> dict[str, Any]:
    path, body = _event_body(provider.type, inputs)
    request = ProxyRequest(method="POST", path=path, body=body)
    raw = await _oauth_call(runtime, row, request, json.dumps(body).encode())
    answer = raw.json()
    if raw.status >= 400 or not isinstance(answer, dict):
        message = _api_error(answer) or f"HTTP {raw.status}"
        if raw.status == 404:
            raise ValidationError(f"{provider.name} has no such calendar ({message})", "calendar_id")
        if raw.status == 400:
            raise ValidationError(f"{provider.name} refused the event: {message}", None)
        raise UpstreamError(f"{provider.name} answered {raw.status}: {message}")
    return answer


def _api_error(answer: Any) -> str | None:
    if isinstance(answer, dict) and isinstance(answer.get("error"), dict):
        err = answer["error"]
        return str(err.get("message") or err.get("code") or "")[:300] or None
    return None


# --- the audit log -------------------------------------------------------------------------------


def calls(
    tx: Tx,
    ctx: Ctx,
    provider_type: str | None,
    connection_id: str | None,
    kind: str | None,
    limit: int,
    offset: int,
) -> ProxyCallList:
    ctx.principal.require("providers.view")
    rows, total = store.calls(tx.conn, ctx.principal.org_id, provider_type, connection_id, kind, limit, offset)
    return ProxyCallList(
        data=[
            ProxyCall(
                id=r["id"],
                kind=r["kind"],
                key_id=r["key_id"],
                provider_type=r["provider_type"],
                connection_id=r["connection_id"],
                method=r["method"],
                path=r["path"],
                status=r["status"],
                error=r["error"],
                duration_ms=r["duration_ms"],
                created_at=r["created_at"],
            )
            for r in rows
        ],
        total=total,
        limit=limit,
        offset=offset,
    )

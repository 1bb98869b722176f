"""A local, protocol-faithful fake of Google's OAuth 2.0 endpoints and Calendar API v3, for tests.

One threaded HTTP(S) server on 127.0.0.1 plays the three Google hosts under one base URL:

    accounts.google.com/o/oauth2/v2/auth      ->  {base_url}/o/oauth2/v2/auth   (auth_url)
    oauth2.googleapis.com/token               ->  {base_url}/token              (token_url)
    oauth2.googleapis.com/revoke              ->  {base_url}/revoke             (revoke_url)
    www.googleapis.com/oauth2/v3/{certs,userinfo}  ->  {base_url}/oauth2/v3/...
    www.googleapis.com/calendar/v3            ->  {base_url}/calendar/v3        (api_url)

so code written against Google (plain httpx, google-auth-oauthlib) only needs its base URLs changed.
Paths, parameter names, JSON field names, status codes and error bodies follow Google's documentation.
The user's browser is simulated: GET on the auth endpoint consents at once (as `login_hint` or the
user given to `set_user`) and answers 302 to the redirect URI.

All state is in memory behind one lock. The "user" side (edits made on a phone) goes through
`put_event` / `edit_event` / `delete_event`, which change etags and `updated` and show up in the
next incremental sync exactly like API writes. See `FakeGoogle` for the controls.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import hashlib
import itertools
import json
import queue
import re
import secrets
import socket
import ssl
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx
from dateutil import rrule as du_rrule

from .tls import TLS, make_tls

SCOPE_CALENDAR = "https://www.googleapis.com/auth/calendar"
SCOPE_CALENDAR_READONLY = "https://www.googleapis.com/auth/calendar.readonly"
SCOPE_EVENTS = "https://www.googleapis.com/auth/calendar.events"
SCOPE_EVENTS_READONLY = "https://www.googleapis.com/auth/calendar.events.readonly"
_S = "https://www.googleapis.com/auth/"
EVENTS_READ_SCOPES = frozenset(
    {
        SCOPE_CALENDAR,
        SCOPE_CALENDAR_READONLY,
        SCOPE_EVENTS,
        SCOPE_EVENTS_READONLY,
        _S + "calendar.events.owned",
        _S + "calendar.events.owned.readonly",
    }
)
EVENTS_WRITE_SCOPES = frozenset({SCOPE_CALENDAR, SCOPE_EVENTS, _S + "calendar.events.owned"})
CALENDARLIST_SCOPES = frozenset(
    {SCOPE_CALENDAR, SCOPE_CALENDAR_READONLY, _S + "calendar.calendarlist", _S + "calendar.calendarlist.readonly"}
)
# Google answers short scope names with their long form in token responses.
_SCOPE_ALIASES = {"email": _S + "userinfo.email", "profile": _S + "userinfo.profile"}

_EVENT_ID = re.compile(r"^[a-v0-9]{5,1024}$")
_VERIFIER = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")
_ROLES = {"freeBusyReader": 0, "reader": 1, "writer": 2, "owner": 3}
_SYNC_RESTRICTED = (
    "iCalUID",
    "orderBy",
    "privateExtendedProperty",
    "q",
    "sharedExtendedProperty",
    "timeMin",
    "timeMax",
    "updatedMin",
)
_MAX_INSTANCES = 2500  # expansion cap for one series in one answer
_OPEN_HORIZON = timedelta(days=730)  # how far an unbounded series is expanded when no timeMax bounds it
_DEFAULT_CHANNEL_TTL = 604800  # seconds
_NOTIFY_UA = "APIs-Google; (+https://developers.google.com/webmasters/APIs-Google.html)"
_AUTH_MESSAGE = (
    "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid "
    "authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project."
)
_LOGIN_MESSAGE = (
    "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other "
    "valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project."
)
_FAIL_DEFAULTS: dict[int, tuple[str, str, str]] = {  # status -> (domain, reason, message)
    400: ("global", "badRequest", "Bad Request"),
    401: ("global", "authError", "Invalid Credentials"),
    403: ("usageLimits", "rateLimitExceeded", "Rate Limit Exceeded"),
    404: ("global", "notFound", "Not Found"),
    409: ("global", "duplicate", "The requested identifier already exists."),
    410: ("calendar", "fullSyncRequired", "Sync token is no longer valid, a full sync is required."),
    412: ("global", "conditionNotMet", "Precondition Failed"),
    429: ("usageLimits", "rateLimitExceeded", "Rate Limit Exceeded"),
    500: ("global", "backendError", "Backend Error"),
    502: ("global", "backendError", "Backend Error"),
    503: ("global", "backendError", "The service is currently unavailable."),
    504: ("global", "backendError", "Backend Error"),
}
_REASON_MESSAGES = {
    "rateLimitExceeded": ("usageLimits", "Rate Limit Exceeded"),
    "userRateLimitExceeded": ("usageLimits", "User Rate Limit Exceeded"),
    "quotaExceeded": ("usageLimits", "Calendar usage limits exceeded."),
    "dailyLimitExceeded": ("usageLimits", "Daily Limit Exceeded"),
    "backendError": ("global", "Backend Error"),
}
_EVENT_KEY_ORDER = (
    "kind",
    "etag",
    "id",
    "status",
    "htmlLink",
    "created",
    "updated",
    "summary",
    "description",
    "location",
    "colorId",
    "creator",
    "organizer",
    "start",
    "end",
    "endTimeUnspecified",
    "recurrence",
    "recurringEventId",
    "originalStartTime",
    "transparency",
    "visibility",
    "iCalUID",
    "sequence",
    "attendees",
    "attendeesOmitted",
    "extendedProperties",
    "hangoutLink",
    "conferenceData",
    "gadget",
    "anyoneCanAddSelf",
    "guestsCanInviteOthers",
    "guestsCanModify",
    "guestsCanSeeOtherGuests",
    "privateCopy",
    "locked",
    "reminders",
    "source",
    "attachments",
    "eventType",
)
_SERVER_FIELDS = (
    "kind",
    "etag",
    "htmlLink",
    "created",
    "updated",
    "creator",
    "organizer",
    "recurringEventId",
    "originalStartTime",
)


# --------------------------------------------------------------------------------------------- errors


class _ApiError(Exception):
    """A Calendar API error: `{"error": {"errors": [...], "code": .., "message": ..}}`."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        *,
        domain: str = "global",
        location: str | None = None,
        location_type: str | None = None,
        status: str | None = None,
        headers: dict[str, str] | None = None,
        top_message: str | None = None,
    ) -> None:
        super().__init__(f"{code} {reason}: {message}")
        self.code, self.reason, self.message, self.domain = code, reason, message, domain
        self.location, self.location_type, self.status = location, location_type, status
        self.headers = headers or {}
        self.top_message = top_message  # auth-layer errors carry a longer top-level message

    def body(self) -> dict[str, Any]:
        err: dict[str, Any] = {"domain": self.domain, "reason": self.reason, "message": self.message}
        if self.location:
            err["locationType"] = self.location_type or "parameter"
            err["location"] = self.location
        out: dict[str, Any] = {"errors": [err], "code": self.code, "message": self.top_message or self.message}
        if self.status:
            out["status"] = self.status
        return {"error": out}


class _OAuthError(Exception):
    """A token/revoke endpoint error: `{"error": "...", "error_description": "..."}`."""

    def __init__(self, status: int, error: str, description: str | None = None) -> None:
        super().__init__(f"{status} {error}: {description}")
        self.status, self.error, self.description = status, error, description

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": self.error}
        if self.description is not None:
            out["error_description"] = self.description
        return out


ApiError = _ApiError  # what put_event/edit_event raise for a body Google would refuse (.code, .reason, .body())


def _bad(message: str = "Bad Request", reason: str = "badRequest", **kw: Any) -> _ApiError:
    return _ApiError(400, reason, message, **kw)


def _not_found() -> _ApiError:
    return _ApiError(404, "notFound", "Not Found")


# --------------------------------------------------------------------------------------------- records


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake received (the Authorization header is left out)."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def param(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def header(self, name: str, default: str | None = None) -> str | None:
        for key, value in self.headers.items():
            if key.lower() == name.lower():
                return value
        return default

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass(frozen=True)
class Delivery:
    """One push notification the fake sent (or tried to send) to a channel's address."""

    channel_id: str
    state: str
    message_number: int
    status: int | None
    error: str | None = None


@dataclass
class _Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def _json_response(status: int, obj: Any, headers: dict[str, str] | None = None) -> _Response:
    h = {"Content-Type": "application/json; charset=UTF-8"}
    h.update(headers or {})
    return _Response(status, json.dumps(obj, indent=1).encode(), h)


# --------------------------------------------------------------------------------------------- state


@dataclass
class _Client:
    client_id: str
    secret: str
    redirect_uris: list[str]


@dataclass
class _Entry:
    calendar_id: str
    access_role: str
    seq: int
    etag: str
    primary: bool = False
    deleted: bool = False
    hidden: bool = False


@dataclass
class _Account:
    email: str
    sub: str
    entries: dict[str, _Entry] = field(default_factory=dict)


@dataclass
class _Stored:
    res: dict[str, Any]
    seq: int


@dataclass
class _Calendar:
    id: str
    summary: str
    time_zone: str
    description: str | None
    resource_id: str
    events: dict[str, _Stored] = field(default_factory=dict)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)


@dataclass
class _Grant:
    client_id: str
    email: str
    scopes: set[str]
    revoked: bool = False
    refresh_tokens: list[str] = field(default_factory=list)


@dataclass
class _RefreshToken:
    token: str
    grant: _Grant
    scopes: frozenset[str]
    order: tuple[str, ...] = ()
    valid: bool = True


@dataclass
class _AccessToken:
    token: str
    grant: _Grant
    scopes: frozenset[str]
    expires_at: datetime
    valid: bool = True


@dataclass
class _Code:
    code: str
    client_id: str
    email: str
    redirect_uri: str
    scopes: tuple[str, ...]
    challenge: str | None
    method: str | None
    offline: bool
    expires_at: datetime
    used: bool = False


@dataclass
class _Channel:
    id: str
    token: str | None
    address: str
    calendar_id: str
    resource_id: str
    resource_uri: str
    expiration: datetime
    client_id: str
    number: int = 0
    stopped: bool = False


@dataclass
class _SyncToken:
    kind: str  # "events" | "calendarList"
    key: str  # calendar id | account email
    seq: int
    gen: int


@dataclass
class _Page:
    owner: tuple[str, str]
    items: list[dict[str, Any]]
    pos: int
    head: dict[str, Any]
    sync_token: str | None


@dataclass
class _Failure:
    remaining: int
    status: int
    reason: str | None
    message: str | None
    retry_after: str | None
    path: str | None


# --------------------------------------------------------------------------------------------- time helpers


def _ts(moment: datetime) -> str:
    """Google's `updated`/`created` form: UTC with milliseconds."""
    u = moment.astimezone(UTC)
    return u.strftime("%Y-%m-%dT%H:%M:%S.") + f"{u.microsecond // 1000:03d}Z"


def _fmt_dt(moment: datetime) -> str:
    if moment.utcoffset() == timedelta(0):
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    return moment.isoformat(timespec="seconds")


def _parse_rfc3339(value: str) -> datetime:
    """RFC 3339 with a mandatory offset (what timeMin/timeMax/updatedMin accept)."""
    moment = datetime.fromisoformat(value.strip().replace(" ", "+"))
    if moment.tzinfo is None:
        raise ValueError("offset required")
    return moment


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise _bad("Invalid time zone definition for start time.", "timeZoneInvalid") from exc


def _when(obj: Any, tz: tzinfo) -> tuple[bool, datetime]:
    """(all_day, moment): all-day moments are naive midnights, timed ones are aware."""
    if not isinstance(obj, dict):
        raise ValueError("not an object")
    has_date, has_dt = obj.get("date") is not None, obj.get("dateTime") is not None
    if has_date == has_dt:
        raise ValueError("exactly one of date/dateTime")
    if has_date:
        d = date.fromisoformat(obj["date"])
        return True, datetime(d.year, d.month, d.day)
    moment = datetime.fromisoformat(str(obj["dateTime"]))
    if moment.tzinfo is None:
        if not obj.get("timeZone"):
            raise ValueError("dateTime without offset needs timeZone")
        moment = moment.replace(tzinfo=_zone(obj["timeZone"]))
    return False, moment


def _aware(all_day: bool, moment: datetime, tz: tzinfo) -> datetime:
    return moment.replace(tzinfo=tz) if all_day else moment


def _suffix(occ: datetime, all_day: bool) -> str:
    return occ.strftime("%Y%m%d") if all_day else occ.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _parse_suffix(suffix: str) -> tuple[bool, datetime] | None:
    try:
        if re.fullmatch(r"\d{8}", suffix):
            return True, datetime.strptime(suffix, "%Y%m%d")
        if re.fullmatch(r"\d{8}T\d{6}Z", suffix):
            return False, datetime.strptime(suffix, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None
    return None


# --------------------------------------------------------------------------------------------- recurrence


def _fix_until(rule: str, all_day: bool, tz: tzinfo) -> str:
    """dateutil wants UNTIL in UTC for an aware DTSTART and floating for a naive one."""
    parts = []
    for part in rule.split(";"):
        key, _, value = part.partition("=")
        if key.upper() == "UNTIL" and value:
            if all_day:
                value = value[:8]
            elif not value.endswith("Z"):
                if len(value) == 8:
                    local = datetime.strptime(value, "%Y%m%d").replace(hour=23, minute=59, second=59, tzinfo=tz)
                else:
                    local = datetime.strptime(value, "%Y%m%dT%H%M%S").replace(tzinfo=tz)
                value = local.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
        parts.append(f"{key}={value}" if value else part)
    return ";".join(parts)


def _ical_dates(value: str, params: dict[str, str], all_day: bool, dtstart: datetime, tz: tzinfo) -> list[datetime]:
    out = []
    for raw in value.split(","):
        raw = raw.strip()
        if not raw:
            continue
        if params.get("VALUE", "").upper() == "DATE" or len(raw) == 8:
            d = datetime.strptime(raw[:8], "%Y%m%d")
            out.append(d if all_day else datetime.combine(d.date(), dtstart.timetz()))
        elif raw.endswith("Z"):
            moment = datetime.strptime(raw[:-1], "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
            out.append(moment.astimezone(tz).replace(tzinfo=None) if all_day else moment)
        else:
            naive = datetime.strptime(raw, "%Y%m%dT%H%M%S")
            zone = ZoneInfo(params["TZID"]) if "TZID" in params else tz
            out.append(naive if all_day else naive.replace(tzinfo=zone))
    return out


@dataclass
class _Series:
    rules: du_rrule.rruleset
    all_day: bool
    dtstart: datetime
    duration: timedelta
    tz: tzinfo


def _series(res: dict[str, Any], cal_tz: tzinfo) -> _Series:
    all_day, start = _when(res["start"], cal_tz)
    _, end = _when(res["end"], cal_tz)
    tz: tzinfo = ZoneInfo(res["start"]["timeZone"]) if res["start"].get("timeZone") else cal_tz
    dtstart = start if all_day else start.astimezone(tz)
    rules = du_rrule.rruleset()
    has_rule = False
    for line in res.get("recurrence") or []:
        name, _, value = str(line).partition(":")
        head = name.split(";")
        key = head[0].strip().upper()
        params = {p.split("=", 1)[0].upper(): p.split("=", 1)[1] for p in head[1:] if "=" in p}
        if key in ("RRULE", "EXRULE"):
            rule = du_rrule.rrulestr(_fix_until(value, all_day, tz), dtstart=dtstart)
            if key == "RRULE":
                rules.rrule(rule)  # type: ignore[arg-type]
                has_rule = True
            else:
                rules.exrule(rule)  # type: ignore[arg-type]
        elif key in ("RDATE", "EXDATE"):
            for moment in _ical_dates(value, params, all_day, dtstart, tz):
                if key == "RDATE":
                    rules.rdate(moment)
                    has_rule = True
                else:
                    rules.exdate(moment)
        else:
            raise ValueError(f"unknown recurrence line {line!r}")
    if not has_rule:
        raise ValueError("no RRULE or RDATE")
    rules.rdate(dtstart)  # DTSTART is always the first instance (RFC 5545)
    return _Series(rules, all_day, dtstart, end - start, tz)


# --------------------------------------------------------------------------------------------- params


class _Params:
    def __init__(self, query: dict[str, list[str]]) -> None:
        self.q = query

    def __contains__(self, name: str) -> bool:
        return name in self.q

    def str(self, name: str) -> str | None:
        values = self.q.get(name)
        return values[0] if values else None

    def all(self, name: str) -> list[str]:
        return self.q.get(name, [])

    def bool(self, name: str) -> bool | None:
        value = self.str(name)
        if value is None:
            return None
        if value.lower() in ("true", "1"):
            return True
        if value.lower() in ("false", "0"):
            return False
        raise _bad(f"Invalid boolean value: '{value}'.", "invalidParameter", location=name)

    def int(self, name: str, low: int, high: int | None = None) -> int | None:
        value = self.str(name)
        if value is None:
            return None
        try:
            number = int(value)
        except ValueError:
            raise _bad(f"Invalid int32 value: '{value}'.", "invalidParameter", location=name) from None
        if number < low or (high is not None and number > high):
            raise _bad(
                f"Invalid value '{value}'. Values must be within the range: [{low}, {high}]",
                "invalidParameter",
                location=name,
            )
        return number

    def time(self, name: str) -> datetime | None:
        value = self.str(name)
        if value is None:
            return None
        try:
            return _parse_rfc3339(value)
        except ValueError:
            raise _bad() from None


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Patch semantics: objects merge, arrays and scalars replace, null clears."""
    out = copy.deepcopy(base)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _ordered(res: dict[str, Any]) -> dict[str, Any]:
    out = {k: res[k] for k in _EVENT_KEY_ORDER if k in res}
    out.update({k: v for k, v in res.items() if k not in out})
    return out


def _etag_matches(header: str, etag: str) -> bool:
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == etag:
            return True
    return False


# --------------------------------------------------------------------------------------------- HTTP server


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ESF"
    sys_version = ""
    timeout = 60
    server: _Server

    def _go(self) -> None:
        self.server.fake._serve(self)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _go

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, fake: FakeGoogle, ssl_context: ssl.SSLContext | None) -> None:
        self.fake = fake
        self.ssl_context = ssl_context
        super().__init__(("127.0.0.1", 0), _Handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        # headers and body go out in two writes: without TCP_NODELAY, Nagle's algorithm and the
        # client's delayed ACK stall every keep-alive response by ~40 ms
        with contextlib.suppress(OSError):
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.ssl_context is None:
            super().finish_request(request, client_address)
            return
        try:  # the handshake runs here, in the connection's own thread
            wrapped = self.ssl_context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        try:
            super().finish_request(wrapped, client_address)
        finally:
            with contextlib.suppress(OSError):
                wrapped.close()


# --------------------------------------------------------------------------------------------- the fake


class FakeGoogle:
    """Google OAuth 2.0 + Calendar v3 on 127.0.0.1 (see the module docstring).

    Constructor options:
      tls: serve HTTPS with a test CA (tests/fakes/tls.py); `.cafile` is the CA to trust.
      page_size: default events.list/instances page size (Google: 250).
      max_page_size: cap on maxResults (Google: 2500); set it small to force paging whatever the client asks.
      calendar_list_page_size: default calendarList page size (Google: 100, max 250).
      rotate_refresh_tokens: refresh grants return a new refresh token and retire the old one (Google doesn't).
      auto_notify: after every change to a watched calendar (API or user side), queue an `exists` push.
      access_token_lifetime: `expires_in` of access tokens, seconds (Google: 3599).
      clock: callable returning an aware datetime ("now"); defaults to the wall clock.
      webhook_https_only: refuse http:// channel addresses as Google does (push.webhookUrlNotHttps).
      webhook_verify: httpx `verify` for push deliveries (default: the test CA when tls, else True).
      max_refresh_tokens: live refresh tokens per (client, account); the oldest goes past it (Google: 100).
    """

    def __init__(
        self,
        *,
        tls: bool = False,
        page_size: int = 250,
        max_page_size: int = 2500,
        calendar_list_page_size: int = 100,
        rotate_refresh_tokens: bool = False,
        auto_notify: bool = False,
        access_token_lifetime: int = 3599,
        clock: Callable[[], datetime] | None = None,
        webhook_https_only: bool = False,
        webhook_verify: Any = None,
        max_refresh_tokens: int = 100,
    ) -> None:
        self.page_size = page_size
        self.max_page_size = max_page_size
        self.calendar_list_page_size = calendar_list_page_size
        self.rotate_refresh_tokens = rotate_refresh_tokens
        self.auto_notify = auto_notify
        self.access_token_lifetime = access_token_lifetime
        self.webhook_https_only = webhook_https_only
        self.max_refresh_tokens = max_refresh_tokens
        self._clock = clock or (lambda: datetime.now(UTC))
        self._lock = threading.RLock()

        self._clients: dict[str, _Client] = {}
        self._accounts: dict[str, _Account] = {}
        self._calendars: dict[str, _Calendar] = {}
        self._grants: dict[tuple[str, str], _Grant] = {}
        self._codes: dict[str, _Code] = {}
        self._refresh: dict[str, _RefreshToken] = {}
        self._access: dict[str, _AccessToken] = {}
        self._channels: dict[str, _Channel] = {}
        self._sync_tokens: dict[str, _SyncToken] = {}
        self._sync_token_ids: dict[tuple[str, str, int, int], str] = {}
        self._sync_gen: dict[tuple[str, str], int] = {}
        self._sync_epoch = 0
        self._pages: dict[str, _Page] = {}
        self._failures: list[_Failure] = []
        self._requests: list[RecordedRequest] = []
        self._deliveries: list[Delivery] = []
        self.errors: list[str] = []  # tracebacks of bugs inside the fake (answered as 500 backendError)
        self._seq = 0
        self._last_write: datetime | None = None
        self._dirty: set[str] = set()
        self._current_user: str | None = None
        self._deny_next = False
        self._grant_only_next: set[str] | None = None
        self._rsa_key: Any = None
        self._kid = secrets.token_hex(20)

        self._tls: TLS | None = None
        ctx = None
        if tls:
            self._tls = make_tls()
            ctx = self._tls.server_context()
        self._webhook_verify = webhook_verify if webhook_verify is not None else (self._tls.cafile if self._tls else True)
        self._outbox: queue.Queue[tuple[str, str] | None] = queue.Queue()
        self._sender = threading.Thread(target=self._send_loop, name="fake-google-push", daemon=True)
        self._sender.start()
        self._server = _Server(self, ctx)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-google", daemon=True
        )
        self._thread.start()
        self._closed = False

    # ------------------------------------------------------------------ lifecycle and addresses

    def __enter__(self) -> FakeGoogle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._outbox.put(None)
        self._sender.join(timeout=10)
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"{'https' if self._tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def auth_url(self) -> str:
        return self.base_url + "/o/oauth2/v2/auth"

    @property
    def token_url(self) -> str:
        return self.base_url + "/token"

    @property
    def revoke_url(self) -> str:
        return self.base_url + "/revoke"

    @property
    def certs_url(self) -> str:
        return self.base_url + "/oauth2/v3/certs"

    @property
    def userinfo_url(self) -> str:
        return self.base_url + "/oauth2/v3/userinfo"

    @property
    def api_url(self) -> str:
        return self.base_url + "/calendar/v3"

    @property
    def cafile(self) -> str | None:
        return self._tls.cafile if self._tls else None

    @property
    def verify(self) -> Any:
        """What to pass as httpx's/requests' `verify` to talk to this fake."""
        return self._tls.cafile if self._tls else True

    # ------------------------------------------------------------------ setup

    def add_client(self, client_id: str, client_secret: str, redirect_uris: Iterable[str]) -> None:
        with self._lock:
            self._clients[client_id] = _Client(client_id, client_secret, list(redirect_uris))

    def add_account(self, email: str, *, time_zone: str = "UTC", summary: str | None = None) -> str:
        """An account with its primary calendar (id == email, owner). Returns the calendar id."""
        with self._lock:
            sub = str(int(hashlib.sha256(email.encode()).hexdigest(), 16))[:21]
            account = self._accounts.setdefault(email, _Account(email, sub))
            if email not in self._calendars:
                self._calendars[email] = _Calendar(email, summary or email, time_zone, None, self._resource_id())
            self._set_entry(account, email, "owner", primary=True)
            if self._current_user is None:
                self._current_user = email
            return email

    def add_calendar(
        self,
        email: str,
        summary: str,
        access_role: str = "owner",
        *,
        time_zone: str | None = None,
        description: str | None = None,
        calendar_id: str | None = None,
    ) -> str:
        """A calendar in `email`'s calendar list with that access role; pass an existing `calendar_id` to share it."""
        if access_role not in _ROLES:
            raise ValueError(f"access_role must be one of {sorted(_ROLES)}")
        with self._lock:
            account = self._accounts[email]
            cid = calendar_id or f"{secrets.token_hex(26)}@group.calendar.google.com"
            if cid not in self._calendars:
                tz = time_zone or self._calendars[email].time_zone
                self._calendars[cid] = _Calendar(cid, summary, tz, description, self._resource_id())
            self._set_entry(account, cid, access_role)
            return cid

    def remove_calendar(self, email: str, calendar_id: str) -> None:
        """Take a calendar out of the account's list (appears as `deleted: true` to calendarList sync)."""
        with self._lock:
            entry = self._accounts[email].entries[calendar_id]
            entry.deleted = True
            entry.seq = self._bump()
            entry.etag = self._etag()

    def set_user(self, email: str) -> None:
        """Who is "signed in" to the browser that visits the auth endpoint (when there is no login_hint)."""
        with self._lock:
            if email not in self._accounts:
                raise KeyError(email)
            self._current_user = email

    def deny_next(self) -> None:
        """The next consent screen is declined: redirect with error=access_denied."""
        with self._lock:
            self._deny_next = True

    def grant_only_next(self, scopes: Iterable[str]) -> None:
        """The next consent grants only these of the requested scopes (granular consent)."""
        with self._lock:
            self._grant_only_next = set(scopes)

    # ------------------------------------------------------------------ test shortcuts for tokens

    def consent(self, auth_url: str) -> str:
        """Visit an authorization URL as the browser would; returns the Location it redirects to."""
        resp = httpx.get(auth_url, verify=self.verify, follow_redirects=False, trust_env=False)
        if resp.status_code != 302:
            raise AssertionError(f"auth endpoint answered {resp.status_code}: {resp.text[:300]}")
        return resp.headers["location"]

    def issue_tokens(
        self, email: str, client_id: str, scopes: Iterable[str] = (SCOPE_CALENDAR,), *, offline: bool = True
    ) -> dict[str, Any]:
        """Tokens as if `email` had consented to `client_id` (skips the browser); the token endpoint's answer."""
        with self._lock:
            scope_list = self._normal_scopes(scopes)
            grant = self._live_grant(client_id, email, scope_list)
            return self._token_answer(grant, frozenset(scope_list), scope_list, refresh=offline)

    def revoke_grant(self, email: str, client_id: str | None = None) -> None:
        """The user removes the app's access (Google Account > Security): refresh -> invalid_grant, access -> 401."""
        with self._lock:
            for (cid, mail), grant in self._grants.items():
                if mail == email and client_id in (None, cid):
                    self._revoke(grant)

    def expire_access_tokens(self, email: str | None = None) -> None:
        """Every current access token (of `email`, or everyone's) now answers 401."""
        with self._lock:
            for tok in self._access.values():
                if email in (None, tok.grant.email):
                    tok.valid = False

    # ------------------------------------------------------------------ user-side edits

    def put_event(self, calendar_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Create (or, if `body["id"]` exists, replace) an event as the calendar's owner would in Google's UI."""
        with self._lock:
            cal = self._cal(calendar_id)
            eid = body.get("id")
            if eid and self._lookup(cal, eid) is not None:
                res = self._update(cal, eid, body, patch=False, if_match=None)
            else:
                res = self._insert(cal, body, self._owner_of(cal))
            self._flush()
            return copy.deepcopy(res)

    def edit_event(
        self, calendar_id: str, event_id: str, changes: dict[str, Any] | None = None, **fields: Any
    ) -> dict[str, Any]:
        """Patch an event (or one instance of a series, by instance id) from the user side."""
        with self._lock:
            cal = self._cal(calendar_id)
            if self._lookup(cal, event_id) is None:
                raise KeyError(event_id)
            res = self._update(cal, event_id, {**(changes or {}), **fields}, patch=True, if_match=None)
            self._flush()
            return copy.deepcopy(res)

    def delete_event(self, calendar_id: str, event_id: str) -> None:
        """Delete an event, a whole series, or one instance (by instance id) from the user side."""
        with self._lock:
            cal = self._cal(calendar_id)
            if self._lookup(cal, event_id) is None:
                raise KeyError(event_id)
            self._delete(cal, event_id)
            self._flush()

    def get_event(self, calendar_id: str, event_id: str) -> dict[str, Any]:
        """The full resource as events.get would return it (instances by instance id too)."""
        with self._lock:
            cal = self._cal(calendar_id)
            found = self._lookup(cal, event_id)
            if found is None:
                raise KeyError(event_id)
            return copy.deepcopy(found)

    def stored_events(self, calendar_id: str) -> list[dict[str, Any]]:
        """Everything stored for a calendar: singles, masters, exceptions, cancelled ones included."""
        with self._lock:
            return [copy.deepcopy(ev.res) for ev in self._cal(calendar_id).events.values()]

    def expire_sync_tokens(self, calendar_id: str | None = None) -> None:
        """Every sync token issued so far (for one calendar, or all) now answers 410 fullSyncRequired."""
        with self._lock:
            if calendar_id is None:
                self._sync_epoch += 1
            else:
                key = ("events", self._cal(calendar_id).id)
                self._sync_gen[key] = self._sync_gen.get(key, 0) + 1

    # ------------------------------------------------------------------ fault injection and logs

    def fail_next(
        self,
        n: int = 1,
        status: int = 429,
        reason: str | None = None,
        *,
        retry_after: int | str | None = None,
        path: str | None = None,
        message: str | None = None,
    ) -> None:
        """The next `n` Calendar API requests (or requests whose path contains `path`) fail with `status`.

        Default reasons: 403/429 rateLimitExceeded, 5xx backendError; `reason="userRateLimitExceeded"` or
        `"quotaExceeded"` give those bodies. `retry_after` adds a Retry-After header.
        """
        with self._lock:
            ra = None if retry_after is None else str(retry_after)
            self._failures.append(_Failure(n, status, reason, message, ra, path))

    def clear_failures(self) -> None:
        """Forget failures injected with `fail_next` that have not happened yet (the outage is over)."""
        with self._lock:
            self._failures.clear()

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self._requests)

    def requests_to(self, path_part: str, method: str | None = None) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self._requests if path_part in r.path and method in (None, r.method)]

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    # ------------------------------------------------------------------ push notifications

    @property
    def channels(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                {
                    "id": ch.id,
                    "token": ch.token,
                    "address": ch.address,
                    "calendarId": ch.calendar_id,
                    "resourceId": ch.resource_id,
                    "resourceUri": ch.resource_uri,
                    "expiration": ch.expiration,
                    "stopped": ch.stopped,
                }
                for ch in self._channels.values()
            ]

    @property
    def deliveries(self) -> list[Delivery]:
        with self._lock:
            return list(self._deliveries)

    def notify(self, channel_id: str, state: str = "exists") -> int | None:
        """POST one notification to the channel's address now; the receiver's status (None: not delivered)."""
        with self._lock:
            if channel_id not in self._channels:
                raise KeyError(channel_id)
        return self._deliver(channel_id, state)

    def wait_for_deliveries(self, count: int, timeout: float = 5.0) -> list[Delivery]:
        """Block until at least `count` push deliveries were attempted; returns them all."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self._deliveries) >= count:
                    return list(self._deliveries)
            time.sleep(0.01)
        raise AssertionError(f"only {len(self._deliveries)} of {count} push deliveries within {timeout}s")

    # ================================================================== internals: bookkeeping

    def _now(self) -> datetime:
        return self._clock()

    def _bump(self) -> int:
        self._seq += 1
        return self._seq

    def _write_time(self) -> datetime:
        moment = self._now().astimezone(UTC)
        if self._last_write is not None and moment <= self._last_write:
            moment = self._last_write + timedelta(milliseconds=1)
        self._last_write = moment
        return moment

    def _etag(self, moment: datetime | None = None) -> str:
        moment = moment or self._write_time()
        return f'"{int(moment.timestamp() * 1000)}{self._seq % 1000:03d}"'

    @staticmethod
    def _resource_id() -> str:
        return _b64url(secrets.token_bytes(20))[:27]

    def _set_entry(self, account: _Account, cid: str, role: str, primary: bool = False) -> None:
        seq = self._bump()
        account.entries[cid] = _Entry(cid, role, seq, self._etag(), primary=primary)

    def _cal(self, calendar_id: str) -> _Calendar:
        try:
            return self._calendars[calendar_id]
        except KeyError:
            raise KeyError(f"no calendar {calendar_id!r}") from None

    def _owner_of(self, cal: _Calendar) -> str:
        for account in self._accounts.values():
            entry = account.entries.get(cal.id)
            if entry and entry.access_role == "owner" and not entry.deleted:
                return account.email
        return cal.id

    def _store(self, cal: _Calendar, res: dict[str, Any]) -> dict[str, Any]:
        seq = self._bump()
        moment = self._write_time()
        res["updated"] = _ts(moment)
        res["etag"] = self._etag(moment)
        res = _ordered(res)
        cal.events[res["id"]] = _Stored(res, seq)
        self._dirty.add(cal.id)
        return res

    def _flush(self) -> None:
        """After one operation: one `exists` push per watching channel of each changed calendar."""
        dirty, self._dirty = self._dirty, set()
        if not self.auto_notify:
            return
        for ch in self._channels.values():
            if ch.calendar_id in dirty and not ch.stopped:
                self._outbox.put((ch.id, "exists"))

    # ================================================================== internals: HTTP plumbing

    def _serve(self, h: _Handler) -> None:
        body = self._read_body(h)
        split = urlsplit(h.path)
        query = parse_qs(split.query, keep_blank_values=True)
        headers = {k: v for k, v in h.headers.items() if k.lower() != "authorization"}
        with self._lock:
            self._requests.append(RecordedRequest(h.command, split.path, query, headers, body))
        try:
            resp = self._dispatch(h.command, split.path, query, h.headers, body)
        except _ApiError as exc:
            resp = _json_response(exc.code, exc.body(), exc.headers)
        except _OAuthError as exc:
            resp = _json_response(
                exc.status, exc.body(), {"Cache-Control": "no-cache, no-store, max-age=0, must-revalidate"}
            )
        except Exception:
            with self._lock:
                self.errors.append(traceback.format_exc())
            resp = _json_response(500, _ApiError(500, "backendError", "Backend Error").body())
        finally:
            with self._lock:
                self._flush()
        try:
            h.send_response(resp.status)
            for key, value in resp.headers.items():
                h.send_header(key, value)
            if resp.status not in (204, 304):  # no body framing on these
                h.send_header("Content-Length", str(len(resp.body)))
            h.end_headers()
            if resp.body:
                h.wfile.write(resp.body)
            h.wfile.flush()
        except OSError:
            h.close_connection = True

    @staticmethod
    def _read_body(h: _Handler) -> bytes:
        if "chunked" in (h.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(h.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    h.rfile.readline()
                    break
                chunks.append(h.rfile.read(size))
                h.rfile.readline()
            return b"".join(chunks)
        length = int(h.headers.get("Content-Length") or 0)
        return h.rfile.read(length) if length else b""

    def _injected(self, path: str) -> _Response | None:
        with self._lock:
            for fail in self._failures:
                hit = (fail.path in path) if fail.path is not None else path.startswith("/calendar/v3")
                if hit:
                    fail.remaining -= 1
                    if fail.remaining <= 0:
                        self._failures.remove(fail)
                    break
            else:
                return None
        headers = {"Retry-After": fail.retry_after} if fail.retry_after else {}
        if path in ("/token", "/revoke"):
            error = (
                "temporarily_unavailable" if fail.status >= 500 or fail.status == 429 else (fail.reason or "invalid_request")
            )
            return _json_response(
                fail.status, {"error": error, "error_description": fail.message or "Try again later."}, headers
            )
        domain, reason, message = _FAIL_DEFAULTS.get(fail.status, ("global", "unknownError", "Unknown Error"))
        if fail.reason:
            reason = fail.reason
            domain, message = _REASON_MESSAGES.get(reason, (domain, message))
        err = _ApiError(fail.status, reason, fail.message or message, domain=domain)
        return _json_response(fail.status, err.body(), headers)

    def _dispatch(self, method: str, path: str, query: dict[str, list[str]], headers: Any, body: bytes) -> _Response:
        injected = self._injected(path)
        if injected is not None:
            return injected
        if path == "/o/oauth2/v2/auth" and method == "GET":
            with self._lock:
                return self._authorize(_Params(query))
        if path == "/token" and method == "POST":
            with self._lock:
                return self._token(headers, body)
        if path in ("/revoke", "/o/oauth2/revoke"):
            with self._lock:
                return self._revoke_endpoint(query, headers, body)
        if path == "/oauth2/v3/certs" and method == "GET":
            return _json_response(200, {"keys": [self._jwk()]})
        if path in ("/oauth2/v3/userinfo", "/v1/userinfo") and method == "GET":
            with self._lock:
                return self._userinfo(headers)
        if path.startswith("/calendar/v3/"):
            segments = [unquote(s) for s in path[len("/calendar/v3/") :].split("/")]
            with self._lock:
                return self._api(method, segments, _Params(query), headers, body)
        return _Response(404, b"Not Found", {"Content-Type": "text/html; charset=UTF-8"})

    # ================================================================== OAuth

    @staticmethod
    def _page(status: int, error: str, description: str) -> _Response:
        html = (
            f"<!doctype html><html><head><title>Error {status}: {error}</title></head>"
            "<body><h1>Access blocked: authorization error</h1>"
            f"<p>Error {status}: {error}</p><p>{description}</p></body></html>"
        )
        return _Response(status, html.encode(), {"Content-Type": "text/html; charset=utf-8"})

    @staticmethod
    def _redirect(uri: str, params: dict[str, str | None]) -> _Response:
        clean = {k: v for k, v in params.items() if v is not None}
        location = uri + ("&" if "?" in uri else "?") + urlencode(clean, quote_via=quote)
        return _Response(302, b"", {"Location": location, "Content-Type": "text/html; charset=UTF-8"})

    @staticmethod
    def _normal_scopes(scopes: Iterable[str]) -> list[str]:
        out: list[str] = []
        for scope in scopes:
            scope = _SCOPE_ALIASES.get(scope, scope)
            if scope and scope not in out:
                out.append(scope)
        return out

    def _authorize(self, p: _Params) -> _Response:
        client = self._clients.get(p.str("client_id") or "")
        if client is None:
            return self._page(401, "invalid_client", "The OAuth client was not found.")
        redirect_uri = p.str("redirect_uri")
        if not redirect_uri:
            return self._page(400, "invalid_request", "Missing required parameter: redirect_uri")
        if redirect_uri not in client.redirect_uris:
            return self._page(
                400, "redirect_uri_mismatch", f"redirect_uri={redirect_uri} is not registered for this client."
            )
        response_type = p.str("response_type")
        if not response_type:
            return self._page(400, "invalid_request", "Missing required parameter: response_type")
        if response_type != "code":
            return self._page(400, "unsupported_response_type", f"Invalid response_type: {response_type}")
        scope = (p.str("scope") or "").strip()
        if not scope:
            return self._page(400, "invalid_request", "Missing required parameter: scope")
        challenge, method = p.str("code_challenge"), p.str("code_challenge_method")
        if method and not challenge:
            return self._page(400, "invalid_request", "code_challenge_method is set but code_challenge is missing.")
        if challenge:
            method = method or "plain"
            if method not in ("S256", "plain"):
                return self._page(400, "invalid_request", f"Invalid code_challenge_method: {method}")
            if (method == "S256" and not re.fullmatch(r"[A-Za-z0-9_-]{43}", challenge)) or (
                method == "plain" and not _VERIFIER.fullmatch(challenge)
            ):
                return self._page(400, "invalid_request", "Invalid code_challenge.")
        access_type = p.str("access_type") or "online"
        if access_type not in ("online", "offline"):
            return self._page(400, "invalid_request", f"Invalid access_type: {access_type}")
        prompt = set((p.str("prompt") or "").split())
        if not prompt <= {"none", "consent", "select_account"} or ("none" in prompt and len(prompt) > 1):
            return self._page(400, "invalid_request", f"Invalid prompt: {p.str('prompt')}")
        state = p.str("state")
        hint = p.str("login_hint")
        email = hint if hint in self._accounts else self._current_user
        if email is None:
            if "none" in prompt:
                return self._redirect(redirect_uri, {"error": "login_required", "state": state})
            return self._page(400, "invalid_request", "No signed-in user: call FakeGoogle.set_user() or pass login_hint.")
        if self._deny_next:
            self._deny_next = False
            return self._redirect(redirect_uri, {"error": "access_denied", "state": state})
        grant = self._grants.get((client.client_id, email))
        first = grant is None or grant.revoked
        if "none" in prompt and first:
            return self._redirect(redirect_uri, {"error": "consent_required", "state": state})
        scopes = self._normal_scopes(scope.split())
        if self._grant_only_next is not None:
            allowed, self._grant_only_next = self._normal_scopes(self._grant_only_next), None
            scopes = [s for s in scopes if s in allowed]
        if p.str("include_granted_scopes") == "true" and grant is not None and not grant.revoked:
            scopes += [s for s in sorted(grant.scopes) if s not in scopes]
        grant = self._live_grant(client.client_id, email, scopes)
        # A refresh token comes with the first offline consent, and again whenever the app asks for prompt=consent
        has_refresh = any(self._refresh[t].valid for t in grant.refresh_tokens)
        offline = access_type == "offline" and (first or "consent" in prompt or not has_refresh)
        code = "4/0" + _b64url(secrets.token_bytes(48))
        self._codes[code] = _Code(
            code,
            client.client_id,
            email,
            redirect_uri,
            tuple(scopes),
            challenge,
            method if challenge else None,
            offline=offline,
            expires_at=self._now() + timedelta(minutes=10),
        )
        shown = first or "consent" in prompt or offline
        return self._redirect(
            redirect_uri,
            {
                "state": state,
                "code": code,
                "scope": " ".join(scopes),
                "authuser": "0",
                "prompt": "consent" if shown else "none",
            },
        )

    def _live_grant(self, client_id: str, email: str, scopes: Iterable[str]) -> _Grant:
        grant = self._grants.get((client_id, email))
        if grant is None or grant.revoked:
            grant = _Grant(client_id, email, set())
            self._grants[(client_id, email)] = grant
        grant.scopes |= set(scopes)
        return grant

    def _client_auth(self, headers: Any, form: dict[str, str]) -> _Client:
        client_id, secret = form.get("client_id"), form.get("client_secret")
        auth = headers.get("Authorization") or ""
        if auth.lower().startswith("basic "):
            try:
                raw = base64.b64decode(auth[6:].strip()).decode()
            except (ValueError, UnicodeDecodeError):
                raise _OAuthError(401, "invalid_client", "Unauthorized") from None
            user, _, password = raw.partition(":")
            client_id, secret = unquote(user), unquote(password)
        if not client_id:
            raise _OAuthError(400, "invalid_request", "Could not determine client ID from request.")
        client = self._clients.get(client_id)
        if client is None:
            raise _OAuthError(401, "invalid_client", "The OAuth client was not found.")
        if secret is None:
            raise _OAuthError(400, "invalid_request", "client_secret is missing.")
        if not secrets.compare_digest(secret, client.secret):
            raise _OAuthError(401, "invalid_client", "Unauthorized")
        return client

    @staticmethod
    def _form(headers: Any, body: bytes) -> dict[str, str]:
        ctype = (headers.get("Content-Type") or "").lower()
        if "json" in ctype:
            try:
                data = json.loads(body or b"{}")
            except ValueError:
                raise _OAuthError(400, "invalid_request", "Invalid JSON payload received.") from None
            return {k: str(v) for k, v in data.items()} if isinstance(data, dict) else {}
        return {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}

    def _token(self, headers: Any, body: bytes) -> _Response:
        form = self._form(headers, body)
        grant_type = form.get("grant_type")
        if grant_type not in ("authorization_code", "refresh_token"):
            raise _OAuthError(400, "unsupported_grant_type", f"Invalid grant_type: {grant_type or ''}")
        client = self._client_auth(headers, form)
        if grant_type == "authorization_code":
            answer = self._exchange_code(client, form)
        else:
            answer = self._refresh_grant(client, form)
        return _json_response(
            200, answer, {"Cache-Control": "no-cache, no-store, max-age=0, must-revalidate", "Pragma": "no-cache"}
        )

    def _exchange_code(self, client: _Client, form: dict[str, str]) -> dict[str, Any]:
        code = form.get("code")
        if not code:
            raise _OAuthError(400, "invalid_request", "Missing required parameter: code")
        rec = self._codes.get(code)
        if rec is None or rec.used or rec.expires_at <= self._now() or rec.client_id != client.client_id:
            raise _OAuthError(400, "invalid_grant", "Bad Request")
        redirect_uri = form.get("redirect_uri")
        if not redirect_uri:
            raise _OAuthError(400, "invalid_request", "Missing required parameter: redirect_uri")
        if redirect_uri != rec.redirect_uri:
            raise _OAuthError(400, "redirect_uri_mismatch", "Bad Request")
        verifier = form.get("code_verifier")
        if rec.challenge:
            if not verifier:
                raise _OAuthError(400, "invalid_grant", "Missing code verifier.")
            expected = _b64url(hashlib.sha256(verifier.encode()).digest()) if rec.method == "S256" else verifier
            if not _VERIFIER.fullmatch(verifier) or not secrets.compare_digest(expected, rec.challenge):
                raise _OAuthError(400, "invalid_grant", "Invalid code verifier.")
        elif verifier:
            raise _OAuthError(400, "invalid_request", "code_verifier or verifier is not needed.")
        grant = self._grants.get((rec.client_id, rec.email))
        if grant is None or grant.revoked:
            raise _OAuthError(400, "invalid_grant", "Token has been expired or revoked.")
        rec.used = True
        return self._token_answer(grant, frozenset(rec.scopes), list(rec.scopes), refresh=rec.offline)

    def _refresh_grant(self, client: _Client, form: dict[str, str]) -> dict[str, Any]:
        token = form.get("refresh_token")
        if not token:
            raise _OAuthError(400, "invalid_request", "Missing required parameter: refresh_token")
        rec = self._refresh.get(token)
        if rec is None or not rec.valid or rec.grant.revoked:
            raise _OAuthError(400, "invalid_grant", "Token has been expired or revoked.")
        if rec.grant.client_id != client.client_id:
            raise _OAuthError(401, "unauthorized_client", "Unauthorized")
        scopes = list(rec.order) or sorted(rec.scopes)
        if form.get("scope"):
            asked = self._normal_scopes(form["scope"].split())
            extra = [s for s in asked if s not in rec.scopes]
            if extra:
                raise _OAuthError(400, "invalid_scope", f"Some requested scopes were invalid. {{invalid={extra}}}")
            scopes = asked
        answer = self._token_answer(rec.grant, frozenset(scopes), scopes, refresh=self.rotate_refresh_tokens)
        if self.rotate_refresh_tokens:
            rec.valid = False
        return answer

    def _token_answer(self, grant: _Grant, scopes: frozenset[str], order: list[str], *, refresh: bool) -> dict[str, Any]:
        access = "ya29.a0" + _b64url(secrets.token_bytes(60))
        expires = self._now() + timedelta(seconds=self.access_token_lifetime)
        self._access[access] = _AccessToken(access, grant, scopes, expires)
        answer: dict[str, Any] = {"access_token": access, "expires_in": self.access_token_lifetime}
        if refresh:
            token = "1//0" + _b64url(secrets.token_bytes(60))
            self._refresh[token] = _RefreshToken(token, grant, scopes, tuple(order))
            grant.refresh_tokens.append(token)
            live = [t for t in grant.refresh_tokens if self._refresh[t].valid]
            for old in live[: max(0, len(live) - self.max_refresh_tokens)]:
                self._refresh[old].valid = False
            answer["refresh_token"] = token
        answer["scope"] = " ".join(order)
        answer["token_type"] = "Bearer"
        if "openid" in scopes:
            answer["id_token"] = self._id_token(grant, scopes)
        return answer

    def _revoke(self, grant: _Grant) -> None:
        grant.revoked = True
        for tok in self._refresh.values():
            if tok.grant is grant:
                tok.valid = False
        for acc in self._access.values():
            if acc.grant is grant:
                acc.valid = False

    def _revoke_endpoint(self, query: dict[str, list[str]], headers: Any, body: bytes) -> _Response:
        token = (query.get("token") or [None])[0]
        if token is None and body:
            token = self._form(headers, body).get("token")
        if not token:
            raise _OAuthError(400, "invalid_request", "Missing required parameter: token")
        rec: _RefreshToken | _AccessToken | None = self._refresh.get(token) or self._access.get(token)
        if rec is None or not rec.valid or rec.grant.revoked:
            raise _OAuthError(400, "invalid_token", "Token expired or revoked")
        self._revoke(rec.grant)
        return _json_response(200, {})

    def _rsa(self) -> Any:
        if self._rsa_key is None:
            from cryptography.hazmat.primitives.asymmetric import rsa

            self._rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return self._rsa_key

    def _jwk(self) -> dict[str, str]:
        with self._lock:
            numbers = self._rsa().public_key().public_numbers()

        def enc(n: int) -> str:
            return _b64url(n.to_bytes((n.bit_length() + 7) // 8, "big"))

        return {"kty": "RSA", "alg": "RS256", "use": "sig", "kid": self._kid, "n": enc(numbers.n), "e": enc(numbers.e)}

    def _id_token(self, grant: _Grant, scopes: frozenset[str]) -> str:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        now = int(self._now().timestamp())
        claims: dict[str, Any] = {
            "iss": "https://accounts.google.com",
            "azp": grant.client_id,
            "aud": grant.client_id,
            "sub": self._accounts[grant.email].sub,
            "iat": now,
            "exp": now + 3600,
        }
        if _SCOPE_ALIASES["email"] in scopes:
            claims.update(email=grant.email, email_verified=True)
        header = {"alg": "RS256", "kid": self._kid, "typ": "JWT"}
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        signature = self._rsa().sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64url(signature)}"

    def _userinfo(self, headers: Any) -> _Response:
        tok = self._authenticate(headers)
        out: dict[str, Any] = {"sub": self._accounts[tok.grant.email].sub}
        if _SCOPE_ALIASES["email"] in tok.scopes:
            out.update(email=tok.grant.email, email_verified=True)
        return _json_response(200, out)

    # ================================================================== Calendar API: auth and routing

    def _authenticate(self, headers: Any) -> _AccessToken:
        auth = headers.get("Authorization") or ""
        if not auth.lower().startswith("bearer "):
            raise _ApiError(
                401,
                "required",
                "Login Required.",
                location="Authorization",
                location_type="header",
                status="UNAUTHENTICATED",
                top_message=_LOGIN_MESSAGE,
            )
        tok = self._access.get(auth[7:].strip())
        if tok is None or not tok.valid or tok.grant.revoked or tok.expires_at <= self._now():
            raise _ApiError(
                401,
                "authError",
                "Invalid Credentials",
                location="Authorization",
                location_type="header",
                status="UNAUTHENTICATED",
                headers={"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/", error="invalid_token"'},
                top_message=_AUTH_MESSAGE,
            )
        return tok

    @staticmethod
    def _need_scope(tok: _AccessToken, allowed: frozenset[str]) -> None:
        if not tok.scopes & allowed:
            raise _ApiError(
                403,
                "insufficientPermissions",
                "Insufficient Permission",
                status="PERMISSION_DENIED",
                headers={
                    "WWW-Authenticate": 'Bearer realm="https://accounts.google.com/", error="insufficient_scope", '
                    f'scope="{" ".join(sorted(allowed))}"'
                },
                top_message="Request had insufficient authentication scopes.",
            )

    def _calendar_for(self, tok: _AccessToken, cid: str) -> tuple[_Calendar, str]:
        email = tok.grant.email
        if cid == "primary":
            cid = email
        entry = self._accounts[email].entries.get(cid)
        if entry is None or entry.deleted or cid not in self._calendars:
            raise _not_found()
        return self._calendars[cid], entry.access_role

    @staticmethod
    def _need_writer(role: str) -> None:
        if _ROLES[role] < _ROLES["writer"]:
            raise _ApiError(403, "requiredAccessLevel", "You need to have writer access to this calendar.")

    @staticmethod
    def _json_body(body: bytes) -> dict[str, Any]:
        if not body.strip():
            return {}
        try:
            data = json.loads(body)
        except ValueError:
            raise _ApiError(400, "parseError", "Parse Error") from None
        if not isinstance(data, dict):
            raise _ApiError(400, "parseError", "Parse Error")
        return data

    def _api(self, method: str, seg: list[str], p: _Params, headers: Any, body: bytes) -> _Response:
        tok = self._authenticate(headers)
        n = len(seg)
        if seg[:3] == ["users", "me", "calendarList"]:
            self._need_scope(tok, CALENDARLIST_SCOPES)
            if n == 3 and method == "GET":
                return _json_response(200, self._calendar_list(tok, p))
            if n == 4 and method == "GET":
                entry = self._accounts[tok.grant.email].entries.get(seg[3])
                if entry is None or entry.deleted:
                    raise _not_found()
                return _json_response(200, self._entry_resource(entry))
        elif seg[:2] == ["channels", "stop"] and n == 2 and method == "POST":
            self._stop_channel(tok, self._json_body(body))
            return _Response(204)
        elif seg and seg[0] == "calendars" and n >= 2:
            cal, role = self._calendar_for(tok, seg[1])
            if n == 2 and method == "GET":
                self._need_scope(tok, EVENTS_READ_SCOPES | CALENDARLIST_SCOPES)
                return _json_response(200, self._calendar_resource(cal))
            if n >= 3 and seg[2] == "events":
                return self._events_api(method, seg[3:], tok, cal, role, seg[1], p, headers, body)
        raise _not_found()

    def _events_api(
        self,
        method: str,
        rest: list[str],
        tok: _AccessToken,
        cal: _Calendar,
        role: str,
        cid_as_sent: str,
        p: _Params,
        headers: Any,
        body: bytes,
    ) -> _Response:
        writing = method in ("POST", "PUT", "PATCH", "DELETE") and rest != ["watch"]
        self._need_scope(tok, EVENTS_WRITE_SCOPES if writing else EVENTS_READ_SCOPES)
        if not rest:
            if method == "GET":
                return _json_response(200, self._events_list(cal, role, p))
            if method == "POST":
                self._need_writer(role)
                res = self._insert(cal, self._json_body(body), tok.grant.email)
                return _json_response(200, res)
        elif rest == ["watch"] and method == "POST":
            return _json_response(200, self._watch(tok, cal, cid_as_sent, self._json_body(body)))
        elif len(rest) == 1:
            eid = rest[0]
            if method == "GET":
                found = self._lookup(cal, eid)
                if found is None:
                    raise _not_found()
                inm = headers.get("If-None-Match")
                if inm and _etag_matches(inm, found["etag"]):
                    return _Response(304, b"", {"ETag": found["etag"]})
                return _json_response(200, self._present(found, role, full=True), {"ETag": found["etag"]})
            if method in ("PUT", "PATCH"):
                if self._lookup(cal, eid) is None:
                    raise _not_found()
                self._need_writer(role)
                res = self._update(
                    cal, eid, self._json_body(body), patch=method == "PATCH", if_match=headers.get("If-Match")
                )
                return _json_response(200, res, {"ETag": res["etag"]})
            if method == "DELETE":
                found = self._lookup(cal, eid)
                if found is None:
                    raise _not_found()
                if found.get("status") == "cancelled":
                    raise _ApiError(410, "deleted", "Resource has been deleted")
                self._need_writer(role)
                self._check_if_match(headers.get("If-Match"), found)
                self._delete(cal, eid)
                return _Response(204)
        elif len(rest) == 2 and rest[1] == "instances" and method == "GET":
            return _json_response(200, self._instances(cal, role, rest[0], p))
        raise _not_found()

    # ================================================================== Calendar API: resources

    def _calendar_resource(self, cal: _Calendar) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": "calendar#calendar",
            "etag": f'"{cal.resource_id[:12]}"',
            "id": cal.id,
            "summary": cal.summary,
        }
        if cal.description:
            out["description"] = cal.description
        out["timeZone"] = cal.time_zone
        out["conferenceProperties"] = {"allowedConferenceSolutionTypes": ["hangoutsMeet"]}
        return out

    def _entry_resource(self, entry: _Entry) -> dict[str, Any]:
        if entry.deleted:
            return {"kind": "calendar#calendarListEntry", "etag": entry.etag, "id": entry.calendar_id, "deleted": True}
        cal = self._calendars[entry.calendar_id]
        out: dict[str, Any] = {
            "kind": "calendar#calendarListEntry",
            "etag": entry.etag,
            "id": cal.id,
            "summary": cal.summary,
        }
        if cal.description:
            out["description"] = cal.description
        out.update(timeZone=cal.time_zone, colorId="14", backgroundColor="#9fe1e7", foregroundColor="#000000")
        if entry.hidden:
            out["hidden"] = True
        out["selected"] = True
        out["accessRole"] = entry.access_role
        out["defaultReminders"] = [{"method": "popup", "minutes": 10}] if entry.primary else []
        if entry.primary:
            out["notificationSettings"] = {
                "notifications": [
                    {"type": "eventCreation", "method": "email"},
                    {"type": "eventChange", "method": "email"},
                    {"type": "eventCancellation", "method": "email"},
                    {"type": "eventResponse", "method": "email"},
                ]
            }
            out["primary"] = True
        out["conferenceProperties"] = {"allowedConferenceSolutionTypes": ["hangoutsMeet"]}
        return out

    def _present(self, res: dict[str, Any], role: str, *, full: bool = False, cancelled: bool = False) -> dict[str, Any]:
        if cancelled and not full:
            out = {"kind": "calendar#event", "etag": res["etag"], "id": res["id"], "status": "cancelled"}
            if "recurringEventId" in res:
                out["recurringEventId"] = res["recurringEventId"]
                out["originalStartTime"] = copy.deepcopy(res["originalStartTime"])
            return out
        if role == "freeBusyReader":
            keep = (
                "kind",
                "etag",
                "id",
                "status",
                "updated",
                "start",
                "end",
                "recurringEventId",
                "originalStartTime",
                "transparency",
            )
            return {k: copy.deepcopy(res[k]) for k in keep if k in res}
        return copy.deepcopy(res)

    def _html_link(self, cal: _Calendar, eid: str) -> str:
        return "https://www.google.com/calendar/event?eid=" + _b64url(f"{eid} {cal.id}".encode())

    def _normalize(self, cal: _Calendar, body: dict[str, Any]) -> dict[str, Any]:
        """Validate an event body the way Google does and normalize start/end."""
        res = {k: copy.deepcopy(v) for k, v in body.items() if k not in _SERVER_FIELDS}
        whens = {}
        for which in ("start", "end"):
            if not isinstance(res.get(which), dict) or not (res[which].get("date") or res[which].get("dateTime")):
                raise _ApiError(400, "required", f"Missing {which} time.")
            if res[which].get("timeZone"):
                try:
                    ZoneInfo(res[which]["timeZone"])
                except (ZoneInfoNotFoundError, ValueError):
                    raise _bad(f"Invalid time zone definition for {which} time.", "timeZoneInvalid") from None
            try:
                whens[which] = _when(res[which], cal.tz)
            except ValueError:
                raise _bad(f"Invalid {which} time.", "invalid") from None
        (s_day, start), (e_day, end) = whens["start"], whens["end"]
        if s_day != e_day:
            raise _bad("Start and end times must either both be date or both be dateTime.", "invalid")
        if end <= start:
            raise _bad("The specified time range is empty.", "timeRangeEmpty", domain="calendar")
        for which, (all_day, moment) in whens.items():
            obj = res[which]
            if all_day:
                obj.pop("dateTime", None)
                obj["date"] = moment.date().isoformat()
            else:
                obj.pop("date", None)
                zone = ZoneInfo(obj["timeZone"]) if obj.get("timeZone") else cal.tz
                obj["dateTime"] = _fmt_dt(moment.astimezone(zone))
        if res.get("recurrence") is not None:
            if not isinstance(res["recurrence"], list) or not all(isinstance(x, str) for x in res["recurrence"]):
                raise _bad("Invalid recurrence rule.", "invalid")
            if not res["recurrence"]:
                res.pop("recurrence")
            else:
                if not s_day:
                    for which in ("start", "end"):
                        if not res[which].get("timeZone"):
                            raise _ApiError(400, "required", f"Missing time zone definition for {which} time.")
                try:
                    _series(res, cal.tz)
                except (ValueError, TypeError, KeyError) as exc:
                    raise _bad("Invalid recurrence rule.", "invalid") from exc
        status = res.get("status", "confirmed")
        if status not in ("confirmed", "tentative", "cancelled"):
            raise _bad(f"Invalid value for: {status} is not a valid value", "invalid")
        res["status"] = status
        if res.get("transparency", "opaque") not in ("opaque", "transparent"):
            raise _bad("Invalid transparency value.", "invalid")
        reminders = res.get("reminders")
        if reminders is not None:
            if not isinstance(reminders, dict):
                raise _bad("Invalid reminders.", "invalid")
            overrides = reminders.get("overrides") or []
            if reminders.get("useDefault") and overrides:
                raise _bad(
                    "Cannot specify both default reminders and overrides at the same time.",
                    "cannotUseDefaultRemindersAndSpecifyOverride",
                )
            for item in overrides:
                if not isinstance(item, dict) or item.get("method") not in ("email", "popup"):
                    raise _ApiError(400, "required", "Missing reminder method.")
                minutes = item.get("minutes")
                if not isinstance(minutes, int) or not 0 <= minutes <= 40320:
                    raise _bad("Invalid reminder minutes value.", "invalid")
        else:
            res["reminders"] = {"useDefault": True}
        for key in ("attendees", "extendedProperties"):
            if key in res and not isinstance(res[key], list if key == "attendees" else dict):
                raise _bad(f"Invalid {key} value.", "invalid")
        return res

    def _insert(self, cal: _Calendar, body: dict[str, Any], actor: str) -> dict[str, Any]:
        eid = body.get("id")
        if eid is not None:
            if not isinstance(eid, str) or not _EVENT_ID.fullmatch(eid):
                raise _bad("Invalid resource id value.", "invalid")
            if eid in cal.events:
                raise _ApiError(409, "duplicate", "The requested identifier already exists.")
        else:
            eid = "".join(secrets.choice("abcdefghijklmnopqrstuv0123456789") for _ in range(26))
        res = self._normalize(cal, body)
        moment = self._write_time()
        res.update(
            kind="calendar#event",
            id=eid,
            htmlLink=self._html_link(cal, eid),
            created=_ts(moment),
            creator={"email": actor, "self": True},
            organizer=self._organizer(cal, actor),
        )
        res.setdefault("iCalUID", f"{eid}@google.com")
        res.setdefault("sequence", 0)
        res.setdefault("eventType", "default")
        return self._store(cal, res)

    def _organizer(self, cal: _Calendar, actor: str) -> dict[str, Any]:
        if cal.id == actor or cal.id in self._accounts:
            return {"email": cal.id, "self": True}
        return {"email": cal.id, "displayName": cal.summary, "self": True}

    def _lookup(self, cal: _Calendar, eid: str) -> dict[str, Any] | None:
        """The event's current full resource: stored, or a virtual (unmodified) instance of a series."""
        stored = cal.events.get(eid)
        if stored is not None:
            return stored.res
        master_id, sep, suffix = eid.rpartition("_")
        master = cal.events.get(master_id) if sep else None
        parsed = _parse_suffix(suffix)
        if master is None or not master.res.get("recurrence") or parsed is None:
            return None
        series = _series(master.res, cal.tz)
        all_day, occ = parsed
        if all_day != series.all_day:
            return None
        if not all_day:
            occ = occ.astimezone(series.tz)
        if occ not in series.rules:
            return None
        inst = self._materialize(cal, master.res, series, occ)
        if master.res.get("status") == "cancelled":
            inst["status"] = "cancelled"
        return inst

    def _materialize(self, cal: _Calendar, master: dict[str, Any], series: _Series, occ: datetime) -> dict[str, Any]:
        iid = f"{master['id']}_{_suffix(occ, series.all_day)}"
        res = {k: copy.deepcopy(v) for k, v in master.items() if k != "recurrence"}
        res["id"] = iid
        res["htmlLink"] = self._html_link(cal, iid)
        res["recurringEventId"] = master["id"]
        if series.all_day:
            start = {"date": occ.date().isoformat()}
            res["start"] = start
            res["end"] = {"date": (occ + series.duration).date().isoformat()}
        else:
            local = occ.astimezone(series.tz)
            start = {"dateTime": _fmt_dt(local), "timeZone": master["start"]["timeZone"]}
            end_tz = master["end"].get("timeZone") or master["start"]["timeZone"]
            res["start"] = start
            res["end"] = {"dateTime": _fmt_dt((local + series.duration).astimezone(ZoneInfo(end_tz))), "timeZone": end_tz}
        res["originalStartTime"] = dict(start)
        return _ordered(res)

    def _check_if_match(self, if_match: str | None, current: dict[str, Any]) -> None:
        if if_match and not _etag_matches(if_match, current["etag"]):
            raise _ApiError(412, "conditionNotMet", "Precondition Failed", location="If-Match", location_type="header")

    def _update(
        self, cal: _Calendar, eid: str, body: dict[str, Any], *, patch: bool, if_match: str | None
    ) -> dict[str, Any]:
        current = self._lookup(cal, eid)
        assert current is not None
        self._check_if_match(if_match, current)
        if patch:
            merged = _merge({k: v for k, v in current.items() if k not in _SERVER_FIELDS}, body)
        else:
            merged = copy.deepcopy(body)
        merged.pop("id", None)
        if "recurringEventId" in current:
            merged.pop("recurrence", None)
        res = self._normalize(cal, merged)
        for key in ("kind", "htmlLink", "created", "creator", "organizer", "recurringEventId", "originalStartTime"):
            if key in current:
                res[key] = copy.deepcopy(current[key])
        res["id"] = eid
        res.setdefault("iCalUID", current.get("iCalUID", f"{eid}@google.com"))
        res.setdefault("eventType", current.get("eventType", "default"))
        old_seq = int(current.get("sequence", 0))
        asked = body.get("sequence")
        new_seq = max(old_seq, int(asked)) if isinstance(asked, int) else old_seq
        if any(res.get(k) != current.get(k) for k in ("start", "end", "recurrence")) and new_seq == old_seq:
            new_seq += 1
        res["sequence"] = new_seq
        return self._store(cal, res)

    def _delete(self, cal: _Calendar, eid: str) -> None:
        current = self._lookup(cal, eid)
        assert current is not None
        res = copy.deepcopy(current)
        res["status"] = "cancelled"
        self._store(cal, res)
        if res.get("recurrence"):  # the whole series goes, exceptions with it
            for ev in list(cal.events.values()):
                if ev.res.get("recurringEventId") == eid and ev.res.get("status") != "cancelled":
                    gone = copy.deepcopy(ev.res)
                    gone["status"] = "cancelled"
                    self._store(cal, gone)

    # ================================================================== Calendar API: lists

    def _occurrences(
        self, cal: _Calendar, series: _Series, tmin: datetime | None, tmax: datetime | None
    ) -> Iterator[datetime]:
        start_aware = _aware(series.all_day, series.dtstart, cal.tz)
        limit = tmax or max(self._now(), start_aware) + _OPEN_HORIZON
        for occ in itertools.islice(series.rules, _MAX_INSTANCES):
            begin = _aware(series.all_day, occ, cal.tz)
            if begin >= limit:
                return
            if tmin is not None and begin + series.duration <= tmin:
                continue
            yield occ

    def _overlaps(self, cal: _Calendar, res: dict[str, Any], tmin: datetime | None, tmax: datetime | None) -> bool:
        if tmin is None and tmax is None:
            return True
        s_day, start = _when(res["start"], cal.tz)
        e_day, end = _when(res["end"], cal.tz)
        start, end = _aware(s_day, start, cal.tz), _aware(e_day, end, cal.tz)
        return (tmin is None or end > tmin) and (tmax is None or start < tmax)

    def _exceptions(self, cal: _Calendar, master_id: str) -> dict[str, dict[str, Any]]:
        return {ev.res["id"]: ev.res for ev in cal.events.values() if ev.res.get("recurringEventId") == master_id}

    def _expand(
        self,
        cal: _Calendar,
        master: dict[str, Any],
        tmin: datetime | None,
        tmax: datetime | None,
        *,
        show_deleted: bool,
        all_cancelled: bool = False,
        original_start: str | None = None,
    ) -> list[tuple[dict[str, Any], bool]]:
        """(resource, cancelled) for each instance of a series, exceptions substituted."""
        series = _series(master, cal.tz)
        exceptions = self._exceptions(cal, master["id"])
        used: set[str] = set()
        out: list[tuple[dict[str, Any], bool]] = []

        def take(res: dict[str, Any]) -> None:
            cancelled = all_cancelled or res.get("status") == "cancelled"
            if cancelled and not show_deleted:
                return
            if not self._overlaps(cal, res, tmin, tmax):
                return
            if original_start is not None and not self._same_start(cal, res["originalStartTime"], original_start):
                return
            out.append((res, cancelled))

        for occ in self._occurrences(cal, series, tmin, tmax):
            iid = f"{master['id']}_{_suffix(occ, series.all_day)}"
            if iid in exceptions:
                used.add(iid)
                take(exceptions[iid])
            else:
                take(self._materialize(cal, master, series, occ))
        for iid, res in exceptions.items():  # exceptions moved into the window from outside it
            if iid not in used:
                take(res)
        return out

    @staticmethod
    def _same_start(cal: _Calendar, obj: dict[str, Any], value: str) -> bool:
        try:
            if len(value) == 10:
                return obj.get("date") == value
            return _when(obj, cal.tz)[1] == _parse_rfc3339(value)
        except ValueError:
            return False

    def _series_overlaps(self, cal: _Calendar, master: dict[str, Any], tmin: datetime | None, tmax: datetime | None) -> bool:
        if tmin is None and tmax is None:
            return True
        series = _series(master, cal.tz)
        return any(True for _ in self._occurrences(cal, series, tmin, tmax)) or any(
            self._overlaps(cal, res, tmin, tmax) for res in self._exceptions(cal, master["id"]).values()
        )

    def _sort_key(self, cal: _Calendar, res: dict[str, Any]) -> tuple[datetime, str]:
        all_day, start = _when(res.get("start") or res["originalStartTime"], cal.tz)
        return _aware(all_day, start, cal.tz), res["id"]

    def _generation(self, kind: str, key: str) -> int:
        return self._sync_epoch * 1_000_000 + self._sync_gen.get((kind, key), 0)

    def _issue_sync_token(self, kind: str, key: str) -> str:
        ident = (kind, key, self._seq, self._generation(kind, key))
        token = self._sync_token_ids.get(ident)
        if token is None:
            token = "CP" + _b64url(secrets.token_bytes(24)) + "GAU="
            self._sync_token_ids[ident] = token
            self._sync_tokens[token] = _SyncToken(*ident)
        return token

    def _check_sync_token(self, token: str, kind: str, key: str) -> _SyncToken:
        rec = self._sync_tokens.get(token)
        if rec is None or rec.kind != kind or rec.key != key or rec.gen != self._generation(kind, key):
            domain, reason, message = _FAIL_DEFAULTS[410]
            raise _ApiError(410, reason, message, domain=domain)
        return rec

    def _paged(
        self,
        owner: tuple[str, str],
        p: _Params,
        size: int,
        head: dict[str, Any],
        compute: Callable[[], tuple[list[dict[str, Any]], str | None]],
    ) -> dict[str, Any]:
        """Answer one page. The first page snapshots the whole result; page tokens walk that snapshot."""
        page_token = p.str("pageToken")
        if page_token:
            page = self._pages.get(page_token)
            if page is None or page.owner != owner:
                raise _bad("Invalid page token value.", "invalid", location="pageToken")
        else:
            items, sync_token = compute()
            page = _Page(owner, items, 0, head, sync_token)
        chunk = page.items[page.pos : page.pos + size]
        out = dict(page.head)
        if page.pos + size < len(page.items):
            token = "Eh" + _b64url(secrets.token_bytes(24))
            self._pages[token] = _Page(owner, page.items, page.pos + size, page.head, page.sync_token)
            out["nextPageToken"] = token
        elif page.sync_token:
            out["nextSyncToken"] = page.sync_token
        out["items"] = copy.deepcopy(chunk)
        return out

    def _calendar_list(self, tok: _AccessToken, p: _Params) -> dict[str, Any]:
        account = self._accounts[tok.grant.email]
        size = min(p.int("maxResults", 1) or self.calendar_list_page_size, 250, self.max_page_size)
        sync = p.str("syncToken")
        min_role = p.str("minAccessRole")
        if min_role is not None and min_role not in _ROLES:
            raise _bad(f"Invalid value for: {min_role} is not a valid value", "invalidParameter", location="minAccessRole")
        show_deleted, show_hidden = bool(p.bool("showDeleted")), bool(p.bool("showHidden"))
        since = None
        if sync:
            if min_role:
                raise _bad("Sync token cannot be used with other request restrictions.", "invalid", location="minAccessRole")
            since = self._check_sync_token(sync, "calendarList", account.email).seq

        def compute() -> tuple[list[dict[str, Any]], str | None]:
            items = []
            for entry in account.entries.values():
                if since is not None:
                    if entry.seq <= since:
                        continue
                else:
                    if entry.deleted and not show_deleted:
                        continue
                    if entry.hidden and not show_hidden:
                        continue
                    if min_role and _ROLES[entry.access_role] < _ROLES[min_role]:
                        continue
                items.append(self._entry_resource(entry))
            return items, self._issue_sync_token("calendarList", account.email)

        head = {"kind": "calendar#calendarList", "etag": f'"p{self._seq:016x}"'}
        return self._paged(("calendarList", account.email), p, size, head, compute)

    def _events_head(self, cal: _Calendar, role: str) -> dict[str, Any]:
        updated = max((ev.res["updated"] for ev in cal.events.values()), default=_ts(self._now()))
        head: dict[str, Any] = {"kind": "calendar#events", "etag": f'"p{self._seq:016x}"', "summary": cal.summary}
        if cal.description:
            head["description"] = cal.description
        head.update(updated=updated, timeZone=cal.time_zone, accessRole=role)
        primary = cal.id in self._accounts
        head["defaultReminders"] = [{"method": "popup", "minutes": 10}] if primary and _ROLES[role] >= 2 else []
        return head

    def _events_list(self, cal: _Calendar, role: str, p: _Params) -> dict[str, Any]:
        max_results = p.int("maxResults", 1)
        size = min(max_results or self.page_size, 2500, self.max_page_size)
        single = bool(p.bool("singleEvents"))
        show_deleted = p.bool("showDeleted")
        sync = p.str("syncToken")
        since: int | None = None
        if sync:
            if any(name in p for name in _SYNC_RESTRICTED) or show_deleted is False:
                raise _bad(
                    "Sync token cannot be used with other request restrictions.",
                    "syncTokenWithRequestRestrictions",
                    domain="calendar",
                )
            since = self._check_sync_token(sync, "events", cal.id).seq
        tmin, tmax = p.time("timeMin"), p.time("timeMax")
        if tmin is not None and tmax is not None and tmin >= tmax:
            raise _bad("The specified time range is empty.", "timeRangeEmpty", domain="calendar", location="timeMax")
        order = p.str("orderBy")
        if order not in (None, "startTime", "updated"):
            raise _bad(f"Invalid value for: {order} is not a valid value", "invalidParameter", location="orderBy")
        if order == "startTime" and not single:
            raise _bad("The requested ordering is not available for the particular query.")
        updated_min = p.time("updatedMin")
        for name in ("privateExtendedProperty", "sharedExtendedProperty"):
            for cond in p.all(name):
                if "=" not in cond:
                    raise _bad(f"Invalid {name} value.", "invalid", location=name)

        def compute() -> tuple[list[dict[str, Any]], str | None]:
            if since is not None:
                pairs = self._incremental(cal, since, single)
            else:
                pairs = self._full(cal, p, single, bool(show_deleted) or updated_min is not None, tmin, tmax, updated_min)
                if order == "updated":
                    pairs.sort(key=lambda pair: (pair[0]["updated"], pair[0]["id"]))
                else:
                    pairs.sort(key=lambda pair: self._sort_key(cal, pair[0]))
            items = [self._present(res, role, cancelled=cancelled) for res, cancelled in pairs]
            return items, self._issue_sync_token("events", cal.id)

        return self._paged(("events", cal.id), p, size, self._events_head(cal, role), compute)

    def _full(
        self,
        cal: _Calendar,
        p: _Params,
        single: bool,
        show_deleted: bool,
        tmin: datetime | None,
        tmax: datetime | None,
        updated_min: datetime | None,
    ) -> list[tuple[dict[str, Any], bool]]:
        pairs: list[tuple[dict[str, Any], bool]] = []
        for ev in cal.events.values():
            res = ev.res
            cancelled = res.get("status") == "cancelled"
            if "recurringEventId" in res:
                if single:
                    master = cal.events.get(res["recurringEventId"])
                    orphan = master is None  # an exception without its series shows as itself
                    if orphan and (not cancelled or show_deleted) and self._overlaps(cal, res, tmin, tmax):
                        pairs.append((res, cancelled))
                    continue
                master = cal.events.get(res["recurringEventId"])
                series_gone = master is None or master.res.get("status") == "cancelled"
                # Cancelled exceptions of a live series are listed even without showDeleted (Google's rule)
                if cancelled and series_gone and not show_deleted:
                    continue
                if self._overlaps(cal, res, tmin, tmax):
                    pairs.append((res, cancelled))
            elif res.get("recurrence"):
                if cancelled:
                    if show_deleted and not single:
                        pairs.append((res, True))
                    continue
                if single:
                    pairs.extend(self._expand(cal, res, tmin, tmax, show_deleted=show_deleted))
                elif self._series_overlaps(cal, res, tmin, tmax):
                    pairs.append((res, False))
            else:
                if cancelled and not show_deleted:
                    continue
                if self._overlaps(cal, res, tmin, tmax):
                    pairs.append((res, cancelled))
        return [pair for pair in pairs if self._matches(pair[0], p, updated_min)]

    @staticmethod
    def _matches(res: dict[str, Any], p: _Params, updated_min: datetime | None) -> bool:
        if updated_min is not None and _parse_rfc3339(res["updated"]) < updated_min:
            return False
        ical = p.str("iCalUID")
        if ical is not None and res.get("iCalUID") != ical:
            return False
        props = res.get("extendedProperties") or {}
        for name, bucket in (("privateExtendedProperty", "private"), ("sharedExtendedProperty", "shared")):
            for cond in p.all(name):
                key, _, value = cond.partition("=")
                if (props.get(bucket) or {}).get(key) != value:
                    return False
        text = p.str("q")
        if text:
            hay = " ".join(
                [str(res.get(k, "")) for k in ("summary", "description", "location")]
                + [f"{a.get('email', '')} {a.get('displayName', '')}" for a in res.get("attendees") or []]
                + [str((res.get("organizer") or {}).get("email", ""))]
            ).lower()
            if not all(term.lower() in hay for term in text.split()):
                return False
        return True

    def _incremental(self, cal: _Calendar, since: int, single: bool) -> list[tuple[dict[str, Any], bool]]:
        changed = sorted((ev for ev in cal.events.values() if ev.seq > since), key=lambda ev: ev.seq)
        pairs: list[tuple[dict[str, Any], bool]] = []
        for ev in changed:
            res = ev.res
            cancelled = res.get("status") == "cancelled"
            if single and res.get("recurrence"):
                pairs.extend(self._expand(cal, res, None, None, show_deleted=True, all_cancelled=cancelled))
            else:
                pairs.append((res, cancelled))
        seen: set[str] = set()
        out = []
        for res, cancelled in pairs:
            if res["id"] not in seen:
                seen.add(res["id"])
                out.append((res, cancelled))
        return out

    def _instances(self, cal: _Calendar, role: str, eid: str, p: _Params) -> dict[str, Any]:
        stored = cal.events.get(eid)
        if stored is None:
            raise _not_found()
        master = stored.res
        max_results = p.int("maxResults", 1)
        size = min(max_results or self.page_size, 2500, self.max_page_size)
        show_deleted = bool(p.bool("showDeleted"))
        tmin, tmax = p.time("timeMin"), p.time("timeMax")
        if tmin is not None and tmax is not None and tmin >= tmax:
            raise _bad("The specified time range is empty.", "timeRangeEmpty", domain="calendar", location="timeMax")

        def compute() -> tuple[list[dict[str, Any]], str | None]:
            if not master.get("recurrence"):
                return [], None
            gone = master.get("status") == "cancelled"
            pairs = self._expand(
                cal, master, tmin, tmax, show_deleted=show_deleted, all_cancelled=gone, original_start=p.str("originalStart")
            )
            pairs.sort(key=lambda pair: self._sort_key(cal, pair[0]))
            return [self._present(res, role, cancelled=cancelled) for res, cancelled in pairs], None

        return self._paged(("instances", f"{cal.id}/{eid}"), p, size, self._events_head(cal, role), compute)

    # ================================================================== push channels

    def _watch(self, tok: _AccessToken, cal: _Calendar, cid_as_sent: str, body: dict[str, Any]) -> dict[str, Any]:
        for name in ("id", "type", "address"):
            if not body.get(name):
                raise _ApiError(400, "required", "Required", location=name)
        channel_id = str(body["id"])
        if len(channel_id) > 64 or not re.fullmatch(r"[A-Za-z0-9\-_+/=]+", channel_id):
            raise _bad(f"Invalid channel id: {channel_id}", "invalid")
        if body["type"] not in ("web_hook", "webhook"):
            raise _bad(f"Unknown channel type: {body['type']}", "invalid")
        address = str(body["address"])
        scheme = urlsplit(address).scheme
        if scheme not in ("http", "https") or (self.webhook_https_only and scheme != "https"):
            raise _bad(f"WebHook callback must be HTTPS: {address}", "push.webhookUrlNotHttps")
        old = self._channels.get(channel_id)
        if old is not None and not old.stopped and old.expiration > self._now():
            raise _bad("Channel id not unique", "channelIdNotUnique")
        ttl_raw = (body.get("params") or {}).get("ttl", _DEFAULT_CHANNEL_TTL)
        try:
            ttl = int(ttl_raw)
        except (TypeError, ValueError):
            raise _bad(f"Invalid ttl value: {ttl_raw}", "invalid") from None
        now = self._now()
        expiration = now + timedelta(seconds=ttl)
        if body.get("expiration"):
            asked = datetime.fromtimestamp(int(body["expiration"]) / 1000, UTC)
            expiration = min(expiration, asked)
        expiration = expiration.replace(microsecond=(expiration.microsecond // 1000) * 1000)
        resource_uri = f"{self.api_url}/calendars/{quote(cid_as_sent, safe='@')}/events?alt=json"
        ch = _Channel(
            channel_id, body.get("token"), address, cal.id, cal.resource_id, resource_uri, expiration, tok.grant.client_id
        )
        self._channels[channel_id] = ch
        self._outbox.put((channel_id, "sync"))
        out: dict[str, Any] = {"kind": "api#channel", "id": ch.id, "resourceId": ch.resource_id, "resourceUri": resource_uri}
        if ch.token is not None:
            out["token"] = ch.token
        out["expiration"] = str(int(expiration.timestamp() * 1000))
        return out

    def _stop_channel(self, tok: _AccessToken, body: dict[str, Any]) -> None:
        for name in ("id", "resourceId"):
            if not body.get(name):
                raise _ApiError(400, "required", "Required", location=name)
        ch = self._channels.get(str(body["id"]))
        if ch is None or ch.stopped or ch.resource_id != body["resourceId"] or ch.client_id != tok.grant.client_id:
            raise _ApiError(404, "notFound", f"Channel '{body['id']}' not found for project '{tok.grant.client_id}'")
        ch.stopped = True

    def _send_loop(self) -> None:
        while True:
            item = self._outbox.get()
            if item is None:
                return
            try:
                self._deliver(*item)
            except Exception:
                with self._lock:
                    self.errors.append(traceback.format_exc())

    def _deliver(self, channel_id: str, state: str) -> int | None:
        with self._lock:
            ch = self._channels[channel_id]
            if ch.stopped or ch.expiration <= self._now():
                return None
            if state == "sync":
                ch.number = max(ch.number, 1)
                number = 1
            else:
                ch.number += 1
                number = ch.number
            headers = {
                "X-Goog-Channel-ID": ch.id,
                "X-Goog-Channel-Expiration": format_datetime(ch.expiration.astimezone(UTC), usegmt=True),
                "X-Goog-Resource-ID": ch.resource_id,
                "X-Goog-Resource-URI": ch.resource_uri,
                "X-Goog-Resource-State": state,
                "X-Goog-Message-Number": str(number),
                "User-Agent": _NOTIFY_UA,
                "Accept": "*/*",
            }
            if ch.token is not None:
                headers["X-Goog-Channel-Token"] = ch.token
            address = ch.address
        status: int | None = None
        error = None
        try:
            with httpx.Client(verify=self._webhook_verify, timeout=10, trust_env=False) as client:
                status = client.post(address, headers=headers, content=b"").status_code
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        with self._lock:
            self._deliveries.append(Delivery(channel_id, state, number, status, error))
        return status

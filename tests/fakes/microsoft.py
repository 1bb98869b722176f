"""A local, protocol-faithful fake of the Microsoft identity platform (v2.0) and Microsoft Graph calendars, for tests.

One threaded HTTPS server on 127.0.0.1 plays both Microsoft hosts under one base URL (`authority_host`):

    login.microsoftonline.com/{tenant}/v2.0/.well-known/openid-configuration
    login.microsoftonline.com/{tenant}/oauth2/v2.0/{authorize,token}
    login.microsoftonline.com/{tenant}/discovery/v2.0/keys
    graph.microsoft.com/v1.0/...                ->  {authority_host}/v1.0/...   (graph_url)

so code written against Microsoft (msal for OAuth, plain httpx for Graph) only changes its base URLs.
Paths, parameter names, JSON field names, status codes and error bodies follow Microsoft's documentation.
The user's browser is simulated: GET on the authorize endpoint signs in and consents at once (as `login_hint`,
the user given to `set_user`, or the only account) and answers 302 to the redirect URI.

msal
----
msal accepts only https authorities and, for an unknown host, must be told not to ask the real
`login.microsoftonline.com` for instance discovery:

    session = requests.Session()
    session.verify = fake.cafile        # trust the fake's test CA
    session.trust_env = False           # else REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE / *_PROXY from the env win
    app = msal.ConfidentialClientApplication(
        client_id, client_credential=secret, authority=fake.authority,   # or fake.authority_host + "/<tenant id>"
        instance_discovery=False, http_client=session)

`verify=fake.cafile` alone (msal's own option) is not enough whenever REQUESTS_CA_BUNDLE is set in the
environment: requests lets that variable override a session's `verify`. msal then GETs
`{authority}/v2.0/.well-known/openid-configuration` and uses its authorization and token endpoints.

State is in memory behind one lock. The "user" side (edits made in Outlook) goes through `user_create`,
`user_update`, `user_delete`, `user_cancel_occurrence`, `user_move_occurrence`, which change change keys and
show up in the next delta exactly like API writes. See `FakeMicrosoft` for the controls.

Known deviations from Microsoft (on purpose, or because the real behaviour is not documented):
  * rotated refresh tokens are retired: reusing one answers invalid_grant AADSTS70008 (Entra keeps them valid);
  * the authorization code, tokens and ids are opaque random strings of Microsoft's look, not real formats;
    access tokens are JWT-shaped but unsigned, id tokens are RS256-signed with the key at jwks_uri;
  * notification URLs may be http:// (pass `webhook_https_only=True` for Graph's rule);
  * subscription lifetime is capped at `max_subscription_minutes` (4230 by default; Graph's current docs say
    10080 for Outlook events);
  * all-day events are floating: their midnight start/end are never shifted by `Prefer: outlook.timezone`;
  * bodies are returned in the content type they were written in (no HTML conversion);
  * the default page size of calendarView delta is `delta_page_size` (50).
"""

from __future__ import annotations

import base64
import contextlib
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
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx
from dateutil import rrule as du_rrule
from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

from .tls import TLS, make_tls

GRAPH_RESOURCE_ID = "00000003-0000-0000-c000-000000000000"
CONSUMERS_TENANT_ID = "9188040d-6c67-4c5b-b112-36a304b66dad"  # the tenant of personal Microsoft accounts
GRAPH_PREFIX = "https://graph.microsoft.com/"
OIDC_SCOPES = ("openid", "profile", "email", "offline_access")
CALENDAR_READ_SCOPES = frozenset(
    s.lower() for s in ("Calendars.Read", "Calendars.ReadWrite", "Calendars.Read.Shared", "Calendars.ReadWrite.Shared")
)
CALENDAR_WRITE_SCOPES = frozenset(s.lower() for s in ("Calendars.ReadWrite", "Calendars.ReadWrite.Shared"))

_SHOW_AS = ("free", "tentative", "busy", "oof", "workingElsewhere", "unknown")
_PATTERNS = ("daily", "weekly", "absoluteMonthly", "relativeMonthly", "absoluteYearly", "relativeYearly")
_RANGES = ("endDate", "noEnd", "numbered")
_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DU_DAYS = (du_rrule.MO, du_rrule.TU, du_rrule.WE, du_rrule.TH, du_rrule.FR, du_rrule.SA, du_rrule.SU)
_INDEX = {"first": 1, "second": 2, "third": 3, "fourth": 4, "last": -1}
_WRITABLE = frozenset(
    {
        "subject",
        "body",
        "start",
        "end",
        "isAllDay",
        "showAs",
        "isReminderOn",
        "reminderMinutesBeforeStart",
        "location",
        "locations",
        "attendees",
        "recurrence",
        "transactionId",
        "importance",
        "sensitivity",
        "categories",
        "isOnlineMeeting",
        "onlineMeetingProvider",
        "allowNewTimeProposals",
        "responseRequested",
        "hideAttendees",
    }
)
_READ_ONLY = frozenset(
    {
        "id",
        "@odata.etag",
        "@odata.context",
        "@odata.type",
        "changeKey",
        "createdDateTime",
        "lastModifiedDateTime",
        "iCalUId",
        "uid",
        "type",
        "seriesMasterId",
        "originalStart",
        "originalStartTimeZone",
        "originalEndTimeZone",
        "isCancelled",
        "isOrganizer",
        "organizer",
        "webLink",
        "bodyPreview",
        "hasAttachments",
        "responseStatus",
        "onlineMeeting",
        "onlineMeetingUrl",
        "isDraft",
    }
)
_SYNC_MESSAGES = {
    "SyncStateNotFound": (
        "The sync state generation is not found. The delta token is expired and data must be synchronized again."
    ),
    "SyncStateInvalid": "The sync state is invalid. The delta token can't be used and data must be synchronized again.",
    "ResyncRequired": "A full resynchronization is required. The delta token is no longer valid.",
}
_FAIL_DEFAULTS = {  # status -> (Graph error code, message)
    400: ("BadRequest", "Bad request."),
    401: ("InvalidAuthenticationToken", "Access token has expired or is not yet valid."),
    403: ("ErrorAccessDenied", "Access is denied. Check credentials and try again."),
    404: ("ErrorItemNotFound", "The specified object was not found in the store."),
    409: ("ErrorIrresolvableConflict", "Conflict."),
    410: ("SyncStateNotFound", _SYNC_MESSAGES["SyncStateNotFound"]),
    412: ("ErrorIrresolvableConflict", "The change key passed in the request does not match the current change key."),
    429: ("TooManyRequests", "Too many requests. Please retry after the time specified in the Retry-After header."),
    500: ("UnknownError", "An internal server error occurred."),
    502: ("BadGateway", "Bad gateway."),
    503: ("ServiceUnavailable", "The service is temporarily unavailable. Please retry later."),
    504: ("GatewayTimeout", "The gateway timed out."),
}
_CONFLICT_MESSAGE = (
    "The send or update operation could not be performed because the change key passed in the request does not "
    "match the current change key for the item."
)
_VALIDATION_FAILED = (
    "Subscription validation request failed. Notification endpoint must respond with 200 OK to validation request."
)
_GRAPH_JSON = "application/json; odata.metadata=minimal; odata.streaming=true; IEEE754Compatible=false; charset=utf-8"


# --------------------------------------------------------------------------------------------- errors


class _AadError(Exception):
    """An identity-platform error: `{"error", "error_description", "error_codes", "timestamp", ...}`."""

    def __init__(self, status: int, error: str, code: int, description: str, suberror: str | None = None) -> None:
        super().__init__(f"{error}: AADSTS{code}")
        self.status, self.error, self.code, self.description, self.suberror = status, error, code, description, suberror

    def body(self, now: datetime, correlation_id: str | None) -> dict[str, Any]:
        trace, corr = str(uuid.uuid4()), correlation_id or str(uuid.uuid4())
        stamp = now.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        out: dict[str, Any] = {
            "error": self.error,
            "error_description": (
                f"AADSTS{self.code}: {self.description} Trace ID: {trace} Correlation ID: {corr} Timestamp: {stamp}"
            ),
            "error_codes": [self.code],
            "timestamp": stamp,
            "trace_id": trace,
            "correlation_id": corr,
            "error_uri": f"https://login.microsoftonline.com/error?code={self.code}",
        }
        if self.suberror:
            out["suberror"] = self.suberror
        return out


class _AuthorizePageError(Exception):
    """An authorize-endpoint error Microsoft shows on its own page (no redirect): unknown app, bad redirect URI."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"AADSTS{code}: {message}")
        self.code, self.message = code, message


class _GraphError(Exception):
    """A Graph error: `{"error": {"code", "message", "innerError": {...}}}`."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message, self.headers = status, code, message, dict(headers or {})


def _not_found() -> _GraphError:
    return _GraphError(404, "ErrorItemNotFound", "The specified object was not found in the store.")


def _access_denied() -> _GraphError:
    return _GraphError(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")


def _invalid(message: str, code: str = "ErrorInvalidRequest") -> _GraphError:
    return _GraphError(400, code, message)


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

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode(), keep_blank_values=True).items()}

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass(frozen=True)
class Delivery:
    """One POST the fake made to a subscriber: validation, change notification or lifecycle notification."""

    subscription_id: str
    kind: str  # "validation" | "notification" | "lifecycle"
    url: str
    body: Any
    status: int | None
    seconds: float
    error: str | None = None


@dataclass
class _Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def _json_response(status: int, obj: Any, headers: dict[str, str] | None = None, ctype: str | None = None) -> _Response:
    h = {"Content-Type": ctype or "application/json; charset=utf-8"}
    h.update(headers or {})
    return _Response(status, json.dumps(obj, indent=1).encode(), h)


# --------------------------------------------------------------------------------------------- state


@dataclass
class _Client:
    client_id: str
    secret: str
    redirect_uris: list[str]


@dataclass
class _Account:
    email: str
    name: str
    oid: str
    tenant_id: str
    default_calendar: str = ""


@dataclass
class _Calendar:
    id: str
    email: str
    name: str
    can_edit: bool
    is_default: bool
    color: str
    hex_color: str
    owner_name: str
    owner_address: str
    change_key: str


@dataclass
class _Grant:
    email: str
    client_id: str
    scopes: tuple[str, ...]
    issued: datetime
    revoked: bool = False
    interaction_required: bool = False


@dataclass
class _Code:
    grant: _Grant
    redirect_uri: str
    nonce: str | None
    challenge: str | None
    method: str
    expires: datetime
    used: bool = False


@dataclass
class _RefreshToken:
    grant: _Grant
    valid: bool = True


@dataclass
class _AccessToken:
    grant: _Grant
    scopes: tuple[str, ...]
    expires: datetime
    valid: bool = True


@dataclass
class _Override:
    """An exception of a series: the fields that differ from the master (start/end when moved)."""

    fields: dict[str, Any]
    change_key: str
    modified: datetime
    seq: int


@dataclass
class _Event:
    id: str
    calendar_id: str
    email: str
    data: dict[str, Any]
    created: datetime
    modified: datetime
    change_key: str
    seq: int
    goid: str  # hex "global object id"; iCalUId of singles and masters
    deleted: bool = False
    overrides: dict[datetime, _Override] = field(default_factory=dict)  # key: original start, UTC
    cancelled: dict[datetime, int] = field(default_factory=dict)  # original start (UTC) -> seq

    @property
    def is_series(self) -> bool:
        return bool(self.data.get("recurrence"))


@dataclass
class _DeltaState:
    """What a $deltatoken stands for: a calendar view and the items (id -> version) the client then had."""

    email: str
    calendar_id: str
    path: str
    lo: datetime
    hi: datetime
    snapshot: dict[str, int]
    epoch: int


@dataclass
class _DeltaPage:
    """What a $skiptoken stands for: the rest of one round of changes."""

    state: _DeltaState  # the state the round ends in
    pending: list[tuple[str, bool]]  # (item id, removed)
    epoch: int


@dataclass
class _Subscription:
    id: str
    email: str
    client_id: str
    resource: str
    calendar_id: str
    change_types: list[str]
    notification_url: str
    lifecycle_url: str | None
    client_state: str | None
    expiration: datetime
    tls_version: str
    reauthorization_required: bool = False


@dataclass
class _Failure:
    remaining: int
    status: int
    retry_after: str | None
    code: str | None
    message: str | None
    path: str | None


# --------------------------------------------------------------------------------------------- helpers


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _graph_dt(moment: datetime) -> str:
    """Graph's dateTimeTimeZone form: wall time with seven fraction digits, no offset."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}0"


def _stamp(moment: datetime) -> str:
    """Graph's DateTimeOffset form for created/lastModified/expiration: UTC, seven fraction digits, Z."""
    return _graph_dt(moment.astimezone(UTC)) + "Z"


_ISO = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}:\d{2}(?::\d{2})?)(?:\.(\d+))?)?\s*(Z|[+-]\d{2}:?\d{2})?$", re.I)


def _parse_dt(value: Any, default_tz: tzinfo | None = UTC) -> datetime:
    """ISO 8601 with up to any number of fraction digits; no offset -> `default_tz` (None: naive)."""
    if not isinstance(value, str):
        raise ValueError(f"not a date-time: {value!r}")
    m = _ISO.match(value.strip())
    if not m:
        raise ValueError(f"not a date-time: {value!r}")
    day, clock, frac, offset = m.groups()
    clock = clock or "00:00:00"
    if len(clock) == 5:
        clock += ":00"
    text = f"{day}T{clock}"
    if frac:
        text += "." + (frac + "000000")[:6]
    if offset:
        text += "+00:00" if offset.upper() == "Z" else offset
        return datetime.fromisoformat(text)
    naive = datetime.fromisoformat(text)
    return naive if default_tz is None else naive.replace(tzinfo=default_tz)


def zone(name: str | None) -> tzinfo | None:
    """A tzinfo for a Windows ("W. Europe Standard Time") or IANA ("Europe/Berlin") zone name, or None."""
    if not name:
        return None
    if name in ("UTC", "Etc/UTC", "tzone://Microsoft/Utc"):
        return UTC
    olson = WINDOWS_TO_OLSON.get(name, name)
    if olson in ("UTC", "Etc/UTC"):
        return UTC
    try:
        return ZoneInfo(olson)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _scope_names(scopes: Iterable[str]) -> set[str]:
    """Graph permission names, lower case, with the resource prefix dropped."""
    out = set()
    for s in scopes:
        low = s.lower()
        if low.startswith(GRAPH_PREFIX):
            low = low[len(GRAPH_PREFIX) :]
        out.add(low)
    return out


def _etag_matches(header: str, etag: str) -> bool:
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == etag.removeprefix("W/"):
            return True
    return False


def _prefer(headers: Any) -> tuple[str | None, int | None]:
    """(outlook.timezone, odata.maxpagesize) from the Prefer header(s)."""
    values = headers.get_all("Prefer") if hasattr(headers, "get_all") else [headers.get("Prefer")]
    text = ", ".join(v for v in values or [] if v)
    tz = re.search(r'outlook\.timezone\s*=\s*"([^"]*)"', text, re.I)
    size = re.search(r"odata\.maxpagesize\s*=\s*(\d+)", text, re.I)
    return (tz.group(1) if tz else None), (int(size.group(1)) if size else None)


def _query_ci(query: dict[str, list[str]], name: str) -> str | None:
    """Graph's query option names are case-insensitive."""
    for key, values in query.items():
        if key.lower() == name.lower() and values:
            return values[0]
    return None


_MASTER_PREFIX = "AAMkAGQ"  # ids of single events and series masters
_OCC_PREFIX = "AAMkAGI"  # ids of occurrences/exceptions: the master id and the original start, encoded
_GOID = "040000008200E00074C5B7101A82E008"  # the class id every Outlook global object id starts with


def _has_offset(value: str) -> bool:
    m = _ISO.match(value.strip())
    return bool(m and m.group(4))


def _overlaps(start: datetime, end: datetime, lo: datetime, hi: datetime) -> bool:
    if start == end:
        return lo <= start < hi
    return start < hi and end > lo


def _clean_when(value: Any, key: str) -> dict[str, Any]:
    if not isinstance(value, dict) or not isinstance(value.get("dateTime"), str):
        raise _GraphError(400, "ErrorInvalidRequest", f"The '{key}' property must be a dateTimeTimeZone with a dateTime.")
    tzname = value.get("timeZone") or "UTC"
    if zone(tzname) is None:
        raise _GraphError(
            400,
            "TimeZoneNotSupportedException",
            f"A valid TimeZone value must be specified. The following TimeZone value is not supported: '{tzname}'.",
        )
    try:
        moment = _parse_dt(value["dateTime"], None)
    except ValueError:
        raise _GraphError(400, "ErrorInvalidRequest", f"The '{key}' dateTime '{value['dateTime']}' is not valid.") from None
    if moment.tzinfo is not None:  # an offset was given: Graph reads the instant and keeps the named zone
        moment = moment.astimezone(zone(tzname) or UTC).replace(tzinfo=None)
    return {"dateTime": _graph_dt(moment), "timeZone": tzname}


def _location(value: dict[str, Any]) -> dict[str, Any]:
    return {
        "displayName": value.get("displayName") or "",
        "locationType": value.get("locationType") or "default",
        "uniqueIdType": value.get("uniqueIdType") or "unknown",
        "address": value.get("address") or {},
        "coordinates": value.get("coordinates") or {},
        **{
            k: v
            for k, v in value.items()
            if k not in ("displayName", "locationType", "uniqueIdType", "address", "coordinates")
        },
    }


@dataclass
class _Req:
    """One authenticated Graph request, routed."""

    method: str
    path: str  # with /users/{me} rewritten to /me
    raw_path: str  # as sent, after /v1.0
    query: dict[str, list[str]]
    headers: Any
    body: bytes
    tok: _AccessToken
    groups: dict[str, str]

    @property
    def email(self) -> str:
        return self.tok.grant.email

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"null")
        except (ValueError, UnicodeDecodeError):
            raise _GraphError(
                400,
                "BadRequest",
                "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid "
                "JSON format.",
            ) from None


# --------------------------------------------------------------------------------------------- HTTP server


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "Microsoft-IIS/10.0"
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

    def __init__(self, fake: FakeMicrosoft, ssl_context: ssl.SSLContext) -> None:
        self.fake = fake
        self.ssl_context = ssl_context
        super().__init__(("127.0.0.1", 0), _Handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        # headers and body go out in two writes: without TCP_NODELAY, Nagle's algorithm and the
        # client's delayed ACK stall every keep-alive response by ~40 ms
        with contextlib.suppress(OSError):
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
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


class FakeMicrosoft:
    """Microsoft identity platform v2.0 + Graph calendars on https://127.0.0.1 (see the module docstring).

    Constructor options:
      delta_page_size: calendarView delta page size without `Prefer: odata.maxpagesize` (50).
      list_page_size: default page size of calendars, calendarView and instances (Graph: 10).
      access_token_lifetime: `expires_in` of access tokens, seconds (3599).
      code_lifetime: lifetime of authorization codes, seconds (Entra: about 10 minutes).
      retire_rotated_refresh_tokens: a refresh token stops working once it has been redeemed (True).
      latency: seconds every Graph request spends "in flight" (lets tests observe concurrency); settable later.
      mailbox_concurrency_limit: more concurrent Graph requests per mailbox than this -> 429 ApplicationThrottled
        (Graph's limit is 4; None = unlimited).
      max_subscription_minutes: the longest subscription lifetime accepted (4230).
      validation_timeout: seconds a subscriber has to echo a validationToken (Graph: 10).
      notification_timeout: seconds the fake waits for a subscriber to answer a notification.
      webhook_https_only: refuse http:// notification URLs as Graph does (False, so tests can use plain receivers).
      auto_notify: after every change to an event of a subscribed calendar, POST a change notification (from a
        background thread; see `deliveries` / `wait_for_deliveries`).
      clock: callable returning an aware datetime ("now"); defaults to the wall clock.
    """

    def __init__(
        self,
        *,
        delta_page_size: int = 50,
        list_page_size: int = 10,
        access_token_lifetime: int = 3599,
        code_lifetime: int = 600,
        retire_rotated_refresh_tokens: bool = True,
        latency: float = 0.0,
        mailbox_concurrency_limit: int | None = None,
        max_subscription_minutes: int = 4230,
        validation_timeout: float = 10.0,
        notification_timeout: float = 10.0,
        webhook_https_only: bool = False,
        auto_notify: bool = False,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.delta_page_size = delta_page_size
        self.list_page_size = list_page_size
        self.access_token_lifetime = access_token_lifetime
        self.code_lifetime = code_lifetime
        self.retire_rotated_refresh_tokens = retire_rotated_refresh_tokens
        self.latency = latency
        self.mailbox_concurrency_limit = mailbox_concurrency_limit
        self.max_subscription_minutes = max_subscription_minutes
        self.validation_timeout = validation_timeout
        self.notification_timeout = notification_timeout
        self.webhook_https_only = webhook_https_only
        self.auto_notify = auto_notify
        self._clock = clock or (lambda: datetime.now(UTC))
        self._lock = threading.RLock()

        self.default_tenant_id = str(uuid.uuid4())
        self._clients: dict[str, _Client] = {}
        self._accounts: dict[str, _Account] = {}  # key: lower-case email
        self._calendars: dict[str, _Calendar] = {}
        self._events: dict[str, _Event] = {}
        self._transactions: dict[tuple[str, str], str] = {}  # (email, transactionId) -> event id
        self._codes: dict[str, _Code] = {}
        self._refresh: dict[str, _RefreshToken] = {}
        self._access: dict[str, _AccessToken] = {}
        self._delta_tokens: dict[str, _DeltaState] = {}
        self._skip_tokens: dict[str, _DeltaPage] = {}
        self._delta_epoch = 0
        self._expired_codes: dict[int, str] = {}  # epoch -> the 410 code its tokens now get
        self._subscriptions: dict[str, _Subscription] = {}
        self._failures: list[_Failure] = []
        self._requests: list[RecordedRequest] = []
        self._deliveries: list[Delivery] = []
        self._inflight: dict[str, int] = {}
        self._max_inflight: dict[str, int] = {}
        self.errors: list[str] = []  # tracebacks of bugs inside the fake (answered as 500)
        self._seq = 0
        self._last_write: datetime | None = None
        self._current_user: str | None = None
        self._deny_next = False
        self._rsa_key: Any = None
        self._kid = _b64url(secrets.token_bytes(20))

        self._tls: TLS = make_tls()
        self._outbox: queue.Queue[tuple[str, str, str] | None] = queue.Queue()
        self._sender = threading.Thread(target=self._send_loop, name="fake-microsoft-push", daemon=True)
        self._sender.start()
        self._server = _Server(self, self._tls.server_context())
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-microsoft", daemon=True
        )
        self._thread.start()
        self._closed = False

    # ------------------------------------------------------------------ lifecycle and addresses

    def __enter__(self) -> FakeMicrosoft:
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
    def authority_host(self) -> str:
        """https://127.0.0.1:PORT, standing for https://login.microsoftonline.com."""
        return f"https://127.0.0.1:{self.port}"

    @property
    def authority(self) -> str:
        """The multi-tenant authority, `{authority_host}/common` (what msal's `authority=` takes)."""
        return self.authority_host + "/common"

    def authority_for(self, tenant: str) -> str:
        return f"{self.authority_host}/{tenant}"

    @property
    def graph_url(self) -> str:
        """Stands for https://graph.microsoft.com/v1.0."""
        return self.authority_host + "/v1.0"

    @property
    def cafile(self) -> str:
        """The test CA that signed the fake's certificate (httpx `verify=`, requests `session.verify`)."""
        return self._tls.cafile

    def token_url(self, tenant: str = "common") -> str:
        return f"{self.authority_host}/{tenant}/oauth2/v2.0/token"

    def authorize_url(self, tenant: str = "common") -> str:
        return f"{self.authority_host}/{tenant}/oauth2/v2.0/authorize"

    # ------------------------------------------------------------------ setup controls

    def add_client(self, client_id: str, client_secret: str, redirect_uris: Iterable[str]) -> None:
        """Register an app (a web app with a client secret and exact redirect URIs)."""
        with self._lock:
            self._clients[client_id] = _Client(client_id, client_secret, list(redirect_uris))

    def add_account(self, email: str, name: str | None = None, tenant_id: str | None = None) -> str:
        """Add a user (work account in `default_tenant_id` unless told; CONSUMERS_TENANT_ID = personal account).

        Creates the default calendar "Calendar" (canEdit true) and returns its id.
        """
        with self._lock:
            account = _Account(
                email, name or email.split("@")[0].title(), str(uuid.uuid4()), tenant_id or self.default_tenant_id
            )
            self._accounts[email.lower()] = account
            cid = self._add_calendar(account, "Calendar", True, is_default=True)
            account.default_calendar = cid
            if self._current_user is None:
                self._current_user = email.lower()
            return cid

    def add_calendar(
        self,
        email: str,
        name: str,
        can_edit: bool = True,
        *,
        owner_name: str | None = None,
        owner_address: str | None = None,
        color: str = "auto",
        hex_color: str = "",
    ) -> str:
        """Another calendar in the mailbox (can_edit=False: a calendar shared read-only by `owner_*`). Returns its id."""
        with self._lock:
            account = self._account(email)
            cid = self._add_calendar(account, name, can_edit, color=color, hex_color=hex_color)
            cal = self._calendars[cid]
            cal.owner_name = owner_name or cal.owner_name
            cal.owner_address = owner_address or cal.owner_address
            return cid

    def account_info(self, email: str) -> dict[str, str]:
        """{"oid", "tenant_id", "default_calendar", "name"} of an account."""
        with self._lock:
            a = self._account(email)
            return {"oid": a.oid, "tenant_id": a.tenant_id, "default_calendar": a.default_calendar, "name": a.name}

    def set_user(self, email: str) -> None:
        """The user signed in to the simulated browser (used when the authorize request has no login_hint)."""
        with self._lock:
            self._account(email)
            self._current_user = email.lower()

    def deny_next(self) -> None:
        """The next authorize request is declined by the user: error=access_denied (AADSTS65004)."""
        with self._lock:
            self._deny_next = True

    def revoke_grant(self, email: str, client_id: str | None = None) -> None:
        """Revoke the user's sessions (password reset, admin revoke): refresh -> invalid_grant AADSTS50173.

        Access tokens already issued keep working until they expire, as with Entra.
        """
        with self._lock:
            for grant in self._grants(email, client_id):
                grant.revoked = True

    def require_interaction(self, email: str, client_id: str | None = None) -> None:
        """A new policy (MFA) applies: refresh -> interaction_required AADSTS50076 until the user signs in again."""
        with self._lock:
            for grant in self._grants(email, client_id):
                grant.interaction_required = True

    def expire_access_tokens(self, email: str | None = None) -> None:
        """All (or this user's) access tokens expire: Graph answers 401 InvalidAuthenticationToken."""
        with self._lock:
            for tok in self._access.values():
                if email is None or tok.grant.email == email.lower():
                    tok.valid = False

    def issue_tokens(
        self, email: str, client_id: str, scopes: Iterable[str] = ("Calendars.ReadWrite", "User.Read", "offline_access")
    ) -> dict[str, Any]:
        """Tokens as if the user had just been through the auth code flow (for tests that skip OAuth)."""
        with self._lock:
            self._account(email)
            grant = _Grant(email.lower(), client_id, tuple(scopes), self._now())
            return self._token_response(grant, grant.scopes, nonce=None, client_info=True)

    def sign_in(self, auth_uri: str) -> str:
        """GET an authorize URL as the browser would and return the redirect's Location."""
        r = httpx.get(auth_uri, verify=self.cafile, follow_redirects=False, trust_env=False)
        if r.status_code != 302:
            raise AssertionError(f"authorize answered {r.status_code}: {r.text[:500]}")
        return r.headers["Location"]

    # ------------------------------------------------------------------ fault injection and logs

    def fail_next(
        self,
        n: int = 1,
        status: int = 429,
        retry_after: int | str | None = None,
        code: str | None = None,
        path_contains: str | None = None,
        *,
        message: str | None = None,
    ) -> None:
        """The next `n` Graph requests (or requests whose path contains `path_contains`) fail with `status`.

        Bodies follow Graph (429 TooManyRequests, 503 ServiceUnavailable, 504 GatewayTimeout, ...; `code` overrides,
        e.g. 410 with "SyncStateInvalid"); on the token endpoint they follow the identity platform
        (temporarily_unavailable). `retry_after=None` sends Graph's usual `Retry-After: 1` with 429 and 503;
        pass "" to send none.
        """
        with self._lock:
            ra = None if retry_after is None else str(retry_after)
            if ra is None and status in (429, 503):
                ra = "1"
            self._failures.append(_Failure(n, status, ra or None, code, message, path_contains))

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

    @property
    def max_concurrency_seen(self) -> dict[str, int]:
        """Per mailbox (lower-case email): the most Graph requests that were in flight at once."""
        with self._lock:
            return dict(self._max_inflight)

    def reset_concurrency(self) -> None:
        with self._lock:
            self._max_inflight.clear()

    # ================================================================== internals: small things

    def _now(self) -> datetime:
        return self._clock()

    def _bump(self) -> int:
        self._seq += 1
        return self._seq

    def _write_time(self) -> datetime:
        moment = self._now().astimezone(UTC)
        if self._last_write is not None and moment <= self._last_write:
            moment = self._last_write + timedelta(microseconds=1)
        self._last_write = moment
        return moment

    @staticmethod
    def _change_key() -> str:
        return base64.b64encode(b"\x0f\x00\x00\x00" + secrets.token_bytes(26)).decode()

    def _account(self, email: str) -> _Account:
        try:
            return self._accounts[email.lower()]
        except KeyError:
            raise KeyError(f"no account {email!r}") from None

    def _add_calendar(
        self,
        account: _Account,
        name: str,
        can_edit: bool,
        *,
        is_default: bool = False,
        color: str = "auto",
        hex_color: str = "",
    ) -> str:
        cid = "AAMkAD" + _b64url(secrets.token_bytes(30)) + "AAA="
        self._calendars[cid] = _Calendar(
            cid,
            account.email.lower(),
            name,
            can_edit,
            is_default,
            color,
            hex_color,
            account.name,
            account.email,
            self._change_key(),
        )
        return cid

    def _grants(self, email: str, client_id: str | None) -> list[_Grant]:
        grants = {id(t.grant): t.grant for t in self._refresh.values()}
        grants.update({id(t.grant): t.grant for t in self._access.values()})
        return [g for g in grants.values() if g.email == email.lower() and client_id in (None, g.client_id)]

    # ================================================================== internals: HTTP plumbing

    def _serve(self, h: _Handler) -> None:
        body = self._read_body(h)
        split = urlsplit(h.path)
        query = parse_qs(split.query, keep_blank_values=True)
        headers = {k: v for k, v in h.headers.items() if k.lower() != "authorization"}
        with self._lock:
            self._requests.append(RecordedRequest(h.command, split.path, query, headers, body))
        request_id = str(uuid.uuid4())
        client_request_id = h.headers.get("client-request-id") or request_id
        try:
            resp = self._dispatch(h.command, split.path, query, h.headers, body)
        except _GraphError as exc:
            resp = self._graph_error(exc, request_id, client_request_id)
        except _AadError as exc:
            resp = _json_response(
                exc.status,
                exc.body(self._now(), h.headers.get("client-request-id")),
                {"Cache-Control": "no-store, no-cache"},
            )
        except _AuthorizePageError as exc:
            page = f"<html><body><h1>Sign in</h1><p>AADSTS{exc.code}: {exc.message}</p></body></html>"
            resp = _Response(400, page.encode(), {"Content-Type": "text/html; charset=utf-8"})
        except Exception:
            with self._lock:
                self.errors.append(traceback.format_exc())
            resp = self._graph_error(
                _GraphError(500, "UnknownError", "An internal server error occurred."), request_id, client_request_id
            )
        if split.path.startswith("/v1.0"):
            resp.headers.setdefault("request-id", request_id)
            resp.headers.setdefault("client-request-id", client_request_id)
        try:
            h.send_response(resp.status)
            for key, value in resp.headers.items():
                h.send_header(key, value)
            if resp.status not in (204, 304):
                h.send_header("Content-Length", str(len(resp.body)))
            h.end_headers()
            if resp.body and resp.status not in (204, 304):
                h.wfile.write(resp.body)
            h.wfile.flush()
        except OSError:
            h.close_connection = True

    def _graph_error(self, exc: _GraphError, request_id: str, client_request_id: str) -> _Response:
        inner = {
            "date": self._now().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
            "request-id": request_id,
            "client-request-id": client_request_id,
        }
        headers = dict(exc.headers)
        if exc.status == 401:
            headers.setdefault(
                "WWW-Authenticate",
                f'Bearer realm="", authorization_uri="{self.authority_host}/common/oauth2/authorize", '
                f'client_id="{GRAPH_RESOURCE_ID}"',
            )
        return _json_response(
            exc.status, {"error": {"code": exc.code, "message": exc.message, "innerError": inner}}, headers
        )

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
                hit = (fail.path in path) if fail.path is not None else path.startswith("/v1.0")
                if hit:
                    fail.remaining -= 1
                    if fail.remaining <= 0:
                        self._failures.remove(fail)
                    break
            else:
                return None
        headers = {"Retry-After": fail.retry_after} if fail.retry_after else {}
        if not path.startswith("/v1.0"):
            error = (
                "temporarily_unavailable" if fail.status >= 500 or fail.status == 429 else (fail.code or "invalid_request")
            )
            exc = _AadError(fail.status, error, 50196 if fail.status == 429 else 90033, fail.message or "Try again later.")
            resp = _json_response(fail.status, exc.body(self._now(), None), headers)
            return resp
        code, message = _FAIL_DEFAULTS.get(fail.status, ("UnknownError", "Unknown error."))
        if fail.code:
            code = fail.code
            message = _SYNC_MESSAGES.get(code, message)
        raise _GraphError(fail.status, code, fail.message or message, headers)

    _IDENTITY = re.compile(
        r"^/(?P<tenant>[^/]+)/(?P<rest>v2\.0/\.well-known/openid-configuration|oauth2/v2\.0/authorize|oauth2/v2\.0/token|discovery/v2\.0/keys)$"
    )

    def _dispatch(self, method: str, path: str, query: dict[str, list[str]], headers: Any, body: bytes) -> _Response:
        injected = self._injected(path)
        if injected is not None:
            return injected
        if path.startswith("/v1.0/") or path == "/v1.0":
            return self._graph(method, path[len("/v1.0") :], query, headers, body)
        m = self._IDENTITY.match(path)
        if m:
            tenant, rest = m.group("tenant"), m.group("rest")
            if rest.endswith("openid-configuration") and method == "GET":
                return self._openid_configuration(tenant)
            if rest.endswith("keys") and method == "GET":
                self._tenant(tenant)
                with self._lock:
                    return _json_response(200, {"keys": [self._jwk()]})
            if rest.endswith("authorize") and method in ("GET", "POST"):
                params = query if method == "GET" else parse_qs(body.decode(), keep_blank_values=True)
                return self._authorize(tenant, {k: v[0] for k, v in params.items()})
            if rest.endswith("token") and method == "POST":
                return self._token(tenant, headers, body)
        if path == "/oidc/userinfo" and method in ("GET", "POST"):
            return self._userinfo(headers)
        return _json_response(404, {"error": "not_found", "error_description": f"No such endpoint: {method} {path}"})

    # ================================================================== identity platform

    def _tenant(self, tenant: str) -> tuple[str, str | None]:
        """(kind, tenant id) for a path segment: common / organizations / consumers / a known tenant id or domain."""
        low = tenant.lower()
        if low in ("common", "organizations"):
            return low, None
        if low == "consumers":
            return low, CONSUMERS_TENANT_ID
        with self._lock:
            known = {a.tenant_id.lower() for a in self._accounts.values()} | {self.default_tenant_id, CONSUMERS_TENANT_ID}
            if low in known:
                return "tenant", low
            for a in self._accounts.values():
                if "." in low and a.email.lower().endswith("@" + low):
                    return "tenant", a.tenant_id
        raise _AadError(
            400,
            "invalid_tenant",
            90002,
            f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into "
            "the correct cloud. Check with your subscription administrator, this may happen if there are no active "
            "subscriptions for the tenant.",
        )

    def _openid_configuration(self, tenant: str) -> _Response:
        kind, tid = self._tenant(tenant)
        base = f"{self.authority_host}/{tenant}"
        issuer_tid = tid or "{tenantid}"
        return _json_response(
            200,
            {
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
                "jwks_uri": f"{base}/discovery/v2.0/keys",
                "response_modes_supported": ["query", "fragment", "form_post"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "issuer": f"{self.authority_host}/{issuer_tid}/v2.0",
                "request_uri_parameter_supported": False,
                "userinfo_endpoint": f"{self.authority_host}/oidc/userinfo",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                "http_logout_supported": True,
                "frontchannel_logout_supported": True,
                "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
                "claims_supported": [
                    "sub",
                    "iss",
                    "cloud_instance_name",
                    "cloud_instance_host_name",
                    "cloud_graph_host_name",
                    "msgraph_host",
                    "aud",
                    "exp",
                    "iat",
                    "auth_time",
                    "acr",
                    "nonce",
                    "preferred_username",
                    "name",
                    "tid",
                    "ver",
                    "at_hash",
                    "c_hash",
                    "email",
                ],  # fmt: skip
                "kerberos_endpoint": f"{base}/kerberos",
                "tenant_region_scope": None if kind != "tenant" else "EU",
                "cloud_instance_name": "microsoftonline.com",
                "cloud_graph_host_name": "graph.windows.net",
                "msgraph_host": "graph.microsoft.com",
                "rbac_url": "https://pas.windows.net",
            },
        )

    def _authorize(self, tenant: str, p: dict[str, str]) -> _Response:
        kind, tid = self._tenant(tenant)
        with self._lock:
            client = self._clients.get(p.get("client_id", ""))
            if client is None:
                raise _AuthorizePageError(
                    700016,
                    f"Application with identifier '{p.get('client_id', '')}' was not found in the directory "
                    f"'{tenant}'. This can happen if the application has not been installed by the administrator of "
                    "the tenant or consented to by any user in the tenant.",
                )
            redirect = p.get("redirect_uri") or (client.redirect_uris[0] if len(client.redirect_uris) == 1 else "")
            if redirect not in client.redirect_uris:
                raise _AuthorizePageError(
                    50011,
                    f"The redirect URI '{redirect}' specified in the request does not match the redirect URIs "
                    f"configured for the application '{client.client_id}'. Make sure the redirect URI sent in the "
                    "request matches one added to your application in the Azure portal.",
                )
            mode = p.get("response_mode", "query")
            state = p.get("state")

            def reply(params: dict[str, str]) -> _Response:
                if state is not None:
                    params["state"] = state
                if mode == "form_post":
                    inputs = "".join(f'<input type="hidden" name="{k}" value="{v}"/>' for k, v in params.items())
                    form = f'<form method="POST" action="{redirect}">{inputs}</form>'
                    page = f'<html><body onload="document.forms[0].submit()">{form}</body></html>'
                    return _Response(200, page.encode(), {"Content-Type": "text/html; charset=utf-8"})
                sep = "#" if mode == "fragment" else ("&" if "?" in redirect else "?")
                return _Response(302, b"", {"Location": redirect + sep + urlencode(params), "Content-Length": "0"})

            def fail(error: str, code: int, description: str) -> _Response:
                return reply({"error": error, "error_description": f"AADSTS{code}: {description}"})

            if "code" not in p.get("response_type", "").split():
                return fail(
                    "unsupported_response_type",
                    700054,
                    "response_type 'id_token' is not enabled for the application." if p.get("response_type") else
                    "The request body must contain the following parameter: 'response_type'.",
                )  # fmt: skip
            scopes = p.get("scope", "").split()
            if not scopes:
                return fail("invalid_request", 900144, "The request body must contain the following parameter: 'scope'.")
            challenge = p.get("code_challenge")
            method = p.get("code_challenge_method", "plain" if challenge else "")
            if challenge and method not in ("S256", "plain"):
                return fail("invalid_request", 501491, f"Invalid code_challenge_method '{method}'.")
            hint = (p.get("login_hint") or "").lower()
            email = hint if hint in self._accounts else self._current_user
            if email is None:
                return fail("login_required", 50058, "A silent sign-in request was sent but no user is signed in.")
            account = self._accounts[email]
            if (
                (kind == "tenant" and tid != account.tenant_id)
                or (kind == "consumers" and account.tenant_id != CONSUMERS_TENANT_ID)
                or (kind == "organizations" and account.tenant_id == CONSUMERS_TENANT_ID)
            ):
                raise _AuthorizePageError(
                    50020,
                    f"User account '{account.email}' from identity provider 'live.com' does not exist in tenant "
                    f"'{tenant}' and cannot access the application '{client.client_id}' in that tenant.",
                )
            if self._deny_next:
                self._deny_next = False
                return reply(
                    {
                        "error": "access_denied",
                        "error_subcode": "cancel",
                        "error_description": "AADSTS65004: User declined to consent to access the app.",
                    }
                )
            if p.get("prompt") == "none" and any(g.interaction_required for g in self._grants(email, client.client_id)):
                return fail(
                    "interaction_required",
                    50076,
                    "Due to a configuration change made by your administrator, or because you moved to a new "
                    f"location, you must use multi-factor authentication to access '{GRAPH_RESOURCE_ID}'.",
                )
            code = "1.A" + _b64url(secrets.token_bytes(72))
            grant = _Grant(email, client.client_id, tuple(scopes), self._now())
            self._codes[code] = _Code(
                grant, redirect, p.get("nonce"), challenge, method, self._now() + timedelta(seconds=self.code_lifetime)
            )
            return reply({"code": code, "session_state": str(uuid.uuid4())})

    def _token(self, tenant: str, headers: Any, body: bytes) -> _Response:
        self._tenant(tenant)
        form = {k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
        client_id, secret = form.get("client_id"), form.get("client_secret")
        auth = headers.get("Authorization") or ""
        if auth.lower().startswith("basic "):
            try:
                user, _, pw = base64.b64decode(auth[6:].strip()).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                raise _AadError(401, "invalid_client", 7000215, "Invalid client secret provided.") from None
            client_id, secret = client_id or unquote(user), unquote(pw)
        with self._lock:
            grant_type = form.get("grant_type")
            if not grant_type:
                raise _AadError(
                    400, "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'."
                )
            if not client_id:
                raise _AadError(
                    400, "invalid_request", 900144, "The request body must contain the following parameter: 'client_id'."
                )
            client = self._clients.get(client_id)
            if client is None:
                raise _AadError(
                    400,
                    "unauthorized_client",
                    700016,
                    f"Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can "
                    "happen if the application has not been installed by the administrator of the tenant or consented "
                    "to by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
                )
            if not secret:
                raise _AadError(
                    401,
                    "invalid_client",
                    7000218,
                    "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
                )
            if not secrets.compare_digest(secret, client.secret):
                raise _AadError(
                    401,
                    "invalid_client",
                    7000215,
                    "Invalid client secret provided. Ensure the secret being sent in the request is the client secret "
                    f"value, not the client secret ID, for a secret added to app '{client_id}'.",
                )
            want_client_info = form.get("client_info") == "1"
            if grant_type == "authorization_code":
                return self._redeem_code(client, form, want_client_info)
            if grant_type == "refresh_token":
                return self._redeem_refresh(client, form, want_client_info)
            raise _AadError(
                400,
                "unsupported_grant_type",
                70003,
                f"The app requested an unsupported grant type '{grant_type}'.",
            )

    def _redeem_code(self, client: _Client, form: dict[str, str], client_info: bool) -> _Response:
        code = form.get("code")
        if not code:
            raise _AadError(400, "invalid_request", 900144, "The request body must contain the following parameter: 'code'.")
        rec = self._codes.get(code)
        if rec is None or rec.expires <= self._now() or rec.grant.client_id != client.client_id:
            raise _AadError(
                400,
                "invalid_grant",
                70008,
                "The provided authorization code or refresh token has expired due to inactivity. Send a new "
                "interactive authorization request for this user and resource.",
            )
        if rec.used:
            raise _AadError(
                400,
                "invalid_grant",
                54005,
                "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an "
                "existing refresh token.",
            )
        if form.get("redirect_uri") != rec.redirect_uri:
            raise _AadError(
                400,
                "invalid_grant",
                500112,
                "The reply address does not match the reply address that was used to obtain the authorization code.",
            )
        if rec.challenge:
            verifier = form.get("code_verifier")
            if not verifier:
                raise _AadError(
                    400, "invalid_request", 900144, "The request body must contain the following parameter: 'code_verifier'."
                )
            computed = _b64url(hashlib.sha256(verifier.encode()).digest()) if rec.method == "S256" else verifier
            if not secrets.compare_digest(computed, rec.challenge):
                raise _AadError(
                    400,
                    "invalid_grant",
                    501481,
                    "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
                )
        rec.used = True
        requested = form.get("scope", "").split()
        scopes = tuple(s for s in requested if s.lower() not in OIDC_SCOPES) or tuple(
            s for s in rec.grant.scopes if s.lower() not in OIDC_SCOPES
        )
        oidc = tuple(s for s in dict.fromkeys(list(rec.grant.scopes) + requested) if s.lower() in OIDC_SCOPES)
        rec.grant.scopes = tuple(dict.fromkeys(list(rec.grant.scopes) + list(scopes)))
        return _json_response(
            200,
            self._token_response(rec.grant, scopes + oidc, nonce=rec.nonce, client_info=client_info),
            {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"},
        )

    def _redeem_refresh(self, client: _Client, form: dict[str, str], client_info: bool) -> _Response:
        token = form.get("refresh_token")
        if not token:
            raise _AadError(
                400, "invalid_request", 900144, "The request body must contain the following parameter: 'refresh_token'."
            )
        rec = self._refresh.get(token)
        if rec is None or rec.grant.client_id != client.client_id:
            raise _AadError(400, "invalid_grant", 9002313, "Invalid request. Request is malformed or invalid.")
        grant = rec.grant
        if grant.revoked:
            raise _AadError(
                400,
                "invalid_grant",
                50173,
                "The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might "
                f"have changed or reset their password. The grant was issued on '{grant.issued:%Y-%m-%dT%H:%M:%S}Z' and "
                "the TokensValidFrom date (before which tokens are not valid) for this user is "
                f"'{self._now().astimezone(UTC):%Y-%m-%dT%H:%M:%S}Z'.",
            )
        if grant.interaction_required:
            raise _AadError(
                400,
                "interaction_required",
                50076,
                "Due to a configuration change made by your administrator, or because you moved to a new location, "
                f"you must use multi-factor authentication to access '{GRAPH_RESOURCE_ID}'.",
                suberror="basic_action",
            )
        if not rec.valid:
            raise _AadError(
                400,
                "invalid_grant",
                70008,
                "The provided authorization code or refresh token has expired due to inactivity. Send a new "
                "interactive authorization request for this user and resource.",
            )
        requested = form.get("scope", "").split()
        resource = tuple(s for s in requested if s.lower() not in OIDC_SCOPES)
        granted = _scope_names(s for s in grant.scopes if s.lower() not in OIDC_SCOPES)
        missing = [s for s in resource if _scope_names([s]) - granted]
        if missing:
            raise _AadError(
                400,
                "invalid_grant",
                65001,
                f"The user or administrator has not consented to use the application with ID '{client.client_id}'. "
                "Send an interactive authorization request for this user and resource.",
                suberror="consent_required",
            )
        scopes = resource or tuple(s for s in grant.scopes if s.lower() not in OIDC_SCOPES)
        oidc = tuple(s for s in dict.fromkeys(list(grant.scopes) + requested) if s.lower() in OIDC_SCOPES)
        if self.retire_rotated_refresh_tokens:
            rec.valid = False
        return _json_response(
            200,
            self._token_response(grant, scopes + oidc, nonce=None, client_info=client_info),
            {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"},
        )

    def _token_response(
        self, grant: _Grant, scopes: tuple[str, ...], *, nonce: str | None, client_info: bool
    ) -> dict[str, Any]:
        account = self._accounts[grant.email]
        now = self._now()
        access = self._access_token(grant, account, scopes, now)
        out: dict[str, Any] = {
            "token_type": "Bearer",
            "scope": " ".join(s for s in scopes if s.lower() != "offline_access"),
            "expires_in": self.access_token_lifetime,
            "ext_expires_in": self.access_token_lifetime,
            "access_token": access,
        }
        if any(s.lower() == "offline_access" for s in grant.scopes):
            refresh = "1.A" + _b64url(secrets.token_bytes(96))
            self._refresh[refresh] = _RefreshToken(grant)
            out["refresh_token"] = refresh
        if any(s.lower() == "openid" for s in grant.scopes):
            out["id_token"] = self._id_token(grant, account, nonce, now)
        if client_info:
            out["client_info"] = _b64url(json.dumps({"uid": account.oid, "utid": account.tenant_id}).encode())
        return out

    def _access_token(self, grant: _Grant, account: _Account, scopes: tuple[str, ...], now: datetime) -> str:
        expires = now + timedelta(seconds=self.access_token_lifetime)
        header = {"typ": "JWT", "nonce": _b64url(secrets.token_bytes(16)), "alg": "RS256", "kid": self._kid}
        claims = {
            "aud": GRAPH_RESOURCE_ID,
            "iss": f"https://sts.windows.net/{account.tenant_id}/",
            "iat": int(now.timestamp()),
            "exp": int(expires.timestamp()),
            "appid": grant.client_id,
            "name": account.name,
            "oid": account.oid,
            "scp": " ".join(sorted(s for s in _scope_names(scopes) if s not in OIDC_SCOPES)),
            "tid": account.tenant_id,
            "upn": account.email,
            "uti": _b64url(secrets.token_bytes(16)),
            "ver": "1.0",
        }
        token = ".".join(
            (_b64url(json.dumps(header).encode()), _b64url(json.dumps(claims).encode()), _b64url(secrets.token_bytes(64)))
        )
        self._access[token] = _AccessToken(grant, scopes, expires)
        return token

    def _rsa(self) -> Any:
        if self._rsa_key is None:
            from cryptography.hazmat.primitives.asymmetric import rsa

            self._rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return self._rsa_key

    def _jwk(self) -> dict[str, Any]:
        numbers = self._rsa().public_key().public_numbers()

        def enc(n: int) -> str:
            return _b64url(n.to_bytes((n.bit_length() + 7) // 8, "big"))

        return {
            "kty": "RSA",
            "use": "sig",
            "kid": self._kid,
            "x5t": self._kid,
            "n": enc(numbers.n),
            "e": enc(numbers.e),
            "issuer": f"{self.authority_host}/{{tenantid}}/v2.0",
        }

    def _id_token(self, grant: _Grant, account: _Account, nonce: str | None, now: datetime) -> str:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        iat = int(now.timestamp())
        claims: dict[str, Any] = {
            "aud": grant.client_id,
            "iss": f"{self.authority_host}/{account.tenant_id}/v2.0",
            "iat": iat,
            "nbf": iat,
            "exp": iat + 3600,
            "name": account.name,
            "oid": account.oid,
            "preferred_username": account.email,
            "rh": "0.A" + _b64url(secrets.token_bytes(24)),
            "sub": _b64url(hashlib.sha256(f"{grant.client_id}/{account.oid}".encode()).digest())[:43],
            "tid": account.tenant_id,
            "uti": _b64url(secrets.token_bytes(16)),
            "ver": "2.0",
        }
        if nonce is not None:
            claims["nonce"] = nonce
        if any(s.lower() == "email" for s in grant.scopes):
            claims["email"] = account.email
        header = {"typ": "JWT", "alg": "RS256", "kid": self._kid}
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        signature = self._rsa().sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64url(signature)}"

    def _userinfo(self, headers: Any) -> _Response:
        tok = self._authenticate(headers)
        with self._lock:
            account = self._accounts[tok.grant.email]
            sub = _b64url(hashlib.sha256(f"{tok.grant.client_id}/{account.oid}".encode()).digest())[:43]
            return _json_response(200, {"sub": sub, "name": account.name, "email": account.email})

    # ================================================================== Graph: auth and routing

    def _authenticate(self, headers: Any) -> _AccessToken:
        auth = headers.get("Authorization") or ""
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        if not token:
            raise _GraphError(401, "InvalidAuthenticationToken", "Access token is empty.")
        with self._lock:
            tok = self._access.get(token)
            if tok is None:
                if token.count(".") != 2:
                    raise _GraphError(
                        401, "InvalidAuthenticationToken", "IDX14100: JWT is not well formed, there are no dots (.)."
                    )
                raise _GraphError(401, "InvalidAuthenticationToken", "Access token validation failure. Invalid audience.")
            if not tok.valid or tok.expires <= self._now():
                raise _GraphError(401, "InvalidAuthenticationToken", "Lifetime validation failed, the token is expired.")
            return tok

    _ROUTES: tuple[tuple[str, str, str], ...] = (
        ("GET", r"/me", "_get_me"),
        ("GET", r"/me/calendars", "_list_calendars"),
        ("GET", r"/me/calendar", "_get_calendar"),
        ("GET", r"/me/calendars/(?P<cid>[^/]+)", "_get_calendar"),
        ("GET", r"/me/(?:calendars/(?P<cid>[^/]+)/|calendar/)?calendarview/(?:microsoft\.graph\.)?delta(?:\(\))?", "_delta"),
        ("GET", r"/me/(?:calendars/(?P<cid>[^/]+)/|calendar/)?calendarview", "_calendar_view"),
        ("GET", r"/me/(?:calendars/(?P<cid>[^/]+)/|calendar/)?events", "_list_events"),
        ("POST", r"/me/(?:calendars/(?P<cid>[^/]+)/|calendar/)?events", "_create_event"),
        ("GET", r"/me/(?:calendars/[^/]+/|calendar/)?events/(?P<eid>[^/]+)", "_get_event"),
        ("GET", r"/me/(?:calendars/[^/]+/|calendar/)?events/(?P<eid>[^/]+)/instances", "_list_instances"),
        ("PATCH", r"/me/(?:calendars/[^/]+/|calendar/)?events/(?P<eid>[^/]+)", "_patch_event"),
        ("DELETE", r"/me/(?:calendars/[^/]+/|calendar/)?events/(?P<eid>[^/]+)", "_delete_event"),
        ("POST", r"/subscriptions", "_create_subscription"),
        ("GET", r"/subscriptions", "_list_subscriptions"),
        ("GET", r"/subscriptions/(?P<sid>[^/]+)", "_get_subscription"),
        ("PATCH", r"/subscriptions/(?P<sid>[^/]+)", "_renew_subscription"),
        ("DELETE", r"/subscriptions/(?P<sid>[^/]+)", "_delete_subscription"),
        ("POST", r"/subscriptions/(?P<sid>[^/]+)/reauthorize", "_reauthorize_subscription"),
    )
    _COMPILED = tuple((m, re.compile("^" + p + "/?$", re.I), h) for m, p, h in _ROUTES)

    def _graph(self, method: str, path: str, query: dict[str, list[str]], headers: Any, body: bytes) -> _Response:
        tok = self._authenticate(headers)
        email = tok.grant.email
        raw_path = path
        m = re.match(r"^/users/([^/]+)(/.*)?$", path, re.I)
        if m:
            who = unquote(m.group(1)).lower()
            with self._lock:
                account = self._accounts[email]
                if who not in (email, account.oid.lower()):
                    raise _access_denied()
            path = "/me" + (m.group(2) or "")
        with self._lock:
            n = self._inflight.get(email, 0) + 1
            self._inflight[email] = n
            self._max_inflight[email] = max(n, self._max_inflight.get(email, 0))
        try:
            if self.mailbox_concurrency_limit is not None and n > self.mailbox_concurrency_limit:
                raise _GraphError(
                    429, "ApplicationThrottled", "Application is over its MailboxConcurrency limit.", {"Retry-After": "1"}
                )
            if self.latency > 0:
                time.sleep(self.latency)
            allowed = []
            for route_method, pattern, handler in self._COMPILED:
                hit = pattern.match(path)
                if hit:
                    if route_method == method:
                        groups = {k: unquote(v) for k, v in hit.groupdict().items() if v is not None}
                        req = _Req(method, path, raw_path, query, headers, body, tok, groups)
                        return getattr(self, handler)(req)
                    allowed.append(route_method)
            if allowed:
                raise _GraphError(405, "Request_BadRequest", "Specified HTTP method is not allowed for the request target.")
            segment = path.rstrip("/").rsplit("/", 1)[-1]
            raise _GraphError(400, "BadRequest", f"Resource not found for the segment '{segment}'.")
        finally:
            with self._lock:
                self._inflight[email] -= 1

    def _need(self, req: _Req, scopes: frozenset[str]) -> None:
        if not _scope_names(req.tok.scopes) & scopes:
            raise _access_denied()

    def _out_zone(self, headers: Any) -> tuple[str, tzinfo, dict[str, str]]:
        name, _ = _prefer(headers)
        z = zone(name) if name else None
        if name is None or z is None:
            return "UTC", UTC, {}
        return name, z, {"Preference-Applied": f'outlook.timezone="{name}"'}

    def _graph_json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> _Response:
        return _json_response(status, obj, headers, _GRAPH_JSON)

    def _context(self, req: _Req, what: str) -> str:
        account = self._accounts[req.email]
        return f"{self.graph_url}/$metadata#users('{account.oid}')/{what}"

    def _paged(self, req: _Req, items: list[Any], context: str, headers: dict[str, str] | None = None) -> _Response:
        _, pref_size = _prefer(req.headers)
        top, skip = _query_ci(req.query, "$top"), _query_ci(req.query, "$skip")
        try:
            size = int(top) if top else (pref_size or self.list_page_size)
            start = int(skip or 0)
        except ValueError:
            raise _GraphError(400, "BadRequest", "Invalid $top or $skip value.") from None
        if size < 1 or start < 0:
            raise _GraphError(400, "BadRequest", "Invalid $top or $skip value.")
        size = min(size, 1000)
        out: dict[str, Any] = {"@odata.context": context, "value": items[start : start + size]}
        if start + size < len(items):
            q = {k: v[0] for k, v in req.query.items() if k.lower() != "$skip"}
            q["$skip"] = str(start + size)
            out["@odata.nextLink"] = f"{self.graph_url}{req.raw_path}?{urlencode(q, safe='$:,')}"
        h = dict(headers or {})
        if pref_size and not top:
            h["Preference-Applied"] = ", ".join(
                filter(None, [h.get("Preference-Applied"), f"odata.maxpagesize={pref_size}"])
            )
        return self._graph_json(200, out, h)

    # ================================================================== Graph: user and calendars

    def _get_me(self, req: _Req) -> _Response:
        with self._lock:
            a = self._accounts[req.email]
            given, _, surname = a.name.partition(" ")
            return self._graph_json(
                200,
                {
                    "@odata.context": f"{self.graph_url}/$metadata#users/$entity",
                    "businessPhones": [],
                    "displayName": a.name,
                    "givenName": given or None,
                    "jobTitle": None,
                    "mail": a.email,
                    "mobilePhone": None,
                    "officeLocation": None,
                    "preferredLanguage": "en-US",
                    "surname": surname or None,
                    "userPrincipalName": a.email,
                    "id": a.oid,
                },
            )

    def _render_calendar(self, cal: _Calendar) -> dict[str, Any]:
        return {
            "id": cal.id,
            "name": cal.name,
            "color": cal.color,
            "hexColor": cal.hex_color,
            "groupClassId": "0006f0b7-0000-0000-c000-000000000046",
            "isDefaultCalendar": cal.is_default,
            "changeKey": cal.change_key,
            "canShare": cal.can_edit and cal.owner_address.lower() == cal.email,
            "canViewPrivateItems": cal.can_edit,
            "canEdit": cal.can_edit,
            "allowedOnlineMeetingProviders": ["teamsForBusiness"],
            "defaultOnlineMeetingProvider": "teamsForBusiness",
            "isTallyingResponses": True,
            "isRemovable": not cal.is_default,
            "owner": {"name": cal.owner_name, "address": cal.owner_address},
        }

    def _cal_for(self, req: _Req, cid: str | None) -> _Calendar:
        account = self._accounts[req.email]
        cal = self._calendars.get(cid or account.default_calendar)
        if cal is None or cal.email != req.email:
            raise _not_found()
        return cal

    def _list_calendars(self, req: _Req) -> _Response:
        self._need(req, CALENDAR_READ_SCOPES)
        with self._lock:
            cals = [self._render_calendar(c) for c in self._calendars.values() if c.email == req.email]
            return self._paged(req, cals, self._context(req, "calendars"))

    def _get_calendar(self, req: _Req) -> _Response:
        self._need(req, CALENDAR_READ_SCOPES)
        with self._lock:
            cal = self._cal_for(req, req.groups.get("cid"))
            out = {"@odata.context": self._context(req, "calendars/$entity"), **self._render_calendar(cal)}
            return self._graph_json(200, out)

    # ================================================================== Graph: events, reading

    def _when(self, value: dict[str, Any]) -> datetime:
        z = zone(value.get("timeZone") or "UTC") or UTC
        return (
            _parse_dt(value["dateTime"], None).replace(tzinfo=z)
            if not _has_offset(value["dateTime"])
            else _parse_dt(value["dateTime"]).astimezone(z)
        )

    def _series(self, ev: _Event) -> tuple[Any, tzinfo, timedelta]:
        rec = ev.data["recurrence"]
        pat, rng = rec["pattern"], rec["range"]
        sz = zone(rng.get("recurrenceTimeZone") or ev.data["start"]["timeZone"]) or UTC
        start = self._when(ev.data["start"]).astimezone(sz).replace(tzinfo=None)
        end = self._when(ev.data["end"]).astimezone(sz).replace(tzinfo=None)
        dtstart = datetime.combine(date.fromisoformat(rng["startDate"]), start.time())
        kw: dict[str, Any] = {"dtstart": dtstart, "interval": pat["interval"], "wkst": _DAYS.index(pat["firstDayOfWeek"])}
        days = [_DU_DAYS[_DAYS.index(d)] for d in pat["daysOfWeek"]]
        kind = pat["type"]
        if kind == "daily":
            freq = du_rrule.DAILY
        elif kind == "weekly":
            freq, kw["byweekday"] = du_rrule.WEEKLY, days
        elif kind == "absoluteMonthly":
            freq, kw["bymonthday"] = du_rrule.MONTHLY, pat["dayOfMonth"]
        elif kind == "relativeMonthly":
            freq, kw["byweekday"], kw["bysetpos"] = du_rrule.MONTHLY, days, _INDEX[pat["index"]]
        elif kind == "absoluteYearly":
            freq, kw["bymonth"], kw["bymonthday"] = du_rrule.YEARLY, pat["month"], pat["dayOfMonth"]
        else:
            freq, kw["bymonth"], kw["byweekday"] = du_rrule.YEARLY, pat["month"], days
            kw["bysetpos"] = _INDEX[pat["index"]]
        if rng["type"] == "numbered":
            kw["count"] = rng["numberOfOccurrences"]
        elif rng["type"] == "endDate":
            kw["until"] = datetime.combine(date.fromisoformat(rng["endDate"]), datetime.max.time())
        return du_rrule.rrule(freq, **kw), sz, end - start

    def _occurrences(self, ev: _Event, lo: datetime, hi: datetime) -> list[datetime]:
        """Original starts (UTC) of the series' regular occurrences overlapping [lo, hi)."""
        rule, sz, dur = self._series(ev)
        lo_n = lo.astimezone(sz).replace(tzinfo=None) - dur - timedelta(days=1)
        hi_n = hi.astimezone(sz).replace(tzinfo=None) + timedelta(days=1)
        out = []
        for naive in itertools.islice(rule.xafter(lo_n, inc=True), 20000):
            if naive > hi_n:
                break
            s, e = naive.replace(tzinfo=sz), (naive + dur).replace(tzinfo=sz)
            if _overlaps(s, e, lo, hi):
                out.append(s.astimezone(UTC))
        return out

    def _is_occurrence(self, ev: _Event, orig: datetime) -> bool:
        rule, sz, _ = self._series(ev)
        naive = orig.astimezone(sz).replace(tzinfo=None)
        return naive in rule.between(naive - timedelta(seconds=1), naive + timedelta(seconds=1), inc=True)

    def _span(self, ev: _Event, orig: datetime | None) -> tuple[datetime, datetime]:
        if orig is None:
            return self._when(ev.data["start"]), self._when(ev.data["end"])
        ov = ev.overrides.get(orig)
        if ov is not None and "start" in ov.fields:
            return self._when(ov.fields["start"]), self._when(ov.fields["end"])
        _, sz, dur = self._series(ev)
        s = orig.astimezone(sz)
        return s, (s.replace(tzinfo=None) + dur).replace(tzinfo=sz)

    @staticmethod
    def _occ_id(master_id: str, orig: datetime) -> str:
        return _OCC_PREFIX + _b64url(f"{master_id}|{orig.astimezone(UTC):%Y%m%dT%H%M%SZ}".encode())

    def _lookup(self, event_id: str, email: str | None) -> tuple[_Event, datetime | None]:
        """(event, None) for a single event or series master; (master, original start) for an occurrence."""
        ev = self._events.get(event_id)
        if ev is not None:
            if ev.deleted or (email is not None and ev.email != email):
                raise _not_found()
            return ev, None
        if not event_id.startswith("AAMk"):
            raise _GraphError(400, "ErrorInvalidIdMalformed", "Id is malformed.")
        if not event_id.startswith(_OCC_PREFIX):
            raise _not_found()
        try:
            raw = base64.urlsafe_b64decode(event_id[len(_OCC_PREFIX) :] + "=" * (-len(event_id[len(_OCC_PREFIX) :]) % 4))
            master_id, stamp = raw.decode().rsplit("|", 1)
            orig = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        except (ValueError, UnicodeDecodeError):
            raise _GraphError(400, "ErrorInvalidIdMalformed", "Id is malformed.") from None
        ev = self._events.get(master_id)
        if ev is None or ev.deleted or not ev.is_series or (email is not None and ev.email != email):
            raise _not_found()
        if orig in ev.cancelled or (orig not in ev.overrides and not self._is_occurrence(ev, orig)):
            raise _not_found()
        return ev, orig

    def _view(
        self, calendar_id: str, lo: datetime, hi: datetime
    ) -> dict[str, tuple[int, _Event, datetime | None, datetime]]:
        """The calendar view: item id -> (version, event, original start or None, start). No series masters."""
        items: dict[str, tuple[int, _Event, datetime | None, datetime]] = {}
        for ev in self._events.values():
            if ev.deleted or ev.calendar_id != calendar_id:
                continue
            if not ev.is_series:
                s, e = self._span(ev, None)
                if _overlaps(s, e, lo, hi):
                    items[ev.id] = (ev.seq, ev, None, s)
                continue
            for orig in self._occurrences(ev, lo, hi):
                if orig not in ev.overrides and orig not in ev.cancelled:
                    items[self._occ_id(ev.id, orig)] = (ev.seq, ev, orig, orig)
            for orig, ov in ev.overrides.items():
                if orig in ev.cancelled:
                    continue
                s, e = self._span(ev, orig)
                if _overlaps(s, e, lo, hi):
                    items[self._occ_id(ev.id, orig)] = (max(ev.seq, ov.seq), ev, orig, s)
        return dict(sorted(items.items(), key=lambda kv: (kv[1][3].astimezone(UTC), kv[0])))

    def _etag_of(self, ev: _Event, orig: datetime | None) -> str:
        ov = ev.overrides.get(orig) if orig is not None else None
        return f'W/"{ov.change_key if ov else ev.change_key}"'

    def _render(
        self, ev: _Event, out_name: str = "UTC", out_zone: tzinfo = UTC, orig: datetime | None = None
    ) -> dict[str, Any]:
        ov = ev.overrides.get(orig) if orig is not None else None
        d = dict(ev.data)
        if ov is not None:
            d.update(ov.fields)
        all_day = bool(d.get("isAllDay"))
        start, end = self._span(ev, orig)
        src_zone = zone(d["start"].get("timeZone")) or UTC

        def when(moment: datetime) -> dict[str, str]:
            local = moment.astimezone(src_zone) if all_day else moment.astimezone(out_zone)
            return {"dateTime": _graph_dt(local), "timeZone": out_name}

        if orig is None:
            kind, event_id, goid = (
                ("seriesMaster" if ev.is_series else "singleInstance"),
                ev.id,
                _GOID + "00000000" + ev.goid,
            )
        else:
            local = orig.astimezone(zone(ev.data["start"]["timeZone"]) or UTC)
            kind, event_id = ("exception" if ov is not None else "occurrence"), self._occ_id(ev.id, orig)
            goid = _GOID + f"{local.year:04X}{local.month:02X}{local.day:02X}" + ev.goid
        change_key = ov.change_key if ov is not None else ev.change_key
        cal = self._calendars[ev.calendar_id]
        body = d.get("body") or {"contentType": "html", "content": ""}
        preview = (
            re.sub(r"<[^>]*>", " ", body.get("content") or "")
            if body.get("contentType") == "html"
            else body.get("content") or ""
        )
        out: dict[str, Any] = {
            "@odata.etag": f'W/"{change_key}"',
            "id": event_id,
            "createdDateTime": _stamp(ev.created),
            "lastModifiedDateTime": _stamp(ov.modified if ov is not None else ev.modified),
            "changeKey": change_key,
            "categories": d.get("categories") or [],
            "transactionId": d.get("transactionId") if orig is None else None,
            "originalStartTimeZone": ev.data["start"].get("timeZone") or "UTC",
            "originalEndTimeZone": ev.data["end"].get("timeZone") or "UTC",
            "iCalUId": goid,
            "reminderMinutesBeforeStart": d.get("reminderMinutesBeforeStart", 15),
            "isReminderOn": d.get("isReminderOn", True),
            "hasAttachments": False,
            "subject": d.get("subject") or "",
            "bodyPreview": " ".join(preview.split())[:255],
            "importance": d.get("importance") or "normal",
            "sensitivity": d.get("sensitivity") or "normal",
            "isAllDay": all_day,
            "isCancelled": False,
            "isOrganizer": True,
            "responseRequested": d.get("responseRequested", True),
            "seriesMasterId": ev.id if orig is not None else None,
            "showAs": d.get("showAs") or "busy",
            "type": kind,
            "webLink": f"https://outlook.office365.com/owa/?itemid={quote(event_id, safe='')}&exvsurl=1&path=/calendar/item",
            "onlineMeetingUrl": None,
            "isOnlineMeeting": bool(d.get("isOnlineMeeting", False)),
            "onlineMeetingProvider": d.get("onlineMeetingProvider") or "unknown",
            "allowNewTimeProposals": d.get("allowNewTimeProposals", True),
            "isDraft": False,
            "hideAttendees": d.get("hideAttendees", False),
            "responseStatus": {"response": "organizer", "time": "0001-01-01T00:00:00Z"},
            "body": body,
            "start": when(start),
            "end": when(end),
            "location": d.get("location") or _location({}),
            "locations": d.get("locations") or [],
            "recurrence": ev.data["recurrence"] if orig is None and ev.is_series else None,
            "attendees": d.get("attendees") or [],
            "organizer": {"emailAddress": {"name": cal.owner_name, "address": cal.owner_address}},
            "onlineMeeting": None,
        }
        if orig is not None:
            out["originalStart"] = orig.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return out

    def _window(self, req: _Req) -> tuple[datetime, datetime]:
        lo, hi = _query_ci(req.query, "startDateTime"), _query_ci(req.query, "endDateTime")
        if not lo or not hi:
            raise _GraphError(
                400,
                "ErrorInvalidParameter",
                "This request requires a time window specified by the query string parameters StartDateTime and "
                "EndDateTime.",
            )
        try:
            start, end = _parse_dt(lo), _parse_dt(hi)
        except ValueError:
            raise _GraphError(
                400, "ErrorInvalidParameter", "The value of the parameter 'StartDateTime' or 'EndDateTime' is invalid."
            ) from None
        if end < start:
            raise _GraphError(
                400, "ErrorInvalidParameter", "The parameter 'EndDateTime' must be later than 'StartDateTime'."
            )
        return start, end

    def _list_events(self, req: _Req) -> _Response:
        self._need(req, CALENDAR_READ_SCOPES)
        name, z, headers = self._out_zone(req.headers)
        with self._lock:
            cal = self._cal_for(req, req.groups.get("cid"))
            evs = [self._render(ev, name, z) for ev in self._events.values() if ev.calendar_id == cal.id and not ev.deleted]
            return self._paged(req, evs, self._context(req, "events"), headers)

    def _calendar_view(self, req: _Req) -> _Response:
        self._need(req, CALENDAR_READ_SCOPES)
        name, z, headers = self._out_zone(req.headers)
        lo, hi = self._window(req)
        with self._lock:
            cal = self._cal_for(req, req.groups.get("cid"))
            items = [self._render(ev, name, z, orig) for _, ev, orig, _ in self._view(cal.id, lo, hi).values()]
            return self._paged(req, items, self._context(req, "calendarView"), headers)

    def _get_event(self, req: _Req) -> _Response:
        self._need(req, CALENDAR_READ_SCOPES)
        name, z, headers = self._out_zone(req.headers)
        with self._lock:
            ev, orig = self._lookup(req.groups["eid"], req.email)
            out = {"@odata.context": self._context(req, "events/$entity"), **self._render(ev, name, z, orig)}
            return self._graph_json(200, out, headers)

    def _list_instances(self, req: _Req) -> _Response:
        self._need(req, CALENDAR_READ_SCOPES)
        name, z, headers = self._out_zone(req.headers)
        lo, hi = self._window(req)
        with self._lock:
            ev, orig = self._lookup(req.groups["eid"], req.email)
            items = []
            if orig is None and ev.is_series:
                view = self._view(ev.calendar_id, lo, hi)
                items = [self._render(e, name, z, o) for _, e, o, _ in view.values() if e is ev]
            return self._paged(req, items, self._context(req, f"events('{ev.id}')/instances"), headers)

    # ================================================================== Graph: calendarView delta

    def _sync_error(self, epoch: int | None) -> _GraphError:
        code = self._expired_codes.get(epoch, "SyncStateNotFound") if epoch is not None else "SyncStateNotFound"
        return _GraphError(410, code, _SYNC_MESSAGES.get(code, _SYNC_MESSAGES["SyncStateNotFound"]))

    def expire_delta_tokens(self, code: str = "SyncStateNotFound") -> None:
        """Every delta and skip token issued so far is gone: using one -> 410 Gone with `code`
        ("SyncStateNotFound", "SyncStateInvalid" or "ResyncRequired")."""
        with self._lock:
            self._expired_codes[self._delta_epoch] = code
            self._delta_epoch += 1

    def _delta(self, req: _Req) -> _Response:
        self._need(req, CALENDAR_READ_SCOPES)
        name, z, headers = self._out_zone(req.headers)
        _, size = _prefer(req.headers)
        if size:
            headers["Preference-Applied"] = ", ".join(
                filter(None, [headers.get("Preference-Applied"), f"odata.maxpagesize={size}"])
            )
        size = size or self.delta_page_size
        skip, token = _query_ci(req.query, "$skiptoken"), _query_ci(req.query, "$deltatoken")
        with self._lock:
            if skip is not None:
                page = self._skip_tokens.get(skip)
                if page is None or page.state.email != req.email:
                    raise self._sync_error(None)
                if page.epoch != self._delta_epoch:
                    raise self._sync_error(page.epoch)
            elif token is not None:
                old = self._delta_tokens.get(token)
                if old is None or old.email != req.email:
                    raise self._sync_error(None)
                if old.epoch != self._delta_epoch:
                    raise self._sync_error(old.epoch)
                current = self._view(old.calendar_id, old.lo, old.hi)
                changed = [(i, False) for i, v in current.items() if old.snapshot.get(i) != v[0]]
                removed = [(i, True) for i in old.snapshot if i not in current]
                state = _DeltaState(
                    req.email,
                    old.calendar_id,
                    old.path,
                    old.lo,
                    old.hi,
                    {i: v[0] for i, v in current.items()},
                    self._delta_epoch,
                )
                page = _DeltaPage(state, changed + removed, self._delta_epoch)
            else:
                lo, hi = self._window(req)
                cal = self._cal_for(req, req.groups.get("cid"))
                current = self._view(cal.id, lo, hi)
                state = _DeltaState(
                    req.email, cal.id, req.raw_path, lo, hi, {i: v[0] for i, v in current.items()}, self._delta_epoch
                )
                page = _DeltaPage(state, [(i, False) for i in current], self._delta_epoch)
            chunk, rest = page.pending[:size], page.pending[size:]
            values = []
            for item_id, removed_item in chunk:
                rendered = None
                if not removed_item:
                    with contextlib.suppress(_GraphError):
                        ev, orig = self._lookup(item_id, req.email)
                        rendered = self._render(ev, name, z, orig)
                values.append(
                    rendered or {"@odata.type": "#microsoft.graph.event", "id": item_id, "@removed": {"reason": "deleted"}}
                )
            out: dict[str, Any] = {"@odata.context": f"{self.graph_url}/$metadata#Collection(event)", "value": values}
            link = self.graph_url + page.state.path
            if rest:
                tok = _b64url(secrets.token_bytes(36))
                self._skip_tokens[tok] = _DeltaPage(page.state, rest, page.epoch)
                out["@odata.nextLink"] = f"{link}?$skiptoken={tok}"
            else:
                tok = _b64url(secrets.token_bytes(36))
                self._delta_tokens[tok] = page.state
                out["@odata.deltaLink"] = f"{link}?$deltatoken={tok}"
            return self._graph_json(200, out, headers)

    # ================================================================== Graph: events, writing

    def _clean(self, payload: Any) -> dict[str, Any]:
        """The writable event fields of a request body, validated and normalised."""
        if not isinstance(payload, dict):
            raise _GraphError(400, "BadRequest", "Empty Payload. JSON content expected.")
        out: dict[str, Any] = {}
        for key, value in payload.items():
            if key in _READ_ONLY or key.startswith("@odata.") or key.startswith("@"):
                continue
            if key not in _WRITABLE:
                raise _GraphError(
                    400,
                    "RequestBodyRead",
                    f"The property '{key}' does not exist on type 'microsoft.graph.event'. Make sure to only use "
                    "property names that are defined by the type or mark the type as open type.",
                )
            out[key] = json.loads(json.dumps(value))
        for key in ("start", "end"):
            if key in out:
                out[key] = _clean_when(out[key], key)
        if "showAs" in out and out["showAs"] not in _SHOW_AS:
            raise _GraphError(
                400,
                "RequestBodyRead",
                f"Cannot convert the literal '{out['showAs']}' to the expected type 'microsoft.graph.freeBusyStatus'.",
            )
        if "body" in out:
            body = out["body"]
            if not isinstance(body, dict) or str(body.get("contentType", "text")).lower() not in ("text", "html"):
                raise _GraphError(
                    400, "RequestBodyRead", "Cannot convert the literal to the expected type 'microsoft.graph.bodyType'."
                )
            out["body"] = {"contentType": str(body.get("contentType", "text")).lower(), "content": body.get("content") or ""}
        if "location" in out:
            out["location"] = _location(out["location"] or {})
        if "reminderMinutesBeforeStart" in out and not isinstance(out["reminderMinutesBeforeStart"], int):
            raise _GraphError(400, "RequestBodyRead", "Cannot convert the literal to the expected type 'Edm.Int32'.")
        return out

    def _check_times(self, d: dict[str, Any]) -> None:
        if "start" not in d or "end" not in d:
            raise _invalid("Start and End are required.", "ErrorInvalidRequest")
        start, end = self._when(d["start"]), self._when(d["end"])
        if end < start:
            raise _GraphError(
                400, "ErrorCalendarEndDateIsEarlierThanStartDate", "The end date occurs before the start date."
            )
        if d.get("isAllDay"):
            s_local = _parse_dt(d["start"]["dateTime"], None)
            e_local = _parse_dt(d["end"]["dateTime"], None)
            if s_local.time() != datetime.min.time() or e_local.time() != datetime.min.time() or e_local <= s_local:
                raise _invalid(
                    "Your request can't be completed. If the event is an all-day event, start and end must be specified "
                    "as midnight (12:00:00 AM) and the event must last at least one day.",
                    "ErrorInvalidRequest",
                )

    def _insert(self, email: str, cal: _Calendar, fields: dict[str, Any]) -> _Event:
        data = {
            "subject": "",
            "body": {"contentType": "html", "content": ""},
            "isAllDay": False,
            "showAs": "busy",
            "isReminderOn": True,
            "reminderMinutesBeforeStart": 15,
            "location": _location({}),
            "locations": [],
            "attendees": [],
            "importance": "normal",
            "sensitivity": "normal",
            "categories": [],
            "transactionId": None,
            "recurrence": None,
            **fields,
        }
        self._check_times(data)
        if data.get("recurrence"):
            data["recurrence"] = self._norm_recurrence(data["recurrence"], data["start"])
        now = self._write_time()
        goid = (
            f"{int(now.timestamp() * 1e7) + 116444736000000000:016X}" + "0" * 16 + "10000000" + secrets.token_hex(16).upper()
        )
        ev = _Event(
            id=_MASTER_PREFIX + _b64url(secrets.token_bytes(66)) + "=",
            calendar_id=cal.id,
            email=email,
            data=data,
            created=now,
            modified=now,
            change_key=self._change_key(),
            seq=self._bump(),
            goid=goid,
        )
        self._events[ev.id] = ev
        if data.get("transactionId"):
            self._transactions[(email, data["transactionId"])] = ev.id
        self._changed(ev, "created")
        return ev

    def _update(self, ev: _Event, orig: datetime | None, fields: dict[str, Any]) -> None:
        now = self._write_time()
        if orig is None:
            merged = {**ev.data, **fields}
            self._check_times(merged)
            if merged.get("recurrence"):
                merged["recurrence"] = self._norm_recurrence(merged["recurrence"], merged["start"])
            if ev.is_series and any(k in fields for k in ("start", "end", "recurrence")):
                ev.overrides.clear()  # Outlook drops the exceptions when the series' time or pattern changes
                ev.cancelled.clear()
            ev.data = merged
            ev.change_key, ev.modified, ev.seq = self._change_key(), now, self._bump()
        else:
            if "recurrence" in fields:
                raise _invalid("The recurrence of an occurrence can't be changed.", "ErrorInvalidRequest")
            fields.pop("transactionId", None)
            ov = ev.overrides.get(orig)
            new = {**(ov.fields if ov else {}), **fields}
            if "start" in new or "end" in new:
                s, e = self._span(ev, orig)
                tzname = ev.data["start"].get("timeZone") or "UTC"
                sz = zone(tzname) or UTC
                new.setdefault("start", {"dateTime": _graph_dt(s.astimezone(sz)), "timeZone": tzname})
                new.setdefault("end", {"dateTime": _graph_dt(e.astimezone(sz)), "timeZone": tzname})
                self._check_times({**ev.data, **new})
            ev.overrides[orig] = _Override(new, self._change_key(), now, self._bump())
        self._changed(ev, "updated")

    def _remove(self, ev: _Event, orig: datetime | None) -> None:
        self._write_time()
        if orig is None:
            ev.deleted = True
            ev.seq = self._bump()
            self._changed(ev, "deleted")
        else:
            ev.overrides.pop(orig, None)
            ev.cancelled[orig] = self._bump()
            self._changed(ev, "updated")

    def _norm_recurrence(self, rec: Any, start: dict[str, Any]) -> dict[str, Any]:
        def bad(message: str) -> _GraphError:
            return _GraphError(400, "ErrorPropertyValidationFailure", message)

        if not isinstance(rec, dict) or not isinstance(rec.get("pattern"), dict) or not isinstance(rec.get("range"), dict):
            raise bad("A recurrence needs a pattern and a range.")
        pat, rng = rec["pattern"], rec["range"]
        kind = pat.get("type")
        if kind not in _PATTERNS:
            raise _GraphError(
                400,
                "RequestBodyRead",
                f"Cannot convert the literal '{kind}' to the expected type 'microsoft.graph.recurrencePatternType'.",
            )
        interval = pat.get("interval", 1)
        if not isinstance(interval, int) or interval < 1:
            raise bad("The recurrence pattern's interval must be a positive number.")
        days = [str(d).lower() for d in pat.get("daysOfWeek") or []]
        if any(d not in _DAYS for d in days):
            raise _GraphError(
                400, "RequestBodyRead", "Cannot convert the literal to the expected type 'microsoft.graph.dayOfWeek'."
            )
        first_day = str(pat.get("firstDayOfWeek") or "sunday").lower()
        index = str(pat.get("index") or "first")
        month, dom = int(pat.get("month") or 0), int(pat.get("dayOfMonth") or 0)
        if kind in ("weekly", "relativeMonthly", "relativeYearly") and not days:
            raise bad(f"DaysOfWeek is required for a {kind} recurrence pattern.")
        if kind in ("absoluteMonthly", "absoluteYearly") and not 1 <= dom <= 31:
            raise bad(f"DayOfMonth is required for a {kind} recurrence pattern.")
        if kind in ("absoluteYearly", "relativeYearly") and not 1 <= month <= 12:
            raise bad(f"Month is required for a {kind} recurrence pattern.")
        if index not in _INDEX or first_day not in _DAYS:
            raise bad("Invalid index or firstDayOfWeek.")
        rtype = rng.get("type")
        if rtype not in _RANGES:
            raise _GraphError(
                400,
                "RequestBodyRead",
                f"Cannot convert the literal '{rtype}' to the expected type 'microsoft.graph.recurrenceRangeType'.",
            )
        start_date = rng.get("startDate") or self._when(start).date().isoformat()
        try:
            date.fromisoformat(start_date)
            end_date = date.fromisoformat(rng["endDate"]).isoformat() if rtype == "endDate" else "0001-01-01"
        except (KeyError, TypeError, ValueError):
            raise bad("The recurrence range needs a valid startDate, and an endDate for type endDate.") from None
        count = int(rng.get("numberOfOccurrences") or 0)
        if rtype == "numbered" and count < 1:
            raise bad("numberOfOccurrences must be positive for a numbered recurrence range.")
        if rtype == "endDate" and end_date < start_date:
            raise bad("The recurrence range's endDate is before its startDate.")
        rtz = rng.get("recurrenceTimeZone") or start.get("timeZone") or "UTC"
        if zone(rtz) is None:
            raise _GraphError(
                400,
                "TimeZoneNotSupportedException",
                f"A valid TimeZone value must be specified. The following TimeZone value is not supported: '{rtz}'.",
            )
        return {
            "pattern": {
                "type": kind,
                "interval": interval,
                "month": month,
                "dayOfMonth": dom,
                "daysOfWeek": days,
                "firstDayOfWeek": first_day,
                "index": index,
            },
            "range": {
                "type": rtype,
                "startDate": start_date,
                "endDate": end_date,
                "recurrenceTimeZone": rtz,
                "numberOfOccurrences": count if rtype == "numbered" else 0,
            },
        }

    def _writable(self, ev: _Event) -> None:
        if not self._calendars[ev.calendar_id].can_edit:
            raise _access_denied()

    def _if_match(self, req: _Req, ev: _Event, orig: datetime | None) -> None:
        header = req.headers.get("If-Match")
        if header and not _etag_matches(header, self._etag_of(ev, orig)):
            raise _GraphError(412, "ErrorIrresolvableConflict", _CONFLICT_MESSAGE)

    def _create_event(self, req: _Req) -> _Response:
        self._need(req, CALENDAR_WRITE_SCOPES)
        name, z, headers = self._out_zone(req.headers)
        fields = self._clean(req.json())
        with self._lock:
            cal = self._cal_for(req, req.groups.get("cid"))
            if not cal.can_edit:
                raise _access_denied()
            txn = fields.get("transactionId")
            existing = self._events.get(self._transactions.get((req.email, txn), "")) if txn else None
            ev = existing if existing is not None and not existing.deleted else self._insert(req.email, cal, fields)
            out = {"@odata.context": self._context(req, "events/$entity"), **self._render(ev, name, z)}
            return self._graph_json(201, out, headers)

    def _patch_event(self, req: _Req) -> _Response:
        self._need(req, CALENDAR_WRITE_SCOPES)
        name, z, headers = self._out_zone(req.headers)
        fields = self._clean(req.json())
        with self._lock:
            ev, orig = self._lookup(req.groups["eid"], req.email)
            self._writable(ev)
            self._if_match(req, ev, orig)
            self._update(ev, orig, fields)
            out = {"@odata.context": self._context(req, "events/$entity"), **self._render(ev, name, z, orig)}
            return self._graph_json(200, out, headers)

    def _delete_event(self, req: _Req) -> _Response:
        self._need(req, CALENDAR_WRITE_SCOPES)
        with self._lock:
            ev, orig = self._lookup(req.groups["eid"], req.email)
            self._writable(ev)
            self._if_match(req, ev, orig)
            self._remove(ev, orig)
            return _Response(204)

    # ================================================================== user-side controls (edits made in Outlook)

    def _user_fields(self, fields: dict[str, Any]) -> dict[str, Any]:
        try:
            return self._clean(fields)
        except _GraphError as exc:
            raise ValueError(exc.message) from None

    def user_create(self, email: str, calendar_id: str | None = None, **fields: Any) -> str:
        """Create an event as the user would in Outlook (Graph field names: subject, start, end, recurrence, ...)."""
        clean = self._user_fields(fields)
        with self._lock:
            account = self._account(email)
            cal = self._calendars[calendar_id or account.default_calendar]
            try:
                return self._insert(account.email.lower(), cal, clean).id
            except _GraphError as exc:
                raise ValueError(exc.message) from None

    def user_update(self, event_id: str, **fields: Any) -> None:
        """Change an event, series master or occurrence (an occurrence becomes an exception)."""
        clean = self._user_fields(fields)
        with self._lock:
            ev, orig = self._lookup(event_id, None)
            try:
                self._update(ev, orig, clean)
            except _GraphError as exc:
                raise ValueError(exc.message) from None

    def user_delete(self, event_id: str) -> None:
        """Delete an event or a whole series (an occurrence id cancels that occurrence)."""
        with self._lock:
            ev, orig = self._lookup(event_id, None)
            self._remove(ev, orig)

    def occurrence_id(self, series_id: str, original_start: datetime | str | dict[str, Any]) -> str:
        """The Graph id of a series' occurrence; `original_start` as an aware datetime, a wall time in the series'
        start zone ("2027-01-06T09:00:00") or a dateTimeTimeZone dict."""
        with self._lock:
            ev = self._events[series_id]
            return self._occ_id(ev.id, self._original(ev, original_start))

    def user_cancel_occurrence(self, series_id: str, original_start: datetime | str | dict[str, Any]) -> str:
        """Delete one occurrence of a series; returns its id."""
        with self._lock:
            ev = self._events[series_id]
            orig = self._original(ev, original_start)
            self._remove(ev, orig)
            return self._occ_id(ev.id, orig)

    def user_move_occurrence(
        self,
        series_id: str,
        original_start: datetime | str | dict[str, Any],
        new_start: datetime | str | dict[str, Any],
        new_end: datetime | str | dict[str, Any],
    ) -> str:
        """Move one occurrence (it becomes an exception); times as for `occurrence_id`. Returns its id."""
        with self._lock:
            ev = self._events[series_id]
            orig = self._original(ev, original_start)
            tzname = ev.data["start"].get("timeZone") or "UTC"
            fields = {"start": self._as_when(new_start, tzname), "end": self._as_when(new_end, tzname)}
            try:
                self._update(ev, orig, self._clean(fields))
            except _GraphError as exc:
                raise ValueError(exc.message) from None
            return self._occ_id(ev.id, orig)

    def get_event(self, event_id: str, time_zone: str = "UTC") -> dict[str, Any]:
        """An event as Graph would return it (times in `time_zone`)."""
        with self._lock:
            ev, orig = self._lookup(event_id, None)
            return self._render(ev, time_zone, zone(time_zone) or UTC, orig)

    def stored_events(self, calendar_id: str) -> list[dict[str, Any]]:
        """Single events and series masters of a calendar, rendered in UTC."""
        with self._lock:
            return [self._render(ev) for ev in self._events.values() if ev.calendar_id == calendar_id and not ev.deleted]

    def _as_when(self, value: datetime | str | dict[str, Any], tzname: str) -> dict[str, Any]:
        if isinstance(value, dict):
            return value
        if isinstance(value, datetime):
            if value.tzinfo is None:
                return {"dateTime": _graph_dt(value), "timeZone": tzname}
            return {"dateTime": _graph_dt(value.astimezone(zone(tzname) or UTC)), "timeZone": tzname}
        return {"dateTime": value, "timeZone": tzname}

    def _original(self, ev: _Event, value: datetime | str | dict[str, Any]) -> datetime:
        if not ev.is_series:
            raise ValueError(f"{ev.id} is not a series master")
        orig = self._when(self._as_when(value, ev.data["start"].get("timeZone") or "UTC")).astimezone(UTC)
        if orig not in ev.overrides and not self._is_occurrence(ev, orig):
            raise ValueError(f"the series has no occurrence starting at {value}")
        return orig

    # ================================================================== Graph: subscriptions (webhooks)

    _EVENTS_RESOURCE = re.compile(
        r"^/?me/(?:calendars/(?P<cid>[^/]+)/|calendars\('(?P<qcid>[^']+)'\)/|calendar/)?events/?$", re.I
    )

    def _subscription_calendar(self, req: _Req, resource: str) -> str:
        res = resource.strip()
        m = re.match(r"^/?users/([^/]+)(/.*)$", res, re.I)
        if m:
            if unquote(m.group(1)).lower() not in (req.email, self._accounts[req.email].oid.lower()):
                raise _access_denied()
            res = "me" + m.group(2)
        hit = self._EVENTS_RESOURCE.match(res)
        if not hit:
            raise _GraphError(400, "InvalidRequest", f"The resource '{resource}' is not supported for change notifications.")
        cid = hit.group("cid") or hit.group("qcid")
        return self._cal_for(req, unquote(cid) if cid else None).id

    def _expiration(self, value: Any) -> datetime:
        try:
            moment = _parse_dt(value)
        except ValueError:
            raise _GraphError(400, "InvalidRequest", f"Invalid expirationDateTime '{value}'.") from None
        now = self._now()
        if moment <= now:
            raise _GraphError(400, "InvalidRequest", "Subscription expiration can only be in the future.")
        if moment > now + timedelta(minutes=self.max_subscription_minutes):
            raise _GraphError(
                400,
                "InvalidRequest",
                f"Subscription expiration can only be {self.max_subscription_minutes} minutes in the future.",
            )
        return moment

    def _render_subscription(self, sub: _Subscription) -> dict[str, Any]:
        return {
            "id": sub.id,
            "resource": sub.resource,
            "applicationId": sub.client_id,
            "changeType": ",".join(sub.change_types),
            "clientState": sub.client_state,
            "notificationUrl": sub.notification_url,
            "notificationQueryOptions": None,
            "lifecycleNotificationUrl": sub.lifecycle_url,
            "expirationDateTime": _stamp(sub.expiration),
            "creatorId": self._accounts[sub.email].oid,
            "includeResourceData": False,
            "latestSupportedTlsVersion": sub.tls_version,
            "encryptionCertificate": None,
            "encryptionCertificateId": None,
            "notificationUrlAppId": None,
        }

    def _purge_subscriptions(self) -> None:
        now = self._now()
        for sid in [s.id for s in self._subscriptions.values() if s.expiration <= now]:
            del self._subscriptions[sid]

    def _sub_for(self, req: _Req, sid: str) -> _Subscription:
        self._purge_subscriptions()
        sub = self._subscriptions.get(sid)
        if sub is None or sub.email != req.email or sub.client_id != req.tok.grant.client_id:
            raise _GraphError(404, "ResourceNotFound", "The object was not found.")
        return sub

    def _check_url(self, value: Any, name: str) -> str:
        if not isinstance(value, str) or not value:
            raise _GraphError(400, "InvalidRequest", f"The {name} is required.")
        scheme = urlsplit(value).scheme.lower()
        if scheme not in ("https", "http") or (scheme == "http" and self.webhook_https_only):
            raise _GraphError(400, "InvalidRequest", f"Invalid {name}: '{value}'. The URL must use the https scheme.")
        return value

    def _create_subscription(self, req: _Req) -> _Response:
        self._need(req, CALENDAR_READ_SCOPES)
        p = req.json()
        if not isinstance(p, dict):
            raise _GraphError(400, "BadRequest", "Empty Payload. JSON content expected.")
        change = p.get("changeType")
        types = [t.strip() for t in change.split(",")] if isinstance(change, str) and change.strip() else []
        if not types or any(t not in ("created", "updated", "deleted") for t in types):
            raise _GraphError(
                400, "InvalidRequest", f"Invalid changeType '{change}'. Valid values: created, updated, deleted."
            )
        url = self._check_url(p.get("notificationUrl"), "notificationUrl")
        lifecycle = (
            self._check_url(p["lifecycleNotificationUrl"], "lifecycleNotificationUrl")
            if p.get("lifecycleNotificationUrl")
            else None
        )
        if not isinstance(p.get("resource"), str) or not p["resource"]:
            raise _GraphError(400, "InvalidRequest", "The resource is required.")
        client_state = p.get("clientState")
        if client_state is not None and (not isinstance(client_state, str) or len(client_state) > 128):
            raise _GraphError(400, "InvalidRequest", "clientState must be a string of at most 128 characters.")
        with self._lock:
            cid = self._subscription_calendar(req, p["resource"])
            expiration = self._expiration(p.get("expirationDateTime"))
        sid = str(uuid.uuid4())
        for endpoint in [url] + ([lifecycle] if lifecycle else []):  # the handshake: outside the lock, like Graph
            problem = self._validate_endpoint(sid, endpoint)
            if problem:
                raise _GraphError(400, "ValidationError", problem)
        with self._lock:
            sub = _Subscription(
                sid,
                req.email,
                req.tok.grant.client_id,
                p["resource"],
                cid,
                types,
                url,
                lifecycle,
                client_state,
                expiration,
                p.get("latestSupportedTlsVersion") or "v1_2",
            )
            self._subscriptions[sid] = sub
            out = {"@odata.context": f"{self.graph_url}/$metadata#subscriptions/$entity", **self._render_subscription(sub)}
            return self._graph_json(201, out)

    def _list_subscriptions(self, req: _Req) -> _Response:
        with self._lock:
            self._purge_subscriptions()
            subs = [
                self._render_subscription(s)
                for s in self._subscriptions.values()
                if s.email == req.email and s.client_id == req.tok.grant.client_id
            ]
            return self._graph_json(200, {"@odata.context": f"{self.graph_url}/$metadata#subscriptions", "value": subs})

    def _get_subscription(self, req: _Req) -> _Response:
        with self._lock:
            sub = self._sub_for(req, req.groups["sid"])
            return self._graph_json(
                200,
                {"@odata.context": f"{self.graph_url}/$metadata#subscriptions/$entity", **self._render_subscription(sub)},
            )

    def _renew_subscription(self, req: _Req) -> _Response:
        p = req.json()
        with self._lock:
            sub = self._sub_for(req, req.groups["sid"])
            if not isinstance(p, dict) or "expirationDateTime" not in p:
                raise _GraphError(400, "InvalidRequest", "Only expirationDateTime can be updated.")
            sub.expiration = self._expiration(p["expirationDateTime"])
            sub.reauthorization_required = False
            return self._graph_json(
                200,
                {"@odata.context": f"{self.graph_url}/$metadata#subscriptions/$entity", **self._render_subscription(sub)},
            )

    def _delete_subscription(self, req: _Req) -> _Response:
        with self._lock:
            sub = self._sub_for(req, req.groups["sid"])
            del self._subscriptions[sub.id]
            return _Response(204)

    def _reauthorize_subscription(self, req: _Req) -> _Response:
        with self._lock:
            self._sub_for(req, req.groups["sid"]).reauthorization_required = False
            return _Response(204)

    # ------------------------------------------------------------------ outgoing POSTs to subscribers

    def _post(self, sid: str, kind: str, url: str, body: Any, *, timeout: float) -> httpx.Response | None:
        started = time.monotonic()
        status, error, resp = None, None, None
        try:
            with httpx.Client(verify=self.cafile, trust_env=False, timeout=timeout) as client:
                if kind == "validation":
                    resp = client.post(url, content=b"", headers={"Content-Type": "text/plain; charset=utf-8"})
                else:
                    resp = client.post(
                        url, content=json.dumps(body).encode(), headers={"Content-Type": "application/json; charset=utf-8"}
                    )
                status = resp.status_code
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        with self._lock:
            self._deliveries.append(Delivery(sid, kind, url, body, status, time.monotonic() - started, error))
        return resp

    def _validate_endpoint(self, sid: str, url: str) -> str | None:
        token = f"Validation: Testing client application reachability for subscription Request-Id: {uuid.uuid4()}"
        full = url + ("&" if "?" in url else "?") + "validationToken=" + quote(token, safe="")
        started = time.monotonic()
        resp = self._post(sid, "validation", full, None, timeout=self.validation_timeout)
        if resp is None or resp.status_code != 200 or time.monotonic() - started > self.validation_timeout:
            return _VALIDATION_FAILED
        if not resp.headers.get("content-type", "").lower().startswith("text/plain"):
            return "Subscription validation request failed. Response must be of Content-Type text/plain."
        if resp.text != token:
            return "Subscription validation request failed. Response must exactly match validationToken query parameter."
        return None

    @property
    def subscriptions(self) -> list[dict[str, Any]]:
        """Live subscriptions as Graph renders them (plus "reauthorizationRequired", "email", "calendarId")."""
        with self._lock:
            self._purge_subscriptions()
            return [
                {
                    **self._render_subscription(s),
                    "reauthorizationRequired": s.reauthorization_required,
                    "email": s.email,
                    "calendarId": s.calendar_id,
                }
                for s in self._subscriptions.values()
            ]

    @property
    def deliveries(self) -> list[Delivery]:
        with self._lock:
            return list(self._deliveries)

    def wait_for_deliveries(self, count: int, kind: str = "notification", timeout: float = 5.0) -> list[Delivery]:
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                found = [d for d in self._deliveries if d.kind == kind]
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.02)

    def notify(self, subscription_id: str, change_type: str, event_id: str) -> tuple[int | None, float]:
        """POST a change notification for `event_id` to the subscription's notificationUrl, now.

        Returns (HTTP status or None when the subscriber could not be reached, seconds the subscriber took).
        """
        with self._lock:
            sub = self._subscriptions[subscription_id]
            account = self._accounts[sub.email]
            resource = f"Users/{account.oid}/Events/{event_id}"
            data: dict[str, Any] = {"@odata.type": "#Microsoft.Graph.Event", "@odata.id": resource}
            if change_type != "deleted":
                with contextlib.suppress(_GraphError, KeyError):
                    data["@odata.etag"] = self._etag_of(*self._lookup(event_id, None))
            data["id"] = event_id
            item: dict[str, Any] = {
                "subscriptionId": sub.id,
                "subscriptionExpirationDateTime": _stamp(sub.expiration),
                "changeType": change_type,
                "resource": resource,
                "resourceData": data,
            }
            if sub.client_state is not None:
                item["clientState"] = sub.client_state
            item["tenantId"] = account.tenant_id
            url = sub.notification_url
        started = time.monotonic()
        resp = self._post(sub.id, "notification", url, {"value": [item]}, timeout=self.notification_timeout)
        return (resp.status_code if resp is not None else None), time.monotonic() - started

    def lifecycle(self, subscription_id: str, event: str) -> tuple[int | None, float]:
        """POST a lifecycle notification (reauthorizationRequired | missed | subscriptionRemoved) to the
        subscription's lifecycleNotificationUrl. subscriptionRemoved also ends the subscription."""
        if event not in ("reauthorizationRequired", "missed", "subscriptionRemoved"):
            raise ValueError(f"unknown lifecycle event {event!r}")
        with self._lock:
            sub = self._subscriptions[subscription_id]
            if not sub.lifecycle_url:
                raise ValueError("the subscription has no lifecycleNotificationUrl")
            account = self._accounts[sub.email]
            item: dict[str, Any] = {
                "subscriptionId": sub.id,
                "subscriptionExpirationDateTime": _stamp(sub.expiration),
                "tenantId": account.tenant_id,
                "clientState": sub.client_state,
                "lifecycleEvent": event,
            }
            if event == "reauthorizationRequired":
                sub.reauthorization_required = True
            elif event == "subscriptionRemoved":
                del self._subscriptions[sub.id]
            url = sub.lifecycle_url
        started = time.monotonic()
        resp = self._post(sub.id, "lifecycle", url, {"value": [item]}, timeout=self.notification_timeout)
        return (resp.status_code if resp is not None else None), time.monotonic() - started

    def _changed(self, ev: _Event, change_type: str) -> None:
        if not self.auto_notify:
            return
        now = self._now()
        for sub in self._subscriptions.values():
            if sub.calendar_id == ev.calendar_id and change_type in sub.change_types and sub.expiration > now:
                self._outbox.put((sub.id, change_type, ev.id))

    def _send_loop(self) -> None:
        while True:
            item = self._outbox.get()
            if item is None:
                return
            try:
                with self._lock:
                    live = item[0] in self._subscriptions
                if live:
                    self.notify(*item)
            except Exception:
                with self._lock:
                    self.errors.append(traceback.format_exc())

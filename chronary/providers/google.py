"""Google Calendar provider: OAuth 2.0 (authorization code + PKCE) and Calendar API v3.

Sign-in goes through google-auth-oauthlib's `Flow` (PKCE S256, offline access, consent, granted
scopes included); the code verifier waits server-side in `AuthStart.pending`. Tokens are kept as
our own fields (`access_token`, `refresh_token`, `expiry` ISO UTC, `scope`, `token_type`) and
turned into `google.oauth2.credentials.Credentials` with the configured token URL only to refresh
(STACK-NOTES: `from_authorized_user_info` would reset the token URL). A token is refreshed when
less than five minutes are left (by the injected clock) and once after a 401; a grant Google no
longer accepts (`invalid_grant`) is `AuthFailed(reauthorize=True)`. `refreshes` counts refreshes
and `refreshed_secrets()` holds the new set (the refresh token kept unless Google sent a new one).
Token endpoint calls use `requests` (what google-auth and oauthlib speak) with environment
proxies off and the same trust store as every other outbound call, after `check_target`.

The Calendar API is called with plain httpx through `chronary.providers.http.ApiClient`: one
request budget per account, retries of 429/5xx/403 rateLimitExceeded with backoff, network
errors as Unreachable. Reading and writing events is `google_events` (one VEVENT codec for
every source). Listing: `events.list` with `singleEvents=false&showDeleted=true`, every page
inside one call, `syncToken` for increments (410 Gone → CursorExpired). A series touched by an
increment is fetched whole (`events.list?iCalUID=…`), because the merge treats a RemoteEvent as
the whole series. Writes: insert with an id derived from Chronary's event id (a retried insert
answers 409 and becomes an update), PATCH with If-Match of only the changed fields, instances
patched by their own ids; the answer is built as a listing would build it, so our own write is
never mistaken for a remote change. Push: `events.watch` channels (web_hook), renewed by
subscribing anew and stopping the old channel; notifications carry our token back.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import httpx
import requests
from google.auth import exceptions as google_auth_errors
from google.auth.transport.requests import Request as GoogleRequest
from google.oauth2.credentials import Credentials
from google_auth_oauthlib.flow import Flow

from chronary.clock import Clock
from chronary.ical.model import EventData, Outgoing
from chronary.outbound import BlockedTarget, OutboundError, check_target
from chronary.providers import google_events as ge
from chronary.providers.base import (
    Account,
    AuthFailed,
    AuthStart,
    Changes,
    CursorExpired,
    Notification,
    PreconditionFailed,
    ProviderError,
    PushChannel,
    RemoteCalendar,
    RemoteEvent,
    Unreachable,
    Window,
    unset,
)
from chronary.providers.base import Provider as BaseProvider
from chronary.providers.http import ApiClient, account_key, budget_for, requests_verify

log = logging.getLogger("chronary.providers.google")

SCOPE = "https://www.googleapis.com/auth/calendar"
REFRESH_AHEAD = timedelta(minutes=5)
PAGE_SIZE = "2500"  # events.list maximum
CALENDAR_PAGE_SIZE = "250"  # calendarList.list maximum
MAX_PAGES = 2000
CHANNEL_TTL = "604800"  # seconds (7 days, Google's maximum for events)
RATE_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded"})
SCOPE_REASONS = frozenset({"insufficientPermissions", "ACCESS_TOKEN_SCOPE_INSUFFICIENT", "insufficientScopes"})
WRITE_PARAMS = {"sendUpdates": "none"}  # Chronary's writes never email the attendees
_SAFE_CODE = re.compile(r"[^A-Za-z0-9_.\-]")


def _code(value: Any, limit: int = 60) -> str:
    """An error code from a remote body, cut to a short token that is safe in a reason."""
    return _SAFE_CODE.sub("", str(value or ""))[:limit]


def oauth_error(exc: BaseException) -> str | None:
    """The OAuth error code of an oauthlib OAuth2Error (`invalid_grant`, …), else None; read by
    duck typing so the untyped oauthlib package need not be imported."""
    code = getattr(exc, "error", None)
    if type(exc).__module__.startswith("oauthlib.") and isinstance(code, str):
        return _code(code) or "token_error"
    return None


def error_reason(resp: httpx.Response) -> str | None:
    """Google's error reason (`rateLimitExceeded`, `conditionNotMet`, …) of an API error answer."""
    try:
        body = resp.json()
    except ValueError:
        return None
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict):
        errors = err.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict) and errors[0].get("reason"):
            return _code(errors[0]["reason"])
        if err.get("status"):
            return _code(err["status"])
    elif isinstance(err, str):
        return _code(err)
    return None


def rate_limited(resp: httpx.Response) -> bool:
    """Google's "slow down" that is not a 429: 403 with a rate-limit reason."""
    return resp.status_code == 403 and error_reason(resp) in RATE_REASONS


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _parse_expiry(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _requests_session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # no environment proxies: the guard must see the real destination
    session.verify = requests_verify()
    return session


def _client_config(settings: Any, redirect_uri: str) -> dict[str, Any]:
    return {
        "web": {
            "client_id": settings.google_client_id,
            "client_secret": settings.google_client_secret,
            "auth_uri": settings.google_auth_url,
            "token_uri": settings.google_token_url,
            "redirect_uris": [redirect_uri],
        }
    }


def _flow(settings: Any, scopes: list[str], redirect_uri: str, code_verifier: str | None = None) -> Flow:
    flow = Flow.from_client_config(
        _client_config(settings, redirect_uri),
        scopes=scopes,
        redirect_uri=redirect_uri,
        code_verifier=code_verifier,
        autogenerate_code_verifier=code_verifier is None,
    )
    flow.oauth2session.trust_env = False
    return flow


async def _guard(url: str, settings: Any, what: str) -> None:
    try:
        await asyncio.to_thread(check_target, url, settings)
    except BlockedTarget as exc:
        raise ProviderError(f"{what}: {exc.reason}", retryable=False) from None
    except OutboundError as exc:
        raise Unreachable(f"{what}: {exc.reason}") from None


class Provider(BaseProvider):
    name = "google"
    supports_oauth = True
    supports_push = True

    def __init__(self, account: Account, settings: Any, clock: Clock | None = None) -> None:
        super().__init__(account, settings, clock)
        self.refreshes = 0  # token refreshes made by this object (telemetry, read by the engine)
        self.refresh_failures = 0
        self._secrets: dict[str, str] = dict(account.secrets)
        self._fresh: dict[str, str] | None = None
        self._token_lock = asyncio.Lock()
        self._listed: list[dict[str, Any]] | None = None  # the calendarList login() just read
        self.base = str(settings.google_api_url).rstrip("/")
        self.api = ApiClient(
            settings,
            name="Google",
            budget=budget_for("google", account_key(account), settings.google_requests_per_minute),
            rate_limited=rate_limited,
        )

    # -- OAuth ---------------------------------------------------------------------------------
    @classmethod
    def configured(cls, settings: Any) -> str | None:
        missing = unset(settings, "google_client_id", "google_client_secret")
        if not missing:
            return None
        return (
            f"Google sign-in is not configured: set {' and '.join(missing)} "
            "(an OAuth client of type 'Web application' from the Google Cloud Console)"
        )

    @classmethod
    async def authorization_url(cls, settings: Any, redirect_uri: str, state: str, scopes: list[str]) -> AuthStart:
        problem = cls.configured(settings)
        if problem:
            raise ProviderError(problem, retryable=False)
        wanted = list(scopes) or [SCOPE]
        flow = _flow(settings, wanted, redirect_uri)
        try:
            url, _ = flow.authorization_url(
                state=state, access_type="offline", prompt="consent", include_granted_scopes="true"
            )
        except Exception as exc:
            code = oauth_error(exc)
            if code is None:
                raise
            raise ProviderError(f"cannot start Google sign-in ({code})", retryable=False) from None
        pending = {"code_verifier": flow.code_verifier, "redirect_uri": redirect_uri, "scopes": wanted, "state": state}
        return AuthStart(url=url, pending=pending)

    @classmethod
    async def exchange_code(
        cls, settings: Any, redirect_uri: str, params: Mapping[str, str], pending: dict[str, Any]
    ) -> dict[str, str]:
        if params.get("error"):
            raise AuthFailed(f"Google sign-in did not complete ({_code(params['error'])})")
        code = params.get("code")
        if not code:
            raise AuthFailed("Google sent no authorization code")
        if (
            pending.get("state")
            and params.get("state")
            and not hmac.compare_digest(str(pending["state"]), str(params["state"]))
        ):
            raise AuthFailed("the sign-in state does not match; start again")
        verifier = pending.get("code_verifier")
        if not verifier:
            raise AuthFailed("the sign-in has no PKCE verifier; start again")
        problem = cls.configured(settings)
        if problem:
            raise ProviderError(problem, retryable=False)
        wanted = list(pending.get("scopes") or [SCOPE])
        await _guard(settings.google_token_url, settings, "Google token endpoint")
        flow = _flow(settings, wanted, pending.get("redirect_uri") or redirect_uri, code_verifier=str(verifier))
        token = await asyncio.to_thread(_fetch_token, flow, code)
        issued = datetime.now(UTC)
        scope = token.get("scope")  # absent: Google granted what was asked
        granted = wanted if scope is None else scope.split() if isinstance(scope, str) else [str(s) for s in scope]
        if not set(wanted) <= set(granted):
            raise AuthFailed("Google did not grant calendar access; sign in again and allow access to your calendars")
        if not token.get("access_token") or not token.get("refresh_token"):
            raise AuthFailed("Google returned no refresh token; sign in again", reauthorize=True)
        expires_in = float(token.get("expires_in") or 3600)
        return {
            "access_token": str(token["access_token"]),
            "refresh_token": str(token["refresh_token"]),
            "expiry": _iso(issued + timedelta(seconds=expires_in)),
            "scope": " ".join(granted or wanted),
            "token_type": str(token.get("token_type") or "Bearer"),
        }

    # -- tokens --------------------------------------------------------------------------------
    def _credentials(self) -> Credentials:
        s = self._secrets
        expiry = _parse_expiry(s.get("expiry"))
        return Credentials(
            token=s.get("access_token"),
            refresh_token=s.get("refresh_token"),
            token_uri=self.settings.google_token_url,
            client_id=self.settings.google_client_id,
            client_secret=self.settings.google_client_secret,
            scopes=(s.get("scope") or "").split() or None,
            expiry=expiry.astimezone(UTC).replace(tzinfo=None) if expiry else None,
        )

    async def refresh(self) -> None:
        async with self._token_lock:
            await self._refresh_locked()

    async def _refresh_locked(self) -> None:
        if not self._secrets.get("refresh_token"):
            raise AuthFailed("this Google connection has no refresh token; reconnect the account", reauthorize=True)
        await _guard(self.settings.google_token_url, self.settings, "Google token endpoint")
        creds = self._credentials()
        started = datetime.now(UTC)
        try:
            await asyncio.to_thread(_refresh_credentials, creds)
        except ProviderError:
            self.refresh_failures += 1
            raise
        if not creds.token:
            raise ProviderError("Google's token endpoint answered without an access token")
        lifetime = (creds.expiry.replace(tzinfo=UTC) - started) if creds.expiry else timedelta(hours=1)
        granted = list(getattr(creds, "granted_scopes", None) or creds.scopes or (self._secrets.get("scope") or "").split())
        fresh = {
            "access_token": str(creds.token),
            "refresh_token": str(creds.refresh_token or self._secrets["refresh_token"]),
            "expiry": _iso(self.clock.now() + max(lifetime, timedelta(0))),
            "scope": " ".join(granted),
            "token_type": "Bearer",
        }
        self._secrets = fresh
        self._fresh = dict(fresh)
        self.refreshes += 1

    def refreshed_secrets(self) -> dict[str, str] | None:
        return dict(self._fresh) if self._fresh else None

    async def _access_token(self) -> str:
        async with self._token_lock:
            expiry = _parse_expiry(self._secrets.get("expiry"))
            token = self._secrets.get("access_token")
            if not token or expiry is None or expiry - self.clock.now() < REFRESH_AHEAD:
                await self._refresh_locked()
            return self._secrets["access_token"]

    async def _after_401(self, used: str) -> None:
        async with self._token_lock:
            if self._secrets.get("access_token") == used:  # nobody refreshed meanwhile
                await self._refresh_locked()

    # -- API plumbing --------------------------------------------------------------------------
    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        url = self.base + path
        resp: httpx.Response | None = None
        for attempt in (0, 1):
            token = await self._access_token()
            send = {"Accept": "application/json", **(headers or {}), "Authorization": f"Bearer {token}"}
            resp = await self.api.send(method, url, params=params, json=json_body, headers=send)
            if resp.status_code != 401:
                break
            if attempt == 0:
                await self._after_401(token)
        assert resp is not None
        if resp.status_code == 401:
            raise AuthFailed("Google refused the access token even after a refresh (HTTP 401)", reauthorize=True)
        if resp.status_code == 403 and error_reason(resp) in SCOPE_REASONS:
            raise AuthFailed("Google says this connection lacks calendar permission; reconnect it", reauthorize=True)
        return resp

    @staticmethod
    def _fail(resp: httpx.Response, what: str) -> ProviderError:
        status, reason = resp.status_code, error_reason(resp)
        text = f"Google: {what} failed (HTTP {status}{', ' + reason if reason else ''})"
        if reason == "dailyLimitExceeded":
            return ProviderError(text, retry_after=3600)
        if status == 403:
            return ProviderError(text, retryable=False)  # a reader calendar, an event we may not change
        return ProviderError(text, retryable=status >= 500 or status in (408, 409, 429))

    @staticmethod
    def _events_path(calendar_id: str) -> str:
        return f"/calendars/{quote(calendar_id, safe='@')}/events"

    def _event_path(self, calendar_id: str, event_id: str) -> str:
        return f"{self._events_path(calendar_id)}/{quote(event_id, safe='')}"

    async def _list(self, path: str, params: Mapping[str, str], what: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Every page of a list call: (items, the last page without its items)."""
        items: list[dict[str, Any]] = []
        page_token: str | None = None
        for _ in range(MAX_PAGES):
            query = dict(params)
            if page_token:
                query["pageToken"] = page_token
            resp = await self._request("GET", path, params=query)
            if resp.status_code == 410 and "syncToken" in params:
                raise CursorExpired("Google no longer accepts our sync token (410 Gone); listing everything")
            if resp.status_code != 200:
                raise self._fail(resp, what)
            body = resp.json()
            items += [i for i in body.get("items") or [] if isinstance(i, dict)]
            page_token = body.get("nextPageToken")
            if not page_token:
                body.pop("items", None)
                return items, body
        raise ProviderError(f"Google: {what} kept paging past {MAX_PAGES} pages")

    async def _get_event(self, calendar_id: str, event_id: str) -> dict[str, Any] | None:
        resp = await self._request("GET", self._event_path(calendar_id, event_id))
        if resp.status_code in (404, 410):
            return None
        if resp.status_code != 200:
            raise self._fail(resp, "reading an event")
        out: dict[str, Any] = resp.json()
        return out

    async def _fetch_series(self, calendar_id: str, key: str, uid: str | None) -> ge.Series | None:
        """The whole series whose master id is `key`: master plus every exception, cancelled
        ones included (`events.list?iCalUID=`); None when Google has nothing of it."""
        master: dict[str, Any] | None = None
        if uid is None:
            master = await self._get_event(calendar_id, key)
            if master is None:
                return None
            uid = master.get("iCalUID")
            if not uid or ge.is_cancelled(master):
                return ge.Series(key, master, [])
        for _ in range(2):
            params = {"iCalUID": uid, "showDeleted": "true", "singleEvents": "false", "maxResults": PAGE_SIZE}
            items, _last = await self._list(self._events_path(calendar_id), params, "reading a series")
            found = ge.group(items).get(key)
            if found is not None and found.master is not None:
                return found
            if master is None:
                master = await self._get_event(calendar_id, key)
            if master is None:
                return found
            if master.get("iCalUID") and master.get("iCalUID") != uid:
                uid = master["iCalUID"]  # the UID we were told is not the master's: ask again by its own
                continue
            return ge.Series(key, master, found.exceptions if found else [])
        return ge.Series(key, master, [])

    # -- calendars -----------------------------------------------------------------------------
    async def _calendar_list(self) -> list[dict[str, Any]]:
        items, _ = await self._list("/users/me/calendarList", {"maxResults": CALENDAR_PAGE_SIZE}, "listing calendars")
        return [i for i in items if not i.get("deleted")]

    async def login(self) -> str:
        entries = await self._calendar_list()
        self._listed = entries  # connecting asks for the calendars next: one calendarList call, not two
        for entry in entries:
            if entry.get("primary"):
                return str(entry["id"])
        resp = await self._request("GET", "/calendars/primary")
        if resp.status_code != 200:
            raise self._fail(resp, "reading the primary calendar")
        return str(resp.json().get("id") or "")

    async def list_calendars(self) -> list[RemoteCalendar]:
        out = []
        entries, self._listed = (self._listed, None) if self._listed is not None else (await self._calendar_list(), None)
        for entry in entries:
            role = entry.get("accessRole")
            if role == "freeBusyReader":
                continue  # no event details to mirror
            out.append(
                RemoteCalendar(
                    remote_id=str(entry["id"]),
                    name=str(entry.get("summaryOverride") or entry.get("summary") or entry["id"]),
                    color=entry.get("backgroundColor"),
                    read_only=role not in ("owner", "writer"),
                    timezone=entry.get("timeZone"),
                )
            )
        return out

    # -- events --------------------------------------------------------------------------------
    async def fetch_changes(
        self,
        calendar: RemoteCalendar,
        cursor: str | None,
        known: Mapping[str, str | None],
        window: Window | None = None,
        page: str | None = None,
    ) -> Changes:
        """Everything since `cursor` in one call: pages are followed here (`page` unused; the
        answer never has `next_page`), `window` is unused (Google syncs everything)."""
        params = {"singleEvents": "false", "showDeleted": "true", "maxResults": PAGE_SIZE}
        if cursor:
            params["syncToken"] = cursor
        items, last = await self._list(self._events_path(calendar.remote_id), params, "listing events")
        zone = calendar.timezone or last.get("timeZone")
        changes = Changes(cursor=last.get("nextSyncToken"), full=cursor is None)
        groups = ge.group(items)
        if cursor is None:
            for key, series in groups.items():
                ours = known.get(key) is not None and known.get(key) == ge.series_etag(series)
                if series.cancelled and not ours:
                    continue
                changes.present.add(key)
                if not ours:
                    self._emit(changes, series, zone, calendar)
            return changes
        for key, series in groups.items():
            master = series.master
            if master is not None and ge.is_cancelled(master):
                if not series.exceptions and known.get(key) is not None and known.get(key) == master.get("etag"):
                    continue  # our own cancellation (status cancelled) echoed back: it stays
                changes.deleted.append(key)
                continue
            if master is not None and not series.exceptions:
                if known.get(key) is not None and known.get(key) == master.get("etag"):
                    continue  # unchanged (our own write echoed back)
                if not master.get("recurrence"):
                    self._emit(changes, series, zone, calendar)  # a single event is complete as listed
                    continue
            whole = await self._fetch_series(calendar.remote_id, key, series.uid)
            if whole is None or whole.cancelled:
                if key in known:
                    changes.deleted.append(key)
                continue
            if known.get(key) is None or known.get(key) != ge.series_etag(whole):
                self._emit(changes, whole, zone, calendar)
        return changes

    @staticmethod
    def _emit(changes: Changes, series: ge.Series, zone: str | None, calendar: RemoteCalendar) -> None:
        try:
            event = ge.decode_series(series, zone, calendar.local_timezone)
        except ge.READ_ERRORS as exc:
            changes.skipped += 1
            log.warning("skipped unreadable Google event %s (%s)", series.key, type(exc).__name__)
            return
        if event is not None:
            changes.events.append(event)

    def _result(self, series: ge.Series | None, calendar: RemoteCalendar, out: Outgoing) -> RemoteEvent:
        """What a put stored, built as a listing builds it (same etag, same raw)."""
        if series is None:
            raise ProviderError("Google: the event is gone right after writing it")
        event: RemoteEvent | None
        try:
            event = ge.decode_series(series, calendar.timezone, calendar.local_timezone)
        except ge.READ_ERRORS:
            event = None
        if event is None:  # cancelled (Chronary's cancelled event), or unreadable: our own data
            event = RemoteEvent(series.key, None, out.uid, out.master, list(out.overrides))
        event.etag = ge.series_etag(series)
        event.raw = ge.raw_of(series)
        return event

    async def put_event(self, calendar: RemoteCalendar, event: Outgoing) -> RemoteEvent:
        if event.remote_id is None:
            return await self._insert(calendar, event)
        return await self._update(calendar, event, event.remote_id)

    async def _insert(self, calendar: RemoteCalendar, out: Outgoing) -> RemoteEvent:
        eid = ge.derived_id(out.event_id)
        body = ge.insert_body(out.master, event_id=eid, uid=out.uid, zone=out.zone, calendar_zone=out.calendar_zone)
        resp = await self._request("POST", self._events_path(calendar.remote_id), params=WRITE_PARAMS, json_body=body)
        if resp.status_code == 409:  # our earlier insert landed (or was deleted since): update that one
            log.info("Google: event %s exists already (an earlier insert landed); updating it", eid)
            return await self._update(calendar, out, eid, after_conflict=True)
        if resp.status_code != 200:
            raise self._fail(resp, "creating an event")
        master_json = resp.json()
        if not out.overrides:
            return self._result(ge.Series(eid, master_json, []), calendar, out)
        current = ge.Series(eid, master_json, [])
        await self._write_overrides(calendar, out, eid, current, None)
        return self._result(await self._fetch_series(calendar.remote_id, eid, out.uid), calendar, out)

    async def _update(
        self, calendar: RemoteCalendar, out: Outgoing, master_id: str, *, after_conflict: bool = False
    ) -> RemoteEvent:
        base = ge.parse_raw(out.base)
        if base is not None and base.key != master_id:
            base = None
        recurring = after_conflict or bool(
            out.master.recurrence or out.overrides or (base is not None and base.exceptions) or ge.is_series_etag(out.etag)
        )
        if_match: str | None
        if recurring:
            current = await self._fetch_series(calendar.remote_id, master_id, out.uid)
            if current is not None and current.master is None and current.exceptions and not after_conflict:
                return await self._update_orphan(calendar, out, current)
            if current is None or current.master is None:
                if after_conflict:
                    raise ProviderError("Google: the event id is taken but the event cannot be read")
                log.info("Google: event %s is gone; creating it again (the local edit wins)", master_id)
                return await self._insert(calendar, out)
            if not after_conflict and out.etag and ge.series_etag(current) != out.etag:
                raise PreconditionFailed(f"{master_id} changed on Google since our last sync")
            base = current
            if_match = current.master.get("etag")
        else:
            if_match = (base.master or {}).get("etag") if base is not None and base.master else out.etag
        old_json = base.master if base is not None else None
        old = self._decode_master(base, calendar)
        body = ge.patch_body(out.master, old, old_json, out.zone, out.calendar_zone, master=True)
        if after_conflict or old is None:
            body = self._replace_body(out)
        master_json = old_json
        if body:
            resp = await self._request(
                "PATCH",
                self._event_path(calendar.remote_id, master_id),
                params=WRITE_PARAMS,
                json_body=body,
                headers={"If-Match": if_match} if if_match else None,
            )
            if resp.status_code == 412:
                raise PreconditionFailed(f"{master_id} changed on Google since our last sync")
            if resp.status_code in (404, 410) and not after_conflict:
                log.info("Google: event %s is gone; creating it again (the local edit wins)", master_id)
                return await self._insert(calendar, out)
            if resp.status_code != 200:
                raise self._fail(resp, "updating an event")
            master_json = resp.json()
        if not recurring:
            assert master_json is not None
            return self._result(ge.Series(master_id, master_json, []), calendar, out)
        assert base is not None
        await self._write_overrides(calendar, out, master_id, base, old)
        return self._result(await self._fetch_series(calendar.remote_id, master_id, out.uid), calendar, out)

    async def _update_orphan(self, calendar: RemoteCalendar, out: Outgoing, current: ge.Series) -> RemoteEvent:
        """An invitation to one occurrence (its series is not in this calendar): the instance
        Chronary shows as the event is patched by its own id."""
        if out.etag and ge.series_etag(current) != out.etag:
            raise PreconditionFailed(f"{current.key} changed on Google since our last sync")
        live = [e for e in current.exceptions if not ge.is_cancelled(e) and e.get("start")]
        if not live:
            raise PreconditionFailed(f"{current.key} is no longer on Google")
        piece = live[0]
        zone_name = ge.series_zone_name(None, calendar.timezone, calendar.local_timezone)
        old = self._decode_old(piece, zone_name, calendar)
        body = ge.patch_body(out.master, old, piece, out.zone, out.calendar_zone, master=False)
        if body:
            await self._patch_instance(calendar, piece["id"], body, piece)
        return self._result(await self._fetch_series(calendar.remote_id, current.key, out.uid), calendar, out)

    @staticmethod
    def _replace_body(out: Outgoing) -> dict[str, Any]:
        """Every modeled field in PATCH form (a revived or unknown base: nothing may linger)."""
        body = ge.full_body(out.master, out.zone, out.calendar_zone, master=True)
        for key in ("start", "end"):
            body[key] = {"date": None, "dateTime": None, **body[key]}
        body.setdefault("description", None)
        body.setdefault("location", None)
        body.setdefault("attendees", [])
        body.setdefault("recurrence", [])
        body["sequence"] = max(0, int(out.master.sequence or 0))
        return body

    @staticmethod
    def _decode_master(series: ge.Series | None, calendar: RemoteCalendar) -> EventData | None:
        if series is None:
            return None
        try:
            return ge.decode_master(series, calendar.timezone, calendar.local_timezone)
        except ge.READ_ERRORS:
            return None

    @staticmethod
    def _decode_old(item: dict[str, Any] | None, zone_name: str, calendar: RemoteCalendar) -> EventData | None:
        if not item or not item.get("start"):
            return None
        try:
            return ge.decode_piece(
                item,
                ZoneInfo(zone_name),
                ZoneInfo(calendar.local_timezone),
                item.get("iCalUID"),
                master=not item.get("recurringEventId"),
            )
        except ge.READ_ERRORS:
            return None

    async def _write_overrides(
        self, calendar: RemoteCalendar, out: Outgoing, master_id: str, current: ge.Series, old_master: EventData | None
    ) -> None:
        """Bring the instances in line with `out.overrides` (Google semantics): a changed or new
        override is a PATCH of its instance (If-Match where it is an exception already); an
        exception Chronary no longer has is deleted when the series now excludes its date, or
        put back to the series' values when the rule is unchanged."""
        zone_name = ge.series_zone_name(current.master, calendar.timezone, calendar.local_timezone)
        zone, days = ZoneInfo(zone_name), ZoneInfo(calendar.local_timezone)
        existing: dict[int, dict[str, Any]] = {}
        for item in current.exceptions:
            if item.get("originalStartTime"):
                try:
                    existing[ge.original_ts(item, zone, days)] = item
                except ge.READ_ERRORS:
                    continue
        master = out.master
        ref_json: dict[str, Any] | None = current.master
        local = {ov.recurrence_id_ts: ov for ov in out.overrides if ov.recurrence_id_ts is not None}
        for rid, override in local.items():
            old_json = existing.get(rid)
            old: EventData | None
            ref: dict[str, Any] | None
            if old_json is not None and not ge.is_cancelled(old_json):
                old = self._decode_old(old_json, zone_name, calendar)
                ref = old_json
            else:  # a plain occurrence until now (or a cancelled one, revived in full)
                old = ge.at_occurrence(master, rid, days) if old_json is None else None
                ref = ref_json
            body = ge.patch_body(override, old, ref, out.zone, out.calendar_zone, master=False)
            if not body:
                continue
            iid = old_json["id"] if old_json else ge.instance_id(master_id, rid, master.all_day, out.calendar_zone)
            await self._patch_instance(calendar, iid, body, old_json, old if old_json else None)
        excluded = ge.excluded(master.recurrence, master.all_day, out.zone, out.calendar_zone)
        same_rule = old_master is not None and (
            ge.rules_of(old_master.recurrence) == ge.rules_of(master.recurrence)
            and (old_master.start_ts, old_master.end_ts, old_master.all_day)
            == (master.start_ts, master.end_ts, master.all_day)
        )
        for rid, item in existing.items():
            if rid in local or ge.is_cancelled(item):
                continue
            if rid in excluded:
                await self._delete_instance(calendar, item)
                continue
            now = self._decode_old(item, zone_name, calendar)
            if same_rule and now is not None and not ge.plain(now, master, days):
                plain = ge.occurrence_body(master, rid, out.zone, out.calendar_zone)
                await self._patch_instance(calendar, item["id"], plain, item, now)

    async def _patch_instance(
        self,
        calendar: RemoteCalendar,
        iid: str,
        body: dict[str, Any],
        old_json: dict[str, Any] | None,
        expect: EventData | None = None,
    ) -> None:
        """PATCH one instance, If-Match its etag where it is an exception already. A 412 whose
        fresh copy still reads as `expect` (only its etag moved, as the series' own write just
        did) is retried once with the new etag; any other 412 is a remote edit."""
        etag = (old_json or {}).get("etag")
        for attempt in (0, 1):
            resp = await self._request(
                "PATCH",
                self._event_path(calendar.remote_id, iid),
                params=WRITE_PARAMS,
                json_body=body,
                headers={"If-Match": etag} if etag else None,
            )
            if resp.status_code != 412:
                break
            fresh = await self._get_event(calendar.remote_id, iid) if attempt == 0 and expect is not None else None
            zone_name = ge.series_zone_name(None, calendar.timezone, calendar.local_timezone)
            now = self._decode_old(fresh, zone_name, calendar) if fresh and not ge.is_cancelled(fresh) else None
            if expect is None or now is None or now.modeled() != expect.modeled():
                raise PreconditionFailed(f"{iid} changed on Google since our last sync")
            etag = fresh.get("etag") if fresh else None
        if resp.status_code == 404:  # not an occurrence Google generates (an RDATE-only series…)
            log.warning("Google: no instance %s to update; that override is not mirrored", iid)
            return
        if resp.status_code == 412:
            raise PreconditionFailed(f"{iid} changed on Google since our last sync")
        if resp.status_code != 200:
            raise self._fail(resp, "updating an occurrence")

    async def _delete_instance(self, calendar: RemoteCalendar, item: dict[str, Any]) -> None:
        etag = item.get("etag")
        resp = await self._request(
            "DELETE",
            self._event_path(calendar.remote_id, item["id"]),
            params=WRITE_PARAMS,
            headers={"If-Match": etag} if etag else None,
        )
        if resp.status_code == 412:
            raise PreconditionFailed(f"{item['id']} changed on Google since our last sync")
        if resp.status_code not in (200, 204, 404, 410):
            raise self._fail(resp, "deleting an occurrence")

    async def delete_event(self, calendar: RemoteCalendar, remote_id: str, etag: str | None) -> None:
        if_match = etag
        if ge.is_series_etag(etag):
            current = await self._fetch_series(calendar.remote_id, remote_id, None)
            if current is None or current.master is None or ge.is_cancelled(current.master):
                return
            if ge.series_etag(current) != etag:
                raise PreconditionFailed(f"{remote_id} changed on Google since our last sync")
            if_match = current.master.get("etag")
        resp = await self._request(
            "DELETE",
            self._event_path(calendar.remote_id, remote_id),
            params=WRITE_PARAMS,
            headers={"If-Match": if_match} if if_match else None,
        )
        if resp.status_code == 412:
            raise PreconditionFailed(f"{remote_id} changed on Google since our last sync")
        if resp.status_code not in (200, 204, 404, 410):
            raise self._fail(resp, "deleting an event")

    # -- push ----------------------------------------------------------------------------------
    async def subscribe(self, calendar: RemoteCalendar, callback_url: str, token: str) -> PushChannel:
        body = {
            "id": str(uuid.uuid4()),
            "type": "web_hook",
            "address": callback_url,
            "token": token,
            "params": {"ttl": CHANNEL_TTL},
        }
        resp = await self._request("POST", f"{self._events_path(calendar.remote_id)}/watch", json_body=body)
        if resp.status_code != 200:
            raise self._fail(resp, "starting push notifications")
        data = resp.json()
        try:
            expires = int(str(data.get("expiration") or 0)) // 1000
        except ValueError:
            expires = 0
        if expires <= 0:
            expires = int(self.clock.now().timestamp()) + int(CHANNEL_TTL)
        return PushChannel(
            id=str(data.get("id") or body["id"]),
            remote_calendar_id=calendar.remote_id,
            token=token,
            expires_at=expires,
            resource_id=data.get("resourceId"),
        )

    async def renew(self, channel: PushChannel, callback_url: str) -> PushChannel:
        """Google channels cannot be extended: a new one, then the old one stopped."""
        fresh = await self.subscribe(RemoteCalendar(channel.remote_calendar_id, ""), callback_url, channel.token)
        try:
            await self.unsubscribe(channel)
        except ProviderError as exc:  # it expires on its own; the new one is what matters
            log.info("Google: stopping the old push channel failed (%s)", exc.reason)
        return fresh

    async def unsubscribe(self, channel: PushChannel) -> None:
        if not channel.resource_id:
            return
        resp = await self._request("POST", "/channels/stop", json_body={"id": channel.id, "resourceId": channel.resource_id})
        if resp.status_code not in (200, 204, 404):
            raise self._fail(resp, "stopping push notifications")

    @classmethod
    def verify_notification(
        cls, headers: Mapping[str, str], body: bytes, lookup: Callable[[str], PushChannel | None]
    ) -> list[Notification]:
        lower = {str(k).lower(): str(v) for k, v in headers.items()}
        channel_id = lower.get("x-goog-channel-id")
        if not channel_id:
            return []
        channel = lookup(channel_id)
        if channel is None or not channel.token:
            return []
        sent = lower.get("x-goog-channel-token", "")
        if not hmac.compare_digest(sent.encode(), channel.token.encode()):
            return []
        resource = lower.get("x-goog-resource-id")
        if channel.resource_id and resource and not hmac.compare_digest(resource.encode(), channel.resource_id.encode()):
            return []
        return [Notification(channel.id, sync=lower.get("x-goog-resource-state") != "sync")]

    # -- lifecycle -----------------------------------------------------------------------------
    def api_base(self) -> str | None:
        return self.base

    async def api_request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        return await self._request(method, path, params=params, json_body=json_body, headers=headers)

    async def revoke(self) -> None:
        token = self._secrets.get("refresh_token") or self._secrets.get("access_token")
        if not token:
            return
        resp = await self.api.send(
            "POST",
            self.settings.google_revoke_url,
            data={"token": token},
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            budget=False,
        )
        if resp.status_code == 200:
            return
        if resp.status_code == 400 and error_reason(resp) == "invalid_token":
            return  # revoked or expired already
        raise ProviderError(f"Google did not revoke the grant (HTTP {resp.status_code})")

    async def close(self) -> None:
        await self.api.close()


def _fetch_token(flow: Flow, code: str) -> dict[str, Any]:
    """The code exchange (blocking: runs in a thread); errors without token text."""
    try:
        token = flow.fetch_token(code=code, verify=requests_verify())
    except Warning as exc:  # oauthlib: "Scope has changed" (granted scopes differ); the token is in it
        found = getattr(exc, "token", None)
        if not isinstance(found, dict):
            raise ProviderError("Google's token answer could not be read") from None
        token = found
    except requests.RequestException as exc:
        raise Unreachable(f"cannot reach Google's token endpoint ({type(exc).__name__})") from None
    except Exception as exc:
        error = oauth_error(exc)
        if error is None:
            if isinstance(exc, ValueError):
                raise ProviderError("Google's token answer could not be read") from None
            raise
        if error in ("invalid_grant", "invalid_request", "redirect_uri_mismatch"):
            raise AuthFailed(f"Google refused the authorization code ({error}); sign in again") from None
        if error in ("invalid_client", "unauthorized_client"):
            raise AuthFailed(
                f"Google refused this server's OAuth client ({error}): check "
                "CHRONARY_GOOGLE_CLIENT_ID and CHRONARY_GOOGLE_CLIENT_SECRET"
            ) from None
        if error == "insecure_transport":
            raise ProviderError("the Google token URL must be https", retryable=False) from None
        raise ProviderError(f"Google's token endpoint refused the exchange ({error})") from None
    return dict(token)


def _refresh_credentials(creds: Credentials) -> None:
    """creds.refresh (blocking: runs in a thread), errors mapped to ours without token text."""
    session = _requests_session()
    try:
        creds.refresh(GoogleRequest(session))
    except google_auth_errors.RefreshError as exc:
        data = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], dict) else {}
        error = _code(data.get("error")) or ("invalid_grant" if "invalid_grant" in str(exc) else "")
        if error in ("invalid_grant", "invalid_scope"):
            raise AuthFailed(
                f"Google no longer accepts this connection's grant ({error}); reconnect the account", reauthorize=True
            ) from None
        if error in ("invalid_client", "unauthorized_client"):
            raise AuthFailed(
                f"Google refused this server's OAuth client ({error}): check "
                "CHRONARY_GOOGLE_CLIENT_ID and CHRONARY_GOOGLE_CLIENT_SECRET"
            ) from None
        if not error and not getattr(exc, "retryable", False) and "necessary fields" in str(exc):
            raise AuthFailed(
                "this Google connection cannot refresh its token; reconnect the account", reauthorize=True
            ) from None
        raise ProviderError(f"Google's token endpoint failed to refresh the token ({error or 'temporary error'})") from None
    except google_auth_errors.TransportError as exc:
        raise Unreachable(f"cannot reach Google's token endpoint ({type(exc.__cause__ or exc).__name__})") from None
    finally:
        session.close()


__all__ = ["SCOPE", "Provider", "error_reason", "rate_limited"]

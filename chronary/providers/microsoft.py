"""Microsoft 365 / Outlook provider: the Microsoft identity platform (msal) and Microsoft Graph.

Sign-in is msal's auth code flow with PKCE (`initiate_auth_code_flow`; msal adds offline_access,
openid and profile itself); the whole flow dict waits server-side in `AuthStart.pending`. The
account's secrets are msal's serialized `SerializableTokenCache` plus the account's
`home_account_id` and `username`. Every provider object builds its own
`ConfidentialClientApplication` (lazily, in a thread: msal reads the authority's OpenID
configuration when it is built), with `instance_discovery=False` for an authority that is not
one of Microsoft's own hosts and an `http_client` that is a `requests.Session` with environment
proxies off, the trust store of every other outbound call (`http.requests_verify`), no redirects,
and `outbound.check_target` before each request. A fresh app per object (and again after a
failed refresh) matters: msal remembers an HTTP 400 from the token endpoint for 60 s and a
429/5xx for its Retry-After, so a transient failure would otherwise outlive its cause.

Tokens: the access token is read from the cache and refreshed (`acquire_token_silent_with_error`,
`force_refresh`) when less than five minutes are left by the injected clock, and once after a
401. Refresh tokens rotate on every use: after a refresh `refreshed_secrets()` holds the new
serialized cache, which the engine stores encrypted. `invalid_grant` / `interaction_required`
are `AuthFailed(reauthorize=True)`; anything transient is a `ProviderError` (`refresh_failures`
counts both, `refreshes` the successes). Microsoft has no revocation endpoint for this flow:
`revoke()` forgets the tokens.

Graph is called with plain httpx through `chronary.providers.http.ApiClient`: a request budget
per mailbox, at most four requests in flight per mailbox (Graph's MailboxConcurrency limit),
retries of 429/503/504 honouring Retry-After. Reading and writing events is `microsoft_events`.

Listing: Graph has delta only over a calendarView window (`sync_window_days` back and ahead,
rounded to whole weeks so the window, and the series etags read in it, stay put for a week):
every page is followed inside one call to the deltaLink. Delta lists occurrences and exceptions,
never masters, so each touched series is read whole (GET the master for its recurrence, and its
/instances over the window): one RemoteEvent is the whole series. An `@removed` single event is
looked up (gone: deleted; moved out of the window: read again); an `@removed` occurrence carries
only its id, so the cursor keeps an index of six-byte digests of every instance id per series,
which names the series to re-read. The cursor is JSON: the deltaLink, the window, the index. A
full listing reads each series' master (its instances are the delta's own items); a linked event
that is not in the window is asked for by id listing before it is declared gone.

Writes: POST with a `transactionId` derived from Chronary's event id (a retried create answers
the event the first one made; it also carries a UID that is not Chronary's own, because Graph's
iCalUId cannot be set), PATCH of only the changed fields with `If-Match: <@odata.etag>` (412 →
PreconditionFailed); overrides PATCH their occurrence (found by original start among the
instances), cancelled ones DELETE it; the answer is read back as a listing reads it, so our own
write never comes back as a remote change. Push: Graph subscriptions on the calendar's events
with our token as clientState, renewed by PATCH (a lost one is created anew).
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import logging
import re
import warnings
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

import httpx
import msal  # type: ignore[import-untyped]
import requests

from chronary.clock import Clock
from chronary.ical.model import EventData, Outgoing
from chronary.outbound import BlockedTarget, OutboundError, check_target
from chronary.providers import microsoft_events as me
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
from chronary.providers.http import TIMEOUT, ApiClient, account_key, budget_for, limit_for, requests_verify

log = logging.getLogger("chronary.providers.microsoft")
T = TypeVar("T")

SCOPES = ["Calendars.ReadWrite", "User.Read"]
RESERVED_SCOPES = frozenset({"openid", "profile", "offline_access"})  # msal adds these itself
REFRESH_AHEAD = timedelta(minutes=5)
PAGE_SIZE = 200  # Prefer: odata.maxpagesize for delta and instances
EVENTS_PAGE_SIZE = "1000"  # $top of the id listing that checks events outside the window
MAX_PAGES = 2000
FAN_OUT = 8  # coroutines of one call running at once
MAILBOX_CONCURRENCY = 4  # Graph: four concurrent requests per app and mailbox
REQUESTS_PER_MINUTE = 1000  # Graph (Outlook): 10,000 requests per 10 minutes per app and mailbox
WINDOW_STEP = 7 * 86400  # the sync window moves in whole weeks
SUBSCRIPTION_MINUTES = 4200  # under Graph's 4230-minute limit for Outlook resources
CURSOR_VERSION = 1
SYNC_STATE_CODES = frozenset({"SyncStateNotFound", "SyncStateInvalid", "ResyncRequired"})
REAUTHORIZE_ERRORS = frozenset({"invalid_grant", "interaction_required", "consent_required", "login_required"})
CLIENT_ERRORS = frozenset({"invalid_client", "unauthorized_client", "unsupported_grant_type"})
LIFECYCLE_RENEW = frozenset({"reauthorizationRequired", "subscriptionRemoved"})
TIME_PREFER = 'outlook.timezone="UTC", outlook.body-content-type="text"'
_SAFE_CODE = re.compile(r"[^A-Za-z0-9_.\-]")
# the browser comes back with a GET (/v1/connections/callback), so the code is in the query;
# msal warns about that on every sign-in
warnings.filterwarnings("ignore", message="response_mode='form_post' is recommended", category=UserWarning)


def _code(value: Any, limit: int = 60) -> str:
    """An error code from a remote body, cut to a short token that is safe in a reason."""
    return _SAFE_CODE.sub("", str(value or ""))[:limit]


def error_code(resp: httpx.Response) -> str | None:
    """Graph's error code (`ErrorItemNotFound`, `SyncStateNotFound`, …) of an error answer."""
    try:
        body = resp.json()
    except ValueError:
        return None
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict) and err.get("code"):
        return _code(err["code"])
    if isinstance(err, str):
        return _code(err)
    return None


def _iso(ts: int | float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _instance_discovery(authority: str) -> bool | None:
    """msal's instance discovery asks login.microsoftonline.com about the authority's host: on
    (msal's default) for Microsoft's own hosts, off for any other (a fake, a private deployment)."""
    host = (urlsplit(authority).hostname or "").lower()
    known = set(getattr(msal.authority, "WELL_KNOWN_AUTHORITY_HOSTS", ())) | {
        "login.microsoftonline.com",
        "login.microsoft.com",
        "login.windows.net",
        "login.microsoftonline.us",
        "login.chinacloudapi.cn",
        "login.partner.microsoftonline.cn",
    }
    b2c = tuple(getattr(msal.authority, "WELL_KNOWN_B2C_HOSTS", ()))
    if host in known or any(host.endswith("." + h) for h in b2c):
        return None
    return False


class _Session(requests.Session):
    """msal's HTTP client: no environment proxies, our trust store, no redirects, and the
    outbound guard before every request (msal only ever calls the authority's endpoints)."""

    def __init__(self, settings: Any) -> None:
        super().__init__()
        self.trust_env = False  # else REQUESTS_CA_BUNDLE / *_PROXY from the environment win
        self.verify = requests_verify()
        self._settings = settings

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        text = url.decode() if isinstance(url, bytes) else str(url)
        check_target(text, self._settings)
        kwargs["allow_redirects"] = False
        kwargs.setdefault("timeout", TIMEOUT)
        verb = method.decode() if isinstance(method, bytes) else str(method)
        return super().request(verb, text, *args, **kwargs)


def _new_app(settings: Any, cache: Any, session: _Session) -> Any:
    """A ConfidentialClientApplication (blocking: it reads the authority's configuration)."""
    return msal.ConfidentialClientApplication(
        settings.microsoft_client_id,
        client_credential=settings.microsoft_client_secret,
        authority=settings.microsoft_authority,
        instance_discovery=_instance_discovery(settings.microsoft_authority),
        http_client=session,
        token_cache=cache,
    )


async def _blocking(fn: Callable[[], T], what: str) -> T:
    """Run an msal call in a thread, its failures as ours (never with token text)."""

    def run() -> T:
        try:
            return fn()
        except ProviderError:
            raise
        except BlockedTarget as exc:
            raise ProviderError(f"{what}: {exc.reason}", retryable=False) from None
        except OutboundError as exc:
            raise Unreachable(f"{what}: {exc.reason}") from None
        except requests.RequestException as exc:
            raise Unreachable(f"{what}: cannot reach Microsoft's sign-in service ({type(exc).__name__})") from None
        except Exception as exc:  # msal raises ValueError/MsalServiceError with response text
            raise ProviderError(f"{what} failed ({type(exc).__name__})") from None

    return await asyncio.to_thread(run)


def _token_error(result: Mapping[str, Any], *, exchange: bool = False) -> ProviderError:
    """The identity platform's error answer as ours: a safe reason with the AADSTS code."""
    error = _code(result.get("error")) or "token_error"
    codes = result.get("error_codes") or []
    first = str(codes[0]) if isinstance(codes, list) and codes else ""
    what = f"{error}, AADSTS{first}" if first.isdigit() else error
    if error in CLIENT_ERRORS:
        return AuthFailed(
            f"Microsoft refused this server's app registration ({what}): check "
            "CHRONARY_MICROSOFT_CLIENT_ID and CHRONARY_MICROSOFT_CLIENT_SECRET"
        )
    if exchange and error in ("invalid_grant", "invalid_request", "access_denied", "invalid_scope"):
        return AuthFailed(f"Microsoft refused the authorization code ({what}); sign in again")
    if error in REAUTHORIZE_ERRORS or _code(result.get("suberror")) in ("consent_required", "basic_action"):
        return AuthFailed(
            f"Microsoft no longer accepts this connection's sign-in ({what}); reconnect the account", reauthorize=True
        )
    return ProviderError(f"Microsoft's token endpoint failed ({what}); trying again later")


def _first_error(group: BaseExceptionGroup[Any]) -> BaseException:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            return _first_error(exc)
        if not isinstance(exc, asyncio.CancelledError):
            return exc
    return group.exceptions[0]


async def _all(coros: list[Awaitable[T]]) -> list[T]:
    """Run coroutines side by side, a few at a time (the in-flight limit keeps it to four on the
    wire; fewer waiting keeps the request budget's reservations short); the first failure
    cancels the rest and is raised as itself."""
    if not coros:
        return []
    if len(coros) == 1:
        return [await coros[0]]
    gate = asyncio.Semaphore(FAN_OUT)

    async def wrap(coro: Awaitable[T]) -> T:
        async with gate:
            return await coro

    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(wrap(c)) for c in coros]
    except BaseExceptionGroup as failed:
        raise _first_error(failed) from None
    return [t.result() for t in tasks]


def _digests(blob: str) -> set[bytes]:
    try:
        raw = base64.b64decode(blob)
    except ValueError:
        return set()
    return {raw[i : i + 6] for i in range(0, len(raw) - 5, 6)}


def dump_cursor(link: str, window: Window, index: Mapping[str, set[bytes]]) -> str:
    series = {k: base64.b64encode(b"".join(sorted(v))).decode() for k, v in sorted(index.items()) if v}
    return json.dumps(
        {"v": CURSOR_VERSION, "link": link, "lo": window.start_ts, "hi": window.end_ts, "series": series},
        separators=(",", ":"),
    )


def load_cursor(text: str) -> tuple[str, Window, dict[str, set[bytes]]] | None:
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("v") != CURSOR_VERSION or not isinstance(data.get("link"), str):
        return None
    try:
        window = Window(int(data["lo"]), int(data["hi"]))
    except (KeyError, TypeError, ValueError):
        return None
    series = data.get("series")
    index = {str(k): _digests(str(v)) for k, v in series.items()} if isinstance(series, dict) else {}
    return data["link"], window, index


class Provider(BaseProvider):
    name = "microsoft"
    supports_oauth = True
    supports_push = True
    sync_window_days = 365

    def __init__(self, account: Account, settings: Any, clock: Clock | None = None) -> None:
        super().__init__(account, settings, clock)
        self.refreshes = 0
        self.refresh_failures = 0
        self._secrets: dict[str, str] = dict(account.secrets)
        self._cache = msal.SerializableTokenCache()
        if self._secrets.get("token_cache"):
            try:
                self._cache.deserialize(self._secrets["token_cache"])
            except ValueError:
                log.warning("Microsoft: the stored token cache cannot be read; the account must sign in again")
        self._access: tuple[str, datetime] | None = None
        self._fresh: dict[str, str] | None = None
        self._app: Any = None
        self._session: _Session | None = None
        self._token_lock = asyncio.Lock()
        self.base = str(settings.microsoft_graph_url).rstrip("/")
        key = account_key(account, "home_account_id")
        self.api = ApiClient(
            settings,
            name="Microsoft Graph",
            budget=budget_for(
                "microsoft", key, int(getattr(settings, "microsoft_requests_per_minute", REQUESTS_PER_MINUTE))
            ),
            limit=limit_for("microsoft", key, MAILBOX_CONCURRENCY),
        )

    # -- OAuth ---------------------------------------------------------------------------------
    @classmethod
    def configured(cls, settings: Any) -> str | None:
        missing = unset(settings, "microsoft_client_id", "microsoft_client_secret")
        if not missing:
            return None
        return (
            f"Microsoft sign-in is not configured: set {' and '.join(missing)} "
            "(an app registration with a client secret and a Web redirect URI, from the Microsoft Entra admin center)"
        )

    @classmethod
    async def authorization_url(cls, settings: Any, redirect_uri: str, state: str, scopes: list[str]) -> AuthStart:
        problem = cls.configured(settings)
        if problem:
            raise ProviderError(problem, retryable=False)
        wanted = [s for s in scopes if s.lower() not in RESERVED_SCOPES] or list(SCOPES)

        def start() -> dict[str, Any]:
            session = _Session(settings)
            try:
                app = _new_app(settings, msal.SerializableTokenCache(), session)
                flow: dict[str, Any] = app.initiate_auth_code_flow(scopes=wanted, redirect_uri=redirect_uri, state=state)
                return flow
            finally:
                session.close()

        flow = await _blocking(start, "starting Microsoft sign-in")
        return AuthStart(url=str(flow["auth_uri"]), pending={"flow": flow, "redirect_uri": redirect_uri, "scopes": wanted})

    @classmethod
    async def exchange_code(
        cls, settings: Any, redirect_uri: str, params: Mapping[str, str], pending: dict[str, Any]
    ) -> dict[str, str]:
        if params.get("error"):
            raise AuthFailed(f"Microsoft sign-in did not complete ({_code(params['error'])})")
        if not params.get("code"):
            raise AuthFailed("Microsoft sent no authorization code")
        flow = pending.get("flow")
        if not isinstance(flow, dict) or not flow.get("state"):
            raise AuthFailed("the sign-in has no pending flow; start again")
        if not hmac.compare_digest(str(flow["state"]), str(params.get("state") or "")):
            raise AuthFailed("the sign-in state does not match; start again")
        problem = cls.configured(settings)
        if problem:
            raise ProviderError(problem, retryable=False)

        def exchange() -> dict[str, str]:
            cache = msal.SerializableTokenCache()
            session = _Session(settings)
            try:
                app = _new_app(settings, cache, session)
                try:
                    result = app.acquire_token_by_auth_code_flow(dict(flow), dict(params))
                except ValueError:
                    raise AuthFailed("the sign-in could not be completed; start again") from None
                if "error" in result:
                    raise _token_error(result, exchange=True)
                granted = {s.lower() for s in str(result.get("scope") or "Calendars.ReadWrite").split()}
                if not any(s.endswith("calendars.readwrite") for s in granted):
                    raise AuthFailed("Microsoft did not grant calendar access; sign in again and allow it")
                claims = result.get("id_token_claims") or {}
                accounts = app.get_accounts()
                if not accounts or not result.get("refresh_token"):
                    raise AuthFailed("Microsoft returned no refresh token; sign in again", reauthorize=True)
                account = accounts[0]
                for candidate in accounts:
                    if claims.get("oid") and str(candidate.get("home_account_id", "")).startswith(str(claims["oid"])):
                        account = candidate
                return {
                    "token_cache": cache.serialize(),
                    "home_account_id": str(account.get("home_account_id") or ""),
                    "username": str(account.get("username") or claims.get("preferred_username") or ""),
                }
            finally:
                session.close()

        return await _blocking(exchange, "completing Microsoft sign-in")

    # -- tokens --------------------------------------------------------------------------------
    def _cached_access_token(self) -> tuple[str, datetime] | None:
        """The freshest access token in the cache for our account and calendar scope."""
        now = self.clock.now()
        query = {"client_id": self.settings.microsoft_client_id}
        if self._secrets.get("home_account_id"):
            query["home_account_id"] = self._secrets["home_account_id"]
        best: tuple[str, datetime] | None = None
        for entry in self._cache.search(msal.TokenCache.CredentialType.ACCESS_TOKEN, query=query, now=now.timestamp()):
            if "calendars.readwrite" not in str(entry.get("target") or "").lower():
                continue
            try:
                expires = datetime.fromtimestamp(int(entry["expires_on"]), UTC)
            except (KeyError, TypeError, ValueError):
                continue
            if best is None or expires > best[1]:
                best = (str(entry["secret"]), expires)
        return best

    async def _ensure_app(self) -> Any:
        if self._app is None:
            session = _Session(self.settings)
            try:
                self._app = await _blocking(lambda: _new_app(self.settings, self._cache, session), "Microsoft sign-in")
            except ProviderError:
                session.close()
                raise
            self._session = session
        return self._app

    def _drop_app(self) -> None:
        """Forget the msal app (and msal's memory of error answers with it)."""
        self._app = None
        if self._session is not None:
            self._session.close()
            self._session = None

    async def refresh(self) -> None:
        async with self._token_lock:
            await self._refresh_locked()

    async def _refresh_locked(self) -> None:
        if not self._secrets.get("token_cache"):
            raise AuthFailed("this Microsoft connection has no token cache; reconnect the account", reauthorize=True)
        try:
            app = await self._ensure_app()
            hid, username = self._secrets.get("home_account_id"), (self._secrets.get("username") or "").lower()

            def silent() -> dict[str, Any] | None:
                accounts = app.get_accounts()
                account = next((a for a in accounts if hid and a.get("home_account_id") == hid), None)
                if account is None:
                    account = next(
                        (a for a in accounts if username and str(a.get("username", "")).lower() == username), None
                    )
                if account is None:
                    return None
                result: dict[str, Any] | None = app.acquire_token_silent_with_error(SCOPES, account, force_refresh=True)
                return result

            result = await _blocking(silent, "refreshing the Microsoft token")
            if result is None:
                raise AuthFailed(
                    "this Microsoft connection has no usable refresh token; reconnect the account", reauthorize=True
                )
            if "error" in result or not result.get("access_token"):
                raise _token_error(result)
        except ProviderError:
            self.refresh_failures += 1
            self._drop_app()
            raise
        lifetime = timedelta(seconds=int(result.get("expires_in") or 3600))
        self._access = (str(result["access_token"]), self.clock.now() + lifetime)
        self.refreshes += 1
        if self._cache.has_state_changed:  # the rotated refresh token (and the new access token)
            self._secrets["token_cache"] = self._cache.serialize()
            self._fresh = dict(self._secrets)

    def refreshed_secrets(self) -> dict[str, str] | None:
        return dict(self._fresh) if self._fresh else None

    async def _access_token(self) -> str:
        async with self._token_lock:
            now = self.clock.now()
            if self._access is None or self._access[1] - now < REFRESH_AHEAD:
                cached = self._cached_access_token()
                self._access = cached if cached is not None and cached[1] - now >= REFRESH_AHEAD else None
            if self._access is None:
                await self._refresh_locked()
            assert self._access is not None
            return self._access[0]

    async def _after_401(self, used: str) -> None:
        async with self._token_lock:
            if self._access is None or self._access[0] == used:  # nobody refreshed meanwhile
                await self._refresh_locked()

    # -- Graph plumbing ------------------------------------------------------------------------
    def _url(self, path: str) -> str:
        if path.startswith(("https://", "http://")):  # a nextLink / deltaLink: only to Graph itself
            if not (path == self.base or path.startswith((self.base + "/", self.base + "?"))):
                raise ProviderError("Microsoft Graph sent a link to another address; not following it", retryable=False)
            return path
        return self.base + path

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        url = self._url(path)
        resp: httpx.Response | None = None
        for attempt in (0, 1):
            token = await self._access_token()
            send = {
                "Accept": "application/json",
                "Prefer": TIME_PREFER,
                **(headers or {}),
                "Authorization": f"Bearer {token}",
            }
            resp = await self.api.send(method, url, params=params, json=json_body, headers=send)
            if resp.status_code != 401:
                break
            if attempt == 0:
                await self._after_401(token)
        assert resp is not None
        if resp.status_code == 401:
            raise AuthFailed("Microsoft Graph refused the access token even after a refresh (HTTP 401)", reauthorize=True)
        return resp

    @staticmethod
    def _fail(resp: httpx.Response, what: str) -> ProviderError:
        status, code = resp.status_code, error_code(resp)
        text = f"Microsoft Graph: {what} failed (HTTP {status}{', ' + code if code else ''})"
        if status == 403:
            return ProviderError(text, retryable=False)  # a read-only calendar, an event we may not change
        return ProviderError(text, retryable=status >= 500 or status in (408, 409, 429))

    async def _pages(
        self,
        path: str,
        params: Mapping[str, str] | None,
        what: str,
        *,
        page_size: int | None = None,
        delta: bool = False,
        missing_ok: bool = False,
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Every page of a list call: (items, the last page without its items); `missing_ok`:
        nothing for a 404 (instances of an event that is gone, or of no series)."""
        headers = {"Prefer": TIME_PREFER + (f", odata.maxpagesize={page_size}" if page_size else "")}
        items: list[dict[str, Any]] = []
        url, query = path, params
        for _ in range(MAX_PAGES):
            resp = await self._request("GET", url, params=query, headers=headers)
            if resp.status_code != 200 and delta and (resp.status_code == 410 or error_code(resp) in SYNC_STATE_CODES):
                raise CursorExpired(f"Microsoft Graph no longer accepts our delta token ({error_code(resp) or 'HTTP 410'})")
            if resp.status_code in (400, 404) and missing_ok and not items:
                return [], {}
            if resp.status_code != 200:
                raise self._fail(resp, what)
            body = resp.json()
            items += [i for i in body.get("value") or [] if isinstance(i, dict)]
            link = body.get("@odata.nextLink")
            if not link:
                body.pop("value", None)
                return items, body
            url, query = str(link), None
        raise ProviderError(f"Microsoft Graph: {what} kept paging past {MAX_PAGES} pages")

    @staticmethod
    def _calendar_path(calendar_id: str) -> str:
        return f"/me/calendars/{quote(calendar_id, safe='')}"

    @staticmethod
    def _event_path(event_id: str) -> str:
        return f"/me/events/{quote(event_id, safe='')}"

    async def _get_event(self, event_id: str) -> dict[str, Any] | None:
        resp = await self._request("GET", self._event_path(event_id))
        if resp.status_code in (404, 410):
            return None
        if resp.status_code != 200:
            raise self._fail(resp, "reading an event")
        out: dict[str, Any] = resp.json()
        return out

    async def _instances(self, master_id: str, window: Window) -> list[dict[str, Any]]:
        params = {"startDateTime": _iso(window.start_ts), "endDateTime": _iso(window.end_ts)}
        path = f"{self._event_path(master_id)}/instances"
        items, _ = await self._pages(path, params, "reading a series", page_size=PAGE_SIZE, missing_ok=True)
        return items

    async def _read_series(self, key: str, window: Window) -> me.Series | None:
        """A series (or single event) by its id: the master and its instances in the window."""
        try:
            async with asyncio.TaskGroup() as group:
                got = group.create_task(self._get_event(key))
                listed = group.create_task(self._instances(key, window))
        except BaseExceptionGroup as failed:
            raise _first_error(failed) from None
        master, instances = got.result(), listed.result()
        if master is None:
            return None
        if not master.get("recurrence") and master.get("type") != "seriesMaster":
            return me.Series(key, master, [])
        return me.Series(key, master, instances)

    def _window(self, window: Window | None) -> Window:
        """The sync window, its start rounded down to a whole week and its length up, so every
        call of one week (listings and writes alike) reads the same window."""
        if window is None:
            now = int(self.clock.now().timestamp())
            span = (self.sync_window_days or 365) * 86400
            window = Window(now - span, now + span)
        lo = window.start_ts - window.start_ts % WINDOW_STEP
        return Window(lo, lo + (window.end_ts - window.start_ts) + WINDOW_STEP)

    # -- account and calendars -----------------------------------------------------------------
    async def login(self) -> str:
        resp = await self._request("GET", "/me")
        if resp.status_code != 200:
            raise self._fail(resp, "reading the account")
        me_json = resp.json()
        return str(me_json.get("mail") or me_json.get("userPrincipalName") or self._secrets.get("username") or "")

    async def list_calendars(self) -> list[RemoteCalendar]:
        items, _ = await self._pages("/me/calendars", None, "listing calendars")
        return [
            RemoteCalendar(
                remote_id=str(c["id"]),
                name=str(c.get("name") or c["id"]),
                color=str(c["hexColor"]) if c.get("hexColor") else None,
                read_only=not c.get("canEdit", True),
            )
            for c in items
            if c.get("id")
        ]

    # -- events: reading -----------------------------------------------------------------------
    def _single(self, item: dict[str, Any], calendar: RemoteCalendar) -> RemoteEvent | None:
        try:
            return me.decode_single(item, calendar.local_timezone)
        except me.READ_ERRORS as exc:
            log.warning("skipped unreadable Microsoft event %s (%s)", item.get("id"), type(exc).__name__)
            return None

    def _series(self, series: me.Series, window: Window, calendar: RemoteCalendar) -> me.Decoded | None:
        try:
            return me.decode_series(series, window, calendar.local_timezone)
        except me.READ_ERRORS as exc:
            log.warning("skipped unreadable Microsoft series %s (%s)", series.key, type(exc).__name__)
            return None

    def _whole(self, series: me.Series, window: Window, calendar: RemoteCalendar) -> RemoteEvent | None:
        """What a listing emits for a series read whole: a single event as a single."""
        assert series.master is not None
        if not series.master.get("recurrence"):
            return self._single(series.master, calendar)
        decoded = self._series(series, window, calendar)
        return decoded.event if decoded else None

    async def fetch_changes(
        self,
        calendar: RemoteCalendar,
        cursor: str | None,
        known: Mapping[str, str | None],
        window: Window | None = None,
        page: str | None = None,
    ) -> Changes:
        """Everything since `cursor` in one call (every page is followed here; the answer never
        has `next_page`). The cursor names its window; a moved window is CursorExpired."""
        win = self._window(window)
        if cursor is None:
            return await self._full(calendar, known, win)
        state = load_cursor(cursor)
        if state is None:
            raise CursorExpired("the Microsoft cursor cannot be read; listing everything")
        link, old_window, index = state
        if old_window != win:
            raise CursorExpired("the Microsoft sync window moved; listing the new window")
        items, last = await self._pages(link, None, "listing changes", page_size=PAGE_SIZE, delta=True)
        new_link = last.get("@odata.deltaLink")
        if not new_link:
            raise ProviderError("Microsoft Graph ended a delta listing without a deltaLink")
        changes = Changes()
        by_digest = {d: key for key, digests in index.items() for d in digests}
        touched: dict[str, None] = {}
        emitted: set[str] = set()
        check: list[str] = []
        for item in items:
            iid = str(item.get("id") or "")
            if not iid:
                continue
            if me.is_removed(item):
                if iid in known:
                    check.append(iid)  # a single event: deleted, or moved out of the window
                elif me.occurrence_hash(iid) in by_digest:
                    touched[by_digest[me.occurrence_hash(iid)]] = None
                continue
            if me.is_instance(item):
                key = me.series_key(item)
                touched[key] = None
                index.setdefault(key, set()).add(me.occurrence_hash(iid))
                continue
            if item.get("type") == "seriesMaster" or item.get("recurrence"):
                touched[iid] = None
                continue
            emitted.add(iid)
            if known.get(iid) is None or known.get(iid) != me.etag_of(item):
                found = self._single(item, calendar)
                if found is not None:
                    changes.events.append(found)
        for iid, current in zip(check, await _all([self._get_event(i) for i in check]), strict=True):
            if current is None:
                changes.deleted.append(iid)
            elif current.get("recurrence") or current.get("type") == "seriesMaster":
                touched[iid] = None
            elif iid not in emitted and known.get(iid) != me.etag_of(current):
                emitted.add(iid)
                found = self._single(current, calendar)
                if found is not None:
                    changes.events.append(found)
        keys = [k for k in touched if k not in emitted]
        for key, series in zip(keys, await _all([self._read_series(k, win) for k in keys]), strict=True):
            if series is None or series.master is None:
                index.pop(key, None)
                if key in known and key not in changes.deleted:
                    changes.deleted.append(key)
                continue
            index[key] = {me.occurrence_hash(str(i["id"])) for i in series.instances if i.get("id")}
            event = self._whole(series, win, calendar)
            if event is None:
                changes.skipped += 1
                continue
            if known.get(key) is None or known.get(key) != event.etag:
                changes.events.append(event)
        changes.cursor = dump_cursor(str(new_link), win, index)
        return changes

    async def _full(self, calendar: RemoteCalendar, known: Mapping[str, str | None], win: Window) -> Changes:
        path = f"{self._calendar_path(calendar.remote_id)}/calendarView/delta"
        params = {"startDateTime": _iso(win.start_ts), "endDateTime": _iso(win.end_ts)}
        for attempt in (0, 1):
            try:
                items, last = await self._pages(path, params, "listing events", page_size=PAGE_SIZE, delta=True)
                break
            except CursorExpired:  # a skip token expired mid-way: start over once
                if attempt:
                    raise ProviderError("Microsoft Graph kept expiring a full listing; trying again later") from None
        link = last.get("@odata.deltaLink")
        if not link:
            raise ProviderError("Microsoft Graph ended a delta listing without a deltaLink")
        changes = Changes(full=True)
        groups: dict[str, list[dict[str, Any]]] = {}
        for item in items:
            if me.is_removed(item) or not item.get("id"):
                continue
            iid = str(item["id"])
            if me.is_instance(item):
                groups.setdefault(me.series_key(item), []).append(item)
                continue
            changes.present.add(iid)
            if known.get(iid) is None or known.get(iid) != me.etag_of(item):
                found = self._single(item, calendar)
                if found is not None:
                    changes.events.append(found)
                else:
                    changes.skipped += 1
        keys = list(groups)
        for key, master in zip(keys, await _all([self._get_event(k) for k in keys]), strict=True):
            if master is None:
                continue  # deleted since the listing
            changes.present.add(key)
            series = me.Series(key, master, groups[key] if master.get("recurrence") else [])
            event = self._whole(series, win, calendar)
            if event is None:
                changes.skipped += 1
            elif known.get(key) is None or known.get(key) != event.etag:
                changes.events.append(event)
        missing = {k for k in known if k not in changes.present}
        if missing:  # outside the window (long past, far ahead) or deleted: ask by listing the ids
            ids, _ = await self._pages(
                f"{self._calendar_path(calendar.remote_id)}/events",
                {"$select": "id", "$top": EVENTS_PAGE_SIZE},
                "listing event ids",
            )
            changes.present |= missing & {str(i.get("id")) for i in ids}
        index = {k: {me.occurrence_hash(str(i["id"])) for i in v} for k, v in groups.items()}
        changes.cursor = dump_cursor(str(link), win, index)
        return changes

    # -- events: writing -----------------------------------------------------------------------
    def _single_result(self, item: dict[str, Any], calendar: RemoteCalendar, out: Outgoing) -> RemoteEvent:
        event = self._single(item, calendar)
        if event is None:
            event = RemoteEvent(str(item["id"]), me.etag_of(item), out.uid, out.master, [])
            event.raw = me.raw_of(str(item["id"]), item, [])
        return event

    def _series_result(self, series: me.Series, win: Window, calendar: RemoteCalendar, out: Outgoing) -> RemoteEvent:
        """What a write stored, read as a listing reads it (same etag, same raw)."""
        assert series.master is not None
        if not series.master.get("recurrence"):
            return self._single_result(series.master, calendar, out)
        decoded = self._series(series, win, calendar)
        if decoded is not None:
            return decoded.event
        return RemoteEvent(
            series.key, None, out.uid, out.master, list(out.overrides), me.raw_of(series.key, series.master, [])
        )

    async def put_event(self, calendar: RemoteCalendar, event: Outgoing) -> RemoteEvent:
        if event.remote_id is None:
            return await self._insert(calendar, event)
        return await self._update(calendar, event, event.remote_id)

    async def _insert(self, calendar: RemoteCalendar, out: Outgoing) -> RemoteEvent:
        body = me.full_body(out.master, out.zone, out.calendar_zone)  # Unsupported: the engine leaves it queued
        body["transactionId"] = me.transaction_id(out.event_id, out.uid)
        resp = await self._request("POST", f"{self._calendar_path(calendar.remote_id)}/events", json_body=body)
        if resp.status_code not in (200, 201):
            raise self._fail(resp, "creating an event")
        created = resp.json()
        if not created.get("recurrence"):
            return self._single_result(created, calendar, out)
        return await self._finish_series(calendar, out, str(created["id"]), None)

    async def _update(self, calendar: RemoteCalendar, out: Outgoing, key: str) -> RemoteEvent:
        parsed = me.parse_raw(out.base)
        base = parsed[1] if parsed is not None and parsed[0] == key else None
        recurring = bool(
            out.master.recurrence or out.overrides or me.is_series_etag(out.etag) or (base or {}).get("recurrence")
        )
        win = self._window(None)
        if recurring:
            return await self._update_series(calendar, out, key, win)
        current = base
        if current is None or (out.etag and me.etag_of(current) != out.etag):
            current = await self._get_event(key)
            if current is None:
                log.info("Microsoft: event %s is gone; creating it again (the local edit wins)", key)
                return await self._insert(calendar, out)
            if out.etag and me.etag_of(current) != out.etag:
                raise PreconditionFailed(f"{key} changed on Outlook since our last sync")
            if current.get("recurrence"):
                return await self._update_series(calendar, out, key, win)
        old = self._single(current, calendar)
        body = me.patch_body(out.master, old.master if old else None, current, out.zone, out.calendar_zone, master=True)
        if not body:
            return self._single_result(current, calendar, out)
        resp = await self._patch(key, body, out.etag or me.etag_of(current))
        if resp is None:
            log.info("Microsoft: event %s is gone; creating it again (the local edit wins)", key)
            return await self._insert(calendar, out)
        patched = resp.json()
        if patched.get("recurrence"):
            return await self._finish_series(calendar, out, key, None)
        return self._single_result(patched, calendar, out)

    async def _update_series(self, calendar: RemoteCalendar, out: Outgoing, key: str, win: Window) -> RemoteEvent:
        series = await self._read_series(key, win)
        if series is None or series.master is None:
            log.info("Microsoft: event %s is gone; creating it again (the local edit wins)", key)
            return await self._insert(calendar, out)
        current = self._whole(series, win, calendar)
        current_etag = current.etag if current is not None else None
        if out.etag and current_etag != out.etag:
            raise PreconditionFailed(f"{key} changed on Outlook since our last sync")
        old = current.master if current is not None else None
        body = me.patch_body(out.master, old, series.master, out.zone, out.calendar_zone, master=True)
        if not body:
            return await self._finish_series(calendar, out, key, series)
        resp = await self._patch(key, body, me.etag_of(series.master))
        if resp is None:
            log.info("Microsoft: event %s is gone; creating it again (the local edit wins)", key)
            return await self._insert(calendar, out)
        return await self._finish_series(calendar, out, key, None)

    async def _patch(self, event_id: str, body: dict[str, Any], etag: str | None) -> httpx.Response | None:
        """PATCH with If-Match; None when the event is gone."""
        resp = await self._request(
            "PATCH", self._event_path(event_id), json_body=body, headers={"If-Match": etag} if etag else None
        )
        if resp.status_code == 412:
            raise PreconditionFailed(f"{event_id} changed on Outlook since our last sync")
        if resp.status_code in (404, 410):
            return None
        if resp.status_code != 200:
            raise self._fail(resp, "updating an event")
        return resp

    async def _finish_series(
        self, calendar: RemoteCalendar, out: Outgoing, key: str, series: me.Series | None
    ) -> RemoteEvent:
        """Bring the occurrences in line with `out` and answer the series as stored."""
        win = self._window(None)
        if series is None:
            series = await self._read_series(key, win)
        if series is None or series.master is None:
            raise ProviderError("Microsoft Graph: the event is gone right after writing it")
        if series.master.get("recurrence") and await self._write_occurrences(calendar, out, series, win):
            series = await self._read_series(key, win)
            if series is None or series.master is None:
                raise ProviderError("Microsoft Graph: the event is gone right after writing it")
        return self._series_result(series, win, calendar, out)

    async def _write_occurrences(self, calendar: RemoteCalendar, out: Outgoing, series: me.Series, win: Window) -> bool:
        """Overrides PATCH their occurrence, EXDATEs and cancelled overrides DELETE it, an exception
        Chronary no longer has is put back to the series' values. True when anything was written."""
        assert series.master is not None
        decoded = self._series(series, win, calendar)
        if decoded is None:
            return False
        days = ZoneInfo(calendar.local_timezone)
        zone = ZoneInfo(me.event_zone_name(series.master, calendar.local_timezone))
        all_day = bool(series.master.get("isAllDay"))
        uid = decoded.event.uid
        master = out.master
        local = {ov.recurrence_id_ts: ov for ov in out.overrides if ov.recurrence_id_ts is not None}
        gone = me.excluded(master.recurrence, out.calendar_zone) | {r for r, ov in local.items() if ov.status == "cancelled"}
        wrote = False

        def piece(item: dict[str, Any]) -> EventData | None:
            try:
                return me.decode_piece(item, zone, days, uid, rid=me.original_start(item, zone, all_day))
            except me.READ_ERRORS:
                return None

        for rid in sorted(gone):
            item = decoded.by_original.get(rid)
            if item is not None:
                await self._delete_instance(item)
                wrote = True
        for rid, override in sorted(local.items()):
            if rid in gone:
                continue
            item = decoded.by_original.get(rid)
            if item is None:
                log.info(
                    "Microsoft: no occurrence of %s at %s in the sync window; that override is not written", series.key, rid
                )
                continue
            body = me.patch_body(override, piece(item), item, out.zone, out.calendar_zone, master=False)
            if body:
                await self._patch_instance(item, body)
                wrote = True
        for rid, item in sorted(decoded.by_original.items()):
            if rid in local or rid in gone or item.get("type") != "exception":
                continue
            now = piece(item)
            if now is not None and not me.plain(now, master, days):
                await self._patch_instance(item, me.occurrence_body(master, rid, out.zone, out.calendar_zone))
                wrote = True
        return wrote

    async def _patch_instance(self, item: dict[str, Any], body: dict[str, Any]) -> None:
        if await self._patch(str(item["id"]), body, me.etag_of(item)) is None:
            log.warning("Microsoft: occurrence %s is gone; that override is not written", item.get("id"))

    async def _delete_instance(self, item: dict[str, Any]) -> None:
        etag = me.etag_of(item)
        resp = await self._request("DELETE", self._event_path(str(item["id"])), headers={"If-Match": etag} if etag else None)
        if resp.status_code == 412:
            raise PreconditionFailed(f"{item['id']} changed on Outlook since our last sync")
        if resp.status_code not in (200, 204, 404, 410):
            raise self._fail(resp, "deleting an occurrence")

    async def delete_event(self, calendar: RemoteCalendar, remote_id: str, etag: str | None) -> None:
        if_match = etag
        if me.is_series_etag(etag):
            win = self._window(None)
            series = await self._read_series(remote_id, win)
            if series is None or series.master is None:
                return
            current = self._whole(series, win, calendar)
            if current is None or current.etag != etag:
                raise PreconditionFailed(f"{remote_id} changed on Outlook since our last sync")
            if_match = me.etag_of(series.master)
        resp = await self._request(
            "DELETE", self._event_path(remote_id), headers={"If-Match": if_match} if if_match else None
        )
        if resp.status_code == 412:
            raise PreconditionFailed(f"{remote_id} changed on Outlook since our last sync")
        if resp.status_code not in (200, 204, 404, 410):
            raise self._fail(resp, "deleting an event")

    # -- push ----------------------------------------------------------------------------------
    def _expiration(self) -> str:
        return (self.clock.now() + timedelta(minutes=SUBSCRIPTION_MINUTES)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def _channel(self, data: dict[str, Any], remote_calendar_id: str, token: str) -> PushChannel:
        try:
            expires = int(me.instant(str(data["expirationDateTime"])).timestamp())
        except (KeyError, ValueError):
            expires = int(self.clock.now().timestamp()) + SUBSCRIPTION_MINUTES * 60
        return PushChannel(
            id=str(data["id"]),
            remote_calendar_id=remote_calendar_id,
            token=token,
            expires_at=expires,
            resource_id=str(data.get("resource") or "") or None,
        )

    async def subscribe(self, calendar: RemoteCalendar, callback_url: str, token: str) -> PushChannel:
        body = {
            "changeType": "created,updated,deleted",
            "notificationUrl": callback_url,
            "lifecycleNotificationUrl": callback_url,
            "resource": f"me/calendars/{calendar.remote_id}/events",
            "expirationDateTime": self._expiration(),
            "clientState": token,
        }
        resp = await self._request("POST", "/subscriptions", json_body=body)
        if resp.status_code not in (200, 201):
            raise self._fail(resp, "starting push notifications")
        return self._channel(resp.json(), calendar.remote_id, token)

    async def renew(self, channel: PushChannel, callback_url: str) -> PushChannel:
        resp = await self._request(
            "PATCH", f"/subscriptions/{quote(channel.id, safe='')}", json_body={"expirationDateTime": self._expiration()}
        )
        if resp.status_code == 404:  # expired or removed by Graph: a new one
            return await self.subscribe(RemoteCalendar(channel.remote_calendar_id, ""), callback_url, channel.token)
        if resp.status_code != 200:
            raise self._fail(resp, "renewing push notifications")
        return self._channel(resp.json(), channel.remote_calendar_id, channel.token)

    async def unsubscribe(self, channel: PushChannel) -> None:
        resp = await self._request("DELETE", f"/subscriptions/{quote(channel.id, safe='')}")
        if resp.status_code not in (200, 204, 404):
            raise self._fail(resp, "stopping push notifications")

    @classmethod
    def handshake(cls, query: Mapping[str, str]) -> str | None:
        token = query.get("validationToken")
        return str(token) if token is not None else None

    @classmethod
    def verify_notification(
        cls, headers: Mapping[str, str], body: bytes, lookup: Callable[[str], PushChannel | None]
    ) -> list[Notification]:
        try:
            data = json.loads(body or b"{}")
        except (ValueError, UnicodeDecodeError):
            return []
        items = data.get("value") if isinstance(data, dict) else None
        found: dict[str, Notification] = {}
        for item in items if isinstance(items, list) else []:
            if not isinstance(item, dict) or not item.get("subscriptionId"):
                continue
            channel = lookup(str(item["subscriptionId"]))
            if channel is None or not channel.token:
                continue
            sent = str(item.get("clientState") or "")
            if not hmac.compare_digest(sent.encode(), channel.token.encode()):
                continue
            renew = item.get("lifecycleEvent") in LIFECYCLE_RENEW
            note = found.setdefault(channel.id, Notification(channel.id, sync=True))
            note.renew = note.renew or renew
        return list(found.values())

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
        """Microsoft has no token revocation for this flow: the tokens are forgotten here (the
        engine drops the stored cache with the connection; the user may remove the app's
        consent at https://myapps.microsoft.com)."""
        async with self._token_lock:
            self._cache = msal.SerializableTokenCache()
            self._secrets = {k: v for k, v in self._secrets.items() if k != "token_cache"}
            self._access = None
            self._fresh = None
            self._drop_app()

    async def close(self) -> None:
        self._drop_app()
        await self.api.close()


__all__ = ["SCOPES", "Provider", "dump_cursor", "error_code", "load_cursor"]

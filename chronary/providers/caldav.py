"""CalDAV provider, for iCloud (an app-specific password against caldav.icloud.com) and any
CalDAV server (Radicale, Nextcloud, Fastmail, …).

Built on the `caldav` library's client (blocking; the engine calls it from a thread); the bulk
reads are our own REPORTs through that client, parsed with lxml, not its object layer.

A first import reads the calendar's DAV:sync-token (a Depth 0 PROPFIND), then every body with
one calendar-query: a server renders that for less than a sync-collection with bodies (Radicale
keeps no per-item history for it), and the token, read first, can only be older than the bodies
(what changed in between comes again in the next round: an unchanged etag, or a no-op).
Later pulls use RFC 6578 sync-collection asking for the bodies too (calendar-data), so a changed
round is one request; an expired token is reported as CursorExpired (the engine then lists
everything, etags only, and fetches just the bodies it lacks). Servers without sync-collection
(no DAV:sync-token, or a REPORT they refuse with 405/501) fall back to ctag + etag comparison;
one that refuses calendar-query is read with sync-collection. Bodies a server leaves out of an
answer are fetched with calendar-multiget in chunks of MULTIGET_CHUNK, and only for hrefs whose
etag we do not already hold. The calendar home found at login is remembered per (server, user)
in this process, so a scheduled round is two requests when nothing changed (the calendar listing
and one sync-collection per calendar). Writes carry If-Match / If-None-Match so a concurrent
edit gives 412 instead of being overwritten.
The library is blocking: each interface coroutine runs its work in a thread. Bodies are read
with the one VEVENT codec, leniently (one odd resource is skipped and counted, not fatal), and
written with its encoder on top of the last body both sides agreed on.
Every host we talk to passes `chronary.outbound.check_target` first, and the library's own
requests (discovery, redirects to another host such as iCloud's pNN-caldav) go through a
niquests session we build: each request URL is checked before it is sent (pre_request hook,
every redirect hop included) and the DNS resolver refuses addresses of this server at connect
time, so nothing is ever sent to it. Environment proxies are off (the guard must see the real
destination).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, TypeVar
from urllib.parse import quote, unquote, urljoin, urlsplit
from zoneinfo import ZoneInfo

import niquests
from caldav.davclient import DAVClient  # caldav's top-level name is a lazy attribute type checkers cannot see
from caldav.lib import error as dav_error
from lxml import etree
from niquests.packages.urllib3.contrib.resolver import BaseResolver, ProtocolResolver

from chronary.clock import Clock
from chronary.ical.decode import decode_resource
from chronary.ical.encode import encode
from chronary.ical.model import Outgoing
from chronary.outbound import BlockedTarget, OutboundError, check_target, guarded_getaddrinfo
from chronary.providers.base import (
    Account,
    AuthFailed,
    Changes,
    CursorExpired,
    PreconditionFailed,
    ProviderError,
    RemoteCalendar,
    RemoteEvent,
    Unreachable,
    Window,
)
from chronary.providers.base import Provider as BaseProvider

log = logging.getLogger("chronary.providers.caldav")
T = TypeVar("T")

DAV, CALDAV, APPLE, CS = (
    "DAV:",
    "urn:ietf:params:xml:ns:caldav",
    "http://apple.com/ns/ical/",
    "http://calendarserver.org/ns/",
)
NS = {"d": DAV, "c": CALDAV, "a": APPLE, "cs": CS}
ICLOUD_URL = "https://caldav.icloud.com"
TIMEOUT = 30
MULTIGET_CHUNK = 500
SYNC_MAX_PAGES = 100  # truncated sync-collection answers (RFC 6578 3.6) followed up to this
HOMES_MAX = 1024
WRITE_PRIVILEGES = {"write", "write-content", "all", "bind"}
_SAFE_NAME = re.compile(r"^[A-Za-z0-9@._-]{1,120}$")

_LIST_BODY = f"""<?xml version="1.0" encoding="utf-8"?>
<d:propfind xmlns:d="{DAV}" xmlns:c="{CALDAV}" xmlns:a="{APPLE}" xmlns:cs="{CS}"><d:prop>
<d:resourcetype/><d:displayname/><a:calendar-color/><d:current-user-privilege-set/>
<c:supported-calendar-component-set/><c:calendar-timezone/></d:prop></d:propfind>"""
_ETAGS_BODY = f"""<?xml version="1.0" encoding="utf-8"?>
<d:propfind xmlns:d="{DAV}"><d:prop><d:getetag/><d:resourcetype/></d:prop></d:propfind>"""
_SYNC_BODY = (
    f'<?xml version="1.0" encoding="utf-8"?><d:sync-collection xmlns:d="{DAV}" xmlns:c="{CALDAV}">'
    "<d:sync-token>{token}</d:sync-token><d:sync-level>1</d:sync-level><d:prop><d:getetag/>{data}</d:prop>"
    "</d:sync-collection>"
)
_QUERY_BODY = (
    f'<?xml version="1.0" encoding="utf-8"?><c:calendar-query xmlns:d="{DAV}" xmlns:c="{CALDAV}">'
    '<d:prop><d:getetag/><c:calendar-data/></d:prop><c:filter><c:comp-filter name="VCALENDAR"/></c:filter>'
    "</c:calendar-query>"
)
_TOKEN_BODY = f"""<?xml version="1.0" encoding="utf-8"?>
<d:propfind xmlns:d="{DAV}"><d:prop><d:sync-token/></d:prop></d:propfind>"""
_CTAG_BODY = f"""<?xml version="1.0" encoding="utf-8"?>
<d:propfind xmlns:d="{DAV}" xmlns:cs="{CS}"><d:prop><cs:getctag/><d:sync-token/></d:prop></d:propfind>"""


def _path(url: Any) -> str:
    """Canonical href: the unquoted path, so 'a%40b.ics' and 'a@b.ics' are one resource."""
    text = str(url)
    if text[:1] == "/" and text[:2] != "//" and "?" not in text and "#" not in text:
        return unquote(text)  # already a path (what servers answer): urlsplit would give it back
    return unquote(urlsplit(text).path)


_RESPONSE, _HREF, _STATUS, _PROPSTAT, _PROP = (f"{{{DAV}}}{n}" for n in ("response", "href", "status", "propstat", "prop"))
_GETETAG, _CALENDAR_DATA = f"{{{DAV}}}getetag", f"{{{CALDAV}}}calendar-data"


def _responses(tree: Any) -> Iterator[tuple[str, str, dict[str, str | None] | None]]:
    """(href, status, {getetag, calendar-data} of the 200 propstat or None) of each response of
    a multistatus, read child by child (thousands in a first import: no path lookups)."""
    for response in [] if tree is None else tree.iterchildren(_RESPONSE):
        href, status = None, ""
        props: dict[str, str | None] | None = None
        for child in response:
            tag = child.tag
            if tag == _HREF and href is None:
                href = child.text or ""
            elif tag == _STATUS:
                status = child.text or ""
            elif tag == _PROPSTAT and props is None and " 200 " in (child.findtext(_STATUS) or "") + " ":
                props = {_GETETAG: None, _CALENDAR_DATA: None}
                for prop in child.iterchildren(_PROP):
                    for item in prop:
                        if item.tag in props:
                            props[item.tag] = item.text or ""  # as findtext: present but empty is ""
        yield _path(href or ""), status, props


def _tz_name(vtimezone_text: str | None) -> str | None:
    if not vtimezone_text:
        return None
    match = re.search(r"^TZID:(.+)$", vtimezone_text, re.MULTILINE)
    return match.group(1).strip() if match else None


class _GuardedResolver(BaseResolver):
    """niquests/urllib3-future resolver: the system's answers, refused when one reaches this server.

    Subclasses the base niquests itself imports (not the lazily loaded system resolver), so the
    frozen binary needs nothing extra.
    """

    protocol = ProtocolResolver.SYSTEM
    implementation = "socket"

    def __init__(self, settings: Any) -> None:
        super().__init__(None, None)
        self._settings = settings

    def recycle(self) -> BaseResolver:
        return self

    def close(self) -> None:
        pass  # nothing held open

    def is_available(self) -> bool:
        return True

    def getaddrinfo(self, host: Any, port: Any, family: Any, type: Any, proto: int = 0, flags: int = 0, **_: Any) -> Any:
        host = host.decode("ascii") if isinstance(host, bytes) else host
        return guarded_getaddrinfo(str(host), int(port or 0), self._settings, family, type, proto)


def guarded_session(settings: Any) -> niquests.Session:
    """The session every DAVClient uses: per-request URL check plus a connect-time resolver."""
    session = niquests.Session(resolver=_GuardedResolver(settings))
    session.trust_env = False

    def check(request: Any) -> Any:
        check_target(str(request.url), settings)
        return request

    session.hooks["pre_request"].append(check)
    return session


# (server_url, username) -> (calendar home path, scheme://host[:port]/ of it): found at login, so
# a scheduled round need not rediscover it (two requests). Paths only, never a credential; a
# listing that fails on a remembered home rediscovers once.
_homes: dict[tuple[str, str], tuple[str, str]] = {}


class Provider(BaseProvider):
    name = "caldav"
    merge_chunk = 500  # one answer holds the whole calendar: fewer, bigger write transactions

    def __init__(self, account: Account, settings: Any, clock: Clock | None = None) -> None:
        super().__init__(account, settings, clock)
        self.url = (account.server_url or ICLOUD_URL).rstrip("/") + "/"
        self._client: DAVClient | None = None
        self._home: str | None = None
        self._base: str | None = None  # scheme://host[:port]/ of the calendar home

    # -- plumbing ------------------------------------------------------------------------------
    def _guard(self, url: str) -> None:
        try:
            check_target(url, self.settings)
        except OutboundError as exc:
            raise ProviderError(f"server_url not allowed: {exc.reason}", retryable=False) from None

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        """Run one library call, turning its many failure types into ours (no secrets in text)."""
        try:
            return fn()
        except ProviderError:
            raise
        except BlockedTarget as exc:
            raise ProviderError(f"{what}: {exc.reason}", retryable=False) from None
        except OutboundError as exc:
            raise Unreachable(f"{what}: cannot reach the server ({exc.reason})") from None
        except dav_error.AuthorizationError as exc:
            if exc.status == 401 or exc.status is None:
                raise AuthFailed("the server rejected the username or password (HTTP 401)") from None
            raise ProviderError(f"{what}: access denied by the server (HTTP {exc.status})", retryable=False) from None
        except dav_error.RateLimitError:
            raise ProviderError(f"{what}: the server is rate limiting us (429/503)") from None
        except dav_error.DAVError as exc:
            status = f"HTTP {exc.status}" if exc.status else type(exc).__name__
            raise ProviderError(f"{what} failed ({status})") from None
        except (OSError, ConnectionError, TimeoutError) as exc:
            raise Unreachable(f"{what}: cannot reach the server ({type(exc).__name__})") from None
        except Exception as exc:  # niquests/urllib3 raise their own hierarchy
            name = type(exc).__name__
            if any(k in name for k in ("Connection", "Timeout", "Protocol", "SSL", "Remote", "Read", "Proxy")):
                raise Unreachable(f"{what}: cannot reach the server ({name})") from None
            log.warning("%s: unexpected %s from the CalDAV library", what, name)
            raise ProviderError(f"{what} failed ({name})") from None

    @property
    def client(self) -> DAVClient:
        if self._client is None:
            self._guard(self.url)
            client = DAVClient(
                url=self.url,
                username=self.account.username,
                password=self.account.secrets.get("password"),
                auth_type="basic",
                timeout=TIMEOUT,
                enable_rfc6764=False,
            )
            client.session.close()  # unused so far: replaced by one whose requests are guarded
            client.session = guarded_session(self.settings)
            self._client = client
        return self._client

    def _abs(self, href: str) -> str:
        """hrefs are paths on the host of the calendar home, which may not be server_url's host
        (iCloud: caldav.icloud.com discovers a pNN-caldav.icloud.com home)."""
        if self._base is None:
            self.discover()
        return urljoin(self._base or self.url, quote(href))

    def _multistatus(self, method: str, url: str, body: str, depth: int) -> list[Any]:
        self._guard(url)
        client = self.client

        def go() -> Any:
            headers = {"Depth": str(depth), "Content-Type": "application/xml; charset=utf-8"}
            return client.request(url, method, body, headers)

        resp = self._call(method, go)
        if resp.status == 404:
            raise ProviderError(f"{method} {_path(url)}: not found (HTTP 404)", retryable=False)
        if resp.status not in (200, 207):
            raise ProviderError(f"{method} {_path(url)} failed (HTTP {resp.status})")
        tree = resp.tree
        return [] if tree is None else tree.findall(".//d:response", NS)

    @staticmethod
    def _ok_prop(response: Any) -> Any:
        for propstat in response.findall("d:propstat", NS):
            status = propstat.findtext("d:status", default="", namespaces=NS)
            if " 200 " in status + " ":
                return propstat.find("d:prop", NS)
        return None

    # -- interface (coroutines; the blocking work runs in a thread) -----------------------------
    async def login(self) -> str:
        return await asyncio.to_thread(self.discover)

    async def list_calendars(self) -> list[RemoteCalendar]:
        return await asyncio.to_thread(self.calendars)

    async def fetch_changes(
        self,
        calendar: RemoteCalendar,
        cursor: str | None,
        known: Mapping[str, str | None],
        window: Window | None = None,
        page: str | None = None,
    ) -> Changes:
        """Everything at once (CalDAV has no paging and no window here: `page`/`window` unused)."""
        return await asyncio.to_thread(self.changes, calendar, cursor, known)

    async def put_event(self, calendar: RemoteCalendar, event: Outgoing) -> RemoteEvent:
        return await asyncio.to_thread(self.put, calendar, event)

    async def delete_event(self, calendar: RemoteCalendar, remote_id: str, etag: str | None) -> None:
        await asyncio.to_thread(self.delete, remote_id, etag)

    async def close(self) -> None:
        await asyncio.to_thread(self.close_now)

    # -- the blocking work -----------------------------------------------------------------------
    def discover(self) -> str:
        """Log in and find the calendar home; returns the username."""
        client = self.client
        principal = self._call("login", client.principal)
        home = self._call("calendar discovery", lambda: principal.calendar_home_set)
        home_url = urljoin(self.url, str(home.url))
        parts = urlsplit(home_url)
        self._guard(home_url)
        self._home = _path(home_url)
        self._base = f"{parts.scheme}://{parts.netloc}/"
        if len(_homes) >= HOMES_MAX:
            _homes.clear()
        _homes[self._home_key()] = (self._home, self._base)
        return self.account.username or ""

    def _home_key(self) -> tuple[str, str]:
        return (self.url, self.account.username or "")

    def _list_home(self) -> list[Any]:
        """The depth-1 listing of the calendar home: the remembered one, else a fresh discovery."""
        remembered = self._home is None and self._home_key() in _homes
        if remembered:
            self._home, self._base = _homes[self._home_key()]
        elif self._home is None:
            self.discover()
        assert self._home is not None
        try:
            return self._multistatus("PROPFIND", self._abs(self._home), _LIST_BODY, 1)
        except (AuthFailed, Unreachable):
            raise
        except ProviderError:
            if not remembered:
                raise
            _homes.pop(self._home_key(), None)  # moved or gone: find it again, once
            self._home = self._base = None
            self.discover()
            home: str = self._home or ""  # set by discover()
            return self._multistatus("PROPFIND", self._abs(home), _LIST_BODY, 1)

    def calendars(self) -> list[RemoteCalendar]:
        out = []
        for response in self._list_home():
            prop = self._ok_prop(response)
            href = _path(response.findtext("d:href", default="", namespaces=NS))
            if prop is None or prop.find("d:resourcetype/c:calendar", NS) is None:
                continue
            comps = prop.find("c:supported-calendar-component-set", NS)
            if comps is not None and len(comps) and not any(c.get("name") == "VEVENT" for c in comps):
                continue  # a task list, not a calendar of events
            privs = prop.find("d:current-user-privilege-set", NS)
            read_only = False
            if privs is not None and len(privs):
                names = {etree.QName(p).localname for p in privs.iterfind(".//d:privilege/*", NS)}
                read_only = not (names & WRITE_PRIVILEGES)
            color = (prop.findtext("a:calendar-color", default="", namespaces=NS) or "").strip() or None
            out.append(
                RemoteCalendar(
                    remote_id=href,
                    name=(prop.findtext("d:displayname", default="", namespaces=NS) or "").strip()
                    or href.rstrip("/").rsplit("/", 1)[-1],
                    color=color[:7] if color and color.startswith("#") and len(color) == 9 else color,
                    read_only=read_only,
                    timezone=_tz_name(prop.findtext("c:calendar-timezone", default=None, namespaces=NS)),
                )
            )
        return out

    def changes(self, calendar: RemoteCalendar, cursor: str | None, known: Mapping[str, str | None]) -> Changes:
        if cursor is None and not known:
            first = self._first_import(calendar)
            if first is not None:
                return first
        if cursor and cursor.startswith("ctag:"):
            ctag = self._ctag(calendar)
            if ctag and cursor == f"ctag:{ctag}":
                return Changes(cursor=cursor, unchanged=True)
            return self._full_by_etags(calendar, known)
        token = cursor[5:] if cursor and cursor.startswith("sync:") else None
        # bodies in the same answer, except when re-listing a calendar we mostly hold already
        result = self._sync_collection(calendar, token, with_data=token is not None or not known)
        if result is None:
            return self._full_by_etags(calendar, known)
        new_token, listed, bodies, deleted = result
        changes = Changes(deleted=sorted(deleted), cursor=f"sync:{new_token}", full=token is None)
        if changes.full:
            changes.present = set(listed)
        wanted = [h for h, etag in listed.items() if etag is None or known.get(h) != etag]
        self._decode_into(changes, calendar, ((h, listed[h], bodies[h]) for h in wanted if h in bodies))
        self._read_into(changes, calendar, [h for h in wanted if h not in bodies])
        return changes

    def _first_import(self, calendar: RemoteCalendar) -> Changes | None:
        """A calendar we hold nothing of: its sync token (else its ctag), then every body by one
        calendar-query. None when the server refuses the query or cuts it short (the caller
        reads the calendar with sync-collection instead)."""
        token = self._collection_prop(calendar, _TOKEN_BODY, "d:sync-token")
        ctag = None if token else self._ctag(calendar)
        cursor = f"sync:{token}" if token else f"ctag:{ctag}" if ctag else None
        url = self._abs(calendar.remote_id)
        self._guard(url)
        client = self.client
        headers = {"Depth": "1", "Content-Type": "application/xml; charset=utf-8"}

        def go() -> Any:
            try:
                return client.request(url, "REPORT", _QUERY_BODY, headers)
            except dav_error.AuthorizationError:
                raise
            except dav_error.DAVError:
                return None  # refused: read it with sync-collection

        resp = self._call("calendar-query", go)
        if resp is None or resp.status not in (200, 207) or resp.tree is None:
            return None
        own = calendar.remote_id.rstrip("/")
        listed: dict[str, str | None] = {}
        bodies: dict[str, str] = {}
        for href, status, props in _responses(resp.tree):
            if href.rstrip("/") == own:
                if " 507 " in status + " ":
                    return None  # the server cut the answer short: sync-collection pages instead
                continue
            if props is None:
                continue
            listed[href] = props[_GETETAG]
            text = props[_CALENDAR_DATA]
            if text:
                bodies[href] = text
        changes = Changes(present=set(listed), cursor=cursor, full=True)
        self._decode_into(changes, calendar, ((h, listed[h], bodies[h]) for h in bodies))
        self._read_into(changes, calendar, [h for h in listed if h not in bodies])
        return changes

    def _collection_prop(self, calendar: RemoteCalendar, body: str, name: str) -> str | None:
        """One property of the calendar collection itself (a Depth 0 PROPFIND), None if absent."""
        for response in self._multistatus("PROPFIND", self._abs(calendar.remote_id), body, 0):
            prop = self._ok_prop(response)
            if prop is not None:
                value = (prop.findtext(name, default="", namespaces=NS) or "").strip()
                if value:
                    return value
        return None

    def _sync_collection(
        self, calendar: RemoteCalendar, token: str | None, with_data: bool
    ) -> tuple[str, dict[str, str | None], dict[str, str], set[str]] | None:
        """RFC 6578 sync-collection from `token` (None: everything), following truncated answers.

        Returns (new token, href -> etag, href -> body for those the server sent, deleted hrefs),
        or None when the server has no sync-collection (asked without a token, or it refuses
        the REPORT as unknown although it gave us a token)."""
        url = self._abs(calendar.remote_id)
        own = calendar.remote_id.rstrip("/")
        data = "<c:calendar-data/>" if with_data else ""
        listed: dict[str, str | None] = {}
        bodies: dict[str, str] = {}
        deleted: set[str] = set()
        current = token
        for _ in range(SYNC_MAX_PAGES):
            body = _SYNC_BODY.format(token=_xml_escape(current or ""), data=data)
            resp = self._sync_request(url, body, current)
            if resp is None:
                return None
            tree = resp.tree
            new_token = (tree.findtext("d:sync-token", default="", namespaces=NS) if tree is not None else "").strip()
            if not new_token:
                if current is None:
                    return None  # no token in the answer: not really sync-collection
                raise ProviderError("sync-collection answered without a sync token")
            truncated = False
            for href, status_text, props in _responses(tree):
                status = status_text + " "
                if href.rstrip("/") == own:
                    truncated = truncated or " 507 " in status
                    continue
                if " 404 " in status:
                    deleted.add(href)
                    listed.pop(href, None)
                    bodies.pop(href, None)
                    continue
                if props is None:
                    continue
                deleted.discard(href)
                listed[href] = props[_GETETAG]
                text = props[_CALENDAR_DATA]
                if text:
                    bodies[href] = text
                else:
                    bodies.pop(href, None)
            if not truncated or new_token == current:
                return new_token, listed, bodies, deleted
            current = new_token
        log.warning("sync-collection of %s still truncated after %d pages", calendar.remote_id, SYNC_MAX_PAGES)
        return current or "", listed, bodies, deleted

    def _sync_request(self, url: str, body: str, token: str | None) -> Any:
        """One sync-collection REPORT: its response, None for "not supported" on a first listing,
        CursorExpired when the server refuses our token."""
        self._guard(url)
        client = self.client
        headers = {"Depth": "1", "Content-Type": "application/xml; charset=utf-8"}

        def go() -> Any:
            try:
                return client.request(url, "REPORT", body, headers)
            except dav_error.DAVError as exc:
                if token is not None and (
                    any("valid-sync-token" in p for p in exc.preconditions) or exc.status in (403, 409, 410, 412)
                ):
                    raise CursorExpired("the server no longer accepts our sync token") from None
                raise

        resp = self._call("sync-collection", go)
        if resp.status in (200, 207):
            return resp
        if resp.status in (405, 501):
            return None  # no such REPORT after all (the token came from PROPFIND): ctag + etags
        expired = resp.status in (403, 409, 410, 412) or b"valid-sync-token" in (_raw(resp) or b"")
        if token is not None and expired:
            raise CursorExpired("the server no longer accepts our sync token")
        if token is None:
            return None  # no sync-collection support (501, 405, …): ctag + etags instead
        raise ProviderError(f"sync-collection failed (HTTP {resp.status})")

    def _ctag(self, calendar: RemoteCalendar) -> str | None:
        responses = self._multistatus("PROPFIND", self._abs(calendar.remote_id), _CTAG_BODY, 0)
        for response in responses:
            prop = self._ok_prop(response)
            if prop is not None:
                return prop.findtext("cs:getctag", default=None, namespaces=NS) or prop.findtext(
                    "d:sync-token", default=None, namespaces=NS
                )
        return None

    def _full_by_etags(self, calendar: RemoteCalendar, known: Mapping[str, str | None]) -> Changes:
        ctag = self._ctag(calendar)
        listed: dict[str, str | None] = {}
        for response in self._multistatus("PROPFIND", self._abs(calendar.remote_id), _ETAGS_BODY, 1):
            prop = self._ok_prop(response)
            href = _path(response.findtext("d:href", default="", namespaces=NS))
            if prop is None or href == calendar.remote_id or prop.find("d:resourcetype/d:collection", NS) is not None:
                continue
            listed[href] = prop.findtext("d:getetag", default=None, namespaces=NS)
        wanted = [h for h, etag in listed.items() if etag is None or known.get(h) != etag]
        changes = Changes(present=set(listed), cursor=f"ctag:{ctag}" if ctag else None, full=True)
        self._read_into(changes, calendar, wanted)
        return changes

    def _read_into(self, changes: Changes, calendar: RemoteCalendar, hrefs: list[str]) -> None:
        """Fetch and decode the bodies of `hrefs` into `changes.events`."""
        if hrefs:
            self._decode_into(changes, calendar, self._multiget(calendar, hrefs))

    def _decode_into(
        self, changes: Changes, calendar: RemoteCalendar, items: Iterable[tuple[str, str | None, str | None]]
    ) -> None:
        """Decode (href, etag, body) into `changes.events`; an unreadable body is skipped and
        counted (lenient decoding), a resource without events (a task) ignored."""
        tz = ZoneInfo(calendar.local_timezone)
        for href, etag, body in items:
            if body is None:
                continue
            try:
                resource = decode_resource(body, tz, strict=False)
            except Exception as exc:  # noqa: BLE001 - CodecError, or icalendar tripping on odd input
                changes.skipped += 1
                log.warning("skipped unparsable resource %s (%s)", href, type(exc).__name__)
                continue
            if resource is not None:
                changes.events.append(RemoteEvent(href, etag, resource.uid, resource.master, resource.overrides, raw=body))

    def _multiget(self, calendar: RemoteCalendar, hrefs: list[str]) -> Iterator[tuple[str, str | None, str | None]]:
        for i in range(0, len(hrefs), MULTIGET_CHUNK):
            chunk = hrefs[i : i + MULTIGET_CHUNK]
            refs = "".join(f"<d:href>{_xml_escape(quote(h))}</d:href>" for h in chunk)
            body = (
                f'<?xml version="1.0" encoding="utf-8"?><c:calendar-multiget xmlns:d="{DAV}" xmlns:c="{CALDAV}">'
                f"<d:prop><d:getetag/><c:calendar-data/></d:prop>{refs}</c:calendar-multiget>"
            )
            for response in self._multistatus("REPORT", self._abs(calendar.remote_id), body, 1):
                prop = self._ok_prop(response)
                if prop is None:
                    continue  # deleted between listing and fetch: the next round sees it gone
                yield (
                    _path(response.findtext("d:href", default="", namespaces=NS)),
                    prop.findtext("d:getetag", default=None, namespaces=NS),
                    prop.findtext("c:calendar-data", default=None, namespaces=NS),
                )

    def put(self, calendar: RemoteCalendar, event: Outgoing) -> RemoteEvent:
        """PUT the encoded resource: If-None-Match for a new one, If-Match for a replacement."""
        ical = encode(event, self.clock.now())
        uid, href, etag = event.uid, event.remote_id, event.etag
        if href is None:
            name = uid if _SAFE_NAME.match(uid) else hashlib.sha256(uid.encode()).hexdigest()[:40]
            href = calendar.remote_id.rstrip("/") + "/" + name + ".ics"
        headers = {"Content-Type": "text/calendar; charset=utf-8"}
        if etag:
            headers["If-Match"] = etag
        else:
            headers["If-None-Match"] = "*"
        url = self._abs(href)
        self._guard(url)
        client = self.client
        resp = self._call("PUT", lambda: client.put(url, ical, headers))
        if resp.status == 412:
            raise PreconditionFailed(f"{href} changed on the server since our last sync")
        if resp.status not in (200, 201, 204):
            raise ProviderError(f"PUT {href} failed (HTTP {resp.status})", retryable=resp.status >= 500)
        new_etag = resp.headers.get("ETag")
        if not new_etag or new_etag.startswith("W/"):
            for response in self._multistatus("PROPFIND", url, _ETAGS_BODY, 0):
                prop = self._ok_prop(response)
                if prop is not None:
                    new_etag = prop.findtext("d:getetag", default=None, namespaces=NS)
        return RemoteEvent(href, new_etag, uid, event.master, event.overrides, raw=ical)

    def delete(self, href: str, etag: str | None) -> None:
        url = self._abs(href)
        self._guard(url)
        client = self.client
        headers = {"If-Match": etag} if etag else {}
        resp = self._call("DELETE", lambda: client.delete(url, headers))
        if resp.status == 412:
            raise PreconditionFailed(f"{href} changed on the server since our last sync")
        if resp.status not in (200, 204, 404, 410):
            raise ProviderError(f"DELETE {href} failed (HTTP {resp.status})", retryable=resp.status >= 500)

    def close_now(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):  # closing must never fail a sync
                self._client.close()
            self._client = None


def _raw(resp: Any) -> bytes | None:
    raw = getattr(resp, "_raw", None)
    return raw.encode() if isinstance(raw, str) else raw if isinstance(raw, bytes) else None


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

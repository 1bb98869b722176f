"""The Microsoft provider against the protocol fake (tests/fakes/microsoft.py) over HTTPS on
127.0.0.1: msal's auth code flow with PKCE (no instance discovery), rotating refresh tokens,
calendars, calendarView delta listings with whole series, time zones, writes with transaction
ids and etags, throttling and the mailbox concurrency limit, subscriptions and notifications."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar
from urllib.parse import parse_qs, quote, urlsplit
from zoneinfo import ZoneInfo

import httpx
import pytest
import requests

from chronary.clock import Clock, ManualClock
from chronary.config import Settings
from chronary.ical.model import CodecError, EventData, Outgoing
from chronary.providers import microsoft
from chronary.providers import microsoft_events as me
from chronary.providers.base import (
    Account,
    AuthFailed,
    CursorExpired,
    Notification,
    PreconditionFailed,
    ProviderError,
    PushChannel,
    RemoteCalendar,
    RemoteEvent,
    Window,
)
from chronary.providers.microsoft import Provider
from tests.fakes.microsoft import FakeMicrosoft

CLIENT_ID = "6f1c2b5e-0d7a-4c1e-9f3b-2a8d7e6c5b4a"
SECRET = "Qx8~provider.client~secret"
REDIRECT = "http://127.0.0.1:8765/v1/connections/callback"
ANN = "ann@contoso.example"
BERLIN = "Europe/Berlin"
T = TypeVar("T")
# msal warns on every sign-in whose response comes back in the query (our callback is a GET);
# the provider silences it, but pytest restores the warning filters around collection
pytestmark = pytest.mark.filterwarnings("ignore:response_mode='form_post' is recommended:UserWarning")


def run(coro: Awaitable[T]) -> T:
    async def main() -> T:
        return await coro

    return asyncio.run(main())


def free_port(not_this: int) -> int:
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port: int = s.getsockname()[1]
        if port != not_this:
            return port


@pytest.fixture
def make_fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., FakeMicrosoft]]:
    fakes: list[FakeMicrosoft] = []
    monkeypatch.setattr(microsoft, "REQUESTS_PER_MINUTE", 100_000)  # the budget is http.py's, tested with Google

    def make(**kw: Any) -> FakeMicrosoft:
        fake = FakeMicrosoft(**kw)
        fakes.append(fake)
        fake.add_client(CLIENT_ID, SECRET, [REDIRECT])
        fake.add_account(ANN, "Ann Example")
        monkeypatch.setenv("SSL_CERT_FILE", fake.cafile)
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", fake.cafile)
        return fake

    yield make
    for fake in fakes:
        fake.close()
        assert fake.errors == [], fake.errors  # no request hit a bug inside the fake


@pytest.fixture
def fake(make_fake: Callable[..., FakeMicrosoft]) -> FakeMicrosoft:
    return make_fake()


def settings_for(fake: FakeMicrosoft) -> Settings:
    return Settings(
        microsoft_client_id=CLIENT_ID,
        microsoft_client_secret=SECRET,
        microsoft_authority=fake.authority,
        microsoft_graph_url=fake.graph_url,
        port=free_port(fake.port),
    )


def reply_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def connect(fake: FakeMicrosoft, settings: Settings | None = None) -> dict[str, str]:
    """The secrets of a connection made through the real sign-in (auth code + PKCE)."""
    settings = settings or settings_for(fake)
    started = run(Provider.authorization_url(settings, REDIRECT, "state-1", []))
    return run(Provider.exchange_code(settings, REDIRECT, reply_of(fake.sign_in(started.url)), started.pending))


def provider_for(fake: FakeMicrosoft, secrets: dict[str, str] | None = None, clock: Clock | None = None) -> Provider:
    settings = settings_for(fake)
    return Provider(Account("microsoft", ANN, None, secrets or connect(fake, settings)), settings, clock)


def default_calendar(fake: FakeMicrosoft) -> RemoteCalendar:
    return RemoteCalendar(fake.account_info(ANN)["default_calendar"], "Calendar", local_timezone=BERLIN)


def day(offset: int) -> date:
    return datetime.now(UTC).date() + timedelta(days=offset)


def at(offset: int, clock: str) -> str:
    return f"{day(offset).isoformat()}T{clock}"


def when(local: str, tz: str = "UTC") -> dict[str, str]:
    return {"dateTime": local, "timeZone": tz}


def graph_event(subject: str, start: str, end: str, tz: str = "UTC", **extra: Any) -> dict[str, Any]:
    return {"subject": subject, "start": when(start, tz), "end": when(end, tz), **extra}


def ts(local: str, tz: str = "UTC") -> int:
    return int(datetime.fromisoformat(local).replace(tzinfo=ZoneInfo(tz)).timestamp())


def data(
    title: str,
    start: int,
    end: int,
    *,
    all_day: bool = False,
    recurrence: list[str] | None = None,
    rid: int | None = None,
    reminders: list[int] | None = None,
    status: str = "confirmed",
    transparency: str = "opaque",
) -> EventData:
    return EventData(
        title=title,
        description=None,
        location=None,
        start_ts=start,
        end_ts=end,
        all_day=all_day,
        status=status,
        recurrence=recurrence,
        reminders=reminders,
        transparency=transparency,
        recurrence_id_ts=rid,
    )


def outgoing(
    event_id: str,
    master: EventData,
    overrides: list[EventData] | None = None,
    remote: RemoteEvent | None = None,
    *,
    uid: str | None = None,
    zone: str = BERLIN,
) -> Outgoing:
    return Outgoing(
        uid=uid or f"{event_id}@chronary",
        event_id=event_id,
        master=master,
        overrides=overrides or [],
        zone=zone,
        calendar_zone=BERLIN,
        internal=True,
        remote_id=remote.remote_id if remote else None,
        etag=remote.etag if remote else None,
        base=remote.raw if remote else None,
    )


def path_of(graph_id: str) -> str:
    return quote(graph_id, safe="")


def token_form(fake: FakeMicrosoft, **form: str) -> httpx.Response:
    return httpx.post(
        fake.token_url(), data={"client_id": CLIENT_ID, "client_secret": SECRET, **form}, verify=fake.cafile, trust_env=False
    )


def refresh_token_in(secrets: dict[str, str]) -> str:
    cache = json.loads(secrets["token_cache"])
    tokens = [entry["secret"] for entry in cache.get("RefreshToken", {}).values()]
    assert len(tokens) == 1
    return str(tokens[0])


async def listing(provider: Provider, calendar: RemoteCalendar, cursor: str | None = None, known: Any = None) -> Any:
    return await provider.fetch_changes(calendar, cursor, known or {}, None)


def known_of(events: list[RemoteEvent]) -> dict[str, str | None]:
    return {e.remote_id: e.etag for e in events}


# ------------------------------------------------------------------------------------------ OAuth


def test_configured_names_the_missing_settings(fake: FakeMicrosoft) -> None:
    assert Provider.configured(settings_for(fake)) is None
    message = Provider.configured(Settings())
    assert message is not None
    assert "CHRONARY_MICROSOFT_CLIENT_ID" in message and "CHRONARY_MICROSOFT_CLIENT_SECRET" in message
    only_id = Provider.configured(Settings(microsoft_client_id="x"))
    assert only_id is not None and "CHRONARY_MICROSOFT_CLIENT_ID" not in only_id
    with pytest.raises(ProviderError) as unconfigured:
        run(Provider.authorization_url(Settings(), REDIRECT, "s", []))
    assert not unconfigured.value.retryable


def test_auth_code_flow_with_pkce_through_the_sign_in_redirect_and_no_instance_discovery(
    fake: FakeMicrosoft, monkeypatch: pytest.MonkeyPatch
) -> None:
    called: list[str] = []
    original = requests.Session.request

    def recording(self: requests.Session, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        called.append(str(url))
        return original(self, method, url, *args, **kwargs)

    monkeypatch.setattr(requests.Session, "request", recording)
    settings = settings_for(fake)
    started = run(Provider.authorization_url(settings, REDIRECT, "state-123", []))
    query = reply_of(started.url)
    assert started.url.startswith(fake.authority + "/oauth2/v2.0/authorize?")
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert query["state"] == "state-123" and query["redirect_uri"] == REDIRECT and query["client_id"] == CLIENT_ID
    assert set(query["scope"].split()) == {"Calendars.ReadWrite", "User.Read", "offline_access", "openid", "profile"}
    flow = started.pending["flow"]
    assert flow["state"] == "state-123" and flow["code_verifier"] not in started.url  # the verifier stays here
    json.dumps(started.pending)  # storable as JSON

    reply = reply_of(fake.sign_in(started.url))
    assert reply["state"] == "state-123" and reply["code"]
    secrets = run(Provider.exchange_code(settings, REDIRECT, reply, started.pending))
    assert set(secrets) == {"token_cache", "home_account_id", "username"}
    info = fake.account_info(ANN)
    assert secrets["home_account_id"] == f"{info['oid']}.{info['tenant_id']}" and secrets["username"] == ANN
    form = fake.requests_to("/oauth2/v2.0/token")[-1].form()
    assert form["grant_type"] == "authorization_code" and form["code_verifier"] == flow["code_verifier"]
    assert form["redirect_uri"] == REDIRECT and form["client_secret"] == SECRET

    async def use() -> str:
        provider = Provider(Account("microsoft", None, None, secrets), settings)
        try:
            return await provider.login()
        finally:
            await provider.close()

    assert run(use()) == ANN
    assert len(fake.requests_to("/oauth2/v2.0/token")) == 1  # the access token came out of the cache

    # msal asked only the fake (its OpenID configuration and token endpoint): no instance discovery
    assert called and all(url.startswith(fake.authority_host + "/") for url in called)
    assert not any("discovery/instance" in r.path for r in fake.requests)
    assert {r.path for r in fake.requests if not r.path.startswith("/v1.0")} == {
        "/common/v2.0/.well-known/openid-configuration",
        "/common/oauth2/v2.0/authorize",
        "/common/oauth2/v2.0/token",
    }

    with pytest.raises(AuthFailed) as reused:  # codes are single-use
        run(Provider.exchange_code(settings, REDIRECT, reply, started.pending))
    assert "invalid_grant" in reused.value.reason and reply["code"] not in reused.value.reason
    with pytest.raises(AuthFailed, match="state"):
        run(Provider.exchange_code(settings, REDIRECT, {**reply, "state": "other"}, started.pending))
    fake.deny_next()
    denied = run(Provider.authorization_url(settings, REDIRECT, "s2", []))
    with pytest.raises(AuthFailed, match="access_denied"):
        run(Provider.exchange_code(settings, REDIRECT, reply_of(fake.sign_in(denied.url)), denied.pending))


def test_a_refresh_rotates_the_token_cache_and_the_old_refresh_token_is_refused(fake: FakeMicrosoft) -> None:
    clock = ManualClock(datetime.now(UTC))
    secrets = connect(fake)
    old_rt = refresh_token_in(secrets)
    provider = provider_for(fake, secrets, clock)

    async def go() -> dict[str, str]:
        try:
            await provider.list_calendars()
            assert provider.refreshes == 0 and provider.refreshed_secrets() is None
            clock.advance(minutes=56)  # under five minutes left on the hour's token: refresh first
            await provider.list_calendars()
            assert provider.refreshes == 1
            fresh = provider.refreshed_secrets()
            assert fresh is not None and fresh["token_cache"] != secrets["token_cache"]
            assert fresh["home_account_id"] == secrets["home_account_id"]
            await provider.list_calendars()  # fresh now: no second refresh
            assert provider.refreshes == 1
            fake.expire_access_tokens(ANN)  # a 401 refreshes once and the call succeeds
            assert len(await provider.list_calendars()) == 1
            assert provider.refreshes == 2
            latest = provider.refreshed_secrets()
            assert latest is not None
            return latest
        finally:
            await provider.close()

    latest = run(go())
    new_rt = refresh_token_in(latest)
    assert new_rt != old_rt
    form = fake.requests_to("/oauth2/v2.0/token")[-1].form()
    assert form["grant_type"] == "refresh_token" and form["refresh_token"] != old_rt
    refused = token_form(fake, grant_type="refresh_token", refresh_token=old_rt)
    assert refused.json()["error"] == "invalid_grant" and refused.json()["error_codes"] == [70008]

    async def again(with_secrets: dict[str, str]) -> Provider:
        other = provider_for(fake, with_secrets, ManualClock(clock.now()))
        try:
            await other.refresh()
        finally:
            await other.close()
        return other

    assert run(again(latest)).refreshes == 1  # the stored (rotated) cache works
    with pytest.raises(AuthFailed) as stale:  # the cache from before the rotation does not
        run(again(secrets))
    assert stale.value.reauthorize and "invalid_grant" in stale.value.reason and "AADSTS70008" in stale.value.reason
    assert old_rt not in stale.value.reason


@pytest.mark.parametrize(
    ("break_it", "code"), [("revoke_grant", "invalid_grant, AADSTS50173"), ("require_interaction", "interaction_required")]
)
def test_a_grant_that_is_gone_is_auth_failed_with_reauthorize(fake: FakeMicrosoft, break_it: str, code: str) -> None:
    secrets = connect(fake)
    getattr(fake, break_it)(ANN)
    provider = provider_for(fake, secrets)

    async def go() -> None:
        try:
            with pytest.raises(AuthFailed) as failed:
                await provider.refresh()
            assert failed.value.reauthorize and not failed.value.retryable
            assert code in failed.value.reason
            assert provider.refresh_failures == 1 and provider.refreshes == 0 and provider.refreshed_secrets() is None
        finally:
            await provider.close()

    run(go())


@pytest.mark.parametrize("status", [400, 503])
def test_a_transient_token_failure_is_retryable_and_the_next_refresh_works(fake: FakeMicrosoft, status: int) -> None:
    """msal remembers a 400 from the token endpoint for 60 s (a 5xx for its Retry-After): a
    refresh after a failure must not be answered from that memory."""
    provider = provider_for(fake, connect(fake))

    async def go() -> None:
        try:
            fake.fail_next(1, status=status, code="temporarily_unavailable", path_contains="/oauth2/v2.0/token")
            with pytest.raises(ProviderError) as failed:
                await provider.refresh()
            assert not isinstance(failed.value, AuthFailed) and failed.value.retryable
            assert provider.refresh_failures == 1 and provider.refreshes == 0
            await provider.refresh()  # recovered at once, same provider object
            assert provider.refreshes == 1 and provider.refreshed_secrets() is not None
        finally:
            await provider.close()

    run(go())


def test_revoke_forgets_the_tokens(fake: FakeMicrosoft) -> None:
    provider = provider_for(fake)

    async def go() -> None:
        try:
            await provider.login()
            before = fake.request_count
            await provider.revoke()
            assert fake.request_count == before  # Microsoft has nothing to call for this flow
            with pytest.raises(AuthFailed) as gone:
                await provider.login()
            assert gone.value.reauthorize
        finally:
            await provider.close()
            await provider.close()  # safe twice

    run(go())


# ------------------------------------------------------------------------------------------ calendars


def test_login_and_calendars_with_a_read_only_one(make_fake: Callable[..., FakeMicrosoft]) -> None:
    fake = make_fake(list_page_size=1)
    team = fake.add_calendar(ANN, "Team", can_edit=False, owner_name="Bob", owner_address="bob@contoso.example")
    side = fake.add_calendar(ANN, "Side", hex_color="#ff8c00")
    provider = provider_for(fake)

    async def go() -> list[RemoteCalendar]:
        try:
            assert await provider.login() == ANN
            return await provider.list_calendars()
        finally:
            await provider.close()

    calendars = {c.remote_id: c for c in run(go())}
    assert len(calendars) == 3 and len(fake.requests_to("/me/calendars", "GET")) == 3  # followed every nextLink
    assert calendars[team].read_only and calendars[team].name == "Team"
    assert not calendars[side].read_only and calendars[side].color == "#ff8c00"
    assert calendars[fake.account_info(ANN)["default_calendar"]].color is None


# ------------------------------------------------------------------------------------------ listings


def test_a_full_listing_follows_the_pages_to_the_delta_link(fake: FakeMicrosoft, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(microsoft, "PAGE_SIZE", 3)
    cal = default_calendar(fake)
    ids = [
        fake.user_create(ANN, cal.remote_id, **graph_event(f"e{i}", at(i + 1, "09:00:00"), at(i + 1, "10:00:00")))
        for i in range(7)
    ]
    far = fake.user_create(ANN, cal.remote_id, **graph_event("far", at(900, "09:00:00"), at(900, "10:00:00")))
    provider = provider_for(fake)

    async def go() -> Any:
        try:
            return await listing(provider, cal)
        finally:
            await provider.close()

    changes = run(go())
    assert changes.full and changes.next_page is None
    assert changes.present == set(ids) and far not in changes.present  # outside the window
    assert sorted(e.master.title for e in changes.events) == [f"e{i}" for i in range(7)]
    pages = fake.requests_to("/calendarView/delta")
    assert len(pages) == 3  # 3 + 3 + 1, the last one with the deltaLink
    first = pages[0]
    prefer = first.header("Prefer") or ""
    assert 'outlook.timezone="UTC"' in prefer and "odata.maxpagesize=3" in prefer
    lo, hi = first.param("startDateTime"), first.param("endDateTime")
    assert lo and hi and lo.endswith("Z") and hi.endswith("Z")
    span = datetime.fromisoformat(hi.replace("Z", "+00:00")) - datetime.fromisoformat(lo.replace("Z", "+00:00"))
    assert timedelta(days=730) <= span <= timedelta(days=738)
    cursor = json.loads(changes.cursor)
    assert "$deltatoken=" in cursor["link"] and cursor["link"].startswith(fake.graph_url + "/me/calendars/")
    event = next(e for e in changes.events if e.master.title == "e0")
    assert event.etag == fake.get_event(event.remote_id)["@odata.etag"] and event.uid.startswith("040000008200E000")
    assert event.master.start_ts == ts(at(1, "09:00:00")) and event.master.tzid is None


def test_an_incremental_listing_sees_edits_removals_and_moves_out_of_the_window(fake: FakeMicrosoft) -> None:
    cal = default_calendar(fake)
    a = fake.user_create(ANN, cal.remote_id, **graph_event("a", at(3, "09:00:00"), at(3, "10:00:00")))
    b = fake.user_create(ANN, cal.remote_id, **graph_event("b", at(4, "09:00:00"), at(4, "10:00:00")))
    c = fake.user_create(ANN, cal.remote_id, **graph_event("c", at(5, "09:00:00"), at(5, "10:00:00")))
    provider = provider_for(fake)

    async def go() -> None:
        try:
            full = await listing(provider, cal)
            known = known_of(full.events)
            nothing = await listing(provider, cal, full.cursor, known)
            assert nothing.events == [] and nothing.deleted == [] and not nothing.full

            fake.user_update(a, subject="a2")
            fake.user_delete(b)
            fake.user_update(c, start=when(at(800, "09:00:00")), end=when(at(800, "10:00:00")))  # out of the window
            d = fake.user_create(ANN, cal.remote_id, **graph_event("d", at(6, "09:00:00"), at(6, "10:00:00")))
            changes = await listing(provider, cal, nothing.cursor, known)
            assert changes.deleted == [b]  # the removed ones were looked up: only b is gone
            by_id = {e.remote_id: e for e in changes.events}
            assert set(by_id) == {a, c, d}
            assert by_id[a].master.title == "a2" and by_id[a].etag != known[a]
            assert by_id[c].master.start_ts == ts(at(800, "09:00:00"))  # it moved, it was not deleted
            after = await listing(provider, cal, changes.cursor, {**known, **known_of(changes.events)})
            assert after.events == [] and after.deleted == []
        finally:
            await provider.close()

    run(go())


@pytest.mark.parametrize("code", ["SyncStateNotFound", "SyncStateInvalid", "ResyncRequired"])
def test_an_expired_delta_token_is_cursor_expired(fake: FakeMicrosoft, code: str) -> None:
    cal = default_calendar(fake)
    fake.user_create(ANN, cal.remote_id, **graph_event("a", at(3, "09:00:00"), at(3, "10:00:00")))
    provider = provider_for(fake)

    async def go() -> None:
        try:
            full = await listing(provider, cal)
            fake.expire_delta_tokens(code)
            with pytest.raises(CursorExpired, match=code):
                await listing(provider, cal, full.cursor)
            again = await listing(provider, cal)  # what the engine does next
            assert [e.master.title for e in again.events] == ["a"]
            moved = Window(int(datetime.now(UTC).timestamp()) + 30 * 86400, int(datetime.now(UTC).timestamp()) + 90 * 86400)
            with pytest.raises(CursorExpired, match="window"):
                await provider.fetch_changes(cal, again.cursor, {}, moved)
            with pytest.raises(CursorExpired):
                await listing(provider, cal, "not a cursor")
        finally:
            await provider.close()

    run(go())


def test_a_daily_series_with_a_moved_and_a_cancelled_occurrence(fake: FakeMicrosoft) -> None:
    cal = default_calendar(fake)
    first = day(10)
    sid = fake.user_create(
        ANN,
        cal.remote_id,
        **graph_event("Standup", f"{first}T09:00:00", f"{first}T09:15:00", "W. Europe Standard Time"),
        recurrence={
            "pattern": {"type": "daily", "interval": 1},
            "range": {"type": "numbered", "startDate": first.isoformat(), "numberOfOccurrences": 5},
        },
    )
    second, third, fourth = (first + timedelta(days=n) for n in (1, 2, 3))
    fake.user_move_occurrence(sid, f"{second}T09:00:00", f"{second}T14:00:00", f"{second}T14:30:00")
    fake.user_cancel_occurrence(sid, f"{third}T09:00:00")
    provider = provider_for(fake)

    async def go() -> None:
        try:
            full = await listing(provider, cal)
            assert full.present == {sid} and len(full.events) == 1
            series = full.events[0]
            assert series.remote_id == sid and me.is_series_etag(series.etag)
            assert series.master.tzid == BERLIN and series.master.start_ts == ts(f"{first}T09:00:00", BERLIN)
            third_utc = datetime.fromisoformat(f"{third}T09:00:00").replace(tzinfo=ZoneInfo(BERLIN)).astimezone(UTC)
            assert series.master.recurrence == ["RRULE:FREQ=DAILY;COUNT=5", "EXDATE:" + third_utc.strftime("%Y%m%dT%H%M%SZ")]
            assert [(o.recurrence_id_ts, o.start_ts, o.end_ts) for o in series.overrides] == [
                (ts(f"{second}T09:00:00", BERLIN), ts(f"{second}T14:00:00", BERLIN), ts(f"{second}T14:30:00", BERLIN))
            ]
            assert series.overrides[0].remote_id == fake.occurrence_id(sid, f"{second}T09:00:00")
            assert (
                len(fake.requests_to(f"/me/events/{path_of(sid)}")) == 1
            )  # the master, once; its instances were the delta's

            known = known_of(full.events)
            assert (await listing(provider, cal, full.cursor, known)).events == []
            fake.user_cancel_occurrence(sid, f"{fourth}T09:00:00")  # Graph says only "@removed" with an id
            changes = await listing(provider, cal, full.cursor, known)
            assert [e.remote_id for e in changes.events] == [sid] and changes.deleted == []
            again = changes.events[0]
            assert len(again.master.recurrence or []) == 2 and again.master.recurrence[1].count(",") == 1
            assert len(again.overrides) == 1 and again.etag != series.etag

            fake.user_delete(sid)  # every instance "@removed": the series is gone
            gone = await listing(provider, cal, changes.cursor, known_of(changes.events))
            assert gone.deleted == [sid] and gone.events == []
        finally:
            await provider.close()

    run(go())


def test_windows_zone_names_are_read_as_iana_and_written_as_windows(fake: FakeMicrosoft) -> None:
    cal = default_calendar(fake)
    pst = fake.user_create(
        ANN, cal.remote_id, **graph_event("Call", at(20, "09:00:00"), at(20, "10:00:00"), "Pacific Standard Time")
    )
    provider = provider_for(fake)
    start = ts(at(30, "09:00:00"), "America/New_York")

    async def go() -> tuple[Any, RemoteEvent]:
        try:
            read = await listing(provider, cal)
            wrote = await provider.put_event(
                cal, outgoing("evt_ny", data("NY", start, start + 3600), zone="America/New_York")
            )
            return read, wrote
        finally:
            await provider.close()

    read, wrote = run(go())
    call = next(e for e in read.events if e.remote_id == pst)
    assert call.master.tzid == "America/Los_Angeles" and call.master.start_ts == ts(
        at(20, "09:00:00"), "America/Los_Angeles"
    )
    posted = fake.requests_to("/events", "POST")[-1].json()
    assert posted["start"] == {"dateTime": at(30, "09:00:00"), "timeZone": "Eastern Standard Time"}
    stored = fake.get_event(wrote.remote_id)
    assert stored["originalStartTimeZone"] == "Eastern Standard Time" and wrote.master.tzid == "America/New_York"
    assert wrote.master.start_ts == start
    assert me.windows_name("Europe/Berlin") == "W. Europe Standard Time" and me.windows_name("UTC") == "UTC"
    assert me.zone_name("Pacific Standard Time") == "America/Los_Angeles" and me.zone_name("tzone://Microsoft/Utc") == "UTC"
    assert me.windows_name("America/Argentina/Ushuaia") == "America/Argentina/Ushuaia"  # no Windows name: IANA


def test_all_day_show_as_and_reminders_both_ways(fake: FakeMicrosoft) -> None:
    cal = default_calendar(fake)
    d1, d2 = day(12), day(13)
    made = {
        "holiday": fake.user_create(
            ANN,
            cal.remote_id,
            **graph_event("Holiday", f"{d1}T00:00:00", f"{d2}T00:00:00", "Pacific Standard Time"),
            isAllDay=True,
            showAs="free",
            isReminderOn=False,
        ),
        "maybe": fake.user_create(
            ANN, cal.remote_id, **graph_event("Maybe", at(12, "09:00:00"), at(12, "10:00:00")), showAs="tentative"
        ),
        "away": fake.user_create(
            ANN,
            cal.remote_id,
            **graph_event("Away", at(12, "11:00:00"), at(12, "12:00:00")),
            showAs="oof",
            reminderMinutesBeforeStart=30,
        ),
    }
    provider = provider_for(fake)
    start = ts(at(14, "00:00:00"), BERLIN)

    async def go() -> tuple[Any, RemoteEvent, RemoteEvent, RemoteEvent]:
        try:
            read = await listing(provider, cal)
            hold = await provider.put_event(
                cal,
                outgoing("evt_hold", data("Hold", start + 9 * 3600, start + 10 * 3600, status="hold", reminders=[30, 10])),
            )
            free = await provider.put_event(
                cal,
                outgoing("evt_day", data("Day off", start, start + 86400, all_day=True, transparency="transparent")),
            )
            # the Away event edited in Chronary: still opaque, so Outlook's "out of office" stays
            away = next(e for e in read.events if e.remote_id == made["away"])
            edited = EventData(**{**away.master.__dict__, "title": "Away (edited)"})
            kept = await provider.put_event(cal, outgoing("evt_away", edited, remote=away))
            return read, hold, free, kept
        finally:
            await provider.close()

    read, hold, free, kept = run(go())
    by_id = {e.remote_id: e for e in read.events}
    holiday = by_id[made["holiday"]].master
    assert holiday.all_day and holiday.transparency == "transparent" and holiday.reminders is None
    assert (holiday.start_ts, holiday.end_ts) == (ts(f"{d1}T00:00:00", BERLIN), ts(f"{d2}T00:00:00", BERLIN))
    maybe = by_id[made["maybe"]].master
    assert maybe.status == "tentative" and maybe.transparency == "opaque" and maybe.reminders == [15]  # Outlook's default
    away = by_id[made["away"]].master
    assert away.status == "confirmed" and away.transparency == "opaque" and away.reminders == [30]

    posted = [r.json() for r in fake.requests_to("/events", "POST")]
    assert posted[0]["showAs"] == "tentative" and posted[0]["isReminderOn"] and posted[0]["reminderMinutesBeforeStart"] == 10
    assert hold.master.status == "tentative" and hold.master.reminders == [10]
    assert posted[1]["isAllDay"] and posted[1]["showAs"] == "free" and posted[1]["isReminderOn"] is False
    assert posted[1]["start"] == {"dateTime": f"{day(14)}T00:00:00", "timeZone": "W. Europe Standard Time"}
    assert posted[1]["end"] == {"dateTime": f"{day(15)}T00:00:00", "timeZone": "W. Europe Standard Time"}
    assert free.master.all_day and (free.master.start_ts, free.master.end_ts) == (start, start + 86400)
    patched = fake.requests_to(f"/me/events/{path_of(made['away'])}", "PATCH")[-1].json()
    assert patched == {"subject": "Away (edited)"}
    assert fake.get_event(made["away"])["showAs"] == "oof" and kept.master.title == "Away (edited)"


RULES = [
    ("RRULE:FREQ=WEEKLY;BYDAY=MO,WE", {"type": "weekly", "daysOfWeek": ["monday", "wednesday"]}, "noEnd"),
    ("RRULE:FREQ=WEEKLY;BYDAY=TU;INTERVAL=2;WKST=SU", {"type": "weekly", "firstDayOfWeek": "sunday"}, "noEnd"),
    ("RRULE:FREQ=MONTHLY;BYMONTHDAY=15;COUNT=6", {"type": "absoluteMonthly", "dayOfMonth": 15}, "numbered"),
    ("RRULE:FREQ=MONTHLY;BYDAY=-1FR", {"type": "relativeMonthly", "daysOfWeek": ["friday"], "index": "last"}, "noEnd"),
    (
        "RRULE:FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=1",
        {
            "type": "relativeMonthly",
            "index": "first",
            "daysOfWeek": ["monday", "tuesday", "wednesday", "thursday", "friday"],
        },
        "noEnd",
    ),
    ("RRULE:FREQ=YEARLY;BYMONTH=3;BYMONTHDAY=4", {"type": "absoluteYearly", "month": 3, "dayOfMonth": 4}, "noEnd"),
    ("RRULE:FREQ=YEARLY;BYDAY=2SU;BYMONTH=5", {"type": "relativeYearly", "month": 5, "index": "second"}, "noEnd"),
    ("RRULE:FREQ=DAILY;INTERVAL=3;UNTIL={until}", {"type": "daily", "interval": 3}, "endDate"),
]


@pytest.mark.parametrize(("rule", "pattern", "range_type"), RULES)
def test_repeat_rules_become_graph_patterns_and_read_back_the_same(
    fake: FakeMicrosoft, rule: str, pattern: dict[str, Any], range_type: str
) -> None:
    cal = default_calendar(fake)
    start = ts(at(5, "09:00:00"), BERLIN)
    until = datetime.fromtimestamp(start, UTC) + timedelta(days=9)  # the 4th occurrence (days 0, 3, 6, 9)
    rule = rule.format(until=until.strftime("%Y%m%dT%H%M%SZ"))
    provider = provider_for(fake)

    async def go() -> tuple[RemoteEvent, Any]:
        try:
            wrote = await provider.put_event(cal, outgoing("evt_rule", data("Rule", start, start + 1800, recurrence=[rule])))
            return wrote, await listing(provider, cal)
        finally:
            await provider.close()

    wrote, read = run(go())
    body = fake.requests_to("/events", "POST")[-1].json()
    assert {k: body["recurrence"]["pattern"][k] for k in pattern} == pattern
    assert body["recurrence"]["range"]["type"] == range_type
    assert body["recurrence"]["range"]["recurrenceTimeZone"] == "W. Europe Standard Time"
    assert body["recurrence"]["range"]["startDate"] == day(5).isoformat()
    if range_type == "endDate":
        assert body["recurrence"]["range"]["endDate"] == (day(5) + timedelta(days=9)).isoformat()
    expected = me.recurrence_body(data("x", start, start + 1800, recurrence=[rule]), BERLIN, BERLIN)
    assert expected is not None and body["recurrence"]["pattern"]["type"] == expected["pattern"]["type"]
    listed = next(e for e in read.events if e.remote_id == wrote.remote_id)
    canonical = "RRULE:" + ";".join(
        [p for p in rule[6:].split(";") if p.startswith("FREQ")]
        + sorted(p for p in rule[6:].split(";") if not p.startswith("FREQ"))
    )
    assert listed.master.recurrence == [canonical] and wrote.master.recurrence == [canonical]
    assert listed.etag == wrote.etag and listed.uid == "evt_rule@chronary"


def test_rules_graph_cannot_hold_are_refused_before_anything_is_sent() -> None:
    start = int(datetime(2027, 3, 1, 9, tzinfo=UTC).timestamp())
    for rule in (
        ["RRULE:FREQ=HOURLY"],
        ["RRULE:FREQ=MONTHLY;BYMONTHDAY=-1"],
        ["RRULE:FREQ=MONTHLY;BYDAY=MO"],
        ["RRULE:FREQ=WEEKLY;BYDAY=MO;BYHOUR=9"],
        ["RRULE:FREQ=DAILY", "RDATE:20270310T090000Z"],
        ["RRULE:FREQ=MONTHLY;BYDAY=5MO"],
    ):
        with pytest.raises(CodecError):
            me.recurrence_body(data("x", start, start + 60, recurrence=rule), "UTC", "UTC")
    weekdays = me.recurrence_body(data("x", start, start + 60, recurrence=["RRULE:FREQ=DAILY;BYDAY=MO,TU"]), "UTC", "UTC")
    assert weekdays is not None and weekdays["pattern"]["type"] == "weekly"
    until = me.recurrence_body(
        data("x", start, start + 60, recurrence=["RRULE:FREQ=DAILY;UNTIL=20270305T085959Z"]), "UTC", "UTC"
    )
    assert until is not None and until["range"]["endDate"] == "2027-03-04"  # 09:00 on the 5th is after UNTIL


# ------------------------------------------------------------------------------------------ writes


def test_a_create_carries_a_derived_transaction_id_and_a_retry_does_not_duplicate(fake: FakeMicrosoft) -> None:
    cal = default_calendar(fake)
    start = ts(at(8, "09:00:00"), BERLIN)
    out = outgoing("evt_once", data("Once", start, start + 3600))
    imported = outgoing("evt_imp", data("Imported", start, start + 600), uid="abc-123@elsewhere.example")
    provider = provider_for(fake)

    async def go() -> tuple[RemoteEvent, RemoteEvent, RemoteEvent, Any]:
        try:
            first = await provider.put_event(cal, out)
            retried = await provider.put_event(cal, out)  # the engine retries a create whose answer was lost
            other = await provider.put_event(cal, imported)
            return first, retried, other, await listing(provider, cal)
        finally:
            await provider.close()

    first, retried, other, read = run(go())
    posts = fake.requests_to("/events", "POST")
    assert posts[0].json()["transactionId"] == posts[1].json()["transactionId"] == "chronary:evt_once"
    assert first.remote_id == retried.remote_id and len(fake.stored_events(cal.remote_id)) == 2
    assert first.uid == "evt_once@chronary" and other.uid == "abc-123@elsewhere.example"
    assert {e.remote_id: e.uid for e in read.events} == {first.remote_id: first.uid, other.remote_id: other.uid}
    assert all(e.etag == {first.remote_id: first.etag, other.remote_id: other.etag}[e.remote_id] for e in read.events)


def test_a_patch_sends_the_changed_fields_with_if_match_and_a_stale_etag_is_precondition_failed(fake: FakeMicrosoft) -> None:
    cal = default_calendar(fake)
    start = ts(at(9, "09:00:00"), BERLIN)
    provider = provider_for(fake)

    async def go() -> None:
        try:
            created = await provider.put_event(cal, outgoing("evt_p", data("Plan", start, start + 3600)))
            moved = data("Plan v2", start + 3600, start + 7200)
            updated = await provider.put_event(cal, outgoing("evt_p", moved, remote=created))
            patch = fake.requests_to(f"/me/events/{path_of(created.remote_id)}", "PATCH")[-1]
            assert patch.header("If-Match") == created.etag and updated.etag != created.etag
            body = patch.json()
            assert set(body) == {"subject", "start", "end", "isAllDay"} and body["subject"] == "Plan v2"
            assert updated.master.start_ts == start + 3600

            fake.user_update(created.remote_id, subject="edited in Outlook")
            with pytest.raises(PreconditionFailed):
                await provider.put_event(cal, outgoing("evt_p", data("lost", start, start + 60), remote=updated))
            assert fake.get_event(created.remote_id)["subject"] == "edited in Outlook"
        finally:
            await provider.close()

    run(go())


def test_series_writes_patch_occurrences_delete_cancelled_ones_and_match_the_next_listing(fake: FakeMicrosoft) -> None:
    cal = default_calendar(fake)
    start = ts(at(15, "08:00:00"), BERLIN)
    rule = ["RRULE:FREQ=DAILY;COUNT=6"]
    moved_rid, cancelled_rid, dropped_rid = start + 86400, start + 2 * 86400, start + 3 * 86400
    moved = data("Standup (late)", moved_rid + 3600, moved_rid + 5400, rid=moved_rid)
    dropped = data("Standup", dropped_rid, dropped_rid + 900, rid=dropped_rid, status="cancelled")
    exdate = "EXDATE:" + datetime.fromtimestamp(cancelled_rid, UTC).strftime("%Y%m%dT%H%M%SZ")
    master = data("Standup", start, start + 900, recurrence=[*rule, exdate])
    provider = provider_for(fake)

    async def go() -> None:
        try:
            made = await provider.put_event(cal, outgoing("evt_s", master, [moved, dropped]))
            assert me.is_series_etag(made.etag)
            instances = fake.requests_to("/instances", "GET")
            assert instances and "startDateTime" in instances[0].query
            deletes = fake.requests_to("/me/events/", "DELETE")
            assert len(deletes) == 2  # the EXDATE and the cancelled override
            assert [o.recurrence_id_ts for o in made.overrides] == [moved_rid]
            assert made.overrides[0].start_ts == moved_rid + 3600 and made.overrides[0].title == "Standup (late)"
            excluded = me.excluded(made.master.recurrence, BERLIN)
            assert excluded == {cancelled_rid, dropped_rid}

            full = await listing(provider, cal)
            assert [(e.remote_id, e.etag) for e in full.events] == [(made.remote_id, made.etag)]  # our write, as listed
            assert (await listing(provider, cal, None, known_of([made]))).events == []  # known: not emitted again
            quiet = await listing(provider, cal, full.cursor, known_of([made]))
            assert quiet.events == []

            # the override goes away in Chronary: the exception is put back to the series' values
            reverted = await provider.put_event(cal, outgoing("evt_s", master, [dropped], remote=full.events[0]))
            assert reverted.overrides == [] and reverted.etag != made.etag
            echo = await listing(provider, cal, quiet.cursor, known_of([reverted]))
            assert echo.events == []  # our own write never comes back as a remote change
        finally:
            await provider.close()

    run(go())


def test_delete_with_etags(fake: FakeMicrosoft) -> None:
    cal = default_calendar(fake)
    start = ts(at(9, "09:00:00"), BERLIN)
    provider = provider_for(fake)

    async def go() -> None:
        try:
            single = await provider.put_event(cal, outgoing("evt_d1", data("One", start, start + 60)))
            fake.user_update(single.remote_id, subject="changed")
            with pytest.raises(PreconditionFailed):
                await provider.delete_event(cal, single.remote_id, single.etag)
            current = fake.get_event(single.remote_id)["@odata.etag"]
            await provider.delete_event(cal, single.remote_id, current)
            assert fake.requests_to(f"/me/events/{path_of(single.remote_id)}", "DELETE")[-1].header("If-Match") == current
            await provider.delete_event(cal, single.remote_id, current)  # gone already: fine
            assert fake.stored_events(cal.remote_id) == []

            series = await provider.put_event(
                cal, outgoing("evt_d2", data("Many", start, start + 60, recurrence=["RRULE:FREQ=DAILY;COUNT=3"]))
            )
            fake.user_move_occurrence(
                series.remote_id, at(10, "09:00:00"), at(10, "12:00:00"), at(10, "12:01:00")
            )  # an edit to one occurrence changes the series etag
            with pytest.raises(PreconditionFailed):
                await provider.delete_event(cal, series.remote_id, series.etag)
            fresh = (await listing(provider, cal)).events[0]
            await provider.delete_event(cal, series.remote_id, fresh.etag)
            assert fake.stored_events(cal.remote_id) == []
        finally:
            await provider.close()

    run(go())


# ------------------------------------------------------------------------------------------ throttling


def test_a_429_is_retried_after_retry_after_and_a_persistent_one_raises_with_it(fake: FakeMicrosoft) -> None:
    provider = provider_for(fake)
    sleeps: list[float] = []

    async def no_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    provider.api.sleep = no_sleep

    async def go() -> None:
        try:
            await provider.list_calendars()
            fake.clear_requests()
            fake.fail_next(1, status=429, retry_after=2)
            fake.fail_next(1, status=503, retry_after=1)
            fake.fail_next(1, status=504, retry_after=3)
            assert len(await provider.list_calendars()) == 1
            assert len(fake.requests_to("/me/calendars")) == 4 and sleeps == [2.0, 1.0, 3.0]

            sleeps.clear()
            fake.fail_next(4, status=429, retry_after=5)
            with pytest.raises(ProviderError) as limited:
                await provider.list_calendars()
            assert limited.value.retryable and limited.value.retry_after == 5 and sleeps == [5.0, 5.0, 5.0]
        finally:
            await provider.close()

    run(go())


def test_never_more_than_four_requests_in_flight_per_mailbox(make_fake: Callable[..., FakeMicrosoft]) -> None:
    fake = make_fake(latency=0.15, mailbox_concurrency_limit=4)
    fake.add_account("bob@contoso.example")
    secrets = connect(fake)
    one, two = provider_for(fake, secrets), provider_for(fake, secrets)  # a sync round and a push renewal, say

    async def go() -> list[int]:
        try:
            await one.login()
            await two.login()
            fake.reset_concurrency()
            results = await asyncio.gather(*(p.list_calendars() for p in (one, two) for _ in range(6)))
            return [len(r) for r in results]
        finally:
            await one.close()
            await two.close()

    assert run(go()) == [1] * 12  # none was refused with 429 ApplicationThrottled
    assert fake.max_concurrency_seen == {ANN: 4}
    assert one.api.limit is two.api.limit and one.api.limit is not None and one.api.limit.active == 0


# ------------------------------------------------------------------------------------------ push


class Receiver:
    """A tiny webhook receiver: validation requests are answered through Provider.handshake."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.got = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                query = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
                echo = Provider.handshake(query)
                if echo is not None:
                    self._answer(200, echo.encode())
                    return
                outer.bodies.append(body)
                outer.got.set()
                self._answer(202, b"")

            def _answer(self, status: int, data: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/connections/notifications/microsoft"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def last(self) -> bytes:
        assert self.got.wait(5)
        self.got.clear()
        return self.bodies[-1]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def test_subscribe_with_the_validation_handshake_renew_and_unsubscribe(fake: FakeMicrosoft, receiver: Receiver) -> None:
    cal = default_calendar(fake)
    provider = provider_for(fake)

    async def go() -> None:
        try:
            channel = await provider.subscribe(cal, receiver.url, "secret-token-1")
            sub = fake.subscriptions[0]
            assert channel.id == sub["id"] and channel.token == "secret-token-1"
            assert sub["resource"] == f"me/calendars/{cal.remote_id}/events" and sub["calendarId"] == cal.remote_id
            assert sub["changeType"] == "created,updated,deleted" and sub["clientState"] == "secret-token-1"
            assert sub["notificationUrl"] == sub["lifecycleNotificationUrl"] == receiver.url
            now = datetime.now(UTC).timestamp()
            assert 4100 * 60 < channel.expires_at - now <= 4230 * 60
            validations = [d for d in fake.deliveries if d.kind == "validation"]
            assert len(validations) == 2 and all(d.status == 200 for d in validations)  # both URLs echoed

            old_expiry = sub["expirationDateTime"]
            await asyncio.sleep(0.01)
            renewed = await provider.renew(channel, receiver.url)
            assert renewed.id == channel.id and fake.requests_to(f"/subscriptions/{path_of(channel.id)}", "PATCH")
            assert fake.subscriptions[0]["expirationDateTime"] >= old_expiry

            await asyncio.to_thread(fake.lifecycle, channel.id, "subscriptionRemoved")
            assert fake.subscriptions == []
            reopened = await provider.renew(renewed, receiver.url)  # 404: a new subscription
            assert reopened.id != channel.id and reopened.token == channel.token
            assert [s["id"] for s in fake.subscriptions] == [reopened.id]

            await provider.unsubscribe(reopened)
            assert fake.subscriptions == []
            await provider.unsubscribe(reopened)  # gone already: fine
        finally:
            await provider.close()

    run(go())


def test_verify_notification_checks_the_client_state_and_reads_lifecycle_events(
    fake: FakeMicrosoft, receiver: Receiver
) -> None:
    cal = default_calendar(fake)
    provider = provider_for(fake)

    async def open_channel() -> PushChannel:
        try:
            return await provider.subscribe(cal, receiver.url, "secret-token-2")
        finally:
            await provider.close()

    channel = run(open_channel())
    eid = fake.user_create(ANN, cal.remote_id, **graph_event("a", at(3, "09:00:00"), at(3, "10:00:00")))

    def lookup(channel_id: str) -> PushChannel | None:
        return channel if channel_id == channel.id else None

    assert fake.notify(channel.id, "updated", eid)[0] == 202
    body = receiver.last()
    assert Provider.verify_notification({}, body, lookup) == [Notification(channel.id, sync=True, renew=False)]
    item = json.loads(body)["value"][0]
    wrong = json.dumps({"value": [{**item, "clientState": "guessed"}]}).encode()
    assert Provider.verify_notification({}, wrong, lookup) == []
    unknown = json.dumps({"value": [{**item, "subscriptionId": "someone-elses"}]}).encode()
    assert Provider.verify_notification({}, unknown, lookup) == []
    assert Provider.verify_notification({}, b"not json", lookup) == []
    both = json.dumps({"value": [item, {**item, "changeType": "deleted"}]}).encode()
    assert Provider.verify_notification({}, both, lookup) == [Notification(channel.id, sync=True)]  # one per channel

    fake.lifecycle(channel.id, "missed")
    assert Provider.verify_notification({}, receiver.last(), lookup) == [Notification(channel.id, sync=True, renew=False)]
    fake.lifecycle(channel.id, "reauthorizationRequired")
    reauth = receiver.last()
    assert Provider.verify_notification({}, reauth, lookup) == [Notification(channel.id, sync=True, renew=True)]
    forged = json.dumps({"value": [{**json.loads(reauth)["value"][0], "clientState": None}]}).encode()
    assert Provider.verify_notification({}, forged, lookup) == []
    fake.lifecycle(channel.id, "subscriptionRemoved")
    assert Provider.verify_notification({}, receiver.last(), lookup) == [Notification(channel.id, sync=True, renew=True)]

    assert Provider.handshake({"validationToken": "Validation: abc"}) == "Validation: abc"
    assert Provider.handshake({}) is None

"""The Google provider against the protocol fake (tests/fakes/google.py) over HTTPS on 127.0.0.1:
OAuth (PKCE code exchange, refresh ahead of expiry, invalid_grant, revoke), calendars, full and
incremental listings with series, writes with derived ids and etags, rate limits and push."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import pytest

from chronary.clock import Clock, ManualClock
from chronary.config import Settings
from chronary.ical.model import EventData, Outgoing
from chronary.providers import google_events as ge
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
)
from chronary.providers.google import Provider
from chronary.providers.http import ApiClient, Budget, budget_for
from tests.fakes.google import SCOPE_CALENDAR, SCOPE_CALENDAR_READONLY, FakeGoogle

CLIENT_ID = "777-provider.apps.googleusercontent.com"
SECRET = "GOCSPX-provider-secret"
REDIRECT = "https://chronary.test/v1/connections/callback"
ANN = "ann@example.com"
BERLIN = "Europe/Berlin"
T = TypeVar("T")


def run(coro: Awaitable[T]) -> T:
    async def main() -> T:
        return await coro

    return asyncio.run(main())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def make_fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., FakeGoogle]]:
    fakes: list[FakeGoogle] = []

    def make(**kw: Any) -> FakeGoogle:
        fake = FakeGoogle(tls=True, **kw)
        fakes.append(fake)
        fake.add_client(CLIENT_ID, SECRET, [REDIRECT])
        fake.add_account(ANN, time_zone=BERLIN)
        assert fake.cafile is not None
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", fake.cafile)
        monkeypatch.setenv("SSL_CERT_FILE", fake.cafile)
        return fake

    yield make
    for fake in fakes:
        fake.close()
        assert fake.errors == [], fake.errors


@pytest.fixture
def fake(make_fake: Callable[..., FakeGoogle]) -> FakeGoogle:
    return make_fake()


def settings_for(fake: FakeGoogle, **extra: Any) -> Settings:
    port = free_port()
    while port == fake.port:
        port = free_port()
    values: dict[str, Any] = {
        "google_client_id": CLIENT_ID,
        "google_client_secret": SECRET,
        "google_auth_url": fake.auth_url,
        "google_token_url": fake.token_url,
        "google_revoke_url": fake.revoke_url,
        "google_api_url": fake.api_url,
        "allow_private_network_targets": True,
        "port": port,
        "google_requests_per_minute": 100_000,  # the budget has its own test; keep it out of the way here
        **extra,
    }
    return Settings(**values)


def secrets_for(fake: FakeGoogle, expiry: datetime | None = None) -> dict[str, str]:
    tokens = fake.issue_tokens(ANN, CLIENT_ID)
    when = expiry or datetime.now(UTC) + timedelta(seconds=tokens["expires_in"])
    return {
        "access_token": tokens["access_token"],
        "refresh_token": tokens["refresh_token"],
        "expiry": when.isoformat(),
        "scope": tokens["scope"],
        "token_type": "Bearer",
    }


def provider_for(
    fake: FakeGoogle, clock: Clock | None = None, secrets: dict[str, str] | None = None, **extra: Any
) -> Provider:
    account = Account("google", ANN, None, secrets or secrets_for(fake))
    return Provider(account, settings_for(fake, **extra), clock)


PRIMARY = RemoteCalendar(ANN, ANN, timezone=BERLIN, local_timezone=BERLIN)


def ts(value: str) -> int:
    return int(datetime.fromisoformat(value).timestamp())


def data(
    title: str,
    start: str,
    end: str,
    *,
    all_day: bool = False,
    recurrence: list[str] | None = None,
    rid: str | None = None,
    reminders: list[int] | None = None,
    status: str = "confirmed",
) -> EventData:
    return EventData(
        title=title,
        description=None,
        location=None,
        start_ts=ts(start),
        end_ts=ts(end),
        all_day=all_day,
        status=status,
        recurrence=recurrence,
        reminders=reminders,
        recurrence_id_ts=ts(rid) if rid else None,
    )


def outgoing(
    event_id: str, master: EventData, overrides: list[EventData] | None = None, remote: RemoteEvent | None = None
) -> Outgoing:
    return Outgoing(
        uid=f"{event_id}@chronary.test",
        event_id=event_id,
        master=master,
        overrides=overrides or [],
        zone=BERLIN,
        calendar_zone=BERLIN,
        internal=True,
        remote_id=remote.remote_id if remote else None,
        etag=remote.etag if remote else None,
        base=remote.raw if remote else None,
    )


def timed(start: str, end: str, **extra: Any) -> dict[str, Any]:
    return {"start": {"dateTime": start, "timeZone": BERLIN}, "end": {"dateTime": end, "timeZone": BERLIN}, **extra}


# ------------------------------------------------------------------------------------------ OAuth


def test_configured_names_the_missing_settings(fake: FakeGoogle) -> None:
    assert Provider.configured(settings_for(fake)) is None
    message = Provider.configured(Settings())
    assert message is not None
    assert "CHRONARY_GOOGLE_CLIENT_ID" in message and "CHRONARY_GOOGLE_CLIENT_SECRET" in message
    only_secret = Provider.configured(Settings(google_client_id="x"))
    assert only_secret is not None and "CHRONARY_GOOGLE_CLIENT_ID" not in only_secret


def test_authorization_url_has_pkce_offline_consent_and_the_code_exchange_works(fake: FakeGoogle) -> None:
    settings = settings_for(fake)
    started = run(Provider.authorization_url(settings, REDIRECT, "state-123", []))
    query = {k: v[0] for k, v in parse_qs(urlsplit(started.url).query).items()}
    assert started.url.startswith(fake.auth_url + "?")
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert query["access_type"] == "offline" and query["prompt"] == "consent"
    assert query["include_granted_scopes"] == "true" and query["scope"] == SCOPE_CALENDAR
    assert query["state"] == "state-123" and query["redirect_uri"] == REDIRECT and query["client_id"] == CLIENT_ID
    verifier = started.pending["code_verifier"]
    assert verifier and verifier not in started.url  # the verifier stays server-side
    json.dumps(started.pending)  # storable as JSON

    reply = {k: v[0] for k, v in parse_qs(urlsplit(fake.consent(started.url)).query).items()}
    assert reply["state"] == "state-123"
    tokens = run(Provider.exchange_code(settings, REDIRECT, reply, started.pending))
    assert set(tokens) == {"access_token", "refresh_token", "expiry", "scope", "token_type"}
    assert tokens["refresh_token"].startswith("1//") and tokens["scope"] == SCOPE_CALENDAR
    expiry = datetime.fromisoformat(tokens["expiry"])
    assert timedelta(minutes=55) < expiry - datetime.now(UTC) <= timedelta(seconds=3600)
    form = parse_qs(fake.requests_to("/token")[-1].body.decode())
    assert form["code_verifier"] == [verifier] and form["grant_type"] == ["authorization_code"]

    async def use() -> str:
        provider = Provider(Account("google", None, None, tokens), settings)
        try:
            return await provider.login()
        finally:
            await provider.close()

    assert run(use()) == ANN

    with pytest.raises(AuthFailed) as reused:  # codes are single-use
        run(Provider.exchange_code(settings, REDIRECT, reply, started.pending))
    assert "invalid_grant" in reused.value.reason and reply["code"] not in reused.value.reason
    with pytest.raises(AuthFailed, match="invalid_grant"):
        run(Provider.exchange_code(settings, REDIRECT, {"code": "4/0-not-a-code", "state": "state-123"}, started.pending))
    with pytest.raises(AuthFailed, match="access_denied"):
        run(Provider.exchange_code(settings, REDIRECT, {"error": "access_denied", "state": "state-123"}, started.pending))
    with pytest.raises(AuthFailed, match="state"):
        run(Provider.exchange_code(settings, REDIRECT, {"code": "x", "state": "other"}, started.pending))


def test_wrong_verifier_is_refused(fake: FakeGoogle) -> None:
    settings = settings_for(fake)
    started = run(Provider.authorization_url(settings, REDIRECT, "s", []))
    reply = {k: v[0] for k, v in parse_qs(urlsplit(fake.consent(started.url)).query).items()}
    other = run(Provider.authorization_url(settings, REDIRECT, "s", []))
    with pytest.raises(AuthFailed, match="invalid_grant"):
        run(Provider.exchange_code(settings, REDIRECT, reply, other.pending))


def test_granted_scopes_are_checked_and_earlier_grants_may_come_along(fake: FakeGoogle) -> None:
    settings = settings_for(fake)

    def sign_in(scopes: list[str]) -> dict[str, str]:
        started = run(Provider.authorization_url(settings, REDIRECT, "s", scopes))
        reply = {k: v[0] for k, v in parse_qs(urlsplit(fake.consent(started.url)).query).items()}
        return run(Provider.exchange_code(settings, REDIRECT, reply, started.pending))

    fake.grant_only_next([])  # the user unticks calendar access on the consent screen
    with pytest.raises(AuthFailed, match="did not grant calendar access"):
        sign_in([])
    assert sign_in([])["scope"] == SCOPE_CALENDAR
    # include_granted_scopes: the earlier grant comes along (oauthlib calls that a scope change)
    wider = sign_in([SCOPE_CALENDAR_READONLY])
    assert set(wider["scope"].split()) == {SCOPE_CALENDAR, SCOPE_CALENDAR_READONLY}


def test_token_is_refreshed_ahead_of_expiry_by_the_injected_clock(fake: FakeGoogle) -> None:
    clock = ManualClock(datetime.now(UTC))
    secrets = secrets_for(fake, expiry=clock.now() + timedelta(minutes=10))
    provider = provider_for(fake, clock, secrets)

    async def go() -> None:
        try:
            await provider.list_calendars()
            assert provider.refreshes == 0 and provider.refreshed_secrets() is None
            assert fake.requests_to("/token") == []

            clock.advance(minutes=6)  # four minutes left: refresh before the call
            await provider.list_calendars()
            assert provider.refreshes == 1 and len(fake.requests_to("/token")) == 1
            fresh = provider.refreshed_secrets()
            assert fresh is not None
            assert fresh["access_token"] != secrets["access_token"]
            assert fresh["refresh_token"] == secrets["refresh_token"]  # kept: Google sent none
            left = datetime.fromisoformat(fresh["expiry"]) - clock.now()
            assert timedelta(minutes=55) < left <= timedelta(seconds=3600)
            form = parse_qs(fake.requests_to("/token")[-1].body.decode())
            assert form["grant_type"] == ["refresh_token"]

            await provider.list_calendars()  # fresh now: no second refresh
            assert provider.refreshes == 1

            fake.expire_access_tokens(ANN)  # a 401 refreshes once and the call succeeds
            assert [c.remote_id for c in await provider.list_calendars()] == [ANN]
            assert provider.refreshes == 2
        finally:
            await provider.close()

    run(go())


def test_invalid_grant_is_auth_failed_with_reauthorize(fake: FakeGoogle) -> None:
    clock = ManualClock(datetime.now(UTC))
    secrets = secrets_for(fake, expiry=clock.now() - timedelta(minutes=1))
    fake.revoke_grant(ANN)
    provider = provider_for(fake, clock, secrets)

    async def go() -> None:
        try:
            with pytest.raises(AuthFailed) as failed:
                await provider.list_calendars()
            assert failed.value.reauthorize and not failed.value.retryable
            assert "invalid_grant" in failed.value.reason
            assert secrets["refresh_token"] not in failed.value.reason
            assert provider.refresh_failures == 1 and provider.refreshed_secrets() is None
        finally:
            await provider.close()

    run(go())


def test_revoke_makes_the_fake_refuse_the_refresh_token(fake: FakeGoogle) -> None:
    secrets = secrets_for(fake)
    provider = provider_for(fake, secrets=secrets)

    async def go() -> None:
        try:
            await provider.revoke()
            form = parse_qs(fake.requests_to("/revoke")[-1].body.decode())
            assert form["token"] == [secrets["refresh_token"]]
            with pytest.raises(AuthFailed) as failed:
                await provider.refresh()
            assert failed.value.reauthorize
            await provider.revoke()  # revoked already: not an error
        finally:
            await provider.close()
            await provider.close()  # safe twice

    run(go())


# ------------------------------------------------------------------------------------------ calendars


def test_list_calendars_marks_read_only_skips_free_busy_and_follows_pages(make_fake: Callable[..., FakeGoogle]) -> None:
    fake = make_fake(max_page_size=2)
    team = fake.add_calendar(ANN, "Team", "reader")
    side = fake.add_calendar(ANN, "Side project", "writer", time_zone="America/New_York")
    busy = fake.add_calendar(ANN, "Boss (free/busy)", "freeBusyReader")
    provider = provider_for(fake)

    async def go() -> None:
        try:
            assert await provider.login() == ANN
            calendars = {c.remote_id: c for c in await provider.list_calendars()}
            assert set(calendars) == {ANN, team, side} and busy not in calendars
            assert not calendars[ANN].read_only and calendars[ANN].timezone == BERLIN
            assert calendars[team].read_only and calendars[team].name == "Team"
            assert not calendars[side].read_only and calendars[side].timezone == "America/New_York"
            assert calendars[side].color == "#9fe1e7"
        finally:
            await provider.close()

    run(go())
    assert len(fake.requests_to("/users/me/calendarList")) == 2  # 4 entries at 2 a page, read once for both calls


# ------------------------------------------------------------------------------------------ listings


def _seed_series(fake: FakeGoogle) -> dict[str, Any]:
    return fake.put_event(
        ANN,
        timed(
            "2024-03-04T09:00:00",
            "2024-03-04T09:30:00",
            id="standup0001",
            summary="Standup",
            recurrence=["RRULE:FREQ=DAILY;COUNT=5", "EXDATE;TZID=Europe/Berlin:20240308T090000"],
            reminders={"useDefault": False, "overrides": [{"method": "popup", "minutes": 15}]},
        ),
    )


def test_full_listing_follows_pages_and_keeps_the_sync_token(make_fake: Callable[..., FakeGoogle]) -> None:
    fake = make_fake(max_page_size=2)
    singles = [
        fake.put_event(ANN, timed(f"2024-03-0{d}T10:00:00+01:00", f"2024-03-0{d}T11:00:00+01:00", summary=f"single {d}"))
        for d in (1, 2, 3)
    ]
    day = fake.put_event(ANN, {"summary": "Holiday", "start": {"date": "2024-03-09"}, "end": {"date": "2024-03-10"}})
    gone = fake.put_event(ANN, timed("2024-03-05T10:00:00+01:00", "2024-03-05T11:00:00+01:00", summary="gone"))
    fake.delete_event(ANN, gone["id"])
    series = _seed_series(fake)
    provider = provider_for(fake)

    async def go() -> None:
        try:
            fake.clear_requests()
            changes = await provider.fetch_changes(PRIMARY, None, {})
            pages = fake.requests_to(f"/calendars/{ANN}/events", "GET")
            assert len(pages) == 3  # 6 items (the deleted one too) at 2 a page, all inside one call
            assert all(p.param("showDeleted") == "true" and p.param("singleEvents") == "false" for p in pages)
            assert changes.full and changes.next_page is None and changes.cursor
            assert changes.present == {*(s["id"] for s in singles), day["id"], series["id"]}
            by_id = {e.remote_id: e for e in changes.events}
            assert set(by_id) == changes.present

            standup = by_id[series["id"]]
            assert standup.uid == series["iCalUID"] and standup.etag == series["etag"]
            assert standup.master.recurrence == ["RRULE:FREQ=DAILY;COUNT=5", "EXDATE:20240308T080000Z"]
            assert standup.master.tzid == BERLIN and standup.master.reminders == [15]
            assert standup.master.start_ts == ts("2024-03-04T08:00:00+00:00") and standup.overrides == []
            holiday = by_id[day["id"]].master
            assert holiday.all_day and holiday.start_ts == ts("2024-03-09T00:00:00+01:00")
            assert holiday.end_ts == ts("2024-03-10T00:00:00+01:00")
            assert by_id[singles[0]["id"]].master.title == "single 1"
            assert json.loads(by_id[singles[0]["id"]].raw or "")["items"][0]["id"] == singles[0]["id"]

            quiet = await provider.fetch_changes(PRIMARY, changes.cursor, {k: e.etag for k, e in by_id.items()})
            assert quiet.events == [] and quiet.deleted == [] and not quiet.full and quiet.cursor

            known = {e.remote_id: e.etag for e in changes.events}
            again = await provider.fetch_changes(PRIMARY, None, known)  # nothing changed: nothing decoded
            assert again.events == [] and again.present == changes.present
        finally:
            await provider.close()

    run(go())


def test_incremental_listing_returns_whole_series_after_user_side_edits(fake: FakeGoogle) -> None:
    series = _seed_series(fake)
    single = fake.put_event(ANN, timed("2024-03-10T10:00:00+01:00", "2024-03-10T11:00:00+01:00", summary="edit me"))
    drop = fake.put_event(ANN, timed("2024-03-11T10:00:00+01:00", "2024-03-11T11:00:00+01:00", summary="drop me"))
    provider = provider_for(fake)

    async def go() -> None:
        try:
            first = await provider.fetch_changes(PRIMARY, None, {})
            known: dict[str, str | None] = {e.remote_id: e.etag for e in first.events}

            # on the phone: one occurrence moved, one cancelled, a single edited, another deleted
            fake.edit_event(
                ANN,
                "standup0001_20240305T080000Z",
                start={"dateTime": "2024-03-05T11:00:00+01:00"},
                end={"dateTime": "2024-03-05T11:30:00+01:00"},
                summary="Standup (moved)",
            )
            fake.delete_event(ANN, "standup0001_20240306T080000Z")
            fake.edit_event(ANN, single["id"], summary="edited on the phone")
            fake.delete_event(ANN, drop["id"])

            fake.clear_requests()
            delta = await provider.fetch_changes(PRIMARY, first.cursor, known)
            assert not delta.full and delta.next_page is None and delta.cursor and delta.cursor != first.cursor
            assert delta.deleted == [drop["id"]]
            by_id = {e.remote_id: e for e in delta.events}
            assert set(by_id) == {series["id"], single["id"]}
            assert by_id[single["id"]].master.title == "edited on the phone"

            standup = by_id[series["id"]]
            assert standup.uid == series["iCalUID"]
            assert standup.master.recurrence == [
                "RRULE:FREQ=DAILY;COUNT=5",
                "EXDATE:20240308T080000Z",
                "EXDATE:20240306T080000Z",  # the cancelled instance: an EXDATE, not an override
            ]
            assert [o.recurrence_id_ts for o in standup.overrides] == [ts("2024-03-05T09:00:00+01:00")]
            moved = standup.overrides[0]
            assert moved.title == "Standup (moved)" and moved.start_ts == ts("2024-03-05T11:00:00+01:00")
            assert moved.remote_id == "standup0001_20240305T080000Z" and moved.reminders == [15]
            assert ge.is_series_etag(standup.etag)
            pieces = {i["id"] for i in json.loads(standup.raw or "")["items"]}
            assert pieces == {"standup0001", "standup0001_20240305T080000Z", "standup0001_20240306T080000Z"}
            by_uid = [r for r in fake.requests_to("/events", "GET") if r.param("iCalUID")]
            assert [r.param("iCalUID") for r in by_uid] == [series["iCalUID"]]  # the series fetched whole, once

            # a full listing computes the same etag for the same series
            full = await provider.fetch_changes(PRIMARY, None, {})
            assert {e.remote_id: e.etag for e in full.events}[series["id"]] == standup.etag
            known.update({e.remote_id: e.etag for e in delta.events})

            # only a cancelled instance in the increment (no iCalUID in it): the master is read for it
            fake.delete_event(ANN, "standup0001_20240307T080000Z")
            later = await provider.fetch_changes(PRIMARY, delta.cursor, known)
            assert [e.remote_id for e in later.events] == [series["id"]]
            assert later.events[0].master.recurrence == [
                "RRULE:FREQ=DAILY;COUNT=5",
                "EXDATE:20240308T080000Z",
                "EXDATE:20240306T080000Z,20240307T080000Z",
            ]
            assert len(later.events[0].overrides) == 1

            fake.delete_event(ANN, series["id"])  # the whole series goes
            gone = await provider.fetch_changes(PRIMARY, later.cursor, {series["id"]: later.events[0].etag})
            assert gone.deleted == [series["id"]] and gone.events == []
        finally:
            await provider.close()

    run(go())


def test_an_expired_sync_token_is_cursor_expired(fake: FakeGoogle) -> None:
    fake.put_event(ANN, timed("2024-03-10T10:00:00+01:00", "2024-03-10T11:00:00+01:00"))
    provider = provider_for(fake)

    async def go() -> None:
        try:
            first = await provider.fetch_changes(PRIMARY, None, {})
            fake.expire_sync_tokens()
            with pytest.raises(CursorExpired):
                await provider.fetch_changes(PRIMARY, first.cursor, {})
            assert (await provider.fetch_changes(PRIMARY, None, {})).full
        finally:
            await provider.close()

    run(go())


# ------------------------------------------------------------------------------------------ writes


def test_insert_uses_the_derived_id_and_a_retried_insert_does_not_duplicate(fake: FakeGoogle) -> None:
    provider = provider_for(fake)
    master = data("Planning", "2024-04-02T10:00:00+02:00", "2024-04-02T11:00:00+02:00", reminders=[10, 30])

    async def go() -> None:
        try:
            stored = await provider.put_event(PRIMARY, outgoing("evt_01hplan", master))
            eid = ge.derived_id("evt_01hplan")
            assert stored.remote_id == eid and len(eid) >= 5 and set(eid) <= set("abcdefghijklmnopqrstuv0123456789")
            google = fake.get_event(ANN, eid)
            assert google["iCalUID"] == "evt_01hplan@chronary.test" and google["summary"] == "Planning"
            assert google["start"] == {"dateTime": "2024-04-02T10:00:00+02:00", "timeZone": BERLIN}
            assert google["reminders"] == {
                "useDefault": False,
                "overrides": [{"method": "popup", "minutes": 10}, {"method": "popup", "minutes": 30}],
            }
            assert stored.etag == google["etag"] and stored.master.title == "Planning"
            post = fake.requests_to(f"/calendars/{ANN}/events", "POST")[-1]
            assert post.param("sendUpdates") == "none"

            # the first answer was lost: the engine retries the insert (remote_id still None)
            master.title = "Planning (retried)"
            again = await provider.put_event(PRIMARY, outgoing("evt_01hplan", master))
            assert again.remote_id == eid and [e["id"] for e in fake.stored_events(ANN)] == [eid]
            assert fake.get_event(ANN, eid)["summary"] == "Planning (retried)"
            assert again.etag == fake.get_event(ANN, eid)["etag"]
        finally:
            await provider.close()

    run(go())


def test_patch_sends_only_changed_fields_and_a_stale_etag_is_precondition_failed(fake: FakeGoogle) -> None:
    provider = provider_for(fake)
    master = data("Review", "2024-04-03T10:00:00+02:00", "2024-04-03T11:00:00+02:00")

    async def go() -> None:
        try:
            stored = await provider.put_event(PRIMARY, outgoing("evt_review", master))
            fake.edit_event(ANN, stored.remote_id, colorId="5")  # something Chronary does not model

            master.title = "Review (moved on our side)"
            with pytest.raises(PreconditionFailed):  # the phone changed it since: our etag is stale
                await provider.put_event(PRIMARY, outgoing("evt_review", master, remote=stored))

            current = (await provider.fetch_changes(PRIMARY, None, {})).events[0]
            updated = await provider.put_event(PRIMARY, outgoing("evt_review", master, remote=current))
            patch = fake.requests_to(f"/events/{stored.remote_id}", "PATCH")[-1]
            assert patch.json() == {"summary": "Review (moved on our side)"}
            assert patch.header("If-Match") == current.etag
            google = fake.get_event(ANN, stored.remote_id)
            assert google["summary"] == "Review (moved on our side)" and google["colorId"] == "5"
            assert updated.etag == google["etag"]
        finally:
            await provider.close()

    run(go())


def test_own_writes_come_back_with_the_etag_the_next_listing_computes(fake: FakeGoogle) -> None:
    provider = provider_for(fake)
    rule = ["RRULE:FREQ=DAILY;COUNT=5"]
    weekly = data("Weekly", "2024-04-01T09:00:00+02:00", "2024-04-01T09:30:00+02:00", recurrence=rule)
    moved = data("Weekly (late)", "2024-04-02T15:00:00+02:00", "2024-04-02T15:30:00+02:00", rid="2024-04-02T09:00:00+02:00")
    days = data("Retreat", "2024-04-08T00:00:00+02:00", "2024-04-09T00:00:00+02:00", all_day=True)
    days.recurrence = ["RRULE:FREQ=WEEKLY;COUNT=3"]
    day_moved = data("Retreat (short)", "2024-04-16T00:00:00+02:00", "2024-04-17T00:00:00+02:00", all_day=True)
    day_moved.recurrence_id_ts = ts("2024-04-15T00:00:00+02:00")
    single = data("Lunch", "2024-04-05T12:00:00+02:00", "2024-04-05T13:00:00+02:00")

    async def go() -> None:
        try:
            first = await provider.fetch_changes(PRIMARY, None, {})
            puts = [
                await provider.put_event(PRIMARY, outgoing("evt_weekly", weekly, [moved])),
                await provider.put_event(PRIMARY, outgoing("evt_retreat", days, [day_moved])),
                await provider.put_event(PRIMARY, outgoing("evt_lunch", single)),
            ]
            wid, rid_, lid = (p.remote_id for p in puts)
            assert fake.get_event(ANN, f"{wid}_20240402T070000Z")["summary"] == "Weekly (late)"
            assert fake.get_event(ANN, f"{rid_}_20240415")["start"] == {"date": "2024-04-16"}
            assert ge.is_series_etag(puts[0].etag) and not ge.is_series_etag(puts[2].etag)
            known = {p.remote_id: p.etag for p in puts}

            delta = await provider.fetch_changes(PRIMARY, first.cursor, known)
            assert delta.events == [] and delta.deleted == []  # our own writes are not remote changes
            full = await provider.fetch_changes(PRIMARY, None, {})
            assert {e.remote_id: e.etag for e in full.events} == known
            listed = {e.remote_id: e for e in full.events}
            assert listed[wid].master.recurrence == rule and [o.title for o in listed[wid].overrides] == ["Weekly (late)"]
            assert listed[rid_].overrides[0].recurrence_id_ts == ts("2024-04-15T00:00:00+02:00")

            # the series changes locally: one occurrence deleted (EXDATE), the moved one back to normal
            weekly2 = data(
                "Weekly",
                "2024-04-01T09:00:00+02:00",
                "2024-04-01T09:30:00+02:00",
                recurrence=[*rule, "EXDATE:20240403T070000Z"],
            )
            again = await provider.put_event(PRIMARY, outgoing("evt_weekly", weekly2, [], remote=listed[wid]))
            assert again.overrides == [] and again.master.recurrence == [*rule, "EXDATE:20240403T070000Z"]
            assert fake.get_event(ANN, f"{wid}_20240402T070000Z")["summary"] == "Weekly"
            later = await provider.fetch_changes(PRIMARY, delta.cursor, {**known, wid: again.etag})
            assert later.events == []
        finally:
            await provider.close()

    run(go())


def test_a_series_write_sends_only_what_changed(fake: FakeGoogle) -> None:
    series = _seed_series(fake)
    fake.edit_event(ANN, "standup0001_20240305T080000Z", summary="Standup (moved)", colorId="3")
    fake.delete_event(ANN, "standup0001_20240306T080000Z")
    provider = provider_for(fake)

    async def go() -> None:
        try:
            (remote,) = (await provider.fetch_changes(PRIMARY, None, {})).events
            assert remote.master.recurrence and "EXDATE:20240306T080000Z" in remote.master.recurrence
            master = remote.master
            master.title = "Daily standup"
            out = Outgoing(
                uid=remote.uid,
                event_id="evt_standup",
                master=master,
                overrides=remote.overrides,
                zone=BERLIN,
                calendar_zone=BERLIN,
                internal=False,
                remote_id=remote.remote_id,
                etag=remote.etag,
                base=remote.raw,
            )
            before = fake.get_event(ANN, series["id"])["etag"]
            fake.clear_requests()
            stored = await provider.put_event(PRIMARY, out)
            writes = [r for r in fake.requests if r.method in ("PATCH", "POST", "PUT", "DELETE")]
            assert [(r.method, r.path.rsplit("/", 1)[-1], r.json()) for r in writes] == [
                ("PATCH", series["id"], {"summary": "Daily standup"})  # no recurrence, no instances
            ]
            assert writes[0].header("If-Match") == before
            google = fake.get_event(ANN, series["id"])
            assert google["recurrence"] == series["recurrence"]  # Google's own lines, untouched
            assert fake.get_event(ANN, "standup0001_20240305T080000Z")["colorId"] == "3"
            assert [o.title for o in stored.overrides] == ["Standup (moved)"]
            assert stored.master.recurrence == remote.master.recurrence
        finally:
            await provider.close()

    run(go())


def test_delete_with_etags(fake: FakeGoogle) -> None:
    provider = provider_for(fake)

    async def go() -> None:
        try:
            one = await provider.put_event(
                PRIMARY, outgoing("evt_del1", data("One", "2024-04-05T12:00:00+02:00", "2024-04-05T13:00:00+02:00"))
            )
            two = await provider.put_event(
                PRIMARY, outgoing("evt_del2", data("Two", "2024-04-06T12:00:00+02:00", "2024-04-06T13:00:00+02:00"))
            )
            fake.edit_event(ANN, two.remote_id, summary="changed on the phone")
            with pytest.raises(PreconditionFailed):
                await provider.delete_event(PRIMARY, two.remote_id, two.etag)
            assert fake.get_event(ANN, two.remote_id)["status"] == "confirmed"

            await provider.delete_event(PRIMARY, one.remote_id, one.etag)
            assert fake.get_event(ANN, one.remote_id)["status"] == "cancelled"
            await provider.delete_event(PRIMARY, one.remote_id, one.etag)  # gone already: fine
            await provider.delete_event(PRIMARY, "nosuchevent00", None)

            rule = ["RRULE:FREQ=DAILY;COUNT=3"]
            series = await provider.put_event(
                PRIMARY,
                outgoing(
                    "evt_del3",
                    data("S", "2024-04-01T09:00:00+02:00", "2024-04-01T10:00:00+02:00", recurrence=rule),
                    [
                        data(
                            "S late",
                            "2024-04-02T11:00:00+02:00",
                            "2024-04-02T12:00:00+02:00",
                            rid="2024-04-02T09:00:00+02:00",
                        )
                    ],
                ),
            )
            assert ge.is_series_etag(series.etag)
            await provider.delete_event(PRIMARY, series.remote_id, series.etag)
            assert {e["status"] for e in fake.stored_events(ANN) if e["id"].startswith(series.remote_id)} == {"cancelled"}
        finally:
            await provider.close()

    run(go())


def test_writes_to_a_reader_calendar_are_not_retryable(fake: FakeGoogle) -> None:
    team = fake.add_calendar(ANN, "Team", "reader")
    provider = provider_for(fake)
    calendar = RemoteCalendar(team, "Team", read_only=True, timezone=BERLIN, local_timezone=BERLIN)

    async def go() -> None:
        try:
            with pytest.raises(ProviderError) as denied:
                await provider.put_event(
                    calendar, outgoing("evt_team", data("X", "2024-04-05T12:00:00+02:00", "2024-04-05T13:00:00+02:00"))
                )
            assert not denied.value.retryable and "403" in denied.value.reason
        finally:
            await provider.close()

    run(go())


# ------------------------------------------------------------------------------------------ rate limits


def test_a_rate_limit_answer_is_retried_transparently(fake: FakeGoogle) -> None:
    provider = provider_for(fake)
    sleeps: list[float] = []

    async def no_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    provider.api.sleep = no_sleep

    async def go() -> None:
        try:
            await provider.list_calendars()  # token and connection warm
            fake.clear_requests()
            fake.fail_next(1, 403, "rateLimitExceeded")
            fake.fail_next(1, 503)
            assert [c.remote_id for c in await provider.list_calendars()] == [ANN]
            assert len(fake.requests_to("/calendarList")) == 3
            assert len(sleeps) == 2 and 1.0 <= sleeps[0] < 2.0 and 2.0 <= sleeps[1] < 4.0  # backoff with jitter
        finally:
            await provider.close()

    run(go())


def test_a_persistent_429_raises_with_retry_after(fake: FakeGoogle) -> None:
    provider = provider_for(fake)
    sleeps: list[float] = []

    async def no_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    provider.api.sleep = no_sleep

    async def go() -> None:
        try:
            await provider.list_calendars()
            fake.fail_next(4, 429, retry_after=5)
            with pytest.raises(ProviderError) as limited:
                await provider.list_calendars()
            assert limited.value.retryable and limited.value.retry_after == 5
            assert sleeps == [5.0, 5.0, 5.0]  # three retries at Retry-After, then the engine's turn

            sleeps.clear()
            fake.fail_next(1, 429, retry_after=120)  # longer than one call may sleep: no sleeping at all
            with pytest.raises(ProviderError) as later:
                await provider.list_calendars()
            assert later.value.retry_after == 120 and sleeps == []
        finally:
            await provider.close()

    run(go())


def test_retry_after_as_an_http_date() -> None:
    from chronary.providers.http import retry_after

    now = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    assert retry_after({"retry-after": "Mon, 05 Jan 2026 09:00:42 GMT"}, lambda: now) == 42
    assert retry_after({"retry-after": "17"}) == 17
    assert retry_after({"retry-after": "soon"}) is None and retry_after({}) is None


def test_the_budget_waits_when_over_budget() -> None:
    now = [1000.0]
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    budget = Budget(60, burst=2, clock=lambda: now[0])  # one a second, two at once

    async def go() -> None:
        for _ in range(2):
            assert await budget.acquire(sleep) == 0
        assert await budget.acquire(sleep) == pytest.approx(1.0)
        assert await budget.acquire(sleep) == pytest.approx(1.0)
        now[0] += 10  # idle: the bucket refills up to its burst only
        for _ in range(2):
            assert await budget.acquire(sleep) == 0
        assert await budget.acquire(sleep) == pytest.approx(1.0)
        with pytest.raises(ProviderError) as exhausted:
            await budget.acquire(sleep, max_wait=0.5)
        assert exhausted.value.retry_after == pytest.approx(1.0)

    run(go())
    assert waits == [pytest.approx(1.0)] * 3


def test_one_budget_per_account_shared_by_provider_objects(fake: FakeGoogle) -> None:
    a, b = provider_for(fake), provider_for(fake)
    try:
        assert a.api.budget is b.api.budget
        assert a.api.budget is budget_for("google", ANN, 100_000)
        assert budget_for("google", "someone-else@example.com", 100_000) is not a.api.budget
    finally:
        run(a.close())
        run(b.close())


def test_an_api_client_call_waits_for_the_budget() -> None:
    now = [0.0]
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    async def go() -> None:
        import httpx

        client = ApiClient(
            Settings(),
            name="Test",
            budget=Budget(120, burst=1, clock=lambda: now[0]),
            sleep=sleep,
            transport=httpx.MockTransport(lambda request: httpx.Response(200, json={})),
        )
        try:
            for _ in range(3):
                assert (await client.send("GET", "https://api.example.test/x")).status_code == 200
        finally:
            await client.close()

    run(go())
    assert waits == [pytest.approx(0.5), pytest.approx(0.5)] and now[0] == pytest.approx(1.0)


# ------------------------------------------------------------------------------------------ push


class _Receiver:
    def __init__(self) -> None:
        self.hits: list[dict[str, str]] = []
        self.got = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.hits.append(dict(self.headers.items()))
                outer.got.set()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/push/google"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_watch_renew_stop_and_verify_notification(fake: FakeGoogle) -> None:
    receiver = _Receiver()
    provider = provider_for(fake)

    async def go() -> tuple[PushChannel, PushChannel]:
        try:
            channel = await provider.subscribe(PRIMARY, receiver.url, "secret-token-1")
            renewed = await provider.renew(channel, receiver.url)
            return channel, renewed
        finally:
            await provider.close()

    try:
        channel, renewed = run(go())
        assert channel.remote_calendar_id == ANN and channel.token == "secret-token-1" and channel.resource_id
        now = datetime.now(UTC).timestamp()
        assert 604700 < channel.expires_at - now <= 604800
        watch = fake.requests_to("/events/watch", "POST")[0].json()
        assert watch["type"] == "web_hook" and watch["address"] == receiver.url and watch["params"] == {"ttl": "604800"}
        channels = {c["id"]: c for c in fake.channels}
        assert channels[channel.id]["stopped"] and not channels[renewed.id]["stopped"]
        assert renewed.id != channel.id and renewed.token == channel.token

        fake.wait_for_deliveries(2)  # the "sync" message of each channel
        receiver.got.clear()
        assert fake.notify(renewed.id, "exists") == 200
        assert receiver.got.wait(5)
        exists = next(h for h in reversed(receiver.hits) if h.get("X-Goog-Resource-State") == "exists")
        sync = next(h for h in receiver.hits if h.get("X-Goog-Channel-ID") == renewed.id)

        def lookup(cid: str) -> PushChannel | None:
            return renewed if cid == renewed.id else None

        assert Provider.verify_notification(exists, b"", lookup) == [Notification(renewed.id, sync=True)]
        lowered = {k.lower(): v for k, v in exists.items()}
        assert Provider.verify_notification(lowered, b"", lookup) == [Notification(renewed.id, sync=True)]
        assert Provider.verify_notification(sync, b"", lookup) == [Notification(renewed.id, sync=False)]
        assert Provider.verify_notification({**exists, "X-Goog-Channel-Token": "wrong"}, b"", lookup) == []
        assert (
            Provider.verify_notification({k: v for k, v in exists.items() if k != "X-Goog-Channel-Token"}, b"", lookup) == []
        )
        assert Provider.verify_notification({**exists, "X-Goog-Channel-ID": "unknown"}, b"", lookup) == []
        assert Provider.verify_notification({}, b"", lookup) == []

        async def stop() -> None:
            stopper = provider_for(fake)
            try:
                await stopper.unsubscribe(renewed)
                await stopper.unsubscribe(renewed)  # stopped already (404): fine
            finally:
                await stopper.close()

        run(stop())
        assert {c["id"]: c for c in fake.channels}[renewed.id]["stopped"]
    finally:
        receiver.close()

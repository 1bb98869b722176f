"""The Google fake itself, over real HTTP on 127.0.0.1: OAuth (auth code + PKCE, refresh, revoke) and Calendar v3."""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from tests.fakes.google import SCOPE_CALENDAR, FakeGoogle

CLIENT_ID = "123-fake.apps.googleusercontent.com"
SECRET = "GOCSPX-fake-secret"
REDIRECT = "http://127.0.0.1:9/v1/connections/callback"
ANN = "ann@example.com"


@pytest.fixture
def google() -> Iterator[FakeGoogle]:
    with FakeGoogle() as g:
        g.add_client(CLIENT_ID, SECRET, [REDIRECT])
        g.add_account(ANN, time_zone="Europe/Berlin")
        yield g
        assert g.errors == []  # no request hit a bug inside the fake


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def auth_params(challenge: str, **extra: str) -> dict[str, str]:
    return {
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT,
        "response_type": "code",
        "scope": SCOPE_CALENDAR,
        "state": "st-1",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **extra,
    }


def authorize(g: FakeGoogle, challenge: str, **extra: str) -> dict[str, str]:
    location = g.consent(g.auth_url + "?" + urlencode(auth_params(challenge, **extra)))
    assert location.startswith(REDIRECT + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def exchange(g: FakeGoogle, code: str, verifier: str | None, **extra: str) -> httpx.Response:
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "client_id": CLIENT_ID}
    form["client_secret"] = SECRET
    if verifier is not None:
        form["code_verifier"] = verifier
    form.update(extra)
    return httpx.post(g.token_url, data=form, verify=g.verify)


def refresh(g: FakeGoogle, refresh_token: str) -> httpx.Response:
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": CLIENT_ID, "client_secret": SECRET}
    return httpx.post(g.token_url, data=form, verify=g.verify)


def api(g: FakeGoogle, email: str = ANN) -> httpx.Client:
    token = g.issue_tokens(email, CLIENT_ID)["access_token"]
    return httpx.Client(base_url=g.api_url, headers={"Authorization": f"Bearer {token}"}, verify=g.verify)


def timed(start: str, end: str, tz: str = "Europe/Berlin", **extra: Any) -> dict[str, Any]:
    return {"start": {"dateTime": start, "timeZone": tz}, "end": {"dateTime": end, "timeZone": tz}, **extra}


def list_all(client: httpx.Client, cid: str, **params: Any) -> tuple[list[dict[str, Any]], str, int]:
    """Follow nextPageToken to the end: (items, nextSyncToken, pages)."""
    items: list[dict[str, Any]] = []
    pages = 0
    page_token = None
    while True:
        query = dict(params, **({"pageToken": page_token} if page_token else {}))
        r = client.get(f"/calendars/{cid}/events", params=query)
        assert r.status_code == 200, r.text
        body = r.json()
        pages += 1
        items += body["items"]
        page_token = body.get("nextPageToken")
        if page_token is None:
            return items, body["nextSyncToken"], pages
        assert "nextSyncToken" not in body


# ----------------------------------------------------------------------------------------------- OAuth


def test_auth_code_with_pkce_round_trip_and_the_token_works(google: FakeGoogle) -> None:
    verifier, challenge = pkce()
    reply = authorize(google, challenge, access_type="offline", prompt="consent")
    assert reply["state"] == "st-1" and reply["code"].startswith("4/")

    r = exchange(google, reply["code"], verifier)
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"].startswith("no-cache")
    token = r.json()
    assert token["token_type"] == "Bearer" and token["scope"] == SCOPE_CALENDAR
    assert token["expires_in"] == 3599 and token["refresh_token"].startswith("1//")

    calendars = httpx.get(
        google.api_url + "/users/me/calendarList", headers={"Authorization": f"Bearer {token['access_token']}"}
    )
    assert calendars.status_code == 200
    assert [(c["id"], c["accessRole"], c.get("primary")) for c in calendars.json()["items"]] == [(ANN, "owner", True)]

    again = exchange(google, reply["code"], verifier)  # codes are single-use
    assert (again.status_code, again.json()["error"]) == (400, "invalid_grant")


def test_wrong_or_missing_verifier_is_invalid_grant(google: FakeGoogle) -> None:
    verifier, challenge = pkce()
    code = authorize(google, challenge)["code"]
    wrong = exchange(google, code, pkce()[0])
    assert wrong.status_code == 400
    assert wrong.json() == {"error": "invalid_grant", "error_description": "Invalid code verifier."}
    missing = exchange(google, code, None)
    assert missing.json() == {"error": "invalid_grant", "error_description": "Missing code verifier."}
    assert exchange(google, code, verifier, redirect_uri=REDIRECT + "x").json()["error"] == "redirect_uri_mismatch"
    bad_secret = exchange(google, code, verifier, client_secret="nope")
    assert (bad_secret.status_code, bad_secret.json()["error"]) == (401, "invalid_client")
    assert exchange(google, code, verifier).status_code == 200


def test_auth_endpoint_validates_client_redirect_and_user_choice(google: FakeGoogle) -> None:
    _, challenge = pkce()
    bad_redirect = httpx.get(google.auth_url, params=auth_params(challenge, redirect_uri="http://127.0.0.1:9/other"))
    assert bad_redirect.status_code == 400 and "redirect_uri_mismatch" in bad_redirect.text
    bad_client = httpx.get(google.auth_url, params=auth_params(challenge, client_id="who"))
    assert bad_client.status_code == 401 and "invalid_client" in bad_client.text
    google.deny_next()
    denied = google.consent(google.auth_url + "?" + urlencode(auth_params(challenge)))
    assert parse_qs(urlsplit(denied).query) == {"error": ["access_denied"], "state": ["st-1"]}


def test_refresh_token_only_for_offline_with_consent_or_first_time(google: FakeGoogle) -> None:
    def tokens(**extra: str) -> dict[str, Any]:
        verifier, challenge = pkce()
        return exchange(google, authorize(google, challenge, **extra)["code"], verifier).json()

    assert "refresh_token" not in tokens()  # online access
    assert "refresh_token" in tokens(access_type="offline")  # first offline consent
    assert "refresh_token" not in tokens(access_type="offline")  # Google keeps the one it gave
    assert "refresh_token" in tokens(access_type="offline", prompt="consent")


def test_refresh_keeps_the_refresh_token_unless_rotation_is_on(google: FakeGoogle) -> None:
    first = google.issue_tokens(ANN, CLIENT_ID)
    r = refresh(google, first["refresh_token"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert "refresh_token" not in body and body["access_token"] != first["access_token"]
    assert api(google).get("/users/me/calendarList").status_code == 200
    assert refresh(google, first["refresh_token"]).status_code == 200  # still valid

    with FakeGoogle(rotate_refresh_tokens=True) as g:
        g.add_client(CLIENT_ID, SECRET, [REDIRECT])
        g.add_account(ANN)
        old = g.issue_tokens(ANN, CLIENT_ID)["refresh_token"]
        rotated = refresh(g, old).json()["refresh_token"]
        assert rotated != old
        assert refresh(g, old).json()["error"] == "invalid_grant"
        assert refresh(g, rotated).status_code == 200


def test_revoke_makes_refresh_invalid_grant_and_access_401(google: FakeGoogle) -> None:
    tokens = google.issue_tokens(ANN, CLIENT_ID)
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    r = httpx.post(google.revoke_url, params={"token": tokens["refresh_token"]})
    assert r.status_code == 200
    gone = refresh(google, tokens["refresh_token"])
    assert gone.status_code == 400
    assert gone.json() == {"error": "invalid_grant", "error_description": "Token has been expired or revoked."}
    denied = httpx.get(google.api_url + "/users/me/calendarList", headers=headers)
    assert denied.status_code == 401
    assert denied.json()["error"]["status"] == "UNAUTHENTICATED"
    assert denied.json()["error"]["errors"][0]["reason"] == "authError"
    assert httpx.post(google.revoke_url, params={"token": tokens["refresh_token"]}).json()["error"] == "invalid_token"

    other = google.issue_tokens(ANN, CLIENT_ID)  # a fresh consent works again; revoke_grant is the user's side
    google.revoke_grant(ANN)
    assert refresh(google, other["refresh_token"]).json()["error"] == "invalid_grant"


def test_expired_access_tokens_answer_401_and_refresh_recovers(google: FakeGoogle) -> None:
    tokens = google.issue_tokens(ANN, CLIENT_ID)
    google.expire_access_tokens()
    r = httpx.get(
        google.api_url + "/calendars/primary/events", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert r.status_code == 401
    assert r.json()["error"]["code"] == 401 and r.json()["error"]["status"] == "UNAUTHENTICATED"
    assert "invalid_token" in r.headers["www-authenticate"]
    fresh = refresh(google, tokens["refresh_token"]).json()["access_token"]
    ok = httpx.get(google.api_url + "/calendars/primary/events", headers={"Authorization": f"Bearer {fresh}"})
    assert ok.status_code == 200


def test_google_auth_oauthlib_flow_over_tls() -> None:
    flow_mod = pytest.importorskip("google_auth_oauthlib.flow")
    requests = pytest.importorskip("requests")
    from google.auth.transport.requests import Request

    with FakeGoogle(tls=True) as g:
        g.add_client(CLIENT_ID, SECRET, [REDIRECT])
        g.add_account(ANN)
        assert g.base_url.startswith("https://127.0.0.1:")
        config = {
            "web": {
                "client_id": CLIENT_ID,
                "client_secret": SECRET,
                "auth_uri": g.auth_url,
                "token_uri": g.token_url,
                "redirect_uris": [REDIRECT],
            }
        }
        flow = flow_mod.Flow.from_client_config(config, scopes=[SCOPE_CALENDAR], redirect_uri=REDIRECT)
        url, state = flow.authorization_url(access_type="offline", prompt="consent")
        assert "code_challenge_method=S256" in url
        reply = parse_qs(urlsplit(g.consent(url)).query)
        assert reply["state"] == [state]
        flow.fetch_token(code=reply["code"][0], verify=g.cafile)
        form = parse_qs(g.requests_to("/token")[-1].body.decode())
        assert form["code_verifier"] == [flow.code_verifier]

        creds = flow.credentials
        assert creds.refresh_token and creds.token
        r = httpx.get(
            g.api_url + "/users/me/calendarList", headers={"Authorization": f"Bearer {creds.token}"}, verify=g.cafile
        )
        assert r.json()["items"][0]["id"] == ANN

        session = requests.Session()
        session.verify, session.trust_env = g.cafile, False
        before = creds.token
        creds.refresh(Request(session))
        assert creds.token != before
        g.revoke_grant(ANN)
        with pytest.raises(Exception, match="invalid_grant"):
            creds.refresh(Request(session))


# ----------------------------------------------------------------------------------------------- Calendar API


def test_calendar_list_pages_and_roles(google: FakeGoogle) -> None:
    shared = google.add_calendar(ANN, "Team", "reader")
    mine = google.add_calendar(ANN, "Side project", "owner", time_zone="America/New_York")
    with api(google) as c:
        first = c.get("/users/me/calendarList", params={"maxResults": 2}).json()
        assert first["kind"] == "calendar#calendarList" and "nextSyncToken" not in first
        second = c.get("/users/me/calendarList", params={"maxResults": 2, "pageToken": first["nextPageToken"]}).json()
        assert "nextPageToken" not in second and second["nextSyncToken"]
        entries = {e["id"]: e for e in first["items"] + second["items"]}
        assert set(entries) == {ANN, shared, mine}
        assert entries[shared]["accessRole"] == "reader" and entries[mine]["timeZone"] == "America/New_York"
        writers = c.get("/users/me/calendarList", params={"minAccessRole": "writer"}).json()["items"]
        assert {e["id"] for e in writers} == {ANN, mine}


def test_insert_with_client_id_duplicate_409_and_bad_id_400(google: FakeGoogle) -> None:
    body = timed("2024-03-04T09:00:00+01:00", "2024-03-04T10:00:00+01:00", id="chr0abc12345", summary="Standup")
    with api(google) as c:
        r = c.post("/calendars/primary/events", json=body)
        assert r.status_code == 200, r.text
        ev = r.json()
        assert ev["id"] == "chr0abc12345" and ev["status"] == "confirmed" and ev["kind"] == "calendar#event"
        assert ev["etag"].startswith('"') and ev["iCalUID"] == "chr0abc12345@google.com"
        assert ev["start"] == {"dateTime": "2024-03-04T09:00:00+01:00", "timeZone": "Europe/Berlin"}
        assert c.get(f"/calendars/{ANN}/events/chr0abc12345").json()["summary"] == "Standup"

        dup = c.post("/calendars/primary/events", json=body)
        assert dup.status_code == 409
        assert dup.json()["error"]["errors"][0]["reason"] == "duplicate"
        for bad in ("ABCDEF", "abc", "wxyz12345", "abc_12345"):
            r = c.post("/calendars/primary/events", json={**body, "id": bad})
            assert (r.status_code, r.json()["error"]["errors"][0]["reason"]) == (400, "invalid"), bad
        empty = c.post("/calendars/primary/events", json=timed("2024-03-04T10:00:00+01:00", "2024-03-04T10:00:00+01:00"))
        assert empty.json()["error"]["errors"][0]["reason"] == "timeRangeEmpty"


def test_patch_put_delete_with_if_match(google: FakeGoogle) -> None:
    with api(google) as c:
        ev = c.post(
            "/calendars/primary/events", json=timed("2024-03-04T09:00:00Z", "2024-03-04T10:00:00Z", summary="A")
        ).json()
        patched = c.patch(f"/calendars/primary/events/{ev['id']}", json={"summary": "B"}, headers={"If-Match": ev["etag"]})
        assert patched.status_code == 200 and patched.json()["summary"] == "B"
        assert patched.json()["etag"] != ev["etag"] and patched.json()["updated"] > ev["updated"]
        assert patched.json()["start"]["timeZone"] == "Europe/Berlin"  # patch merges nested objects

        stale = c.patch(f"/calendars/primary/events/{ev['id']}", json={"summary": "C"}, headers={"If-Match": ev["etag"]})
        assert stale.status_code == 412
        err = stale.json()["error"]
        assert err["code"] == 412 and err["errors"][0]["reason"] == "conditionNotMet"
        assert (
            c.put(
                f"/calendars/primary/events/{ev['id']}",
                json=timed("2024-03-04T09:00:00Z", "2024-03-04T11:00:00Z"),
                headers={"If-Match": ev["etag"]},
            ).status_code
            == 412
        )
        assert c.delete(f"/calendars/primary/events/{ev['id']}", headers={"If-Match": ev["etag"]}).status_code == 412

        current = patched.json()["etag"]
        put = c.put(f"/calendars/primary/events/{ev['id']}", json=timed("2024-03-04T09:00:00Z", "2024-03-04T11:00:00Z"))
        assert put.status_code == 200 and "summary" not in put.json() and put.json()["sequence"] == 1
        assert (
            c.get(f"/calendars/primary/events/{ev['id']}", headers={"If-None-Match": put.json()["etag"]}).status_code == 304
        )
        assert current != put.json()["etag"]
        assert c.delete(f"/calendars/primary/events/{ev['id']}").status_code == 204
        assert c.get(f"/calendars/primary/events/{ev['id']}").json()["status"] == "cancelled"
        assert c.delete(f"/calendars/primary/events/{ev['id']}").status_code == 410
        assert c.get("/calendars/primary/events/nosuchevent1").status_code == 404


def test_writes_to_a_reader_calendar_are_403(google: FakeGoogle) -> None:
    team = google.add_calendar(ANN, "Team", "reader")
    google.put_event(team, timed("2024-03-04T09:00:00Z", "2024-03-04T10:00:00Z", id="teamevent01"))
    with api(google) as c:
        assert c.get(f"/calendars/{team}/events").json()["accessRole"] == "reader"
        r = c.post(f"/calendars/{team}/events", json=timed("2024-03-05T09:00:00Z", "2024-03-05T10:00:00Z"))
        assert r.status_code == 403 and r.json()["error"]["errors"][0]["reason"] == "requiredAccessLevel"
        assert c.patch(f"/calendars/{team}/events/teamevent01", json={"summary": "x"}).status_code == 403
        assert c.get("/calendars/someone-else@example.com/events").status_code == 404


def test_incremental_sync_sees_user_side_edits_and_deletes(google: FakeGoogle) -> None:
    keep = google.put_event(ANN, timed("2024-03-04T09:00:00Z", "2024-03-04T10:00:00Z", summary="keep"))
    edit = google.put_event(ANN, timed("2024-03-05T09:00:00Z", "2024-03-05T10:00:00Z", summary="edit me"))
    drop = google.put_event(ANN, timed("2024-03-06T09:00:00Z", "2024-03-06T10:00:00Z", summary="drop me"))
    with api(google) as c:
        items, token, _ = list_all(c, "primary")
        assert {i["id"] for i in items} == {keep["id"], edit["id"], drop["id"]}

        quiet = c.get("/calendars/primary/events", params={"syncToken": token}).json()
        assert quiet["items"] == [] and quiet["nextSyncToken"]

        edited = google.edit_event(ANN, edit["id"], summary="edited on the phone")
        google.delete_event(ANN, drop["id"])
        added = google.put_event(ANN, timed("2024-03-07T09:00:00Z", "2024-03-07T10:00:00Z", summary="new"))
        delta = c.get("/calendars/primary/events", params={"syncToken": token}).json()
        by_id = {i["id"]: i for i in delta["items"]}
        assert set(by_id) == {edit["id"], drop["id"], added["id"]}
        assert by_id[edit["id"]]["summary"] == "edited on the phone" and by_id[edit["id"]]["etag"] == edited["etag"]
        assert by_id[edit["id"]]["etag"] != edit["etag"]
        assert by_id[drop["id"]] == {
            "kind": "calendar#event",
            "etag": by_id[drop["id"]]["etag"],
            "id": drop["id"],
            "status": "cancelled",
        }

        after = c.get("/calendars/primary/events", params={"syncToken": delta["nextSyncToken"]}).json()
        assert after["items"] == []
        full = [i["id"] for i in c.get("/calendars/primary/events").json()["items"]]
        assert drop["id"] not in full
        deleted_too = c.get("/calendars/primary/events", params={"showDeleted": "true"}).json()["items"]
        assert drop["id"] in {i["id"] for i in deleted_too}


def test_paging_gives_next_page_token_then_sync_token_on_the_last_page() -> None:
    with FakeGoogle(page_size=3) as g:
        g.add_client(CLIENT_ID, SECRET, [REDIRECT])
        g.add_account(ANN)
        ids = [
            g.put_event(ANN, timed(f"2024-03-{d:02d}T09:00:00Z", f"2024-03-{d:02d}T10:00:00Z"))["id"] for d in range(1, 8)
        ]
        with api(g) as c:
            items, token, pages = list_all(c, "primary")
            assert pages == 3 and [i["id"] for i in items] == ids  # default order here: start time
            for d in (8, 9, 10, 11):
                g.put_event(ANN, timed(f"2024-03-{d:02d}T09:00:00Z", f"2024-03-{d:02d}T10:00:00Z"))
            delta, _, delta_pages = list_all(c, "primary", syncToken=token)
            assert len(delta) == 4 and delta_pages == 2
            two, _, pages = list_all(c, "primary", maxResults=5)
            assert len(two) == 11 and pages == 3

    with FakeGoogle(max_page_size=2) as g:  # the client asks for 2500, the fake still pages
        g.add_client(CLIENT_ID, SECRET, [REDIRECT])
        g.add_account(ANN)
        for d in range(1, 6):
            g.put_event(ANN, timed(f"2024-03-{d:02d}T09:00:00Z", f"2024-03-{d:02d}T10:00:00Z"))
        with api(g) as c:
            assert list_all(c, "primary", maxResults=2500)[2] == 3


def test_expired_or_restricted_sync_tokens(google: FakeGoogle) -> None:
    google.put_event(ANN, timed("2024-03-04T09:00:00Z", "2024-03-04T10:00:00Z"))
    with api(google) as c:
        _, token, _ = list_all(c, "primary", timeMin="2024-01-01T00:00:00Z")
        restricted = c.get("/calendars/primary/events", params={"syncToken": token, "timeMin": "2024-01-01T00:00:00Z"})
        assert restricted.status_code == 400
        assert c.get("/calendars/primary/events", params={"syncToken": token, "q": "x"}).status_code == 400
        assert c.get("/calendars/primary/events", params={"syncToken": token, "showDeleted": "false"}).status_code == 400
        assert c.get("/calendars/primary/events", params={"syncToken": token, "showDeleted": "true"}).status_code == 200

        google.expire_sync_tokens()
        gone = c.get("/calendars/primary/events", params={"syncToken": token})
        assert gone.status_code == 410
        assert gone.json()["error"]["errors"][0] == {
            "domain": "calendar",
            "reason": "fullSyncRequired",
            "message": "Sync token is no longer valid, a full sync is required.",
        }
        assert c.get("/calendars/primary/events", params={"syncToken": "1" + token}).status_code == 410
        _, fresh, _ = list_all(c, "primary")
        assert c.get("/calendars/primary/events", params={"syncToken": fresh}).status_code == 200


def test_recurring_series_with_a_moved_and_a_cancelled_instance(google: FakeGoogle) -> None:
    master = google.put_event(
        ANN,
        timed(
            "2024-03-04T09:00:00",
            "2024-03-04T09:30:00",
            id="standup0001",
            summary="Standup",
            recurrence=["RRULE:FREQ=DAILY;COUNT=5", "EXDATE;TZID=Europe/Berlin:20240308T090000"],
        ),
    )
    assert master["start"] == {"dateTime": "2024-03-04T09:00:00+01:00", "timeZone": "Europe/Berlin"}
    with api(google) as c:
        inst = c.get("/calendars/primary/events/standup0001/instances").json()["items"]
        assert [i["id"] for i in inst] == [
            f"standup0001_202403{d:02d}T080000Z" for d in (4, 5, 6, 7)
        ]  # EXDATE drops the 8th
        assert inst[1]["recurringEventId"] == "standup0001"
        assert inst[1]["originalStartTime"] == {"dateTime": "2024-03-05T09:00:00+01:00", "timeZone": "Europe/Berlin"}
        _, token, _ = list_all(c, "primary")

        moved = c.patch(
            "/calendars/primary/events/standup0001_20240305T080000Z",
            json={"start": {"dateTime": "2024-03-05T11:00:00+01:00"}, "end": {"dateTime": "2024-03-05T11:30:00+01:00"}},
        )
        assert moved.status_code == 200, moved.text
        google.delete_event(ANN, "standup0001_20240306T080000Z")  # the user cancels one on the phone

        listed = c.get("/calendars/primary/events").json()["items"]
        by_id = {i["id"]: i for i in listed}
        assert by_id["standup0001"]["recurrence"][0] == "RRULE:FREQ=DAILY;COUNT=5"
        exc = by_id["standup0001_20240305T080000Z"]
        assert exc["start"]["dateTime"] == "2024-03-05T11:00:00+01:00"
        assert exc["originalStartTime"]["dateTime"] == "2024-03-05T09:00:00+01:00"
        cancelled = by_id["standup0001_20240306T080000Z"]
        assert cancelled["status"] == "cancelled" and cancelled["recurringEventId"] == "standup0001"

        singles = c.get("/calendars/primary/events", params={"singleEvents": "true", "orderBy": "startTime"}).json()
        starts = [i["start"]["dateTime"] for i in singles["items"]]
        assert starts == ["2024-03-04T09:00:00+01:00", "2024-03-05T11:00:00+01:00", "2024-03-07T09:00:00+01:00"]
        window = c.get(
            "/calendars/primary/events",
            params={"singleEvents": "true", "timeMin": "2024-03-05T10:00:00Z", "timeMax": "2024-03-08T00:00:00Z"},
        ).json()["items"]
        assert [i["id"] for i in window] == ["standup0001_20240305T080000Z", "standup0001_20240307T080000Z"]

        delta = {i["id"]: i for i in c.get("/calendars/primary/events", params={"syncToken": token}).json()["items"]}
        assert set(delta) == {"standup0001_20240305T080000Z", "standup0001_20240306T080000Z"}
        assert delta["standup0001_20240306T080000Z"]["status"] == "cancelled"
        assert delta["standup0001_20240306T080000Z"]["originalStartTime"]["dateTime"] == "2024-03-06T09:00:00+01:00"

        inst = c.get("/calendars/primary/events/standup0001/instances", params={"showDeleted": "true"}).json()["items"]
        assert [(i["id"][-16:], i["status"]) for i in inst] == [
            ("20240304T080000Z", "confirmed"),
            ("20240305T080000Z", "confirmed"),
            ("20240306T080000Z", "cancelled"),
            ("20240307T080000Z", "confirmed"),
        ]
        no_tz = c.post(
            "/calendars/primary/events",
            json={
                "start": {"dateTime": "2024-03-04T09:00:00Z"},
                "end": {"dateTime": "2024-03-04T10:00:00Z"},
                "recurrence": ["RRULE:FREQ=WEEKLY"],
            },
        )
        assert (no_tz.status_code, no_tz.json()["error"]["errors"][0]["reason"]) == (400, "required")


def test_all_day_weekly_series_with_until(google: FakeGoogle) -> None:
    google.put_event(
        ANN,
        {
            "id": "fit00001",
            "start": {"date": "2024-03-04"},
            "end": {"date": "2024-03-05"},
            "recurrence": ["RRULE:FREQ=WEEKLY;BYDAY=MO,TH;UNTIL=20240314"],
        },
    )
    with api(google) as c:
        items = c.get("/calendars/primary/events", params={"singleEvents": "true"}).json()["items"]
        assert [(i["id"], i["start"]["date"], i["end"]["date"]) for i in items] == [
            ("fit00001_20240304", "2024-03-04", "2024-03-05"),
            ("fit00001_20240307", "2024-03-07", "2024-03-08"),
            ("fit00001_20240311", "2024-03-11", "2024-03-12"),
            ("fit00001_20240314", "2024-03-14", "2024-03-15"),
        ]
        assert c.get("/calendars/primary/events/fit00001_20240311").json()["originalStartTime"] == {"date": "2024-03-11"}
        assert c.get("/calendars/primary/events/fit00001_20240312").status_code == 404


class _Receiver:
    """A tiny webhook receiver on 127.0.0.1 that records each POST's headers and body."""

    def __init__(self, status: int = 200) -> None:
        self.hits: list[tuple[dict[str, str], bytes]] = []
        self.got = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.hits.append((dict(self.headers.items()), body))
                outer.got.set()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/hooks/google"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_watch_sends_sync_then_exists_notifications_and_stop_ends_them() -> None:
    receiver = _Receiver()
    try:
        with FakeGoogle(auto_notify=True) as g:
            g.add_client(CLIENT_ID, SECRET, [REDIRECT])
            g.add_account(ANN)
            with api(g) as c:
                body = {
                    "id": "chan-1",
                    "type": "web_hook",
                    "address": receiver.url,
                    "token": "tok-1",
                    "params": {"ttl": "3600"},
                }
                r = c.post("/calendars/primary/events/watch", json=body)
                assert r.status_code == 200, r.text
                channel = r.json()
                assert channel["kind"] == "api#channel" and channel["id"] == "chan-1" and channel["token"] == "tok-1"
                assert channel["resourceId"] and channel["resourceUri"].startswith(g.api_url + "/calendars/primary/events")
                assert abs(int(channel["expiration"]) - (time.time() + 3600) * 1000) < 60_000  # params.ttl, in ms
                g.wait_for_deliveries(1)
                sync_headers, sync_body = receiver.hits[0]
                assert sync_body == b""
                assert sync_headers["X-Goog-Resource-State"] == "sync" and sync_headers["X-Goog-Message-Number"] == "1"
                assert sync_headers["X-Goog-Channel-ID"] == "chan-1" and sync_headers["X-Goog-Channel-Token"] == "tok-1"
                assert sync_headers["X-Goog-Resource-ID"] == channel["resourceId"]
                assert sync_headers["X-Goog-Resource-URI"] == channel["resourceUri"]
                assert sync_headers["X-Goog-Channel-Expiration"].endswith("GMT")

                g.put_event(ANN, timed("2024-03-04T09:00:00Z", "2024-03-04T10:00:00Z"))  # auto_notify: exists
                deliveries = g.wait_for_deliveries(2)
                assert [(d.state, d.message_number, d.status) for d in deliveries] == [("sync", 1, 200), ("exists", 2, 200)]
                assert g.notify("chan-1") == 200
                assert receiver.hits[2][0]["X-Goog-Resource-State"] == "exists"
                assert int(receiver.hits[2][0]["X-Goog-Message-Number"]) > 2

                dup = c.post("/calendars/primary/events/watch", json=body)
                assert dup.status_code == 400
                bad = c.post("/channels/stop", json={"id": "chan-1", "resourceId": "wrong"})
                assert bad.status_code == 404
                assert (
                    c.post("/channels/stop", json={"id": "chan-1", "resourceId": channel["resourceId"]}).status_code == 204
                )
                assert g.notify("chan-1") is None and len(receiver.hits) == 3
    finally:
        receiver.close()


def test_fail_next_injects_rate_limits_and_server_errors(google: FakeGoogle) -> None:
    with api(google) as c:
        google.fail_next(1, 429, retry_after=7)
        r = c.get("/calendars/primary/events")
        assert r.status_code == 429 and r.headers["retry-after"] == "7"
        assert r.json() == {
            "error": {
                "errors": [{"domain": "usageLimits", "reason": "rateLimitExceeded", "message": "Rate Limit Exceeded"}],
                "code": 429,
                "message": "Rate Limit Exceeded",
            }
        }
        assert c.get("/calendars/primary/events").status_code == 200

        google.fail_next(2, 403, "userRateLimitExceeded", path="/events")
        assert c.get("/users/me/calendarList").status_code == 200  # path filter: not this one
        first = c.get("/calendars/primary/events")
        assert (first.status_code, first.json()["error"]["errors"][0]["reason"]) == (403, "userRateLimitExceeded")
        assert first.json()["error"]["message"] == "User Rate Limit Exceeded"
        assert c.get("/calendars/primary/events").status_code == 403
        assert c.get("/calendars/primary/events").status_code == 200

        google.fail_next(1, 503)
        err = c.get("/calendars/primary/events").json()["error"]
        assert (err["code"], err["errors"][0]["reason"]) == (503, "backendError")

    before = google.request_count
    google.fail_next(1, 500, path="/token")
    assert refresh(google, google.issue_tokens(ANN, CLIENT_ID)["refresh_token"]).status_code == 500
    logged = google.requests[-1]
    assert google.request_count == before + 1 and logged.method == "POST" and logged.path == "/token"
    assert all(k.lower() != "authorization" for r in google.requests for k in r.headers)


def test_single_events_incremental_sync_expands_series_changes(google: FakeGoogle) -> None:
    google.put_event(
        ANN,
        timed(
            "2024-03-06T09:00:00",
            "2024-03-06T10:00:00",
            "America/New_York",
            id="dst00001",
            recurrence=["RRULE:FREQ=WEEKLY;COUNT=3"],
        ),
    )
    with api(google) as c:
        full, token, _ = list_all(c, "primary", singleEvents="true")
        # wall-clock time kept across the DST change of 2024-03-10 in New York
        assert [i["start"]["dateTime"] for i in full] == [
            "2024-03-06T09:00:00-05:00",
            "2024-03-13T09:00:00-04:00",
            "2024-03-20T09:00:00-04:00",
        ]
        google.edit_event(ANN, "dst00001", summary="renamed")
        delta, token, _ = list_all(c, "primary", singleEvents="true", syncToken=token)
        assert [(i["id"], i["summary"]) for i in delta] == [
            ("dst00001_20240306T140000Z", "renamed"),
            ("dst00001_20240313T130000Z", "renamed"),
            ("dst00001_20240320T130000Z", "renamed"),
        ]
        google.delete_event(ANN, "dst00001")
        gone, _, _ = list_all(c, "primary", singleEvents="true", syncToken=token)
        assert {i["status"] for i in gone} == {"cancelled"} and len(gone) == 3
        masters, _, _ = list_all(c, "primary", syncToken=token)
        assert [(i["id"], i["status"]) for i in masters] == [("dst00001", "cancelled")]


def test_id_token_userinfo_and_scopes(google: FakeGoogle) -> None:
    id_token = pytest.importorskip("google.oauth2.id_token")
    requests = pytest.importorskip("requests")
    from google.auth.transport.requests import Request

    tokens = google.issue_tokens(ANN, CLIENT_ID, ["openid", "email", SCOPE_CALENDAR])
    assert tokens["scope"].split() == ["openid", "https://www.googleapis.com/auth/userinfo.email", SCOPE_CALENDAR]
    session = requests.Session()
    session.trust_env = False
    claims = id_token.verify_token(tokens["id_token"], Request(session), audience=CLIENT_ID, certs_url=google.certs_url)
    assert (claims["email"], claims["iss"]) == (ANN, "https://accounts.google.com")
    me = httpx.get(google.userinfo_url, headers={"Authorization": f"Bearer {tokens['access_token']}"}).json()
    assert me == {"sub": claims["sub"], "email": ANN, "email_verified": True}

    read_only = google.issue_tokens(ANN, CLIENT_ID, ["https://www.googleapis.com/auth/calendar.readonly"])
    headers = {"Authorization": f"Bearer {read_only['access_token']}"}
    assert httpx.get(google.api_url + "/calendars/primary/events", headers=headers).status_code == 200
    r = httpx.post(
        google.api_url + "/calendars/primary/events",
        headers=headers,
        json=timed("2024-03-04T09:00:00Z", "2024-03-04T10:00:00Z"),
    )
    assert r.status_code == 403
    assert r.json()["error"]["errors"][0]["reason"] == "insufficientPermissions"
    missing = httpx.get(google.api_url + "/calendars/primary/events")
    assert (missing.status_code, missing.json()["error"]["errors"][0]["reason"]) == (401, "required")


def test_concurrent_writers_get_distinct_ids_and_etags(google: FakeGoogle) -> None:
    token = google.issue_tokens(ANN, CLIENT_ID)["access_token"]
    made: list[tuple[str, str]] = []

    def work() -> None:
        with httpx.Client(base_url=google.api_url, headers={"Authorization": f"Bearer {token}"}) as c:
            for _ in range(10):
                r = c.post(
                    "/calendars/primary/events", json={"start": {"date": "2024-04-01"}, "end": {"date": "2024-04-02"}}
                )
                assert r.status_code == 200
                made.append((r.json()["id"], r.json()["etag"]))

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(made) == 60 and len({i for i, _ in made}) == 60 and len({e for _, e in made}) == 60
    with api(google) as c:
        assert len(list_all(c, "primary")[0]) == 60

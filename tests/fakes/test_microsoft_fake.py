"""The Microsoft fake itself, over real HTTPS on 127.0.0.1: identity platform v2.0 (msal) and Graph calendars."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from tests.fakes.microsoft import CONSUMERS_TENANT_ID, FakeMicrosoft

CLIENT_ID = "6f1c2b5e-0d7a-4c1e-9f3b-2a8d7e6c5b4a"
SECRET = "Qx8~fake.client~secret"
REDIRECT = "http://localhost:8765/v1/connections/microsoft/callback"
ANN = "ann@contoso.example"
SCOPES = ["Calendars.ReadWrite", "User.Read"]
WINDOW = {"startDateTime": "2027-01-01T00:00:00Z", "endDateTime": "2027-02-01T00:00:00Z"}


@pytest.fixture
def ms() -> Iterator[FakeMicrosoft]:
    with FakeMicrosoft() as fake:
        fake.add_client(CLIENT_ID, SECRET, [REDIRECT])
        fake.add_account(ANN, "Ann Example")
        yield fake
        assert fake.errors == []  # no request hit a bug inside the fake


def graph(
    ms: FakeMicrosoft, email: str = ANN, scopes: tuple[str, ...] = ("Calendars.ReadWrite", "User.Read")
) -> httpx.Client:
    token = ms.issue_tokens(email, CLIENT_ID, scopes)["access_token"]
    return httpx.Client(
        base_url=ms.graph_url, headers={"Authorization": f"Bearer {token}"}, verify=ms.cafile, trust_env=False
    )


def when(local: str, tz: str = "UTC") -> dict[str, str]:
    return {"dateTime": local, "timeZone": tz}


def event(subject: str, start: str, end: str, tz: str = "UTC", **extra: Any) -> dict[str, Any]:
    return {"subject": subject, "start": when(start, tz), "end": when(end, tz), **extra}


def delta_round(client: httpx.Client, url: str, params: dict[str, str] | None = None, page_size: int | None = None):
    """Follow @odata.nextLink to the @odata.deltaLink: (items, deltaLink, pages)."""
    headers = {"Prefer": f"odata.maxpagesize={page_size}"} if page_size else {}
    items: list[dict[str, Any]] = []
    pages = 0
    while True:
        r = client.get(url, params=params, headers=headers)
        assert r.status_code == 200, r.text
        body = r.json()
        pages += 1
        items += body["value"]
        assert not ("@odata.nextLink" in body and "@odata.deltaLink" in body)
        if "@odata.deltaLink" in body:
            return items, body["@odata.deltaLink"], pages
        url, params = body["@odata.nextLink"], None


def token_form(ms: FakeMicrosoft, **form: str) -> httpx.Response:
    return httpx.post(ms.token_url(), data={"client_id": CLIENT_ID, "client_secret": SECRET, **form}, verify=ms.cafile)


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    return verifier, base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def sign_in(ms: FakeMicrosoft, challenge: str | None = None, **extra: str) -> dict[str, str]:
    params = {
        "client_id": CLIENT_ID,
        "response_type": "code",
        "redirect_uri": REDIRECT,
        "scope": "offline_access openid profile " + " ".join(SCOPES),
        "state": "st-1",
        **({"code_challenge": challenge, "code_challenge_method": "S256"} if challenge else {}),
        **extra,
    }
    location = ms.sign_in(ms.authorize_url() + "?" + urlencode(params))
    assert location.startswith(REDIRECT + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


class Receiver:
    """A tiny webhook receiver on 127.0.0.1: answers validationToken requests per `mode`, records notifications."""

    def __init__(self, mode: str = "echo") -> None:
        self.mode = mode  # echo | wrong | error | html
        self.validations: list[str] = []
        self.notifications: list[dict[str, Any]] = []
        self.delay = 0.0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                query = parse_qs(urlsplit(self.path).query)
                if "validationToken" in query:
                    token = query["validationToken"][0]
                    receiver.validations.append(token)
                    status, ctype, text = {
                        "echo": (200, "text/plain", token),
                        "wrong": (200, "text/plain", "not-the-token"),
                        "error": (500, "text/plain", "boom"),
                        "html": (200, "text/html", token),
                    }[receiver.mode]
                    self._answer(status, ctype, text.encode())
                    return
                time.sleep(receiver.delay)
                receiver.notifications.append(json.loads(body))
                self._answer(202, "text/plain", b"")

            def _answer(self, status: int, ctype: str, data: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/microsoft"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def subscribe(client: httpx.Client, url: str, **extra: Any) -> httpx.Response:
    expiration = (datetime.now(UTC) + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")
    body = {
        "changeType": "created,updated,deleted",
        "notificationUrl": url,
        "resource": "me/events",
        "expirationDateTime": expiration,
        "clientState": "secret-state",
        **extra,
    }
    return client.post("/subscriptions", json=body)


# ----------------------------------------------------------------------------------------------- identity


def test_msal_auth_code_flow_then_refresh_rotates_and_retires_the_old_token(ms: FakeMicrosoft) -> None:
    msal = pytest.importorskip("msal")
    requests = pytest.importorskip("requests")
    session = requests.Session()
    session.verify, session.trust_env = ms.cafile, False  # REQUESTS_CA_BUNDLE in the env would beat session.verify
    app = msal.ConfidentialClientApplication(
        CLIENT_ID, client_credential=SECRET, authority=ms.authority, instance_discovery=False, http_client=session
    )
    flow = app.initiate_auth_code_flow(SCOPES, redirect_uri=REDIRECT, login_hint=ANN)
    assert flow["auth_uri"].startswith(ms.authority + "/oauth2/v2.0/authorize?")
    assert "code_challenge_method=S256" in flow["auth_uri"]

    r = httpx.get(flow["auth_uri"], verify=ms.cafile, follow_redirects=False)
    assert r.status_code == 302
    reply = {k: v[0] for k, v in parse_qs(urlsplit(r.headers["Location"]).query).items()}
    assert reply["state"] == flow["state"] and reply["code"] and reply["session_state"]

    result = app.acquire_token_by_auth_code_flow(flow, reply)
    assert "access_token" in result, result
    claims = result["id_token_claims"]
    assert claims["aud"] == CLIENT_ID and claims["preferred_username"] == ANN and claims["ver"] == "2.0"
    info = ms.account_info(ANN)
    assert claims["oid"] == info["oid"] and claims["tid"] == info["tenant_id"]
    assert app.get_accounts()[0]["home_account_id"] == f"{info['oid']}.{info['tenant_id']}"  # from client_info
    assert result["token_type"] == "Bearer" and result["expires_in"] > 0
    form = ms.requests_to("/oauth2/v2.0/token")[-1].form()
    assert form["grant_type"] == "authorization_code" and form["code_verifier"] == flow["code_verifier"]
    assert form["client_secret"] == SECRET and form["client_info"] == "1"

    me = httpx.get(ms.graph_url + "/me", headers={"Authorization": "Bearer " + result["access_token"]}, verify=ms.cafile)
    assert me.status_code == 200 and me.json()["userPrincipalName"] == ANN

    rt1 = result["refresh_token"]
    second = app.acquire_token_by_refresh_token(rt1, SCOPES)
    rt2 = second["refresh_token"]
    third = app.acquire_token_by_refresh_token(rt2, SCOPES)
    rt3 = third["refresh_token"]
    assert len({rt1, rt2, rt3}) == 3 and third["access_token"] != second["access_token"]
    old = app.acquire_token_by_refresh_token(rt1, SCOPES)
    assert old["error"] == "invalid_grant" and old["error_codes"] == [70008]
    assert old["error_description"].startswith("AADSTS70008:")


def test_openid_configuration_keys_and_a_verifiable_id_token(ms: FakeMicrosoft) -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    tid = ms.account_info(ANN)["tenant_id"]
    common = httpx.get(ms.authority + "/v2.0/.well-known/openid-configuration", verify=ms.cafile).json()
    assert common["issuer"] == ms.authority_host + "/{tenantid}/v2.0"
    assert common["token_endpoint"] == ms.authority + "/oauth2/v2.0/token"
    assert common["authorization_endpoint"] == ms.authority + "/oauth2/v2.0/authorize"
    own = httpx.get(ms.authority_for(tid) + "/v2.0/.well-known/openid-configuration", verify=ms.cafile).json()
    assert own["issuer"] == f"{ms.authority_host}/{tid}/v2.0"
    consumers = httpx.get(ms.authority_for("consumers") + "/v2.0/.well-known/openid-configuration", verify=ms.cafile)
    assert consumers.json()["issuer"].endswith(f"/{CONSUMERS_TENANT_ID}/v2.0")
    unknown = httpx.get(ms.authority_for("no-such-tenant") + "/v2.0/.well-known/openid-configuration", verify=ms.cafile)
    assert unknown.status_code == 400
    assert unknown.json()["error"] == "invalid_tenant" and unknown.json()["error_codes"] == [90002]

    verifier, challenge = pkce()
    code = sign_in(ms, challenge, nonce="n-0S6_WzA2Mj")["code"]
    tokens = token_form(ms, grant_type="authorization_code", code=code, redirect_uri=REDIRECT, code_verifier=verifier)
    assert tokens.status_code == 200, tokens.text
    id_token = tokens.json()["id_token"]
    head, payload, sig = id_token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["nonce"] == "n-0S6_WzA2Mj" and claims["aud"] == CLIENT_ID and claims["iss"] == own["issuer"]
    jwk = httpx.get(common["jwks_uri"], verify=ms.cafile).json()["keys"][0]
    kid = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))["kid"]
    assert kid == jwk["kid"]

    def num(v: str) -> int:
        return int.from_bytes(base64.urlsafe_b64decode(v + "=" * (-len(v) % 4)), "big")

    key = rsa.RSAPublicNumbers(num(jwk["e"]), num(jwk["n"])).public_key()
    key.verify(
        base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4)),
        f"{head}.{payload}".encode(),
        padding.PKCS1v15(),
        hashes.SHA256(),
    )
    assert "client_info" not in tokens.json()  # only when asked for with client_info=1 (msal always asks)


def test_authorize_endpoint_errors_and_consent_denied(ms: FakeMicrosoft) -> None:
    base = {"client_id": CLIENT_ID, "response_type": "code", "redirect_uri": REDIRECT, "scope": "User.Read", "state": "s"}
    r = httpx.get(ms.authorize_url(), params={**base, "client_id": "unknown-app"}, verify=ms.cafile)
    assert r.status_code == 400 and "AADSTS700016" in r.text
    r = httpx.get(ms.authorize_url(), params={**base, "redirect_uri": "http://localhost:1/other"}, verify=ms.cafile)
    assert r.status_code == 400 and "AADSTS50011" in r.text

    ms.deny_next()
    reply = parse_qs(urlsplit(ms.sign_in(ms.authorize_url() + "?" + urlencode(base))).query)
    assert reply["error"] == ["access_denied"] and reply["state"] == ["s"]
    assert reply["error_description"][0].startswith("AADSTS65004:")
    assert "code" in sign_in(ms)  # only the next one was denied

    posted = httpx.get(ms.authorize_url(), params={**base, "response_mode": "form_post"}, verify=ms.cafile)
    assert posted.status_code == 200 and f'action="{REDIRECT}"' in posted.text
    assert 'name="code"' in posted.text and 'name="state" value="s"' in posted.text

    wrong_tenant = httpx.get(ms.authorize_url("consumers"), params=base, verify=ms.cafile)
    assert wrong_tenant.status_code == 400 and "AADSTS50020" in wrong_tenant.text


def test_token_endpoint_errors_follow_entra(ms: FakeMicrosoft) -> None:
    verifier, challenge = pkce()
    code = sign_in(ms, challenge)["code"]
    good = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": verifier}

    bad_secret = token_form(ms, **good, client_secret="nope")
    assert bad_secret.status_code == 401
    body = bad_secret.json()
    assert body["error"] == "invalid_client" and body["error_codes"] == [7000215]
    assert {"error_description", "timestamp", "trace_id", "correlation_id"} <= set(body)
    assert token_form(ms, **{**good, "code_verifier": pkce()[0]}).json()["error_codes"] == [501481]
    assert token_form(ms, **{**good, "redirect_uri": REDIRECT + "x"}).json()["error"] == "invalid_grant"
    assert token_form(ms, grant_type="password").json()["error"] == "unsupported_grant_type"

    basic = base64.b64encode(f"{CLIENT_ID}:{SECRET}".encode()).decode()
    ok = httpx.post(ms.token_url(), data=good, headers={"Authorization": f"Basic {basic}"}, verify=ms.cafile)
    assert ok.status_code == 200, ok.text
    token = ok.json()
    assert token["token_type"] == "Bearer" and token["ext_expires_in"] == token["expires_in"] == 3599
    assert set(token["scope"].split()) >= set(SCOPES) and "refresh_token" in token
    reused = token_form(ms, **good)
    assert reused.status_code == 400 and reused.json()["error_codes"] == [54005]


def test_revoked_grant_and_interaction_required_refreshes(ms: FakeMicrosoft) -> None:
    rt = ms.issue_tokens(ANN, CLIENT_ID)["refresh_token"]
    ms.require_interaction(ANN)
    r = token_form(ms, grant_type="refresh_token", refresh_token=rt, scope=" ".join(SCOPES))
    assert r.status_code == 400 and r.json()["error"] == "interaction_required" and r.json()["error_codes"] == [50076]

    verifier, challenge = pkce()  # signing in again gives a grant that works
    code = sign_in(ms, challenge)["code"]
    fresh = token_form(ms, grant_type="authorization_code", code=code, redirect_uri=REDIRECT, code_verifier=verifier)
    rt2 = fresh.json()["refresh_token"]
    again = token_form(ms, grant_type="refresh_token", refresh_token=rt2, scope=" ".join(SCOPES))
    assert again.status_code == 200, again.text
    assert token_form(ms, grant_type="refresh_token", refresh_token=rt).json()["error"] == "interaction_required"
    wider = token_form(ms, grant_type="refresh_token", refresh_token=again.json()["refresh_token"], scope="Mail.Read")
    assert wider.json()["error"] == "invalid_grant" and wider.json()["suberror"] == "consent_required"


def test_revoke_grant_answers_aadsts50173(ms: FakeMicrosoft) -> None:
    tokens = ms.issue_tokens(ANN, CLIENT_ID)
    ms.revoke_grant(ANN)
    r = token_form(ms, grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant" and r.json()["error_codes"] == [50173]
    # access tokens already issued live on until they expire, as with Entra
    me = httpx.get(ms.graph_url + "/me", headers={"Authorization": "Bearer " + tokens["access_token"]}, verify=ms.cafile)
    assert me.status_code == 200


def test_expired_access_tokens_answer_401_invalid_authentication_token(ms: FakeMicrosoft) -> None:
    client = graph(ms)
    assert client.get("/me").status_code == 200
    ms.expire_access_tokens()
    r = client.get("/me/calendars")
    assert r.status_code == 401 and r.json()["error"]["code"] == "InvalidAuthenticationToken"
    assert "WWW-Authenticate" in r.headers and r.json()["error"]["innerError"]["request-id"] == r.headers["request-id"]
    missing = httpx.get(ms.graph_url + "/me", verify=ms.cafile)
    assert missing.status_code == 401 and missing.json()["error"]["message"] == "Access token is empty."


# ----------------------------------------------------------------------------------------------- Graph


def test_me_and_calendars_including_a_read_only_shared_one(ms: FakeMicrosoft) -> None:
    shared = ms.add_calendar(ANN, "Team", can_edit=False, owner_name="Bob", owner_address="bob@contoso.example")
    client = graph(ms)
    me = client.get("/me").json()
    assert (me["displayName"], me["mail"], me["userPrincipalName"], me["id"]) == (
        "Ann Example",
        ANN,
        ANN,
        ms.account_info(ANN)["oid"],
    )
    cals = client.get("/me/calendars").json()["value"]
    assert [(c["name"], c["canEdit"], c["isDefaultCalendar"]) for c in cals] == [
        ("Calendar", True, True),
        ("Team", False, False),
    ]
    assert cals[1]["id"] == shared and cals[1]["owner"] == {"name": "Bob", "address": "bob@contoso.example"}
    assert {"color", "hexColor", "changeKey"} <= set(cals[0])
    assert client.get(f"/users/{ANN}/calendars").json()["value"][0]["id"] == cals[0]["id"]

    r = client.post(f"/me/calendars/{shared}/events", json=event("x", "2027-01-05T09:00:00", "2027-01-05T10:00:00"))
    assert r.status_code == 403 and r.json()["error"]["code"] == "ErrorAccessDenied"
    readonly = graph(ms, scopes=("Calendars.Read",))
    assert readonly.get("/me/calendars").status_code == 200
    assert readonly.post("/me/events", json=event("x", "2027-01-05T09:00:00", "2027-01-05T10:00:00")).status_code == 403


def test_delta_pages_with_next_links_then_a_delta_link(ms: FakeMicrosoft) -> None:
    cid = ms.account_info(ANN)["default_calendar"]
    for day in range(5, 10):
        ms.user_create(ANN, cid, **event(f"e{day}", f"2027-01-0{day}T09:00:00", f"2027-01-0{day}T10:00:00"))
    ms.user_create(ANN, cid, **event("outside", "2027-03-01T09:00:00", "2027-03-01T10:00:00"))
    client = graph(ms)
    r = client.get(f"/me/calendars/{cid}/calendarView/delta", params=WINDOW, headers={"Prefer": "odata.maxpagesize=2"})
    body = r.json()
    assert len(body["value"]) == 2 and "$skiptoken=" in body["@odata.nextLink"] and "@odata.deltaLink" not in body
    assert r.headers["Preference-Applied"] == "odata.maxpagesize=2"
    items, delta_link, pages = delta_round(client, f"/me/calendars/{cid}/calendarView/delta", WINDOW, page_size=2)
    assert pages == 3 and "$deltatoken=" in delta_link
    assert delta_link.startswith(f"{ms.graph_url}/me/calendars/{cid}/calendarView/delta?")
    assert [e["subject"] for e in items] == ["e5", "e6", "e7", "e8", "e9"]
    assert {e["type"] for e in items} == {"singleInstance"}
    assert items[0]["start"] == {"dateTime": "2027-01-05T09:00:00.0000000", "timeZone": "UTC"}
    assert items[0]["@odata.etag"] == f'W/"{items[0]["changeKey"]}"'

    default = delta_round(client, "/me/calendarView/delta", WINDOW)[0]  # the default calendar, default page size
    assert len(default) == 5
    nothing, _, _ = delta_round(client, delta_link)
    assert nothing == []


def test_incremental_delta_sees_user_edits_creates_and_removals(ms: FakeMicrosoft) -> None:
    cid = ms.account_info(ANN)["default_calendar"]
    a = ms.user_create(ANN, cid, **event("a", "2027-01-05T09:00:00", "2027-01-05T10:00:00"))
    b = ms.user_create(ANN, cid, **event("b", "2027-01-06T09:00:00", "2027-01-06T10:00:00"))
    c = ms.user_create(ANN, cid, **event("c", "2027-01-07T09:00:00", "2027-01-07T10:00:00"))
    client = graph(ms)
    _, link1, _ = delta_round(client, "/me/calendarView/delta", WINDOW)

    ms.user_update(a, subject="a2")
    ms.user_delete(b)
    ms.user_update(c, start=when("2027-05-01T09:00:00"), end=when("2027-05-01T10:00:00"))  # moved out of the window
    d = ms.user_create(ANN, cid, **event("d", "2027-01-08T09:00:00", "2027-01-08T10:00:00"))
    changes, link2, _ = delta_round(client, link1)
    updated = {e["id"]: e for e in changes if "@removed" not in e}
    removed = {e["id"]: e for e in changes if "@removed" in e}
    assert set(updated) == {a, d} and updated[a]["subject"] == "a2"
    assert set(removed) == {b, c}
    assert removed[b] == {"@odata.type": "#microsoft.graph.event", "id": b, "@removed": {"reason": "deleted"}}

    again, _, _ = delta_round(client, link1)  # an older deltaLink replays the changes since its own state
    assert {e["id"] for e in again} == {a, b, c, d}
    assert delta_round(client, link2)[0] == []

    # API writes show up the same way
    r = client.patch(f"/me/events/{d}", json={"subject": "d2"})
    assert r.status_code == 200 and r.json()["subject"] == "d2"
    assert [e["subject"] for e in delta_round(client, link2)[0]] == ["d2"]


def test_expired_delta_tokens_answer_410(ms: FakeMicrosoft) -> None:
    cid = ms.account_info(ANN)["default_calendar"]
    for day in (5, 6, 7):
        ms.user_create(ANN, cid, **event("x", f"2027-01-0{day}T09:00:00", f"2027-01-0{day}T10:00:00"))
    client = graph(ms)
    first = client.get("/me/calendarView/delta", params=WINDOW, headers={"Prefer": "odata.maxpagesize=1"}).json()
    _, link, _ = delta_round(client, "/me/calendarView/delta", WINDOW)
    ms.expire_delta_tokens()
    for url in (link, first["@odata.nextLink"]):
        r = client.get(url)
        assert r.status_code == 410 and r.json()["error"]["code"] == "SyncStateNotFound"
    _, link, _ = delta_round(client, "/me/calendarView/delta", WINDOW)  # a full sync recovers
    ms.expire_delta_tokens("ResyncRequired")
    assert client.get(link).json()["error"]["code"] == "ResyncRequired"
    ms.fail_next(status=410, code="SyncStateInvalid", path_contains="/delta")
    r = client.get("/me/calendarView/delta", params=WINDOW)
    assert r.status_code == 410 and r.json()["error"]["code"] == "SyncStateInvalid"
    missing_window = client.get("/me/calendarView/delta")
    assert missing_window.status_code == 400 and missing_window.json()["error"]["code"] == "ErrorInvalidParameter"


def test_daily_series_with_a_moved_and_a_cancelled_occurrence(ms: FakeMicrosoft) -> None:
    client = graph(ms)
    series = {
        **event("Standup", "2027-01-04T09:00:00", "2027-01-04T09:15:00", "W. Europe Standard Time"),
        "recurrence": {
            "pattern": {"type": "daily", "interval": 1},
            "range": {"type": "numbered", "startDate": "2027-01-04", "numberOfOccurrences": 5},
        },
    }
    r = client.post("/me/events", json=series)
    assert r.status_code == 201, r.text
    master = r.json()
    assert master["type"] == "seriesMaster" and master["start"]["dateTime"] == "2027-01-04T08:00:00.0000000"
    sid = master["id"]

    items, link, _ = delta_round(client, "/me/calendarView/delta", WINDOW)
    assert [e["type"] for e in items] == ["occurrence"] * 5  # occurrences, never the master
    assert {e["seriesMasterId"] for e in items} == {sid}
    assert [e["originalStart"] for e in items][:2] == ["2027-01-04T08:00:00Z", "2027-01-05T08:00:00Z"]
    assert len({e["iCalUId"] for e in items}) == 5

    moved = ms.user_move_occurrence(sid, "2027-01-05T09:00:00", "2027-01-05T14:00:00", "2027-01-05T14:30:00")
    cancelled = ms.user_cancel_occurrence(sid, "2027-01-06T09:00:00")
    changes, link, _ = delta_round(client, link)
    by_id = {e["id"]: e for e in changes}
    assert set(by_id) == {moved, cancelled}
    assert by_id[moved]["type"] == "exception" and by_id[moved]["seriesMasterId"] == sid
    assert by_id[moved]["start"]["dateTime"] == "2027-01-05T13:00:00.0000000"  # 14:00 Berlin, in UTC
    assert by_id[moved]["originalStart"] == "2027-01-05T08:00:00Z"
    assert by_id[cancelled]["@removed"] == {"reason": "deleted"}

    got = client.get(f"/me/events/{sid}").json()
    assert got["recurrence"] == {
        "pattern": {
            "type": "daily",
            "interval": 1,
            "month": 0,
            "dayOfMonth": 0,
            "daysOfWeek": [],
            "firstDayOfWeek": "sunday",
            "index": "first",
        },
        "range": {
            "type": "numbered",
            "startDate": "2027-01-04",
            "endDate": "0001-01-01",
            "recurrenceTimeZone": "W. Europe Standard Time",
            "numberOfOccurrences": 5,
        },
    }
    assert got["originalStartTimeZone"] == "W. Europe Standard Time"
    inst = client.get(f"/me/events/{sid}/instances", params=WINDOW).json()["value"]
    assert [(i["type"], i["start"]["dateTime"][:16]) for i in inst] == [
        ("occurrence", "2027-01-04T08:00"),
        ("exception", "2027-01-05T13:00"),
        ("occurrence", "2027-01-07T08:00"),
        ("occurrence", "2027-01-08T08:00"),
    ]
    assert client.get(f"/me/events/{cancelled}").status_code == 404
    assert client.get(f"/me/events/{moved}").json()["type"] == "exception"

    # deleting an occurrence through the API cancels it; deleting the master removes every instance
    assert client.delete(f"/me/events/{inst[3]['id']}").status_code == 204
    assert [e["id"] for e in delta_round(client, link)[0]] == [inst[3]["id"]]
    assert client.delete(f"/me/events/{sid}").status_code == 204
    gone, _, _ = delta_round(client, link)
    assert len(gone) == 4 and all("@removed" in e for e in gone)


def test_weekly_and_monthly_series_expand_in_the_series_zone_across_dst(ms: FakeMicrosoft) -> None:
    cid = ms.account_info(ANN)["default_calendar"]
    weekly = ms.user_create(
        ANN,
        cid,
        **event("Sync", "2027-03-01T09:00:00", "2027-03-01T10:00:00", "Pacific Standard Time"),
        recurrence={
            "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday", "wednesday"]},
            "range": {"type": "endDate", "startDate": "2027-03-01", "endDate": "2027-03-17"},
        },
    )
    monthly = ms.user_create(
        ANN,
        cid,
        **event("Rent", "2027-01-15T12:00:00", "2027-01-15T12:30:00"),
        recurrence={
            "pattern": {"type": "absoluteMonthly", "interval": 2, "dayOfMonth": 15},
            "range": {"type": "noEnd", "startDate": "2027-01-15"},
        },
    )
    client = graph(ms)
    window = {"startDateTime": "2027-01-01T00:00:00Z", "endDateTime": "2027-08-01T00:00:00Z"}
    w = client.get(f"/me/events/{weekly}/instances", params=window, headers={"Prefer": "odata.maxpagesize=50"})
    starts = [i["start"]["dateTime"][:16] for i in w.json()["value"]]
    # 09:00 in Los Angeles: 17:00 UTC before DST starts on 14 March 2027, 16:00 UTC after
    assert starts == [
        "2027-03-01T17:00",
        "2027-03-03T17:00",
        "2027-03-08T17:00",
        "2027-03-10T17:00",
        "2027-03-15T16:00",
        "2027-03-17T16:00",
    ]
    m = client.get(f"/me/events/{monthly}/instances", params=window).json()["value"]
    assert [i["start"]["dateTime"][:10] for i in m] == ["2027-01-15", "2027-03-15", "2027-05-15", "2027-07-15"]
    paged = client.get(f"/me/events/{monthly}/instances", params={**window, "$top": "3"}).json()
    assert len(paged["value"]) == 3 and "$skip=3" in paged["@odata.nextLink"]
    assert len(client.get(paged["@odata.nextLink"]).json()["value"]) == 1


def test_patch_and_delete_honour_if_match(ms: FakeMicrosoft) -> None:
    client = graph(ms)
    created = client.post("/me/events", json=event("Plan", "2027-01-05T09:00:00", "2027-01-05T10:00:00")).json()
    etag = created["@odata.etag"]
    ok = client.patch(f"/me/events/{created['id']}", json={"subject": "Plan v2"}, headers={"If-Match": etag})
    assert ok.status_code == 200 and ok.json()["@odata.etag"] != etag and ok.json()["subject"] == "Plan v2"
    stale = client.patch(f"/me/events/{created['id']}", json={"subject": "lost"}, headers={"If-Match": etag})
    assert stale.status_code == 412 and stale.json()["error"]["code"] == "ErrorIrresolvableConflict"
    assert client.delete(f"/me/events/{created['id']}", headers={"If-Match": etag}).status_code == 412
    assert client.get(f"/me/events/{created['id']}").json()["subject"] == "Plan v2"
    assert client.delete(f"/me/events/{created['id']}", headers={"If-Match": ok.json()["@odata.etag"]}).status_code == 204
    gone = client.get(f"/me/events/{created['id']}")
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "ErrorItemNotFound"
    bad = client.post("/me/events", json={**event("x", "2027-01-05T09:00:00", "2027-01-05T10:00:00"), "nope": 1})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "RequestBodyRead"
    backwards = client.post("/me/events", json=event("x", "2027-01-05T10:00:00", "2027-01-05T09:00:00"))
    assert backwards.json()["error"]["code"] == "ErrorCalendarEndDateIsEarlierThanStartDate"


def test_repeated_transaction_id_returns_the_same_event(ms: FakeMicrosoft) -> None:
    client = graph(ms)
    cid = ms.account_info(ANN)["default_calendar"]
    body = {**event("Once", "2027-01-05T09:00:00", "2027-01-05T10:00:00"), "transactionId": "tx-123"}
    first = client.post(f"/me/calendars/{cid}/events", json=body)
    second = client.post(f"/me/calendars/{cid}/events", json=body)
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] == second.json()["id"] and first.json()["transactionId"] == "tx-123"
    assert len(ms.stored_events(cid)) == 1
    other = client.post(f"/me/calendars/{cid}/events", json={**body, "transactionId": "tx-124"})
    assert other.json()["id"] != first.json()["id"] and len(ms.stored_events(cid)) == 2


def test_injected_throttling_and_server_errors(ms: FakeMicrosoft) -> None:
    client = graph(ms)
    ms.fail_next(2, status=429, retry_after=7)
    for _ in range(2):
        r = client.get("/me/calendars")
        assert r.status_code == 429 and r.headers["Retry-After"] == "7"
        assert r.json()["error"]["code"] == "TooManyRequests"
    assert client.get("/me/calendars").status_code == 200
    ms.fail_next(status=503)
    r = client.get("/me")
    assert r.status_code == 503 and r.json()["error"]["code"] == "ServiceUnavailable" and r.headers["Retry-After"] == "1"
    ms.fail_next(status=504, path_contains="/calendarView")
    assert client.get("/me").status_code == 200  # not the targeted path
    assert client.get("/me/calendarView", params=WINDOW).status_code == 504
    ms.fail_next(status=429, path_contains="/oauth2/v2.0/token")
    r = token_form(ms, grant_type="refresh_token", refresh_token="whatever")
    assert r.status_code == 429 and r.json()["error"] == "temporarily_unavailable"
    before = ms.request_count
    client.get("/me")
    assert ms.request_count == before + 1 and ms.requests[-1].path == "/v1.0/me"
    assert "authorization" not in {k.lower() for k in ms.requests[-1].headers}


def test_windows_time_zone_names_in_and_out(ms: FakeMicrosoft) -> None:
    client = graph(ms)
    body = event("Call", "2027-01-05T09:00:00", "2027-01-05T10:00:00", "Pacific Standard Time")
    created = client.post("/me/events", json=body)
    assert created.json()["start"] == {"dateTime": "2027-01-05T17:00:00.0000000", "timeZone": "UTC"}
    eid = created.json()["id"]
    berlin = client.get(f"/me/events/{eid}", headers={"Prefer": 'outlook.timezone="W. Europe Standard Time"'})
    got = berlin.json()
    assert got["start"] == {"dateTime": "2027-01-05T18:00:00.0000000", "timeZone": "W. Europe Standard Time"}
    assert got["originalStartTimeZone"] == got["originalEndTimeZone"] == "Pacific Standard Time"
    assert berlin.headers["Preference-Applied"] == 'outlook.timezone="W. Europe Standard Time"'
    iana = client.get(f"/me/events/{eid}", headers={"Prefer": 'outlook.timezone="Asia/Tokyo"'}).json()
    assert iana["start"]["dateTime"] == "2027-01-06T02:00:00.0000000"
    bad = client.post("/me/events", json=event("x", "2027-01-05T09:00:00", "2027-01-05T10:00:00", "Mars/Olympus"))
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "TimeZoneNotSupportedException"

    day = client.post(
        "/me/events",
        json={**event("Holiday", "2027-01-06T00:00:00", "2027-01-07T00:00:00", "Pacific Standard Time"), "isAllDay": True},
    ).json()
    assert day["isAllDay"] and day["start"]["dateTime"] == "2027-01-06T00:00:00.0000000"  # all-day events float
    not_midnight = {**event("x", "2027-01-06T01:00:00", "2027-01-07T00:00:00"), "isAllDay": True}
    assert client.post("/me/events", json=not_midnight).status_code == 400


def test_concurrency_is_tracked_per_mailbox_and_can_be_limited() -> None:
    with FakeMicrosoft(latency=0.6) as ms:
        ms.add_client(CLIENT_ID, SECRET, [REDIRECT])
        ms.add_account(ANN)
        ms.add_account("bob@contoso.example")
        ann, bob = graph(ms), graph(ms, "bob@contoso.example")
        statuses: list[int] = []

        def hit(client: httpx.Client) -> None:
            statuses.append(client.get("/me/calendars").status_code)

        threads = [threading.Thread(target=hit, args=(ann,)) for _ in range(3)] + [threading.Thread(target=hit, args=(bob,))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        seen = ms.max_concurrency_seen
        assert seen[ANN] == 3 and seen["bob@contoso.example"] == 1 and statuses == [200] * 4

        ms.mailbox_concurrency_limit = 2
        ms.reset_concurrency()
        statuses.clear()
        threads = [threading.Thread(target=hit, args=(ann,)) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(statuses) == [200, 200, 429]
        assert ms.errors == []


# ----------------------------------------------------------------------------------------------- subscriptions


def test_subscription_validation_handshake(ms: FakeMicrosoft, receiver: Receiver) -> None:
    client = graph(ms)
    r = subscribe(client, receiver.url, lifecycleNotificationUrl=receiver.url + "/lifecycle")
    assert r.status_code == 201, r.text
    sub = r.json()
    assert sub["resource"] == "me/events" and sub["changeType"] == "created,updated,deleted"
    assert sub["clientState"] == "secret-state" and sub["applicationId"] == CLIENT_ID
    assert len(receiver.validations) == 2 and receiver.validations[0].startswith("Validation: Testing client")
    assert [s["id"] for s in ms.subscriptions] == [sub["id"]]

    renewed = client.patch(
        f"/subscriptions/{sub['id']}", json={"expirationDateTime": (datetime.now(UTC) + timedelta(days=1)).isoformat()}
    )
    assert renewed.status_code == 200 and renewed.json()["expirationDateTime"] != sub["expirationDateTime"]
    too_far = subscribe(client, receiver.url, expirationDateTime=(datetime.now(UTC) + timedelta(minutes=4300)).isoformat())
    assert too_far.status_code == 400 and "4230 minutes" in too_far.json()["error"]["message"]
    assert client.delete(f"/subscriptions/{sub['id']}").status_code == 204
    assert client.get(f"/subscriptions/{sub['id']}").status_code == 404
    assert ms.subscriptions == []

    for mode in ("wrong", "error", "html"):
        receiver.mode = mode
        failed = subscribe(client, receiver.url)
        assert failed.status_code == 400
        assert failed.json()["error"]["message"].startswith("Subscription validation request failed.")
    assert ms.subscriptions == []
    unreachable = subscribe(client, "http://127.0.0.1:9/nothing-listens-here")
    assert unreachable.status_code == 400


def test_notify_and_lifecycle_reach_the_receiver(ms: FakeMicrosoft, receiver: Receiver) -> None:
    client = graph(ms)
    cid = ms.account_info(ANN)["default_calendar"]
    sub = subscribe(
        client, receiver.url, resource=f"me/calendars/{cid}/events", lifecycleNotificationUrl=receiver.url
    ).json()
    eid = ms.user_create(ANN, cid, **event("a", "2027-01-05T09:00:00", "2027-01-05T10:00:00"))

    status, seconds = ms.notify(sub["id"], "updated", eid)
    assert status == 202 and 0 <= seconds < 5
    item = receiver.notifications[-1]["value"][0]
    oid, tid = ms.account_info(ANN)["oid"], ms.account_info(ANN)["tenant_id"]
    assert item["subscriptionId"] == sub["id"] and item["clientState"] == "secret-state" and item["tenantId"] == tid
    assert item["changeType"] == "updated" and item["resource"] == f"Users/{oid}/Events/{eid}"
    assert item["resourceData"]["id"] == eid and item["resourceData"]["@odata.type"] == "#Microsoft.Graph.Event"
    assert item["resourceData"]["@odata.etag"] == ms.get_event(eid)["@odata.etag"]

    receiver.delay = 0.3
    _, slow = ms.notify(sub["id"], "deleted", eid)
    assert slow >= 0.3

    assert ms.lifecycle(sub["id"], "reauthorizationRequired")[0] == 202
    life = receiver.notifications[-1]["value"][0]
    assert life["lifecycleEvent"] == "reauthorizationRequired" and life["subscriptionId"] == sub["id"]
    assert ms.subscriptions[0]["reauthorizationRequired"] is True
    assert client.post(f"/subscriptions/{sub['id']}/reauthorize").status_code == 204
    assert ms.subscriptions[0]["reauthorizationRequired"] is False
    ms.lifecycle(sub["id"], "subscriptionRemoved")
    assert receiver.notifications[-1]["value"][0]["lifecycleEvent"] == "subscriptionRemoved"
    assert ms.subscriptions == [] and client.get(f"/subscriptions/{sub['id']}").status_code == 404


def test_auto_notify_posts_after_user_edits(receiver: Receiver) -> None:
    with FakeMicrosoft(auto_notify=True) as ms:
        ms.add_client(CLIENT_ID, SECRET, [REDIRECT])
        cid = ms.add_account(ANN)
        client = graph(ms)
        sub = subscribe(client, receiver.url, changeType="created,updated").json()
        eid = ms.user_create(ANN, cid, **event("a", "2027-01-05T09:00:00", "2027-01-05T10:00:00"))
        ms.user_update(eid, subject="b")
        ms.user_delete(eid)  # "deleted" is not subscribed to
        sent = ms.wait_for_deliveries(2)
        assert [(d.subscription_id, d.status) for d in sent] == [(sub["id"], 202)] * 2
        assert [n["value"][0]["changeType"] for n in receiver.notifications] == ["created", "updated"]
        assert ms.errors == []

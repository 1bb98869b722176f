"""The admin pages in a real browser against a real server: webhooks (secret shown once, the
delivery log with its attempts, redeliver, send a test), API keys (created, shown once, revoked),
iCal subscriptions (subscribe to a local feed, "Sync now", the event count), connections (the
API's own errors beside the field they name, the reauthorization banner, Google through its
protocol fake end to end), what an agent key does not see, and a phone's width.

Every receiver, feed and "provider" runs on 127.0.0.1 (the fixture fails a test whose browser
requested anything else, or whose console logged an error).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, ViewportSize, expect

from tests.cli.serveproc import ServerProcess, free_port
from tests.fakes.google import FakeGoogle
from tests.ui.conftest import PHONE, Ui


def wait_for(check: Callable[[], Any], timeout: float = 20, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


class Local:
    """A tiny HTTP server on 127.0.0.1 in a thread; `handle(handler)` answers each request."""

    def __init__(self, handle: Callable[[BaseHTTPRequestHandler, bytes], None]) -> None:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _any(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                handle(self, body)

            do_GET = do_POST = do_PROPFIND = do_OPTIONS = do_REPORT = _any  # noqa: N815 - http.server's naming

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_port}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def answer(req: BaseHTTPRequestHandler, status: int, body: bytes = b"", content_type: str = "text/plain") -> None:
    req.send_response(status)
    req.send_header("Content-Type", content_type)
    req.send_header("Content-Length", str(len(body)))
    req.end_headers()
    req.wfile.write(body)


@pytest.fixture
def receiver() -> Iterator[tuple[Local, list[dict[str, Any]]]]:
    """A webhook receiver answering 200 and keeping what it got."""
    got: list[dict[str, Any]] = []

    def handle(req: BaseHTTPRequestHandler, body: bytes) -> None:
        got.append({"headers": dict(req.headers), "body": body})
        answer(req, 200, b"thanks")

    server = Local(handle)
    yield server, got
    server.close()


def ics(*titles: str) -> bytes:
    """A feed with one event a day from 1 March 2027, in the order given."""
    events = "".join(
        f"BEGIN:VEVENT\r\nUID:ui-{i}@feed.test\r\nDTSTAMP:20270101T000000Z\r\n"
        f"DTSTART:202703{i + 1:02}T090000Z\r\nDTEND:202703{i + 1:02}T100000Z\r\nSUMMARY:{title}\r\nEND:VEVENT\r\n"
        for i, title in enumerate(titles)
    )
    return f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//ui test//EN\r\n{events}END:VCALENDAR\r\n".encode()


def open_page(ui: Ui, route: str, viewport: ViewportSize | None = None) -> Page:
    page = ui.signed_in()  # at desktop width: signed_in waits for a visible #nav link, folded away on a phone
    if viewport:
        page.set_viewport_size(viewport)
    page.goto(f"{ui.base_url}/#/{route}")
    page.wait_for_selector("main h1")
    return page


def shot(ui: Ui, page: Page, name: str) -> None:
    """A screenshot without the toasts that happen to be up (they cover the content)."""
    page.evaluate("() => document.querySelectorAll('#toasts .toast').forEach((t) => t.remove())")
    ui.shot(page, name)


def session_status(ui: Ui, page: Page) -> int:
    """What /auth/session answers to the page's session cookie (asked from outside the page)."""
    cookie = next(c["value"] for c in page.context.cookies() if c["name"] == "chronary_session")
    with httpx.Client(base_url=ui.base_url) as client:
        return client.get("/auth/session", headers={"Cookie": f"chronary_session={cookie}"}).status_code


def no_horizontal_scroll(page: Page) -> None:
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert page.viewport_size is not None and width <= page.viewport_size["width"], f"{page.url}: {width}px wide"


# -- webhooks -------------------------------------------------------------------------------------


def test_webhook_from_the_ui_delivers_and_shows_its_attempts(ui: Ui, receiver: tuple[Local, list[dict[str, Any]]]) -> None:
    server, got = receiver
    page = open_page(ui, "webhooks")
    form = page.get_by_role("form", name="Add a webhook")
    expect(page.get_by_text("No webhooks yet")).to_be_visible()  # the empty state says what to do
    # the API's own validation, beside the field it names: no event type chosen, then a bad URL
    form.get_by_label("Endpoint URL").fill(f"{server.url}/hook")
    form.get_by_role("button", name="Add webhook").click()
    expect(form.locator("fieldset[name=events] .field-error")).not_to_be_empty()
    form.get_by_label("agent.created").check()
    form.get_by_label("Endpoint URL").fill("ftp://127.0.0.1/hook")
    form.get_by_role("button", name="Add webhook").click()
    url_error = form.locator(".field:has(input[name=url]) .field-error")
    expect(url_error).to_contain_text("url")
    assert form.get_by_label("Endpoint URL").get_attribute("aria-invalid") == "true"

    form.get_by_label("Endpoint URL").fill(f"{server.url}/hook")
    form.get_by_label("Description").fill("UI test receiver")
    form.get_by_role("button", name="Add webhook").click()
    card = page.locator(".secret-card")
    expect(card).to_contain_text("will not be shown again")
    secret = card.locator(".secret").inner_text().strip()
    assert secret.startswith("whsec_")
    expect(card.get_by_role("button", name="Copy secret")).to_be_visible()
    item = page.get_by_role("listitem", name=f"Webhook {server.url}/hook")
    expect(item).to_contain_text("agent.created")
    with ui.api() as api:
        (hook,) = api.get("/v1/webhooks").json()["data"]
        assert (hook["url"], hook["events"], hook["description"]) == (
            f"{server.url}/hook",
            ["agent.created"],
            "UI test receiver",
        )
        assert "secret" not in hook  # shown once: the API never gives it back
    shot(ui, page, "webhooks")

    # an event through the API reaches the receiver, signed with the secret the UI showed
    with ui.api() as api:
        agent = api.post("/v1/agents", json={"name": "Grace"}).json()
    wait_for(lambda: got, what="the receiver to get agent.created")
    headers = {k.lower(): v for k, v in got[0]["headers"].items()}
    signed = hmac.new(secret.encode(), f"{headers['chronary-webhook-timestamp']}.".encode() + got[0]["body"], hashlib.sha256)
    assert headers["chronary-webhook-signature"] == f"v1={signed.hexdigest()}"
    assert json.loads(got[0]["body"])["data"]["object"]["id"] == agent["id"]

    # the delivery log: the delivery with its attempt
    item.get_by_role("link", name=f"Delivery log of {server.url}/hook").click()
    page.wait_for_url(re.compile(r"#/webhooks/whk_"))
    delivery = page.locator("li.delivery").filter(has_text="agent.created")
    expect(delivery.locator(".badge")).to_have_text("succeeded", timeout=15_000)
    delivery.get_by_role("button", name=re.compile("^Attempts and payload")).click()
    attempts = delivery.locator("ol.attempts li")
    expect(attempts).to_have_count(1)
    expect(attempts.first).to_contain_text("#1 succeeded")
    expect(attempts.first).to_contain_text("HTTP 200")
    expect(delivery.locator("pre.delivery-payload")).to_contain_text(agent["id"], use_inner_text=False)

    # redeliver: a second attempt of the same delivery, the same event id
    delivery.get_by_role("button", name=re.compile("^Redeliver")).click()
    expect(attempts).to_have_count(2, timeout=15_000)
    expect(attempts.nth(1)).to_contain_text("#2 succeeded")
    assert len(got) == 2 and got[1]["body"] == got[0]["body"]

    # send a test: a webhook.test delivery appears and succeeds
    page.get_by_role("button", name="Send a test").click()
    test = page.locator("li.delivery").filter(has_text="webhook.test")
    expect(test.locator(".badge")).to_have_text("succeeded", timeout=15_000)
    assert json.loads(got[-1]["body"])["type"] == "webhook.test"
    with ui.api() as api:
        log = api.get(f"/v1/webhooks/{hook['id']}/deliveries").json()["data"]
        assert sorted(d["event_type"] for d in log) == ["agent.created", "webhook.test"]
        first = next(d for d in log if d["event_type"] == "agent.created")
        assert api.get(f"/v1/webhook-deliveries/{first['id']}").json()["attempts"] == 2
    shot(ui, page, "webhook-deliveries")

    # pause, then edit the event types: both through the API's PATCH
    page.get_by_role("button", name="Pause").click()
    expect(page.get_by_text("Paused: deliveries wait until you resume.")).to_be_visible()
    page.get_by_role("button", name="Edit").click()
    edit = page.get_by_role("form", name=f"Edit webhook {server.url}/hook")
    edit.get_by_label("event.created").check()
    edit.get_by_role("button", name="Save").click()
    expect(page.locator(".item").first).to_contain_text("agent.created, event.created")
    with ui.api() as api:
        now = api.get(f"/v1/webhooks/{hook['id']}").json()
        assert (now["status"], now["events"]) == ("paused", ["agent.created", "event.created"])

    # delete, confirmed
    page.get_by_role("button", name="Delete").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete webhook").click()
    page.wait_for_url(re.compile(r"#/webhooks$"))
    expect(page.get_by_text("No webhooks yet")).to_be_visible()
    with ui.api() as api:
        assert api.get(f"/v1/webhooks/{hook['id']}").status_code == 404


# -- API keys -------------------------------------------------------------------------------------


def test_api_key_shown_once_then_revoked(ui: Ui) -> None:
    with ui.api() as api:
        agent = api.post("/v1/agents", json={"name": "Lin"}).json()
    page = open_page(ui, "keys")
    form = page.get_by_role("form", name="Create an API key")
    form.get_by_label("Name").fill("reporting bot")
    form.get_by_label("Scope").select_option(agent["id"])
    form.get_by_role("button", name="Create key").click()
    card = page.locator(".secret-card")
    expect(card).to_contain_text("it will not be shown again")
    secret = card.locator(".secret").inner_text().strip()
    assert secret.startswith("chr_ak_")
    card.get_by_role("button", name="Copy key").click()
    expect(card.get_by_role("button", name="Copied")).to_be_visible()
    row = page.locator("tr").filter(has_text="reporting bot")
    expect(row).to_contain_text("Agent: Lin")
    expect(row).to_contain_text(f"chr_ak_…{secret[-4:]}")
    with ui.server.client(secret) as as_key:
        assert [a["id"] for a in as_key.get("/v1/agents").json()["data"]] == [agent["id"]]  # the key works, for Lin
    shot(ui, page, "keys")

    page.reload()
    page.wait_for_selector("tr >> text=reporting bot")
    assert secret not in page.content()  # shown once: gone after a reload

    # revoking asks first; the revoked key gets 401
    row = page.locator("tr").filter(has_text="reporting bot")
    row.get_by_role("button", name="Revoke key reporting bot").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("cannot be undone")
    dialog.get_by_role("button", name="Revoke key").click()
    expect(page.locator("tr").filter(has_text="reporting bot")).to_have_count(0)
    with ui.server.client(secret) as as_key:
        assert as_key.get("/v1/agents").status_code == 401

    # the key this browser signed in with: a warning, and revoking it signs out
    session = page.evaluate("() => fetch('/auth/session').then(r => r.json())")
    assert session_status(ui, page) == 200
    mine = page.locator(f"tr[data-id='{session['key_id']}']")
    expect(mine).to_contain_text("this session")
    mine.get_by_role("button", name=re.compile("^Revoke key")).click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("signs you out")
    dialog.get_by_role("button", name="Cancel").click()
    mine.get_by_role("button", name=re.compile("^Revoke key")).click()
    page.get_by_role("dialog").get_by_role("button", name="Revoke key").click()
    page.wait_for_url(re.compile(r"/login"))
    assert session_status(ui, page) == 401  # the session ended with its key
    with ui.api() as api:
        assert session["key_id"] not in [k["id"] for k in api.get("/v1/keys").json()["data"]]


# -- iCal subscriptions ---------------------------------------------------------------------------


def test_ical_subscription_syncs_now_and_shows_its_event_count(ui: Ui) -> None:
    feed = {"body": ics("Standup", "Review", "Retro")}

    def handle(req: BaseHTTPRequestHandler, body: bytes) -> None:
        answer(req, 200, feed["body"], "text/calendar; charset=utf-8")

    server = Local(handle)
    try:
        with ui.api() as api:
            agent = api.post("/v1/agents", json={"name": "Mo"}).json()
            cal = api.post(f"/v1/agents/{agent['id']}/calendars", json={"name": "Team", "timezone": "Europe/Berlin"}).json()
        page = open_page(ui, f"subscriptions/{agent['id']}")
        expect(page.get_by_text("No subscriptions yet")).to_be_visible()
        form = page.get_by_role("form", name="Subscribe to a feed")
        form.get_by_label("Feed URL").fill("ftp://127.0.0.1/team.ics")
        form.get_by_role("button", name="Subscribe").click()
        expect(form.locator(".field:has(input[name=url]) .field-error")).to_contain_text("scheme")
        form.get_by_label("Feed URL").fill(f"{server.url}/team.ics")
        form.get_by_label("Label").fill("Team feed")
        form.get_by_label("Into calendar").select_option(cal["id"])
        form.get_by_role("button", name="Subscribe").click()
        item = page.get_by_role("listitem", name="Subscription Team feed")
        expect(item.locator(".event-count")).to_have_text("3", timeout=20_000)  # the first sync ran at once
        first_synced = item.locator(".last-synced").inner_text()
        assert first_synced != "Not yet"
        with ui.api() as api:
            (sub,) = api.get(f"/v1/agents/{agent['id']}/ical-subscriptions").json()["data"]
            assert (sub["calendar_id"], sub["event_count"], sub["label"]) == (cal["id"], 3, "Team feed")
        shot(ui, page, "subscriptions")

        # the feed grows; "Sync now" follows the row until last_synced_at moves
        feed["body"] = ics("Standup", "Review", "Retro", "Planning")
        time.sleep(1.1)  # last_synced_at has millisecond precision; make sure it can move
        item.get_by_role("button", name="Sync now").click()
        expect(item.locator(".event-count")).to_have_text("4", timeout=20_000)
        with ui.api() as api:
            now = api.get(f"/v1/ical-subscriptions/{sub['id']}").json()
            assert now["event_count"] == 4 and now["last_synced_at"] > sub["last_synced_at"]
            titles = sorted(e["title"] for e in api.get(f"/v1/calendars/{cal['id']}/events").json()["data"])
            assert titles == ["Planning", "Retro", "Review", "Standup"]

        # pause / resume / edit
        item.get_by_role("button", name="Pause").click()
        expect(item.locator(".badge").first).to_have_text("paused")
        item.get_by_role("button", name="Resume").click()
        expect(item.locator(".badge").first).to_have_text("active")
        item.get_by_role("button", name="Edit").click()
        edit = page.get_by_role("form", name="Edit subscription Team feed")
        edit.get_by_label("Label").fill("Team (all)")
        edit.get_by_label("Refresh every (minutes)").fill("120")
        edit.get_by_role("button", name="Save").click()
        item = page.get_by_role("listitem", name="Subscription Team (all)")
        expect(item).to_contain_text("every 120 min")
        with ui.api() as api:
            now = api.get(f"/v1/ical-subscriptions/{sub['id']}").json()
            assert (now["label"], now["refresh_interval_minutes"], now["status"]) == ("Team (all)", 120, "active")

        # delete, confirmed: the imported events go with it
        item.get_by_role("button", name="Delete").click()
        dialog = page.get_by_role("dialog")
        expect(dialog).to_contain_text("4 imported events")
        dialog.get_by_role("button", name="Delete subscription").click()
        expect(page.get_by_text("No subscriptions yet")).to_be_visible()
        with ui.api() as api:
            assert api.get(f"/v1/ical-subscriptions/{sub['id']}").status_code == 404
            assert api.get(f"/v1/calendars/{cal['id']}/events").json()["data"] == []
    finally:
        server.close()


# -- connections ----------------------------------------------------------------------------------


def test_connection_errors_are_the_apis_beside_the_field(ui: Ui) -> None:
    def refuse(req: BaseHTTPRequestHandler, body: bytes) -> None:  # a CalDAV server that rejects the login
        req.send_response(401)
        req.send_header("WWW-Authenticate", 'Basic realm="dav"')
        req.send_header("Content-Length", "0")
        req.end_headers()

    dav = Local(refuse)
    try:
        with ui.api() as api:
            api.post("/v1/agents", json={"name": "Ada"})
        page = open_page(ui, "connections")
        expect(page.get_by_text("No accounts connected yet")).to_be_visible()

        # Google without an OAuth client configured: the API's message says what to set
        page.get_by_role("button", name="Connect Google").click()
        provider_error = page.locator("fieldset[name=provider] .field-error")
        expect(provider_error).to_contain_text("CHRONARY_GOOGLE_CLIENT_ID")
        assert page.locator("fieldset[name=provider]").get_attribute("aria-invalid") == "true"

        form = page.get_by_role("form", name="Connect iCloud or CalDAV")
        form.get_by_label("Account type").select_option("caldav")
        form.get_by_label("Username").fill("ada")
        form.get_by_label("Password").fill("wrong")
        form.get_by_label("Server URL").fill(f"{dav.url}/dav/")
        form.get_by_role("button", name="Connect account").click()
        password_error = form.locator(".field:has(input[name=password]) .field-error")
        expect(password_error).to_contain_text("Login failed", timeout=15_000)
        assert form.get_by_label("Password").get_attribute("aria-invalid") == "true"
        expect(form.locator(".field:has(input[name=server_url]) .field-error")).to_be_hidden()

        # nothing listens there: the 502 names the server URL
        form.get_by_label("Server URL").fill(f"http://127.0.0.1:{free_port()}/")
        form.get_by_role("button", name="Connect account").click()
        expect(form.locator(".field:has(input[name=server_url]) .field-error")).to_contain_text(
            "Could not reach", timeout=15_000
        )
        expect(password_error).to_be_hidden()
        with ui.api() as api:
            assert api.get("/v1/connections").json()["data"] == []  # nothing stored
    finally:
        dav.close()


def _write_connection(ui: Ui, agent_id: str, con_id: str, email: str, status: str, reason: str | None, sync: Any) -> None:
    """A Google connection row written straight into the server's SQLite file while it runs
    (WAL: a second writer is fine). It has no stored secret, so the scheduler never picks it up
    and the API shows exactly this state."""
    db = sqlite3.connect(ui.data_dir / "chronary.db", timeout=10)
    try:
        (org_id,) = db.execute("SELECT org_id FROM agents WHERE id = ?", (agent_id,)).fetchone()
        now = "2026-01-05T09:00:00.000Z"
        db.execute(
            "INSERT INTO connections (id, org_id, agent_id, provider, status, status_reason, email, sync_mode,"
            " sync_interval_minutes, last_synced_at, last_sync, next_sync_at, created_at, updated_at)"
            " VALUES (?, ?, ?, 'google', ?, ?, ?, 'polling', 5, ?, ?, 9007199254740992, ?, ?)",
            (con_id, org_id, agent_id, status, reason, email, now, json.dumps(sync), now, now),
        )
        db.commit()
    finally:
        db.close()


def _set_last_sync(ui: Ui, con_id: str, sync: Any) -> None:
    db = sqlite3.connect(ui.data_dir / "chronary.db", timeout=10)
    try:
        db.execute("UPDATE connections SET last_sync = ? WHERE id = ?", (json.dumps(sync), con_id))
        db.commit()
    finally:
        db.close()


def test_reauthorization_banner_and_sync_progress(ui: Ui) -> None:
    """The states a connection gets into, without a provider: rows written the way the sync
    engine writes them (test_google_connect_map_and_reconnect_through_the_fake gets to the
    reauthorization banner for real)."""
    with ui.api() as api:
        agent = api.post("/v1/agents", json={"name": "Ada"}).json()
    started = "2026-01-05T09:00:00.000Z"
    failed = {
        "started_at": started,
        "finished_at": started,
        "pulled": 0,
        "pushed": 0,
        "conflicts": 0,
        "error": "Google no longer accepts this connection's grant (invalid_grant); reconnect the account",
    }
    _write_connection(ui, agent["id"], "con_uitestreauth", "ada@example.com", "error", "reauthorization_required", failed)
    running = {"started_at": started, "finished_at": None, "pulled": 0, "pushed": 0, "conflicts": 0, "error": None}
    _write_connection(ui, agent["id"], "con_uitestrunning", "bob@example.com", "active", None, running)

    page = open_page(ui, "connections")
    item = page.get_by_role("listitem", name="Connection Google · ada@example.com")
    banner = item.locator(".banner.reauth")
    expect(banner).to_contain_text("Google needs you to sign in again")
    expect(item.locator(".badge").first).to_have_text("error")
    # a round in progress (finished_at null) shows as such, and the page follows it to its end
    busy = page.get_by_role("listitem", name="Connection Google · bob@example.com")
    expect(busy.get_by_role("status")).to_have_text("Syncing…")
    assert item.get_by_text("Syncing…").count() == 0
    shot(ui, page, "connections-reauthorize")
    _set_last_sync(ui, "con_uitestrunning", {**running, "finished_at": "2026-01-05T09:00:05.000Z", "pulled": 7, "pushed": 2})
    expect(busy.locator(".counts")).to_have_text("7 pulled · 2 pushed · 0 conflicts", timeout=10_000)
    expect(busy.get_by_text("Syncing…")).to_have_count(0)

    # Reconnect goes through /start with the connection's id; this server has no Google client
    banner.get_by_role("button", name="Reconnect Google · ada@example.com").click()
    expect(banner.locator(".field-error")).to_contain_text("CHRONARY_GOOGLE_CLIENT_ID")
    # disconnect, confirmed
    item.get_by_role("button", name="Disconnect").click()
    page.get_by_role("dialog").get_by_role("button", name="Disconnect").click()
    expect(item).to_have_count(0)
    with ui.api() as api:
        assert api.get("/v1/connections/con_uitestreauth").status_code == 404
        assert [c["id"] for c in api.get("/v1/connections").json()["data"]] == ["con_uitestrunning"]


# -- Google, end to end through the protocol fake ---------------------------------------------------

CLIENT_ID = "1234-chronary.apps.googleusercontent.com"
CLIENT_SECRET = "GOCSPX-ui-test-secret"
EMAIL = "ada@example.com"


@pytest.fixture
def google_ui(browser: Browser, tmp_path: Any) -> Iterator[tuple[Ui, FakeGoogle]]:
    """A server whose Google endpoints are tests/fakes/google.py over HTTPS on 127.0.0.1."""
    fake = FakeGoogle(tls=True)
    port = free_port()
    fake.add_client(CLIENT_ID, CLIENT_SECRET, [f"http://127.0.0.1:{port}/v1/connections/callback"])
    fake.add_account(EMAIL, time_zone="Europe/Berlin")
    fake.set_user(EMAIL)
    assert fake.cafile is not None
    env = {
        "CHRONARY_GOOGLE_CLIENT_ID": CLIENT_ID,
        "CHRONARY_GOOGLE_CLIENT_SECRET": CLIENT_SECRET,
        "CHRONARY_GOOGLE_AUTH_URL": fake.auth_url,
        "CHRONARY_GOOGLE_TOKEN_URL": fake.token_url,
        "CHRONARY_GOOGLE_REVOKE_URL": fake.revoke_url,
        "CHRONARY_GOOGLE_API_URL": fake.api_url,
        "SSL_CERT_FILE": fake.cafile,
        "REQUESTS_CA_BUNDLE": fake.cafile,
    }
    data_dir = tmp_path / "data"
    args = ["serve", "--port", str(port), "--data-dir", str(data_dir), "--workers", "true"]
    server = ServerProcess(args, port, env=env).start()
    try:
        key = server.first_key()
        assert key, server.output
        found = Ui(server, browser, key)
        found.data_dir = data_dir
        yield found, fake
        for context in found.contexts:
            context.close()
        found.assert_clean()
        assert fake.errors == [], fake.errors
    finally:
        server.stop()
        fake.close()


def test_google_connect_map_and_reconnect_through_the_fake(google_ui: tuple[Ui, FakeGoogle]) -> None:
    ui, fake = google_ui
    fake.add_calendar(EMAIL, "Team (shared with me)", access_role="reader")
    fake.put_event(
        EMAIL,
        {
            "summary": "Dentist",
            "start": {"dateTime": "2027-02-01T09:00:00+01:00"},
            "end": {"dateTime": "2027-02-01T10:00:00+01:00"},
        },
    )
    with ui.api() as api:
        agent = api.post("/v1/agents", json={"name": "Ada"}).json()
    page = ui.page(ignore_https_errors=True)  # the fake's test CA is not Chromium's
    page.goto(ui.login_link())
    page.wait_for_selector("#nav a")
    page.goto(f"{ui.base_url}/#/connections")
    page.get_by_role("button", name="Connect Google").click()
    # the fake's consent page answers 302 to our callback, which sends the browser back here
    page.wait_for_url(re.compile(r"/#/connections$"))
    expect(page.locator(".banner.ok")).to_contain_text(f"Connected Google · {EMAIL}")
    assert "connection_id" not in page.url  # the query is tidied away
    item = page.get_by_role("listitem", name=f"Connection Google · {EMAIL}")
    form = item.get_by_role("form", name=f"Calendars of Google · {EMAIL}")  # opened for choosing
    expect(form.locator("li").filter(has_text="Team (shared with me)")).to_contain_text("read-only")
    form.get_by_label(f"Sync “{EMAIL}”").check()
    form.get_by_role("button", name="Save calendars").click()
    expect(item.locator(".summary")).to_contain_text(f"Calendars synced{EMAIL}", timeout=10_000)
    with ui.api() as api:
        (con,) = api.get("/v1/connections").json()["data"]
        mapped = next(c for c in api.get(f"/v1/connections/{con['id']}?expand[]=calendars").json()["calendars"] if c["sync"])
        assert (con["agent_id"], mapped["remote_id"]) == (agent["id"], EMAIL) and mapped["calendar_id"]
    # the round mirrors Dentist; the UI shows the counts once it finished
    expect(item.locator(".counts")).to_contain_text("1 pulled", timeout=30_000)
    with ui.api() as api:
        titles = [e["title"] for e in api.get(f"/v1/calendars/{mapped['calendar_id']}/events").json()["data"]]
        assert titles == ["Dentist"]
    shot(ui, page, "connections")

    # Google stops accepting the grant; the next round (Sync now) gives up: the banner says so
    fake.revoke_grant(EMAIL)
    fake.expire_access_tokens()
    item.get_by_role("button", name="Sync now").click()
    banner = item.locator(".banner.reauth")
    expect(banner).to_contain_text("Google needs you to sign in again", timeout=30_000)
    with ui.api() as api:
        assert api.get(f"/v1/connections/{con['id']}").json()["status_reason"] == "reauthorization_required"
    # Reconnect: the same flow with connection_id; back here, the connection is active again
    banner.get_by_role("button", name=re.compile("^Reconnect")).click()
    page.wait_for_url(re.compile(r"/#/connections$"))
    expect(page.locator(".banner.ok")).to_contain_text("Connected Google")
    expect(item.locator(".banner.reauth")).to_have_count(0)
    with ui.api() as api:
        again = api.get(f"/v1/connections/{con['id']}").json()
        assert (again["status"], again["status_reason"]) == ("active", None)
        assert [c["calendar_id"] for c in again["calendars"] if c["sync"]] == [mapped["calendar_id"]]  # kept
        assert len(api.get("/v1/connections").json()["data"]) == 1  # the same connection, repaired
    # a second full resync within the minute: the API's 429 message, in the item
    item.get_by_role("button", name="Sync now").click()
    expect(item.locator(".summary > .field-error")).to_contain_text("try again in")
    # no conflicts yet: the panel says what would show there
    item.get_by_role("button", name=f"Conflicts of Google · {EMAIL}").click()
    expect(item.locator(".panel")).to_contain_text("No conflicts.")

    # a refused consent comes back with ?error=access_denied: said in words
    fake.deny_next()
    page.get_by_role("button", name="Connect Google").click()
    page.wait_for_url(re.compile(r"/#/connections$"))
    expect(page.get_by_role("alert").filter(has_text="Not connected")).to_contain_text("cancelled or refused")


# -- scope and phone ------------------------------------------------------------------------------


def test_agent_key_sees_neither_connections_nor_webhooks(ui: Ui) -> None:
    with ui.api() as api:
        agent = api.post("/v1/agents", json={"name": "Ada"}).json()
        other = api.post("/v1/agents", json={"name": "Bob"}).json()
        api.post(f"/v1/agents/{agent['id']}/calendars", json={"name": "Ada's", "timezone": "UTC"})
        agent_key = api.post("/v1/keys", json={"name": "ada ui", "agent_id": agent["id"]}).json()["secret"]
    page = ui.page()
    page.goto(f"{ui.base_url}/login")
    page.get_by_label("API key").fill(agent_key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_selector("#nav a")
    nav = page.get_by_role("navigation", name="Main")
    assert nav.get_by_role("link", name="Connections").count() == 0
    assert nav.get_by_role("link", name="Webhooks").count() == 0
    for route in ("connections", "webhooks"):
        page.goto(f"{ui.base_url}/#/{route}")
        expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    page.goto(f"{ui.base_url}/#/keys")
    expect(page.get_by_text("Keys are created and revoked with an org key")).to_be_visible()
    page.goto(f"{ui.base_url}/#/subscriptions/{other['id']}")  # another agent's id in the URL: still its own
    expect(page.get_by_role("heading", name="Subscriptions of Ada")).to_be_visible()
    assert page.get_by_label("Agent", exact=True).count() == 0  # no picker of other agents
    assert "Bob" not in page.content()


def test_admin_pages_fit_a_phone(ui: Ui, receiver: tuple[Local, list[dict[str, Any]]]) -> None:
    server, _ = receiver
    with ui.api() as api:
        agent = api.post("/v1/agents", json={"name": "Ada with a rather long name for a phone screen"}).json()
        cal = api.post(f"/v1/agents/{agent['id']}/calendars", json={"name": "Work", "timezone": "UTC"}).json()
        api.post("/v1/keys", json={"name": "a key with a long name for the phone layout", "agent_id": agent["id"]})
        long_url = f"{server.url}/hooks/chronary/{'x' * 80}"
        api.post("/v1/webhooks", json={"url": long_url, "events": ["*"], "description": "phone"})
        api.post(
            f"/v1/agents/{agent['id']}/ical-subscriptions",
            json={"calendar_id": cal["id"], "url": f"http://127.0.0.1:{free_port()}/{'y' * 80}.ics"},
        )
    page = open_page(ui, "keys", PHONE)
    page.wait_for_selector("tr >> text=a key with a long name")
    no_horizontal_scroll(page)
    shot(ui, page, "keys-phone")
    for route, ready in (("webhooks", "li.item"), ("connections", "form"), (f"subscriptions/{agent['id']}", "li.item")):
        page.goto(f"{ui.base_url}/#/{route}")
        page.wait_for_selector(f"main {ready}")
        no_horizontal_scroll(page)
    # keyboard: the page's controls are reachable with Tab and show where focus is
    page.goto(f"{ui.base_url}/#/keys")
    page.wait_for_selector("tr >> text=a key with a long name")
    page.get_by_role("textbox", name="Name").focus()
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.name") == "agent_id"
    outline = page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.textContent") == "Create key"

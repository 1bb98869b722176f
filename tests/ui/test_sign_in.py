"""Signing in to the web UI both ways, in a real browser; the API docs work offline too."""

from __future__ import annotations

import re

from tests.ui.conftest import PHONE, Ui


def test_sign_in_with_the_printed_link_then_sign_out(ui: Ui) -> None:
    printed = re.findall(r"http://127\.0\.0\.1:\d+/login\?token=[A-Za-z0-9_-]+", ui.server.output)
    assert printed, ui.server.output  # `chronary serve` printed a link beside the first key
    page = ui.page()
    page.goto(printed[0])
    page.wait_for_selector("#nav a")
    assert page.get_by_role("link", name="Webhooks").is_visible()  # the org sees everything
    cookie = next(c for c in page.context.cookies() if c["name"] == "chronary_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert page.evaluate("() => Object.keys(localStorage).length") == 0  # no key in the browser
    ui.shot(page, "calendar-desktop")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/login"))
    again = ui.page()
    again.goto(printed[0])  # the link worked once
    again.wait_for_url(re.compile(r"/login\?error=expired_link"))
    assert again.get_by_role("alert").filter(has_text="already used").is_visible()


def test_sign_in_with_an_api_key_gets_that_keys_scope(ui: Ui) -> None:
    with ui.api() as api:
        agent = api.post("/v1/agents", json={"name": "Ada"}).json()
        agent_key = api.post("/v1/keys", json={"name": "ada ui", "agent_id": agent["id"]}).json()["secret"]
    page = ui.page(viewport=PHONE)
    page.goto(f"{ui.base_url}/login")
    page.get_by_label("API key").fill("chr_sk_wrong-key-0000000000000000000")
    page.get_by_role("button", name="Sign in").click()
    refused = page.locator("#api_key-error").filter(has_text="Unknown API key")
    refused.wait_for(state="visible")  # the answer arrives after the click returns
    assert refused.is_visible()
    page.get_by_label("API key").fill(agent_key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_selector("#nav a", state="attached")
    page.get_by_role("button", name="Menu").click()
    assert page.get_by_text(f"Agent {agent['id']}").is_visible()
    assert page.get_by_role("link", name="Webhooks").count() == 0  # org-only pages are not offered
    ui.shot(page, "calendar-phone-agent")


def test_api_docs_load_without_any_outside_request(ui: Ui) -> None:
    page = ui.page()
    page.goto(f"{ui.base_url}/schema")
    page.wait_for_selector("text=Chronary", timeout=20_000)
    assert any("/vendor/redoc/redoc.standalone.js" in u for u in ui.requests)

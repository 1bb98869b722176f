"""Feeds per device on the calendar page (issue 21, item 5): create a busy-only URL, see it read
(time and client), subscribe with webcal://, revoke it while the calendar's own URL keeps working."""

from __future__ import annotations

from datetime import timedelta

import httpx
from playwright.sync_api import expect

from tests.ui.conftest import PHONE, Ui
from tests.ui.test_people import busy, make_agent, no_horizontal_scroll, open_page, org_page, shot, tomorrow_utc


def test_device_feed_created_read_and_revoked(ui: Ui) -> None:
    with ui.api() as api:
        _, cal = make_agent(api, "Ada", "Europe/Berlin", calendar="Work")
        assert cal is not None
        start = tomorrow_utc() + timedelta(hours=9)
        busy(api, cal, "Secret interview", start, start + timedelta(hours=1))
    page = org_page(ui)
    open_page(page, ui, "calendars", "Calendars & feeds")
    card = page.locator("article.calendar", has=page.get_by_role("heading", name="Work"))
    card.get_by_text("Feeds per device for Work").click()
    expect(card.get_by_text("No device feeds yet.")).to_be_visible()

    form = card.get_by_role("form", name="New device feed for Work")
    form.get_by_role("button", name="Create device feed").click()  # no label: the API's message beside it
    expect(form.get_by_role("alert").filter(has_text="label")).to_be_visible()
    form.get_by_label("Device or person").fill("Bob's phone")
    form.get_by_label("Shows").select_option("busy")
    form.get_by_role("button", name="Create device feed").click()
    url_box = card.get_by_role("textbox", name="Feed URL for Bob's phone")
    expect(url_box).to_be_visible()
    url = url_box.input_value()
    assert url != cal["ical_url"] and "/ical/" in url
    link = card.get_by_role("link", name="Subscribe (webcal://) as Bob's phone")
    assert link.get_attribute("href") == "webcal://" + url.split("://", 1)[1]
    expect(card.get_by_text("Busy only · never read")).to_be_visible()

    feed = httpx.get(url, headers={"User-Agent": "BobCal/2.0"}, timeout=10)
    assert feed.status_code == 200 and "SUMMARY:Busy" in feed.text and "Secret interview" not in feed.text
    # reopening the list shows when it was read and by which client
    card.get_by_text("Feeds per device for Work").click()
    card.get_by_text("Feeds per device for Work").click()
    expect(card.locator("li.token")).to_contain_text("by BobCal/2.0")
    shot(ui, page, "calendars-device-feeds")

    card.get_by_role("button", name="Revoke the feed of Bob's phone").click()
    page.get_by_role("dialog").get_by_role("button", name="Revoke").click()
    expect(card.get_by_text("No device feeds yet.")).to_be_visible()
    assert httpx.get(url, timeout=10).status_code == 404
    assert httpx.get(cal["ical_url"], timeout=10).status_code == 200

    phone = org_page(ui, PHONE)
    open_page(phone, ui, "calendars", "Calendars & feeds")
    phone.get_by_text("Feeds per device for Work").click()
    expect(phone.get_by_role("form", name="New device feed for Work")).to_be_visible()
    no_horizontal_scroll(phone)

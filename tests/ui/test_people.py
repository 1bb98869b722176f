"""Agents, calendars & feeds, availability and proposals in a real browser against a real server:
what the UI does is checked through the API too."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from playwright.sync_api import Page, expect

from tests.ui.conftest import PHONE, Ui

ICS = "text/calendar"


def org_page(ui: Ui, viewport: dict[str, int] | None = None, **options: Any) -> Page:
    """A page of a fresh browser context signed in as the org (the session cookie comes from
    /auth/login with the org key, like the sign-in form), in UTC and en-US so times are known."""
    options.setdefault("timezone_id", "UTC")
    options.setdefault("locale", "en-US")
    page = ui.page(viewport, **options)
    r = page.context.request.post(
        f"{ui.base_url}/auth/login", data=json.dumps({"api_key": ui.key}), headers={"Content-Type": "application/json"}
    )
    assert r.ok, r.text()
    return page


def open_page(page: Page, ui: Ui, route: str, heading: str) -> None:
    page.goto(f"{ui.base_url}/#/{route}")
    expect(page.get_by_role("heading", level=1)).to_have_text(heading)


def error_of(page: Page, control: Any) -> Any:
    """The error slot beside a control (ui.field: `<id>-error`)."""
    return page.locator(f"#{control.get_attribute('id')}-error")


def shot(ui: Ui, page: Page, name: str) -> None:
    """A full-page screenshot from the top (the sticky header in its place), without toasts."""
    page.evaluate("() => { window.scrollTo(0, 0); document.getElementById('toasts').replaceChildren(); }")
    ui.shot(page, name)


def no_horizontal_scroll(page: Page) -> None:
    width, client = page.evaluate("() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert width <= client, f"{page.url}: {width} px wide in a {client} px viewport"


def make_agent(api: httpx.Client, name: str, tz: str = "UTC", calendar: str | None = "Main") -> tuple[dict, dict | None]:
    agent = api.post("/v1/agents", json={"name": name, "timezone": tz})
    assert agent.status_code == 201, agent.text
    cal = None
    if calendar:
        r = api.post(f"/v1/agents/{agent.json()['id']}/calendars", json={"name": calendar, "timezone": tz})
        assert r.status_code == 201, r.text
        cal = r.json()
    return agent.json(), cal


def busy(api: httpx.Client, cal: dict, title: str, start: datetime, end: datetime) -> dict:
    r = api.post(
        f"/v1/calendars/{cal['id']}/events",
        json={"title": title, "start_time": start.isoformat(), "end_time": end.isoformat()},
    )
    assert r.status_code == 201, r.text
    return r.json()


def events_of(api: httpx.Client, agent_id: str, start: datetime, end: datetime) -> list[dict]:
    r = api.get(
        f"/v1/agents/{agent_id}/events",
        params={"start_after": (start - timedelta(minutes=1)).isoformat(), "start_before": end.isoformat(), "limit": 200},
    )
    assert r.status_code == 200, r.text
    return r.json()["data"]


def tomorrow_utc() -> datetime:
    now = datetime.now(UTC)
    return datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1)


def test_create_an_agent_and_a_calendar_with_the_apis_own_validation_messages(ui: Ui) -> None:
    page = org_page(ui)
    open_page(page, ui, "agents", "Agents")
    expect(page.get_by_text("No agents yet — create the first one")).to_be_visible()
    form = page.locator("form#new-agent")
    form.get_by_label("Name").fill("Ada")
    tz = form.get_by_label("Timezone")
    tz.fill("Mars/Olympus")
    form.get_by_role("button", name="Create agent").click()
    # the API's message, beside the field it names
    expect(error_of(page, tz)).to_have_text("timezone must be an IANA timezone name such as Europe/Berlin")
    expect(tz).to_have_attribute("aria-invalid", "true")
    with ui.api() as api:
        assert api.get("/v1/agents").json()["total"] == 0
    tz.fill("Europe/Berlin")
    form.get_by_label("Email (optional)").fill("ada@example.org")
    form.get_by_role("button", name="Create agent").click()
    page.wait_for_url(re.compile(r"#/agents/agt_"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Ada")
    expect(page.get_by_text("Nothing on now — the agent is free.")).to_be_visible()
    with ui.api() as api:
        agents = api.get("/v1/agents").json()["data"]
        assert [(a["name"], a["timezone"], a["email"], a["status"]) for a in agents] == [
            ("Ada", "Europe/Berlin", "ada@example.org", "active")
        ]
        ada = agents[0]
        assert page.url.endswith(f"#/agents/{ada['id']}")
        # the context card shows what the API's context says is on now
        cal = api.post(f"/v1/agents/{ada['id']}/calendars", json={"name": "Work", "timezone": "Europe/Berlin"}).json()
        now = datetime.now(UTC)
        busy(api, cal, "Standup now", now - timedelta(minutes=10), now + timedelta(minutes=20))
        busy(api, cal, "Planning later", now + timedelta(hours=3), now + timedelta(hours=4))

    page.reload()
    expect(page.get_by_role("heading", level=1)).to_have_text("Ada")
    ctx_card = page.locator("section", has=page.get_by_role("heading", name="Now and next"))
    expect(ctx_card.get_by_text("Standup now")).to_be_visible()
    expect(ctx_card.get_by_text("Planning later")).to_be_visible()

    # edit (PATCH): status and email; an invalid email comes back from the API beside its field
    edit = page.locator("form", has=page.get_by_role("heading", name="Edit"))
    edit.get_by_label("Status").select_option("paused")
    email = edit.get_by_label("Email")
    email.fill("not an email")
    edit.get_by_role("button", name="Save changes").click()
    expect(error_of(page, email)).not_to_be_empty()
    expect(email).to_have_attribute("aria-invalid", "true")
    email.fill("")
    edit.get_by_role("button", name="Save changes").click()
    expect(page.get_by_text("Agent saved")).to_be_visible()
    with ui.api() as api:
        got = api.get(f"/v1/agents/{ada['id']}").json()
        assert (got["status"], got["email"]) == ("paused", None)
        make_agent(api, "Bob", "America/New_York", calendar=None)

    open_page(page, ui, "agents", "Agents")
    rows = page.locator("table.agents tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.filter(has_text="Ada")).to_contain_text("paused")
    expect(rows.filter(has_text="Bob")).to_contain_text("America/New_York")
    shot(ui, page, "agents")

    # a calendar, through the UI: owner, name, timezone, colour, default reminders
    open_page(page, ui, "calendars", "Calendars & feeds")
    form = page.locator("form#new-calendar")
    form.get_by_label("Owner").select_option(label="Bob")
    form.get_by_label("Name").fill("Bob's work")
    form.get_by_label("Timezone").fill("America/New_York")
    form.get_by_label("Colour").fill("#aa3366")
    reminders = form.get_by_label("Default reminders (minutes before)")
    reminders.fill("10, 0")
    form.get_by_role("button", name="Create calendar").click()
    expect(error_of(page, reminders)).to_have_text("default_reminders[1] must be a whole number of minutes from 1 to 40320")
    reminders.fill("10, 60")
    form.get_by_role("button", name="Create calendar").click()
    expect(page.get_by_role("heading", name="Bob's work", level=3)).to_be_visible()
    with ui.api() as api:
        bob = next(a for a in api.get("/v1/agents").json()["data"] if a["name"] == "Bob")
        cals = api.get(f"/v1/agents/{bob['id']}/calendars").json()["data"]
        assert [(c["name"], c["timezone"], c["default_reminders"], c["metadata"].get("color")) for c in cals] == [
            ("Bob's work", "America/New_York", [10, 60], "#aa3366")
        ]

    # edit it (PATCH) and delete Ada's with a confirmation
    card = page.locator("article.calendar", has=page.get_by_role("heading", name="Bob's work"))
    card.get_by_role("button", name="Edit Bob's work").click()
    card.get_by_label("Name").fill("Bob at work")
    card.get_by_role("button", name="Save calendar").click()
    expect(page.get_by_role("heading", name="Bob at work", level=3)).to_be_visible()
    page.get_by_role("button", name="Delete Work").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Delete calendar Work and all its events?")
    dialog.get_by_role("button", name="Cancel").click()
    with ui.api() as api:
        assert api.get(f"/v1/calendars/{cal['id']}").status_code == 200
    page.get_by_role("button", name="Delete Work").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete calendar").click()
    expect(page.get_by_role("heading", name="Work", exact=True)).to_have_count(0)
    with ui.api() as api:
        assert api.get(f"/v1/calendars/{cal['id']}").status_code == 404
        # the timezone, the email, the reminders
        assert api.get(f"/v1/calendars/{cals[0]['id']}").json()["name"] == "Bob at work"


def test_feed_url_copy_qr_code_webcal_and_rotation(ui: Ui) -> None:
    with ui.api() as api:
        ada, cal = make_agent(api, "Ada", "Europe/Berlin", calendar="Work")
        assert cal is not None
        start = tomorrow_utc() + timedelta(hours=9)
        busy(api, cal, "Feed check", start, start + timedelta(hours=1))
    old_url = cal["ical_url"]
    page = org_page(ui, permissions=["clipboard-read", "clipboard-write"])
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=ui.base_url)
    open_page(page, ui, "calendars", "Calendars & feeds")
    card = page.locator("article.calendar", has=page.get_by_role("heading", name="Work"))
    expect(card.get_by_role("textbox", name="Feed URL of Work")).to_have_value(old_url)

    card.get_by_role("button", name="Copy feed URL").click()
    expect(card.get_by_role("button", name="Copied")).to_be_visible()
    copied = page.evaluate("() => navigator.clipboard.readText()")
    assert copied == old_url
    feed = httpx.get(copied, timeout=10)
    assert feed.status_code == 200
    assert feed.headers["content-type"].startswith(ICS)
    assert feed.text.startswith("BEGIN:VCALENDAR") and "SUMMARY:Feed check" in feed.text

    qr = card.get_by_role("img", name="QR code for the feed URL of Work")
    expect(qr).to_be_visible()
    old_qr = qr.locator("path").get_attribute("d")
    assert old_qr and old_qr.count("h1v1h-1z") > 200  # a real module grid
    webcal = card.get_by_role("link", name="Subscribe to Work (webcal://)")
    assert webcal.get_attribute("href") == re.sub(r"^https?://", "webcal://", old_url)
    shot(ui, page, "calendars-feed")

    # rotating asks first, saying the old URL stops working
    card.get_by_role("button", name="Rotate feed URL").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("The old URL stops working at once")
    dialog.get_by_role("button", name="Cancel").click()
    assert httpx.get(old_url, timeout=10).status_code == 200
    card.get_by_role("button", name="Rotate feed URL").click()
    page.get_by_role("dialog").get_by_role("button", name="Rotate feed URL").click()
    url_box = card.get_by_role("textbox", name="Feed URL of Work")
    expect(url_box).not_to_have_value(old_url)
    new_url = url_box.input_value()
    with ui.api() as api:
        assert api.get(f"/v1/calendars/{cal['id']}").json()["ical_url"] == new_url
    assert httpx.get(old_url, timeout=10).status_code == 404
    rotated = httpx.get(new_url, timeout=10)
    assert rotated.status_code == 200 and "SUMMARY:Feed check" in rotated.text
    assert card.get_by_role("img", name="QR code for the feed URL of Work").locator("path").get_attribute("d") != old_qr
    card.get_by_role("button", name="Copy feed URL").click()
    expect(card.get_by_role("button", name="Copied")).to_be_visible()
    assert page.evaluate("() => navigator.clipboard.readText()") == new_url


def test_week_availability_and_find_a_time_for_three_agents_then_hold_and_book(ui: Ui) -> None:
    day = tomorrow_utc()
    at = lambda hh, mm=0: day + timedelta(hours=hh, minutes=mm)  # noqa: E731
    with ui.api() as api:
        people = {}
        for name, blocks in {
            "Ada": [(at(8), at(10))],
            "Bob": [(at(10), at(11)), (at(14), at(15))],
            "Cy": [(at(11), at(12, 30))],
        }.items():
            agent, cal = make_agent(api, name, "UTC")
            assert cal is not None
            for i, (s, e) in enumerate(blocks):
                busy(api, cal, f"{name} busy {i}", s, e)
            people[name] = agent
    page = org_page(ui)
    open_page(page, ui, "availability", "Availability")

    week = page.locator("section", has=page.get_by_role("heading", name="Busy and free in a week"))
    week.get_by_label("Agent").select_option(label="Bob")
    week.get_by_label("Week of").fill(day.strftime("%Y-%m-%d"))
    week.get_by_label("Week of").dispatch_event("change")
    label = f"{day:%a}, {day:%b} {day.day}"
    row = week.locator("table.week tbody tr", has=page.get_by_role("rowheader", name=label))
    expect(row).to_contain_text("Busy 10:00–11:00")
    expect(row).to_contain_text("Busy 14:00–15:00")
    expect(week.get_by_text("Bob: 2 busy blocks this week")).to_be_visible()
    expect(week.get_by_role("table", name=re.compile("Busy and free time of Bob"))).to_be_visible()
    shot(ui, page, "availability")

    find = page.locator("section", has=page.get_by_role("heading", name="Find a time"))
    find.get_by_label("Ada (UTC)").check()
    find.get_by_role("button", name="Find a time").click()
    # the API's own message: two agents at least
    expect(find.locator(".checks .field-error")).to_contain_text("agent_ids")
    for name in ("Bob", "Cy"):
        find.get_by_label(f"{name} (UTC)").check()
    find.get_by_label("Meeting title").fill("Three-way sync")
    find.get_by_label("Duration (minutes)").fill("60")
    find.get_by_label("From").fill(at(8).strftime("%Y-%m-%dT%H:%M"))
    find.get_by_label("Until").fill(at(18).strftime("%Y-%m-%dT%H:%M"))
    find.get_by_label("Holds last").select_option(label="1 hour")
    find.get_by_role("button", name="Find a time").click()
    slots = find.locator("ol.slots > li")
    expect(slots.first).to_be_visible()
    first = slots.first
    start = datetime.fromisoformat(str(first.get_attribute("data-start")))
    end = datetime.fromisoformat(str(first.get_attribute("data-end")))
    assert (start, end) == (at(12, 30), at(13, 30))  # after Cy's 11:00–12:30, before Bob's 14:00
    with ui.api() as api:
        expected = api.post(
            "/v1/availability/find-meeting-time",
            json={
                "agent_ids": [people[n]["id"] for n in ("Ada", "Bob", "Cy")],
                "start": at(8).isoformat(),
                "end": at(18).isoformat(),
                "duration_minutes": 60,
            },
        ).json()["slots"]
    assert [s.get_attribute("data-start") for s in slots.all()] == [s["start"] for s in expected]

    first.get_by_role("button", name="Hold this slot").click()
    expect(first.get_by_role("status")).to_contain_text("Held on Ada's Main, Bob's Main, Cy's Main until")
    expect(first.get_by_role("button", name="Held")).to_be_disabled()
    with ui.api() as api:
        for agent in people.values():
            holds = [e for e in events_of(api, agent["id"], start, end) if e["status"] == "hold"]
            assert [(h["title"], h["start_time"]) for h in holds] == [("Hold: Three-way sync", expected[0]["start"])]
            expires = datetime.fromisoformat(holds[0]["hold_expires_at"])
            assert timedelta(minutes=50) < expires - datetime.now(UTC) <= timedelta(minutes=61)
    shot(ui, page, "find-a-time")

    first.get_by_role("button", name="Book it").click()
    expect(first.get_by_role("status")).to_contain_text("Booked “Three-way sync” on the calendars of Ada, Bob, Cy")
    with ui.api() as api:
        for agent in people.values():
            found = events_of(api, agent["id"], start, end)
            # the confirmed meeting on every agent's calendar, at the found time; the holds are gone
            assert [(e["title"], e["status"], e["start_time"], e["end_time"]) for e in found] == [
                ("Three-way sync", "confirmed", expected[0]["start"], expected[0]["end"])
            ]
        proposals = api.get("/v1/proposals").json()["data"]
        # one agent only
        assert [(p["title"], p["status"], len(p["participants"])) for p in proposals] == [("Three-way sync", "resolved", 3)]


def test_a_proposal_created_and_answered(ui: Ui) -> None:
    with ui.api() as api:
        ada, _ = make_agent(api, "Ada")
        bob, _ = make_agent(api, "Bob")
    page = org_page(ui)
    open_page(page, ui, "proposals", "Proposals")
    expect(page.get_by_text("No proposals yet — propose a meeting below")).to_be_visible()
    form = page.locator("form#new-proposal")
    form.get_by_label("Title").fill("Design review")
    form.get_by_label("Organizer").select_option(label="Ada")
    form.get_by_label("Ada", exact=True).check()
    form.get_by_label("Bob", exact=True).check()
    first = tomorrow_utc() + timedelta(hours=10)
    second = first + timedelta(days=1, hours=4)
    slot1 = form.locator("fieldset.slot-row").nth(0)
    slot1.get_by_label("Start").fill(first.strftime("%Y-%m-%dT%H:%M"))
    slot1.get_by_label("End").fill(first.strftime("%Y-%m-%dT%H:%M"))
    form.get_by_role("button", name="Add another slot").click()
    slot2 = form.locator("fieldset.slot-row").nth(1)
    slot2.get_by_label("Start").fill(second.strftime("%Y-%m-%dT%H:%M"))
    slot2.get_by_label("End").fill((second + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M"))
    form.get_by_role("button", name="Propose").click()
    # the API names candidate_slots[0].end: its message shows beside that very input
    bad_end = slot1.get_by_label("End")
    expect(error_of(page, bad_end)).to_have_text("candidate_slots[0].end must be after candidate_slots[0].start")
    expect(bad_end).to_have_attribute("aria-invalid", "true")
    bad_end.fill((first + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M"))
    form.get_by_role("button", name="Propose").click()
    card = page.locator("article.proposal", has=page.get_by_role("heading", name="Design review"))
    expect(card).to_contain_text("waiting for Bob")
    expect(card.locator("header .badge")).to_have_text("open")
    with ui.api() as api:
        (prop,) = api.get("/v1/proposals").json()["data"]
        assert prop["organizer_agent_id"] == ada["id"] and prop["participant_agent_ids"] == [ada["id"], bob["id"]]
        assert [(s["start"], s["end"]) for s in prop["candidate_slots"]] == [
            (f"{first:%Y-%m-%dT%H:%M:%S}Z", f"{first + timedelta(minutes=30):%Y-%m-%dT%H:%M:%S}Z"),
            (f"{second:%Y-%m-%dT%H:%M:%S}Z", f"{second + timedelta(minutes=30):%Y-%m-%dT%H:%M:%S}Z"),
        ]
        assert len(prop["holds"]) == 4  # both slots held for both

    # Bob declines the first slot, then accepts the second: everyone agrees on slot 2
    answer = card.locator("form.respond")
    expect(answer.get_by_label("Answer as")).to_have_value(bob["id"])
    answer.get_by_label("Answer", exact=True).select_option("decline")
    answer.get_by_label("Slot", exact=True).select_option(index=1)
    answer.get_by_role("button", name="Send answer").click()
    expect(card.locator("table.parts-table tbody tr", has_text="Bob")).to_contain_text("decline")
    answer = card.locator("form.respond")
    expect(answer.get_by_label("Answer as")).to_have_value(bob["id"])
    answer.get_by_label("Answer", exact=True).select_option("accept")
    answer.get_by_label("Slot", exact=True).select_option(index=2)
    answer.get_by_role("button", name="Send answer").click()
    expect(card.locator("header .badge")).to_have_text("resolved")
    expect(card.locator(".resolution")).to_contain_text("Booked:")
    expect(card.locator(".resolution")).to_contain_text("(slot 2), on the calendars of Ada, Bob")
    with ui.api() as api:
        prop = api.get(f"/v1/proposals/{prop['id']}").json()
        assert (prop["status"], prop["resolved_slot_index"]) == ("resolved", 1)
        for agent in (ada, bob):
            got = events_of(api, agent["id"], first, second + timedelta(hours=1))
            assert [(e["title"], e["status"], e["start_time"]) for e in got] == [
                ("Design review", "confirmed", f"{second:%Y-%m-%dT%H:%M:%S}Z")
            ]
    shot(ui, page, "proposals")

    # another one, cancelled by the org after a confirmation; forcing a slot books it for all
    with ui.api() as api:
        later = second + timedelta(days=1)
        for title in ("Retro", "Kick-off"):
            r = api.post(
                "/v1/proposals",
                json={
                    "title": title,
                    "organizer_agent_id": ada["id"],
                    "participant_agent_ids": [ada["id"], bob["id"]],
                    "candidate_slots": [{"start": later.isoformat(), "end": (later + timedelta(hours=1)).isoformat()}],
                    "duration_minutes": 60,
                },
            )
            assert r.status_code == 201, r.text
            later += timedelta(days=1)
    page.get_by_label("Status").select_option("open")
    retro = page.locator("article.proposal", has=page.get_by_role("heading", name="Retro"))
    expect(page.locator("article.proposal")).to_have_count(2)
    retro.get_by_role("button", name="Cancel proposal Retro").click()
    page.get_by_role("dialog").get_by_role("button", name="Cancel proposal").click()
    expect(page.locator("article.proposal")).to_have_count(1)  # only open ones are listed
    kickoff = page.locator("article.proposal", has=page.get_by_role("heading", name="Kick-off"))
    # Bob proposes another time: a counter slot, which he accepts
    answer = kickoff.locator("form.respond")
    answer.get_by_label("Answer as").select_option(label="Bob")
    answer.get_by_label("Answer", exact=True).select_option("counter")
    counter_start = later + timedelta(hours=2)  # `later` moved on a day past Kick-off's slot
    answer.get_by_label("Counter slot start").fill(counter_start.strftime("%Y-%m-%dT%H:%M"))
    answer.get_by_label("Counter slot end").fill(counter_start.strftime("%Y-%m-%dT%H:%M"))
    answer.get_by_role("button", name="Send answer").click()
    bad = kickoff.locator("form.respond").get_by_label("Counter slot end")
    expect(error_of(page, bad)).to_have_text("counter_slot.end must be after counter_slot.start")
    bad.fill((counter_start + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"))
    kickoff.get_by_role("button", name="Send answer").click()
    expect(kickoff.locator("table.slots-table tbody tr")).to_have_count(2)
    expect(kickoff.locator("table.slots-table tbody tr").nth(1)).to_contain_text("counter from Bob")
    kickoff.get_by_role("button", name="Book slot 1 of Kick-off now").click()
    page.get_by_role("dialog").get_by_role("button", name="Book this slot").click()
    expect(page.locator("article.proposal")).to_have_count(0)
    expect(page.get_by_text("No proposals match these filters.")).to_be_visible()
    with ui.api() as api:
        statuses = {p["title"]: p["status"] for p in api.get("/v1/proposals").json()["data"]}
        # the first slot's end, the counter's end
        assert statuses == {"Design review": "resolved", "Retro": "cancelled", "Kick-off": "resolved"}


def test_an_agent_key_sees_only_its_agent(ui: Ui) -> None:
    with ui.api() as api:
        ada, ada_cal = make_agent(api, "Ada", calendar="Ada's calendar")
        bob, _ = make_agent(api, "Bob", calendar="Bob's calendar")
        key = api.post("/v1/keys", json={"name": "ada ui", "agent_id": ada["id"]}).json()["secret"]
    page = ui.page(timezone_id="UTC", locale="en-US")
    page.goto(f"{ui.base_url}/login")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_selector("#nav a", state="attached")

    open_page(page, ui, "agents", "Agents")
    rows = page.locator("table.agents tbody tr")
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text("Ada")
    expect(page.get_by_text("Bob")).to_have_count(0)
    expect(page.get_by_role("button", name="Create agent")).to_have_count(0)
    rows.get_by_role("link", name="Ada").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Ada")
    expect(page.get_by_role("button", name="Delete agent")).to_have_count(0)

    open_page(page, ui, "calendars", "Calendars & feeds")
    expect(page.get_by_role("heading", name="Ada's calendar")).to_be_visible()
    expect(page.get_by_text("Bob's calendar")).to_have_count(0)
    expect(page.get_by_role("img", name="QR code for the feed URL of Ada's calendar")).to_be_visible()
    expect(page.locator("form#new-calendar").get_by_label("Owner")).to_have_count(0)

    # an agent key finds a time with another agent by its id, and books it (as the organizer)
    open_page(page, ui, "availability", "Availability")
    find = page.locator("section", has=page.get_by_role("heading", name="Find a time"))
    expect(find.get_by_label("Ada (UTC)")).to_be_checked()
    expect(find.get_by_label("Ada (UTC)")).to_be_disabled()
    expect(find.get_by_label("Bob (UTC)")).to_have_count(0)
    day = tomorrow_utc()
    find.get_by_label("Other agents' IDs").fill(bob["id"])
    find.get_by_label("From").fill((day + timedelta(hours=9)).strftime("%Y-%m-%dT%H:%M"))
    find.get_by_label("Until").fill((day + timedelta(hours=12)).strftime("%Y-%m-%dT%H:%M"))
    find.get_by_role("button", name="Find a time").click()
    first = find.locator("ol.slots > li").first
    first.get_by_role("button", name="Book it").click()
    expect(first.get_by_role("status")).to_contain_text("Booked “Meeting” on the calendars of Ada")
    with ui.api() as api:
        for agent in (ada, bob):
            got = events_of(api, agent["id"], day + timedelta(hours=9), day + timedelta(hours=10))
            assert [(e["title"], e["start_time"]) for e in got] == [("Meeting", f"{day:%Y-%m-%d}T09:00:00Z")]

    open_page(page, ui, "proposals", "Proposals")
    form = page.locator("form#new-proposal")
    expect(form.get_by_label("Organizer").locator("option")).to_have_count(1)
    expect(page.locator("article.proposal")).to_have_count(1)  # the one it booked and takes part in
    assert ada_cal is not None


def test_every_page_fits_a_phone(ui: Ui) -> None:
    with ui.api() as api:
        ada, cal = make_agent(api, "Ada Lovelace-Byron", "Europe/Berlin", calendar="A calendar with a rather long name")
        bob, _ = make_agent(api, "Bob", "America/Los_Angeles")
        assert cal is not None
        start = tomorrow_utc() + timedelta(hours=9)
        busy(api, cal, "Long planning", start, start + timedelta(hours=2))
        r = api.post(
            "/v1/proposals",
            json={
                "title": "Phone check",
                "organizer_agent_id": ada["id"],
                "participant_agent_ids": [ada["id"], bob["id"]],
                "candidate_slots": [{"start": start.isoformat(), "end": (start + timedelta(hours=1)).isoformat()}],
                "duration_minutes": 30,
            },
        )
        assert r.status_code == 201, r.text
    page = org_page(ui, PHONE)
    for route, heading in [
        ("agents", "Agents"),
        (f"agents/{ada['id']}", "Ada Lovelace-Byron"),
        ("calendars", "Calendars & feeds"),
        ("availability", "Availability"),
        ("proposals", "Proposals"),
    ]:
        open_page(page, ui, route, heading)
        page.wait_for_load_state("networkidle")
        no_horizontal_scroll(page)
        if route == "calendars":
            # nothing of the agent page that loaded before is left over
            expect(page.get_by_role("button", name="Delete agent")).to_have_count(0)
            qr = page.get_by_role("img", name="QR code for the feed URL of A calendar with a rather long name")
            expect(qr).to_be_visible()
            shot(ui, page, "calendars-phone")
    find = page.locator("section", has=page.get_by_role("heading", name="Find a time"))
    open_page(page, ui, "availability", "Availability")
    find.get_by_label("Ada Lovelace-Byron (Europe/Berlin)").check()
    find.get_by_label("Bob (America/Los_Angeles)").check()
    find.get_by_role("button", name="Find a time").click()
    expect(find.locator("ol.slots > li").first).to_be_visible()
    no_horizontal_scroll(page)
    # keyboard: the first slot's buttons are reachable with Tab and named
    find.locator("ol.slots > li").first.get_by_role("button", name="Hold this slot").focus()
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.textContent") == "Book it"

"""The typed service boundary, continued: events, event lists, webhooks, iCal subscriptions and
feed rotation answer with the msgspec structs of chronary.schemas (lists as `Page[Struct]`),
called inside real transactions; the dict forms their webhook payloads carry are unchanged."""

from __future__ import annotations

from typing import Any

import msgspec

from chronary.crypto import SecretBox
from chronary.schemas.agents import AgentCreate
from chronary.schemas.calendars import Calendar, CalendarCreate
from chronary.schemas.events import Event, EventAttendee, EventCreate, EventUpdate
from chronary.schemas.subscriptions import IcalSubscription
from chronary.schemas.webhooks import Delivery, DeliveryDetail, Webhook, WebhookCreate, WebhookUpdate, WebhookWithSecret
from chronary.services import agents, calendars, event_lists, events, feeds, subscriptions, webhooks
from chronary.services.context import Page
from chronary.store import calendars as cal_store
from chronary.store import events as event_store
from tests.api.test_typed_services import STAMP, org_ctx, payloads, read, tapi, write

__all__ = ["tapi"]  # the fixture, shared with test_typed_services


def _calendar(api: Any) -> tuple[Any, Calendar]:
    ctx = org_ctx(api)
    agent = write(api, lambda tx: agents.create(tx, ctx.principal, AgentCreate(name="Ada")))
    cal = write(api, lambda tx: calendars.create(tx, ctx, agent.id, CalendarCreate(name="Work", timezone="Europe/Berlin")))
    return agent, cal


def test_events_answer_event_structs_and_payloads_stay_dicts(tapi: Any) -> None:
    ctx = org_ctx(tapi)
    agent, cal = _calendar(tapi)
    body = EventCreate(
        title="Standup",
        start_time="2026-01-06T09:00:00Z",
        end_time="2026-01-06T09:30:00Z",
        metadata={"k": 1},
    )
    made = write(tapi, lambda tx: events.create(tx, ctx, cal.id, body))
    assert type(made) is Event and made.agent_id == agent.id and made.start_time == "2026-01-06T09:00:00Z"
    assert made.created_at == STAMP and made.transparency == "opaque" and made.attendees == []
    assert read(tapi, lambda tx: events.get(tx, ctx, cal.id, made.id)) == made

    # the struct and the dict form carry the same values; the payload is the dict, key order kept
    row = read(tapi, lambda tx: event_store.get(tx.conn, made.id))
    calendar_row = read(tapi, lambda tx: cal_store.get(tx.conn, cal.id))
    shown = events.present(row, calendar_row)
    assert isinstance(shown, dict) and shown == msgspec.to_builtins(made)
    assert events.to_struct(row, calendar_row) == made
    (created,) = payloads(tapi, "event.created")
    assert created["data"]["object"] == shown and list(created["data"]["object"]) == list(shown)

    moved = write(tapi, lambda tx: events.update(tx, ctx, cal.id, made.id, EventUpdate(title="Daily")))
    assert type(moved) is Event and moved.title == "Daily" and moved.sequence == 1
    (updated,) = payloads(tapi, "event.updated")
    assert updated["data"]["object"] == msgspec.to_builtins(moved)
    assert updated["data"]["previous"]["title"] == "Standup" and updated["data"]["previous"]["sequence"] == 0

    page = read(tapi, lambda tx: event_lists.list_for_calendar(tx, ctx, cal.id, None, None, None, None, 10, 0))
    assert type(page) is Page and page.items == [moved] and page.total == 1
    page = read(tapi, lambda tx: event_lists.list_for_agent(tx, ctx, agent.id, None, None, None, None, 10, 0))
    assert page.items == [moved]

    cancelled = write(tapi, lambda tx: events.cancel(tx, ctx, cal.id, made.id))
    assert type(cancelled) is Event and cancelled.status == "cancelled"


def test_event_attendees_and_holds(tapi: Any) -> None:
    ctx = org_ctx(tapi)
    _, cal = _calendar(tapi)
    body = msgspec.convert(
        {
            "title": "Hold",
            "start_time": "2026-01-06T10:00:00Z",
            "end_time": "2026-01-06T11:00:00Z",
            "status": "hold",
            "attendees": [{"email": "bo@example.com", "name": "Bo"}],
        },
        EventCreate,
    )
    hold = write(tapi, lambda tx: events.create(tx, ctx, cal.id, body))
    assert hold.status == "hold" and hold.hold_expires_at is not None
    assert hold.attendees == [EventAttendee(email="bo@example.com", name="Bo", agent_id=None)]
    confirmed = write(tapi, lambda tx: events.confirm(tx, ctx, cal.id, hold.id))
    assert type(confirmed) is Event and confirmed.status == "confirmed" and confirmed.hold_expires_at is None
    (payload,) = payloads(tapi, "event.hold_confirmed")
    assert payload["data"]["object"]["attendees"] == [{"email": "bo@example.com", "name": "Bo", "agent_id": None}]


def test_webhooks_answer_webhook_and_delivery_structs(tapi: Any) -> None:
    p = org_ctx(tapi).principal
    box: SecretBox = tapi.runtime.secrets
    made = write(tapi, lambda tx: webhooks.create(tx, p, WebhookCreate(url="https://example.com/h", events=["*"]), box))
    assert type(made) is WebhookWithSecret and made.secret.startswith("whsec_") and made.status == "active"
    plain = read(tapi, lambda tx: webhooks.get(tx, p, made.id))
    assert type(plain) is Webhook and msgspec.to_builtins(plain) == {
        k: v for k, v in msgspec.to_builtins(made).items() if k != "secret"
    }
    page = read(tapi, lambda tx: webhooks.list_(tx, p, None, 10, 0))
    assert [w for w in page.items if w.id == made.id] == [plain] and len(page.items) == 2  # and the fixture's endpoint
    paused = write(tapi, lambda tx: webhooks.update(tx, p, made.id, WebhookUpdate(status="paused")))
    assert type(paused) is Webhook and paused.status == "paused"
    rotated = write(tapi, lambda tx: webhooks.rotate_secret(tx, p, made.id, box))
    assert type(rotated) is WebhookWithSecret and rotated.secret != made.secret

    sent = write(tapi, lambda tx: webhooks.send_test(tx, p, made.id))
    assert type(sent) is Delivery and sent.webhook_id == made.id and sent.event_type == "webhook.test"
    detail = read(tapi, lambda tx: webhooks.get_delivery(tx, p, sent.id))
    assert type(detail) is DeliveryDetail and detail.attempt_log == []
    assert detail.payload["data"]["object"] == msgspec.to_builtins(paused) | {"updated_at": rotated.updated_at}
    keys = ["id", "url", "events", "status", "disabled_reason", "description", "agent_id", "created_at", "updated_at"]
    assert list(detail.payload["data"]["object"]) == keys
    deliveries = read(tapi, lambda tx: webhooks.list_deliveries(tx, p, made.id, None, 10, 0))
    assert deliveries.items == [sent]
    again = write(tapi, lambda tx: webhooks.redeliver(tx, p, sent.id))
    assert type(again) is DeliveryDetail and again.id == sent.id


def test_subscriptions_answer_structs_and_payloads_stay_dicts(tapi: Any) -> None:
    ctx = org_ctx(tapi)
    agent, cal = _calendar(tapi)
    box: SecretBox = tapi.runtime.secrets
    fields = {"calendar_id": cal.id, "url": "webcal://example.com/a.ics", "username": "u", "password": "p"}
    made = write(tapi, lambda tx: subscriptions.create(tx, ctx, box, agent.id, fields))
    assert type(made) is IcalSubscription and made.url == "http://example.com/a.ics" and made.has_credentials
    assert read(tapi, lambda tx: subscriptions.get(tx, ctx, made.id)) == made
    page = read(tapi, lambda tx: subscriptions.list_(tx, ctx, agent.id, 10, 0))
    assert page.items == [made]
    changed = write(tapi, lambda tx: subscriptions.update(tx, ctx, box, made.id, {"label": "Team"}))
    assert type(changed) is IcalSubscription and changed.label == "Team"
    assert type(write(tapi, lambda tx: subscriptions.request_sync(tx, ctx, made.id))) is IcalSubscription

    write(tapi, lambda tx: subscriptions.apply_failure(tx, made.id, "boom"))
    (failed,) = payloads(tapi, "ical_subscription.failed")
    obj = failed["data"]["object"]
    assert list(obj)[-1] == "has_credentials" and obj["last_error"] == "boom" and obj["label"] == "Team"


def test_feed_rotation_answers_a_calendar_struct(tapi: Any) -> None:
    ctx = org_ctx(tapi)
    _, cal = _calendar(tapi)
    rotated = write(tapi, lambda tx: feeds.rotate(tx, ctx, cal.id))
    assert type(rotated) is Calendar and rotated.id == cal.id and rotated.ical_url != cal.ical_url
    (payload,) = payloads(tapi, "calendar.updated")
    assert list(payload["data"]["object"])[-1] == "ical_url"
    assert payload["data"]["object"]["ical_url"] == rotated.ical_url
    assert payload["data"]["previous"]["ical_url"] == cal.ical_url

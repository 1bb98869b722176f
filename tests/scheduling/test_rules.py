"""Availability rules: set, read, replace, clear; every validation error names its field."""

from __future__ import annotations

from typing import Any

import pytest

from tests.scheduling.conftest import err

NINE_TO_FIVE = {"start": "09:00", "end": "17:00"}


def rules_url(agent_id: str) -> str:
    return f"/v1/agents/{agent_id}/availability-rules"


def test_put_get_replace_delete(sapi: Any) -> None:
    a = sapi.agent("A", timezone="Europe/Berlin")
    assert err(sapi.get(rules_url(a["id"])), 404)["type"] == "not_found"
    r = sapi.put(
        rules_url(a["id"]),
        json={
            "working_hours": {"mon": [{"start": "13:00", "end": "17:00"}, {"start": "09:00", "end": "12:00"}]},
            "buffer_before_minutes": 5,
            "buffer_after_minutes": 10,
            "minimum_notice_minutes": 60,
            "overrides": [{"date": "2026-04-03", "hours": []}, {"date": "2026-04-04", "hours": [NINE_TO_FIVE]}],
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"].startswith("rul_")
    assert body["timezone"] == "Europe/Berlin" and body["timezone_from_agent"] is True
    # ranges come back sorted by start
    assert body["working_hours"]["mon"] == [{"start": "09:00", "end": "12:00"}, {"start": "13:00", "end": "17:00"}]
    assert body["working_hours"]["sun"] == []
    assert body["overrides"][0] == {"date": "2026-04-03", "hours": []}
    assert sapi.get(rules_url(a["id"])).json() == body

    r2 = sapi.put(rules_url(a["id"]), json={"working_hours": {"fri": [NINE_TO_FIVE]}, "timezone": "Asia/Tokyo"})
    assert r2.status_code == 200
    assert r2.json()["id"] == body["id"] and r2.json()["created_at"] == body["created_at"]
    assert r2.json()["timezone"] == "Asia/Tokyo" and r2.json()["timezone_from_agent"] is False
    assert r2.json()["working_hours"]["mon"] == [] and r2.json()["buffer_before_minutes"] == 0

    assert sapi.delete(rules_url(a["id"])).status_code == 204
    assert sapi.get(rules_url(a["id"])).status_code == 404
    assert sapi.delete(rules_url(a["id"])).status_code == 404


def test_rules_follow_agent_timezone_until_set(sapi: Any) -> None:
    a = sapi.agent("A", timezone="Europe/Berlin")
    sapi.put(rules_url(a["id"]), json={"working_hours": {"mon": [NINE_TO_FIVE]}})
    assert sapi.patch(f"/v1/agents/{a['id']}", json={"timezone": "America/New_York"}).status_code == 200
    assert sapi.get(rules_url(a["id"])).json()["timezone"] == "America/New_York"


def test_agent_keys_see_only_their_own_rules(sapi: Any) -> None:
    a, b = sapi.agent("A"), sapi.agent("B")
    as_a = sapi.as_key(sapi.agent_key(a["id"]))
    assert as_a.put(rules_url(a["id"]), json={"working_hours": {"mon": [NINE_TO_FIVE]}}).status_code == 200
    assert err(as_a.put(rules_url(b["id"]), json={"working_hours": {"mon": [NINE_TO_FIVE]}}), 404)
    assert err(as_a.get(rules_url(b["id"])), 404)
    assert err(sapi.put(rules_url("agt_nope"), json={"working_hours": {"mon": [NINE_TO_FIVE]}}), 404)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"working_hours": {"mon": [{"start": "9:00", "end": "17:00"}]}}, "working_hours.mon[0].start"),
        ({"working_hours": {"mon": [{"start": "09:00", "end": "25:00"}]}}, "working_hours.mon[0].end"),
        ({"working_hours": {"mon": [{"start": "24:00", "end": "24:00"}]}}, "working_hours.mon[0].start"),
        ({"working_hours": {"tue": [{"start": "09:60", "end": "10:00"}]}}, "working_hours.tue[0].start"),
        ({"working_hours": {"wed": [{"start": "17:00", "end": "09:00"}]}}, "working_hours.wed[0].end"),
        ({"working_hours": {"thu": [{"start": "10:00", "end": "10:00"}]}}, "working_hours.thu[0].end"),
        ({"working_hours": {"mon": [NINE_TO_FIVE, {"start": "16:00", "end": "18:00"}]}}, "working_hours.mon[1].start"),
        (
            {"working_hours": {"fri": [{"start": "12:00", "end": "14:00"}, {"start": "08:00", "end": "12:30"}]}},
            "working_hours.fri[1].start",
        ),
        ({"working_hours": {}}, "working_hours"),
        ({"working_hours": {"mon": []}, "overrides": [{"date": "2026-04-01", "hours": []}]}, "working_hours"),
        ({}, "working_hours"),
        ({"working_hours": {"mon": [NINE_TO_FIVE]}, "timezone": "Mars/Olympus"}, "timezone"),
        ({"working_hours": {"mon": [NINE_TO_FIVE]}, "buffer_before_minutes": -1}, "buffer_before_minutes"),
        ({"working_hours": {"mon": [NINE_TO_FIVE]}, "buffer_after_minutes": 99999}, "buffer_after_minutes"),
        ({"working_hours": {"mon": [NINE_TO_FIVE]}, "minimum_notice_minutes": -5}, "minimum_notice_minutes"),
        (
            {"working_hours": {"mon": [NINE_TO_FIVE]}, "overrides": [{"date": "2026-02-30", "hours": []}]},
            "overrides[0].date",
        ),
        (
            {
                "working_hours": {"mon": [NINE_TO_FIVE]},
                "overrides": [{"date": "2026-04-01", "hours": []}, {"date": "2026-04-01", "hours": [NINE_TO_FIVE]}],
            },
            "overrides[1].date",
        ),
        (
            {
                "working_hours": {"mon": [NINE_TO_FIVE]},
                "overrides": [{"date": "2026-04-01", "hours": [NINE_TO_FIVE, {"start": "08:00", "end": "09:30"}]}],
            },
            "overrides[0].hours[1].start",
        ),
        ({"working_hours": {"mon": [NINE_TO_FIVE]}, "overrides": [{"date": "2026-04-01"}]}, "overrides[0].hours"),
        ({"working_hours": {"mon": [NINE_TO_FIVE], "funday": []}}, "working_hours.funday"),
        ({"working_hours": {"mon": [NINE_TO_FIVE]}, "surprise": 1}, "surprise"),
    ],
)
def test_rule_validation_names_the_field(vapi: Any, body: dict[str, Any], param: str) -> None:
    a = vapi.agent("A")
    e = err(vapi.put(rules_url(a["id"]), json=body))
    assert e["type"] == "validation_error"
    assert e["param"] == param, e


def test_override_with_hours_alone_is_enough_and_end_of_day_is_2400(sapi: Any) -> None:
    a = sapi.agent("A")
    r = sapi.put(
        rules_url(a["id"]),
        json={
            "working_hours": {"sat": [{"start": "22:00", "end": "24:00"}], "sun": [{"start": "00:00", "end": "02:00"}]},
        },
    )
    assert r.status_code == 200, r.text
    only_override = {"working_hours": {}, "overrides": [{"date": "2026-04-01", "hours": [NINE_TO_FIVE]}]}
    r = sapi.put(rules_url(a["id"]), json=only_override)
    assert r.status_code == 200, r.text

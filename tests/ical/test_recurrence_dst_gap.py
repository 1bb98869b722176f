"""A series whose wall-clock time falls in the spring-forward gap on one day still yields sane occurrences."""

from __future__ import annotations

from datetime import UTC, datetime

from chronary.clock import ManualClock


def test_occurrence_in_the_spring_gap_ends_after_it_starts_and_can_be_deleted(make_api) -> None:
    api = make_api(clock=ManualClock(datetime(2028, 1, 1, tzinfo=UTC)))
    cal = api.calendar(timezone="Europe/Berlin")
    # Sundays 02:30–03:00 Berlin; on 2028-03-26 02:30 does not exist (clocks jump 02:00 → 03:00)
    series = api.event(
        cal["id"], "2028-03-19T02:30:00+01:00", "2028-03-19T03:00:00+01:00", recurrence=["RRULE:FREQ=WEEKLY;COUNT=3"]
    )
    url = f"/v1/calendars/{cal['id']}/events"
    r = api.get(url, params={"start_after": "2028-03-01T00:00:00Z", "start_before": "2028-04-10T00:00:00Z"})
    assert r.status_code == 200, r.text
    items = r.json()["data"]
    assert len(items) == 3
    for item in items:
        assert item["end_time"] > item["start_time"], item
    gap = items[1]
    # RFC 5545 3.3.5: a non-existent local time means the offset before the gap: 02:30+01:00
    assert (gap["start_time"], gap["end_time"]) == ("2028-03-26T01:30:00Z", "2028-03-26T02:00:00Z")
    assert items[2]["start_time"] == "2028-04-02T00:30:00Z"  # 02:30 CEST again

    occurrence = f"{url}/{series['id']}_20280326T013000Z"
    assert api.get(occurrence).status_code == 200
    assert api.delete(occurrence).status_code == 204
    after = api.get(url, params={"start_after": "2028-03-01T00:00:00Z", "start_before": "2028-04-10T00:00:00Z"})
    assert [e["start_time"] for e in after.json()["data"]] == ["2028-03-19T01:30:00Z", "2028-04-02T00:30:00Z"]

"""Working hours and recurring events across the 2026 DST changes in Berlin and New York.

Europe/Berlin: CET→CEST on Sun 29 Mar, CEST→CET on Sun 25 Oct.
America/New_York: EST→EDT on Sun 8 Mar, EDT→EST on Sun 1 Nov.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from chronary.clock import ManualClock

BERLIN, NEW_YORK = ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York")
EVERY_DAY = {d: [{"start": "09:00", "end": "17:00"}] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def local(value: str, tz: ZoneInfo) -> str:
    return parse(value).astimezone(tz).strftime("%Y-%m-%d %H:%M")


def free(api: Any, agent_id: str, start: str, end: str) -> list[dict[str, str]]:
    r = api.get(f"/v1/agents/{agent_id}/availability", params={"start": start, "end": end})
    assert r.status_code == 200, r.text
    return r.json()["free"]


@pytest.mark.parametrize(
    ("tz", "start", "end", "utc_hours"),
    [
        # the week of the Berlin spring change: 08-16Z before, 07-15Z from Sunday on
        (BERLIN, "2026-03-26", "2026-04-01", ["08-16", "08-16", "08-16", "07-15", "07-15", "07-15"]),
        # Berlin autumn change: 07-15Z before, 08-16Z from Sunday on
        (BERLIN, "2026-10-22", "2026-10-28", ["07-15", "07-15", "07-15", "08-16", "08-16", "08-16"]),
        # New York spring change: 14-22Z before, 13-21Z from Sunday on
        (NEW_YORK, "2026-03-05", "2026-03-11", ["14-22", "14-22", "14-22", "13-21", "13-21", "13-21"]),
        # New York autumn change: 13-21Z before, 14-22Z from Sunday on
        (NEW_YORK, "2026-10-29", "2026-11-04", ["13-21", "13-21", "13-21", "14-22", "14-22", "14-22"]),
    ],
)
def test_working_hours_keep_local_time_across_dst(
    make_api: Any, tz: ZoneInfo, start: str, end: str, utc_hours: list[str]
) -> None:
    api = make_api(clock=ManualClock(datetime(2026, 1, 1, tzinfo=ZoneInfo("UTC"))))
    a = api.agent("A", timezone=tz.key)
    assert api.put(f"/v1/agents/{a['id']}/availability-rules", json={"working_hours": EVERY_DAY}).status_code == 200
    got = free(api, a["id"], f"{start}T00:00:00Z", f"{end}T00:00:00Z")
    assert [f"{parse(f['start']).hour:02d}-{parse(f['end']).hour:02d}" for f in got] == utc_hours
    for f in got:
        assert local(f["start"], tz)[11:] == "09:00" and local(f["end"], tz)[11:] == "17:00"


def test_ranges_spanning_the_missing_and_the_repeated_hour(make_api: Any) -> None:
    api = make_api(clock=ManualClock(datetime(2026, 1, 1, tzinfo=ZoneInfo("UTC"))))
    a = api.agent("A", timezone="Europe/Berlin")
    api.put(
        f"/v1/agents/{a['id']}/availability-rules", json={"working_hours": {"sun": [{"start": "01:00", "end": "04:00"}]}}
    )
    spring = free(api, a["id"], "2026-03-28T00:00:00Z", "2026-03-30T00:00:00Z")
    # 01:00 CET = 00:00Z, 04:00 CEST = 02:00Z: the night is an hour short
    assert [(f["start"], f["end"]) for f in spring] == [("2026-03-29T00:00:00Z", "2026-03-29T02:00:00Z")]
    autumn = free(api, a["id"], "2026-10-24T00:00:00Z", "2026-10-26T00:00:00Z")
    # 01:00 CEST = 23:00Z the day before, 04:00 CET = 03:00Z: an hour longer
    assert [(f["start"], f["end"]) for f in autumn] == [("2026-10-24T23:00:00Z", "2026-10-25T03:00:00Z")]


def test_weekly_event_stays_at_local_time_across_dst(make_api: Any) -> None:
    api = make_api(clock=ManualClock(datetime(2026, 1, 1, tzinfo=ZoneInfo("UTC"))))
    a = api.agent("A", timezone="America/New_York")
    cal = api.calendar(a["id"], timezone="America/New_York")
    api.event(
        cal["id"],
        "2026-02-23T10:00:00-05:00",
        "2026-02-23T11:00:00-05:00",
        recurrence=["RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=4"],
    )
    r = api.get(
        f"/v1/agents/{a['id']}/availability", params={"start": "2026-02-20T00:00:00Z", "end": "2026-03-20T00:00:00Z"}
    )
    busy = r.json()["busy"]
    assert [local(b["start"], NEW_YORK) for b in busy] == [
        "2026-02-23 10:00",
        "2026-03-02 10:00",
        "2026-03-09 10:00",
        "2026-03-16 10:00",
    ]
    assert [b["start"][11:16] for b in busy] == ["15:00", "15:00", "14:00", "14:00"]


def test_meeting_times_between_berlin_and_new_york_follow_both_changes(make_api: Any) -> None:
    api = make_api(clock=ManualClock(datetime(2026, 1, 1, tzinfo=ZoneInfo("UTC"))))
    weekdays = {d: [{"start": "09:00", "end": "17:00"}] for d in ("mon", "tue", "wed", "thu", "fri")}
    ber, ny = api.agent("Berlin", timezone="Europe/Berlin"), api.agent("NY", timezone="America/New_York")
    for agent in (ber, ny):
        api.put(f"/v1/agents/{agent['id']}/availability-rules", json={"working_hours": weekdays})
    r = api.post(
        "/v1/availability/find-meeting-time",
        json={
            "agent_ids": [ber["id"], ny["id"]],
            "start": "2026-03-02T00:00:00Z",
            "end": "2026-04-04T00:00:00Z",
            "duration_minutes": 60,
            "slot_step_minutes": 60,
            "limit": 100,
        },
    )
    assert r.status_code == 200, r.text
    slots = r.json()["slots"]
    per_day = Counter(s["start"][:10] for s in slots)
    # both on standard time: overlap 14-16Z (2 slots); NY on DST only: 13-16Z (3); both on DST: 13-15Z (2)
    assert per_day["2026-03-06"] == 2 and per_day["2026-03-09"] == 3 and per_day["2026-03-27"] == 3
    assert per_day["2026-03-30"] == 2 and per_day["2026-04-03"] == 2
    assert "2026-03-07" not in per_day and "2026-03-29" not in per_day  # weekends
    for s in slots:
        for tz in (BERLIN, NEW_YORK):
            assert local(s["start"], tz)[11:] >= "09:00" and local(s["end"], tz)[11:] <= "17:00"
    assert slots == sorted(slots, key=lambda s: s["start"])

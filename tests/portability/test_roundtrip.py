"""Export → import round trips: a whole org restores exactly (export again: the same bytes), the
restore is idempotent, and one calendar's .ics reads back to the same events."""

from __future__ import annotations

import zipfile
from pathlib import Path

from tests.cli.serveproc import KEY_RE
from tests.portability.conftest import FIXTURES, count_rows, events_of


def _org(api, chronary) -> dict[str, str]:
    """An org with a bit of everything the API can make, plus an imported Google calendar."""
    ada = api.agent("Ada", type="ai", email="ada@example.com", timezone="Europe/Berlin", metadata={"team": "alpha"})
    room = api.agent("Room 4", type="resource")
    work = api.calendar(ada["id"], name="Work", timezone="Europe/Berlin", default_reminders=[10], metadata={"color": "#aa0"})
    shared = api.calendar(None, name="Holidays", timezone="UTC")
    rooms = api.calendar(room["id"], name="Bookings", timezone="America/New_York", agent_status="working")
    series = api.event(
        work["id"],
        "2026-01-05T09:00:00+01:00",
        "2026-01-05T09:30:00+01:00",
        "Standup",
        recurrence=["RRULE:FREQ=WEEKLY;INTERVAL=1;BYDAY=MO,WE;COUNT=20"],
        attendees=[{"email": "bo@example.com", "name": "Bo", "agent_id": room["id"]}],
        metadata={"source": "planner"},
        reminders=[],
    )
    occurrences = [
        e for e in events_of(api, work["id"], start_after="2026-01-06T00:00:00Z", start_before="2026-01-20T00:00:00Z")
    ]
    moved, cancelled, deleted = occurrences[0], occurrences[1], occurrences[2]
    r = api.patch(
        f"/v1/calendars/{work['id']}/events/{moved['id']}",
        json={"title": "Standup (long)", "end_time": "2026-01-07T10:30:00+01:00"},
    )
    assert r.status_code == 200, r.text
    assert api.post(f"/v1/calendars/{work['id']}/events/{cancelled['id']}/cancel").status_code == 200
    assert api.delete(f"/v1/calendars/{work['id']}/events/{deleted['id']}").status_code == 204
    api.event(work["id"], "2026-02-01T10:00:00Z", "2026-02-01T11:00:00Z", "Priority call", priority=3, location="Zoom")
    api.event(rooms["id"], "2030-01-10T15:00:00Z", "2030-01-10T16:00:00Z", "Held slot", status="hold")
    api.event(shared["id"], "2026-12-24", "2026-12-27", "Christmas", all_day=True, transparency="transparent")
    gone = api.event(shared["id"], "2026-06-01T10:00:00Z", "2026-06-01T11:00:00Z", "Cancelled party")
    assert api.post(f"/v1/calendars/{shared['id']}/events/{gone['id']}/cancel").status_code == 200
    result = chronary("import", "ics", str(FIXTURES / "google.ics"), "--new-calendar", "Google", "--agent", ada["id"])
    assert result.exit_code == 0, result.output
    return {"work": work["id"], "series": series["id"], "shared": shared["id"], "rooms": rooms["id"]}


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_whole_org_export_import_export_is_identical(api, chronary, data_dir: Path, tmp_path: Path) -> None:
    ids = _org(api, chronary)
    first = tmp_path / "first"
    out = chronary("export", "org", "--out", str(first))
    assert out.exit_code == 0, out.output
    files = _files(first)
    assert set(files) >= {"manifest.json", f"calendars/{ids['work']}.ics", f"calendars/{ids['shared']}.ics"}
    assert b"BEGIN:VCALENDAR" in files[f"calendars/{ids['work']}.ics"]

    fresh = tmp_path / "fresh"
    restored = chronary("import", "org", str(first), data=fresh)
    assert restored.exit_code == 0, restored.output
    assert "agents: 2 created" in restored.stdout
    second = tmp_path / "second"
    assert chronary("export", "org", "--out", str(second), data=fresh).exit_code == 0
    again = _files(second)
    assert again.keys() == files.keys()
    for name in files:
        assert again[name] == files[name], name  # the same bytes: nothing lost, nothing invented

    # the same ids and values over the API of the restored data dir as of the original
    assert count_rows(fresh, "events") == count_rows(data_dir, "events")
    assert count_rows(fresh, "calendars") == count_rows(data_dir, "calendars")

    # importing the same export again changes nothing
    changes = count_rows(fresh, "changes")
    twice = chronary("import", "org", str(first), data=fresh)
    assert twice.exit_code == 0, twice.output
    assert "agents: 0 created, 0 updated, 2 unchanged" in twice.stdout
    assert " 0 created, 0 updated" in twice.stdout and "updated, 0 unchanged" not in twice.stdout.split("\n", 1)[1]
    assert count_rows(fresh, "changes") == changes


def test_restored_events_keep_what_ical_cannot_carry(api, chronary, make_api, tmp_path: Path) -> None:
    ids = _org(api, chronary)
    bundle = tmp_path / "org.zip"
    assert chronary("export", "org", "--out", str(bundle)).exit_code == 0
    with zipfile.ZipFile(bundle) as zf:
        assert "manifest.json" in zf.namelist()
    fresh = tmp_path / "fresh"
    restored = chronary("import", "org", str(bundle), data=fresh)
    assert restored.exit_code == 0, restored.output
    key = KEY_RE.search(restored.stderr)  # the import created that data dir: its first key is shown once
    assert key

    before = {e["id"]: e for e in events_of(api, ids["work"])}
    restored_api = make_api(data_dir=fresh).as_key(key.group(0))
    after = {e["id"]: e for e in events_of(restored_api, ids["work"])}
    assert after.keys() == before.keys()
    for event_id, event in before.items():
        ignore = {"ical_url"}
        assert {k: v for k, v in after[event_id].items() if k not in ignore} == event, event_id
    series = after[ids["series"]]
    assert series["metadata"] == {"source": "planner"} and series["reminders"] == []
    assert series["attendees"][0]["agent_id"] is not None
    [hold] = events_of(restored_api, ids["rooms"])
    [original] = events_of(api, ids["rooms"])
    assert (hold["status"], hold["hold_expires_at"]) == ("hold", original["hold_expires_at"])
    assert restored_api.get(f"/v1/calendars/{ids['work']}").json()["default_reminders"] == [10]


def test_calendar_ics_export_reads_back_as_the_same_events(api, chronary, tmp_path: Path) -> None:
    ids = _org(api, chronary)
    out = tmp_path / "work.ics"
    exported = chronary("export", "ics", "--calendar", ids["work"], "--out", str(out))
    assert exported.exit_code == 0, exported.output
    text = out.read_text()
    assert text.count("BEGIN:VEVENT") == 4  # series, its moved and cancelled occurrences, one single event
    assert "RECURRENCE-ID;TZID=Europe/Berlin:" in text and "STATUS:CANCELLED" in text and "EXDATE" in text

    copy = chronary("import", "ics", str(out), "--new-calendar", "Copy", "--timezone", "Europe/Berlin")
    assert copy.exit_code == 0, copy.output
    copy_id = copy.stdout.split(":")[0]
    window = {"start_after": "2026-01-01T00:00:00Z", "start_before": "2026-03-01T00:00:00Z"}
    keys = ("title", "start_time", "end_time", "status", "all_day", "location", "transparency")

    def shape(cal_id: str) -> list[tuple]:
        return sorted(tuple(e[k] for k in keys) for e in events_of(api, cal_id, **window))

    assert shape(copy_id) == shape(ids["work"])
    # and to stdout, byte for byte what --out wrote
    printed = chronary("export", "ics", "--calendar", ids["work"])
    assert printed.stdout_bytes == out.read_bytes()

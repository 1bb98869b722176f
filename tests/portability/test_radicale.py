"""`chronary import radicale DIR`: a storage folder written by a real Radicale (collections made
with MKCALENDAR and filled with PUTs, as CalDAV clients do) moves to Chronary in one command."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.portability.conftest import FIXTURES, Radicale, count_rows, events_of
from tests.sync.conftest import PASSWORD

MKCALENDAR = """<?xml version="1.0" encoding="utf-8"?>
<C:mkcalendar xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav" xmlns:I="http://apple.com/ns/ical/">
  <D:set><D:prop>
    <D:displayname>{name}</D:displayname>
    <C:calendar-description>{description}</C:calendar-description>
    <I:calendar-color>{color}</I:calendar-color>
    <C:supported-calendar-component-set><C:comp name="VEVENT"/><C:comp name="VTODO"/></C:supported-calendar-component-set>
    <C:calendar-timezone><![CDATA[BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//test//EN
BEGIN:VTIMEZONE
TZID:{tz}
END:VTIMEZONE
END:VCALENDAR
]]></C:calendar-timezone>
  </D:prop></D:set>
</C:mkcalendar>"""
MKADDRESSBOOK = """<?xml version="1.0" encoding="utf-8"?>
<D:mkcol xmlns:D="DAV:" xmlns:CR="urn:ietf:params:xml:ns:carddav">
  <D:set><D:prop><D:resourcetype><D:collection/><CR:addressbook/></D:resourcetype>
  <D:displayname>Contacts</D:displayname></D:prop></D:set>
</D:mkcol>"""


def _split(path: Path) -> dict[str, str]:
    """A whole-calendar export as one CalDAV resource per UID (what a client PUTs)."""
    text = path.read_bytes().decode()
    head, _, rest = text.partition("BEGIN:VEVENT")
    body = "BEGIN:VEVENT" + rest.rsplit("END:VCALENDAR", 1)[0]
    head = head.replace("METHOD:PUBLISH\r\n", "")
    by_uid: dict[str, list[str]] = {}
    for block in body.split("BEGIN:VEVENT")[1:]:
        block = "BEGIN:VEVENT" + block
        uid = next(line[4:] for line in block.replace("\r\n ", "").split("\r\n") if line.startswith("UID:"))
        by_uid.setdefault(uid, []).append(block)
    return {uid: head + "".join(blocks) + "END:VCALENDAR\r\n" for uid, blocks in by_uid.items()}


def _fill(radicale: Radicale, user: str) -> None:
    with httpx.Client(base_url=radicale.url, auth=(user, PASSWORD), timeout=10) as dav:
        for slug, name, tz, color, fixture in (
            ("work", "Work", "Europe/Berlin", "#FF2968FF", "google.ics"),
            ("family", "Family", "America/New_York", "#34AADC", "apple.ics"),
        ):
            body = MKCALENDAR.format(name=name, description=f"{name} calendar", color=color, tz=tz)
            r = dav.request("MKCALENDAR", f"/{user}/{slug}/", content=body, headers={"Content-Type": "application/xml"})
            assert r.status_code == 201, r.text
            for n, item in enumerate(_split(FIXTURES / fixture).values()):
                r = dav.put(f"/{user}/{slug}/item-{n}.ics", content=item, headers={"Content-Type": "text/calendar"})
                assert r.status_code == 201, r.text
        todo = (
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VTODO\r\nUID:todo-1\r\nSUMMARY:Buy milk\r\n"
            "DTSTAMP:20260101T000000Z\r\nEND:VTODO\r\nEND:VCALENDAR\r\n"
        )
        assert dav.put(f"/{user}/work/todo.ics", content=todo, headers={"Content-Type": "text/calendar"}).status_code == 201
        r = dav.request("MKCOL", f"/{user}/contacts/", content=MKADDRESSBOOK, headers={"Content-Type": "application/xml"})
        assert r.status_code == 201, r.text


def test_a_radicale_user_moves_with_one_command(api, chronary, radicale: Radicale, data_dir: Path) -> None:
    user = radicale.new_user()
    _fill(radicale, user)
    storage = radicale.root / "store"
    assert (storage / "collection-root" / user / "work" / ".Radicale.props").is_file()  # Radicale wrote it

    result = chronary("import", "radicale", str(storage))
    assert result.exit_code == 0, result.output
    agents = [a for a in api.get("/v1/agents").json()["data"] if a["name"] == user]
    assert len(agents) == 1 and agents[0]["type"] == "human"
    calendars = {c["name"]: c for c in api.get(f"/v1/agents/{agents[0]['id']}/calendars").json()["data"]}
    assert set(calendars) == {"Work", "Family"}  # the address book is not a calendar
    work, family = calendars["Work"], calendars["Family"]
    assert work["timezone"] == "Europe/Berlin" and family["timezone"] == "America/New_York"
    assert work["metadata"]["color"] == "#FF2968FF" and work["metadata"]["description"] == "Work calendar"
    assert work["metadata"]["imported_from"] == f"radicale:/{user}/work/"

    work_events = events_of(api, work["id"])
    assert len(work_events) == 6  # four UIDs, two of them overrides of the standup; the VTODO is skipped
    week = events_of(api, work["id"], start_after="2026-01-12T00:00:00Z", start_before="2026-01-17T00:00:00Z")
    titles = {e["start_time"]: (e["title"], e["status"]) for e in week}
    assert titles["2026-01-13T10:00:00Z"] == ("Standup (moved)", "confirmed")
    assert titles["2026-01-15T08:30:00Z"] == ("Standup", "cancelled")
    swims = events_of(api, family["id"], start_after="2026-03-18T00:00:00Z", start_before="2026-03-19T00:00:00Z")
    assert [e["start_time"] for e in swims] == ["2026-03-18T11:00:00Z"]

    # running it again (say, after a last sync on the old server) updates, never duplicates
    rows, calendars_n, agents_n = (
        count_rows(data_dir, "events"),
        count_rows(data_dir, "calendars"),
        count_rows(data_dir, "agents"),
    )
    again = chronary("import", "radicale", str(storage / "collection-root" / user))
    assert again.exit_code == 0, again.output
    assert again.stdout.count("0 created, 0 updated") == 2
    assert (count_rows(data_dir, "events"), count_rows(data_dir, "calendars"), count_rows(data_dir, "agents")) == (
        rows,
        calendars_n,
        agents_n,
    )


def test_into_one_given_agent(api, chronary, radicale: Radicale) -> None:
    user = radicale.new_user()
    _fill(radicale, user)
    ada = api.agent("Ada")
    result = chronary("import", "radicale", str(radicale.root / "store" / "collection-root" / user), "--agent", ada["id"])
    assert result.exit_code == 0, result.output
    names = sorted(c["name"] for c in api.get(f"/v1/agents/{ada['id']}/calendars").json()["data"])
    assert names == ["Family", "Work"]
    assert not [a for a in api.get("/v1/agents").json()["data"] if a["name"] == user]

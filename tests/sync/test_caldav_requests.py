"""What a CalDAV round asks the server (issue 20, item 6): a first import and a changed round are
the calendar listing plus one sync-collection carrying the bodies, an idle round the same two
requests and nothing else, counted at a proxy in front of a real Radicale."""

from __future__ import annotations

from typing import Any

import pytest

from chronary.providers import caldav as caldav_provider
from tests.conftest import Api
from tests.sync.conftest import FlakyProxy, Radicale, connect, enable, events, sync, vevent


def _setup(api: Api, radicale: Radicale, url: str) -> tuple[Any, str, dict[str, Any], str]:
    user = radicale.new_user()
    cal = radicale.make_calendar(user)
    con = connect(api, api.agent()["id"], user, url)
    mapped = enable(api, con, f"/{user}/work/")
    return cal, user, con, mapped["calendar_id"]


def _round(api: Api, flaky: FlakyProxy, con_id: str) -> tuple[dict[str, Any], list[str]]:
    before = len(flaky.log)
    summary = sync(api, con_id)
    assert summary is not None and summary["error"] is None, summary
    return summary, [line.split(" ", 1)[0] for line in flaky.log[before:]]


def test_first_import_idle_and_changed_rounds_are_two_requests(api: Api, radicale: Radicale, flaky: FlakyProxy) -> None:
    cal, _user, con, cal_id = _setup(api, radicale, flaky.url)
    for i in range(5):
        cal.save_event(vevent(f"req-{i}", f"Event {i}", f"2026020{i + 1}T090000Z", f"2026020{i + 1}T100000Z"))
    summary, methods = _round(api, flaky, con["id"])
    assert summary["pulled"] == 5 and methods == ["PROPFIND", "REPORT"]  # no discovery, no multiget, no GET
    for _ in range(2):
        summary, methods = _round(api, flaky, con["id"])
        assert summary["pulled"] == 0 and methods == ["PROPFIND", "REPORT"]
    cal.save_event(vevent("req-9", "Made on the phone", "20260210T090000Z", "20260210T100000Z"))
    summary, methods = _round(api, flaky, con["id"])
    assert summary["pulled"] == 1 and methods == ["PROPFIND", "REPORT"]
    assert sorted(e["title"] for e in events(api, cal_id)) == sorted(
        ["Made on the phone", *(f"Event {i}" for i in range(5))]
    )


def test_bodies_a_server_leaves_out_come_by_multiget(
    api: Api, radicale: Radicale, flaky: FlakyProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    cal, _user, con, cal_id = _setup(api, radicale, flaky.url)
    for i in range(3):
        cal.save_event(vevent(f"bare-{i}", f"Bare {i}", f"2026030{i + 1}T090000Z", f"2026030{i + 1}T100000Z"))
    # a server that answers sync-collection with etags only (as if it ignored calendar-data)
    monkeypatch.setattr(caldav_provider, "_SYNC_BODY", caldav_provider._SYNC_BODY.replace("{data}", ""))
    summary, methods = _round(api, flaky, con["id"])
    assert summary["pulled"] == 3 and methods == ["PROPFIND", "REPORT", "REPORT"]  # sync-collection, multiget
    assert sorted(e["title"] for e in events(api, cal_id)) == ["Bare 0", "Bare 1", "Bare 2"]


def test_a_remembered_home_that_moved_is_discovered_again(api: Api, radicale: Radicale, flaky: FlakyProxy) -> None:
    cal, user, con, cal_id = _setup(api, radicale, flaky.url)
    cal.save_event(vevent("moved-1", "Still found"))
    key = (flaky.url, user)
    home, base = caldav_provider._homes[key]
    caldav_provider._homes[key] = (f"/{user}-gone/", base)  # the server moved the home meanwhile
    summary, methods = _round(api, flaky, con["id"])
    assert summary["pulled"] == 1 and methods.count("PROPFIND") >= 3  # failed listing, discovery, listing
    assert caldav_provider._homes[key] == (home, base)
    assert [e["title"] for e in events(api, cal_id)] == ["Still found"]


def test_one_uid_in_two_resources_is_one_event(api: Api, radicale: Radicale, flaky: FlakyProxy) -> None:
    _cal, user, con, cal_id = _setup(api, radicale, flaky.url)
    folder = radicale.collection_dir(user)
    for name in ("twin-a.ics", "twin-b.ics"):  # both in one merge batch: the second must see the first
        (folder / name).write_text(vevent("twin", f"Twin {name}"), newline="")
    summary, _methods = _round(api, flaky, con["id"])
    assert summary["error"] is None
    assert len(events(api, cal_id)) == 1

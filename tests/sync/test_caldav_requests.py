"""What a CalDAV round asks the server (issue 20, item 6): a first import is the calendar listing,
the calendar's sync token and one calendar-query carrying the bodies; a changed round is the
listing plus one sync-collection carrying the bodies, an idle round the same two requests and
nothing else, counted at a proxy in front of a real Radicale."""

from __future__ import annotations

from typing import Any

import pytest

from chronary.providers import caldav as caldav_provider
from tests.conftest import Api
from tests.sync.conftest import FlakyProxy, Radicale, connect, enable, events, merge_dies_after, sync, vevent


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


def _cursor(api: Api, con_id: str) -> str:
    rows = api.runtime.db.read_sync(
        lambda tx: list(
            tx.conn.execute("SELECT cursor FROM connection_calendars WHERE connection_id = ? AND sync = 1", (con_id,))
        )
    )
    return str(rows[0]["cursor"])


def test_first_import_idle_and_changed_rounds_are_two_requests(api: Api, radicale: Radicale, flaky: FlakyProxy) -> None:
    cal, _user, con, cal_id = _setup(api, radicale, flaky.url)
    for i in range(5):
        cal.save_event(vevent(f"req-{i}", f"Event {i}", f"2026020{i + 1}T090000Z", f"2026020{i + 1}T100000Z"))
    summary, methods = _round(api, flaky, con["id"])
    # the listing, the calendar's sync token, one calendar-query with the bodies: no discovery, no multiget
    assert summary["pulled"] == 5 and methods == ["PROPFIND", "PROPFIND", "REPORT"]
    assert _cursor(api, con["id"]).startswith("sync:")
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
    cal.save_event(vevent("bare-first", "First"))
    # a first import from a server that answers calendar-query with etags only
    with monkeypatch.context() as patched:
        patched.setattr(caldav_provider, "_QUERY_BODY", caldav_provider._QUERY_BODY.replace("<c:calendar-data/>", ""))
        summary, methods = _round(api, flaky, con["id"])
    assert summary["pulled"] == 1 and methods == ["PROPFIND", "PROPFIND", "REPORT", "REPORT"]  # query, multiget
    for i in range(3):
        cal.save_event(vevent(f"bare-{i}", f"Bare {i}", f"2026030{i + 1}T090000Z", f"2026030{i + 1}T100000Z"))
    # a server that answers sync-collection with etags only (as if it ignored calendar-data)
    monkeypatch.setattr(caldav_provider, "_SYNC_BODY", caldav_provider._SYNC_BODY.replace("{data}", ""))
    summary, methods = _round(api, flaky, con["id"])
    assert summary["pulled"] == 3 and methods == ["PROPFIND", "REPORT", "REPORT"]  # sync-collection, multiget
    assert sorted(e["title"] for e in events(api, cal_id)) == ["Bare 0", "Bare 1", "Bare 2", "First"]


def test_a_first_import_merges_in_chunks_and_skips_what_it_cannot_read(
    api: Api, radicale: Radicale, flaky: FlakyProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    cal, _user, con, cal_id = _setup(api, radicale, flaky.url)
    for i in range(7):
        cal.save_event(vevent(f"page-{i}", f"Paged {i}", f"2026040{i + 1}T090000Z", f"2026040{i + 1}T100000Z"))
    cal.save_event(vevent("odd", "Too far", "25000105T090000Z", "25000105T100000Z"))  # unreadable here: skipped
    monkeypatch.setattr(caldav_provider.Provider, "merge_chunk", 2)  # 8 resources: 4 write transactions
    summary, methods = _round(api, flaky, con["id"])
    assert summary["pulled"] == 7 and methods == ["PROPFIND", "PROPFIND", "REPORT"]
    assert sorted(e["title"] for e in events(api, cal_id)) == [f"Paged {i}" for i in range(7)]
    assert _cursor(api, con["id"]).startswith("sync:")
    summary, methods = _round(api, flaky, con["id"])
    assert summary["pulled"] == 0 and methods == ["PROPFIND", "REPORT"]


def test_a_first_import_that_dies_between_chunks_starts_over(
    api: Api, radicale: Radicale, flaky: FlakyProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    cal, _user, con, cal_id = _setup(api, radicale, flaky.url)
    for i in range(6):
        cal.save_event(vevent(f"die-{i}", f"Dies {i}", f"2026050{i + 1}T090000Z", f"2026050{i + 1}T100000Z"))
    monkeypatch.setattr(caldav_provider.Provider, "merge_chunk", 2)
    with merge_dies_after(1):
        summary = sync(api, con["id"])
    assert summary is not None and summary["error"] is not None
    assert len(events(api, cal_id)) == 2 and _cursor(api, con["id"]) == "None"  # the cursor moves last
    # links exist now, so the next round lists everything and fetches only what it lacks
    summary, _methods = _round(api, flaky, con["id"])
    assert summary["pulled"] == 4
    assert sorted(e["title"] for e in events(api, cal_id)) == [f"Dies {i}" for i in range(6)]


def test_a_change_between_the_token_and_the_query_comes_in_the_next_round(
    api: Api, radicale: Radicale, flaky: FlakyProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    cal, _user, con, cal_id = _setup(api, radicale, flaky.url)
    cal.save_event(vevent("race-a", "Before"))
    doomed = cal.save_event(vevent("race-b", "Deleted meanwhile", "20260106T090000Z", "20260106T100000Z"))
    original = caldav_provider.Provider._collection_prop

    def token_then_phone_edits(self: caldav_provider.Provider, *args: Any) -> str | None:
        token = original(self, *args)
        cal.save_event(vevent("race-a", "Edited meanwhile"))  # after the token, before the query
        cal.save_event(vevent("race-c", "Added meanwhile", "20260107T090000Z", "20260107T100000Z"))
        doomed.delete()
        return token

    with monkeypatch.context() as patched:
        patched.setattr(caldav_provider.Provider, "_collection_prop", token_then_phone_edits)
        summary, _methods = _round(api, flaky, con["id"])
    assert sorted(e["title"] for e in events(api, cal_id)) == ["Added meanwhile", "Edited meanwhile"]
    # the token is older than what was stored: the next round sees those changes again, harmlessly
    summary, methods = _round(api, flaky, con["id"])
    assert methods == ["PROPFIND", "REPORT"] and summary["conflicts"] == 0
    assert sorted(e["title"] for e in events(api, cal_id)) == ["Added meanwhile", "Edited meanwhile"]
    summary, methods = _round(api, flaky, con["id"])
    assert summary["pulled"] == 0 and methods == ["PROPFIND", "REPORT"]


def test_a_server_refusing_calendar_query_is_read_with_sync_collection(
    api: Api, radicale: Radicale, flaky: FlakyProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    cal, _user, con, cal_id = _setup(api, radicale, flaky.url)
    cal.save_event(vevent("refused-1", "Still imported"))
    monkeypatch.setattr(caldav_provider, "_QUERY_BODY", "<not-xml")  # Radicale answers 400
    summary, methods = _round(api, flaky, con["id"])
    assert summary["pulled"] == 1 and methods == ["PROPFIND", "PROPFIND", "REPORT", "REPORT"]
    assert [e["title"] for e in events(api, cal_id)] == ["Still imported"]
    assert _cursor(api, con["id"]).startswith("sync:")


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


def test_a_server_that_stops_answering_sync_collection_falls_back_to_ctag(
    api: Api, radicale: Radicale, flaky: FlakyProxy
) -> None:
    cal, _user, con, cal_id = _setup(api, radicale, flaky.url)
    cal.save_event(vevent("stop-1", "First"))
    _round(api, flaky, con["id"])
    assert _cursor(api, con["id"]).startswith("sync:")
    flaky.no_sync_collection = True  # e.g. a proxy in front of the server that refuses the REPORT (501)
    cal.save_event(vevent("stop-2", "Second", "20260106T090000Z", "20260106T100000Z"))
    summary, methods = _round(api, flaky, con["id"])
    # the listing, the refused sync-collection, the ctag, the etags, a multiget of the new body
    assert summary["pulled"] == 1 and methods == ["PROPFIND", "REPORT", "PROPFIND", "PROPFIND", "REPORT"]
    assert _cursor(api, con["id"]).startswith("ctag:")
    assert sorted(e["title"] for e in events(api, cal_id)) == ["First", "Second"]

"""Conflicts, failures and recovery against a real Radicale: edits on both sides, a server that
drops connections or fails mid-sync, a rejected sync token, bad credentials, the DB lease."""

from __future__ import annotations

import json
import shutil
from typing import Any

from tests.conftest import Api
from tests.sync.conftest import PASSWORD, FlakyProxy, Radicale, connect, enable, events, sync, vevent


def _setup(api: Api, radicale: Radicale, url: str | None = None) -> tuple[Any, dict, str]:
    user = radicale.new_user()
    cal = radicale.make_calendar(user)
    con = connect(api, api.agent()["id"], user, url or radicale.url)
    mapped = enable(api, con, f"/{user}/work/")
    return cal, con, mapped["calendar_id"]


def _remote(cal: Any) -> dict[str, Any]:
    return {str(e.icalendar_component["UID"]): e for e in cal.get_events()}


def _phone_edit(cal: Any, uid: str, summary: str, last_modified: str) -> None:
    ev = _remote(cal)[uid]
    comp = ev.icalendar_component
    comp.pop("LAST-MODIFIED", None)
    comp.pop("SUMMARY", None)
    comp.add("SUMMARY", summary)
    ev.data = (
        ev.icalendar_instance.to_ical()
        .decode()
        .replace("BEGIN:VEVENT\r\n", f"BEGIN:VEVENT\r\nLAST-MODIFIED:{last_modified}\r\n", 1)
    )
    ev.save(increase_seqno=False)


def test_edits_on_both_sides_newer_wins_and_loser_is_kept(api: Api, radicale: Radicale) -> None:
    cal, con, cal_id = _setup(api, radicale)
    cal.save_event(vevent("c-1", "Original one"))
    cal.save_event(vevent("c-2", "Original two", "20260106T090000Z", "20260106T100000Z"))
    sync(api, con["id"])
    local = {e["ical_uid"]: e for e in events(api, cal_id)}
    for uid in ("c-1", "c-2"):
        r = api.patch(f"/v1/calendars/{cal_id}/events/{local[uid]['id']}", json={"title": f"Local {uid}"})
        assert r.status_code == 200
    _phone_edit(cal, "c-1", "Phone c-1", "20000101T000000Z")  # older than the local edit
    _phone_edit(cal, "c-2", "Phone c-2", "21000101T000000Z")  # newer than the local edit
    summary = sync(api, con["id"])
    assert summary and summary["conflicts"] == 2, summary
    local = {e["ical_uid"]: e for e in events(api, cal_id)}
    remote = _remote(cal)
    assert local["c-1"]["title"] == "Local c-1" == str(remote["c-1"].icalendar_component["SUMMARY"])
    assert local["c-2"]["title"] == "Phone c-2" == str(remote["c-2"].icalendar_component["SUMMARY"])
    listed = api.get(f"/v1/connections/{con['id']}/conflicts").json()
    assert listed["total"] == 2
    lost = {c["uid"]: c for c in listed["data"]}
    assert lost["c-1"]["winner"] == "local" and "Phone c-1" in lost["c-1"]["losing_version"]
    assert lost["c-2"]["winner"] == "remote" and json.loads(lost["c-2"]["losing_version"])[0]["title"] == "Local c-2"
    assert api.get(f"/v1/connections/{con['id']}").json()["last_sync"]["conflicts"] == 2
    # converged: the next round is idle, nothing duplicated
    summary = sync(api, con["id"])
    assert summary and (summary["pulled"], summary["pushed"], summary["conflicts"]) == (0, 0, 0)
    assert len(events(api, cal_id)) == 2 and len(_remote(cal)) == 2


def test_edit_beats_delete_on_either_side(api: Api, radicale: Radicale) -> None:
    cal, con, cal_id = _setup(api, radicale)
    cal.save_event(vevent("d-1", "Edited here, deleted there"))
    cal.save_event(vevent("d-2", "Deleted here, edited there", "20260106T090000Z", "20260106T100000Z"))
    sync(api, con["id"])
    local = {e["ical_uid"]: e for e in events(api, cal_id)}
    api.patch(f"/v1/calendars/{cal_id}/events/{local['d-1']['id']}", json={"title": "Kept locally"})
    _remote(cal)["d-1"].delete()
    assert api.delete(f"/v1/calendars/{cal_id}/events/{local['d-2']['id']}").status_code == 204
    _phone_edit(cal, "d-2", "Kept on phone", "20260102T000000Z")
    summary = sync(api, con["id"])
    assert summary and summary["conflicts"] == 2
    local = {e["ical_uid"]: e for e in events(api, cal_id)}
    remote = _remote(cal)
    assert set(local) == set(remote) == {"d-1", "d-2"}
    assert local["d-1"]["title"] == "Kept locally" == str(remote["d-1"].icalendar_component["SUMMARY"])
    assert local["d-2"]["title"] == "Kept on phone"
    summary = sync(api, con["id"])
    assert summary and (summary["pulled"], summary["pushed"]) == (0, 0)
    reasons = sorted(c["reason"] for c in api.get(f"/v1/connections/{con['id']}/conflicts").json()["data"])
    assert reasons == ["deleted locally, edited remotely: the edit wins", "deleted remotely, edited locally: the edit wins"]


def test_dropped_connection_mid_sync_loses_nothing_and_recovers(api: Api, radicale: Radicale, flaky: FlakyProxy) -> None:
    cal, con, cal_id = _setup(api, radicale, flaky.url)
    for i in range(5):
        cal.save_event(vevent(f"f-{i}", f"Remote {i}", f"2026010{i + 1}T090000Z", f"2026010{i + 1}T100000Z"))
    sync(api, con["id"])
    assert len(events(api, cal_id)) == 5
    api.event(cal_id, "2026-02-01T09:00:00Z", "2026-02-01T10:00:00Z", title="Booked while offline")
    cal.save_event(vevent("f-new", "Made on the phone", "20260210T090000Z", "20260210T100000Z"))
    for mode, after in (("drop", 0), ("drop", 2), ("error", 1), ("error", 2)):
        flaky.fail(mode, after)
        summary = sync(api, con["id"])
        assert summary and summary["error"], (mode, after, summary)
        got = api.get(f"/v1/connections/{con['id']}").json()
        assert got["last_sync"]["error"] and got["status"] == "active"
        assert len(events(api, cal_id)) >= 6  # mirrors and the local booking are all still here
    assert got["pending_pushes"] == 1
    failures = api.runtime.db.read_sync(
        lambda tx: list(tx.conn.execute("SELECT failures, next_sync_at FROM connections WHERE id = ?", (con["id"],)))
    )[0]
    assert failures["failures"] == 4
    from chronary.services.sync.policy import backoff_seconds
    from chronary.timeutil import to_ts

    # exponential back-off: the 4th failure in a row waits 8 minutes (plus up to 20% jitter)
    wait = failures["next_sync_at"] - to_ts(api.runtime.clock.now())
    assert backoff_seconds(4) == 480 and 470 <= wait <= 480 * 1.2 + 1
    flaky.fail("pass")
    summary = sync(api, con["id"])
    assert summary and summary["error"] is None and summary["pushed"] == 1
    local = sorted(e["title"] for e in events(api, cal_id))
    assert local == sorted(["Booked while offline", "Made on the phone", *(f"Remote {i}" for i in range(5))])
    assert sorted(str(e.icalendar_component["SUMMARY"]) for e in cal.get_events()) == local
    got = api.get(f"/v1/connections/{con['id']}").json()
    assert got["status"] == "active" and got["last_sync"]["error"] is None and got["pending_pushes"] == 0


def test_radicale_down_then_back(api: Api, radicale: Radicale) -> None:
    cal, con, cal_id = _setup(api, radicale)
    cal.save_event(vevent("down-1", "Before the outage"))
    sync(api, con["id"])
    radicale.stop()
    try:
        api.event(cal_id, "2026-03-01T09:00:00Z", "2026-03-01T10:00:00Z", title="During the outage")
        summary = sync(api, con["id"])
        assert summary and "cannot reach" in summary["error"]
        assert len(events(api, cal_id)) == 2
    finally:
        radicale.start()
    summary = sync(api, con["id"])
    assert summary and summary["error"] is None and summary["pushed"] == 1
    assert sorted(str(e.icalendar_component["SUMMARY"]) for e in cal.get_events()) == [
        "Before the outage",
        "During the outage",
    ]


def test_rejected_sync_token_means_full_resync_without_duplicates(api: Api, radicale: Radicale) -> None:
    cal, con, cal_id = _setup(api, radicale)
    for i in range(3):
        cal.save_event(vevent(f"t-{i}", f"Event {i}"))
    sync(api, con["id"])
    cursor = api.runtime.db.read_sync(
        lambda tx: list(
            tx.conn.execute("SELECT cursor FROM connection_calendars WHERE connection_id = ? AND sync = 1", (con["id"],))
        )
    )[0]["cursor"]
    assert cursor.startswith("sync:")
    # the server forgets every token it handed out (as servers do after a while) ...
    user = con["username"]
    shutil.rmtree(radicale.collection_dir(user) / ".Radicale.cache" / "sync-token", ignore_errors=True)
    # ... while both sides change
    _remote(cal)["t-0"].delete()
    cal.save_event(vevent("t-new", "New after token loss"))
    local = {e["ical_uid"]: e for e in events(api, cal_id)}
    api.patch(f"/v1/calendars/{cal_id}/events/{local['t-1']['id']}", json={"title": "Local edit"})
    from chronary.services.sync import engine

    seen: list[int] = []
    original = engine.Merger.finish

    def spy(self: Any, changes: Any) -> None:
        seen.append(changes.full)
        original(self, changes)

    engine.Merger.finish = spy  # type: ignore[method-assign]
    try:
        summary = sync(api, con["id"])
    finally:
        engine.Merger.finish = original  # type: ignore[method-assign]
    assert summary and summary["error"] is None
    assert seen and seen[0] is True, "an expired token must lead to a full listing"
    titles = sorted(e["title"] for e in events(api, cal_id))
    assert titles == ["Event 2", "Local edit", "New after token loss"]
    assert sorted(str(e.icalendar_component["SUMMARY"]) for e in cal.get_events()) == titles
    # a bogus stored cursor is handled the same way
    api.runtime.db.write_sync(
        lambda tx: tx.conn.execute(
            "UPDATE connection_calendars SET cursor = 'sync:http://radicale.org/ns/sync/0000' WHERE connection_id = ?",
            (con["id"],),
        )
    )
    summary = sync(api, con["id"])
    assert summary and summary["error"] is None and summary["pulled"] == 0
    assert len(events(api, cal_id)) == 3


def test_credential_failures_mark_error_after_retries_and_keep_mirrors(api: Api, radicale: Radicale) -> None:
    cal, con, cal_id = _setup(api, radicale)
    cal.save_event(vevent("cred-1", "Mirrored"))
    sync(api, con["id"])
    box = api.runtime.secrets
    good = api.runtime.db.read_sync(
        lambda tx: list(tx.conn.execute("SELECT secret FROM connections WHERE id = ?", (con["id"],)))
    )[0]["secret"]
    bad = box.encrypt(json.dumps({"password": "revoked"}))
    api.runtime.db.write_sync(lambda tx: tx.conn.execute("UPDATE connections SET secret = ? WHERE id = ?", (bad, con["id"])))
    statuses = []
    for _ in range(3):
        summary = sync(api, con["id"])
        assert summary and "password" in summary["error"]
        statuses.append(api.get(f"/v1/connections/{con['id']}").json()["status"])
    assert statuses == ["active", "active", "error"]
    got = api.get(f"/v1/connections/{con['id']}").json()
    assert "rejected the username or password" in got["status_reason"]
    assert got["token_refresh"]["failures_count"] == 3
    from chronary.timeutil import to_ts

    retry_at = api.runtime.db.read_sync(
        lambda tx: list(tx.conn.execute("SELECT next_sync_at FROM connections WHERE id = ?", (con["id"],)))
    )[0]["next_sync_at"]
    assert retry_at - to_ts(api.runtime.clock.now()) >= 86400 - 5  # no hourly hammering of a bad password
    assert [e["title"] for e in events(api, cal_id)] == ["Mirrored"]
    assert PASSWORD not in json.dumps(got)
    api.runtime.db.write_sync(
        lambda tx: tx.conn.execute("UPDATE connections SET secret = ? WHERE id = ?", (good, con["id"]))
    )
    summary = sync(api, con["id"])
    got = api.get(f"/v1/connections/{con['id']}").json()
    assert summary and summary["error"] is None and got["status"] == "active" and got["status_reason"] is None
    types = api.runtime.db.read_sync(
        lambda tx: [r["type"] for r in tx.conn.execute("SELECT type FROM outbox WHERE type = 'connection.error'")]
    )
    assert types == ["connection.error"]


def test_one_round_at_a_time_lease_survives_restart(api: Api, radicale: Radicale) -> None:
    _, con, _ = _setup(api, radicale)
    from chronary.timeutil import to_ts

    now = to_ts(api.runtime.clock.now())
    # a lease left by another (or a crashed) process blocks until it expires
    api.runtime.db.write_sync(
        lambda tx: tx.conn.execute(
            "UPDATE connections SET lease_owner = 'proc-other', lease_until = ? WHERE id = ?", (now + 120, con["id"])
        )
    )
    assert sync(api, con["id"]) is None
    api.runtime.db.write_sync(
        lambda tx: tx.conn.execute("UPDATE connections SET lease_until = ? WHERE id = ?", (now - 1, con["id"]))
    )
    summary = sync(api, con["id"])
    assert summary and summary["error"] is None
    lease = api.runtime.db.read_sync(
        lambda tx: list(tx.conn.execute("SELECT lease_owner, lease_until FROM connections WHERE id = ?", (con["id"],)))
    )[0]
    assert lease == {"lease_owner": None, "lease_until": None}
    # the in-process lock: a second round while one runs is refused
    from chronary.services.sync import engine

    lock = engine._lock_for(con["id"])
    with lock:
        assert sync(api, con["id"]) is None


def test_crash_between_push_and_commit_does_not_duplicate(api: Api, radicale: Radicale) -> None:
    cal, con, cal_id = _setup(api, radicale)
    booked = api.event(cal_id, "2026-05-01T09:00:00Z", "2026-05-01T10:00:00Z", title="Booked")
    from chronary.services.sync import engine

    original = engine._pushed_upsert

    def crash(*args: Any) -> None:
        raise RuntimeError("process died after the PUT")

    engine._pushed_upsert = crash  # type: ignore[assignment]
    try:
        summary = sync(api, con["id"])
    finally:
        engine._pushed_upsert = original  # type: ignore[assignment]
    assert summary and "internal error" in summary["error"]
    assert [str(e.icalendar_component["UID"]) for e in cal.get_events()] == [booked["ical_uid"]]
    summary = sync(api, con["id"])
    assert summary and summary["error"] is None, summary
    local = events(api, cal_id)
    assert [e["id"] for e in local] == [booked["id"]] and local[0]["remote"]["href"]
    assert len(cal.get_events()) == 1
    assert api.get(f"/v1/connections/{con['id']}").json()["pending_pushes"] == 0
    summary = sync(api, con["id"])
    assert summary and (summary["pulled"], summary["pushed"]) == (0, 0)


def test_server_without_sync_collection_uses_ctag_and_etags(api: Api, radicale: Radicale, flaky: FlakyProxy) -> None:
    flaky.no_sync_collection = True
    cal, con, cal_id = _setup(api, radicale, flaky.url)
    cal.save_event(vevent("g-1", "One"))
    cal.save_event(vevent("g-2", "Two", "20260106T090000Z", "20260106T100000Z"))
    summary = sync(api, con["id"])
    assert summary and summary["error"] is None and summary["pulled"] == 2
    cursor = api.runtime.db.read_sync(
        lambda tx: list(
            tx.conn.execute("SELECT cursor FROM connection_calendars WHERE connection_id = ? AND sync = 1", (con["id"],))
        )
    )[0]["cursor"]
    assert cursor.startswith("ctag:")
    before = len(flaky.log)
    summary = sync(api, con["id"])  # idle: the ctag did not move, nothing is listed
    assert summary and (summary["pulled"], summary["pushed"]) == (0, 0)
    assert not any(line.startswith("REPORT") for line in flaky.log[before:])
    _phone_edit(cal, "g-1", "One (edited)", "20260102T000000Z")
    _remote(cal)["g-2"].delete()
    booked = api.event(cal_id, "2026-01-09T09:00:00Z", "2026-01-09T10:00:00Z", title="Three")
    summary = sync(api, con["id"])
    assert summary and summary["pulled"] == 2 and summary["pushed"] == 1
    assert sorted(e["title"] for e in events(api, cal_id)) == ["One (edited)", "Three"]
    assert sorted(str(e.icalendar_component["SUMMARY"]) for e in cal.get_events()) == ["One (edited)", "Three"]
    assert booked["ical_uid"] in _remote(cal)


def test_remote_edit_racing_our_push_gets_412_then_resolves(api: Api, radicale: Radicale) -> None:
    cal, con, cal_id = _setup(api, radicale)
    cal.save_event(vevent("race-1", "Original"))
    sync(api, con["id"])
    (ev,) = events(api, cal_id)
    api.patch(f"/v1/calendars/{cal_id}/events/{ev['id']}", json={"title": "Local edit"})
    from chronary.providers import caldav as caldav_provider

    original = caldav_provider.Provider.put_event
    calls: list[int] = []

    def racing_put(self: Any, *args: Any) -> Any:
        if not calls:  # the phone saves between our pull and our push
            _phone_edit(cal, "race-1", "Phone edit", "20000101T000000Z")
        calls.append(1)
        return original(self, *args)

    caldav_provider.Provider.put_event = racing_put  # type: ignore[method-assign]
    try:
        summary = sync(api, con["id"])
    finally:
        caldav_provider.Provider.put_event = original  # type: ignore[method-assign]
    assert len(calls) == 2, "the first PUT must fail its If-Match and be retried after a re-pull"
    assert summary and summary["error"] is None and summary["conflicts"] == 1 and summary["pushed"] == 1
    (remote,) = cal.get_events()
    assert str(remote.icalendar_component["SUMMARY"]) == "Local edit" == events(api, cal_id)[0]["title"]
    (lost,) = api.get(f"/v1/connections/{con['id']}/conflicts").json()["data"]
    assert lost["winner"] == "local" and "Phone edit" in lost["losing_version"]

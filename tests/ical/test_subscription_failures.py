"""A failing subscription sync is recorded and backed off, whatever the failure (issue 11, item 7).

Before: an exception other than OutboundError escaped the worker, nothing was recorded, the row
stayed due, and the worker retried it every second with a traceback each time.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from chronary.clock import ManualClock
from chronary.config import Settings
from chronary.providers import ics as ics_provider
from chronary.runtime import open_runtime
from chronary.store import subscriptions as sub_store
from chronary.timeutil import to_ts
from chronary.workers import subscriptions as worker
from tests.conftest import free_port, start_live_server, wait_until
from tests.ical.feedserver import vcalendar, vevent
from tests.ical.subsync import run_subscription_worker

A = vevent("a@test", "20260302T090000Z", "20260302T100000Z", "Alpha")


def _subscribe(api: Any, url: str, interval: int = 15) -> dict[str, Any]:
    agent = api.agent()
    cal = api.calendar(agent["id"])
    r = api.post(
        f"/v1/agents/{agent['id']}/ical-subscriptions",
        json={"calendar_id": cal["id"], "url": url, "refresh_interval_minutes": interval},
    )
    assert r.status_code == 201, r.text
    return r.json()


def _row(api: Any, sub_id: str) -> dict[str, Any]:
    return api.runtime.db.read_sync(lambda tx: sub_store.get(tx.conn, sub_id))


def test_unexpected_exception_is_recorded_backed_off_and_recovers(
    make_api: Any, feed_server: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    clock = ManualClock(datetime(2026, 2, 1, tzinfo=UTC))
    api = make_api(clock=clock)
    feed_server.serve("/cal.ics", vcalendar(A))
    sub = _subscribe(api, feed_server.url("/cal.ics"), interval=15)
    calls: list[str] = []

    async def broken_fetch(url: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(url)
        raise RuntimeError("Traceback (most recent call last): secret internals")

    monkeypatch.setattr(ics_provider, "fetch", broken_fetch)
    caplog.set_level(logging.INFO, logger="chronary.workers.subscriptions")

    delays = []
    for attempt in range(7):
        before = len(calls)
        run_subscription_worker(api)
        assert len(calls) == before + 1, f"attempt {attempt} did not run"
        row = _row(api, sub["id"])
        now_ts = to_ts(clock.now())
        delays.append(row["next_sync_ts"] - now_ts)
        assert row["status"] == "error"
        assert row["last_error"] == "the sync failed with an internal error (RuntimeError); see the server log"
        run_subscription_worker(api)  # the worker polls again at once: nothing is retried hot
        clock.advance(seconds=delays[-1] - 1)
        run_subscription_worker(api)
        assert len(calls) == before + 1
        clock.advance(seconds=1)
    assert delays == [60, 120, 240, 480, 900, 900, 900]  # doubling from 1 min, capped at the 15-min interval

    tracebacks = [r for r in caplog.records if r.exc_info]
    assert len(tracebacks) == 1  # the traceback once, when the failure started; one line after that
    assert sum("still failing" in r.getMessage() for r in caplog.records) == 6

    got = api.get(f"/v1/ical-subscriptions/{sub['id']}").json()
    assert got["status"] == "error" and "secret internals" not in got["last_error"]

    monkeypatch.undo()  # the bug is fixed: the next due sync succeeds
    run_subscription_worker(api)
    got = api.get(f"/v1/ical-subscriptions/{sub['id']}").json()
    assert (got["status"], got["last_error"], got["event_count"]) == ("active", None, 1)
    assert _row(api, sub["id"])["next_sync_ts"] == to_ts(clock.now()) + 15 * 60


def test_sync_now_while_failing_starts_the_backoff_again(make_api: Any, feed_server: Any) -> None:
    clock = ManualClock(datetime(2026, 2, 1, tzinfo=UTC))
    api = make_api(clock=clock)
    sub = _subscribe(api, feed_server.url("/missing.ics"), interval=60)
    run_subscription_worker(api)  # 404: an ordinary failure backs off the same way
    assert _row(api, sub["id"])["next_sync_ts"] == to_ts(clock.now()) + 60
    clock.advance(seconds=60)
    run_subscription_worker(api)
    assert _row(api, sub["id"])["next_sync_ts"] == to_ts(clock.now()) + 120
    clock.advance(seconds=5)
    assert api.post(f"/v1/ical-subscriptions/{sub['id']}/sync").status_code == 202
    run_subscription_worker(api)
    assert _row(api, sub["id"])["next_sync_ts"] == to_ts(clock.now()) + 60
    assert "404" in api.get(f"/v1/ical-subscriptions/{sub['id']}").json()["last_error"]


def test_undecryptable_credentials_are_a_recorded_failure(make_api: Any, feed_server: Any) -> None:
    clock = ManualClock(datetime(2026, 2, 1, tzinfo=UTC))
    api = make_api(clock=clock)
    feed_server.serve("/cal.ics", vcalendar(A))
    sub = _subscribe(api, feed_server.url("/cal.ics"))
    api.runtime.db.write_sync(lambda tx: sub_store.patch(tx.conn, sub["id"], {"credentials": "not-a-token"}))
    run_subscription_worker(api)
    row = _row(api, sub["id"])
    assert row["status"] == "error" and "internal error" in row["last_error"]
    assert row["next_sync_ts"] == to_ts(clock.now()) + 60
    assert feed_server.requests["/cal.ics"] == 0


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/cal\x00.ics", "http://127.0.0.1:9/a\r\nHost: evil", "http://x\x00/"])
def test_stored_url_with_control_characters_is_a_recorded_failure(make_api: Any, url: str) -> None:
    clock = ManualClock(datetime(2026, 2, 1, tzinfo=UTC))
    api = make_api(clock=clock)
    sub = _subscribe(api, "http://127.0.0.1:9/cal.ics")
    api.runtime.db.write_sync(lambda tx: sub_store.patch(tx.conn, sub["id"], {"url": url, "next_sync_ts": 0}))
    run_subscription_worker(api)
    row = _row(api, sub["id"])
    assert row["status"] == "error" and "control" in row["last_error"], row["last_error"]
    assert row["next_sync_ts"] == to_ts(clock.now()) + 60
    assert run_subscription_worker(api) == 0  # not due again for a minute


def test_sync_now_wakes_the_worker_promptly(data_dir: Any, feed_server: Any) -> None:
    settings = Settings(data_dir=data_dir, host="127.0.0.1", port=free_port(), workers=True)
    runtime = open_runtime(settings)
    runtime.extras[worker.OPTIONS_KEY] = {"poll_seconds": 60}  # only the wake-up can make it quick
    server = start_live_server(settings, runtime=runtime)
    try:
        feed_server.serve("/cal.ics", vcalendar(A))
        with server.client() as http:
            agent = http.post("/v1/agents", json={"name": "Ada"}).json()
            cal = http.post(f"/v1/agents/{agent['id']}/calendars", json={"name": "W", "timezone": "UTC"}).json()
            time.sleep(0.3)  # the worker has swept once and sleeps for its (long) poll
            started = time.monotonic()
            sub = http.post(
                f"/v1/agents/{agent['id']}/ical-subscriptions",
                json={"calendar_id": cal["id"], "url": feed_server.url("/cal.ics")},
            ).json()
            wait_until(lambda: http.get(f"/v1/ical-subscriptions/{sub['id']}").json()["event_count"] == 1)
            feed_server.serve("/cal.ics", vcalendar(A, vevent("b@test", "20260303T090000Z", "20260303T100000Z", "B")))
            assert http.post(f"/v1/ical-subscriptions/{sub['id']}/sync").status_code == 202
            wait_until(lambda: http.get(f"/v1/ical-subscriptions/{sub['id']}").json()["event_count"] == 2)
            assert time.monotonic() - started < 10  # far below the 60 s poll: woken by the requests
    finally:
        server.stop()

"""The writer thread (store/db.py): writes queued while it is busy commit together, each in its
own savepoint, and a commit wakes only the workers it gave work (`Database.wake_on`, `Tx.wake`,
the webhook consumer's `outbox.wants`) instead of every worker on every commit."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import apsw
import pytest

from chronary.store.db import Tx
from chronary.workers import automation, sync, webhooks

T0, T1 = "2026-03-02T09:00:00Z", "2026-03-02T10:00:00Z"


def _org(org_id: str) -> Callable[[Tx], str]:
    def write(tx: Tx) -> str:
        tx.conn.execute("INSERT INTO orgs (id, name, created_at) VALUES (?, 'x', 'now')", (org_id,))
        return org_id

    return write


def _orgs(api: Any) -> set[str]:
    return api.runtime.db.read_sync(lambda tx: {r["id"] for r in tx.conn.execute("SELECT id FROM orgs")})


def _queued_behind_a_held_write(db: Any, first: Callable[[Tx], Any], queued: list[Callable[[Tx], Any]]) -> Any:
    """Hold the writer inside `first` until every write of `queued` waits in its queue, then let
    it go: the queued ones are taken as one group. Returns (first's result, the others' results)."""
    gate, inside = threading.Event(), threading.Event()

    def held(tx: Tx) -> Any:
        inside.set()
        assert gate.wait(10)
        return first(tx)

    async def main() -> Any:
        head = asyncio.ensure_future(db.write(held))
        await asyncio.get_running_loop().run_in_executor(None, inside.wait, 10)
        rest = [asyncio.ensure_future(db.write(fn)) for fn in queued]
        await asyncio.sleep(0.05)  # every one of them is in the queue now (they wait on their result)
        gate.set()
        return await head, await asyncio.gather(*rest, return_exceptions=True)

    return asyncio.run(main())


def test_queued_writes_commit_together_and_a_failing_one_rolls_back_alone(api: Any) -> None:
    db = api.runtime.db
    commits: list[int] = []
    db.commit_listeners.append(lambda: commits.append(1))

    def bad(tx: Tx) -> None:
        tx.conn.execute("INSERT INTO orgs (id, name, created_at) VALUES ('org_bad', 'x', 'now')")
        raise ValueError("refused")

    head, rest = _queued_behind_a_held_write(db, _org("org_head"), [_org("org_a"), bad, _org("org_b")])
    assert head == "org_head"
    assert rest[0] == "org_a" and isinstance(rest[1], ValueError) and rest[2] == "org_b"
    assert len(commits) == 2  # the held write, then one commit for the three queued behind it
    assert {"org_head", "org_a", "org_b"} <= _orgs(api) and "org_bad" not in _orgs(api)
    assert api.post("/v1/agents", json={"name": "after"}).status_code == 201


def test_a_failed_group_commit_fails_every_write_of_the_group(api: Any) -> None:
    """COMMIT checks deferred constraints: when it fails, none of the group is written, each of
    its writes gets the error, and the writer goes on with the next writes."""

    def orphan(tx: Tx) -> str:
        tx.conn.execute("PRAGMA defer_foreign_keys = ON")
        tx.conn.execute(
            "INSERT INTO calendars (id, org_id, name, timezone, agent_status, feed_token, created_at, updated_at)"
            " VALUES ('cal_orphan', 'org_missing', 'n', 'UTC', 'idle', 'tok', '', '')"
        )
        return "orphan"

    head, rest = _queued_behind_a_held_write(api.runtime.db, _org("org_head"), [_org("org_c"), orphan, _org("org_d")])
    assert head == "org_head"
    assert all(isinstance(r, apsw.ConstraintError) for r in rest)
    assert "org_c" not in _orgs(api) and "org_d" not in _orgs(api)
    assert api.post("/v1/agents", json={"name": "still writable"}).status_code == 201


def test_raw_writes_run_alone_in_queue_order(api: Any) -> None:
    db = api.runtime.db
    order: list[str] = []

    def raw(conn: apsw.Connection) -> bool:
        order.append("raw")
        return bool(conn.getautocommit())  # outside any transaction

    def tagged(name: str) -> Callable[[Tx], str]:
        def write(tx: Tx) -> str:
            order.append(name)
            return _org(name)(tx)

        return write

    async def main() -> list[Any]:
        return list(await asyncio.gather(db.write(tagged("org_1")), db.write_raw(raw), db.write(tagged("org_2"))))

    assert asyncio.run(main()) == ["org_1", True, "org_2"]
    assert order == ["org_1", "raw", "org_2"]


@pytest.fixture
def woken(api: Any) -> list[set[str]]:
    """What each commit notified, with the workers' wake-ups registered as `serve` does."""
    rt = api.runtime
    calls: list[set[str]] = []
    rt.db.notify = lambda names: calls.append(set(names))
    for module in (automation, sync, webhooks):
        module.build(rt)
    return calls


def test_an_event_write_wakes_no_worker_without_a_webhook_endpoint(api: Any, woken: list[set[str]]) -> None:
    cal = api.calendar()
    event = api.event(cal["id"], T0, T1)
    assert api.patch(f"/v1/calendars/{cal['id']}/events/{event['id']}", json={"title": "Moved"}).status_code == 200
    assert woken == []


def test_webhook_endpoints_and_the_changes_they_can_receive_wake_the_webhook_worker(api: Any, woken: list[set[str]]) -> None:
    cal = api.calendar()
    r = api.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/hook", "events": ["event.created"]})
    assert r.status_code == 201, r.text
    assert woken == [{"webhooks"}]  # the endpoint's own commit (webhook_endpoints)
    woken.clear()
    api.event(cal["id"], T0, T1)
    assert woken == [{"webhooks"}]  # a change an endpoint could receive
    woken.clear()
    assert api.delete(f"/v1/webhooks/{r.json()['id']}").status_code == 204
    woken.clear()
    api.event(cal["id"], T0, T1)
    assert woken == []  # no endpoint left to receive it


def test_wake_on_notifies_after_commits_that_wrote_its_tables(api: Any, woken: list[set[str]]) -> None:
    db = api.runtime.db
    db.wake_on("orgs-changed", "orgs")
    db.write_sync(_org("org_x"))
    assert woken == [{"orgs-changed"}]
    db.write_sync(lambda tx: tx.conn.execute("UPDATE orgs SET name = 'y' WHERE id = 'org_none'"))  # no row written
    with pytest.raises(ValueError):
        db.write_sync(lambda tx: (_org("org_y")(tx), (_ for _ in ()).throw(ValueError("rolled back"))))
    db.write_sync(lambda tx: tx.wake.add("asked-for"))
    assert woken == [{"orgs-changed"}, {"asked-for"}]


def test_writes_after_close_are_refused(tmp_path: Any) -> None:
    from chronary.config import Settings
    from chronary.runtime import open_runtime

    rt = open_runtime(Settings(data_dir=tmp_path / "data", workers=False))
    assert asyncio.run(rt.db.write(_org("org_before"))) == "org_before"
    rt.db.close()
    with pytest.raises(RuntimeError, match="closed"):
        asyncio.run(rt.db.write(_org("org_after")))


def test_writes_of_one_turn_of_the_loop_reach_the_writer_as_one_group(api: Any) -> None:
    """Requests read together submit their writes in one turn of the event loop; the writer gets
    them at its end, together (one commit), rather than starting on the first while the loop is
    still reading the others."""
    db = api.runtime.db
    commits: list[int] = []
    db.commit_listeners.append(lambda: commits.append(1))

    async def main() -> list[Any]:
        # created in one turn: every task's first step runs in the next turn, and submits there
        return await asyncio.gather(*(db.write(_org(f"org_turn{i}")) for i in range(12)))

    assert asyncio.run(main()) == [f"org_turn{i}" for i in range(12)]
    assert len(commits) == 1
    assert {f"org_turn{i}" for i in range(12)} <= _orgs(api)


def test_writes_still_waiting_for_their_turn_when_the_database_closes_are_refused(tmp_path: Any) -> None:
    from chronary.config import Settings
    from chronary.runtime import open_runtime

    rt = open_runtime(Settings(data_dir=tmp_path / "data", workers=False))

    async def main() -> Any:
        assert await rt.db.write(_org("org_open")) == "org_open"  # the writer thread runs
        late = asyncio.ensure_future(rt.db.write(_org("org_late")))
        await asyncio.sleep(0)  # submitted: waiting for the end of this turn to be handed over
        rt.db.close()
        return await asyncio.wait_for(late, 5)

    with pytest.raises(RuntimeError, match="closed"):
        asyncio.run(main())


def test_a_commit_group_does_its_once_per_transaction_work_once_and_redoes_it_after_a_rollback(api: Any) -> None:
    """The writes of one group share the transaction's scratch: the calendar's revision moves
    once for the group; a write that rolls back takes its share with it, so the next one in the
    group moves the revision again (the feed cache key still moves with every committed change)."""
    from chronary.schemas.events import EventCreate
    from chronary.services import events as event_service
    from chronary.services.context import Ctx, Principal

    cal = api.calendar()
    db = api.runtime.db
    ctx = Ctx(Principal(org_id=api.runtime.org_id, key_id="key_test"), "http://x")

    def revision() -> int:
        return int(
            db.read_sync(
                lambda tx: next(iter(tx.conn.execute("SELECT revision FROM calendars WHERE id = ?", (cal["id"],))))[
                    "revision"
                ]
            )
        )

    def create(title: str) -> Callable[[Tx], Any]:
        return lambda tx: event_service.create(tx, ctx, cal["id"], EventCreate(title=title, start_time=T0, end_time=T1))

    def create_then_fail(tx: Tx) -> None:
        create("rolled back")(tx)
        raise ValueError("refused after its change was recorded")

    start = revision()
    _queued_behind_a_held_write(db, _org("org_hold1"), [create("a"), create("b"), create("c")])
    assert revision() == start + 1  # three creates, one transaction: one bump
    start = revision()
    head, rest = _queued_behind_a_held_write(db, _org("org_hold2"), [create("d"), create_then_fail, create("e")])
    assert isinstance(rest[1], ValueError)
    assert revision() == start + 2  # "d" bumped; after the rollback emptied the scratch, "e" bumped again
    titles = sorted(e["title"] for e in api.get(f"/v1/calendars/{cal['id']}/events?limit=50").json()["data"])
    assert titles == ["a", "b", "c", "d", "e"]


def test_a_memo_is_asked_again_once_its_tables_were_written_in_the_transaction(api: Any) -> None:
    db = api.runtime.db
    asked: list[int] = []

    def count_orgs(tx: Tx) -> int:
        asked.append(1)
        return int(next(iter(tx.conn.execute("SELECT count(*) AS n FROM orgs")))["n"])

    def write(tx: Tx) -> tuple[int, int, int]:
        first = tx.memo("orgs", ("orgs",), lambda: count_orgs(tx))
        again = tx.memo("orgs", ("orgs",), lambda: count_orgs(tx))  # remembered
        tx.conn.execute("INSERT INTO orgs (id, name, created_at) VALUES ('org_memo', 'x', 'now')")
        after = tx.memo("orgs", ("orgs",), lambda: count_orgs(tx))  # orgs written: asked again
        return first, again, after

    first, again, after = db.write_sync(write)
    assert again == first and after == first + 1 and len(asked) == 2

"""CalDAV sync speed against a local Radicale: initial sync (events/s), an idle incremental
round, and pushing local bookings.

Not a test: it prints numbers. It starts Radicale on a free 127.0.0.1 port with a throw-away
store (fsync off, like the test fixture), writes N events straight into its storage, then
drives Chronary's sync engine directly (the same `sync_connection` the scheduler calls) on a
throw-away data dir. Radicale parses every item the first time a collection is listed; by
default that one-off server cost is paid before timing (`--cold` includes it).

    .venv/bin/python bench/sync_bench.py                 # 1,000 events, 5 idle rounds, 100 pushes
    .venv/bin/python bench/sync_bench.py --events 5000 --cold
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

USER, PASSWORD = "bench", "bench-pass"
LAUNCH = (
    "import sys; from radicale.storage.multifilesystem import base; "
    "base.StorageBase._fsync = lambda self, f: None; base.StorageBase._sync_directory = lambda self, p: None; "
    "from radicale.__main__ import run; sys.argv[0] = 'radicale'; run()"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_radicale(root: Path, port: int) -> subprocess.Popen[bytes]:
    (root / "users").write_text(f"{USER}:{PASSWORD}\n")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            LAUNCH,
            "--server-hosts",
            f"127.0.0.1:{port}",
            "--storage-filesystem-folder",
            str(root / "store"),
            "--auth-type",
            "htpasswd",
            "--auth-htpasswd-filename",
            str(root / "users"),
            "--auth-htpasswd-encryption",
            "plain",
            "--auth-delay",
            "0",
            "--logging-level",
            "warning",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("OPTIONS", "/")
            conn.getresponse().read()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("radicale did not start")


def fill(root: Path, url: str, count: int) -> None:
    import caldav

    client = caldav.DAVClient(url=url, username=USER, password=PASSWORD, auth_type="basic")
    client.principal().make_calendar(name="Bench", cal_id="bench")
    folder = root / "store" / "collection-root" / USER / "bench"
    for i in range(count):
        day, slot = divmod(i, 8)
        start = f"{2026 + day // 336}{1 + day % 336 // 28:02d}{1 + day % 28:02d}T{8 + slot:02d}0000Z"
        (folder / f"b-{i:05d}.ics").write_text(
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//bench//EN\r\nBEGIN:VEVENT\r\n"
            f"UID:b-{i:05d}\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:{start}\r\nDTEND:{start[:11]}3000Z\r\n"
            f"SUMMARY:Bench {i}\r\nLOCATION:Room {i % 7}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
            newline="",
        )


async def warm(url: str) -> float:
    """List the collection once so Radicale builds its item cache (its cost, not ours)."""
    from chronary.config import Settings
    from chronary.providers import load
    from chronary.providers.base import Account

    t = time.perf_counter()
    provider = load("caldav")(Account("caldav", USER, url, {"password": PASSWORD}), Settings(port=1))
    try:
        cal = next(c for c in await provider.list_calendars() if c.remote_id.endswith("/bench/"))
        await provider.fetch_changes(cal, None, {"": None})
    finally:
        await provider.close()
    return time.perf_counter() - t


async def main(args: argparse.Namespace) -> None:
    from chronary.config import Settings
    from chronary.runtime import open_runtime
    from chronary.schemas.agents import AgentCreate
    from chronary.schemas.connections import CalendarChoice, ConnectionCreate, ConnectionUpdate
    from chronary.schemas.events import EventCreate
    from chronary.services import agents, connections, events
    from chronary.services.context import Ctx, Principal
    from chronary.services.sync.engine import sync_connection

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        port = free_port()
        proc = start_radicale(root, port)
        url = f"http://127.0.0.1:{port}/"
        try:
            fill(root, url, args.events)
            server_cost = 0.0 if args.cold else await warm(url)
            runtime = open_runtime(Settings(data_dir=root / "data", workers=False, port=free_port()))
            principal = Principal(runtime.org_id, "key_bench")
            ctx = Ctx(principal, runtime.settings.base_url)
            agent = await runtime.db.write(lambda tx: agents.create(tx, principal, AgentCreate(name="Bench")))
            con = await connections.connect(
                runtime,
                principal,
                ConnectionCreate(provider="caldav", agent_id=agent.id, username=USER, password=PASSWORD, server_url=url),
            )
            choice = ConnectionUpdate(calendars=[CalendarChoice(remote_id=f"/{USER}/bench/", sync=True)])
            mapped = await runtime.db.write(lambda tx: connections.update(tx, ctx, con.id, choice))
            cal_id = next(c.calendar_id for c in mapped.calendars if c.sync)

            t = time.perf_counter()
            first = await sync_connection(runtime, con.id)
            initial = time.perf_counter() - t
            idle = []
            for _ in range(args.idle_rounds):
                t = time.perf_counter()
                await sync_connection(runtime, con.id)
                idle.append(time.perf_counter() - t)
            for i in range(args.pushes):
                body = EventCreate(
                    title=f"Booked {i}",
                    start_time=f"2030-01-{1 + i % 28:02d}T{8 + i % 9:02d}:00:00Z",
                    end_time=f"2030-01-{1 + i % 28:02d}T{8 + i % 9:02d}:30:00Z",
                )
                await runtime.db.write(lambda tx, b=body: events.create(tx, ctx, cal_id, b))
            t = time.perf_counter()
            pushed = await sync_connection(runtime, con.id)
            push = time.perf_counter() - t
            runtime.db.close()
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    assert first and pushed
    print(f"{'measure':34} {'items':>7} {'seconds':>8} {'items/s':>9}")
    if not args.cold:
        print(f"{'radicale first listing (server)':34} {args.events:7d} {server_cost:8.2f} {args.events / server_cost:9.0f}")
    print(f"{'initial sync (pull)':34} {first['pulled']:7d} {initial:8.2f} {first['pulled'] / initial:9.0f}")
    print(f"{'idle incremental round (median)':34} {0:7d} {statistics.median(idle):8.3f} {'-':>9}")
    print(f"{'push local bookings':34} {pushed['pushed']:7d} {push:8.2f} {pushed['pushed'] / push:9.0f}")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1000, help="events on the server before the first sync")
    parser.add_argument("--idle-rounds", type=int, default=5, help="incremental rounds with nothing changed")
    parser.add_argument("--pushes", type=int, default=100, help="local events created, then pushed in one round")
    parser.add_argument("--cold", action="store_true", help="include Radicale's one-off first-listing cost")
    asyncio.run(main(parser.parse_args()))

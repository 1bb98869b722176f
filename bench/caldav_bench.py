"""CalDAV initial sync, Chronary vs vdirsyncer, against one real Radicale (issue 20, item 6).

Not a test: it prints numbers. Method, all in one run on one machine:

1. Start Radicale 3 on a free 127.0.0.1 port with a throw-away store (fsync off, like the test
   fixture; request logging at info level, to a file, so the server counts every request it
   gets). Write N resources straight into its storage: a realistic mix of timed events in
   Europe/Berlin (each resource carries its VTIMEZONE, as real clients write them), UTC ones,
   all-day ones, descriptions with escapes and folded lines, attendees and alarms, and a few
   weekly series with EXDATEs and moved/renamed exceptions (RECURRENCE-ID) in the same resource.
2. Warm Radicale: one full listing with bodies, so its one-off item cache (it parses every item
   the first time) is built before either client is timed. Both then read the same warm cache.
3. vdirsyncer (its own venv: `--vdirsyncer PATH`): `discover` (not timed: it only saves the
   collection's metadata), then `sync` of the calendar into a filesystem storage, timed as the
   wall time of the `vdirsyncer sync` process. That includes its interpreter start-up, so the
   start-up of a no-op `vdirsyncer --help` process is measured too and the comparison is also
   given against sync minus start-up (the stricter one: it is the one the target uses).
4. Chronary: a real connection (`connections.connect` + mapping the calendar, not timed), then
   the engine round the scheduler runs (`sync_connection`), timed: log in, list the calendars,
   fetch every resource, decode, and write into a real SQLite database in the throw-away data
   dir (the change log, revisions, links: everything a sync writes).
5. Idle incremental rounds: nothing changed; the requests Radicale logged during each round.
6. A changed round: K resources edited on the server (through the same storage), one round,
   pulled count and requests, to show the incremental path still finds them.

    .venv/bin/python bench/caldav_bench.py                       # 2,000 events
    .venv/bin/python bench/caldav_bench.py --events 5000 --vdirsyncer /tmp/vdir/bin/vdirsyncer

Before/after: run it from the checkout with PYTHONPATH pointing at the older code; the bench
imports `chronary` from there (PYTHONPATH comes before the checkout on sys.path).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sync_bench import PASSWORD, USER, free_port  # noqa: E402  (a sibling script, not a package)

LAUNCH = (
    "import sys; from radicale.storage.multifilesystem import base; "
    "base.StorageBase._fsync = lambda self, f: None; base.StorageBase._sync_directory = lambda self, p: None; "
    "from radicale.__main__ import run; sys.argv[0] = 'radicale'; run()"
)
CAL = "bench"
VTIMEZONE = (
    "BEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\nBEGIN:DAYLIGHT\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\n"
    "TZNAME:CEST\r\nDTSTART:19700329T020000\r\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\nEND:DAYLIGHT\r\n"
    "BEGIN:STANDARD\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nTZNAME:CET\r\nDTSTART:19701025T030000\r\n"
    "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n"
)


def start_radicale(root: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    (root / "users").write_text(f"{USER}:{PASSWORD}\n")
    args = ["--server-hosts", f"127.0.0.1:{port}", "--storage-filesystem-folder", str(root / "store")]
    args += ["--auth-type", "htpasswd", "--auth-htpasswd-filename", str(root / "users")]
    args += ["--auth-htpasswd-encryption", "plain", "--auth-delay", "0", "--logging-level", "info"]
    proc = subprocess.Popen([sys.executable, "-c", LAUNCH, *args], stdout=subprocess.DEVNULL, stderr=log.open("wb"))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/", method="OPTIONS"), timeout=1)
            return proc
        except urllib.error.HTTPError:
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("radicale did not start")


def _fold(line: str) -> str:
    """RFC 5545 folding at 75 octets (ASCII text here)."""
    return "\r\n ".join(textwrap.wrap(line, 74, drop_whitespace=False, break_on_hyphens=False)) + "\r\n"


def resource(i: int, edited: int = 0) -> str:
    """Resource number i of the mix (see the module doc); `edited` changes its SUMMARY and SEQUENCE."""
    day, slot = divmod(i, 6)
    y, m, d = 2026 + day // 336, 1 + day % 336 // 28, 1 + day % 28
    stamp = "DTSTAMP:20260101T000000Z\r\nCREATED:20251201T100000Z\r\nLAST-MODIFIED:20251215T120000Z\r\n"
    title = f"Meeting {i}" + (f" (edit {edited})" if edited else "")
    body = [f"UID:bench-{i:05d}@example.org\r\n", stamp, f"SEQUENCE:{edited}\r\n", _fold(f"SUMMARY:{title}")]
    tz = False
    kind = i % 20
    if kind < 13:  # timed, in a named zone
        tz = True
        body.append(f"DTSTART;TZID=Europe/Berlin:{y}{m:02d}{d:02d}T{8 + slot:02d}0000\r\n")
        body.append(f"DTEND;TZID=Europe/Berlin:{y}{m:02d}{d:02d}T{8 + slot:02d}4500\r\n")
    elif kind < 17:  # timed, UTC
        body.append(f"DTSTART:{y}{m:02d}{d:02d}T{7 + slot:02d}3000Z\r\nDTEND:{y}{m:02d}{d:02d}T{8 + slot:02d}0000Z\r\n")
    else:  # all-day
        body.append(f"DTSTART;VALUE=DATE:{y}{m:02d}{d:02d}\r\nDURATION:P1D\r\nTRANSP:TRANSPARENT\r\n")
    if i % 3 == 0:
        text = f"Agenda for {title}:\\n1. status\\, blockers\\; next steps\\n2. notes " + "lorem ipsum " * 8
        body.append(_fold(f"DESCRIPTION:{text}"))
    if i % 4 == 0:
        body.append(f"LOCATION:Room {i % 9}\\, Building {i % 3}\r\n")
    if i % 5 == 0:
        body.append(_fold('ORGANIZER;CN="Ana Organizer":mailto:ana@example.org'))
        for a in range(1 + i % 3):
            body.append(_fold(f'ATTENDEE;CN="Guest {a}";ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION:mailto:g{a}@example.org'))
    if i % 2 == 0:
        body.append("BEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:Reminder\r\nTRIGGER:-PT15M\r\nEND:VALARM\r\n")
    overrides = []
    if i % 100 == 7:  # a weekly series (20 a 2,000), an EXDATE and two moved/renamed exceptions
        tz = True
        body = [b for b in body if not b.startswith(("DTSTART", "DTEND", "DURATION", "TRANSP"))]
        first = f"{y}{m:02d}{d:02d}"
        body.append(f"DTSTART;TZID=Europe/Berlin:{first}T100000\r\nDTEND;TZID=Europe/Berlin:{first}T110000\r\n")
        body.append("RRULE:FREQ=WEEKLY;COUNT=30\r\n")
        from datetime import date, timedelta

        start = date(y, m, d)
        week = [(start + timedelta(weeks=n)).strftime("%Y%m%d") for n in (2, 5, 9)]
        body.append(f"EXDATE;TZID=Europe/Berlin:{week[0]}T100000\r\n")
        for n, w in enumerate(week[1:]):
            overrides.append(
                f"BEGIN:VEVENT\r\nUID:bench-{i:05d}@example.org\r\n{stamp}"
                f"RECURRENCE-ID;TZID=Europe/Berlin:{w}T100000\r\nSUMMARY:{title} (moved {n})\r\n"
                f"DTSTART;TZID=Europe/Berlin:{w}T140000\r\nDTEND;TZID=Europe/Berlin:{w}T150000\r\nEND:VEVENT\r\n"
            )
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Chronary bench//EN\r\nCALSCALE:GREGORIAN\r\n"
        + (VTIMEZONE if tz else "")
        + "BEGIN:VEVENT\r\n"
        + "".join(body)
        + "END:VEVENT\r\n"
        + "".join(overrides)
        + "END:VCALENDAR\r\n"
    )


def fill(root: Path, url: str, count: int) -> Path:
    from caldav.davclient import DAVClient

    client = DAVClient(url=url, username=USER, password=PASSWORD, auth_type="basic")
    client.principal().make_calendar(name="Bench", cal_id=CAL)
    folder = root / "store" / "collection-root" / USER / CAL
    for i in range(count):
        (folder / f"bench-{i:05d}.ics").write_text(resource(i), newline="")
    return folder


def _report(url: str, body: str) -> None:
    req = urllib.request.Request(f"{url}{USER}/{CAL}/", data=body.encode(), method="REPORT")
    req.add_header("Depth", "1")
    req.add_header("Content-Type", "application/xml")
    req.add_header("Authorization", "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode())
    with urllib.request.urlopen(req, timeout=600) as resp:
        resp.read()


def warm(url: str) -> float:
    """Build Radicale's one-off caches before anyone is timed: a listing with bodies (its item
    cache: it parses every item the first time) and a sync-collection (its per-item history,
    which a server whose items came in by PUT already has; the bench wrote them to disk)."""
    t = time.perf_counter()
    _report(
        url,
        '<?xml version="1.0" encoding="utf-8"?><C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
        '<D:prop><D:getetag/><C:calendar-data/></D:prop><C:filter><C:comp-filter name="VCALENDAR"/></C:filter>'
        "</C:calendar-query>",
    )
    _report(
        url,
        '<?xml version="1.0" encoding="utf-8"?><D:sync-collection xmlns:D="DAV:"><D:sync-token/>'
        "<D:sync-level>1</D:sync-level><D:prop><D:getetag/></D:prop></D:sync-collection>",
    )
    return time.perf_counter() - t


class RequestLog:
    """Counts the requests Radicale logged (one info line per request) since the last mark."""

    PATTERN = re.compile(r"(\w+) request for '([^']*)'")

    def __init__(self, path: Path) -> None:
        self.path, self.offset = path, 0

    def mark(self) -> None:
        time.sleep(0.05)  # let the server flush its last line
        self.offset = self.path.stat().st_size

    def since(self) -> list[str]:
        time.sleep(0.05)
        with self.path.open("rb") as f:
            f.seek(self.offset)
            text = f.read().decode("utf-8", "replace")
        return [f"{m.group(1)} {m.group(2)}" for m in self.PATTERN.finditer(text)]


def find_vdirsyncer(given: str | None) -> str:
    for candidate in (given, shutil.which("vdirsyncer"), "/tmp/vdir/bin/vdirsyncer"):
        if candidate and Path(candidate).exists():
            return candidate
    raise SystemExit(
        "vdirsyncer not found: python3 -m venv /tmp/vdir && /tmp/vdir/bin/pip install vdirsyncer, or --vdirsyncer PATH"
    )


class Vdirsyncer:
    """One vdirsyncer pair per repeat: the remote calendar into a new, empty filesystem storage."""

    def __init__(self, exe: str, root: Path, url: str, count: int) -> None:
        self.exe, self.root, self.url, self.count = exe, root, url, count
        self.env: dict[str, str] = {}

    def run(self, *args: str) -> float:
        t = time.perf_counter()
        proc = subprocess.run([self.exe, *args], env=self.env, input=b"y\n" * 4, capture_output=True, timeout=600)
        elapsed = time.perf_counter() - t
        if proc.returncode != 0:
            raise SystemExit(f"vdirsyncer {' '.join(args)} failed:\n{proc.stderr.decode()[-2000:]}")
        return elapsed

    def pair(self, n: int) -> None:
        home = self.root / f"vdir-{n}"
        (home / "local").mkdir(parents=True)
        (home / "status").mkdir()
        self.local = home / "local"
        config = home / "config"
        config.write_text(
            textwrap.dedent(f"""\
            [general]
            status_path = "{home / "status"}/"

            [pair bench]
            a = "bench_remote"
            b = "bench_local"
            collections = null
            conflict_resolution = "a wins"

            [storage bench_remote]
            type = "caldav"
            url = "{self.url}{USER}/{CAL}/"
            username = "{USER}"
            password = "{PASSWORD}"

            [storage bench_local]
            type = "filesystem"
            path = "{home / "local"}/"
            fileext = ".ics"
            """)
        )
        self.env = {**os.environ, "VDIRSYNCER_CONFIG": str(config)}
        self.env.pop("PYTHONPATH", None)

    def initial(self, n: int) -> tuple[float, float]:
        """(discover, sync) seconds of a new pair."""
        self.pair(n)
        discover = self.run("discover", "bench")
        sync = self.run("sync", "bench")
        written = len(list(self.local.glob("*.ics")))
        if written != self.count:
            raise SystemExit(f"vdirsyncer wrote {written} items, expected {self.count}")
        return discover, sync


class Chronary:
    """A new data dir and connection per repeat; the engine round the scheduler runs, timed."""

    def __init__(self, root: Path, url: str, log: RequestLog) -> None:
        self.root, self.url, self.log = root, url, log

    async def open(self, n: int) -> None:
        from chronary.config import Settings
        from chronary.runtime import open_runtime
        from chronary.schemas.agents import AgentCreate
        from chronary.schemas.connections import CalendarChoice, ConnectionCreate, ConnectionUpdate
        from chronary.services import agents, connections
        from chronary.services.context import Ctx, Principal

        self.runtime = runtime = open_runtime(Settings(data_dir=self.root / f"data-{n}", workers=False, port=free_port()))
        principal = Principal(runtime.org_id, "key_bench")
        ctx = Ctx(principal, runtime.settings.base_url)
        agent = await runtime.db.write(lambda tx: agents.create(tx, principal, AgentCreate(name="Bench")))
        con = await connections.connect(
            runtime,
            principal,
            ConnectionCreate(provider="caldav", agent_id=agent.id, username=USER, password=PASSWORD, server_url=self.url),
        )
        choice = ConnectionUpdate(calendars=[CalendarChoice(remote_id=f"/{USER}/{CAL}/", sync=True)])
        await runtime.db.write(lambda tx: connections.update(tx, ctx, con.id, choice))
        self.con_id = con.id

    async def round(self) -> tuple[float, dict[str, Any], list[str]]:
        from chronary.services.sync.engine import sync_connection

        self.log.mark()
        t = time.perf_counter()
        result = await sync_connection(self.runtime, self.con_id)
        elapsed = time.perf_counter() - t
        requests = self.log.since()
        assert result is not None and result["error"] is None, result
        return elapsed, result, requests

    async def stored(self) -> int:
        return int(
            await self.runtime.db.read(
                lambda tx: next(iter(tx.conn.execute("SELECT count(*) AS n FROM events WHERE source = 'caldav'")))["n"]
            )
        )

    def close(self) -> None:
        self.runtime.db.close()


def summary(requests: list[str]) -> str:
    counts: dict[str, int] = {}
    for r in requests:
        method = r.split(" ", 1)[0]
        counts[method] = counts.get(method, 0) + 1
    return ", ".join(f"{n} {m}" for m, n in sorted(counts.items()))


async def main(args: argparse.Namespace) -> None:
    exe = find_vdirsyncer(args.vdirsyncer)
    n = args.events
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        port = free_port()
        log = RequestLog(root / "radicale.log")
        proc = start_radicale(root, port, log.path)
        url = f"http://127.0.0.1:{port}/"
        try:
            folder = fill(root, url, n)
            warm_time = warm(url)
            vdir = Vdirsyncer(exe, root, url, n)
            startup = min(vdir.run("--help") for _ in range(3))
            ours = Chronary(root, url, log)
            theirs: list[float] = []
            discovers: list[float] = []
            mine: list[float] = []
            for r in range(args.repeat):  # alternate, so both see the same machine load
                discover, sync = vdir.initial(r)
                discovers.append(discover)
                theirs.append(sync)
                await ours.open(r)
                elapsed, first, initial_requests = await ours.round()
                mine.append(elapsed)
                if r < args.repeat - 1:
                    ours.close()
            their_idle = vdir.run("sync", "bench")
            stored = await ours.stored()
            idle = [await ours.round() for _ in range(args.idle_rounds)]
            for i in range(args.changes):  # edits on the server side, then one round
                k = i * (n // max(args.changes, 1))
                (folder / f"bench-{k:05d}.ics").write_text(resource(k, edited=1), newline="")
            changed, changed_result, changed_requests = await ours.round()
            ours.close()
        finally:
            proc.terminate()
            proc.wait(timeout=10)

    strict = [t - startup for t in theirs]
    med = statistics.median
    print(f"{n} resources on Radicale ({n // 100} weekly series, 2 exceptions each); load {os.getloadavg()[0]:.2f}")
    print(f"{args.repeat} alternating repeats; seconds as median (min - max)")
    print(f"{'measure':42} {'seconds':>8} {'range':>13} {'items/s':>8}  requests")

    def row(name: str, values: list[float], requests: str = "", rated: bool = True) -> None:
        span = f"{min(values):.2f}-{max(values):.2f}" if len(values) > 1 else ""
        rate = f"{n / med(values):8.0f}" if rated else f"{'-':>8}"
        print(f"{name:42} {med(values):8.2f} {span:>13} {rate}  {requests}")

    row("radicale first listing (warm-up, untimed)", [warm_time], rated=False)
    row("vdirsyncer process start-up (--help)", [startup], rated=False)
    row("vdirsyncer discover (not compared)", discovers, rated=False)
    row("vdirsyncer initial sync (wall)", theirs)
    row("vdirsyncer initial sync minus start-up", strict)
    row("vdirsyncer idle sync (wall)", [their_idle], rated=False)
    row("chronary initial sync (engine round)", mine, f"{len(initial_requests)} ({summary(initial_requests)})")
    idle_counts = [len(r) for _, _, r in idle]
    row(
        "chronary idle incremental round",
        [t for t, _, _ in idle],
        f"{max(idle_counts)} max ({summary(idle[-1][2])}); pulled {max(x['pulled'] for _, x, _ in idle)}",
        rated=False,
    )
    row(
        f"chronary round after {args.changes} remote edits",
        [changed],
        f"{len(changed_requests)} ({summary(changed_requests)}); pulled {changed_result['pulled']}",
        rated=False,
    )
    print(f"pulled {first['pulled']} of {n} resources; {stored} events stored (exceptions are rows of their own)")
    print(f"ratio chronary / vdirsyncer, medians (wall):           {med(mine) / med(theirs):.2f}")
    print(f"ratio chronary / vdirsyncer, medians (minus start-up): {med(mine) / med(strict):.2f}   target <= 0.50")
    print(f"idle round requests per calendar: {max(idle_counts)}   target <= 2")


if __name__ == "__main__":
    sys.path.append(str(Path(__file__).resolve().parent.parent))  # after PYTHONPATH: --before runs the old code
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=2000, help="resources on the server before the first sync")
    parser.add_argument("--idle-rounds", type=int, default=5, help="incremental rounds with nothing changed")
    parser.add_argument("--changes", type=int, default=20, help="resources edited on the server before the last round")
    parser.add_argument("--repeat", type=int, default=3, help="initial syncs of each tool, alternating")
    parser.add_argument("--vdirsyncer", help="path of the vdirsyncer executable (default: on PATH, or /tmp/vdir/bin)")
    asyncio.run(main(parser.parse_args()))

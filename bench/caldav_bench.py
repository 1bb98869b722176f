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
    import caldav

    client = caldav.DAVClient(url=url, username=USER, password=PASSWORD, auth_type="basic")
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


def run_vdirsyncer(exe: str, root: Path, url: str, count: int) -> dict[str, float]:
    home = root / "vdir"
    (home / "local").mkdir(parents=True)
    (home / "status").mkdir()
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
        url = "{url}{USER}/{CAL}/"
        username = "{USER}"
        password = "{PASSWORD}"

        [storage bench_local]
        type = "filesystem"
        path = "{home / "local"}/"
        fileext = ".ics"
        """)
    )
    env = {**os.environ, "VDIRSYNCER_CONFIG": str(config)}
    env.pop("PYTHONPATH", None)

    def run(*args: str) -> float:
        t = time.perf_counter()
        proc = subprocess.run([exe, *args], env=env, input=b"y\n" * 4, capture_output=True, timeout=600)
        elapsed = time.perf_counter() - t
        if proc.returncode != 0:
            raise SystemExit(f"vdirsyncer {' '.join(args)} failed:\n{proc.stderr.decode()[-2000:]}")
        return elapsed

    startup = min(run("--help") for _ in range(3))
    discover = run("discover", "bench")
    sync = run("sync", "bench")
    written = len(list((home / "local").glob("*.ics")))
    if written != count:
        raise SystemExit(f"vdirsyncer wrote {written} items, expected {count}")
    idle = run("sync", "bench")
    return {"startup": startup, "discover": discover, "sync": sync, "idle": idle}


async def run_chronary(root: Path, url: str, args: argparse.Namespace, log: RequestLog, folder: Path) -> dict[str, object]:
    from chronary.config import Settings
    from chronary.runtime import open_runtime
    from chronary.schemas.agents import AgentCreate
    from chronary.schemas.connections import CalendarChoice, ConnectionCreate, ConnectionUpdate
    from chronary.services import agents, connections
    from chronary.services.context import Ctx, Principal
    from chronary.services.sync.engine import sync_connection

    runtime = open_runtime(Settings(data_dir=root / "data", workers=False, port=free_port()))
    try:
        principal = Principal(runtime.org_id, "key_bench")
        ctx = Ctx(principal, runtime.settings.base_url)
        agent = await runtime.db.write(lambda tx: agents.create(tx, principal, AgentCreate(name="Bench")))
        con = await connections.connect(
            runtime,
            principal,
            ConnectionCreate(provider="caldav", agent_id=agent.id, username=USER, password=PASSWORD, server_url=url),
        )
        choice = ConnectionUpdate(calendars=[CalendarChoice(remote_id=f"/{USER}/{CAL}/", sync=True)])
        await runtime.db.write(lambda tx: connections.update(tx, ctx, con.id, choice))

        log.mark()
        t = time.perf_counter()
        first = await sync_connection(runtime, con.id)
        initial = time.perf_counter() - t
        initial_requests = log.since()
        assert first is not None and first["error"] is None, first
        stored = await runtime.db.read(
            lambda tx: next(iter(tx.conn.execute("SELECT count(*) AS n FROM events WHERE source = 'caldav'")))["n"]
        )

        idle_times, idle_requests = [], []
        for _ in range(args.idle_rounds):
            log.mark()
            t = time.perf_counter()
            result = await sync_connection(runtime, con.id)
            idle_times.append(time.perf_counter() - t)
            idle_requests.append(log.since())
            assert result is not None and result["error"] is None and result["pulled"] == 0, result

        for i in range(args.changes):  # edits on the server side, then one round
            n = i * (args.events // max(args.changes, 1))
            (folder / f"bench-{n:05d}.ics").write_text(resource(n, edited=1), newline="")
        log.mark()
        t = time.perf_counter()
        changed = await sync_connection(runtime, con.id)
        changed_time = time.perf_counter() - t
        changed_requests = log.since()
        assert changed is not None and changed["error"] is None, changed
    finally:
        runtime.db.close()
    return {
        "initial": initial,
        "pulled": first["pulled"],
        "stored": stored,
        "initial_requests": initial_requests,
        "idle": idle_times,
        "idle_requests": idle_requests,
        "changed": changed_time,
        "changed_pulled": changed["pulled"],
        "changed_requests": changed_requests,
    }


def summary(requests: list[str]) -> str:
    counts: dict[str, int] = {}
    for r in requests:
        method = r.split(" ", 1)[0]
        counts[method] = counts.get(method, 0) + 1
    return ", ".join(f"{n} {m}" for m, n in sorted(counts.items()))


async def main(args: argparse.Namespace) -> None:
    exe = find_vdirsyncer(args.vdirsyncer)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        port = free_port()
        log_path = root / "radicale.log"
        proc = start_radicale(root, port, log_path)
        url = f"http://127.0.0.1:{port}/"
        try:
            folder = fill(root, url, args.events)
            warm_time = warm(url)
            vdir = run_vdirsyncer(exe, root, url, args.events)
            ours = await run_chronary(root, url, args, RequestLog(log_path), folder)
        finally:
            proc.terminate()
            proc.wait(timeout=10)

    n = args.events
    strict = vdir["sync"] - vdir["startup"]
    print(f"{n} resources on Radicale ({n // 100} weekly series, 2 exceptions each); load {os.getloadavg()[0]:.2f}")
    print(f"{'measure':44} {'seconds':>8} {'items/s':>8}  requests")
    print(f"{'radicale first listing (warm-up, untimed)':44} {warm_time:8.2f} {n / warm_time:8.0f}")
    print(f"{'vdirsyncer process start-up (--help)':44} {vdir['startup']:8.2f} {'-':>8}")
    print(f"{'vdirsyncer discover (not compared)':44} {vdir['discover']:8.2f} {'-':>8}")
    print(f"{'vdirsyncer initial sync (wall)':44} {vdir['sync']:8.2f} {n / vdir['sync']:8.0f}")
    print(f"{'vdirsyncer initial sync minus start-up':44} {strict:8.2f} {n / strict:8.0f}")
    print(f"{'vdirsyncer idle sync (wall)':44} {vdir['idle']:8.2f} {'-':>8}")
    initial = float(ours["initial"])  # type: ignore[arg-type]
    reqs = ours["initial_requests"]
    assert isinstance(reqs, list)
    print(f"{'chronary initial sync (engine round)':44} {initial:8.2f} {n / initial:8.0f}  {len(reqs)} ({summary(reqs)})")
    idle = ours["idle"]
    idle_reqs = ours["idle_requests"]
    assert isinstance(idle, list) and isinstance(idle_reqs, list)
    counts = [len(r) for r in idle_reqs]
    print(
        f"{'chronary idle incremental round (median)':44} {statistics.median(idle):8.3f} {'-':>8}  "
        f"{max(counts)} max ({summary(idle_reqs[-1])})"
    )
    changed_reqs = ours["changed_requests"]
    assert isinstance(changed_reqs, list)
    print(
        f"{'chronary round after ' + str(args.changes) + ' remote edits':44} {float(ours['changed']):8.3f} {'-':>8}  "  # type: ignore[arg-type]
        f"{len(changed_reqs)} ({summary(changed_reqs)}); pulled {ours['changed_pulled']}"
    )
    print(f"pulled {ours['pulled']} of {n} resources; {ours['stored']} events stored (exceptions are rows of their own)")
    print(f"ratio chronary / vdirsyncer (wall):            {initial / vdir['sync']:.2f}")
    print(f"ratio chronary / vdirsyncer (minus start-up):  {initial / strict:.2f}   target <= 0.50")
    print(f"idle round requests per calendar: {max(counts)}   target <= 2")


if __name__ == "__main__":
    sys.path.append(str(Path(__file__).resolve().parent.parent))  # after PYTHONPATH: --before runs the old code
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=2000, help="resources on the server before the first sync")
    parser.add_argument("--idle-rounds", type=int, default=5, help="incremental rounds with nothing changed")
    parser.add_argument("--changes", type=int, default=20, help="resources edited on the server before the last round")
    parser.add_argument("--vdirsyncer", help="path of the vdirsyncer executable (default: on PATH, or /tmp/vdir/bin)")
    asyncio.run(main(parser.parse_args()))

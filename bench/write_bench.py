"""Event create vs GET /health: the create rate as a share of the cheapest route's (issue 20, item 1).

Method: one `chronary serve` subprocess (bench/api_bench.local_server: throw-away data dir, the
default settings, workers on, no webhook endpoint or connection) and one load generator, wrk,
with 8 connections on one thread: `GET /health`, then `POST /v1/calendars/{id}/events` with an
org key and a unique title and start per request (a Lua counter), alternated for `--rounds`
rounds of `--seconds` each; each route's rate is the mean of its rounds. Both figures come from
the same run on the same server and client, so the ratio create/health holds on a noisy machine
where absolute figures do not (alternating spreads a change in the machine's load over both). A
short warm-up of each precedes the measured rounds. Bounded: each wrk run stops after `--seconds`.

    .venv/bin/python bench/write_bench.py                 # 3 rounds of 5 s per route, 8 connections
    .venv/bin/python bench/write_bench.py --rounds 5 --seconds 4
    PYTHONPATH=/tmp/base-1e91ad2 .venv/bin/python bench/write_bench.py    # the code before

Needs wrk (`apt-get install -y wrk`). Exits non-zero when a request failed.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from api_bench import target  # noqa: E402

CREATE_LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {key}"
local n = 0
request = function()
  n = n + 1
  local start = 1900000000 + (n % 50000) * 3600
  local body = string.format(
    '{{"title":"bench %d","start_time":"%s","end_time":"%s","metadata":{{"i":%d}}}}',
    n, os.date("!%Y-%m-%dT%H:%M:%SZ", start), os.date("!%Y-%m-%dT%H:%M:%SZ", start + 1800), n)
  return wrk.format(nil, "{path}", nil, body)
end
done = function(summary, latency, requests)
  io.write(string.format("NON2XX %d\\n", summary.errors.status))
end
"""

STATUS_LUA = """
done = function(summary, latency, requests)
  io.write(string.format("NON2XX %d\\n", summary.errors.status))
end
"""


def wrk(url: str, script: Path, seconds: float, connections: int) -> tuple[float, int, str]:
    """(requests/s, failed requests, wrk's latency line) of one wrk run."""
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    ).stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    bad = re.search(r"NON2XX (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    latency = re.search(r"^\s+Latency\s+(.*)$", out, re.M)
    if rate is None:
        raise SystemExit("could not read wrk's output:\n" + out)
    failed = int(bad.group(1)) if bad else 0
    if socket_errors:
        failed += sum(int(n) for n in re.findall(r"\d+", socket_errors.group(1)))
    return float(rate.group(1)), failed, (latency.group(1).split() if latency else ["?"])[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each measured wrk run (default 5)")
    parser.add_argument("--rounds", type=int, default=3, help="alternated rounds of health then create (default 3)")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections (default 8)")
    parser.add_argument("--url", help="use this running server instead of starting one")
    parser.add_argument("--key", help="org key for --url")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")

    with target(args.url, args.key) as (base, key), tempfile.TemporaryDirectory() as tmp:
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30) as c:
            agent = c.post("/v1/agents", json={"name": "bench"}).json()
            cal = c.post(f"/v1/agents/{agent['id']}/calendars", json={"name": "bench", "timezone": "UTC"}).json()
        path = f"/v1/calendars/{cal['id']}/events"
        create_lua, status_lua = Path(tmp, "create.lua"), Path(tmp, "status.lua")
        create_lua.write_text(CREATE_LUA.format(key=key, path=path))
        status_lua.write_text(STATUS_LUA)
        wrk(f"{base}/health", status_lua, 2, args.connections)  # warm-up
        wrk(f"{base}{path}", create_lua, 2, args.connections)
        health: list[tuple[float, int, str]] = []
        create: list[tuple[float, int, str]] = []
        for _ in range(args.rounds):  # alternated, so a change in the machine's load hits both
            health.append(wrk(f"{base}/health", status_lua, args.seconds, args.connections))
            create.append(wrk(f"{base}{path}", create_lua, args.seconds, args.connections))

    print(
        f"Chronary write bench — wrk -t1 -c{args.connections}, {args.rounds} round(s) of {args.seconds:g} s "
        f"per route — {os.cpu_count()} CPUs"
    )
    print(f"{'route':<22} {'req/s':>9} {'rounds':>22} {'failed':>7}")
    rates = {}
    for name, runs in (("GET /health", health), ("POST event (create)", create)):
        rates[name] = sum(r[0] for r in runs) / len(runs)
        each = " ".join(f"{r[0]:.0f}" for r in runs)
        print(f"{name:<22} {rates[name]:>9.0f} {each:>22} {sum(r[1] for r in runs):>7}")
    print(f"create / health: {rates['POST event (create)'] / rates['GET /health']:.2f}  (target >= 0.50)")
    if any(r[1] for r in health + create):
        sys.exit(1)


if __name__ == "__main__":
    main()

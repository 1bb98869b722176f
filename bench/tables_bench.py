"""Connect tables at 100,000 rows: bulk import, then lookups, upserts and filters by a column.

Not a test: it prints numbers. By default it starts `python -m chronary serve` on a free port
with a throw-away data dir (its own process, like production; see api_bench.py), creates one
table, imports N rows through `POST /connect/v1/tables/{slug}/import` in chunks under the 1 MiB
body cap, then times single requests over keep-alive connections (p50/p99).

    .venv/bin/python bench/tables_bench.py                     # 100,000 rows, 2,000 requests per measure
    .venv/bin/python bench/tables_bench.py --rows 20000 --requests 500
    .venv/bin/python bench/tables_bench.py --concurrency 4
    .venv/bin/python bench/tables_bench.py --url http://127.0.0.1:8765 --key chr_sk_…   # a server you started
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time

import httpx
from api_bench import HEADER, Result, run, target

SLUG = "bench"
TABLE = {
    "name": "Bench",
    "slug": SLUG,
    "columns": [
        {"name": "key", "type": "text"},
        {"name": "email", "type": "text", "unique": True},
        {"name": "n", "type": "number"},
        {"name": "flag", "type": "boolean"},
        {"name": "at", "type": "datetime"},
        {"name": "note", "type": "text"},
        {"name": "meta", "type": "json"},
    ],
    "keyColumn": "key",
}


def row(i: int) -> dict[str, object]:
    return {
        "key": f"K{i:07d}",
        "email": f"user{i}@example.org",
        "n": i % 1000,  # 1,000 distinct values: each matches rows/1000 rows
        "flag": i % 2 == 0,
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(1_900_000_000 + i * 60)),
        "note": f"row number {i}",
        "meta": {"i": i},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000, help="rows imported (default 100000)")
    parser.add_argument("--chunk", type=int, default=5000, help="rows per import request (default 5000, ~0.9 MiB)")
    parser.add_argument("--requests", type=int, default=2000, help="requests per timed measure (default 2000)")
    parser.add_argument("--concurrency", type=int, default=1, help="concurrent clients (default 1)")
    parser.add_argument("--url", help="use this running server instead of starting one")
    parser.add_argument("--key", help="org key for --url")
    args = parser.parse_args()
    if args.url and not args.key:
        parser.error("--url needs --key")

    base_path = f"/connect/v1/tables/{SLUG}"
    n_rows, total, conc = args.rows, args.requests, args.concurrency
    rng = random.Random(7)
    picks = [rng.randrange(n_rows) for _ in range(total)]
    with target(args.url, args.key) as (base, key):
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=base, headers=headers, timeout=600) as c:
            r = c.post("/connect/v1/tables", json=TABLE)
            if r.status_code != 201:
                raise SystemExit(f"could not create the table: {r.status_code} {r.text}")
            t0 = time.perf_counter()
            chunk_ms: list[float] = []
            for start in range(0, n_rows, args.chunk):
                body = {"rows": [row(i) for i in range(start, min(n_rows, start + args.chunk))]}
                t1 = time.perf_counter()
                r = c.post(f"{base_path}/import", json=body)
                chunk_ms.append((time.perf_counter() - t1) * 1000)
                if r.status_code != 200 or r.json()["imported"] != len(body["rows"]):
                    raise SystemExit(f"import failed: {r.status_code} {r.text[:500]}")
            imported = Result(f"import ({args.chunk}/request)", len(chunk_ms), 1, time.perf_counter() - t0, chunk_ms, 0)
            count = c.get(base_path).json()["rowCount"]
            assert count == n_rows, count

        def lookup_key(client: httpx.Client, i: int) -> httpx.Response:
            return client.get(f"{base_path}/rows/lookup", params={"column": "key", "value": f"K{picks[i]:07d}"})

        def lookup_email(client: httpx.Client, i: int) -> httpx.Response:
            return client.get(f"{base_path}/rows/lookup", params={"column": "email", "value": f"user{picks[i]}@example.org"})

        def lookup_number(client: httpx.Client, i: int) -> httpx.Response:
            return client.get(f"{base_path}/rows/lookup", params={"column": "n", "value": str(picks[i] % 1000)})

        def upsert_existing(client: httpx.Client, i: int) -> httpx.Response:
            return client.post(f"{base_path}/rows/upsert", json={"values": {"key": f"K{picks[i]:07d}", "note": f"v{i}"}})

        def upsert_new(client: httpx.Client, i: int) -> httpx.Response:
            return client.post(f"{base_path}/rows/upsert", json={"values": row(n_rows + i)})

        def upsert_email(client: httpx.Client, i: int) -> httpx.Response:
            return client.post(
                f"{base_path}/rows/upsert",
                json={"column": "email", "values": {"email": f"user{picks[i]}@example.org", "n": i}},
            )

        def filter_page(client: httpx.Client, i: int) -> httpx.Response:
            return client.get(f"{base_path}/rows", params={"filter[n]": str(i % 1000), "limit": 50})

        def sort_page(client: httpx.Client, i: int) -> httpx.Response:
            return client.get(f"{base_path}/rows", params={"sort": "-at", "limit": 50, "offset": (i * 50) % 1000})

        results = [imported]
        results.append(run("lookup by key", total, conc, base, key, lookup_key, 200))
        results.append(run("lookup by email (uniq)", total, conc, base, key, lookup_email, 200))
        results.append(run("lookup by n (non-uniq)", total, conc, base, key, lookup_number, 200))
        results.append(run("upsert by key (update)", total, conc, base, key, upsert_existing, 200))
        results.append(run("upsert by key (insert)", total, conc, base, key, upsert_new, 200))
        results.append(run("upsert by email", total, conc, base, key, upsert_email, 200))
        results.append(run("filter n=x, page 50", total, conc, base, key, filter_page, 200))
        results.append(run("sort -at, page 50", max(1, total // 20), conc, base, key, sort_page, 200))
        with httpx.Client(base_url=base, headers=headers, timeout=600) as c:
            t0 = time.perf_counter()
            with c.stream("GET", f"{base_path}/export", params={"format": "csv"}) as r:
                size = sum(len(b) for b in r.iter_raw())
            seconds = time.perf_counter() - t0
            results.append(
                Result("export csv (all rows)", 1, 1, seconds, [seconds * 1000], 0 if r.status_code == 200 else 1)
            )

    print(f"Chronary tables bench — {base} — {n_rows} rows — python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    print(f"import: {n_rows / imported.seconds:,.0f} rows/s; export: {size / 1e6:.1f} MB in {seconds:.2f} s")
    print(HEADER)
    print("-" * len(HEADER))
    for result in results:
        print(result.row())
    if any(result.errors for result in results):
        sys.exit(1)


if __name__ == "__main__":
    main()

"""Start-up time: from exec to the first 200 on GET /health, on a fresh data dir (issue 20, item 7).

Not a test: it prints numbers. Each run starts the server as a new process on a free 127.0.0.1
port with a new empty temp data dir (so migrations, the first org key and, for the one-file
binary, unpacking its archive into a temp dir all count), polls /health every 5 ms over a new
connection, records the time from `Popen` to the first 200, then stops the server (SIGINT) and
waits for it. Runs are sequential and bounded (`--runs`, each capped at `--timeout` seconds).

    .venv/bin/python bench/startup_bench.py                        # source: python -m chronary serve
    .venv/bin/python bench/startup_bench.py --binary dist/chronary # and a one-file binary you built
    .venv/bin/python bench/startup_bench.py --build                # build dist/chronary first, then both
    .venv/bin/python bench/startup_bench.py --source-path /old/checkout --binary old/chronary \
        --binary dist/chronary                                     # before and after in one run

Targets take turns run by run (A B A B …), so on a shared machine each sees the same load.

Prints, per target, the median and minimum seconds to /health and each run's figure, plus the
median CPU seconds (user + system, read from /proc when /health first answered) the server had
used by then, its child processes included (the one-file binary's bootloader unpacks, then
spawns the Python process): on a machine loaded by other jobs the CPU figure moves much less
than the wall clock, which waits for the cores too.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by `pid` and its descendants, from /proc (Linux)."""
    total = 0.0
    stack = [pid]
    while stack:
        current = stack.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime
            for task in Path(f"/proc/{current}/task").iterdir():
                stack.extend(int(c) for c in (task / "children").read_text().split())
        except (OSError, ValueError, IndexError):
            continue
    return total


_TICKS = os.sysconf("SC_CLK_TCK")


def time_to_health(command: list[str], timeout: float, extra_env: dict[str, str]) -> tuple[float, float]:
    """(seconds from exec to the first 200 on /health, CPU seconds the server had used by then)."""
    with tempfile.TemporaryDirectory(prefix="chronary-startup-") as data:
        port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHRONARY_")}
        env.update(CHRONARY_LOG_LEVEL="warning", CHRONARY_DATA_DIR=data, CHRONARY_PORT=str(port), **extra_env)
        url = f"http://127.0.0.1:{port}/health"
        start = time.perf_counter()
        # cwd: not the checkout, so `python -m chronary` imports what PYTHONPATH or the venv names
        proc = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=data,
        )
        try:
            while True:
                elapsed = time.perf_counter() - start
                if proc.poll() is not None:
                    raise RuntimeError(f"{command} exited with {proc.returncode} before answering /health")
                if elapsed > timeout:
                    raise RuntimeError(f"{command} did not answer /health within {timeout} s")
                try:
                    if httpx.get(url, timeout=1.0).status_code == 200:
                        wall = time.perf_counter() - start
                        cpu = _tree_cpu(proc.pid)
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.005)
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    return wall, cpu


@dataclass
class Target:
    name: str
    command: list[str]
    env: dict[str, str] = field(default_factory=dict)
    walls: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)


def bench(targets: list[Target], runs: int, timeout: float) -> None:
    """Runs interleaved (A B A B …) so a neighbour's load falls on every target alike."""
    for target in targets:
        time_to_health(target.command, timeout, target.env)  # warm-up: page cache, .pyc files
    for _ in range(runs):
        for target in targets:
            wall, cpu = time_to_health(target.command, timeout, target.env)
            target.walls.append(wall)
            target.cpus.append(cpu)
    for target in targets:
        shown = " ".join(f"{t:.3f}" for t in target.walls)
        print(
            f"{target.name:<16} to /health: median {statistics.median(target.walls):.3f} s"
            f"  min {min(target.walls):.3f} s  | CPU median {statistics.median(target.cpus):.3f} s  | runs: {shown}",
            flush=True,
        )


def build(dist: Path) -> Path:
    subprocess.run(
        ["bash", str(ROOT / "packaging" / "build-binary.sh"), str(dist)],
        check=True,
        env={**os.environ, "PYTHON": sys.executable},
        stdin=subprocess.DEVNULL,
    )
    return dist / "chronary"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", type=Path, action="append", default=[], help="a built one-file binary (repeatable)")
    parser.add_argument("--build", action="store_true", help="build dist/chronary first and time it")
    parser.add_argument(
        "--source-path", action="append", default=[], help="also time `serve` from this checkout (PYTHONPATH; repeatable)"
    )
    parser.add_argument("--no-source", action="store_true", help="skip `python -m chronary serve` from this checkout")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args()
    serve = [sys.executable, "-m", "chronary", "serve"]
    targets = [Target(f"source {Path(p).name}", serve, {"PYTHONPATH": str(Path(p).resolve())}) for p in args.source_path]
    if not args.no_source:
        targets.append(Target("source", serve))
    binaries = [*args.binary, *([build(ROOT / "dist")] if args.build else [])]
    targets += [Target(f"binary {b.parent.name}/{b.name}", [str(b.resolve())]) for b in binaries]
    bench(targets, args.runs, args.timeout)


if __name__ == "__main__":
    main()

"""Run `chronary …` as a real subprocess: the CLI commands, and `serve` until it answers /health.

Shared by tests/cli and tests/binary so the source checkout and the frozen binary are checked
the same way. Output (stdout and stderr merged) is collected by a reader thread, so a test can
look at what the server printed without ever blocking on a pipe.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx

CHRONARY = [sys.executable, "-m", "chronary"]
KEY_RE = re.compile(r"chr_sk_[A-Za-z0-9_-]{20,}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This environment without any CHRONARY_* setting (so the developer's own can't leak in)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHRONARY_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def run_cli(
    *args: str, env: Mapping[str, str] | None = None, timeout: float = 60, command: Sequence[str] = CHRONARY
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*command, *args], capture_output=True, text=True, env=clean_env(env), timeout=timeout, stdin=subprocess.DEVNULL
    )


def on_a_terminal(*args: str, command: Sequence[str] = CHRONARY) -> tuple[int, str, str]:
    """Run the CLI with stderr on a pseudo-terminal: (exit status, stdout, what the terminal showed)."""
    master, slave = os.openpty()
    env = clean_env({"TERM": "xterm-256color", "COLUMNS": "100"})
    proc = subprocess.Popen([*command, *args], stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL, env=env)
    os.close(slave)
    shown = b""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    out, _ = proc.communicate(timeout=60)
    os.close(master)
    return proc.returncode, out.decode(), shown.decode("utf-8", "replace")


class ServerProcess:
    """`chronary serve …` in a subprocess; `start()` returns once /health answers 200."""

    def __init__(
        self, args: Sequence[str], port: int, env: Mapping[str, str] | None = None, command: Sequence[str] = CHRONARY
    ) -> None:
        self.argv = [*command, *args]
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self.env = clean_env(env)
        self.lines: list[str] = []
        self.proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    def start(self, timeout: float = 30) -> ServerProcess:
        self.proc = subprocess.Popen(
            self.argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=self.env,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._reader.join(timeout=5)
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.output}")
            try:
                if httpx.get(f"{self.base_url}/health", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"server did not answer /health within {timeout} s:\n{self.output}")

    def first_key(self) -> str | None:
        found = KEY_RE.findall(self.output)
        return found[0] if found else None

    def client(self, key: str) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=10)

    def stop(self, timeout: float = 15) -> int | None:
        """SIGTERM (uvicorn shuts down cleanly), then SIGKILL if it hangs; returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        if self._reader is not None:
            self._reader.join(timeout=5)
        return self.proc.returncode

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def db_file(data_dir: Path) -> Path:
    return data_dir / "chronary.db"

"""Fixtures for CLI tests: a temp data dir and a factory of `chronary serve` subprocesses."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cli.serveproc import ServerProcess, free_port


@pytest.fixture
def serve(data_dir: Path) -> Iterator[Callable[..., ServerProcess]]:
    """serve(*extra_args, data_dir=…, env=…) -> a started `chronary serve` on a free port."""
    started: list[ServerProcess] = []

    def factory(
        *extra: str, data_dir: Path | None = data_dir, env: dict[str, str] | None = None, **kw: Any
    ) -> ServerProcess:
        port = free_port()
        args = ["serve", "--port", str(port), *extra]
        if data_dir is not None:
            args += ["--data-dir", str(data_dir)]
        server = ServerProcess(args, port, env=env, **kw)
        started.append(server)
        return server.start()

    yield factory
    for server in started:
        server.stop()

"""The web UI in a real headless Chromium (Debian's `chromium`, driven by Playwright through
`executable_path`) against a real `chronary serve` on a temp database.

Every page a test opens records its network requests and console messages: `ui.assert_clean()`
(run at teardown) fails the test if anything left 127.0.0.1 or the console logged an error.
Screenshots go to `build/ui-screenshots/` (README names it): `ui.shot(page, "name")`.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, ViewportSize, sync_playwright

from tests.cli.serveproc import ServerProcess, free_port

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "build" / "ui-screenshots"
LINK_RE = re.compile(r"http://127\.0\.0\.1:\d+/login\?token=[A-Za-z0-9_-]+")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
DESKTOP: ViewportSize = {"width": 1280, "height": 860}
PHONE: ViewportSize = {"width": 390, "height": 844}


@dataclass
class Ui:
    server: ServerProcess
    browser: Browser
    key: str
    requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    contexts: list[BrowserContext] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def api(self, key: str | None = None) -> httpx.Client:
        return self.server.client(key or self.key)

    def login_link(self) -> str:
        """A fresh one-time sign-in link, as `chronary login-link` prints it."""
        from tests.cli.serveproc import run_cli

        out = run_cli("login-link", "--data-dir", str(self.data_dir), env={"CHRONARY_PORT": str(self.server.port)})
        assert out.returncode == 0, out.stderr
        found = LINK_RE.findall(out.stdout)
        assert found, out.stdout
        return found[-1]

    data_dir: Path = Path()

    def page(self, viewport: ViewportSize | None = None, **options: Any) -> Page:
        context = self.browser.new_context(viewport=viewport or DESKTOP, **options)
        self.contexts.append(context)
        page = context.new_page()
        page.on("request", lambda req: self.requests.append(req.url))
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.console_errors.append(f"pageerror: {exc}"))
        page.set_default_timeout(10_000)
        return page

    def _console(self, msg: Any) -> None:
        """Console errors, except the browser's own note of an API answer that was an error on
        purpose (a 4xx the page then shows beside the field: that is the UI working)."""
        if msg.type != "error":
            return
        where = urlsplit((msg.location or {}).get("url") or "").path
        if msg.text.startswith("Failed to load resource") and where.startswith(("/v1/", "/auth/", "/login")):
            return
        self.console_errors.append(msg.text)

    def signed_in(self, viewport: ViewportSize | None = None) -> Page:
        """A page signed in as the org through a one-time link, on the calendar."""
        page = self.page(viewport)
        page.goto(self.login_link())
        page.wait_for_url(re.compile(r"/#/calendar$|/$"))
        page.wait_for_selector("#nav a", state="attached")  # folded away behind Menu on a phone
        return page

    def shot(self, page: Page, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    def assert_clean(self) -> None:
        outside = [
            u
            for u in self.requests
            if urlsplit(u).scheme in ("http", "https", "ws", "wss") and urlsplit(u).hostname not in ("127.0.0.1",)
        ]
        assert outside == [], f"requests left 127.0.0.1: {outside[:5]}"
        assert self.console_errors == [], f"console errors: {self.console_errors[:5]}"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), "Debian's chromium is needed (apt-get install -y chromium; .ci/run does it)"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def ui(browser: Browser, tmp_path: Path) -> Iterator[Ui]:
    data_dir = tmp_path / "data"
    port = free_port()
    server = ServerProcess(["serve", "--port", str(port), "--data-dir", str(data_dir), "--workers", "true"], port).start()
    try:
        key = server.first_key()
        assert key, server.output
        found = Ui(server, browser, key)
        found.data_dir = data_dir
        yield found
        for context in found.contexts:
            context.close()
        found.assert_clean()
    finally:
        server.stop()

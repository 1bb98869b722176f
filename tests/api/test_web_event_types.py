"""The web UI's webhook page offers exactly the types the server sends (no drift between them)."""

from __future__ import annotations

import re
from pathlib import Path

from chronary.webhooks.types import EVENT_TYPES

PAGE = Path(__file__).resolve().parents[2] / "web" / "assets" / "pages" / "webhooks.js"


def test_the_webhooks_page_lists_every_event_type() -> None:
    block = re.search(r"const EVENT_TYPES = \[(.*?)\];", PAGE.read_text(encoding="utf-8"), re.S)
    assert block is not None
    assert re.findall(r'"([a-z_.]+)"', block.group(1)) == list(EVENT_TYPES)

"""Fixtures for the iCal tests: a local feed server and helpers to read a calendar's feed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import icalendar
import pytest

from tests.ical.feedserver import FeedServer


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    server = FeedServer()
    yield server
    server.close()


def feed_path(calendar: dict[str, Any]) -> str:
    return urlsplit(calendar["ical_url"]).path


def parse(body: bytes) -> icalendar.Calendar:
    return icalendar.Calendar.from_ical(body)


def vevents(cal: icalendar.Calendar) -> list[Any]:
    return list(cal.walk("VEVENT"))

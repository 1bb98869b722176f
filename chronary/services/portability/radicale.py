"""Importing a Radicale storage folder: every calendar collection becomes a Chronary calendar.

Radicale's filesystem storage (`--storage-filesystem-folder`) keeps
`collection-root/<user>/<collection>/`, each collection with a `.Radicale.props` JSON file
(`tag` VCALENDAR for calendars, VADDRESSBOOK for address books, `D:displayname`,
`C:calendar-description`, `ICAL:calendar-color`, `C:calendar-timezone`) and one .ics per item
(one UID: a master and its overrides). Dot entries (`.Radicale.cache`, locks) are Radicale's own.

`scan` reads the whole folder before anything is written (an unreadable item fails the import,
naming its file). `write_collection` then writes one calendar per transaction: it belongs to
the agent given, or else to one agent per Radicale user (found again by its metadata
`imported_from`, else created as a human agent named after the user); the calendar is found
again by its metadata `imported_from` (`radicale:/<user>/<collection>/`), so running the import
again updates rather than duplicates. The collection's description and colour go into the
calendar's metadata.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from chronary.ical.decode import decode_feed
from chronary.ical.model import CodecError, Resource
from chronary.schemas.agents import AgentCreate
from chronary.schemas.calendars import CalendarCreate
from chronary.services import agents as agent_service
from chronary.services import calendars as calendar_service
from chronary.services.context import Ctx
from chronary.services.portability.ics_import import ImportFailed, hints, read_bytes
from chronary.services.portability.write import Progress, Stats, Writer, every_agent, every_calendar
from chronary.store.db import Tx
from chronary.timeutil import valid_timezone

PROPS = ".Radicale.props"
ROOT = "collection-root"


@dataclass
class Collection:
    """One Radicale calendar, read from disk."""

    path: Path
    user: str
    href: str  # /<user>/<collection>/
    name: str
    timezone: str
    description: str | None
    color: str | None
    resources: list[Resource] = field(default_factory=list)

    @property
    def origin(self) -> str:
        return f"radicale:{self.href}"


def _props(folder: Path) -> dict[str, Any] | None:
    path = folder / PROPS
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ImportFailed(f"{path} cannot be read ({exc})") from None
    return value if isinstance(value, dict) else None


def _zone(props: dict[str, Any], items: list[bytes], fallback: str) -> str:
    """The collection's zone: its calendar-timezone property, else the first zone its items name."""
    for text in [str(props.get("C:calendar-timezone") or ""), *(b.decode("utf-8", "replace") for b in items[:20])]:
        _, zone = hints(text)
        if zone:
            return zone
    return fallback


def _root(folder: Path) -> Path:
    if not folder.exists():
        raise ImportFailed(f"no such folder: {folder}")
    if not folder.is_dir():
        raise ImportFailed(f"not a folder: {folder}")
    return folder / ROOT if (folder / ROOT).is_dir() else folder


def scan(folder: Path, default_timezone: str = "UTC") -> list[Collection]:
    """Every calendar collection under a Radicale storage folder (or its collection-root, or one
    user's folder), fully decoded; ImportFailed naming the file for anything unreadable."""
    root = _root(folder)
    out: list[Collection] = []
    candidates = [root, *sorted(p for p in root.rglob("*") if p.is_dir())]
    for path in candidates:
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts):
            continue
        props = _props(path)
        if props is None or props.get("tag") != "VCALENDAR":
            continue
        parts = rel.parts if root.name == ROOT else (path.parent.name, path.name)
        user = parts[0] if len(parts) > 1 else path.parent.name
        items = [p for p in sorted(path.iterdir()) if p.is_file() and not p.name.startswith(".")]
        bodies = [read_bytes(p) for p in items]
        zone = _zone(props, bodies, default_timezone)
        collection = Collection(
            path=path,
            user=user,
            href="/" + "/".join(parts) + "/",
            name=str(props.get("D:displayname") or path.name)[:255],
            timezone=zone,
            description=props.get("C:calendar-description") or None,
            color=props.get("ICAL:calendar-color") or None,
        )
        for item, body in zip(items, bodies, strict=True):
            try:
                collection.resources.extend(decode_feed(body, ZoneInfo(zone), strict=True))
            except CodecError as exc:
                raise ImportFailed(f"{item}: {exc}") from None
        out.append(collection)
    if not out:
        raise ImportFailed(f"no Radicale calendars under {folder} (looked for {PROPS} files with tag VCALENDAR)")
    return out


def _user_agent(tx: Tx, ctx: Ctx, user: str, timezone: str) -> str:
    """The agent of a Radicale user: found by its metadata, else created (a person)."""
    origin = f"radicale:{user}"
    rows = every_agent(tx)
    for row in rows:
        if (row["metadata"] or {}).get("imported_from") == origin:
            return str(row["id"])
    zone = timezone if valid_timezone(timezone) else "UTC"
    data = AgentCreate(name=user[:255] or "radicale", type="human", timezone=zone, metadata={"imported_from": origin})
    return agent_service.create(tx, ctx.principal, data).id


def _calendar(tx: Tx, ctx: Ctx, collection: Collection, agent_id: str) -> tuple[dict[str, Any], bool]:
    """The calendar this collection was imported into before, else a new one; (row, created)."""
    rows = every_calendar(tx)
    for row in rows:
        if (row["metadata"] or {}).get("imported_from") == collection.origin and row["agent_id"] == agent_id:
            return row, False
    metadata: dict[str, Any] = {"imported_from": collection.origin}
    if collection.description:
        metadata["description"] = str(collection.description)
    if collection.color:
        metadata["color"] = str(collection.color)
    data = CalendarCreate(name=collection.name or "Calendar", timezone=collection.timezone, metadata=metadata)
    created = calendar_service.create(tx, ctx, agent_id, data)
    row = calendar_service.load(tx, ctx.principal, created.id)
    return row, True


def write_collection(
    tx: Tx,
    ctx: Ctx,
    collection: Collection,
    *,
    agent_id: str | None = None,
    announce: bool = False,
    progress: Progress | None = None,
) -> tuple[str, bool, Stats]:
    """One collection into its calendar, in the caller's transaction: (calendar id, created, stats)."""
    if agent_id is None:
        ctx.principal.require_org("importing a Radicale folder without --agent")
        agent_id = _user_agent(tx, ctx, collection.user, collection.timezone)
    else:
        agent_service.load(tx, ctx.principal, agent_id)
    calendar, created = _calendar(tx, ctx, collection, agent_id)
    stats = Writer(tx, calendar, announce=announce, progress=progress).write(collection.resources)
    return str(calendar["id"]), created, stats

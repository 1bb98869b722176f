"""A whole org as one folder or .zip, and its exact restore (`chronary export org` / `import org`).

Layout (the same inside a .zip):

    manifest.json            format, version, agents, calendars (with their events' extras)
    calendars/<cal_id>.ics   each calendar as `chronary export ics` writes it

The .ics files are ordinary iCalendar that any calendar app reads. The manifest carries what
they cannot: agents; each calendar's id, owner, name, timezone, status, default reminders and
metadata (a Radicale import keeps the colour and description there); and per stored event its
id, created_at and updated_at plus every stored value the .ics does not read back as (metadata,
priority, holds, attendee agent ids, recurrence lines in the exact stored form). The export
computes those by decoding its own .ics with the importer's decoder, so the restore is exact:
export → import into a fresh data dir → export again gives the same bytes.

The restore keeps every id. Agents and calendars that already exist (same id, this org) are
updated to the export's values; events go through `write.Writer` (by id, then UID), so
importing the same export twice changes nothing. Keys, webhooks, connections and subscriptions
are not part of an export (they hold secrets or point at outside accounts); events mirrored
from those come back as ordinary, writable events.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from chronary.errors import Conflict
from chronary.ical.decode import decode_feed
from chronary.ical.model import CodecError, Resource
from chronary.services import agents as agent_service
from chronary.services import calendars as calendar_service
from chronary.services.changes import Change, changed_fields, plain, record
from chronary.services.context import Ctx
from chronary.services.portability.export import calendar_ics
from chronary.services.portability.ics_import import ImportFailed, read_bytes
from chronary.services.portability.write import (
    RESTORE_BASELINE,
    Extras,
    Progress,
    Stats,
    Writer,
    every_agent,
    every_calendar,
    fields,
)
from chronary.services.validation import check_email, check_metadata, check_reminders
from chronary.store import agents as agent_store
from chronary.store import calendars as cal_store
from chronary.store.db import Tx
from chronary.timeutil import parse_instant, require_timezone, to_ts, ts_iso

FORMAT = "chronary-export"
VERSION = 1
MANIFEST = "manifest.json"
AGENT_FIELDS = ("id", "name", "type", "status", "email", "timezone", "metadata", "created_at", "updated_at")
CALENDAR_FIELDS = (
    "id",
    "agent_id",
    "name",
    "timezone",
    "agent_status",
    "default_reminders",
    "metadata",
    "created_at",
    "updated_at",
)
# stored event columns a restore gives back when the .ics reads back otherwise
RESTORABLE = (
    "title",
    "description",
    "location",
    "start_ts",
    "end_ts",
    "all_day",
    "status",
    "recurrence",
    "attendees",
    "sequence",
    "reminders",
    "transparency",
    *RESTORE_BASELINE,
)
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed entry times: the same org gives the same .zip


@dataclass
class Bundle:
    manifest: dict[str, Any]
    files: dict[str, bytes]  # path inside the export → content


# -- export -------------------------------------------------------------------------------------


def _extras(calendar: dict[str, Any], text: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per stored row: its id and times, and the stored values its VEVENT does not read back as."""
    tz = calendar["timezone"]
    try:
        resources = decode_feed(text.encode("utf-8"), ZoneInfo(tz), strict=True)
    except CodecError as exc:  # what the restore could not read either: say so now, not then
        raise ImportFailed(f"calendar {calendar['id']} cannot be exported: {exc}") from None
    decoded: dict[tuple[str, int | None], dict[str, Any]] = {}
    for res in resources:
        for piece in (res.master, *res.overrides):
            decoded[(res.uid, piece.recurrence_id_ts)] = {**fields(piece, tz), **RESTORE_BASELINE}
    by_id = {r["id"]: r for r in rows}
    out = []
    for row in rows:
        master = by_id.get(row["recurring_event_id"]) if row["recurring_event_id"] else None
        uid = master["ical_uid"] if master else row["ical_uid"]
        rid = row["recurrence_id_ts"] if master else None
        baseline = decoded.get((uid, rid))
        if baseline is None:
            continue  # not in the .ics (an override whose series is gone, a second master of one UID)
        entry: dict[str, Any] = {
            "uid": uid,
            "recurrence_id": ts_iso(rid),
            "id": row["id"],
            "created_at": row["created_at"],
            "updated_at": row["updated_at"],
        }
        values = {k: row[k] for k in RESTORABLE if k in baseline and _norm(row[k]) != _norm(baseline[k])}
        if values:
            entry["values"] = values
        out.append(entry)
    return out


def _norm(value: Any) -> Any:
    return int(value) if isinstance(value, bool) else value


def export_org(tx: Tx, ctx: Ctx) -> Bundle:
    """Every agent and calendar of the org, in one read transaction (one consistent snapshot)."""
    ctx.principal.require_org("the whole-org export")
    agents = [{k: plain(agent_service.present(r))[k] for k in AGENT_FIELDS} for r in every_agent(tx)]
    calendars = every_calendar(tx)
    files: dict[str, bytes] = {}
    entries = []
    for cal in calendars:
        calendar, text, rows = calendar_ics(tx, ctx, cal["id"])
        path = f"calendars/{calendar['id']}.ics"
        files[path] = text.encode("utf-8")
        entry = {k: calendar[k] for k in CALENDAR_FIELDS}
        entry["file"] = path
        entry["events"] = _extras(calendar, text, rows)
        entries.append(entry)
    manifest = {"format": FORMAT, "version": VERSION, "agents": agents, "calendars": entries}
    files[MANIFEST] = (json.dumps(manifest, indent=1, ensure_ascii=False) + "\n").encode("utf-8")
    return Bundle(manifest, files)


def write_bundle(bundle: Bundle, out: Path) -> None:
    """Into `out.zip` (a .zip path) or the folder `out` (new, or empty)."""
    if out.suffix.lower() == ".zip":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for name in sorted(bundle.files):
                info = zipfile.ZipInfo(name, _ZIP_TIME)
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, bundle.files[name])
        out.write_bytes(buf.getvalue())
        return
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ImportFailed(f"{out} exists and is not an empty folder; choose a new folder or a .zip path")
    for name, content in bundle.files.items():
        target = out / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)


# -- import -------------------------------------------------------------------------------------


def is_bundle(path: Path) -> bool:
    return (path.is_dir() and (path / MANIFEST).is_file()) or (path.suffix.lower() == ".zip" and path.is_file())


def read_bundle(path: Path) -> Bundle:
    """The export at `path` (folder or .zip), checked: ImportFailed for anything unreadable."""
    files: dict[str, bytes] = {}
    if path.is_dir():
        if not (path / MANIFEST).is_file():
            raise ImportFailed(f"{path} has no {MANIFEST}: not a Chronary org export")
        for item in path.rglob("*"):
            if item.is_file():
                files[item.relative_to(path).as_posix()] = read_bytes(item)
    else:
        data = read_bytes(path, "export")
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                files = {name: zf.read(name) for name in zf.namelist() if not name.endswith("/")}
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise ImportFailed(f"{path} is not a readable .zip ({exc})") from None
    try:
        manifest = json.loads(files[MANIFEST])
    except KeyError:
        raise ImportFailed(f"{path} has no {MANIFEST}: not a Chronary org export") from None
    except ValueError as exc:
        raise ImportFailed(f"{path}: {MANIFEST} is not valid JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ImportFailed(f"{path}: {MANIFEST} is not a Chronary org export")
    if manifest.get("version") != VERSION:
        raise ImportFailed(f"{path}: export version {manifest.get('version')!r} is not supported (this is {VERSION})")
    return Bundle(manifest, files)


@dataclass
class PreparedCalendar:
    entry: dict[str, Any]
    resources: list[Resource]
    extras: Extras


def prepare(bundle: Bundle, source: str) -> tuple[list[dict[str, Any]], list[PreparedCalendar]]:
    """Agents and decoded calendars of an export, before any transaction (a bad file writes nothing)."""
    manifest = bundle.manifest
    try:
        agents = [dict(a) for a in manifest["agents"]]
        prepared = []
        for entry in manifest["calendars"]:
            content = bundle.files.get(entry["file"])
            if content is None:
                raise ImportFailed(f"{source}: {entry['file']} is missing")
            try:
                resources = decode_feed(content, ZoneInfo(entry["timezone"]), strict=True)
            except CodecError as exc:
                raise ImportFailed(f"{source}: {entry['file']}: {exc}") from None
            extras = {}
            for e in entry.get("events") or []:
                rid = e.get("recurrence_id")
                key = (e["uid"], to_ts(parse_instant(rid, "recurrence_id")) if rid else None)
                extras[key] = {
                    "id": e["id"],
                    "created_at": e["created_at"],
                    "updated_at": e["updated_at"],
                    **e.get("values", {}),
                }
            prepared.append(PreparedCalendar(entry, resources, extras))
    except (KeyError, TypeError, ValueError) as exc:
        raise ImportFailed(f"{source}: {MANIFEST} is malformed ({type(exc).__name__}: {exc})") from None
    return agents, prepared


def _record(
    tx: Tx, type_: str, obj: Any, agent_id: str | None, announce: bool, previous: dict[str, Any] | None = None
) -> None:
    record(tx, Change(type_, obj, previous=previous or None, agent_id=agent_id, webhook=announce))


def restore_agents(tx: Tx, ctx: Ctx, agents: list[dict[str, Any]], *, announce: bool = False) -> Stats:
    """Create the export's agents that are missing (with their ids); update those that differ."""
    ctx.principal.require_org("the whole-org import")
    stats = Stats()
    for a in agents:
        require_timezone(a["timezone"], "timezone")
        check_email(a.get("email"), "email")
        values = {k: a.get(k) for k in AGENT_FIELDS if k != "id"}
        values["metadata"] = check_metadata(values["metadata"])
        row = agent_store.get(tx.conn, a["id"])
        if row is not None and row["org_id"] != ctx.principal.org_id:
            raise Conflict(f"agent {a['id']} belongs to another org", "id")
        if row is None:
            row = {"id": a["id"], "org_id": ctx.principal.org_id, **values}
            agent_store.create(tx.conn, row)
            _record(tx, "agent.created", agent_service.present(row), a["id"], announce)
            stats.created += 1
            continue
        diff = {k: v for k, v in values.items() if row.get(k) != v}
        if not diff:
            stats.unchanged += 1
            continue
        agent_store.patch(tx.conn, a["id"], diff)
        before, after = agent_service.present(row), agent_service.present({**row, **diff})
        _record(tx, "agent.updated", after, a["id"], announce, changed_fields(before, after))
        stats.updated += 1
    return stats


def _ensure_calendar(tx: Tx, ctx: Ctx, entry: dict[str, Any], announce: bool) -> dict[str, Any]:
    values = {k: entry.get(k) for k in CALENDAR_FIELDS if k != "id"}
    require_timezone(str(values["timezone"]), "timezone")
    values["default_reminders"] = check_reminders(values["default_reminders"], "default_reminders")
    values["metadata"] = check_metadata(values["metadata"])
    row = cal_store.get(tx.conn, entry["id"])
    if row is not None and row["org_id"] != ctx.principal.org_id:
        raise Conflict(f"calendar {entry['id']} belongs to another org", "id")
    if row is None:
        row = {
            "id": entry["id"],
            "org_id": ctx.principal.org_id,
            **values,
            "feed_token": calendar_service.new_feed_token(),  # feed URLs are secrets: never exported
            "revision": 0,
        }
        cal_store.create(tx.conn, row)
        _record(tx, "calendar.created", calendar_service.present(row, ctx.base_url), row["agent_id"], announce)
        return row
    if row["timezone"] != values["timezone"]:
        raise Conflict(f"calendar {entry['id']} exists here with timezone {row['timezone']}, not {values['timezone']}")
    diff = {k: v for k, v in values.items() if row.get(k) != v}
    if diff:
        cal_store.patch(tx.conn, row["id"], diff)
        cal_store.bump_revision(tx.conn, row["id"])
        before = calendar_service.present(row, ctx.base_url)
        row = {**row, **diff}
        after = calendar_service.present(row, ctx.base_url)
        _record(tx, "calendar.updated", after, row["agent_id"], announce, changed_fields(before, after))
    return row


def restore_calendar(
    tx: Tx, ctx: Ctx, prepared: PreparedCalendar, *, announce: bool = False, progress: Progress | None = None
) -> Stats:
    """One calendar of an export and its events, exactly as exported, in the caller's transaction."""
    ctx.principal.require_org("the whole-org import")
    calendar = _ensure_calendar(tx, ctx, prepared.entry, announce)
    writer = Writer(tx, calendar, announce=announce, extras=prepared.extras, progress=progress)
    return writer.write(prepared.resources)

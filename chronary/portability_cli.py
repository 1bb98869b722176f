"""`chronary import …` and `chronary export …`: moving calendars in and out (issue 21, item 6).

    chronary import ics FILE (--calendar CAL | --new-calendar NAME [--agent AGT] [--timezone TZ])
    chronary import radicale DIR [--agent AGT]
    chronary import org PATH
    chronary export ics --calendar CAL [--out FILE]
    chronary export org --out PATH(.zip)

Everything is read and checked before the first write; each calendar is then written in one
transaction, so a missing file, a bad .ics or an unknown calendar prints one line, exits with
status 2 and leaves the database as it was. Imports are quiet (no webhooks, no flow runs) unless
`--announce`. Progress bars (rich) go to stderr, only on a terminal and without `--quiet`.
The domain work is in `chronary.services.portability`; heavy imports happen inside commands.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

EXIT_FAILED = 2


class Failed(click.ClickException):
    """One clear line on stderr and exit status 2 (the brief's contract for every import error)."""

    exit_code = EXIT_FAILED


def _runtime(data_dir: str | None) -> Any:
    from chronary.config import load_settings
    from chronary.errors import SchemaTooNew
    from chronary.runtime import open_runtime

    settings = load_settings({"data_dir": data_dir, "workers": False})
    try:
        runtime = open_runtime(settings)
    except SchemaTooNew as exc:
        raise Failed(str(exc)) from None
    if runtime.first_key:  # this command created the database: its first key is shown here, once
        click.echo(f"Created {settings.db_path}; its first org API key (shown only now): {runtime.first_key}", err=True)
    return runtime


def _ctx(runtime: Any) -> Any:
    from chronary.services.context import Ctx, Principal

    return Ctx(Principal(org_id=runtime.org_id, key_id="cli"), runtime.settings.base_url)


@contextlib.contextmanager
def _failures() -> Iterator[None]:
    """Domain errors (a bad file, an unknown calendar, a conflict) as one line and exit 2."""
    from chronary.errors import ChronaryError

    try:
        yield
    except ChronaryError as exc:
        raise Failed(exc.message) from None


class Bars:
    """rich progress bars on stderr; nothing when quiet or when stderr is not a terminal."""

    def __init__(self, quiet: bool) -> None:
        from rich.console import Console

        console = Console(stderr=True)
        self.enabled = not quiet and console.is_terminal
        self.progress: Any = None
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=console,
            )

    def __enter__(self) -> Bars:
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def task(self, description: str, total: int | None) -> Callable[[int], None] | None:
        if self.progress is None:
            return None
        task_id = self.progress.add_task(description, total=total)
        return lambda n: self.progress.advance(task_id, n)


def _announce_option(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option("--quiet", is_flag=True, help="No progress bars")(f)
    f = click.option(
        "--announce", is_flag=True, help="Send webhooks and start flows for the imported events (default: only logged)"
    )(f)
    return click.option("--data-dir", default=None)(f)


@click.group("import")
def import_() -> None:
    """Import calendars: a .ics file, a Radicale storage folder, or a Chronary org export."""


@import_.command("ics")
@click.argument("file", type=click.Path(dir_okay=True, path_type=Path))
@click.option("--calendar", "calendar_id", default=None, metavar="CAL_ID", help="Import into this calendar")
@click.option("--new-calendar", "new_name", default=None, metavar="NAME", help="Create a calendar of this name for it")
@click.option("--agent", "agent_id", default=None, metavar="AGENT_ID", help="Owner of --new-calendar (default: org-level)")
@click.option("--timezone", default=None, help="Timezone of --new-calendar (default: the file's, else UTC)")
@_announce_option
def import_ics(
    file: Path,
    calendar_id: str | None,
    new_name: str | None,
    agent_id: str | None,
    timezone: str | None,
    data_dir: str | None,
    announce: bool,
    quiet: bool,
) -> None:
    """Import FILE (a Google, Apple or Outlook .ics export); re-importing updates by UID."""
    from chronary.services.portability import ics_import, org

    if (calendar_id is None) == (new_name is None):
        raise click.UsageError("give either --calendar CAL_ID or --new-calendar NAME")
    if calendar_id is not None and (agent_id or timezone):
        raise click.UsageError("--agent and --timezone go with --new-calendar")
    if org.is_bundle(file):
        raise Failed(f"{file} is a Chronary org export: use `chronary import org {file}`")
    with _failures():
        source = ics_import.open_file(file)
        runtime = _runtime(data_dir)
        try:
            _import_ics(runtime, source, calendar_id, new_name, agent_id, timezone, announce, quiet)
        finally:
            runtime.db.close()


def _import_ics(
    runtime: Any,
    source: Any,
    calendar_id: str | None,
    new_name: str | None,
    agent_id: str | None,
    timezone: str | None,
    announce: bool,
    quiet: bool,
) -> None:
    from chronary.schemas.calendars import CalendarCreate
    from chronary.services.portability import ics_import

    ctx = _ctx(runtime)
    if calendar_id is not None:
        zone = runtime.db.read_sync(lambda tx: ics_import.calendar_timezone(tx, ctx, calendar_id))
    else:
        zone = timezone or source.timezone or "UTC"
        from chronary.timeutil import require_timezone

        require_timezone(zone, "timezone")
    resources = ics_import.decode(source, zone)
    with Bars(quiet) as bars:
        advance = bars.task(f"Importing {Path(source.path).name}", len(resources))
        if calendar_id is not None:
            cal_id = calendar_id
            stats = runtime.db.write_sync(
                lambda tx: ics_import.into_calendar(tx, ctx, cal_id, resources, announce=announce, progress=advance)
            )
        else:
            data = CalendarCreate(name=(new_name or source.name or "Imported")[:255], timezone=zone)
            cal_id, stats = runtime.db.write_sync(
                lambda tx: ics_import.into_new_calendar(
                    tx, ctx, agent_id, data, resources, announce=announce, progress=advance
                )
            )
    click.echo(f"{cal_id}: {stats.summary()}")


@import_.command("radicale")
@click.argument("folder", type=click.Path(path_type=Path))
@click.option(
    "--agent",
    "agent_id",
    default=None,
    metavar="AGENT_ID",
    help="Owner of every calendar (default: one agent per Radicale user)",
)
@click.option("--timezone", default="UTC", show_default=True, help="Zone of calendars that name none")
@_announce_option
def import_radicale(
    folder: Path, agent_id: str | None, timezone: str, data_dir: str | None, announce: bool, quiet: bool
) -> None:
    """Import every calendar of a Radicale storage folder (its --storage-filesystem-folder)."""
    from chronary.services.portability import radicale

    with _failures():
        collections = radicale.scan(folder, timezone)
        runtime = _runtime(data_dir)
        ctx = _ctx(runtime)
        try:
            with Bars(quiet) as bars:
                for col in collections:
                    advance = bars.task(f"{col.href}", len(col.resources))
                    cal_id, created, stats = runtime.db.write_sync(
                        lambda tx, col=col, advance=advance: radicale.write_collection(
                            tx, ctx, col, agent_id=agent_id, announce=announce, progress=advance
                        )
                    )
                    verb = "new calendar" if created else "calendar"
                    click.echo(f"{col.href} -> {verb} {cal_id} {col.name!r}: {stats.summary()}")
        finally:
            runtime.db.close()


@import_.command("org")
@click.argument("path", type=click.Path(path_type=Path))
@_announce_option
def import_org(path: Path, data_dir: str | None, announce: bool, quiet: bool) -> None:
    """Restore a `chronary export org` folder or .zip (ids kept; importing it again changes nothing)."""
    from chronary.services.portability import org

    with _failures():
        agents, prepared = org.prepare(org.read_bundle(path), str(path))
        runtime = _runtime(data_dir)
        ctx = _ctx(runtime)
        try:
            agent_stats = runtime.db.write_sync(lambda tx: org.restore_agents(tx, ctx, agents, announce=announce))
            click.echo(f"agents: {agent_stats.summary()}")
            with Bars(quiet) as bars:
                for cal in prepared:
                    advance = bars.task(cal.entry["name"], len(cal.resources))
                    stats = runtime.db.write_sync(
                        lambda tx, cal=cal, advance=advance: org.restore_calendar(
                            tx, ctx, cal, announce=announce, progress=advance
                        )
                    )
                    click.echo(f"{cal.entry['id']} {cal.entry['name']!r}: {stats.summary()}")
        finally:
            runtime.db.close()


@click.group("export")
def export() -> None:
    """Export a calendar as .ics, or the whole org as a folder or .zip that `import org` reads back."""


@export.command("ics")
@click.option("--calendar", "calendar_id", required=True, metavar="CAL_ID")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="File (default: stdout)")
@click.option("--data-dir", default=None)
def export_ics(calendar_id: str, out: Path | None, data_dir: str | None) -> None:
    """Write a calendar's events as one VCALENDAR (series, overrides, cancelled events included)."""
    from chronary.services.portability import export as svc

    with _failures():
        if out is not None and not out.parent.is_dir():
            raise Failed(f"no such folder: {out.parent}")
        runtime = _runtime(data_dir)
        try:
            _, text, rows = runtime.db.read_sync(lambda tx: svc.calendar_ics(tx, _ctx(runtime), calendar_id))
        finally:
            runtime.db.close()
    data = text.encode("utf-8")
    if out is None:
        click.echo(data, nl=False)  # bytes go to the binary stdout as they are (CRLF kept)
    else:
        out.write_bytes(data)
        click.echo(f"{out}: {len(rows)} stored events", err=True)


@export.command("org")
@click.option("--out", "out", type=click.Path(path_type=Path), required=True, help="A new folder, or a .zip file")
@click.option("--data-dir", default=None)
def export_org(out: Path, data_dir: str | None) -> None:
    """Write every agent and calendar of the org (manifest.json + one .ics per calendar)."""
    from chronary.services.portability import org

    with _failures():
        if not out.parent.is_dir():
            raise Failed(f"no such folder: {out.parent}")
        runtime = _runtime(data_dir)
        try:
            bundle = runtime.db.read_sync(lambda tx: org.export_org(tx, _ctx(runtime)))
        finally:
            runtime.db.close()
        org.write_bundle(bundle, out)
    count = len(bundle.manifest["calendars"])
    click.echo(f"{out}: {len(bundle.manifest['agents'])} agents, {count} calendars", err=True)

"""The `chronary` command: `serve` (the default), `keys …` and `db …`."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from chronary import __version__
from chronary.config import OPTIONS, Option, Settings, load_settings, resolve
from chronary.errors import SchemaTooNew

SWITCH_INTERVAL = 0.001


def _settings(**overrides: Any) -> Settings:
    return load_settings(overrides)


@click.group(invoke_without_command=True)
@click.version_option(__version__, prog_name="chronary")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Chronary: a self-hosted calendar server for AI agents."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(serve)


def _setting_flags(command: Callable[..., Any]) -> Callable[..., Any]:
    """One `--flag` per setting, built from `chronary.config.OPTIONS` (parsed and validated there)."""
    defaults = Settings()
    for opt in reversed(OPTIONS):
        if not opt.flag:
            continue
        default = "user data dir" if opt.name == "data_dir" else getattr(defaults, opt.name)
        help_text = f"{opt.help} [env {opt.env}; default {default}]"
        command = click.option(opt.flag_name, opt.name, default=None, metavar=opt.metavar, help=help_text)(command)
    return command


def configure_logging(level: str) -> None:
    """The server's logging. HTTP client libraries stay at WARNING whatever the level: their
    request lines carry URLs, and URLs can carry credentials (Telegram's bot token is a path
    segment, some APIs take their key as a query parameter, inbound URLs are their own secret)."""
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name in ("httpx", "httpcore", "urllib3", "niquests", "urllib3_future"):
        logging.getLogger(name).setLevel(logging.WARNING)


@cli.command()
@_setting_flags
def serve(**flags: str | None) -> None:
    """Run the server (creates the database and a first org key on first start)."""
    import uvicorn

    from chronary.app import create_app
    from chronary.runtime import open_runtime

    settings = _settings(**flags)
    configure_logging(settings.log_level)
    # the writer, readers and webhook senders are threads: a request waiting for the GIL behind
    # one of them should wait at most ~1 ms, not the interpreter's default 5 ms (API p99 while a
    # webhook backlog drains, bench/webhook_bench.py)
    sys.setswitchinterval(SWITCH_INTERVAL)
    try:
        runtime = open_runtime(settings)
    except SchemaTooNew as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Chronary {__version__} — database {settings.db_path}")
    if runtime.first_key:
        click.echo("")
        click.echo("  First start: here is your org API key. It is shown only this once:")
        click.echo(f"    {runtime.first_key}")
        click.echo("")
    link = _login_link(runtime)
    click.echo(f"Listening on http://{settings.host}:{settings.port}  (API docs at /schema)")
    click.echo(f"Sign in to the web UI: {link}")
    click.echo("  (valid 15 minutes, once; `chronary login-link` prints a new one)")
    app = create_app(settings, runtime=runtime)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level, access_log=False)


def _login_link(runtime: Any) -> str:
    from chronary.services import sessions

    link, _ = runtime.db.write_sync(lambda tx: sessions.create_login_link(tx, runtime.org_id, runtime.settings.base_url))
    return str(link)


@cli.command("login-link")
@click.option("--data-dir", default=None)
def login_link(data_dir: str | None) -> None:
    """Print a new one-time sign-in link for the web UI (valid 15 minutes)."""
    runtime = _open(data_dir)
    try:
        click.echo(_login_link(runtime))
    finally:
        runtime.db.close()


def _shown(opt: Option, value: object) -> str:
    """A setting's value as `config` prints it: secrets only say whether they are set."""
    if opt.secret:
        return "(set)" if value else "(not set)"
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    return str(value)


@cli.command("config")
@_setting_flags
@click.option("--json", "as_json", is_flag=True, help="Print JSON")
def config_(as_json: bool, **flags: str | None) -> None:
    """Print every setting's value and where it came from (flag, environment, default)."""
    settings, sources = resolve(flags)
    rows = [(opt.name, opt.env, _shown(opt, getattr(settings, opt.name)), sources[opt.name]) for opt in OPTIONS]
    if as_json:
        import json

        click.echo(json.dumps([{"name": n, "env": e, "value": v, "source": s} for n, e, v, s in rows], indent=2))
        return
    width = max(len(name) for name, *_ in rows)
    for name, env, value, source in rows:
        click.echo(f"{name:<{width}}  {value}  ({source}{'' if source != 'environment' else ' ' + env})")


@cli.group()
def keys() -> None:
    """Manage API keys."""


def _open(data_dir: str | None):  # noqa: ANN202 - returns a Runtime
    from chronary.runtime import open_runtime

    settings = _settings(data_dir=data_dir, workers=False)
    try:
        runtime = open_runtime(settings)
    except SchemaTooNew as exc:
        raise click.ClickException(str(exc)) from None
    if runtime.first_key:  # this command created the database: its first key is shown here, once
        click.echo(f"Created {settings.db_path}; its first org API key (shown only now): {runtime.first_key}", err=True)
    return runtime


def _org_principal(runtime: Any):  # noqa: ANN202
    from chronary.services.context import Principal

    return Principal(org_id=runtime.org_id, key_id="cli")


@keys.command("create")
@click.option("--agent", "agent_id", default=None, help="Make an agent key (chr_ak_…) for this agent id")
@click.option("--name", default="cli key", help="A label for the key")
@click.option("--data-dir", default=None)
def keys_create(agent_id: str | None, name: str, data_dir: str | None) -> None:
    """Create a key and print its secret (shown only now)."""
    from chronary.errors import ChronaryError
    from chronary.services import keys as svc

    runtime = _open(data_dir)
    try:
        key = runtime.db.write_sync(lambda tx: svc.create(tx, _org_principal(runtime), name, agent_id))
    except ChronaryError as exc:
        raise click.ClickException(exc.message) from None
    finally:
        runtime.db.close()
    click.echo(key.secret)
    click.echo(f"id {key.id}  name {key.name!r}" + (f"  agent {agent_id}" if agent_id else ""), err=True)


@keys.command("list")
@click.option("--data-dir", default=None)
def keys_list(data_dir: str | None) -> None:
    """List active keys (prefix and last four characters only)."""
    from chronary.services import keys as svc

    runtime = _open(data_dir)
    try:
        page = runtime.db.read_sync(lambda tx: svc.list_(tx, _org_principal(runtime), None, 200, 0))
    finally:
        runtime.db.close()
    for k in page.items:
        click.echo(f"{k.id}  {k.prefix}…{k.last4}  {k.agent_id or 'org'}  {k.name}  {k.created_at}")


@keys.command("revoke")
@click.argument("key_id")
@click.option("--data-dir", default=None)
def keys_revoke(key_id: str, data_dir: str | None) -> None:
    """Revoke a key at once."""
    from chronary.errors import ChronaryError
    from chronary.services import keys as svc

    runtime = _open(data_dir)
    try:
        runtime.db.write_sync(lambda tx: svc.revoke(tx, _org_principal(runtime), key_id))
    except ChronaryError as exc:
        raise click.ClickException(exc.message) from None
    finally:
        runtime.db.close()
    click.echo(f"revoked {key_id}")


@cli.command("mcp")
@click.option("--key", envvar="CHRONARY_API_KEY", default=None, help="API key to act as [env CHRONARY_API_KEY]")
@click.option("--url", default=None, help="A running server (http://host:8765) to bridge to, instead of the data dir")
@click.option("--data-dir", default=None)
def mcp_(key: str | None, url: str | None, data_dir: str | None) -> None:
    """Serve MCP over stdio (for desktop MCP clients) as the key's agent or org."""
    import asyncio

    from chronary.errors import ChronaryError
    from chronary.mcp import stdio

    if not key:
        raise click.UsageError("an API key is needed: --key chr_ak_… or CHRONARY_API_KEY")
    logging.basicConfig(level="WARNING", stream=sys.stderr)  # stdout carries the protocol
    if url:
        asyncio.run(stdio.bridge(url, key))
        return
    runtime = _open(data_dir)
    try:
        asyncio.run(stdio.serve(runtime, runtime.settings.base_url, key))
    except ChronaryError as exc:
        raise click.ClickException(exc.message) from None
    finally:
        runtime.db.close()


@cli.group()
def db() -> None:
    """Inspect, export and back up the database (separate process; sqlite-utils)."""


def _db_path(data_dir: str | None) -> Path:
    path = _settings(data_dir=data_dir).db_path
    if not path.exists():
        raise click.ClickException(f"no database at {path}")
    return path


@db.command("info")
@click.option("--data-dir", default=None)
@click.option("--json", "as_json", is_flag=True, help="Print JSON")
def db_info(data_dir: str | None, as_json: bool) -> None:
    """Tables, row counts and schema version."""
    from chronary.store import maintenance

    info = maintenance.info(_db_path(data_dir))
    if as_json:
        import json

        click.echo(json.dumps(info, indent=2))
        return
    click.echo(f"database {info['path']}  schema version {info['schema_version']}  ({info['size_bytes']} bytes)")
    for table, count in info["tables"].items():
        click.echo(f"  {table:<28} {count}")


@db.command("export")
@click.option("--data-dir", default=None)
@click.option("--format", "fmt", type=click.Choice(["json", "csv"]), default="json")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True, help="Directory to write into")
@click.option("--table", "tables", multiple=True, help="Only these tables (repeatable)")
def db_export(data_dir: str | None, fmt: str, out_dir: str, tables: tuple[str, ...]) -> None:
    """Write each table to OUT/<table>.json or .csv. api_keys hashes are left out."""
    from chronary.store import maintenance

    written = maintenance.export(_db_path(data_dir), Path(out_dir), fmt, list(tables) or None)
    for path in written:
        click.echo(str(path))


@db.command("vacuum")
@click.option("--data-dir", default=None)
def db_vacuum(data_dir: str | None) -> None:
    """Compact the database and turn on incremental vacuum (stop the server first)."""
    from chronary.store import maintenance

    before, after = maintenance.vacuum(_db_path(data_dir))
    click.echo(f"vacuumed: {before} -> {after} bytes; pruned history now gives its space back")


@db.command("backup")
@click.argument("target", type=click.Path(dir_okay=False))
@click.option("--data-dir", default=None)
def db_backup(target: str, data_dir: str | None) -> None:
    """Consistent copy of a live database (SQLite online backup)."""
    from chronary.store import maintenance

    source = _db_path(data_dir)
    if not Path(target).parent.is_dir():
        raise click.ClickException(f"no such directory: {Path(target).parent}")
    maintenance.backup(source, Path(target))
    click.echo(f"backed up to {target}")
    key_path = _settings(data_dir=data_dir).key_path
    if key_path.exists():  # without it, stored provider credentials in the copy cannot be decrypted
        click.echo(f"keep a copy of {key_path} with it: it decrypts the stored provider credentials", err=True)


@db.command("consumers")
@click.option("--data-dir", default=None)
@click.option("--drop", "drop", default=None, metavar="NAME", help="Forget this retired consumer's cursor")
def db_consumers(data_dir: str | None, drop: str | None) -> None:
    """Change-log consumers (webhooks, …): where each is, and how far behind."""
    from chronary.store import maintenance

    path = _db_path(data_dir)
    if drop is not None:
        if not maintenance.drop_consumer(path, drop):
            raise click.ClickException(f"no consumer named {drop!r}")
        click.echo(f"dropped consumer {drop}")
        return
    for row in maintenance.consumers(path):
        click.echo(f"  {row['consumer']:<28} at {row['seq']:<8} behind {row['behind']}")


from chronary.portability_cli import export, import_  # noqa: E402 - after cli exists; light (click only)

cli.add_command(import_)
cli.add_command(export)


def main() -> None:
    try:
        cli(prog_name="chronary")
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()

"""``celeriac -A proj beat``: run a beat; ``beat list | run NAME | pause NAME | resume NAME``."""

from __future__ import annotations

import signal
from datetime import datetime

import click
import orjson

from ..beat import Beat, list_entries, pause_entry, resume_entry, run_entry
from .main import app_from
from .worker import LEVELS, setup_logging


@click.group(invoke_without_command=True)
@click.option("-l", "--loglevel", type=click.Choice(LEVELS, case_sensitive=False))
@click.option("-n", "--name", help="this beat's name in events and status (default beat-pid@host)")
@click.option("--no-events", is_flag=True, help="send no beat-sent/skipped/leader events")
@click.pass_context
def beat(ctx: click.Context, loglevel: str | None, name: str | None, no_events: bool) -> None:
    """Send periodic tasks: any number of beats may run, one leads, each run is sent once."""
    if ctx.invoked_subcommand is not None:
        return
    app = app_from(ctx)
    setup_logging((loglevel or app.conf.worker_log_level or "INFO").upper())
    runner = Beat(app, name=name, events=not no_events)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: runner.stop())
    click.echo(
        f"celeriac beat {runner.name}: {len(app.conf.beat_schedule)} entries in settings", err=True
    )
    runner.run()


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.isoformat(timespec="seconds")


@beat.command("list")
@click.option("--json", "as_json", is_flag=True, help="one JSON object, for scripts")
@click.pass_context
def list_command(ctx: click.Context, as_json: bool) -> None:
    """Every periodic task: schedule, last and next run, paused; and the leader."""
    found, lease = list_entries(app_from(ctx))
    leader = lease.holder if lease is not None and lease.holder else None
    if as_json:
        rows = [
            {
                "name": s.entry.name,
                "task": s.entry.task,
                "schedule": repr(s.entry.schedule),
                "paused": s.entry.paused,
                "catch_up": s.entry.catch_up,
                "source": s.entry.source,
                "last_run": _when(s.last_run),
                "next_run": _when(s.next_run),
            }
            for s in found
        ]
        click.echo(orjson.dumps({"leader": leader, "entries": rows}).decode())
        return
    click.echo(f"leader: {leader.rsplit(':', 1)[0] if leader else 'none'}")
    for s in found:
        state = "paused" if s.entry.paused else f"next {_when(s.next_run)}"
        last = _when(s.last_run)
        click.echo(f"{s.entry.name}  {s.entry.task}  {s.entry.schedule!r}  last {last}  {state}")


@beat.command("run")
@click.argument("name")
@click.pass_context
def run_command(ctx: click.Context, name: str) -> None:
    """Send one run of NAME now."""
    result = run_entry(app_from(ctx), name)
    click.echo(result.id)


@beat.command("pause")
@click.argument("name")
@click.pass_context
def pause_command(ctx: click.Context, name: str) -> None:
    """Stop sending NAME's runs (within a second) until resumed."""
    pause_entry(app_from(ctx), name)
    click.echo(f"paused {name}")


@beat.command("resume")
@click.argument("name")
@click.pass_context
def resume_command(ctx: click.Context, name: str) -> None:
    """Send NAME's runs again, from its next due time."""
    resume_entry(app_from(ctx), name)
    click.echo(f"resumed {name}")

"""``status`` (who is online, from heartbeats) and ``inspect`` (ask the workers)."""

from __future__ import annotations

import sys
from typing import Any

import click

from ..beat import current_leader
from ..events.worker import MISSED_BEATS, WorkerStatus, forget_presence, read_presence
from ..urls import redact
from ._cluster import (
    EXIT_NO_ANSWER,
    ago,
    destinations,
    dump_json,
    no_answer,
    pretty,
    remote_options,
)
from .main import app_from

QUERIES = (
    "active", "reserved", "scheduled", "registered", "stats", "active_queues", "ping",
    "conf", "revoked",
)  # fmt: skip


def _status_row(worker: WorkerStatus) -> str:
    load = " ".join(f"{x:.2f}" for x in worker.get("loadavg") or []) or "-"
    state = "online" if worker.alive else "LOST"
    queues = ",".join(worker.get("queues") or []) or "-"
    return (
        f"{worker.hostname:28} {state:7} pool {worker.get('pool_size', '-')!s:>3}  "
        f"active {worker.get('active', '-')!s:>3}  processed {worker.get('processed', '-')!s:>7}  "
        f"load {load:15} queues {queues}  (pid {worker.get('pid', '-')}, "
        f"seen {ago(worker.timestamp)})"
    )


@click.command()
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@click.option("--forget", "forget", metavar="WORKER", help="forget this lost worker first")
@click.pass_context
def status(ctx: click.Context, as_json: bool, forget: str | None) -> None:
    """The workers online, with their queues and load (from heartbeats, no broadcast).
    A lost worker is listed for an hour; --forget NAME drops it now."""
    app = app_from(ctx)
    if forget:
        try:
            forgotten = forget_presence(app.broker, forget)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        if not forgotten:
            raise click.ClickException(f"no worker {forget} is known: see celeriac status")
        if not as_json:
            click.echo(f"forgot {forget}")
    workers = read_presence(app.broker)
    if as_json:
        click.echo(dump_json([{**w.info, "alive": w.alive, "age": w.age} for w in workers]))
    else:
        for worker in workers:
            click.echo(_status_row(worker))
    alive = sum(w.alive for w in workers)
    if not as_json:
        lost = len(workers) - alive
        click.echo(
            f"\n{alive} worker{'s' if alive != 1 else ''} online"
            + (f", {lost} lost (silent for {MISSED_BEATS} heartbeats)" if lost else "")
        )
        leader, lease = current_leader(app)
        if lease is not None:  # a beat ran on this broker: say who leads now
            click.echo(f"beat leader: {leader or 'none (no beat holds the lease)'}")
    if not alive:
        click.echo(f"error: no worker online on broker {redact(app.broker_url)}", err=True)
        sys.exit(EXIT_NO_ANSWER)


def _print_tasks(tasks: list[dict[str, Any]]) -> None:
    if not tasks:
        click.echo("    - empty -")
    for task in tasks:
        parts = [f"{task.get('name')}[{task.get('id')}]"]
        if "args" in task or "kwargs" in task:
            parts.append(f"{dump_json(task.get('args', []))} {dump_json(task.get('kwargs', {}))}")
        if task.get("truncated"):
            parts.append(f"(truncated: {','.join(task['truncated'])})")
        if task.get("queue"):
            parts.append(f"queue {task['queue']}")
        parts.append(f"pid {task.get('worker_pid', '-')}")
        if task.get("time_start"):
            parts.append(f"started {ago(task['time_start'])}")
        click.echo("    " + " ".join(parts))


def _print_reply(what: str, host: str, value: Any) -> None:
    if isinstance(value, dict) and "error" in value:
        click.echo(f"-> {host}: ERROR {value['error']}")
        return
    click.echo(f"-> {host}: OK")
    if what in ("active", "reserved", "scheduled") and isinstance(value, list):
        _print_tasks(value)
    elif what == "ping":
        return
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        for item in value:
            click.echo(f"    {item}")
        if not value:
            click.echo("    - empty -")
    else:
        click.echo("    " + pretty(value).replace("\n", "\n    "))


@click.command()
@click.argument("what", type=click.Choice(QUERIES))
@remote_options
@click.pass_context
def inspect(
    ctx: click.Context, what: str, destination: str | None, timeout: float, as_json: bool
) -> None:
    """Ask the workers: active | reserved | scheduled | registered | stats | active_queues
    | ping | conf | revoked."""
    app = app_from(ctx)
    names = destinations(destination)
    replies = app.control.inspect(destination=names, timeout=timeout).query(what)
    if not replies:
        no_answer(app, timeout, names)
    if as_json:
        click.echo(dump_json(replies))
        return
    for host in sorted(replies):
        _print_reply(what, host, replies[host])
    count = len(replies)
    click.echo(f"\n{count} node{'s' if count != 1 else ''} online.")
    if what == "scheduled":
        click.echo(
            "Delayed tasks (countdown, eta, retries, rate limits) wait in the broker, not in "
            "a worker: list them with celeriac queues show QUEUE --delayed"
        )

"""``control``: change running workers (revoke, limits, pool, consumers, shutdown, pauses)."""

from __future__ import annotations

import sys
from typing import Any

import click

from ..brokers.capabilities import require
from ..rate import parse_rate
from ..urls import redact
from ._cluster import EXIT_NO_ANSWER, destinations, dump_json, no_answer, remote_options
from .main import app_from


@click.group()
def control() -> None:
    """Send a command to the workers (every worker, or those named by -d)."""


def _report(
    ctx: click.Context,
    replies: list[dict[str, Any]],
    timeout: float,
    names: list[str] | None,
    as_json: bool,
) -> None:
    app = app_from(ctx)
    if not replies:
        no_answer(app, timeout, names)
    merged = {host: value for reply in replies for host, value in reply.items()}
    if as_json:
        click.echo(dump_json(merged))
        return
    failed = False
    for host in sorted(merged):
        value = merged[host]
        if isinstance(value, dict) and "error" in value:
            failed = True
            click.echo(f"-> {host}: ERROR {value['error']}")
        else:
            text = value.get("ok", value) if isinstance(value, dict) else value
            click.echo(f"-> {host}: OK {text}")
    if failed:
        sys.exit(1)


def _send(
    ctx: click.Context,
    command: str,
    arguments: dict[str, Any],
    destination: str | None,
    timeout: float,
    as_json: bool,
) -> None:
    app = app_from(ctx)
    names = destinations(destination)
    replies = app.control.broadcast(command, arguments, names, reply=True, timeout=timeout)
    _report(ctx, replies, timeout, names, as_json)


@control.command()
@click.argument("task_ids", nargs=-1, required=True)
@click.option("--terminate", is_flag=True, help="also stop it if it is running")
@click.option(
    "--signal",
    "-s",
    default="SIGTERM",
    show_default=True,
    help="with --terminate: the signal for a prefork child",
)
@remote_options
@click.pass_context
def revoke(
    ctx: click.Context,
    task_ids: tuple[str, ...],
    terminate: bool,
    signal: str,
    destination: str | None,
    timeout: float,
    as_json: bool,
) -> None:
    """Revoke TASK_IDS: never start them (stored in the broker); --terminate stops running ones."""
    app = app_from(ctx)
    ids = list(task_ids)
    broker = app.broker
    revocations = require(broker, broker.revocations, "revocations", "revoking tasks")
    revocations.revoke(ids, float(app.conf.task_revoke_ttl))
    replies = app.control.on_revoke(ids, terminate, signal, reply=True, timeout=timeout)
    if not replies:  # the durable revocation holds: not an error
        click.echo(
            dump_json({})
            if as_json
            else (
                f"revoked {', '.join(ids)} in broker {redact(app.broker_url)}; "
                f"no worker answered within {timeout:g}s"
            )
        )
        return
    _report(ctx, replies, timeout, destinations(destination), as_json)


@control.command("rate_limit")
@click.argument("task_name")
@click.argument("rate")
@remote_options
@click.pass_context
def rate_limit(
    ctx: click.Context,
    task_name: str,
    rate: str,
    destination: str | None,
    timeout: float,
    as_json: bool,
) -> None:
    """Set TASK_NAME's rate limit to RATE (10/s, 100/m, 5/h; 0 removes it)."""
    try:
        parse_rate(rate)
    except Exception as exc:
        raise click.BadParameter(str(exc), param_hint="RATE") from None
    value: str | None = None if rate in ("0", "") else rate
    _send(
        ctx,
        "rate_limit",
        {"task_name": task_name, "rate_limit": value},
        destination,
        timeout,
        as_json,
    )


@control.command("time_limit")
@click.argument("task_name")
@click.argument("soft", type=float)
@click.argument("hard", type=float, required=False)
@remote_options
@click.pass_context
def time_limit(
    ctx: click.Context,
    task_name: str,
    soft: float,
    hard: float | None,
    destination: str | None,
    timeout: float,
    as_json: bool,
) -> None:
    """Set TASK_NAME's soft and hard time limits in seconds (0 removes one)."""
    if soft < 0 or (hard is not None and hard < 0):
        raise click.BadParameter("time limits are seconds >= 0")
    _send(
        ctx,
        "time_limit",
        {"task_name": task_name, "soft": soft, "hard": hard},
        destination,
        timeout,
        as_json,
    )


def _pool_command(name: str, verb: str) -> None:
    @control.command(name, help=f"{verb} the pool by N processes or threads (default 1).")
    @click.argument("n", type=click.IntRange(min=1), default=1)
    @remote_options
    @click.pass_context
    def pool(
        ctx: click.Context, n: int, destination: str | None, timeout: float, as_json: bool
    ) -> None:
        _send(ctx, name, {"n": n}, destination, timeout, as_json)


def _queue_command(name: str, text: str) -> None:
    @control.command(name, help=text)
    @click.argument("queue")
    @remote_options
    @click.pass_context
    def consumer(
        ctx: click.Context, queue: str, destination: str | None, timeout: float, as_json: bool
    ) -> None:
        _send(ctx, name, {"queue": queue}, destination, timeout, as_json)


_pool_command("pool_grow", "Grow")
_pool_command("pool_shrink", "Shrink")
_queue_command("add_consumer", "Start consuming from QUEUE.")
_queue_command("cancel_consumer", "Stop consuming from QUEUE.")


def _plain_command(name: str, text: str) -> None:
    @control.command(name, help=text)
    @remote_options
    @click.pass_context
    def plain(ctx: click.Context, destination: str | None, timeout: float, as_json: bool) -> None:
        _send(ctx, name, {}, destination, timeout, as_json)


_plain_command("shutdown", "Warm shutdown: finish running tasks, give back prefetched ones, exit.")
_plain_command("enable_events", "Turn task events on.")
_plain_command("disable_events", "Turn task events off (worker events and heartbeats continue).")


@control.command()
@click.argument("queue")
@click.pass_context
def pause(ctx: click.Context, queue: str) -> None:
    """Stop every worker fetching from QUEUE (held in the broker, survives restarts)."""
    app = app_from(ctx)
    app.control.pause(queue, by="celeriac control")
    click.echo(f"queue {queue} paused: workers stop fetching from it within about a second")


@control.command()
@click.argument("queue")
@click.pass_context
def resume(ctx: click.Context, queue: str) -> None:
    """Let workers fetch from QUEUE again."""
    app = app_from(ctx)
    if app.control.resume(queue):
        click.echo(f"queue {queue} resumed")
    else:
        click.echo(f"queue {queue} was not paused")


__all__ = ["EXIT_NO_ANSWER", "control"]

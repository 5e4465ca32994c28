"""``queues`` (what every queue holds) and ``dead-letters`` (list, requeue, purge)."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import click
import orjson

from ..control.inventory import describe_dead_letter, queue_rows, remove_queue
from ..control.waiting import PAGE_MAX, Action, waiting_page
from ..control.waiting import act as act_on
from ..exceptions import CapabilityUnavailable
from ..text import counted
from ._cluster import age, dump_json
from .main import app_from


@click.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@click.pass_context
def queues(ctx: click.Context, as_json: bool) -> None:
    """Every queue the broker knows, consumed or not: waiting per priority, delayed,
    in flight, dead letters, oldest age, consumers. ``queues show Q`` lists what waits
    in Q, message by message."""
    if ctx.invoked_subcommand is not None:
        return
    rows = queue_rows(app_from(ctx))
    if as_json:
        click.echo(dump_json(rows))
        return
    if not rows:
        click.echo("no queues yet: nothing was sent and no worker is consuming")
        return
    click.echo(
        f"{'QUEUE':24} {'WAITING':>8} {'DELAYED':>8} {'IN FLIGHT':>9} {'DEAD':>6} "
        f"{'OLDEST':>7}  {'CONSUMERS':>9}  BY PRIORITY"
    )
    for row in rows:
        priorities = " ".join(f"{p}:{n}" for p, n in row["by_priority"].items()) or "-"
        name = row["queue"] + (" (paused)" if row["paused"] else "")
        click.echo(
            f"{name:24} {row['waiting']:>8} {row['delayed']:>8} {row['in_flight']:>9} "
            f"{row['dead']:>6} {age(row['oldest_age']):>7}  {len(row['consumers']):>9}  "
            f"{priorities}"
        )


@queues.command("show")
@click.argument("queue")
@click.option("--delayed", "kind", flag_value="delayed", help="the delayed messages, soonest first")
@click.option(
    "--reserved", "kind", flag_value="reserved", help="those workers hold (prefetched or running)"
)
@click.option("--newest", is_flag=True, help="newest (or latest due) first")
@click.option("--limit", "-n", type=click.IntRange(1, PAGE_MAX), default=50, show_default=True)
@click.option("--offset", type=click.IntRange(min=0), default=0, help="skip this many")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@click.pass_context
def show(
    ctx: click.Context,
    queue: str,
    kind: str | None,
    newest: bool,
    limit: int,
    offset: int,
    as_json: bool,
) -> None:
    """What waits in QUEUE: its waiting messages in the order workers take them (highest
    priority, then oldest), or its delayed or reserved ones, a page at a time."""
    app = app_from(ctx)
    try:
        page = waiting_page(app, queue, kind or "waiting", limit, offset, newest)
    except CapabilityUnavailable as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(dump_json(page))
        return
    shown = page["messages"]
    click.echo(
        f"{queue}: {counted(page['count'], page['kind'] + ' message')}"
        + (f", {offset + 1}-{offset + len(shown)} shown" if shown else "")
        + (f", from {page['source']}" if "source" in page else "")
    )
    now = time.time()
    for info in shown:
        click.echo(f"  {info['id']}  {_task_text(info)}  {_where(info, now)}")


@queues.command("act")
@click.argument("action", type=click.Choice(["delete", "run-now", "requeue"]))
@click.argument("queue")
@click.argument("ids", nargs=-1, required=True)
@click.option("--delayed", "kind", flag_value="delayed", help="delete delayed messages")
@click.option(
    "--reserved",
    "kind",
    flag_value="reserved",
    help="delete reserved messages (where only workers know them: revoke them)",
)
@click.pass_context
def act(
    ctx: click.Context, action: Action, queue: str, ids: tuple[str, ...], kind: str | None
) -> None:
    """Act on single messages of QUEUE by task id: delete waiting (or --delayed) ones,
    run-now delayed ones (to the back of the queue, due now), requeue reserved ones (taken
    from the worker holding them: one it already started may run twice). On RabbitMQ,
    whose workers alone know what they hold, requeue asks the holding worker to give
    them back and delete --reserved revokes them."""
    app = app_from(ctx)
    try:
        done = act_on(app, action, queue, list(ids), kind or "waiting")
    except CapabilityUnavailable as exc:  # this broker cannot list (or act on) that kind
        raise click.ClickException(str(exc)) from None
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    verb = {"delete": "deleted", "run-now": "run now", "requeue": "requeued"}[action]
    click.echo(f"{queue}: {counted(done, 'message')} {verb} of {len(ids)} asked")
    if done < len(ids):
        raise SystemExit(1)  # some ids were not there (any more)


@queues.command("remove")
@click.argument("queue")
@click.pass_context
def remove(ctx: click.Context, queue: str) -> None:
    """Stop listing QUEUE, an empty queue no worker consumes and not paused (a stale name);
    it comes back by itself when a message is sent to it."""
    try:
        remove_queue(app_from(ctx), queue)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"removed {queue}")


def _task_text(info: dict[str, Any]) -> str:
    if "undecodable" in info:
        return f"(undecodable: {info['undecodable']})"
    args = orjson.dumps(info["args"]).decode()
    return f"{info['task']}{args if len(args) <= 60 else args[:57] + '...'} p{info['priority']}"


def _where(info: dict[str, Any], now: float) -> str:
    if info["kind"] == "delayed" and info["eta"] is not None:
        return f"due in {age(info['eta'] - now)} ({info.get('why', '-')})"
    if info["kind"] == "reserved":
        since = f", taken {age(now - info['since'])} ago" if info.get("since") else ""
        return f"held by {info['holder']}, delivery {info['deliveries']}{since}"
    return f"waiting {age(now - info['since']) if info['since'] else '-'}"


@click.group("dead-letters")
def dead_letters() -> None:
    """Messages refused, undecodable, or delivered too often: list, requeue, purge."""


def _queues_with_dead(app: Any, queue: str | None) -> list[str]:
    if queue:
        return [q for q in queue.split(",") if q]
    return [q for q in app.broker.queues() if app.broker.stats(q).dead]


@dead_letters.command("list")
@click.option("--queue", "-Q", help="comma-separated queues (default: every queue with some)")
@click.option("--limit", "-n", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@click.pass_context
def list_dead(ctx: click.Context, queue: str | None, limit: int, as_json: bool) -> None:
    """Show the oldest dead letters with their reasons."""
    app = app_from(ctx)
    found = [
        describe_dead_letter(app, d)
        for q in _queues_with_dead(app, queue)
        for d in app.broker.dead_letters(q, limit)
    ]
    if as_json:
        click.echo(dump_json(found))
        return
    if not found:
        click.echo("no dead letters")
    for info in found:
        when = datetime.fromtimestamp(info["dead_at"]).strftime("%Y-%m-%d %H:%M:%S")
        what = info.get("task") or f"(undecodable: {info.get('undecodable')}) {info.get('body')}"
        click.echo(
            f"{info['queue']:16} {info['id']}  {what}  dead {when} after "
            f"{info['deliveries']} deliveries: {info['reason']}"
        )


@dead_letters.command()
@click.option("--queue", "-Q", help="comma-separated queues (default: every queue with some)")
@click.option("--id", "ids", multiple=True, help="only this message id (repeatable)")
@click.pass_context
def requeue(ctx: click.Context, queue: str | None, ids: tuple[str, ...]) -> None:
    """Put dead letters back on their queue, delivery counts reset."""
    app = app_from(ctx)
    total = 0
    for name in _queues_with_dead(app, queue):
        count = app.broker.requeue_dead(name, list(ids) or None)
        total += count
        if count:
            click.echo(f"{name}: {count} requeued")
    click.echo(f"{counted(total, 'dead letter')} requeued")


@dead_letters.command()
@click.option("--queue", "-Q", help="comma-separated queues (default: every queue with some)")
@click.option("--id", "ids", multiple=True, help="only this message id (repeatable)")
@click.option("--force", "-f", is_flag=True, help="do not ask for confirmation")
@click.pass_context
def purge(ctx: click.Context, queue: str | None, ids: tuple[str, ...], force: bool) -> None:
    """Delete dead letters for good."""
    app = app_from(ctx)
    names = _queues_with_dead(app, queue)
    if not names:
        click.echo("no dead letters")
        return
    if not force:
        click.confirm(f"Delete dead letters of {', '.join(names)} for good?", abort=True)
    total = sum(app.broker.purge_dead(name, list(ids) or None) for name in names)
    click.echo(f"{counted(total, 'dead letter')} purged")

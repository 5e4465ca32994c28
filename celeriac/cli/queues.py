"""``queues`` (what every queue holds) and ``dead-letters`` (list, requeue, purge)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click

from ..brokers.base import DeadLetter, QueueStats
from ..control.pause import paused_queues
from ..events.worker import read_presence
from ..message import decode
from ._cluster import age, dump_json
from .main import app_from


def _known_queues(app: Any) -> tuple[list[str], dict[str, list[str]], set[str]]:
    """Every queue: in the broker, consumed by a live worker, or paused."""
    broker = app.broker
    consumers: dict[str, list[str]] = {}
    for worker in read_presence(broker):
        if worker.alive:
            for queue in worker.get("queues") or []:
                consumers.setdefault(queue, []).append(worker.hostname)
    paused = set(paused_queues(broker))
    names = sorted(set(broker.queues()) | set(consumers) | paused)
    return names, consumers, paused


def _row(stats: QueueStats, consumers: list[str], paused: bool) -> dict[str, Any]:
    return {
        "queue": stats.queue,
        "waiting": stats.total_waiting,
        "by_priority": {str(p): n for p, n in sorted(stats.waiting.items(), reverse=True) if n},
        "delayed": stats.delayed,
        "in_flight": stats.in_flight,
        "dead": stats.dead,
        "oldest_age": stats.oldest_age,
        "consumers": consumers,
        "paused": paused,
    }


@click.command()
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@click.pass_context
def queues(ctx: click.Context, as_json: bool) -> None:
    """Every queue the broker knows, consumed or not: waiting per priority, delayed,
    in flight, dead letters, oldest age, consumers."""
    app = app_from(ctx)
    names, consumers, paused = _known_queues(app)
    rows = [_row(app.broker.stats(q), consumers.get(q, []), q in paused) for q in names]
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


@click.group("dead-letters")
def dead_letters() -> None:
    """Messages refused, undecodable, or delivered too often: list, requeue, purge."""


def _queues_with_dead(app: Any, queue: str | None) -> list[str]:
    if queue:
        return [q for q in queue.split(",") if q]
    return [q for q in app.broker.queues() if app.broker.stats(q).dead]


def _describe(app: Any, dead: DeadLetter) -> dict[str, Any]:
    info: dict[str, Any] = {
        "id": dead.id,
        "queue": dead.queue,
        "priority": dead.priority,
        "reason": dead.reason,
        "deliveries": dead.deliveries,
        "dead_at": dead.dead_at,
    }
    try:
        message = decode(dead.body, app.codec, dead)
        info.update(task=message.task, args=list(message.args), kwargs=message.kwargs)
    except Exception as exc:  # an undecodable message is exactly what lands here
        info["undecodable"] = str(exc)
    return info


@dead_letters.command("list")
@click.option("--queue", "-Q", help="comma-separated queues (default: every queue with some)")
@click.option("--limit", "-n", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@click.pass_context
def list_dead(ctx: click.Context, queue: str | None, limit: int, as_json: bool) -> None:
    """Show the oldest dead letters with their reasons."""
    app = app_from(ctx)
    found = [
        _describe(app, d)
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
        what = info.get("task") or f"(undecodable: {info.get('undecodable')})"
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
    click.echo(f"{total} dead letters requeued")


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
    click.echo(f"{total} dead letters purged")

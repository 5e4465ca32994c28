"""``queues`` (what every queue holds) and ``dead-letters`` (list, requeue, purge)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click

from ..control.inventory import describe_dead_letter, queue_rows
from ..text import counted
from ._cluster import age, dump_json
from .main import app_from


@click.command()
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@click.pass_context
def queues(ctx: click.Context, as_json: bool) -> None:
    """Every queue the broker knows, consumed or not: waiting per priority, delayed,
    in flight, dead letters, oldest age, consumers."""
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

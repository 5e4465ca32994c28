"""``call``, ``result`` and ``purge``: send a task, read a result, empty a queue."""

from __future__ import annotations

import sys
from typing import Any

import click
import orjson

from ..backends.base import TaskMeta
from .main import app_from


def _json_arg(value: str | None, name: str, kind: type) -> Any:
    if value is None:
        return kind()
    try:
        parsed = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise click.BadParameter(
            f"{name} must be JSON, e.g. '[1, 2]' or '{{\"x\": 1}}': {exc}"
        ) from None
    if not isinstance(parsed, kind):
        raise click.BadParameter(f"{name} must be a JSON {kind.__name__}, not {value!r}")
    return parsed


def _meta_dict(meta: TaskMeta) -> dict[str, Any]:
    return {
        "id": meta.task_id,
        "state": meta.state,
        "name": meta.name,
        "result": meta.result,
        "traceback": meta.traceback,
        "worker": meta.worker,
        "retries": meta.retries,
        "date_done": meta.date_done,
    }


def _print_meta(meta: TaskMeta, as_json: bool) -> None:
    if as_json:
        click.echo(orjson.dumps(_meta_dict(meta), default=str).decode())
        return
    click.echo(f"{meta.task_id}  {meta.state}")
    if meta.state == "SUCCESS":
        click.echo(f"result: {meta.result!r}")
    elif meta.result is not None:
        error = (
            meta.result
            if not isinstance(meta.result, dict)
            else (f"{meta.result.get('exc_type')}: {meta.result.get('exc_message')}")
        )
        click.echo(f"error: {error}")
    if meta.traceback:
        click.echo(meta.traceback.rstrip())


@click.command()
@click.argument("name")
@click.option("--args", "-a", "args_json", help="positional arguments as a JSON list")
@click.option("--kwargs", "-k", "kwargs_json", help="keyword arguments as a JSON object")
@click.option("--queue", "-Q", help="queue to send to (default: routing)")
@click.option("--priority", type=click.IntRange(0, 9), help="0 (lowest) to 9 (highest)")
@click.option("--countdown", type=float, help="run no sooner than this many seconds from now")
@click.option("--expires", type=float, help="do not run after this many seconds from now")
@click.option("--wait", is_flag=True, help="wait for the result and print it")
@click.option("--timeout", type=float, default=None, help="with --wait: give up after S seconds")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@click.pass_context
def call(
    ctx: click.Context,
    name: str,
    args_json: str | None,
    kwargs_json: str | None,
    queue: str | None,
    priority: int | None,
    countdown: float | None,
    expires: float | None,
    wait: bool,
    timeout: float | None,
    as_json: bool,
) -> None:
    """Send task NAME and print its id (or, with --wait, its result)."""
    app = app_from(ctx)
    args = _json_arg(args_json, "--args", list)
    kwargs = _json_arg(kwargs_json, "--kwargs", dict)
    try:
        result = app.send_task(
            name, args, kwargs, queue=queue, priority=priority, countdown=countdown, expires=expires
        )
    except TypeError as exc:  # the arguments do not fit the task's signature
        raise click.UsageError(f"--args/--kwargs do not fit the task: {exc}") from exc
    if not wait:
        click.echo(orjson.dumps({"id": result.id}).decode() if as_json else result.id)
        return
    meta = app.backend.wait(result.id, timeout)
    _print_meta(meta, as_json)
    sys.exit(0 if meta.state == "SUCCESS" else 1)


@click.command()
@click.argument("task_id")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@click.option("--wait", is_flag=True, help="wait until the task is ready")
@click.option("--timeout", type=float, default=None, help="with --wait: give up after S seconds")
@click.pass_context
def result(
    ctx: click.Context, task_id: str, as_json: bool, wait: bool, timeout: float | None
) -> None:
    """Print the state and result of TASK_ID."""
    app = app_from(ctx)
    meta = app.backend.wait(task_id, timeout) if wait else app.backend.get(task_id)
    _print_meta(meta, as_json)


@click.command()
@click.option("--queues", "-Q", help="comma-separated queues (default: every queue)")
@click.option("--force", "-f", is_flag=True, help="do not ask for confirmation")
@click.pass_context
def purge(ctx: click.Context, queues: str | None, force: bool) -> None:
    """Delete every waiting and delayed message of the queues."""
    app = app_from(ctx)
    broker = app.broker
    names = [q for q in queues.split(",") if q] if queues else broker.queues()
    if not names:
        click.echo("no queues to purge")
        return
    if not force:
        click.confirm(f"Delete all waiting and delayed messages in {', '.join(names)}?", abort=True)
    total = 0
    for name in names:
        count = broker.purge(name)
        total += count
        click.echo(f"{name}: {count} purged")
    click.echo(f"{total} messages purged")

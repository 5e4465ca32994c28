"""``call``, ``result`` and ``purge``: send a task, read a result, empty a queue."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click
import orjson

from .. import states
from ..backends.base import TaskMeta
from ..exceptions import TimeoutError as CeleriacTimeoutError
from ..text import counted
from .main import app_from

if TYPE_CHECKING:
    from ..app import Celeriac


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


#: ``call --wait`` and ``result`` exit with these (docs/cli.md); click's usage errors are 2.
EXIT_SUCCESS = 0  # SUCCESS
EXIT_FAILED = 1  # FAILURE, REVOKED or REJECTED: finished without a result
EXIT_NOT_READY = 3  # the backend has a record, the task has not finished (or --wait timed out)
EXIT_UNKNOWN = 4  # no record: an id never sent, a result expired, or a task not started yet


def exit_code(meta: TaskMeta, recorded: bool = True) -> int:
    """The exit code that says how ``meta`` stands (see the constants above)."""
    if meta.state == states.SUCCESS:
        return EXIT_SUCCESS
    if meta.ready or meta.state == "REJECTED":
        return EXIT_FAILED
    return EXIT_NOT_READY if recorded else EXIT_UNKNOWN


def _wait(app: Celeriac, task_id: str, timeout: float | None) -> TaskMeta:
    try:
        return app.backend.wait(task_id, timeout)
    except CeleriacTimeoutError as exc:
        click.echo(f"{exc}: exit {EXIT_NOT_READY}", err=True)
        sys.exit(EXIT_NOT_READY)


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
    meta = _wait(app, result.id, timeout)
    _print_meta(meta, as_json)
    sys.exit(exit_code(meta))


@click.command()
@click.argument("task_id")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@click.option("--wait", is_flag=True, help="wait until the task is ready")
@click.option("--timeout", type=float, default=None, help="with --wait: give up after S seconds")
@click.pass_context
def result(
    ctx: click.Context, task_id: str, as_json: bool, wait: bool, timeout: float | None
) -> None:
    """Print the state and result of TASK_ID.

    Exits 0 for SUCCESS, 1 for FAILURE, REVOKED or REJECTED, 3 while it has not
    finished, 4 when the backend has no record of it (an unknown id, an expired
    result, or a task that has not started yet: the backend cannot tell these apart).
    """
    app = app_from(ctx)
    if wait:
        meta, recorded = _wait(app, task_id, timeout), True
    else:
        found = app.backend.get_many([task_id]).get(task_id)
        meta, recorded = found or TaskMeta(task_id), found is not None
    _print_meta(meta, as_json)
    if not recorded:
        click.echo(
            f"no record of {task_id} in the result backend: an unknown id, an expired result, "
            "or a task that has not started yet"
            if app.backend.stores_results
            else "this app's result backend stores no results: configure result_backend",
            err=True,
        )
    sys.exit(exit_code(meta, recorded))


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
    click.echo(f"{counted(total, 'message')} purged")

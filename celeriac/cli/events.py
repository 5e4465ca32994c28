"""``events``: a live, readable tail of task and worker events."""

from __future__ import annotations

import fnmatch
import time
from datetime import datetime
from typing import Any

import click

from ..events import EVENT_TYPES, NEWEST, OLDEST, Event, EventReceiver
from ..events.event import TASK_EVENT_STATES, WORKER_HEARTBEAT
from ._cluster import dump_json
from .main import app_from

_STATES = sorted(set(TASK_EVENT_STATES.values()))


def _short(value: Any, limit: int = 80) -> str:
    text = value if isinstance(value, str) else dump_json(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _line(event: Event) -> str:
    when = datetime.fromtimestamp(event.timestamp).strftime("%H:%M:%S.%f")[:-3]
    host = event.hostname or "-"
    if not event.is_task:
        extra = ""
        if event.type == WORKER_HEARTBEAT or event.active is not None:
            extra = f" active={event.active} processed={event.processed} pool={event.pool_size}"
        elif event.type.startswith("beat-"):  # the beat's: entry, due, leader...
            shown = {"uuid": event.task_id, **event.extra} if event.task_id else event.extra
            extra = "".join(f" {k}={_short(v)}" for k, v in shown.items())
        return f"{when}  {event.type:15} {host}{extra}"
    task = f"{event.name or '?'}[{event.task_id}]"
    details = []
    if event.args is not None or event.kwargs is not None:
        details.append(f"args={_short(event.args or [])} kwargs={_short(event.kwargs or {})}")
    if event.runtime is not None:
        details.append(f"runtime={event.runtime:.3f}s")
    if event.result is not None:
        details.append(f"result={_short(event.result)}")
    if event.exception:
        details.append(f"exc={_short(event.exception, 120)}")
    if event.retries:
        details.append(f"retries={event.retries}")
    if event.truncated:
        details.append(f"(truncated: {','.join(event.truncated)})")
    return f"{when}  {event.type:15} {task}  {host}  {' '.join(details)}".rstrip()


class _Filter:
    def __init__(
        self,
        task: str | None,
        state: str | None,
        worker: str | None,
        types: tuple[str, ...],
        heartbeats: bool,
    ) -> None:
        self.task, self.worker, self.types, self.heartbeats = task, worker, set(types), heartbeats
        self.state = state.upper() if state else None

    def __call__(self, event: Event) -> bool:
        if (
            event.type == WORKER_HEARTBEAT
            and not self.heartbeats
            and WORKER_HEARTBEAT not in (self.types)
        ):
            return False
        if self.types and event.type not in self.types:
            return False
        if self.task and not fnmatch.fnmatchcase(event.name or "", self.task):
            return False
        if self.state and event.state != self.state:
            return False
        return not (self.worker and not fnmatch.fnmatchcase(event.hostname or "", self.worker))


@click.command()
@click.option("--task", "-T", help="only tasks with this name (globs: proj.*)")
@click.option(
    "--state",
    "-s",
    type=click.Choice(_STATES, case_sensitive=False),
    help="only task events meaning this state",
)
@click.option("--worker", "-w", help="only events from this worker (globs: *@host1)")
@click.option(
    "--type",
    "types",
    multiple=True,
    type=click.Choice(EVENT_TYPES),
    help="only this event type (repeatable)",
)
@click.option("--heartbeats", is_flag=True, help="show worker heartbeats too")
@click.option("--from-start", is_flag=True, help="begin with the oldest event the broker keeps")
@click.option("--after", help="begin after this stream position (from a --json line)")
@click.option("--limit", "-n", type=click.IntRange(min=1), help="exit after N events")
@click.option("--timeout", type=float, help="exit after S seconds with no matching event")
@click.option("--json", "as_json", is_flag=True, help="one JSON object per line")
@click.pass_context
def events(
    ctx: click.Context,
    task: str | None,
    state: str | None,
    worker: str | None,
    types: tuple[str, ...],
    heartbeats: bool,
    from_start: bool,
    after: str | None,
    limit: int | None,
    timeout: float | None,
    as_json: bool,
) -> None:
    """Follow task and worker events as they happen (Ctrl-C to stop)."""
    app = app_from(ctx)
    start = after or (OLDEST if from_start else NEWEST)
    wanted = _Filter(task, state, worker, types, heartbeats)
    shown = 0
    last_match = time.monotonic()
    with EventReceiver(app, after=start) as receiver:
        try:
            while timeout is None or time.monotonic() - last_match < timeout:
                for event in receiver.poll(timeout=0.5):
                    if not wanted(event):
                        continue
                    click.echo(dump_json(event.to_dict()) if as_json else _line(event))
                    shown += 1
                    last_match = time.monotonic()
                    if limit is not None and shown >= limit:
                        return
        except KeyboardInterrupt:
            pass

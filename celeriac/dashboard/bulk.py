"""Bulk actions: revoke, terminate or retry every task a filter of the task list matches.

An action is two steps, so nobody acts on more than they saw. First a count
(:func:`count_matches`): how many tasks the filter matches among those first seen
up to a ``snapshot`` time (now, by default). Then the action, given that snapshot
and the count as ``expected``: tasks first seen after the snapshot are left out,
and the action is refused when the filter now matches more than ``expected``
(tasks changed state into it meanwhile), or more than :data:`BULK_LIMIT`.

Tasks are read :data:`BATCH_SIZE` at a time (one page of the store in memory,
however many match); a batch of revocations is one broker call and one
broadcast to the workers, a batch of retries one publish.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ..exceptions import NotRegistered
from ..task import Task
from .queries import TaskFilter, count_tasks, task_batches
from .store import Store

if TYPE_CHECKING:
    from ..app import Celeriac
    from ..message import Message

BULK_ACTIONS = ("revoke", "terminate", "retry")
BULK_LIMIT = 100_000  # tasks one action may touch: narrow the filter (or repeat) beyond
BATCH_SIZE = 1_000


class BulkConflict(Exception):
    """The filter now matches more tasks than the caller confirmed."""


@dataclass(frozen=True, slots=True)
class BulkRequest:
    """What to do, to which tasks: the filter, the snapshot time, the confirmed count."""

    action: str
    flt: TaskFilter
    snapshot: float
    expected: int | None = None


def bulk_request(action: str, flt: TaskFilter, params: dict[str, Any]) -> BulkRequest:
    """Check the action and read ``snapshot`` and ``expected`` from request parameters."""
    if action not in BULK_ACTIONS:
        raise LookupError(f"no bulk action {action!r}: use one of {', '.join(BULK_ACTIONS)}")
    snapshot = _number(params.get("snapshot"), "snapshot", time.time())
    expected = params.get("expected")
    count = None if expected in (None, "") else int(_number(expected, "expected", 0))
    if count is not None and count < 0:
        raise ValueError(f"expected must be a count of tasks (0 or more), got {expected!r}")
    return BulkRequest(action, flt, snapshot, count)


def _number(value: Any, name: str, default: float) -> float:
    if value in (None, ""):
        return default
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None


def count_matches(store: Store, request: BulkRequest) -> dict[str, Any]:
    """The dry run: how many tasks the action would touch, and what to send to do it."""
    count = count_tasks(store, request.flt, request.snapshot)
    return {
        "action": request.action,
        "count": count,
        "expected": count,
        "snapshot": request.snapshot,
        "limit": BULK_LIMIT,
        "over_limit": count > BULK_LIMIT,
        "filter": describe(request.flt),
    }


def describe(flt: TaskFilter) -> dict[str, str]:
    """The filter's set fields; a time range as UTC ISO 8601 times."""
    fields = {"state": flt.state, "name": flt.name, "worker": flt.worker, "queue": flt.queue}
    fields["search"] = flt.search
    for bound in ("since", "until"):
        moment = getattr(flt, bound)
        if moment is not None:
            fields[bound] = datetime.fromtimestamp(moment, timezone.utc).isoformat()
    return {key: value for key, value in fields.items() if value}


def run_bulk(app: Celeriac, store: Store, request: BulkRequest) -> dict[str, Any]:
    """Do the action on every match, batch by batch; what was done."""
    if request.expected is None:
        raise ValueError(
            "give expected: the count a dry run (dry_run=1) returned, so the action "
            "touches no more tasks than were confirmed"
        )
    count = count_tasks(store, request.flt, request.snapshot)
    if count > BULK_LIMIT:
        raise ValueError(
            f"the filter matches {count:,} tasks, more than the {BULK_LIMIT:,} one action "
            "may touch: narrow it (state, name, worker, queue, search)"
        )
    if count > request.expected:
        raise BulkConflict(
            f"the filter now matches {count:,} tasks, more than the {request.expected:,} "
            "confirmed: count again"
        )
    done, skipped = 0, 0
    senders: dict[str, Task[..., Any]] = {}  # one per task name for the whole action
    for batch in task_batches(store, request.flt, request.snapshot, BATCH_SIZE):
        batch = batch[: request.expected - done - skipped]
        if request.action == "retry":
            sent = _retry_batch(app, batch, senders)
            done, skipped = done + sent, skipped + len(batch) - sent
        else:
            app.control.revoke([t["id"] for t in batch], terminate=request.action == "terminate")
            done += len(batch)
        if done + skipped >= request.expected:
            break
    return {"action": request.action, "count": done, "skipped": skipped,
            "message": _message(request.action, done, skipped)}  # fmt: skip


def _message(action: str, done: int, skipped: int) -> str:
    verb = {"revoke": "Revoked", "terminate": "Revoked and terminated", "retry": "Sent again"}
    text = f"{verb[action]} {done:,} task{'s' if done != 1 else ''}"
    if skipped:
        text += f"; {skipped:,} skipped (no name, or arguments cut or not kept)"
    return text


def _retry_batch(
    app: Celeriac, batch: list[dict[str, Any]], senders: dict[str, Task[..., Any]]
) -> int:
    """Send each task of the batch again with its arguments, in one publish; how many."""
    messages: list[Message] = []
    for task in batch:
        message = _again(app, task, senders)
        if message is not None:
            messages.append(message)
    if messages:
        app.publish(messages)
    return len(messages)


def _again(
    app: Celeriac, task: dict[str, Any], senders: dict[str, Task[..., Any]]
) -> Message | None:
    """The message sending ``task`` again, as the single retry does; None when it cannot be."""
    name, args, kwargs = task.get("name"), task.get("args"), task.get("kwargs")
    if not name or not isinstance(args, list) or not isinstance(kwargs, (dict, type(None))):
        return None
    target = senders.get(name)
    if target is None:
        target = app.tasks.get(name) or Task(app, _unregistered, name=name, typing=False)
        senders[name] = target
    if target.typing:
        try:
            target._check_arguments(tuple(args), kwargs or {})
        except TypeError:
            return None
    return target.build_message(tuple(args), dict(kwargs or {}), queue=task.get("queue"))


def _unregistered(*args: Any, **kwargs: Any) -> Any:
    raise NotRegistered("this task is not registered in this process")

"""Live data from the broker and the workers, and the actions the dashboard offers.

Queue rows and dead letters come from the same functions as ``celeriac queues``
and ``celeriac dead-letters`` (:mod:`celeriac.control.inventory`); actions go
through ``app.control`` and ``app.send_task``. Every function here is blocking:
the web layer runs it in a thread.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ..control.inventory import describe_dead_letter, queue_rows
from ..events.event import Event
from .queries import get_task
from .store import Store

#: The timeline entry of a task sent again from the dashboard, on the original and the copy.
SENT_AGAIN = "task-sent-again"

if TYPE_CHECKING:
    from ..app import Celeriac


def dead_letters(app: Celeriac, queue: str, limit: int = 100) -> list[dict[str, Any]]:
    """The oldest dead letters of ``queue``, decoded where possible."""
    return [describe_dead_letter(app, dead) for dead in app.broker.dead_letters(queue, limit)]


def retry_task(app: Celeriac, store: Store, task_id: str) -> str:
    """Send a stored task again with the same arguments; the new task's id."""
    task = get_task(store, task_id)
    if task is None or not task.get("name"):
        raise LookupError(f"no task {task_id!r} with a name in the history")
    args = task.get("args")
    kwargs = task.get("kwargs")
    if not isinstance(args, list) or not isinstance(kwargs, (dict, type(None))):
        raise ValueError(f"task {task_id!r} has arguments that were cut or not kept: cannot retry")
    options: dict[str, Any] = {}
    if task.get("queue"):
        options["queue"] = task["queue"]
    result = app.send_task(str(task["name"]), args, kwargs or {}, **options)
    now = time.time()  # each task's page links to the other
    store.apply(
        [
            Event(SENT_AGAIN, now, task_id=task_id, extra={"sent_as": result.id}),
            Event(
                SENT_AGAIN, now, task_id=result.id, name=task["name"], extra={"copy_of": task_id}
            ),
        ]
    )
    return result.id


def int_arg(value: Any, default: int) -> int:
    """A positive integer from a query or form value."""
    try:
        number = int(value) if value not in (None, "") else default
    except (TypeError, ValueError):
        raise ValueError(f"expected an integer, got {value!r}") from None
    if number < 1:
        raise ValueError(f"expected a positive integer, got {number}")
    return number


def float_arg(value: Any) -> float | None:
    """A number of seconds, or None for empty."""
    if value in (None, ""):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"expected a number, got {value!r}") from None


__all__ = ["dead_letters", "float_arg", "int_arg", "queue_rows", "retry_task"]

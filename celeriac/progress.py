"""A running task's own state: ``self.update_state(state="PROGRESS", meta={...})``.

The state and its meta are stored in the result backend, where
``AsyncResult(id).state`` and ``.info`` read them while the task runs (the
pattern behind every progress bar), and sent as a ``task-progress`` event, which
the dashboard shows as the task's state and the meta as what it has so far.
The task's outcome replaces both when it finishes.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from .backends import REPLY_TO
from .backends.base import TaskMeta
from .events.dispatcher import dispatcher_for
from .events.event import TASK_PROGRESS

if TYPE_CHECKING:
    from .app import Celeriac
    from .request import Request


def report_progress(
    app: Celeriac, task_id: str, name: str, state: str, meta: Any, request: Request
) -> None:
    """Store ``state`` and ``meta`` for ``task_id`` and send them as an event."""
    message = request.message
    app.backend.store(
        [
            TaskMeta(
                task_id,
                state,
                meta,
                name=name,
                queue=message.queue if message is not None else None,
                worker=request.hostname,
                retries=request.retries,
                parent_id=request.parent_id,
                root_id=request.root_id,
                group_id=request.group_id,
                date_done=None,
                reply_to=request.headers.get(REPLY_TO),
            )
        ]
    )
    if request.is_eager or not app.conf.worker_send_task_events:
        return
    dispatcher_for(app).send(
        TASK_PROGRESS,
        timestamp=time.time(),
        uuid=task_id,
        name=name,
        hostname=request.hostname,
        state=state,
        result=meta,
    )


__all__ = ["report_progress"]

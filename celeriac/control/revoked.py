"""A task revoked while it waits is REVOKED in the result backend at once.

A worker records REVOKED when it reaches a revoked message; a task waiting on a
long countdown, or on a queue no worker consumes, would stay PENDING until then.
So the revoker records it itself, for the tasks no worker said it runs (each
live worker answers the revoke broadcast with the ones it runs) and that are not
finished or started in the backend. A running task revoked without ``terminate``
finishes and records its own outcome, as in Celery.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .. import states
from ..backends.base import TaskMeta
from ..events.dispatcher import dispatcher_for
from ..events.event import TASK_REVOKED

if TYPE_CHECKING:
    from ..app import Celeriac

logger = logging.getLogger("celeriac.control")

WAITING_REASON = "revoked while waiting: it will not run"


def running_in(replies: Sequence[dict[str, Any]]) -> set[str]:
    """The task ids the workers' answers to a revoke say they run (or just stopped)."""
    found: set[str] = set()
    for reply in replies:
        for value in reply.values():
            if isinstance(value, dict):
                found.update(value.get("running") or ())
                found.update(value.get("terminated") or ())
    return found


def record_waiting(app: Celeriac, task_ids: Sequence[str], running: set[str]) -> list[str]:
    """Store REVOKED for the tasks of ``task_ids`` that wait (see the module); their ids."""
    candidates = [task_id for task_id in task_ids if task_id not in running]
    if not candidates:
        return []
    backend = app.backend
    known = backend.get_many(candidates) if backend.stores_results else {}
    waiting = [
        task_id
        for task_id in candidates
        if task_id not in known
        or (not known[task_id].ready and known[task_id].state != states.STARTED)
    ]
    if not waiting:
        return []
    now = time.time()
    error = {
        "exc_type": "TaskRevokedError",
        "exc_module": "celeriac.exceptions",
        "exc_message": WAITING_REASON,
        "exc_args": [WAITING_REASON],
    }
    if backend.stores_results:
        backend.store(
            [
                TaskMeta(
                    task_id,
                    states.REVOKED,
                    error,
                    name=known[task_id].name if task_id in known else None,
                    date_done=now,
                )
                for task_id in waiting
            ]
        )
    if app.conf.task_send_sent_event:  # the producer's events: the dashboard follows them
        dispatcher = dispatcher_for(app)
        for task_id in waiting:
            dispatcher.send(
                TASK_REVOKED, uuid=task_id, timestamp=now, hostname="", reason=WAITING_REASON
            )
        dispatcher.flush()
    return waiting


__all__ = ["WAITING_REASON", "record_waiting", "running_in"]

"""What the supervisor records when a child dies in the middle of a task.

A late-ack task (the default) needs nothing here: its message is still held, the
supervisor hands it back and it runs again. A task that acknowledged its message
on receipt (``acks_late=False``) has no message left to run again, so unless
its outcome is recorded here its result stays PENDING for ever. It is recorded
as FAILURE with :class:`~celeriac.exceptions.WorkerLostError`, as Celery does;
or as REVOKED when the task was revoked (``revoke(terminate=True)`` kills the
child that runs it).

The chain or chord the task belongs to is not continued from here: its callbacks
travel in the message, which only the dead child had decoded.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from .. import states
from ..backends.base import TaskMeta, exception_to_dict
from ..events import TASK_FAILED, TASK_REVOKED, dispatcher_for
from ..exceptions import TaskRevokedError, WorkerLostError

if TYPE_CHECKING:
    from ..app import Celeriac
    from ..backends.base import Backend
    from ..brokers.base import Broker
    from .slots import Running

logger = logging.getLogger("celeriac.worker")


def acked_on_receipt(app: Celeriac, running: Running) -> bool:
    """Whether the task a slot was running had acknowledged its message already.

    A task starts (and its slot says so) only after an early ack, so a running
    early-ack task's message is always gone.
    """
    task = app.tasks.get(running.task_name)
    return task is not None and not task.effective_acks_late


def record_lost(
    app: Celeriac,
    broker: Broker,
    backend: Backend,
    running: Running,
    hostname: str,
    how: str,
) -> str:
    """Store the outcome of an early-ack task whose process died; returns the state."""
    revocations = broker.revocations
    revoked = revocations is not None and running.task_id in revocations.revoked([running.task_id])
    runtime = time.monotonic() - running.started_mono
    exc: Exception
    if revoked:
        state, exc = states.REVOKED, TaskRevokedError("terminated")
    else:
        state = states.FAILURE
        exc = WorkerLostError(
            f"the worker process running task {running.task_name}[{running.task_id}] "
            f"{how} after {runtime:.1f}s; the task acknowledged its message on receipt "
            "(acks_late=False), so it is not run again"
        )
    backend.store(
        [
            TaskMeta(
                running.task_id,
                state,
                exception_to_dict(exc),
                name=running.task_name,
                queue=running.queue,
                worker=hostname,
                date_started=running.started,
                date_done=time.time(),
            )
        ]
    )
    if app.conf.worker_send_task_events:  # the task's own process is gone
        fields = {"uuid": running.task_id, "name": running.task_name, "hostname": hostname}
        if revoked:
            dispatcher_for(app).send(TASK_REVOKED, terminated=True, **fields)
        else:
            dispatcher_for(app).send(TASK_FAILED, exception=repr(exc), runtime=runtime, **fields)
    return state


__all__ = ["acked_on_receipt", "record_lost"]

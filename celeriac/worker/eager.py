"""Running a task here and now (``apply()``, ``task_always_eager``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import states
from ..request import Request
from ..result import EagerResult
from .job import Executor, Job

if TYPE_CHECKING:
    from ..message import Message
    from ..task import Task


def run_eagerly(
    task: Task[Any, Any], message: Message, throw: bool | None = None
) -> EagerResult[Any]:
    """Run through the same middleware a worker uses; retries run again at once.

    A failure raises here with ``throw``, by default ``task_eager_propagates``.
    """
    app = task.app
    executor = Executor(app, "eager", "eager", None, None)
    hooks = [m for m in app.middleware.after_result if m.runs_eagerly]
    try:
        while True:
            job = Job(app, message, task, Request.from_message(message, "eager", is_eager=True))
            executor.run(job)
            for middleware in hooks:  # signals and a task class's hooks, as on a worker
                if middleware.wants_after_result(job):
                    middleware.after_result(job)
            if job.retry_message is None:
                break
            message = job.retry_message
    finally:
        executor.close()
    meta = job.meta()
    propagate = app.conf.task_eager_propagates if throw is None else throw
    if job.state == states.FAILURE and propagate and job.exception:
        raise job.exception
    return EagerResult(meta, app)

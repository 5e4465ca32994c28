"""Sends :mod:`celeriac.signals` from the middleware hooks, where Celery sends each one.

In every app's default stack, last, so ``task_prerun`` fires only for a task
that is about to run (not one revoked, expired or waiting for its rate limit).
The task's outcome signals fire in ``after_result``: the result is stored, the
message not yet acked (as Celery sends them from its tracer). A signal without
receivers costs one truth test; a job with no outcome receivers keeps the
worker's one-round-trip store and ack.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from .. import signals, states
from ..exceptions import ExceptionInfo, Reject
from ..request import reset_current_request, set_current_request
from .base import Middleware

if TYPE_CHECKING:
    from ..app import Celeriac
    from ..message import Message
    from ..worker.job import Job

#: What ``headers`` tells a publish receiver besides the message's own headers.
_INFO = ("id", "task", "parent_id", "root_id", "group", "retries", "eta", "expires", "priority")


def _headers(message: Message) -> dict[str, Any]:
    return {
        **message.headers,
        "id": message.id,
        "task": message.task,
        "parent_id": message.parent_id,
        "root_id": message.root_id,
        "group": message.group_id,
        "retries": message.retries,
        "eta": message.eta,
        "expires": message.expires,
        "priority": message.priority,
    }


def _publish_arguments(message: Message) -> dict[str, Any]:
    return {
        "body": (list(message.args), dict(message.kwargs), {}),
        "exchange": "",
        "routing_key": message.queue,
        "headers": _headers(message),
        "properties": {"correlation_id": message.id, "priority": message.priority},
    }


class Signals(Middleware):
    """Sends the task and worker signals of :mod:`celeriac.signals`."""

    runs_eagerly = True

    # -- the producer --------------------------------------------------------------
    def before_enqueue(self, app: Celeriac, message: Message) -> Message:
        if not signals.before_task_publish:
            return message
        arguments = _publish_arguments(message)
        signals.before_task_publish.send(
            sender=message.task, declare=[], retry_policy=None, **arguments
        )
        # Receivers may add headers, as in Celery (tracing ids): they travel on.
        headers = {k: v for k, v in arguments["headers"].items() if k not in _INFO}
        if headers != message.headers:
            message = message.replace(headers=headers)
        return message

    def after_enqueue(self, app: Celeriac, message: Message) -> None:
        if signals.after_task_publish:
            signals.after_task_publish.send(sender=message.task, **_publish_arguments(message))

    # -- where the task runs ---------------------------------------------------------
    def before_process(self, job: Job) -> None:
        if signals.task_prerun._receivers:
            message = job.message
            signals.task_prerun.send(
                sender=job.task,
                task_id=message.id,
                task=job.task,
                args=message.args,
                kwargs=message.kwargs,
            )

    def wants_after_result(self, job: Job) -> bool:
        # Inline truth tests: this runs for every task, receivers or not.
        return bool(
            signals.task_success._receivers
            or signals.task_failure._receivers
            or signals.task_retry._receivers
            or signals.task_revoked._receivers
            or signals.task_postrun._receivers
        )

    def after_result(self, job: Job) -> None:
        # Receivers read ``sender.request`` as in Celery: the job's, while they run.
        token = set_current_request(job.request)
        try:
            self._outcome(job)
        finally:
            reset_current_request(token)

    def _outcome(self, job: Job) -> None:
        task, message = job.task, job.message
        einfo = ExceptionInfo(job.exception, job.traceback) if job.exception else None
        if job.state == states.IGNORED or (
            isinstance(job.exception, Reject) and job.exception.requeue
        ):
            return  # no outcome: ignored, or back in its queue to run again
        if job.skipped is not None:
            if job.state == states.REVOKED:
                signals.task_revoked.send(
                    sender=task,
                    request=job.request,
                    terminated=False,
                    signum=None,
                    expired="expire" in job.skipped.reason,
                )
            return
        if job.state == states.SUCCESS:
            signals.task_success.send(sender=task, result=job.result)
        elif job.state == states.RETRY:
            signals.task_retry.send(
                sender=task, request=job.request, reason=job.exception, einfo=einfo
            )
        elif job.state == states.FAILURE:
            signals.task_failure.send(
                sender=task,
                task_id=message.id,
                exception=job.exception,
                args=message.args,
                kwargs=message.kwargs,
                traceback=job.traceback,
                einfo=einfo,
            )
        signals.task_postrun.send(
            sender=task,
            task_id=message.id,
            task=task,
            args=message.args,
            kwargs=message.kwargs,
            retval=job.result if job.exception is None else job.exception,
            state=job.state,
        )

    # -- worker processes ------------------------------------------------------------
    def worker_init(self, app: Celeriac, worker: Any) -> None:
        signals.worker_init.send(sender=worker)

    def worker_ready(self, app: Celeriac, worker: Any) -> None:
        signals.worker_ready.send(sender=worker)

    def worker_shutdown(self, app: Celeriac, worker: Any) -> None:
        signals.worker_shutdown.send(sender=worker)

    def worker_start(self, app: Celeriac, worker: Any) -> None:
        if worker.options.pool == "prefork":
            signals.worker_process_init.send(sender=None)

    def worker_stop(self, app: Celeriac, worker: Any) -> None:
        if worker.options.pool == "prefork":
            signals.worker_process_shutdown.send(sender=None, pid=os.getpid(), exitcode=0)

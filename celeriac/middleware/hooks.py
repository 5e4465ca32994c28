"""Calls a task class's lifecycle hooks, with Celery's signatures and in Celery's places.

``before_start`` just before the body (this middleware sits after revocation,
expiry and rate limits, so a task that will not run is not "started");
``on_success`` / ``on_failure`` / ``on_retry`` then ``after_return`` once the
outcome is stored and before the message is acked, with the task's request
still current (``self.request.id`` works in them). Only tasks whose class
overrides a hook pay for it: the others keep the worker's one-round-trip store
and ack.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import states
from ..exceptions import ExceptionInfo, Reject
from ..request import reset_current_request, set_current_request
from ..task import Task
from .base import Middleware

if TYPE_CHECKING:
    from ..worker.job import Job

_OUTCOME_HOOKS = ("on_success", "on_failure", "on_retry", "after_return")


def _overrides(cls: type[Any], hook: str) -> bool:
    return getattr(cls, hook) is not getattr(Task, hook)


class TaskHooks(Middleware):
    """``before_start``, ``on_success``, ``on_failure``, ``on_retry``, ``after_return``."""

    runs_eagerly = True

    def __init__(self) -> None:
        self._outcome_hooks: dict[type[Any], bool] = {}
        self._before_start: dict[type[Any], bool] = {}

    def before_process(self, job: Job) -> None:
        task = job.task
        cls = type(task)
        wanted = self._before_start.get(cls)
        if wanted is None:
            wanted = self._before_start[cls] = _overrides(cls, "before_start")
        if wanted:
            message = job.message
            task.before_start(message.id, message.args, message.kwargs)

    def wants_after_result(self, job: Job) -> bool:
        cls = type(job.task)
        wanted = self._outcome_hooks.get(cls)
        if wanted is None:
            wanted = self._outcome_hooks[cls] = any(_overrides(cls, h) for h in _OUTCOME_HOOKS)
        if not wanted or job.skipped is not None or job.state == states.IGNORED:
            return False
        return not (isinstance(job.exception, Reject) and job.exception.requeue)

    def after_result(self, job: Job) -> None:
        token = set_current_request(job.request)
        try:
            self._outcome(job)
        finally:
            reset_current_request(token)

    def _outcome(self, job: Job) -> None:
        task, message, exc = job.task, job.message, job.exception
        args, kwargs = message.args, message.kwargs
        einfo = ExceptionInfo(exc, job.traceback) if exc is not None else None
        if job.state == states.SUCCESS:
            task.on_success(job.result, message.id, args, kwargs)
        elif exc is not None and einfo is not None and job.state == states.RETRY:
            task.on_retry(exc, message.id, args, kwargs, einfo)
        elif exc is not None and einfo is not None:
            task.on_failure(exc, message.id, args, kwargs, einfo)
        retval = job.result if exc is None else exc
        task.after_return(job.state, retval, message.id, args, kwargs, einfo)

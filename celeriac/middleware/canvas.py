"""Workflows on the worker: callbacks, errbacks and chord joins, after the result is stored.

``after_result`` runs after the task's result is stored and before its message
is acked, so a crash between the two repeats the follow-up work rather than
losing it (see :mod:`celeriac.canvas.flow`). Messages with nothing to follow
up decline the hook, so the worker keeps storing and acking them in one round
trip. ``before_process`` gives an errback the failure it was sent for (see
:mod:`celeriac.canvas.errbacks`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..canvas.errbacks import with_error_arguments
from ..canvas.flow import on_result
from .base import Middleware

if TYPE_CHECKING:
    from ..worker.job import Job

_ERRBACK_HEADER = "celeriac.errback"  # celeriac.canvas.errbacks.ERRBACK_HEADER


class Canvas(Middleware):
    """Runs what a chain, group, chord, link or link_error asks for once a task is done."""

    def before_process(self, job: Job) -> None:
        info = job.message.headers.get(_ERRBACK_HEADER)
        if info is not None:
            job.task = with_error_arguments(job.task, info, len(job.message.args))

    def wants_after_result(self, job: Job) -> bool:
        message = job.message
        return bool(message.callbacks or message.errbacks or message.chord)

    def after_result(self, job: Job) -> None:
        # Imported here: the canvas imports the app module, which imports this one.
        on_result(job)

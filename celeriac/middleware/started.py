"""Record the STARTED state when a task asks for it (``track_started``).

Off by default, as in Celery: it costs one more write to the result backend
per task. Events carry ``task-started`` either way.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from .. import states
from .base import Middleware

if TYPE_CHECKING:
    from ..worker.job import Job


class TrackStarted(Middleware):
    """Store STARTED before the task runs, for tasks or apps that want it."""

    def before_process(self, job: Job) -> None:
        wanted = job.task.track_started
        if wanted is None:
            wanted = job.app.conf.task_track_started
        if wanted and not job.request.is_eager:
            meta = job.meta()
            meta.state, meta.result, meta.date_done = states.STARTED, None, None
            meta.date_started = time.time()
            job.app.backend.store([meta])

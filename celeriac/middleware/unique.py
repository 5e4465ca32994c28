"""Frees a unique task's key once the task finishes; runs only the last of debounced
sends (:mod:`celeriac.unique`).

A task sent with ``unique_for=None`` carries its key in a header and holds it
until it is done: succeeded, failed for good, or revoked. A retry, a message
refused back to its queue, or a wait for a rate-limit slot keeps the key, since
the task runs again. The key is freed after the ack, so a worker that dies in
between leaves it held until its hold ends (:data:`~celeriac.unique.MAX_HOLD`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import states
from ..exceptions import Reject
from ..unique import DEBOUNCE_GRACE, DEBOUNCE_HEADER, HEADER
from .base import Middleware, SkipMessage

if TYPE_CHECKING:
    from ..worker.job import Job


def _runs_again(job: Job) -> bool:
    skipped = job.skipped
    if skipped is not None and skipped.waits:
        return True  # put off to a later slot
    if job.state == states.RETRY:
        return True
    return isinstance(job.exception, Reject) and job.exception.requeue


class UniqueRelease(Middleware):
    """Frees the key of a unique task held until it finishes; skips a debounced send
    that a later one superseded."""

    def before_process(self, job: Job) -> None:
        key = job.message.headers.get(DEBOUNCE_HEADER)
        if not isinstance(key, str) or job.request.is_eager:
            return
        uniques = job.app.broker.uniques
        if uniques is None:
            return
        holder = uniques.claim(key, job.message.id, DEBOUNCE_GRACE)
        if holder != job.message.id:
            raise SkipMessage(states.REVOKED, f"debounced: superseded by a later send ({holder})")

    def after_ack(self, job: Job) -> None:
        key = job.message.headers.get(HEADER)
        if not isinstance(key, str) or _runs_again(job):
            return
        uniques = job.app.broker.uniques
        if uniques is not None:
            uniques.release(key, job.message.id)

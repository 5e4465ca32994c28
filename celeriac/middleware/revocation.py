"""Revoked and expired tasks are not run; their state says why."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import orjson

from .. import states
from ..exceptions import TimeLimitExceeded
from .base import Middleware, SkipMessage

if TYPE_CHECKING:
    from ..worker.job import Job


class Revocation(Middleware):
    """Skip a task revoked in the broker (the fetch already flagged it) or by broadcast."""

    def __init__(self) -> None:
        self.revoked: set[str] = set()  # learned from control broadcasts, in this process

    def before_process(self, job: Job) -> None:
        delivery = job.delivery
        if (delivery is not None and delivery.revoked) or job.message.id in self.revoked:
            stopped = _stopped_reason(job)
            if stopped is not None:
                reason = str(stopped.get("reason", "stopped at its hard time limit"))
                job.started_at = float(stopped.get("started") or 0.0)
                job.finished_at = float(stopped.get("stopped") or 0.0)
                # it ran there: its record names that worker, not the one finishing it off
                job.request.hostname = str(stopped.get("hostname") or job.request.hostname)
                raise SkipMessage(states.FAILURE, reason, exception=TimeLimitExceeded(reason))
            raise SkipMessage(states.REVOKED, "revoked")


STOPPED_FLAG = "stopped:"


def _stopped_reason(job: Job) -> dict[str, Any] | None:
    """Why a supervisor stopped this task from outside (a hard time limit), if it did.

    The supervisor that killed the task's process cannot run the task's
    follow-ups (a chain's next step, a chord's errback): it records the reason
    as a flag, revokes the task and gives its message back, so that the next
    worker to take it finishes it as a failure through the whole middleware.
    Read only for revoked deliveries, so it costs nothing on the hot path.
    """
    flags = job.app.broker.flags
    if flags is None:  # no shared state: nothing was recorded
        return None
    name = STOPPED_FLAG + job.message.id
    reason = flags.read(name).get(name)
    if reason is None:
        return None
    flags.set(name, None)
    try:
        found = orjson.loads(reason)
    except orjson.JSONDecodeError:
        found = None
    return found if isinstance(found, dict) else {"reason": reason}


class Expiry(Middleware):
    """Skip a task whose ``expires`` has passed."""

    def before_process(self, job: Job) -> None:
        expires = job.message.expires
        if expires is not None and time.time() > expires:
            raise SkipMessage(states.REVOKED, f"expired at {expires:.3f} before it started")

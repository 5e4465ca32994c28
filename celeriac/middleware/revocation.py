"""Revoked and expired tasks are not run; their state says why."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from .. import states
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
            raise SkipMessage(states.REVOKED, "revoked")


class Expiry(Middleware):
    """Skip a task whose ``expires`` has passed."""

    def before_process(self, job: Job) -> None:
        expires = job.message.expires
        if expires is not None and time.time() > expires:
            raise SkipMessage(states.REVOKED, f"expired at {expires:.3f} before it started")

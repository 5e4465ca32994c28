"""Concurrency limits per key: at most N of a task running at once across the cluster.

``concurrency_limit=N`` on a task; ``concurrency_key`` (an argument's name or a
callable ``(args, kwargs) -> str``, as ``rate_limit_key``) gives each key its
own N, e.g. at most 3 exports running per customer. Before a limited task runs,
its worker takes a hold on the key in the broker (the ``concurrency``
capability); a task over the limit is parked in the key's wait list in the
broker and its delivery acked, so it holds no worker slot. When a task of the
key finishes, its worker frees the hold and publishes the oldest parked message
of the key at once. :mod:`celeriac.brokers.concurrency` argues the design.

A task without ``concurrency_limit`` costs nothing here: no broker call.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from .. import states
from ..brokers.capabilities import require
from ..brokers.concurrency import publish_promoted
from ..exceptions import CapabilityUnavailable
from ..message import Envelope
from .base import Middleware, SkipMessage
from .rate_limit import limit_key

if TYPE_CHECKING:
    from ..task import Task
    from ..worker.job import Job

logger = logging.getLogger("celeriac.worker")


def concurrency_key(task: Task[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    """The store key of this call's concurrency limit."""
    return limit_key(task, "concurrency_key", task.concurrency_key, args, kwargs)


def _holder(job: Job) -> str:
    """Who holds a slot: one delivery of the task, not its id, since a retry or a requeued
    message of the same task may start before this delivery freed its slot."""
    assert job.delivery is not None
    return f"{job.message.id}:{job.consumer}:{job.delivery.tag}"


class ConcurrencyLimit(Middleware):
    """Holds a slot of the task's key while it runs; parks it in the broker when full."""

    def __init__(self) -> None:
        self._held: dict[str, str] = {}  # holder -> key, of the tasks this process runs

    def before_process(self, job: Job) -> None:
        limit = job.task.concurrency_limit
        delivery = job.delivery
        if limit is None or delivery is None or job.request.is_eager:
            return
        broker = job.app.broker
        try:
            limits = require(broker, broker.concurrency, "concurrency", "concurrency_limit")
        except CapabilityUnavailable as exc:  # the task fails, saying why; the worker goes on
            raise SkipMessage(states.FAILURE, str(exc), exception=exc) from None
        message = job.message
        key = concurrency_key(job.task, message.args, message.kwargs)
        parked = Envelope(
            delivery.id, delivery.queue, delivery.priority, delivery.body, None, delivery.sent_at
        )
        holder = _holder(job)
        if limits.acquire(key, limit, holder, job.consumer, parked):
            self._held[holder] = key
            return
        raise SkipMessage(
            None, f"concurrency limit {limit} of {key} reached: waits for a slot", parked=True
        )

    def after_ack(self, job: Job) -> None:
        if not self._held or job.delivery is None:
            return
        holder = _holder(job)
        key = self._held.pop(holder, None)
        if key is None:
            return
        broker = job.app.broker
        limits = broker.concurrency
        assert limits is not None  # it gave the hold
        try:
            publish_promoted(broker.publish, limits, key, limits.release(key, holder))
        except Exception:  # the hold ends with its lease; a parked waiter, with its sweep
            logger.warning("could not free the concurrency slot of %s", key, exc_info=True)

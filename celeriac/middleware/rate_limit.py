"""Rate limits that hold for the whole cluster.

Each task over its limit reserves the next free slot in the broker's shared
store (GCRA: the broker's ``rates`` capability) and goes back to the broker's delayed set
until that slot, so it holds no worker slot and blocks no other task. When it
comes back, its reservation is honoured without asking again.

``rate_limit="10/s"`` (or ``"N/m"``, ``"N/h"``, a number per second) on a task,
or ``task_default_rate_limit`` for all; ``rate_limit_key`` (an argument name or
a callable ``(args, kwargs) -> str``) gives each key its own limit, e.g. one per
customer. ``worker_disable_rate_limits=True`` turns them off on a worker.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from ..exceptions import ConfigurationError
from ..rate import parse_rate
from .base import Middleware, SkipMessage

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..task import Task
    from ..worker.job import Job

SLOT_HEADER = "rate_slot"
logger = logging.getLogger("celeriac.worker")


def limit_key(
    task: Task[Any, Any],
    option: str,
    key_of: str | Callable[[tuple[Any, ...], dict[str, Any]], str] | None,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> str:
    """The store key of a per-key limit for this call: the task's name, plus the key that
    ``key_of`` (the task's ``option``: an argument's name or a callable) gives."""
    if key_of is None:
        return task.name
    if callable(key_of):
        return f"{task.name}:{key_of(args, kwargs)}"
    if key_of in kwargs:
        return f"{task.name}:{kwargs[key_of]}"
    names = list(task._signature.parameters)[1 if task.bind else 0 :]
    if key_of in names and names.index(key_of) < len(args):
        return f"{task.name}:{args[names.index(key_of)]}"
    raise ConfigurationError(
        f"{option} {key_of!r} of {task.name} is not an argument of this call: "
        "name one of its parameters, or give a callable (args, kwargs) -> str"
    )


def rate_key(task: Task[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    """The store key of this call's rate limit."""
    return limit_key(task, "rate_limit_key", task.rate_limit_key, args, kwargs)


class RateLimit(Middleware):
    """Delays tasks over their limit into the broker's delayed set."""

    def __init__(self) -> None:
        self._parsed: dict[str | float, float | None] = {}
        self._local: dict[str, float] = {}  # key -> theoretical arrival time, this process
        self._warned = False

    def _reserve(self, job: Job, key: str, interval: float) -> float:
        """A slot from the broker's shared store; from this process's when it has none."""
        broker = job.app.broker
        rates = broker.rates
        if rates is not None:
            return rates.reserve(key, interval)
        if not self._warned:
            self._warned = True
            logger.warning(
                "broker %s keeps no shared rate-limit state: rate limits hold per worker "
                "process, not for the cluster (Redis, RabbitMQ and SQLite brokers keep one)",
                type(broker).__name__,
            )
        now = time.time()
        tat = max(self._local.get(key, now), now)
        self._local[key] = tat + interval
        return tat - now

    def _rate(self, job: Job) -> float | None:
        limit = job.task.rate_limit
        if limit is None:
            limit = job.app.conf.task_default_rate_limit
        if limit is None:
            return None
        if limit not in self._parsed:
            self._parsed[limit] = parse_rate(limit)
        return self._parsed[limit]

    def before_process(self, job: Job) -> None:
        if job.request.is_eager or job.app.conf.worker_disable_rate_limits:
            return
        rate = self._rate(job)
        if rate is None:
            return
        message = job.message
        slot = message.headers.get(SLOT_HEADER)
        if slot is not None and slot[0] == message.retries:
            return  # this attempt already holds a reserved slot
        wait = self._reserve(job, rate_key(job.task, message.args, message.kwargs), 1.0 / rate)
        if wait <= 0:
            return
        run_at = time.time() + wait
        later = message.replace(
            eta=run_at, headers={**message.headers, SLOT_HEADER: [message.retries, run_at]}
        )
        raise SkipMessage(None, f"rate limited: runs at its slot in {wait:.3f}s", later)

"""The worker as remote control sees it: a :class:`WorkerHandle` over ``WorkerState``.

Every pool keeps a :class:`~celeriac.worker.state.WorkerState` (its slots and
what each runs, counts, the pool itself), so this adapter needs nothing from
the pools beyond what :class:`~celeriac.worker.pool.Pool` declares (``grow``,
``shrink``, ``terminate``, where their consumers run), the slot records for
``inspect active``, and the warm-shutdown signal every pool already handles.

``inspect active`` adds each running task's arguments from the job its slot
keeps in the consumer's process, and ``inspect reserved`` lists what each
consumer has prefetched and not started. Under prefork both live in the
children, so the supervisor asks them (:mod:`celeriac.worker.inquiry`, where
the design is explained); the other pools run their consumers in this process
and are read directly. A task's hot path gains only the reference its slot
keeps to the running job: the rest of the work is done when someone inspects.
"""

from __future__ import annotations

import os
import signal as signals
from typing import TYPE_CHECKING, Any

from ..exceptions import CeleriacError
from .described import reserved_info, running_info
from .queues import start_worker_queues, worker_queues

if TYPE_CHECKING:
    from ..app import Celeriac
    from ..brokers.base import Broker
    from ..brokers.wake import Wake
    from ..message import Delivery
    from ..worker.options import WorkerOptions
    from ..worker.pool import Pool
    from ..worker.state import WorkerState


class StateHandle:
    """Implements :class:`~celeriac.control.handler.WorkerHandle` for every pool."""

    def __init__(self, app: Celeriac, state: WorkerState) -> None:
        self.app = app
        self.state = state
        self.hostname = state.hostname
        self.pool_name = state.options.pool
        self._queues = start_worker_queues(state.hostname, state.options.queues)

    def active_tasks(self) -> list[dict[str, Any]]:
        pool = self.state.pool
        if pool is None or not pool.consumers_in_children:  # the consumers run here
            return running_info(self.app, self.state)
        answers = {i: a for i, a in pool.ask_children("active").items() if isinstance(a, list)}
        # A child that did not answer (in time, or at all): what its slot record says,
        # without the arguments.
        found = [e for e in self.state.active() if e["slot"] not in answers]
        for entries in answers.values():
            found.extend(entries)
        return sorted(found, key=lambda entry: int(entry.get("slot", 0)))

    def active_count(self) -> int:
        """How many tasks run now, from the slot records alone (for heartbeats and stats)."""
        return len(self.state.active())

    def reserved_tasks(self) -> list[dict[str, Any]]:
        pool = self.state.pool
        if pool is None:  # the pool has not started
            return []
        if pool.consumers_in_children:  # prefork: each child keeps its prefetched messages
            answers = pool.ask_children("reserved")
            return [
                entry
                for _, entries in sorted(answers.items())
                if isinstance(entries, list)
                for entry in entries
            ]
        return [
            reserved_info(self.app, delivery, self.hostname, since=since)
            for delivery, since in pool.reserved_since()
        ]

    def give_back(self, ids: list[str]) -> list[str]:
        pool = self.state.pool
        if pool is None:
            return []
        if pool.consumers_in_children:
            answers = pool.ask_children("give_back", ids)
            return [
                str(task_id)
                for _, given in sorted(answers.items())
                if isinstance(given, list)
                for task_id in given
            ]
        return pool.give_back(set(ids))

    def processed(self) -> int:
        return self.state.processed

    def stats(self) -> dict[str, Any]:
        """The pool's own summary: messages held, child pids, prefetch multiplier."""
        return self.state.stats()

    def pool_size(self) -> int:
        # Before the pool starts its consumers (worker-online), report what it will have.
        return self.state.pool_size or self.state.options.concurrency

    def _started_pool(self) -> Pool:
        if self.state.pool is None:
            raise CeleriacError(f"the {self.pool_name} pool has not started yet: try again")
        return self.state.pool

    def pool_grow(self, n: int) -> int:
        self._started_pool().grow(n)
        return self.state.pool_size

    def pool_shrink(self, n: int) -> int:
        retired = self._started_pool().shrink(n)
        return self.state.pool_size - retired

    def queues(self) -> list[str]:
        return self._queues.current()

    def add_queue(self, queue: str) -> None:
        self._queues.add(queue)

    def cancel_queue(self, queue: str) -> None:
        self._queues.remove(queue)

    def terminate(self, task_id: str, signal: str) -> bool:
        pool = self.state.pool
        return pool is not None and pool.terminate(task_id, signal)

    def shutdown(self) -> None:
        # Every pool turns SIGTERM into a warm shutdown; send ourselves one.
        os.kill(os.getpid(), signals.SIGTERM)


def fetch_open(
    broker: Broker, options: WorkerOptions, consumer_id: str, limit: int, wake: Wake
) -> list[Delivery]:
    """A consumer's fetch from the queues it consumes now and that are not paused;
    ``wake`` ends its wait early (the worker is stopping)."""
    queues = worker_queues(options.hostname, options.queues).to_fetch(broker)
    if not queues:  # every queue paused: wait as an idle fetch would, then look again
        broker.fetch([], consumer_id, limit, 0.0)  # a pushing broker (RabbitMQ) gives back
        wake.wait(options.fetch_timeout)
        return []
    return broker.fetch(queues, consumer_id, limit, options.fetch_timeout, wake)


def paused_since_fetch(broker: Broker, options: WorkerOptions, queue: str) -> bool:
    """Whether a message of ``queue`` that a consumer holds must not start now.

    True when the queue was paused after the message was fetched (see
    :mod:`celeriac.control.pause` for the bound this keeps): the consumer gives
    it back instead of starting it.
    """
    return queue in worker_queues(options.hostname, options.queues).paused.paused(broker)


__all__ = ["StateHandle", "fetch_open", "paused_since_fetch"]

"""The queues a worker consumes: ``-Q`` at start, then ``add_consumer`` / ``cancel_consumer``.

One :class:`WorkerQueues` per worker node and process, found by the node's
name. A prefork supervisor changes its own copy when a command arrives, so
children it forks later start with the current list, and each running child's
control follower applies the same command to the child's copy. Consumers ask
:meth:`WorkerQueues.to_fetch` before each fetch: the current list minus the
queues paused for the whole cluster (re-read at most once a second).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .pause import PausedQueues

if TYPE_CHECKING:
    from ..brokers.base import Broker

_BY_NODE: dict[str, WorkerQueues] = {}
_BY_NODE_LOCK = threading.Lock()


class WorkerQueues:
    """What one worker node consumes in this process."""

    def __init__(self, queues: Sequence[str]) -> None:
        self._queues: tuple[str, ...] = tuple(dict.fromkeys(queues))
        self.paused = PausedQueues()

    def current(self) -> list[str]:
        return list(self._queues)

    def add(self, queue: str) -> bool:
        """Start consuming ``queue``; False when it already was."""
        if not queue:
            raise ValueError("add_consumer needs a queue name")
        if queue in self._queues:
            return False
        self._queues = (*self._queues, queue)  # replaced whole: readers never see it half-done
        return True

    def remove(self, queue: str) -> bool:
        """Stop consuming ``queue``; False when it was not consumed."""
        if queue not in self._queues:
            return False
        self._queues = tuple(q for q in self._queues if q != queue)
        return True

    def to_fetch(self, broker: Broker) -> list[str]:
        """The queues to fetch from now: consumed and not paused (may be empty)."""
        return self.paused.open_queues(self._queues, broker)


def worker_queues(hostname: str, initial: Sequence[str] = ()) -> WorkerQueues:
    """The queues of worker node ``hostname`` in this process (made from ``initial`` once)."""
    found = _BY_NODE.get(hostname)
    if found is None:
        with _BY_NODE_LOCK:
            found = _BY_NODE.get(hostname)
            if found is None:
                found = _BY_NODE[hostname] = WorkerQueues(initial)
    return found


def start_worker_queues(hostname: str, queues: Sequence[str]) -> WorkerQueues:
    """A worker node starts in this process with ``queues`` (-Q): forget any earlier list."""
    with _BY_NODE_LOCK:
        found = _BY_NODE[hostname] = WorkerQueues(queues)
    return found

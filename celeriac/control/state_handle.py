"""The worker as remote control sees it: a :class:`WorkerHandle` over ``WorkerState``.

Every pool keeps a :class:`~celeriac.worker.state.WorkerState` (its slots and
what each runs, counts, the pool itself), so this adapter needs nothing from
the pools beyond what they already publish: ``grow``/``shrink`` where a pool
has them, the slot records for ``inspect active`` and ``terminate``, and the
warm-shutdown signal every pool already handles.

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
import time
from typing import TYPE_CHECKING, Any

from ..exceptions import CeleriacError
from .described import reserved_info, running_info
from .queues import start_worker_queues, worker_queues

if TYPE_CHECKING:
    from ..app import Celeriac
    from ..brokers.base import Broker
    from ..message import Delivery
    from ..worker.options import WorkerOptions
    from ..worker.state import WorkerState


def signal_number(name: str | int) -> int:
    """``"SIGKILL"``, ``"KILL"``, ``"9"`` or ``9`` -> 9; a clear error otherwise."""
    text = str(name).upper()
    if text.isdigit():
        return int(text)
    try:
        return int(signals.Signals[text if text.startswith("SIG") else f"SIG{text}"])
    except KeyError:
        raise ValueError(
            f"unknown signal {name!r}: use a name such as SIGTERM or SIGKILL"
        ) from None


class StateHandle:
    """Implements :class:`~celeriac.control.handler.WorkerHandle` for every pool."""

    def __init__(self, app: Celeriac, state: WorkerState) -> None:
        self.app = app
        self.state = state
        self.hostname = state.hostname
        self.pool_name = state.options.pool
        self._queues = start_worker_queues(state.hostname, state.options.queues)

    @property
    def _pool(self) -> Any:
        return getattr(self.state, "pool", None)

    def active_tasks(self) -> list[dict[str, Any]]:
        ask_children = getattr(self._pool, "ask_children", None)
        if ask_children is None:  # the consumers run in this process
            return running_info(self.app, self.state)
        answers = {i: a for i, a in ask_children("active").items() if isinstance(a, list)}
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
        ask_children = getattr(self._pool, "ask_children", None)
        if ask_children is not None:  # prefork: each child keeps its prefetched messages
            answers = ask_children("reserved")
            return [
                entry
                for _, entries in sorted(answers.items())
                if isinstance(entries, list)
                for entry in entries
            ]
        held = getattr(self._pool, "reserved_deliveries", None)
        if held is None:  # the pool has not started
            return []
        return [reserved_info(self.app, delivery, self.hostname) for delivery in held()]

    def processed(self) -> int:
        return self.state.processed

    def stats(self) -> dict[str, Any]:
        """The pool's own summary: messages held, child pids, prefetch multiplier."""
        return self.state.stats()

    def pool_size(self) -> int:
        # Before the pool starts its consumers (worker-online), report what it will have.
        return self.state.pool_size or self.state.options.concurrency

    def _resize(self, verb: str) -> Any:
        method = getattr(self._pool, verb, None)
        if method is None:
            raise CeleriacError(
                f"the {self.pool_name} pool cannot {verb} at runtime: restart the worker with "
                "another -c (prefork can)"
            )
        return method

    def pool_grow(self, n: int) -> int:
        self._resize("grow")(n)
        return self.state.pool_size

    def pool_shrink(self, n: int) -> int:
        retired = self._resize("shrink")(n)
        return self.state.pool_size - (retired if isinstance(retired, int) else 0)

    def queues(self) -> list[str]:
        return self._queues.current()

    def add_queue(self, queue: str) -> None:
        self._queues.add(queue)

    def cancel_queue(self, queue: str) -> None:
        self._queues.remove(queue)

    def terminate(self, task_id: str, signal: str) -> bool:
        own = getattr(self._pool, "terminate", None)
        if own is not None:  # a pool that stops tasks its own way (asyncio cancels)
            return bool(own(task_id, signal))
        number = signal_number(signal)
        if number == signals.SIGTERM:
            # A prefork child takes SIGTERM as "finish your task, then stop": the opposite
            # of what terminate asks. Kill it; the supervisor replaces it.
            number = signals.SIGKILL
        for slot in list(self.state.slots.values()):
            running = slot.running()
            if running is None or running.task_id != task_id:
                continue
            if not slot.pid or slot.pid == os.getpid():
                return False  # a thread cannot be killed: only prefork children can
            try:
                os.kill(slot.pid, number)
            except ProcessLookupError:
                return False
            return True
        return False

    def shutdown(self) -> None:
        # Every pool turns SIGTERM into a warm shutdown; send ourselves one.
        os.kill(os.getpid(), signals.SIGTERM)


def fetch_open(
    broker: Broker, options: WorkerOptions, consumer_id: str, limit: int
) -> list[Delivery]:
    """A consumer's fetch from the queues it consumes now and that are not paused."""
    queues = worker_queues(options.hostname, options.queues).to_fetch(broker)
    if not queues:  # every queue paused: wait as an idle fetch would, then look again
        broker.fetch([], consumer_id, limit, 0.0)  # a pushing broker (RabbitMQ) gives back
        time.sleep(options.fetch_timeout)
        return []
    return broker.fetch(queues, consumer_id, limit, options.fetch_timeout)


__all__ = ["StateHandle", "fetch_open", "signal_number"]

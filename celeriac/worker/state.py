"""What a running worker is doing, in one object: for remote control, stats and logs.

Every pool keeps one :class:`WorkerState`. Its slots are the same records the
consumers publish into (shared memory under prefork), so reading it costs the
consumers nothing and needs no message to them.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .options import WorkerOptions
    from .pool import Pool
    from .slots import Slot


class WorkerState:
    """Slots, what each runs, counts; the pool size as it changes at runtime."""

    def __init__(self, options: WorkerOptions) -> None:
        self.options = options
        self.hostname = options.hostname
        self.pid = os.getpid()
        self.started_at = time.time()
        self.slots: dict[int, Slot] = {}
        self._retired_processed = 0  # tasks run by consumers since replaced
        self.pool: Pool | None = None  # the running pool, once made

    # -- bookkeeping, by the pool ---------------------------------------------------
    def add_slot(self, slot: Slot) -> None:
        self.slots[slot.index] = slot

    def replace_consumer(self, slot: Slot, pid: int) -> None:
        """A new consumer takes over ``slot``: keep the old one's count, blank the record."""
        self._retired_processed += slot.processed
        slot.reset(pid)

    def remove_slot(self, index: int) -> None:
        slot = self.slots.pop(index, None)
        if slot is not None:
            self._retired_processed += slot.processed

    # -- reading ------------------------------------------------------------------------
    @property
    def pool_size(self) -> int:
        return len(self.slots)

    @property
    def processed(self) -> int:
        """Tasks finished by this worker since it started."""
        return self._retired_processed + sum(s.processed for s in self.slots.values())

    @property
    def held(self) -> int:
        """Messages held by all consumers, running ones included (bounded by prefetch)."""
        return sum(s.held for s in self.slots.values())

    def active(self) -> list[dict[str, Any]]:
        """The tasks running now, one entry per busy slot."""
        found = []
        for index, slot in sorted(self.slots.items()):
            running = slot.running()
            if running is not None:
                found.append(
                    {
                        "id": running.task_id,
                        "name": running.task_name,
                        "queue": running.queue,
                        "slot": index,
                        "worker_pid": slot.pid,
                        "time_start": running.started,
                        "hostname": self.hostname,
                    }
                )
        return found

    def stats(self) -> dict[str, Any]:
        """A summary in the spirit of Celery's ``inspect stats``."""
        options = self.options
        return {
            "hostname": self.hostname,
            "pid": self.pid,
            "uptime": time.time() - self.started_at,
            "pool": {
                "implementation": options.pool,
                "max-concurrency": self.pool_size,
                "processes": [s.pid for s in self.slots.values()],
            },
            "prefetch_multiplier": options.prefetch_multiplier,
            "queues": list(options.queues),
            "total": self.processed,
            "held": self.held,
        }

"""Solo: one consumer in the main thread; a heartbeat thread keeps its leases.

The simplest pool, for debugging and for tasks that must not run concurrently
in one process. Soft and hard time limits arrive as ``SIGALRM`` in the main
thread (see :mod:`celeriac.worker.timelimits` for what that guarantees).
"""

from __future__ import annotations

import math
import os
import signal
import threading
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING

from ..brokers.wake import Wake
from .child import consumer_id
from .consumer import Consumer
from .heartbeat import HeartbeatThread
from .pool import Pool
from .shutdown import ColdShutdown, ShutdownSignals
from .slots import Slot
from .timelimits import SignalTimer

if TYPE_CHECKING:
    from ..app import Celeriac
    from ..message import Delivery
    from .options import WorkerOptions
    from .state import WorkerState


class SoloPool(Pool):
    """Runs tasks one at a time in the main thread."""

    def __init__(
        self,
        app: Celeriac,
        options: WorkerOptions,
        state: WorkerState,
        announce: Callable[[str], None],
    ) -> None:
        super().__init__(app, options, state, announce)
        slot = Slot(0, shared=False)
        state.add_slot(slot)
        self.consumer = Consumer(
            app,
            options,
            consumer_id(options.hostname, os.getpid(), 0),
            slot,
            timer=SignalTimer(enforce_hard=True),
            on_ready=self._ready,
        )
        self._stop_asked = Wake()  # set by the first signal: the grace period starts
        self._finished = threading.Event()

    def run(self) -> int:
        consumer = self.consumer
        signals = ShutdownSignals(self._warm, self._cold, self.options.shutdown_timeout)
        heartbeat = HeartbeatThread(
            self.app, f"worker {self.options.hostname}", lambda: [consumer.consumer_id]
        )
        signals.install()
        threading.Thread(target=self._cold_after_grace, name="celeriac-grace", daemon=True).start()
        heartbeat.start()
        for hook in self.app.middleware.worker_start:
            hook(self.app, self.state)
        try:
            consumer.run()
        except ColdShutdown:
            pass  # the consumer handed back what it held
        finally:
            self._finished.set()
            self._stop_asked.set()  # lets the grace thread end
            heartbeat.stop_and_wait()
            for hook in self.app.middleware.worker_stop:
                hook(self.app, self.state)
            signals.restore()
        return 0

    def reserved_deliveries(self) -> list[Delivery]:
        """Messages prefetched and not started (``inspect reserved``)."""
        return self.consumer.reserved_deliveries()

    def reserved_since(self) -> list[tuple[Delivery, float | None]]:
        return self.consumer.held_unstarted()

    def give_back(self, ids: Collection[str]) -> list[str]:
        return self.consumer.give_back(ids)

    def _ready(self) -> None:
        self.announce_ready(
            f"{self.options.hostname} ready: solo, consuming {', '.join(self.options.queues)}"
        )

    def _warm(self) -> None:
        # In the signal handler: set flags only. Starting a thread here could wait for a
        # lock the interrupted main thread holds.
        self.consumer.stop()
        self._stop_asked.set()

    def _cold_after_grace(self) -> None:
        """Past the grace period of a warm shutdown, a second signal of our own turns it
        into a cold one."""
        self._stop_asked.wait()
        grace = self.options.shutdown_timeout
        if not self._finished.wait(None if math.isinf(grace) else grace):
            os.kill(os.getpid(), signal.SIGTERM)

    def _cold(self) -> None:
        raise ColdShutdown()

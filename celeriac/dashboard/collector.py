"""The collector: reads the event stream into the store, resumably.

It starts after the position the store saved with its last batch (or at the
oldest event the stream keeps, for a new store), reads up to ``batch_size``
events at a time and writes each batch in one transaction together with its
position: a restarted collector neither loses nor double-counts history.
Retention runs every ``prune_interval`` seconds. Nothing accumulates in
memory: each batch is dropped once written.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ..events.event import Event
from ..events.receiver import OLDEST, EventReceiver
from .store import Store

if TYPE_CHECKING:
    from ..app import Celeriac

logger = logging.getLogger("celeriac.dashboard")

BatchHook = Callable[[Sequence[Event]], None]


class Collector:
    """A background thread that keeps ``store`` up to date with the cluster's events."""

    def __init__(
        self,
        app: Celeriac,
        store: Store,
        batch_size: int = 2000,
        prune_interval: float = 60.0,
        on_batch: BatchHook | None = None,
    ) -> None:
        self.app = app
        self.store = store
        self.batch_size = batch_size
        self.prune_interval = prune_interval
        self.on_batch = on_batch
        self.ingested = 0  # events written since start, for the healthcheck and the bench
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._receiver: EventReceiver | None = None

    def _connect(self) -> EventReceiver:
        after = self.store.position() or OLDEST
        return EventReceiver(self.app, after=after)

    def step(self, timeout: float = 1.0) -> int:
        """Read and store one batch; returns how many events it held."""
        if self._receiver is None:
            self._receiver = self._connect()
        before = self._receiver.position
        events = self._receiver.poll(timeout, self.batch_size)
        if self._receiver.position == before:
            return 0
        self.store.apply(events, self._receiver.position)
        self.ingested += len(events)
        if self.on_batch is not None and events:
            self.on_batch(events)
        return len(events)

    def drain(self) -> int:
        """Store everything the stream holds now (tests and the bench); returns how many."""
        total = 0
        while count := self.step(timeout=0.0):
            total += count
        return total

    def run(self) -> None:
        """Loop until :meth:`stop`; a broker error is logged and retried after a pause."""
        next_prune = time.monotonic()
        while not self._stop.is_set():
            try:
                if time.monotonic() >= next_prune:
                    self.store.prune()
                    next_prune = time.monotonic() + self.prune_interval
                self.step()
                self.last_error = None
            except Exception as exc:  # the broker or the database is away: stay up, retry
                if self.last_error is None:
                    logger.warning("collecting events failed, retrying: %r", exc)
                self.last_error = repr(exc)
                self._close_receiver()
                self._stop.wait(1.0)
        self._close_receiver()

    def _close_receiver(self) -> None:
        if self._receiver is not None:
            try:
                self._receiver.close()
            except Exception:  # closing a broken connection
                logger.debug("closing the event receiver failed", exc_info=True)
            self._receiver = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, name="celeriac-collector", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

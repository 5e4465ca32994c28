"""Threads: N consumer threads in one process, each with its own connections.

For I/O-bound sync tasks. A heartbeat thread renews every consumer's leases and
doubles as the watchdog for hard time limits: a thread cannot be killed, so at
a task's hard limit the watchdog records the failure, acks the message, hands
back the slot's prefetched ones, raises ``TimeLimitExceeded`` in the thread and
gives the slot a new consumer thread. The old thread is abandoned: whatever it
does afterwards is ignored. Soft limits are raised in the task's thread (see
:mod:`celeriac.worker.timelimits`).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING

from ..brokers.wake import Wake
from ..exceptions import TimeLimitExceeded
from .child import consumer_id
from .consumer import Consumer
from .fairness import Board
from .heartbeat import HeartbeatThread
from .pool import Pool
from .shutdown import ShutdownSignals
from .slots import Running, Slot
from .timelimits import ThreadTimer, raise_in_thread, record_time_limit

if TYPE_CHECKING:
    from ..app import Celeriac
    from ..backends.base import Backend
    from ..message import Delivery
    from .options import WorkerOptions
    from .state import WorkerState

logger = logging.getLogger("celeriac.worker")

POLL_INTERVAL = 0.25  # how often the watchdog looks for hard deadlines


class _SoftTimer:
    """Soft limits for sync tasks in one consumer thread."""

    def __init__(self) -> None:
        self.timer = ThreadTimer()
        self.thread_id = 0

    def arm(self, soft: float | None, hard: float | None) -> None:
        if soft is not None:
            self.thread_id = threading.get_ident()
            self.timer.arm(self.thread_id, soft)

    def disarm(self) -> None:
        if self.thread_id:
            self.timer.disarm(self.thread_id)
            self.thread_id = 0


class ThreadPool(Pool):
    """Runs N consumers in threads until shut down."""

    def __init__(
        self,
        app: Celeriac,
        options: WorkerOptions,
        state: WorkerState,
        announce: Callable[[str], None],
    ) -> None:
        super().__init__(app, options, state, announce)
        self.consumers: dict[int, tuple[Consumer, threading.Thread]] = {}
        self._lock = threading.Lock()  # guards consumers: the watchdog replaces them
        self._generation = 0
        self._backend: Backend | None = None  # the watchdog's
        # Set by the signal handlers, so a pipe and not a threading.Event: a handler runs
        # in the main thread wherever it was, perhaps inside Event.wait holding the lock
        # that Event.set takes, and would wait for itself for ever.
        self._changed = Wake()
        self._ended: set[threading.Thread] = set()  # consumer threads past their last step
        self.stopping = False
        self.signals = ShutdownSignals(  # stop() asks from code what a signal asks
            self._changed.set, self._changed.set, options.shutdown_timeout
        )
        self.board = Board.for_pool(options.concurrency, shared=False)  # fair dispatch
        self.heartbeat = HeartbeatThread(
            app, f"worker {options.hostname}", self._consumer_ids, on_tick=self._watchdog
        )

    # -- consumers -------------------------------------------------------------------
    def _start(self, index: int) -> None:
        with self._lock:
            if self.stopping:  # a watchdog's replacement racing the stop: none is needed
                return
            self._generation += 1
            suffix = "" if self._generation <= self.options.concurrency else f".{self._generation}"
            slot = Slot(index, shared=False)
            slot.reset(os.getpid())
            consumer = Consumer(
                self.app,
                self.options,
                consumer_id(self.options.hostname, os.getpid(), index) + suffix,
                slot,
                timer=_SoftTimer(),
                board=self.board,
            )
            thread = threading.Thread(
                target=self._consume,
                args=(consumer,),
                name=f"celeriac-consumer-{index}",
                daemon=True,
            )
            if index in self.state.slots:
                self.state.remove_slot(index)
            self.state.add_slot(slot)
            self.consumers[index] = (consumer, thread)
        thread.start()

    def _consume(self, consumer: Consumer) -> None:
        try:
            consumer.run()
        except Exception:
            if not consumer.abandoned:
                logger.exception("consumer %s stopped", consumer.consumer_id)
        finally:
            # Said before the thread has quite ended (is_alive() is still True for a moment),
            # so the supervising loop counts it as ended rather than waiting another poll.
            self._ended.add(threading.current_thread())
            self._changed.set()

    def _consumer_ids(self) -> list[str]:
        with self._lock:
            return [c.consumer_id for c, _ in self.consumers.values() if not c.abandoned]

    def reserved_deliveries(self) -> list[Delivery]:
        """Messages the consumers prefetched and have not started (``inspect reserved``)."""
        with self._lock:
            consumers = [c for c, _ in self.consumers.values() if not c.abandoned]
        return [d for consumer in consumers for d in consumer.reserved_deliveries()]

    def reserved_since(self) -> list[tuple[Delivery, float | None]]:
        with self._lock:
            consumers = [c for c, _ in self.consumers.values() if not c.abandoned]
        return [entry for consumer in consumers for entry in consumer.held_unstarted()]

    def give_back(self, ids: Collection[str]) -> list[str]:
        with self._lock:
            consumers = [c for c, _ in self.consumers.values() if not c.abandoned]
        return [task_id for consumer in consumers for task_id in consumer.give_back(ids)]

    # -- the main thread -------------------------------------------------------------
    def stop(self) -> None:
        """Warm shutdown, as the first SIGTERM: for a pool run outside the main thread."""
        self.signals.stop()

    def run(self) -> int:
        signals = self.signals
        signals.install()
        for hook in self.app.middleware.worker_start:
            hook(self.app, self.state)
        for index in range(self.options.concurrency):
            self._start(index)
        self.heartbeat.start()
        try:
            self._supervise(signals)
        finally:
            self.heartbeat.stop_and_wait()
            for hook in self.app.middleware.worker_stop:
                hook(self.app, self.state)
            signals.restore()
        return 0

    def _supervise(self, signals: ShutdownSignals) -> None:
        announced, deadline = False, 0.0
        while True:
            self._changed.wait(POLL_INTERVAL)
            self._changed.clear()
            if not announced and all(s.ready for s in list(self.state.slots.values())):
                announced = True
                self.announce_ready(
                    f"{self.options.hostname} ready: {self.options.concurrency} "
                    f"threads consuming {', '.join(self.options.queues)}"
                )
            if signals.warm and not self.stopping:
                with self._lock:  # no consumer starts after this (see _start)
                    self.stopping = True
                    consumers = [consumer for consumer, _ in self.consumers.values()]
                deadline = time.monotonic() + self.options.shutdown_timeout
                for consumer in consumers:
                    consumer.stop()
            if signals.cold or (self.stopping and time.monotonic() > deadline):
                self._cold_exit()
            with self._lock:
                dead = [
                    i
                    for i, (_, t) in self.consumers.items()
                    if t in self._ended or not t.is_alive()
                ]
            if self.stopping and len(dead) == len(self.consumers):
                return
            for index in [] if self.stopping else dead:
                logger.error("consumer thread of slot %d stopped: starting a new one", index)
                self._start(index)

    def _cold_exit(self) -> None:
        """Threads cannot be stopped: hand every message back and end the process."""
        broker = self.app.connect_broker()
        for consumer_id_ in self._consumer_ids():
            try:
                broker.release_all(consumer_id_)
            except Exception as exc:
                logger.error(
                    "%s: messages not handed back (%s); they return when their lease ends",
                    consumer_id_,
                    exc,
                )
        logging.shutdown()
        os._exit(0)

    # -- hard time limits (in the heartbeat thread) ----------------------------------
    def _watchdog(self) -> float | None:
        now = time.monotonic()
        with self._lock:
            slots = list(self.consumers.items())
        for index, (consumer, thread) in slots:
            running = consumer.slot.running()
            if running is None or running.hard_deadline is None or now < running.hard_deadline:
                continue
            with consumer.lock:  # the consumer settles its task under the same lock
                if not consumer.in_task or consumer.abandoned:
                    continue
                consumer.abandoned = True
            self._abandon(index, consumer, thread, running)
        return POLL_INTERVAL

    def _abandon(
        self, index: int, consumer: Consumer, thread: threading.Thread, running: Running
    ) -> None:
        consumer.drop_buffer()
        broker = self.heartbeat.heartbeat.connect()
        try:
            if self._backend is None:
                self._backend = self.app.connect_backend()
            record_time_limit(
                broker,
                self._backend,
                consumer.consumer_id,
                running,
                self.options.hostname,
                app=self.app,
            )
            broker.release_all(consumer.consumer_id)
        except Exception:
            logger.exception(
                "the time limit of task %s could not be recorded; its message "
                "returns when its lease ends",
                running.task_id,
            )
        if thread.ident is not None:
            raise_in_thread(thread.ident, TimeLimitExceeded)
        logger.error(
            "thread of slot %d abandoned at the hard time limit; a new one takes over", index
        )
        if not self.stopping:
            self._start(index)

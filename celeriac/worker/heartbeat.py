"""The heartbeat: keep the leases of running messages alive, recover abandoned ones.

Every third of the lease (``broker.lease_seconds``) a worker renews the leases
of everything its consumers hold, so a task that runs for an hour is never
handed to another worker while this one lives, and runs ``broker.recover()``,
which returns messages whose holder stopped renewing (a worker killed with
``kill -9``) to their queue. Under prefork the supervisor beats for its
children; the in-process pools beat from a thread of their own.

When the app has tasks with a ``concurrency_limit``, the beat also renews the
consumers' holds on their keys and publishes the parked messages that slots of
dead holders let out (:mod:`celeriac.brokers.concurrency`); otherwise it makes
no call for them. A supervisor that sees a child die ends the child's slots at
once (:meth:`Heartbeat.end_holds`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ..brokers.concurrency import publish_promoted
from ..text import counted
from .outage import Outage

if TYPE_CHECKING:
    from ..app import Celeriac
    from ..brokers.base import Broker
    from ..brokers.capabilities import ConcurrencyLimits

logger = logging.getLogger("celeriac.worker")

STOP_WAIT = 2.0  # seconds a stopping worker waits for its heartbeat thread


class Heartbeat:
    """Renews and recovers through its own broker connection, made on first use."""

    def __init__(self, app: Celeriac, what: str) -> None:
        self.app = app
        self.broker: Broker | None = None
        self.outage = Outage(what)
        self.interval = 10.0
        self.next_at = 0.0  # monotonic: when the next beat is due

    def connect(self) -> Broker:
        if self.broker is None:
            self.broker = self.app.connect_broker()
            self.interval = max(0.05, self.broker.lease_seconds / 3)
        return self.broker

    def due_in(self) -> float:
        return self.next_at - time.monotonic()

    def beat(self, consumers: Sequence[str]) -> None:
        """Renew ``consumers``' leases and recover expired ones; an outage is only noted."""
        broker = self.connect()
        self.next_at = time.monotonic() + self.interval
        try:
            if consumers:
                broker.renew(list(consumers))
            recovered = broker.recover()
            if self._limits_used():
                self._keep_limits(broker, consumers)
        except ConnectionError as exc:
            self.outage.noted(exc)
            return
        except Exception:
            logger.exception("%s: heartbeat failed", self.outage.what)
            return
        self.outage.succeeded()
        if recovered:
            logger.warning(
                "recovered %s whose lease ran out (a worker died?); they are back on their queues",
                counted(recovered, "message"),
            )

    def _limits_used(self) -> bool:
        return any(task.concurrency_limit for task in self.app.tasks.values())

    def end_holds(self, consumers: Sequence[str]) -> None:
        """These consumers died (a prefork child): free their concurrency slots now and
        let waiting tasks take them, rather than after their lease."""
        broker = self.connect()
        limits = broker.concurrency
        if limits is None or not self._limits_used():
            return
        limits.end(list(consumers))
        self._let_out(broker, limits)

    def _keep_limits(self, broker: Broker, consumers: Sequence[str]) -> None:
        limits = broker.concurrency
        if limits is None:
            return
        limits.renew(list(consumers))
        self._let_out(broker, limits)

    def _let_out(self, broker: Broker, limits: ConcurrencyLimits) -> None:
        for key, envelopes in limits.sweep():
            logger.info(
                "%s waiting for %s let out (its holders stopped)",
                counted(len(envelopes), "task"),
                key,
            )
            publish_promoted(broker.publish, limits, key, envelopes)

    def close(self) -> None:
        if self.broker is not None:
            self.broker.close()
            self.broker = None


class HeartbeatThread(threading.Thread):
    """Beats for in-process consumers; ``on_tick`` runs between beats (a watchdog)."""

    def __init__(
        self,
        app: Celeriac,
        what: str,
        consumers: Callable[[], Sequence[str]],
        on_tick: Callable[[], float | None] | None = None,
    ) -> None:
        super().__init__(name="celeriac-heartbeat", daemon=True)
        self.heartbeat = Heartbeat(app, what)
        self.consumers = consumers
        self.on_tick = on_tick  # returns seconds until it wants to run again, or None
        self.finished = threading.Event()
        self.wake = threading.Event()

    def run(self) -> None:
        try:
            self.heartbeat.connect()
            while not self.finished.is_set():
                if self.heartbeat.due_in() <= 0:
                    self.heartbeat.beat(self.consumers())
                wait = self.heartbeat.due_in()
                if self.on_tick is not None:
                    again = self.on_tick()
                    if again is not None:
                        wait = min(wait, again)
                self.wake.wait(max(0.0, wait))
                self.wake.clear()
        finally:
            self.heartbeat.close()

    def stop(self) -> None:
        self.finished.set()
        self.wake.set()

    def stop_and_wait(self, timeout: float = STOP_WAIT) -> None:
        """Stop, and wait for the thread up to ``timeout``: a beat blocked on a broker
        that does not answer is left behind (a daemon thread) rather than holding up
        the worker's exit until the socket times out."""
        self.stop()
        self.join(timeout)
        if self.is_alive():
            logger.warning(
                "%s: the heartbeat is still waiting for the broker after %.0fs; exiting without it",
                self.heartbeat.outage.what,
                timeout,
            )

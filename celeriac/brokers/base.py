"""The broker contract: the few delivery primitives every broker implements.

Every broker honours the delivery contract of the design:

* ``fetch`` takes messages and records who holds them in one atomic step, under a
  lease of ``lease_seconds``; nothing leaves the broker until it is acked.
* ``renew`` extends the leases of everything a consumer holds; ``recover`` (run by
  any live worker) returns messages whose lease ran out, and dead-letters those
  handed out ``max_deliveries`` times. A broker that learns of a lost delivery
  only when the message comes back (RabbitMQ) hands it out once more with
  ``deliveries`` above ``max_deliveries``: the worker dead-letters it then,
  unless its success is stored.
* Priorities are strict, 0 lowest to 9 highest, FIFO within a priority, across
  all the queues one fetch names.
* A message with an ``eta`` in the future waits in the broker's delayed set and
  is promoted when due by whichever consumer fetches next.

Delivery tags are opaque strings chosen by the broker; each carries whatever the
broker needs to find its message again (a supervisor acks a dead child's message
by tag alone).

Everything else a broker may keep for the cluster (streams for events and
remote control, flags, rate-limit slots, revocations) is a capability object on
a typed attribute, ``None`` where the broker has none: see
:mod:`celeriac.brokers.capabilities`. What a broker is, beyond that, it declares
in attributes too (``spans_processes``, ``fork_sensitive``), so callers ask the
object and never its URL.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from ..message import Delivery, Envelope

if TYPE_CHECKING:
    from ..backends.base import Backend, TaskMeta
    from .capabilities import (
        BeatState,
        ConcurrencyLimits,
        Flags,
        QueueBrowser,
        RateLimits,
        Revocations,
        Streams,
        UniqueKeys,
    )
    from .wake import Wake

DEFAULT_LEASE_SECONDS = 30.0
DEFAULT_MAX_DELIVERIES = 5


@dataclass(slots=True)
class QueueStats:
    """How much one queue holds, for the CLI and the dashboard."""

    queue: str
    waiting: dict[int, int] = field(default_factory=dict)  # priority -> count
    delayed: int = 0
    in_flight: int = 0
    dead: int = 0
    oldest_age: float | None = None  # seconds the oldest waiting message has waited

    @property
    def total_waiting(self) -> int:
        return sum(self.waiting.values())


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message that was refused, undecodable, or delivered too often."""

    id: str
    queue: str
    priority: int
    body: bytes
    reason: str
    deliveries: int
    dead_at: float
    sent_at: float | None = None  # kept by the broker beside the body (None: in the body)


class Broker(ABC):
    """A connection to one broker; one per thread or process that uses it."""

    url: str
    lease_seconds: float = DEFAULT_LEASE_SECONDS
    max_deliveries: int = DEFAULT_MAX_DELIVERIES

    #: Whether connections made in other processes see the same queues (False for a
    #: broker in one process's memory: prefork children could not share it).
    spans_processes: bool = True
    #: Whether a fork in the middle of one of its calls can leave the child stuck
    #: (SQLite's process-wide mutexes): background threads of a forking process then
    #: call it under a lock forks wait for (:mod:`celeriac.events.forksafe`).
    fork_sensitive: bool = False
    #: Whether it has AMQP exchanges, so a route may name an exchange and a routing key
    #: that bindings declared in ``task_queues`` resolve to a queue (RabbitMQ); elsewhere a
    #: route must name a queue (:mod:`celeriac.routing`).
    routes_by_exchange: bool = False
    #: Whether it can carry results back to the client that sent a task (``rpc://``).
    carries_replies: bool = False
    #: Whether ``publish`` may be called from many threads at once, each call waiting for
    #: its own messages only (RabbitMQ's confirms pipeline): the app then calls it
    #: directly instead of coalescing concurrent calls (:mod:`celeriac.publisher`).
    publishes_concurrently: bool = False
    #: ``worker_prefetch_multiplier`` when it is not set: a broker whose fetch takes just
    #: what it is asked for can let a worker's consumers take larger batches of short
    #: tasks (:mod:`celeriac.worker.fairness` sizes each batch); one that pushes a window
    #: of messages to each consumer (RabbitMQ) keeps Celery's 4.
    default_prefetch_multiplier: int = 4
    #: Whether it stores an envelope's ``sent_at`` beside the body and hands it back on
    #: every delivery, dead letter and listing (Redis, in an entry's header): the app then
    #: leaves ``sent_at`` out of the bodies it sends (:meth:`~celeriac.message.Message.envelope`).
    keeps_sent_at: bool = False

    # -- capabilities (celeriac.brokers.capabilities): None where the broker has none --
    streams: Streams | None = None  # events, control commands, replies
    flags: Flags | None = None  # paused queues, worker presence, stopped tasks
    rates: RateLimits | None = None  # cluster-wide rate-limit slots
    revocations: Revocations | None = None  # revoked task ids; fetch flags them
    uniques: UniqueKeys | None = None  # unique tasks: which task holds a key
    concurrency: ConcurrencyLimits | None = None  # concurrency limits per key: holds, waiters
    beat: BeatState | None = None  # periodic tasks: leader lease, last runs sent atomically
    browse: QueueBrowser | None = None  # list and act on waiting/delayed/reserved messages

    # -- producing ---------------------------------------------------------
    @abstractmethod
    def publish(self, envelopes: Sequence[Envelope]) -> None:
        """Store messages; one with a future ``eta`` goes to the delayed set."""

    # -- consuming ---------------------------------------------------------
    @abstractmethod
    def fetch(
        self,
        queues: Sequence[str],
        consumer: str,
        limit: int,
        timeout: float,
        wake: Wake | None = None,
    ) -> list[Delivery]:
        """Lease up to ``limit`` messages to ``consumer``, highest priority first.

        Promotes due delayed messages of these queues first. Waits up to
        ``timeout`` seconds when nothing is ready; returns ``[]`` then, or
        soon after ``wake`` is set (a stopping worker), having taken what
        its wait had already brought (nothing is left leased unreported). No
        queues returns ``[]`` at once, and a broker that pushes messages to its
        consumers (RabbitMQ) gives back what it pushed to this one. Each
        delivery says whether its task is revoked (``Delivery.revoked``), as the
        broker's ``revocations`` know it, so a worker skips it without asking.
        """

    @abstractmethod
    def ack(self, consumer: str, tags: Sequence[str]) -> None:
        """Remove messages for good; unknown tags (already recovered) are ignored."""

    def complete(
        self,
        consumer: str,
        tags: Sequence[str],
        backend: Backend | None,
        metas: Sequence[TaskMeta],
    ) -> None:
        """Store task records, then ack: a task's finish, in one round trip where possible.

        The default stores, then acks. A broker that recognises the backend as
        one of its own engine on the same server or file (Redis, SQLite) overrides
        this and sends both at once.
        """
        if metas and backend is not None:
            backend.store(metas)
        self.ack(consumer, tags)

    def ack_soon(self, consumer: str, tags: Sequence[str]) -> None:
        """Ack, sent with this object's next call to its server or by :meth:`flush_acks`,
        whichever comes first; the default acks now.

        For a worker about to run its next prefetched task or fetch again: the ack
        travels with that call instead of costing a write of its own (Redis). The
        caller flushes within a bound; an ack still waiting when its process dies is
        lost, and its message comes again, as after any crash before an ack.
        """
        self.ack(consumer, tags)

    def flush_acks(self) -> None:
        """Send what :meth:`ack_soon` keeps waiting. Safe from another thread."""

    @abstractmethod
    def release(
        self, consumer: str, tags: Sequence[str], delay: float = 0.0, count: bool = False
    ) -> None:
        """Give messages back: to their queue now, or to the delayed set after ``delay``.

        ``count=False`` (a message handed back unstarted) does not count as a
        delivery towards ``max_deliveries``.
        """

    @abstractmethod
    def release_all(self, consumer: str) -> int:
        """Give back everything ``consumer`` holds (its process died); returns how many."""

    @abstractmethod
    def renew(self, consumers: Sequence[str]) -> None:
        """Extend the lease of every message these consumers hold."""

    @abstractmethod
    def recover(self) -> int:
        """Return messages whose lease ran out; dead-letter ones delivered too often."""

    @abstractmethod
    def dead_letter(self, consumer: str, tag: str, reason: str) -> None:
        """Move a held message to its queue's dead letters, with the reason."""

    def pushed(self, consumer: str) -> list[Delivery]:
        """Messages a pushing broker (RabbitMQ) received for ``consumer`` and has not handed
        to it yet: held by this connection, reserved for the consumer (``inspect reserved``
        lists them; a fetch of no queues gives them back). Safe from another thread. A
        broker that hands out only what a fetch asks for holds none."""
        return []

    # -- inspecting and managing ---------------------------------------------
    @abstractmethod
    def queues(self) -> list[str]:
        """Every queue this broker knows, consumed or not."""

    @abstractmethod
    def stats(self, queue: str) -> QueueStats:
        """Waiting per priority, delayed, in flight, dead, oldest age."""

    @abstractmethod
    def purge(self, queue: str) -> int:
        """Delete waiting and delayed messages of a queue; returns how many."""

    @abstractmethod
    def dead_letters(self, queue: str, limit: int = 100) -> list[DeadLetter]:
        """The oldest dead letters of a queue."""

    @abstractmethod
    def requeue_dead(self, queue: str, ids: Sequence[str] | None = None) -> int:
        """Put dead letters (all, or those ids) back on their queue, counts reset."""

    @abstractmethod
    def purge_dead(self, queue: str, ids: Sequence[str] | None = None) -> int:
        """Delete dead letters (all, or those ids)."""

    def forget_queue(self, queue: str) -> bool:
        """Stop listing ``queue`` when it holds nothing (no waiting, delayed, held or dead
        message); True when :meth:`queues` no longer lists it. A broker that lists only
        queues with messages (SQLite) has nothing to forget; one that keeps a registry of
        names (Redis, memory) overrides this; a queue the server itself keeps (RabbitMQ's
        declared queues) stays: delete it with the server's own tools."""
        return _empty(self.stats(queue)) and queue not in self.queues()

    def close(self) -> None:
        """Release connections and files."""


def _empty(stats: QueueStats) -> bool:
    return not (stats.total_waiting or stats.delayed or stats.in_flight or stats.dead)


class QueueAdmin(Protocol):
    """The inspecting and managing primitives of a broker, as one composed object."""

    def queues(self) -> list[str]: ...
    def stats(self, queue: str) -> QueueStats: ...
    def purge(self, queue: str) -> int: ...
    def dead_letters(self, queue: str, limit: int) -> list[DeadLetter]: ...
    def requeue_dead(self, queue: str, ids: Sequence[str] | None) -> int: ...
    def purge_dead(self, queue: str, ids: Sequence[str] | None) -> int: ...


class AdminBroker(Broker):
    """A broker whose inspecting and managing calls go to its :class:`QueueAdmin`,
    ``_admin``, which the subclass makes (Redis, SQLite; a composed broker's is the
    broker that delivers)."""

    _admin: QueueAdmin

    def queues(self) -> list[str]:
        return self._admin.queues()

    def stats(self, queue: str) -> QueueStats:
        return self._admin.stats(queue)

    def purge(self, queue: str) -> int:
        return self._admin.purge(queue)

    def dead_letters(self, queue: str, limit: int = 100) -> list[DeadLetter]:
        return self._admin.dead_letters(queue, limit)

    def requeue_dead(self, queue: str, ids: Sequence[str] | None = None) -> int:
        return self._admin.requeue_dead(queue, ids)

    def purge_dead(self, queue: str, ids: Sequence[str] | None = None) -> int:
        return self._admin.purge_dead(queue, ids)

"""The broker contract: the few primitives every broker implements.

Every broker honours the delivery contract of the design:

* ``fetch`` takes messages and records who holds them in one atomic step, under a
  lease of ``lease_seconds``; nothing leaves the broker until it is acked.
* ``renew`` extends the leases of everything a consumer holds; ``recover`` (run by
  any live worker) returns messages whose lease ran out, and dead-letters those
  handed out ``max_deliveries`` times.
* Priorities are strict, 0 lowest to 9 highest, FIFO within a priority, across
  all the queues one fetch names.
* A message with an ``eta`` in the future waits in the broker's delayed set and
  is promoted when due by whichever consumer fetches next.
* Revocations are stored with a time to live.

Delivery tags are opaque strings chosen by the broker; each carries whatever the
broker needs to find its message again (a supervisor acks a dead child's message
by tag alone).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..message import Delivery, Envelope

if TYPE_CHECKING:
    from ..backends.base import Backend, TaskMeta

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


class Broker(ABC):
    """A connection to one broker; one per thread or process that uses it."""

    url: str
    lease_seconds: float = DEFAULT_LEASE_SECONDS
    max_deliveries: int = DEFAULT_MAX_DELIVERIES

    # -- producing ---------------------------------------------------------
    @abstractmethod
    def publish(self, envelopes: Sequence[Envelope]) -> None:
        """Store messages; one with a future ``eta`` goes to the delayed set."""

    # -- consuming ---------------------------------------------------------
    @abstractmethod
    def fetch(
        self, queues: Sequence[str], consumer: str, limit: int, timeout: float
    ) -> list[Delivery]:
        """Lease up to ``limit`` messages to ``consumer``, highest priority first.

        Promotes due delayed messages of these queues first. Waits up to
        ``timeout`` seconds when nothing is ready; returns ``[]`` then. No
        queues returns ``[]`` at once, and a broker that pushes messages to its
        consumers (RabbitMQ) gives back what it pushed to this one.
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

        A broker that shares its server with the backend (Redis) sends both at
        once; the default stores, then acks.
        """
        if metas and backend is not None:
            backend.store(metas)
        self.ack(consumer, tags)

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

    # -- revocations ---------------------------------------------------------
    @abstractmethod
    def revoke(self, ids: Sequence[str], ttl: float) -> None:
        """Remember these task ids as revoked for ``ttl`` seconds."""

    @abstractmethod
    def revoked(self, ids: Sequence[str]) -> set[str]:
        """Which of these task ids are revoked."""

    # -- rate limits -----------------------------------------------------------
    def rate_reserve(self, key: str, interval: float, burst: int = 1) -> float:
        """Reserve the next slot of a rate limit shared by every worker; seconds until it.

        GCRA with reservation: each call takes the next free slot
        (``interval`` = 1 / rate apart, up to ``burst`` at once) and returns
        how long to wait for it, 0.0 when it is now. Atomic in the broker's
        store, so the limit holds for the whole cluster.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement rate limits")

    # -- streams: events and remote control -----------------------------------
    # A stream is an append-only, bounded log of opaque items. Positions are
    # opaque strings that increase; "0" is before the first item. Events go to
    # the stream "events", control commands to "control", replies to
    # "reply:<command id>".
    def stream_add(self, stream: str, items: Sequence[bytes], maxlen: int = 100_000) -> None:
        """Append items, keeping about the newest ``maxlen``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement streams")

    def stream_read(
        self, stream: str, after: str, limit: int = 1000, timeout: float = 0.0
    ) -> list[tuple[str, bytes]]:
        """Items after position ``after``, oldest first; waits up to ``timeout`` for one."""
        raise NotImplementedError(f"{type(self).__name__} does not implement streams")

    def stream_last(self, stream: str) -> str:
        """The position of the newest item ("0" when empty): read after it for new items."""
        raise NotImplementedError(f"{type(self).__name__} does not implement streams")

    # -- flags: small durable state shared by the cluster (paused queues) -------
    def set_flag(self, name: str, value: str | None) -> None:
        """Set (or with None, clear) a named flag."""
        raise NotImplementedError(f"{type(self).__name__} does not implement flags")

    def flags(self, prefix: str = "") -> dict[str, str]:
        """Every flag whose name starts with ``prefix``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement flags")

    def close(self) -> None:
        """Release connections and files."""

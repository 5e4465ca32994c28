"""What a broker may offer beyond delivery: small typed capabilities.

The delivery contract (:mod:`celeriac.brokers.base`) is what every broker must
do. Events, remote control, paused queues, worker presence, cluster-wide rate
limits and revocations need a little shared state besides, which a broker
offers as capability objects on typed attributes, ``None`` where it has none::

    broker.streams       Streams      events, control commands and their replies
    broker.flags         Flags        paused queues, worker presence, stopped tasks
    broker.rates         RateLimits   cluster-wide rate-limit slots
    broker.revocations   Revocations  revoked task ids, with a time to live
    broker.uniques       UniqueKeys   unique tasks: which task holds a key, until when
    broker.concurrency   ConcurrencyLimits  concurrency limits per key: holds, parked messages
    broker.beat          BeatState    the periodic-task leader's lease, each entry's last run

Callers ask the object (``if broker.streams is not None``), never its URL.
A caller that cannot do without one takes it through :func:`require`, which
turns its absence into a :class:`~celeriac.exceptions.CapabilityUnavailable`
that names the broker, the capability and what to configure.

Memory, SQLite, Redis and RabbitMQ brokers offer all six. With
``broker_capabilities_url`` set, a broker takes them from that store instead
(:mod:`celeriac.brokers.composed`). ``beat`` is apart: recording a run and
sending its message are one atomic step, so only the delivery broker itself can
offer it (memory, SQLite, Redis without Cluster, RabbitMQ).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol, TypeVar

from ..exceptions import CapabilityUnavailable
from ..message import Envelope
from ..urls import redact

if TYPE_CHECKING:
    from .base import Broker

T = TypeVar("T")

#: The capability attributes of a broker, in the order the docs list them.
CAPABILITIES = ("streams", "flags", "rates", "revocations", "uniques", "concurrency")


class Streams(Protocol):
    """Append-only, bounded logs of opaque items, read by any number of readers.

    Positions are opaque strings that increase; ``"0"`` is before the first
    item. Events go to the stream ``"events"``, control commands to
    ``"control"``, replies to ``"reply:<command id>"``.
    """

    def add(self, stream: str, items: Sequence[bytes], maxlen: int = 100_000) -> None:
        """Append items, keeping about the newest ``maxlen``."""
        ...

    def read(
        self, stream: str, after: str, limit: int = 1000, timeout: float = 0.0
    ) -> list[tuple[str, bytes]]:
        """Items after position ``after``, oldest first; waits up to ``timeout`` for one."""
        ...

    def last(self, stream: str) -> str:
        """The position of the newest item (``"0"`` when empty): read after it for new items."""
        ...


class Flags(Protocol):
    """Small durable named values shared by the cluster (paused queues, presence)."""

    def set(self, name: str, value: str | None) -> None:
        """Set (or with None, clear) a named flag."""
        ...

    def read(self, prefix: str = "") -> dict[str, str]:
        """Every flag whose name starts with ``prefix``."""
        ...


class RateLimits(Protocol):
    """Slots of rate limits shared by every worker of the cluster."""

    def reserve(self, key: str, interval: float, burst: int = 1) -> float:
        """Reserve the next slot of the limit ``key``; seconds until it.

        GCRA with reservation: each call takes the next free slot
        (``interval`` = 1 / rate apart, up to ``burst`` at once) and returns
        how long to wait for it, 0.0 when it is now. Atomic in the broker's
        store, so the limit holds for the whole cluster.
        """
        ...


class Revocations(Protocol):
    """Revoked task ids, remembered for a time to live.

    A broker that offers them flags revoked messages as it delivers them
    (``Delivery.revoked``), so a worker skips them without asking.
    """

    def revoke(self, ids: Sequence[str], ttl: float) -> None:
        """Remember these task ids as revoked for ``ttl`` seconds."""
        ...

    def revoked(self, ids: Sequence[str]) -> set[str]:
        """Which of these task ids are revoked now."""
        ...


class UniqueKeys(Protocol):
    """Keys held by one task each for a while: unique tasks (:mod:`celeriac.unique`).

    Keys are opaque strings; a holder is a task id. Claims are atomic in the
    broker's store, so two producers sending the same key at once never both win.
    """

    def claim(self, key: str, task_id: str, ttl: float) -> str:
        """Hold ``key`` for ``task_id`` for ``ttl`` seconds unless another task holds it now.

        Returns the holder: ``task_id`` when this call took the key, the holding
        task's id when another one already held it.
        """
        ...

    def release(self, key: str, task_id: str) -> None:
        """Free ``key`` when ``task_id`` holds it (another holder keeps it)."""
        ...


class ConcurrencyLimits(Protocol):
    """Concurrency limits per key: at most ``limit`` tasks hold a key at once; the others
    wait parked in the broker (:mod:`celeriac.brokers.concurrency` argues the design).

    Holds are leases of the consumer that runs the task, renewed with its other leases
    (:meth:`renew`); a consumer that stops renewing loses its holds within one lease.
    """

    def acquire(self, key: str, limit: int, holder: str, consumer: str, parked: Envelope) -> bool:
        """Hold a slot of ``key`` for ``holder`` (one delivery of a task, run by
        ``consumer``); when ``limit`` holders have it, keep ``parked`` (the task's message)
        in the key's wait list instead and return False."""
        ...

    def release(self, key: str, holder: str | None) -> list[Envelope]:
        """Free ``holder``'s slot; the parked messages the free slots let out, which the
        caller publishes, then confirms with :meth:`moved` (unconfirmed, they go back to
        the wait list after two leases)."""
        ...

    def moved(self, key: str, task_ids: Collection[str]) -> None:
        """The messages (by task id) :meth:`release` or :meth:`sweep` let out are published."""
        ...

    def renew(self, consumers: Sequence[str]) -> None:
        """Extend the holds of these consumers by one lease."""
        ...

    def end(self, consumers: Sequence[str]) -> None:
        """End these consumers' holds now (their process died)."""
        ...

    def sweep(self) -> list[tuple[str, list[Envelope]]]:
        """Per key, the parked messages that slots freed by dead holders let out (the
        heartbeat publishes them, then confirms with :meth:`moved`)."""
        ...

    def holders(self, key: str) -> dict[str, str]:
        """The holders of ``key`` now, with their consumers."""
        ...


@dataclass(frozen=True)
class Lease:
    """Who leads the beat, and until when (Unix seconds; in the past once ended)."""

    holder: str
    until: float


@dataclass(frozen=True)
class BeatRun:
    """One run of a periodic task: the entry, its due time, and what to send (None: skip it)."""

    entry: str
    due_ms: int  # Unix milliseconds: with the entry, the run's name
    envelope: Envelope | None


class BeatState(Protocol):
    """The periodic-task scheduler's shared state (:mod:`celeriac.beat`).

    One lease names the leader. Each entry's last run is a due time that only
    moves forward: :meth:`record` moves it and publishes the run's message in
    one atomic step, so a run is sent once even when two processes both believe
    they lead (during a takeover) or a leader dies between two calls.
    """

    def hold(self, holder: str, seconds: float) -> Lease:
        """Take or renew the lease for ``seconds`` when it is free, ended or ``holder``'s.

        Returns the lease as it is now: ``holder``'s when taken, another's when not.
        """
        ...

    def lease(self) -> Lease | None:
        """The current or last lease, None when no beat ever led."""
        ...

    def release(self, holder: str) -> None:
        """End ``holder``'s lease now: kept with an empty holder, so a successor knows
        when the last leader stopped (and that it stopped rather than died)."""
        ...

    def record(self, runs: Sequence[BeatRun]) -> list[bool]:
        """Record each run whose due time is after its entry's last run, publishing its
        envelope in the same atomic step; for each run, whether it was recorded.

        The leader calls it. Where the store has a compare-and-set (memory, SQLite,
        Redis) any caller is safe; RabbitMQ records only for the connection that holds
        the lease (an exclusive queue), and returns False for every run otherwise."""
        ...

    def last_runs(self) -> dict[str, int]:
        """Each entry's last recorded due time (Unix milliseconds)."""
        ...

    def forget(self, entry: str) -> None:
        """Drop an entry's last run (a removed entry)."""
        ...


_NOUNS = {
    "streams": "streams",
    "flags": "flags",
    "rates": "rate-limit state",
    "revocations": "revocations",
    "uniques": "unique-task keys",
    "concurrency": "concurrency-limit holds",
    "beat": "periodic-task state",
}


def require(broker: Broker, offered: T | None, capability: str, purpose: str) -> T:
    """``offered`` (``broker``'s ``capability`` attribute), or a clear error naming what
    to do when the broker does not offer it; ``purpose`` says what needed it."""
    if offered is not None:
        return offered
    noun = _NOUNS.get(capability, capability)
    raise CapabilityUnavailable(
        f"broker {redact(broker.url)} ({type(broker).__name__}) keeps no {noun}, so "
        f"{purpose} is not available on it: use a Redis, RabbitMQ or SQLite broker, "
        f"which offer {noun}, or set broker_capabilities_url to a Redis or SQLite store"
    )


__all__ = [
    "CAPABILITIES",
    "BeatRun",
    "BeatState",
    "ConcurrencyLimits",
    "Flags",
    "Lease",
    "RateLimits",
    "Revocations",
    "Streams",
    "UniqueKeys",
    "require",
]


#: What browsing a queue lists: messages ready to run, waiting for their time, or held
#: by a consumer (prefetched or running).
Kind = Literal["waiting", "delayed", "reserved"]
KINDS: tuple[Kind, ...] = ("waiting", "delayed", "reserved")


@dataclass(frozen=True, slots=True)
class Listed:
    """One message of a queue, as browsing lists it (the body is the encoded message)."""

    id: str
    queue: str
    priority: int
    body: bytes
    kind: Kind
    since: float | None = None  # waiting: when it became ready
    eta: float | None = None  # delayed: when it is due
    holder: str | None = None  # reserved: the consumer that holds it
    deliveries: int = 0
    sent_at: float | None = None  # kept by the broker beside the body (None: in the body)


class QueueBrowser(Protocol):
    """Lists what waits in a queue and acts on single messages (``broker.browse``).

    Offered by the delivering broker itself (not by ``broker_capabilities_url``'s
    store): memory, SQLite and Redis list every kind; RabbitMQ lists waiting and
    delayed messages, and cannot see which messages a consumer holds
    (``reserved_in_workers``): its methods raise
    :class:`~celeriac.exceptions.CapabilityUnavailable` for reserved ones, which
    :mod:`celeriac.control.held` lists from the workers' own answers instead.
    """

    #: True when only the workers know which messages they hold (RabbitMQ keeps them
    #: on the workers' channels): ask them, not this object, for reserved messages.
    reserved_in_workers: bool

    def messages(
        self, queue: str, kind: Kind, limit: int = 50, offset: int = 0, newest_first: bool = False
    ) -> list[Listed]:
        """A page of the queue's messages of ``kind``: waiting by age, delayed by due time,
        reserved by when they were taken; oldest (or soonest) first unless ``newest_first``."""
        ...

    def count(self, queue: str, kind: Kind) -> int:
        """How many messages of ``kind`` the queue holds."""
        ...

    def delete(self, queue: str, kind: Kind, ids: Sequence[str]) -> int:
        """Delete waiting or delayed messages by task id; how many went."""
        ...

    def run_now(self, queue: str, ids: Sequence[str]) -> int:
        """Move delayed messages to the back of their queue, due now; how many moved."""
        ...

    def requeue(self, queue: str, ids: Sequence[str]) -> int:
        """Take reserved messages from their holder, back to their queue (the holder's
        later ack is ignored; one it already started may run twice); how many moved."""
        ...

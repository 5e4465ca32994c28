"""The RabbitMQ broker (``amqp://`` and ``amqps://``), with native priorities.

How the delivery contract maps onto RabbitMQ (docs/rabbitmq.md says more):

* Task queues are durable classic queues with ``x-max-priority: 10``; RabbitMQ
  hands out the highest priority first, FIFO within a priority.
* ``publish`` sends persistent messages and returns once RabbitMQ confirmed the
  whole batch (publisher confirms, one wait per batch), or, with
  ``publish_confirm`` off, once they are written to the connection. Confirmed
  publishes go through the process's publishing connection (``pipeline``):
  threads publish side by side, each waiting for its own confirms only.
* ``fetch`` consumes (``basic.consume``) on a channel per consumer id with
  ``basic.qos`` = ``limit`` + what the consumer already holds, so a consumer
  never holds more than it asked for, running messages included. Within one
  queue priority is strict. Across several queues, RabbitMQ fills the
  prefetch window from each queue as messages arrive, and a fetch returns the
  highest priority among what arrived: with prefetch 1, a low-priority message
  of queue A may run before a high-priority one that reached queue B a moment
  later. Route tasks whose relative priority matters to one queue.
* The lease is the connection: RabbitMQ keeps a message unacked while the
  consumer's connection lives (heartbeats every lease, answered even while a
  task runs) and requeues it the moment the connection or channel closes. So
  ``renew`` only answers heartbeats and ``recover`` has nothing to do.
  ``release_all`` closes the consumer's channel; for a consumer in another
  process, its connection closing already returned its messages.
* Nothing waits unacked on a channel: countdown, ETA, retry backoff and rate
  limited tasks go to the delay ladder (``topology``), a durable store
  that costs nothing while it waits and re-enters the task queue with the
  message's priority when due.
* Classic queues only say "redelivered", not how often, so celeriac counts
  deliveries in a header: a message that comes back redelivered is published
  again with its count raised (and acked), or dead-lettered when it reached
  ``max_deliveries``.
* Revocations, the queue registry and purge marks live in a stream
  (``state``, ``revocations``), since RabbitMQ has no key-value store.
* Events and remote control use stream queues, replies small expiring queues
  (``streams``, ``replies``); rate limits pass one token per limit
  from worker to worker (``rates``), and unique-task keys one token per key
  naming its holder (``uniques``).

The broker is composed of helper objects sharing its link; the ones that are
its capabilities (``streams``, ``flags``, ``rates``, ``revocations``, ``uniques``) are its
attributes of those names, and call RabbitMQ through the broker's retrying
(``_retrying``), as its own producer calls do.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

if importlib.util.find_spec("pika") is None:  # pragma: no cover - depends on the install
    from ..exceptions import MissingExtraError

    raise MissingExtraError("rabbitmq", "pika")

import pika.exceptions as pe

from ..backoff import Backoff
from ..brokers.base import Broker, DeadLetter, QueueStats
from ..brokers.concurrency import Concurrency
from ..brokers.wake import Wake
from ..exceptions import BrokerError, BrokerUnavailable, ConfigurationError
from ..message import Delivery, Envelope, check_priority
from .admin import Admin
from .beat import RabbitBeat
from .browse import RabbitBrowse
from .connection import Link, Outgoing, heartbeat_for
from .consumer import Intake, Raw
from .dead import DeadLetters
from .flags import Flags
from .limits import RabbitConcurrency
from .messages import Messages
from .rates import Rates
from .revocations import Revocations
from .state import StateLog
from .streams import Retention, Streams
from .topology import Topology, check_queue_name, parse_routes
from .uniques import Uniques

logger = logging.getLogger("celeriac.rabbitmq.broker")

T = TypeVar("T")

_owners: dict[str, weakref.ref[AMQPBroker]] = {}  # consumer id -> broker object in this process
_owners_lock = threading.Lock()

_SLICE = 0.05  # longest a fetch keeps the link to itself while it waits
_GRACE = 0.5  # longest a fetch waits past its timeout for messages RabbitMQ is pushing
_CLOSED = 1 << 30  # "ready" count of a channel closed under a fetch: stop waiting
_PUSHED_WAIT = 0.2  # longest ``pushed`` (an inspection) waits for the link
_OPTIONS: dict[str, Any] = {
    "confirm_timeout": 30.0,
    "publish_confirm": True,
    "connect_timeout": 10.0,
    "retry_seconds": 10.0,
    "heartbeat": None,
    "queue_arguments": {},
    "task_queues": None,
    "state_retention": "7D",
    "default_priority": 5,
    "stream_max_bytes": 100 * 1024 * 1024,
    "stream_max_age": "7D",
    "stream_segment_bytes": 8 * 1024 * 1024,
}


def _flag(opts: dict[str, Any], name: str) -> bool:
    value = opts[name]
    if not isinstance(value, bool):
        raise ConfigurationError(f"{name} must be True or False, not {value!r}")
    return value


def _retention(opts: dict[str, Any]) -> Retention:
    try:
        return Retention(
            int(opts["stream_max_bytes"]),
            str(opts["stream_max_age"]),
            int(opts["stream_segment_bytes"]),
        )
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(
            "stream_max_bytes and stream_segment_bytes must be whole numbers of bytes, "
            f"stream_max_age a RabbitMQ age such as '7D' or '12h' ({exc})"
        ) from exc


class AMQPBroker(Broker):
    """A connection to RabbitMQ; one per thread or process (pika is not thread-safe),
    except ``publish``, which any number of threads may call at once (see ``pipeline``).

    Transport options (``broker_transport_options``): ``publish_confirm``
    (default True: ``publish`` returns once RabbitMQ confirmed every message;
    False, the ``broker_publish_confirm`` setting's, returns once they are
    written to the socket), ``confirm_timeout``,
    ``connect_timeout``, ``retry_seconds`` (how long producer calls retry a
    lost connection before raising ``BrokerUnavailable``), ``heartbeat``
    (default: the lease), ``queue_arguments`` (extra ``x-`` arguments for task
    queues), ``task_queues`` (exchanges and routing keys per queue),
    ``state_retention`` (of the state stream, default ``"7D"``),
    ``default_priority`` (where ``stats`` reports waiting messages),
    ``stream_max_bytes``, ``stream_max_age`` and ``stream_segment_bytes`` (what
    the event and control streams keep on the server, see ``streams``).
    """

    routes_by_exchange = True
    carries_replies = True
    publishes_concurrently = True

    def __init__(
        self,
        url: str = "amqp://",
        lease_seconds: float = 30.0,
        max_deliveries: int = 5,
        **options: Any,
    ) -> None:
        unknown = set(options) - set(_OPTIONS)
        if unknown:
            logger.warning(
                "transport options %s mean nothing to the RabbitMQ broker; known: %s",
                sorted(unknown),
                ", ".join(sorted(_OPTIONS)),
            )
        opts = {**_OPTIONS, **{k: v for k, v in options.items() if k in _OPTIONS}}
        if max_deliveries < 1:
            raise ConfigurationError(f"max_deliveries must be at least 1, not {max_deliveries!r}")
        self.url = url
        self.lease_seconds = lease_seconds
        self.max_deliveries = max_deliveries
        self._retry_seconds = float(opts["retry_seconds"])
        self._default_priority = check_priority(int(opts["default_priority"]))
        heartbeat = opts["heartbeat"]
        self._link = Link(
            url,
            heartbeat=heartbeat_for(lease_seconds) if heartbeat is None else int(heartbeat),
            connect_timeout=float(opts["connect_timeout"]),
            confirm_timeout=float(opts["confirm_timeout"]),
        )
        self._topology = Topology(
            self._link.admin, parse_routes(opts["task_queues"]), dict(opts["queue_arguments"])
        )
        self._state = StateLog(
            self._link, self._topology, str(opts["state_retention"]), float(opts["confirm_timeout"])
        )
        self._messages = Messages(
            self._link, self._topology, self._state, max_deliveries, _flag(opts, "publish_confirm")
        )
        self._dead = DeadLetters(self._link, self._requeue_dead_letter)
        self._admin = Admin(
            self._link, self._messages, self._state, self._dead, self._default_priority
        )
        self._streams = Streams(
            self._link, _retention(opts), float(opts["confirm_timeout"]), self._retrying
        )
        self.streams = self._streams
        self.flags = Flags(self._link, self._state, self._retrying)
        self.rates = Rates(self._link, self._retrying)
        self.revocations = Revocations(self._state, self._retrying)
        self.uniques = Uniques(self._link, self._retrying)
        self.concurrency = Concurrency(
            RabbitConcurrency(self._link, self._retrying), self.lease_seconds
        )
        self.beat = RabbitBeat(self._link, self._messages, self.flags, self._retrying)
        self.browse = RabbitBrowse(self._link, self._messages, self._state, self._retrying)
        self._intake: Intake | None = None  # the consuming channel, opened by the first fetch
        self._consumers: set[str] = set()  # consumer ids that fetch through this object
        self._link.on_reset.append(self._forget_connection)
        self._link.before_close.append(self._state.close_channel)
        self._link.before_close.append(self._streams.close_channels)

    def _forget_connection(self) -> None:
        if self._intake is not None:
            self._messages.lost(self._intake)
        self._intake = None  # RabbitMQ requeued everything it held
        self._topology.forget()
        self._state.detach()
        self._streams.forget()

    # -- calling RabbitMQ ----------------------------------------------------------
    def _retrying(self, what: str, op: Callable[[], T]) -> T:
        """A producer call: retried with backoff over a lost connection, within a bound."""

        def guarded() -> T:
            with self._link.guard(what):
                return op()

        with self._link.lock:
            return self._retrying_unlocked(what, guarded)

    def _retrying_unlocked(self, what: str, op: Callable[[], T]) -> T:
        """``_retrying`` without the link's lock: for confirmed publishes (the pipeline's)."""
        deadline = time.monotonic() + self._retry_seconds
        pauses: Backoff | None = None
        while True:
            try:
                return op()
            except BrokerUnavailable as exc:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise BrokerUnavailable(
                        f"{what}: RabbitMQ unreachable for {self._retry_seconds:.0f}s ({exc})"
                    ) from exc
                pauses = pauses or Backoff(0.05, cap=1.0)
                pauses.sleep(remaining)

    def _once(self, what: str, op: Callable[..., T], *args: Any) -> T:
        """A consumer call: a lost connection raises at once; the worker backs off."""
        with self._link.lock, self._link.guard(what):
            return op(*args)

    # -- producing ---------------------------------------------------------------------
    def publish(self, envelopes: Sequence[Envelope]) -> None:
        if not envelopes:
            return
        now = time.time()
        for env in envelopes:
            check_queue_name(env.queue)
        items = [(env.queue, self._messages.outgoing(env, now)) for env in envelopes]
        messages = self._messages
        if not messages.confirms:  # written on the link's own channel: under its lock

            def declare_and_send() -> None:
                messages.declare(items)
                messages.send(items)

            self._retrying("publish", declare_and_send)
            return
        # Declared under the lock (once per connection), then published without it: the
        # threads sharing this object wait for their own confirms, side by side.
        self._retrying("publish", lambda: messages.declare(items))
        returned = self._retrying_unlocked("publish", lambda: messages.send(items))
        if returned:  # a queue deleted since we declared it: declare it again and resend
            messages.forget(returned)
            self._retrying("publish", lambda: messages.declare(returned))
            lost = self._retrying_unlocked("publish", lambda: messages.send(returned))
            if lost:
                queues = sorted({queue for queue, _ in lost})
                raise BrokerError(
                    f"RabbitMQ routed {len(lost)} message(s) to no queue although "
                    f"{', '.join(map(repr, queues))} was declared just before (deleted again, "
                    "or a task_queues binding that does not lead to it?); they were not enqueued"
                )

    # -- consuming -------------------------------------------------------------------
    def _open_intake(self) -> Intake:
        intake = self._intake
        if intake is not None and not intake.is_open:
            logger.warning(
                "RabbitMQ closed the consuming channel; the %d message(s) it had "
                "handed out were requeued and will be delivered again",
                len(intake.held),
            )
            self._messages.lost(intake)
            intake = None
        if intake is None:
            intake = self._intake = Intake(self._link.channel())
        return intake

    def _live_intake(self) -> Intake | None:
        intake = self._intake
        return intake if intake is not None and intake.is_open else None

    def _owner(self, consumer: str) -> AMQPBroker:
        """The broker object of this process that consumes as ``consumer``.

        Delivery tags belong to the channel that received them, so an ack must
        go through the object that fetched. A worker that fetches in one thread
        and acks from another with a second broker object is served by
        delegating to the first (its lock makes that safe).
        """
        if consumer in self._consumers:
            return self
        with _owners_lock:
            ref = _owners.get(consumer)
        owner = ref() if ref is not None else None
        return owner if owner is not None and consumer in owner._consumers else self

    def fetch(
        self,
        queues: Sequence[str],
        consumer: str,
        limit: int,
        timeout: float,
        wake: Wake | None = None,
    ) -> list[Delivery]:
        """Up to ``limit`` messages, highest priority first among those RabbitMQ sent.

        A fetch of no queues ends this consumer's subscriptions and gives back
        what RabbitMQ pushed for it, unstarted (a worker whose queues are all
        paused), so those messages wait in their queues.

        Priority is strict within a queue; across queues it is strict among
        the messages in this object's prefetch window (see the module doc).
        RabbitMQ pushes messages to consumers. When this fetch opened or widened
        the window (a first fetch, a new queue, a larger limit), it waits for
        the first message, or for ``timeout`` (at once for ``timeout=0``), then
        asks how many are ready and waits a moment (at most ``_GRACE``) for
        as many as the window holds: a fresh consumer takes a full batch, and a
        fetch right after a publish finds the message. A fetch through an
        unchanged window returns what is in hand as soon as there is
        something: RabbitMQ refills the window as messages are acked, and
        asking what else is on its way costs two round trips, more than a
        worker's whole fetch. A ``wake`` set while it waits ends the wait
        within one slice (``_SLICE``), with what arrived meanwhile.
        """
        owner = self._owner(consumer)
        if owner is not self:
            return owner.fetch(queues, consumer, limit, timeout, wake)
        if not queues:  # wants nothing now (every queue paused): stop RabbitMQ pushing to it
            self._once("fetch", self._unsubscribe, consumer)
            return []
        if limit <= 0:
            return []
        names = list(queues)
        deadline = time.monotonic() + timeout
        widened = self._once("fetch", lambda: self._subscribe(names, consumer, limit))
        want, graced = 1, False
        while True:  # wait in short slices, so other threads can ack in between
            ready = self._once("fetch", self._wait, names, want, deadline)
            if wake is not None and wake.is_set():  # stopping: what came, with no grace
                return self._once("fetch", self._take, consumer, names, limit)
            if ready < want and time.monotonic() < deadline:
                continue
            if graced or ready >= limit or (ready and not widened):
                return self._once("fetch", self._take, consumer, names, limit)
            # A new window's first arrivals, or the time is up: ask what else is
            # on its way (once) and wait a moment for it.
            want = min(limit, self._once("fetch", self._coming, names))
            graced, deadline = True, time.monotonic() + _GRACE
            if want <= ready:
                return self._once("fetch", self._take, consumer, names, limit)

    def _subscribe(self, queues: list[str], consumer: str, limit: int) -> bool:
        """Consume ``queues`` with room for ``limit``; whether the window changed."""
        self._state.follow()
        for queue in queues:
            self._messages.ensure_queue(queue)
        intake = self._open_intake()
        before = intake.window  # a new channel's is (0, none)
        for queue in intake.lost_subscriptions():
            self._topology.forget(queue)
            self._messages.ensure_queue(queue)
        self._messages.sift(intake)
        elsewhere = intake.buffered - intake.ready_count(queues)  # waiting for other consumers
        intake.set_prefetch(limit + len(intake.held) + elsewhere)
        self._messages.give_back(intake, intake.subscribe(consumer, queues), counted=False)
        if consumer not in self._consumers:
            self._consumers.add(consumer)
            with _owners_lock:
                _owners[consumer] = weakref.ref(self)
        return intake.window != before

    def _unsubscribe(self, consumer: str) -> None:
        intake = self._live_intake()
        if intake is not None and consumer in self._consumers:
            # Take in what already arrived first: pika would send back undispatched
            # deliveries of a cancelled consumer as redelivered, counting a delivery.
            self._link.ensure().process_data_events(0)
            self._messages.sift(intake)
            self._messages.give_back(intake, intake.forget(consumer), counted=False)

    def _wait(self, queues: list[str], want: int, deadline: float) -> int:
        """How many messages of ``queues`` are ready, after waiting one slice for ``want``."""
        intake = self._live_intake()
        if intake is None:
            return _CLOSED  # closed under us (RabbitMQ requeued what it held): take nothing
        self._messages.sift(intake)
        remaining = deadline - time.monotonic()
        if intake.ready_count(queues) < want and remaining > 0:
            self._link.ensure().process_data_events(time_limit=min(remaining, _SLICE))
            self._messages.sift(intake)
        return intake.ready_count(queues)

    def _take(self, consumer: str, queues: list[str], limit: int) -> list[Delivery]:
        intake = self._live_intake()
        if intake is None:
            return []  # the next fetch opens a new channel
        self._messages.sift(intake)
        now = time.time()
        return [
            intake.delivery(raw, self._state.revoked_now(raw.message_id, now))
            for raw in intake.take(consumer, queues, limit)
        ]

    def _coming(self, queues: list[str]) -> int:
        """How many messages of ``queues`` to expect once RabbitMQ pushed what is ready."""
        intake = self._live_intake()
        if intake is None:
            return 0
        if intake.prefetch - len(intake.held) - intake.buffered <= 0:
            return intake.ready_count(queues)  # the window is full: nothing else can come
        # First what each queue has not handed out yet, then a round trip on the
        # consuming channel: whatever a queue sent us before it answered is ahead
        # of that answer on the channel, so it is in hand afterwards.
        ready = sum(self._ready_count(queue) for queue in queues)
        intake.barrier()
        self._link.ensure().process_data_events(0)
        ready += self._messages.sift(intake)  # redelivered ones were sent round again
        room = intake.prefetch - len(intake.held) - intake.buffered
        return intake.ready_count(queues) + min(max(room, 0), ready)

    def _ready_count(self, queue: str) -> int:
        try:
            declared = self._link.admin().queue_declare(queue, passive=True)
        except pe.ChannelClosedByBroker as exc:
            if exc.reply_code == 404:  # deleted under us: the next fetch declares it again
                return 0
            raise
        return int(declared.method.message_count)

    def _held(self, tags: Sequence[str]) -> tuple[Intake | None, list[Raw]]:
        intake = self._live_intake()
        if intake is None:
            if tags:
                logger.warning(
                    "%d message(s) went back to RabbitMQ when the channel that "
                    "received them closed; they will be delivered again",
                    len(tags),
                )
            return None, []
        raws = []
        for tag in tags:
            delivery_tag = intake.resolve(tag)
            if delivery_tag is not None:
                raws.append(intake.held.pop(delivery_tag))
        return intake, raws

    def ack(self, consumer: str, tags: Sequence[str]) -> None:
        owner = self._owner(consumer)
        if owner is not self:
            return owner.ack(consumer, tags)

        def op() -> None:
            intake, raws = self._held(tags)
            if intake is not None:
                intake.settle(raw.delivery_tag for raw in raws)

        self._once("ack", op)

    def release(
        self, consumer: str, tags: Sequence[str], delay: float = 0.0, count: bool = False
    ) -> None:
        owner = self._owner(consumer)
        if owner is not self:
            return owner.release(consumer, tags, delay, count)

        def op() -> None:
            intake, raws = self._held(tags)
            if intake is not None:
                self._messages.give_back(intake, raws, counted=count, delay=delay)

        self._once("release", op)

    def release_all(self, consumer: str) -> int:
        """Give back, counted, everything ``consumer`` holds through this object.

        A consumer in another process (a dead child) is not known here: its
        messages went back to their queues, counted, when its connection
        closed, so there is nothing left to do: 0.
        """
        owner = self._owner(consumer)
        if owner is not self:
            return owner.release_all(consumer)

        def op() -> int:
            self._consumers.discard(consumer)
            intake = self._live_intake()
            if intake is None:
                return 0
            raws = intake.held_by(consumer)
            for raw in raws:
                del intake.held[raw.delivery_tag]
            # Stop consuming what nobody wants any more before sending anything back,
            # or RabbitMQ would push it straight back to this channel.
            self._messages.sift(intake)
            orphans = intake.forget(consumer)
            self._messages.give_back(intake, raws, counted=True)
            self._messages.give_back(intake, orphans, counted=False)
            return len(raws)

        return self._once("release_all", op)

    def pushed(self, consumer: str) -> list[Delivery]:
        """What RabbitMQ pushed into ``consumer``'s window that no fetch took yet. Waits a
        moment at most for the link (another thread may be using it): else nothing."""
        owner = self._owner(consumer)
        if owner is not self:
            return owner.pushed(consumer)
        if not self._link.lock.acquire(timeout=_PUSHED_WAIT):
            return []
        try:
            intake = self._live_intake()
            if intake is None:
                return []
            now = time.time()
            return [
                intake.delivery(raw, self._state.revoked_now(raw.message_id, now))
                for raw in intake.pushed(consumer)
            ]
        finally:
            self._link.lock.release()

    def renew(self, consumers: Sequence[str]) -> None:
        """Nothing to extend: the connection is the lease. Answers heartbeats."""
        self._link.service()

    def recover(self) -> int:
        """Nothing to recover: RabbitMQ requeues a dead consumer's messages itself."""
        return 0

    def dead_letter(self, consumer: str, tag: str, reason: str) -> None:
        owner = self._owner(consumer)
        if owner is not self:
            return owner.dead_letter(consumer, tag, reason)

        def op() -> None:
            intake, raws = self._held([tag])
            if intake is not None and raws:
                self._messages.bury(intake, raws[0], reason)

        self._once("dead_letter", op)

    # -- inspecting and managing -----------------------------------------------------
    def queues(self) -> list[str]:
        """Every queue declared through celeriac in this vhost (the registry in the stream)."""
        return self._retrying("queues", self._admin.queues)

    def stats(self, queue: str) -> QueueStats:
        """Waiting (under ``default_priority``: RabbitMQ does not count per priority),
        consumers and dead letters; delayed and in flight are not known (see admin)."""
        return self._retrying("stats", lambda: self._admin.stats(queue))

    def purge(self, queue: str) -> int:
        """Delete waiting messages (counted) and delayed ones as they come due (not counted)."""
        return self._retrying("purge", lambda: self._admin.purge(queue))

    def dead_letters(self, queue: str, limit: int = 100) -> list[DeadLetter]:
        return self._retrying("dead_letters", lambda: self._dead.list(queue, limit))

    def _requeue_dead_letter(self, dead: DeadLetter) -> Outgoing:
        self._messages.ensure_queue(dead.queue)
        env = Envelope(dead.id, dead.queue, dead.priority, dead.body)
        return self._messages.outgoing(env, time.time())

    def requeue_dead(self, queue: str, ids: Sequence[str] | None = None) -> int:
        return self._retrying("requeue_dead", lambda: self._dead.requeue(queue, ids))

    def purge_dead(self, queue: str, ids: Sequence[str] | None = None) -> int:
        return self._retrying("purge_dead", lambda: self._dead.purge(queue, ids))

    def close(self) -> None:
        """Give back what no task started, then close the connection."""
        with self._link.lock:
            try:
                with self._link.guard("close"):
                    intake = self._live_intake()
                    if intake is not None and self._link.conn is not None:
                        self._messages.sift(intake)
                        self._messages.give_back(intake, intake.unstarted(), counted=False)
            except Exception as exc:  # closing must not fail; RabbitMQ requeues
                logger.debug("giving back unstarted messages on close failed: %s", exc)
            self._link.close()
        with _owners_lock:
            for consumer in self._consumers:
                if (ref := _owners.get(consumer)) is not None and ref() is self:
                    del _owners[consumer]

"""The consuming channel of one broker object: subscriptions, prefetch window, holders.

A broker object consumes on one channel, whatever consumer ids fetch through
it: RabbitMQ pushes messages to the channel, they wait here until a fetch of
one of their queues takes them, and each taken message records which consumer
holds it (``release_all`` gives back exactly that consumer's messages). One
``basic.qos`` with ``global`` set bounds everything the channel holds, taken
or not. A delivery tag (``"<epoch>.<tag>"``) names the channel it belongs to:
a tag from a channel that has since closed is recognised and ignored instead
of being acked on the wrong channel (which RabbitMQ punishes by closing it).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pika.adapters.blocking_connection import BlockingChannel

from ..message import Delivery
from .topology import H_DELIVERIES

_epochs = itertools.count(1)
_arrivals = itertools.count()


@dataclass(slots=True)
class Raw:
    """A message as RabbitMQ delivered it to this channel."""

    delivery_tag: int
    redelivered: bool
    queue: str
    properties: Any
    body: bytes
    arrival: int = field(default_factory=lambda: next(_arrivals))
    holder: str = ""  # the consumer id it was handed to

    @property
    def headers(self) -> dict[str, Any]:
        return self.properties.headers or {}

    @property
    def handed_out(self) -> int:
        """How many times earlier copies of this message were handed out."""
        try:
            return int(self.headers.get(H_DELIVERIES, 0))
        except (TypeError, ValueError):
            return 0

    @property
    def priority(self) -> int:
        return int(self.properties.priority or 0)

    @property
    def message_id(self) -> str:
        return str(self.properties.message_id or "")


class Intake:
    """What one channel subscribed to, received, and handed out."""

    def __init__(self, channel: BlockingChannel) -> None:
        self.channel = channel
        self.epoch = next(_epochs)
        self.prefetch = 0
        self.inbox: list[Raw] = []  # delivered by RabbitMQ, not yet looked at
        self._ready: list[tuple[int, int, Raw]] = []  # heap: (-priority, arrival, raw)
        self.held: dict[int, Raw] = {}  # delivery tag -> handed out, not yet settled
        self._interest: dict[str, tuple[str, ...]] = {}  # consumer id -> its queues
        self._subscribed: dict[str, str] = {}  # queue -> consumer tag
        self._queue_of: dict[str, str] = {}  # consumer tag -> queue

    @property
    def is_open(self) -> bool:
        return bool(self.channel.is_open)

    def resolve(self, tag: str) -> int | None:
        """The channel's delivery tag for ``tag`` if it is handed out from this channel now."""
        epoch, _, number = tag.partition(".")
        if epoch != str(self.epoch) or not number.isdigit():
            return None
        delivery_tag = int(number)
        return delivery_tag if delivery_tag in self.held else None

    def held_by(self, consumer: str) -> list[Raw]:
        return [raw for raw in self.held.values() if raw.holder == consumer]

    @property
    def window(self) -> tuple[int, frozenset[str]]:
        """The prefetch count and the subscribed queues: what RabbitMQ may push here."""
        return self.prefetch, frozenset(self._subscribed)

    def set_prefetch(self, count: int) -> None:
        """Bound what RabbitMQ sends this channel, over all its queues together."""
        if count != self.prefetch:
            self.channel.basic_qos(prefetch_count=count, global_qos=True)
            self.prefetch = count

    def settle(self, tags: Iterable[int]) -> None:
        """Ack these deliveries, which nothing here holds any more.

        Tags below every delivery still unsettled on the channel go in one
        ``basic.ack`` with ``multiple`` (it acks every unacked delivery up to
        its tag, and there is none but these); the others one by one.
        Deliveries pika has not dispatched yet came later, so their tags are
        higher than any dispatched one.
        """
        done = sorted(set(tags))
        if not done:
            return
        unsettled = [*self.held, *(raw.delivery_tag for raw in self.inbox)]
        unsettled += [entry[2].delivery_tag for entry in self._ready]
        floor = min(unsettled, default=done[-1] + 1)
        below = sum(1 for tag in done if tag < floor)
        if below:
            self.channel.basic_ack(done[below - 1], multiple=below > 1)
        for tag in done[below:]:
            self.channel.basic_ack(tag)

    def barrier(self) -> None:
        """A round trip on this channel: deliveries sent before it have arrived after it."""
        self.channel.basic_qos(prefetch_count=self.prefetch, global_qos=True)

    # -- subscriptions -------------------------------------------------------------
    def subscribe(self, consumer: str, queues: Sequence[str]) -> list[Raw]:
        """Consume the queues of every consumer id; returns unstarted messages of dropped ones."""
        self._interest[consumer] = tuple(queues)
        return self._resubscribe()

    def forget(self, consumer: str) -> list[Raw]:
        """A consumer id is gone; returns unstarted messages of queues nobody wants now."""
        self._interest.pop(consumer, None)
        return self._resubscribe()

    def _resubscribe(self) -> list[Raw]:
        wanted = {q for queues in self._interest.values() for q in queues}
        for queue in sorted(wanted - set(self._subscribed)):
            tag = self.channel.basic_consume(queue, self._on_message)
            self._subscribed[queue] = tag
            self._queue_of[tag] = queue
        dropped = set(self._subscribed) - wanted
        for queue in dropped:
            self.channel.basic_cancel(self._subscribed.pop(queue))
        return self.unstarted(dropped) if dropped else []

    def lost_subscriptions(self) -> list[str]:
        """Queues whose consumer RabbitMQ cancelled (the queue was deleted)."""
        live = set(self.channel.consumer_tags)
        lost = [q for q, tag in self._subscribed.items() if tag not in live]
        for queue in lost:
            self._queue_of.pop(self._subscribed.pop(queue), None)
        return lost

    def _on_message(self, _ch: Any, method: Any, properties: Any, body: bytes) -> None:
        queue = self._queue_of.get(method.consumer_tag, "")
        self.inbox.append(Raw(method.delivery_tag, method.redelivered, queue, properties, body))

    # -- handing out ---------------------------------------------------------------
    def ready(self, raw: Raw) -> None:
        """A message checked and ready to hand out."""
        heapq.heappush(self._ready, (-raw.priority, raw.arrival, raw))

    def ready_count(self, queues: Iterable[str] | None = None) -> int:
        if queues is None:
            return len(self._ready)
        wanted = set(queues)
        return sum(1 for entry in self._ready if entry[2].queue in wanted)

    def delivery(self, raw: Raw, revoked: bool) -> Delivery:
        return Delivery(
            raw.message_id,
            raw.queue,
            raw.priority,
            raw.body,
            f"{self.epoch}.{raw.delivery_tag}",
            raw.handed_out + 1,
            revoked,
        )

    def take(self, consumer: str, queues: Sequence[str], limit: int) -> list[Raw]:
        """Hand out up to ``limit`` ready messages of ``queues``: highest priority, then FIFO."""
        wanted = set(queues)
        taken: list[Raw] = []
        skipped = []
        while self._ready and len(taken) < limit:
            entry = heapq.heappop(self._ready)
            raw = entry[2]
            if raw.queue not in wanted:
                skipped.append(entry)
                continue
            raw.holder = consumer
            self.held[raw.delivery_tag] = raw
            taken.append(raw)
        for entry in skipped:
            heapq.heappush(self._ready, entry)
        return taken

    def pushed(self, consumer: str) -> list[Raw]:
        """Messages of ``consumer``'s queues on this channel that nobody was handed yet, in
        the order a fetch would hand them out."""
        wanted = set(self._interest.get(consumer, ()))
        found = [entry[2] for entry in self._ready if entry[2].queue in wanted]
        found += [raw for raw in self.inbox if raw.queue in wanted]
        return sorted(found, key=lambda raw: (-raw.priority, raw.arrival))

    def unstarted(self, queues: Iterable[str] | None = None) -> list[Raw]:
        """Take back ready messages (of these queues) that nobody was handed."""
        wanted = None if queues is None else set(queues)
        back = [e[2] for e in self._ready if wanted is None or e[2].queue in wanted]
        self._ready = [e for e in self._ready if wanted is not None and e[2].queue not in wanted]
        heapq.heapify(self._ready)
        return back

    @property
    def buffered(self) -> int:
        """Messages on the channel not handed out yet."""
        return len(self.inbox) + len(self._ready)

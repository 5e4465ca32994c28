"""One consumer's channel: its subscriptions, prefetch window and the messages it holds.

Each consumer id gets its own channel, so closing that channel hands back
exactly that consumer's unacked messages (``release_all``), and a delivery tag
(``"<epoch>.<tag>"``) names the channel it belongs to: a tag from a channel
that has since closed is recognised and ignored instead of being acked on the
wrong channel (which RabbitMQ would punish by closing the channel).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pika.adapters.blocking_connection import BlockingChannel

from ..message import Delivery
from .amqp_topology import H_DELIVERIES

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


class Consumer:
    """A consumer id's channel and what it holds."""

    def __init__(self, name: str, channel: BlockingChannel) -> None:
        self.name = name
        self.channel = channel
        self.epoch = next(_epochs)
        self.subscribed: dict[str, str] = {}  # queue -> consumer tag
        self._queue_of: dict[str, str] = {}  # consumer tag -> queue
        self.prefetch = 0
        self.inbox: list[Raw] = []  # delivered by RabbitMQ, not yet looked at
        self._ready: list[tuple[int, int, Raw, Delivery]] = []  # heap: (-priority, arrival)
        self.held: dict[int, Raw] = {}  # handed out, not yet acked or released

    @property
    def is_open(self) -> bool:
        return bool(self.channel.is_open)

    def tag(self, delivery_tag: int) -> str:
        return f"{self.epoch}.{delivery_tag}"

    def own(self, tag: str) -> int | None:
        """The channel's delivery tag for ``tag`` if this consumer holds it now."""
        epoch, _, number = tag.partition(".")
        if epoch != str(self.epoch) or not number.isdigit():
            return None
        delivery_tag = int(number)
        return delivery_tag if delivery_tag in self.held else None

    def set_prefetch(self, count: int) -> None:
        """Bound what RabbitMQ sends this channel, over all its queues together."""
        if count != self.prefetch:
            self.channel.basic_qos(prefetch_count=count, global_qos=True)
            self.prefetch = count

    def subscribe(self, queues: Sequence[str]) -> list[Raw]:
        """Consume exactly these queues; returns unstarted messages of dropped ones."""
        for queue in queues:
            if queue not in self.subscribed:
                tag = self.channel.basic_consume(queue, self._on_message)
                self.subscribed[queue] = tag
                self._queue_of[tag] = queue
        dropped = [q for q in self.subscribed if q not in queues]
        for queue in dropped:
            self.channel.basic_cancel(self.subscribed.pop(queue))
        if not dropped:
            return []
        gone = set(dropped)
        orphans = [raw for raw in self.inbox if raw.queue in gone]
        orphans += [entry[2] for entry in self._ready if entry[2].queue in gone]
        self.inbox = [raw for raw in self.inbox if raw.queue not in gone]
        self._ready = [entry for entry in self._ready if entry[2].queue not in gone]
        heapq.heapify(self._ready)
        return orphans

    def _on_message(self, _ch: Any, method: Any, properties: Any, body: bytes) -> None:
        queue = self._queue_of.get(method.consumer_tag, "")
        self.inbox.append(Raw(method.delivery_tag, method.redelivered, queue, properties, body))

    def lost_subscriptions(self) -> list[str]:
        """Queues whose consumer RabbitMQ cancelled (the queue was deleted)."""
        live = set(self.channel.consumer_tags)
        lost = [q for q, tag in self.subscribed.items() if tag not in live]
        for queue in lost:
            self._queue_of.pop(self.subscribed.pop(queue), None)
        return lost

    def ready(self, raw: Raw, revoked: bool) -> None:
        """A message checked and ready to hand out."""
        delivery = Delivery(
            raw.message_id,
            raw.queue,
            raw.priority,
            raw.body,
            self.tag(raw.delivery_tag),
            raw.handed_out + 1,
            revoked,
        )
        heapq.heappush(self._ready, (-raw.priority, raw.arrival, raw, delivery))

    @property
    def has_ready(self) -> bool:
        return bool(self._ready)

    def take(self, limit: int) -> list[Delivery]:
        """Hand out up to ``limit`` ready messages, highest priority first, FIFO within."""
        taken: list[Delivery] = []
        while self._ready and len(taken) < limit:
            _, _, raw, delivery = heapq.heappop(self._ready)
            self.held[raw.delivery_tag] = raw
            taken.append(delivery)
        return taken

    def unstarted(self) -> list[Raw]:
        """Take back everything not handed out (to give it back to the queue)."""
        raws = self.inbox + [entry[2] for entry in self._ready]
        self.inbox, self._ready = [], []
        return raws

    @property
    def count(self) -> int:
        return len(self.inbox) + len(self._ready) + len(self.held)

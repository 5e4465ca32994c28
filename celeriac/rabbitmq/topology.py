"""Names and declarations of what celeriac keeps in a RabbitMQ virtual host.

Everything is durable and declared on first use, then remembered per connection:

* ``celeriac`` (direct exchange): each task queue is bound to it under its own
  name. Task queues are classic queues with ``x-max-priority: 10``.
* ``celeriac.dead.<queue>``: a queue's dead letters, a plain classic queue.
* ``celeriac.delay.<level>``: the delay ladder. Level ``i`` is a topic exchange
  and a queue whose messages live ``16 ms x 2**i`` (per-queue TTL, so the
  oldest message is always at the head and expires first) and then dead-letter
  into level ``i - 1``; level 0 dead-letters into ``celeriac.delay.deliver``, a
  headers exchange that hands each message to its task queue. A delayed
  message's routing key spells its delay in binary, one word per level, most
  significant first; at each level a ``1`` makes it wait in that level's queue
  and a ``0`` passes it straight on. Any delay up to about two years is at
  most 32 hops, costs nothing while it waits, and never sits unacked on a
  consumer's channel.
* ``celeriac.state`` (a stream): revocations, the queue registry and purge
  marks, read by every broker object from the start (see ``state``).
* ``celeriac.stream.<name>`` (streams: events, control), ``celeriac.reply.<id>``
  (replies to one command), ``celeriac.rate.<key>`` (a rate limit's token) and
  ``celeriac.flag.<name>``: see ``streams``, ``replies``,
  ``rates`` and ``flags``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pika.exceptions

from ..exceptions import BrokerError, ConfigurationError

EXCHANGE = "celeriac"
DEAD_PREFIX = "celeriac.dead."
DELAY_PREFIX = "celeriac.delay."
DELIVER_EXCHANGE = "celeriac.delay.deliver"
STATE_STREAM = "celeriac.state"
MAX_PRIORITY_ARGUMENT = 10  # RabbitMQ keeps 0..10; celeriac uses 0..9

DELAY_LEVELS = 32
DELAY_UNIT_MS = 16  # the ladder's resolution: delays round up to a multiple of it
MAX_DELAY_UNITS = (1 << DELAY_LEVELS) - 1

# Our message headers. Short names: they travel with every message that has them.
H_DELIVERIES = "celeriac-deliveries"  # handed out this many times before this copy
H_QUEUE = "celeriac-queue"  # the task queue (routes delayed messages and dead letters)
# Times travel as integer unix milliseconds: AMQP tables have no portable float.
H_ETA = "celeriac-eta"  # when the message is due
H_SENT = "celeriac-sent"  # when it entered the delayed store (purge marks)
H_REASON = "celeriac-reason"
H_DEAD_AT = "celeriac-dead-at"


def to_ms(seconds: float) -> int:
    return round(seconds * 1000)


def from_ms(value: object) -> float:
    """Header milliseconds as unix seconds; 0.0 when missing or malformed."""
    try:
        return int(value) / 1000  # type: ignore[call-overload,no-any-return]
    except (TypeError, ValueError):
        return 0.0


_PRECONDITION_FAILED = 406
# Also the streams, reply queues and rate tokens (streams, replies, rates).
_RESERVED = (
    DEAD_PREFIX,
    DELAY_PREFIX,
    STATE_STREAM,
    "celeriac.stream.",
    "celeriac.reply.",
    "celeriac.rate",
    "celeriac.flag.",
    "amq.",
)
_MAX_NAME_BYTES = 200  # AMQP names are at most 255 bytes; leave room for the dead prefix


def dead_queue(queue: str) -> str:
    """The name of a queue's dead-letter queue."""
    return DEAD_PREFIX + queue


def delay_name(level: int) -> str:
    """Level ``level`` of the ladder: the name of both its exchange and its queue."""
    return f"{DELAY_PREFIX}{level}"


def delay_route(seconds: float) -> tuple[str, str]:
    """Where to publish a message due in ``seconds``: (exchange, routing key).

    The delay rounds up to the ladder's unit, so a message never arrives early;
    one longer than the ladder makes a full pass and is sent round again by the
    consumer that receives it early.
    """
    units = min(max(1, math.ceil(seconds * 1000 / DELAY_UNIT_MS)), MAX_DELAY_UNITS)
    bits = format(units, f"0{DELAY_LEVELS}b")
    return delay_name(units.bit_length() - 1), ".".join(bits)


def _level_pattern(level: int, bit: str) -> str:
    return "*." * (DELAY_LEVELS - 1 - level) + bit + ".#"


def check_queue_name(queue: str) -> str:
    """A task queue name RabbitMQ and the ladder can carry, or a clear error."""
    if not isinstance(queue, str) or not queue:
        raise ConfigurationError(f"queue name {queue!r} must be a non-empty string")
    if len(queue.encode()) > _MAX_NAME_BYTES:
        raise ConfigurationError(
            f"queue name {queue[:40]!r}... is longer than {_MAX_NAME_BYTES} bytes"
        )
    if queue.startswith(_RESERVED):
        raise ConfigurationError(
            f"queue name {queue!r} is reserved on RabbitMQ: names starting with "
            f"{', '.join(_RESERVED)} belong to celeriac or to RabbitMQ itself"
        )
    return queue


@dataclass(frozen=True, slots=True)
class Route:
    """Where a task queue's immediate messages are published, and how it is bound."""

    exchange: str = EXCHANGE
    exchange_type: str = "direct"
    routing_key: str | None = None  # None: the queue's own name


def parse_routes(task_queues: Any) -> dict[str, Route]:
    """``task_queues`` entries that name an exchange or a routing key.

    Accepts a mapping ``{queue: {"exchange": ..., "exchange_type": ...,
    "routing_key": ...}}``, a list of such dicts with a ``name``, or
    kombu-like ``Queue`` objects (``name``, ``exchange.name``,
    ``exchange.type``, ``routing_key``). Entries without an exchange or
    routing key use the default route.
    """
    if not task_queues:
        return {}
    items: list[tuple[str, Mapping[str, Any]]] = []
    if isinstance(task_queues, Mapping):
        items = [(name, opts or {}) for name, opts in task_queues.items()]
    else:
        for item in task_queues:
            if isinstance(item, str):
                continue
            if isinstance(item, Mapping):
                items.append((item["name"], item))
            else:
                exchange = getattr(item, "exchange", None)
                items.append(
                    (
                        item.name,
                        {
                            "exchange": getattr(exchange, "name", exchange),
                            "exchange_type": getattr(exchange, "type", None),
                            "routing_key": getattr(item, "routing_key", None),
                        },
                    )
                )
    routes = {}
    for name, opts in items:
        exchange = opts.get("exchange")
        key = opts.get("routing_key")
        if exchange or key:
            routes[check_queue_name(name)] = Route(
                exchange or EXCHANGE, opts.get("exchange_type") or "direct", key or None
            )
    return routes


class Topology:
    """Declares exchanges and queues once per connection; ``channel`` gives a usable channel."""

    def __init__(
        self,
        channel: Callable[[], Any],
        routes: Mapping[str, Route],
        queue_arguments: Mapping[str, Any],
    ) -> None:
        self._channel = channel
        self.routes = dict(routes)
        self._queue_arguments = {"x-max-priority": MAX_PRIORITY_ARGUMENT, **queue_arguments}
        self._done: set[tuple[str, str]] = set()

    def forget(self, queue: str | None = None) -> None:
        """Declare again next time: everything (a new connection) or one queue."""
        if queue is None:
            self._done.clear()
        else:
            self._done = {d for d in self._done if d[1] != queue}

    def route(self, queue: str) -> tuple[str, str]:
        """The exchange and routing key of a queue's immediate messages."""
        route = self.routes.get(queue)
        if route is None:
            return EXCHANGE, queue
        return route.exchange, route.routing_key or queue

    def ensure_queue(self, queue: str) -> bool:
        """Declare a task queue and its binding; True the first time on this connection."""
        if ("queue", queue) in self._done:
            return False
        check_queue_name(queue)
        ch = self._channel()
        route = self.routes.get(queue, Route())
        self._exchange(route.exchange, route.exchange_type)
        try:
            ch.queue_declare(queue, durable=True, arguments=self._queue_arguments)
        except pika.exceptions.ChannelClosedByBroker as exc:
            if exc.reply_code != _PRECONDITION_FAILED:
                raise
            raise BrokerError(
                f"queue {queue!r} exists on RabbitMQ with other arguments than celeriac's "
                f"{self._queue_arguments} (declared by Celery or without x-max-priority?): "
                f"drain and delete it, or use another queue name ({exc})"
            ) from exc
        ch.queue_bind(queue, route.exchange, routing_key=route.routing_key or queue)
        self.ensure_dead(queue)  # declared with its queue, so inspecting it never hits a 404
        self._done.add(("queue", queue))
        return True

    def ensure_delayed(self, queue: str) -> None:
        """The ladder exists and hands ``queue`` its delayed messages."""
        if ("delayed", queue) in self._done:
            return
        self.ensure_ladder()
        self._channel().queue_bind(
            queue, DELIVER_EXCHANGE, arguments={"x-match": "all", H_QUEUE: queue}
        )
        self._done.add(("delayed", queue))

    def ensure_ladder(self) -> None:
        if ("ladder", "") in self._done:
            return
        ch = self._channel()
        self._exchange(DELIVER_EXCHANGE, "headers")
        for level in range(DELAY_LEVELS):
            name = delay_name(level)
            below = delay_name(level - 1) if level else DELIVER_EXCHANGE
            self._exchange(name, "topic")
            ch.queue_declare(
                name,
                durable=True,
                arguments={
                    "x-message-ttl": DELAY_UNIT_MS << level,
                    "x-dead-letter-exchange": below,
                },
            )
            ch.queue_bind(name, name, routing_key=_level_pattern(level, "1"))
            ch.exchange_bind(below, name, routing_key=_level_pattern(level, "0"))
        self._done.add(("ladder", ""))

    def ensure_dead(self, queue: str) -> str:
        name = dead_queue(queue)
        if ("dead", queue) not in self._done:
            self._channel().queue_declare(name, durable=True)
            self._done.add(("dead", queue))
        return name

    def ensure_state(self, retention: str) -> None:
        if ("state", "") in self._done:
            return
        self._channel().queue_declare(
            STATE_STREAM,
            durable=True,
            arguments={
                "x-queue-type": "stream",
                "x-max-age": retention,
            },
        )
        self._done.add(("state", ""))

    def _exchange(self, name: str, kind: str) -> None:
        if ("exchange", name) not in self._done:
            self._channel().exchange_declare(name, kind, durable=True)
            self._done.add(("exchange", name))

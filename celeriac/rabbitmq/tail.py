"""A consumer of a RabbitMQ stream queue on its own asynchronous pika channel.

pika's ``BlockingChannel`` sends back undispatched deliveries (``basic.reject``)
when it closes, and a stream answers a reject by closing the whole connection;
pika's asynchronous channel does not, and it hands each delivery to its
callback the moment it arrives, during any wait on the link. So every stream
consumer here is an asynchronous channel with its own ``basic.qos`` (streams
require a prefetch) and an ``x-stream-offset`` to start from.

pika offers no public way to open an asynchronous channel on a
``BlockingConnection``: :func:`open_channel` reaches it through the
connection's ``_impl`` (the one use of pika's internals left, hence the
``pika<2`` pin). The alternatives cost more than that attribute: a second
connection per reader, driven by its own loop, or a ``BlockingChannel`` whose
pending deliveries would have to be drained before every close. Everything
else here is public API; callbacks ``poke`` the link so a wait ends as soon as
what it waits for arrived.

Each delivery carries its offset in the ``x-stream-offset`` header; RabbitMQ
starts a consumer at the beginning of the chunk that holds the requested
offset, so readers drop what comes before it themselves.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..exceptions import BrokerError
from .connection import Link, run_until, wake

H_MAXLEN = "celeriac-maxlen"  # the writer's maxlen, on every item
H_MARK = "celeriac-mark"  # a marker a reader appended to find the stream's end


@dataclass(frozen=True, slots=True)
class StreamItem:
    """One delivery from a stream: an item, or a marker (``mark`` set)."""

    offset: int
    body: bytes
    mark: str | None
    maxlen: int | None
    tag: int  # the delivery tag, to ack (stream credit)


def pump(link: Link, done: Callable[[], bool], seconds: float) -> None:
    """Let pika work until ``done()`` or ``seconds`` passed: a wait on the socket, no sleep."""
    run_until(link.ensure(), done, seconds)


def stepper(link: Link, steps: list[object]) -> Callable[..., None]:
    """A callback that records a step (channel opened, qos set, ...) and wakes the wait."""

    def step(frame: object = None, *_: object) -> None:
        steps.append(frame)
        link.poke()

    return step


def open_channel(link: Link, timeout: float) -> Any:
    """A new asynchronous channel on the link's connection, open."""
    steps: list[object] = []
    # The asynchronous channel under the BlockingConnection (see the module docstring).
    channel = link.ensure()._impl.channel(on_open_callback=stepper(link, steps))
    channel.add_on_close_callback(stepper(link, []))
    link.wait(lambda: bool(steps) or channel.is_closed, timeout, "channel.open")
    if channel.is_closed:
        raise BrokerError("RabbitMQ refused to open a channel")
    return channel


def close_channel(link: Link, channel: Any, timeout: float, conn: Any = None) -> None:
    """Close an asynchronous channel and wait until it is closed.

    pika's ``BlockingConnection.close`` cannot close a channel it did not
    open itself (it fails, and the socket stays open), so every such channel
    must be gone before its connection closes. ``conn``: the connection being
    closed (the link has already let go of it).
    """
    target = conn if conn is not None else link.conn
    if channel.is_open:
        if target is not None:
            channel.add_on_close_callback(lambda *_: wake(target))
        channel.close()
    if channel.is_closed:
        return
    if conn is not None:
        if conn.is_open:
            run_until(conn, lambda: bool(channel.is_closed), timeout)
    elif link.conn is not None and link.conn.is_open:
        link.wait(lambda: bool(channel.is_closed), timeout, "channel.close")


class Tail:
    """Deliveries of one stream queue from ``offset`` on, buffered until taken."""

    def __init__(
        self, link: Link, queue: str, offset: int | str, prefetch: int, timeout: float
    ) -> None:
        self.queue = queue
        self.items: deque[StreamItem] = deque()
        self.received = 0
        self._link = link
        self._timeout = timeout
        self._acked = 0  # highest delivery tag acked
        self._settled = 0  # highest delivery tag the reader is done with
        self._ack_every = max(1, prefetch // 4)
        steps: list[object] = []
        self.channel: Any = open_channel(link, timeout)
        self.channel.basic_qos(prefetch_count=prefetch, callback=stepper(link, steps))
        self._step(steps, 1, timeout)
        self.channel.basic_consume(
            queue,
            self._on_item,
            arguments={"x-stream-offset": offset},
            callback=stepper(link, steps),
        )
        self._step(steps, 2, timeout)

    def _step(self, steps: list[object], count: int, timeout: float) -> None:
        channel = self.channel
        self._link.wait(lambda: len(steps) >= count or channel.is_closed, timeout, "stream")
        if channel.is_closed:
            raise BrokerError(f"RabbitMQ closed the channel reading stream {self.queue!r}")

    @property
    def is_open(self) -> bool:
        return bool(self.channel.is_open)

    def _on_item(self, _ch: Any, method: Any, props: Any, body: bytes) -> None:
        headers = props.headers or {}
        mark, maxlen = headers.get(H_MARK), headers.get(H_MAXLEN)
        self.items.append(
            StreamItem(
                int(headers.get("x-stream-offset", -1)),
                body,
                mark.decode() if isinstance(mark, bytes) else mark,
                int(maxlen) if maxlen is not None else None,
                method.delivery_tag,
            )
        )
        self.received += 1
        self._link.poke()

    def settle(self, item: StreamItem) -> None:
        """The reader is done with ``item``: ack it (in batches), which gives credit."""
        self._settled = item.tag
        if self._settled - self._acked >= self._ack_every:
            self.flush_acks()

    def flush_acks(self) -> None:
        if self._settled > self._acked and self.channel.is_open:
            self.channel.basic_ack(self._settled, multiple=True)
            self._acked = self._settled

    def close(self, conn: Any = None) -> None:
        """Cancel by closing the channel; a stream keeps everything, so nothing is lost."""
        close_channel(self._link, self.channel, self._timeout, conn)

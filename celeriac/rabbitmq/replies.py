"""Remote-control replies on RabbitMQ: one small expiring queue per command.

Every command that wants answers gets its own reply stream, ``reply:<id>``:
thousands a day on a dashboard that polls. A RabbitMQ stream each would cost
a process and segment files on the server per command and stay until its
retention ran out; one shared replies stream would make each client read
every other client's replies. So a reply stream is a classic queue,
``celeriac.reply.<id>``, non-durable, with ``x-expires`` (60 s): whoever comes
first (the client waiting for replies, or a worker replying) declares it, and
RabbitMQ deletes it a minute after its last use, with no sweeper. It keeps at
most ``x-max-length`` (1,000) replies, more than any cluster has workers.

The client reads with a consumer (RabbitMQ pushes each reply as it comes; no
polling) and keeps what it received, so positions are the order in which this
broker object received the replies (1, 2, ...) and re-reading from "0" returns
them all again. A reply stream has one reader, the client that sent the
command: a second reader would share the replies with it, not see them all.
A broker object keeps the consumers of its 8 most recent reply streams.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pika

from ..exceptions import ConfigurationError
from .connection import Link, Outgoing
from .tail import close_channel, open_channel, pump

REPLY_PREFIX = "reply:"
REPLY_QUEUE_PREFIX = "celeriac.reply."
REPLY_EXPIRES_MS = 60_000
REPLY_MAX_ITEMS = 1_000
_KEEP = 8  # reply streams a broker object keeps consuming
_ARGUMENTS = {"x-expires": REPLY_EXPIRES_MS, "x-max-length": REPLY_MAX_ITEMS}


def reply_queue(stream: str) -> str:
    """The queue of reply stream ``reply:<id>``."""
    queue = REPLY_QUEUE_PREFIX + stream[len(REPLY_PREFIX) :]
    if len(queue.encode()) > 255:
        raise ConfigurationError(f"reply stream name {stream[:40]!r}... is too long")
    return queue


@dataclass
class _Inbox:
    tag: str
    items: list[bytes] = field(default_factory=list)


class Replies:
    """Reply streams through one link (under its lock)."""

    def __init__(self, link: Link, timeout: float) -> None:
        self._link = link
        self._timeout = timeout
        self._channel: Any = None
        self._inboxes: OrderedDict[str, _Inbox] = OrderedDict()  # stream -> inbox, oldest first
        self._by_tag: dict[str, _Inbox] = {}

    def forget(self) -> None:
        self._channel = None
        self._inboxes.clear()
        self._by_tag.clear()

    def close_channels(self, conn: Any) -> None:
        """Close the consuming channel of ``conn``, a connection about to close."""
        channel, self._channel = self._channel, None
        self._inboxes.clear()
        self._by_tag.clear()
        if channel is not None:
            close_channel(self._link, channel, self._timeout, conn)
        self._by_tag.clear()

    def _declare(self, queue: str) -> int:
        """Declare the queue (whoever comes first creates it); how many replies wait in it."""
        declared = self._link.admin().queue_declare(queue, arguments=_ARGUMENTS)
        return int(declared.method.message_count)

    def add(self, stream: str, items: Sequence[bytes]) -> None:
        queue = reply_queue(stream)
        self._declare(queue)
        props = pika.BasicProperties(delivery_mode=1, timestamp=int(time.time()))
        self._link.publish([Outgoing("", queue, bytes(item), props) for item in items])

    def last(self, stream: str) -> str:
        inbox = self._inbox(stream)
        return str(len(inbox.items) + self._declare(reply_queue(stream)))

    def read(self, stream: str, position: int, limit: int, wait: float) -> list[tuple[str, bytes]]:
        inbox = self._inbox(stream)
        if len(inbox.items) <= position:
            if wait > 0:
                pump(self._link, lambda: len(inbox.items) > position, wait)
            else:  # an instant read: what the queue still held when asked is on its way to us
                have = len(inbox.items)
                waiting = self._declare(reply_queue(stream))
                pump(self._link, lambda: len(inbox.items) >= have + waiting, self._timeout)
        chosen = inbox.items[position : position + max(limit, 0)]
        return [(str(position + n + 1), body) for n, body in enumerate(chosen)]

    def _inbox(self, stream: str) -> _Inbox:
        """This stream's inbox: what this object received from its queue, consuming it."""
        if self._channel is not None and not self._channel.is_open:
            self.forget()  # closed under us: its consumers are gone
        inbox = self._inboxes.get(stream)
        if inbox is not None:
            self._inboxes.move_to_end(stream)
            return inbox
        queue = reply_queue(stream)
        self._declare(queue)
        if self._channel is None or not self._channel.is_open:
            self._channel = open_channel(self._link, self._timeout)
        tag = self._channel.basic_consume(queue, self._on_reply, auto_ack=True)
        inbox = self._inboxes[stream] = self._by_tag[tag] = _Inbox(tag)
        while len(self._inboxes) > _KEEP:
            _, oldest = self._inboxes.popitem(last=False)
            self._by_tag.pop(oldest.tag, None)
            self._channel.basic_cancel(oldest.tag)
        return inbox

    def _on_reply(self, _ch: Any, method: Any, _props: Any, body: bytes) -> None:
        inbox = self._by_tag.get(method.consumer_tag)
        if inbox is not None:
            inbox.items.append(body)

"""Streams on RabbitMQ: events and remote control in stream queues, replies in small queues.

A celeriac stream ``name`` is the RabbitMQ stream queue ``celeriac.stream.<name>``
(``x-queue-type: stream``), declared by the first writer or reader. Streams
are RabbitMQ's durable, replayable logs: any number of readers read the same
items from any offset without taking them from each other, and a reader waits
for new items on its consumer (RabbitMQ pushes them), without polling.

* **Positions** are stream offsets plus one: the item at offset ``o`` has
  position ``o + 1``, so "0" is before the first item, positions only grow,
  and "after position p" is "from offset p". A reader that restarts from a
  saved position attaches a consumer at that offset (``x-stream-offset``).
* **The end of a stream.** AMQP 0-9-1 does not tell a client a stream's last
  offset. So a reader that must know it (``last``, and a read that
  must return at once everything appended before it) appends a marker item
  and reads up to it: everything before the marker was appended before the
  call. Markers are skipped by every reader; they cost one small item each,
  appended once per ``last`` and per instant read that finds nothing
  in hand (a reader that follows the stream with a timeout never writes one).
* **Bounds.** RabbitMQ trims streams by size and age only, whole segments at a
  time: ``x-max-length-bytes`` (``stream_max_bytes``, default 100 MiB),
  ``x-max-age`` (``stream_max_age``, default 7 days) and segments of
  ``stream_segment_bytes`` (default 8 MiB), which bound the disk a stream
  takes. ``maxlen`` counts items, so celeriac applies it when reading: every
  item carries its writer's ``maxlen``, and a reader that attaches at an old
  position starts no earlier than ``maxlen`` items before the newest item (the
  newest writer's ``maxlen`` wins, as with Redis's ``XADD MAXLEN``). A reader
  that follows the stream is not cut short; markers count as items, so a
  stream shows a little less than ``maxlen`` when many markers were appended.
* **Replies** (``reply:<command id>``) are many and short-lived, so they are not
  streams (each stream is a process and files on the server): see
  ``replies``.
"""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pika
import pika.exceptions as pe
from pika.adapters.blocking_connection import BlockingConnection

from ..exceptions import ConfigurationError
from .connection import Link, Outgoing, Retrying
from .replies import REPLY_PREFIX, Replies
from .tail import H_MARK, H_MAXLEN, StreamItem, Tail, pump

STREAM_PREFIX = "celeriac.stream."
_PREFETCH = 256  # deliveries a reader may have in hand (event packs weigh up to ~200 kB)
_KEEP_CURSORS = 8  # streams a broker object keeps a consumer on
_SCAN_WINDOW = 64  # items read back from a marker to find the newest real item
_PRECONDITION_FAILED = 406
_SLICE = 0.05  # longest a waiting read keeps the link to itself


def stream_queue(stream: str) -> str:
    """The stream queue of celeriac stream ``stream``."""
    queue = STREAM_PREFIX + stream
    if not stream or len(queue.encode()) > 255:
        raise ConfigurationError(
            f"stream name {stream!r} must be 1 to {255 - len(STREAM_PREFIX)} bytes long"
        )
    return queue


def parse_position(after: str) -> int:
    """A position this broker hands out, as the offset to read from."""
    try:
        position = int(after or "0")
    except ValueError:
        position = -1
    if position < 0:
        raise ValueError(
            f"stream position {after!r} is not one the RabbitMQ broker returned "
            "(positions are whole numbers, '0' before the first item)"
        )
    return position


@dataclass(frozen=True, slots=True)
class Retention:
    """How much a stream queue keeps on the server (RabbitMQ's own retention)."""

    max_bytes: int
    max_age: str
    segment_bytes: int

    def arguments(self) -> dict[str, Any]:
        return {
            "x-queue-type": "stream",
            "x-max-length-bytes": self.max_bytes,
            "x-max-age": self.max_age,
            "x-stream-max-segment-size-bytes": self.segment_bytes,
        }


class _Cursor:
    """A reader's consumer on one stream, and which reads can continue on it."""

    def __init__(self, tail: Tail, position: int, floor: int) -> None:
        self.tail = tail
        self.floor = floor  # offsets below are beyond maxlen: skipped
        self.low = position  # a read after any position in [low, next] can continue here
        self.next = position
        self.awaited: str | None = None  # the marker an instant read waits for
        self.reached = False  # ... and it was read

    def continues(self, position: int) -> bool:
        return self.tail.is_open and self.low <= position <= self.next

    def take(self, position: int, limit: int) -> list[tuple[str, bytes]]:
        """Buffered items from offset ``position`` on (at most ``limit``), markers skipped."""
        found: list[tuple[str, bytes]] = []
        items, start = self.tail.items, max(position, self.floor)
        while items and len(found) < limit:
            item = items.popleft()
            self.tail.settle(item)
            if item.offset < start:
                continue  # the head of a chunk before the requested offset, or trimmed
            self.next = item.offset + 1
            if item.mark is not None:
                self.reached = self.reached or item.mark == self.awaited
            else:
                found.append((str(item.offset + 1), item.body))
        self.tail.flush_acks()
        self.low = int(found[-1][0]) if found else min(position, self.next)
        return found


class Streams:
    """The broker's streams capability; each call under its link's lock, retried over a
    lost connection."""

    def __init__(
        self, link: Link, retention: Retention, timeout: float, retrying: Retrying
    ) -> None:
        self._link = link
        self._retrying = retrying
        self._retention = retention
        self._timeout = timeout
        self._declared: set[str] = set()
        self._cursors: dict[str, _Cursor] = {}
        self._floors: dict[str, int] = {}  # stream -> first offset within maxlen, when known
        self.replies = Replies(link, timeout)

    def forget(self) -> None:
        """The connection is gone, and every consumer with it."""
        self._declared.clear()
        self._cursors.clear()
        self._floors.clear()
        self.replies.forget()

    def close_channels(self, conn: BlockingConnection) -> None:
        """Close the reading channels before their connection (which cannot close them)."""
        tails = [cursor.tail for cursor in self._cursors.values()]
        self._cursors.clear()
        for tail in tails:
            tail.close(conn)
        self.replies.close_channels(conn)

    # -- the capability ------------------------------------------------------------
    def add(self, stream: str, items: Sequence[bytes], maxlen: int = 100_000) -> None:
        if not items:
            return
        self._retrying("streams.add", lambda: self._add(stream, items, maxlen))

    def read(
        self, stream: str, after: str, limit: int = 1000, timeout: float = 0.0
    ) -> list[tuple[str, bytes]]:
        """Items after ``after``; a wait happens in short slices, so other threads get a turn."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            wait = min(max(remaining, 0.0), _SLICE) if timeout > 0 else 0.0
            read = functools.partial(self._read, stream, after, limit, wait)
            items = self._retrying("streams.read", read)
            if items or remaining <= 0 or timeout <= 0:
                return items

    def last(self, stream: str) -> str:
        return self._retrying("streams.last", lambda: self._last(stream))

    # -- the primitives, under the link's lock -------------------------------------------
    def _add(self, stream: str, items: Sequence[bytes], maxlen: int) -> None:
        if stream.startswith(REPLY_PREFIX):
            self.replies.add(stream, items)
            return
        if maxlen < 1:
            raise ValueError(f"maxlen must be at least 1, not {maxlen!r}")
        queue = self._ensure(stream)
        props = pika.BasicProperties(delivery_mode=2, headers={H_MAXLEN: maxlen})
        self._link.publish([Outgoing("", queue, bytes(item), props) for item in items])

    def _last(self, stream: str) -> str:
        if stream.startswith(REPLY_PREFIX):
            return self.replies.last(stream)
        newest = self._newest(stream)
        return "0" if newest is None else str(newest + 1)

    def _read(self, stream: str, after: str, limit: int, wait: float) -> list[tuple[str, bytes]]:
        """What is in hand after ``after``; waits up to ``wait`` for an item to arrive.

        With ``wait == 0`` it reads up to a marker first, so it returns what
        was appended before the call (up to ``limit``).
        """
        position = parse_position(after)
        if stream.startswith(REPLY_PREFIX):
            return self.replies.read(stream, position, limit, wait)
        if limit <= 0:
            return []
        cursor = self._cursor(stream, position)
        found = cursor.take(position, limit)
        if wait > 0:
            if not found:
                pump(self._link, lambda: bool(cursor.tail.items), wait)
                found = cursor.take(position, limit)
            return found
        if len(found) < limit:  # an instant read: everything appended before it, up to limit
            found = self._read_to_mark(stream, cursor, position, limit, found)
        return found

    # -- reading -----------------------------------------------------------------------
    def _cursor(self, stream: str, position: int) -> _Cursor:
        cursor = self._cursors.pop(stream, None)
        if cursor is not None and cursor.continues(position):
            self._cursors[stream] = cursor  # the most recently used last
            return cursor
        if cursor is not None:
            cursor.tail.close()
        while len(self._cursors) >= _KEEP_CURSORS:  # a consumer per stream read lately
            oldest = next(iter(self._cursors))
            self._cursors.pop(oldest).tail.close()
        queue = self._ensure(stream)
        floor = self._floors.get(stream)
        if floor is None or position < floor:  # maybe older than maxlen: find where it starts
            self._newest(stream)
            floor = self._floors.get(stream, 0)
        tail = Tail(self._link, queue, max(position, floor), _PREFETCH, self._timeout)
        cursor = self._cursors[stream] = _Cursor(tail, position, floor)
        return cursor

    def _read_to_mark(
        self,
        stream: str,
        cursor: _Cursor,
        position: int,
        limit: int,
        found: list[tuple[str, bytes]],
    ) -> list[tuple[str, bytes]]:
        cursor.awaited, cursor.reached = self._append_mark(stream), False
        while len(found) < limit and not cursor.reached:
            pump(self._link, lambda: bool(cursor.tail.items), self._timeout)
            if not cursor.tail.items:
                raise pe.StreamLostError(f"no answer from RabbitMQ within {self._timeout:.0f}s")
            found += cursor.take(cursor.next, limit - len(found))
        cursor.awaited = None
        cursor.low = int(found[-1][0]) if found else min(position, cursor.next)
        return found

    def _append_mark(self, stream: str) -> str:
        mark = uuid.uuid4().hex
        props = pika.BasicProperties(delivery_mode=2, headers={H_MARK: mark})
        self._link.publish([Outgoing("", self._ensure(stream), b"", props)])
        return mark

    def _newest(self, stream: str) -> int | None:
        """The offset of the newest item (None: no item), by a marker; notes the maxlen floor."""
        queue = self._ensure(stream)
        probe = Tail(self._link, queue, "next", _PREFETCH, self._timeout)
        try:
            mark = self._append_mark(stream)
            items = _collect(self._link, probe, lambda item: item.mark == mark, self._timeout)
        finally:
            probe.close()
        marker = items[-1].offset
        newest = _newest_item(items)
        window = _SCAN_WINDOW
        while newest is None:
            low = max(0, marker - window)
            scan = Tail(self._link, queue, low, _PREFETCH, self._timeout)
            try:
                items = _collect(
                    self._link, scan, lambda item: item.offset >= marker, self._timeout
                )
            finally:
                scan.close()
            newest = _newest_item([i for i in items if i.offset < marker])
            first = min((i.offset for i in items), default=marker)
            if newest is None and (low == 0 or first > low):
                self._floors[stream] = 0
                return None  # nothing but markers, back to the oldest item kept
            window *= 8
        maxlen = newest.maxlen
        self._floors[stream] = max(0, newest.offset + 1 - maxlen) if maxlen else 0
        return newest.offset

    # -- declaring -----------------------------------------------------------------------
    def _ensure(self, stream: str) -> str:
        queue = stream_queue(stream)
        if queue in self._declared:
            return queue
        try:
            self._link.admin().queue_declare(
                queue, durable=True, arguments=self._retention.arguments()
            )
        except pe.ChannelClosedByBroker as exc:
            if exc.reply_code != _PRECONDITION_FAILED:
                raise
            # Declared before with other retention settings: use it as it is.
            self._link.admin().queue_declare(queue, passive=True)
        self._declared.add(queue)
        return queue


def _collect(
    link: Link, tail: Tail, last: Callable[[StreamItem], bool], timeout: float
) -> list[StreamItem]:
    """Deliveries up to and including the first for which ``last`` holds."""
    taken: list[StreamItem] = []
    while True:
        pump(link, lambda: bool(tail.items), timeout)
        if not tail.items:
            raise pe.StreamLostError(f"no answer from RabbitMQ within {timeout:.0f}s (stream)")
        while tail.items:
            item = tail.items.popleft()
            tail.settle(item)
            taken.append(item)
            if last(item):
                tail.flush_acks()
                return taken


def _newest_item(items: Sequence[StreamItem]) -> StreamItem | None:
    for item in reversed(items):
        if item.mark is None:
            return item
    return None

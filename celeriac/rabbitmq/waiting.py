"""Listing and deleting a RabbitMQ task queue's waiting messages, by taking them.

AMQP reads a classic queue only by taking its messages (``basic.get``). A
listing takes a page on a private channel, records the ids it took in the
state stream (a ``browsed`` record, confirmed), and closes the channel: RabbitMQ
puts every message back in its place, flagged ``redelivered``. A consumer that
receives one of them excuses that redelivery (``StateLog.excuse``): it reads
the stream up to now first, so the record, confirmed before the messages went
back, is always seen, even when the message outran it; then it records the id
``spent``, so each listing excuses one redelivery and a worker that dies later
running the message counts as usual. So listing never brings a message closer
to ``max_deliveries``.

What remains:

* While a listing holds the messages it took, workers cannot take them and take
  the ones behind them: strict priority is suspended for the queue's first
  ``offset + limit`` messages (every message, newest first) for as long as the
  hold. The hold is one ``basic.get`` round trip per message, one confirmed
  append and the channel's close, on :data:`SCAN_MAX` messages at most: about
  half a millisecond per message on a local server (``bench/browse_bench.py
  --waiting 500``: 20 ms for a page of 50, 0.2 to 0.4 s for 500). Page through a
  deep queue oldest first, in small pages.
* A listing killed, or cut off from RabbitMQ, between taking and recording gives
  its messages back unrecorded: each counts one delivery.
* Deleting takes messages from the head until it has every id asked for, at
  most :data:`SCAN_MAX`: a message further back is not found (the count says so).
* The mark lives as long as the state stream keeps it (``state_retention``,
  seven days by default): a message that waits longer after being listed counts
  its redelivery.
* RabbitMQ does not say since when a message waits: ``since`` is unknown.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import pika.exceptions as pe
from pika.adapters.blocking_connection import BlockingChannel

from ..brokers.capabilities import Listed
from .connection import Link
from .state import StateLog
from .topology import H_DELIVERIES

SCAN_MAX = 500  # messages one listing may take (and hold) at most: the longest page
_NOT_FOUND = 404


class Taken:
    """A waiting message taken on a private channel, not acked."""

    __slots__ = ("body", "deliveries", "id", "priority", "tag")

    def __init__(self, tag: int, props: Any, body: bytes) -> None:
        self.tag = tag
        self.id = str(props.message_id or "")
        self.priority = int(props.priority or 0)
        self.body = body
        self.deliveries = int((props.headers or {}).get(H_DELIVERIES, 0))

    def listed(self, queue: str) -> Listed:
        return Listed(
            self.id, queue, self.priority, self.body, "waiting", deliveries=self.deliveries
        )


class WaitingReader:
    """Lists, counts and deletes one queue's waiting messages (call inside the link's guard)."""

    def __init__(self, link: Link, state: StateLog) -> None:
        self._link = link
        self._state = state

    def count(self, queue: str) -> int:
        """What RabbitMQ says is ready in ``queue``: nothing is taken."""
        ready = self._ready(self._link.admin(), queue)
        return 0 if ready is None else ready

    def page(self, queue: str, limit: int, offset: int, newest_first: bool) -> list[Listed]:
        """The queue's waiting messages in the order workers take them (or reversed)."""
        ch = self._link.channel()
        try:
            ready = self._ready(ch, queue)
            if ready is None:
                return []
            want = ready if newest_first else offset + limit
            if want > SCAN_MAX:
                raise ValueError(_too_deep(queue, ready, newest_first))
            taken = self._take(ch, queue, want, set())
            self._record(queue, taken)
            self._put_back(ch, queue, taken)
        finally:
            _close(ch)  # everything still taken goes back, in its place
        if newest_first:
            taken.reverse()
        return [t.listed(queue) for t in taken[offset : offset + limit]]

    def delete(self, queue: str, ids: Sequence[str]) -> int:
        """Take the queue's messages up to the last of ``ids`` and ack those: how many went."""
        wanted = set(ids)
        if not wanted:
            return 0
        ch = self._link.channel()
        try:
            if self._ready(ch, queue) is None:
                return 0
            taken = self._take(ch, queue, SCAN_MAX, wanted)
            self._record(queue, [t for t in taken if t.id not in wanted])
            chosen = [t for t in taken if t.id in wanted]
            for t in chosen:  # RabbitMQ applies them before the put back that follows
                ch.basic_ack(t.tag)
            self._put_back(ch, queue, [t for t in taken if t.id not in wanted])
            return len(chosen)
        finally:
            _close(ch)  # the others go back, in their place

    def _ready(self, ch: BlockingChannel, queue: str) -> int | None:
        try:
            declared = ch.queue_declare(queue, passive=True)
        except pe.ChannelClosedByBroker as exc:
            if exc.reply_code == _NOT_FOUND:  # never declared, or deleted: nothing waits
                return None
            raise
        return int(declared.method.message_count)

    def _take(self, ch: BlockingChannel, queue: str, most: int, until: set[str]) -> list[Taken]:
        """Up to ``most`` messages, head first; stop once every id of ``until`` was taken."""
        taken: list[Taken] = []
        missing = set(until)
        while len(taken) < most:
            method, props, body = ch.basic_get(queue, auto_ack=False)
            if method is None:
                break
            taken.append(Taken(method.delivery_tag, props, body))
            missing.discard(taken[-1].id)
            if until and not missing:
                break
        return taken

    def _put_back(self, ch: BlockingChannel, queue: str, taken: list[Taken]) -> None:
        """Return what is taken and not acked to its place, and wait until the queue has it.

        A channel's close also returns its messages, but the queue may count them only a
        moment after the close is answered: a count right after a listing said 0. The
        queue handles one channel's requests in order, so once it answers a passive
        declare sent after the ``nack`` it has requeued them.
        """
        if taken:  # ``multiple`` covers the others up to the highest, none acked
            ch.basic_nack(max(t.tag for t in taken), multiple=True, requeue=True)
            self._ready(ch, queue)

    def _record(self, queue: str, taken: list[Taken]) -> None:
        """Tell every consumer these come back redelivered because of a listing (confirmed)."""
        if taken:
            ids = sorted({t.id for t in taken})
            self._state.append([{"k": "browsed", "queue": queue, "ids": ids, "at": time.time()}])


def _too_deep(queue: str, ready: int, newest_first: bool) -> str:
    where = "the newest" if newest_first else "that page"
    return (
        f"{queue} holds {ready} waiting messages and RabbitMQ lists them only by taking "
        f"them, {SCAN_MAX} at most per listing (which holds them meanwhile): {where} is "
        f"out of reach; list the first {SCAN_MAX} oldest first (no newest first), or see "
        "the counts per queue (celeriac queues)"
    )


def _close(ch: BlockingChannel) -> None:
    if ch.is_open:
        ch.close()


__all__ = ["SCAN_MAX", "WaitingReader"]

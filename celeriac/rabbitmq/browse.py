"""Browsing a RabbitMQ broker's queues: waiting and delayed messages; reserved ones
are the workers' to tell.

AMQP reads a queue only by taking its messages (``basic.get``). What that costs
depends on the queue:

* Delayed messages wait in the delay ladder (``topology``), which no consumer
  reads: a message taken there and given back (its channel closed, acked by
  nobody) returns to its place with its original expiry, and when it expires
  RabbitMQ dead-letters it into its task queue as a new message, not
  redelivered. So listing costs no delivery. While a listing holds a message it
  cannot expire: it reaches its queue at most that long late (milliseconds per
  thousand messages). A listing that dies mid-way closes its channel, which
  gives everything back. The ladder is shared by every queue of the virtual
  host, so a page reads every delayed message of the host and keeps those of
  one queue: for an operator's clicks, not the hot path.
* Waiting messages are taken from the head of the task queue and given back,
  which makes them come back ``redelivered``: the listing records their ids in
  the state stream first, so no consumer counts that redelivery as a delivery.
  While a page is held, workers take the messages behind it: the bound, and
  what else remains, are in :mod:`.waiting`. Counting them takes nothing.
* Reserved messages are held on the channels of workers' connections, known
  only to the process that holds them: :attr:`RabbitBrowse.reserved_in_workers`
  says so, and ``celeriac.control.held`` lists them from the workers' own
  answers (``inspect reserved``); this object refuses them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import pika.exceptions as pe
from pika.adapters.blocking_connection import BlockingChannel

from ..brokers.capabilities import KINDS, Kind, Listed
from ..exceptions import CapabilityUnavailable
from ..message import Envelope
from .connection import Link, Retrying
from .messages import Messages
from .state import StateLog
from .topology import DELAY_LEVELS, H_DELIVERIES, H_ETA, H_QUEUE, H_SENT, delay_name, from_ms
from .waiting import WaitingReader

_NOT_FOUND = 404

_IN_WORKERS = (
    "no reserved messages listed by the broker: RabbitMQ keeps them on the workers' "
    "channels, known only to the workers: ask them (celeriac queues show Q --reserved, "
    "celeriac inspect reserved)"
)


class _Found:
    """A delayed message taken from the ladder on a private channel, not acked."""

    __slots__ = ("body", "deliveries", "eta", "id", "priority", "tag")

    def __init__(self, tag: int, props: Any, body: bytes) -> None:
        headers = props.headers or {}
        self.tag = tag
        self.id = str(props.message_id or "")
        self.priority = int(props.priority or 0)
        self.body = body
        self.eta = from_ms(headers.get(H_ETA))
        self.deliveries = int(headers.get(H_DELIVERIES, 0))


class RabbitBrowse:
    """Lists and deletes a RabbitMQ broker's waiting and delayed messages, runs delayed
    ones now, per queue."""

    reserved_in_workers = True

    def __init__(self, link: Link, messages: Messages, state: StateLog, retrying: Retrying) -> None:
        self._link = link
        self._messages = messages
        self._state = state
        self._retrying = retrying
        self._waiting = WaitingReader(link, state)

    def messages(
        self, queue: str, kind: Kind, limit: int = 50, offset: int = 0, newest_first: bool = False
    ) -> list[Listed]:
        _check(kind)
        if limit <= 0:
            return []
        if kind == "waiting":
            reader = self._waiting
            return self._retrying("browse", lambda: reader.page(queue, limit, offset, newest_first))
        found = self._retrying("browse", lambda: self._look(queue))
        found.sort(key=lambda f: (f.eta, f.id), reverse=newest_first)
        return [
            Listed(f.id, queue, f.priority, f.body, "delayed", eta=f.eta, deliveries=f.deliveries)
            for f in found[offset : offset + limit]
        ]

    def count(self, queue: str, kind: Kind) -> int:
        _check(kind)
        if kind == "waiting":
            return self._retrying("browse", lambda: self._waiting.count(queue))
        return len(self._retrying("browse", lambda: self._look(queue)))

    def delete(self, queue: str, kind: Kind, ids: Sequence[str]) -> int:
        _check(kind)
        if kind == "waiting":
            return self._retrying("browse", lambda: self._waiting.delete(queue, ids))
        return self._act(queue, ids, run=False)

    def run_now(self, queue: str, ids: Sequence[str]) -> int:
        return self._act(queue, ids, run=True)

    def requeue(self, queue: str, ids: Sequence[str]) -> int:
        raise CapabilityUnavailable(_IN_WORKERS)

    # -- reading the ladder ----------------------------------------------------------
    def _look(self, queue: str) -> list[_Found]:
        ch = self._link.channel()
        try:
            return self._scan(ch, queue)
        finally:
            if ch.is_open:
                ch.close()  # everything taken goes back, in its place

    def _scan(self, ch: BlockingChannel, queue: str) -> list[_Found]:
        """Every delayed message of ``queue``, taken (not acked) on ``ch``."""
        self._state.catch_up()
        purged = self._state.purged.get(queue, 0.0)
        found: list[_Found] = []
        for level in range(DELAY_LEVELS):
            name = delay_name(level)
            try:
                ch.queue_declare(name, passive=True)
            except pe.ChannelClosedByBroker as exc:
                if exc.reply_code == _NOT_FOUND:  # no ladder yet: nothing is delayed
                    return []
                raise
            while True:
                method, props, body = ch.basic_get(name, auto_ack=False)
                if method is None:
                    break
                headers = props.headers or {}
                if headers.get(H_QUEUE) != queue:
                    continue
                if from_ms(headers.get(H_SENT)) < purged:
                    continue  # purged: dropped when it arrives
                found.append(_Found(method.delivery_tag, props, body))
        return found

    def _act(self, queue: str, ids: Sequence[str], run: bool) -> int:
        if not ids:
            return 0
        wanted = set(ids)

        def op() -> int:
            ch = self._link.channel()
            try:
                chosen = [f for f in self._scan(ch, queue) if f.id in wanted]
                if run and chosen:
                    now = time.time()
                    self._messages.ensure_queue(queue)
                    self._link.publish(
                        [
                            self._messages.outgoing(
                                Envelope(f.id, queue, f.priority, f.body), now, f.deliveries
                            )
                            for f in chosen
                        ]
                    )
                for f in chosen:  # after the copies are confirmed: never lost, at worst twice
                    ch.basic_ack(f.tag)
                return len(chosen)
            finally:
                if ch.is_open:
                    ch.close()  # the ones not chosen go back

        return self._retrying("browse", op)


def _check(kind: str) -> None:
    if kind == "reserved":
        raise CapabilityUnavailable(_IN_WORKERS)
    if kind not in ("waiting", "delayed"):
        raise ValueError(f"no kind {kind!r} of message: use one of {', '.join(KINDS)}")


__all__ = ["RabbitBrowse"]

"""Dead letters on RabbitMQ: one plain durable queue per task queue, ``celeriac.dead.<queue>``.

A dead letter is a copy of the message published there (confirmed) before the
original is acked, with headers saying why, how often it was delivered and
when it died. AMQP cannot read a queue without taking messages, so listing
takes them on a private channel without acking and closes the channel, which
puts them all back in their order; requeueing and deleting by id ack only the
chosen ones.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pika
import pika.exceptions as pe
from pika.adapters.blocking_connection import BlockingChannel

from ..brokers.base import DeadLetter
from .connection import Link, Outgoing
from .consumer import Raw
from .topology import (
    H_DEAD_AT,
    H_DELIVERIES,
    H_QUEUE,
    H_REASON,
    dead_queue,
    from_ms,
    to_ms,
)

_NOT_FOUND = 404


def burial(raw: Raw, reason: str, deliveries: int, now: float) -> Outgoing:
    """The dead-letter copy of a message."""
    headers = {
        H_QUEUE: raw.queue,
        H_REASON: reason,
        H_DELIVERIES: deliveries,
        H_DEAD_AT: to_ms(now),
    }
    props = pika.BasicProperties(
        delivery_mode=2, priority=raw.priority, message_id=raw.message_id, headers=headers
    )
    return Outgoing("", dead_queue(raw.queue), raw.body, props)


def _dead_letter(queue: str, props: Any, body: bytes) -> DeadLetter:
    headers = props.headers or {}
    return DeadLetter(
        id=str(props.message_id or ""),
        queue=str(headers.get(H_QUEUE, queue)),
        priority=int(props.priority or 0),
        body=body,
        reason=str(headers.get(H_REASON, "")),
        deliveries=int(headers.get(H_DELIVERIES, 0)),
        dead_at=from_ms(headers.get(H_DEAD_AT)),
    )


class DeadLetters:
    """List, requeue and purge one broker's dead letters."""

    def __init__(self, link: Link, requeue_to: Callable[[DeadLetter], Outgoing]) -> None:
        self._link = link
        self._requeue_to = requeue_to  # the message that puts a dead letter back on its queue

    def _private(self, queue: str) -> BlockingChannel | None:
        """A channel of our own on an existing dead-letter queue, or None if it has none."""
        ch = self._link.channel()
        try:
            ch.queue_declare(dead_queue(queue), passive=True)
        except pe.ChannelClosedByBroker as exc:
            if exc.reply_code == _NOT_FOUND:
                return None
            raise
        return ch

    def count(self, queue: str) -> int:
        ch = self._private(queue)
        if ch is None:
            return 0
        try:
            return int(ch.queue_declare(dead_queue(queue), passive=True).method.message_count)
        finally:
            ch.close()

    def _scan(
        self, ch: BlockingChannel, queue: str, limit: int | None = None
    ) -> list[tuple[int, DeadLetter]]:
        found: list[tuple[int, DeadLetter]] = []
        while limit is None or len(found) < limit:
            method, props, body = ch.basic_get(dead_queue(queue), auto_ack=False)
            if method is None:
                break
            found.append((method.delivery_tag, _dead_letter(queue, props, body)))
        return found

    def list(self, queue: str, limit: int) -> list[DeadLetter]:
        ch = self._private(queue)
        if ch is None:
            return []
        try:
            return [dead for _, dead in self._scan(ch, queue, limit)]
        finally:
            ch.close()  # everything taken goes back, in order

    def requeue(self, queue: str, ids: Sequence[str] | None) -> int:
        return self._take(queue, ids, republish=True)

    def purge(self, queue: str, ids: Sequence[str] | None) -> int:
        if ids is None:
            ch = self._private(queue)
            if ch is None:
                return 0
            try:
                return int(ch.queue_purge(dead_queue(queue)).method.message_count)
            finally:
                ch.close()
        return self._take(queue, ids, republish=False)

    def _take(self, queue: str, ids: Sequence[str] | None, republish: bool) -> int:
        ch = self._private(queue)
        if ch is None:
            return 0
        wanted = None if ids is None else set(ids)
        try:
            chosen = [
                (tag, dead)
                for tag, dead in self._scan(ch, queue)
                if wanted is None or dead.id in wanted
            ]
            if republish and chosen:
                self._link.publish([self._requeue_to(dead) for _, dead in chosen])
            for tag, _ in chosen:
                ch.basic_ack(tag)
            return len(chosen)
        finally:
            ch.close()  # the ones not chosen go back

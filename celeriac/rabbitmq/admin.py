"""Inspecting and managing queues on RabbitMQ: the registry, depths, purges.

What AMQP 0-9-1 can tell a client about a queue is what a passive declare
answers: how many messages are ready and how many consumers it has. So
``stats`` reports waiting messages under one priority (RabbitMQ does not count
per priority), and delayed and in-flight counts and the oldest age are not
known (0 and None); the management plugin's HTTP API has more.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pika.exceptions as pe

from ..brokers.base import QueueStats
from .connection import Link
from .dead import DeadLetters
from .messages import Messages
from .state import StateLog

_NOT_FOUND = 404


@dataclass(slots=True)
class AMQPQueueStats(QueueStats):
    """Queue stats plus the consumers RabbitMQ counts on the queue."""

    consumers: int = 0


class Admin:
    """The broker's inspecting and managing calls; each runs inside the link's guard."""

    def __init__(
        self,
        link: Link,
        messages: Messages,
        state: StateLog,
        dead: DeadLetters,
        default_priority: int,
    ) -> None:
        self._link = link
        self._messages = messages
        self._state = state
        self._dead = dead
        self._default_priority = default_priority

    def declared(self, queue: str) -> Any:
        """The passive declare of a queue (depth, consumers), or None when it does not exist."""
        ch = self._link.channel()  # a 404 closes the channel: use one of our own
        try:
            return ch.queue_declare(queue, passive=True).method
        except pe.ChannelClosedByBroker as exc:
            if exc.reply_code == _NOT_FOUND:
                return None
            raise
        finally:
            if ch.is_open:
                ch.close()

    def queues(self) -> list[str]:
        """Every queue declared through celeriac in this vhost that still exists."""
        self._state.catch_up()
        return sorted(q for q in self._state.queues if self.declared(q) is not None)

    def stats(self, queue: str) -> QueueStats:
        stats = AMQPQueueStats(queue)
        method = self.declared(queue)
        if method is not None:
            if method.message_count:
                stats.waiting[self._default_priority] = int(method.message_count)
            stats.consumers = int(method.consumer_count)
        stats.dead = self._dead.count(queue)
        return stats

    def purge(self, queue: str) -> int:
        """Delete waiting messages now, and delayed ones of the queue when they come due.

        Returns how many waiting messages went: the ladder is shared by every
        queue, so delayed ones cannot be counted; the purge mark in the state
        stream drops each of them on arrival.
        """
        self._messages.ensure_queue(queue)
        count = int(self._link.admin().queue_purge(queue).method.message_count)
        self._state.append([{"k": "purge", "queue": queue, "at": time.time()}])
        return count

"""A broker that delivers through one store and keeps its capabilities in another.

``broker_capabilities_url`` names a second store (a Redis or SQLite broker URL)
whose capabilities (streams, flags, rate limits, revocations) the broker of
``broker_url`` uses instead of its own: a RabbitMQ broker can keep events,
remote control, paused queues, worker presence, rate limits and revocations in
Redis, where each is one round trip. Delivery (publish, fetch, ack, leases,
dead letters, queue management) stays with the broker of ``broker_url``; a
capability the store does not offer stays the broker's own.

Every process of a cluster must use the same setting: a worker that reads
revocations from Redis does not see the ones a producer wrote to RabbitMQ.

Revoked messages are flagged by the fetch that takes them, from the broker's own
revocations; the delivering broker cannot read another store's, so when the
store keeps them a fetch that took something asks it which are revoked: one
more round trip per batch, only with this setting.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, TypeVar

from ..message import Delivery, Envelope
from .base import AdminBroker, Broker

if TYPE_CHECKING:
    from ..backends.base import Backend, TaskMeta
    from .capabilities import Revocations
    from .wake import Wake

T = TypeVar("T")


def _first(preferred: T | None, fallback: T | None) -> T | None:
    return preferred if preferred is not None else fallback


class ComposedBroker(AdminBroker):
    """Delivery by ``delivery``; capabilities from ``store`` where it offers them."""

    def __init__(self, delivery: Broker, store: Broker) -> None:
        self.delivery = delivery
        self.store = store
        self._admin = delivery  # inspecting and managing: the delivering broker's
        self.url = delivery.url
        self.lease_seconds = delivery.lease_seconds
        self.max_deliveries = delivery.max_deliveries
        self.spans_processes = delivery.spans_processes and store.spans_processes
        self.fork_sensitive = delivery.fork_sensitive or store.fork_sensitive
        self.keeps_sent_at = delivery.keeps_sent_at  # the messages are the delivering broker's
        self.streams = _first(store.streams, delivery.streams)
        self.flags = _first(store.flags, delivery.flags)
        self.rates = _first(store.rates, delivery.rates)
        self.revocations = _first(store.revocations, delivery.revocations)
        self.uniques = _first(store.uniques, delivery.uniques)
        self.concurrency = _first(store.concurrency, delivery.concurrency)
        self.beat = delivery.beat  # a run is recorded with its send: the delivering broker's
        self.browse = delivery.browse  # the messages are the delivering broker's
        # the store's revocations, which the delivering broker's fetch cannot see
        self._revocations_elsewhere: Revocations | None = store.revocations

    def __repr__(self) -> str:
        return f"<ComposedBroker {self.delivery!r}, capabilities of {self.store!r}>"

    # -- delivery: the delivering broker's -----------------------------------------
    def publish(self, envelopes: Sequence[Envelope]) -> None:
        self.delivery.publish(envelopes)

    def fetch(
        self,
        queues: Sequence[str],
        consumer: str,
        limit: int,
        timeout: float,
        wake: Wake | None = None,
    ) -> list[Delivery]:
        taken = self.delivery.fetch(queues, consumer, limit, timeout, wake)
        revocations = self._revocations_elsewhere
        if taken and revocations is not None:
            revoked = revocations.revoked([d.id for d in taken])
            for delivery in taken:
                delivery.revoked = delivery.id in revoked
        return taken

    def ack(self, consumer: str, tags: Sequence[str]) -> None:
        self.delivery.ack(consumer, tags)

    def complete(
        self, consumer: str, tags: Sequence[str], backend: Backend | None, metas: Sequence[TaskMeta]
    ) -> None:
        self.delivery.complete(consumer, tags, backend, metas)

    def ack_soon(self, consumer: str, tags: Sequence[str]) -> None:
        self.delivery.ack_soon(consumer, tags)

    def flush_acks(self) -> None:
        self.delivery.flush_acks()

    def release(
        self, consumer: str, tags: Sequence[str], delay: float = 0.0, count: bool = False
    ) -> None:
        self.delivery.release(consumer, tags, delay, count)

    def release_all(self, consumer: str) -> int:
        return self.delivery.release_all(consumer)

    def renew(self, consumers: Sequence[str]) -> None:
        self.delivery.renew(consumers)

    def recover(self) -> int:
        return self.delivery.recover()

    def dead_letter(self, consumer: str, tag: str, reason: str) -> None:
        self.delivery.dead_letter(consumer, tag, reason)

    def forget_queue(self, queue: str) -> bool:
        return self.delivery.forget_queue(queue)

    def close(self) -> None:
        try:
            self.delivery.close()
        finally:
            self.store.close()


__all__ = ["ComposedBroker"]

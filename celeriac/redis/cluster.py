"""Fetching across queues on Redis Cluster, where one script reaches one slot only.

Each queue lives on its own slot, so the single-script fetch of a standalone
server is split up: one pipeline peeks at every queue's best message (the
fetch script with ``limit`` 0, which also promotes due delayed messages), then
the best queue is asked for what ranks before the second best queue's head,
and so on until ``limit`` is reached or the queues are empty. Each step is
still one atomic take-and-lease. Revocations live on another slot and are
checked with one more command.

A fetch with nothing to take waits on pub/sub: the scripts announce new work
on ``P:wake:<queue>`` and the consumer subscribed (and saw the confirmation)
before it looked, so no announcement between its look and its wait is missed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .entries import fetched
from .scripts import Batch, script

if TYPE_CHECKING:
    from ..message import Delivery
    from .broker import RedisBroker

_FETCH = script("fetch")


def take_across(
    broker: RedisBroker, queues: Sequence[str], consumer: str, limit: int
) -> tuple[float | None, list[Delivery]]:
    """Lease up to ``limit`` messages, best first across the queues."""
    if len(queues) == 1:
        wait, _, got = fetched(
            broker.link.call(
                _FETCH,
                (broker.base(queues[0]),),
                broker._fetch_args(queues, consumer, limit),
            )
        )
        return wait, _flag_revoked(broker, got)
    batch = Batch()
    for queue in queues:
        batch.script(_FETCH, (broker.base(queue),), broker._fetch_args([queue], consumer, 0))
    heads: dict[int, tuple[int, int]] = {}
    waits = []
    for i, out in enumerate(broker.link.run(batch)):
        wait, head, _ = fetched(out)
        if head is not None:
            heads[i] = head
        if wait is not None:
            waits.append(wait)
    taken: list[Delivery] = []
    for _ in range(limit + 2 * len(queues)):  # each step takes one or learns a new head
        if len(taken) >= limit or not heads:
            break
        ranked = sorted((head, i) for i, head in heads.items())
        best = ranked[0][1]
        bound: tuple[Any, Any] = ("", "")
        if len(ranked) > 1:
            (rank, order), second = ranked[1]
            # ties in order go to the queue named first
            bound = (rank, order + (1 if best < second else 0))
        out = broker.link.call(
            _FETCH,
            (broker.base(queues[best]),),
            broker._fetch_args([queues[best]], consumer, limit - len(taken), bound),
        )
        _, head, got = fetched(out)
        taken += got
        if head is None:
            del heads[best]
        else:
            heads[best] = head
    return (min(waits) if waits else None), _flag_revoked(broker, taken)


def _flag_revoked(broker: RedisBroker, taken: list[Delivery]) -> list[Delivery]:
    if taken:
        revoked = broker.revoked([d.id for d in taken])
        for delivery in taken:
            delivery.revoked = delivery.id in revoked
    return taken


def subscribe(broker: RedisBroker, channels: Sequence[str]) -> None:
    """Listen on these wake channels, confirmed by the server before returning."""
    new = [c for c in channels if c not in broker._subscribed]
    if not new:
        return
    if broker._waker is None:
        broker._waker = broker.client.pubsub()
    waker = broker._waker
    waker.subscribe(*new)
    pending = set(new)
    for _ in range(100 * len(new)):
        message = waker.get_message(timeout=1.0)
        if message is None:
            continue
        if message["type"] == "subscribe":
            pending.discard(_text(message["channel"]))
        if not pending:
            break
    broker._subscribed.update(new)


def wait_for_wake(broker: RedisBroker, seconds: float) -> None:
    """Wait up to ``seconds`` for a wake message, then drain the others that came."""
    waker = broker._waker
    if waker is None:
        return
    message = waker.get_message(timeout=seconds)
    while message is not None:
        message = waker.get_message(timeout=0.0)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


__all__ = ["subscribe", "take_across", "wait_for_wake"]

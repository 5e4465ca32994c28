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

import itertools
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from .entries import fetch_args, fetched
from .manage import RedisRevocations
from .scripts import Batch, PooledLink, script

if TYPE_CHECKING:
    from ..message import Delivery

_FETCH = script("fetch")


class ClusterFetch:
    """The Cluster side of one broker's fetch: taking across slots, and waiting."""

    def __init__(
        self,
        client: Any,
        link: PooledLink,
        base: Callable[[str], str],
        wake_prefix: str,
        revocations: RedisRevocations,
    ) -> None:
        self._client = client
        self._link = link
        self._base = base  # a queue's key base (and hash tag)
        self._wake_prefix = wake_prefix  # "P:wake:", the channels' common start
        self._revocations = revocations
        self._waker: Any = None  # the pub/sub connection, opened by the first subscribe
        self._subscribed: set[str] = set()
        self._ids, self._count = uuid.uuid4().hex, itertools.count()  # fetch ids

    def take(
        self, queues: Sequence[str], consumer: str, limit: int, lease_seconds: float
    ) -> tuple[float | None, list[Delivery]]:
        """Lease up to ``limit`` messages, best first across the queues."""

        def args(queue: str, count: int, bound: tuple[Any, Any] = ("", "")) -> list[Any]:
            fetch_id = f"{self._ids}:{next(self._count)}"
            return fetch_args(
                [queue], consumer, count, lease_seconds, self._wake_prefix, fetch_id, bound
            )

        if len(queues) == 1:
            out = self._link.call(_FETCH, (self._base(queues[0]),), args(queues[0], limit))
            wait, _, got = fetched(out)
            return wait, self._flag_revoked(got)
        batch = Batch()
        for queue in queues:
            batch.script(_FETCH, (self._base(queue),), args(queue, 0))
        heads: dict[int, tuple[int, int]] = {}
        waits = []
        for i, out in enumerate(self._link.run(batch)):
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
            queue = queues[best]
            out = self._link.call(
                _FETCH, (self._base(queue),), args(queue, limit - len(taken), bound)
            )
            _, head, got = fetched(out)
            taken += got
            if head is None:
                del heads[best]
            else:
                heads[best] = head
        return (min(waits) if waits else None), self._flag_revoked(taken)

    def _flag_revoked(self, taken: list[Delivery]) -> list[Delivery]:
        if taken:
            revoked = self._revocations.revoked([d.id for d in taken])
            for delivery in taken:
                delivery.revoked = delivery.id in revoked
        return taken

    def subscribe(self, queues: Sequence[str]) -> None:
        """Listen on these queues' wake channels, confirmed by the server before returning."""
        new = [c for c in (self._wake_prefix + q for q in queues) if c not in self._subscribed]
        if not new:
            return
        if self._waker is None:
            self._waker = self._client.pubsub()
        waker = self._waker
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
        self._subscribed.update(new)

    def wait(self, seconds: float) -> None:
        """Wait up to ``seconds`` for a wake message, then drain the others that came."""
        waker = self._waker
        if waker is None:
            return
        message = waker.get_message(timeout=seconds)
        while message is not None:
            message = waker.get_message(timeout=0.0)

    def close(self) -> None:
        if self._waker is not None:
            self._waker.close()
            self._waker = None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


__all__ = ["ClusterFetch"]

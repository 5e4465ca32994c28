"""Inspecting and managing the Redis broker's queues; its revocations, rate limits and unique keys.

Each part is an object the broker owns, holding the link it calls its scripts
through: :class:`RedisAdmin` serves the broker's management primitives,
:class:`RedisRevocations` and :class:`RedisRates` are its capabilities
(:mod:`celeriac.brokers.capabilities`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..brokers.base import DeadLetter, QueueStats
from .client import RedisError
from .entries import dead_letter_of
from .scripts import HeldLink, PooledLink, Script, script
from .streams import Translate

_STATS, _PURGE, _DEAD = script("stats"), script("purge"), script("dead")
_REVOKE, _REVOKED, _RATE = script("revoke"), script("revoked"), script("rate")
_CLAIM, _UNCLAIM = script("unique_claim"), script("unique_release")

Link = HeldLink | PooledLink


def _call(link: Link, error: Translate, s: Script, key: str, args: Sequence[Any]) -> Any:
    """One script on one key, a redis-py error translated."""
    try:
        return link.call(s, (key,), args)
    except RedisError as exc:
        raise error(exc) from exc


class RedisAdmin:
    """Queue listing, stats, purges and dead letters (one script per queue each)."""

    def __init__(
        self,
        client: Any,
        link: Link,
        queues_key: str,
        base: Callable[[str], str],
        channel: Callable[[str], str],
        error: Translate,
    ) -> None:
        self._client = client
        self._link = link
        self._queues_key = queues_key
        self._forgotten_key = queues_key.removesuffix(":queues") + ":forgotten"
        self._base = base  # a queue's key base (and hash tag)
        self._channel = channel  # a queue's wake channel on Cluster, "" elsewhere
        self._error = error

    def channel(self, queue: str) -> str:
        """The queue's wake channel on Cluster, "" elsewhere."""
        return self._channel(queue)

    def run(self, s: Script, queue: str, args: Sequence[Any]) -> Any:
        """Run a per-queue script on ``queue``."""
        return _call(self._link, self._error, s, self._base(queue), args)

    def queues(self) -> list[str]:
        """Every queue named in the registry but those forgotten while empty (one that
        holds messages again is listed again, and no longer forgotten)."""
        try:
            names = {m.decode() for m in self._client.smembers(self._queues_key)}
            forgotten = {m.decode() for m in self._client.smembers(self._forgotten_key)}
        except RedisError as exc:
            raise self._error(exc) from exc
        for queue in forgotten & names:
            if _holds_any(self.stats(queue)):
                self._client.srem(self._forgotten_key, queue)
            else:
                names.discard(queue)
        return sorted(names)

    def forget_queue(self, queue: str) -> bool:
        """Stop listing an empty queue. Its name stays in the registry, which recovery and
        producers rely on: it is hidden, not removed, until it holds a message again."""
        if _holds_any(self.stats(queue)):
            return False
        try:
            self._client.sadd(self._forgotten_key, queue)
        except RedisError as exc:
            raise self._error(exc) from exc
        return True

    def stats(self, queue: str) -> QueueStats:
        out = self.run(_STATS, queue, ())
        now_us, counts = int(out[0]), out[1:11]
        stats = QueueStats(
            queue,
            {p: n for p, n in enumerate(counts) if n},
            delayed=out[11],
            in_flight=out[12],
            dead=out[13],
        )
        if out[14]:
            stats.oldest_age = max(0.0, (now_us - int(out[14])) / 1e6)
        return stats

    def purge(self, queue: str) -> int:
        return int(self.run(_PURGE, queue, ()))

    def dead_letters(self, queue: str, limit: int) -> list[DeadLetter]:
        try:
            records = self._client.lrange(self._base(queue) + ":dead", 0, max(0, limit - 1))
        except RedisError as exc:
            raise self._error(exc) from exc
        return [dead_letter_of(queue, r) for r in records] if limit > 0 else []

    def requeue_dead(self, queue: str, ids: Sequence[str] | None) -> int:
        if ids is not None and not ids:
            return 0
        return int(self.run(_DEAD, queue, ("requeue", self._channel(queue), *(ids or ()))))

    def purge_dead(self, queue: str, ids: Sequence[str] | None) -> int:
        if ids is not None and not ids:
            return 0
        return int(self.run(_DEAD, queue, ("purge", "", *(ids or ()))))


def _holds_any(stats: QueueStats) -> bool:
    return bool(stats.total_waiting or stats.delayed or stats.in_flight or stats.dead)


class RedisRevocations:
    """Revoked task ids in the sorted set ``{P}:revoked`` (id -> revoked until)."""

    def __init__(self, link: Link, key: str, error: Translate) -> None:
        self._link = link
        self._key = key
        self._error = error

    def revoke(self, ids: Sequence[str], ttl: float) -> None:
        if ids:
            _call(self._link, self._error, _REVOKE, self._key, (ttl, *ids))

    def revoked(self, ids: Sequence[str]) -> set[str]:
        if not ids:
            return set()
        return {m.decode() for m in _call(self._link, self._error, _REVOKED, self._key, ids)}


class RedisRates:
    """Rate-limit slots: GCRA state in ``P:rate:<key>``, one script call each."""

    def __init__(self, link: Link, prefix: str, error: Translate) -> None:
        self._link = link
        self._prefix = prefix
        self._error = error

    def reserve(self, key: str, interval: float, burst: int = 1) -> float:
        out = _call(
            self._link, self._error, _RATE, f"{self._prefix}:rate:{key}", (interval, max(1, burst))
        )
        return float(out)


class RedisUniques:
    """Unique-task keys: ``P:unique:<key>`` holds the holder's task id, expiring; one
    script call each."""

    def __init__(self, link: Link, prefix: str, error: Translate) -> None:
        self._link = link
        self._prefix = prefix
        self._error = error

    def claim(self, key: str, task_id: str, ttl: float) -> str:
        ms = max(1, round(ttl * 1000))
        out = _call(self._link, self._error, _CLAIM, f"{self._prefix}:unique:{key}", (task_id, ms))
        return out.decode() if isinstance(out, bytes) else str(out)

    def release(self, key: str, task_id: str) -> None:
        _call(self._link, self._error, _UNCLAIM, f"{self._prefix}:unique:{key}", (task_id,))


__all__ = ["RedisAdmin", "RedisRates", "RedisRevocations", "RedisUniques"]

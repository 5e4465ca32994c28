"""Inspecting and managing queues, revocations and rate limits on the Redis broker."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..brokers.base import DeadLetter, QueueStats
from .client import RedisError
from .entries import dead_letter_of
from .scripts import HeldLink, PooledLink, script

_STATS, _PURGE, _DEAD = script("stats"), script("purge"), script("dead")
_REVOKE, _REVOKED, _RATE = script("revoke"), script("revoked"), script("rate")


class RedisManagement:
    """Mixed into :class:`~celeriac.redis.broker.RedisBroker`."""

    client: Any
    link: HeldLink | PooledLink
    prefix: str
    _queues_key: str
    _revoked_key: str
    _error: Callable[[BaseException], Exception]
    base: Callable[[str], str]
    _channel: Callable[[str], str]

    # -- inspecting and managing ---------------------------------------------
    def queues(self) -> list[str]:
        try:
            return sorted(m.decode() for m in self.client.smembers(self._queues_key))
        except RedisError as exc:
            raise self._error(exc) from exc

    def _run(self, s: Any, queue: str, args: Sequence[Any]) -> Any:
        try:
            return self.link.call(s, (self.base(queue),), args)
        except RedisError as exc:
            raise self._error(exc) from exc

    def stats(self, queue: str) -> QueueStats:
        out = self._run(_STATS, queue, ())
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
        return int(self._run(_PURGE, queue, ()))

    def dead_letters(self, queue: str, limit: int = 100) -> list[DeadLetter]:
        try:
            records = self.client.lrange(self.base(queue) + ":dead", 0, max(0, limit - 1))
        except RedisError as exc:
            raise self._error(exc) from exc
        return [dead_letter_of(queue, r) for r in records] if limit > 0 else []

    def requeue_dead(self, queue: str, ids: Sequence[str] | None = None) -> int:
        if ids is not None and not ids:
            return 0
        return int(self._run(_DEAD, queue, ("requeue", self._channel(queue), *(ids or ()))))

    def purge_dead(self, queue: str, ids: Sequence[str] | None = None) -> int:
        if ids is not None and not ids:
            return 0
        return int(self._run(_DEAD, queue, ("purge", "", *(ids or ()))))

    # -- revocations ---------------------------------------------------------
    def revoke(self, ids: Sequence[str], ttl: float) -> None:
        if ids:
            self._call_global(_REVOKE, self._revoked_key, (ttl, *ids))

    def revoked(self, ids: Sequence[str]) -> set[str]:
        if not ids:
            return set()
        return {m.decode() for m in self._call_global(_REVOKED, self._revoked_key, ids)}

    def _call_global(self, s: Any, key: str, args: Sequence[Any]) -> Any:
        try:
            return self.link.call(s, (key,), args)
        except RedisError as exc:
            raise self._error(exc) from exc

    # -- rate limits, streams, flags --------------------------------------------
    def rate_reserve(self, key: str, interval: float, burst: int = 1) -> float:
        out = self._call_global(_RATE, f"{self.prefix}:rate:{key}", (interval, max(1, burst)))
        return float(out)


__all__ = ["RedisManagement"]

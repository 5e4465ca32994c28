"""Concurrency-limit state on Redis (:mod:`celeriac.brokers.concurrency`).

Keys share the hash tag ``{P:limits}``, so the compare-and-set script stays legal
on Redis Cluster (one slot for all limit state)::

    {P:limits}:key:<key>    the key's state: holds, parked messages (JSON)
    {P:limits}:waiting      set of the keys with parked messages (the sweep reads it)
    {P:limits}:consumers    sorted set: consumer -> lives until (Unix seconds)

A step writes the state back with ``lua/limit_cas.lua`` if no one changed it since
it was read; a step that lost the race runs again on the state the script returned.
A connection starts from the state it last saw of a key, so a step is one round trip
while no other worker changed the key in between, two (``GET`` first) for a key it
has not seen. Times are the workers'
clocks (holds are compared with the lease, which is much longer than clock skew
under NTP).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import TypeVar

from ..brokers.concurrency import needs_sweep
from .client import RedisError
from .manage import Link
from .scripts import script
from .streams import Translate

T = TypeVar("T")
_CAS = script("limit_cas")
_FORGET_AFTER = 86_400.0  # a consumer silent this long is forgotten
_REMEMBERED = 10_000  # keys whose last state a connection remembers


class RedisConcurrency:
    """The :class:`~celeriac.brokers.concurrency.ConcurrencyStore` of the Redis broker."""

    def __init__(self, link: Link, prefix: str, error: Translate) -> None:
        self._link = link
        self._base = f"{{{prefix}:limits}}"
        self._waiting = f"{self._base}:waiting"
        self._consumers = f"{self._base}:consumers"
        self._error = error
        self._last: dict[str, bytes | None] = {}  # key -> the state last read or written

    def change(self, key: str, update: Callable[[bytes | None], tuple[T, bytes | None]]) -> T:
        state_key = f"{self._base}:key:{key}"
        try:
            # the state this connection last saw, when it has one: right unless another
            # worker changed the key since, which the compare-and-set finds out
            guessed = key in self._last
            raw = self._last.pop(key) if guessed else self._link.execute("GET", state_key)
            while True:
                out, new = update(raw)
                if new == raw and not guessed:
                    self._remember(key, raw)
                    return out
                args = (raw or b"", new or b"", key, "1" if needs_sweep(new) else "0")
                reply = self._link.call(_CAS, (state_key, self._waiting), args)
                if int(reply[0]) == 1:
                    self._remember(key, new)
                    return out
                raw, guessed = (reply[1] if len(reply) > 1 else None), False
        except RedisError as exc:
            raise self._error(exc) from exc

    def _remember(self, key: str, state: bytes | None) -> None:
        if len(self._last) >= _REMEMBERED:
            self._last.clear()
        self._last[key] = state

    def renew(self, consumers: Sequence[str], until: float) -> None:
        pairs: list[object] = []
        for consumer in consumers:
            pairs += [repr(until), consumer]
        try:
            self._link.execute("ZADD", self._consumers, *pairs)
            self._link.execute(
                "ZREMRANGEBYSCORE", self._consumers, "-inf", repr(until - _FORGET_AFTER)
            )
        except RedisError as exc:
            raise self._error(exc) from exc

    def deadlines(self, consumers: Collection[str]) -> dict[str, float]:
        wanted = list(consumers)
        if not wanted:
            return {}
        try:
            scores = self._link.execute("ZMSCORE", self._consumers, *wanted)
        except RedisError as exc:
            raise self._error(exc) from exc
        return {c: float(s) for c, s in zip(wanted, scores, strict=True) if s is not None}

    def waiting_keys(self) -> list[str]:
        try:
            members = self._link.execute("SMEMBERS", self._waiting)
        except RedisError as exc:
            raise self._error(exc) from exc
        return sorted(m.decode() if isinstance(m, bytes) else str(m) for m in members)


__all__ = ["RedisConcurrency"]

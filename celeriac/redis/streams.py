"""Streams (events, control, replies) and flags of the Redis broker.

A celeriac stream is a Redis stream ``P:stream:<name>`` whose entries hold one
field, ``i``, the item. Positions are Redis stream ids ("<ms>-<seq>"), which
increase; "0" is before the first. Trimming is exact, so a stream never holds
more than ``maxlen`` items. Flags are one hash, ``{P}:flags``. Reply streams
(``reply:<command id>``) expire an hour after their last reply.

Both are capability objects (:mod:`celeriac.brokers.capabilities`) the broker
owns; each holds the redis-py client it talks through.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .client import RedisError

REPLY_PREFIX = "reply:"  # remote-control replies, one stream per command
REPLY_TTL = 3600  # seconds a reply stream outlives its last reply

#: Turns a redis-py exception into the broker's (``BrokerUnavailable`` or ``BrokerError``).
Translate = Callable[[BaseException], Exception]


class RedisStreams:
    """Streams as Redis streams under ``P:stream:``."""

    def __init__(self, client: Any, prefix: str, max_block: float, error: Translate) -> None:
        self._client = client
        self._prefix = prefix
        self._max_block = max_block  # longest a blocking read may wait (under socket_timeout)
        self._error = error

    def _key(self, stream: str) -> str:
        return f"{self._prefix}:stream:{stream}"

    def add(self, stream: str, items: Sequence[bytes], maxlen: int = 100_000) -> None:
        if not items:
            return
        key = self._key(stream)
        try:
            pipe = self._client.pipeline(transaction=False)
            for item in items:
                pipe.xadd(key, {"i": item}, maxlen=maxlen, approximate=False)
            if stream.startswith(REPLY_PREFIX):  # one stream per command: let it go by itself
                pipe.expire(key, REPLY_TTL)
            pipe.execute()
        except RedisError as exc:
            raise self._error(exc) from exc

    def read(
        self, stream: str, after: str, limit: int = 1000, timeout: float = 0.0
    ) -> list[tuple[str, bytes]]:
        block = None
        if timeout > 0:  # BLOCK 0 would mean forever
            block = max(1, int(min(timeout, self._max_block) * 1000))
        try:
            reply = self._client.xread({self._key(stream): after or "0"}, count=limit, block=block)
        except RedisError as exc:
            raise self._error(exc) from exc
        if not reply:
            return []
        entries = reply[0][1] if isinstance(reply, list) else next(iter(reply.values()))[0]
        return [(_text(entry_id), fields[b"i"]) for entry_id, fields in entries]

    def last(self, stream: str) -> str:
        try:
            newest = self._client.xrevrange(self._key(stream), count=1)
        except RedisError as exc:
            raise self._error(exc) from exc
        return _text(newest[0][0]) if newest else "0"


class RedisFlags:
    """Flags as the fields of one hash."""

    def __init__(self, client: Any, key: str, error: Translate) -> None:
        self._client = client
        self._key = key
        self._error = error

    def set(self, name: str, value: str | None) -> None:
        try:
            if value is None:
                self._client.hdel(self._key, name)
            else:
                self._client.hset(self._key, name, value)
        except RedisError as exc:
            raise self._error(exc) from exc

    def read(self, prefix: str = "") -> dict[str, str]:
        try:
            found = self._client.hgetall(self._key)
        except RedisError as exc:
            raise self._error(exc) from exc
        decoded = {_text(k): _text(v) for k, v in found.items()}
        return {k: v for k, v in decoded.items() if k.startswith(prefix)}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


__all__ = ["RedisFlags", "RedisStreams", "Translate"]

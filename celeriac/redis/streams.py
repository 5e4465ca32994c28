"""Streams (events, control, replies) and flags for the Redis broker.

A celeriac stream is a Redis stream ``P:stream:<name>`` whose entries hold one
field, ``i``, the item. Positions are Redis stream ids ("<ms>-<seq>"), which
increase; "0" is before the first. Trimming is exact, so a stream never holds
more than ``maxlen`` items. Flags are one hash, ``{P}:flags``. Reply streams
(``reply:<command id>``) expire an hour after their last reply.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .client import RedisError

REPLY_PREFIX = "reply:"  # remote-control replies, one stream per command
REPLY_TTL = 3600  # seconds a reply stream outlives its last reply


class RedisStreams:
    """Mixed into :class:`~celeriac.redis.broker.RedisBroker`."""

    client: Any
    prefix: str
    _flags_key: str
    _max_block: float
    _error: Callable[[BaseException], Exception]

    def _stream(self, stream: str) -> str:
        return f"{self.prefix}:stream:{stream}"

    def stream_add(self, stream: str, items: Sequence[bytes], maxlen: int = 100_000) -> None:
        if not items:
            return
        key = self._stream(stream)
        try:
            pipe = self.client.pipeline(transaction=False)
            for item in items:
                pipe.xadd(key, {"i": item}, maxlen=maxlen, approximate=False)
            if stream.startswith(REPLY_PREFIX):  # one stream per command: let it go by itself
                pipe.expire(key, REPLY_TTL)
            pipe.execute()
        except RedisError as exc:
            raise self._error(exc) from exc

    def stream_read(
        self, stream: str, after: str, limit: int = 1000, timeout: float = 0.0
    ) -> list[tuple[str, bytes]]:
        block = None
        if timeout > 0:  # BLOCK 0 would mean forever
            block = max(1, int(min(timeout, self._max_block) * 1000))
        try:
            reply = self.client.xread(
                {self._stream(stream): after or "0"}, count=limit, block=block
            )
        except RedisError as exc:
            raise self._error(exc) from exc
        if not reply:
            return []
        entries = reply[0][1] if isinstance(reply, list) else next(iter(reply.values()))[0]
        return [(_text(entry_id), fields[b"i"]) for entry_id, fields in entries]

    def stream_last(self, stream: str) -> str:
        try:
            newest = self.client.xrevrange(self._stream(stream), count=1)
        except RedisError as exc:
            raise self._error(exc) from exc
        return _text(newest[0][0]) if newest else "0"

    def set_flag(self, name: str, value: str | None) -> None:
        try:
            if value is None:
                self.client.hdel(self._flags_key, name)
            else:
                self.client.hset(self._flags_key, name, value)
        except RedisError as exc:
            raise self._error(exc) from exc

    def flags(self, prefix: str = "") -> dict[str, str]:
        try:
            found = self.client.hgetall(self._flags_key)
        except RedisError as exc:
            raise self._error(exc) from exc
        decoded = {_text(k): _text(v) for k, v in found.items()}
        return {k: v for k, v in decoded.items() if k.startswith(prefix)}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


__all__ = ["RedisStreams"]

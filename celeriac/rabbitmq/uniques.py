"""Unique-task keys on RabbitMQ: the token of each key names its holder.

RabbitMQ has no key-value store, so a unique key is kept the way a rate limit
is (:mod:`celeriac.rabbitmq.rates`): the durable queue ``celeriac.unique.<key>``
holds one message, the token, whose body is the key's holder and until when it
holds it. Claiming takes the token (no one else can now), keeps the holder when
its hold has not ended or names the claimer, and publishes the new token: two
round trips, atomic for the whole cluster. Token queues unused for a day expire,
which is why a hold lasts at most a day (:mod:`celeriac.unique`). Ends of holds
are compared with the claiming client's clock, so a window holds as well as the
clients' clocks agree (NTP).
"""

from __future__ import annotations

import json
import time

from .connection import Link, Retrying
from .rates import TokenPassing

UNIQUE_PREFIX = "celeriac.unique."
CREATE_PREFIX = "celeriac.unique-create."


def _token(holder: str, until: float) -> bytes:
    return json.dumps({"holder": holder, "until": until}).encode()


def _held(body: bytes) -> tuple[str, float]:
    try:
        state = json.loads(body)
        return str(state["holder"]), float(state["until"])
    except (ValueError, KeyError, TypeError):
        return "", 0.0  # a damaged token: the key is free rather than stuck


class Uniques:
    """The broker's unique-key capability: claims and releases by passing each key's token."""

    def __init__(self, link: Link, retrying: Retrying) -> None:
        self._tokens = TokenPassing(
            link, UNIQUE_PREFIX, CREATE_PREFIX, _token("", 0.0), "application/json"
        )
        self._retrying = retrying

    def claim(self, key: str, task_id: str, ttl: float) -> str:
        """The key's holder, ``task_id`` when this call took it (see ``UniqueKeys``)."""

        def update(body: bytes) -> tuple[str, bytes]:
            holder, until = _held(body)
            now = time.time()
            if holder and until > now:
                return holder, body
            return task_id, _token(task_id, now + ttl)

        return self._retrying("uniques.claim", lambda: self._tokens.change(key, update))

    def release(self, key: str, task_id: str) -> None:
        """Free the key when ``task_id`` holds it."""

        def update(body: bytes) -> tuple[None, bytes]:
            holder, _ = _held(body)
            return None, (_token("", 0.0) if holder == task_id else body)

        self._retrying("uniques.release", lambda: self._tokens.change(key, update))


__all__ = ["Uniques"]

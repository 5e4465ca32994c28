"""Concurrency-limit state on RabbitMQ (:mod:`celeriac.brokers.concurrency`).

RabbitMQ has no key-value store, so each key's state (its holds and parked
messages) is the token of a durable queue ``celeriac.limit.<key>``, changed by
taking the token and publishing the next one, as rate limits do
(:class:`~celeriac.rabbitmq.rates.TokenPassing`): atomic for the whole cluster.
Two more tokens: ``celeriac.limit-consumers.all`` (until when each consumer
lives, renewed by heartbeats) and ``celeriac.limit-waiting.all`` (the keys with
parked messages, changed only when a key gains its first or loses its last).
Token queues unused for a day expire, so a key idle that long starts afresh.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import TypeVar

import orjson

from ..brokers.concurrency import needs_sweep
from .connection import Link, Retrying
from .rates import TokenPassing

T = TypeVar("T")
_ALL = "all"
_FORGET_AFTER = 86_400.0


class RabbitConcurrency:
    """The :class:`~celeriac.brokers.concurrency.ConcurrencyStore` of the RabbitMQ broker."""

    def __init__(self, link: Link, retrying: Retrying) -> None:
        def tokens(prefix: str, first: bytes) -> TokenPassing:
            return TokenPassing(link, prefix, prefix + "create.", first, "application/json")

        self._keys = tokens("celeriac.limit.", b"")
        self._consumers = tokens("celeriac.limit-consumers.", b"{}")
        self._waiting = tokens("celeriac.limit-waiting.", b"[]")
        self._retrying = retrying

    def change(self, key: str, update: Callable[[bytes | None], tuple[T, bytes | None]]) -> T:
        def step(body: bytes) -> tuple[T, bytes]:
            old = body or None
            out, new = update(old)
            if needs_sweep(old) != needs_sweep(new):
                self._mark(key, needs_sweep(new))
            return out, new or b""

        return self._retrying("limits.change", lambda: self._keys.change(key, step))

    def _mark(self, key: str, waiting: bool) -> None:
        def step(body: bytes) -> tuple[None, bytes]:
            keys = set(orjson.loads(body or b"[]"))
            keys = keys | {key} if waiting else keys - {key}
            return None, orjson.dumps(sorted(keys))

        self._waiting.change(_ALL, step)

    def renew(self, consumers: Sequence[str], until: float) -> None:
        def step(body: bytes) -> tuple[None, bytes]:
            lives: dict[str, float] = orjson.loads(body or b"{}")
            lives = {c: u for c, u in lives.items() if u > until - _FORGET_AFTER}
            lives.update(dict.fromkeys(consumers, until))
            return None, orjson.dumps(lives)

        self._retrying("limits.renew", lambda: self._consumers.change(_ALL, step))

    def deadlines(self, consumers: Collection[str]) -> dict[str, float]:
        def step(body: bytes) -> tuple[dict[str, float], bytes]:
            lives: dict[str, float] = orjson.loads(body or b"{}")
            return {c: float(lives[c]) for c in consumers if c in lives}, body

        return self._consumers.change(_ALL, step)

    def waiting_keys(self) -> list[str]:
        def step(body: bytes) -> tuple[list[str], bytes]:
            return [str(k) for k in orjson.loads(body or b"[]")], body

        return self._retrying("limits.waiting", lambda: self._waiting.change(_ALL, step))


__all__ = ["RabbitConcurrency"]

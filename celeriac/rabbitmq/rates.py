"""Cluster-wide rate limits on RabbitMQ: one token per limit, passed from hand to hand.

RabbitMQ has no key-value store and no scripts, but a queue hands a message to
one client at a time, and gives it back if that client's connection dies. So
each rate key has a durable classic queue ``celeriac.rate.<key>`` holding one
message, the token, whose body is the limit's GCRA state (the theoretical
arrival time, ``tat``). To reserve a slot a worker:

1. takes the token (``basic.get``, unacknowledged): no one else can take it now;
2. computes the slot as the Redis script and the SQLite transaction do
   (``RateLimits.reserve`` in ``celeriac.brokers.capabilities``), with its own clock;
3. publishes the new token (confirmed), then acks the old one.

Two round trips, and atomic for the whole cluster: reservations are serialised
by the token. A worker that finds the queue empty meets another holder and
asks again after 1 ms, doubling up to 20 ms. The queue is declared with
``x-max-length: 1``, so the newest token wins: if a holder dies after
publishing the new token but before its ack, RabbitMQ requeues the old token
at the head and drops it at once (drop-head), and the state stays right.

The first reserver creates the queue and its first token under a lock (an
exclusive queue, ``celeriac.rate-create.<key>``, which only one connection can
hold and which goes when its connection does), so two first reservers never
make two tokens. A token can only be lost if its creator dies between
declaring the queue and publishing the token: a queue found empty for
``LOST_AFTER`` seconds gets a new token under the same lock (should the old
holder be merely slow, ``x-max-length`` keeps only one of the two afterwards).
Queues unused for a day expire (``x-expires``): a limit idle that long has no
state worth keeping.

Costs: one queue per rate key (per key value with ``rate_limit_key``), two
round trips per reservation. The slot is computed with the reserving worker's
clock, so the limit holds as well as the workers' clocks agree (NTP).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from typing import TypeVar

import pika
import pika.exceptions as pe
from pika.adapters.blocking_connection import BlockingChannel

from ..backoff import Backoff
from .connection import Link, Outgoing, Retrying

RATE_PREFIX = "celeriac.rate."
CREATE_PREFIX = "celeriac.rate-create."
LOST_AFTER = 10.0  # seconds a token may stay out of its queue before it counts as lost
_ARGUMENTS = {"x-max-length": 1, "x-overflow": "drop-head", "x-expires": 86_400_000}
_NOT_FOUND = 404
_RESOURCE_LOCKED = 405
_PAUSE_MIN, _PAUSE_MAX = 0.001, 0.02
T = TypeVar("T")


def rate_queue(key: str, prefix: str = RATE_PREFIX) -> str:
    """The token queue of a rate key (a digest when the key is too long for a name)."""
    queue = prefix + key
    if len(queue.encode()) > 255:
        queue = prefix + "sha256:" + hashlib.sha256(key.encode()).hexdigest()
    return queue


def next_slot(tat: float, now: float, interval: float, burst: int) -> tuple[float, float]:
    """GCRA with reservation: (seconds until the reserved slot, the new ``tat``)."""
    tat = max(tat, now)
    run_at = max(now, tat - (burst - 1) * interval)
    return run_at - now, tat + interval


def _token(tat: float) -> bytes:
    return json.dumps({"tat": tat}).encode()


def _tat(body: bytes) -> float:
    try:
        return float(json.loads(body)["tat"])
    except (ValueError, KeyError, TypeError):
        return 0.0  # a damaged token: start afresh rather than stop every task


class TokenPassing:
    """Read-modify-write of one small state per key, atomic for the whole cluster, by
    passing a token queue's one message from hand to hand (see the module's docstring).

    ``prefix`` names the token queues, ``lock_prefix`` their creation locks, ``first``
    is a new queue's first token. The rate limits use it, and the unique-task keys.
    """

    def __init__(
        self, link: Link, prefix: str, lock_prefix: str, first: bytes, content_type: str
    ) -> None:
        self._link = link
        self._prefix = prefix
        self._lock_prefix = lock_prefix
        self._first = first
        self._channel: BlockingChannel | None = None
        self._props = pika.BasicProperties(delivery_mode=2, content_type=content_type)

    def _open(self) -> BlockingChannel:
        if self._channel is None or not self._channel.is_open:
            self._channel = self._link.channel()
        return self._channel

    def change(self, key: str, update: Callable[[bytes], tuple[T, bytes]]) -> T:
        """Take ``key``'s token, publish ``update(body)``'s new body as the next token
        (confirmed), ack the old one; returns ``update``'s result."""
        queue = rate_queue(key, self._prefix)
        pauses, empty_since = Backoff(_PAUSE_MIN, cap=_PAUSE_MAX), time.monotonic()
        while True:
            taken = self._take(queue)
            if taken is None:  # no queue yet: the first one to ask makes it
                self._create(key, queue, replace=False)
                continue
            tag, body = taken
            if tag is not None and body is not None:
                result, token = update(body)
                self._link.publish([Outgoing("", queue, token, self._props)])
                self._open().basic_ack(tag)
                return result
            if time.monotonic() - empty_since > LOST_AFTER:
                self._create(key, queue, replace=True)
                empty_since = time.monotonic()
            pauses.sleep()  # another client holds the token for a round trip or two

    def _take(self, queue: str) -> tuple[int | None, bytes | None] | None:
        """The token (delivery tag, body); (None, None) when held elsewhere; None: no queue."""
        try:
            method, _props, body = self._open().basic_get(queue, auto_ack=False)
        except pe.ChannelClosedByBroker as exc:
            if exc.reply_code != _NOT_FOUND:
                raise
            return None
        if method is None:
            return None, None
        return int(method.delivery_tag), bytes(body)

    def _create(self, key: str, queue: str, replace: bool) -> None:
        """Under the creation lock: make the queue and its first token (or, with
        ``replace``, a new token for a lost one)."""
        lock = rate_queue(key, self._lock_prefix)
        try:
            self._link.admin().queue_declare(lock, exclusive=True, auto_delete=True)
        except pe.ChannelClosedByBroker as exc:
            if exc.reply_code != _RESOURCE_LOCKED:
                raise
            time.sleep(_PAUSE_MIN)  # another client is creating it: take its token next
            return
        try:
            if replace or not self._exists(queue):
                self._link.admin().queue_declare(queue, durable=True, arguments=_ARGUMENTS)
                self._link.publish([Outgoing("", queue, self._first, self._props)])
        finally:
            self._link.admin().queue_delete(lock)

    def _exists(self, queue: str) -> bool:
        try:
            self._link.admin().queue_declare(queue, passive=True)
        except pe.ChannelClosedByBroker as exc:
            if exc.reply_code != _NOT_FOUND:
                raise
            return False
        return True


class Rates:
    """The broker's rate-limit capability: reservations through one link (under its lock)."""

    def __init__(self, link: Link, retrying: Retrying) -> None:
        self._tokens = TokenPassing(
            link, RATE_PREFIX, CREATE_PREFIX, _token(0.0), "application/json"
        )
        self._retrying = retrying

    def reserve(self, key: str, interval: float, burst: int = 1) -> float:
        """The next slot of a cluster-wide limit, by passing its token."""
        if not interval > 0:
            raise ValueError(f"a rate limit's interval must be positive, not {interval!r}")
        if burst < 1:
            raise ValueError(f"a rate limit's burst must be at least 1, not {burst!r}")

        def update(body: bytes) -> tuple[float, bytes]:
            wait, tat = next_slot(_tat(body), time.time(), interval, burst)
            return wait, _token(tat)

        return self._retrying("rates.reserve", lambda: self._tokens.change(key, update))


__all__ = ["Rates", "TokenPassing", "next_slot", "rate_queue"]

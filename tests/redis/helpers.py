"""Helpers for the Redis tests: counting round trips and server commands."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis
import redis.connection

from celeriac.message import Envelope
from celeriac.redis.scripts import HeldLink


class Counter:
    value = 0


@contextmanager
def count_round_trips() -> Iterator[Counter]:
    """Count client round trips: one write per command or batch, on a held link or redis-py."""
    counter = Counter()
    connection = redis.connection.AbstractConnection
    original_send, original_exchange = connection.send_packed_command, HeldLink._exchange

    def send(self: Any, command: Any, check_health: bool = True) -> None:
        counter.value += 1
        original_send(self, command, check_health)

    def exchange(self: Any, *args: Any, **kwargs: Any) -> Any:
        counter.value += 1
        return original_exchange(self, *args, **kwargs)

    connection.send_packed_command = send  # type: ignore[method-assign]
    HeldLink._exchange = exchange  # type: ignore[method-assign]
    try:
        yield counter
    finally:
        connection.send_packed_command = original_send  # type: ignore[method-assign]
        HeldLink._exchange = original_exchange  # type: ignore[method-assign]


def commands_processed(client: redis.Redis) -> int:
    """Commands the server has run so far (this INFO call included)."""
    return int(client.info("stats")["total_commands_processed"])


def script_calls(client: redis.Redis) -> int:
    """How many EVALSHA commands the server has run."""
    stats = client.info("commandstats").get("cmdstat_evalsha", {})
    return int(stats.get("calls", 0))


def envelope(
    i: int | str, queue: str = "q", priority: int = 5, eta: float | None = None
) -> Envelope:
    return Envelope(str(i), queue, priority, f"body-{i}".encode(), eta)


def drain(
    broker: Any,
    queues: list[str],
    consumer: str = "c",
    timeout: float = 10.0,
    expect: int | None = None,
) -> list[Any]:
    """Fetch and ack until ``expect`` deliveries arrived (or nothing comes for a while)."""
    got: list[Any] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (expect is None or len(got) < expect):
        batch = broker.fetch(queues, consumer, 100, 0.5 if expect is not None else 0.0)
        if not batch and expect is None:
            break
        broker.ack(consumer, [d.tag for d in batch])
        got += batch
    return got

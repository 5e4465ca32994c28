"""The body of a child process that reserves rate-limit slots (spawned by test_rates)."""

from __future__ import annotations

import time
from typing import Any

from celeriac.rabbitmq.broker import AMQPBroker


def reserve_slots(url: str, key: str, interval: float, count: int, go: Any, out: Any) -> None:
    """Connect, wait for ``go``, reserve ``count`` slots; report when each slot is (unix time)."""
    broker = AMQPBroker(url)
    broker.flags.read("")  # connected before the start
    go.wait(30)
    slots = [time.time() + broker.rates.reserve(key, interval) for _ in range(count)]
    out.put(slots)
    broker.close()

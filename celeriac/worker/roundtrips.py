"""Timing of a consumer's broker calls, for the worker's metrics.

When something observes them (``WorkerMetrics`` sets :data:`observer` in each
consuming process as it starts), a consumer's broker connection is wrapped so that
``fetch``, ``ack`` and ``complete`` report how long each call took. With no
observer the connection is used as it is: no cost on the hot path.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..brokers.base import Broker

#: Called with (operation, seconds) after each timed call; set per process.
observer: Callable[[str, float], None] | None = None

TIMED = ("fetch", "ack", "complete")


def timed(broker: Broker) -> Broker:
    """``broker``, its hot-path calls timed when an :data:`observer` is set."""
    observe = observer
    if observe is None:
        return broker
    for operation in TIMED:
        call = getattr(broker, operation)

        def timed_call(
            *args: Any, _call: Callable[..., Any] = call, _op: str = operation, **kwargs: Any
        ) -> Any:
            started = time.perf_counter()
            try:
                return _call(*args, **kwargs)
            finally:
                observe(_op, time.perf_counter() - started)

        setattr(broker, operation, timed_call)
    return broker


__all__ = ["TIMED", "observer", "timed"]

"""Pausing queues for the whole cluster.

A paused queue keeps its messages and takes new ones; no worker fetches from
it until it is resumed. The state is the broker flag ``paused:<queue>``, so it
holds across worker restarts and for workers started later. Consumers ask
:class:`PausedQueues` which of their queues are open before each fetch; it
re-reads the flags at most once per ``REFRESH`` seconds, so a pause takes effect
within about a second at the cost of one small read per second per consumer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import orjson

from ..brokers.base import Broker
from ..brokers.capabilities import Flags, require

if TYPE_CHECKING:
    from ..app import Celeriac

logger = logging.getLogger("celeriac.control")

PAUSED_PREFIX = "paused:"
REFRESH = 1.0  # seconds between two reads of the paused flags


def _flags(broker: Broker) -> Flags:
    return require(broker, broker.flags, "flags", "pausing queues")


def pause_queue(broker: Broker, queue: str, by: str = "") -> None:
    """Stop every worker fetching from ``queue`` until :func:`resume_queue`."""
    if not queue:
        raise ValueError("pause needs a queue name")
    info = orjson.dumps({"since": time.time(), "by": by}).decode()
    _flags(broker).set(PAUSED_PREFIX + queue, info)


def resume_queue(broker: Broker, queue: str) -> bool:
    """Let workers fetch from ``queue`` again; False when it was not paused."""
    flags = _flags(broker)
    was_paused = PAUSED_PREFIX + queue in flags.read(PAUSED_PREFIX + queue)
    flags.set(PAUSED_PREFIX + queue, None)
    return was_paused


def paused_queues(broker: Broker) -> dict[str, dict[str, Any]]:
    """Paused queue -> {"since": unix seconds, "by": who paused it}."""
    found: dict[str, dict[str, Any]] = {}
    for name, raw in _flags(broker).read(PAUSED_PREFIX).items():
        try:
            info = orjson.loads(raw)
        except orjson.JSONDecodeError:
            info = {}
        found[name[len(PAUSED_PREFIX) :]] = info if isinstance(info, dict) else {}
    return found


class PausedQueues:
    """A cached view of the paused queues; safe to share between a process's consumers."""

    def __init__(self, source: Celeriac | Broker | None = None, refresh: float = REFRESH) -> None:
        self._source = source
        self.refresh = refresh
        self._paused: frozenset[str] = frozenset()
        self._read_at = float("-inf")
        self._supported = True

    def _broker(self, broker: Broker | None) -> Broker:
        if broker is not None:
            return broker
        source = self._source
        if source is None:
            raise ValueError("PausedQueues needs a broker: pass one to paused()")
        return source if isinstance(source, Broker) else source.broker

    def paused(self, broker: Broker | None = None) -> frozenset[str]:
        """The paused queues, as of at most ``refresh`` seconds ago."""
        now = time.monotonic()
        if self._supported and now - self._read_at >= self.refresh:
            self._read_at = now  # concurrent callers: one reads, the others use the last set
            try:
                source = self._broker(broker)
                if source.flags is None:
                    self._supported = False  # this broker has no flags: nothing is ever paused
                else:
                    self._paused = frozenset(paused_queues(source))
            except Exception as exc:  # the broker is away: keep the last known state
                logger.debug("cannot read paused queues: %r", exc)
        return self._paused

    def open_queues(self, queues: Sequence[str], broker: Broker | None = None) -> list[str]:
        """Those of ``queues`` that are not paused, in the same order."""
        paused = self.paused(broker)
        return [q for q in queues if q not in paused] if paused else list(queues)

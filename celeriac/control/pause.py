"""Pausing queues for the whole cluster.

A paused queue keeps its messages and takes new ones; no worker fetches from
it or starts one of its messages until it is resumed. The state is the broker
flag ``paused:<queue>``, so it holds across worker restarts and for workers
started later.

Consumers ask :class:`PausedQueues` which of their queues are open before each
fetch, and again before starting each message they hold (one they prefetched
before the pause, or that a fetch begun before it returned). Its answer comes
from a read of the flags *begun* at most ``REFRESH`` seconds earlier: one small
read per ``REFRESH`` per consumer process, nothing per message. So
:func:`pause_queue` returns ``REFRESH`` (plus a margin) after the flag is
written: from then on no consumer starts a message of that queue. The bound
holds while consumers can read the flags; a consumer cut off from the broker
keeps its last answer (and cannot fetch either).
"""

from __future__ import annotations

import logging
import threading
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
REFRESH = 0.5  # seconds between two reads of the paused flags
SETTLE_MARGIN = 0.05  # added to REFRESH before pause_queue returns (timer granularity)


def _flags(broker: Broker) -> Flags:
    return require(broker, broker.flags, "flags", "pausing queues")


def pause_queue(broker: Broker, queue: str, by: str = "", wait: bool = True) -> None:
    """Stop every worker fetching from ``queue``, or starting its messages, until
    :func:`resume_queue`.

    Returns once the pause holds everywhere (about ``REFRESH`` seconds: see the
    module doc); ``wait=False`` returns as soon as the flag is written.
    """
    if not queue:
        raise ValueError("pause needs a queue name")
    info = orjson.dumps({"since": time.time(), "by": by}).decode()
    _flags(broker).set(PAUSED_PREFIX + queue, info)
    if wait:
        time.sleep(REFRESH + SETTLE_MARGIN)  # every consumer's answer is now newer


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
        self._as_of = float("-inf")  # when the read that gave ``_paused`` began (monotonic)
        self._retry_at = float("-inf")  # after a failed read: not before this
        self._lock = threading.Lock()  # one read at a time; the others wait for its answer
        self._supported = True

    def _broker(self, broker: Broker | None) -> Broker:
        if broker is not None:
            return broker
        source = self._source
        if source is None:
            raise ValueError("PausedQueues needs a broker: pass one to paused()")
        return source if isinstance(source, Broker) else source.broker

    def paused(self, broker: Broker | None = None) -> frozenset[str]:
        """The paused queues, from a read begun at most ``refresh`` seconds ago.

        While the broker cannot be read, the last known set (read again at most
        once per ``refresh``).
        """
        now = time.monotonic()
        if not self._supported or now - self._as_of < self.refresh or now < self._retry_at:
            return self._paused
        with self._lock:
            began = time.monotonic()
            if began - self._as_of < self.refresh or began < self._retry_at:
                return self._paused  # another thread read while this one waited
            try:
                source = self._broker(broker)
                if source.flags is None:
                    self._supported = False  # this broker has no flags: nothing is ever paused
                else:
                    self._paused = frozenset(paused_queues(source))
                    self._as_of = began
            except Exception as exc:  # the broker is away: keep the last known state
                self._retry_at = began + self.refresh
                logger.debug("cannot read paused queues: %r", exc)
        return self._paused

    def open_queues(self, queues: Sequence[str], broker: Broker | None = None) -> list[str]:
        """Those of ``queues`` that are not paused, in the same order."""
        paused = self.paused(broker)
        return [q for q in queues if q not in paused] if paused else list(queues)

"""Threads that publish at the same moment share one broker round trip.

A web server's threads each call ``delay()``; one at a time, each call is one
round trip, and eight threads spend most of their time waiting on their own
sockets. Here the first thread to publish sends at once (an uncontended call
costs two lock round trips more, nothing else); a thread that publishes while
another's call is in flight queues its envelopes and waits. When the call in
flight returns, the next waiting thread sends everything queued meanwhile in
one broker call (one script, one transaction, one confirm batch, whatever the
broker's batch is), then hands over to the next. So under contention a round
trip carries many tasks, and nothing waits longer than the call in flight plus
its own.

Each batch is one ``Broker.publish``: the broker's own all-or-nothing and
retry rules apply to it, and an error reaches every thread whose envelopes it
carried.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .brokers.base import Broker
    from .message import Envelope

MAX_BATCH = 500  # envelopes per shared call


class _Waiting:
    """A thread's envelopes, queued while another thread's call is in flight."""

    __slots__ = ("envelopes", "error", "lead", "turn")

    def __init__(self, envelopes: Sequence[Envelope]) -> None:
        self.envelopes = envelopes
        self.error: BaseException | None = None
        self.lead = False  # woken to send the next batch itself
        self.turn = threading.Lock()
        self.turn.acquire()  # released when sent, or when it is this thread's turn to lead


class SharedPublisher:
    """One per app and process: coalesces concurrent publishes (see the module docstring)."""

    def __init__(self) -> None:
        self._reset()
        _ALL.add(self)

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._waiting: list[_Waiting] = []
        self._busy = False  # a call is in flight

    def publish(self, broker: Broker, envelopes: Sequence[Envelope]) -> None:
        with self._lock:
            mine = _Waiting(envelopes) if self._busy else None
            if mine is None:
                self._busy = True
            else:
                self._waiting.append(mine)
        if mine is None:  # nothing in flight, so nobody waiting: send at once
            return self._send(broker, envelopes, [])
        mine.turn.acquire()
        if mine.lead:
            with self._lock:
                riders = self._waiting[:MAX_BATCH]
                del self._waiting[:MAX_BATCH]
            return self._send(broker, envelopes, riders)
        if mine.error is not None:
            raise mine.error

    def _send(self, broker: Broker, own: Sequence[Envelope], riders: list[_Waiting]) -> None:
        """Send ``own`` with the riders', tell their threads, hand over to the next."""
        envelopes = [*own, *(e for rider in riders for e in rider.envelopes)] if riders else own
        error: BaseException | None = None
        try:
            broker.publish(envelopes)
        except BaseException as exc:
            error = exc
            raise
        finally:
            for rider in riders:
                rider.error = error
                rider.turn.release()
            with self._lock:
                if self._waiting:
                    following = self._waiting.pop(0)
                    following.lead = True
                    following.turn.release()
                else:
                    self._busy = False


_ALL: weakref.WeakSet[SharedPublisher] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    """The parent's threads and calls in flight are not the child's: start afresh."""
    for publisher in list(_ALL):
        publisher._reset()


os.register_at_fork(after_in_child=_after_fork_in_child)

__all__ = ["SharedPublisher"]

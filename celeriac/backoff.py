"""Exponential backoff, written once: the delays between attempts, growing to a cap.

Two shapes of the same rule, ``first * factor**attempt``, capped:

* :func:`exponential` is the delay before one attempt, from its number (a task's
  retry countdown, a crashing child's restart, a deadlocked transaction);
* :class:`Backoff` walks the delays one call at a time, for a loop that waits,
  tries again, and starts over after a success (reconnecting, polling).

With ``jitter`` the delay is drawn uniformly between 0 and the computed delay
("full jitter"), so many clients that failed together do not retry together.
"""

from __future__ import annotations

import math
import random
import time


def exponential(
    attempt: int,
    first: float,
    cap: float = math.inf,
    factor: float = 2.0,
    jitter: bool = False,
) -> float:
    """The delay before retry number ``attempt`` (0 for the first): ``first *
    factor**attempt``, at most ``cap``, drawn from ``[0, delay]`` with ``jitter``."""
    delay = min(float(cap), float(first) * factor**attempt)
    return random.uniform(0, delay) if jitter else delay


class Backoff:
    """The delays of a retry loop: ``first``, then ``factor`` times the last, up to ``cap``.

    ``next()`` gives the delay to wait now; ``reset()`` starts over after a success;
    ``sleep()`` waits the next delay, no longer than what is left of a deadline.
    """

    __slots__ = ("_next", "cap", "factor", "first")

    def __init__(self, first: float, cap: float, factor: float = 2.0) -> None:
        self.first, self.cap, self.factor = first, cap, factor
        self._next = first

    def next(self) -> float:
        """The delay to wait before the next attempt; the one after grows."""
        delay = self._next
        self._next = min(delay * self.factor, self.cap)
        return delay

    def reset(self) -> None:
        """An attempt worked: the next failure waits ``first`` again."""
        self._next = self.first

    def sleep(self, remaining: float = math.inf) -> None:
        """Sleep the next delay, or ``remaining`` seconds if that is less (never < 0)."""
        time.sleep(max(0.0, min(self.next(), remaining)))


__all__ = ["Backoff", "exponential"]

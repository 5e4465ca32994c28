"""The broker going away is an outage, not a failure: log it once, back off, resume."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from ..backoff import Backoff

logger = logging.getLogger("celeriac.worker")

FIRST_DELAY = 0.1
MAX_DELAY = 5.0


class Outage:
    """Tracks one connection's outage: logs its start and end once, paces the retries."""

    def __init__(self, what: str, stopping: Callable[[], bool] = lambda: False) -> None:
        self.what = what  # e.g. "consumer celeriac@web1/123/0"
        self.stopping = stopping  # a plain flag check: safe to set from a signal handler
        self.since: float | None = None
        self._backoff = Backoff(FIRST_DELAY, cap=MAX_DELAY)

    def noted(self, exc: BaseException) -> None:
        """A broker call failed: log it if it is the first failure of this outage."""
        if self.since is None:
            self.since = time.monotonic()
            logger.error("%s: broker unavailable, retrying with backoff: %s", self.what, exc)

    def failed(self, exc: BaseException) -> None:
        """A broker call failed: note it, then wait (exponential, capped).

        Returns early when ``stopping()``, so shutdown is not delayed by an outage.
        """
        self.noted(exc)
        delay = self._backoff.next()
        until = time.monotonic() + delay
        while not self.stopping() and time.monotonic() < until:
            time.sleep(min(0.05, delay))

    def succeeded(self) -> None:
        """A broker call worked: log the recovery once."""
        if self.since is not None:
            logger.warning(
                "%s: broker reachable again after %.1fs, resuming",
                self.what,
                time.monotonic() - self.since,
            )
            self.since = None
            self._backoff.reset()

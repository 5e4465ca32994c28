"""SIGTERM and SIGINT for the in-process pools: the first is warm, the second cold.

Warm: stop fetching, let running tasks finish (up to ``worker_shutdown_timeout``),
give back prefetched messages. Cold: stop now; whatever the worker holds, the
running tasks' messages included, is handed back to the broker at once.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from typing import Any

logger = logging.getLogger("celeriac.worker")

SHUTDOWN_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class ColdShutdown(BaseException):
    """Raised in the main thread by a second shutdown signal (like KeyboardInterrupt)."""


class ShutdownSignals:
    """Counts shutdown signals and calls the pool back; handlers only set flags."""

    def __init__(
        self,
        on_warm: Callable[[], None],
        on_cold: Callable[[], None] | None = None,
        timeout: float = 60.0,
    ) -> None:
        self.on_warm = on_warm
        self.on_cold = on_cold
        self.timeout = timeout
        self.count = 0
        self._old: dict[int, Any] = {}

    @property
    def warm(self) -> bool:
        return self.count >= 1

    @property
    def cold(self) -> bool:
        return self.count >= 2

    def install(self) -> None:
        """Handle SIGTERM and SIGINT; only the main thread can (a worker run in another
        thread, as :mod:`celeriac.testing` runs one, is stopped with :meth:`stop`)."""
        if threading.current_thread() is not threading.main_thread():
            return
        self._old = {s: signal.signal(s, self._handle) for s in SHUTDOWN_SIGNALS}

    def stop(self) -> None:
        """A warm shutdown asked by code rather than a signal; asking again does nothing."""
        if self.count == 0:
            self.count = 1
            self.on_warm()

    def restore(self) -> None:
        for signum, handler in self._old.items():
            signal.signal(signum, handler)
        self._old = {}

    def _handle(self, signum: int, frame: object) -> None:
        self.count += 1
        if self.count == 1:
            logger.warning(
                "warm shutdown: finishing running tasks (up to %.0fs); signal again "
                "for a cold shutdown",
                self.timeout,
            )
            self.on_warm()
        elif self.count == 2:
            logger.warning("cold shutdown: handing back every message now")
            if self.on_cold is not None:
                self.on_cold()

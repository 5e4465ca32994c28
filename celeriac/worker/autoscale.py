"""``worker --autoscale=MAX,MIN``: a prefork pool that grows with its queues' depth.

Once a second the autoscaler looks at the worker's queues: the pool should have
a child for each message its children hold (running or prefetched) and each
message waiting in its queues, between MIN and MAX. It
grows at once; it shrinks only after the pool has been larger than needed for
``worker_autoscale_keepalive`` seconds (30 by default, as Celery's), and a
retiring child finishes its running task first.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from ..exceptions import CeleriacError, ConfigurationError

if TYPE_CHECKING:
    from ..app import Celeriac
    from ..brokers.base import Broker
    from .pool import Pool
    from .state import WorkerState

logger = logging.getLogger("celeriac.worker")
INTERVAL = 1.0


def parse_autoscale(value: str) -> tuple[int, int]:
    """``"10,3"`` -> (10, 3); ``"10"`` -> (10, 0) as in Celery; a clear error otherwise."""
    parts = [p.strip() for p in value.split(",")]
    if not 1 <= len(parts) <= 2 or not all(p.isdigit() for p in parts):
        raise ConfigurationError(f"--autoscale={value!r}: use MAX,MIN (two whole numbers)")
    high, low = int(parts[0]), int(parts[1]) if len(parts) == 2 else 0
    if high < 1 or low > high:
        raise ConfigurationError(
            f"--autoscale={value!r}: MAX must be at least 1 and MIN at most MAX"
        )
    return high, max(low, 1)  # a worker keeps one child


class Autoscaler(threading.Thread):
    """Grows and shrinks ``pool`` between ``low`` and ``high`` children."""

    def __init__(
        self,
        app: Celeriac,
        pool: Pool,
        state: WorkerState,
        queues: tuple[str, ...],
        bounds: tuple[int, int],
        size: int,
    ) -> None:
        super().__init__(name="celeriac-autoscale", daemon=True)
        self.app, self.pool, self.state, self.queues = app, pool, state, queues
        self.high, self.low = bounds
        self.size = size  # the pool's size as this autoscaler made it
        self.keepalive = float(app.conf.worker_autoscale_keepalive)
        self._needed_at = time.monotonic()  # when the pool last needed its size
        self._stopping = threading.Event()
        self._broker: Broker | None = None

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        self._broker = self.app.connect_broker()
        try:
            while not self._stopping.wait(INTERVAL):
                try:
                    self.step()
                except (CeleriacError, OSError) as exc:  # an outage, a pool not ready: next time
                    logger.warning("autoscale: %s", exc)
        finally:
            self._broker.close()

    def wanted(self) -> int:
        """A child per message held (running or prefetched) or waiting, within the bounds."""
        assert self._broker is not None
        waiting = sum(self._broker.stats(queue).total_waiting for queue in self.queues)
        return max(self.low, min(self.high, self.state.held + waiting))

    def step(self) -> None:
        wanted, now = self.wanted(), time.monotonic()
        if wanted >= self.size:
            self._needed_at = now
        if wanted > self.size:
            self.pool.grow(wanted - self.size)
            logger.info("autoscale: %d -> %d children", self.size, wanted)
            self.size = wanted
        elif wanted < self.size and now - self._needed_at >= self.keepalive:
            retiring = self.pool.shrink(self.size - wanted)
            logger.info("autoscale: %d -> %d children", self.size, self.size - retiring)
            self.size -= retiring
            self._needed_at = now

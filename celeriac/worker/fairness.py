"""Fair dispatch inside a worker: no message waits in one slot's reserve while a sibling idles.

Each consumer fetches for itself (no parent-to-child pipe on the hot path), so a
consumer that prefetched a batch holds messages its siblings cannot see. Left
alone, that is Celery's prefetch hoarding: one child runs a long task with
three messages queued behind it while the child next to it waits on an empty
queue. Three rules keep the reserve honest, cheapest first:

1. **Fetch one when a batch would hoard.** A consumer with siblings asks for a
   full batch (``worker_prefetch_multiplier``) only when the queue looked deep
   (its last fetch found work at once) and a batch of its recent tasks is short
   work (at most :data:`BATCH_WORK` seconds: a batch saves a round trip per
   message, which matters only when a task costs about as much). Otherwise it
   asks for one message: long tasks and shallow queues are spread one by one,
   which also keeps messages free for other workers, here or on other
   machines, whom no watcher can give back to. A consumer's first fetch knows
   nothing yet and asks for at most :data:`FIRST_BATCH` (a backlog at start is
   shared out as with Celery's default); what that hoards, rule 2 gives back.
   Whether a sibling waits is left to rule 2, which can ask the queue: a
   sibling whose fetch is merely slow (a broker setting up a subscription)
   looks the same from here as one that found nothing.
2. **Give back what a waiting sibling could run.** Whatever rule 1 let through
   (a short task followed by a long one, a sibling that finished right after a
   batch was taken) is caught by a watcher thread beside each consumer that
   holds a batch: while its consumer runs a task and a sibling has been
   waiting longer than :data:`WAIT_GRACE` with nothing as urgent left in the
   queue for it, it hands the unstarted messages back to the broker,
   uncounted, where the waiting sibling's fetch takes them. The
   watcher polls the :class:`Board` every :data:`WATCH_TICK` and sleeps while
   its consumer holds no batch, so the hot path pays nothing for it.
3. **Priorities stay strict.** A batch runs highest priority first, and what
   is given back returns to its queue with its priority, so the broker's order
   decides again.

The watcher also bounds how long a finished task's ack waits: a consumer
running a batch lets each ack travel with its next broker call (usually the
next fetch, see :meth:`~celeriac.brokers.base.Broker.ack_soon`), and every
tick the watcher sends what still waits, so a long task after a short one
delays the short one's ack by at most :data:`WATCH_TICK`.

The alternatives were weighed: a reserve held by the supervisor and handed to
children needs a pipe on the hot path; an idle child stealing from a sibling's
reserve needs the reserve in shared memory and a cross-process lock around
each start. Giving back from the owner's side needs neither: the owner's
consumer and its watcher both take from the same deque with atomic ``pop`` and
``popleft``, so each message is either started or given back, never both.

The :class:`Board` is one number per slot, the monotonic time since which the
slot's consumer has been looking for work and held nothing (0 while it holds
work; a consumer still starting has not looked yet), in shared memory made
before prefork children are forked, so each consumer reads its siblings with no
message to anyone. Slots beyond its capacity (a pool grown far past its start
size) run and fetch as usual but are invisible to their siblings.
"""

from __future__ import annotations

import ctypes
import logging
import threading
import time
from collections.abc import Callable
from multiprocessing.sharedctypes import RawArray
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..brokers.base import Broker
    from ..message import Delivery

logger = logging.getLogger("celeriac.worker")

WAIT_GRACE = 0.02  # idle this long = waiting for work, not just between two fetches
WATCH_TICK = 0.02  # how often a watcher looks at its siblings while its consumer holds a batch
RECHECK = 0.1  # after the queue could feed a waiting sibling, ask again this much later
SHORT_TASK = 0.05  # seconds: a task this long or longer is fetched alone
BATCH_WORK = 0.2  # seconds of work (measured mean runtime x batch) a full batch may hold
FIRST_BATCH = 4  # at most this many before any task has run
_RUNTIME_WEIGHT = 0.3  # of the newest runtime in the moving average
_ABSENT = -1.0


class Board:
    """Since when each slot's consumer has held no message.

    ``-1.0``: no consumer in that slot; ``0.0``: it holds work; otherwise the
    monotonic time since which it has held nothing. Each slot writes only its own
    entry, so a reader needs no lock: at worst it sees a value a moment old.
    """

    def __init__(self, capacity: int, shared: bool) -> None:
        self.capacity = capacity
        self._since: Any = (
            RawArray(ctypes.c_double, capacity) if shared else (ctypes.c_double * capacity)()
        )
        for index in range(capacity):
            self._since[index] = _ABSENT

    @classmethod
    def for_pool(cls, concurrency: int, shared: bool) -> Board:
        """Room for the pool to grow to twice its size (at least 16 slots)."""
        return cls(max(16, 2 * concurrency), shared)

    def idle(self, index: int) -> None:
        """The slot holds nothing now (kept from the first call until :meth:`busy`)."""
        if index < self.capacity and self._since[index] <= 0.0:
            self._since[index] = time.monotonic()

    def busy(self, index: int) -> None:
        """The slot holds work."""
        if index < self.capacity:
            self._since[index] = 0.0

    def leave(self, index: int) -> None:
        """The slot's consumer stopped (or died): it waits for nothing."""
        if index < self.capacity:
            self._since[index] = _ABSENT

    def has_siblings(self, index: int) -> bool:
        """Whether another slot has a consumer."""
        return any(t >= 0.0 for i, t in enumerate(self._since[:]) if i != index)

    def others_waiting(self, index: int) -> bool:
        """Whether another slot has held nothing for longer than :data:`WAIT_GRACE`."""
        cutoff = time.monotonic() - WAIT_GRACE
        return any(0.0 < t < cutoff for i, t in enumerate(self._since[:]) if i != index)


class BatchSizer:
    """Rule 1 of the module doc: how many messages one consumer asks for next."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.mean_runtime = 0.0
        self.ran_any = False
        self.queue_deep: bool | None = None  # the last fetch found work at once; None: unknown

    def next_limit(self, board: Board | None, index: int) -> int:
        mean = self.mean_runtime
        if self.limit <= 1 or mean > SHORT_TASK or mean * self.limit > BATCH_WORK:
            return 1
        full = self.limit if self.ran_any else min(self.limit, FIRST_BATCH)
        if board is None or not board.has_siblings(index):
            return full  # alone in its worker: nobody here to hoard from
        return 1 if self.queue_deep is False else full

    def fetched(self, count: int, seconds: float) -> None:
        self.queue_deep = count > 0 and seconds < WAIT_GRACE

    def ran(self, seconds: float) -> None:
        if not self.ran_any:
            self.mean_runtime, self.ran_any = seconds, True
        else:
            self.mean_runtime += _RUNTIME_WEIGHT * (seconds - self.mean_runtime)


class Holder(Protocol):
    """What a watcher needs of its consumer."""

    consumer_id: str
    in_task: bool

    def take_reserve(self) -> list[Delivery]:
        """Remove and return the unstarted messages (each one either here or started)."""
        ...

    def restore_reserve(self, deliveries: list[Delivery]) -> None:
        """Put back messages :meth:`take_reserve` returned, to run them after all."""
        ...

    def reserved_deliveries(self) -> list[Delivery]:
        """A copy of the unstarted messages, in the order they will run."""
        ...

    def flush_acks(self) -> None:
        """Send the acks of finished tasks that wait for the consumer's next fetch."""
        ...


class ReserveWatcher:
    """Rule 2 of the module doc, for one consumer: a thread that gives its batch back."""

    def __init__(
        self, holder: Holder, board: Board, index: int, connect: Callable[[], Broker]
    ) -> None:
        self.holder = holder
        self.board = board
        self.index = index
        self._connect = connect
        self._broker: Broker | None = None  # its own connection, made on first use
        self._holding = threading.Event()  # set while the consumer may hold unstarted ones
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self.given_back = 0  # messages handed back so far, for tests and stats
        self._ask_again_at = 0.0  # after the queue could feed the waiting sibling itself

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name=f"celeriac-reserve-{self.index}", daemon=True
        )
        self._thread.start()

    def watch(self) -> None:
        """The consumer just took messages: look after what it holds behind the first.

        Also after a fetch of one: a pushing broker (RabbitMQ) may have filled the
        consumer's window while an earlier fetch asked for more, and those messages
        wait behind the running task as surely as a batch does.
        """
        self._holding.set()

    def unwatch(self) -> None:
        """The consumer holds no batch now (it is about to fetch again)."""
        self._holding.clear()

    def stop(self) -> None:
        self._stopped.set()
        self._holding.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(1.0)
        if self._broker is not None:
            try:
                self._broker.close()
            except Exception:
                logger.debug("closing the reserve watcher's broker failed", exc_info=True)

    def _run(self) -> None:
        while True:
            self._holding.wait()
            if self._stopped.wait(WATCH_TICK):
                return
            if self._holding.is_set():
                self.holder.flush_acks()
            if (
                self._holding.is_set()
                and self.holder.in_task
                and time.monotonic() >= self._ask_again_at
                and self.board.others_waiting(self.index)
                and self._sibling_finds_nothing_as_urgent()
                and self.board.others_waiting(self.index)  # still, after that round trip
            ):
                self._give_back()

    def _sibling_finds_nothing_as_urgent(self) -> bool:
        """Whether the queues of the reserve hold nothing waiting of its top priority or
        above: then the waiting sibling gets work only if this reserve is given back.

        Otherwise the sibling is about to take that work itself (it is only slow: a
        broker still setting up its subscription, say), and handing the reserve back
        would only send it round. Asked only while a sibling waits and this consumer
        holds a batch; at most every :data:`RECHECK` after a "no".
        """
        reserve = self.holder.reserved_deliveries()
        top = max((d.priority for d in reserve), default=0)
        queues = {d.queue for d in reserve}
        try:
            if self._broker is None:
                self._broker = self._connect()
            for queue in queues:
                waiting = self._broker.stats(queue).waiting
                if any(count and priority >= top for priority, count in waiting.items()):
                    self._ask_again_at = time.monotonic() + RECHECK
                    return False
        except Exception as exc:
            logger.debug("consumer %s: queue stats failed: %r", self.holder.consumer_id, exc)
            self._ask_again_at = time.monotonic() + RECHECK
            return False
        return True

    def _give_back(self) -> None:
        self._holding.clear()
        reserve = self.holder.take_reserve()
        consumer = self.holder.consumer_id
        try:
            if self._broker is None:
                self._broker = self._connect()
            if reserve:
                self._broker.release(consumer, [d.tag for d in reserve], count=False)
        except Exception as exc:
            self.holder.restore_reserve(reserve)  # its consumer runs them after all
            logger.warning(
                "consumer %s: %d prefetched messages could not be given back to an idle "
                "sibling (%r); it runs them itself",
                consumer,
                len(reserve),
                exc,
            )
            return
        try:
            # A pushing broker (RabbitMQ) may hold more for this consumer inside its
            # window: a fetch of no queues closes the window and gives those back too.
            self._broker.fetch([], consumer, 1, 0.0)
        except Exception:
            logger.debug("consumer %s: closing its window failed", consumer, exc_info=True)
        self.given_back += len(reserve)
        if reserve:
            logger.debug(
                "consumer %s gave back %d prefetched messages: a sibling was idle",
                consumer,
                len(reserve),
            )


__all__ = [
    "BATCH_WORK",
    "FIRST_BATCH",
    "SHORT_TASK",
    "WAIT_GRACE",
    "WATCH_TICK",
    "BatchSizer",
    "Board",
    "Holder",
    "ReserveWatcher",
]

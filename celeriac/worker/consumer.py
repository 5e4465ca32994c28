"""The consumer loop every pool runs: fetch a batch, run it by priority, repeat.

A consumer owns one broker and one backend connection and one ``consumer_id``
(``node/pid/slot``): what the broker records as the holder of every message it
fetched. It holds at most ``limit`` messages, the running one included, and
fetches again only when it has started them all, in one broker round trip per
batch. Within a batch the highest priority runs first, FIFO among equals. How
large a batch it asks for, and how it gives back what a sibling slot could run
while it is busy, is :mod:`celeriac.worker.fairness`.

On a warm stop it finishes the running task and gives back the unstarted ones
at once, uncounted. When the broker is unreachable it logs the outage once,
backs off and carries on by itself.
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Collection, Coroutine
from typing import TYPE_CHECKING, Any, Protocol

from .. import states
from ..brokers.wake import Wake
from ..control.state_handle import fetch_open, paused_since_fetch
from . import roundtrips
from .coroutines import run_limited
from .fairness import BatchSizer, Board, ReserveWatcher
from .job import Executor, Job
from .outage import Outage
from .timelimits import ASYNC_KILL_GRACE, limits_for

if TYPE_CHECKING:
    from ..app import Celeriac
    from ..backends.base import Backend
    from ..brokers.base import Broker
    from ..message import Delivery
    from .options import WorkerOptions
    from .slots import Slot

logger = logging.getLogger("celeriac.worker")


class TaskTimer(Protocol):
    """How a pool delivers time limits to a sync task running in this thread."""

    def arm(self, soft: float | None, hard: float | None) -> None: ...

    def disarm(self) -> None: ...


class NoTimer:
    """For pools whose limits are enforced from outside the consumer's thread."""

    def arm(self, soft: float | None, hard: float | None) -> None:
        pass

    def disarm(self) -> None:
        pass


class Consumer:
    """Fetches and runs messages for one pool slot."""

    def __init__(
        self,
        app: Celeriac,
        options: WorkerOptions,
        consumer_id: str,
        slot: Slot,
        timer: TaskTimer | None = None,
        max_tasks: int | None = None,
        max_memory_kib: int | None = None,
        on_ready: Callable[[], None] | None = None,
        board: Board | None = None,
    ) -> None:
        self.app = app
        self.options = options
        self.consumer_id = consumer_id
        self.slot = slot
        self.timer = timer or NoTimer()
        self.max_tasks = max_tasks  # recycling: only a process that can be replaced sets these
        self.max_memory_kib = max_memory_kib
        self.on_ready = on_ready
        self.limit = options.prefetch_per_consumer
        self.stopping = False  # a plain flag: signal handlers set it
        self.wake = Wake()  # ends an idle fetch's wait when stopping (signal-safe)
        self.exhausted = False  # max tasks or memory reached: the process should be replaced
        self.abandoned = False  # a watchdog gave up on the running task (threads pool)
        self.in_task = False
        self.parent_pid: int | None = None  # a prefork child stops when its parent is gone
        self.lock = threading.Lock()  # decides who settles a running task: us or a watchdog
        self.broker: Broker | None = None
        self.backend: Backend | None = None
        self.executor: Executor | None = None
        self._buffer: deque[Delivery] = deque()
        self.fetched_at: float | None = None  # when the messages in the buffer were fetched
        self._done = 0
        self._coro_limits: tuple[float | None, float | None] = (None, None)
        self._loop: asyncio.AbstractEventLoop | None = None
        self.outage = Outage(f"consumer {consumer_id}", lambda: self.stopping)
        self.board = board  # what its sibling slots hold (fair dispatch)
        self.sizer = BatchSizer(self.limit)
        self.watcher = (
            ReserveWatcher(self, board, slot.index, app.connect_broker)
            if board is not None and self.limit > 1
            else None
        )

    def stop(self) -> None:
        """Warm stop: finish the running task, give back the rest. Signal-safe."""
        self.stopping = True
        self.wake.set()  # an idle consumer is waiting in its fetch: end the wait now

    # -- the loop ---------------------------------------------------------------------
    def run(self) -> None:
        """Consume until stopped; connections are made here, in the running thread."""
        self.broker = roundtrips.timed(self.app.connect_broker())
        self.backend = self.app.connect_backend()
        self.executor = Executor(
            self.app,
            self.options.hostname,
            self.consumer_id,
            self.broker,
            self.backend,
            on_start=self._on_start,
            on_finish=self._on_finish,
            run_coroutine=self._run_coroutine,
        )
        # The reserve watcher flushes what waits every WATCH_TICK while a batch runs.
        self.executor.acks_may_wait = self.watcher is not None
        self.slot.mark_ready()
        if self.watcher is not None:
            self.watcher.start()
        if self.on_ready is not None:
            self.on_ready()
        try:
            while not self.stopping and not self.abandoned:
                if self._buffer:
                    self._handle(self._buffer.popleft())
                else:
                    self._fetch()
        except BaseException:  # a cold shutdown: hand back everything, the running one too
            self._give_back()
            self._release_all()
            raise
        finally:
            if self.watcher is not None:
                self.watcher.stop()
            self._give_back()
            if self.board is not None and not self.abandoned:
                self.board.leave(self.slot.index)
            self._close()

    def reserved_deliveries(self) -> list[Delivery]:
        """The prefetched messages not started yet, in the order they will run.

        Safe from another thread: the copy is taken in one step under the GIL.
        """
        return list(self._buffer)

    def held_unstarted(self) -> list[tuple[Delivery, float | None]]:
        """What ``inspect reserved`` lists, each with when it was fetched: the prefetched
        messages, then those a pushing broker received for this consumer and has not handed
        to it yet (since when is not known). Safe from another thread."""
        broker = self.broker
        pushed = broker.pushed(self.consumer_id) if broker is not None else []
        since = self.fetched_at
        return [(d, since) for d in list(self._buffer)] + [(d, None) for d in pushed]

    def flush_acks(self) -> None:
        """Send the acks that wait for this consumer's next broker call (another thread)."""
        broker = self.broker
        if broker is None:
            return
        try:
            broker.flush_acks()
        except Exception as exc:  # the consumer's own next call meets the outage too
            logger.debug("consumer %s: sending acks failed: %r", self.consumer_id, exc)

    def drop_buffer(self) -> None:
        """Forget prefetched messages without giving them back (a watchdog did)."""
        self._buffer.clear()

    def take_reserve(self) -> list[Delivery]:
        """Remove the unstarted messages; safe against this consumer's own loop.

        The loop starts messages with ``popleft`` and this takes them with ``pop``:
        both are atomic, so each message is either started or taken, never both.
        """
        taken: list[Delivery] = []
        while True:
            try:
                taken.append(self._buffer.pop())
            except IndexError:
                break
        taken.reverse()
        return taken

    def restore_reserve(self, deliveries: list[Delivery]) -> None:
        """Put back what :meth:`take_reserve` returned, in front, in order."""
        self._buffer.extendleft(reversed(deliveries))

    def give_back(self, ids: Collection[str]) -> list[str]:
        """Give back, uncounted, the unstarted messages of task ``ids`` (remote control:
        ``give_back``); the ids given back. Safe from another thread, as :meth:`take_reserve`
        is; released through a connection of its own, as the reserve watcher's."""
        own = self.broker
        pushed = {d.id for d in own.pushed(self.consumer_id)} if own is not None else set()
        reserve = self.take_reserve()
        chosen = [d for d in reserve if d.id in ids]
        self.restore_reserve([d for d in reserve if d.id not in ids])
        pushed = {task_id for task_id in ids if task_id in pushed}
        if not chosen and not pushed:
            return []
        broker = self.app.connect_broker()
        try:
            if chosen:
                broker.release(self.consumer_id, [d.tag for d in chosen], count=False)
        except Exception:
            self.restore_reserve(chosen)  # still ours: it runs them after all
            broker.close()
            raise
        try:
            # A pushing broker (RabbitMQ) would send them straight back to this consumer's
            # window: a fetch of no queues closes it and gives back what it pushed there,
            # unstarted (the next fetch opens it again).
            broker.fetch([], self.consumer_id, 1, 0.0)
        finally:
            broker.close()
        return [d.id for d in chosen] + sorted(pushed - {d.id for d in chosen})

    def _fetch(self) -> None:
        assert self.broker is not None
        if self.parent_pid is not None and os.getppid() != self.parent_pid:
            logger.error("consumer %s: the supervisor is gone, stopping", self.consumer_id)
            self.stopping = True
            return
        limit = self.sizer.next_limit(self.board, self.slot.index)
        if self.max_tasks is not None:  # do not take what this process will not run
            limit = max(1, min(limit, self.max_tasks - self._done))
        if self.board is not None:
            self.board.idle(self.slot.index)
        if self.watcher is not None:
            self.watcher.unwatch()
        began = time.monotonic()
        try:
            batch = fetch_open(self.broker, self.options, self.consumer_id, limit, self.wake)
        except ConnectionError as exc:  # BrokerUnavailable is one
            self.outage.failed(exc)
            return
        except Exception as exc:
            logger.exception("consumer %s: fetch failed", self.consumer_id)
            self.outage.failed(exc)
            return
        self.outage.succeeded()
        self.sizer.fetched(len(batch), time.monotonic() - began)
        if not batch:
            self.slot.record.held = 0
            return
        self.fetched_at = time.time()
        if self.board is not None:
            self.board.busy(self.slot.index)
        if len(batch) > 1:
            batch.sort(key=_by_priority)  # stable: FIFO within a priority
        self._buffer.extend(batch)
        self.slot.record.held = len(batch)
        if self.watcher is not None:  # also after a fetch of one: see ReserveWatcher.watch
            self.watcher.watch()

    def _handle(self, delivery: Delivery) -> None:
        assert self.executor is not None and self.broker is not None
        try:
            if paused_since_fetch(self.broker, self.options, delivery.queue):
                self._hold_back(delivery)
                return
            job = self.executor.prepare(delivery)
        except ConnectionError as exc:  # dead-lettering it failed: try again later
            self._buffer.appendleft(delivery)
            self.outage.failed(exc)
            return
        if job is None:
            return
        try:
            self.executor.run(job)
        except ConnectionError as exc:
            if not job.started_at:  # the broker went away before the task: run it later
                self._buffer.appendleft(delivery)
                self.outage.failed(exc)
                return
            self._fail(job, exc)
        except Exception as exc:  # a middleware bug, or a time limit landing as the task returned
            self._fail(job, exc)
        if self.abandoned:
            return  # the watchdog recorded this task's outcome
        if job.started_at:
            self.sizer.ran(job.runtime)
        self._finish(job)
        self._done += 1
        self.slot.record.held = len(self._buffer)
        self._check_limits()

    def _hold_back(self, delivery: Delivery) -> None:
        """Its queue was paused after it was fetched: give it back, and the rest of its
        queue in the reserve, unstarted."""
        assert self.broker is not None
        queue = delivery.queue
        reserve = self.take_reserve()
        same = [d for d in reserve if d.queue == queue]
        self.restore_reserve([d for d in reserve if d.queue != queue])
        try:
            self.broker.release(self.consumer_id, [delivery.tag, *(d.tag for d in same)])
        except Exception:
            self.restore_reserve(same)  # still ours: looked at again before each start
            raise
        logger.info(
            "consumer %s: queue %s was paused; %d fetched messages go back unstarted",
            self.consumer_id,
            queue,
            1 + len(same),
        )

    def _fail(self, job: Job, exc: Exception) -> None:
        if self.in_task:
            self._on_finish(job)
        job.exception, job.state = exc, states.FAILURE
        job.traceback = traceback.format_exc()
        job.finished_at = time.time()

    def _finish(self, job: Job) -> None:
        assert self.executor is not None
        finish_with_retry(self.executor, job, self.outage)

    def _check_limits(self) -> None:
        if self.max_tasks is not None and self._done >= self.max_tasks:
            logger.info(
                "consumer %s ran %d tasks (max tasks per child): replacing it",
                self.consumer_id,
                self._done,
            )
            self.exhausted = self.stopping = True
            return
        limit = self.max_memory_kib
        if limit is not None:
            used = resident_kib()
            if used > limit:
                logger.warning(
                    "consumer %s uses %d KiB, over max memory per child (%d KiB): replacing it",
                    self.consumer_id,
                    used,
                    limit,
                )
                self.exhausted = self.stopping = True

    def _release_all(self) -> None:
        if self.broker is None or self.abandoned:
            return
        try:
            self.broker.release_all(self.consumer_id)
        except Exception as exc:
            logger.error(
                "consumer %s: messages not handed back (%s); they return when their lease ends",
                self.consumer_id,
                exc,
            )

    def _give_back(self) -> None:
        if not self._buffer or self.broker is None or self.abandoned:
            return
        tags = [d.tag for d in self.take_reserve()]
        if not tags:  # the reserve watcher gave them back meanwhile
            return
        try:
            self.broker.release(self.consumer_id, tags, count=False)
        except Exception as exc:
            logger.error(
                "consumer %s: %d prefetched messages not given back (%s); they return "
                "when their lease ends",
                self.consumer_id,
                len(tags),
                exc,
            )

    def _close(self) -> None:
        for closable in (self.executor, self.broker, self.backend, self._loop):
            if closable is not None:
                try:
                    closable.close()
                except Exception:
                    logger.debug("closing %r failed", closable, exc_info=True)

    # -- around each task -------------------------------------------------------------
    def _on_start(self, job: Job) -> None:
        soft, hard = limits_for(job.task, self.options)
        deadline = None
        if job.task.is_async:
            self._coro_limits = (soft, hard)
            if hard is not None:
                deadline = time.monotonic() + hard + ASYNC_KILL_GRACE
        elif soft is not None or hard is not None:
            self.timer.arm(soft, hard)
            if hard is not None:
                deadline = time.monotonic() + hard
        self.in_task = True
        self.slot.begin(job, deadline)

    def _on_finish(self, job: Job) -> None:
        self.timer.disarm()
        with self.lock:
            self.in_task = False
        self.slot.end()

    def _run_coroutine(self, coro: Coroutine[Any, Any, Any], job: Job) -> Any:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        soft, hard = self._coro_limits
        return self._loop.run_until_complete(run_limited(coro, soft, hard))

    @property
    def processed(self) -> int:
        return self._done

    @property
    def held(self) -> int:
        """Messages this consumer holds now: the buffer plus the running one."""
        return len(self._buffer) + int(self.in_task)


def finish_with_retry(executor: Executor, job: Job, outage: Outage) -> None:
    """Store the outcome and ack; while the broker is away, keep trying (with backoff).

    Gives up only when the worker is stopping during the outage (the message is
    then delivered again: late ack means at least once). An outcome that cannot
    be stored at all (say, a result that cannot be serialized) sends the message
    to the dead letters with the reason, so it cannot block the queue.
    """
    assert executor.broker is not None and job.delivery is not None
    while True:
        try:
            executor.finish(job)
        except ConnectionError as exc:
            outage.failed(exc)
            if outage.stopping():
                logger.error(
                    "task %s: outcome not stored, the broker is unreachable; its "
                    "message will be delivered again",
                    job.message.id,
                )
                return
            continue
        except Exception as exc:
            logger.exception("task %s: its outcome cannot be stored", job.message.id)
            try:
                executor.broker.dead_letter(
                    executor.consumer_id,
                    job.delivery.tag,
                    f"worker could not store its outcome: {exc!r}",
                )
            except Exception:
                logger.exception("message %s could not be dead-lettered", job.message.id)
        else:
            outage.succeeded()
        return


def _by_priority(delivery: Delivery) -> int:
    return -delivery.priority


def resident_kib() -> int:
    """This process's resident memory in KiB (peak RSS where /proc is missing)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            pages = int(statm.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") // 1024
    except (OSError, ValueError, IndexError):
        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)

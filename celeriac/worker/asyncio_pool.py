"""asyncio: one event loop running up to N tasks at once.

``async def`` tasks run as coroutines on the loop; sync tasks run in a pool of
N threads. Broker and backend calls never block the loop: fetching runs in a
thread of its own (it may wait up to a second for messages) and everything
else (decode, middleware, storing results, acks) in a second one, each with its
own connections, since a connection belongs to one thread. One consumer holds
at most N x prefetch multiplier messages, running ones included.

Time limits: see :mod:`celeriac.worker.timelimits`.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import sys
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

from .. import states
from ..brokers.wake import Wake
from ..control.state_handle import fetch_open, paused_since_fetch
from ..exceptions import SoftTimeLimitExceeded, TaskRevokedError, TimeLimitExceeded
from ..request import reset_current_request, set_current_request
from .child import consumer_id
from .consumer import finish_with_retry
from .coroutines import run_limited
from .heartbeat import HeartbeatThread
from .job import Executor, Job
from .outage import Outage
from .pool import Pool
from .shutdown import SHUTDOWN_SIGNALS
from .slots import Slot
from .timelimits import limits_for, raise_in_thread

if TYPE_CHECKING:
    from ..app import Celeriac
    from ..brokers.base import Broker
    from ..message import Delivery
    from .options import WorkerOptions
    from .state import WorkerState

logger = logging.getLogger("celeriac.worker")
T = TypeVar("T")


class _ThreadCall:
    """A sync task run in a pool thread, which a time limit can interrupt."""

    def __init__(self, fn: Callable[[], Any], live: set[_ThreadCall]) -> None:
        self.fn = fn
        self.live = live  # the pool's set of calls in progress
        live.add(self)
        self.lock = threading.Lock()
        self.thread_id = 0
        self.finished = self.interrupted = False

    def __call__(self) -> Any:
        with self.lock:
            self.thread_id = threading.get_ident()
        try:
            return self.fn()
        finally:
            self.live.discard(self)
            with self.lock:
                self.finished = True
                if self.interrupted:  # too late for the task: drop it if still pending
                    raise_in_thread(self.thread_id, None)

    def interrupt(self, exc_type: type[BaseException]) -> None:
        with self.lock:
            if self.thread_id and not self.finished:
                self.interrupted = True
                raise_in_thread(self.thread_id, exc_type)


def _cancel_leftovers(loop: asyncio.AbstractEventLoop) -> None:
    """Coroutines abandoned at their hard limit get a second to end, not forever."""
    leftovers = asyncio.all_tasks(loop)
    for task in leftovers:
        task.cancel()
    if leftovers:
        loop.run_until_complete(asyncio.wait(leftovers, timeout=1.0))
    loop.run_until_complete(loop.shutdown_asyncgens())


def _ignore_outcome(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()  # retrieved, so asyncio does not log it


class AsyncioPool(Pool):
    """Runs the asyncio worker until shut down."""

    def __init__(
        self,
        app: Celeriac,
        options: WorkerOptions,
        state: WorkerState,
        announce: Callable[[str], None],
    ) -> None:
        super().__init__(app, options, state, announce)
        self.consumer_id = consumer_id(options.hostname, os.getpid(), 0)
        self.size = options.concurrency
        self.limit = options.prefetch_per_consumer
        self.stopping = False
        self._wake = Wake()  # ends the fetch thread's idle wait when stopping
        self._signals = 0
        self._buffer: deque[Delivery] = deque()
        self._running: dict[asyncio.Task[None], Slot] = {}
        self._free: list[Slot] = [Slot(i, shared=False) for i in reversed(range(self.size))]
        for slot in self._free:
            state.add_slot(slot)
        self._fetch_thread = ThreadPoolExecutor(1, thread_name_prefix="celeriac-fetch")
        self._io_thread = ThreadPoolExecutor(1, thread_name_prefix="celeriac-io")
        self._task_threads = ThreadPoolExecutor(self.size, thread_name_prefix="celeriac-task")
        self._calls: set[_ThreadCall] = set()  # sync tasks in threads, not yet returned
        self._fetch_broker: Broker | None = None
        self._executor: Executor | None = None
        self._changed: asyncio.Event | None = None
        self.outage = Outage(f"consumer {self.consumer_id}", lambda: self.stopping)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._calling: dict[str, asyncio.Task[Any]] = {}  # task id -> what runs it now
        self._terminated: set[str] = set()  # cancelled by remote control

    def run(self) -> int:
        heartbeat = HeartbeatThread(
            self.app, f"worker {self.options.hostname}", lambda: [self.consumer_id]
        )
        heartbeat.start()
        loop = self._loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._main())
            _cancel_leftovers(loop)
        finally:
            loop.close()
            heartbeat.stop_and_wait()
            for pool in (self._fetch_thread, self._io_thread):
                pool.shutdown(wait=True)
            self._task_threads.shutdown(wait=False, cancel_futures=True)
        in_main = threading.current_thread() is threading.main_thread()
        if self._calls and in_main:  # threads stuck past their limit or a cold shutdown
            logger.warning(
                "%d sync tasks still running in threads: exiting without them", len(self._calls)
            )
            logging.shutdown()
            os._exit(0)
        return 0

    # -- threads for blocking calls ----------------------------------------------------
    async def _io(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        ctx = contextvars.copy_context()  # middleware sees self.request
        return await loop.run_in_executor(self._io_thread, ctx.run, fn, *args)

    def _connect(self) -> None:  # in the io thread
        broker, backend = self.app.connect_broker(), self.app.connect_backend()
        self._executor = Executor(
            self.app, self.options.hostname, self.consumer_id, broker, backend
        )

    # -- the loop ------------------------------------------------------------------------
    async def _main(self) -> None:
        loop = asyncio.get_running_loop()
        self._changed = asyncio.Event()
        if threading.current_thread() is threading.main_thread():  # else: stop() ends it
            for signum in SHUTDOWN_SIGNALS:
                loop.add_signal_handler(signum, self._on_signal)
        await self._io(self._connect)
        self._fetch_broker = await loop.run_in_executor(self._fetch_thread, self.app.connect_broker)
        for hook in self.app.middleware.worker_start:
            hook(self.app, self.state)
        self.announce_ready(
            f"{self.options.hostname} ready: asyncio, up to {self.size} tasks at "
            f"once, consuming {', '.join(self.options.queues)}"
        )
        try:
            while not self.stopping:
                await self._step()
            await self._give_back()
            await self._drain()
        finally:
            for hook in self.app.middleware.worker_stop:
                hook(self.app, self.state)
            await self._close()

    async def _step(self) -> None:
        assert self._changed is not None
        while self._buffer and self._free:
            self._start(self._buffer.popleft())
        if not self._buffer and len(self._running) < self.size:
            await self._fetch(self.limit - len(self._running))
        else:
            self._changed.clear()
            await self._changed.wait()

    async def _fetch(self, limit: int) -> None:
        assert self._fetch_broker is not None
        loop = asyncio.get_running_loop()
        try:
            batch = await loop.run_in_executor(
                self._fetch_thread,
                fetch_open,
                self._fetch_broker,
                self.options,
                self.consumer_id,
                limit,
                self._wake,
            )
        except Exception as exc:
            if not isinstance(exc, ConnectionError):
                logger.exception("consumer %s: fetch failed", self.consumer_id)
            await loop.run_in_executor(None, self.outage.failed, exc)
            return
        self.outage.succeeded()
        batch.sort(key=lambda d: -d.priority)
        self._buffer.extend(batch)

    def _start(self, delivery: Delivery) -> None:
        slot = self._free.pop()
        task = asyncio.get_running_loop().create_task(self._process(delivery, slot))
        self._running[task] = slot
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._free.append(self._running.pop(task))
        if not task.cancelled() and task.exception() is not None:
            logger.error(
                "consumer %s: a message was not processed",
                self.consumer_id,
                exc_info=task.exception(),
            )
        assert self._changed is not None
        self._changed.set()

    # -- one message -------------------------------------------------------------------
    async def _process(self, delivery: Delivery, slot: Slot) -> None:
        executor = self._executor
        assert executor is not None
        job = await self._io(self._prepare, executor, delivery)
        if job is None:
            return
        token = set_current_request(job.request)
        try:
            if await self._io(executor.begin, job):
                await self._call(executor, job, slot)
                await self._io(executor.end, job)
        finally:
            reset_current_request(token)
        await self._io(finish_with_retry, executor, job, self.outage)

    def _prepare(self, executor: Executor, delivery: Delivery) -> Job | None:  # io thread
        """The job to run; None when there is none, or its queue was paused after it was
        fetched (then it goes back unstarted)."""
        broker = executor.broker
        assert broker is not None
        if not paused_since_fetch(broker, self.options, delivery.queue):
            return executor.prepare(delivery)
        broker.release(self.consumer_id, [delivery.tag])
        logger.info(
            "consumer %s: queue %s was paused; a fetched message goes back unstarted",
            self.consumer_id,
            delivery.queue,
        )
        return None

    async def _call(self, executor: Executor, job: Job, slot: Slot) -> None:
        soft, hard = limits_for(job.task, self.options)
        message = job.message
        executor.started(job)
        slot.begin(job, None)
        current = asyncio.current_task()
        if current is not None:
            self._calling[message.id] = current
        try:
            if job.task.is_async:
                value = await run_limited(job.task(*message.args, **message.kwargs), soft, hard)
            else:
                value = await self._call_sync(job, soft, hard)
            job.result, job.state = value, states.SUCCESS
        except asyncio.CancelledError:
            if message.id not in self._terminated:
                raise
            self._terminated.discard(message.id)  # revoke(terminate=True): record and ack
            if current is not None and sys.version_info >= (3, 11):
                current.uncancel()
            executor.failed(job, TaskRevokedError("terminated by remote control"))
            job.state = states.REVOKED
        except Exception as exc:
            executor.failed(job, exc)
        finally:
            self._calling.pop(message.id, None)
            executor.stopped(job)
            slot.end()

    def reserved_deliveries(self) -> list[Delivery]:
        """Messages fetched and not started (``inspect reserved``); safe from any thread."""
        return list(self._buffer)

    def terminate(self, task_id: str, signal: str) -> bool:
        """Cancel the coroutine running ``task_id`` (remote control); safe from any thread.

        A sync task running in a thread is left to finish there; its outcome is ignored.
        """
        task, loop = self._calling.get(task_id), self._loop
        if task is None or loop is None:
            return False
        self._terminated.add(task_id)
        loop.call_soon_threadsafe(task.cancel)
        return True

    async def _call_sync(self, job: Job, soft: float | None, hard: float | None) -> Any:
        loop = asyncio.get_running_loop()
        message = job.message
        call = _ThreadCall(lambda: job.task(*message.args, **message.kwargs), self._calls)
        future = loop.run_in_executor(self._task_threads, contextvars.copy_context().run, call)
        timer = loop.call_later(soft, call.interrupt, SoftTimeLimitExceeded) if soft else None
        try:
            done, _ = await asyncio.wait({future}, timeout=hard)
            if future in done:
                return future.result()
            call.interrupt(TimeLimitExceeded)  # stop it if it notices; its outcome is ignored
            future.add_done_callback(_ignore_outcome)
            raise TimeLimitExceeded(f"hard time limit ({hard:g}s) exceeded")
        finally:
            if timer is not None:
                timer.cancel()

    # -- stopping ------------------------------------------------------------------------
    def stop(self) -> None:
        """Warm shutdown, as the first SIGTERM: for a pool run outside the main thread."""
        loop = self._loop
        if loop is None or loop.is_closed():
            self.stopping = True
            return
        try:
            loop.call_soon_threadsafe(self._stop_asked)
        except RuntimeError:  # the loop closed meanwhile: it stopped already
            self.stopping = True

    def _stop_asked(self) -> None:
        if self._signals == 0:
            self._signals, self.stopping = 1, True
            self._wake.set()
            if self._changed is not None:
                self._changed.set()

    def _on_signal(self) -> None:
        self._signals += 1
        if self._signals == 1:
            logger.warning(
                "warm shutdown: finishing running tasks (up to %.0fs); signal again "
                "for a cold shutdown",
                self.options.shutdown_timeout,
            )
            self.stopping = True
            self._wake.set()
        else:
            logger.warning("cold shutdown: handing back every message now")
            for task in list(self._running):
                task.cancel()
        if self._changed is not None:
            self._changed.set()

    async def _give_back(self) -> None:
        assert self._fetch_broker is not None
        if not self._buffer:
            return
        tags = [d.tag for d in self._buffer]
        self._buffer.clear()
        try:
            await self._io(self._fetch_broker_release, tags)
        except Exception as exc:
            logger.error(
                "%d prefetched messages not given back (%s); they return when their lease ends",
                len(tags),
                exc,
            )

    def _fetch_broker_release(self, tags: list[str]) -> None:
        assert self._executor is not None and self._executor.broker is not None
        self._executor.broker.release(self.consumer_id, tags, count=False)

    async def _drain(self) -> None:
        """Wait for running tasks; past the grace period (or on a second signal) cancel them."""
        if self._running:
            await asyncio.wait(set(self._running), timeout=self.options.shutdown_timeout)
        if self._running:
            for task in list(self._running):
                task.cancel()
            await asyncio.wait(set(self._running), timeout=5.0)
        if self._signals >= 2 or self._running:
            await self._io(self._release_all)

    def _release_all(self) -> None:
        assert self._executor is not None and self._executor.broker is not None
        try:
            self._executor.broker.release_all(self.consumer_id)
        except Exception as exc:
            logger.error("messages not handed back (%s); they return when their lease ends", exc)

    async def _close(self) -> None:
        loop = asyncio.get_running_loop()
        if self._fetch_broker is not None:
            await loop.run_in_executor(self._fetch_thread, self._fetch_broker.close)
        executor = self._executor
        if executor is not None:
            for conn in (executor.broker, executor.backend):
                if conn is not None:
                    await self._io(conn.close)

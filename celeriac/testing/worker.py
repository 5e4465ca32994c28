"""A real worker in the test's own process: consumer threads, no signal handlers.

It is the ``threads`` pool a production worker runs (same consumers, retries
through the broker's delayed set, soft and hard time limits, chains and chords
sent from the worker), or its ``asyncio`` pool, started in a background thread.
On the threads pool, ``async def`` tasks run on each consumer thread's event
loop. ``join()`` waits until the broker holds nothing and every sent task's
result is stored, then raises the first task failure it has not raised yet,
with the task's own traceback.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .. import states
from ..exceptions import ConfigurationError
from ..exceptions import TimeoutError as CeleriacTimeoutError
from ..middleware.base import Middleware
from ..worker.asyncio_pool import AsyncioPool
from ..worker.options import resolve_options
from ..worker.state import WorkerState
from ..worker.threads import ThreadPool
from .sent import SentRecorder

if TYPE_CHECKING:
    from types import TracebackType

    from ..app import Celeriac
    from ..worker.job import Job

logger = logging.getLogger("celeriac.testing")

_POLL = 0.005  # seconds between looks while joining: short, the broker is in memory
_IDLE_FETCH = 0.05  # how long an idle consumer waits in fetch: bounds stop()
_STOP_TIMEOUT = 10.0


class JoinTimeout(CeleriacTimeoutError, AssertionError):
    """``worker.join()`` ran out of time; the message names what is still pending."""


class _Failures(Middleware):
    """Keeps the exception object of each failed task, its traceback intact."""

    def __init__(self) -> None:
        self.by_id: dict[str, BaseException] = {}
        self._lock = threading.Lock()

    def after_process(self, job: Job) -> None:
        if job.state == states.FAILURE and job.exception is not None:
            with self._lock:
                self.by_id[job.message.id] = job.exception


class InProcessWorker:
    """A worker for tests: ``with InProcessWorker(app) as worker: ...; worker.join()``.

    ``queues`` defaults to the queues a ``celeriac worker`` of this app consumes;
    ``pool`` is ``"threads"`` (``concurrency`` consumer threads) or ``"asyncio"``
    (one event loop running up to ``concurrency`` tasks at once). Sending a task the
    app has not registered fails at ``delay()`` (see
    :class:`~celeriac.testing.SentRecorder`).
    """

    def __init__(
        self,
        app: Celeriac,
        queues: Sequence[str] | str | None = None,
        concurrency: int = 2,
        *,
        pool: str = "threads",
        prefetch_multiplier: int = 1,
        time_limit: float | None = None,
        soft_time_limit: float | None = None,
        join_timeout: float = 5.0,
    ) -> None:
        if app.conf.task_always_eager:
            raise ConfigurationError(
                "task_always_eager runs each task inside delay(), so a worker would get "
                "nothing to do: set task_always_eager=False to test through a worker"
            )
        if pool not in ("threads", "asyncio"):
            raise ConfigurationError(
                f"the test worker runs pool='threads' or pool='asyncio', not {pool!r}: for "
                "child processes, use PreforkWorker"
            )
        self.app = app
        self.join_timeout = join_timeout
        options = resolve_options(
            app,
            queues=queues,
            concurrency=concurrency,
            pool=pool,
            hostname=f"test-{uuid.uuid4().hex[:8]}@celeriac",
            prefetch_multiplier=prefetch_multiplier,
            time_limit=time_limit,
            soft_time_limit=soft_time_limit,
        )
        # never a cold exit (it ends the process): stop() waits, then reports
        self.options = dataclasses.replace(
            options, fetch_timeout=_IDLE_FETCH, shutdown_timeout=float("inf")
        )
        self.state = WorkerState(self.options)
        self._started = threading.Event()
        self.pool: ThreadPool | AsyncioPool
        if pool == "asyncio":
            self.pool = AsyncioPool(app, self.options, self.state, self._announce)
        else:
            self.pool = ThreadPool(app, self.options, self.state, self._announce)
        self.state.pool = self.pool
        self.sent = SentRecorder()
        self._failures = _Failures()
        self._raised: set[str] = set()
        self._thread: threading.Thread | None = None
        self._crash: BaseException | None = None

    @property
    def queues(self) -> tuple[str, ...]:
        return self.options.queues

    # -- starting and stopping ------------------------------------------------------
    def start(self, timeout: float = 10.0) -> InProcessWorker:
        """Start consuming; returns once the pool says it is ready."""
        if self._thread is not None:
            raise RuntimeError("this worker was started already: make a new one")
        self.app.middleware.add(self.sent)
        self.app.middleware.add(self._failures)
        self._thread = threading.Thread(
            target=self._run, name=f"celeriac-test-worker {self.options.hostname}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._ready():
            if self._crash is not None or not self._thread.is_alive():
                self.stop()
                raise RuntimeError(f"the test worker stopped as it started: {self._crash!r}")
            if time.monotonic() > deadline:
                self.stop()
                raise CeleriacTimeoutError(f"the test worker was not consuming after {timeout}s")
            self._started.wait(_POLL)
        return self

    def _run(self) -> None:
        try:
            self.pool.run()
        except BaseException as exc:  # reported by start(), join() and stop()
            self._crash = exc
            logger.exception("the test worker stopped")

    def _ready(self) -> bool:
        if self._started.is_set():
            return True
        slots = list(self.state.slots.values())  # threads: each consumer marks its slot
        return isinstance(self.pool, ThreadPool) and (
            len(slots) == self.options.concurrency and all(s.ready for s in slots)
        )

    def _announce(self, text: str) -> None:
        logger.debug("%s", text)
        if " ready: " in text:  # every pool says so once it consumes
            self._started.set()

    def stop(self, timeout: float = _STOP_TIMEOUT) -> None:
        """Warm stop: running tasks finish, prefetched messages go back to the broker."""
        thread = self._thread
        try:
            if thread is not None and thread.is_alive():
                self.pool.stop()
                thread.join(timeout)
                if thread.is_alive():
                    running = [s.running() for s in self.state.slots.values()]
                    names = [f"{r.task_name}[{r.task_id}]" for r in running if r is not None]
                    raise CeleriacTimeoutError(
                        f"the test worker did not stop within {timeout}s: still running "
                        f"{', '.join(names) or 'nothing it knows of'}"
                    )
        finally:
            self.app.middleware.discard(self.sent)
            self.app.middleware.discard(self._failures)

    def __enter__(self) -> InProcessWorker:
        return self.start() if self._thread is None else self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- waiting ------------------------------------------------------------------------
    def join(self, timeout: float | None = None, raise_failures: bool = True) -> None:
        """Wait until the broker holds nothing and every sent task's result is stored.

        Then, with ``raise_failures``, raise the first failed task's exception (the
        object the task raised, with its traceback) that no earlier ``join`` raised.
        Past ``timeout`` seconds (default ``join_timeout``), :class:`JoinTimeout`
        names the queues that still hold messages and the results not stored.
        """
        timeout = self.join_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        broker, backend = self.app.broker, self.app.backend
        while True:
            if self._crash is not None:
                raise RuntimeError(f"the test worker stopped: {self._crash!r}") from self._crash
            sent = self.sent.sent
            busy = _busy_queues(broker)
            waiting = [s for s in sent if not s.ignore_result]
            metas = backend.get_many(list(dict.fromkeys(s.id for s in waiting))) if waiting else {}
            missing = [s for s in waiting if s.id not in metas or not metas[s.id].ready]
            if not busy and not missing and len(self.sent) == len(sent):
                break
            if time.monotonic() > deadline:
                raise JoinTimeout(self._pending(timeout, busy, missing))
            time.sleep(_POLL)
        if raise_failures:
            self._raise_first_failure([s.id for s in sent], metas)

    def _pending(self, timeout: float, busy: dict[str, Any], missing: list[Any]) -> str:
        parts = [f"join() timed out after {timeout:g}s"]
        for queue, stats in busy.items():
            counts = (
                f"{stats.total_waiting} waiting, {stats.delayed} delayed, {stats.in_flight} running"
            )
            note = (
                ""
                if queue in self.queues
                else f" (not consumed: this worker consumes {', '.join(self.queues)})"
            )
            parts.append(f"queue {queue!r}: {counts}{note}")
        if missing:
            shown = ", ".join(f"{s.task}[{s.id}]" for s in missing[:10])
            more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
            parts.append(f"results not stored: {shown}{more}")
        running = [s.running() for s in self.state.slots.values()]
        names = [f"{r.task_name}[{r.task_id}]" for r in running if r is not None]
        if names:
            parts.append(f"running now: {', '.join(names)}")
        parts.extend(_dead_letters(self.app.broker, {s.id for s in missing}))
        return "; ".join(parts)

    def _raise_first_failure(self, ids: list[str], metas: dict[str, Any]) -> None:
        for task_id in dict.fromkeys(ids):
            meta = metas.get(task_id)
            if task_id in self._raised or meta is None or meta.state != states.FAILURE:
                continue
            self._raised.add(task_id)
            exc = self._failures.by_id.get(task_id)
            if exc is None:  # recorded outside a task's own run (a hard time limit)
                self.app.AsyncResult(task_id, meta.name).get(timeout=0)
                continue
            if sys.version_info >= (3, 11):
                exc.add_note(f"raised by task {meta.name}[{task_id}] in the test worker")
            raise exc

    @property
    def failures(self) -> dict[str, BaseException]:
        """The exceptions failed tasks raised, by task id."""
        return dict(self._failures.by_id)


def _busy_queues(broker: Any) -> dict[str, Any]:
    busy = {}
    for queue in broker.queues():
        stats = broker.stats(queue)
        if stats.total_waiting or stats.delayed or stats.in_flight:
            busy[queue] = stats
    return busy


def _dead_letters(broker: Any, ids: set[str]) -> list[str]:
    """Why messages among ``ids`` went to dead letters: they will never store a result."""
    found = []
    for queue in broker.queues():
        for dead in broker.dead_letters(queue, 100):
            if dead.id in ids:
                found.append(f"{dead.id} is in the dead letters of {queue!r}: {dead.reason}")
    return found


def start_worker(app: Celeriac, *args: Any, **kwargs: Any) -> InProcessWorker:
    """Make and start an :class:`InProcessWorker` (same arguments)."""
    return InProcessWorker(app, *args, **kwargs).start()

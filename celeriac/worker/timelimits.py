"""Time limits, and exactly what each pool guarantees for them.

A task's limits are its own ``soft_time_limit`` / ``time_limit`` options, else
the worker's ``--soft-time-limit`` / ``--time-limit``, else the settings
``task_soft_time_limit`` / ``task_time_limit``. Nothing is armed for a task
without limits, so they cost nothing when unused.

The **soft** limit raises :class:`SoftTimeLimitExceeded` inside the task, which
may catch it, clean up and return (its return value is then the result). The
**hard** limit stops the task and records a FAILURE with
:class:`TimeLimitExceeded`; it is not run again (it would only exceed its limit
again): when the task's own process cannot finish it (prefork, threads), its
message is given back flagged, and the next worker to take it completes the
failure through the middleware, so a chain or chord after it learns of it.

``prefork``
    Soft: ``SIGALRM`` from ``setitimer`` in the child's main thread; it
    interrupts Python code and sleeps, not a C call that blocks signals.
    Hard: always enforced. The supervisor reads the child's deadline from
    shared memory, ``SIGKILL``\\ s the child, records the failure, hands
    back the child's other messages at once and starts a replacement.
``solo``
    Soft and hard: ``SIGALRM`` in the main thread, raising the exception in
    the task. A task that catches ``TimeLimitExceeded``, or blocks in C code,
    is not stopped: use prefork when the hard limit must hold.
``threads``
    Soft: ``PyThreadState_SetAsyncExc`` raises the exception in the task's
    thread at its next Python instruction (not inside a blocking C call such as
    a long ``time.sleep``; it arrives when the call returns). Hard: a thread
    cannot be killed, so the watchdog records the failure, hands back
    the slot's other messages, raises ``TimeLimitExceeded`` in the thread and
    gives the slot a new thread; the old one is abandoned and its outcome
    ignored whenever it ends.
``asyncio`` (and ``async def`` tasks on any pool)
    Soft: the coroutine's pending ``await`` raises ``SoftTimeLimitExceeded``
    (the pool cancels the task and turns the cancellation into that
    exception). Hard: the coroutine is cancelled and the failure recorded at
    the deadline whether or not it stops. A coroutine that blocks the event
    loop cannot be interrupted on the asyncio pool; on prefork the supervisor
    kills it one second after the deadline. Sync tasks on the asyncio pool run
    in threads and get the threads pool's guarantees.
"""

from __future__ import annotations

import ctypes
import logging
import signal
import threading
import time
from typing import TYPE_CHECKING, Any

import orjson

from .. import states
from ..backends.base import TaskMeta, exception_to_dict
from ..events import TASK_FAILED, dispatcher_for
from ..exceptions import SoftTimeLimitExceeded, TimeLimitExceeded
from ..middleware.revocation import STOPPED_FLAG

if TYPE_CHECKING:
    from types import FrameType

    from ..app import Celeriac
    from ..backends.base import Backend
    from ..brokers.base import Broker
    from ..task import Task
    from .options import WorkerOptions
    from .slots import Running

logger = logging.getLogger("celeriac.worker")

#: On prefork, a coroutine gets this long past its hard limit to be cancelled
#: cleanly in its own loop before the supervisor kills the child.
ASYNC_KILL_GRACE = 1.0


def limits_for(task: Task[Any, Any], options: WorkerOptions) -> tuple[float | None, float | None]:
    """``(soft, hard)`` seconds for one run of ``task``; None where there is no limit."""
    conf = task.app.conf
    soft = task.soft_time_limit
    if soft is None:
        soft = options.soft_time_limit
    if soft is None:
        soft = conf.task_soft_time_limit
    hard = task.time_limit
    if hard is None:
        hard = options.time_limit
    if hard is None:
        hard = conf.task_time_limit
    return (float(soft) if soft else None), (float(hard) if hard else None)


def raise_in_thread(thread_id: int, exc_type: type[BaseException] | None) -> bool:
    """Raise ``exc_type`` in another thread at its next instruction (None clears it)."""
    exc = ctypes.py_object(exc_type) if exc_type is not None else None  # None: NULL, clears
    changed = ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), exc)
    return bool(changed == 1)


class SignalTimer:
    """Soft (and optionally hard) limits in the main thread, through ``SIGALRM``.

    One ``ITIMER_REAL`` serves both: it is armed for the nearer deadline and
    re-armed for the other when it fires.
    """

    def __init__(self, enforce_hard: bool) -> None:
        self.enforce_hard = enforce_hard
        self._phases: list[tuple[float, type[BaseException]]] = []
        self._armed = False
        signal.signal(signal.SIGALRM, self._on_alarm)

    def arm(self, soft: float | None, hard: float | None) -> None:
        now = time.monotonic()
        phases: list[tuple[float, type[BaseException]]] = []
        if soft is not None:
            phases.append((now + soft, SoftTimeLimitExceeded))
        if hard is not None and self.enforce_hard:
            phases.append((now + hard, TimeLimitExceeded))
        if not phases:
            return
        self._phases = sorted(phases, key=lambda p: p[0])
        self._armed = True
        self._schedule(now)

    def disarm(self) -> None:
        if self._armed:
            self._armed = False  # first: an alarm from now on raises nothing
            signal.setitimer(signal.ITIMER_REAL, 0)
            self._phases = []

    def _schedule(self, now: float) -> None:
        if self._phases:
            signal.setitimer(signal.ITIMER_REAL, max(0.001, self._phases[0][0] - now))

    def _on_alarm(self, signum: int, frame: FrameType | None) -> None:
        if not self._armed or not self._phases:
            return
        _, exc_type = self._phases.pop(0)
        self._schedule(time.monotonic())
        if exc_type is SoftTimeLimitExceeded:
            raise SoftTimeLimitExceeded("soft time limit exceeded")
        self._armed = False
        raise TimeLimitExceeded("hard time limit exceeded")


class ThreadTimer:
    """Soft limits for tasks running in threads: a timer thread raises into them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._token = 0
        self._fired = False

    def arm(self, thread_id: int, soft: float) -> None:
        with self._lock:
            self._token += 1
            token = self._token
            timer = threading.Timer(soft, self._fire, (thread_id, token))
            timer.daemon = True
            self._timer = timer
        timer.start()

    def _fire(self, thread_id: int, token: int) -> None:
        with self._lock:
            if token == self._token and self._timer is not None:
                self._timer, self._fired = None, True
                raise_in_thread(thread_id, SoftTimeLimitExceeded)

    def disarm(self, thread_id: int) -> None:
        """Called from the task's own thread once the task returned."""
        with self._lock:
            self._token += 1
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if self._fired:  # too late for the task: drop it if it is still pending
                self._fired = False
                raise_in_thread(thread_id, None)


def record_time_limit(
    broker: Broker,
    backend: Backend,
    consumer_id: str,
    running: Running,
    hostname: str,
    app: Celeriac | None = None,
) -> None:
    """Store FAILURE with ``TimeLimitExceeded`` for a task stopped from outside.

    It is never run again (it would only run past its limit again): its message
    is handed over (see ``_hand_over``) so that its follow-ups still happen. The
    failure is stored first so a crash in between repeats, never loses, it.
    """
    stopped_at = time.time()
    exc = TimeLimitExceeded(
        f"task {running.task_name}[{running.task_id}] ran past its hard time limit and "
        f"was stopped after {time.monotonic() - running.started_mono:.1f}s"
    )
    logger.error("%s", exc)
    backend.store(
        [
            TaskMeta(
                running.task_id,
                states.FAILURE,
                exception_to_dict(exc),
                name=running.task_name,
                queue=running.queue,
                worker=hostname,
                date_started=running.started,
                date_done=stopped_at,
            )
        ]
    )
    if running.tag is not None:
        flag = orjson.dumps(
            {
                "reason": str(exc),
                "started": running.started,
                "stopped": stopped_at,
                "hostname": hostname,
            }
        ).decode()
        _hand_over(broker, consumer_id, running.tag, running, flag, app)
    if app is not None and app.conf.worker_send_task_events:  # the task's own process is gone
        dispatcher_for(app).send(
            TASK_FAILED,
            uuid=running.task_id,
            name=running.task_name,
            hostname=hostname,
            queue=running.queue,
            exception=repr(exc),
            runtime=time.monotonic() - running.started_mono,
        )


def _hand_over(
    broker: Broker,
    consumer_id: str,
    tag: str,
    running: Running,
    flag: str,
    app: Celeriac | None,
) -> None:
    """Give the stopped task's message back, flagged, so a worker fails it properly.

    The process that ran it is gone, so its follow-ups (a chain's next step, a
    chord's join or errback) cannot run here; the next worker to take the
    message sees it revoked with this flag (JSON: reason, started, stopped, hostname) and
    finishes it as a ``TimeLimitExceeded`` failure through the whole middleware, without
    running it again.
    """
    ttl = float(app.conf.task_revoke_ttl) if app is not None else 86400.0
    flags, revocations = broker.flags, broker.revocations
    if flags is None or revocations is None:  # no shared state: record the failure, drop it
        broker.ack(consumer_id, [tag])
        return
    flags.set(STOPPED_FLAG + running.task_id, flag)
    revocations.revoke([running.task_id], ttl)
    broker.release(consumer_id, [tag])

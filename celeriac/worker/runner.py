"""Start a worker: pick the pool, print the banner, run until shut down.

``run_worker(app, resolve_options(app, ...))`` is what ``celeriac worker``
calls; it is usable from Python too. The banner and the ``ready`` line go to
``announce`` (stderr by default) whatever the log level, so scripts and tests
can wait for ``ready``.

SIGTERM or SIGINT before the pool takes over their handling (while the worker
checks its settings, or waits for a broker that does not answer) ends the
start-up at once with a line that says what it was doing: nothing is consumed
yet, so there is nothing to finish or give back.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from ..brokers import broker_class
from ..control.remote import WorkerRemote
from ..control.state_handle import StateHandle
from ..exceptions import ConfigurationError
from ..text import counted
from ..version import __version__
from .asyncio_pool import AsyncioPool
from .autoscale import Autoscaler
from .preflight import check_settings
from .shutdown import SHUTDOWN_SIGNALS
from .solo import SoloPool
from .state import WorkerState
from .supervisor import Supervisor
from .threads import ThreadPool

if TYPE_CHECKING:
    from ..app import Celeriac
    from .options import WorkerOptions
    from .pool import Pool


logger = logging.getLogger("celeriac.worker")

GOODBYE_TIMEOUT = 3.0  # seconds a stopped worker waits to tell the cluster it is gone


class _Interrupted(BaseException):
    """A shutdown signal during start-up (a BaseException: no ``except Exception`` of
    the code it interrupts may swallow it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@contextmanager
def _interruptible() -> Iterator[None]:
    """While starting, a shutdown signal raises :class:`_Interrupted` wherever the main
    thread is, a blocking broker call included. The pool installs its own handlers,
    which only set flags, once it consumes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise _Interrupted(signum)

    old = {s: signal.signal(s, interrupt) for s in SHUTDOWN_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in old.items():
            signal.signal(signum, handler)


def _say_goodbye(remote: WorkerRemote) -> None:
    """Stop remote control and send worker-offline, waiting at most ``GOODBYE_TIMEOUT``:
    a broker that does not answer would hold the exit for its socket timeouts."""
    thread = threading.Thread(target=remote.stop, name="celeriac-goodbye", daemon=True)
    thread.start()
    thread.join(GOODBYE_TIMEOUT)
    if thread.is_alive():
        logger.warning(
            "the broker did not take the worker's goodbye (worker-offline, presence) "
            "within %.0fs: exiting without it",
            GOODBYE_TIMEOUT,
        )


def _stderr(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def banner(app: Celeriac, options: WorkerOptions) -> str:
    """Who this worker is and what it consumes; no passwords."""
    per = options.prefetch_per_consumer
    consumers = 1 if options.pool in ("asyncio", "solo") else options.concurrency
    limits = ", ".join(
        f"{name} {value:g}s"
        for name, value in (("soft", options.soft_time_limit), ("hard", options.time_limit))
        if value is not None
    )
    lines = [
        f"celeriac {__version__} worker {options.hostname}",
        f"  app:         {app.main or '__main__'}",
        f"  transport:   {app.describe()}",
        f"  pool:        {options.pool}, concurrency {options.concurrency}",
        f"  prefetch:    {per} per consumer, at most {counted(per * consumers, 'message')} held",
        f"  queues:      {', '.join(options.queues)}",
        f"  time limits: {limits or 'as each task sets them'}",
    ]
    if options.max_tasks_per_child or options.max_memory_per_child:
        recycling = (
            f"after {options.max_tasks_per_child or '-'} tasks or "
            f"{options.max_memory_per_child or '-'} KiB per child"
            if options.pool == "prefork"
            else "none: max tasks and memory per child apply to prefork children only"
        )
        lines.append(f"  recycling:   {recycling}")
    return "\n".join(lines)


def _pool(
    app: Celeriac, options: WorkerOptions, state: WorkerState, announce: Callable[[str], None]
) -> Pool:
    if options.pool == "prefork":
        if not broker_class(app.broker_url).spans_processes:
            raise ConfigurationError(
                "the memory:// broker lives inside one process, so prefork children cannot "
                "share it: use -P threads or -P solo, or a broker such as sqlite:///tasks.db"
            )
        return Supervisor(app, options, state, announce)
    if options.pool == "threads":
        return ThreadPool(app, options, state, announce)
    if options.pool == "asyncio":
        return AsyncioPool(app, options, state, announce)
    return SoloPool(app, options, state, announce)


def run_worker(
    app: Celeriac,
    options: WorkerOptions,
    announce: Callable[[str], None] = _stderr,
    on_state: Callable[[WorkerState], None] | None = None,
) -> int:
    """Run a worker in this process until it is shut down; returns the exit status.

    ``on_state`` receives the :class:`WorkerState` before consuming starts (for
    remote control: what runs where, counts, pool size).
    """
    app.finalize()
    doing, remote = "checking the settings and the broker", None
    try:
        with _interruptible():
            check_settings(app)
            state = WorkerState(options)
            pool = _pool(app, options, state, announce)
            state.pool = pool
            if on_state is not None:
                on_state(state)
            announce(banner(app, options))
            doing = "running the worker_init hooks"
            for hook in app.middleware.worker_init:
                hook(app, state)
            doing = "starting remote control and events (connecting to the broker)"
            started = WorkerRemote(app, StateHandle(app, state))  # heartbeats, remote control
            started.start()
            remote, doing = started, "starting the autoscaler"
            scaler = None
            if options.autoscale is not None:
                scaler = Autoscaler(
                    app, pool, state, options.queues, options.autoscale, options.concurrency
                )
                scaler.start()
    except _Interrupted as interrupted:
        logger.warning(
            "%s while %s: stopping before consuming anything",
            signal.Signals(interrupted.signum).name,
            doing,
        )
        if remote is not None:  # it started, so the broker answers: say goodbye
            remote.stop()
        return 0
    try:
        return pool.run()
    finally:
        if scaler is not None:
            scaler.stop()
        _say_goodbye(remote)
        for hook in app.middleware.worker_shutdown:
            hook(app, state)

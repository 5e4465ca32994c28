"""A prefork child: one consumer in its own process, forked from the supervisor.

The child talks to the broker itself; nothing passes between it and the
supervisor on the hot path except the stores into its shared slot record. It
dies with the supervisor (``PR_SET_PDEATHSIG`` on Linux, plus a parent-pid
check), ignores SIGINT (a Ctrl-C reaches the whole process group; the
supervisor decides what it means) and treats SIGTERM as a warm stop.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
from typing import TYPE_CHECKING, Any

from ..control.described import reserved_info, running_info
from ..control.remote import follow_control
from .consumer import Consumer
from .fairness import Board
from .inquiry import close_inherited, serve
from .state import WorkerState
from .timelimits import SignalTimer

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from multiprocessing.connection import Connection
    from types import FrameType

    from ..app import Celeriac
    from .options import WorkerOptions
    from .slots import Slot

logger = logging.getLogger("celeriac.worker")

_PR_SET_PDEATHSIG = 1
EXIT_ORPHANED = 3  # the supervisor was gone before the child could watch it


def consumer_id(hostname: str, pid: int, slot: int) -> str:
    """How the broker names a consumer: ``node/pid/slot``."""
    return f"{hostname}/{pid}/{slot}"


def die_with_parent(parent_pid: int) -> None:
    """Ask the kernel to SIGKILL this process when its parent dies; exit if it already has."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # no prctl: the parent-pid checks remain
            logger.debug("PR_SET_PDEATHSIG unavailable", exc_info=True)
    if os.getppid() != parent_pid:
        os._exit(EXIT_ORPHANED)


def child_main(
    app: Celeriac,
    options: WorkerOptions,
    slot: Slot,
    parent_pid: int,
    line: Connection | None = None,
    inherited: Sequence[Connection] = (),
    board: Board | None = None,
) -> None:
    """The body of a prefork child process.

    ``line`` is this child's end of the pipe its supervisor asks questions on
    (:mod:`celeriac.worker.inquiry`); ``inherited`` the supervisor's ends it
    inherited at fork, closed here; ``board`` what every slot of the worker
    holds, in shared memory (:mod:`celeriac.worker.fairness`).
    """
    die_with_parent(parent_pid)
    close_inherited(inherited)
    signal.set_wakeup_fd(-1)  # the supervisor's wakeup pipe is not ours to write
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    consumer = Consumer(
        app,
        options,
        consumer_id(options.hostname, os.getpid(), slot.index),
        slot,
        timer=SignalTimer(enforce_hard=False),  # the supervisor enforces hard limits
        max_tasks=options.max_tasks_per_child,
        max_memory_kib=options.max_memory_per_child,
        board=board,
    )
    consumer.parent_pid = parent_pid
    state = WorkerState(options)  # what middleware sees of this process
    state.add_slot(slot)

    def warm_stop(signum: int, frame: FrameType | None) -> None:
        consumer.stop()

    signal.signal(signal.SIGTERM, warm_stop)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})  # see Supervisor._spawn
    follower = follow_control(app, options.hostname)  # revocations, limits, queue changes
    if line is not None:
        serve(line, _answers(app, options.hostname, state, consumer))
    for hook in app.middleware.worker_start:
        hook(app, state)
    try:
        consumer.run()
    finally:
        follower.stop()
        for hook in app.middleware.worker_stop:
            hook(app, state)


def _answers(
    app: Celeriac, hostname: str, state: WorkerState, consumer: Consumer
) -> Callable[[str], Any]:
    """How this child answers its supervisor's questions (in the inquiry thread)."""

    def answer(question: str, argument: Any = None) -> Any:
        if question == "active":
            return running_info(app, state)
        if question == "reserved":
            return [
                reserved_info(app, d, hostname, since=since)
                for d, since in consumer.held_unstarted()
            ]
        if question == "give_back":
            return consumer.give_back(set(argument or ()))
        raise ValueError(f"unknown question {question!r}")

    return answer

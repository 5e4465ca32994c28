"""The worker's side of remote control: a registry of commands over a small interface.

:class:`ControlHandler` runs in the process that supervises a worker (the
prefork supervisor, or the single process of the thread, solo and asyncio
pools), never in a task slot, so it answers while every slot is busy. It sees
the worker only through :class:`WorkerHandle`.

Commands that change what a task does (``revoke``, ``rate_limit``,
``time_limit``, ``enable_events``) must reach every process that runs tasks:
:func:`apply_local` applies them to one process's app, and the worker's child
processes run a :class:`~celeriac.control.listener.ControlListener` in
follower mode that applies only those, without replying.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ..events.forksafe import guarded
from ..exceptions import CeleriacError
from . import commands as _builtin  # noqa: F401 - registers the built-in commands
from .described import job_info
from .pause import PausedQueues
from .registry import COMMANDS, LOCAL_COMMANDS

if TYPE_CHECKING:
    from ..app import Celeriac
    from ..backends.base import Backend
    from ..brokers.base import Broker
    from ..worker.job import Job

logger = logging.getLogger("celeriac.control")


@runtime_checkable
class WorkerHandle(Protocol):
    """What remote control needs from a worker; each pool implements it."""

    hostname: str
    pool_name: str  # "prefork", "threads", ...: what ``inspect stats`` reports

    def active_tasks(self) -> list[dict[str, Any]]:
        """The tasks running now, as :func:`task_info` dicts."""

    def active_count(self) -> int:
        """How many tasks run now, without describing them (for heartbeats and stats)."""

    def reserved_tasks(self) -> list[dict[str, Any]]:
        """Messages prefetched and not started yet, as :func:`task_info` dicts."""

    def give_back(self, ids: list[str]) -> list[str]:
        """Give back, uncounted, those of ``ids`` prefetched and not started; the ids."""

    def processed(self) -> int:
        """Tasks finished since the worker started, all processes together."""

    def pool_size(self) -> int: ...

    def stats(self) -> dict[str, Any]:
        """The pool's own part of ``inspect stats``: messages held, child pids..."""

    def pool_grow(self, n: int) -> int:
        """Add ``n`` slots (processes, threads); returns the new size."""

    def pool_shrink(self, n: int) -> int:
        """Remove ``n`` slots once their tasks finish; returns the new size."""

    def queues(self) -> list[str]: ...

    def add_queue(self, queue: str) -> None: ...

    def cancel_queue(self, queue: str) -> None: ...

    def terminate(self, task_id: str, signal: str) -> bool:
        """Stop the task if it runs here (kill its child, cancel its coroutine)."""

    def shutdown(self) -> None:
        """Begin a warm shutdown: stop fetching, finish running tasks, give back the rest."""


def task_info(job: Job, pid: int | None = None, started: bool = True) -> dict[str, Any]:
    """What ``inspect active``/``reserved`` shows of one job (see :mod:`.described`)."""
    info = job_info(job.app, job, pid)
    if not started:
        info["time_start"] = None
    return info


class ControlHandler:
    """Runs commands against one worker; the listener feeds it and sends the replies."""

    def __init__(self, app: Celeriac, worker: WorkerHandle) -> None:
        self.app = app
        self.worker = worker
        self.hostname = worker.hostname
        self.started_at = time.time()
        self.paused = PausedQueues(app)
        self._after_reply: list[Callable[[], None]] = []
        self._broker: Broker | None = None
        self._backend: Backend | None = None

    # The handler runs in the control thread; in a prefork supervisor, that thread's
    # connections are guarded against forks (see celeriac.events.forksafe).
    @property
    def broker(self) -> Broker:
        if self._broker is None:
            self._broker = guarded(self.app.connect_broker)
        return self._broker

    @property
    def backend(self) -> Backend:
        if self._backend is None:
            self._backend = guarded(self.app.connect_backend)
        return self._backend

    def close(self) -> None:
        for connection in (self._broker, self._backend):
            if connection is not None:
                connection.close()
        self._broker = self._backend = None

    def handle(self, name: str, arguments: dict[str, Any]) -> Any:
        """Run one command; a failure comes back as ``{"error": ...}``, never raises."""
        entry = COMMANDS.get(name)
        if entry is None:
            return {"error": f"unknown command {name!r}; known: {', '.join(sorted(COMMANDS))}"}
        try:
            return entry(self, **arguments)
        except TypeError as exc:  # wrong or missing arguments
            return {"error": f"bad arguments for {name}: {exc}"}
        except (CeleriacError, ValueError, KeyError) as exc:
            return {"error": str(exc)}
        except Exception as exc:
            logger.exception("control command %s failed", name)
            return {"error": f"{type(exc).__name__}: {exc}"}

    def after_reply(self, action: Callable[[], None]) -> None:
        """Do this once the reply is sent (``shutdown`` answers before it stops)."""
        self._after_reply.append(action)

    def run_after_reply(self) -> None:
        actions, self._after_reply = self._after_reply, []
        for action in actions:
            action()


def apply_local(app: Celeriac, hostname: str, name: str, arguments: dict[str, Any]) -> None:
    """Apply the part of a command that concerns one task-running process (a prefork child)."""
    function = LOCAL_COMMANDS.get(name)
    if function is not None:
        try:
            function(app, hostname, **arguments)
        except Exception as exc:  # the supervisor reports the error to the sender
            logger.debug("local part of %s failed: %r", name, exc)

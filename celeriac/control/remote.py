"""What a worker starts for events and remote control: one object, two calls.

::

    remote = WorkerRemote(app, worker)   # worker implements WorkerHandle
    remote.start()                       # worker-online, heartbeats, control listener
    ...
    remote.stop()                        # listener stopped, worker-offline sent and flushed

A prefork child that runs tasks calls :func:`follow_control` once at boot, so
``revoke``, ``rate_limit`` and ``time_limit`` reach the app in that process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..events.worker import WorkerEvents
from .handler import ControlHandler, WorkerHandle
from .listener import ControlListener, handled_position

if TYPE_CHECKING:
    from ..app import Celeriac


def heartbeat_stats(worker: WorkerHandle) -> dict[str, Any]:
    """The load a heartbeat carries, read from the worker."""
    return {
        "active": worker.active_count(),
        "processed": worker.processed(),
        "pool_size": worker.pool_size(),
        "queues": worker.queues(),
    }


class WorkerRemote:
    """A worker's presence, heartbeat events and control listener."""

    def __init__(self, app: Celeriac, worker: WorkerHandle) -> None:
        self.app = app
        self.worker = worker
        self.handler = ControlHandler(app, worker)
        self.events = WorkerEvents(app, worker.hostname, lambda: heartbeat_stats(worker))
        self.listener = ControlListener(
            app, worker.hostname, self.handler, on_change=self.events.beat_soon
        )

    def start(self) -> None:
        # The listener notes where the control stream ends before worker-online says the
        # worker is there: a command sent after that is never missed.
        self.listener.start()
        self.events.start()

    def stop(self) -> None:
        self.listener.stop()
        self.events.stop()


def follow_control(app: Celeriac, hostname: str) -> ControlListener:
    """In a process that runs tasks: apply revocations and limit changes sent to ``hostname``.

    In a prefork child it reads on from where the supervisor's listener had got to
    when it forked the child, so no command sent since is missed.
    """
    follower = ControlListener(app, hostname, handler=None, after=handled_position(hostname))
    follower.start()
    return follower

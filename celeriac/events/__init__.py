"""Events: what workers and producers tell the cluster, and how tools read it.

Workers publish task events (through :class:`~celeriac.middleware.events.TaskEvents`)
and worker events (:class:`WorkerEvents`) to the broker's bounded stream
``"events"``; producers publish ``task-sent``. Sending is batched by one
background thread per process (:class:`EventDispatcher`), never a broker round
trip on a task's path. Tools read with :class:`EventReceiver`, which resumes
from a saved position, and see who is online with :func:`read_presence`.
"""

from __future__ import annotations

from .dispatcher import EVENTS_STREAM, EventDispatcher, dispatcher_for
from .event import (
    EVENT_TYPES,
    TASK_DELAYED,
    TASK_EVENT_STATES,
    TASK_EVENTS,
    TASK_FAILED,
    TASK_PROGRESS,
    TASK_RECEIVED,
    TASK_REJECTED,
    TASK_RETRIED,
    TASK_REVOKED,
    TASK_SENT,
    TASK_STARTED,
    TASK_SUCCEEDED,
    WORKER_EVENTS,
    WORKER_HEARTBEAT,
    WORKER_OFFLINE,
    WORKER_ONLINE,
    Event,
    StreamsUnavailable,
    encode_event,
)
from .receiver import NEWEST, OLDEST, EventReceiver
from .worker import WorkerEvents, WorkerStatus, read_presence

__all__ = [
    "EVENTS_STREAM",
    "EVENT_TYPES",
    "NEWEST",
    "OLDEST",
    "TASK_DELAYED",
    "TASK_EVENTS",
    "TASK_EVENT_STATES",
    "TASK_FAILED",
    "TASK_PROGRESS",
    "TASK_RECEIVED",
    "TASK_REJECTED",
    "TASK_RETRIED",
    "TASK_REVOKED",
    "TASK_SENT",
    "TASK_STARTED",
    "TASK_SUCCEEDED",
    "WORKER_EVENTS",
    "WORKER_HEARTBEAT",
    "WORKER_OFFLINE",
    "WORKER_ONLINE",
    "Event",
    "EventDispatcher",
    "EventReceiver",
    "StreamsUnavailable",
    "WorkerEvents",
    "WorkerStatus",
    "dispatcher_for",
    "encode_event",
    "read_presence",
]

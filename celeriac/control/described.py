"""What ``inspect active`` and ``inspect reserved`` show of one task.

Both list Celery's keys (``id``, ``name``, ``args``, ``kwargs``, ``hostname``,
``time_start``, ``acknowledged``, ``worker_pid``, ``delivery_info``) plus what a
celeriac message carries: ``queue``, ``priority``, ``deliveries`` (how many
times the broker handed it out, this time included), ``retries``, ``eta`` and
``expires`` (unix seconds, or None).

Arguments follow the rule of task events (:mod:`celeriac.events.event`): each of
``args`` and ``kwargs`` travels whole up to ``event_args_max_size`` bytes of
JSON; a larger one is replaced by its start followed by ``...`` and its name is
listed in ``truncated``. So one task with a huge argument cannot swell every
reply to an inspection.

Everything here runs only when someone inspects: nothing on the task's path.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from ..exceptions import MessageDecodeError
from ..message import decode
from .protocol import dumps

if TYPE_CHECKING:
    from ..app import Celeriac
    from ..message import Delivery, Message
    from ..worker.job import Job
    from ..worker.state import WorkerState

TRUNCATED_MARK = "..."


def shown_arguments(args: Any, kwargs: Any, max_size: int) -> dict[str, Any]:
    """``{"args": ..., "kwargs": ...}``, each cut beyond ``max_size`` bytes of JSON.

    A cut one becomes its JSON text's start followed by ``...``, and its name is
    listed under ``"truncated"`` (absent when nothing was cut).
    """
    shown: dict[str, Any] = {}
    truncated = []
    for name, value in (("args", args), ("kwargs", kwargs)):
        text = dumps(value)
        if len(text) > max_size:
            shown[name] = text[:max_size].decode("utf-8", errors="ignore") + TRUNCATED_MARK
            truncated.append(name)
        else:
            shown[name] = value
    if truncated:
        shown["truncated"] = truncated
    return shown


def max_args_size(app: Celeriac) -> int:
    """The size beyond which arguments are cut: ``event_args_max_size``, as for events."""
    return int(app.conf.event_args_max_size)


def message_info(
    app: Celeriac,
    message: Message,
    delivery: Delivery | None,
    hostname: str | None,
    pid: int | None,
) -> dict[str, Any]:
    """The keys a running and a prefetched task share."""
    deliveries = delivery.deliveries if delivery is not None else 1
    return {
        "id": message.id,
        "name": message.task,
        **shown_arguments(list(message.args), message.kwargs, max_args_size(app)),
        "hostname": hostname,
        "worker_pid": pid if pid is not None else os.getpid(),
        "queue": message.queue,
        "priority": message.priority,
        "deliveries": deliveries,
        "retries": message.retries,
        "eta": message.eta,
        "expires": message.expires,
        "delivery_info": {
            "queue": message.queue,
            "priority": message.priority,
            "redelivered": deliveries > 1,
            "deliveries": deliveries,
        },
    }


def job_info(app: Celeriac, job: Job, pid: int | None = None) -> dict[str, Any]:
    """A running task, from its job."""
    return {
        **message_info(app, job.message, job.delivery, job.request.hostname, pid),
        "time_start": job.started_at or None,
        "acknowledged": job.acked,
    }


def reserved_info(
    app: Celeriac,
    delivery: Delivery,
    hostname: str,
    pid: int | None = None,
    since: float | None = None,
) -> dict[str, Any]:
    """A prefetched task, decoded from its delivery (only when someone asks); ``since``:
    when its consumer fetched it, where known."""
    try:
        message = decode(delivery.body, app.codec, delivery)
    except MessageDecodeError as exc:  # it will be dead-lettered when its turn comes
        return {
            "id": delivery.id,
            "name": None,
            "hostname": hostname,
            "worker_pid": pid if pid is not None else os.getpid(),
            "queue": delivery.queue,
            "priority": delivery.priority,
            "deliveries": delivery.deliveries,
            "since": since,
            "error": f"cannot be decoded: {exc}",
        }
    return {
        **message_info(app, message, delivery, hostname, pid),
        "time_start": None,
        "acknowledged": False,
        "since": since,
    }


def running_info(app: Celeriac, state: WorkerState) -> list[dict[str, Any]]:
    """The tasks this process runs, one per busy slot, with their arguments.

    The slot records say what runs (they are the truth for time limits and
    ``terminate``); the job each slot keeps in this process adds the arguments.
    """
    found = state.active()
    for entry in found:
        slot = state.slots.get(entry["slot"])
        job = slot.job if slot is not None else None
        if job is not None and job.message.id == entry["id"]:
            entry.update({**job_info(app, job, entry["worker_pid"]), **entry})
    return found


__all__ = [
    "TRUNCATED_MARK",
    "job_info",
    "max_args_size",
    "message_info",
    "reserved_info",
    "running_info",
    "shown_arguments",
]

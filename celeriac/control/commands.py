"""The built-in remote-control commands: ``inspect`` queries and ``control`` actions.

Each takes the :class:`~celeriac.control.handler.ControlHandler` and the
command's arguments, and returns what goes back to the sender: data for a
query, ``{"ok": ...}`` for an action, ``{"error": ...}`` for a refusal. The
``local=True`` twin of a command is the part every task-running process
applies to its own app (see :func:`~celeriac.control.handler.apply_local`).
"""

from __future__ import annotations

import os
import resource
import time
from typing import TYPE_CHECKING, Any

from .. import states
from ..backends.base import TaskMeta
from ..events.dispatcher import dispatcher_for
from ..events.event import TASK_REVOKED
from ..exceptions import CeleriacError
from ..middleware.revocation import Revocation
from ..rate import parse_rate
from ..urls import redact, redact_setting
from .queues import _BY_NODE
from .registry import command

if TYPE_CHECKING:
    from ..app import Celeriac
    from .handler import ControlHandler


# -- inspect ------------------------------------------------------------------------
@command("ping")
def _ping(handler: ControlHandler) -> Any:
    return {"ok": "pong"}


@command("active")
def _active(handler: ControlHandler) -> Any:
    return handler.worker.active_tasks()


@command("reserved")
def _reserved(handler: ControlHandler) -> Any:
    return handler.worker.reserved_tasks()


@command("give_back")
def _give_back(handler: ControlHandler, task_ids: list[str], queue: str | None = None) -> Any:
    if not isinstance(task_ids, list) or not all(isinstance(i, str) for i in task_ids):
        raise ValueError("give_back needs task_ids: a list of task ids")
    given = handler.worker.give_back(task_ids)
    if not given:
        return {
            "error": "none of them is prefetched here and unstarted (started, finished, "
            "or held elsewhere): revoke one so that it does not run",
            "given_back": [],
        }
    return {"ok": f"gave back {', '.join(given)}", "given_back": given}


@command("scheduled")
def _scheduled(handler: ControlHandler) -> Any:
    # Delayed tasks wait in the broker's delayed set, never in a worker's memory.
    return []


@command("registered")
def _registered(handler: ControlHandler, taskinfoitems: list[str] | None = None) -> Any:
    # celeriac's own tasks (canvas helpers) are everywhere; people ask about theirs
    names = sorted(name for name in handler.app.tasks if not name.startswith("celeriac."))
    if not taskinfoitems:
        return names
    # Celery's form for ``inspect registered rate_limit time_limit``: "name [k=v k=v]",
    # only the attributes that are set.
    described = []
    for name in names:
        task = handler.app.tasks[name]
        found = [(k, getattr(task, k, None)) for k in taskinfoitems]
        fields = " ".join(f"{k}={v}" for k, v in found if v is not None)
        described.append(f"{name} [{fields}]" if fields else name)
    return described


@command("active_queues")
def _active_queues(handler: ControlHandler) -> Any:
    paused = handler.paused.paused(handler.broker)
    return [{"name": q, "paused": q in paused} for q in handler.worker.queues()]


@command("stats")
def _stats(handler: ControlHandler) -> Any:
    worker, app = handler.worker, handler.app
    usage = resource.getrusage(resource.RUSAGE_SELF)
    from .. import __version__

    own = worker.stats()  # the pool's own: messages held, child pids
    return {
        **own,
        "hostname": handler.hostname,
        "pid": os.getpid(),
        "sw_ver": __version__,
        "uptime": round(time.time() - handler.started_at, 3),
        "total": worker.processed(),
        "active": worker.active_count(),
        "pool": {
            **(own.get("pool") or {}),
            "max-concurrency": worker.pool_size(),
            "implementation": worker.pool_name,
        },
        "prefetch_count": worker.pool_size() * int(own.get("prefetch_multiplier") or 1),
        "queues": worker.queues(),
        "broker": {"url": redact(app.broker_url)},
        "rusage": {"utime": usage.ru_utime, "stime": usage.ru_stime, "maxrss": usage.ru_maxrss},
    }


@command("conf")
def _conf(handler: ControlHandler) -> Any:
    out: dict[str, Any] = {}
    for name, value in handler.app.conf.items():
        value = redact_setting(name, value)
        out[name] = value if not callable(value) else repr(value)
    return out


@command("revoked")
def _revoked(handler: ControlHandler) -> Any:
    return sorted(_revocation(handler.app).revoked)


# -- control ------------------------------------------------------------------------
def _revocation(app: Celeriac) -> Any:
    found = [m for m in app.middleware if isinstance(m, Revocation)]
    if not found:
        raise CeleriacError("this worker has no Revocation middleware")
    return found[0]


@command("revoke", local=True)
def _revoke_local(
    app: Celeriac,
    hostname: str,
    task_ids: list[str],
    terminate: bool = False,
    signal: str = "SIGTERM",
) -> None:
    _revocation(app).revoked.update(task_ids)


@command("revoke")
def _revoke(
    handler: ControlHandler, task_ids: list[str], terminate: bool = False, signal: str = "SIGTERM"
) -> Any:
    _revoke_local(handler.app, handler.hostname, task_ids)
    if not terminate:
        active = {t.get("id") for t in handler.worker.active_tasks()}
        running = [task_id for task_id in task_ids if task_id in active]
        return {"ok": f"tasks {', '.join(task_ids)} flagged as revoked", "running": running}
    names = {t.get("id"): t.get("name") for t in handler.worker.active_tasks()}
    when = time.time()  # before the kill: its message may be back and skipped within ms
    killed = [task_id for task_id in task_ids if handler.worker.terminate(task_id, signal)]
    if killed:
        tasks = {task_id: names.get(task_id) for task_id in killed}
        _record_terminated(handler, tasks, signal, when)
    return {
        "ok": f"terminated {', '.join(killed)}" if killed else "no such task running",
        "terminated": killed,
    }


def _record_terminated(
    handler: ControlHandler, tasks: dict[str, str | None], signal: str, when: float
) -> None:
    reason = f"terminated by remote control ({signal})"
    error = {
        "exc_type": "TaskRevokedError",
        "exc_module": "celeriac.exceptions",
        "exc_message": reason,
        "exc_args": [reason],
    }
    metas = [
        TaskMeta(task_id, states.REVOKED, error, name=name, worker=handler.hostname, date_done=when)
        for task_id, name in tasks.items()
    ]
    handler.backend.store(metas)
    if handler.app.conf.worker_send_task_events:
        for task_id, name in tasks.items():
            dispatcher_for(handler.app).send(
                TASK_REVOKED,
                timestamp=when,
                uuid=task_id,
                name=name,
                hostname=handler.hostname,
                reason=reason,
                terminated=True,
                signum=signal,
            )


def _task(app: Celeriac, task_name: str) -> Any:
    task = app.tasks.get(task_name)
    if task is None:
        raise KeyError(f"unknown task {task_name!r} on this worker")
    return task


@command("rate_limit", local=True)
def _rate_limit_local(
    app: Celeriac, hostname: str, task_name: str, rate_limit: str | float | None
) -> None:
    parse_rate(rate_limit)  # a bad rate is refused before anything changes
    _task(app, task_name).rate_limit = rate_limit or None


@command("rate_limit")
def _rate_limit(handler: ControlHandler, task_name: str, rate_limit: str | float | None) -> Any:
    _rate_limit_local(handler.app, handler.hostname, task_name, rate_limit)
    return {"ok": f"rate limit of {task_name} set to {rate_limit or 'none'}"}


@command("time_limit", local=True)
def _time_limit_local(
    app: Celeriac,
    hostname: str,
    task_name: str,
    soft: float | None = None,
    hard: float | None = None,
) -> None:
    for value in (soft, hard):
        if value is not None and (not isinstance(value, (int, float)) or value < 0):
            raise ValueError(f"time limits are seconds >= 0, not {value!r}")
    task = _task(app, task_name)
    task.soft_time_limit, task.time_limit = soft or None, hard or None


@command("time_limit")
def _time_limit(
    handler: ControlHandler, task_name: str, soft: float | None = None, hard: float | None = None
) -> Any:
    _time_limit_local(handler.app, handler.hostname, task_name, soft, hard)
    return {"ok": f"time limits of {task_name} set to soft={soft} hard={hard}"}


@command("enable_events", local=True)
def _enable_events_local(app: Celeriac, hostname: str) -> None:
    app.conf.worker_send_task_events = True


@command("disable_events", local=True)
def _disable_events_local(app: Celeriac, hostname: str) -> None:
    app.conf.worker_send_task_events = False


@command("enable_events")
def _enable_events(handler: ControlHandler) -> Any:
    _enable_events_local(handler.app, handler.hostname)
    return {"ok": "task events enabled"}


@command("disable_events")
def _disable_events(handler: ControlHandler) -> Any:
    _disable_events_local(handler.app, handler.hostname)
    return {"ok": "task events disabled"}


def _count(n: Any) -> int:
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n must be a whole number >= 1, not {n!r}")
    return n


@command("pool_grow")
def _pool_grow(handler: ControlHandler, n: int = 1) -> Any:
    size = handler.worker.pool_grow(_count(n))
    return {"ok": f"pool grown to {size}", "pool_size": size}


@command("pool_shrink")
def _pool_shrink(handler: ControlHandler, n: int = 1) -> Any:
    size = handler.worker.pool_shrink(_count(n))
    return {"ok": f"pool shrunk to {size}", "pool_size": size}


@command("add_consumer", local=True)
def _add_consumer_local(app: Celeriac, hostname: str, queue: str) -> None:
    queues = _BY_NODE.get(hostname)
    if queues is not None:  # a prefork child: its consumer reads this list
        queues.add(queue)


@command("cancel_consumer", local=True)
def _cancel_consumer_local(app: Celeriac, hostname: str, queue: str) -> None:
    queues = _BY_NODE.get(hostname)
    if queues is not None:
        queues.remove(queue)


@command("add_consumer")
def _add_consumer(handler: ControlHandler, queue: str) -> Any:
    if not queue:
        raise ValueError("add_consumer needs a queue name")
    if queue in handler.worker.queues():
        return {"ok": f"already consuming from {queue}"}
    handler.worker.add_queue(queue)
    return {"ok": f"now consuming from {queue}"}


@command("cancel_consumer")
def _cancel_consumer(handler: ControlHandler, queue: str) -> Any:
    if queue not in handler.worker.queues():
        return {"error": f"not consuming from {queue}"}
    if len(handler.worker.queues()) == 1:
        return {"error": f"{queue} is the last queue this worker consumes: add another first"}
    handler.worker.cancel_queue(queue)
    return {"ok": f"no longer consuming from {queue}"}


@command("shutdown")
def _shutdown(handler: ControlHandler) -> Any:
    handler.after_reply(handler.worker.shutdown)
    return {"ok": "shutting down"}

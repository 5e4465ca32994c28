"""Django's Tasks framework, run by celeriac workers.

``TASKS = {"default": {"BACKEND": "celeriac.contrib.django.tasks.CeleriacBackend",
"QUEUES": [...], "OPTIONS": {"APP": "proj.celeriac:app"}}}``.

A function decorated with ``@task`` (``django.tasks`` or the ``django_tasks``
backport) becomes, as it is defined, a celeriac task too, named by its module
path (``cworker.tasks.send_report``): ``task_routes``, rate limits and the
dashboard see it under that name, and a worker that imports the module runs it.

How the framework's terms map, and where they cannot map exactly:

* ``priority`` -100..100 onto celeriac's 0..9, twenty steps a level:
  ``min(9, (priority + 100) // 20)``; -100..-81 is 0, ..., 0..19 is 5, 80..100 is
  9. Django's default 0 sends no priority at all, so celeriac's routing decides
  (``task_routes``, then ``task_default_priority``).
* ``queue_name`` is the celeriac queue, except Django's ``"default"``, which
  leaves the queue to celeriac's routing (``task_default_queue`` unless routed).
* ``run_after`` is the message's ``eta``: it waits in the broker's delayed set.
* statuses: PENDING, RECEIVED and RETRY are READY; STARTED is RUNNING; SUCCESS
  is SUCCESSFUL; FAILURE and REVOKED are FAILED, with the error's class path
  and traceback.
* ``enqueued_at`` is when a worker received the task (celeriac records no send
  time), ``started_at`` and ``last_attempted_at`` when the last attempt started,
  ``worker_ids`` the worker that ran the last attempt.
"""

from __future__ import annotations

import inspect
import threading
import time
import traceback
import uuid
from datetime import datetime
from typing import Any

from ... import states
from ...app import Celeriac
from ...backends.base import TaskMeta
from ...current import current_app, shared_task
from ...exceptions import ConfigurationError
from ...urls import load_object
from . import tasks_compat as fw
from .backend import to_datetime

PRIORITY_STEP = 20
_OPTIONS = {"APP"}

STATUS = {
    states.PENDING: fw.TaskResultStatus.READY,
    states.RECEIVED: fw.TaskResultStatus.READY,
    states.RETRY: fw.TaskResultStatus.READY,
    states.STARTED: fw.TaskResultStatus.RUNNING,
    states.SUCCESS: fw.TaskResultStatus.SUCCESSFUL,
    states.FAILURE: fw.TaskResultStatus.FAILED,
    states.REVOKED: fw.TaskResultStatus.FAILED,
}


def celeriac_priority(priority: int) -> int:
    """Django's -100..100 onto celeriac's 0..9 (0 lowest, 9 highest)."""
    return max(0, min(9, (int(priority) + 100) // PRIORITY_STEP))


def _when(timestamp: float | None) -> datetime | None:
    return None if timestamp is None else to_datetime(timestamp)


# -- the worker side: each framework task is a celeriac task ------------------------------
_registered: set[str] = set()
_registered_lock = threading.Lock()


def register(task: Any) -> None:
    """Register a framework task with every celeriac app, under its module path (once)."""
    name = task.module_path
    with _registered_lock:
        if name in _registered:
            return
        _registered.add(name)

    def run(celeriac_task: Any, *args: Any, **kwargs: Any) -> Any:
        return _run(celeriac_task, task, args, kwargs)

    run.__module__ = task.func.__module__
    run.__name__ = run.__qualname__ = task.func.__name__
    run.__doc__ = task.func.__doc__
    # track_started: so the framework can see RUNNING. typing is checked at enqueue.
    shared_task(run, name=name, bind=True, track_started=True, typing=False)


def _run(celeriac_task: Any, task: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    request = celeriac_task.request
    now = to_datetime(time.time())
    result = fw.TaskResult(
        task=task,
        id=request.id or "",
        status=fw.TaskResultStatus.RUNNING,
        enqueued_at=now,
        started_at=now,
        finished_at=None,
        last_attempted_at=now,
        args=list(args),
        kwargs=dict(kwargs),
        backend=task.backend,
        errors=[],
        worker_ids=[request.hostname or "celeriac"],
    )
    sender = type(task.get_backend())
    fw.task_started.send(sender=sender, task_result=result)
    try:
        if task.takes_context:
            value = task.call(fw.TaskContext(task_result=result), *args, **kwargs)
        else:
            value = task.call(*args, **kwargs)
    except BaseException as exc:
        error = fw.TaskError(
            exception_class_path=f"{type(exc).__module__}.{type(exc).__qualname__}",
            traceback=traceback.format_exc(),
        )
        _finish(result, fw.TaskResultStatus.FAILED, errors=[error])
        fw.task_finished.send(sender=sender, task_result=result)
        raise
    _finish(result, fw.TaskResultStatus.SUCCESSFUL, return_value=value)
    fw.task_finished.send(sender=sender, task_result=result)
    return value


def _finish(
    result: Any, status: Any, errors: list[Any] | None = None, return_value: Any = None
) -> None:
    # TaskResult is frozen: the framework's own backends update it the same way.
    object.__setattr__(result, "status", status)
    object.__setattr__(result, "finished_at", to_datetime(time.time()))
    object.__setattr__(result, "_return_value", return_value)
    result.errors.extend(errors or [])


class CeleriacTask(fw.Task):  # type: ignore[misc]
    """A framework task that is also a celeriac task named by its module path."""

    __slots__ = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        register(self)


# -- the producer side ------------------------------------------------------------------------
def _check_arguments(task: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    signature = inspect.signature(task.func)
    try:
        signature.bind(*((None,) if task.takes_context else ()), *args, **kwargs)
    except TypeError as exc:
        raise TypeError(f"{task.module_path}{signature}: {exc}") from None


def result_from_meta(task: Any, meta: TaskMeta, alias: str) -> Any:
    """A framework ``TaskResult`` from celeriac's record of the task."""
    errors = []
    if meta.state in states.EXCEPTION_STATES and isinstance(meta.result, dict):
        module = meta.result.get("exc_module", "builtins")
        errors.append(
            fw.TaskError(
                exception_class_path=f"{module}.{meta.result.get('exc_type', 'Exception')}",
                traceback=meta.traceback or "",
            )
        )
    result = fw.TaskResult(
        task=task,
        id=meta.task_id,
        status=STATUS.get(meta.state, fw.TaskResultStatus.READY),
        enqueued_at=_when(meta.date_received),
        started_at=_when(meta.date_started),
        finished_at=_when(meta.date_done) if meta.ready else None,
        last_attempted_at=_when(meta.date_started),
        args=list(meta.args or []),
        kwargs=dict(meta.kwargs or {}),
        backend=alias,
        errors=errors,
        worker_ids=[meta.worker] if meta.worker else [],
    )
    if meta.state == states.SUCCESS:
        object.__setattr__(result, "_return_value", meta.result)
    return result


class CeleriacBackend(fw.BaseTaskBackend):  # type: ignore[misc]
    """Enqueues framework tasks to celeriac; ``get_result`` reads celeriac's result backend."""

    task_class = CeleriacTask
    supports_defer = True
    supports_async_task = True
    supports_get_result = True
    supports_priority = True

    def __init__(self, alias: str, params: dict[str, Any]) -> None:
        super().__init__(alias, params)
        options = dict(params.get("OPTIONS") or {})
        unknown = set(options) - _OPTIONS
        if unknown:
            raise ConfigurationError(
                f"TASKS[{alias!r}]['OPTIONS'] has unknown keys {sorted(unknown)}: the celeriac "
                "backend knows APP (the app, 'proj.celeriac:app'; default: the current app)"
            )
        self._app_spec: Any = options.get("APP")

    @property
    def app(self) -> Celeriac:
        """The celeriac app tasks are sent through."""
        if self._app_spec is None:
            return current_app()
        if isinstance(self._app_spec, str):
            self._app_spec = load_object(self._app_spec)
        if not isinstance(self._app_spec, Celeriac):
            raise ConfigurationError(f"TASKS[{self.alias!r}] APP is not a Celeriac app")
        return self._app_spec

    def routing_options(self, task: Any) -> dict[str, Any]:
        """How the task's priority, queue and ``run_after`` travel to celeriac."""
        options: dict[str, Any] = {}
        if task.priority != 0:
            options["priority"] = celeriac_priority(task.priority)
        if task.queue_name != fw.DEFAULT_TASK_QUEUE_NAME:
            options["queue"] = task.queue_name
        if task.run_after is not None:
            options["eta"] = task.run_after
        return options

    def enqueue(self, task: Any, args: Any, kwargs: Any) -> Any:
        self.validate_task(task)
        args, kwargs = tuple(args), dict(kwargs)
        _check_arguments(task, args, kwargs)
        register(task)  # a task made by another backend and moved here with using(backend=...)
        app = self.app
        task_id = str(uuid.uuid4())
        options = self.routing_options(task)
        # Recorded before it is sent, so get_result knows the task while it waits; the
        # worker's records replace this one.
        pending = TaskMeta(
            task_id, states.PENDING, name=task.module_path, args=list(args), kwargs=kwargs
        )
        app.backend.store([pending])
        app.send_task(task.module_path, args, kwargs, task_id=task_id, **options)
        result = result_from_meta(task, pending, self.alias)
        object.__setattr__(result, "enqueued_at", to_datetime(time.time()))
        fw.task_enqueued.send(type(self), task_result=result)
        return result

    def get_result(self, result_id: str) -> Any:
        meta = self.app.backend.get(result_id)
        if meta.name is None:
            raise fw.TaskResultDoesNotExist(result_id)
        from django.utils.module_loading import import_string

        try:
            task = import_string(meta.name)
        except ImportError:
            task = None
        if not isinstance(task, fw.Task):
            raise fw.TaskResultDoesNotExist(
                f"{result_id}: {meta.name!r} is not a Tasks-framework task importable here"
            )
        return result_from_meta(task, meta, self.alias)

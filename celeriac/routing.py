"""Routing: which queue and priority a task goes to.

``task_routes`` is a dict (exact names and globs: ``{"proj.tasks.*": {"queue":
"q2"}}``), a callable ``(name, args, kwargs, options, task) -> dict | None``, or
a list of either, tried in order until one answers. Precedence, strongest first:
``apply_async(queue=, priority=)``, the first matching route, the task's own
options, the queue's defaults in ``task_queues``, then ``task_default_queue`` and
``task_default_priority``.
"""

from __future__ import annotations

import fnmatch
import inspect
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .config import load_object
from .exceptions import ConfigurationError

if TYPE_CHECKING:
    from .config import Settings
    from .task import Task

RouteFunction = Callable[..., Mapping[str, Any] | str | None]


def _dict_router(table: Mapping[str, Any]) -> RouteFunction:
    exact = {k: v for k, v in table.items() if not any(c in k for c in "*?[")}
    globs = [(k, v) for k, v in table.items() if k not in exact]

    def route(name: str, args: Any, kwargs: Any, options: Any, task: Any) -> Any:
        if name in exact:
            return exact[name]
        for pattern, value in globs:
            if fnmatch.fnmatchcase(name, pattern):
                return value
        return None

    return route


def _as_router(entry: Any) -> RouteFunction:
    if isinstance(entry, Mapping):
        return _dict_router(entry)
    if isinstance(entry, str):
        entry = load_object(entry)
    if callable(entry):
        if hasattr(entry, "route_for_task"):  # Celery-style router class instance
            return entry.route_for_task  # type: ignore[no-any-return]
        return _adapt_arity(entry)
    raise ConfigurationError(
        f"task_routes entry {entry!r} is not a dict, a callable or an import path"
    )


def _adapt_arity(fun: Callable[..., Any]) -> RouteFunction:
    """Accept routers written with fewer parameters, e.g. ``(name, args, kwargs)``."""
    try:
        params = inspect.signature(fun).parameters.values()
    except (TypeError, ValueError):
        return fun
    if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params):
        return fun
    count = len(list(params))
    return lambda *a: fun(*a[:count])


def _queue_defaults(task_queues: Any) -> dict[str, dict[str, Any]]:
    if not task_queues:
        return {}
    if isinstance(task_queues, Mapping):
        return {name: dict(opts or {}) for name, opts in task_queues.items()}
    out: dict[str, dict[str, Any]] = {}
    for item in task_queues:
        if isinstance(item, str):
            out[item] = {}
        elif isinstance(item, Mapping):
            out[item["name"]] = dict(item)
        else:  # a kombu.Queue-like object
            out[item.name] = {"priority": getattr(item, "priority", None)}
    return out


class Router:
    """Resolves a task call to ``{"queue": ..., "priority": ...}``."""

    def __init__(self, conf: Settings) -> None:
        routes = conf.task_routes
        if routes is None:
            routes = []
        elif isinstance(routes, (Mapping, str)) or callable(routes):
            routes = [routes]
        self._routers = [_as_router(entry) for entry in routes]
        self._queues = _queue_defaults(conf.task_queues)
        self._default_queue = conf.task_default_queue
        self._default_priority = conf.task_default_priority

    @property
    def declared_queues(self) -> list[str]:
        return list(self._queues)

    def route(
        self, task: Task[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any],
        queue: str | None = None, priority: int | None = None,
    ) -> dict[str, Any]:
        found: Mapping[str, Any] = {}
        if queue is None or priority is None:
            options = {"queue": queue, "priority": priority}
            for router in self._routers:
                answer = router(task.name, args, kwargs, options, task)
                if answer:
                    found = {"queue": answer} if isinstance(answer, str) else answer
                    break
        queue = queue or found.get("queue") or task.queue or self._default_queue
        if priority is None:
            priority = found.get("priority")
        if priority is None:
            priority = task.priority
        if priority is None:
            priority = self._queues.get(queue, {}).get("priority")
        if priority is None:
            priority = self._default_priority
        return {"queue": queue, "priority": priority}

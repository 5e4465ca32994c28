"""Routing: which queue and priority a task goes to.

``task_routes`` may be any of these, or a list or tuple of them tried in order
until one answers:

* a dict of exact names, globs and compiled regular expressions:
  ``{"proj.tasks.add": {"queue": "math"}, "proj.feeds.*": "feeds"}``;
* a list of ``(pattern, route)`` pairs, matched in order (Celery's form for when
  order matters between overlapping globs);
* a callable ``(name, args, kwargs, options, task) -> dict | str | None``, so a
  route may depend on argument values or any runtime condition (routers that
  take fewer parameters, such as ``(name, args, kwargs)``, are accepted);
* an object with Celery's ``route_for_task(task, args, kwargs)`` method;
* an import path (``"proj.routing:route_task"``) to any of the above.

A route is ``{"queue": ..., "priority": ...}`` (either key may be left out) or
a queue name. Precedence, strongest first: ``apply_async(queue=, priority=)``,
the first route that answers, the task's own options (``@app.task(queue=)``),
the queue's defaults in ``task_queues``, then ``task_default_queue`` and
``task_default_priority``. Each of queue and priority is resolved on its own:
a route that names only a queue leaves the priority to the later rules.

A workflow's later steps (a chain's next task, a chord's body, a callback) are
routed when they are sent, by the worker that sends them, with that worker's
``task_routes`` and the step's arguments: give workers the same routes as
producers, as with Celery. Options set on a step (``.set(queue=...)``) travel
with it and win, as per-call options do.
"""

from __future__ import annotations

import fnmatch
import inspect
import re
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .exceptions import ConfigurationError
from .urls import load_object

if TYPE_CHECKING:
    from .config import Settings
    from .task import Task

RouteFunction = Callable[[str, tuple[Any, ...], dict[str, Any], dict[str, Any], Any], Any]
_GLOB_CHARS = "*?["


def _matcher(pattern: Any) -> Callable[[str], bool]:
    if isinstance(pattern, re.Pattern):
        return lambda name: pattern.match(name) is not None
    if not isinstance(pattern, str):
        raise ConfigurationError(
            f"task_routes pattern {pattern!r} is not a task name, a glob or a compiled regex"
        )
    if any(c in pattern for c in _GLOB_CHARS):
        return lambda name: fnmatch.fnmatchcase(name, pattern)
    return lambda name: name == pattern


def _table_router(pairs: Iterable[tuple[Any, Any]]) -> RouteFunction:
    """Exact names are looked up directly; patterns are tried in the order given."""
    exact: dict[str, Any] = {}
    patterns: list[tuple[Callable[[str], bool], Any]] = []
    for pattern, answer in pairs:
        if isinstance(pattern, str) and not any(c in pattern for c in _GLOB_CHARS):
            exact.setdefault(pattern, answer)
        else:
            patterns.append((_matcher(pattern), answer))

    def route(name: str, args: Any, kwargs: Any, options: Any, task: Any) -> Any:
        if name in exact:
            return exact[name]
        for matches, value in patterns:
            if matches(name):
                return value
        return None

    return route


def _is_pair_list(entry: Any) -> bool:
    return (
        isinstance(entry, (list, tuple))
        and bool(entry)
        and all(
            isinstance(item, (list, tuple))
            and len(item) == 2
            and isinstance(item[0], (str, re.Pattern))
            for item in entry
        )
    )


def _as_router(entry: Any) -> RouteFunction:
    if isinstance(entry, str):
        entry = load_object(entry)
    if isinstance(entry, Mapping):
        return _table_router(entry.items())
    if _is_pair_list(entry):
        return _table_router(entry)
    route_for_task = getattr(entry, "route_for_task", None)
    if route_for_task is not None and not inspect.isclass(entry):  # Celery-style router object
        return _adapt_arity(route_for_task)
    if callable(entry):
        return _adapt_arity(entry)
    raise ConfigurationError(
        f"task_routes entry {entry!r} is not a dict, a list of (pattern, route) pairs, "
        "a callable (name, args, kwargs, options, task) -> route, or an import path to one"
    )


def _adapt_arity(fun: Callable[..., Any]) -> RouteFunction:
    """Accept routers written with fewer parameters, e.g. ``(name, args, kwargs)``."""
    try:
        params = list(inspect.signature(fun).parameters.values())
    except (TypeError, ValueError):
        return fun
    if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params):
        return fun
    count = len(params)
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


def _checked(answer: Any, router: Any) -> Mapping[str, Any]:
    """A router's answer as a mapping, or a clear error naming the router."""
    route: Any = {"queue": answer} if isinstance(answer, str) else answer
    if not isinstance(route, Mapping):
        raise ConfigurationError(
            f"task router {router!r} returned {answer!r}: a route is a dict such as "
            '{"queue": "q", "priority": 5}, a queue name, or None to let the next router decide'
        )
    queue = route.get("queue")
    if queue is not None and (not isinstance(queue, str) or not queue):
        raise ConfigurationError(f"task router {router!r} returned queue {queue!r}: use a name")
    return route  # its priority is checked with every message's, in the envelope


class Router:
    """Resolves a task call to ``{"queue": ..., "priority": ...}``."""

    def __init__(self, conf: Settings) -> None:
        routes = conf.task_routes
        if routes is None:
            routes = []
        elif not isinstance(routes, (list, tuple)) or _is_pair_list(routes):
            routes = [routes]  # one router, not a list of them
        self._entries = list(routes)
        self._routers = [_as_router(entry) for entry in self._entries]
        self._queues = _queue_defaults(conf.task_queues)
        self._default_queue = conf.task_default_queue
        self._default_priority = conf.task_default_priority

    @property
    def declared_queues(self) -> list[str]:
        return list(self._queues)

    def lookup(
        self,
        name: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: dict[str, Any],
        task: Any = None,
    ) -> Mapping[str, Any]:
        """The first route that answers for this call, or ``{}``."""
        for entry, router in zip(self._entries, self._routers, strict=True):
            answer = router(name, args, kwargs, options, task)
            if answer:
                return _checked(answer, entry)
        return {}

    def route(
        self,
        task: Task[Any, Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        queue: str | None = None,
        priority: int | None = None,
    ) -> dict[str, Any]:
        """Where this call goes: per-call options, then routes, task options, defaults."""
        found: Mapping[str, Any] = {}
        if self._routers and (queue is None or priority is None):
            options = {"queue": queue, "priority": priority}
            found = self.lookup(task.name, args, kwargs, options, task)
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

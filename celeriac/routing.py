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
a queue name (or a kombu ``Queue``, by its name). Celery's
``{"exchange": ..., "routing_key": ...}`` routes work on brokers with exchanges
(RabbitMQ): the bindings declared in ``task_queues`` (kombu ``Queue`` objects
or ``{"queue": {"exchange": ..., "exchange_type": ..., "routing_key": ...}}``)
resolve them to the one queue they deliver to, and RabbitMQ binds that queue to
that exchange. On other brokers, or when no declared queue (or more than one)
matches, sending fails with an error that says what to declare: no route is
dropped in favour of the default queue. Static routes are checked when the
router is built (the first send, or a worker's start), not at each call.

Precedence, strongest first: ``apply_async(queue=, priority=)``,
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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .exceptions import ConfigurationError
from .urls import load_object

if TYPE_CHECKING:
    from .config import Settings
    from .task import Task

RouteFunction = Callable[[str, tuple[Any, ...], dict[str, Any], dict[str, Any], Any], Any]
_GLOB_CHARS = "*?["
#: What a route may say; "exchange" and "routing_key" need a broker with exchanges.
_ROUTE_KEYS = frozenset({"queue", "priority", "exchange", "exchange_type", "routing_key"})
#: The exchange queues are bound to under their own name (as Celery's "celery").
DEFAULT_EXCHANGE = "celeriac"


def _name(value: Any) -> Any:
    """A kombu ``Queue`` or ``Exchange`` by its name; anything else as it is."""
    name = getattr(value, "name", None)
    return name if isinstance(name, str) and not isinstance(value, str) else value


@dataclass(frozen=True)
class Binding:
    """A queue bound to an exchange, as ``task_queues`` declares it."""

    queue: str
    exchange: str
    exchange_type: str
    key: str

    def matches(self, exchange: str, routing_key: str | None) -> bool:
        if exchange != self.exchange:
            return False
        if self.exchange_type == "fanout":
            return True
        if routing_key is None:
            return False
        if self.exchange_type == "topic":
            return _topic_matches(self.key.split("."), routing_key.split("."))
        return self.key == routing_key


def _topic_matches(pattern: list[str], words: list[str]) -> bool:
    """AMQP topic matching: ``*`` is one word, ``#`` zero or more."""
    if not pattern:
        return not words
    head, rest = pattern[0], pattern[1:]
    if head == "#":
        return any(_topic_matches(rest, words[i:]) for i in range(len(words) + 1))
    return bool(words) and head in ("*", words[0]) and _topic_matches(rest, words[1:])


def _bindings(task_queues: Any, default_queue: str) -> list[Binding]:
    """Every queue of ``task_queues`` with its exchange and key; undeclared parts default
    to the direct exchange ``celeriac`` and the queue's own name, as on RabbitMQ."""
    items: list[tuple[str, Any, Any, Any]] = []
    if isinstance(task_queues, Mapping):
        for name, opts in task_queues.items():
            opts = opts or {}
            items.append(
                (name, opts.get("exchange"), opts.get("exchange_type"), opts.get("routing_key"))
            )
    else:
        for item in task_queues or ():
            if isinstance(item, str):
                items.append((item, None, None, None))
            elif isinstance(item, Mapping):
                items.append(
                    (
                        item["name"],
                        item.get("exchange"),
                        item.get("exchange_type"),
                        item.get("routing_key"),
                    )
                )
            else:  # a kombu Queue: name, exchange (name, type), routing_key
                exchange = getattr(item, "exchange", None)
                items.append(
                    (
                        item.name,
                        _name(exchange),
                        getattr(exchange, "type", None),
                        getattr(item, "routing_key", None),
                    )
                )
    found = [
        Binding(name, _name(exchange) or DEFAULT_EXCHANGE, kind or "direct", key or name)
        for name, exchange, kind, key in items
    ]
    if not any(b.queue == default_queue for b in found):
        found.append(Binding(default_queue, DEFAULT_EXCHANGE, "direct", default_queue))
    return found


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
    answer = _name(answer)
    route: Any = {"queue": answer} if isinstance(answer, str) else answer
    if not isinstance(route, Mapping):
        raise ConfigurationError(
            f"task router {router!r} returned {answer!r}: a route is a dict such as "
            '{"queue": "q", "priority": 5}, a queue name, or None to let the next router decide'
        )
    unknown = set(route) - _ROUTE_KEYS
    if unknown:
        raise ConfigurationError(
            f"task router {router!r} returned {dict(route)!r}: {sorted(unknown)} cannot be "
            f"routed by; a route says {sorted(_ROUTE_KEYS)} (give other options to apply_async)"
        )
    queue, exchange = route.get("queue"), route.get("exchange")
    if not isinstance(queue, (str, type(None))) or not isinstance(exchange, (str, type(None))):
        route = {**route, "queue": _name(queue), "exchange": _name(exchange)}  # kombu objects
        queue = route["queue"]
    if queue is not None and (not isinstance(queue, str) or not queue):
        raise ConfigurationError(f"task router {router!r} returned queue {queue!r}: use a name")
    return route  # type: ignore[no-any-return]  # its priority is checked with each message's


def _names_exchange(route: Mapping[str, Any]) -> bool:
    return bool(route.get("exchange") or route.get("routing_key"))


class Router:
    """Resolves a task call to ``{"queue": ..., "priority": ...}``.

    ``has_exchanges`` answers whether the broker routes by exchange (asked only when
    a route names one, so building a router imports no engine).
    """

    def __init__(self, conf: Settings, has_exchanges: Callable[[], bool] = lambda: False) -> None:
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
        self._has_exchanges = has_exchanges
        self._bindings = _bindings(conf.task_queues, conf.task_default_queue)
        self._check_static_routes()

    def _check_static_routes(self) -> None:
        """Resolve every exchange route of a dict now: a wrong one fails before any send."""
        for entry in self._entries:
            pairs = (
                entry.items()
                if isinstance(entry, Mapping)
                else entry
                if _is_pair_list(entry)
                else ()
            )
            for pattern, answer in pairs:
                route = _checked(answer, entry)
                if route.get("queue") is None and _names_exchange(route):
                    self._queue_for(route, str(getattr(pattern, "pattern", pattern)))

    def _queue_for(self, route: Mapping[str, Any], name: str) -> str:
        """The one declared queue an exchange route delivers to, or a clear error."""
        exchange, key = route.get("exchange"), route.get("routing_key")
        shown = f"exchange {exchange!r} and routing key {key!r}"
        if not self._has_exchanges():
            raise ConfigurationError(
                f"the route of {name} names {shown}, but this broker has no exchanges (only "
                "RabbitMQ has): name the queue instead, e.g. "
                f"{{'queue': {str(key or exchange)!r}}}"
            )
        matched = sorted(
            {b.queue for b in self._bindings if b.matches(exchange or DEFAULT_EXCHANGE, key)}
        )
        if len(matched) == 1:
            return matched[0]
        if not matched:
            raise ConfigurationError(
                f"the route of {name} names {shown}, but no queue in task_queues is bound "
                "to it: declare one, e.g. task_queues = [Queue('images', Exchange('media', "
                "type='topic'), routing_key='media.#')], or {'images': {'exchange': 'media', "
                "'exchange_type': 'topic', 'routing_key': 'media.#'}}"
            )
        raise ConfigurationError(
            f"the route of {name} names {shown}, which delivers to several queues {matched}: "
            "celeriac sends a task to one queue; bind one of them, or route by queue"
        )

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
        if queue is None and found.get("queue") is None and _names_exchange(found):
            queue = self._queue_for(found, task.name)
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

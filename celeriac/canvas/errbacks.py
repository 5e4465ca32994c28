"""Errbacks: what a ``link_error`` signature receives when the task it watches fails.

Celery's current convention is kept. An errback whose function accepts
``(request, exc, traceback)`` before its own partial arguments receives the
failed task's request (``request.id``, ``request.task``, ``request.args``...),
its exception and the formatted remote traceback::

    @app.task
    def on_error(request, exc, traceback):
        log.error("task %s raised %r", request.id, exc)

Any other errback receives the failed task's id first (Celery's older
convention). An immutable errback (``task.si()``) receives neither, and a
workflow used as an errback (a chain, a group) receives the task id.

Unlike Celery, an errback never runs inside the worker whose task failed: it is
sent as a task of its own, routed, time-limited and retried like any other. The
failure travels in the message header :data:`ERRBACK_HEADER`, and the worker
that runs the errback, which knows its function, decides which convention it
follows; so it works even where the failing task's worker does not know it.
"""

from __future__ import annotations

import copy
import inspect
from typing import TYPE_CHECKING, Any

from ..backends.base import exception_from_dict
from ..request import Request

if TYPE_CHECKING:
    from ..message import Message
    from ..task import Task

ERRBACK_HEADER = "celeriac.errback"
_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def takes_error_details(task: Task[Any, Any], own_args: int) -> bool:
    """Whether ``task`` takes ``(request, exc, traceback)`` before its ``own_args`` arguments."""
    params = list(task._signature.parameters.values())
    if task.bind:
        params = params[1:]
    if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params):
        return True
    return sum(p.kind in _POSITIONAL for p in params) >= 3 + own_args


def failure_info(
    message: Message, exc: dict[str, Any], traceback: str | None, hostname: str | None = None
) -> dict[str, Any]:
    """What an errback learns about a failure, as plain data for the header."""
    return {
        "request": {
            "id": message.id,
            "task": message.task,
            "args": list(message.args),
            "kwargs": dict(message.kwargs),
            "retries": message.retries,
            "parent_id": message.parent_id,
            "root_id": message.root_id,
            "group_id": message.group_id,
            "group_index": message.group_index,
            "hostname": hostname,
        },
        "exc": exc,
        "traceback": traceback,
    }


def error_arguments(task: Task[Any, Any], info: dict[str, Any], own_args: int) -> tuple[Any, ...]:
    """The arguments that go before an errback's own, by the convention it follows."""
    request = info.get("request") or {}
    if not takes_error_details(task, own_args):
        return (request.get("id"),)
    fields = {k: v for k, v in request.items() if k in Request.__dataclass_fields__}
    fields["args"] = tuple(fields.get("args") or ())
    exc = info.get("exception") or exception_from_dict(info.get("exc"))  # eager runs have it
    return (Request(**fields), exc, info.get("traceback"))


def with_error_arguments(
    task: Task[Any, Any], info: dict[str, Any], own_args: int
) -> Task[Any, Any]:
    """A copy of ``task`` whose function gets the error arguments first.

    The message itself is left as sent, so its stored arguments stay plain data
    and a retry of the errback carries the same header.
    """
    prefix = error_arguments(task, info, own_args)
    run = task.run
    proxy = copy.copy(task)
    if task.bind:
        proxy.run = lambda self, *args, **kwargs: run(self, *prefix, *args, **kwargs)  # type: ignore[method-assign]
    else:
        proxy.run = lambda *args, **kwargs: run(*prefix, *args, **kwargs)  # type: ignore[method-assign]
    return proxy


__all__ = [
    "ERRBACK_HEADER",
    "error_arguments",
    "failure_info",
    "takes_error_details",
    "with_error_arguments",
]

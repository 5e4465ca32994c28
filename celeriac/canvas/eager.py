"""Workflows run here and now: ``apply()``, and ``apply_async()`` with ``task_always_eager``.

Each task runs through ``Task.apply`` (the worker's middleware, in this
thread). Callbacks and errbacks run the same way, right after their task, with
the same arguments a worker would give them. With ``task_eager_propagates``
(the default) a failing task raises at once, after its errbacks ran; without
it the workflow stops at the failure and its result says so.
"""

from __future__ import annotations

import traceback
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .. import states
from ..backends.base import TaskMeta, exception_to_dict
from ..message import Message
from ..result import EagerResult, GroupResult
from .build import prepare
from .errbacks import error_arguments, failure_info

if TYPE_CHECKING:
    from ..app import Celeriac
    from .signature import Signature

_FAILED = (states.FAILURE, states.REVOKED)


def run(app: Celeriac, node: Signature) -> Any:
    """Run a private copy of a signature or workflow; its (eager) result."""
    prepare(app, node)
    return node._apply(app, (), {})


def failed(result: Any) -> bool:
    """Whether an eager result (or any member of a group's) failed."""
    if isinstance(result, GroupResult):
        return any(failed(r) for r in result.results)
    return result.state in _FAILED


def run_linked(
    app: Celeriac, sig: Signature, retries: int = 0, throw: bool | None = None
) -> EagerResult[Any]:
    """One task signature, then its callbacks or errbacks (``Task.apply(link=...)``)."""
    prepare(app, sig)
    return run_task(app, sig, (), {}, retries, throw)


def run_task(
    app: Celeriac,
    sig: Signature,
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    retries: int = 0,
    throw: bool | None = None,
) -> EagerResult[Any]:
    """Run one task, then its callbacks or its errbacks."""
    task = app.get_task(sig.task)
    call_args, call_kwargs = sig.merged(args, kwargs)
    headers = sig.options.get("headers")
    try:
        result = task.apply(
            call_args, call_kwargs, sig.id, headers=headers, retries=retries, throw=throw
        )
    except Exception as exc:  # task_eager_propagates: errbacks first, then raise
        message = Message(sig.id or "", sig.task, call_args, call_kwargs)
        info = failure_info(message, exception_to_dict(exc), traceback.format_exc())
        run_errbacks(app, sig.options.get("link_error", ()), {**info, "exception": exc})
        raise
    if result.successful():
        for callback in sig.options.get("link", ()):
            run(app, callback.clone((result.result,)))
    elif failed(result):
        message = Message(result.id, sig.task, call_args, call_kwargs)
        meta = result._meta
        assert meta is not None
        info = failure_info(message, meta.result, meta.traceback)
        run_errbacks(app, sig.options.get("link_error", ()), info)
    return result


def run_errbacks(app: Celeriac, errbacks: Sequence[Signature], info: dict[str, Any]) -> None:
    """Run each errback with the arguments its convention asks for."""
    for errback in errbacks:
        if errback.immutable:
            run(app, errback.clone())
        elif errback.is_workflow:
            run(app, errback.clone((info["request"]["id"],)))
        else:
            task = app.get_task(errback.task)
            run(app, errback.clone(error_arguments(task, info, len(errback.args))))


def fail_chord(app: Celeriac, body: Signature, failure: Any) -> Any:
    """A chord whose header failed: the body's result is that failure; its errbacks run."""
    failure = _first_failure(failure)
    meta = failure._meta
    assert meta is not None
    target = body._freeze(app)
    message = Message(body._entry_id() or "", body.task)
    run_errbacks(app, body._entry_errbacks(), failure_info(message, meta.result, meta.traceback))
    return _failed_like(app, target, meta)


def _first_failure(result: Any) -> Any:
    if isinstance(result, GroupResult):
        return next(_first_failure(r) for r in result.results if failed(r))
    return result


def _failed_like(app: Celeriac, target: Any, meta: TaskMeta) -> Any:
    if isinstance(target, GroupResult):
        members = [_failed_like(app, r, meta) for r in target.results]
        return GroupResult(target.id, members, app)
    copy = TaskMeta(target.id, meta.state, meta.result, meta.traceback, name=target.task_name)
    return EagerResult(copy, app)


__all__ = ["fail_chord", "failed", "run", "run_errbacks", "run_linked", "run_task"]

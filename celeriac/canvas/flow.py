"""What a worker does once a task's outcome is stored: callbacks, errbacks, chord joins.

Runs in the canvas middleware's ``after_result`` hook, after the result is
stored and before the message is acked, so a crash repeats these steps rather
than loses them. Everything sent here keeps the ids chosen when the workflow
was first sent, so a repeat sends the same tasks again (at least once).

* Success: each callback is sent with the result as its first argument.
* Failure (or revocation): the task's errbacks are sent, and every task that
  would have run after it (the rest of a chain, a chord waiting on it) gets the
  same failure as its result, so ``get()`` on any of them raises it.
* A chord part, either way, is reported to ``backend.chord_part_done``; the
  call that completes the chord sends the body with every result in order, or
  stores the first failure as the body's result and sends its errbacks once.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import states
from ..backends.base import TaskMeta, exception_to_dict
from ..exceptions import BackendError, BrokerError, Reject, TaskError
from ..message import Message
from .build import build, prepare
from .context import Context
from .errbacks import ERRBACK_HEADER, failure_info
from .signature import Signature, maybe_signature

if TYPE_CHECKING:
    from ..app import Celeriac
    from ..worker.job import Job

logger = logging.getLogger("celeriac.canvas")
_FINAL = (states.SUCCESS, states.FAILURE, states.REVOKED)
_TRANSIENT = (BrokerError, BackendError, ConnectionError, OSError)  # a redelivery may succeed


@dataclass(frozen=True, slots=True)
class Failure:
    """A failure as stored: state, the exception as a dict, and the traceback."""

    state: str
    result: Any
    traceback: str | None

    @classmethod
    def of(cls, exc: BaseException) -> Failure:
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        return cls(states.FAILURE, exception_to_dict(exc), text)


def has_work(message: Message) -> bool:
    """Whether a finished message has callbacks, errbacks or a chord to report to."""
    return bool(message.callbacks or message.errbacks or message.chord)


def is_final(job: Job) -> bool:
    """The task will not run again: not retrying, not handed back to its queue."""
    if job.state not in _FINAL or job.retry_message is not None:
        return False
    return not (isinstance(job.exception, Reject) and job.exception.requeue)


def on_result(job: Job) -> None:
    """Callbacks or errbacks and failed dependants, then the chord join."""
    if not is_final(job):
        return
    app, message = job.app, job.message
    if job.state == states.SUCCESS:
        send_callbacks(app, message, job.result)
    else:
        meta = job.meta()
        failure = Failure(meta.state, meta.result, meta.traceback)
        send_errbacks(app, message.errbacks, message, failure, job.request.hostname)
        fail(app, _signatures(app, message.callbacks), failure, message)
    if message.chord is not None and message.group_id is not None:
        redelivered = job.delivery is not None and job.delivery.deliveries > 1
        join(app, message.group_id, message.group_index or 0, message.chord, message, redelivered)


def _signatures(app: Celeriac, items: Iterable[Any]) -> list[Signature]:
    found = []
    for item in items:
        try:
            found.append(maybe_signature(item, app))
        except Exception as exc:
            logger.error("a workflow step in a message is not a signature, skipped: %s", exc)
    return found


def send_callbacks(app: Celeriac, parent: Message, value: Any) -> None:
    """Send every callback with ``value`` first, in one batch; a bad one fails alone."""
    messages: list[Message] = []
    for callback in _signatures(app, parent.callbacks):
        try:
            messages += build(app, callback, (value,), parent.id, parent.root_id)
        except _TRANSIENT:
            raise
        except Exception as exc:
            logger.error("callback %r of task %s cannot be sent: %r", callback, parent.id, exc)
            fail(app, [callback], Failure.of(exc), parent)
    if messages:
        app.publish(messages)


def send_errbacks(
    app: Celeriac,
    errbacks: Iterable[Any],
    failed: Message,
    failure: Failure,
    hostname: str | None = None,
) -> None:
    """Send errbacks; the failure rides in a header (see ``celeriac.canvas.errbacks``)."""
    info = failure_info(failed, failure.result, failure.traceback, hostname)
    ctx = Context(app, failed.id, failed.root_id, check_arguments=False)
    messages: list[Message] = []
    for errback in _signatures(app, errbacks):
        try:
            prepare(app, errback)
            if errback.immutable:
                messages += errback._messages(ctx)
            elif errback.is_workflow:
                messages += errback._messages(ctx, (failed.id,))
            else:
                for m in errback._messages(ctx):
                    messages.append(m.replace(headers={**m.headers, ERRBACK_HEADER: info}))
        except _TRANSIENT:
            raise
        except Exception as exc:
            logger.error("errback %r of task %s cannot be sent: %r", errback, failed.id, exc)
    if messages:
        app.publish(messages)


def fail(app: Celeriac, nodes: Sequence[Signature], failure: Failure, parent: Message) -> None:
    """Give every task in ``nodes`` (and after them) the failure; report their chord parts."""
    metas: list[TaskMeta] = []
    joins: list[tuple[str, int, dict[str, Any]]] = []
    now = time.time()
    for node in nodes:
        for sig in node._walk():
            if sig.id is None:  # nobody holds a result for it
                continue
            options = sig.options
            metas.append(
                TaskMeta(
                    sig.id,
                    failure.state,
                    failure.result,
                    failure.traceback,
                    name=sig.task,
                    parent_id=parent.id,
                    root_id=parent.root_id,
                    group_id=options.get("group_id"),
                    date_done=now,
                )
            )
            if options.get("chord") is not None and options.get("group_id") is not None:
                joins.append(
                    (options["group_id"], options.get("group_index") or 0, options["chord"])
                )
    if metas:
        app.backend.store(metas)
    for group_id, index, chord in joins:
        join(app, group_id, index, chord, parent, redelivered=False)


def join(
    app: Celeriac,
    group_id: str,
    index: int,
    chord: Mapping[str, Any],
    parent: Message,
    redelivered: bool,
) -> None:
    """Report one chord part; the call that completes the chord fires its body."""
    backend = app.backend
    if backend.chord_part_done(group_id, index, int(chord["size"])):
        fire(app, group_id, chord, parent)
    elif redelivered and _body_lost(app, group_id, chord):
        # This part completed the chord before, and its worker died before the
        # body was sent (or before the ack): send it now, at least once.
        logger.warning("chord %s completed but its body was not sent: sending it", group_id)
        fire(app, group_id, chord, parent)


def _body_lost(app: Celeriac, group_id: str, chord: Mapping[str, Any]) -> bool:
    ids = app.backend.get_group(group_id)
    if ids is None:
        return False
    metas = app.backend.get_many(ids)
    if len(metas) < len(ids) or not all(m.ready for m in metas.values()):
        return False  # still running: the part that finishes last fires it
    entry = maybe_signature(chord["callback"], app)._entry_id()
    return entry is not None and not app.backend.get_many([entry])


def fire(app: Celeriac, group_id: str, chord: Mapping[str, Any], parent: Message) -> None:
    """Send the body with the header's results in order, or fail it with the first failure."""
    body = maybe_signature(chord["callback"], app)
    ids = app.backend.get_group(group_id)
    if ids is None:
        failure = Failure.of(TaskError(f"chord {group_id}: its members expired from the backend"))
        return _fail_body(app, body, failure, parent)
    metas = app.backend.get_many(ids)
    values = []
    for task_id in ids:
        meta = metas.get(task_id)
        if meta is None:
            error = TaskError(
                f"chord {group_id}: header task {task_id} has no stored result "
                "(expired, or its result was not stored)"
            )
            return _fail_body(app, body, Failure.of(error), parent)
        if not meta.ready:  # running again after a redelivery: that run fires the body
            return None
        if meta.state != states.SUCCESS:
            return _fail_body(app, body, Failure(meta.state, meta.result, meta.traceback), parent)
        values.append(meta.result)
    try:
        messages = build(app, body, (values,), parent.id, parent.root_id)
    except _TRANSIENT:
        raise
    except Exception as exc:
        logger.error("chord %s: its body %r cannot be sent: %r", group_id, body, exc)
        return _fail_body(app, body, Failure.of(exc), parent)
    app.publish(messages)
    return None


def _fail_body(app: Celeriac, body: Signature, failure: Failure, parent: Message) -> None:
    prepare(app, body)
    entry = Message(body._entry_id() or "", body.task, parent_id=parent.id, root_id=parent.root_id)
    send_errbacks(app, body._entry_errbacks(), entry, failure)
    fail(app, [body], failure, parent)


__all__ = ["Failure", "fail", "fire", "has_work", "is_final", "join", "on_result"]

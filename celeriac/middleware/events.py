"""Task events: what happened to each task, published to the broker's event stream.

Producers send ``task-sent``; workers send ``task-received`` and
``task-started`` just before the task runs (this middleware is last, so
revoked, expired and rate-limited messages never look started), then one of
``task-succeeded``, ``task-failed``, ``task-retried``, ``task-rejected`` or
``task-revoked`` after the ack (``task-delayed``, with ``eta`` and ``reason``, when its rate
limit put it back in the delayed set). Each hook only hands its events to the
process's :class:`~celeriac.events.EventDispatcher` (the first two held, to
travel with the outcome as one group): no broker round trip on the task's
path. ``worker_send_task_events`` (default on) turns the worker's events off;
``task_send_sent_event`` (default on) the producer's.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from .. import states
from ..events.dispatcher import dispatcher_for
from ..events.event import (
    TASK_DELAYED,
    TASK_FAILED,
    TASK_RECEIVED,
    TASK_REJECTED,
    TASK_RETRIED,
    TASK_REVOKED,
    TASK_SENT,
    TASK_STARTED,
    TASK_SUCCEEDED,
)
from ..exceptions import Reject
from .base import Middleware, SkipMessage
from .rate_limit import SLOT_HEADER

if TYPE_CHECKING:
    from ..app import Celeriac
    from ..message import Message
    from ..worker.job import Job


def _add_optional(fields: dict[str, Any], message: Message, names: tuple[str, ...]) -> None:
    """Fields most messages do not set, only when they are set."""
    for name in names:
        value = getattr(message, name)
        if value is not None:
            fields[name] = value


def chord_of(message: Message) -> dict[str, Any] | None:
    """What a tool needs to draw a chord header task's join: the callback and the size."""
    if not message.chord:
        return None
    callback = message.chord.get("callback") or {}
    options = callback.get("options") or {}
    return {
        "callback": callback.get("task"),
        "callback_id": options.get("task_id"),
        "size": message.chord.get("size"),
    }


class TaskEvents(Middleware):
    """Publishes the life of every task as events."""

    def after_enqueue(self, app: Celeriac, message: Message) -> None:
        if not app.conf.task_send_sent_event:
            return
        if message.retries or SLOT_HEADER in message.headers:
            return  # a retry or a rate-limited wait: the worker's events already tell it
        # What is not set is left out, as is a root that is the task itself (readers
        # fill it back in, see Event.from_dict): every queued task's event waits in the
        # stream with it, so its bytes count in what a queued task costs the broker.
        fields: dict[str, Any] = {
            # the send's time, taken before the publish: a worker may be quicker
            "timestamp": message.sent_at or time.time(),
            "uuid": message.id,
            "name": message.task,
            "args": message.args,
            "kwargs": message.kwargs,
            "queue": message.queue,
            "priority": message.priority,
            "retries": 0,
        }
        if message.parent_id is not None or message.eta is not None or message.expires is not None:
            _add_optional(fields, message, ("eta", "expires", "parent_id"))
        if message.root_id is not None and message.root_id != message.id:
            fields["root_id"] = message.root_id
        if message.group_id is not None or message.group_index is not None:
            _add_optional(fields, message, ("group_id", "group_index"))
        if message.chord:
            fields["chord"] = chord_of(message)
        dispatcher_for(app).send(TASK_SENT, **fields)

    def before_process(self, job: Job) -> None:
        if job.request.is_eager or not job.app.conf.worker_send_task_events:
            return
        started = {"type": TASK_STARTED, "timestamp": time.time()}  # the rest from received
        dispatcher_for(job.app).hold(job.message.id, [self._received(job), started])

    def _received(self, job: Job) -> dict[str, Any]:
        message = job.message
        fields = {
            "type": TASK_RECEIVED,
            "timestamp": job.received_at or time.time(),
            "uuid": message.id,
            "name": message.task,
            "hostname": job.request.hostname,
            "args": message.args,
            "kwargs": message.kwargs,
            "queue": message.queue,
            "priority": message.priority,
            "retries": message.retries,
            "root_id": message.root_id,
        }
        if message.parent_id is not None or message.eta is not None or message.expires is not None:
            _add_optional(fields, message, ("eta", "expires", "parent_id"))
        if message.group_id is not None or message.group_index is not None:
            _add_optional(fields, message, ("group_id", "group_index"))
        if message.chord:
            fields["chord"] = chord_of(message)
        return fields

    def after_ack(self, job: Job) -> None:
        if job.request.is_eager or not job.app.conf.worker_send_task_events:
            return
        message = job.message
        fields = {
            "type": TASK_SUCCEEDED,
            "timestamp": time.time(),
            "uuid": message.id,
            "name": message.task,
            "hostname": job.request.hostname,
            "retries": message.retries,
            "queue": message.queue,
        }
        if job.state == states.SUCCESS and job.skipped is None:  # the usual case, kept lean
            fields["result"] = job.result
            fields["runtime"] = job.runtime
        elif not self._outcome(job, fields):
            return
        # With the task's received and started events, when they are still held.
        dispatcher_for(job.app).put(fields, message.id)

    def _outcome(self, job: Job, fields: dict[str, Any]) -> bool:
        """Fill in an outcome other than success; False when there is none to tell."""
        if job.skipped is not None:
            return self._skipped(job, job.skipped, fields)
        exc = job.exception
        if isinstance(exc, Reject):
            fields.update(
                type=TASK_REJECTED,
                reason=str(exc.reason),
                requeue=bool(exc.requeue),
                runtime=job.runtime,
            )
        elif job.state == states.RETRY:
            fields.update(
                type=TASK_RETRIED,
                exception=repr(exc),
                traceback=job.traceback,
                eta=job.retry_at,
                runtime=job.runtime,
            )
        elif job.state == states.FAILURE:
            fields.update(
                type=TASK_FAILED,
                exception=repr(exc),
                traceback=job.traceback,
                runtime=job.runtime,
            )
        elif job.state == states.REVOKED:
            fields.update(type=TASK_REVOKED, reason="revoked", terminated=False)
        else:
            return False
        return True

    def _skipped(self, job: Job, skipped: SkipMessage, fields: dict[str, Any]) -> bool:
        """A task not run here: put off (a rate limit), revoked, expired, or already stopped."""
        if skipped.waits:  # back in the broker until its slot
            eta = skipped.later.eta if skipped.later is not None else None
            fields.update(type=TASK_DELAYED, reason=skipped.reason, eta=eta)
            return True
        if skipped.exception is not None:
            # Stopped from outside (a hard time limit): the worker that ran it stored the
            # failure and sent task-failed; this one only finishes its follow-ups.
            return False
        if not job.started_at:
            dispatcher_for(job.app).put(self._received(job))
        fields.update(
            type=TASK_REVOKED,
            reason=skipped.reason,
            expired=skipped.reason.startswith("expired"),
            terminated=False,
        )
        return True

    def worker_stop(self, app: Celeriac, worker: Any) -> None:
        dispatcher_for(app).flush()

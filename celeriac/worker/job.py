"""One message being run: the :class:`Job` middleware sees, and the :class:`Executor`.

The executor is the worker's hot path. For each delivery it decodes the
message, runs the middleware and the task, stores the outcome and acks, in
that order (late ack: a crash anywhere before the ack means the message is
delivered again, never lost).
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import states
from ..backends import REPLY_TO
from ..backends.base import TaskMeta, exception_to_dict
from ..backends.disabled import DisabledBackend
from ..events.dispatcher import dispatcher_for
from ..events.event import TASK_FAILED
from ..exceptions import Ignore, MessageDecodeError, NotRegistered, Reject, Retry
from ..message import Delivery, Message, decode
from ..middleware.base import Middleware, SkipMessage
from ..request import Request, reset_current_request, set_current_request

if TYPE_CHECKING:
    from ..app import Celeriac
    from ..backends.base import Backend
    from ..brokers.base import Broker
    from ..task import Task

logger = logging.getLogger("celeriac.worker")


@dataclass(slots=True, eq=False)
class Job:
    """A message on its way through one worker: what middleware reads and changes."""

    app: Celeriac
    message: Message
    task: Task[Any, Any]
    request: Request
    delivery: Delivery | None = None  # None when run eagerly
    state: str = states.STARTED
    result: Any = None
    exception: BaseException | None = None
    traceback: str | None = None
    retry_at: float | None = None  # set by middleware: run again at this time
    retry_message: Message | None = None  # the message that retry publishes
    received_at: float = 0.0
    started_at: float = 0.0
    finished_at: float = 0.0
    skipped: SkipMessage | None = None
    acked: bool = False  # acked on receipt (acks_late=False)
    consumer: str = ""  # the consumer that holds the delivery (its leases name it)

    @property
    def runtime(self) -> float:
        """Seconds the task ran; 0 for one that never started (stopped by middleware)."""
        if not self.started_at:
            return 0.0
        return max(0.0, self.finished_at - self.started_at)

    def meta(self) -> TaskMeta:
        """The record the result backend stores for this job."""
        message = self.message
        failed = self.state in states.EXCEPTION_STATES
        result = self.result
        if failed:
            if self.exception is not None:
                result = exception_to_dict(self.exception)
            elif self.skipped is not None:
                result = {
                    "exc_type": "TaskRevokedError",
                    "exc_module": "celeriac.exceptions",
                    "exc_message": self.skipped.reason,
                    "exc_args": [self.skipped.reason],
                }
        extended = self.app.conf.result_extended
        return TaskMeta(
            task_id=message.id,
            state=self.state,
            result=result,
            traceback=self.traceback if failed else None,
            name=message.task,
            args=list(message.args) if extended else None,
            kwargs=message.kwargs if extended else None,
            queue=message.queue,
            worker=self.request.hostname,
            retries=message.retries,
            parent_id=message.parent_id,
            root_id=message.root_id,
            group_id=message.group_id,
            children=list(self.request.children),
            reply_to=message.headers.get(REPLY_TO),
            date_received=self.received_at or None,
            date_started=self.started_at or None,
            date_done=self.finished_at or time.time(),
        )


def _requeued(job: Job) -> bool:
    """The task refused its message back to its queue: it will run again."""
    return isinstance(job.exception, Reject) and job.exception.requeue


def _outcome(job: Job) -> str:
    """How a task ended, in a word or a few: succeeded, retried, revoked (why), delayed..."""
    skipped = job.skipped
    if skipped is not None:
        return ("delayed: " if skipped.waits else "not run: ") + skipped.reason
    words = {states.SUCCESS: "succeeded", states.RETRY: "retried", states.REVOKED: "revoked"}
    return words.get(job.state, job.state.lower())


class Executor:
    """Runs deliveries for one consumer (a process, a thread, or an eager call)."""

    def __init__(
        self,
        app: Celeriac,
        hostname: str,
        consumer_id: str,
        broker: Broker | None,
        backend: Backend | None,
        on_start: Callable[[Job], None] | None = None,
        on_finish: Callable[[Job], None] | None = None,
        run_coroutine: Callable[[Coroutine[Any, Any, Any], Job], Any] | None = None,
    ) -> None:
        self.app = app
        self.hostname = hostname
        self.consumer_id = consumer_id
        self.broker = broker
        self.backend = backend
        self.on_start = on_start
        self.on_finish = on_finish
        # How an async task's coroutine is run to completion in this thread; the
        # worker passes one that applies time limits.
        self.run_coroutine = run_coroutine or self._run_coroutine
        self.processed = 0
        # Set by a consumer that flushes within a bound (see Broker.ack_soon): an ack
        # with nothing to store may then travel with the consumer's next broker call.
        self.acks_may_wait = False
        self._loop: asyncio.AbstractEventLoop | None = None
        mw = app.middleware
        self._before = mw.before_process
        self._after = list(reversed(mw.after_process))
        self._after_result = mw.after_result
        self._after_ack = mw.after_ack
        self._debug = logger.isEnabledFor(logging.DEBUG)
        self._log_outcomes = bool(app.conf.get("worker_log_task_outcomes", True)) and (
            logger.isEnabledFor(logging.INFO)
        )

    # -- from delivery to job ------------------------------------------------------
    def prepare(self, delivery: Delivery) -> Job | None:
        """Decode a delivery; dead-letter what cannot be run and return None."""
        assert self.broker is not None
        try:
            message = decode(delivery.body, self.app.codec, delivery)
        except MessageDecodeError as exc:
            logger.error(
                "message %s from queue %s cannot be decoded, dead-lettered: %s",
                delivery.id,
                delivery.queue,
                exc,
            )
            self.broker.dead_letter(self.consumer_id, delivery.tag, f"undecodable: {exc}")
            return None
        task = self.app.tasks.get(message.task)
        if task is None:
            self._unknown_task(delivery, message)
            return None
        if delivery.deliveries > 1 and self._finished_before(message):
            logger.warning(
                "task %s[%s] came again after it finished (its ack was lost with a "
                "connection or a process): acked, not run again",
                message.task,
                message.id,
            )
            self.broker.ack(self.consumer_id, [delivery.tag])
            return None
        if delivery.deliveries > self.broker.max_deliveries:
            reason = (
                f"delivered {delivery.deliveries - 1} times without an ack "
                f"(max_deliveries={self.broker.max_deliveries})"
            )
            logger.error("task %s[%s] dead-lettered: %s", message.task, message.id, reason)
            self.broker.dead_letter(self.consumer_id, delivery.tag, reason)
            return None
        request = Request.from_message(message, self.hostname, delivery.deliveries)
        return Job(
            self.app,
            message,
            task,
            request,
            delivery,
            received_at=time.time(),
            consumer=self.consumer_id,
        )

    def _finished_before(self, message: Message) -> bool:
        """Whether a message handed out before already ran to the end: its success is
        stored (a failure may be stored for a message given back on purpose, such as
        ``Reject(requeue=True)``). Asked of redeliveries only; when the backend cannot
        tell (none, disabled, unreachable), the message runs again (at least once), and
        so does one with workflow steps after it (callbacks, a chord's join), which may
        not have been sent when its process died between the result and the ack."""
        assert self.backend is not None
        if message.ignore_result or isinstance(self.backend, DisabledBackend):
            return False
        if message.callbacks or message.errbacks or message.chord:
            return False
        try:
            meta = self.backend.get_many([message.id]).get(message.id)
        except Exception:  # an outage of the backend: run it, as without this check
            logger.debug("cannot tell whether %s finished before", message.id, exc_info=True)
            return False
        return meta is not None and meta.state == states.SUCCESS

    def _unknown_task(self, delivery: Delivery, message: Message) -> None:
        assert self.broker is not None and self.backend is not None
        exc = NotRegistered(
            f"task {message.task!r} is not registered on worker {self.hostname}: the message "
            "was dead-lettered; deploy the task and requeue it (celeriac dead-letters requeue)"
        )
        logger.error("%s", exc)
        self.backend.store(
            [
                TaskMeta(
                    message.id,
                    states.FAILURE,
                    exception_to_dict(exc),
                    name=message.task,
                    queue=message.queue,
                    worker=self.hostname,
                    date_done=time.time(),
                )
            ]
        )
        if self._after_result:  # dependants (a chain's next step, a chord) learn it failed
            job = Job(
                self.app,
                message,
                self.app.sendable_task(message.task),
                Request.from_message(message, self.hostname, delivery.deliveries),
                delivery,
                state=states.FAILURE,
                exception=exc,
                finished_at=time.time(),
            )
            for middleware in self._after_result_for(job):
                middleware.after_result(job)
        reason = f"unknown task {message.task}"
        self.broker.dead_letter(self.consumer_id, delivery.tag, reason)
        if self.app.conf.worker_send_task_events:  # the dashboard shows what the backend says
            dispatcher_for(self.app).send(
                TASK_FAILED,
                uuid=message.id,
                name=message.task,
                hostname=self.hostname,
                queue=message.queue,
                exception=repr(exc),
                reason=reason,
                dead_letter=message.queue,
            )

    # -- running ---------------------------------------------------------------------
    def process(self, delivery: Delivery) -> Job | None:
        """Prepare, run, store and ack one delivery."""
        job = self.prepare(delivery)
        if job is not None:
            self.run(job)
            self.finish(job)
        return job

    def run(self, job: Job) -> None:
        """Run the middleware and the task; the outcome lands on ``job``."""
        token = set_current_request(job.request)
        try:
            if self.begin(job):
                self._call(job)
                self.end(job)
        finally:
            reset_current_request(token)

    def begin(self, job: Job) -> bool:
        """Ack on receipt if the task asks for it, then ``before_process``; False if skipped."""
        if job.delivery is not None and not job.task.effective_acks_late:
            assert self.broker is not None
            self.broker.ack(self.consumer_id, [job.delivery.tag])  # at most once
            job.acked = True
        try:
            for hook in self._before:
                hook(job)
        except SkipMessage as skip:
            job.skipped = skip
            job.state = skip.state or states.REVOKED
            job.exception = skip.exception
            job.finished_at = job.finished_at or time.time()  # a middleware may know better
            return False
        return True

    def end(self, job: Job) -> None:
        """``after_process``, in reverse order."""
        for hook in self._after:
            hook(job)

    def _call(self, job: Job) -> None:
        message, task = job.message, job.task
        self.started(job)
        try:
            if task.is_async:
                value = self.run_coroutine(task(*message.args, **message.kwargs), job)
            else:
                value = task(*message.args, **message.kwargs)
            job.result, job.state = value, states.SUCCESS
        except Exception as exc:
            self.failed(job, exc)
        finally:
            self.stopped(job)

    def started(self, job: Job) -> None:
        """The task is about to run."""
        job.started_at = time.time()
        if self.on_start is not None:
            self.on_start(job)
        if self._debug:
            logger.debug("task %s[%s] started", job.message.task, job.message.id)

    def failed(self, job: Job, exc: Exception) -> None:
        """Record what the task raised: a retry request, a rejection, or a failure."""
        job.exception = exc
        if isinstance(exc, Retry):
            job.state = states.RETRY
        elif isinstance(exc, Ignore):
            job.state = states.IGNORED
        elif isinstance(exc, Reject):
            job.state = states.FAILURE
        else:
            job.state = states.FAILURE
            job.traceback = traceback.format_exc()

    def stopped(self, job: Job) -> None:
        """The task returned or raised."""
        job.finished_at = time.time()
        if self.on_finish is not None:
            self.on_finish(job)

    def _run_coroutine(self, coro: Coroutine[Any, Any, Any], job: Job) -> Any:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(coro)

    # -- after the run -------------------------------------------------------------
    def finish(self, job: Job) -> None:
        """Store the outcome, publish follow-ups, then ack (or retry, or dead-letter)."""
        assert self.broker is not None and self.backend is not None and job.delivery is not None
        self.processed += 1
        self._log_outcome(job)
        skip = job.skipped
        if skip is not None and skip.waits:  # waits in the delayed set or a wait list
            self._put_off(job, skip.later)
            return
        if job.retry_message is not None:
            self.app.publish([job.retry_message])
        metas = [job.meta()] if self._should_store(job) else []
        after_result = self._after_result_for(job)
        if not after_result and not job.acked and not isinstance(job.exception, Reject):
            # nothing must run between the result and the ack: send both at once
            if metas or not self.acks_may_wait:
                self.broker.complete(self.consumer_id, [job.delivery.tag], self.backend, metas)
            else:
                self.broker.ack_soon(self.consumer_id, [job.delivery.tag])
            for hook in self._after_ack:
                hook(job)
            return
        if metas:
            self.backend.store(metas)
        token = set_current_request(job.request)  # what it sends is its follow-up work
        try:
            for middleware in after_result:
                middleware.after_result(job)
        finally:
            reset_current_request(token)
        if isinstance(job.exception, Reject) and not job.exception.requeue:
            self.broker.dead_letter(
                self.consumer_id, job.delivery.tag, f"rejected: {job.exception.reason}"
            )
        elif isinstance(job.exception, Reject):
            self.broker.release(self.consumer_id, [job.delivery.tag], count=True)
        elif not job.acked:
            self.broker.ack(self.consumer_id, [job.delivery.tag])
        for hook in self._after_ack:
            hook(job)

    def _after_result_for(self, job: Job) -> list[Middleware]:
        """The middleware whose ``after_result`` has work for this job."""
        return [m for m in self._after_result if m.wants_after_result(job)]

    def _should_store(self, job: Job) -> bool:
        if job.state == states.IGNORED or _requeued(job):
            return False  # nothing to say, or the task will run again
        if not job.message.ignore_result:
            return True
        failed = job.state in (states.FAILURE, states.REVOKED)
        return failed and bool(self.app.conf.task_store_errors_even_if_ignored)

    def _put_off(self, job: Job, later: Message | None) -> None:
        """Back to the delayed set without running (a rate limit's slot), then acked;
        with no ``later``, the broker keeps it already (parked for a concurrency slot)."""
        assert self.broker is not None and job.delivery is not None
        if later is not None:
            self.app.publish([later])
        if not job.acked:
            self.broker.ack(self.consumer_id, [job.delivery.tag])
        for hook in self._after_ack:  # its events say where it waits, and why
            hook(job)

    def _log_outcome(self, job: Job) -> None:
        message = job.message
        if job.state == states.FAILURE:
            logger.error(
                "task %s[%s] failed in %.3fs: %r\n%s",
                message.task,
                message.id,
                job.runtime,
                job.exception,
                job.traceback or "",
            )
        elif self._log_outcomes:
            logger.info(
                "task %s[%s] %s in %.3fs", message.task, message.id, _outcome(job), job.runtime
            )

    def close(self) -> None:
        if self._loop is not None:
            self._loop.close()
            self._loop = None

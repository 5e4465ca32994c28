"""OpenTelemetry tracing: a task's run is a child of the span that sent it.

Needs the ``tracing`` extra (opentelemetry-api; an SDK and an exporter are the
application's choice). Add it to the app that sends and the app that works, which
is usually one module::

    from celeriac.middleware.tracing import Tracing
    app.middleware.add(Tracing())

Sending a task starts a ``send <task>`` span (kind PRODUCER), a child of the span
current in the sender, and writes its context into the message's headers (W3C
``traceparent``/``tracestate``, through the globally configured propagator). The
worker starts ``run <task>`` (kind CONSUMER) as that span's child and keeps it
current while the task runs and while its follow-up work is sent, so a chain's next
step, a chord's callback or a retry is a child of the run that sent it: one tree
from the first sender to the last task. Attributes: ``celeriac.task.name``,
``celeriac.task.id``, ``messaging.destination.name`` (the queue),
``celeriac.task.retries`` and ``celeriac.task.state`` (the outcome); a failure sets
the span's status to ERROR and records the exception.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from .. import states
from ..exceptions import MissingExtraError
from ..version import __version__
from .base import Middleware

try:
    from opentelemetry import context as otel_context
    from opentelemetry import propagate, trace
except ImportError as exc:  # pragma: no cover - the extra is missing
    raise MissingExtraError("tracing", "opentelemetry-api") from exc

if TYPE_CHECKING:
    from ..app import Celeriac
    from ..message import Message
    from ..worker.job import Job

_FAILED = frozenset({states.FAILURE})


def _attributes(message: Message) -> dict[str, Any]:
    return {
        "celeriac.task.name": message.task,
        "celeriac.task.id": message.id,
        "messaging.destination.name": message.queue,
        "celeriac.task.retries": message.retries,
    }


class Tracing(Middleware):
    """Spans for sending and running tasks, joined through the message's headers."""

    def __init__(self, tracer_provider: trace.TracerProvider | None = None) -> None:
        self._tracer = trace.get_tracer("celeriac", __version__, tracer_provider=tracer_provider)
        self._lock = threading.Lock()
        self._running: dict[int, tuple[trace.Span, object]] = {}  # id(job) -> span, token

    # -- the sender -------------------------------------------------------------------
    def before_enqueue(self, app: Celeriac, message: Message) -> Message:
        span = self._tracer.start_span(
            f"send {message.task}", kind=trace.SpanKind.PRODUCER, attributes=_attributes(message)
        )
        carrier: dict[str, str] = {}
        propagate.inject(carrier, context=trace.set_span_in_context(span))
        span.end()  # marks the send: ended here, so a publish that fails leaves nothing open
        return message.replace(headers={**message.headers, **carrier})

    # -- the worker -------------------------------------------------------------------
    def before_process(self, job: Job) -> None:
        message = job.message
        parent = propagate.extract(message.headers)
        span = self._tracer.start_span(
            f"run {message.task}",
            context=parent,
            kind=trace.SpanKind.CONSUMER,
            attributes=_attributes(message),
        )
        token = otel_context.attach(trace.set_span_in_context(span))
        with self._lock:
            self._running[id(job)] = (span, token)

    def after_ack(self, job: Job) -> None:
        with self._lock:
            found = self._running.pop(id(job), None)
        if found is None:
            return  # skipped before this middleware's turn
        span, token = found
        span.set_attribute("celeriac.task.state", job.state)
        if job.state in _FAILED:
            if isinstance(job.exception, BaseException):
                span.record_exception(job.exception)
            span.set_status(trace.Status(trace.StatusCode.ERROR, str(job.exception)))
        span.end()
        otel_context.detach(token)  # type: ignore[arg-type]

"""OpenTelemetry tracing: sender -> worker -> chained task as one trace, in-memory exporter."""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Iterator

import pytest

from tests.needs import need_module

need_module("opentelemetry.sdk", "tracing")

from opentelemetry import trace  # noqa: E402
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: E402
    InMemorySpanExporter,
)

from celeriac import Celeriac, chain, chord  # noqa: E402
from celeriac.middleware.tracing import Tracing  # noqa: E402
from celeriac.worker.job import Executor  # noqa: E402


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


@pytest.fixture
def app(provider: TracerProvider) -> Iterator[Celeriac]:
    url = f"memory://tracing-{uuid.uuid4().hex}"
    app = Celeriac("traced", broker=url, backend=url, set_as_current=False)
    app.middleware.add(Tracing(tracer_provider=provider))
    yield app
    app.close()


def work(app: Celeriac, until: int, exporter: InMemorySpanExporter) -> None:
    """Run what arrives, in this thread, until ``until`` run spans ended."""
    executor = Executor(app, "w", "c", app.broker, app.backend)
    deadline = time.monotonic() + 10
    while sum(s.name.startswith("run ") for s in exporter.get_finished_spans()) < until:
        assert time.monotonic() < deadline, [s.name for s in exporter.get_finished_spans()]
        for delivery in app.broker.fetch(["celeriac"], "c", 10, 0.1):
            executor.process(delivery)
    executor.close()


def _parent(span: ReadableSpan, spans: list[ReadableSpan]) -> ReadableSpan | None:
    if span.parent is None:
        return None
    return next(s for s in spans if s.context.span_id == span.parent.span_id)


def test_sender_worker_and_chained_task_form_one_tree(
    app: Celeriac, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    @app.task(name="t.add")
    def add(a: int, b: int) -> int:
        return a + b

    @app.task(name="t.double")
    def double(n: int) -> int:
        return 2 * n

    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("request") as request:
        result = chain(add.s(1, 2), double.s()).apply_async()
    work(app, 2, exporter)

    spans = list(exporter.get_finished_spans())
    by_name = {s.name: s for s in spans}
    assert set(by_name) == {"request", "send t.add", "run t.add", "send t.double", "run t.double"}
    lineage = [
        "run t.double",
        "send t.double",
        "run t.add",
        "send t.add",
        "request",
    ]
    for child, parent in itertools.pairwise(lineage):
        found = _parent(by_name[child], spans)
        assert found is not None and found.name == parent, (child, found and found.name)
    assert {s.context.trace_id for s in spans} == {request.get_span_context().trace_id}

    run = by_name["run t.double"]
    assert run.kind is trace.SpanKind.CONSUMER
    assert by_name["send t.add"].kind is trace.SpanKind.PRODUCER
    assert run.attributes is not None
    assert run.attributes["celeriac.task.name"] == "t.double"
    assert run.attributes["celeriac.task.id"] == result.id
    assert run.attributes["messaging.destination.name"] == "celeriac"
    assert run.attributes["celeriac.task.state"] == "SUCCESS"
    assert run.attributes["celeriac.task.retries"] == 0


def test_a_failure_and_its_retry_are_recorded(
    app: Celeriac, exporter: InMemorySpanExporter
) -> None:
    @app.task(name="t.flaky", bind=True, max_retries=1)
    def flaky(self: object) -> None:
        if self.request.retries == 0:  # type: ignore[attr-defined]
            raise self.retry(countdown=0)  # type: ignore[attr-defined]
        raise ValueError("still broken")

    flaky.delay()
    work(app, 2, exporter)

    spans = list(exporter.get_finished_spans())
    runs = sorted(
        (s for s in spans if s.name == "run t.flaky"),
        key=lambda s: s.attributes["celeriac.task.retries"] if s.attributes else 0,
    )
    assert [r.attributes and r.attributes["celeriac.task.state"] for r in runs] == [
        "RETRY",
        "FAILURE",
    ]
    assert runs[1].status.status_code is trace.StatusCode.ERROR
    assert any(e.name == "exception" for e in runs[1].events)
    # the retry was sent from the first attempt: its send span is that run's child
    retry_send = _parent(runs[1], spans)
    assert retry_send is not None and _parent(retry_send, spans) == runs[0]


def test_a_chord_callback_joins_the_tree(
    app: Celeriac, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    @app.task(name="t.add")
    def add(a: int, b: int) -> int:
        return a + b

    @app.task(name="t.total")
    def total(numbers: list[int]) -> int:
        return sum(numbers)

    with provider.get_tracer("test").start_as_current_span("request") as request:
        chord([add.s(1, 1), add.s(2, 2)], total.s()).apply_async()
    work(app, 3, exporter)

    spans = list(exporter.get_finished_spans())
    callback = next(s for s in spans if s.name == "run t.total")
    ancestors, span = [], _parent(callback, spans)
    while span is not None:
        ancestors.append(span.name)
        span = _parent(span, spans)
    assert ancestors[:3] == ["send t.total", "run t.add", "send t.add"]
    assert ancestors[-1] == "request"
    assert {s.context.trace_id for s in spans} == {request.get_span_context().trace_id}

"""What unique sends, worker metrics and tracing cost: tasks/s with and without each.

    python bench/telemetry_bench.py [--tasks 3000] [--rounds 3] [--broker sqlite]
                                    [--broker redis://localhost:6379/15]
                                    [--broker amqp://guest:guest@localhost:5672//]

Sending: ``delay()`` one at a time, plain, then each with its own ``unique_key``
(one claim per send: the cost every unique send pays), then all sends of one key
with ``debounce`` (each takes the key from the one before). Running: the same
no-op tasks through the executor in this process (the hot path alone), with no
extra middleware, with :class:`~celeriac.middleware.metrics.WorkerMetrics`
(prometheus-client, multiprocess files) and with
:class:`~celeriac.middleware.tracing.Tracing` (the OpenTelemetry SDK, spans ended
into an exporter that drops them). Each figure is the best of ``--rounds``, each
round on a fresh queue; prints the ratio to the plain figure.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from typing import Any

from celeriac import Celeriac
from celeriac.middleware.base import Middleware
from celeriac.worker.job import Executor


def _noop(i: int) -> int:
    return i


def _app(url: str, extra: Middleware | None = None) -> tuple[Celeriac, Any]:
    app = Celeriac("telemetrybench", broker=url, set_as_current=False)
    if extra is not None:
        app.middleware.add(extra)
    return app, app.task(name="telemetrybench.noop")(_noop)


def _send(url: str, tasks: int, how: str) -> float:
    app, noop = _app(url)
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    key = uuid.uuid4().hex
    start = time.perf_counter()
    for i in range(tasks):
        if how == "plain":
            noop.apply_async((i,), queue=queue)
        elif how == "unique":
            noop.apply_async((i,), queue=queue, unique_key=f"{key}-{i}", unique_for=60)
        else:
            noop.apply_async((i,), queue=queue, unique_key=key, debounce=60)
    elapsed = time.perf_counter() - start
    app.broker.purge(queue)
    app.close()
    return tasks / elapsed


def _metrics() -> Middleware:
    from celeriac.middleware.metrics import WorkerMetrics

    return WorkerMetrics(port=0)  # not served: worker_init does not run in-process


def _tracing() -> Middleware:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

    from celeriac.middleware.tracing import Tracing

    class Drop(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(Drop()))
    return Tracing(tracer_provider=provider)


def _run(url: str, tasks: int, extra: Callable[[], Middleware] | None) -> float:
    middleware = extra() if extra is not None else None
    app, noop = _app(url, middleware)
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    app.publish([noop.build_message((i,), {}, queue=queue) for i in range(tasks)])
    executor = Executor(app, "bench@host", "c1", app.connect_broker(), app.connect_backend())
    start = time.perf_counter()
    done = 0
    while done < tasks:
        for delivery in executor.broker.fetch([queue], "c1", 100, 1.0):  # type: ignore[union-attr]
            executor.process(delivery)
            done += 1
    elapsed = time.perf_counter() - start
    executor.close()
    if middleware is not None:
        middleware.worker_shutdown(app, None)  # WorkerMetrics: its files' directory goes
    app.close()
    return tasks / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--broker", default="sqlite", help="sqlite (a temporary file) or a URL")
    args = parser.parse_args()
    url, directory = args.broker, None
    if url == "sqlite":
        directory = tempfile.mkdtemp(prefix="telemetrybench-")
        url = f"sqlite:///{directory}/bench.sqlite3"
    prefix = f"telemetrybench{os.getpid()}"
    if url.startswith("redis") and "global_keyprefix" not in url:  # keys of our own
        url = f"{url}{'&' if '?' in url else '?'}global_keyprefix={prefix}"
    try:
        _measure(url, args.tasks, args.rounds)
    finally:
        if url.startswith("redis"):
            _forget_redis_keys(url, prefix)
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)


def _forget_redis_keys(url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(url.partition("?")[0])
    for key in client.scan_iter(match=f"*{prefix}*", count=1000):
        client.delete(key)
    client.close()


def _measure(url: str, tasks: int, rounds: int) -> None:
    args = argparse.Namespace(tasks=tasks, rounds=rounds)
    print(f"broker {url.split('@')[-1]}, {args.tasks} tasks, best of {args.rounds}")

    sends = {how: 0.0 for how in ("plain", "unique", "debounce")}
    for _ in range(args.rounds):
        for how in sends:
            sends[how] = max(sends[how], _send(url, args.tasks, how))
    for how, value in sends.items():
        print(f"send {how:9} {value:9.0f} tasks/s  {value / sends['plain']:6.1%}")

    runs: dict[str, Callable[[], Middleware] | None] = {
        "plain": None,
        "metrics": _metrics,
        "tracing": _tracing,
    }
    found = dict.fromkeys(runs, 0.0)
    for _ in range(args.rounds):
        for name, extra in runs.items():
            found[name] = max(found[name], _run(url, args.tasks, extra))
    for name, value in found.items():
        print(f"run  {name:9} {value:9.0f} tasks/s  {value / found['plain']:6.1%}")


if __name__ == "__main__":
    main()

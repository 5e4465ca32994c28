"""An app on a fresh memory broker and backend, its tasks, and in-process workers."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from celeriac import Celeriac
from celeriac.worker.job import Executor
from tests.e2e.workers import start_worker  # noqa: F401  (the fixture, for the end-to-end tests)


class Boom(Exception):
    """What the failing tasks raise."""


@dataclass
class Calls:
    """What tasks ran, in order, shared with the test."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    seen: list[tuple[str, Any]] = field(default_factory=list)

    def add(self, name: str, value: Any) -> None:
        with self.lock:
            self.seen.append((name, value))

    def named(self, name: str) -> list[Any]:
        with self.lock:
            return [value for n, value in self.seen if n == name]


@pytest.fixture
def calls() -> Calls:
    return Calls()


@pytest.fixture
def app(calls: Calls) -> Iterator[Celeriac]:
    url = f"memory://canvas-{uuid.uuid4().hex}"
    app = Celeriac("canvas-test", broker=url, backend=url, set_as_current=False)

    @app.task(name="t.add")
    def add(a: int, b: int) -> int:
        return a + b

    @app.task(name="t.mul")
    def mul(a: int, b: int) -> int:
        return a * b

    @app.task(name="t.tsum")
    def tsum(numbers: list[int]) -> int:
        calls.add("tsum", numbers)
        return sum(numbers)

    @app.task(name="t.boom")
    def boom(*args: Any) -> None:
        raise Boom(f"boom {args}")

    @app.task(name="t.record")
    def record(*args: Any, **kwargs: Any) -> Any:
        calls.add("record", (args, kwargs))
        return args[0] if args else None

    @app.task(name="t.on_error")
    def on_error(request: Any, exc: BaseException, traceback: str | None) -> None:
        calls.add("on_error", (request.id, request.task, repr(exc), bool(traceback)))

    @app.task(name="t.on_error_id")
    def on_error_id(task_id: str, note: str = "") -> None:
        calls.add("on_error_id", (task_id, note))

    yield app
    app.close()


@dataclass
class InProcessWorker:
    """Threads running the worker's executor over ``broker.fetch``, as a worker child does."""

    app: Celeriac
    queues: tuple[str, ...]
    threads: int = 2
    stop: threading.Event = field(default_factory=threading.Event)
    errors: list[BaseException] = field(default_factory=list)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> InProcessWorker:
        for n in range(self.threads):
            thread = threading.Thread(target=self._consume, args=(f"c{n}",), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def _consume(self, consumer: str) -> None:
        broker, backend = self.app.connect_broker(), self.app.connect_backend()
        executor = Executor(self.app, "test@host", consumer, broker, backend)
        try:
            while not self.stop.is_set():
                for delivery in broker.fetch(list(self.queues), consumer, 4, 0.05):
                    executor.process(delivery)
        except BaseException as exc:  # surfaced by the fixture: a worker must not die
            self.errors.append(exc)
            raise
        finally:
            executor.close()

    def close(self) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        assert not self.errors, f"the in-process worker failed: {self.errors!r}"


@pytest.fixture
def worker(app: Celeriac) -> Iterator[Callable[..., InProcessWorker]]:
    """Start in-process workers: ``worker()`` consumes the default queue."""
    started: list[InProcessWorker] = []

    def start(*queues: str, threads: int = 2) -> InProcessWorker:
        w = InProcessWorker(app, queues or ("celeriac",), threads).start()
        started.append(w)
        return w

    yield start
    for w in started:
        w.close()


def wait_for(condition: Callable[[], object], timeout: float = 10.0) -> None:
    """Poll ``condition`` until it is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {condition}"
        time.sleep(0.005)

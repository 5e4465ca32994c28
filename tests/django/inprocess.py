"""A worker in a thread of the test process, for tests that need no worker processes.

It consumes with the same :class:`~celeriac.worker.job.Executor` a real worker
uses, so middleware, result storage and acks behave as they do there.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from celeriac.worker.job import Executor


@contextmanager
def running_worker(
    app: Any, queues: Sequence[str], hostname: str = "inprocess@test"
) -> Iterator[None]:
    """Run ``app``'s tasks from ``queues`` in a thread until the block ends."""
    stop = threading.Event()
    failures: list[BaseException] = []

    def consume() -> None:
        from django.db import connections

        broker, backend = app.connect_broker(), app.connect_backend()
        executor = Executor(app, hostname, f"{hostname}-consumer", broker, backend)
        try:
            while not stop.is_set():
                for delivery in broker.fetch(list(queues), executor.consumer_id, 1, 0.02):
                    executor.process(delivery)
        except BaseException as exc:  # reported to the test when the block ends
            failures.append(exc)
        finally:
            executor.close()
            connections.close_all()

    thread = threading.Thread(target=consume, name=hostname, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)
    if failures:
        raise failures[0]
    assert not thread.is_alive(), "the in-process worker did not stop"

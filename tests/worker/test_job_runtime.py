"""A task that middleware stopped before it started ran for 0 s, not since 1970."""

from __future__ import annotations

import logging

import pytest

from celeriac import Celeriac, states
from celeriac.middleware import default_middleware
from celeriac.middleware.base import Middleware, SkipMessage
from celeriac.worker.job import Executor, Job


class Refuse(Middleware):
    def before_process(self, job: Job) -> None:
        raise SkipMessage(states.FAILURE, "refused", exception=RuntimeError("refused"))


def test_a_task_failed_by_middleware_logs_a_runtime_of_zero(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = "memory://runtime"
    app = Celeriac(
        "runtime",
        broker=url,
        backend=url,
        set_as_current=False,
        worker_send_task_events=False,
        middleware=[*default_middleware(), Refuse()],
    )

    @app.task
    def add(a: int, b: int) -> int:
        return a + b

    add.delay(1, 2)
    executor = Executor(app, "w@test", "c", app.connect_broker(), app.connect_backend())
    caplog.set_level(logging.ERROR, "celeriac")
    try:
        [delivery] = app.broker.fetch(["celeriac"], "c", 1, 5.0)
        job = executor.process(delivery)
    finally:
        executor.close()
        app.close()
    assert job is not None and job.state == states.FAILURE and job.runtime == 0.0
    [line] = [r.getMessage() for r in caplog.records if "failed in" in r.getMessage()]
    assert "failed in 0.000s" in line

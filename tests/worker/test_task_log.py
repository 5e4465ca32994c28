"""A worker at INFO logs one line per finished task (name, id, outcome, runtime), as Celery
does; ``worker_log_task_outcomes=False`` turns it off."""

from __future__ import annotations

import logging
import uuid

import pytest

from celeriac import Celeriac
from celeriac.events import dispatcher_for
from celeriac.worker.job import Executor


def _app(**settings: object) -> Celeriac:
    url = f"memory://tasklog-{uuid.uuid4().hex}"
    app = Celeriac("tasklog", broker=url, backend=url, set_as_current=False, **settings)

    @app.task(name="t.add")
    def add(a: int, b: int) -> int:
        return a + b

    @app.task(name="t.limited", rate_limit="1/h")
    def limited() -> None:
        return None

    return app


def _work(app: Celeriac, count: int) -> None:
    executor = Executor(app, "w1@host", "c1", app.connect_broker(), app.connect_backend())
    for delivery in app.broker.fetch(["celeriac"], "c1", count, 1.0):
        executor.process(delivery)
    executor.close()


def test_one_info_line_per_finished_task(caplog: pytest.LogCaptureFixture) -> None:
    app = _app()
    try:
        done = app.send_task("t.add", [1, 2])
        revoked = app.send_task("t.add", [3, 4])
        app.revoke([revoked.id])
        app.send_task("t.limited")
        app.send_task("t.limited")  # the second waits for its slot, an hour away
        with caplog.at_level(logging.INFO, logger="celeriac.worker"):
            _work(app, 4)
        lines = [r.getMessage() for r in caplog.records if r.name == "celeriac.worker"]
        assert any(
            line.startswith(f"task t.add[{done.id}] succeeded in 0.") and line.endswith("s")
            for line in lines
        ), lines
        assert any(f"task t.add[{revoked.id}] not run: revoked in" in line for line in lines)
        assert sum("t.limited" in line and "delayed: rate limited" in line for line in lines) == 1
        assert len([line for line in lines if line.startswith("task ")]) == 4
    finally:
        dispatcher_for(app).close()


def test_the_setting_turns_it_off(caplog: pytest.LogCaptureFixture) -> None:
    app = _app(worker_log_task_outcomes=False)
    try:
        app.send_task("t.add", [1, 2])
        with caplog.at_level(logging.INFO, logger="celeriac.worker"):
            _work(app, 1)
        assert not [r for r in caplog.records if r.getMessage().startswith("task ")]
    finally:
        dispatcher_for(app).close()

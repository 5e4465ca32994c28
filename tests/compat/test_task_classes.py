"""Task classes and hooks from real workers (prefork and threads), as Celery has them.

Given tests/compat/hooks_app.py (a base class overriding the five hooks, a
class-based task registered with ``app.register_task``, ``update_state``
progress, ``Ignore``, ``Reject(requeue=True)``, a task that sends tasks), when
a real worker runs them, expect each hook with Celery's arguments in the process
that ran the task, progress readable while the task runs, and ``children`` /
``collect()`` walking what a task sent.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from celeriac import Celeriac, Task, states
from celeriac.exceptions import ConfigurationError, IncompleteStream
from tests.compat.helpers import project_module, records
from tests.e2e.workers import StartWorker, WorkerProcess, wait_until


@pytest.fixture(params=["prefork", "threads"])
def running(
    request: pytest.FixtureRequest, start_worker: StartWorker, tmp_path: Path
) -> Iterator[tuple[ModuleType, WorkerProcess, Path]]:
    url = f"sqlite:///{tmp_path}/broker.sqlite3"
    log = tmp_path / "hooks.log"
    env = {"CELERIAC_BROKER_URL": url, "CELERIAC_RESULT_BACKEND": url, "HOOKS_LOG": str(log)}
    with project_module("hooks_app", tmp_path) as module:
        module.app.conf.update(broker_url=url, result_backend=url)
        worker = start_worker("hooks_app", "-P", request.param, "-c", "2", env=env)
        yield module, worker, log
        module.app.close()


def test_the_five_hooks_with_celerys_arguments(
    running: tuple[ModuleType, WorkerProcess, Path],
) -> None:
    module, worker, log = running
    ok, bad, flaky = module.add.delay(2, 3), module.fail.delay(), module.flaky.delay()
    assert ok.get(timeout=20) == 5
    with pytest.raises(ValueError):
        bad.get(timeout=20)
    assert flaky.get(timeout=20) == "again"
    wait_until(lambda: sum(r[0] == "after_return" for r in records(log)) >= 4, 20, "4 after_return")
    lines = records(log)
    runners = {str(p) for p in worker.children()} or {str(worker.pid)}
    assert {line[1] for line in lines} <= runners  # where the task ran
    seen = sorted(line[:1] + line[2:] for line in lines)
    assert seen == sorted(
        [
            ["before_start", "hooks_app.add", ok.id, "[2,", "3]"],
            ["on_success", "hooks_app.add", ok.id, "5", "True"],
            ["after_return", "hooks_app.add", ok.id, "SUCCESS"],
            ["before_start", "hooks_app.fail", bad.id, "[]"],
            ["on_failure", "hooks_app.fail", bad.id, "ValueError", "True"],
            ["after_return", "hooks_app.fail", bad.id, "FAILURE"],
            ["before_start", "hooks_app.flaky", flaky.id, "[]"],
            ["on_retry", "hooks_app.flaky", flaky.id, "KeyError"],
            ["after_return", "hooks_app.flaky", flaky.id, "RETRY"],
            ["before_start", "hooks_app.flaky", flaky.id, "[]"],
            ["on_success", "hooks_app.flaky", flaky.id, "again", "True"],
            ["after_return", "hooks_app.flaky", flaky.id, "SUCCESS"],
        ]
    )


def test_class_based_task_progress_ignore_reject_and_children(
    running: tuple[ModuleType, WorkerProcess, Path], tmp_path: Path
) -> None:
    module, _, _ = running
    app = module.app
    # A class-based task registered with app.register_task
    assert module.multiply.delay(6, 7).get(timeout=20) == 42
    # update_state: a polling client sees each step while the task runs
    gate = tmp_path / "gate"
    result = module.progress.delay(2, str(gate))
    wait_until(lambda: result.state == "PROGRESS", 20, "PROGRESS")
    assert result.info == {"current": 1, "total": 2}
    assert not result.ready()
    Path(f"{gate}.1").touch()
    wait_until(lambda: result.info == {"current": 2, "total": 2}, 20, "step 2")
    Path(f"{gate}.2").touch()
    assert result.get(timeout=20) == "done" and result.state == states.SUCCESS
    # Ignore: no state stored, the message acked
    ignored = module.ignored.delay()
    queue = app.conf.task_default_queue
    wait_until(
        lambda: app.broker.stats(queue).total_waiting + app.broker.stats(queue).in_flight == 0,
        20,
        "the ignored message acked",
    )
    assert ignored.state == states.PENDING and app.broker.stats(queue).dead == 0
    # Reject(requeue=True): back to its queue, run again
    assert module.reject_once.delay().get(timeout=20) == "second delivery"
    # children and collect(): what a task sent
    parent = module.fan_out.delay(3)
    assert parent.get(timeout=20) == 3
    children = parent.children
    assert len(children) == 3
    collected = list(parent.collect(timeout=20))
    assert [value for _, value in collected] == [3, 0, 2, 4]
    assert [r.id for r, _ in collected] == [parent.id, *(c.id for c in children)]


def test_iterdeps_refuses_a_task_not_finished() -> None:
    app = Celeriac("t", broker="memory://", backend="memory://", set_as_current=False)
    result = app.AsyncResult("never-sent")
    with pytest.raises(IncompleteStream, match="intermediate=True"):
        list(result.iterdeps())
    assert [node for _, node in result.iterdeps(intermediate=True)] == [result]


def test_base_must_be_a_task_class_and_class_tasks_need_run() -> None:
    app = Celeriac("t", broker="memory://", set_as_current=False)
    with pytest.raises(ConfigurationError, match="subclass of celeriac.Task"):
        app.task(base=dict)(lambda: None)

    class NoBody(app.Task):  # type: ignore[name-defined, misc]
        pass

    with pytest.raises(ConfigurationError, match="no run"):
        app.register_task(NoBody)
    with pytest.raises(ConfigurationError, match="state="):
        app.task(lambda: None).update_state(task_id="x")


def test_hooks_and_options_of_a_base_run_eagerly_too() -> None:
    app = Celeriac("t", broker="memory://", set_as_current=False, task_always_eager=True)
    calls: list[tuple[str, object]] = []

    class Base(app.Task):  # type: ignore[name-defined, misc]
        max_retries = 7

        def on_success(self, retval: object, task_id: str, args: object, kwargs: object) -> None:
            calls.append(("on_success", retval))

    @app.task(base=Base)
    def double(x: int) -> int:
        return 2 * x

    assert double.max_retries == 7 and isinstance(double, Task)
    assert double.delay(21).get() == 42
    assert calls == [("on_success", 42)]
    assert os.getpid()  # the hook ran here, in this process


def test_retry_past_max_retries_raises_celerys_error() -> None:
    from celeriac.exceptions import MaxRetriesExceededError

    app = Celeriac("t", broker="memory://", set_as_current=False, task_always_eager=True)

    @app.task(bind=True, max_retries=1, default_retry_delay=0)
    def stubborn(self: Task[..., None]) -> None:
        raise self.retry()

    with pytest.raises(MaxRetriesExceededError, match="max_retries=1"):
        stubborn.delay()

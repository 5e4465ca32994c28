"""Django's Tasks framework on celeriac: enqueue, run on a worker, read back with get_result."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from .inprocess import running_worker


def _finished(result: Any, timeout: float = 10) -> Any:
    deadline = time.monotonic() + timeout
    while not result.is_finished:
        assert time.monotonic() < deadline, f"still {result.status} after {timeout}s"
        time.sleep(0.02)
        result.refresh()
    return result


def test_enqueued_task_runs_and_its_result_reads_back(app: Any) -> None:
    from django_tasks import TaskResultStatus, default_task_backend

    from . import fwtasks

    # Given a task enqueued while no worker runs, expect READY through get_result
    result = fwtasks.double.enqueue(21)
    waiting = fwtasks.double.get_result(result.id)
    assert waiting.status == TaskResultStatus.READY
    assert waiting.args == [21]
    assert app.AsyncResult(result.id).state == "PENDING"
    # When a celeriac worker runs, expect SUCCESSFUL with the return value
    with running_worker(app, ["celeriac"]):
        _finished(result)
    done = default_task_backend.get_result(result.id)
    assert done.status == TaskResultStatus.SUCCESSFUL
    assert done.return_value == 42
    assert done.worker_ids == ["inprocess@test"]
    assert done.started_at is not None and done.finished_at >= done.started_at
    assert app.AsyncResult(result.id).get(timeout=1) == 42  # the same task, seen by celeriac


def test_failures_carry_the_exception_class_and_traceback(app: Any) -> None:
    from django_tasks import TaskResultStatus

    from . import fwtasks

    result = fwtasks.explode.enqueue()
    with running_worker(app, ["celeriac"]):
        _finished(result)
    assert result.status == TaskResultStatus.FAILED
    assert result.errors[0].exception_class is ValueError
    assert "boom" in result.errors[0].traceback


def test_context_and_async_tasks(app: Any) -> None:
    from . import fwtasks

    with_context = fwtasks.attempt.enqueue()
    coroutine = fwtasks.async_double.enqueue(4)
    with running_worker(app, ["celeriac"]):
        assert _finished(with_context).return_value == [with_context.id, 1]
        assert _finished(coroutine).return_value == 8


def test_priority_queue_and_run_after_reach_the_broker(app: Any) -> None:
    from . import fwtasks

    # Given priority 100 on queue1, expect celeriac priority 9 on queue1
    fwtasks.urgent.enqueue()
    assert app.broker.stats("queue1").waiting == {9: 1}
    # Given run_after an hour away, expect the task in the delayed set, not waiting
    later = datetime.now(timezone.utc) + timedelta(hours=1)
    fwtasks.double.using(run_after=later).enqueue(1)
    stats = app.broker.stats("celeriac")
    assert (stats.total_waiting, stats.delayed) == (0, 1)


@pytest.mark.parametrize(
    ("django", "celeriac"),
    [(-100, 0), (-81, 0), (-80, 1), (-1, 4), (0, 5), (19, 5), (20, 6), (79, 8), (80, 9), (100, 9)],
)
def test_priority_mapping(django: int, celeriac: int) -> None:
    from celeriac.contrib.django.tasks import celeriac_priority

    assert celeriac_priority(django) == celeriac


def test_default_priority_and_queue_leave_the_choice_to_routing(app: Any) -> None:
    from django_tasks import default_task_backend

    from . import fwtasks

    assert default_task_backend.routing_options(fwtasks.double) == {}
    fwtasks.double.enqueue(1)
    assert app.broker.stats("celeriac").waiting == {app.conf.task_default_priority: 1}


def test_bad_calls_are_clear_errors(app: Any) -> None:
    from django_tasks import default_task_backend
    from django_tasks.exceptions import InvalidTaskError, TaskResultDoesNotExist

    from . import fwtasks

    with pytest.raises(TypeError, match="double"):
        fwtasks.double.enqueue(1, 2)
    with pytest.raises(InvalidTaskError, match="Queue 'nope'"):
        fwtasks.double.using(queue_name="nope")
    with pytest.raises(TaskResultDoesNotExist):
        default_task_backend.get_result("no-such-id")

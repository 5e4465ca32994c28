"""A message that comes again after its task finished (its ack was lost) is not run again."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator

import pytest

from celeriac import Celeriac
from celeriac.exceptions import Reject
from celeriac.worker.job import Executor


@pytest.fixture
def app() -> Iterator[Celeriac]:
    url = f"memory://redelivery-{uuid.uuid4().hex}"
    app = Celeriac("redelivery", broker=url, backend=url, set_as_current=False)
    app.conf.worker_send_task_events = False
    yield app
    app.close()


def finish_without_ack(app: Celeriac, executor: Executor) -> None:
    """Run the next message and store its result; the ack is lost (the message is given
    back counted, as a lease expiry or a closed channel does)."""
    [delivery] = app.broker.fetch(["celeriac"], "c", 1, 5.0)
    job = executor.prepare(delivery)
    assert job is not None
    executor.run(job)
    app.backend.store([job.meta()])
    app.broker.release("c", [delivery.tag], count=True)


def test_a_finished_task_delivered_again_is_acked_without_running(app: Celeriac) -> None:
    ran: list[int] = []

    @app.task
    def add(a: int, b: int) -> int:
        ran.append(a + b)
        return a + b

    result = add.delay(1, 2)
    executor = Executor(app, "w@test", "c", app.connect_broker(), app.connect_backend())
    finish_without_ack(app, executor)
    [again] = app.broker.fetch(["celeriac"], "c", 1, 5.0)
    assert again.deliveries == 2
    assert executor.process(again) is None
    executor.close()
    assert ran == [3] and result.get(timeout=1) == 3
    stats = app.broker.stats("celeriac")
    assert (stats.total_waiting, stats.in_flight, stats.dead) == (0, 0, 0)


def test_a_task_with_a_callback_or_a_failure_stored_runs_again(app: Celeriac) -> None:
    ran: list[str] = []

    @app.task
    def step(name: str) -> str:
        ran.append(name)
        return name

    @app.task
    def refuse() -> None:
        ran.append("refuse")
        raise Reject("not now", requeue=True)

    step.apply_async(("linked",), link=step.si("next"))
    refuse.delay()
    executor = Executor(app, "w@test", "c", app.connect_broker(), app.connect_backend())
    for _ in range(2):
        finish_without_ack(app, executor)
    for _ in range(2):
        [again] = app.broker.fetch(["celeriac"], "c", 1, 5.0)
        executor.process(again)
    executor.close()
    assert ran.count("linked") == 2 and ran.count("refuse") == 2


def test_past_max_deliveries_a_finished_task_is_acked_and_others_are_dead_lettered(
    app: Celeriac,
) -> None:
    """RabbitMQ learns of a lost delivery only when the message comes back, so it hands
    it out once more past max_deliveries: the worker acks it if its success is stored
    (the ack was lost with connections, not the task) and dead-letters it otherwise,
    without running it either way."""
    ran: list[str] = []

    @app.task
    def step(name: str) -> str:
        ran.append(name)
        return name

    done = step.delay("done")
    step.delay("never-finished")
    executor = Executor(app, "w@test", "c", app.connect_broker(), app.connect_backend())
    finish_without_ack(app, executor)
    past = app.broker.max_deliveries + 1
    for _ in range(2):
        [again] = app.broker.fetch(["celeriac"], "c", 1, 5.0)
        assert executor.process(dataclasses.replace(again, deliveries=past)) is None
    executor.close()
    assert ran == ["done"] and done.get(timeout=1) == "done"
    [dead] = app.broker.dead_letters("celeriac")
    assert f"delivered {past - 1} times without an ack" in dead.reason
    stats = app.broker.stats("celeriac")
    assert (stats.total_waiting, stats.in_flight, stats.dead) == (0, 0, 1)

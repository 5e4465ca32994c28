"""The consumer loop on the memory broker, in a thread: order, prefetch, stop, outages."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from celeriac import Celeriac, states
from celeriac.brokers.memory import MemoryBroker
from celeriac.exceptions import BrokerUnavailable, SoftTimeLimitExceeded
from celeriac.message import Delivery, Envelope
from celeriac.worker.consumer import Consumer
from celeriac.worker.options import resolve_options
from celeriac.worker.slots import Slot
from celeriac.worker.threads import _SoftTimer
from tests.e2e.workers import wait_until


@pytest.fixture
def app() -> Iterator[Celeriac]:
    url = f"memory://consumer-{uuid.uuid4().hex}"
    app = Celeriac(
        "consumer-test",
        broker=url,
        backend=url,
        set_as_current=False,
        worker_send_task_events=False,
    )
    yield app
    app.close()


def make_consumer(app: Celeriac, prefetch: int = 1, **kwargs: Any) -> Consumer:
    options = resolve_options(app, pool="threads", concurrency=1, prefetch_multiplier=prefetch)
    options = dataclasses.replace(options, fetch_timeout=0.05)
    return Consumer(app, options, f"test/{uuid.uuid4().hex[:6]}/0", Slot(0, shared=False), **kwargs)


def run_until(consumer: Consumer, done: Callable[[], object], timeout: float = 10.0) -> None:
    """Run the consumer in a thread until ``done()``, then stop it warmly and join."""
    thread = threading.Thread(target=consumer.run, daemon=True)
    thread.start()
    try:
        wait_until(done, timeout, "the consumer to get there")
    finally:
        consumer.stop()
        thread.join(timeout)
    assert not thread.is_alive(), "the consumer did not stop"


def test_a_batch_runs_highest_priority_first_and_fifo_within_a_priority(app: Celeriac) -> None:
    order: list[str] = []

    @app.task
    def mark(label: str) -> None:
        order.append(label)

    for label, priority in [("a0", 0), ("b5", 5), ("c9", 9), ("d5", 5), ("e0", 0)]:
        mark.apply_async((label,), priority=priority)
    run_until(make_consumer(app, prefetch=5), lambda: len(order) == 5)
    assert order == ["c9", "b5", "d5", "a0", "e0"]


def test_prefetch_is_bounded_and_refilled_only_when_every_message_started(
    app: Celeriac,
) -> None:
    """Given 7 waiting messages and a limit of 3, the consumer holds 3, 2, 1 and only
    then fetches the next batch: one round trip per batch, never more than 3 held."""
    held: list[int] = []
    broker = app.connect_broker()

    @app.task
    def peek() -> None:
        held.append(broker.stats("celeriac").in_flight)

    for _ in range(7):
        peek.delay()
    run_until(make_consumer(app, prefetch=3), lambda: len(held) == 7)
    assert held == [3, 2, 1, 3, 2, 1, 1]


def test_warm_stop_finishes_the_running_task_and_gives_back_the_rest_uncounted(
    app: Celeriac,
) -> None:
    started, gate = threading.Event(), threading.Event()

    @app.task
    def block() -> str:
        started.set()
        gate.wait(10)
        return "finished"

    @app.task
    def quick() -> None:
        raise AssertionError("a prefetched task ran after stop")

    long_one = block.apply_async(priority=9)
    for _ in range(3):
        quick.delay()
    consumer = make_consumer(app, prefetch=4)
    thread = threading.Thread(target=consumer.run, daemon=True)
    thread.start()
    assert started.wait(10)
    consumer.stop()
    gate.set()
    thread.join(10)
    assert long_one.get(timeout=1) == "finished"
    broker = app.connect_broker()
    assert broker.stats("celeriac").total_waiting == 3
    again = broker.fetch(["celeriac"], "other", 10, 1.0)
    assert [d.deliveries for d in again] == [1, 1, 1]  # given back, not counted as deliveries


class FlakyBroker(MemoryBroker):
    """A memory broker whose first ``failures`` fetches fail as if the server were down."""

    failures = 3

    def fetch(
        self, queues: Any, consumer: str, limit: int, timeout: float, wake: Any = None
    ) -> list[Delivery]:
        if FlakyBroker.failures > 0:
            FlakyBroker.failures -= 1
            raise BrokerUnavailable("connection refused")
        return super().fetch(queues, consumer, limit, timeout, wake)


def test_a_broker_outage_is_logged_once_and_consuming_resumes_by_itself(
    app: Celeriac, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    @app.task
    def add(a: int, b: int) -> int:
        return a + b

    url = app.broker_url
    monkeypatch.setattr(FlakyBroker, "failures", 3)
    monkeypatch.setattr(app, "connect_broker", lambda: FlakyBroker(url))
    result = add.delay(2, 3)
    caplog.set_level(logging.WARNING, "celeriac.worker")
    run_until(make_consumer(app), lambda: app.backend.get(result.id).ready)
    assert result.get(timeout=1) == 5
    messages = [r.getMessage() for r in caplog.records]
    assert sum("broker unavailable" in m for m in messages) == 1, messages
    assert sum("broker reachable again" in m for m in messages) == 1, messages


def test_undecodable_bytes_are_dead_lettered_and_consuming_goes_on(app: Celeriac) -> None:
    @app.task
    def add(a: int, b: int) -> int:
        return a + b

    app.broker.publish([Envelope("poison-1", "celeriac", 9, b"\xff\x00 not a message")])
    result = add.delay(1, 1)
    run_until(make_consumer(app), lambda: app.backend.get(result.id).ready)
    assert result.get(timeout=1) == 2
    [dead] = app.broker.dead_letters("celeriac")
    assert dead.id == "poison-1" and "undecodable" in dead.reason


def test_max_tasks_stops_the_consumer_without_taking_more_than_it_will_run(
    app: Celeriac,
) -> None:
    ran: list[int] = []
    broker = app.connect_broker()

    @app.task
    def count(i: int) -> None:
        ran.append(broker.stats("celeriac").in_flight)

    for i in range(5):
        count.delay(i)
    consumer = make_consumer(app, prefetch=4, max_tasks=2)
    thread = threading.Thread(target=consumer.run, daemon=True)
    thread.start()
    thread.join(10)
    assert not thread.is_alive() and consumer.exhausted
    assert ran == [2, 1]  # it fetched 2, not 4: the rest stayed available to others
    assert broker.stats("celeriac").total_waiting == 3


def test_soft_time_limit_reaches_a_sync_task_in_a_thread(app: Celeriac) -> None:
    @app.task(soft_time_limit=0.2)
    def slow() -> str:
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                time.sleep(0.01)
        except SoftTimeLimitExceeded:
            return "cleaned up"
        return "not interrupted"

    result = slow.delay()
    consumer = make_consumer(app, timer=_SoftTimer())
    run_until(consumer, lambda: app.backend.get(result.id).ready)
    assert result.get(timeout=1) == "cleaned up"


def test_soft_time_limit_reaches_an_async_task_on_the_consumers_loop(app: Celeriac) -> None:
    @app.task(soft_time_limit=0.2)
    async def slow() -> str:
        try:
            await asyncio.sleep(10)
        except SoftTimeLimitExceeded:
            return "cleaned up"
        return "not interrupted"

    result = slow.delay()
    run_until(make_consumer(app), lambda: app.backend.get(result.id).ready)
    assert result.get(timeout=1) == "cleaned up"


def test_the_slot_record_shows_the_running_task_and_counts(app: Celeriac) -> None:
    seen: list[Any] = []
    consumer = make_consumer(app)

    @app.task
    def look() -> None:
        seen.append(consumer.slot.running())

    result = look.delay()
    run_until(consumer, lambda: app.backend.get(result.id).state == states.SUCCESS)
    [running] = seen
    assert running.task_id == result.id and running.task_name == look.name
    assert running.queue == "celeriac" and running.hard_deadline is None
    assert consumer.slot.running() is None and consumer.slot.processed == 1

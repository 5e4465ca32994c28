"""Strict priorities on RabbitMQ: the seed's scenario, and the prefetch bound."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from celeriac import Celeriac
from celeriac.message import Envelope, decode
from celeriac.rabbitmq.broker import AMQPBroker

from .conftest import wait_for


def depth(broker: AMQPBroker, queue: str) -> int:
    return broker.stats(queue).total_waiting


def test_seed_order_with_one_busy_consumer(broker: AMQPBroker, queue: str) -> None:
    """Given one consumer with limit 1 busy on a task,
    when t2(5), t1(6), t3(9), t2(5), t1(6), t3(9) are sent,
    expect them to run t3, t3, t1, t1, t2, t2."""
    broker.publish([Envelope("busy", queue, 5, b"")])
    [busy] = broker.fetch([queue], "c1", 1, 5.0)
    sends = [("t2", 5), ("t1", 6), ("t3", 9), ("t2", 5), ("t1", 6), ("t3", 9)]
    for i, (name, priority) in enumerate(sends):  # one publish per send, as delay() does
        broker.publish([Envelope(f"{name}-{i}", queue, priority, name.encode())])
    broker.ack("c1", [busy.tag])
    ran = []
    for _ in sends:
        [delivery] = broker.fetch([queue], "c1", 1, 5.0)
        ran.append(delivery.body.decode())
        broker.ack("c1", [delivery.tag])
    assert ran == ["t3", "t3", "t1", "t1", "t2", "t2"]
    assert [d.id for d in broker.fetch([queue], "c1", 1, 0.2)] == []


@pytest.fixture
def app(amqp_url: str, queue: str) -> Iterator[Celeriac]:
    app = Celeriac(
        "seed",
        broker=amqp_url,
        task_default_queue=queue,
        task_acks_late=True,
        task_default_priority=5,
        worker_prefetch_multiplier=1,
        worker_concurrency=1,
    )
    yield app
    app.close()


def test_seed_tasks_sent_through_the_app(app: Celeriac, queue: str) -> None:
    """Given tasks sent with delay() (default priority 5) and apply_async(priority=6 or 9),
    expect a consumer with limit 1 to take them highest first, FIFO within a priority."""

    @app.task
    def t1() -> None: ...

    @app.task
    def t2() -> None: ...

    @app.task
    def t3() -> None: ...

    blocker = t2.delay()
    broker = app.connect_broker()
    try:
        [busy] = broker.fetch([queue], "worker", 1, 5.0)
        assert busy.id == blocker.id
        sent = [
            t2.delay(),
            t1.apply_async(priority=6),
            t3.apply_async(priority=9),
            t2.delay(),
            t1.apply_async(priority=6),
            t3.apply_async(priority=9),
        ]
        broker.ack("worker", [busy.tag])
        order = []
        for _ in sent:
            [delivery] = broker.fetch([queue], "worker", 1, 5.0)
            task = decode(delivery.body, app.codec, delivery).task
            order.append((task.rsplit(".", 1)[-1], delivery.id))
            broker.ack("worker", [delivery.tag])
    finally:
        broker.close()
    assert [name for name, _ in order] == ["t3", "t3", "t1", "t1", "t2", "t2"]
    assert [task_id for _, task_id in order] == [sent[i].id for i in (2, 5, 1, 4, 0, 3)]


def test_fetch_never_holds_more_than_its_limit(
    broker: AMQPBroker, queue: str, make_broker: Callable[..., AMQPBroker]
) -> None:
    """Given 20 messages in two queues, a fetch with limit 2 leaves 18 in RabbitMQ:
    the prefetch window covers both queues together, held messages included."""
    other = f"{queue}-b"
    broker.publish(
        [Envelope(f"a{i}", queue, 5, b"") for i in range(10)]
        + [Envelope(f"b{i}", other, 5, b"") for i in range(10)]
    )
    try:
        taken = broker.fetch([queue, other], "c1", 2, 5.0)
        assert len(taken) == 2
        inspector = make_broker()
        assert depth(inspector, queue) + depth(inspector, other) == 18
        more = broker.fetch([queue, other], "c1", 1, 5.0)  # still holding 2: one more only
        assert len(more) == 1
        wait_for(lambda: depth(inspector, queue) + depth(inspector, other) == 17, what="17 left")
        broker.ack("c1", [d.tag for d in taken + more])
    finally:
        broker.purge(other)
        broker._link.admin().queue_delete(other)


def test_a_fetch_returns_the_highest_priority_it_holds(broker: AMQPBroker, queue: str) -> None:
    """Given messages of priorities 1, 9 and 5 queued before the consumer starts,
    expect one fetch of 3 to return them 9, 5, 1."""
    broker.publish([Envelope(f"p{p}", queue, p, b"") for p in (1, 9, 5)])
    deadline = time.monotonic() + 5
    got: list[int] = []
    while len(got) < 3 and time.monotonic() < deadline:
        got += [d.priority for d in broker.fetch([queue], "c1", 3 - len(got), 1.0)]
    assert got == [9, 5, 1]

"""Confirmed publishing through the process's pipeline: many threads, nacks, returns,
and a connection lost with publishes in flight."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence

import pika
import pytest

from celeriac import Celeriac, group
from celeriac.exceptions import BrokerError
from celeriac.message import Envelope
from celeriac.rabbitmq.broker import AMQPBroker
from celeriac.rabbitmq.connection import Outgoing
from celeriac.rabbitmq.pipeline import Pipeline, Publishing

from .conftest import rabbitmqctl

THREADS = 8


def drain(amqp_url: str, queue: str) -> Counter[str]:
    """Every message id in ``queue`` (taken away), counted, read with plain pika."""
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    found: Counter[str] = Counter()
    try:
        channel = conn.channel()
        while True:
            method, properties, _body = channel.basic_get(queue, auto_ack=True)
            if method is None:
                return found
            found[properties.message_id] += 1
    finally:
        conn.close()


def in_threads(count: int, work: Callable[[int], None], timeout: float = 60.0) -> None:
    """Run ``work(i)`` in ``count`` threads started together; re-raise the first error."""
    errors: list[BaseException] = []
    start = threading.Barrier(count)

    def run(i: int) -> None:
        start.wait(10)
        try:
            work(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
        assert not thread.is_alive(), "a publishing thread is stuck"
    if errors:
        raise errors[0]


def test_threads_publishing_through_one_broker_share_one_connection_and_overlap(
    broker: AMQPBroker, queue: str, amqp_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given 8 threads each publishing 40 messages one at a time through one broker
    object, expect every call to return confirmed, the messages of several threads in
    flight together on one pipeline, and each message in the queue exactly once."""
    broker.publish([Envelope("warm", queue, 5, b"")])  # connected and declared
    pipelines: set[int] = set()
    most_in_flight = [0]
    real_submit = Pipeline.submit

    def watching_submit(self: Pipeline, batch: Sequence[Outgoing]) -> Publishing:
        pipelines.add(id(self))
        most_in_flight[0] = max(most_in_flight[0], len(self._waiting) + 1)
        return real_submit(self, batch)

    monkeypatch.setattr(Pipeline, "submit", watching_submit)

    def publish(thread: int) -> None:
        for n in range(40):
            broker.publish([Envelope(f"t{thread}-{n}", queue, n % 10, b"x" * 200)])

    in_threads(THREADS, publish)
    assert len(pipelines) == 1
    assert most_in_flight[0] > 1, "publishes waited for each other: not pipelined"
    found = drain(amqp_url, queue)
    expected = {f"t{t}-{n}" for t in range(THREADS) for n in range(40)} | {"warm"}
    assert set(found) == expected
    assert max(found.values()) == 1


def test_broker_objects_of_one_process_share_the_publishing_connection(
    make_broker: Callable[..., AMQPBroker], queue: str
) -> None:
    """Given two broker objects on the same URL (two threads' app.broker), expect one
    publishing pipeline for both, closed only when the last of them closes."""
    first, second = make_broker(), make_broker()
    first.publish([Envelope("a", queue, 5, b"")])
    second.publish([Envelope("b", queue, 5, b"")])
    pipeline = first._link.publisher()
    assert second._link.publisher() is pipeline
    first.close()
    second.publish([Envelope("c", queue, 5, b"")])
    assert second._link.publisher() is pipeline and pipeline.usable
    second.close()
    deadline = time.monotonic() + 5
    while pipeline.usable and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not pipeline.usable


def test_messages_rabbitmq_refuses_raise_and_are_not_reported_sent(
    make_broker: Callable[..., AMQPBroker], queue: str, amqp_url: str
) -> None:
    """Given a queue that holds one message and refuses more (x-overflow=reject-publish),
    when three are published, expect BrokerError naming basic.nack, and the queue to
    hold only the first: the caller is told, nothing is reported enqueued that is not."""
    options = {"queue_arguments": {"x-max-length": 1, "x-overflow": "reject-publish"}}
    broker = make_broker(**options)
    broker.publish([Envelope("first", queue, 5, b"")])
    with pytest.raises(BrokerError, match=r"refused 2 message\(s\) \(basic.nack"):
        broker.publish([Envelope("second", queue, 5, b""), Envelope("third", queue, 5, b"")])
    assert drain(amqp_url, queue) == Counter({"first": 1})
    broker.publish([Envelope("fourth", queue, 5, b"")])  # room again
    assert drain(amqp_url, queue) == Counter({"fourth": 1})


def test_a_message_returned_by_a_deleted_queue_is_declared_again_and_sent(
    broker: AMQPBroker, queue: str, amqp_url: str
) -> None:
    """Given a queue deleted behind the broker's back after it declared it, when a
    message is published to it, expect RabbitMQ's basic.return to be handled: the queue
    declared again and the message in it, once."""
    broker.publish([Envelope("before", queue, 5, b"")])
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        conn.channel().queue_delete(queue)
    finally:
        conn.close()
    broker.publish([Envelope("after", queue, 5, b"")])
    assert drain(amqp_url, queue) == Counter({"after": 1})


def test_a_connection_lost_with_publishes_in_flight_loses_nothing_confirmed(
    make_broker: Callable[..., AMQPBroker], queue: str, amqp_url: str, vhost: str
) -> None:
    """Given 8 threads publishing through one broker object, when RabbitMQ closes every
    connection of the vhost in the middle, expect each call to return (retried on a new
    connection) or raise, every message whose publish returned to be in the queue, and
    nothing there that was never published; a message in flight at the cut may be
    there twice (at least once), none other."""
    broker = make_broker(retry_seconds=20.0)
    broker.publish([Envelope("warm", queue, 5, b"")])
    first = broker._link.publisher()
    confirmed: list[str] = []
    attempted: set[str] = set()
    failed: list[BaseException] = []
    cut = threading.Event()

    def publish(thread: int) -> None:
        for n in range(60):
            message_id = f"t{thread}-{n}"
            attempted.add(message_id)
            try:
                broker.publish([Envelope(message_id, queue, 5, b"x" * 200)])
            except BrokerError as exc:
                failed.append(exc)
                continue
            confirmed.append(message_id)
            if len(confirmed) == 80:
                cut.set()

    def cutter(_: int) -> None:
        assert cut.wait(30), "the publishers never got going"
        rabbitmqctl("close_all_connections", "-p", vhost, "celeriac test: connection cut")

    in_threads(THREADS + 1, lambda i: cutter(i) if i == THREADS else publish(i), timeout=90)
    assert broker._link.publisher() is not first, "the cut did not reach the pipeline"
    assert not first.usable
    assert failed == [], f"publishes failed instead of being retried: {failed[:3]}"
    found = drain(amqp_url, queue)
    assert set(confirmed) <= set(found), "a publish returned but its message is not there"
    assert set(found) <= attempted | {"warm"}
    assert len(confirmed) == THREADS * 60
    twice = [message_id for message_id, count in found.items() if count > 1]
    assert len(twice) <= THREADS  # only what was in flight at the cut, one per thread


def test_a_group_is_sent_in_one_confirm_round(
    amqp_url: str, queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given a group of 20 tasks, expect its messages handed to the pipeline in one
    batch (one wait for their confirms), and all 20 in the queue."""
    app = Celeriac("burst", broker=amqp_url, task_default_queue=queue)

    @app.task
    def add(a: int, b: int) -> int:
        return a + b

    submits: list[int] = []
    real_submit = Pipeline.submit

    def counting_submit(self: Pipeline, batch: Sequence[Outgoing]) -> Publishing:
        submits.append(len(batch))
        return real_submit(self, batch)

    try:
        add.delay(0, 0)  # connected and declared
        monkeypatch.setattr(Pipeline, "submit", counting_submit)
        group(add.s(i, i) for i in range(20)).apply_async()
        assert submits == [20]
        assert sum(drain(amqp_url, queue).values()) == 21
    finally:
        app.close()

"""Outages on RabbitMQ: dropped connections, a server that is gone, killed workers."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from celeriac.exceptions import BrokerUnavailable
from celeriac.message import Delivery, Envelope
from celeriac.rabbitmq.broker import AMQPBroker

from .conftest import rabbitmqctl, wait_for

NOBODY = "amqp://guest:guest@127.0.0.1:1/"  # a port where nothing listens


def test_a_dropped_connection_is_an_outage_not_a_failure(
    make_broker: Callable[..., AMQPBroker], queue: str, vhost: str
) -> None:
    """Given a consumer holding a message and a producer, when RabbitMQ closes every
    connection of the vhost, expect the producer's next publish to go through by
    itself, the consumer to raise BrokerUnavailable, then resume: the held message
    comes back (counted) and the new one arrives."""
    producer, worker = make_broker(), make_broker()
    producer.publish([Envelope("held", queue, 5, b"")])
    [held] = worker.fetch([queue], "w", 1, 5.0)
    rabbitmqctl("close_all_connections", "-p", vhost, "celeriac test: outage")

    producer.publish([Envelope("after", queue, 5, b"")])  # retried over the outage
    outages = 0
    got: dict[str, Delivery] = {}
    deadline = time.monotonic() + 20
    while len(got) < 2 and time.monotonic() < deadline:
        try:
            for delivery in worker.fetch([queue], "w", 2, 0.5):
                got[delivery.id] = delivery
                worker.ack("w", [delivery.tag])
        except BrokerUnavailable:
            outages += 1
            time.sleep(0.1)  # the worker loop's backoff
    assert outages >= 1
    assert sorted(got) == ["after", "held"]
    assert got["held"].deliveries == 2 and got["after"].deliveries == 1
    worker.ack("w", [held.tag])  # a tag of the closed channel: ignored, not an error


def test_producer_calls_retry_within_a_bound_then_raise() -> None:
    broker = AMQPBroker(NOBODY, retry_seconds=1.0, connect_timeout=1.0)
    try:
        start = time.monotonic()
        with pytest.raises(BrokerUnavailable, match="unreachable for 1s"):
            broker.publish([Envelope("m", "q", 5, b"")])
        assert 0.9 <= time.monotonic() - start < 5.0
    finally:
        broker.close()


def test_consumer_calls_raise_at_once_when_the_server_is_gone() -> None:
    broker = AMQPBroker(NOBODY, retry_seconds=30.0, connect_timeout=1.0)
    try:
        start = time.monotonic()
        with pytest.raises(BrokerUnavailable, match="cannot connect"):
            broker.fetch(["q"], "w", 1, 5.0)
        assert time.monotonic() - start < 2.0
    finally:
        broker.close()


HOLDER = """
import sys, time
from celeriac.rabbitmq.broker import AMQPBroker
broker = AMQPBroker(sys.argv[1])
taken = []
while not taken:
    taken = broker.fetch([sys.argv[2]], "doomed", 1, 1.0)
print("held", taken[0].id, flush=True)
time.sleep(60)
"""


def test_a_worker_killed_with_sigkill_gives_its_message_back(
    broker: AMQPBroker, queue: str, amqp_url: str
) -> None:
    """Given a process holding a message, when it is killed with SIGKILL, expect the
    message back on its queue at once, counted; and not before."""
    broker.publish([Envelope("precious", queue, 5, b"")])
    with subprocess.Popen(
        [sys.executable, "-c", HOLDER, amqp_url, queue], stdout=subprocess.PIPE, text=True
    ) as proc:
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().split() == ["held", "precious"]
            assert broker.fetch([queue], "survivor", 1, 0.5) == []  # held while it lives
            proc.kill()
            proc.wait(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
    taken = wait_for(
        lambda: broker.fetch([queue], "survivor", 1, 0.5),
        timeout=10,
        what="the killed worker's message",
    )
    assert [(d.id, d.deliveries) for d in taken] == [("precious", 2)]


def test_a_long_task_keeps_its_message_while_heartbeats_are_answered(
    make_broker: Callable[..., AMQPBroker], queue: str
) -> None:
    """Given heartbeats every second and a task that runs 3.5 s without calling the
    broker, expect the connection to live on: the ack lands, nothing is redelivered."""
    worker, other = make_broker(heartbeat=1), make_broker()
    worker.publish([Envelope("long", queue, 5, b"")])
    [delivery] = worker.fetch([queue], "w", 1, 5.0)
    time.sleep(3.5)  # the task running: the worker does not touch the broker meanwhile
    worker.ack("w", [delivery.tag])
    assert worker.fetch([queue], "w", 1, 0.3) == []
    assert other.fetch([queue], "o", 1, 0.3) == []
    assert other.stats(queue).total_waiting == 0

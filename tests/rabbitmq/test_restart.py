"""What RabbitMQ confirmed survives the server being killed and started again."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pika
import pytest

from celeriac import Celeriac
from celeriac.exceptions import BrokerUnavailable
from celeriac.message import Envelope
from celeriac.rabbitmq.broker import AMQPBroker

from .node import Node


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    node = Node(tmp_path / "rabbitmq")
    node.start()
    yield node
    node.kill()


def test_a_message_confirmed_to_delay_survives_a_kill_9_of_rabbitmq(node: Node) -> None:
    """Given 50 tasks whose delay() returned (RabbitMQ confirmed each) and a batch of
    50 published with app.publish, expect all 100 in the queue after the server was
    killed with SIGKILL and started again on the same data."""
    app = Celeriac("restart", broker=node.url, task_default_queue="survivors")

    @app.task
    def noop() -> None: ...

    ids = {noop.delay().id for _ in range(50)}
    batch = [noop.build_message((), {}) for _ in range(50)]
    app.publish(batch)
    ids |= {message.id for message in batch}
    node.kill()  # the app's connection is still open: nothing was flushed by closing it
    app.close()

    node.start()
    # Read the queue with plain pika: after a kill -9, the node may take a long
    # while to bring back the stream queues celeriac keeps its state in, and
    # this test is about the task queue.
    conn = pika.BlockingConnection(pika.URLParameters(node.url))
    try:
        channel = conn.channel()
        found: set[str] = set()
        while True:
            method, properties, _body = channel.basic_get("survivors", auto_ack=True)
            if method is None:
                break
            found.add(properties.message_id)
        assert found == ids
    finally:
        conn.close()


def test_a_publish_rabbitmq_never_confirms_is_not_reported_confirmed(node: Node) -> None:
    """Given a node frozen (SIGSTOP) after the broker connected, when a message is
    published with confirm_timeout=1 and retry_seconds=2, expect BrokerUnavailable within
    seconds, never a return as if confirmed; once the node runs again, publishing works."""
    broker = AMQPBroker(node.url, confirm_timeout=1.0, retry_seconds=2.0, connect_timeout=1.0)
    try:
        broker.publish([Envelope("before", "frozen", 5, b"")])
        node.freeze()
        try:
            began = time.monotonic()
            with pytest.raises(BrokerUnavailable, match="unreachable for 2s"):
                broker.publish([Envelope("during", "frozen", 5, b"")])
            assert time.monotonic() - began < 10
        finally:
            node.thaw()
        broker.publish([Envelope("after", "frozen", 5, b"")])
    finally:
        broker.close()

"""Fire-and-forget publishing (``broker_publish_confirm``) and acks in batches on RabbitMQ."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from pika.adapters.blocking_connection import BlockingChannel

from celeriac import Celeriac
from celeriac.exceptions import ConfigurationError
from celeriac.message import Delivery, Envelope
from celeriac.rabbitmq.broker import AMQPBroker
from celeriac.rabbitmq.connection import Outgoing
from celeriac.rabbitmq.pipeline import Pipeline, Publishing


def take(broker: AMQPBroker, queue: str, n: int, timeout: float = 10.0) -> list[Delivery]:
    """Fetch until ``n`` messages are in hand (fails after ``timeout``)."""
    taken: list[Delivery] = []
    deadline = time.monotonic() + timeout
    while len(taken) < n and time.monotonic() < deadline:
        taken += broker.fetch([queue], "c1", n - len(taken), 0.5)
    assert len(taken) == n, f"expected {n} messages from {queue}, got {len(taken)}"
    return taken


def test_acks_of_several_messages_go_in_one_multiple_ack_and_spare_held_ones(
    make_broker: Callable[..., AMQPBroker], queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given six messages handed out and an ack of the 1st, 2nd and 4th in one call,
    expect one basic.ack with multiple for the first two and one for the 4th; after
    the connection closes, exactly the three unacked ones come back."""
    first = make_broker()
    first.publish([Envelope(f"m{i}", queue, 5, b"") for i in range(6)])
    held = take(first, queue, 6)
    assert [d.id for d in held] == [f"m{i}" for i in range(6)]
    acks: list[tuple[int, bool]] = []
    real_ack = BlockingChannel.basic_ack

    def spy(self: BlockingChannel, delivery_tag: int = 0, multiple: bool = False) -> None:
        acks.append((delivery_tag, multiple))
        real_ack(self, delivery_tag, multiple)

    monkeypatch.setattr(BlockingChannel, "basic_ack", spy)
    first.ack("c1", [held[0].tag, held[3].tag, held[1].tag])
    number = [int(d.tag.partition(".")[2]) for d in held]
    assert acks == [(number[1], True), (number[3], False)]
    first.close()

    second = make_broker()
    back = take(second, queue, 3)
    assert sorted(d.id for d in back) == ["m2", "m4", "m5"]
    assert second.fetch([queue], "c1", 10, 0.3) == []
    second.ack("c1", [d.tag for d in back])
    assert acks[-1] == (max(int(d.tag.partition(".")[2]) for d in back), True)


def test_publish_confirm_off_returns_without_waiting_and_the_task_arrives(
    amqp_url: str, queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given broker_publish_confirm=False, expect delay() to publish without the confirming
    pipeline, and the message to reach its queue all the same."""
    app = Celeriac("fire", broker=amqp_url, task_default_queue=queue, broker_publish_confirm=False)

    @app.task
    def noop() -> None: ...

    submits: list[int] = []
    real_submit = Pipeline.submit

    def counting_submit(self: Pipeline, batch: Sequence[Outgoing]) -> Publishing:
        submits.append(len(batch))
        return real_submit(self, batch)

    try:
        noop.delay()  # declarations out of the way (the queue registry is confirmed)
        monkeypatch.setattr(Pipeline, "submit", counting_submit)
        ids = {noop.delay().id for _ in range(20)}
        assert submits == []
        broker = app.broker
        assert isinstance(broker, AMQPBroker)
        got = take(broker, queue, 21)
        assert ids <= {d.id for d in got}
    finally:
        app.close()


def test_publish_confirm_must_be_a_boolean(amqp_url: str) -> None:
    """Given broker_publish_confirm="no" (or the transport option), expect an error naming it."""
    with pytest.raises(ConfigurationError, match="broker_publish_confirm must be True or False"):
        Celeriac("bad", broker=amqp_url, broker_publish_confirm="no")
    options: dict[str, Any] = {"publish_confirm": "no"}
    with pytest.raises(ConfigurationError, match="publish_confirm must be True or False"):
        AMQPBroker(amqp_url, **options)

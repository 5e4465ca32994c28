"""Countdown, ETA and delayed releases on RabbitMQ: the delay ladder."""

from __future__ import annotations

import time
from collections.abc import Callable

import pika
import pika.exceptions

from celeriac.message import Envelope
from celeriac.rabbitmq.broker import AMQPBroker
from celeriac.rabbitmq.topology import delay_name, delay_route

from .conftest import wait_for


def ladder_depth(amqp_url: str, level: int) -> int:
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        return int(
            conn.channel().queue_declare(delay_name(level), passive=True).method.message_count
        )
    finally:
        conn.close()


def test_delayed_messages_beyond_the_lease_each_run_once(
    make_broker: Callable[..., AMQPBroker], queue: str
) -> None:
    """Given 200 messages due in 2 s and a lease of 1 s,
    expect each delivered exactly once, not before it is due, none held meanwhile."""
    producer = make_broker(lease_seconds=1.0)
    worker = make_broker(lease_seconds=1.0)
    start = time.time()
    due = {f"m{i}": start + 2.0 + i * 0.002 for i in range(200)}
    producer.publish([Envelope(i, queue, 5, b"", eta) for i, eta in due.items()])
    assert worker.fetch([queue], "w", 10, 0.5) == []  # nothing is on a channel meanwhile
    seen: dict[str, float] = {}
    duplicates = []
    quiet_until = start + 30.0
    while time.time() < quiet_until:
        for delivery in worker.fetch([queue], "w", 10, 0.2):
            if delivery.id in seen:
                duplicates.append(delivery.id)
            seen[delivery.id] = time.time()
            worker.ack("w", [delivery.tag])
        if len(seen) == len(due) and quiet_until > time.time() + 1.5:
            quiet_until = time.time() + 1.5  # one more lease and a half: nothing comes again
    assert duplicates == []
    assert set(seen) == set(due)
    early = {i: round(due[i] - at, 3) for i, at in seen.items() if at < due[i]}
    assert early == {}
    assert max(at - due[i] for i, at in seen.items()) < 3.0  # generous: a loaded machine


def test_an_eta_a_day_away_waits_in_the_ladder(
    broker: AMQPBroker, queue: str, amqp_url: str
) -> None:
    """Given a message due tomorrow, expect it in the ladder, not in its queue nor held."""
    exchange, _ = delay_route(86400)
    level = int(exchange.rsplit(".", 1)[1])
    before = ladder_depth(amqp_url, level) if _exists(amqp_url, level) else 0
    broker.publish([Envelope("tomorrow", queue, 9, b"", time.time() + 86400)])
    assert ladder_depth(amqp_url, level) == before + 1
    assert broker.fetch([queue], "c1", 1, 0.3) == []
    assert broker.stats(queue).total_waiting == 0


def _exists(amqp_url: str, level: int) -> bool:
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        conn.channel().queue_declare(delay_name(level), passive=True)
        return True
    except pika.exceptions.ChannelClosedByBroker:
        return False
    finally:
        if conn.is_open:
            conn.close()


def test_a_due_message_reenters_its_queue_with_its_priority(
    make_broker: Callable[..., AMQPBroker], queue: str
) -> None:
    """Given a busy consumer (limit 1), three waiting priority-1 messages and a
    priority-9 one that becomes due meanwhile, expect the priority-9 one next."""
    broker, inspector = make_broker(), make_broker()
    broker.publish([Envelope("busy", queue, 5, b"")])
    [busy] = broker.fetch([queue], "c1", 1, 5.0)
    broker.publish([Envelope(f"low{i}", queue, 1, b"") for i in range(3)])
    broker.publish([Envelope("urgent", queue, 9, b"", time.time() + 0.4)])
    wait_for(lambda: inspector.stats(queue).total_waiting == 4, what="the delayed one due")
    broker.ack("c1", [busy.tag])
    order = []
    for _ in range(4):
        [delivery] = broker.fetch([queue], "c1", 1, 5.0)
        order.append(delivery.id)
        broker.ack("c1", [delivery.tag])
    assert order == ["urgent", "low0", "low1", "low2"]


def test_release_with_a_delay(broker: AMQPBroker, queue: str) -> None:
    """Given a held message released for 0.5 s (a retry backoff), expect it back after
    the delay, uncounted, and not before."""
    broker.publish([Envelope("retry-me", queue, 5, b"")])
    [first] = broker.fetch([queue], "c1", 1, 5.0)
    released_at = time.time()
    broker.release("c1", [first.tag], delay=0.5)
    assert broker.fetch([queue], "c1", 1, 0.2) == []
    [again] = broker.fetch([queue], "c1", 1, 5.0)
    assert time.time() - released_at >= 0.5
    assert (again.id, again.deliveries) == ("retry-me", 1)
    broker.ack("c1", [again.tag])


def test_purge_also_drops_delayed_messages_of_the_queue(
    make_broker: Callable[..., AMQPBroker], queue: str
) -> None:
    """Given, on 30 queues, a delayed message, a purge, and at once another delayed
    message, expect only the ones sent after the purges to arrive (the second
    publish follows its purge mark within a millisecond, so a send time rounded
    down would read as before the mark and the message would be dropped)."""
    producer, worker = make_broker(), make_broker()
    queues = [f"{queue}-{i}" for i in range(30)]
    for name in queues:
        producer.publish([Envelope(f"before-{name}", name, 5, b"", time.time() + 0.3)])
        producer.purge(name)
        producer.publish([Envelope(f"after-{name}", name, 5, b"", time.time() + 0.6)])
    expected = {f"after-{name}" for name in queues}
    arrived: list[str] = []
    deadline = time.time() + 10.0
    while not expected <= set(arrived) and time.time() < deadline:  # "before" was due earlier
        for delivery in worker.fetch(queues, "w", 50, 0.2):
            arrived.append(delivery.id)
            worker.ack("w", [delivery.tag])
    assert sorted(arrived) == sorted(expected)

"""Publishing, acks, releases, dead letters, revocations and inspection on RabbitMQ."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

import pika
import pytest

from celeriac.exceptions import BrokerUnavailable
from celeriac.message import Envelope
from celeriac.rabbitmq.broker import AMQPBroker
from celeriac.rabbitmq.connection import Outgoing
from celeriac.rabbitmq.pipeline import Pipeline, Publishing

from .conftest import rabbitmqctl, wait_for


def fetch_one(broker: AMQPBroker, queue: str, consumer: str = "c1", timeout: float = 5.0):  # type: ignore[no-untyped-def]
    taken = broker.fetch([queue], consumer, 1, timeout)
    assert len(taken) == 1, f"expected one message from {queue}, got {taken}"
    return taken[0]


def test_a_batch_is_confirmed_once_and_stored_persistent(
    broker: AMQPBroker, queue: str, amqp_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given 500 envelopes published in one call,
    expect them handed to the publishing pipeline together and confirmed in one
    wait, and all 500 in the queue, persistent."""
    broker.publish([Envelope("warm", queue, 5, b"")])  # declarations out of the way
    waits: list[int] = []
    real_submit = Pipeline.submit

    def counting_submit(self: Pipeline, batch: Sequence[Outgoing]) -> Publishing:
        waits.append(len(batch))
        return real_submit(self, batch)

    monkeypatch.setattr(Pipeline, "submit", counting_submit)
    broker.publish([Envelope(f"m{i}", queue, i % 10, b"x" * 100) for i in range(500)])
    assert waits == [500]
    assert broker.stats(queue).total_waiting == 501

    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        method, props, _ = conn.channel().basic_get(queue, auto_ack=False)
        assert method is not None
        assert props.delivery_mode == 2 and props.priority == 9 and props.message_id == "m9"
    finally:
        conn.close()


def test_a_fetch_with_messages_in_hand_makes_no_round_trip(
    broker: AMQPBroker, queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given 200 waiting messages and a consumer that fetches 4 at a time and acks
    each, expect 100 messages taken without one synchronous call to RabbitMQ:
    a fetch returns what RabbitMQ pushed instead of asking what else is coming."""
    broker.publish([Envelope(f"m{i}", queue, 5, b"") for i in range(200)])
    for delivery in broker.fetch([queue], "c1", 4, 5.0):  # subscribed, the window set
        broker.ack("c1", [delivery.tag])
    calls: list[str] = []
    for name in ("queue_declare", "basic_qos", "basic_get"):
        real = getattr(pika.adapters.blocking_connection.BlockingChannel, name)

        def counting(self: object, *args: object, _name: str = name, _real=real, **kw: object):  # type: ignore[no-untyped-def]
            calls.append(_name)
            return _real(self, *args, **kw)

        monkeypatch.setattr(pika.adapters.blocking_connection.BlockingChannel, name, counting)
    taken = 0
    while taken < 100:
        for delivery in broker.fetch([queue], "c1", 4, 5.0):
            broker.ack("c1", [delivery.tag])
            taken += 1
    assert calls == []


def test_late_ack_removes_and_unacked_returns_when_the_consumer_goes(
    make_broker: Callable[..., AMQPBroker], queue: str
) -> None:
    """Given a message fetched and acked, and one fetched and never acked,
    expect the acked one gone and the other back, counted, once its holder closed."""
    producer, first = make_broker(), make_broker()
    producer.publish([Envelope("done", queue, 5, b""), Envelope("lost", queue, 5, b"")])
    acked = fetch_one(first, queue)
    first.ack("c1", [acked.tag])
    held = fetch_one(first, queue)
    assert (acked.id, held.id) == ("done", "lost")
    first.ack("c1", [acked.tag, "999.1", "garbage"])  # stale and unknown tags are ignored
    first._link.close()  # as when its process dies: the connection goes, nothing acked
    again = fetch_one(make_broker(), queue, "c2")
    assert (again.id, again.deliveries) == ("lost", 2)


def test_release_uncounted_and_counted(broker: AMQPBroker, queue: str) -> None:
    """Given a held message, release(count=False) keeps its count; count=True raises it."""
    broker.publish([Envelope("m", queue, 5, b"")])
    first = fetch_one(broker, queue)
    broker.release("c1", [first.tag], count=False)
    second = fetch_one(broker, queue)
    assert second.deliveries == 1
    broker.release("c1", [second.tag], count=True)
    third = fetch_one(broker, queue)
    assert third.deliveries == 2
    broker.ack("c1", [third.tag])


def test_release_all_hands_back_everything_held(
    broker: AMQPBroker, queue: str, make_broker: Callable[..., AMQPBroker]
) -> None:
    broker.publish([Envelope(f"m{i}", queue, 5, b"") for i in range(3)])
    held: list[str] = []
    while len(held) < 3:
        held += [d.id for d in broker.fetch([queue], "c1", 3 - len(held), 5.0)]
    assert broker.release_all("c1") == 3
    other = make_broker()
    back = []
    while len(back) < 3:
        back += other.fetch([queue], "c2", 3, 5.0)
    assert sorted(d.id for d in back) == ["m0", "m1", "m2"]
    assert {d.deliveries for d in back} == {2}


def test_poison_goes_to_dead_letters_after_max_deliveries(
    make_broker: Callable[..., AMQPBroker], queue: str
) -> None:
    """Given max_deliveries=3 and a consumer that dies holding the message each time,
    expect deliveries 1, 2, 3, then a fourth hand-out past the limit (RabbitMQ cannot
    tell a lost ack of a finished task from a crash: the worker decides, see
    tests/worker/test_redelivery.py), and a dead letter saying why."""
    make_broker(max_deliveries=3).publish([Envelope("poison", queue, 7, b"boom")])
    seen = []
    for attempt in range(3):
        worker = make_broker(max_deliveries=3)
        delivery = fetch_one(worker, queue, f"w{attempt}")
        seen.append(delivery.deliveries)
        worker._link.close()  # killed before it could ack
    assert seen == [1, 2, 3]
    survivor = make_broker(max_deliveries=3)

    past = fetch_one(survivor, queue, "w9")
    assert (past.id, past.deliveries) == ("poison", 4)
    survivor.dead_letter("w9", past.tag, "delivered 3 times without an ack (max_deliveries=3)")
    dead = survivor.dead_letters(queue)
    assert [(d.id, d.queue, d.priority, d.body, d.deliveries) for d in dead] == [
        ("poison", queue, 7, b"boom", 4)
    ]
    assert "delivered 3 times without an ack (max_deliveries=3)" in dead[0].reason
    assert survivor.stats(queue).dead == 1


def test_dead_letters_list_requeue_and_purge(broker: AMQPBroker, queue: str) -> None:
    broker.publish([Envelope(f"d{i}", queue, 5, f"body{i}".encode()) for i in range(3)])
    for _ in range(3):
        delivery = fetch_one(broker, queue)
        broker.dead_letter("c1", delivery.tag, "rejected: bad input")
    listed = broker.dead_letters(queue)
    assert [d.id for d in listed] == ["d0", "d1", "d2"]
    assert {d.reason for d in listed} == {"rejected: bad input"}
    assert [d.id for d in broker.dead_letters(queue, limit=2)] == ["d0", "d1"]
    assert [d.id for d in broker.dead_letters(queue)] == ["d0", "d1", "d2"]  # listing keeps them

    assert broker.requeue_dead(queue, ["d1"]) == 1
    back = fetch_one(broker, queue)
    assert (back.id, back.body, back.deliveries) == ("d1", b"body1", 1)
    broker.ack("c1", [back.tag])
    assert broker.purge_dead(queue, ["d0"]) == 1
    assert [d.id for d in broker.dead_letters(queue)] == ["d2"]
    assert broker.purge_dead(queue) == 1
    assert broker.dead_letters(queue) == []
    assert broker.dead_letters("never-declared-queue") == []


def test_revocations_are_shared_through_the_broker(
    make_broker: Callable[..., AMQPBroker], queue: str
) -> None:
    """Given a task revoked through one connection,
    expect another to report it revoked and to flag its delivery."""
    producer, worker = make_broker(), make_broker()
    worker.fetch([queue], "w", 1, 0.1)  # the worker follows the state stream from now on
    producer.publish([Envelope("doomed", queue, 5, b""), Envelope("fine", queue, 5, b"")])
    producer.revocations.revoke(["doomed"], ttl=60)
    assert make_broker().revocations.revoked(["doomed", "fine"]) == {"doomed"}
    taken = []
    while len(taken) < 2:
        taken += worker.fetch([queue], "w", 2, 5.0)
    assert {d.id: d.revoked for d in taken} == {"doomed": True, "fine": False}
    producer.revocations.revoke(["brief"], ttl=-1)  # already expired
    assert producer.revocations.revoked(["brief"]) == set()


def test_queues_lists_declared_queues_consumed_or_not(
    make_broker: Callable[..., AMQPBroker], queue: str
) -> None:
    make_broker().publish([Envelope("m", queue, 5, b"")])  # declared, nobody consumes it
    assert queue in make_broker().queues()


def test_stats_and_purge(broker: AMQPBroker, queue: str) -> None:
    broker.publish([Envelope(f"m{i}", queue, i, b"") for i in range(4)])
    stats = broker.stats(queue)
    assert stats.waiting == {5: 4}  # RabbitMQ does not count per priority
    assert stats.total_waiting == 4 and stats.dead == 0
    assert broker.purge(queue) == 4
    assert broker.stats(queue).total_waiting == 0
    assert broker.fetch([queue], "c1", 1, 0.2) == []


def test_two_broker_objects_in_one_process_share_a_consumer(
    make_broker: Callable[..., AMQPBroker], queue: str
) -> None:
    """Given a consumer fetching through one object and acking through another
    (a thread that fetches and one that acks), expect the ack to reach its channel."""
    fetcher, acker = make_broker(), make_broker()
    fetcher.publish([Envelope("m", queue, 5, b"")])
    delivery = fetch_one(fetcher, queue, "shared")
    acker.ack("shared", [delivery.tag])
    fetcher.release_all("shared")  # nothing held any more: nothing comes back
    assert make_broker().fetch([queue], "other", 1, 0.3) == []


def test_task_queues_may_name_an_exchange_and_a_routing_key(
    make_broker: Callable[..., AMQPBroker], queue: str, amqp_url: str
) -> None:
    """Given a queue routed through a topic exchange of the user's, expect celeriac to
    declare and bind it, publish through it (immediate and delayed), and other
    publishers of that exchange to reach the same queue."""
    exchange = f"x-{queue}"
    routes = {queue: {"exchange": exchange, "exchange_type": "topic", "routing_key": "jobs.a"}}
    broker = make_broker(task_queues=routes)
    broker.publish(
        [Envelope("mine", queue, 5, b""), Envelope("later", queue, 5, b"", time.time() + 0.3)]
    )
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        ch = conn.channel()
        ch.basic_publish(exchange, "jobs.a", b"", pika.BasicProperties(message_id="theirs"))
        got: list[str] = []
        wait_for(
            lambda: got.extend(d.id for d in broker.fetch([queue], "c1", 5, 0.2)) or len(got) == 3,
            what="three messages",
        )
        assert sorted(got) == ["later", "mine", "theirs"]
    finally:
        conn.close()
        conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
        conn.channel().exchange_delete(exchange)
        conn.close()


def test_flags_keep_the_newest_value_and_readers_do_not_hide_them_from_each_other(
    make_broker: Callable[..., AMQPBroker], queue: str
) -> None:
    """Given a flag set twice, expect the newest value; and two connections reading it
    at the same time, 50 times each, to see it every time."""
    writer = make_broker()
    name = f"pause:{queue}"
    writer.flags.set(name, "old")
    writer.flags.set(name, "new")
    readers = [make_broker(), make_broker()]
    for reader in readers:
        reader.flags.read("pause:")  # connected and following the registry
    seen: list[dict[str, str]] = []

    def read(reader: AMQPBroker) -> None:
        for _ in range(50):
            seen.append(reader.flags.read(name))

    threads = [threading.Thread(target=read, args=(r,)) for r in readers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert seen == [{name: "new"}] * 100
    writer.flags.set(name, None)
    assert readers[0].flags.read(name) == {}


def test_messages_only_buffered_when_the_connection_was_lost_come_back_uncounted(
    make_broker: Callable[..., AMQPBroker], queue: str, vhost: str
) -> None:
    """Given one message handed out and four more pushed into the same channel's buffer
    (a second consumer id opened the window), and the connection closed by RabbitMQ,
    expect the handed-out one to come back counted (deliveries 2) and the four buffered
    ones uncounted (deliveries 1): they never reached a task, so they must not creep
    toward max_deliveries with every lost connection."""
    broker = make_broker()
    other = f"{queue}-other"
    broker.publish([Envelope(f"m{i}", queue, 5, b"") for i in range(5)])
    assert fetch_one(broker, queue, "c1").id == "m0"
    assert broker.fetch([other], "c2", 4, 0.5) == []  # the window grows: m1..m4 arrive
    assert broker._intake is not None and broker._intake.buffered == 4
    rabbitmqctl("close_all_connections", "-p", vhost, "test: connection lost")

    seen: dict[str, int] = {}
    deadline = time.monotonic() + 15
    while len(seen) < 5:
        assert time.monotonic() < deadline, f"only {seen} came back"
        try:
            for got in broker.fetch([queue], "c1", 5, 0.5):
                seen[got.id] = got.deliveries
                broker.ack("c1", [got.tag])
        except BrokerUnavailable:
            time.sleep(0.05)  # the worker's backoff: the next fetch reconnects
    assert seen == {"m0": 2, "m1": 1, "m2": 1, "m3": 1, "m4": 1}

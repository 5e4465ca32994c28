"""Stored entries: the compact layout, and entries of the earlier layout after an upgrade.

Messages queued by an earlier version (text entries, ``sent_at`` in the body) are
still fetched, acked, given back, dead-lettered, requeued and browsed; compact
entries keep a task's id exactly and hand its ``sent_at`` back with the delivery.
"""

from __future__ import annotations

import time
import uuid

import orjson

from celeriac import Celeriac
from celeriac.message import Delivery, Envelope, decode
from celeriac.redis.broker import RedisBroker

from .helpers import drain, envelope
from .servers import RedisServer


def earlier_entry(task_id: str, order: int, priority: int = 5, deliveries: int = 0) -> bytes:
    """What an earlier version's publish stored: a text header, ``sent_at`` in the body."""
    body = orjson.dumps({"v": 1, "task": "t", "args": [task_id], "sent_at": order / 1e6})
    raw = task_id.encode()
    return b"%d:%d:%d:%d:%b%b" % (priority, deliveries, order, len(raw), raw, body)


def take_one(broker: RedisBroker) -> Delivery:
    """The next message of queue "q", held by consumer "c" (waits up to 5 s)."""
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        got = broker.fetch(["q"], "c", 1, 1.0)
        if got:
            return got[0]
    raise AssertionError("no message came")


def _queue_earlier(redis_server: RedisServer, broker: RedisBroker, ids: list[str]) -> None:
    client = redis_server.client()
    client.sadd(f"{{{broker.prefix}}}:queues", "q")
    start = time.time_ns() // 1000 - 1_000_000
    for i, task_id in enumerate(ids):
        client.rpush(broker.base("q") + ":p5", earlier_entry(task_id, start + i))


def test_earlier_entries_are_fetched_in_order_with_new_ones_and_acked(
    broker: RedisBroker, redis_server: RedisServer
) -> None:
    # Given messages an earlier version queued, then new ones
    old = [str(uuid.uuid4()) for _ in range(3)]
    _queue_earlier(redis_server, broker, old)
    broker.publish([envelope(i) for i in range(3)])
    # When a consumer drains the queue
    got = drain(broker, ["q"], expect=6)
    # Expect the old ones first (FIFO), whole, and nothing left once acked
    assert [d.id for d in got] == [*old, "0", "1", "2"]
    assert [d.priority for d in got] == [5] * 6 and {d.deliveries for d in got} == {1}
    assert decode(got[0].body, Celeriac("t", broker="memory://").codec, got[0]).args == (old[0],)
    stats = broker.stats("q")
    assert (sum(stats.waiting.values()), stats.in_flight) == (0, 0)


def test_earlier_entries_given_back_dead_lettered_and_requeued(
    broker: RedisBroker, redis_server: RedisServer
) -> None:
    # Given an earlier version's message, delivered up to max_deliveries (3)
    [task_id] = old = [str(uuid.uuid4())]
    _queue_earlier(redis_server, broker, old)
    for _ in range(2):
        [d] = broker.fetch(["q"], "c", 1, 1.0)
        broker.release("c", [d.tag], count=True)
    [d] = broker.fetch(["q"], "c", 1, 1.0)
    assert (d.id, d.deliveries) == (task_id, 3)
    # When it is given back once more, it is dead-lettered with its id
    broker.release("c", [d.tag], count=True)
    [dead] = broker.dead_letters("q")
    assert (dead.id, dead.priority, dead.deliveries) == (task_id, 5, 3)
    # And requeued from the dead letters, it runs again
    assert broker.requeue_dead("q") == 1
    [again] = broker.fetch(["q"], "c", 1, 1.0)
    assert (again.id, again.deliveries) == (task_id, 1)
    broker.ack("c", [again.tag])
    assert broker.stats("q").in_flight == 0


def test_earlier_entries_are_browsed_and_recovered(
    redis_url: str, redis_server: RedisServer
) -> None:
    broker = RedisBroker(redis_url, lease_seconds=0.2, max_deliveries=5)
    try:
        old = [str(uuid.uuid4()) for _ in range(2)]
        _queue_earlier(redis_server, broker, old)
        assert broker.browse is not None
        listed = broker.browse.messages("q", "waiting")
        assert [m.id for m in listed] == old and all(m.since for m in listed)
        # a consumer that takes them and dies: they come back after its lease
        assert len(broker.fetch(["q"], "dead-consumer", 2, 1.0)) == 2
        time.sleep(0.3)
        assert broker.recover() == 2
        assert [d.id for d in drain(broker, ["q"], expect=2)] == old
    finally:
        broker.close()


def test_ids_are_kept_exactly_and_sent_at_comes_back(
    broker: RedisBroker, redis_server: RedisServer
) -> None:
    # Given a canonical UUID (stored as 16 bytes) and ids that are not one
    ids = [
        str(uuid.uuid4()),
        str(uuid.uuid4()).upper(),
        "{" + str(uuid.uuid4()) + "}",
        "a-task-id",
        "ünïcode:id",
        "x" * 36,
        str(uuid.uuid4()).replace("-", " ", 1),
        str(uuid.uuid4()).replace("-", "") + "----",
    ]
    sent = time.time() - 5.0
    envelopes = [Envelope(i, "q", 7, b"body", None, sent) for i in ids]
    broker.publish(envelopes[:1])  # one due now: the single-message path
    broker.publish(envelopes[:1])  # the queue is known now: MULTI, not the script
    broker.publish(envelopes[1:])  # a batch: the publish script
    got = drain(broker, ["q"], expect=len(ids) + 1)
    assert [d.id for d in got] == [ids[0], *ids]
    assert {d.priority for d in got} == {7} and {d.body for d in got} == {b"body"}
    assert all(abs(d.sent_at - sent) < 2e-6 for d in got if d.sent_at is not None)
    assert all(d.sent_at is not None for d in got)


def test_sent_at_survives_delays_and_dead_letters(
    broker: RedisBroker, redis_server: RedisServer
) -> None:
    sent = time.time() - 60.0
    broker.publish([Envelope(str(uuid.uuid4()), "q", 5, b"body", time.time() + 0.1, sent)])
    d = take_one(broker)  # promoted when due: a new order
    assert d.sent_at is not None and abs(d.sent_at - sent) < 2e-6
    broker.release("c", [d.tag], delay=0.1)  # to the delayed set and back
    d = take_one(broker)
    assert d.sent_at is not None and abs(d.sent_at - sent) < 2e-6
    broker.dead_letter("c", d.tag, "refused")
    [dead] = broker.dead_letters("q")
    assert dead.sent_at is not None and abs(dead.sent_at - sent) < 2e-6
    broker.requeue_dead("q")
    [d] = drain(broker, ["q"], expect=1)
    assert d.sent_at is not None and abs(d.sent_at - sent) < 2e-6


def test_a_queued_task_through_the_app_has_no_sent_at_in_its_body(
    redis_url: str, redis_server: RedisServer
) -> None:
    # Given a task sent with delay()
    app = Celeriac("layouts", broker=redis_url, set_as_current=False, task_send_sent_event=False)

    @app.task
    def noop() -> None:
        return None

    before = time.time()
    result = noop.delay()
    # Expect a compact entry whose body leaves sent_at out, and a decoded message with it
    broker = app.broker
    assert isinstance(broker, RedisBroker)
    [entry] = redis_server.client().lrange(broker.base("celeriac") + ":p5", 0, -1)
    assert b"sent_at" not in entry and entry[:1] == b"f"
    [d] = drain(broker, ["celeriac"], expect=1)
    message = decode(d.body, app.codec, d)
    assert message.id == result.id and before - 1e-6 <= message.sent_at <= time.time()
    app.close()

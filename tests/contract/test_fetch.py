"""Publishing and fetching: round trip, strict priorities, limits, waiting."""

from __future__ import annotations

import threading
import time

import pytest

from celeriac.brokers.base import Broker
from celeriac.brokers.wake import Wake
from celeriac.exceptions import ConfigurationError

from .env import BrokerEnv
from .helpers import drain, envelope, ids


def test_round_trip_keeps_every_field(env: BrokerEnv, broker: Broker) -> None:
    """Given a published message, a fetch returns its id, queue, priority and body, leased."""
    q = env.q("round")
    sent = envelope(q, priority=7)
    broker.publish([sent])

    [got] = broker.fetch([q], "c1", 10, 1.0)

    assert (got.id, got.queue, got.priority, got.body) == (sent.id, q, 7, sent.body)
    assert got.deliveries == 1
    assert got.revoked is False
    assert isinstance(got.tag, str) and got.tag
    assert broker.fetch([q], "c2", 10, 0.0) == []  # leased to c1: nobody else gets it


def test_strict_priority_then_fifo_within_each(env: BrokerEnv, broker: Broker) -> None:
    """Given priorities 0..9 published in a shuffled order, fetch yields 9 first, FIFO within."""
    q = env.q("prio")
    order = [3, 9, 0, 5, 9, 1, 7, 3, 0, 8, 2, 6, 4, 5, 9, 1]
    sent = [envelope(q, p, task_id=f"m{i:02d}-p{p}") for i, p in enumerate(order)]
    broker.publish(sent[:8])
    broker.publish(sent[8:])

    got = [d.id for d in broker.fetch([q], "c1", 1, 0.0)]  # one at a time ...
    got += ids(drain(broker, [q], "c1", limit=5))  # ... and in batches

    expected = [e.id for e in sorted(sent, key=lambda e: -e.priority)]  # stable: FIFO kept
    assert got == expected


@pytest.mark.needs("global_priority")
def test_priority_is_global_across_the_queues_of_one_fetch(env: BrokerEnv, broker: Broker) -> None:
    """Given three queues, one fetch takes the highest priority of all, FIFO across queues."""
    qa, qb, qc = env.q("a"), env.q("b"), env.q("c")
    sent = [
        envelope(qa, 1, "a1"),
        envelope(qb, 5, "b5"),
        envelope(qc, 9, "c9"),
        envelope(qa, 5, "a5"),
        envelope(qb, 9, "b9"),
        envelope(qc, 0, "c0"),
        envelope(qa, 9, "a9"),
    ]
    broker.publish(sent)

    first = broker.fetch([qa, qb, qc], "c1", 4, 0.0)
    rest = drain(broker, [qc, qa, qb], "c1", limit=2)  # the order queues are named does not matter

    assert ids(first) == ["c9", "b9", "a9", "b5"]
    assert ids(rest) == ["a5", "a1", "c0"]


def test_fetch_takes_only_the_named_queues(env: BrokerEnv, broker: Broker) -> None:
    broker.publish([envelope(env.q("other"), 9, "x"), envelope(env.q("mine"), 0, "y")])

    assert ids(broker.fetch([env.q("mine")], "c1", 10, 0.0)) == ["y"]


@pytest.mark.parametrize("limit", [1, 3, 8])
def test_limit_is_honoured(env: BrokerEnv, broker: Broker, limit: int) -> None:
    q = env.q("limit")
    broker.publish([envelope(q) for _ in range(10)])

    batch = broker.fetch([q], "c1", limit, 0.0)

    assert len(batch) == limit
    assert broker.stats(q).total_waiting == 10 - limit


def test_fetch_with_a_timeout_returns_empty_after_about_the_timeout(
    env: BrokerEnv, broker: Broker
) -> None:
    start = time.monotonic()
    assert broker.fetch([env.q("empty")], "c1", 5, 0.3) == []
    assert 0.25 <= time.monotonic() - start < 1.5


def test_a_waiting_fetch_wakes_up_when_a_message_is_published(env: BrokerEnv) -> None:
    """Given a consumer waiting 10 s on an empty queue, a publish from another connection
    reaches it at once, not at the end of its timeout."""
    q = env.q("wake")
    consumer, producer = env.connect(), env.connect()
    consumer.fetch([q], "c1", 1, 0.0)  # connected before the clock starts
    published_at: list[float] = []

    def publish_soon() -> None:
        time.sleep(0.2)  # let the consumer start waiting; the assertion does not rely on it
        published_at.append(time.monotonic())
        producer.publish([envelope(q, task_id="late")])

    thread = threading.Thread(target=publish_soon)
    thread.start()
    got = consumer.fetch([q], "c1", 1, 10.0)
    woke_at = time.monotonic()
    thread.join()

    assert ids(got) == ["late"]
    assert woke_at - published_at[0] < 1.0  # not at the end of the 10 s timeout


@pytest.mark.needs("wake")
def test_a_waiting_fetch_returns_soon_after_its_wake_is_set(env: BrokerEnv) -> None:
    """Given a consumer waiting 10 s on an empty queue, setting its wake from another
    thread (a worker told to stop) ends the wait at once, with nothing taken; the
    connection serves the next fetch as usual."""
    q = env.q("woken")
    consumer, producer = env.connect(), env.connect()
    consumer.fetch([q], "c1", 1, 0.0)  # connected before the clock starts
    wake = Wake()
    timer = threading.Timer(0.2, wake.set)
    started = time.monotonic()
    timer.start()
    try:
        got = consumer.fetch([q], "c1", 1, 10.0, wake)
    finally:
        timer.cancel()

    assert got == []
    assert time.monotonic() - started < 1.5  # not at the end of the 10 s timeout
    producer.publish([envelope(q, task_id="after")])
    assert ids(consumer.fetch([q], "c1", 1, 5.0)) == ["after"]


def test_out_of_range_priority_is_refused_with_a_clear_error(
    env: BrokerEnv, broker: Broker
) -> None:
    with pytest.raises(ConfigurationError, match="priority 10 is out of range"):
        broker.publish([envelope(env.q("bad"), priority=10)])
    assert broker.stats(env.q("bad")).total_waiting == 0


def test_a_fetch_of_no_queues_returns_nothing_at_once(env: BrokerEnv, broker: Broker) -> None:
    """A worker whose queues are all paused fetches no queues: nothing, without waiting, and
    what it took before stays its own to finish."""
    q = env.q("none")
    broker.publish([envelope(q, task_id="held")])
    [held] = broker.fetch([q], "c1", 1, 1.0)
    start = time.monotonic()
    assert broker.fetch([], "c1", 10, 5.0) == []
    assert time.monotonic() - start < 2.0
    broker.ack("c1", [held.tag])
    assert broker.fetch([q], "c2", 10, 0.0) == []

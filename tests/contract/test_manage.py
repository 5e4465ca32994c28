"""What operators use: stats, queue listing, purges, dead letters."""

from __future__ import annotations

import threading
import time

import pytest

from celeriac.brokers.base import Broker

from .env import BrokerEnv
from .helpers import drain, envelope, ids


@pytest.mark.needs("exact_stats")
def test_stats_count_every_state_of_a_queue(env: BrokerEnv, broker: Broker) -> None:
    q = env.q("stats")
    broker.publish([envelope(q, 9, task_id="held"), envelope(q, 9, task_id="bad")])
    broker.publish([envelope(q, 8), envelope(q, 8), envelope(q, 2), envelope(q, 0)])
    broker.publish([envelope(q, 5, eta=time.time() + 60)])
    held = broker.fetch([q], "c1", 2, 0.0)
    broker.dead_letter("c1", next(d.tag for d in held if d.id == "bad"), "test")
    time.sleep(0.05)  # so the oldest waiting message has a measurable age

    stats = broker.stats(q)

    assert stats.queue == q
    assert stats.waiting == {8: 2, 2: 1, 0: 1}
    assert stats.total_waiting == 4
    assert (stats.delayed, stats.in_flight, stats.dead) == (1, 1, 1)
    assert stats.oldest_age is not None and 0.04 <= stats.oldest_age < 30


def test_stats_of_an_unknown_queue_are_empty(env: BrokerEnv, broker: Broker) -> None:
    stats = broker.stats(env.q("never-used"))
    assert (stats.waiting, stats.delayed, stats.in_flight, stats.dead) == ({}, 0, 0, 0)
    assert stats.oldest_age is None


def test_queues_lists_every_queue_with_any_message(env: BrokerEnv, broker: Broker) -> None:
    """Waiting, delayed, held and dead-only queues are all listed, consumed or not."""
    names = {s: env.q(s) for s in ("waiting", "delayed", "held", "dead")}
    broker.publish([envelope(names["waiting"]), envelope(names["held"]), envelope(names["dead"])])
    broker.publish([envelope(names["delayed"], eta=time.time() + 60)])
    broker.fetch([names["held"]], "c1", 1, 0.0)
    [bad] = broker.fetch([names["dead"]], "c1", 1, 0.0)
    broker.dead_letter("c1", bad.tag, "test")

    listed = broker.queues()

    assert set(names.values()) <= set(listed)
    assert listed == sorted(listed)


@pytest.mark.needs("exact_stats")
def test_purge_deletes_waiting_and_delayed_only(env: BrokerEnv, broker: Broker) -> None:
    q, other = env.q("purge"), env.q("keep")
    broker.publish([envelope(q) for _ in range(3)] + [envelope(other)])
    broker.publish([envelope(q, eta=time.time() + 60)])
    broker.publish([envelope(q, 9, task_id="held")])
    [held] = broker.fetch([q], "c1", 1, 0.0)

    assert broker.purge(q) == 4

    stats = broker.stats(q)
    assert (stats.total_waiting, stats.delayed, stats.in_flight) == (0, 0, 1)
    assert broker.stats(other).total_waiting == 1
    broker.ack("c1", [held.tag])  # the held one finishes normally
    assert broker.purge(q) == 0


def test_dead_letters_can_be_listed_requeued_and_purged(env: BrokerEnv) -> None:
    broker = env.connect(max_deliveries=1)
    q = env.q("dead")
    broker.publish([envelope(q, 4, task_id=f"m{i}") for i in range(5)])
    for delivery in drain(broker, [q], "c1", ack=False):
        broker.dead_letter("c1", delivery.tag, f"reason {delivery.id}")

    listed = broker.dead_letters(q)
    assert ids(listed) == ["m0", "m1", "m2", "m3", "m4"]  # oldest first
    assert [d.reason for d in listed] == [f"reason m{i}" for i in range(5)]
    assert ids(broker.dead_letters(q, limit=2)) == ["m0", "m1"]

    assert broker.requeue_dead(q, ["m1", "m3"]) == 2
    back = drain(broker, [q], "c2")
    assert sorted(ids(back)) == ["m1", "m3"]
    assert all(d.deliveries == 1 and d.priority == 4 for d in back)  # counts reset

    assert broker.purge_dead(q, ["m0"]) == 1
    assert ids(broker.dead_letters(q)) == ["m2", "m4"]
    assert broker.requeue_dead(q) == 2
    [m2] = broker.fetch([q], "c3", 1, 0.0)
    broker.dead_letter("c3", m2.tag, "again")
    assert broker.purge_dead(q) == 1
    assert broker.dead_letters(q) == [] and broker.stats(q).dead == 0


@pytest.mark.needs("exact_stats")
def test_stats_stay_consistent_while_consumers_drain(env: BrokerEnv) -> None:
    """Given a consumer taking and acking messages all the while, stats read at any moment
    never fail and never count more messages than exist."""
    q = env.q("busy")
    env.connect().publish([envelope(q, i % 10) for i in range(2000)])
    done = threading.Event()

    def drain_slowly() -> None:
        broker = env.connect(lease_seconds=30.0)
        while batch := broker.fetch([q], "c1", 3, 0.0):
            broker.ack("c1", [d.tag for d in batch])
        done.set()

    thread = threading.Thread(target=drain_slowly)
    thread.start()
    reader = env.connect()
    seen = 0
    while not done.is_set() or seen == 0:
        stats = reader.stats(q)
        assert stats.total_waiting + stats.in_flight <= 2000
        assert (stats.oldest_age is None) == (stats.total_waiting == 0)
        seen += 1
    thread.join()
    assert reader.stats(q).total_waiting == 0


@pytest.mark.needs("forget_queue")
def test_an_empty_queue_is_forgotten_until_it_holds_a_message(
    env: BrokerEnv, broker: Broker
) -> None:
    """Given a queue that held a message, Expect it not forgotten while it holds one, then,
    once emptied, forgotten (not listed), and listed again when a message is sent to it."""
    q = env.q("stale")
    broker.publish([envelope(q)])
    assert broker.forget_queue(q) is False and q in broker.queues()
    drain(broker, [q], "c1")
    assert broker.forget_queue(q) is True
    assert q not in broker.queues()
    broker.publish([envelope(q)])
    assert q in broker.queues()

"""Holding messages: ack, release, leases that expire or are renewed, poison messages."""

from __future__ import annotations

import time

import pytest

from celeriac.brokers.base import Broker

from .env import LEASE, BrokerEnv
from .helpers import drain, envelope, ids


def test_ack_removes_for_good(env: BrokerEnv, broker: Broker) -> None:
    q = env.q("ack")
    broker.publish([envelope(q, task_id="a"), envelope(q, task_id="b")])
    batch = broker.fetch([q], "c1", 10, 0.0)

    broker.ack("c1", [d.tag for d in batch])
    broker.ack("c1", [d.tag for d in batch])  # twice: unknown tags are ignored

    time.sleep(LEASE * 1.5)  # past the lease: an acked message must not come back
    broker.recover()
    assert broker.fetch([q], "c1", 10, 0.0) == []
    stats = broker.stats(q)
    assert (stats.total_waiting, stats.in_flight, stats.delayed) == (0, 0, 0)


def test_acks_sent_soon_are_applied_by_the_next_call_or_a_flush(
    env: BrokerEnv, broker: Broker
) -> None:
    """``ack_soon`` may wait for the object's next call (Redis sends it with that call);
    the next fetch or ``flush_acks`` applies it, and acked messages never come back."""
    q = env.q("ack-soon")
    broker.publish([envelope(q, task_id=i) for i in "abc"])
    first, second = broker.fetch([q], "c1", 2, 0.0)
    broker.ack_soon("c1", [first.tag])
    [third] = broker.fetch([q], "c1", 1, 0.0)  # carries the waiting ack
    broker.ack_soon("c1", [second.tag, third.tag])
    broker.flush_acks()
    broker.fetch([q], "c1", 1, 0.0)  # reads what the flush was answered, if anything
    time.sleep(LEASE * 1.5)  # past the lease: an acked message must not come back
    broker.recover()
    assert broker.fetch([q], "c1", 10, 0.0) == []
    stats = broker.stats(q)
    assert (stats.total_waiting, stats.in_flight) == (0, 0)


def test_release_gives_back_at_once_without_counting(env: BrokerEnv, broker: Broker) -> None:
    """Given a message released unstarted (count=False) many times, it is never dead-lettered
    and its delivery count does not grow."""
    q = env.q("release")
    broker.publish([envelope(q, task_id="m")])
    for _ in range(8):  # more than max_deliveries
        [got] = broker.fetch([q], "c1", 1, 0.0)
        assert got.deliveries == 1
        broker.release("c1", [got.tag], count=False)

    assert ids(broker.fetch([q], "c2", 1, 0.0)) == ["m"]
    assert broker.stats(q).dead == 0


def test_release_with_count_counts_and_dead_letters_at_max(env: BrokerEnv) -> None:
    """Given max_deliveries=3, a message released with count=True goes to dead letters with
    the reason on the third time."""
    broker = env.connect(max_deliveries=3)
    q = env.q("poison")
    broker.publish([envelope(q, task_id="m")])
    seen = []
    for _ in range(10):  # bounded: a broker that never dead-letters fails, not hangs
        batch = broker.fetch([q], "c1", 1, 0.0)
        if not batch:
            break
        seen.append(batch[0].deliveries)
        broker.release("c1", [batch[0].tag], count=True)

    assert seen == [1, 2, 3]
    [dead] = broker.dead_letters(q)
    assert (dead.id, dead.deliveries) == ("m", 3)
    assert "3" in dead.reason and "max_deliveries" in dead.reason


def test_release_with_delay_goes_to_the_delayed_set(env: BrokerEnv, broker: Broker) -> None:
    q = env.q("backoff")
    broker.publish([envelope(q, task_id="m")])
    [got] = broker.fetch([q], "c1", 1, 0.0)
    released_at = time.time()

    broker.release("c1", [got.tag], delay=0.4)

    assert broker.stats(q).delayed == (1 if "exact_stats" in env.features else 0)
    assert broker.fetch([q], "c2", 1, 0.0) == []
    again = broker.fetch([q], "c2", 1, 5.0)
    assert ids(again) == ["m"]
    assert time.time() - released_at >= 0.35


def test_release_all_returns_everything_one_consumer_holds(env: BrokerEnv, broker: Broker) -> None:
    q = env.q("all")
    broker.publish([envelope(q, task_id=f"m{i}") for i in range(6)])
    mine = broker.fetch([q], "dead-child", 4, 0.0)
    theirs = broker.fetch([q], "live-child", 2, 0.0)

    assert broker.release_all("dead-child") == 4
    assert broker.release_all("dead-child") == 0

    back = drain(broker, [q], "c3")
    assert sorted(ids(back)) == sorted(ids(mine))
    assert all(d.deliveries == 2 for d in back)
    if "exact_stats" in env.features:
        assert broker.stats(q).in_flight == len(theirs)


@pytest.mark.needs("leases")
def test_an_expired_lease_is_recovered_and_redelivered_to_another_consumer(
    env: BrokerEnv, eventually: object
) -> None:
    """Given a consumer that took a message and went silent, once its lease runs out
    ``recover`` hands the message to another consumer; the first one's late ack is ignored."""
    q = env.q("lease")
    first, second = env.connect(), env.connect()
    first.publish([envelope(q, task_id="m")])
    [held] = first.fetch([q], "silent", 1, 0.0)

    assert second.recover() == 0  # the lease still runs
    deadline = time.monotonic() + LEASE * 10
    recovered = 0
    while not recovered and time.monotonic() < deadline:
        time.sleep(LEASE / 5)
        recovered = second.recover()
    assert recovered == 1
    [again] = second.fetch([q], "other", 1, 0.0)
    first.ack("silent", [held.tag])  # too late: it is no longer the holder

    assert (again.id, again.deliveries) == ("m", 2)
    assert second.stats(q).in_flight == 1
    second.ack("other", [again.tag])
    assert second.stats(q).in_flight == 0


def test_renewed_leases_are_never_recovered(env: BrokerEnv, broker: Broker) -> None:
    """Given a message held for 3x the lease with renewals every third of it, ``recover``
    (run all along, as every worker's heartbeat does) never hands it out again."""
    q = env.q("renew")
    holder, other = env.connect(), env.connect()
    holder.publish([envelope(q, task_id="m")])
    [held] = holder.fetch([q], "busy", 1, 0.0)

    end = time.monotonic() + 3 * LEASE
    while time.monotonic() < end:
        holder.renew(["busy"])
        assert other.recover() == 0
        assert other.fetch([q], "idle", 1, 0.0) == []
        time.sleep(LEASE / 3)

    holder.ack("busy", [held.tag])
    assert other.stats(q).in_flight == 0


@pytest.mark.needs("leases")
@pytest.mark.parametrize("max_deliveries", [1, 2])
def test_expired_leases_dead_letter_after_max_deliveries(
    env: BrokerEnv, max_deliveries: int
) -> None:
    broker = env.connect(max_deliveries=max_deliveries)
    q = env.q("expire")
    broker.publish([envelope(q, task_id="m")])
    for n in range(1, max_deliveries + 1):
        [got] = broker.fetch([q], f"c{n}", 1, 5.0)
        assert got.deliveries == n
        deadline = time.monotonic() + LEASE * 10
        while not broker.recover():
            assert time.monotonic() < deadline, "lease never expired"
            time.sleep(LEASE / 5)

    assert broker.fetch([q], "c", 1, 0.0) == []
    [dead] = broker.dead_letters(q)
    assert dead.id == "m" and dead.deliveries == max_deliveries
    assert "lease expired" in dead.reason


def test_dead_letter_moves_a_held_message_with_its_reason(env: BrokerEnv, broker: Broker) -> None:
    q = env.q("dl")
    sent = envelope(q, priority=6, task_id="m")
    broker.publish([sent])
    [got] = broker.fetch([q], "c1", 1, 0.0)

    broker.dead_letter("c1", got.tag, "undecodable: not JSON")

    [dead] = broker.dead_letters(q)
    assert (dead.id, dead.queue, dead.priority, dead.body) == ("m", q, 6, sent.body)
    assert dead.reason == "undecodable: not JSON"
    assert dead.deliveries == 1
    assert abs(dead.dead_at - time.time()) < 60
    stats = broker.stats(q)
    assert (stats.in_flight, stats.dead) == (0, 1)

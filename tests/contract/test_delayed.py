"""Delayed messages (countdown, eta, retries): they wait in the broker, and run once."""

from __future__ import annotations

import threading
import time
from collections import Counter

from celeriac.brokers.base import Broker

from .env import LEASE, BrokerEnv
from .helpers import drain, envelope, ids


def test_a_delayed_message_is_not_fetchable_before_it_is_due(
    env: BrokerEnv, broker: Broker
) -> None:
    q = env.q("eta")
    due = time.time() + 0.5
    broker.publish([envelope(q, 9, "later", eta=due), envelope(q, 0, "now")])

    assert ids(drain(broker, [q], "c1")) == ["now"]
    stats = broker.stats(q)
    assert stats.total_waiting == 0
    assert stats.delayed == (1 if "exact_stats" in env.features else 0)

    got = broker.fetch([q], "c1", 10, 5.0)  # waits, and wakes for the due message

    assert ids(got) == ["later"]
    assert time.time() >= due
    assert time.time() - due < 1.0  # woke for it, not at the end of the 5 s timeout
    assert broker.stats(q).delayed == 0


def test_an_eta_in_the_past_is_ready_at_once(env: BrokerEnv, broker: Broker) -> None:
    q = env.q("past")
    broker.publish([envelope(q, task_id="m", eta=time.time() - 60)])
    assert ids(broker.fetch([q], "c1", 1, 0.0)) == ["m"]


def test_due_messages_join_their_priority_in_order(env: BrokerEnv, broker: Broker) -> None:
    """Given due delayed messages of several priorities, they are fetched by priority."""
    q = env.q("mix")
    soon = time.time() + 0.2
    broker.publish([envelope(q, p, f"p{p}", eta=soon) for p in (1, 8, 4)])
    broker.publish([envelope(q, 6, "ready6")])
    time.sleep(0.3)  # all due; which is the point of the test, not a hope

    assert ids(drain(broker, [q], "c1")) == ["p8", "ready6", "p4", "p1"]


def test_two_consumers_racing_promote_each_due_message_exactly_once(env: BrokerEnv) -> None:
    """Given 200 messages falling due together and two consumers fetching all the while,
    every message is delivered exactly once."""
    q = env.q("race")
    sent = [envelope(q, task_id=f"m{i}", eta=time.time() + 0.3) for i in range(200)]
    env.connect().publish(sent)
    got: list[str] = []
    lock = threading.Lock()

    def consume(name: str) -> None:
        broker = env.connect(lease_seconds=30.0)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            batch = broker.fetch([q], name, 7, 0.05)
            with lock:
                got.extend(ids(batch))
                if len(got) >= len(sent) and not batch:
                    return
            broker.ack(name, [d.tag for d in batch])

    threads = [threading.Thread(target=consume, args=(f"c{i}",)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert Counter(got) == Counter(e.id for e in sent)


def test_a_thousand_delayed_messages_longer_than_the_lease_each_run_once(env: BrokerEnv) -> None:
    """Given 1,000 messages whose eta is longer than the lease (Celery runs these again
    every visibility timeout), two consumers renewing and recovering as workers do
    each get every message exactly once."""
    q = env.q("countdown")
    eta = time.time() + LEASE * 2
    sent = [envelope(q, task_id=f"m{i}", eta=eta) for i in range(1000)]
    env.connect().publish(sent)
    got: Counter[str] = Counter()
    first_at: list[float] = []
    lock = threading.Lock()

    def worker(name: str) -> None:
        broker = env.connect()
        deadline = time.monotonic() + 30
        quiet_until = None  # after everything came, keep going a while: nothing may repeat
        while time.monotonic() < deadline:
            broker.renew([name])
            broker.recover()
            batch = broker.fetch([q], name, 50, LEASE / 5)
            with lock:
                if batch and not first_at:
                    first_at.append(time.time())
                got.update(ids(batch))
                done = sum(got.values()) >= len(sent)
            broker.ack(name, [d.tag for d in batch])
            if done:
                quiet_until = quiet_until or time.monotonic() + LEASE * 2
                if time.monotonic() > quiet_until:
                    return

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(got) == 1000
    assert set(got.values()) == {1}
    assert first_at[0] >= eta

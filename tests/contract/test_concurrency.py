"""Fetch is atomic under concurrency, and a consumer killed with SIGKILL loses nothing.

Threads run on every broker; real processes on the brokers several processes
share (``process_env``), started with ``spawn`` and bounded in time.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter

import pytest

from .env import LEASE, BrokerEnv
from .helpers import SPAWN, consume, drain, envelope, hold, ids

PROCESS_TIMEOUT = 60.0


def test_threads_fetching_at_once_get_each_message_exactly_once(env: BrokerEnv) -> None:
    qa, qb = env.q("ta"), env.q("tb")
    sent = [envelope(qa if i % 2 else qb, i % 10, f"m{i}") for i in range(600)]
    env.connect().publish(sent)
    barrier = threading.Barrier(4)
    got: dict[str, list[str]] = {}

    def run(name: str, limit: int) -> None:
        broker = env.connect(lease_seconds=30.0)
        barrier.wait(10)
        got[name] = ids(drain(broker, [qa, qb], name, limit=limit))

    threads = [threading.Thread(target=run, args=(f"c{i}", 1 + 3 * i)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    everything = Counter(i for taken in got.values() for i in taken)
    assert everything == Counter(e.id for e in sent)


def _run_consumers(
    env: BrokerEnv, queues: list[str], count: int, expected: int
) -> dict[str, list[str]]:
    """Start ``count`` consumer processes together; return what each one got."""
    go, out, taken = SPAWN.Event(), SPAWN.Queue(), SPAWN.Value("i", 0)
    procs = [
        SPAWN.Process(
            target=consume,
            args=(env, queues, f"p{i}", 1 + 4 * i, go, out, PROCESS_TIMEOUT, taken, expected),
        )
        for i in range(count)
    ]
    for proc in procs:
        proc.start()
    try:
        for _ in procs:  # each says when it is connected, so that they all start together
            assert out.get(timeout=PROCESS_TIMEOUT)[1] is None
        go.set()
        results = dict(out.get(timeout=PROCESS_TIMEOUT) for _ in procs)
    finally:
        for proc in procs:
            proc.join(10)
            if proc.is_alive():
                proc.kill()
    assert all(proc.exitcode == 0 for proc in procs)
    return results


def test_processes_fetching_at_once_get_each_message_exactly_once(process_env: BrokerEnv) -> None:
    """Given 800 messages, some due a moment later, and four processes fetching from the same
    queues at once, every message is delivered exactly once."""
    qa, qb = process_env.q("pa"), process_env.q("pb")
    soon = time.time() + 0.5
    sent = [envelope(qa if i % 2 else qb, i % 10, f"m{i}") for i in range(600)]
    sent += [envelope(qa if i % 2 else qb, i % 10, f"d{i}", eta=soon) for i in range(200)]
    process_env.connect().publish(sent)

    results = _run_consumers(process_env, [qa, qb], 4, len(sent))

    everything = Counter(i for taken in results.values() for i in taken)
    assert everything == Counter(e.id for e in sent)
    assert sum(1 for taken in results.values() if taken) >= 2  # they really did share the work


def _held_by_killed_child(env: BrokerEnv, q: str, consumer: str, limit: int) -> list[str]:
    """A child process fetches ``limit`` messages and is killed with SIGKILL holding them."""
    out = SPAWN.Queue()
    child = SPAWN.Process(target=hold, args=(env, q, consumer, limit, out))
    child.start()
    try:
        held = out.get(timeout=PROCESS_TIMEOUT)
    finally:
        os.kill(child.pid, signal.SIGKILL)  # type: ignore[arg-type]
        child.join(10)
    assert child.exitcode == -signal.SIGKILL
    return [task_id for task_id, _ in held]


@pytest.mark.needs("leases")
@pytest.mark.parametrize("how", ["release_all", "lease_expiry"])
def test_messages_of_a_killed_consumer_come_back_exactly_once(
    process_env: BrokerEnv, how: str
) -> None:
    """Given a child process killed with SIGKILL while holding 8 of 20 messages, its
    supervisor's ``release_all`` (or, if the whole worker died, lease expiry and ``recover``)
    returns them, and a second consumer gets each of the 20 exactly once."""
    q = process_env.q("crash")
    sent = [envelope(q, 5, f"m{i}") for i in range(20)]
    broker = process_env.connect()
    broker.publish(sent)

    held = _held_by_killed_child(process_env, q, "child-1", 8)
    assert len(held) == 8 and broker.stats(q).in_flight == 8

    if how == "release_all":
        assert broker.release_all("child-1") == 8
    else:
        assert broker.recover() == 0  # the lease still runs
        deadline = time.monotonic() + LEASE * 10
        recovered = 0
        while recovered < 8:
            assert time.monotonic() < deadline, "leases of the dead consumer never expired"
            time.sleep(LEASE / 5)
            recovered += broker.recover()
        assert recovered == 8

    got = drain(broker, [q], "child-2")
    assert Counter(ids(got)) == Counter(e.id for e in sent)
    assert {d.id for d in got if d.deliveries == 2} == set(held)
    assert broker.stats(q).in_flight == 0


def test_kill_9_in_a_loop_loses_and_duplicates_nothing(process_env: BrokerEnv) -> None:
    """Given consumers killed with SIGKILL one after another, each holding messages,
    a survivor that recovers them acks each message exactly once."""
    q = process_env.q("loop")
    sent = [envelope(q, i % 10, f"m{i}") for i in range(30)]
    broker = process_env.connect()
    broker.publish(sent)
    killed = []
    for round_ in range(3):
        killed += _held_by_killed_child(process_env, q, f"doomed-{round_}", 5)
        returned = broker.release_all(f"doomed-{round_}")
        assert returned == (5 if "leases" in process_env.features else 0)

    got = drain(broker, [q], "survivor")
    assert Counter(ids(got)) == Counter(e.id for e in sent)
    assert len(killed) == 15

"""Capabilities beyond delivery, on every engine that offers them: streams (events,
control, replies), flags (paused queues, presence), rate-limit slots, revocations.

Each test runs against every engine of the registry and takes the capability from
the broker object (:func:`offered`): what the object offers is what is tested. So
that a capability cannot silently stop being tested, the first test states, per
engine, what each one offers.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import pytest

from celeriac.brokers.capabilities import CAPABILITIES, KINDS
from celeriac.exceptions import CapabilityUnavailable

from .env import BrokerEnv
from .helpers import envelope, offered

ALL = frozenset(CAPABILITIES)
#: What each engine offers today: losing one is a failure here, not a quiet gap.
DECLARED: dict[str, frozenset[str]] = {
    "memory": ALL,
    "sqlite": ALL,
    "redis": ALL,
    "rabbitmq": ALL,
}


def test_each_engine_offers_the_capabilities_it_declares(
    env: BrokerEnv, request: pytest.FixtureRequest
) -> None:
    engine = request.node.callspec.params["env"]
    broker = env.connect()

    found = {name for name in CAPABILITIES if getattr(broker, name) is not None}

    assert found == DECLARED[engine], f"{engine} offers {sorted(found)}"


#: The kinds of message each engine's ``browse`` lists; it refuses the others with a reason
#: (RabbitMQ's reserved messages are known to the workers only: celeriac.control.held).
BROWSES: dict[str, frozenset[str]] = {
    "memory": frozenset(KINDS),
    "sqlite": frozenset(KINDS),
    "redis": frozenset(KINDS),
    "rabbitmq": frozenset({"delayed", "waiting"}),
}


def test_each_engine_browses_the_kinds_it_declares(
    env: BrokerEnv, request: pytest.FixtureRequest
) -> None:
    engine = request.node.callspec.params["env"]
    browse = env.connect().browse
    assert browse is not None, f"{engine} offers no browse"
    q = env.q("kinds")

    listed = set()
    for kind in KINDS:
        try:
            assert browse.messages(q, kind) == [] and browse.count(q, kind) == 0
            listed.add(kind)
        except CapabilityUnavailable as exc:
            assert kind in str(exc)

    assert listed == BROWSES[engine], f"{engine} browses {sorted(listed)}"


def test_a_stream_is_read_in_order_after_a_position(env: BrokerEnv) -> None:
    streams = offered(env.connect(), "streams")
    stream = env.q("events")
    assert streams.last(stream) == "0"
    assert streams.read(stream, "0") == []

    streams.add(stream, [b"a", b"b"])
    streams.add(stream, [b"c"])
    items = streams.read(stream, "0")
    last = streams.last(stream)

    assert [item for _, item in items] == [b"a", b"b", b"c"]
    assert items[-1][0] == last
    assert streams.read(stream, items[0][0]) == items[1:]
    assert streams.read(stream, "0", limit=2) == items[:2]
    assert streams.read(stream, last) == []
    assert streams.read(env.q("other"), "0") == []


def test_a_stream_keeps_about_maxlen_newest_items(env: BrokerEnv) -> None:
    streams = offered(env.connect(), "streams")
    stream = env.q("bounded")
    for i in range(50):
        streams.add(stream, [str(i).encode()], maxlen=10)

    items = [int(item) for _, item in streams.read(stream, "0", limit=1000)]

    assert 10 <= len(items) <= 20  # "about": a broker may trim lazily
    assert items == list(range(50 - len(items), 50))


def test_a_waiting_stream_read_wakes_up_for_a_new_item(env: BrokerEnv) -> None:
    reader, writer = offered(env.connect(), "streams"), offered(env.connect(), "streams")
    stream = env.q("control")
    start = reader.last(stream)
    added_at: list[float] = []

    def add_soon() -> None:
        time.sleep(0.2)
        added_at.append(time.monotonic())
        writer.add(stream, [b"ping"])

    thread = threading.Thread(target=add_soon)
    thread.start()
    items = reader.read(stream, start, timeout=10.0)
    woke_at = time.monotonic()
    thread.join()

    assert [item for _, item in items] == [b"ping"]
    assert woke_at - added_at[0] < 1.0  # not at the end of the 10 s timeout
    begin = time.monotonic()
    assert reader.read(stream, items[-1][0], timeout=0.2) == []
    assert 0.15 <= time.monotonic() - begin < 1.5


def test_flags_are_set_listed_by_prefix_and_cleared(env: BrokerEnv) -> None:
    flags, other = offered(env.connect(), "flags"), offered(env.connect(), "flags")
    prefix = env.q("paused:")
    flags.set(prefix + "a", "1")
    flags.set(prefix + "b", "2")
    flags.set(env.q("presence:w1"), "up")

    assert other.read(prefix) == {prefix + "a": "1", prefix + "b": "2"}
    flags.set(prefix + "a", None)
    flags.set(prefix + "b", "3")
    assert other.read(prefix) == {prefix + "b": "3"}


def test_rate_slots_are_shared_by_every_connection(env: BrokerEnv) -> None:
    """Given 10/s shared by two connections, successive reservations are 0.1 s apart."""
    first, second = offered(env.connect(), "rates"), offered(env.connect(), "rates")
    key = env.q("rate:task")

    waits = [rates.reserve(key, 0.1) for rates in (first, second, first, second)]

    assert waits[0] == pytest.approx(0.0, abs=0.01)
    for n, wait in enumerate(waits):
        assert wait == pytest.approx(0.1 * n, abs=0.05)


def test_a_rate_burst_allows_that_many_at_once(env: BrokerEnv) -> None:
    rates = offered(env.connect(), "rates")
    key = env.q("rate:burst")

    waits = [rates.reserve(key, 1.0, burst=3) for _ in range(4)]

    assert waits[:3] == [pytest.approx(0.0, abs=0.01)] * 3
    assert waits[3] == pytest.approx(1.0, abs=0.05)


def test_revocations_are_remembered_for_their_ttl(env: BrokerEnv) -> None:
    revocations = offered(env.connect(), "revocations")
    short, long_, never = (f"{name}-{uuid.uuid4().hex}" for name in ("short", "long", "never"))
    revocations.revoke([short], ttl=0.3)
    revocations.revoke([long_], ttl=60)

    assert revocations.revoked([short, long_, never]) == {short, long_}
    deadline = time.monotonic() + 5
    while short in revocations.revoked([short]):
        assert time.monotonic() < deadline, "revocation outlived its ttl"
        time.sleep(0.02)
    assert revocations.revoked([short, long_, never]) == {long_}


def test_a_unique_key_is_held_by_its_first_claimer_until_released(env: BrokerEnv) -> None:
    """Given one connection holding a key, another's claim returns the holder; after the
    holder releases it (and not after another's release), the next claim wins."""
    first, second = offered(env.connect(), "uniques"), offered(env.connect(), "uniques")
    key = env.q(f"unique:{uuid.uuid4().hex}")

    assert first.claim(key, "a", 60) == "a"
    assert second.claim(key, "b", 60) == "a"
    second.release(key, "b")  # not the holder: nothing changes
    assert second.claim(key, "b", 60) == "a"
    first.release(key, "a")
    assert second.claim(key, "b", 60) == "b"


def test_a_unique_hold_ends_after_its_ttl(env: BrokerEnv) -> None:
    uniques = offered(env.connect(), "uniques")
    key = env.q(f"unique:{uuid.uuid4().hex}")
    assert uniques.claim(key, "a", 0.3) == "a"
    assert uniques.claim(key, "b", 0.3) == "a"

    deadline = time.monotonic() + 5
    while (holder := uniques.claim(key, "b", 60)) == "a":
        assert time.monotonic() < deadline, "the hold outlived its ttl"
        time.sleep(0.02)
    assert holder == "b"


def test_concurrent_unique_claims_have_one_winner(env: BrokerEnv) -> None:
    """Given 8 threads on their own connections claiming one key 25 times each, every
    claim names the same holder, one of the claimers."""
    key = env.q(f"unique:{uuid.uuid4().hex}")
    connections = [offered(env.connect(), "uniques") for _ in range(8)]
    holders: list[str] = []
    lock = threading.Lock()

    def claim(n: int) -> None:
        found = [connections[n].claim(key, f"t{n}-{i}", 60) for i in range(25)]
        with lock:
            holders.extend(found)

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert len(holders) == 200
    assert len(set(holders)) == 1, sorted(set(holders))


def test_fetched_deliveries_carry_the_revoked_flag(env: BrokerEnv) -> None:
    broker = env.connect()
    revocations: Any = offered(broker, "revocations")
    q = env.q("revoked")
    gone, kept = f"gone-{uuid.uuid4().hex}", f"kept-{uuid.uuid4().hex}"
    revocations.revoke([gone], ttl=60)
    broker.publish([envelope(q, task_id=gone), envelope(q, task_id=kept)])

    flags = {d.id: d.revoked for d in broker.fetch([q], "c1", 10, 0.0)}

    assert flags == {gone: True, kept: False}


def test_a_concurrency_key_holds_its_limit_and_parks_the_rest_in_order(env: BrokerEnv) -> None:
    """Given a limit of 2, two tasks hold the key and the next two are parked; when a
    holder finishes, the oldest parked message comes out (for its promoter to publish),
    and a promoted task that arrives takes the freed slot."""
    broker = env.connect(lease_seconds=30)
    limits = offered(broker, "concurrency")
    key, q = env.q(f"limit:{uuid.uuid4().hex}"), env.q("limited")

    taken = [limits.acquire(key, 2, f"t{n}", "c1", envelope(q, task_id=f"t{n}")) for n in range(4)]

    assert taken == [True, True, False, False]
    assert limits.holders(key) == {"t0": "c1", "t1": "c1"}
    out = limits.release(key, "t0")
    assert [e.id for e in out] == ["t2"] and out[0].queue == q
    assert out[0].body == envelope(q, task_id="t2").body
    limits.moved(key, ["t2"])
    assert limits.release(key, "t-unknown") == []  # the moved one's slot is not free twice
    assert limits.acquire(key, 2, "t2", "c2", envelope(q, task_id="t2"))
    assert limits.holders(key) == {"t1": "c1", "t2": "c2"}
    assert [e.id for e in limits.release(key, "t1")] == ["t3"]


def test_holds_of_a_consumer_that_stops_renewing_end_within_a_lease(env: BrokerEnv) -> None:
    """Given c1 renewed and c2 silent, each holding a slot of a full key with a waiter,
    after one lease c2's slot is free: the sweep lets the waiter out; c1's stays held."""
    lease = 0.5
    limits = offered(env.connect(lease_seconds=lease), "concurrency")
    key, q = env.q(f"limit:{uuid.uuid4().hex}"), env.q("limited")
    assert limits.acquire(key, 2, "a", "c1", envelope(q, task_id="a"))
    assert limits.acquire(key, 2, "b", "c2", envelope(q, task_id="b"))
    assert not limits.acquire(key, 2, "w", "c3", envelope(q, task_id="w"))

    deadline = time.monotonic() + 5 * lease
    let_out: list[str] = []
    while not let_out:
        assert time.monotonic() < deadline, "a dead consumer's hold outlived its lease"
        limits.renew(["c1"])
        let_out = [e.id for k, found in limits.sweep() if k == key for e in found]
        time.sleep(lease / 10)

    assert let_out == ["w"]
    assert limits.holders(key) == {"a": "c1"}


def test_concurrent_acquires_never_exceed_the_limit(env: BrokerEnv) -> None:
    """Given 8 connections each trying 5 tasks on one key of limit 3 at once, exactly 3
    hold it and the 37 others are parked."""
    key, q = env.q(f"limit:{uuid.uuid4().hex}"), env.q("limited")
    connections = [offered(env.connect(lease_seconds=30), "concurrency") for _ in range(8)]
    won: list[str] = []
    lock = threading.Lock()

    def acquire(n: int) -> None:
        for i in range(5):
            task = f"t{n}-{i}"
            if connections[n].acquire(key, 3, task, f"c{n}", envelope(q, task_id=task)):
                with lock:
                    won.append(task)

    threads = [threading.Thread(target=acquire, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert len(won) == 3 and set(connections[0].holders(key)) == set(won)


def test_ending_a_consumer_frees_its_holds_at_once(env: BrokerEnv) -> None:
    """Given a full key whose holders' consumers renew, when one consumer is ended (its
    process died), expect its slot free at once, long before its lease: the sweep lets the
    waiter out, and the live consumer keeps its slot."""
    limits = offered(env.connect(lease_seconds=30), "concurrency")
    key, q = env.q(f"limit:{uuid.uuid4().hex}"), env.q("limited")
    assert limits.acquire(key, 2, "a", "c1", envelope(q, task_id="a"))
    assert limits.acquire(key, 2, "b", "c2", envelope(q, task_id="b"))
    limits.renew(["c1", "c2"])
    assert not limits.acquire(key, 2, "w", "c3", envelope(q, task_id="w"))
    assert limits.sweep() == [] or all(k != key for k, _ in limits.sweep())

    limits.end(["c2"])

    assert [e.id for k, found in limits.sweep() if k == key for e in found] == ["w"]
    assert limits.holders(key) == {"a": "c1"}


def test_a_consumer_id_used_again_after_it_ended_keeps_its_new_holds(env: BrokerEnv) -> None:
    """Given consumer c9 ended (a dead process whose id comes back, as pids do), expect holds
    it takes afterwards to count until their own lease: the key stays full."""
    limits = offered(env.connect(lease_seconds=30), "concurrency")
    key, q = env.q(f"limit:{uuid.uuid4().hex}"), env.q("limited")
    limits.end(["c9"])
    time.sleep(0.01)  # the hold is taken after the end, by the clock too

    assert limits.acquire(key, 1, "a", "c9", envelope(q, task_id="a"))
    assert not limits.acquire(key, 1, "b", "c8", envelope(q, task_id="b"))
    assert limits.holders(key) == {"a": "c9"}

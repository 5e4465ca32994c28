"""Streams (events, control, replies), flags (paused queues, presence) and rate-limit slots."""

from __future__ import annotations

import threading
import time

import pytest

from .env import BrokerEnv


@pytest.mark.needs("streams")
def test_a_stream_is_read_in_order_after_a_position(env: BrokerEnv) -> None:
    broker = env.connect()
    stream = env.q("events")
    assert broker.stream_last(stream) == "0"
    assert broker.stream_read(stream, "0") == []

    broker.stream_add(stream, [b"a", b"b"])
    broker.stream_add(stream, [b"c"])
    items = broker.stream_read(stream, "0")
    last = broker.stream_last(stream)

    assert [item for _, item in items] == [b"a", b"b", b"c"]
    assert items[-1][0] == last
    assert broker.stream_read(stream, items[0][0]) == items[1:]
    assert broker.stream_read(stream, "0", limit=2) == items[:2]
    assert broker.stream_read(stream, last) == []
    assert broker.stream_read(env.q("other"), "0") == []


@pytest.mark.needs("streams")
def test_a_stream_keeps_about_maxlen_newest_items(env: BrokerEnv) -> None:
    broker = env.connect()
    stream = env.q("bounded")
    for i in range(50):
        broker.stream_add(stream, [str(i).encode()], maxlen=10)

    items = [int(item) for _, item in broker.stream_read(stream, "0", limit=1000)]

    assert 10 <= len(items) <= 20  # "about": a broker may trim lazily
    assert items == list(range(50 - len(items), 50))


@pytest.mark.needs("streams")
def test_a_waiting_stream_read_wakes_up_for_a_new_item(env: BrokerEnv) -> None:
    reader, writer = env.connect(), env.connect()
    stream = env.q("control")
    start = reader.stream_last(stream)
    added_at: list[float] = []

    def add_soon() -> None:
        time.sleep(0.2)
        added_at.append(time.monotonic())
        writer.stream_add(stream, [b"ping"])

    thread = threading.Thread(target=add_soon)
    thread.start()
    items = reader.stream_read(stream, start, timeout=10.0)
    woke_at = time.monotonic()
    thread.join()

    assert [item for _, item in items] == [b"ping"]
    assert woke_at - added_at[0] < 1.0  # not at the end of the 10 s timeout
    begin = time.monotonic()
    assert reader.stream_read(stream, items[-1][0], timeout=0.2) == []
    assert 0.15 <= time.monotonic() - begin < 1.5


@pytest.mark.needs("flags")
def test_flags_are_set_listed_by_prefix_and_cleared(env: BrokerEnv) -> None:
    broker, other = env.connect(), env.connect()
    prefix = env.q("paused:")
    broker.set_flag(prefix + "a", "1")
    broker.set_flag(prefix + "b", "2")
    broker.set_flag(env.q("presence:w1"), "up")

    assert other.flags(prefix) == {prefix + "a": "1", prefix + "b": "2"}
    broker.set_flag(prefix + "a", None)
    broker.set_flag(prefix + "b", "3")
    assert other.flags(prefix) == {prefix + "b": "3"}


@pytest.mark.needs("rates")
def test_rate_slots_are_shared_by_every_connection(env: BrokerEnv) -> None:
    """Given 10/s shared by two connections, successive reservations are 0.1 s apart."""
    first, second = env.connect(), env.connect()
    key = env.q("rate:task")

    waits = [b.rate_reserve(key, 0.1) for b in (first, second, first, second)]

    assert waits[0] == pytest.approx(0.0, abs=0.01)
    for n, wait in enumerate(waits):
        assert wait == pytest.approx(0.1 * n, abs=0.05)


@pytest.mark.needs("rates")
def test_a_rate_burst_allows_that_many_at_once(env: BrokerEnv) -> None:
    broker = env.connect()
    key = env.q("rate:burst")

    waits = [broker.rate_reserve(key, 1.0, burst=3) for _ in range(4)]

    assert waits[:3] == [pytest.approx(0.0, abs=0.01)] * 3
    assert waits[3] == pytest.approx(1.0, abs=0.05)

"""A fetch whose reply is lost is safe to send again: nothing stays held unknown."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from celeriac.exceptions import BrokerUnavailable
from celeriac.redis import scripts
from celeriac.redis.broker import RedisBroker

from .helpers import envelope
from .servers import RedisServer


def lose_replies(broker: RedisBroker, monkeypatch: pytest.MonkeyPatch, times: int) -> list[int]:
    """The next ``times`` exchanges reach the server, but their replies never come back."""
    real = scripts.HeldLink._talk
    lost = [0]
    broker.fetch(["warm"], "warm-up", 1, 0)  # the scripts loaded: a lost call ran them

    def talk(
        self: Any, sock: Any, packed: bytes, replies: int, timeout: float | None, wake: Any = None
    ) -> Any:
        if lost[0] < times and b"EVALSHA" in packed:
            lost[0] += 1
            real(self, sock, packed, replies, timeout, wake)  # the server runs it...
            raise scripts._Closed("the server closed the connection")  # ...the reply is lost
        return real(self, sock, packed, replies, timeout, wake)

    monkeypatch.setattr(scripts.HeldLink, "_talk", talk)
    return lost


def test_a_fetch_sent_again_after_a_lost_reply_returns_the_same_messages(
    broker: RedisBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given ten messages, and a fetch whose first reply is lost (the link sends it again)
    broker.publish([envelope(i) for i in range(10)])
    lost = lose_replies(broker, monkeypatch, 1)
    first = broker.fetch(["q"], "c", 5, 0)
    assert lost[0] == 1
    # Expect the messages the server leased the first time, and no others held
    assert [d.id for d in first] == ["0", "1", "2", "3", "4"]
    assert broker.stats("q").in_flight == 5
    broker.ack("c", [d.tag for d in first])
    second = broker.fetch(["q"], "c", 10, 0)
    assert [d.id for d in second] == ["5", "6", "7", "8", "9"]
    broker.ack("c", [d.tag for d in second])
    assert broker.stats("q").in_flight == 0


def test_a_fetch_that_failed_is_answered_by_the_next_fetch_of_the_consumer(
    broker: RedisBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a fetch whose reply is lost twice: the call fails as an outage
    broker.publish([envelope(i) for i in range(6)])
    lose_replies(broker, monkeypatch, 2)
    with pytest.raises(BrokerUnavailable):
        broker.fetch(["q", "other"], "c", 3, 0)
    # When the consumer fetches again, Expect what the lost fetch leased, then the rest
    again = broker.fetch(["q", "other"], "c", 3, 0)
    assert [d.id for d in again] == ["0", "1", "2"]
    broker.ack("c", [d.tag for d in again])
    rest = broker.fetch(["q"], "c", 10, 0)
    assert [d.id for d in rest] == ["3", "4", "5"]
    broker.ack("c", [d.tag for d in rest])
    assert broker.stats("q").in_flight == 0


def test_a_drain_under_connection_kills_leaves_nothing_held(
    broker: RedisBroker, redis_server: RedisServer
) -> None:
    # Given every client connection killed every 10 ms
    admin = redis_server.client()
    stop = threading.Event()
    kills = [0]
    publishing = threading.Lock()  # publishes are not idempotent: no kills during them

    def killer() -> None:
        while not stop.wait(0.01):
            with publishing:
                kills[0] += admin.client_kill_filter(_type="normal", skipme=True)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    sent, seen = 0, set()
    try:
        # When a consumer drains rounds of 100 messages for 3 s, fetching 5 at a time
        # and sending again what failed, as a worker does
        until = time.monotonic() + 3
        while time.monotonic() < until:
            with publishing:
                broker.publish([envelope(i) for i in range(sent, sent + 100)])
            sent += 100
            deadline = time.monotonic() + 20
            while len(seen) < sent and time.monotonic() < deadline:
                batch = retry(lambda: broker.fetch(["q"], "c", 5, 0.05))
                retry(lambda: broker.ack("c", [d.tag for d in batch]))  # noqa: B023
                seen.update(d.id for d in batch)
            assert len(seen) == sent, f"{sent - len(seen)} of {sent} never delivered"
    finally:
        stop.set()
        thread.join(5)
    # Expect every message delivered, and none left held by the live consumer
    assert kills[0] > 10
    stats = broker.stats("q")
    assert (stats.in_flight, sum(stats.waiting.values())) == (0, 0)


def retry(call: Any) -> Any:
    for _ in range(100):
        try:
            return call()
        except BrokerUnavailable:
            continue
    raise AssertionError("the broker stayed unavailable")

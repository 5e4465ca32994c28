"""A finished task's ack is posted (written at once, its answer read by the next call)
or deferred (written with the next call)."""

from __future__ import annotations

import logging

import pytest

from celeriac.redis.broker import RedisBroker

from .helpers import count_round_trips, envelope


def held_elsewhere(redis_url: str) -> int:
    """How many messages of queue "q" are held, as another connection sees it."""
    other = RedisBroker(redis_url)
    try:
        return other.stats("q").in_flight
    finally:
        other.close()


def test_a_posted_ack_costs_no_round_trip_and_is_applied_before_the_next_call(
    broker: RedisBroker, redis_url: str
) -> None:
    broker.publish([envelope(i) for i in range(3)])
    taken = broker.fetch(["q"], "c", 3, 0)
    with count_round_trips() as trips:
        for delivery in taken:
            broker.complete("c", [delivery.tag], None, [])
    assert trips.value == 0  # written, not waited for
    # The same object's next call reads the three answers before its own
    assert broker.stats("q").in_flight == 0
    other = RedisBroker(redis_url)
    try:
        assert other.stats("q").in_flight == 0
        assert other.fetch(["q"], "c2", 3, 0) == []
    finally:
        other.close()


def test_closing_reads_the_answers_so_no_posted_ack_is_dropped(
    broker: RedisBroker, redis_url: str
) -> None:
    broker.publish([envelope(i) for i in range(50)])
    taken = broker.fetch(["q"], "c", 50, 0)
    for delivery in taken:
        broker.complete("c", [delivery.tag], None, [])
    broker.close()
    assert held_elsewhere(redis_url) == 0


def test_a_posted_command_that_fails_is_logged_and_the_next_call_gets_its_own_answer(
    broker: RedisBroker, caplog: pytest.LogCaptureFixture
) -> None:
    broker.publish([envelope("a")])
    broker.link.post([("HDEL", "not-enough-arguments")], "ack")  # type: ignore[union-attr]
    with caplog.at_level(logging.WARNING, logger="celeriac.redis"):
        [got] = broker.fetch(["q"], "c", 1, 0)
    assert got.id == "a"
    assert any("a posted ack failed" in r.getMessage() for r in caplog.records)


def test_a_connection_lost_with_answers_owed_says_the_acks_may_come_again(
    broker: RedisBroker, caplog: pytest.LogCaptureFixture
) -> None:
    broker.publish([envelope(i) for i in range(2)])
    first, second = broker.fetch(["q"], "c", 2, 0)
    broker.complete("c", [first.tag], None, [])
    broker.client.client_kill_filter(skipme=True, _type="normal")  # every other connection
    with caplog.at_level(logging.WARNING, logger="celeriac.redis"):
        broker.complete("c", [second.tag], None, [])  # written to a closed connection
        assert broker.stats("q").in_flight == 1  # reconnected: the second is still held
    warned = [r.getMessage() for r in caplog.records if "posted command" in r.getMessage()]
    assert warned and "comes again when its lease runs out" in warned[0]


def test_deferred_acks_travel_with_the_next_call_in_one_write(
    broker: RedisBroker, redis_url: str
) -> None:
    broker.publish([envelope(i) for i in range(5)])
    taken = broker.fetch(["q"], "c", 4, 0)
    other = RedisBroker(redis_url)
    try:
        with count_round_trips() as trips:
            for delivery in taken:
                broker.ack_soon("c", [delivery.tag])
        assert trips.value == 0
        assert other.stats("q").in_flight == 4  # kept, not written yet
        with count_round_trips() as trips:
            [fifth] = broker.fetch(["q"], "c", 1, 0)
        assert trips.value == 1  # the acks went with the fetch
        assert fifth.id == "4"
        assert other.stats("q").in_flight == 1  # only the fifth is held now
    finally:
        other.close()


def test_deferred_acks_of_one_holder_become_one_command(broker: RedisBroker) -> None:
    broker.publish([envelope(i) for i in range(3)])
    taken = broker.fetch(["q"], "c", 3, 0)
    for delivery in taken:
        broker.ack_soon("c", [delivery.tag])
    assert len(broker.link._deferred) == 1  # type: ignore[union-attr]


def test_flushed_acks_are_written_without_waiting(broker: RedisBroker, redis_url: str) -> None:
    broker.publish([envelope(i) for i in range(2)])
    taken = broker.fetch(["q"], "c", 2, 0)
    for delivery in taken:
        broker.ack_soon("c", [delivery.tag])
    with count_round_trips() as trips:
        broker.flush_acks()
    assert trips.value == 0
    assert broker.stats("q").in_flight == 0  # this call reads the flushed acks' answers


def test_closing_writes_the_deferred_acks(broker: RedisBroker, redis_url: str) -> None:
    broker.publish([envelope(i) for i in range(3)])
    taken = broker.fetch(["q"], "c", 3, 0)
    for delivery in taken:
        broker.ack_soon("c", [delivery.tag])
    broker.close()
    assert held_elsewhere(redis_url) == 0

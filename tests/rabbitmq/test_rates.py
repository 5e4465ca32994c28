"""Cluster-wide rate limits on RabbitMQ: the token queue under concurrency and failures."""

from __future__ import annotations

import itertools
import json
import multiprocessing
import threading
import time
import uuid
from collections.abc import Callable

import pika
import pytest

from celeriac.rabbitmq import rates as amqp_rates
from celeriac.rabbitmq.broker import AMQPBroker
from celeriac.rabbitmq.rates import rate_queue

from .rate_child import reserve_slots

SPAWN = multiprocessing.get_context("spawn")


def _key() -> str:
    return f"task.limited:{uuid.uuid4().hex[:8]}"


def _connection(amqp_url: str) -> pika.BlockingConnection:
    return pika.BlockingConnection(pika.URLParameters(amqp_url))


def _tokens(amqp_url: str, key: str) -> int:
    conn = _connection(amqp_url)
    try:
        return int(conn.channel().queue_declare(rate_queue(key), passive=True).method.message_count)
    finally:
        conn.close()


def _state(amqp_url: str, key: str) -> float:
    """The limit's theoretical arrival time, read from its token (put back on close)."""
    conn = _connection(amqp_url)
    try:
        method, _, body = conn.channel().basic_get(rate_queue(key), auto_ack=False)
        assert method is not None, "no token"
        return float(json.loads(body)["tat"])
    finally:
        conn.close()


def test_processes_reserving_at_once_on_a_new_limit_never_share_a_slot(amqp_url: str) -> None:
    """Given 4 processes that reserve 6 slots each of a 1/s limit that does not exist yet,
    all starting together, expect 24 distinct slots a second apart, and one token left."""
    key, interval, processes = _key(), 1.0, 4
    go, out = SPAWN.Event(), SPAWN.Queue()
    children = [
        SPAWN.Process(target=reserve_slots, args=(amqp_url, key, interval, 6, go, out))
        for _ in range(processes)
    ]
    for child in children:
        child.start()
    go.set()
    slots = sorted(s for _ in children for s in out.get(timeout=60))
    for child in children:
        child.join(30)

    # Each reservation moved the limit's state on by at least one interval from the one
    # before (more when the limit sat idle a moment: a slow process on a loaded machine):
    # a slot handed out twice would leave the state short by an interval.
    assert len(slots) == 24
    assert _state(amqp_url, key) - slots[0] >= 24 * interval - 0.1
    assert _tokens(amqp_url, key) == 1
    gaps = [later - earlier for earlier, later in itertools.pairwise(slots)]
    assert min(gaps) >= interval - 0.1  # a reserving round trip blurs each slot a little


def test_a_reservation_waits_while_another_holds_the_token_and_goes_on_when_it_dies(
    broker: AMQPBroker, amqp_url: str
) -> None:
    key = _key()
    first = time.time()
    assert broker.rates.reserve(key, 1.0) == pytest.approx(0.0, abs=0.01)
    holder = _connection(amqp_url)
    method, _, _ = holder.channel().basic_get(rate_queue(key), auto_ack=False)
    assert method is not None  # another worker holds the token now
    waits: list[float] = []

    def reserve() -> None:
        wait = broker.rates.reserve(key, 1.0)
        waits.append(time.time() + wait)  # when the slot is

    reserving = threading.Thread(target=reserve)
    reserving.start()

    reserving.join(0.5)
    assert reserving.is_alive() and not waits  # no slot without the token
    holder.close()  # the holder dies: RabbitMQ requeues the token
    reserving.join(10)

    assert not reserving.is_alive()
    # The state the dead holder took is intact: the slot is one interval after the first.
    assert waits == [pytest.approx(first + 1.0, abs=0.1)]


def test_a_holder_that_dies_after_publishing_leaves_only_its_new_token(
    broker: AMQPBroker, amqp_url: str
) -> None:
    """Given a holder that published the new state (a slot 30 s away) and died before its
    ack, expect its old token dropped when requeued, and the next slot after the new state."""
    key = _key()
    broker.rates.reserve(key, 1.0)
    holder = _connection(amqp_url)
    channel = holder.channel()
    method, _, _ = channel.basic_get(rate_queue(key), auto_ack=False)
    assert method is not None
    channel.basic_publish(
        "",
        rate_queue(key),
        json.dumps({"tat": time.time() + 30}).encode(),
        pika.BasicProperties(delivery_mode=2),
    )
    holder.close()

    assert broker.rates.reserve(key, 1.0) == pytest.approx(30.0, abs=0.5)
    assert _tokens(amqp_url, key) == 1


def test_bad_limits_are_clear_errors(broker: AMQPBroker) -> None:
    with pytest.raises(ValueError, match="interval must be positive"):
        broker.rates.reserve(_key(), 0.0)
    with pytest.raises(ValueError, match="burst must be at least 1"):
        broker.rates.reserve(_key(), 1.0, burst=0)


def test_a_very_long_key_gets_a_digest_queue_name(
    make_broker: Callable[..., AMQPBroker],
) -> None:
    key = "k" * 400
    first, second = make_broker(), make_broker()
    assert first.rates.reserve(key, 0.5) == pytest.approx(0.0, abs=0.01)
    assert second.rates.reserve(key, 0.5) == pytest.approx(0.5, abs=0.05)
    assert len(rate_queue(key).encode()) <= 255


def test_a_token_lost_with_its_creator_is_made_again(
    broker: AMQPBroker, amqp_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given a limit's queue whose creator died before publishing the first token, expect
    a reservation to make a new token once the queue stayed empty for LOST_AFTER."""
    monkeypatch.setattr(amqp_rates, "LOST_AFTER", 0.3)
    key = _key()
    conn = _connection(amqp_url)
    conn.channel().queue_declare(rate_queue(key), durable=True, arguments=amqp_rates._ARGUMENTS)
    conn.close()

    started = time.monotonic()
    assert broker.rates.reserve(key, 1.0) == pytest.approx(0.0, abs=0.01)

    assert 0.3 <= time.monotonic() - started < 5.0
    assert _tokens(amqp_url, key) == 1

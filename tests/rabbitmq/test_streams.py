"""Streams on RabbitMQ beyond the contract suite: restarts, maxlen, replies, paused consumers."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from celeriac.message import Envelope
from celeriac.rabbitmq.broker import AMQPBroker
from celeriac.rabbitmq.replies import REPLY_EXPIRES_MS, reply_queue
from celeriac.rabbitmq.streams import stream_queue

from .conftest import rabbitmqctl, wait_for


def _stream() -> str:
    return f"s-{uuid.uuid4().hex[:10]}"


def test_a_reader_that_restarts_resumes_after_its_saved_position(
    make_broker: Callable[..., AMQPBroker],
) -> None:
    """Given a reader that saved the position of the 3rd of 5 items and closed, expect a new
    connection reading after that position to get exactly the 4th and 5th."""
    writer, first = make_broker(), make_broker()
    stream = _stream()
    writer.streams.add(stream, [b"1", b"2", b"3"])
    writer.streams.add(stream, [b"4", b"5"])
    items = first.streams.read(stream, "0", limit=3)
    saved = items[-1][0]
    first.close()

    second = make_broker()
    rest = second.streams.read(stream, saved)

    assert [body for _, body in items] == [b"1", b"2", b"3"]
    assert [body for _, body in rest] == [b"4", b"5"]
    positions = [int(p) for p, _ in items + rest]
    assert positions == sorted(positions) and len(set(positions)) == 5
    assert second.streams.last(stream) == rest[-1][0]


def test_a_following_reader_writes_no_markers_and_sees_items_in_order(
    make_broker: Callable[..., AMQPBroker],
) -> None:
    """Given a reader following the stream with a timeout, expect each new item once, in order."""
    writer, reader = make_broker(), make_broker()
    stream = _stream()
    position = reader.streams.last(stream)
    seen: list[bytes] = []
    for n in range(20):
        writer.streams.add(stream, [str(n).encode()])
        got = reader.streams.read(stream, position, timeout=5.0)
        if got:
            position = got[-1][0]
            seen.extend(body for _, body in got)

    while len(seen) < 20:
        got = reader.streams.read(stream, position, timeout=5.0)
        assert got, "an item written was never read"
        position = got[-1][0]
        seen.extend(body for _, body in got)

    assert seen == [str(n).encode() for n in range(20)]


def test_a_reader_from_an_old_position_starts_about_maxlen_before_the_newest(
    make_broker: Callable[..., AMQPBroker],
) -> None:
    writer, reader = make_broker(), make_broker()
    stream = _stream()
    writer.streams.add(stream, [b"old"], maxlen=5)
    old = writer.streams.last(stream)
    writer.streams.add(stream, [str(n).encode() for n in range(30)], maxlen=5)

    items = reader.streams.read(stream, "0")

    assert [body for _, body in items] == [str(n).encode() for n in range(25, 30)]
    assert [body for _, body in make_broker().streams.read(stream, old)] == [
        str(n).encode() for n in range(25, 30)
    ]


def test_reply_streams_are_expiring_queues_read_in_full(
    make_broker: Callable[..., AMQPBroker], vhost: str
) -> None:
    """Given two workers replying before the client reads, expect the client to get both,
    again from "0", from a non-durable queue that RabbitMQ deletes by itself."""
    client, worker_a, worker_b = make_broker(), make_broker(), make_broker()
    stream = f"reply:{uuid.uuid4().hex}"
    worker_a.streams.add(stream, [b"a"])
    worker_b.streams.add(stream, [b"b"])

    assert [body for _, body in client.streams.read(stream, "0")] == [b"a", b"b"]
    replies = client.streams.read(stream, "0", timeout=1.0)
    assert replies == [("1", b"a"), ("2", b"b")]
    assert client.streams.last(stream) == "2"
    assert client.streams.read(stream, "2", timeout=0.1) == []

    listing = rabbitmqctl("list_queues", "-p", vhost, "name", "durable", "arguments")
    [line] = [line for line in listing.splitlines() if line.startswith(reply_queue(stream))]
    assert "\tfalse\t" in line and f'"x-expires",{REPLY_EXPIRES_MS}' in line
    streams = rabbitmqctl("list_queues", "-p", vhost, "name", "type")
    assert stream_queue(stream) not in streams


def test_a_fetch_of_no_queues_gives_back_what_rabbitmq_pushed(
    make_broker: Callable[..., AMQPBroker], queue: str
) -> None:
    """Given a consumer subscribed to a queue (all its queues paused since), expect a fetch of
    no queues to put the message RabbitMQ pushed to it back in the queue, unstarted."""
    broker, producer = make_broker(), make_broker()
    producer.publish([Envelope("m1", queue, 5, b"one")])
    [first] = broker.fetch([queue], "c1", 1, 5.0)
    broker.ack("c1", [first.tag])
    producer.publish([Envelope("m2", queue, 5, b"two")])
    wait_for(lambda: producer.stats(queue).total_waiting == 0, what="m2 pushed to the consumer")

    assert broker.fetch([], "c1", 1, 0.0) == []

    wait_for(lambda: producer.stats(queue).total_waiting == 1, what="m2 back in its queue")
    [again] = make_broker().fetch([queue], "c2", 1, 5.0)
    assert again.id == "m2" and again.deliveries == 1


@pytest.mark.parametrize("bad", ["-1", "abc", "1-2"])
def test_a_position_this_broker_never_gave_is_a_clear_error(broker: AMQPBroker, bad: str) -> None:
    with pytest.raises(ValueError, match="not one the RabbitMQ broker returned"):
        broker.streams.read(_stream(), bad)


def test_an_instant_read_returns_all_appended_before_it_beyond_the_prefetch_window(
    make_broker: Callable[..., AMQPBroker],
) -> None:
    """Given 700 items (more than a reader has in hand at once), expect a read with no
    timeout to return them all, in order, and a second one to return only the rest."""
    writer, reader = make_broker(), make_broker()
    stream = _stream()
    writer.streams.add(stream, [str(n).encode() for n in range(700)])

    items = reader.streams.read(stream, "0", limit=1000)
    writer.streams.add(stream, [b"late"])
    rest = reader.streams.read(stream, items[-1][0], limit=1000)

    assert [body for _, body in items] == [str(n).encode() for n in range(700)]
    assert [body for _, body in rest] == [b"late"]
    assert reader.streams.read(stream, "0", limit=300) == items[:300]


def test_a_reader_of_many_streams_keeps_consumers_on_the_recent_ones_only(
    make_broker: Callable[..., AMQPBroker], vhost: str
) -> None:
    writer, reader = make_broker(), make_broker()
    streams = [_stream() for _ in range(12)]
    for stream in streams:
        writer.streams.add(stream, [stream.encode()])
        assert reader.streams.read(stream, "0") == [("1", stream.encode())]

    listing = rabbitmqctl("list_queues", "-p", vhost, "name", "consumers")
    consumers = {
        name: int(count)
        for name, count in (line.split("\t") for line in listing.splitlines() if "\t" in line)
        if name.startswith("celeriac.stream.s-")
    }
    assert sum(consumers.get(stream_queue(s), 0) for s in streams) == 8
    assert reader.streams.read(streams[0], "0") == [("1", streams[0].encode())]  # again

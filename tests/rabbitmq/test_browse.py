"""Browsing what waits on RabbitMQ: delayed messages listed and acted on from the delay
ladder, waiting ones taken from their queue and given back, neither costing a delivery;
reserved ones left to the workers (tests/rabbitmq/test_browse_reserved.py)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest

from celeriac.exceptions import CapabilityUnavailable
from celeriac.message import Envelope
from celeriac.rabbitmq import waiting
from celeriac.rabbitmq.broker import AMQPBroker

from .conftest import wait_for


def _ids(broker: AMQPBroker, queue: str, **page: object) -> list[str]:
    assert broker.browse is not None
    return [m.id for m in broker.browse.messages(queue, "delayed", **page)]  # type: ignore[arg-type]


def _take_all(broker: AMQPBroker, queue: str, want: int, timeout: float = 15.0) -> dict[str, int]:
    """Fetch and ack until ``want`` messages came: id -> its delivery count (1: the first)."""
    got: dict[str, int] = {}
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        for d in broker.fetch([queue], "w", 10, 0.2):
            got[d.id] = d.deliveries
            broker.ack("w", [d.tag])
    return got


def test_delayed_pages_both_ways_with_eta_priority_and_count(
    make_broker: Callable[..., AMQPBroker], queue: str
) -> None:
    """Given delayed messages of this queue and of another, Expect this queue's listed by
    due time, paged both ways, with eta, priority and body, and counted."""
    broker = make_broker()
    now = time.time()
    broker.publish(
        [Envelope(f"d{i}", queue, 3 + i, b"b%d" % i, now + 300 - i * 10) for i in range(4)]
    )
    broker.publish([Envelope("other", queue + "-x", 5, b"", now + 100)])
    broker.publish([Envelope("soon", queue, 5, b"", now + 3600 * 24)])  # a higher ladder level
    assert broker.browse is not None

    order = ["d3", "d2", "d1", "d0", "soon"]
    assert _ids(broker, queue) == order
    assert _ids(broker, queue, newest_first=True) == order[::-1]
    assert _ids(broker, queue, limit=2, offset=1) == ["d2", "d1"]
    assert _ids(broker, queue, limit=2, offset=1, newest_first=True) == ["d0", "d1"]
    [first] = broker.browse.messages(queue, "delayed", limit=1)
    assert (first.body, first.priority, first.deliveries) == (b"b3", 6, 0)
    assert first.eta is not None and abs(first.eta - (now + 270)) < 0.01
    assert broker.browse.count(queue, "delayed") == 5
    assert broker.browse.count(queue, "delayed") == 5  # listing took nothing away


def test_a_browsed_delayed_message_arrives_uncounted_and_on_time(
    make_broker: Callable[..., AMQPBroker], queue: str
) -> None:
    """Given delayed messages listed several times before they are due, Expect each to
    arrive once, with no delivery counted, not before it is due and not much later."""
    producer, worker = make_broker(), make_broker(max_deliveries=1)
    due = time.time() + 2.0
    producer.publish([Envelope(f"m{i}", queue, 5, b"", due) for i in range(5)])
    for _ in range(3):
        assert len(_ids(producer, queue)) == 5
    got = _take_all(worker, queue, 5)
    arrived = time.time()
    assert got == {f"m{i}": 1 for i in range(5)}  # the first; max_deliveries=1: no second
    assert arrived >= due and arrived - due < 5.0
    assert worker.stats(queue).dead == 0


def test_delete_and_run_now_single_delayed_messages(
    make_broker: Callable[..., AMQPBroker], queue: str
) -> None:
    """When one delayed message is deleted and another run now, Expect the one run now
    fetched at once with its priority, the deleted one gone, the third still delayed."""
    broker, worker = make_broker(), make_broker()
    later = time.time() + 600
    broker.publish(
        [Envelope(n, queue, 7, b"x-" + n.encode(), later) for n in ("keep", "gone", "now")]
    )
    assert broker.browse is not None

    assert broker.browse.delete(queue, "delayed", ["gone", "unknown"]) == 1
    assert broker.browse.run_now(queue, ["now"]) == 1
    assert broker.browse.run_now(queue, ["now"]) == 0  # no longer delayed
    [d] = wait_for(lambda: worker.fetch([queue], "w", 10, 0.5), what="the message run now")
    assert (d.id, d.priority, d.body, d.deliveries) == ("now", 7, b"x-now", 1)
    worker.ack("w", [d.tag])
    assert _ids(broker, queue) == ["keep"]
    assert broker.browse.delete(queue, "delayed", []) == 0


def _waiting(broker: AMQPBroker, queue: str, **page: object) -> list[str]:
    assert broker.browse is not None
    return [m.id for m in broker.browse.messages(queue, "waiting", **page)]  # type: ignore[arg-type]


def test_waiting_pages_in_the_order_workers_take_them_both_ways(
    make_broker: Callable[..., AMQPBroker], queue: str
) -> None:
    """Given waiting messages of two priorities, Expect them listed highest priority first,
    then oldest, paged both ways, with priority and body, and counted without taking."""
    broker = make_broker()
    broker.publish([Envelope(f"low{i}", queue, 1, b"l%d" % i) for i in range(3)])
    broker.publish([Envelope(f"high{i}", queue, 7, b"h%d" % i) for i in range(2)])
    assert broker.browse is not None

    order = ["high0", "high1", "low0", "low1", "low2"]
    assert _waiting(broker, queue) == order
    assert _waiting(broker, queue, newest_first=True) == order[::-1]
    assert _waiting(broker, queue, limit=2, offset=1) == ["high1", "low0"]
    assert _waiting(broker, queue, limit=2, offset=1, newest_first=True) == ["low1", "low0"]
    [first] = broker.browse.messages(queue, "waiting", limit=1)
    assert (first.body, first.priority, first.deliveries, first.kind) == (b"h0", 7, 0, "waiting")
    assert broker.browse.count(queue, "waiting") == 5
    assert _waiting(broker, queue + "-never-declared") == []
    assert broker.browse.count(queue + "-never-declared", "waiting") == 0


def test_listing_waiting_ten_times_brings_no_message_closer_to_dead_letters(
    make_broker: Callable[..., AMQPBroker], queue: str
) -> None:
    """Given waiting messages listed ten times (each listing takes them and gives them
    back, redelivered), Expect a worker allowed one delivery (max_deliveries=1) to get each
    as its first delivery, and no dead letter."""
    producer, worker = make_broker(), make_broker(max_deliveries=1)
    producer.publish([Envelope(f"m{i}", queue, 5, b"") for i in range(4)])
    for _ in range(10):
        assert _waiting(producer, queue) == [f"m{i}" for i in range(4)]
    got = _take_all(worker, queue, 4)
    assert got == {f"m{i}": 1 for i in range(4)}
    assert worker.stats(queue).dead == 0


def _lagging(broker: AMQPBroker) -> None:
    """Hold back every state record this broker object reads until it reads one of its
    own barrier marks: the worst lag of the state stream behind the task queue."""
    state = broker._state
    held: list[tuple[Any, Any, Any, bytes]] = []
    on_record = state._on_record

    def late(ch: Any, method: Any, props: Any, body: bytes) -> None:
        held.append((ch, method, props, body))
        if b'"mark"' in body:
            for record in held:
                on_record(*record)
            held.clear()

    state._on_record = late  # type: ignore[method-assign,assignment]


def test_a_redelivery_that_outruns_the_listing_record_is_not_counted(
    make_broker: Callable[..., AMQPBroker], queue: str
) -> None:
    """Given a worker already following the state stream that sees a listing's record only
    after the listed messages reach it (the stream lagging behind the queue), Expect the
    redeliveries the listing caused not counted all the same (max_deliveries=1: none dead)."""
    producer, worker = make_broker(), make_broker(max_deliveries=1)
    _lagging(worker)
    assert worker.fetch([queue + "-other"], "w", 1, 0.0) == []  # following the stream now
    producer.publish([Envelope(f"r{i}", queue, 5, b"") for i in range(3)])
    assert _waiting(producer, queue) == ["r0", "r1", "r2"]
    got = _take_all(worker, queue, 3)
    assert got == {"r0": 1, "r1": 1, "r2": 1}
    assert worker.stats(queue).dead == 0


def test_a_listed_message_whose_worker_dies_counts_that_delivery(
    make_broker: Callable[..., AMQPBroker], queue: str
) -> None:
    """Given a listed message that a worker then took and lost (its connection closed
    before the ack), Expect the next worker to get it as its second delivery: a listing
    excuses one redelivery, not the ones after."""
    producer, first, second = make_broker(), make_broker(), make_broker()
    producer.publish([Envelope("lost", queue, 5, b"")])
    assert _waiting(producer, queue) == ["lost"]
    [d] = wait_for(lambda: first.fetch([queue], "w1", 1, 0.5), what="the first delivery")
    assert (d.id, d.deliveries) == ("lost", 1)
    first.close()  # handed out, never acked: RabbitMQ requeues it, redelivered
    [again] = wait_for(lambda: second.fetch([queue], "w2", 1, 0.5), what="the second delivery")
    assert (again.id, again.deliveries) == ("lost", 2)
    second.ack("w2", [again.tag])


def test_delete_single_waiting_messages(make_broker: Callable[..., AMQPBroker], queue: str) -> None:
    """When one waiting message is deleted by id, Expect it gone, the others delivered in
    order as their first delivery, and unknown ids not counted."""
    broker, worker = make_broker(), make_broker(max_deliveries=1)
    broker.publish([Envelope(n, queue, 5, b"") for n in ("a", "drop", "b")])
    assert broker.browse is not None

    assert broker.browse.delete(queue, "waiting", ["drop", "unknown"]) == 1
    assert broker.browse.delete(queue, "waiting", ["drop"]) == 0
    assert broker.browse.delete(queue + "-never-declared", "waiting", ["a"]) == 0
    assert _waiting(broker, queue) == ["a", "b"]
    assert _take_all(worker, queue, 2) == {"a": 1, "b": 1}
    assert worker.stats(queue).dead == 0


def test_a_page_beyond_what_a_listing_may_hold_is_refused(
    broker: AMQPBroker, queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given more waiting messages than a listing may take, Expect newest first and a page
    past the limit refused with what to do, the first pages listed, nothing taken."""
    monkeypatch.setattr(waiting, "SCAN_MAX", 3)
    broker.publish([Envelope(f"m{i}", queue, 5, b"") for i in range(5)])
    assert broker.browse is not None
    with pytest.raises(ValueError, match="5 waiting messages.*oldest first"):
        broker.browse.messages(queue, "waiting", newest_first=True)
    with pytest.raises(ValueError, match="3 at most"):
        broker.browse.messages(queue, "waiting", limit=2, offset=2)
    assert _waiting(broker, queue, limit=3) == ["m0", "m1", "m2"]
    assert broker.browse.count(queue, "waiting") == 5


def test_reserved_are_left_to_the_workers_with_the_reason(broker: AMQPBroker, queue: str) -> None:
    """When the broker object is asked for reserved messages, Expect it to say the workers
    hold them (and where to ask), and an unknown kind refused."""
    assert broker.browse is not None and broker.browse.reserved_in_workers
    with pytest.raises(CapabilityUnavailable, match="known only to the workers"):
        broker.browse.messages(queue, "reserved")
    with pytest.raises(CapabilityUnavailable, match="--reserved"):
        broker.browse.requeue(queue, ["w1"])
    with pytest.raises(CapabilityUnavailable, match="known only to the workers"):
        broker.browse.delete(queue, "reserved", ["w1"])
    with pytest.raises(ValueError, match="waiting, delayed, reserved"):
        broker.browse.count(queue, "soon")  # type: ignore[arg-type]


_LISTER = """
import sys, os
from celeriac.rabbitmq import waiting
from celeriac.rabbitmq.broker import AMQPBroker
from celeriac.rabbitmq import browse as b
broker = AMQPBroker(sys.argv[1])
scan = b.RabbitBrowse._scan
def stuck(self, ch, queue):
    found = scan(self, ch, queue)
    print(len(found), flush=True)
    sys.stdin.read()  # holds every delayed message, unacked, until killed
    return found
b.RabbitBrowse._scan = stuck
broker.browse.messages(sys.argv[2], "delayed")
"""


def test_a_listing_killed_mid_way_loses_nothing_and_counts_nothing(
    make_broker: Callable[..., AMQPBroker], queue: str, amqp_url: str
) -> None:
    """Given a process killed -9 while it holds the queue's delayed messages taken for a
    listing, Expect them all listed again and delivered when due, none counted."""
    broker = make_broker(max_deliveries=1)
    due = time.time() + 3.0
    broker.publish([Envelope(f"k{i}", queue, 5, b"", due) for i in range(4)])
    with subprocess.Popen(
        [sys.executable, "-c", _LISTER, amqp_url, queue],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as child:
        try:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "4"  # holding all four
            assert _ids(broker, queue) == []  # held elsewhere: not listed, not lost
        finally:
            child.kill()  # SIGKILL: no cleanup in the child
            child.wait(10)
    wait_for(lambda: len(_ids(broker, queue)) == 4, what="the messages back in the ladder")
    got = _take_all(broker, queue, 4)
    assert got == {f"k{i}": 1 for i in range(4)}
    assert time.time() >= due


def test_cli_shows_and_deletes_waiting_and_delayed_messages(
    amqp_url: str, queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given a waiting and a delayed message on RabbitMQ, Expect `queues show` to list the
    waiting one (with --json too), `--delayed` the delayed one, `queues act delete` to delete
    the waiting one and `queues act run-now` to move the delayed one."""
    from click.testing import CliRunner

    from celeriac import Celeriac
    from celeriac.cli.main import cli

    app = Celeriac("browse", broker=amqp_url, backend="memory://browse")
    monkeypatch.setattr(sys.modules[__name__], "cli_app", app, raising=False)
    args = ["-A", f"{__name__}:cli_app", "queues"]
    app.broker.publish([Envelope("later", queue, 5, b"", time.time() + 600)])
    app.broker.publish([Envelope("now", queue, 3, b"")])
    runner = CliRunner()

    shown = runner.invoke(cli, [*args, "show", queue, "--delayed"])
    assert shown.exit_code == 0 and "1 delayed message" in shown.output and "later" in shown.output
    waiting = runner.invoke(cli, [*args, "show", queue])
    assert waiting.exit_code == 0, waiting.output
    assert "1 waiting message" in waiting.output and "now" in waiting.output
    as_json = runner.invoke(cli, [*args, "show", queue, "--json"])
    page = json.loads(as_json.output)
    assert [(m["id"], m["priority"], m["deliveries"]) for m in page["messages"]] == [("now", 3, 0)]
    deleted = runner.invoke(cli, [*args, "act", "delete", queue, "now"])
    assert deleted.exit_code == 0 and "1 message deleted" in deleted.output
    moved = runner.invoke(cli, [*args, "act", "run-now", queue, "later"])
    assert moved.exit_code == 0 and "1 message run now" in moved.output
    app.broker.close()

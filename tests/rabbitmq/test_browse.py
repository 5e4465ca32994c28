"""Browsing what waits on RabbitMQ: delayed messages listed and acted on from the delay
ladder without costing a delivery; waiting and reserved ones refused with a reason."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from celeriac.exceptions import CapabilityUnavailable
from celeriac.message import Envelope
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


def test_waiting_and_reserved_are_refused_with_the_reason(broker: AMQPBroker, queue: str) -> None:
    """When waiting or reserved messages are asked for, Expect an error saying why RabbitMQ
    cannot list them and what to use instead, and the waiting message left untouched."""
    broker.publish([Envelope("w1", queue, 5, b"")])
    assert broker.browse is not None
    with pytest.raises(CapabilityUnavailable, match="counts a delivery.*--delayed"):
        broker.browse.messages(queue, "waiting")
    with pytest.raises(CapabilityUnavailable, match="inspect reserved"):
        broker.browse.count(queue, "reserved")
    with pytest.raises(CapabilityUnavailable, match="inspect reserved"):
        broker.browse.requeue(queue, ["w1"])
    with pytest.raises(ValueError, match="requeue"):
        broker.browse.delete(queue, "reserved", ["w1"])
    with pytest.raises(CapabilityUnavailable, match="waiting"):
        broker.browse.delete(queue, "waiting", ["w1"])
    with pytest.raises(ValueError, match="waiting, delayed, reserved"):
        broker.browse.count(queue, "soon")  # type: ignore[arg-type]
    [d] = broker.fetch([queue], "w", 1, 5.0)
    assert (d.id, d.deliveries) == ("w1", 1)


_LISTER = """
import sys, os
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


def test_cli_shows_delayed_and_refuses_waiting_and_requeue_with_the_reason(
    amqp_url: str, queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given a delayed message on RabbitMQ, Expect `queues show --delayed` to list it and
    `queues act run-now` to move it; `queues show` (waiting) and `queues act requeue` to
    exit 1 with the reason, no traceback."""
    from click.testing import CliRunner

    from celeriac import Celeriac
    from celeriac.cli.main import cli

    app = Celeriac("browse", broker=amqp_url, backend="memory://browse")
    monkeypatch.setattr(sys.modules[__name__], "cli_app", app, raising=False)
    args = ["-A", f"{__name__}:cli_app", "queues"]
    app.broker.publish([Envelope("later", queue, 5, b"", time.time() + 600)])
    runner = CliRunner()

    shown = runner.invoke(cli, [*args, "show", queue, "--delayed"])
    assert shown.exit_code == 0 and "1 delayed message" in shown.output and "later" in shown.output
    waiting = runner.invoke(cli, [*args, "show", queue])
    assert waiting.exit_code == 1 and "counts a delivery" in waiting.output
    assert waiting.exception is None or isinstance(waiting.exception, SystemExit)
    requeue = runner.invoke(cli, [*args, "act", "requeue", queue, "later"])
    assert requeue.exit_code == 1 and "inspect reserved" in requeue.output
    moved = runner.invoke(cli, [*args, "act", "run-now", queue, "later"])
    assert moved.exit_code == 0 and "1 message run now" in moved.output
    app.broker.close()

"""Threads publishing at once share broker calls, and each learns its own outcome."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any

from celeriac.exceptions import BrokerUnavailable
from celeriac.message import Envelope
from celeriac.publisher import SharedPublisher


class GatedBroker:
    """Records each publish call; the first one waits at a gate until released."""

    def __init__(self, fail_second: bool = False) -> None:
        self.calls: list[list[str]] = []
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.fail_second = fail_second

    def publish(self, envelopes: Sequence[Envelope]) -> None:
        self.calls.append([e.id for e in envelopes])
        if len(self.calls) == 1:
            self.entered.set()
            assert self.gate.wait(10)
        elif self.fail_second:
            raise BrokerUnavailable("the broker went away")


def _envelope(i: int) -> Envelope:
    return Envelope(f"t{i}", "q", 5, b"{}")


def _publish_from_threads(publisher: SharedPublisher, broker: Any, count: int) -> dict[int, Any]:
    outcome: dict[int, Any] = {}

    def send(i: int) -> None:
        try:
            publisher.publish(broker, [_envelope(i)])
            outcome[i] = "sent"
        except BrokerUnavailable as exc:
            outcome[i] = exc

    first = threading.Thread(target=send, args=(0,))
    first.start()
    assert broker.entered.wait(10)  # thread 0's call is in flight
    others = [threading.Thread(target=send, args=(i,)) for i in range(1, count)]
    for thread in others:
        thread.start()
    # wait until every other thread is queued behind the call in flight
    pause = threading.Event()  # never set: a bounded wait between looks
    for _ in range(1000):
        if len(publisher._waiting) == count - 1:
            break
        pause.wait(0.01)
    assert len(publisher._waiting) == count - 1
    broker.gate.set()
    for thread in [first, *others]:
        thread.join(10)
    return outcome


def test_threads_publishing_during_a_call_share_the_next_one() -> None:
    broker = GatedBroker()
    outcome = _publish_from_threads(SharedPublisher(), broker, 8)
    assert outcome == dict.fromkeys(range(8), "sent")
    assert broker.calls[0] == ["t0"]
    assert len(broker.calls) == 2  # seven threads, one round trip
    assert sorted(broker.calls[1]) == [f"t{i}" for i in range(1, 8)]


def test_a_failed_shared_call_fails_every_thread_it_carried() -> None:
    broker = GatedBroker(fail_second=True)
    outcome = _publish_from_threads(SharedPublisher(), broker, 4)
    assert outcome[0] == "sent"
    assert all(isinstance(outcome[i], BrokerUnavailable) for i in (1, 2, 3))


def test_a_lone_publish_is_one_call_of_its_own() -> None:
    broker = GatedBroker()
    broker.gate.set()
    publisher = SharedPublisher()
    publisher.publish(broker, [_envelope(1)])
    publisher.publish(broker, [_envelope(2), _envelope(3)])
    assert broker.calls == [["t1"], ["t2", "t3"]]
    assert not publisher._busy


def test_a_forked_child_does_not_wait_for_its_parents_call() -> None:
    """A fork while another thread's call is in flight: the child publishes at once."""
    publisher = SharedPublisher()
    publisher._busy = True  # as if a parent thread were mid-call at the fork
    pid = os.fork()
    if pid == 0:  # the child: must lead its own call, not queue behind a call that is not there
        broker = GatedBroker()
        broker.gate.set()
        publisher.publish(broker, [_envelope(1)])
        os._exit(0 if broker.calls == [["t1"]] else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0

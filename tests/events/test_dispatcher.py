"""Sending events: batched off the caller's thread, kept through outages, fork-safe."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

import orjson
import pytest

from celeriac import Celeriac
from celeriac.brokers.memory import MemoryBroker
from celeriac.events import EVENTS_STREAM, Event, EventDispatcher, dispatcher_for
from celeriac.events.dispatcher import PACK_MAX
from celeriac.events.event import decode_item


class CountingBroker(MemoryBroker):
    """A memory broker that counts stream writes and can be made to fail."""

    calls: list[int] = []
    failing = False

    def stream_add(self, stream: str, items: Sequence[bytes], maxlen: int = 100_000) -> None:
        if CountingBroker.failing:
            raise ConnectionError("broker away")
        CountingBroker.calls.append(len(items))
        super().stream_add(stream, items, maxlen)


def _events(app: Celeriac) -> list[Event]:
    items = app.broker.stream_read(EVENTS_STREAM, "0", 100_000)
    return [event for position, data in items for event in decode_item(position, data)]


def _counting(app: Celeriac, monkeypatch: pytest.MonkeyPatch) -> None:
    CountingBroker.calls = []
    CountingBroker.failing = False
    url = app.broker_url
    monkeypatch.setattr(app, "connect_broker", lambda: CountingBroker(url))


def test_send_returns_at_once_and_events_arrive_packed_in_few_writes(
    app: Celeriac, monkeypatch: pytest.MonkeyPatch
) -> None:
    _counting(app, monkeypatch)
    dispatcher = EventDispatcher(app, hostname="w1@h")
    started = time.perf_counter()
    for i in range(5000):
        dispatcher.send("task-started", uuid=str(i))
    per_event = (time.perf_counter() - started) / 5000

    assert dispatcher.flush(timeout=10)
    events = _events(app)
    assert [e.task_id for e in events] == [str(i) for i in range(5000)]
    assert {e.hostname for e in events} == {"w1@h"} and {e.pid for e in events} == {os.getpid()}
    assert len(CountingBroker.calls) <= 20  # stream_add calls
    assert sum(CountingBroker.calls) <= 5000 // PACK_MAX + 20  # stream items: packs of events
    assert len({e.position for e in events}) == 5000  # each event has its own position
    assert per_event < 50e-6, f"send() took {per_event * 1e6:.1f} us per event"
    dispatcher.close()


def test_arguments_json_cannot_carry_are_sent_as_their_repr(app: Celeriac) -> None:
    class Custom:
        def __repr__(self) -> str:
            return "<Custom>"

    dispatcher = EventDispatcher(app, hostname="w1@h")
    dispatcher.send("task-received", uuid="a", args=[Custom(), 2], kwargs={3: "int key"})
    dispatcher.send("task-received", uuid="b", args=[2**70])
    assert dispatcher.flush(timeout=10)
    first, second = _events(app)
    assert (first.args, first.kwargs) == (["<Custom>", 2], {"3": "int key"})
    assert second.args == [str(2**70)]
    dispatcher.close()


def test_events_wait_out_a_broker_outage(app: Celeriac, monkeypatch: pytest.MonkeyPatch) -> None:
    _counting(app, monkeypatch)
    CountingBroker.failing = True
    dispatcher = EventDispatcher(app)
    for i in range(10):
        dispatcher.send("task-sent", uuid=str(i))
    assert not dispatcher.flush(timeout=0.3)  # still buffered

    CountingBroker.failing = False
    assert dispatcher.flush(timeout=10)
    assert [e.task_id for e in _events(app)] == [str(i) for i in range(10)]
    dispatcher.close()


def test_a_broker_without_streams_turns_events_off(
    app: Celeriac, monkeypatch: pytest.MonkeyPatch
) -> None:
    class NoStreams(MemoryBroker):
        def stream_add(self, stream: str, items: Sequence[bytes], maxlen: int = 0) -> None:
            raise NotImplementedError("NoStreams does not implement streams")

    monkeypatch.setattr(app, "connect_broker", lambda: NoStreams(app.broker_url))
    dispatcher = EventDispatcher(app)
    dispatcher.send("task-sent", uuid="1")
    assert dispatcher.flush(timeout=5)
    assert dispatcher.unsupported and dispatcher.dropped == 1
    dispatcher.send("task-sent", uuid="2")  # ignored from now on
    assert dispatcher.dropped == 1 and not dispatcher._buffer
    dispatcher.close()


def test_the_stream_keeps_about_event_queue_maxlen_events(app: Celeriac) -> None:
    app.conf.event_queue_maxlen = 100
    dispatcher = dispatcher_for(app)
    for flush in range(20):  # twenty writes of 25 events: packs of 25
        for i in range(25):
            dispatcher.send("task-sent", uuid=f"{flush}-{i}")
        assert dispatcher.flush()
    kept = _events(app)
    assert 50 <= len(kept) <= 200, len(kept)  # trimmed by items, at 25 events per item
    assert kept[-1].task_id == "19-24"


@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")  # Python 3.12+: threads
def test_a_forked_child_sends_its_own_events_not_its_parents(app: Celeriac) -> None:
    # The memory store is per process, so the child reports what it saw through a pipe.
    dispatcher = EventDispatcher(app, hostname="parent@h")
    dispatcher.send("task-sent", uuid="parent-event")  # buffered in the parent
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its buffer must start empty, and its own events must flush
        try:
            buffered = len(dispatcher._buffer)
            dispatcher.send("task-sent", uuid="child-event")
            flushed = dispatcher.flush(timeout=5)
            ids = [e.task_id for e in _events(app)]
            os.write(write, orjson.dumps([buffered, flushed, ids]))
        finally:
            os._exit(0)
    os.close(write)
    report = os.read(read, 10_000)
    os.waitpid(pid, 0)
    buffered, flushed, ids = orjson.loads(report)
    assert buffered == 0 and flushed
    assert "child-event" in ids and "parent-event" not in ids
    assert dispatcher.flush()
    assert [e.task_id for e in _events(app)] == ["parent-event"]
    dispatcher.close()

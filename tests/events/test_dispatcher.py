"""Sending events: batched off the caller's thread, kept through outages, fork-safe."""

from __future__ import annotations

import os
import threading
import time
import zlib
from collections.abc import Sequence
from typing import Any

import orjson
import pytest

from celeriac import Celeriac
from celeriac.brokers.capabilities import Streams
from celeriac.brokers.memory import MemoryBroker
from celeriac.events import EVENTS_STREAM, Event, EventDispatcher, dispatcher_for
from celeriac.events.dispatcher import PACK_MAX
from celeriac.events.event import decode_item


class CountingStreams:
    """A broker's streams, counting writes into ``CountingBroker``; failing when it says."""

    def __init__(self, streams: Streams) -> None:
        self._streams = streams

    def add(self, stream: str, items: Sequence[bytes], maxlen: int = 100_000) -> None:
        if CountingBroker.failing:
            raise ConnectionError("broker away")
        CountingBroker.calls.append(len(items))
        self._streams.add(stream, items, maxlen)

    def read(
        self, stream: str, after: str, limit: int = 1000, timeout: float = 0.0
    ) -> list[tuple[str, bytes]]:
        return self._streams.read(stream, after, limit, timeout)

    def last(self, stream: str) -> str:
        return self._streams.last(stream)


class CountingBroker(MemoryBroker):
    """A memory broker that counts stream writes and can be made to fail."""

    calls: list[int] = []
    failing = False

    def __init__(self, url: str, **options: Any) -> None:
        super().__init__(url, **options)
        assert self.streams is not None
        self.streams = CountingStreams(self.streams)


def _events(app: Celeriac) -> list[Event]:
    items = app.broker.streams.read(EVENTS_STREAM, "0", 100_000)
    return [event for position, data in items for event in decode_item(position, data)]


def _counting(app: Celeriac, monkeypatch: pytest.MonkeyPatch) -> None:
    CountingBroker.calls = []
    CountingBroker.failing = False
    url = app.broker_url
    monkeypatch.setattr(app, "connect_broker", lambda: CountingBroker(url))


def test_closing_the_app_writes_its_events_and_closes_the_events_connection(
    app: Celeriac, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given an app whose events thread is running, expect ``app.close()`` to write what
    it holds, stop the thread and close the thread's broker connection."""
    closed_by: list[str] = []

    class ClosingBroker(CountingBroker):
        def close(self) -> None:
            closed_by.append(threading.current_thread().name)
            super().close()

    _counting(app, monkeypatch)
    monkeypatch.setattr(app, "connect_broker", lambda: ClosingBroker(app.broker_url))
    dispatcher = dispatcher_for(app)
    dispatcher.send("worker-online")
    thread = dispatcher._thread
    assert thread is not None and thread.is_alive()
    app.close()
    assert not thread.is_alive()
    assert "celeriac-events" in closed_by
    assert [e.type for e in _events(app)] == ["worker-online"]


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
    assert len(CountingBroker.calls) <= 20  # streams.add calls
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
        def __init__(self, url: str) -> None:
            super().__init__(url)
            self.streams = None

    monkeypatch.setattr(app, "connect_broker", lambda: NoStreams(app.broker_url))
    dispatcher = EventDispatcher(app)
    dispatcher.send("task-sent", uuid="1")
    assert dispatcher.flush(timeout=5)
    assert dispatcher.unsupported and dispatcher.dropped == 1
    dispatcher.send("task-sent", uuid="2")  # ignored from now on
    assert dispatcher.dropped == 1 and not dispatcher._buffer
    thread = dispatcher._thread
    dispatcher.close()
    assert thread is not None and not thread.is_alive()  # it went idle, not round in circles


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


def _outcomes_alone(app: Celeriac) -> int:
    """Stream entries that are a lone task-succeeded: outcomes whose group was written."""
    alone = 0
    for _, data in app.broker.streams.read(EVENTS_STREAM, "0", 100_000):
        parsed = orjson.loads(zlib.decompress(data) if data[:1] == b"x" else data)
        entries = parsed if isinstance(parsed, list) else [parsed]
        alone += sum(isinstance(e, dict) and e["type"] == "task-succeeded" for e in entries)
    return alone


def _started(task_id: str) -> list[dict[str, object]]:
    return [
        {"type": "task-received", "timestamp": time.time(), "uuid": task_id, "hostname": "w@h"},
        {"type": "task-started", "timestamp": time.time()},
    ]


def _succeeded(task_id: str) -> dict[str, object]:
    return {"type": "task-succeeded", "timestamp": time.time(), "uuid": task_id, "hostname": "w@h"}


def test_a_task_that_ends_before_the_write_travels_as_one_group(app: Celeriac) -> None:
    dispatcher = EventDispatcher(app, flush_interval=60)
    dispatcher.hold("a", _started("a"))
    dispatcher.put(_succeeded("a"), "a")
    assert len(dispatcher._buffer) == 1 and not dispatcher._held
    assert dispatcher.flush(timeout=10)
    events = _events(app)
    assert [(e.type, e.task_id, e.pid) for e in events] == [
        ("task-received", "a", os.getpid()),
        ("task-started", "a", os.getpid()),
        ("task-succeeded", "a", os.getpid()),
    ]
    dispatcher.close()


def test_a_running_tasks_events_are_written_without_waiting_for_its_outcome(
    app: Celeriac,
) -> None:
    dispatcher = EventDispatcher(app, flush_interval=60)
    dispatcher.hold("long", _started("long"))
    assert dispatcher.flush(timeout=10)  # the task is still running
    assert [e.type for e in _events(app)] == ["task-received", "task-started"]
    assert dispatcher.sent == 2

    dispatcher.put(_succeeded("long"), "long")  # no group left to join: it travels whole
    assert dispatcher.flush(timeout=10)
    assert dispatcher.sent == 3
    succeeded = _events(app)[-1]
    assert (succeeded.type, succeeded.task_id, succeeded.hostname) == (
        "task-succeeded", "long", "w@h",
    )  # fmt: skip
    dispatcher.close()


def test_each_tasks_events_arrive_once_and_in_order_while_the_writer_races_them(
    app: Celeriac,
) -> None:
    dispatcher = EventDispatcher(app, flush_interval=0.0005)  # writes all the time
    tasks = [str(i) for i in range(20_000)]
    for task_id in tasks:
        dispatcher.hold(task_id, _started(task_id))
        time.sleep(0)  # lets the writer run: some groups are written before their outcome
        dispatcher.put(_succeeded(task_id), task_id)
    assert dispatcher.flush(timeout=30)
    assert _outcomes_alone(app) > 0  # the race this test is about did happen
    assert dispatcher.sent == 3 * len(tasks)
    seen: dict[str, list[str]] = {}
    for event in _events(app):
        assert event.task_id is not None
        seen.setdefault(event.task_id, []).append(event.type)
    assert seen.keys() == set(tasks)
    assert {tuple(types) for types in seen.values()} == {
        ("task-received", "task-started", "task-succeeded")
    }
    dispatcher.close()


def test_a_task_id_run_twice_at_once_keeps_both_runs_events(app: Celeriac) -> None:
    dispatcher = EventDispatcher(app, flush_interval=60)
    dispatcher.hold("twice", _started("twice"))
    dispatcher.hold("twice", _started("twice"))
    dispatcher.put(_succeeded("twice"), "twice")
    dispatcher.put(_succeeded("twice"), "twice")
    assert dispatcher.flush(timeout=10)
    assert sorted(e.type for e in _events(app)) == sorted(
        ["task-received", "task-started", "task-succeeded"] * 2
    )
    dispatcher.close()


def test_tasks_running_on_many_threads_keep_their_events_apart(app: Celeriac) -> None:
    # A threads pool: one dispatcher, tasks starting and ending on eight threads at once.
    dispatcher = EventDispatcher(app, flush_interval=0.0005)
    per_thread = 2_000

    def run(thread: int) -> None:
        for i in range(per_thread):
            task_id = f"{thread}-{i}"
            dispatcher.hold(task_id, _started(task_id))
            time.sleep(0)
            dispatcher.put(_succeeded(task_id), task_id)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert dispatcher.flush(timeout=30)
    seen: dict[str, list[str]] = {}
    for event in _events(app):
        assert event.task_id is not None
        seen.setdefault(event.task_id, []).append(event.type)
    assert len(seen) == 8 * per_thread
    assert {tuple(types) for types in seen.values()} == {
        ("task-received", "task-started", "task-succeeded")
    }
    dispatcher.close()

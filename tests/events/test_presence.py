"""Worker events and presence: online, heartbeats with load, offline; lost workers age out."""

from __future__ import annotations

import time

import orjson

from celeriac import Celeriac
from celeriac.events import EVENTS_STREAM, Event, WorkerEvents, dispatcher_for, read_presence
from celeriac.events.event import decode_item
from celeriac.events.worker import PRESENCE_PREFIX


def _read(app: Celeriac) -> list[Event]:
    items = app.broker.streams.read(EVENTS_STREAM, "0")
    return [event for position, data in items for event in decode_item(position, data)]


def _stats() -> dict[str, object]:
    return {"active": 1, "processed": 7, "pool_size": 4, "queues": ["a", "b"]}


def test_a_worker_is_online_beats_and_goes_offline(app: Celeriac) -> None:
    worker = WorkerEvents(app, "w1@host", _stats, interval=0.1)
    worker.start()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        assert dispatcher_for(app).flush()
        kinds = [e.type for e in _read(app)]
        if kinds.count("worker-heartbeat") >= 2:
            break
        time.sleep(0.05)
    [status] = read_presence(app.broker)
    assert status.alive and status.hostname == "w1@host"
    assert (status.get("active"), status.get("processed"), status.get("pool_size")) == (1, 7, 4)
    assert status.get("queues") == ["a", "b"] and status.get("sw_ident") == "celeriac"
    worker.stop()

    events = _read(app)
    assert events[0].type == "worker-online" and events[-1].type == "worker-offline"
    beat = next(e for e in events if e.type == "worker-heartbeat")
    assert beat.freq == 0.1 and beat.pool_size == 4 and beat.queues == ("a", "b")
    assert beat.loadavg is not None and len(beat.loadavg) == 3 and beat.pid is not None
    assert read_presence(app.broker) == []  # offline clears presence


def test_a_silent_worker_shows_as_lost_then_is_forgotten(app: Celeriac) -> None:
    def flag(age: float) -> str:
        return orjson.dumps(
            {"hostname": f"w{age}", "timestamp": time.time() - age, "freq": 2.0}
        ).decode()

    for age in (1.0, 30.0, 7200.0):
        app.broker.flags.set(f"{PRESENCE_PREFIX}w{age}", flag(age))
    found = {s.hostname: s.alive for s in read_presence(app.broker)}
    assert found == {"w1.0": True, "w30.0": False}
    assert f"{PRESENCE_PREFIX}w7200.0" not in app.broker.flags.read(PRESENCE_PREFIX)

"""The beat in this process on the memory broker: settings, Celery's API, runtime changes."""

from __future__ import annotations

import importlib
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from celeriac import Celeriac
from celeriac.beat import Beat, add_entry, list_entries, pause_entry, resume_entry, run_entry
from celeriac.beat.entries import load_entries
from celeriac.brokers.memory import reset_memory_brokers
from celeriac.cli.events import _line
from celeriac.events.event import decode_item
from celeriac.exceptions import ConfigurationError
from celeriac.message import Message, decode
from celeriac.schedules import crontab, schedule

EXAMPLES = Path(__file__).parents[2] / "examples" / "periodic"


@pytest.fixture
def app() -> Iterator[Celeriac]:
    reset_memory_brokers()
    yield Celeriac("beattest", broker="memory://beat", beat_lease_seconds=1.0, set_as_current=False)
    reset_memory_brokers()


@pytest.fixture
def running(app: Celeriac) -> Iterator[Callable[[], Beat]]:
    started: list[tuple[Beat, threading.Thread]] = []

    def start() -> Beat:
        beat = Beat(app, name=f"t{len(started)}", events=False)
        thread = threading.Thread(target=beat.run, daemon=True)
        thread.start()
        started.append((beat, thread))
        return beat

    yield start
    for beat, thread in started:
        beat.stop()
        thread.join(5)


def _taken(app: Celeriac, queue: str = "celeriac", wait: float = 0.0) -> list[Message]:
    broker = app.connect_broker()
    deliveries = broker.fetch([queue], "test", 1000, wait)
    broker.ack("test", [d.tag for d in deliveries])
    return [decode(d.body, app.codec, d) for d in deliveries]


def _until(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = condition()
        if found:
            return found
        assert time.monotonic() < deadline, f"{what} within {timeout} s"
        time.sleep(0.02)


def test_beat_schedule_sends_with_options(app: Celeriac, running: Callable[[], Beat]) -> None:
    app.conf.beat_schedule = {
        "fast": {
            "task": "beattest.work",
            "schedule": 0.2,
            "args": (1, 2),
            "kwargs": {"x": 3},
            "options": {"queue": "periodic", "priority": 9, "expires": 30},
        }
    }
    running()
    got = _until(lambda: _taken(app, "periodic", 0.1), 3, "a run")
    m = got[0]
    assert (m.task, m.args, m.kwargs, m.queue, m.priority) == (
        "beattest.work",
        (1, 2),
        {"x": 3},
        "periodic",
        9,
    )
    assert m.expires is not None and m.expires > time.time()
    assert m.headers["beat"]["entry"] == "fast" and m.headers["beat"]["due"] % 200 == 0


def test_two_beats_one_leader(app: Celeriac, running: Callable[[], Beat]) -> None:
    app.conf.beat_schedule = {"tick": {"task": "t", "schedule": 0.1}}
    first, second = running(), running()
    time.sleep(1.5)
    assert [first.leading, second.leading].count(True) == 1
    dues = [m.headers["beat"]["due"] for m in _taken(app)]
    assert len(dues) == len(set(dues)) >= 10
    assert first.sent + second.sent == len(dues)


def test_runtime_changes_reach_the_leader_within_a_second(
    app: Celeriac, running: Callable[[], Beat]
) -> None:
    app.conf.beat_schedule = {"tick": {"task": "t", "schedule": 0.1}}
    running()
    _until(lambda: _taken(app), 3, "the first runs")
    # paused: no run after a second
    pause_entry(app, "tick")
    time.sleep(1.0)
    _taken(app)
    time.sleep(0.5)
    assert _taken(app) == []
    # resumed and a runtime entry added: both sent within a second
    resume_entry(app, "tick")
    add_entry(app, "added", "t2", schedule(0.1), args=[7])
    found = _until(
        lambda: {m.task for m in _taken(app, wait=0.1)} >= {"t", "t2"} or None, 1.5, "both"
    )
    assert found
    statuses, lease = list_entries(app)
    assert [s.entry.name for s in statuses] == ["added", "tick"]
    assert lease is not None and lease.holder.startswith("t0:")
    assert all(s.last_run is not None and s.next_run is not None for s in statuses)


def test_run_sends_one_now(app: Celeriac) -> None:
    app.conf.beat_schedule = {"nightly": {"task": "t", "schedule": crontab(0, 3)}}
    result = run_entry(app, "nightly")
    [m] = _taken(app)
    assert m.id == result.id and m.headers["beat"] == {"entry": "nightly", "due": None}
    with pytest.raises(
        ConfigurationError, match="no periodic task named 'nope' \\(known: nightly\\)"
    ):
        run_entry(app, "nope")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"schedule": 1}, "needs 'task'"),
        ({"task": "t"}, "needs 'schedule'"),
        ({"task": "t", "schedule": "1"}, "schedule must be seconds"),
        ({"task": "t", "schedule": 1, "catch_up": "all"}, "catch_up must be 'once' or 'skip'"),
        ({"task": "t", "schedule": 1, "every": 2}, "unknown keys \\['every'\\]"),
    ],
)
def test_bad_entries_say_what_is_wrong(app: Celeriac, spec: dict[str, Any], message: str) -> None:
    app.conf.beat_schedule = {"e": spec}
    with pytest.raises(ConfigurationError, match=message):
        load_entries(app, {})


def test_bad_timezone_is_refused(app: Celeriac) -> None:
    with pytest.raises(ConfigurationError, match="'Mars/Olympus' is not a known time zone"):
        app.conf.timezone = "Mars/Olympus"


def test_celery_example_runs_with_only_imports_changed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given Celery's periodic-task example (examples/periodic/periodic.py)
    monkeypatch.setenv("CELERIAC_BROKER_URL", f"sqlite:///{tmp_path}/example.sqlite3")
    monkeypatch.syspath_prepend(str(EXAMPLES))
    sys.modules.pop("periodic", None)
    module = importlib.import_module("periodic")
    example: Celeriac = module.app
    # When a beat loads it (as `celeriac -A periodic beat` does)
    example.import_modules()
    # Expect its four entries, and the first due run of "add every 10" sent
    entries = example.conf.beat_schedule
    assert set(entries) == {
        "add every 10",
        "add every 30",
        "periodic.test('world')",
        "periodic.test('Happy Mondays!')",
    }
    assert entries["periodic.test('world')"]["options"] == {"expires": 10}
    assert entries["periodic.test('Happy Mondays!')"]["schedule"] == crontab(30, 7, day_of_week=1)
    beat = Beat(example, events=False)
    thread = threading.Thread(target=beat.run, daemon=True)
    thread.start()
    try:
        sent = _until(
            lambda: [m for m in _taken(example, wait=0.2) if m.args == ("hello",)],
            12,
            "test('hello')",
        )
    finally:
        beat.stop()
        thread.join(5)
    assert sent[0].task == "periodic.test"
    assert sent[0].headers["beat"]["due"] % 10_000 == 0


def test_events_say_sent_skipped_and_leader(app: Celeriac) -> None:
    app.conf.beat_schedule = {"tick": {"task": "t", "schedule": 0.1}}
    beat = Beat(app, name="evented")
    thread = threading.Thread(target=beat.run, daemon=True)
    thread.start()
    try:
        _until(lambda: beat.sent >= 2, 3, "two runs")
        pause_entry(app, "tick")
        time.sleep(0.8)
    finally:
        beat.stop()
        thread.join(5)
    streams = app.connect_broker().streams
    assert streams is not None
    events = [e for pos, item in streams.read("events", "0", 1000) for e in decode_item(pos, item)]
    kinds = [e.type for e in events if e.type.startswith("beat-")]
    assert kinds[0] == "beat-leader" and kinds[-1] == "beat-leader"
    assert {"beat-sent", "beat-skipped"} <= set(kinds)
    sent = next(e for e in events if e.type == "beat-sent")
    assert sent.extra["entry"] == "tick" and sent.task_id and sent.hostname == "evented"
    skipped = next(e for e in events if e.type == "beat-skipped")
    assert skipped.extra["reason"] == "paused"
    assert "entry=tick" in _line(sent)  # as `celeriac events` shows it
    first, last = (e for e in events if e.type == "beat-leader")
    assert first.extra["leader"] == "evented" and last.extra["leader"] is None


def test_a_bad_settings_entry_stops_the_beat_at_start(app: Celeriac) -> None:
    app.conf.beat_schedule = {"bad": {"task": "t", "schedule": "soon"}}
    with pytest.raises(ConfigurationError, match="periodic task 'bad': schedule must be seconds"):
        Beat(app, events=False).run()


def test_an_unreadable_runtime_entry_is_skipped_and_the_rest_run(
    app: Celeriac, running: Callable[[], Beat]
) -> None:
    app.conf.beat_schedule = {"tick": {"task": "t", "schedule": 0.1}}
    flags = app.broker.flags
    assert flags is not None
    flags.set("beat.entry.broken", '{"task": "t", "schedule": {"every": "x"}}')
    running()
    assert _until(lambda: _taken(app), 3, "the good entry's runs")
    assert {s.entry.name for s in list_entries(app)[0]} == {"tick"}

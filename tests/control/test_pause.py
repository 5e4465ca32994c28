"""Pausing a queue: what a consumer's answer is based on, and when pause returns."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from celeriac import Celeriac
from celeriac.brokers.base import Broker
from celeriac.control.pause import REFRESH, PausedQueues, pause_queue, resume_queue


def test_once_pause_returned_a_gate_that_read_just_before_it_answers_paused(
    app: Celeriac,
) -> None:
    """Given a consumer's gate that read the flags a moment before the pause, expect it
    to answer "paused" as soon as pause_queue has returned, and pause to take REFRESH."""
    gate = PausedQueues(app.broker)
    assert gate.open_queues(["q", "r"]) == ["q", "r"]  # read now: nothing paused
    began = time.monotonic()
    pause_queue(app.broker, "q", by="test")
    assert time.monotonic() - began >= REFRESH
    assert gate.open_queues(["q", "r"]) == ["r"]
    assert "q" in gate.paused()
    assert resume_queue(app.broker, "q")


def test_pause_without_waiting_returns_at_once(app: Celeriac) -> None:
    began = time.monotonic()
    pause_queue(app.broker, "q", wait=False)
    assert time.monotonic() - began < REFRESH / 2
    assert "q" in PausedQueues(app.broker).paused()


class SlowFlags:
    """A broker's flags whose reads take a while and are counted."""

    def __init__(self, inner: Any, seconds: float) -> None:
        self.inner, self.seconds, self.reads = inner, seconds, 0

    def set(self, name: str, value: str | None) -> None:
        self.inner.set(name, value)

    def read(self, prefix: str) -> dict[str, str]:
        self.reads += 1
        time.sleep(self.seconds)
        return dict(self.inner.read(prefix))


def test_threads_that_need_a_fresh_answer_wait_for_one_read(
    app: Celeriac, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given threads sharing one gate whose answer is stale, expect one read, and every
    thread to get its answer (none the stale one)."""
    broker: Broker = app.broker
    flags = SlowFlags(broker.flags, 0.05)
    monkeypatch.setattr(broker, "flags", flags)
    gate = PausedQueues(broker, refresh=10.0)
    assert gate.paused() == frozenset()
    pause_queue(broker, "q", wait=False)
    gate._as_of -= 20.0  # the last answer is now older than the refresh
    answers: list[frozenset[str]] = []
    threads = [threading.Thread(target=lambda: answers.append(gate.paused())) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert answers == [frozenset({"q"})] * 4
    assert flags.reads == 2  # the first answer, then one read for the four threads


def test_a_failed_read_keeps_the_last_answer_and_retries_after_the_refresh(
    app: Celeriac, monkeypatch: pytest.MonkeyPatch
) -> None:
    broker: Broker = app.broker
    gate = PausedQueues(broker, refresh=0.05)
    pause_queue(broker, "q", wait=False)
    assert gate.paused() == frozenset({"q"})

    class Down:
        def read(self, prefix: str) -> dict[str, str]:
            raise ConnectionError("broker away")

    real = broker.flags
    monkeypatch.setattr(broker, "flags", Down())
    time.sleep(0.06)
    assert gate.paused() == frozenset({"q"})  # kept while the broker is away
    monkeypatch.setattr(broker, "flags", real)
    resume_queue(broker, "q")
    assert gate.paused() == frozenset({"q"})  # not read again before the refresh
    time.sleep(0.06)
    assert gate.paused() == frozenset()

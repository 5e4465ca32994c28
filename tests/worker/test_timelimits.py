"""Time limits: where each comes from and how each mechanism delivers it."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from celeriac import Celeriac
from celeriac.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded
from celeriac.worker.coroutines import run_limited
from celeriac.worker.options import resolve_options
from celeriac.worker.timelimits import SignalTimer, ThreadTimer, limits_for


def busy(seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.005)


def test_a_tasks_own_limits_win_over_the_worker_and_the_settings() -> None:
    app = Celeriac(
        "tl",
        broker="memory://tl",
        set_as_current=False,
        task_time_limit=100,
        task_soft_time_limit=90,
    )

    @app.task(time_limit=5)
    def own() -> None: ...

    @app.task
    def default() -> None: ...

    plain = resolve_options(app)
    cli = resolve_options(app, time_limit=20, soft_time_limit=10)
    assert limits_for(own, cli) == (10.0, 5.0)
    assert limits_for(default, cli) == (10.0, 20.0)
    assert limits_for(default, plain) == (90.0, 100.0)
    app.conf.update(task_time_limit=None, task_soft_time_limit=None)
    assert limits_for(default, plain) == (None, None)


def test_signal_timer_raises_soft_then_hard_in_the_main_thread() -> None:
    timer = SignalTimer(enforce_hard=True)
    timer.arm(0.1, 0.3)
    start = time.monotonic()
    try:
        with pytest.raises(SoftTimeLimitExceeded):
            busy(5)
        assert 0.09 <= time.monotonic() - start < 0.3
        with pytest.raises(TimeLimitExceeded):
            busy(5)
        assert 0.29 <= time.monotonic() - start < 0.6
    finally:
        timer.disarm()


def test_a_disarmed_signal_timer_raises_nothing() -> None:
    timer = SignalTimer(enforce_hard=True)
    timer.arm(0.05, None)
    timer.disarm()
    busy(0.15)  # would have raised at 0.05s


def test_without_enforce_hard_only_the_soft_limit_is_raised_in_process() -> None:
    """Prefork children leave the hard limit to the supervisor."""
    timer = SignalTimer(enforce_hard=False)
    timer.arm(None, 0.05)
    try:
        busy(0.15)
    finally:
        timer.disarm()


def test_thread_timer_raises_in_the_tasks_thread_only() -> None:
    outcome: list[str] = []
    timer = ThreadTimer()

    def task() -> None:
        timer.arm(threading.get_ident(), 0.1)
        try:
            busy(5)
            outcome.append("ran to the end")
        except SoftTimeLimitExceeded:
            outcome.append("soft limit")
        finally:
            timer.disarm(threading.get_ident())

    thread = threading.Thread(target=task)
    thread.start()
    thread.join(5)
    assert outcome == ["soft limit"]


async def test_soft_limit_is_raised_at_the_coroutines_await_and_may_be_caught() -> None:
    async def task() -> str:
        try:
            await asyncio.sleep(10)
        except SoftTimeLimitExceeded:
            await asyncio.sleep(0.01)  # cleanup may await
            return "cleaned up"
        return "not interrupted"

    assert await run_limited(task(), 0.05, None) == "cleaned up"


async def test_uncaught_soft_limit_fails_the_coroutine_with_soft_time_limit_exceeded() -> None:
    with pytest.raises(SoftTimeLimitExceeded):
        await run_limited(asyncio.sleep(10), 0.05, 1.0)


async def test_hard_limit_gives_up_at_the_deadline_even_if_the_coroutine_resists() -> None:
    async def stubborn() -> None:
        until = time.monotonic() + 1.0  # ignores cancellation for a second
        while time.monotonic() < until:
            try:
                await asyncio.sleep(0.02)
            except asyncio.CancelledError:
                continue

    start = time.monotonic()
    with pytest.raises(TimeLimitExceeded):
        await run_limited(stubborn(), None, 0.1)
    assert time.monotonic() - start < 0.5


async def test_no_limits_means_a_plain_await() -> None:
    async def value() -> int:
        await asyncio.sleep(0)
        return 7

    assert await run_limited(value(), None, None) == 7
    assert await run_limited(value(), 5.0, 10.0) == 7

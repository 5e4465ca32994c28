"""The in-process test worker: real consumer threads in the test's process."""

from __future__ import annotations

import signal
import threading
import time
import traceback
from collections.abc import Iterator
from typing import Any

import pytest

from celeriac import Celeriac
from celeriac.exceptions import ConfigurationError, SoftTimeLimitExceeded
from celeriac.testing import InProcessWorker, JoinTimeout, memory_app
from celeriac.testing.worker import start_worker


class Boom(Exception):
    """What the failing task raises."""


@pytest.fixture
def app() -> Iterator[Celeriac]:
    app = memory_app("kit")

    @app.task(name="kit.add")
    def add(a: int, b: int) -> int:
        return a + b

    @app.task(name="kit.fail")
    def fail(text: str) -> None:
        raise Boom(text)

    @app.task(name="kit.fetch")
    async def fetch(url: str) -> str:
        return url.upper()

    @app.task(name="kit.sleepy", soft_time_limit=0.05)
    def sleepy(seconds: float) -> str:
        deadline = time.monotonic() + seconds
        try:
            while time.monotonic() < deadline:  # a thread is interrupted between calls
                time.sleep(0.01)
        except SoftTimeLimitExceeded:
            return "stopped at the soft limit"
        return "slept"

    @app.task(name="kit.ignored", ignore_result=True)
    def ignored() -> None:
        pass

    yield app
    app.close()


POOLS = pytest.mark.parametrize("pool", ["threads", "asyncio"])


@POOLS
def test_runs_tasks_and_join_waits_for_their_results(app: Celeriac, pool: str) -> None:
    add = app.tasks["kit.add"]
    # Given a worker in this process, when tasks are sent and the test joins
    with InProcessWorker(app, pool=pool) as worker:
        results = [add.delay(i, i) for i in range(20)]
        worker.join()
        # Expect every result stored by the time join returns
        assert [r.state for r in results] == ["SUCCESS"] * 20
        assert [r.get(timeout=0) for r in results] == [2 * i for i in range(20)]


@POOLS
def test_async_tasks_and_ignored_results_do_not_hold_join(app: Celeriac, pool: str) -> None:
    with InProcessWorker(app, pool=pool) as worker:
        fetched = app.tasks["kit.fetch"].delay("x")
        app.tasks["kit.ignored"].delay()
        worker.join()
        assert fetched.get(timeout=0) == "X"
        assert worker.state.processed == 2


@POOLS
def test_join_raises_the_task_exception_with_the_task_traceback(app: Celeriac, pool: str) -> None:
    with InProcessWorker(app, pool=pool) as worker:
        app.tasks["kit.fail"].delay("no way")
        # When the test joins, expect the very exception the task raised
        with pytest.raises(Boom, match="no way") as raised:
            worker.join()
        frames = [frame.name for frame in traceback.extract_tb(raised.value.__traceback__)]
        assert "fail" in frames  # the task's own function, where it raised
        # Expect it raised once: a second join is quiet
        worker.join()


def test_get_raises_with_the_task_traceback(app: Celeriac) -> None:
    with InProcessWorker(app) as worker:
        result = app.tasks["kit.fail"].delay("from get")
        worker.join(raise_failures=False)
        with pytest.raises(Boom, match="from get") as raised:
            result.get(timeout=1)
        notes = "\n".join(getattr(raised.value, "__notes__", []))
        assert "in fail" in notes and "raise Boom(text)" in notes


def test_join_timeout_names_the_queue_and_the_missing_results(app: Celeriac) -> None:
    add = app.tasks["kit.add"]
    with InProcessWorker(app, queues=["celeriac"]) as worker:
        stuck = add.apply_async((1, 2), queue="elsewhere")
        started = time.monotonic()
        with pytest.raises(JoinTimeout) as raised:
            worker.join(timeout=0.2)
        assert time.monotonic() - started < 2.0
        message = str(raised.value)
        assert "'elsewhere': 1 waiting" in message
        assert "not consumed: this worker consumes celeriac" in message
        assert f"kit.add[{stuck.id}]" in message


def test_soft_time_limit_is_raised_in_the_task(app: Celeriac) -> None:
    with InProcessWorker(app) as worker:
        result = app.tasks["kit.sleepy"].delay(5.0)
        worker.join(timeout=3)
        assert result.get(timeout=0) == "stopped at the soft limit"


@POOLS
def test_runs_outside_the_main_thread_without_signal_handlers(app: Celeriac, pool: str) -> None:
    before = signal.getsignal(signal.SIGTERM)
    outcome: dict[str, Any] = {}

    def in_a_thread() -> None:
        with InProcessWorker(app, pool=pool) as worker:
            result = app.tasks["kit.add"].delay(2, 3)
            worker.join()
            outcome["value"] = result.get(timeout=0)
            outcome["handler"] = signal.getsignal(signal.SIGTERM)

    thread = threading.Thread(target=in_a_thread)
    thread.start()
    thread.join(10)
    assert outcome == {"value": 5, "handler": before}
    with start_worker(app, pool=pool):  # and in the main thread, put back after
        pass
    assert signal.getsignal(signal.SIGTERM) == before


@POOLS
def test_stop_is_quick_and_gives_back_what_was_not_started(app: Celeriac, pool: str) -> None:
    worker = InProcessWorker(app, pool=pool).start()
    started = time.monotonic()
    worker.stop()
    assert time.monotonic() - started < 1.0
    # After stop, a sent task waits in the broker for the next worker
    result = app.tasks["kit.add"].delay(1, 1)
    assert app.broker.stats("celeriac").total_waiting == 1
    with InProcessWorker(app) as second:
        second.join()
    assert result.get(timeout=0) == 2


def test_refuses_an_eager_app_and_other_pools() -> None:
    app = memory_app("eager", task_always_eager=True)
    with pytest.raises(ConfigurationError, match="task_always_eager=False"):
        InProcessWorker(app)
    with pytest.raises(ConfigurationError, match="use PreforkWorker"):
        InProcessWorker(memory_app("prefork"), pool="prefork")


def test_discard_memory_forgets_queues_and_results() -> None:
    from celeriac.backends import memory as memory_backend
    from celeriac.brokers import memory as memory_broker
    from celeriac.testing import discard_memory

    app = memory_app("discarded")

    @app.task(name="kit.one")
    def one() -> int:
        return 1

    with InProcessWorker(app) as worker:
        one.delay()
        worker.join()
    url = app.conf.broker_url
    assert url in memory_broker._STORES and url in memory_backend._STORES
    discard_memory(app)
    assert url not in memory_broker._STORES and url not in memory_backend._STORES


def test_join_timeout_names_a_message_gone_to_the_dead_letters(app: Celeriac) -> None:
    from celeriac.message import Envelope

    with InProcessWorker(app) as worker:
        result = app.tasks["kit.add"].delay(1, 2)
        worker.join()
        # a message no worker can decode goes to the dead letters and stores no result
        app.broker.publish([Envelope("undecodable", "celeriac", 5, b"\x00garbage")])
        worker.sent.after_enqueue(app, _message("undecodable"))
        with pytest.raises(JoinTimeout, match="undecodable is in the dead letters of 'celeriac'"):
            worker.join(timeout=0.3)
        assert result.get(timeout=0) == 3


def _message(task_id: str) -> Any:
    from celeriac.message import Message

    return Message(id=task_id, task="kit.add", args=(1, 2))

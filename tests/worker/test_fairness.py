"""Fair dispatch inside a worker (celeriac.worker.fairness): the board, the batch size,
and a busy consumer giving its unstarted messages back to an idle sibling."""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from celeriac import Celeriac
from celeriac.worker.consumer import Consumer
from celeriac.worker.fairness import (
    BATCH_WORK,
    FIRST_BATCH,
    SHORT_TASK,
    WAIT_GRACE,
    BatchSizer,
    Board,
)
from celeriac.worker.options import resolve_options
from celeriac.worker.slots import Slot
from tests.e2e.workers import wait_until


@pytest.fixture
def app() -> Iterator[Celeriac]:
    url = f"memory://fairness-{uuid.uuid4().hex}"
    app = Celeriac(
        "fairness-test",
        broker=url,
        backend=url,
        set_as_current=False,
        worker_send_task_events=False,
    )
    yield app
    app.close()


# -- the board -------------------------------------------------------------------------
def test_a_slot_counts_as_waiting_only_after_the_grace() -> None:
    board = Board(4, shared=False)
    assert not board.has_siblings(0)
    board.idle(1)
    assert board.has_siblings(0) and not board.has_siblings(1)
    assert not board.others_waiting(0)  # idle a moment: between two fetches, not waiting
    wait_until(lambda: board.others_waiting(0), 2, "slot 1 to count as waiting")
    assert not board.others_waiting(1)  # a slot never waits on itself
    board.busy(1)
    assert not board.others_waiting(0) and board.has_siblings(0)
    board.leave(1)
    assert not board.has_siblings(0)


def test_idle_keeps_the_time_it_began() -> None:
    board = Board(2, shared=True)
    board.idle(1)
    time.sleep(WAIT_GRACE * 1.5)
    board.idle(1)  # a second fetch that finds nothing: still waiting since the first
    assert board.others_waiting(0)


def test_slots_beyond_the_capacity_are_ignored() -> None:
    board = Board(2, shared=False)
    board.idle(5)
    board.busy(5)
    board.leave(5)
    assert not board.has_siblings(0)


# -- the batch size --------------------------------------------------------------------
def test_a_batch_only_from_a_deep_queue_of_short_tasks_nobody_waits_for() -> None:
    board, sizer = Board(4, shared=False), BatchSizer(4)
    assert sizer.next_limit(board, 0) == 4  # alone in its worker
    board.idle(1)
    assert sizer.next_limit(board, 0) == 4  # a first fetch: nothing known yet
    sizer.fetched(0, 0.001)
    assert sizer.next_limit(board, 0) == 1  # a sibling, and the queue was empty
    sizer.fetched(4, 0.001)
    assert sizer.next_limit(board, 0) == 4  # found work at once
    sizer.fetched(2, 0.5)  # waited for arrivals: the queue ran dry
    assert sizer.next_limit(board, 0) == 1
    sizer.fetched(1, 0.001)
    for _ in range(10):
        sizer.ran(SHORT_TASK * 4)
    assert sizer.next_limit(board, 0) == 1  # long tasks: each holds only what it runs
    assert sizer.next_limit(None, 0) == 1
    assert BatchSizer(1).next_limit(None, 0) == 1


def test_a_large_batch_only_while_it_holds_little_work() -> None:
    board, sizer = Board(4, shared=False), BatchSizer(16)
    board.idle(1)
    assert sizer.next_limit(board, 0) == FIRST_BATCH  # nothing has run yet
    sizer.fetched(4, 0.001)
    sizer.ran(0.0001)
    assert sizer.next_limit(board, 0) == 16  # no-op tasks from a deep queue
    for _ in range(20):
        sizer.ran(BATCH_WORK / 8)  # 16 of these would be 0.4 s of work
    assert sizer.next_limit(board, 0) == 1
    assert BatchSizer(4).next_limit(board, 0) == FIRST_BATCH  # 4 of them would not


def test_an_unset_multiplier_is_the_brokers_default(app: Celeriac, tmp_path: Path) -> None:
    assert resolve_options(app, pool="threads").prefetch_multiplier == 4  # memory://
    redis_app = Celeriac("r", broker="redis://localhost:6379/0", set_as_current=False)
    assert resolve_options(redis_app, pool="threads").prefetch_multiplier == 16
    redis_app.conf.worker_prefetch_multiplier = 2
    assert resolve_options(redis_app, pool="threads").prefetch_multiplier == 2
    sqlite_app = Celeriac("s", broker=f"sqlite:///{tmp_path}/b.db", set_as_current=False)
    assert resolve_options(sqlite_app, pool="threads").prefetch_multiplier == 4


# -- giving back to an idle sibling ------------------------------------------------------
def _consumer(app: Celeriac, index: int, board: Board) -> Consumer:
    options = resolve_options(app, pool="threads", concurrency=2, prefetch_multiplier=4)
    options = dataclasses.replace(options, fetch_timeout=0.05)
    consumer_id = f"test/{uuid.uuid4().hex[:6]}/{index}"
    return Consumer(app, options, consumer_id, Slot(index, shared=False), board=board)


def test_a_busy_consumer_gives_its_reserve_to_an_idle_sibling(app: Celeriac) -> None:
    """Given consumer A running a long task with three messages prefetched behind it,
    when sibling B starts idle, expect A to hand the three back and B to run them while
    A's task still runs; each runs once."""
    gate, started = threading.Event(), threading.Event()
    ran: list[tuple[str, str]] = []

    @app.task
    def block() -> str:
        started.set()
        gate.wait(10)
        return "done"

    @app.task
    def quick(label: str) -> None:
        ran.append((label, threading.current_thread().name))

    board = Board(4, shared=False)
    first = block.apply_async(priority=9)
    for label in "xyz":
        quick.delay(label)
    a, b = _consumer(app, 0, board), _consumer(app, 1, board)
    threads = [threading.Thread(target=c.run, name=n, daemon=True) for c, n in ((a, "A"), (b, "B"))]
    threads[0].start()  # alone: it takes all four
    try:
        assert started.wait(10)
        assert len(a.reserved_deliveries()) == 3
        threads[1].start()
        wait_until(lambda: len(ran) == 3, 5, "the idle sibling to run the reserve")
        assert not gate.is_set() and first.state != "SUCCESS"
        assert sorted(ran) == [("x", "B"), ("y", "B"), ("z", "B")]
        assert a.watcher is not None and a.watcher.given_back == 3
    finally:
        gate.set()
        for consumer in (a, b):
            consumer.stop()
        for thread in threads:
            thread.join(10)
    assert first.get(timeout=5) == "done"
    assert len(ran) == 3

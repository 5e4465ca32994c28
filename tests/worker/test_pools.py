"""Every pool, started through ``celeriac worker`` on a SQLite broker file."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from celeriac import signature, states
from celeriac.exceptions import TimeLimitExceeded
from celeriac.message import Envelope
from tests.e2e.workers import StartWorker, wait_until
from tests.worker.fixtures import APP, Sandbox

POOLS = ["prefork", "threads", "solo", "asyncio"]


@pytest.mark.parametrize("pool", POOLS)
def test_each_pool_runs_tasks_and_delivers_the_soft_time_limit(
    pool: str, sandbox: Sandbox, start_worker: StartWorker
) -> None:
    """Given a worker of each pool, expect results back, and a task that catches its
    soft time limit returning its own value."""
    worker = start_worker(APP, "-P", pool, "-c", "2", env=sandbox.env)
    assert sandbox.send("add", 2, 3).get(timeout=10) == 5
    soft = sandbox.send("soft")
    soft_async = sandbox.send("soft_async")
    assert soft.get(timeout=10) == "soft limit caught"
    assert soft_async.get(timeout=10) == "soft limit caught"
    assert worker.stop() == 0


def test_the_banner_says_who_consumes_what_without_passwords(
    sandbox: Sandbox, start_worker: StartWorker
) -> None:
    worker = start_worker(
        APP,
        "-c",
        "3",
        "-Q",
        "a,b,c",
        "-X",
        "b",
        "-n",
        "w1@%h",
        "--prefetch-multiplier",
        "2",
        env=sandbox.env,
    )
    log = worker.log
    assert "worker w1@" in log and f"app:         {APP}" in log
    assert "pool:        prefork, concurrency 3" in log
    assert "queues:      a, c" in log
    assert "prefetch:    2 per consumer, at most 6 messages held" in log
    assert f"broker {sandbox.url}" in log
    assert log.index("ready") > log.index("queues:")


def test_prefork_hard_time_limit_kills_the_task_records_it_and_keeps_serving(
    sandbox: Sandbox, start_worker: StartWorker
) -> None:
    """Given ``while True: pass`` with time_limit=2, expect FAILURE with
    TimeLimitExceeded within 3s of its start, and the worker still serving."""
    start_worker(APP, "-P", "prefork", "-c", "1", env=sandbox.env)
    spin = sandbox.send("spin")
    with pytest.raises(TimeLimitExceeded):
        spin.get(timeout=10)
    meta = sandbox.app.backend.get(spin.id)
    assert meta.state == states.FAILURE
    assert meta.date_started is not None and meta.date_done is not None
    assert 2.0 <= meta.date_done - meta.date_started < 3.0
    assert sandbox.send("add", 1, 1).get(timeout=10) == 2  # a new child took over
    wait_until(
        lambda: sandbox.app.broker.stats("celeriac").in_flight == 0,
        10,
        "the stopped task's message to be finished",
    )


def test_a_chain_after_a_hard_time_limit_fails_instead_of_waiting_for_ever(
    sandbox: Sandbox, start_worker: StartWorker
) -> None:
    """Given a chain whose first step is killed at its hard limit on prefork, expect
    get() on the chain to raise TimeLimitExceeded and the killed step not to run again."""
    start_worker(APP, "-P", "prefork", "-c", "1", env=sandbox.env)
    app = sandbox.app
    flow = signature(f"{APP}.spin", immutable=True, app=app) | signature(
        f"{APP}.add", (1, 1), immutable=True, app=app
    )
    result = flow.apply_async()
    with pytest.raises(TimeLimitExceeded):
        result.get(timeout=15)
    wait_until(
        lambda: (
            (app.broker.stats("celeriac").in_flight, app.broker.stats("celeriac").total_waiting)
            == (0, 0)
        ),
        10,
        "the queue to be empty",
    )


def test_threads_hard_time_limit_fails_the_task_and_the_slot_gets_a_new_thread(
    sandbox: Sandbox, start_worker: StartWorker
) -> None:
    start_worker(APP, "-P", "threads", "-c", "1", env=sandbox.env)
    spin = sandbox.send("spin")
    with pytest.raises(TimeLimitExceeded):
        spin.get(timeout=10)
    assert sandbox.send("add", 1, 1).get(timeout=10) == 2


def test_priorities_run_highest_first_when_published_while_the_worker_is_busy(
    sandbox: Sandbox, start_worker: StartWorker
) -> None:
    start_worker(APP, "-c", "1", "--prefetch-multiplier", "1", env=sandbox.env)
    gate, started, order = sandbox.file("gate"), sandbox.file("started"), sandbox.file("order")
    blocker = sandbox.send("wait_for", gate, started)
    wait_until(lambda: Path(started).exists(), 10, "the blocking task to start")
    results = [
        sandbox.send("record", order, label, priority=priority)
        for label, priority in [("p0", 0), ("p5-first", 5), ("p9", 9), ("p5-second", 5)]
    ]
    Path(gate).touch()
    assert blocker.get(timeout=10) == "opened"
    for result in results:
        result.get(timeout=10)
    starts = [words[1] for words in sandbox.lines("order") if words[0] == "start"]
    assert starts == ["p9", "p5-first", "p5-second", "p0"]


def test_poison_goes_to_the_dead_letters_and_the_worker_keeps_consuming(
    sandbox: Sandbox, start_worker: StartWorker
) -> None:
    start_worker(APP, "-c", "1", env=sandbox.env)
    poison_id = f"poison-{uuid.uuid4()}"
    sandbox.app.broker.publish([Envelope(poison_id, "celeriac", 9, b"\x80\x04 not json")])
    assert sandbox.send("add", 20, 22).get(timeout=10) == 42
    [dead] = sandbox.app.broker.dead_letters("celeriac")
    assert dead.id == poison_id and "undecodable" in dead.reason


def test_max_tasks_per_child_replaces_the_child(
    sandbox: Sandbox, start_worker: StartWorker
) -> None:
    start_worker(APP, "-c", "1", "--max-tasks-per-child", "2", env=sandbox.env)
    for i in range(5):  # one at a time: each result before the next is sent
        sandbox.send("record", sandbox.file("runs"), f"t{i}").get(timeout=10)
    pids = [words[2] for words in sandbox.lines("runs") if words[0] == "start"]
    assert len(pids) == 5
    assert pids[0] == pids[1] != pids[2] == pids[3] != pids[4]


def test_max_memory_per_child_replaces_a_child_after_the_task_that_crossed_it(
    sandbox: Sandbox, start_worker: StartWorker
) -> None:
    start_worker(APP, "-c", "1", "--max-memory-per-child", "1", env=sandbox.env)  # 1 KiB
    for i in range(3):
        sandbox.send("record", sandbox.file("runs"), f"t{i}").get(timeout=10)
    pids = [words[2] for words in sandbox.lines("runs") if words[0] == "start"]
    assert len(set(pids)) == 3

"""The delivery contract around crashes, with real worker processes and ``kill -9``.

Each task that must be counted appends "start"/"end" lines to a file, so every
execution is seen, including one a crash cut short.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests.e2e.workers import StartWorker, alive, wait_until
from tests.worker.fixtures import APP, Sandbox, make_sandbox


def starts(box: Sandbox, name: str, label: str) -> list[list[str]]:
    return [w for w in box.lines(name) if w[0] == "start" and w[1] == label]


def ends(box: Sandbox, name: str, label: str) -> list[list[str]]:
    return [w for w in box.lines(name) if w[0] == "end" and w[1] == label]


def test_kill_9_of_a_child_mid_task_runs_the_task_exactly_once_more(
    sandbox: Sandbox, start_worker: StartWorker
) -> None:
    """Given a prefork child killed while running a task, expect the supervisor to hand
    the message back at once (well before the lease), the task to complete exactly
    once more, and the worker to keep serving."""
    worker = start_worker(APP, "-c", "1", env=sandbox.env)
    result = sandbox.send("record", sandbox.file("runs"), "victim", 30, True)
    wait_until(lambda: starts(sandbox, "runs", "victim"), 10, "the task to start")
    [[_, _, child_pid, _]] = starts(sandbox, "runs", "victim")
    killed_at = time.monotonic()
    os.kill(int(child_pid), signal.SIGKILL)
    assert result.get(timeout=10) == "victim"
    assert time.monotonic() - killed_at < sandbox.lease  # not waiting for the lease
    assert len(starts(sandbox, "runs", "victim")) == 2
    assert len(ends(sandbox, "runs", "victim")) == 1
    assert ends(sandbox, "runs", "victim")[0][2] != child_pid
    assert sandbox.send("add", 2, 2).get(timeout=10) == 4
    assert "died with signal SIGKILL while running" in worker.log


@pytest.mark.parametrize("pool", ["prefork", "solo"])  # supervisor beats; a thread beats
def test_a_task_running_four_leases_is_not_handed_to_a_second_worker(
    pool: str, tmp_path: Path, start_worker: StartWorker
) -> None:
    box = make_sandbox(tmp_path, lease=1.0)
    try:
        workers = [  # started together, then both awaited: one start-up's wait, not two
            start_worker(
                APP, "-P", pool, "--prefetch-multiplier", "1", "-n", f"{name}@%h", env=box.env,
                ready=False,
            )
            for name in ("a", "b")
        ]  # fmt: skip
        for worker in workers:
            worker.wait_for("ready")
        result = box.send("record", box.file("runs"), "long", 4 * box.lease)
        assert result.get(timeout=15) == "long"
        assert len(starts(box, "runs", "long")) == 1
        assert box.app.broker.stats("celeriac").in_flight == 0
    finally:
        box.app.close()


def test_warm_shutdown_finishes_the_running_task_and_gives_back_the_prefetched(
    sandbox: Sandbox, start_worker: StartWorker
) -> None:
    """Given a worker holding one running and three prefetched messages, SIGTERM lets
    the running one finish and hands the others back at once: another worker runs
    them, each once, without waiting for a lease."""
    runs = sandbox.file("runs")
    long_one = sandbox.send("record", runs, "long", 1.5, priority=9)
    queued = [sandbox.send("record", runs, f"q{i}") for i in range(3)]
    first = start_worker(
        APP, "-c", "1", "--prefetch-multiplier", "4", "-n", "first@%h", env=sandbox.env
    )
    wait_until(lambda: starts(sandbox, "runs", "long"), 10, "the long task to start")
    assert sandbox.app.broker.stats("celeriac").in_flight == 4  # it prefetched them all
    assert first.stop() == 0
    assert long_one.get(timeout=1) == "long"  # finished before the worker exited
    assert [w[1] for w in sandbox.lines("runs")] == ["long", "long"]  # nothing else ran
    assert sandbox.app.broker.stats("celeriac").total_waiting == 3  # given back at once
    start_worker(APP, "-c", "1", "-n", "second@%h", env=sandbox.env)
    assert [r.get(timeout=10) for r in queued] == ["q0", "q1", "q2"]
    assert all(len(starts(sandbox, "runs", f"q{i}")) == 1 for i in range(3))


def test_kill_9_of_the_whole_worker_another_worker_runs_its_tasks_within_a_lease(
    sandbox: Sandbox, start_worker: StartWorker
) -> None:
    """Given a worker killed with its children (kill -9 of the supervisor; the children
    die with it), expect a second worker to run its task within about one lease."""
    runs = sandbox.file("runs")
    doomed = start_worker(APP, "-c", "1", "-n", "doomed@%h", env=sandbox.env)
    result = sandbox.send("record", runs, "orphan", 30, True)
    wait_until(lambda: starts(sandbox, "runs", "orphan"), 10, "the task to start")
    children = doomed.children()
    assert children
    start_worker(APP, "-c", "1", "-n", "rescuer@%h", env=sandbox.env)
    killed_at = time.monotonic()
    doomed.signal(signal.SIGKILL)
    wait_until(lambda: not any(alive(pid) for pid in children), 5, "the children to die")
    assert result.get(timeout=5 * sandbox.lease) == "orphan"
    assert time.monotonic() - killed_at < 2 * sandbox.lease
    assert len(starts(sandbox, "runs", "orphan")) == 2
    assert len(ends(sandbox, "runs", "orphan")) == 1


def test_a_second_signal_is_a_cold_shutdown_that_hands_back_running_tasks_at_once(
    sandbox: Sandbox, start_worker: StartWorker
) -> None:
    runs = sandbox.file("runs")
    worker = start_worker(APP, "-c", "1", "-n", "cold@%h", env=sandbox.env)
    result = sandbox.send("record", runs, "cut", 30, True)
    wait_until(lambda: starts(sandbox, "runs", "cut"), 10, "the task to start")
    children = worker.children()
    worker.signal(signal.SIGTERM)
    worker.wait_for("warm shutdown")
    worker.signal(signal.SIGTERM)
    assert worker.process.wait(10) == 0
    assert not any(alive(pid) for pid in children)
    assert sandbox.app.broker.stats("celeriac").total_waiting == 1  # back now, not in a lease
    start_worker(APP, "-c", "1", "-n", "next@%h", env=sandbox.env)
    assert result.get(timeout=10) == "cut"
    assert len(ends(sandbox, "runs", "cut")) == 1


def test_an_idle_worker_gets_the_queue_while_another_runs_a_long_task(
    sandbox: Sandbox, start_worker: StartWorker
) -> None:
    """With prefetch multiplier 1 a busy worker holds nothing it is not running, so
    short tasks queued behind a long one all run on the idle worker (celery#4537)."""
    runs = sandbox.file("runs")
    start_worker(APP, "-c", "1", "--prefetch-multiplier", "1", "-n", "busy@%h", env=sandbox.env)
    long_one = sandbox.send("record", runs, "long", 3)
    wait_until(lambda: starts(sandbox, "runs", "long"), 10, "the long task to start")
    start_worker(APP, "-c", "1", "--prefetch-multiplier", "1", "-n", "idle@%h", env=sandbox.env)
    short = [sandbox.send("record", runs, f"s{i}") for i in range(5)]
    assert [r.get(timeout=5) for r in short] == [f"s{i}" for i in range(5)]
    assert not ends(sandbox, "runs", "long")  # all done while the long one still ran
    [[_, _, busy_pid, _]] = starts(sandbox, "runs", "long")
    assert all(words[2] != busy_pid for words in sandbox.lines("runs")[1:])
    assert long_one.get(timeout=10) == "long"


def test_ctrl_c_reaches_the_whole_group_and_is_a_warm_shutdown(
    sandbox: Sandbox, start_worker: StartWorker
) -> None:
    """A Ctrl-C in a terminal sends SIGINT to every process of the group: the children
    ignore it and the supervisor lets the running task finish."""
    runs = sandbox.file("runs")
    worker = start_worker(APP, "-c", "1", env=sandbox.env)
    result = sandbox.send("record", runs, "interrupted?", 1.0)
    wait_until(lambda: starts(sandbox, "runs", "interrupted?"), 10, "the task to start")
    os.killpg(worker.pid, signal.SIGINT)
    assert worker.process.wait(15) == 0
    assert result.get(timeout=1) == "interrupted?"
    assert "KeyboardInterrupt" not in worker.log

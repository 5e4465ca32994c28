"""What the worker's INFO line per finished task costs: drain rate with it on and off.

    python bench/task_log_bench.py [--tasks 5000] [--rounds 3] [--concurrency 2]
                                   [--mode worker|inprocess]

``worker`` (the default) starts a real prefork worker at ``-l INFO`` for each
round, its log in a file as a service manager would keep it, the lines on
(``worker_log_task_outcomes``, the default) then off, on a fresh SQLite broker;
publishes ``--tasks`` no-op tasks and times the drain until the queue is empty.
``inprocess`` runs the tasks through the executor in this process (memory
broker, the log to a file): the hot-path cost alone. Rounds alternate which
setting runs first. Prints each round and the best rate of each, and the ratio.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

TASKS_MODULE = """
from celeriac import Celeriac
app = Celeriac("tasklogbench", task_send_sent_event=False, worker_send_task_events=False)

@app.task
def noop(i):
    return i
"""


def _drain_with_worker(workdir: Path, drain: int, tasks: int, concurrency: int, on: bool) -> float:
    from _common import worker_process

    from celeriac import Celeriac

    url = f"sqlite:///{workdir}/bench-{drain}.sqlite3"
    app = Celeriac("tasklogbench", broker=url, task_send_sent_event=False, set_as_current=False)
    noop = app.task(name="tasklogbenchtasks.noop")(lambda i: i)
    command = [
        sys.executable, "-m", "celeriac", "-A", "tasklogbenchtasks", "worker", "-P", "prefork",
        "-c", str(concurrency), "-l", "INFO", "--prefetch-multiplier", "16",
    ]  # fmt: skip
    env = {
        "CELERIAC_BROKER_URL": url,
        "CELERIAC_WORKER_LOG_TASK_OUTCOMES": str(on).lower(),
    }
    messages = [noop.build_message((i,), {}) for i in range(tasks)]
    with worker_process(f"tasklog-{drain}", command, workdir, env):
        start = time.perf_counter()
        app.publish(messages)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            stats = app.broker.stats("celeriac")
            if stats.total_waiting == 0 and stats.in_flight == 0:
                break
            time.sleep(0.002)
        elapsed = time.perf_counter() - start
    lines = (workdir / f"tasklog-{drain}.log").read_text().count(" succeeded in ")
    if lines != (tasks if on else 0):
        raise RuntimeError(f"expected {tasks if on else 0} task lines, found {lines}")
    app.close()
    return tasks / elapsed


def _drain_in_process(workdir: Path, tasks: int, on: bool) -> float:
    from celeriac import Celeriac
    from celeriac.worker.job import Executor

    url = f"memory://tasklog-{uuid.uuid4().hex}"
    app = Celeriac(
        "tasklogbench", broker=url, backend=url, set_as_current=False,
        task_send_sent_event=False, worker_send_task_events=False,
        worker_log_task_outcomes=on,
    )  # fmt: skip
    noop = app.task(name="tasklogbench.noop")(lambda i: i)
    app.publish([noop.build_message((i,), {}) for i in range(tasks)])
    executor = Executor(app, "bench@host", "c1", app.connect_broker(), app.connect_backend())
    start = time.perf_counter()
    while deliveries := app.broker.fetch(["celeriac"], "c1", 100, 0.0):
        for delivery in deliveries:
            executor.process(delivery)
    elapsed = time.perf_counter() - start
    executor.close()
    return tasks / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--mode", choices=("worker", "inprocess"), default="worker")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        (workdir / "tasklogbenchtasks.py").write_text(TASKS_MODULE)
        if args.mode == "inprocess":
            handler = logging.FileHandler(workdir / "inprocess.log")
            handler.setFormatter(logging.Formatter("[%(asctime)s: %(levelname)s] %(message)s"))
            worker_log = logging.getLogger("celeriac.worker")
            worker_log.addHandler(handler)
            worker_log.setLevel(logging.INFO)
            worker_log.propagate = False
        best = {True: 0.0, False: 0.0}
        drain = 0
        for round_no in range(args.rounds):
            order = (True, False) if round_no % 2 == 0 else (False, True)
            for on in order:
                drain += 1
                if args.mode == "worker":
                    found = _drain_with_worker(workdir, drain, args.tasks, args.concurrency, on)
                else:
                    found = _drain_in_process(workdir, args.tasks, on)
                best[on] = max(best[on], found)
                print(f"round {round_no + 1}: lines {'on ' if on else 'off'} {found:,.0f} tasks/s")
        print(
            f"best: lines on {best[True]:,.0f}/s, off {best[False]:,.0f}/s, "
            f"on/off {best[True] / best[False]:.0%}"
        )


if __name__ == "__main__":
    main()

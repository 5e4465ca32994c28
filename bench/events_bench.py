"""What task events cost: drain rate with events on and off.

    python bench/events_bench.py [--tasks 5000] [--rounds 3] [--concurrency 2]
                                 [--broker sqlite|redis://localhost:6379/0|memory]
                                 [--mode worker|inprocess]

``worker`` (the default) starts a real prefork worker for each round, events
off then on (``CELERIAC_WORKER_SEND_TASK_EVENTS``), publishes ``--tasks`` no-op
tasks in one batch and times the drain: the whole worker, event thread and
broker writes included. ``inprocess`` runs the same tasks through the
executor in this process (memory broker by default): the hot-path cost alone.
Prints the best round of each (the least disturbed by the rest of the machine),
the ratio on/off (the target is >= 0.90) and the events written per task.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

TASKS_MODULE = """
from celeriac import Celeriac
app = Celeriac("eventsbench", task_send_sent_event=False)

@app.task
def noop(i):
    return i
"""


def _app(workdir: Path, url: str) -> Any:
    (workdir / "eventsbenchtasks.py").write_text(TASKS_MODULE)
    sys.path.insert(0, str(workdir))
    os.environ["CELERIAC_BROKER_URL"] = url
    import eventsbenchtasks  # type: ignore[import-not-found]

    return eventsbenchtasks


def _events_written(app: Any) -> int:
    broker = app.connect_broker()
    count, position = 0, "0"
    while batch := broker.stream_read("events", position, 10_000):
        count += sum(1 for _, data in batch if b'"task-' in data)
        position = batch[-1][0]
    broker.close()
    return count


def _drain_with_worker(
    module: Any, workdir: Path, url: str, tasks: int, concurrency: int, events: bool
) -> float:
    from _workers import start_worker, stop_worker

    app = module.app
    messages = [module.noop.build_message((i,), {}) for i in range(tasks)]
    env = {"CELERIAC_BROKER_URL": url, "CELERIAC_WORKER_SEND_TASK_EVENTS": str(events).lower()}
    worker = start_worker(
        "eventsbenchtasks",
        workdir,
        env,
        "-c",
        str(concurrency),
        "-P",
        "prefork",
        "--prefetch-multiplier",
        "16",
    )
    try:
        app.publish(messages)
        start = time.perf_counter()
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            stats = app.broker.stats("celeriac")
            if stats.total_waiting == 0 and stats.in_flight == 0:
                break
            time.sleep(0.002)
        elapsed = time.perf_counter() - start
    finally:
        stop_worker(worker)
    return tasks / elapsed


def _drain_in_process(module: Any, tasks: int, events: bool) -> float:
    from celeriac.events import dispatcher_for
    from celeriac.worker.job import Executor

    app = module.app
    app.conf.worker_send_task_events = events
    app.publish([module.noop.build_message((i,), {}) for i in range(tasks)])
    executor = Executor(app, "bench@host", "c1", app.connect_broker(), app.connect_backend())
    start = time.perf_counter()
    while deliveries := app.broker.fetch(["celeriac"], "c1", 100, 0.0):
        for delivery in deliveries:
            executor.process(delivery)
    elapsed = time.perf_counter() - start
    dispatcher_for(app).flush(timeout=60)
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
    parser.add_argument(
        "--broker",
        default=None,
        help="sqlite (default for worker), memory (default for inprocess), or a redis:// URL",
    )
    opts = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="celeriac-events-bench-"))
    broker = opts.broker or ("sqlite" if opts.mode == "worker" else "memory")
    if broker == "sqlite":
        url = f"sqlite:///{workdir}/bench.sqlite3"
    elif broker == "memory":
        url = f"memory://events-bench-{uuid.uuid4().hex}"
    else:
        url = broker
    module = _app(workdir, url)
    if url.startswith("redis"):
        module.app.conf.broker_transport_options = {"global_keyprefix": f"bench{os.getpid()}"}
        os.environ["CELERIAC_BROKER_TRANSPORT_OPTIONS"] = (
            f'{{"global_keyprefix": "bench{os.getpid()}"}}'
        )

    rates: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(opts.rounds):
        for events in (False, True):
            before = _events_written(module.app)
            if opts.mode == "worker":
                rate = _drain_with_worker(
                    module, workdir, url, opts.tasks, opts.concurrency, events
                )
            else:
                rate = _drain_in_process(module, opts.tasks, events)
            written = _events_written(module.app) - before
            rates[events].append(rate)
            print(
                f"  events {'on ' if events else 'off'}: {rate:>9,.0f} tasks/s "
                f"({written / opts.tasks:.1f} task events per task)",
                flush=True,
            )

    off, on = max(rates[False]), max(rates[True])
    where = (
        f"one prefork worker -c {opts.concurrency}"
        if opts.mode == "worker"
        else "the executor in one process"
    )
    print(f"celeriac events cost, {opts.tasks} no-op tasks through {where} on {url}")
    print(f"  drain, events off (best of {opts.rounds})  {off:>9,.0f} tasks/s")
    print(f"  drain, events on  (best of {opts.rounds})  {on:>9,.0f} tasks/s")
    print(f"  on / off                          {on / off:>9.2%}  (target >= 90%)")


if __name__ == "__main__":
    main()

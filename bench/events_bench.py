"""What task events cost: drain rate and CPU per task with events on and off.

    python bench/events_bench.py [--tasks 5000] [--rounds 3] [--concurrency 2]
                                 [--broker sqlite|memory|redis://localhost:6379/0]
                                 [--mode worker|inprocess]

``worker`` (the default) starts a real prefork worker for each round, events
off then on (``CELERIAC_WORKER_SEND_TASK_EVENTS``), publishes ``--tasks`` no-op
tasks in one batch and times the drain: the whole worker, event threads and
broker writes included. It also reads the CPU time the worker's processes used
(``/proc``), which other load on the machine disturbs far less than the wall
clock. ``inprocess`` runs the same tasks through the executor in this process:
the hot-path cost alone.

Prints each round, then the best drain rate of each, the median CPU per task of
each, and the on/off ratio of both (the target is >= 90%).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from celeriac.events.event import decode_item

sys.path.insert(0, str(Path(__file__).parent))

TASKS_MODULE = """
from celeriac import Celeriac
app = Celeriac("eventsbench", task_send_sent_event=False, event_queue_maxlen=10_000_000)

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
        count += sum(
            e.type.startswith("task-") for pos, data in batch for e in decode_item(pos, data)
        )
        position = batch[-1][0]
    broker.close()
    return count


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU these processes have used so far (Linux /proc)."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def _tree(pid: int) -> list[int]:
    found = [pid]
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def _drain_with_worker(
    module: Any, workdir: Path, url: str, tasks: int, concurrency: int, events: bool
) -> tuple[float, float]:
    from _common import worker_command, worker_process

    app = module.app
    messages = [module.noop.build_message((i,), {}) for i in range(tasks)]
    env = {"CELERIAC_BROKER_URL": url, "CELERIAC_WORKER_SEND_TASK_EVENTS": str(events).lower()}
    command = worker_command(
        "celeriac", "eventsbenchtasks", concurrency, "--prefetch-multiplier", "16"
    )
    with worker_process("events", command, workdir, env) as worker:
        pids = _tree(worker.pid)
        app.publish(messages)
        cpu, start = _cpu_seconds(pids), time.perf_counter()
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            stats = app.broker.stats("celeriac")
            if stats.total_waiting == 0 and stats.in_flight == 0:
                break
            time.sleep(0.002)
        elapsed = time.perf_counter() - start
        time.sleep(0.5)  # the last events are flushed: their cost counts too
        cpu = _cpu_seconds(pids) - cpu
    return tasks / elapsed, cpu / tasks


def _drain_in_process(module: Any, tasks: int, events: bool) -> tuple[float, float]:
    from celeriac.events import dispatcher_for
    from celeriac.worker.job import Executor

    app = module.app
    app.conf.worker_send_task_events = events
    app.publish([module.noop.build_message((i,), {}) for i in range(tasks)])
    executor = Executor(app, "bench@host", "c1", app.connect_broker(), app.connect_backend())
    start, cpu = time.perf_counter(), time.process_time()
    while deliveries := app.broker.fetch(["celeriac"], "c1", 100, 0.0):
        for delivery in deliveries:
            executor.process(delivery)
    elapsed = time.perf_counter() - start
    dispatcher_for(app).flush(timeout=60)
    cpu = time.process_time() - cpu
    executor.close()
    return tasks / elapsed, cpu / tasks


def _url(broker: str, workdir: Path) -> str:
    if broker == "sqlite":
        return f"sqlite:///{workdir}/bench.sqlite3"
    if broker == "memory":
        return f"memory://events-bench-{uuid.uuid4().hex}"
    if broker.startswith("redis") and "global_keyprefix" not in broker:
        sep = "&" if "?" in broker else "?"
        return f"{broker}{sep}global_keyprefix=eventsbench{os.getpid()}"  # our own keys
    return broker


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--mode", choices=("worker", "inprocess"), default="worker")
    parser.add_argument(
        "--broker", default=None,
        help="sqlite (default for worker), memory (default for inprocess), or a redis:// URL",
    )  # fmt: skip
    opts = parser.parse_args()

    from celeriac.brokers import redact

    workdir = Path(tempfile.mkdtemp(prefix="celeriac-events-bench-"))
    url = _url(opts.broker or ("sqlite" if opts.mode == "worker" else "memory"), workdir)
    module = _app(workdir, url)
    rates: dict[bool, list[float]] = {False: [], True: []}
    costs: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(opts.rounds):
        for events in (False, True):
            before = _events_written(module.app)
            if opts.mode == "worker":
                rate, cost = _drain_with_worker(
                    module, workdir, url, opts.tasks, opts.concurrency, events
                )
            else:
                rate, cost = _drain_in_process(module, opts.tasks, events)
            written = _events_written(module.app) - before
            rates[events].append(rate)
            costs[events].append(cost)
            print(
                f"  events {'on ' if events else 'off'}: {rate:>9,.0f} tasks/s, "
                f"{cost * 1e6:6.1f} us CPU per task ({written / opts.tasks:.1f} events per task)",
                flush=True,
            )
    module.app.broker.purge("celeriac")

    off, on = max(rates[False]), max(rates[True])
    cpu_off, cpu_on = statistics.median(costs[False]), statistics.median(costs[True])
    where = (
        f"one prefork worker -c {opts.concurrency}"
        if opts.mode == "worker"
        else "the executor in one process"
    )
    print(f"celeriac events cost: {opts.tasks} no-op tasks through {where} on {redact(url)}")
    print(f"  drain, events off (best of {opts.rounds})   {off:>9,.0f} tasks/s")
    print(f"  drain, events on  (best of {opts.rounds})   {on:>9,.0f} tasks/s")
    print(f"  on / off, wall clock               {on / off:>9.1%}   (target >= 90%)")
    print(f"  CPU per task, off / on (median)    {cpu_off * 1e6:.1f} / {cpu_on * 1e6:.1f} us")
    print(f"  on / off, from CPU per task        {cpu_off / cpu_on:>9.1%}")


if __name__ == "__main__":
    main()

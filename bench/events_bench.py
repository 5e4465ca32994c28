"""What task events cost: drain rate and CPU per task with events on and off.

    python bench/events_bench.py [--tasks 5000] [--rounds 3] [--concurrency 2]
                                 [--broker sqlite|memory|redis://localhost:6379/0]
                                 [--mode worker|inprocess]

``worker`` (the default) starts a real prefork worker for each round, events
off then on (``CELERIAC_WORKER_SEND_TASK_EVENTS``), publishes ``--tasks`` no-op
tasks in one batch and times the drain from the moment it starts publishing
(the worker drains while a long batch is being confirmed) until the queue is
empty: the whole worker, event threads and broker writes included. It also
reads the CPU time the worker's processes used (``/proc``), which other load
on the machine disturbs far less than the wall clock. ``inprocess`` runs the
same tasks through the executor in this process: the hot-path cost alone.

Every drain starts on a fresh store (a new SQLite file, a new key prefix, a
new memory broker): on a store that kept the last round's results and events
each round would be slower than the one before, and whichever setting ran
second would look worse (on RabbitMQ the drains share the vhost: the queue is
purged after each, and events are counted from where the stream stood before
it). The rounds also alternate which setting runs first.

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


class Store:
    """One drain's broker: the worker's module reads the URL, the producer is made here."""

    def __init__(self, url: str) -> None:
        from celeriac import Celeriac

        self.url = url
        self.app = Celeriac(
            "eventsbench", broker=url, task_send_sent_event=False, set_as_current=False
        )
        self.noop = self.app.task(name="eventsbenchtasks.noop")(_noop)

    def close(self) -> None:
        self.app.broker.purge("celeriac")
        if self.url.startswith("redis"):  # the results and events under our key prefix
            import redis

            prefix = self.url.rpartition("global_keyprefix=")[2]
            client = redis.Redis.from_url(self.url.partition("?")[0])
            for key in client.scan_iter(match=f"*{prefix}*", count=1000):
                client.delete(key)
            client.close()
        self.app.broker.close()


def _noop(i: int) -> int:
    return i


def _stream_end(app: Any) -> str:
    """Where the event stream ends now: a RabbitMQ stream outlives the drains."""
    broker = app.connect_broker()
    try:
        return str(broker.streams.last("events"))
    finally:
        broker.close()


def _events_written(app: Any, position: str) -> int:
    broker = app.connect_broker()
    count = 0
    while batch := broker.streams.read("events", position, 10_000):
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
    store: Store, workdir: Path, tasks: int, concurrency: int, events: bool
) -> tuple[float, float]:
    from _common import worker_command, worker_process

    app = store.app
    messages = [store.noop.build_message((i,), {}) for i in range(tasks)]
    env = {
        "CELERIAC_BROKER_URL": store.url,
        "CELERIAC_WORKER_SEND_TASK_EVENTS": str(events).lower(),
    }
    command = worker_command(
        "celeriac", "eventsbenchtasks", concurrency, "--prefetch-multiplier", "16"
    )
    with worker_process("events", command, workdir, env) as worker:
        pids = _tree(worker.pid)
        # From before the publish: the worker drains while it goes on (a batch of 20,000
        # takes RabbitMQ seconds to confirm), so timing after it would miss that part.
        cpu, start = _cpu_seconds(pids), time.perf_counter()
        app.publish(messages)
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


def _drain_in_process(store: Store, tasks: int, events: bool) -> tuple[float, float]:
    from celeriac.events import dispatcher_for
    from celeriac.worker.job import Executor

    app = store.app
    app.conf.worker_send_task_events = events
    app.publish([store.noop.build_message((i,), {}) for i in range(tasks)])
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


def _url(broker: str, workdir: Path, drain: int) -> str:
    """A store of its own for each drain."""
    if broker == "sqlite":
        return f"sqlite:///{workdir}/bench-{drain}.sqlite3"
    if broker == "memory":
        return f"memory://events-bench-{uuid.uuid4().hex}"
    if broker.startswith("redis") and "global_keyprefix" not in broker:
        sep = "&" if "?" in broker else "?"
        return f"{broker}{sep}global_keyprefix=eventsbench{os.getpid()}r{drain}"
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

    from celeriac.urls import redact

    workdir = Path(tempfile.mkdtemp(prefix="celeriac-events-bench-"))
    (workdir / "eventsbenchtasks.py").write_text(TASKS_MODULE)
    broker = opts.broker or ("sqlite" if opts.mode == "worker" else "memory")
    rates: dict[bool, list[float]] = {False: [], True: []}
    costs: dict[bool, list[float]] = {False: [], True: []}
    url = ""
    for drain in range(2 * opts.rounds):
        events = (drain % 2 == 0) == (drain // 2 % 2 == 1)  # off, on, on, off, off, on...
        url = _url(broker, workdir, drain)
        store = Store(url)
        try:
            start = _stream_end(store.app)
            if opts.mode == "worker":
                rate, cost = _drain_with_worker(
                    store, workdir, opts.tasks, opts.concurrency, events
                )
            else:
                rate, cost = _drain_in_process(store, opts.tasks, events)
            written = _events_written(store.app, start)
        finally:
            store.close()
        if url.startswith("sqlite"):
            for path in workdir.glob(f"bench-{drain}.sqlite3*"):
                path.unlink()
        rates[events].append(rate)
        costs[events].append(cost)
        print(
            f"  events {'on ' if events else 'off'}: {rate:>9,.0f} tasks/s, "
            f"{cost * 1e6:6.1f} us CPU per task ({written / opts.tasks:.1f} events per task)",
            flush=True,
        )

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

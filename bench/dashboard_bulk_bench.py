"""Dashboard bulk actions on many matches: time, and the memory they hold at the peak.

    .venv/bin/python bench/dashboard_bulk_bench.py --tasks 100000

Stores ``--tasks`` failed tasks in a SQLite store (straight through ``Store.apply``),
then counts them, revokes them all and retries them all with the dashboard's bulk
action, on a SQLite broker in a temporary directory. Memory is Python's allocations
(tracemalloc) during each action, above what was held before it.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import tracemalloc
from pathlib import Path

from celeriac import Celeriac
from celeriac.dashboard.bulk import BulkRequest, run_bulk
from celeriac.dashboard.queries import TaskFilter, count_tasks
from celeriac.dashboard.store import Store
from celeriac.events.event import Event


def _fill(store: Store, tasks: int) -> None:
    now = time.time() - 3600
    for start in range(0, tasks, 5000):
        store.apply(
            Event.from_dict(
                {"type": "task-failed", "uuid": f"task-{i:08d}", "name": "proj.import",
                 "args": [i, "customer-" + str(i)], "kwargs": {"retry": True},
                 "queue": "celeriac", "timestamp": now + i / 1000, "hostname": "w1",
                 "exception": "ValueError('bad row')"}
            )
            for i in range(start, min(start + 5000, tasks))
        )  # fmt: skip


def _measure(action: str, app: Celeriac, store: Store, tasks: int, traced: bool) -> None:
    """One bulk action on every failure: timed, or (``traced``) its peak allocations."""
    flt, snapshot = TaskFilter(state="FAILURE"), time.time()
    if traced:
        tracemalloc.start()
    began = time.perf_counter()
    done = run_bulk(app, store, BulkRequest(action, flt, snapshot, tasks))
    elapsed = time.perf_counter() - began
    if traced:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(f"{action}: peak {peak / 2**20:.1f} MiB allocated (tracemalloc, slower run)")
    else:
        print(f"{action}: {done['count']:,} tasks in {elapsed:.2f} s "
              f"({done['count'] / elapsed:,.0f}/s)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'broker.sqlite3'}"
        app = Celeriac("bench", broker=url, set_as_current=False, task_send_sent_event=False)
        store = Store(Path(tmp) / "dash.sqlite3")
        began = time.perf_counter()
        _fill(store, options.tasks)
        print(f"stored {options.tasks:,} failures in {time.perf_counter() - began:.1f} s")
        began = time.perf_counter()
        count = count_tasks(store, TaskFilter(state="FAILURE"), time.time())
        print(f"count: {count:,} in {(time.perf_counter() - began) * 1000:.0f} ms")
        for traced in (False, True):
            _measure("revoke", app, store, count, traced)
            _measure("retry", app, store, count, traced)
        waiting = app.broker.stats("celeriac").total_waiting
        print(f"waiting in the queue after two retries: {waiting:,}")
        store.close()
        app.close()


if __name__ == "__main__":
    main()

"""Dashboard figures: events stored per second (batched writes) and list/filter/search times.

    .venv/bin/python bench/dashboard_bench.py --tasks 200000

Events go to a SQLite broker's stream, the collector drains them into its store;
then the task list is queried with many rows stored (rows are inserted directly
for the size test: a row per task, as the collector writes them).
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from celeriac import Celeriac
from celeriac.dashboard.collector import Collector
from celeriac.dashboard.queries import TaskFilter, list_tasks, overview
from celeriac.dashboard.schema import TASK_COLUMNS
from celeriac.dashboard.store import Store
from celeriac.events import EVENTS_STREAM, encode_event
from celeriac.events.event import Event


def ingest(tmp: Path, tasks: int) -> float:
    app = Celeriac(
        "bench",
        broker=f"sqlite:///{tmp}/broker.sqlite3",
        set_as_current=False,
        event_queue_maxlen=tasks * 4 + 10,
    )
    now = time.time()
    items = []
    for i in range(tasks):
        for j, kind in enumerate(("task-received", "task-started", "task-succeeded")):
            items.append(
                encode_event(
                    {
                        "type": kind,
                        "uuid": f"t{i}",
                        "name": "bench.add",
                        "hostname": "w1",
                        "args": [i, 1],
                        "timestamp": now + j,
                        "result": i + 1,
                        "runtime": 0.001,
                    },
                    10_000,
                )
            )
    for start in range(0, len(items), 10_000):
        app.broker.stream_add(EVENTS_STREAM, items[start : start + 10_000], maxlen=len(items) + 10)
    store = Store(tmp / "ingest.sqlite3")
    began = time.perf_counter()
    count = Collector(app, store).drain()
    elapsed = time.perf_counter() - began
    app.close()
    return count / elapsed


def store_writes(tmp: Path, tasks: int, index: bool) -> float:
    """Events per second through ``Store.apply`` alone (batches of 2,000), the search
    index's triggers kept or dropped: what keeping the index costs the writer."""
    now = time.time()
    events = [
        Event.from_dict(
            {"type": kind, "uuid": f"t{i}", "name": "bench.add", "hostname": "w1",
             "args": [i, f"user-{i}"], "kwargs": {"k": i}, "timestamp": now + j,
             "result": i + 1, "runtime": 0.001}
        )
        for i in range(tasks)
        for j, kind in enumerate(("task-sent", "task-received", "task-started", "task-succeeded"))
    ]  # fmt: skip
    store = Store(tmp / f"writes-{index}.sqlite3")
    if not index:
        for trigger in ("tasks_fts_insert", "tasks_fts_update", "tasks_fts_delete"):
            store._db.execute(f"DROP TRIGGER {trigger}")
    began = time.perf_counter()
    for start in range(0, len(events), 2000):
        store.apply(events[start : start + 2000])
    elapsed = time.perf_counter() - began
    store.close()
    return len(events) / elapsed


def fill(store: Store, rows: int) -> None:
    now = time.time()
    states = ["SUCCESS"] * 8 + ["FAILURE", "STARTED"]
    batch = []
    with store._lock:
        store._db.execute("BEGIN")
        for i in range(rows):
            state = random.choice(states)
            row = {
                "id": f"task-{i:08d}",
                "name": f"proj.task{i % 20}",
                "state": state,
                "args": f'[{i}, "user-{i % 5000}"]',
                "kwargs": "{}",
                "result": str(i),
                "worker": f"w{i % 8}",
                "queue": f"q{i % 4}",
                "seen": now - rows + i,
                "updated": now - rows + i,
                "rank": 4,
                "finished": now - rows + i,
                "runtime": random.random(),
                "timeline": "[]",
            }
            batch.append(tuple(row.get(c) for c in TASK_COLUMNS))
            if len(batch) == 50_000:
                store._db.executemany(
                    f"INSERT INTO tasks VALUES ({','.join('?' * len(TASK_COLUMNS))})", batch
                )
                batch = []
        if batch:
            store._db.executemany(
                f"INSERT INTO tasks VALUES ({','.join('?' * len(TASK_COLUMNS))})", batch
            )
        store._db.execute("COMMIT")


def timed(label: str, function: object) -> None:
    began = time.perf_counter()
    result = function()  # type: ignore[operator]
    ms = (time.perf_counter() - began) * 1000
    size = len(result) if isinstance(result, list) else "-"
    print(f"  {label:44} {ms:9.1f} ms  ({size} rows)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events-tasks", type=int, default=20_000)
    parser.add_argument("--tasks", type=int, default=200_000)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        rate = ingest(tmp, options.events_tasks)
        print(f"ingest: {rate:,.0f} events/s ({options.events_tasks * 3:,} events, batched)")
        for index in (True, False):
            writes = store_writes(tmp, options.events_tasks, index)
            label = "with" if index else "without"
            print(f"store writes {label} the search index: {writes:,.0f} events/s")
        store = Store(tmp / "big.sqlite3", max_tasks=10**9)
        began = time.perf_counter()
        fill(store, options.tasks)
        print(f"filled {options.tasks:,} rows, indexed: {time.perf_counter() - began:.1f} s")
        print(f"queries with {options.tasks:,} tasks stored:")
        timed("first page, no filter", lambda: list_tasks(store, TaskFilter()))
        timed("state=FAILURE", lambda: list_tasks(store, TaskFilter(state="FAILURE")))
        timed(
            "name + worker", lambda: list_tasks(store, TaskFilter(name="proj.task3", worker="w3"))
        )
        timed("page 100 (offset 5000)", lambda: list_tasks(store, TaskFilter(offset=5000)))
        timed(
            "search frequent term 'user-42'",
            lambda: list_tasks(store, TaskFilter(search="user-42")),
        )
        timed(
            "search absent term (FTS5 index)", lambda: list_tasks(store, TaskFilter(search="nope"))
        )
        timed(
            "search absent term + state=FAILURE",
            lambda: list_tasks(store, TaskFilter(search="nope", state="FAILURE")),
        )
        timed(
            "search 2-char term (scan, bounded)", lambda: list_tasks(store, TaskFilter(search="-9"))
        )
        timed(
            "search term in every row 'proj.task'",
            lambda: list_tasks(store, TaskFilter(search="proj.task")),
        )
        timed("overview (last hour)", lambda: overview(store))
        store.close()


if __name__ == "__main__":
    main()

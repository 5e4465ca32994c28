"""Dashboard figures: events stored per second and list/filter/search times, on any database.

    .venv/bin/python bench/dashboard_bench.py --tasks 1000000
    .venv/bin/python bench/dashboard_bench.py --tasks 1000000 --db postgresql+psycopg://postgres@127.0.0.1/test
    .venv/bin/python bench/dashboard_bench.py --tasks 1000000 --db mysql+pymysql://root@127.0.0.1/test

Events go to a SQLite broker's stream, the collector drains them into its store;
then the task list is queried with many rows stored (rows are inserted directly
for the size test: a row per task, as the collector writes them). Without
``--db`` the store is a SQLite file in a temporary directory; with it, the
bench's tables (prefix ``bench<pid>_``) are created in that database and dropped at
the end.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy.schema import DropIndex

from celeriac import Celeriac
from celeriac.dashboard.collector import Collector
from celeriac.dashboard.queries import TaskFilter, list_tasks, overview
from celeriac.dashboard.store import Store
from celeriac.events import EVENTS_STREAM, encode_event
from celeriac.events.dispatcher import PACK_MAX, pack
from celeriac.events.event import Event

PREFIX = f"bench{os.getpid()}_"  # runs at the same time keep to their own tables


class Target:
    """Where the bench's stores live: SQLite files in ``tmp``, or tables in ``--db``."""

    def __init__(self, tmp: Path, url: str | None) -> None:
        self.tmp, self.url = tmp, url

    def store(self, name: str, **options: Any) -> Store:
        if self.url is None:
            return Store(self.tmp / f"{name}.sqlite3", **options)
        store = Store(self.url, table_prefix=f"{PREFIX}{name}_", **options)
        store.drop()  # a run stopped early leaves its tables behind
        store.close()
        return Store(self.url, table_prefix=f"{PREFIX}{name}_", **options)

    def done(self, store: Store) -> None:
        if self.url is not None:
            store.drop()
        store.close()


def ingest(target: Target, tasks: int) -> float:
    """Events per second from the broker's stream into the store, through the collector."""
    app = Celeriac(
        "bench",
        broker=f"sqlite:///{target.tmp}/broker.sqlite3",
        set_as_current=False,
        event_queue_maxlen=tasks * 4 + 10,
    )
    now = time.time()
    groups = [  # a task's events, as a worker writes them: one group, packed, compressed
        b"[" + b",".join((
            encode_event({"type": "task-received", "uuid": f"t{i}", "name": "bench.add",
                          "hostname": "w1", "args": [i, 1], "timestamp": now}, 10_000),
            encode_event({"type": "task-started", "timestamp": now + 1}, 10_000),
            encode_event({"type": "task-succeeded", "uuid": f"t{i}", "name": "bench.add",
                          "hostname": "w1", "timestamp": now + 2, "result": i + 1,
                          "runtime": 0.001}, 10_000),
        )) + b"]"
        for i in range(tasks)
    ]  # fmt: skip
    items = [pack(groups[start : start + PACK_MAX]) for start in range(0, tasks, PACK_MAX)]
    app.broker.streams.add(EVENTS_STREAM, items, maxlen=len(items) + 10)
    store = target.store("ingest")
    began = time.perf_counter()
    count = Collector(app, store).drain()
    elapsed = time.perf_counter() - began
    target.done(store)
    app.close()
    return count / elapsed


def drop_search_index(store: Store) -> bool:
    """Drop the store's search index (triggers on SQLite); False when it has none."""
    with store.db.transaction() as connection:
        if store.search_index == "fts5":
            for trigger in ("insert", "update", "delete"):
                connection.exec_driver_sql(f"DROP TRIGGER {store.tables.fts.name}_{trigger}")
        elif store.search_index and store.tables.search_index is not None:
            # MySQL's words are still computed, not indexed
            connection.execute(DropIndex(store.tables.search_index))
        else:
            return False
    return True


def store_writes(target: Target, tasks: int, index: bool) -> float | None:
    """Events per second through ``Store.apply`` alone (batches of 2,000), the search
    index kept or dropped: what keeping the index costs the writer."""
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
    store = target.store(f"writes{int(index)}")
    if not index and not drop_search_index(store):
        target.done(store)
        return None
    began = time.perf_counter()
    for start in range(0, len(events), 2000):
        store.apply(events[start : start + 2000])
    elapsed = time.perf_counter() - began
    target.done(store)
    return len(events) / elapsed


def _row(i: int, rows: int, now: float) -> dict[str, Any]:
    return {
        "id": f"task-{i:08d}",
        "name": f"proj.task{i % 20}",
        "state": random.choice(("SUCCESS",) * 8 + ("FAILURE", "STARTED")),
        "args": [i, f"user-{i % 5000}"],
        "kwargs": {},
        "result": i,
        "worker": f"w{i % 8}",
        "queue": f"q{i % 4}",
        "seen": now - rows + i,
        "updated": now - rows + i,
        "rank": 4,
        "finished": now - rows + i,
        "runtime": random.random(),
        "timeline": [],
    }


def fill(store: Store, rows: int) -> None:
    """``rows`` tasks, one a second up to now, through ``Store.load`` 20,000 at a time."""
    now = time.time()
    for start in range(0, rows, 20_000):
        store.load(_row(i, rows, now) for i in range(start, min(start + 20_000, rows)))


def analyze(store: Store) -> None:
    """Fresh planner statistics, as autovacuum (PostgreSQL) or InnoDB would gather them."""
    tasks = store.tables.tasks.name
    statement = {"postgresql": f"ANALYZE {tasks}", "mysql": f"ANALYZE TABLE {tasks}"}
    with store.db.transaction() as connection:
        connection.exec_driver_sql(statement.get(store.db.kind, "ANALYZE"))


def timed(label: str, function: Callable[[], Any], runs: int) -> None:
    """The first run and the median of ``runs``, in milliseconds."""
    times, size = [], 0
    for _ in range(runs):
        began = time.perf_counter()
        result = function()
        times.append((time.perf_counter() - began) * 1000)
        size = len(result) if isinstance(result, list) else 0
    print(
        f"  {label:44} first {times[0]:8.1f} ms  median {statistics.median(times):8.1f} ms"
        f"  ({size} rows)"
    )


def queries(store: Store, runs: int) -> None:
    cases: list[tuple[str, TaskFilter]] = [
        ("first page, no filter", TaskFilter()),
        ("state=FAILURE", TaskFilter(state="FAILURE")),
        ("name + worker", TaskFilter(name="proj.task3", worker="w3")),
        ("page 100 (offset 5000)", TaskFilter(offset=5000)),
        ("since 1 hour ago", TaskFilter(since=time.time() - 3600)),
        ("a 1-hour range a day ago + state=FAILURE", TaskFilter(
            since=time.time() - 86400, until=time.time() - 82800, state="FAILURE")),
        ("search frequent term 'user-42'", TaskFilter(search="user-42")),
        ("search absent term (index)", TaskFilter(search="nope")),
        ("search absent term + state=FAILURE", TaskFilter(search="nope", state="FAILURE")),
        ("search rare term 'task-00012345'", TaskFilter(search="task-00012345")),
        ("search rare term 'user-4242\"' (200 rows)", TaskFilter(search='user-4242"')),
        ("search absent term, since 24 hours ago", TaskFilter(
            search="nope", since=time.time() - 86400)),
        ("search 2-char term (scan, bounded)", TaskFilter(search="-9")),
        ("search term in every row 'proj.task'", TaskFilter(search="proj.task")),
    ]  # fmt: skip
    for label, flt in cases:
        timed(label, lambda flt=flt: list_tasks(store, flt), runs)  # type: ignore[misc]
    timed("overview (last hour)", lambda: overview(store), runs)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events-tasks", type=int, default=20_000)
    parser.add_argument("--tasks", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3, help="runs of each query")
    parser.add_argument("--db", default=None, help="a database URL (default: a SQLite file)")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        target = Target(Path(name), options.db)
        where = options.db or "SQLite"
        rate = ingest(target, options.events_tasks)
        print(f"{where}: ingest {rate:,.0f} events/s ({options.events_tasks * 3:,} events)")
        for index in (True, False):
            writes = store_writes(target, options.events_tasks, index)
            label = "with" if index else "without"
            if writes is not None:
                print(f"store writes {label} the search index: {writes:,.0f} events/s")
        store = target.store("big", max_tasks=10**9)
        print(f"search index: {store.search_index or 'none (scan)'}")
        began = time.perf_counter()
        fill(store, options.tasks)
        analyze(store)
        print(f"filled {options.tasks:,} rows, indexed: {time.perf_counter() - began:.1f} s")
        print(f"queries with {options.tasks:,} tasks stored:")
        queries(store, options.runs)
        target.done(store)


if __name__ == "__main__":
    main()

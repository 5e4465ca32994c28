"""Bulk actions on every task a filter matches: counted first, done in batches, capped."""

from __future__ import annotations

import time
from pathlib import Path

from celeriac.dashboard.queries import TaskFilter, count_tasks, task_batches
from celeriac.dashboard.store import Store
from celeriac.events.event import Event


def _store_with(path: Path, failed: int, succeeded: int, at: float) -> Store:
    store = Store(path / "dash.sqlite3")
    events = [
        Event.from_dict(
            {"type": "task-failed" if i < failed else "task-succeeded", "uuid": f"t-{i:05d}",
             "name": "proj.add", "args": [i], "kwargs": {}, "queue": "celeriac",
             "timestamp": at + (i % 7), "hostname": "w1"}
        )
        for i in range(failed + succeeded)
    ]  # fmt: skip
    store.apply(events)
    return store


def test_batches_cover_every_match_once_newest_first_within_the_snapshot(tmp_path: Path) -> None:
    """Given 2,500 failures (many sharing a timestamp) and 100 successes, Expect batches of
    at most 1,000 that list each failure once, and nothing first seen after the snapshot."""
    at = time.time() - 100
    store = _store_with(tmp_path, failed=2500, succeeded=100, at=at)
    failures = TaskFilter(state="FAILURE")
    assert count_tasks(store, failures, at + 10) == 2500
    assert count_tasks(store, failures, at + 2) == len([i for i in range(2500) if i % 7 <= 2])
    batches = list(task_batches(store, failures, at + 10, size=1000))
    assert [len(b) for b in batches] == [1000, 1000, 500]
    ids = [task["id"] for batch in batches for task in batch]
    assert len(set(ids)) == 2500 and all(int(i[2:]) < 2500 for i in ids)
    seen = [task["seen"] for batch in batches for task in batch]
    assert seen == sorted(seen, reverse=True)
    assert batches[0][0]["args"] == [int(batches[0][0]["id"][2:])]
    early = [t["id"] for b in task_batches(store, failures, at + 2, size=300) for t in b]
    assert len(early) == count_tasks(store, failures, at + 2)
    assert count_tasks(store, TaskFilter(state="FAILURE", search="t-00012"), at + 10) == 1
    store.close()

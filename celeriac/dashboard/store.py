"""The dashboard's durable read model: task history and workers in SQLite.

One row per task, updated as its events arrive; a batch of events is one
transaction (the rows it touches are read with one query, merged in Python,
written back with one ``executemany``), together with the event stream's
position, so a restarted collector resumes exactly where the store stopped.
The store keeps nothing in memory between batches.

Retention: tasks finished or last seen more than ``max_age`` seconds ago are
deleted, and beyond ``max_tasks`` the oldest go; failures have their own
(longer) ``failure_max_age`` and ``max_failures``. Workers silent for
``worker_forget_after`` seconds are forgotten.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

from ..events.event import Event
from .merge import FINAL_STATES, merge_event, merge_worker
from .schema import FTS_BACKFILL, SCHEMA, TASK_COLUMNS

FAILURE = "FAILURE"
# An upsert, not INSERT OR REPLACE: the row keeps its rowid, and the search
# index's update trigger fires (REPLACE deletes without firing delete triggers).
_UPSERT_TASK = (
    f"INSERT INTO tasks ({', '.join(TASK_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in TASK_COLUMNS)}) ON CONFLICT (id) DO UPDATE SET "
    + ", ".join(f"{name} = excluded.{name}" for name in TASK_COLUMNS if name != "id")
)


def _dumps(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value, default=repr).decode()


class Store:
    """Task history and workers in one SQLite file (``":memory:"`` for tests)."""

    def __init__(
        self,
        path: str | Path = "celeriac-dashboard.sqlite3",
        max_age: float = 7 * 86400.0,
        max_tasks: int = 1_000_000,
        failure_max_age: float = 30 * 86400.0,
        max_failures: int = 100_000,
        worker_forget_after: float = 3600.0,
    ) -> None:
        self.path = str(path)
        self.max_age, self.max_tasks = max_age, max_tasks
        self.failure_max_age, self.max_failures = failure_max_age, max_failures
        self.worker_forget_after = worker_forget_after
        # One connection shared by the collector and the web threads, behind a lock:
        # SQLite serialises writers anyway, and reads here are short indexed queries.
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        indexed = self._db.execute(
            "SELECT 1 FROM sqlite_master WHERE name = 'tasks_fts'"
        ).fetchone()
        backfill = FTS_BACKFILL + ";" if indexed is None else ""
        self._db.executescript(f"BEGIN IMMEDIATE; {SCHEMA} {backfill} COMMIT;")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- position of the event stream ---------------------------------------------
    def position(self) -> str | None:
        """The position of the last event stored, or None for a new store."""
        row = self.query_one("SELECT value FROM meta WHERE key = 'position'")
        return None if row is None else str(row["value"])

    # -- writing -------------------------------------------------------------------
    def apply(self, events: Iterable[Event], position: str | None = None) -> int:
        """Merge a batch of events into the tasks and workers, in one transaction."""
        batch = list(events)
        task_events = [e for e in batch if e.is_task and e.task_id]
        worker_events = [e for e in batch if e.is_worker and e.hostname]
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._apply_tasks(task_events)
                self._apply_workers(worker_events)
                if position:
                    self._db.execute(
                        "INSERT OR REPLACE INTO meta (key, value) VALUES ('position', ?)",
                        (position,),
                    )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return len(task_events) + len(worker_events)

    def _apply_tasks(self, events: list[Event]) -> None:
        if not events:
            return
        rows = self._load_tasks({e.task_id for e in events if e.task_id})
        for event in events:
            assert event.task_id is not None
            rows[event.task_id] = merge_event(rows.get(event.task_id), event)
        self._db.executemany(
            _UPSERT_TASK,
            [tuple(_encode(row, name) for name in TASK_COLUMNS) for row in rows.values()],
        )

    def _load_tasks(self, ids: set[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        listed = list(ids)
        for start in range(0, len(listed), 500):  # SQLite's bound on host parameters
            chunk = listed[start : start + 500]
            marks = ", ".join("?" for _ in chunk)
            for row in self._db.execute(f"SELECT * FROM tasks WHERE id IN ({marks})", chunk):
                found[row["id"]] = decode_task(row)
        return found

    def _apply_workers(self, events: list[Event]) -> None:
        if not events:
            return
        latest: dict[str, Event] = {}
        for event in events:  # only the newest heartbeat of each worker matters
            assert event.hostname is not None
            latest[event.hostname] = event
        self._db.executemany(
            "INSERT OR REPLACE INTO workers (hostname, last_seen, online, freq, info) "
            "VALUES (?, ?, ?, ?, ?)",
            [merge_worker(event) for event in latest.values()],
        )

    # -- retention ------------------------------------------------------------------
    def prune(self, now: float | None = None) -> int:
        """Apply the retention limits; returns how many tasks were deleted."""
        now = time.time() if now is None else now
        with self._lock:
            deleted = 0
            cursor = self._db.execute(
                "DELETE FROM tasks WHERE (state != ? AND seen < ?) OR (state = ? AND seen < ?)",
                (FAILURE, now - self.max_age, FAILURE, now - self.failure_max_age),
            )
            deleted += cursor.rowcount
            for clause, keep in (("state != ?", self.max_tasks), ("state = ?", self.max_failures)):
                cursor = self._db.execute(
                    f"DELETE FROM tasks WHERE {clause} AND seen < (SELECT seen FROM tasks "
                    f"WHERE {clause} ORDER BY seen DESC LIMIT 1 OFFSET ?)",
                    (FAILURE, FAILURE, keep - 1),
                )
                deleted += cursor.rowcount
            self._db.execute(
                "DELETE FROM workers WHERE last_seen < ?", (now - self.worker_forget_after,)
            )
            return deleted

    # -- reading ---------------------------------------------------------------------
    def query(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return list(self._db.execute(sql, tuple(params)))

    def query_one(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Row | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None


_JSON_COLUMNS = frozenset({"args", "kwargs", "result", "timeline"})


def _encode(row: dict[str, Any], name: str) -> Any:
    value = row.get(name)
    return _dumps(value) if name in _JSON_COLUMNS else value


def decode_task(row: sqlite3.Row) -> dict[str, Any]:
    """A stored task row as a dict, its JSON columns decoded."""
    task = dict(row)
    for name in _JSON_COLUMNS:
        if task.get(name) is not None:
            task[name] = orjson.loads(task[name])
    task["timeline"] = task.get("timeline") or []
    return task


__all__ = ["FINAL_STATES", "Store", "decode_task"]

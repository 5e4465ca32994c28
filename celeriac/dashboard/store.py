"""The dashboard's durable read model: task history and workers in a SQL database.

SQLite by default (a file, nothing to install); PostgreSQL or MySQL/MariaDB
through SQLAlchemy with the ``sql`` extra (see :mod:`.database`).

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

import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

from ..events.event import Event
from .database import DEFAULT_PATH, NO_PARAMS, Database, Params, Row, Session, open_database
from .grams import gram_words
from .merge import FINAL_STATES, merge_event, merge_worker
from .schema import GRAMS_COLUMN, SEARCHED, TASK_COLUMNS, Tables, table_statements
from .search import prepare_search

FAILURE = "FAILURE"
_WORKER_COLUMNS = ("hostname", "last_seen", "online", "freq", "info")
_KEY_COLUMNS = ("id", "name", "state", "worker", "queue", "parent_id", "root_id")
_JSON_COLUMNS = frozenset({"args", "kwargs", "result", "timeline"})
_IDS_PER_QUERY = 500  # under SQLite's bound on host parameters


def _dumps(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value, default=repr).decode()


class Store:
    """Task history and workers in one database (a SQLite file by default).

    ``location`` is a SQLite path (``":memory:"`` for tests) or a URL:
    ``sqlite:///file``, ``postgresql+psycopg://user@host/db``,
    ``mysql+pymysql://user@host/db``. ``table_prefix`` starts the name of every
    table and index, so several stores can share one database.
    """

    def __init__(
        self,
        location: str | Path | Database = DEFAULT_PATH,
        max_age: float = 7 * 86400.0,
        max_tasks: int = 1_000_000,
        failure_max_age: float = 30 * 86400.0,
        max_failures: int = 100_000,
        worker_forget_after: float = 3600.0,
        table_prefix: str = "",
    ) -> None:
        self.tables = Tables(table_prefix)
        self.db = location if not isinstance(location, (str, Path)) else open_database(location)
        self.dialect = self.db.dialect
        self.max_age, self.max_tasks = max_age, max_tasks
        self.failure_max_age, self.max_failures = failure_max_age, max_failures
        self.worker_forget_after = worker_forget_after
        with self.db.transaction() as session:
            for statement in table_statements(self.dialect, self.tables):
                session.run(statement)
        self.search_index = prepare_search(self.db, self.tables)
        quote, t = self.dialect.quote, self.tables
        self._grams = self.dialect.name == "mysql"  # words of trigrams, for its search
        task_columns = (*TASK_COLUMNS, GRAMS_COLUMN) if self._grams else TASK_COLUMNS
        self._upsert_task = self.dialect.upsert(t.tasks, task_columns, "id")
        self._upsert_worker = self.dialect.upsert(t.workers, _WORKER_COLUMNS, "hostname")
        self._upsert_meta = self.dialect.upsert(t.meta, ("key", "value"), "key")
        self._count_words = (
            f"INSERT INTO {t.words} (word, tasks) VALUES (:word, :tasks) "
            "ON DUPLICATE KEY UPDATE tasks = tasks + VALUES(tasks)"
        )
        self._select_position = f"SELECT {quote('value')} FROM {t.meta} WHERE {quote('key')} = :key"

    @property
    def description(self) -> str:
        """Where the store is, without a password."""
        return self.db.description

    def close(self) -> None:
        self.db.close()

    def drop(self) -> None:
        """Delete the store's tables and everything in them (tests, benchmarks)."""
        with self.db.transaction() as session:
            if self.search_index == "fts5":
                session.run(f"DROP TABLE IF EXISTS {self.tables.fts}")
            tables = [self.tables.tasks, self.tables.workers, self.tables.meta]
            for table in [*tables, self.tables.words] if self._grams else tables:
                session.run(f"DROP TABLE IF EXISTS {table}")

    # -- position of the event stream ---------------------------------------------
    def position(self) -> str | None:
        """The position of the last event stored, or None for a new store."""
        row = self.query_one(self._select_position, {"key": "position"})
        return None if row is None else str(row["value"])

    # -- writing -------------------------------------------------------------------
    def apply(self, events: Iterable[Event], position: str | None = None) -> int:
        """Merge a batch of events into the tasks and workers, in one transaction."""
        batch = list(events)
        task_events = [e for e in batch if e.is_task and e.task_id]
        worker_events = [e for e in batch if e.is_worker and e.hostname]
        with self.db.transaction() as session:
            self._apply_tasks(session, task_events)
            self._apply_workers(session, worker_events)
            if position:
                session.run(self._upsert_meta, {"key": "position", "value": position})
        return len(task_events) + len(worker_events)

    def _apply_tasks(self, session: Session, events: list[Event]) -> None:
        if not events:
            return
        rows, words = self._load_tasks(session, {e.task_id for e in events if e.task_id})
        for event in events:
            assert event.task_id is not None
            rows[event.task_id] = merge_event(rows.get(event.task_id), event)
        self._write_tasks(session, list(rows.values()), words)

    def _write_tasks(
        self, session: Session, rows: list[dict[str, Any]], words: dict[str, str]
    ) -> None:
        encoded = [self._encode(row) for row in rows]
        session.run_many(self._upsert_task, encoded)
        if self._grams:  # count the words each row gained (see .grams)
            gained: Counter[str] = Counter()
            for row in encoded:
                before = set(words.get(row["id"], "").split())
                gained.update(w for w in row[GRAMS_COLUMN].split() if w not in before)
            session.run_many(
                self._count_words,
                [{"word": word, "tasks": n} for word, n in sorted(gained.items())],
            )

    def load(self, tasks: Iterable[dict[str, Any]]) -> None:
        """Write task rows as given (whole rows, decoded), in one transaction: imports and
        benchmarks. A row with the id of a stored one replaces it."""
        rows = list(tasks)
        with self.db.transaction() as session:
            words: dict[str, str] = {}
            if self._grams:
                words = self._load_tasks(session, {row["id"] for row in rows})[1]
            self._write_tasks(session, rows, words)

    def _load_tasks(
        self, session: Session, ids: set[str]
    ) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
        """The stored rows of ``ids``, decoded, and (MySQL) the trigram words of each."""
        found: dict[str, dict[str, Any]] = {}
        words: dict[str, str] = {}
        listed = sorted(ids)
        for start in range(0, len(listed), _IDS_PER_QUERY):
            chunk = listed[start : start + _IDS_PER_QUERY]
            marks = ", ".join(f":i{n}" for n in range(len(chunk)))
            params = {f"i{n}": task_id for n, task_id in enumerate(chunk)}
            for row in session.rows(
                f"SELECT * FROM {self.tables.tasks} WHERE id IN ({marks})", params
            ):
                found[row["id"]] = decode_task(row)
                words[row["id"]] = row.get(GRAMS_COLUMN) or ""
        return found, words

    def _encode(self, row: dict[str, Any]) -> dict[str, Any]:
        encoded = {name: row.get(name) for name in TASK_COLUMNS}
        for name in _JSON_COLUMNS:
            encoded[name] = _dumps(encoded[name])
        limit = self.dialect.key_length
        if limit is not None:  # a MySQL key column holds so many characters, no more
            for name in _KEY_COLUMNS:
                value = encoded[name]
                if isinstance(value, str) and len(value) > limit:
                    encoded[name] = value[:limit]
        if self._grams:
            encoded[GRAMS_COLUMN] = gram_words(encoded[name] for name in ("id", *SEARCHED))
        return encoded

    def _apply_workers(self, session: Session, events: list[Event]) -> None:
        if not events:
            return
        latest: dict[str, Event] = {}
        for event in events:  # only the newest heartbeat of each worker matters
            assert event.hostname is not None
            latest[event.hostname] = event
        session.run_many(
            self._upsert_worker,
            [
                dict(zip(_WORKER_COLUMNS, merge_worker(event), strict=True))
                for event in latest.values()
            ],
        )

    # -- retention ------------------------------------------------------------------
    def prune(self, now: float | None = None) -> int:
        """Apply the retention limits; returns how many tasks were deleted."""
        now = time.time() if now is None else now
        tasks = self.tables.tasks
        with self.db.transaction() as session:
            deleted = session.run(
                f"DELETE FROM {tasks} WHERE (state != :failure AND seen < :oldest) "
                "OR (state = :failure AND seen < :oldest_failure)",
                {
                    "failure": FAILURE,
                    "oldest": now - self.max_age,
                    "oldest_failure": now - self.failure_max_age,
                },
            )
            for clause, keep in (
                ("state != :failure", self.max_tasks),
                ("state = :failure", self.max_failures),
            ):
                # The newest row beyond the cap, then a plain DELETE (MySQL cannot delete
                # from a table its own subquery reads).
                beyond = session.rows(
                    f"SELECT seen FROM {tasks} WHERE {clause} ORDER BY seen DESC "
                    "LIMIT 1 OFFSET :keep",
                    {"failure": FAILURE, "keep": max(keep - 1, 0)},
                )
                if beyond:
                    deleted += session.run(
                        f"DELETE FROM {tasks} WHERE {clause} AND seen < :cutoff",
                        {"failure": FAILURE, "cutoff": beyond[0]["seen"]},
                    )
            session.run(
                f"DELETE FROM {self.tables.workers} WHERE last_seen < :oldest",
                {"oldest": now - self.worker_forget_after},
            )
        return deleted

    # -- reading ---------------------------------------------------------------------
    def query(self, sql: str, params: Params = NO_PARAMS) -> list[Row]:
        """Rows of a read (``:name`` parameters), outside the writer's transaction."""
        return self.db.rows(sql, params)

    def query_one(self, sql: str, params: Params = NO_PARAMS) -> Row | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None


def decode_task(row: Row) -> dict[str, Any]:
    """A stored task row as a dict, its JSON columns decoded."""
    task = dict(row)
    task.pop(GRAMS_COLUMN, None)  # MySQL's search words: not the task's
    for name in _JSON_COLUMNS:
        if task.get(name) is not None:
            task[name] = orjson.loads(task[name])
    task["timeline"] = task.get("timeline") or []
    return task


__all__ = ["FINAL_STATES", "Store", "decode_task"]

"""The dashboard's durable read model: task history and workers in a SQL database.

SQLite by default (a file, nothing to install beyond the ``dashboard`` extra);
PostgreSQL or MySQL/MariaDB with a driver (see :mod:`.database`). Every
statement is built with SQLAlchemy Core over the tables of :mod:`.schema`.

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
from collections.abc import Callable, Hashable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import orjson
import sqlalchemy as sa

from ..events.event import Event
from ..sql.rows import chunks
from ..sql.schema import ID_LENGTH, mysql
from ..sql.statements import upsert
from .database import DEFAULT_PATH, BatchStatement, Database, Row, dicts, open_database
from .grams import gram_words
from .merge import FINAL_STATES, merge_event, merge_worker
from .schema import GRAMS_COLUMN, KEY_COLUMNS, SEARCHED, TASK_COLUMNS, Tables, check_prefix
from .search import prepare_search

FAILURE = "FAILURE"
S = TypeVar("S")
_WORKER_COLUMNS = ("hostname", "last_seen", "online", "freq", "info")
_JSON_COLUMNS = frozenset({"args", "kwargs", "result", "timeline"})


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
        check_prefix(table_prefix)
        self.db = location if not isinstance(location, (str, Path)) else open_database(location)
        self.dialect = self.db.engine.dialect
        self.tables = t = Tables(table_prefix, self.db.kind)
        self.max_age, self.max_tasks = max_age, max_tasks
        self.failure_max_age, self.max_failures = failure_max_age, max_failures
        self.worker_forget_after = worker_forget_after
        with self.db.transaction() as connection:
            t.create(connection)
        self.search_index = prepare_search(self.db, t)
        self._grams = t.words is not None  # MySQL: words of trigrams, for its search
        # The writes, compiled once: each runs a batch's rows in one executemany.
        kind, dialect = self.db.kind, self.dialect
        self._upsert_task = BatchStatement(upsert(kind, t.tasks), dialect)
        self._upsert_worker = BatchStatement(upsert(kind, t.workers), dialect)
        self._upsert_meta = BatchStatement(upsert(kind, t.meta), dialect)
        self._count_words = (
            None if t.words is None else BatchStatement(_count_words(t.words), dialect)
        )
        self._statements: dict[Hashable, Any] = {}
        self._select_position = sa.select(t.meta.c.value).where(t.meta.c.key == "position")
        self._select_tasks = sa.select(t.tasks).where(
            t.tasks.c.id.in_(sa.bindparam("ids", expanding=True))
        )

    @property
    def description(self) -> str:
        """Where the store is, without a password."""
        return self.db.description

    def close(self) -> None:
        self.db.close()

    def drop(self) -> None:
        """Delete the store's tables and everything in them (tests, benchmarks)."""
        with self.db.transaction() as connection:
            self.tables.drop(connection)

    # -- position of the event stream ---------------------------------------------
    def position(self) -> str | None:
        """The position of the last event stored, or None for a new store."""
        row = self.query_one(self._select_position)
        return None if row is None else str(row["value"])

    # -- writing -------------------------------------------------------------------
    def apply(self, events: Iterable[Event], position: str | None = None) -> int:
        """Merge a batch of events into the tasks and workers, in one transaction."""
        batch = list(events)
        task_events = [e for e in batch if e.is_task and e.task_id]
        worker_events = [e for e in batch if e.is_worker and e.hostname]
        with self.db.transaction() as connection:
            self._apply_tasks(connection, task_events)
            self._apply_workers(connection, worker_events)
            if position:
                self._upsert_meta.run(connection, [{"key": "position", "value": position}])
        return len(task_events) + len(worker_events)

    def _apply_tasks(self, connection: sa.Connection, events: list[Event]) -> None:
        if not events:
            return
        rows, words = self._load_tasks(connection, {e.task_id for e in events if e.task_id})
        for event in events:
            assert event.task_id is not None
            rows[event.task_id] = merge_event(rows.get(event.task_id), event)
        self._write_tasks(connection, list(rows.values()), words)

    def _write_tasks(
        self, connection: sa.Connection, rows: list[dict[str, Any]], words: dict[str, str]
    ) -> None:
        encoded = [self._encode(row) for row in rows]
        self._upsert_task.run(connection, encoded)
        if self._count_words is not None:  # count the words each row gained (see .grams)
            gained: Counter[str] = Counter()
            for row in encoded:
                before = set(words.get(row["id"], "").split())
                gained.update(w for w in row[GRAMS_COLUMN].split() if w not in before)
            self._count_words.run(
                connection, [{"word": word, "tasks": n} for word, n in sorted(gained.items())]
            )

    def load(self, tasks: Iterable[dict[str, Any]]) -> None:
        """Write task rows as given (whole rows, decoded), in one transaction: imports and
        benchmarks. A row with the id of a stored one replaces it."""
        rows = list(tasks)
        with self.db.transaction() as connection:
            words: dict[str, str] = {}
            if self._grams:
                words = self._load_tasks(connection, {row["id"] for row in rows})[1]
            self._write_tasks(connection, rows, words)

    def _load_tasks(
        self, connection: sa.Connection, ids: set[str]
    ) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
        """The stored rows of ``ids``, decoded, and (MySQL) the trigram words of each."""
        found: dict[str, dict[str, Any]] = {}
        words: dict[str, str] = {}
        for chunk in chunks(sorted(ids)):  # under SQLite's bound on host parameters
            for row in dicts(connection.execute(self._select_tasks, {"ids": chunk})):
                found[row["id"]] = decode_task(row)
                words[row["id"]] = row.get(GRAMS_COLUMN) or ""
        return found, words

    def _encode(self, row: dict[str, Any]) -> dict[str, Any]:
        encoded = {name: row.get(name) for name in TASK_COLUMNS}
        for name in _JSON_COLUMNS:
            encoded[name] = _dumps(encoded[name])
        if self.db.kind == "mysql":  # a key column holds so many characters, no more
            for name in KEY_COLUMNS:
                value = encoded[name]
                if isinstance(value, str) and len(value) > ID_LENGTH:
                    encoded[name] = value[:ID_LENGTH]
        if self._grams:
            encoded[GRAMS_COLUMN] = gram_words(encoded[name] for name in ("id", *SEARCHED))
        return encoded

    def _apply_workers(self, connection: sa.Connection, events: list[Event]) -> None:
        if not events:
            return
        latest: dict[str, Event] = {}
        for event in events:  # only the newest heartbeat of each worker matters
            assert event.hostname is not None
            latest[event.hostname] = event
        self._upsert_worker.run(
            connection,
            [
                dict(zip(_WORKER_COLUMNS, merge_worker(event), strict=True))
                for event in latest.values()
            ],
        )

    # -- retention ------------------------------------------------------------------
    def forget_worker(self, hostname: str) -> bool:
        """Delete a worker's row (its heartbeats); False when there was none."""
        workers = self.tables.workers
        with self.db.transaction() as connection:
            deleted = connection.execute(
                sa.delete(workers).where(workers.c.hostname == hostname)
            ).rowcount
        return bool(deleted)

    def prune(self, now: float | None = None) -> int:
        """Apply the retention limits; returns how many tasks were deleted."""
        now = time.time() if now is None else now
        tasks, workers = self.tables.tasks, self.tables.workers
        failed, others = tasks.c.state == FAILURE, tasks.c.state != FAILURE
        with self.db.transaction() as connection:
            expired = sa.or_(
                sa.and_(others, tasks.c.seen < now - self.max_age),
                sa.and_(failed, tasks.c.seen < now - self.failure_max_age),
            )
            deleted = connection.execute(sa.delete(tasks).where(expired)).rowcount
            for which, keep in ((others, self.max_tasks), (failed, self.max_failures)):
                # The newest row beyond the cap, then a plain DELETE (MySQL cannot delete
                # from a table its own subquery reads).
                beyond = connection.execute(
                    sa.select(tasks.c.seen)
                    .where(which)
                    .order_by(tasks.c.seen.desc())
                    .limit(1)
                    .offset(max(keep - 1, 0))
                ).scalar()
                if beyond is not None:
                    older = sa.delete(tasks).where(which, tasks.c.seen < beyond)
                    deleted += connection.execute(older).rowcount
            forgotten = workers.c.last_seen < now - self.worker_forget_after
            connection.execute(sa.delete(workers).where(forgotten))
        return int(deleted)

    # -- reading ---------------------------------------------------------------------
    def prepared(self, key: Hashable, build: Callable[[], S]) -> S:
        """The statement ``build`` makes, built once per store and ``key``: SQLAlchemy
        derives what it needs from a statement object once, so running a kept one with
        new parameters costs a fraction of building and running a new one."""
        statement = self._statements.get(key)
        if statement is None:
            statement = self._statements[key] = build()
        return statement

    def query(self, statement: sa.Executable, params: Mapping[str, Any] | None = None) -> list[Row]:
        """Rows of a read, outside the writer's transaction."""
        return self.db.rows(statement, params)

    def query_one(
        self, statement: sa.Executable, params: Mapping[str, Any] | None = None
    ) -> Row | None:
        rows = self.query(statement, params)
        return rows[0] if rows else None


def _count_words(words: sa.Table) -> Any:
    """MySQL: add to each word's count of tasks (see .grams)."""
    statement = mysql.insert(words)
    return statement.on_duplicate_key_update(tasks=words.c.tasks + statement.inserted.tasks)


def decode_task(row: Mapping[str, Any]) -> dict[str, Any]:
    """A stored task row as a dict, its JSON columns decoded."""
    task = dict(row)
    task.pop(GRAMS_COLUMN, None)  # MySQL's search words: not the task's
    for name in _JSON_COLUMNS:
        if task.get(name) is not None:
            task[name] = orjson.loads(task[name])
    task["timeline"] = task.get("timeline") or []
    return task


__all__ = ["FINAL_STATES", "Store", "decode_task"]

"""Results in a SQLite file: the embedded default, next to the embedded broker.

``sqlite:///relative/path.sqlite3`` or ``sqlite:////absolute/path.sqlite3``; the
broker and the backend may share one file (the default set-up does), so every
table is prefixed ``celeriac_``.

Every row carries ``expires_at``. Reads ignore expired rows; writes delete them
now and then (every ``SWEEP_EVERY`` writes or ``SWEEP_SECONDS``, whichever
comes first), through an index, so the file stops growing with no extra process.
``wait`` polls ``PRAGMA data_version`` (no table read) with a short backoff and
reads the record only when someone has committed.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from typing import Any

from ..backends.base import DEFAULT_RESULT_EXPIRES, Backend, TaskMeta
from ..backoff import Backoff
from ..exceptions import BackendError, TimeoutError
from ..serialization import Codec
from .db import DEFAULT_BUSY_TIMEOUT, Database, Errors, Schema, path_from_url

SCHEMA = Schema(
    component="results",
    version=1,
    statements=(
        """CREATE TABLE IF NOT EXISTS celeriac_results (
            task_id TEXT PRIMARY KEY, meta BLOB NOT NULL, expires_at REAL NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS celeriac_results_expiry ON celeriac_results (expires_at)",
        """CREATE TABLE IF NOT EXISTS celeriac_groups (
            group_id TEXT PRIMARY KEY, members TEXT NOT NULL, expires_at REAL NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS celeriac_groups_expiry ON celeriac_groups (expires_at)",
        """CREATE TABLE IF NOT EXISTS celeriac_chords (
            group_id TEXT PRIMARY KEY, fired INTEGER NOT NULL, expires_at REAL NOT NULL
        ) WITHOUT ROWID""",
        "CREATE INDEX IF NOT EXISTS celeriac_chords_expiry ON celeriac_chords (expires_at)",
        """CREATE TABLE IF NOT EXISTS celeriac_chord_parts (
            group_id TEXT NOT NULL, part INTEGER NOT NULL, PRIMARY KEY (group_id, part)
        ) WITHOUT ROWID""",
    ),
)
ERRORS = Errors("result backend", BackendError, BackendError)
SWEEP_EVERY = 1000  # writes between two sweeps of expired rows
SWEEP_SECONDS = 60.0  # or this long, whichever comes first

# Each sweep deletes at most SWEEP_LIMIT rows per table, so a write never holds the
# lock for long; sweeping more often than SWEEP_EVERY writes keeps up with any rate.
SWEEP_LIMIT = 5000
_SWEEPS = (
    "DELETE FROM celeriac_results WHERE task_id IN (SELECT task_id FROM celeriac_results"
    " WHERE expires_at < :now LIMIT :limit)",
    "DELETE FROM celeriac_groups WHERE group_id IN (SELECT group_id FROM celeriac_groups"
    " WHERE expires_at < :now LIMIT :limit)",
    # the same chords twice (same order, same transaction): parts first, then the chords
    "DELETE FROM celeriac_chord_parts WHERE group_id IN (SELECT group_id FROM celeriac_chords"
    " WHERE expires_at < :now ORDER BY expires_at, group_id LIMIT :limit)",
    "DELETE FROM celeriac_chords WHERE group_id IN (SELECT group_id FROM celeriac_chords"
    " WHERE expires_at < :now ORDER BY expires_at, group_id LIMIT :limit)",
)


class SQLiteBackend(Backend):
    """A result store in one SQLite file; one object per thread or process."""

    max_poll_interval = 0.01  # data_version polls are cheap: keep get() latency low
    fork_sensitive = True  # SQLite's process-wide mutexes (celeriac.events.forksafe)

    def __init__(
        self,
        codec: Codec,
        url: str = "sqlite:///celeriac.sqlite3",
        expires: float = DEFAULT_RESULT_EXPIRES,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
    ) -> None:
        super().__init__(codec)
        self.url = url
        self.expires = float(expires)
        self._db = Database(path_from_url(url), SCHEMA, ERRORS, busy_timeout)
        self._writes = 0
        self._swept_at = time.monotonic()

    @property
    def path(self) -> str:
        """The database file."""
        return self._db.path

    def shares(self, path: str) -> bool:
        """Whether this backend lives in the database file ``path`` (its tables then exist)."""
        if path != self._db.path:
            return False
        with self._db.read():  # connecting creates the result tables
            return True

    def store(self, metas: Sequence[TaskMeta]) -> None:
        if not metas:
            return
        rows = self.encode(metas)
        with self._db.write() as conn:
            self.store_rows(conn, rows)

    def encode(self, metas: Sequence[TaskMeta]) -> list[tuple[str, bytes, float]]:
        """Rows for :meth:`store_rows`: encoding happens before any lock is taken."""
        until = time.time() + self.expires
        return [(meta.task_id, meta.to_bytes(self.codec), until) for meta in metas]

    def store_rows(self, conn: Any, rows: Sequence[tuple[str, bytes, float]]) -> None:
        """Write encoded records in the caller's transaction (the broker's, for one commit)."""
        conn.executemany(
            "INSERT OR REPLACE INTO celeriac_results (task_id, meta, expires_at) VALUES (?, ?, ?)",
            rows,
        )
        self._sweep_now_and_then(conn, len(rows))

    def _sweep_now_and_then(self, conn: Any, writes: int) -> None:
        self._writes += writes
        if self._writes < SWEEP_EVERY and time.monotonic() - self._swept_at < SWEEP_SECONDS:
            return
        self._writes, self._swept_at = 0, time.monotonic()
        params = {"now": time.time(), "limit": SWEEP_LIMIT}
        for statement in _SWEEPS:
            conn.execute(statement, params)

    def get_many(self, task_ids: Sequence[str]) -> dict[str, TaskMeta]:
        if not task_ids:
            return {}
        with self._db.read() as conn:
            rows = conn.execute(
                "SELECT task_id, meta FROM celeriac_results"
                " WHERE task_id IN (SELECT value FROM json_each(?)) AND +expires_at >= ?",
                (json.dumps(list(task_ids)), time.time()),
            ).fetchall()
        return {task_id: TaskMeta.from_bytes(bytes(meta), self.codec) for task_id, meta in rows}

    def forget(self, task_ids: Sequence[str]) -> None:
        if task_ids:
            with self._db.write() as conn:
                conn.executemany(
                    "DELETE FROM celeriac_results WHERE task_id = ?", [(i,) for i in task_ids]
                )

    def wait(self, task_id: str, timeout: float | None = None) -> TaskMeta:
        deadline = None if timeout is None else time.monotonic() + timeout
        pauses = Backoff(self.poll_interval, cap=self.max_poll_interval)
        while True:
            version = self._db.version()  # before reading: a later commit wakes us
            meta = self.get(task_id)
            if meta.ready:
                return meta
            while True:  # sleep at least once, so a busy database does not make this spin
                remaining = math.inf
                if deadline is not None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise TimeoutError(f"task {task_id} not ready after {timeout}s")
                pauses.sleep(remaining)
                if self._db.version() != version:
                    break

    # -- groups and chords -------------------------------------------------
    def save_group(self, group_id: str, task_ids: Sequence[str]) -> None:
        with self._db.write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO celeriac_groups (group_id, members, expires_at)"
                " VALUES (?, ?, ?)",
                (group_id, json.dumps(list(task_ids)), time.time() + self.expires),
            )
            self._sweep_now_and_then(conn, 1)

    def get_group(self, group_id: str) -> list[str] | None:
        with self._db.read() as conn:
            row = conn.execute(
                "SELECT members FROM celeriac_groups WHERE group_id = ? AND expires_at >= ?",
                (group_id, time.time()),
            ).fetchone()
        return None if row is None else list(json.loads(row[0]))

    def chord_part_done(self, group_id: str, index: int, size: int) -> bool:
        with self._db.write() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO celeriac_chords (group_id, fired, expires_at)"
                " VALUES (?, 0, ?)",
                (group_id, time.time() + self.expires),
            )
            conn.execute(
                "INSERT OR IGNORE INTO celeriac_chord_parts (group_id, part) VALUES (?, ?)",
                (group_id, index),
            )
            # Counting the parts and setting ``fired`` in one statement, inside the
            # write transaction, makes the completing call the only one that sees it.
            fired = conn.execute(
                "UPDATE celeriac_chords SET fired = 1 WHERE group_id = :g AND fired = 0"
                " AND (SELECT count(*) FROM celeriac_chord_parts WHERE group_id = :g) >= :size",
                {"g": group_id, "size": size},
            ).rowcount
            self._sweep_now_and_then(conn, 1)
        return bool(fired)

    def close(self) -> None:
        self._db.close()

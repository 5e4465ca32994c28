"""Expired rows leave the SQL result backend's tables as it writes: no cleanup task.

Each backend counts its writes; every ``SWEEP_EVERY`` writes or ``SWEEP_SECONDS``,
whichever comes first, it deletes up to ``SWEEP_LIMIT`` expired rows per table
through the ``expires_at`` indexes, in short transactions of their own.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

from ..exceptions import BackendError
from .rows import utcnow
from .schema import Tables, sa

logger = logging.getLogger("celeriac.sql.backend")

SWEEP_EVERY = 1000  # writes between two sweeps of expired rows
SWEEP_SECONDS = 60.0  # or this long, whichever comes first
SWEEP_LIMIT = 5000  # rows per table and sweep, so a sweep never holds locks for long

Work = Callable[[sa.Connection], int]


class Sweeper:
    """Deletes a backend's expired rows now and then, through the backend's connections."""

    def __init__(
        self,
        tables: Tables,
        transaction: Callable[[Work], int],
        reading: Callable[[], AbstractContextManager[sa.Connection]],
    ) -> None:
        self.tables = tables
        self._transaction, self._reading = transaction, reading
        self._writes, self._swept_at = 0, time.monotonic()

    def wrote(self, writes: int) -> None:
        """Count writes; sweep when enough were made or enough time went by."""
        self._writes += writes
        if self._writes < SWEEP_EVERY and time.monotonic() - self._swept_at < SWEEP_SECONDS:
            return
        self._writes, self._swept_at = 0, time.monotonic()
        try:
            self.sweep()
        except BackendError:  # the next writes try again; the write itself succeeded
            logger.warning("SQL result backend: sweeping expired rows failed", exc_info=True)

    def sweep(self, limit: int = SWEEP_LIMIT) -> int:
        """Delete up to ``limit`` expired rows of each table; returns how many went."""
        now, deleted = utcnow(), 0
        task, group, chord, parts = self.tables.all
        for table, key in ((task, task.c.task_id), (group, group.c.group_id)):
            ids = self._expired(table, key, now, limit)
            if ids:
                deleted += self._transaction(_deleting(table, key.in_(ids), now))
        chords = self._expired(chord, chord.c.group_id, now, limit)
        if chords:

            def drop_chords(conn: sa.Connection) -> int:
                conn.execute(sa.delete(parts).where(parts.c.group_id.in_(chords)))
                gone = sa.delete(chord).where(chord.c.group_id.in_(chords))
                return int(conn.execute(gone).rowcount)

            deleted += self._transaction(drop_chords)
        return deleted

    def _expired(self, table: sa.Table, key: Any, now: datetime, limit: int) -> list[str]:
        # Read first, delete by key after: portable (MariaDB has no LIMIT in IN
        # subqueries) and SQLite never upgrades a read lock to a write lock.
        query = sa.select(key).where(table.c.expires_at < now).limit(limit)
        with self._reading() as conn:
            return list(conn.execute(query).scalars())


def _deleting(table: sa.Table, which: Any, now: datetime) -> Work:
    """A transaction's work: delete the rows ``which`` selects that are still expired."""

    def delete(conn: sa.Connection) -> int:
        # expired again at delete time: a record stored again since the read stays
        return int(conn.execute(sa.delete(table).where(which, table.c.expires_at < now)).rowcount)

    return delete

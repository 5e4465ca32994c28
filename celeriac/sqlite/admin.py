"""The SQLite broker's management side: queue listing and stats, purges, dead letters,
and its revocations capability.

Each method opens the connection or transaction it needs on the broker's
:class:`~celeriac.sqlite.db.Database`; none of them is on the hot path, but each
still reads through an index so a deep queue does not make the CLI or the
dashboard slow.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

from ..brokers.base import DeadLetter, QueueStats
from .db import Database
from .schema import COPY, distinct_queues_sql

_QUEUES = (
    distinct_queues_sql("celeriac_messages", "state = 0"),
    distinct_queues_sql("celeriac_messages", "state = 1"),
    "SELECT DISTINCT queue FROM celeriac_messages WHERE state = 2",  # few: bounded by prefetch
    distinct_queues_sql("celeriac_dead"),
)
_DEAD_IDS = "queue = :queue AND (:ids IS NULL OR id IN (SELECT value FROM json_each(:ids)))"


class SQLiteAdmin:
    """Inspecting and managing the queues of one SQLite broker file."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def queues(self) -> list[str]:
        """Every queue with a waiting, delayed, held or dead message."""
        with self._db.read() as conn:
            return sorted({row[0] for sql in _QUEUES for row in conn.execute(sql)})

    def stats(self, queue: str) -> QueueStats:
        """Waiting per priority, delayed, in flight, dead, and how long the oldest has waited."""
        found = QueueStats(queue)
        oldest_seq = None
        with self._db.snapshot() as conn:  # the counts and the oldest age of one moment
            rows = conn.execute(
                "SELECT priority, count(*), min(seq) FROM celeriac_messages"
                " WHERE state = 0 AND queue = ? GROUP BY priority",
                (queue,),
            )
            for priority, count, first in rows:
                found.waiting[int(priority)] = int(count)
                oldest_seq = first if oldest_seq is None else min(oldest_seq, first)
            if oldest_seq is not None:  # seq is the order messages became ready
                (ready_at,) = conn.execute(
                    "SELECT ready_at FROM celeriac_messages WHERE seq = ?", (oldest_seq,)
                ).fetchone()
                found.oldest_age = max(0.0, time.time() - ready_at)
            found.delayed, found.in_flight = conn.execute(
                "SELECT (SELECT count(*) FROM celeriac_messages WHERE state = 1 AND queue = :q),"
                " (SELECT count(*) FROM celeriac_messages WHERE state = 2 AND queue = :q)",
                {"q": queue},
            ).fetchone()
            (found.dead,) = conn.execute(
                "SELECT count(*) FROM celeriac_dead WHERE queue = ?", (queue,)
            ).fetchone()
        return found

    def purge(self, queue: str) -> int:
        """Delete the waiting and delayed messages of a queue (held ones finish as they are)."""
        with self._db.write() as conn:
            ready = conn.execute(
                "DELETE FROM celeriac_messages WHERE state = 0 AND queue = ?", (queue,)
            ).rowcount
            delayed = conn.execute(
                "DELETE FROM celeriac_messages WHERE state = 1 AND queue = ?", (queue,)
            ).rowcount
        return int(ready + delayed)

    def dead_letters(self, queue: str, limit: int) -> list[DeadLetter]:
        """The oldest dead letters of a queue."""
        with self._db.read() as conn:
            rows = conn.execute(
                "SELECT id, queue, priority, body, reason, deliveries, dead_at FROM celeriac_dead"
                " WHERE queue = ? ORDER BY seq LIMIT ?",
                (queue, limit),
            ).fetchall()
        return [
            DeadLetter(id_, queue_, priority, bytes(body), reason, deliveries, dead_at)
            for id_, queue_, priority, body, reason, deliveries, dead_at in rows
        ]

    def requeue_dead(self, queue: str, ids: Sequence[str] | None) -> int:
        """Dead letters (all, or those ids) back to ready, their delivery counts reset."""
        with self._db.write() as conn:
            params = {**_ids_param(queue, ids), "now": time.time()}
            moved = conn.execute(
                f"INSERT INTO celeriac_messages ({COPY}, state, ready_at, deliveries)"
                f" SELECT {COPY}, 0, :now, 0 FROM celeriac_dead WHERE {_DEAD_IDS} ORDER BY seq",
                params,
            ).rowcount
            conn.execute(f"DELETE FROM celeriac_dead WHERE {_DEAD_IDS}", params)
        return int(moved)

    def purge_dead(self, queue: str, ids: Sequence[str] | None) -> int:
        """Delete dead letters (all, or those ids)."""
        with self._db.write() as conn:
            deleted = conn.execute(
                f"DELETE FROM celeriac_dead WHERE {_DEAD_IDS}", _ids_param(queue, ids)
            ).rowcount
        return int(deleted)


def _ids_param(queue: str, ids: Sequence[str] | None) -> dict[str, str | None]:
    return {"queue": queue, "ids": None if ids is None else json.dumps(list(ids))}


class SQLiteRevocations:
    """Revoked task ids in the ``celeriac_revoked`` table, which fetch reads as it takes."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def revoke(self, ids: Sequence[str], ttl: float) -> None:
        """Remember task ids as revoked for ``ttl`` seconds; forget those whose time is up."""
        with self._db.write() as conn:
            now = time.time()
            conn.executemany(
                "INSERT OR REPLACE INTO celeriac_revoked (task_id, expires_at) VALUES (?, ?)",
                [(task_id, now + ttl) for task_id in ids],
            )
            conn.execute("DELETE FROM celeriac_revoked WHERE expires_at <= ?", (now,))

    def revoked(self, ids: Sequence[str]) -> set[str]:
        """Which of these task ids are revoked now."""
        with self._db.read() as conn:
            rows = conn.execute(  # "+expires_at": look up by id, not by the expiry index
                "SELECT task_id FROM celeriac_revoked"
                " WHERE task_id IN (SELECT value FROM json_each(?)) AND +expires_at > ?",
                (json.dumps(list(ids)), time.time()),
            )
            return {row[0] for row in rows}


__all__ = ["SQLiteAdmin", "SQLiteRevocations"]

"""The SQLite broker's management side: queue listing and stats, purges, dead letters, revocations.

Each function runs inside a connection or transaction the broker opened; none
of them is on the hot path, but each still reads through an index so a deep
queue does not make the CLI or the dashboard slow.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence

from ..brokers.base import DeadLetter, QueueStats
from .schema import COPY, distinct_queues_sql

_QUEUES = (
    distinct_queues_sql("celeriac_messages", "state = 0"),
    distinct_queues_sql("celeriac_messages", "state = 1"),
    "SELECT DISTINCT queue FROM celeriac_messages WHERE state = 2",  # few: bounded by prefetch
    distinct_queues_sql("celeriac_dead"),
)
_DEAD_IDS = "queue = :queue AND (:ids IS NULL OR id IN (SELECT value FROM json_each(:ids)))"


def queues(conn: sqlite3.Connection) -> list[str]:
    """Every queue with a waiting, delayed, held or dead message."""
    return sorted({row[0] for sql in _QUEUES for row in conn.execute(sql)})


def stats(conn: sqlite3.Connection, queue: str) -> QueueStats:
    """Waiting per priority, delayed, in flight, dead, and how long the oldest has waited."""
    found = QueueStats(queue)
    oldest_seq = None
    rows = conn.execute(
        "SELECT priority, count(*), min(seq) FROM celeriac_messages"
        " WHERE state = 0 AND queue = ? GROUP BY priority",
        (queue,),
    )
    for priority, count, first in rows:
        found.waiting[int(priority)] = int(count)
        oldest_seq = first if oldest_seq is None else min(oldest_seq, first)
    if oldest_seq is not None:  # seq is the order messages became ready: the lowest waited most
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


def purge(conn: sqlite3.Connection, queue: str) -> int:
    """Delete the waiting and delayed messages of a queue (held ones finish as they are)."""
    ready = conn.execute(
        "DELETE FROM celeriac_messages WHERE state = 0 AND queue = ?", (queue,)
    ).rowcount
    delayed = conn.execute(
        "DELETE FROM celeriac_messages WHERE state = 1 AND queue = ?", (queue,)
    ).rowcount
    return int(ready + delayed)


def dead_letters(conn: sqlite3.Connection, queue: str, limit: int) -> list[DeadLetter]:
    """The oldest dead letters of a queue."""
    rows = conn.execute(
        "SELECT id, queue, priority, body, reason, deliveries, dead_at FROM celeriac_dead"
        " WHERE queue = ? ORDER BY seq LIMIT ?",
        (queue, limit),
    )
    return [
        DeadLetter(id_, queue_, priority, bytes(body), reason, deliveries, dead_at)
        for id_, queue_, priority, body, reason, deliveries, dead_at in rows
    ]


def _ids_param(queue: str, ids: Sequence[str] | None) -> dict[str, str | None]:
    return {"queue": queue, "ids": None if ids is None else json.dumps(list(ids))}


def requeue_dead(conn: sqlite3.Connection, queue: str, ids: Sequence[str] | None) -> int:
    """Dead letters (all, or those ids) back to ready, their delivery counts reset."""
    params = {**_ids_param(queue, ids), "now": time.time()}
    moved = conn.execute(
        f"INSERT INTO celeriac_messages ({COPY}, state, ready_at, deliveries)"
        f" SELECT {COPY}, 0, :now, 0 FROM celeriac_dead WHERE {_DEAD_IDS} ORDER BY seq",
        params,
    ).rowcount
    conn.execute(f"DELETE FROM celeriac_dead WHERE {_DEAD_IDS}", params)
    return int(moved)


def purge_dead(conn: sqlite3.Connection, queue: str, ids: Sequence[str] | None) -> int:
    """Delete dead letters (all, or those ids)."""
    return int(
        conn.execute(
            f"DELETE FROM celeriac_dead WHERE {_DEAD_IDS}", _ids_param(queue, ids)
        ).rowcount
    )


def revoke(conn: sqlite3.Connection, ids: Sequence[str], ttl: float) -> None:
    """Remember task ids as revoked for ``ttl`` seconds; forget those whose time is up."""
    now = time.time()
    conn.executemany(
        "INSERT OR REPLACE INTO celeriac_revoked (task_id, expires_at) VALUES (?, ?)",
        [(task_id, now + ttl) for task_id in ids],
    )
    conn.execute("DELETE FROM celeriac_revoked WHERE expires_at <= ?", (now,))


def revoked(conn: sqlite3.Connection, ids: Sequence[str]) -> set[str]:
    """Which of these task ids are revoked now."""
    rows = conn.execute(
        "SELECT task_id FROM celeriac_revoked"
        " WHERE task_id IN (SELECT value FROM json_each(?)) AND +expires_at > ?",  # + : by id
        (json.dumps(list(ids)), time.time()),
    )
    return {row[0] for row in rows}

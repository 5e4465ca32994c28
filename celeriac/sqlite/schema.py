"""The SQLite broker's tables, and the statements that depend on how many queues a fetch names.

One table holds every message, whatever its state; partial indexes make each
state its own small, ordered structure:

* ``ready`` (state 0): ``(queue, priority DESC, seq)``, so the next message of a
  queue is the first index entry: highest priority first, then FIFO. ``seq``
  (AUTOINCREMENT, never reused) is the order messages became ready, and doubles
  as the delivery tag.
* ``delayed`` (state 1): ``(queue, eta)``, so promoting due messages and
  finding the next due time are range reads.
* ``held`` (state 2): by ``owner`` (renew, release_all). ``recover`` reads
  every held entry of this index: they are few (bounded by the prefetch of the
  live consumers), and one index less makes every fetch and ack cheaper.

A message that goes back to ready (released, recovered, promoted, requeued) is
written again under a new ``seq``: it takes its place at the back of its
priority, and a tag handed out earlier can never match it, so a late ack from a
consumer that lost its lease is ignored.
"""

from __future__ import annotations

from functools import lru_cache

from .db import Schema

READY, DELAYED, HELD = 0, 1, 2

SCHEMA = Schema(
    component="broker",
    # 2: celeriac_unique; 3: celeriac_limits and celeriac_limit_consumers (every
    # statement is IF NOT EXISTS, so earlier versions upgrade)
    version=3,
    statements=(
        """CREATE TABLE IF NOT EXISTS celeriac_messages (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL,
            queue TEXT NOT NULL,
            priority INTEGER NOT NULL,
            body BLOB NOT NULL,
            state INTEGER NOT NULL,
            eta REAL,
            ready_at REAL,
            owner TEXT,
            lease_until REAL,
            deliveries INTEGER NOT NULL DEFAULT 0
        )""",
        "CREATE INDEX IF NOT EXISTS celeriac_messages_ready"
        " ON celeriac_messages (queue, priority DESC, seq) WHERE state = 0",
        "CREATE INDEX IF NOT EXISTS celeriac_messages_delayed"
        " ON celeriac_messages (queue, eta) WHERE state = 1",
        "CREATE INDEX IF NOT EXISTS celeriac_messages_owner"
        " ON celeriac_messages (owner) WHERE state = 2",
        """CREATE TABLE IF NOT EXISTS celeriac_dead (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL,
            queue TEXT NOT NULL,
            priority INTEGER NOT NULL,
            body BLOB NOT NULL,
            reason TEXT NOT NULL,
            deliveries INTEGER NOT NULL,
            dead_at REAL NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS celeriac_dead_queue ON celeriac_dead (queue, seq)",
        """CREATE TABLE IF NOT EXISTS celeriac_revoked (
            task_id TEXT PRIMARY KEY, expires_at REAL NOT NULL
        ) WITHOUT ROWID""",
        "CREATE INDEX IF NOT EXISTS celeriac_revoked_expiry ON celeriac_revoked (expires_at)",
        """CREATE TABLE IF NOT EXISTS celeriac_rates (
            key TEXT PRIMARY KEY, tat REAL NOT NULL
        ) WITHOUT ROWID""",
        """CREATE TABLE IF NOT EXISTS celeriac_unique (
            key TEXT PRIMARY KEY, task_id TEXT NOT NULL, until REAL NOT NULL
        ) WITHOUT ROWID""",
        """CREATE TABLE IF NOT EXISTS celeriac_limits (
            key TEXT PRIMARY KEY, state BLOB NOT NULL, waiting INTEGER NOT NULL
        ) WITHOUT ROWID""",
        """CREATE TABLE IF NOT EXISTS celeriac_limit_consumers (
            consumer TEXT PRIMARY KEY, until REAL NOT NULL
        ) WITHOUT ROWID""",
        """CREATE TABLE IF NOT EXISTS celeriac_streams (
            pos INTEGER PRIMARY KEY AUTOINCREMENT,
            stream TEXT NOT NULL,
            item BLOB NOT NULL,
            added_at REAL NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS celeriac_streams_stream ON celeriac_streams (stream, pos)",
        """CREATE TABLE IF NOT EXISTS celeriac_flags (
            name TEXT PRIMARY KEY, value TEXT NOT NULL
        ) WITHOUT ROWID""",
    ),
)

# Columns copied when a message is written again under a new seq.
COPY = "id, queue, priority, body"


@lru_cache(maxsize=64)
def take_sql(queues: int) -> str:
    """Lease the best ``?`` ready messages of ``queues`` queues in one statement.

    Each queue contributes its own best few (an ordered index read with a
    LIMIT), so the final sort is over at most ``queues * limit`` rows however
    deep the queues are. Parameters: owner, lease_until, (queue, limit) per
    queue, limit, now.
    """
    per_queue = " UNION ALL ".join(
        "SELECT * FROM (SELECT seq, priority FROM celeriac_messages"
        " WHERE state = 0 AND queue = ? ORDER BY priority DESC, seq LIMIT ?)"
        for _ in range(queues)
    )
    return (
        "UPDATE celeriac_messages SET state = 2, owner = ?, lease_until = ?,"
        " deliveries = deliveries + 1, ready_at = NULL"
        f" WHERE seq IN (SELECT seq FROM ({per_queue}) ORDER BY priority DESC, seq LIMIT ?)"
        " RETURNING seq, id, queue, priority, body, deliveries, coalesce((SELECT expires_at"
        " FROM celeriac_revoked WHERE task_id = celeriac_messages.id), 0) > ?"
    )


@lru_cache(maxsize=64)
def promote_sql(queues: int) -> str:
    """Copy due delayed messages of these queues to ready, oldest eta first.

    Parameters: now (ready_at), the queue names, now (due).
    """
    names = ", ".join("?" * queues)
    return (
        f"INSERT INTO celeriac_messages ({COPY}, state, ready_at, deliveries)"
        f" SELECT {COPY}, 0, ?, deliveries FROM celeriac_messages"
        f" WHERE state = 1 AND queue IN ({names}) AND eta <= ? ORDER BY eta, seq"
    )


@lru_cache(maxsize=64)
def drop_promoted_sql(queues: int) -> str:
    """Delete the delayed originals of what ``promote_sql`` copied. Parameters: queues, now."""
    names = ", ".join("?" * queues)
    return f"DELETE FROM celeriac_messages WHERE state = 1 AND queue IN ({names}) AND eta <= ?"


@lru_cache(maxsize=64)
def probe_sql(queues: int) -> str:
    """Is anything ready, and when is the next delayed message due? Parameters: queues twice.

    The next due time is a one-entry index read per queue (``min`` over an
    ``IN`` list would read every delayed entry).
    """
    names = ", ".join("?" * queues)
    next_due = " UNION ALL ".join(
        "SELECT (SELECT eta FROM celeriac_messages WHERE state = 1 AND queue = ?"
        " ORDER BY eta LIMIT 1) AS eta"
        for _ in range(queues)
    )
    return (
        "SELECT EXISTS (SELECT 1 FROM celeriac_messages"
        f" WHERE state = 0 AND queue IN ({names})),"
        f" (SELECT min(eta) FROM ({next_due}))"
    )


def distinct_queues_sql(table: str, where: str = "") -> str:
    """Every distinct queue of ``table`` rows matching ``where``, one index seek per queue.

    A loose index scan: ``SELECT DISTINCT`` would read every row of a deep queue.
    """
    cond = f"{where} AND " if where else ""
    return (
        "WITH RECURSIVE q(name) AS ("
        f" SELECT (SELECT min(queue) FROM {table}{' WHERE ' + where if where else ''})"
        f" UNION ALL SELECT (SELECT min(queue) FROM {table} WHERE {cond}queue > q.name)"
        " FROM q WHERE q.name IS NOT NULL"
        ") SELECT name FROM q WHERE name IS NOT NULL"
    )

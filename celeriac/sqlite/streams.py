"""The SQLite broker's shared state beyond queues: streams, flags, rate limits, unique keys.

Each is a capability object (:mod:`celeriac.brokers.capabilities`) holding the
broker's :class:`~celeriac.sqlite.db.Database`, so it runs in the same file and
under the same lock as the broker's own calls.

Streams (events, control commands, replies) are rows of one table; a position
is the row's AUTOINCREMENT key, so positions only grow and are never reused,
whichever stream they belong to. Trimming to ``maxlen`` runs once every tenth of
``maxlen`` additions per process, so a stream holds "about" ``maxlen`` items
as the contract allows, without an extra scan per add. Reply streams live
for one command each; ones older than an hour are dropped now and then.
"""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Sequence

from ..backoff import Backoff
from .db import Database

REPLY_PREFIX = "reply:"
REPLY_MAX_AGE = 3600.0
_added_since_trim: dict[str, int] = {}  # stream -> items this process added since its trim
_last_reply_sweep = 0.0
_SWEEP_CHANCE = 0.01  # of a claim also deleting every ended unique-key hold


class SQLiteStreams:
    """Streams in the ``celeriac_streams`` table."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def add(self, stream: str, items: Sequence[bytes], maxlen: int = 100_000) -> None:
        """Append items; trim to about ``maxlen`` now and then."""
        if not items:
            return
        with self._db.write() as conn:
            now = time.time()
            conn.executemany(
                "INSERT INTO celeriac_streams (stream, item, added_at) VALUES (?, ?, ?)",
                [(stream, item, now) for item in items],
            )
            added = _added_since_trim.get(stream, 0) + len(items)
            if added >= max(1, maxlen // 10):
                conn.execute(
                    "DELETE FROM celeriac_streams WHERE stream = :s AND pos <= (SELECT pos FROM"
                    " celeriac_streams WHERE stream = :s ORDER BY pos DESC LIMIT 1 OFFSET :n)",
                    {"s": stream, "n": maxlen},
                )
                added = 0
            _added_since_trim[stream] = added
            if stream.startswith(REPLY_PREFIX):
                _added_since_trim.pop(stream, None)  # one stream per command: do not remember them
                _sweep_replies(conn, now)

    def read(
        self, stream: str, after: str, limit: int = 1000, timeout: float = 0.0
    ) -> list[tuple[str, bytes]]:
        """Items after ``after``, oldest first, waiting up to ``timeout`` for one."""
        try:
            position = int(after)
        except ValueError:
            raise ValueError(f"stream position {after!r} is not one this broker returned") from None
        db = self._db
        deadline = time.monotonic() + timeout
        pauses = Backoff(0.001, cap=0.025)
        while True:
            version = db.version()
            with db.read() as conn:
                rows = conn.execute(
                    "SELECT pos, item FROM celeriac_streams WHERE stream = ? AND pos > ?"
                    " ORDER BY pos LIMIT ?",
                    (stream, position, limit),
                ).fetchall()
            if rows:
                return [(str(pos), bytes(item)) for pos, item in rows]
            while True:  # sleep at least once, so a busy database does not make this spin
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return []
                pauses.sleep(remaining)
                if db.version() != version:
                    break

    def last(self, stream: str) -> str:
        """The newest position of a stream, "0" when it is empty."""
        with self._db.read() as conn:
            (last,) = conn.execute(
                "SELECT max(pos) FROM celeriac_streams WHERE stream = ?", (stream,)
            ).fetchone()
        return "0" if last is None else str(last)


def _sweep_replies(conn: sqlite3.Connection, now: float) -> None:
    global _last_reply_sweep
    if now - _last_reply_sweep < 60.0:
        return
    _last_reply_sweep = now
    conn.execute(
        "DELETE FROM celeriac_streams WHERE stream >= ? AND stream < ? AND added_at < ?",
        (REPLY_PREFIX, REPLY_PREFIX[:-1] + chr(ord(REPLY_PREFIX[-1]) + 1), now - REPLY_MAX_AGE),
    )


class SQLiteFlags:
    """Flags in the ``celeriac_flags`` table."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def set(self, name: str, value: str | None) -> None:
        """Set a flag, or clear it with None."""
        with self._db.write() as conn:
            if value is None:
                conn.execute("DELETE FROM celeriac_flags WHERE name = ?", (name,))
            else:
                conn.execute(
                    "INSERT OR REPLACE INTO celeriac_flags (name, value) VALUES (?, ?)",
                    (name, value),
                )

    def read(self, prefix: str = "") -> dict[str, str]:
        """Every flag whose name starts with ``prefix``."""
        with self._db.read() as conn:
            # a range of the primary key, not a scan: the beat keeps a row per entry here
            rows = conn.execute(
                "SELECT name, value FROM celeriac_flags WHERE name >= ? AND name < ?",
                (prefix, prefix + "\U0010ffff"),
            )
            return dict(rows.fetchall())


class SQLiteRates:
    """Rate-limit slots in the ``celeriac_rates`` table, one write transaction each."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def reserve(self, key: str, interval: float, burst: int = 1) -> float:
        """GCRA with reservation (see :class:`~celeriac.brokers.capabilities.RateLimits`)."""
        with self._db.write() as conn:
            now = time.time()
            row = conn.execute("SELECT tat FROM celeriac_rates WHERE key = ?", (key,)).fetchone()
            tat = max(row[0], now) if row else now
            run_at = max(now, tat - (burst - 1) * interval)
            conn.execute(
                "INSERT OR REPLACE INTO celeriac_rates (key, tat) VALUES (?, ?)",
                (key, tat + interval),
            )
        return run_at - now


class SQLiteUniques:
    """Unique-task keys in the ``celeriac_unique`` table, one write transaction each."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def claim(self, key: str, task_id: str, ttl: float) -> str:
        """The key's holder, ``task_id`` when this call took it (see ``UniqueKeys``)."""
        with self._db.write() as conn:
            now = time.time()
            row = conn.execute(
                "SELECT task_id FROM celeriac_unique WHERE key = ? AND until > ?", (key, now)
            ).fetchone()
            if row is not None:
                return str(row[0])
            conn.execute(
                "INSERT OR REPLACE INTO celeriac_unique (key, task_id, until) VALUES (?, ?, ?)",
                (key, task_id, now + ttl),
            )
            if random.random() < _SWEEP_CHANCE:  # ended holds go now and then, not every call
                conn.execute("DELETE FROM celeriac_unique WHERE until <= ?", (now,))
        return task_id

    def release(self, key: str, task_id: str) -> None:
        """Free the key when ``task_id`` holds it."""
        with self._db.write() as conn:
            conn.execute(
                "DELETE FROM celeriac_unique WHERE key = ? AND task_id = ?", (key, task_id)
            )


__all__ = ["SQLiteFlags", "SQLiteRates", "SQLiteStreams", "SQLiteUniques"]

"""Concurrency-limit state in the SQLite file (:mod:`celeriac.brokers.concurrency`).

``celeriac_limits`` keeps each key's state (its holds and parked messages) in one
row, changed in one write transaction; ``waiting`` marks the rows with parked
messages, which the heartbeat's sweep reads. ``celeriac_limit_consumers`` keeps
until when each consumer that holds slots lives, renewed by its heartbeat.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence
from typing import TypeVar

from ..brokers.concurrency import needs_sweep
from .db import Database

T = TypeVar("T")
_FORGET_AFTER = 86_400.0  # a consumer silent this long is forgotten


class SQLiteConcurrency:
    """The :class:`~celeriac.brokers.concurrency.ConcurrencyStore` of the SQLite broker."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def change(self, key: str, update: Callable[[bytes | None], tuple[T, bytes | None]]) -> T:
        with self._db.write() as conn:
            row = conn.execute("SELECT state FROM celeriac_limits WHERE key = ?", (key,)).fetchone()
            out, new = update(None if row is None else bytes(row[0]))
            if new is None:
                if row is not None:
                    conn.execute("DELETE FROM celeriac_limits WHERE key = ?", (key,))
            elif row is None or bytes(row[0]) != new:
                conn.execute(
                    "INSERT OR REPLACE INTO celeriac_limits (key, state, waiting) VALUES (?, ?, ?)",
                    (key, new, int(needs_sweep(new))),
                )
        return out

    def renew(self, consumers: Sequence[str], until: float) -> None:
        with self._db.write() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO celeriac_limit_consumers (consumer, until) VALUES (?, ?)",
                [(c, until) for c in consumers],
            )
            conn.execute(
                "DELETE FROM celeriac_limit_consumers WHERE until < ?",
                (time.time() - _FORGET_AFTER,),
            )

    def deadlines(self, consumers: Collection[str]) -> dict[str, float]:
        wanted = list(consumers)
        if not wanted:
            return {}
        marks = ",".join("?" * len(wanted))
        with self._db.read() as conn:  # inside change(): its transaction, same connection
            rows = conn.execute(
                f"SELECT consumer, until FROM celeriac_limit_consumers WHERE consumer IN ({marks})",
                wanted,
            ).fetchall()
        return {str(c): float(u) for c, u in rows}

    def waiting_keys(self) -> list[str]:
        with self._db.read() as conn:
            rows = conn.execute("SELECT key FROM celeriac_limits WHERE waiting = 1").fetchall()
        return [str(k) for (k,) in rows]


__all__ = ["SQLiteConcurrency"]

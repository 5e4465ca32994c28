"""The beat's state in the SQLite file: rows of ``celeriac_flags``, written with the messages.

``beat:lease`` holds ``"<until>:<holder>"``; ``beat:last:<entry>`` the entry's
last due time in Unix milliseconds. Recording a run and inserting its message
happen in one write transaction, so a run is either sent and recorded or neither.
Times are this machine's clock, the one every process on the file shares.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence

from ..brokers.capabilities import BeatRun, Lease
from ..message import Envelope
from .db import Database

LEASE = "beat:lease"
LAST = "beat:last:"
_UPSERT = "INSERT OR REPLACE INTO celeriac_flags (name, value) VALUES (?, ?)"
_GET = "SELECT value FROM celeriac_flags WHERE name = ?"

Insert = Callable[[sqlite3.Connection, Sequence[Envelope], float], None]


def _lease(raw: str | None) -> Lease | None:
    if raw is None:
        return None
    until, _, holder = raw.partition(":")
    return Lease(holder, float(until))


class SQLiteBeat:
    """The broker's ``beat`` capability on its SQLite file."""

    def __init__(self, db: Database, insert: Insert) -> None:
        self._db = db
        self._insert = insert

    def hold(self, holder: str, seconds: float) -> Lease:
        now = time.time()
        with self._db.write() as conn:
            lease = _lease(_value(conn, LEASE))
            if lease is None or lease.until <= now or lease.holder == holder:
                lease = Lease(holder, now + seconds)
                conn.execute(_UPSERT, (LEASE, f"{lease.until!r}:{holder}"))
            return lease

    def lease(self) -> Lease | None:
        with self._db.read() as conn:
            return _lease(_value(conn, LEASE))

    def release(self, holder: str) -> None:
        with self._db.write() as conn:
            lease = _lease(_value(conn, LEASE))
            if lease is not None and lease.holder == holder:
                until = min(lease.until, time.time())
                conn.execute(_UPSERT, (LEASE, f"{until!r}:"))  # no holder: ended

    def record(self, runs: Sequence[BeatRun]) -> list[bool]:
        now = time.time()
        taken: list[bool] = []
        with self._db.write() as conn:
            sends: list[Envelope] = []
            for run in runs:
                name = LAST + run.entry
                last = _value(conn, name)
                fresh = last is None or run.due_ms > int(last)
                if fresh:
                    conn.execute(_UPSERT, (name, str(run.due_ms)))
                    if run.envelope is not None:
                        sends.append(run.envelope)
                taken.append(fresh)
            if sends:
                self._insert(conn, sends, now)
        return taken

    def last_runs(self) -> dict[str, int]:
        with self._db.read() as conn:
            rows = conn.execute(
                "SELECT name, value FROM celeriac_flags WHERE name >= ? AND name < ?",
                (LAST, LAST + "\U0010ffff"),
            ).fetchall()
        return {name[len(LAST) :]: int(value) for name, value in rows}

    def forget(self, entry: str) -> None:
        with self._db.write() as conn:
            conn.execute("DELETE FROM celeriac_flags WHERE name = ?", (LAST + entry,))


def _value(conn: sqlite3.Connection, name: str) -> str | None:
    row = conn.execute(_GET, (name,)).fetchone()
    return None if row is None else str(row[0])

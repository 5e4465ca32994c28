"""The embedded broker: one SQLite file shared by every process on this machine.

``sqlite:///relative/path.sqlite3`` (relative to the working directory) or
``sqlite:////absolute/path.sqlite3``. It is celeriac's default when no broker is
configured, and it keeps the whole delivery contract: a fetch takes messages and
records their holder and lease in one transaction, so a process killed at any
point loses nothing. The tables and their indexes are described in
:mod:`celeriac.sqlite.schema`.

Waiting for work polls, but cheaply: ``PRAGMA data_version`` tells whether
anyone committed since the last look without reading a table, the poll interval
backs off from 1 ms to 25 ms, and a consumer wakes early for the next delayed
message that falls due.

The broker is composed of parts that share its :class:`~celeriac.sqlite.db.Database`:
queue management (:class:`~celeriac.sqlite.admin.SQLiteAdmin`) and its
capabilities, streams, flags and rate limits (:mod:`celeriac.sqlite.streams`) and
revocations (:class:`~celeriac.sqlite.admin.SQLiteRevocations`). ``complete``
stores a task's result and acks it in one transaction when the backend is a
:class:`~celeriac.sqlite.backend.SQLiteBackend` on the same file.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Sequence
from typing import Any

from ..backends.base import Backend, TaskMeta
from ..backoff import Backoff
from ..brokers.base import (
    DEFAULT_LEASE_SECONDS,
    DEFAULT_MAX_DELIVERIES,
    AdminBroker,
)
from ..brokers.concurrency import Concurrency
from ..brokers.wake import Wake
from ..exceptions import BrokerError, BrokerUnavailable, ConfigurationError
from ..message import Delivery, Envelope
from ..text import counted
from .admin import SQLiteAdmin, SQLiteRevocations
from .backend import SQLiteBackend
from .beat import SQLiteBeat
from .browse import SQLiteBrowser
from .db import DEFAULT_BUSY_TIMEOUT, Database, Errors, path_from_url
from .limits import SQLiteConcurrency
from .schema import (
    COPY,
    SCHEMA,
    drop_promoted_sql,
    probe_sql,
    promote_sql,
    take_sql,
)
from .streams import SQLiteFlags, SQLiteRates, SQLiteStreams, SQLiteUniques

logger = logging.getLogger("celeriac.sqlite")

ERRORS = Errors("broker", BrokerError, BrokerUnavailable)
_INSERT = (
    "INSERT INTO celeriac_messages (id, queue, priority, body, state, eta, ready_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)
# Which held messages a give-back moves (``FROM {rows}``), with named parameters.
_BY_TAGS = "celeriac_messages WHERE state = 2 AND seq IN (SELECT value FROM json_each(:seqs))"
_BY_OWNER = "celeriac_messages WHERE state = 2 AND owner = :owner"
# Expired leases: a scan of the held entries of the owner index, never of the table.
_EXPIRED = (
    "celeriac_messages INDEXED BY celeriac_messages_owner WHERE state = 2 AND lease_until < :now"
)


def insert_messages(conn: sqlite3.Connection, envelopes: Sequence[Envelope], now: float) -> None:
    """Store messages within the caller's write transaction: ready, or delayed until eta."""
    rows: list[tuple[str, str, int, bytes, int, float | None, float | None]] = []
    for env in envelopes:
        if env.eta is not None and env.eta > now:
            rows.append((env.id, env.queue, env.priority, env.body, 1, env.eta, None))
        else:
            rows.append((env.id, env.queue, env.priority, env.body, 0, None, now))
    conn.executemany(_INSERT, rows)


class SQLiteBroker(AdminBroker):
    """A broker in one SQLite file; one object per thread or process (see :class:`Database`)."""

    poll_interval = 0.001  # first pause when nothing is ready; doubles up to the max
    max_poll_interval = 0.025
    fork_sensitive = True  # SQLite's process-wide mutexes (celeriac.events.forksafe)

    def __init__(
        self,
        url: str = "sqlite:///celeriac.sqlite3",
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        max_deliveries: int = DEFAULT_MAX_DELIVERIES,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
        **options: Any,
    ) -> None:
        if lease_seconds <= 0:
            raise ConfigurationError(f"lease_seconds must be > 0, not {lease_seconds!r}")
        if max_deliveries < 1:
            raise ConfigurationError(f"max_deliveries must be >= 1, not {max_deliveries!r}")
        if options:  # options meant for other brokers do no harm here
            logger.warning("the SQLite broker ignores transport options %s", sorted(options))
        self.url = url
        self.lease_seconds = float(lease_seconds)
        self.max_deliveries = int(max_deliveries)
        self._db = db = Database(path_from_url(url), SCHEMA, ERRORS, float(busy_timeout))
        self._admin = SQLiteAdmin(db)
        self.streams = SQLiteStreams(db)
        self.flags = SQLiteFlags(db)
        self.rates = SQLiteRates(db)
        self.revocations = SQLiteRevocations(db)
        self.uniques = SQLiteUniques(db)
        self.concurrency = Concurrency(SQLiteConcurrency(db), self.lease_seconds)
        self.beat = SQLiteBeat(db, insert_messages)
        self.browse = SQLiteBrowser(db)

    @property
    def path(self) -> str:
        """The database file."""
        return self._db.path

    # -- producing ---------------------------------------------------------
    def publish(self, envelopes: Sequence[Envelope]) -> None:
        if envelopes:
            with self._db.write() as conn:
                insert_messages(conn, envelopes, time.time())

    # -- consuming ---------------------------------------------------------
    def fetch(
        self,
        queues: Sequence[str],
        consumer: str,
        limit: int,
        timeout: float,
        wake: Wake | None = None,
    ) -> list[Delivery]:
        if limit < 1:
            raise ConfigurationError(f"fetch limit must be >= 1, not {limit!r}")
        names = list(dict.fromkeys(queues))  # a queue named twice would take fewer
        if not names:  # a consumer that wants nothing now (every queue paused)
            return []
        deadline = time.monotonic() + timeout
        while True:
            taken = self._take(names, consumer, limit)
            if taken or time.monotonic() >= deadline:
                return taken
            # Read before the wait's first probe: what was committed earlier, the probe
            # sees; anything committed later changes the version and wakes the wait.
            version = self._db.version()
            if not self._wait_for_work(names, version, deadline, wake):
                return []

    def _take(self, names: list[str], consumer: str, limit: int) -> list[Delivery]:
        now = time.time()
        params: list[Any] = [consumer, now + self.lease_seconds]
        for name in names:
            params += (name, limit)
        params += (limit, now)
        with self._db.write() as conn:
            if conn.execute(promote_sql(len(names)), (now, *names, now)).rowcount:
                conn.execute(drop_promoted_sql(len(names)), (*names, now))
            rows = conn.execute(take_sql(len(names)), params).fetchall()
        rows.sort(key=lambda row: (-row[3], row[0]))  # RETURNING has no order of its own
        return [
            Delivery(id_, queue, priority, bytes(body), str(seq), deliveries, bool(revoked))
            for seq, id_, queue, priority, body, deliveries, revoked in rows
        ]

    def _probe(self, names: list[str]) -> tuple[bool, float | None]:
        """Without the write lock: is anything ready, and when is the next delayed one due?"""
        with self._db.read() as conn:
            ready, next_due = conn.execute(probe_sql(len(names)), (*names, *names)).fetchone()
        return bool(ready), next_due

    def _wait_for_work(
        self, names: list[str], version: tuple[int, int], deadline: float, wake: Wake | None
    ) -> bool:
        """Sleep until something in ``names`` may be ready (True), or the deadline or
        ``wake`` (False)."""
        pauses = Backoff(self.poll_interval, cap=self.max_poll_interval)
        ready, next_due = self._probe(names)
        while not ready:
            now = time.time()
            if next_due is not None and next_due <= now:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            pause = min(pauses.next(), remaining if next_due is None else next_due - now)
            if wake is None:
                time.sleep(max(0.0, pause))
            elif wake.wait(pause):
                return False
            current = self._db.version()
            if current != version:  # someone committed: look again
                version = current
                ready, next_due = self._probe(names)
        return True

    def ack(self, consumer: str, tags: Sequence[str]) -> None:
        seqs = _seqs(tags)
        if seqs:
            with self._db.write() as conn:
                conn.executemany(
                    "DELETE FROM celeriac_messages WHERE seq = ? AND state = 2",
                    [(seq,) for seq in seqs],
                )

    def complete(
        self,
        consumer: str,
        tags: Sequence[str],
        backend: Backend | None,
        metas: Sequence[TaskMeta],
    ) -> None:
        """Store results and ack in one transaction when the backend is this same file."""
        if not metas or not isinstance(backend, SQLiteBackend) or not backend.shares(self.path):
            return super().complete(consumer, tags, backend, metas)
        rows = backend.encode(metas)  # before the lock: keep the transaction short
        seqs = _seqs(tags)
        with self._db.write() as conn:
            backend.store_rows(conn, rows)
            conn.executemany(
                "DELETE FROM celeriac_messages WHERE seq = ? AND state = 2", [(s,) for s in seqs]
            )
        return None

    def release(
        self, consumer: str, tags: Sequence[str], delay: float = 0.0, count: bool = False
    ) -> None:
        seqs = _seqs(tags)
        if seqs:
            with self._db.write() as conn:
                self._give_back(
                    conn, _BY_TAGS, {"seqs": json.dumps(seqs)}, count, delay, "given back"
                )

    def release_all(self, consumer: str) -> int:
        with self._db.write() as conn:
            return self._give_back(
                conn, _BY_OWNER, {"owner": consumer}, True, 0.0, "its consumer died"
            )

    def renew(self, consumers: Sequence[str]) -> None:
        if consumers:
            with self._db.write() as conn:
                conn.execute(
                    "UPDATE celeriac_messages SET lease_until = ?"
                    " WHERE state = 2 AND owner IN (SELECT value FROM json_each(?))",
                    (time.time() + self.lease_seconds, json.dumps(list(consumers))),
                )

    def recover(self) -> int:
        now = time.time()
        with self._db.read() as conn:  # every worker runs this often: look before locking
            expired = conn.execute(
                f"SELECT EXISTS (SELECT 1 FROM {_EXPIRED})", {"now": now}
            ).fetchone()[0]
        if not expired:
            return 0
        with self._db.write() as conn:
            return self._give_back(conn, _EXPIRED, {"now": now}, True, 0.0, "lease expired")

    def _give_back(
        self, conn: Any, rows: str, params: dict[str, Any], count: bool, delay: float, why: str
    ) -> int:
        """Move held messages back to ready (or delayed), or to dead letters when used up.

        With ``count``, the delivery just ended counts towards ``max_deliveries``;
        a message that has had them all goes to its queue's dead letters.
        """
        now = time.time()
        params = {
            **params,
            "now": now,
            "max": self.max_deliveries,
            "count": int(count),
            "why": why,
            "state": 1 if delay > 0 else 0,
            "eta": now + delay if delay > 0 else None,
            "ready_at": None if delay > 0 else now,
        }
        buried = conn.execute(
            "INSERT INTO celeriac_dead (id, queue, priority, body, reason, deliveries, dead_at)"
            " SELECT id, queue, priority, body, printf('%s after %d deliveries"
            " (max_deliveries=%d)', :why, deliveries, :max), deliveries, :now"
            f" FROM {rows} AND :count AND deliveries >= :max"
            " ORDER BY seq",
            params,
        ).rowcount
        conn.execute(
            f"INSERT INTO celeriac_messages ({COPY}, state, eta, ready_at, deliveries)"
            f" SELECT {COPY}, :state, :eta, :ready_at,"
            " CASE WHEN :count THEN deliveries ELSE max(deliveries - 1, 0) END"
            f" FROM {rows} AND NOT (:count AND deliveries >= :max)"
            " ORDER BY seq",
            params,
        )
        moved: int = conn.execute(f"DELETE FROM {rows}", params).rowcount
        if buried:
            logger.warning(
                "%s dead-lettered: %s after %d deliveries",
                counted(buried, "message"),
                why,
                self.max_deliveries,
            )
        return moved

    def dead_letter(self, consumer: str, tag: str, reason: str) -> None:
        seqs = _seqs([tag])
        with self._db.write() as conn:
            conn.execute(
                "INSERT INTO celeriac_dead (id, queue, priority, body, reason, deliveries, dead_at)"
                " SELECT id, queue, priority, body, ?, deliveries, ? FROM celeriac_messages"
                " WHERE seq = ? AND state = 2",
                (reason, time.time(), seqs[0]),
            )
            conn.execute("DELETE FROM celeriac_messages WHERE seq = ? AND state = 2", (seqs[0],))

    def close(self) -> None:
        self._db.close()


def _seqs(tags: Sequence[str]) -> list[int]:
    """Delivery tags back to sequence numbers; a tag this broker did not make is an error."""
    try:
        return [int(tag) for tag in tags]
    except (TypeError, ValueError):
        raise BrokerError(
            f"delivery tags {list(tags)!r} were not made by the SQLite broker: "
            "ack and release the tags fetch() returned"
        ) from None

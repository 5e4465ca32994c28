"""Results in a SQL database through SQLAlchemy 2: PostgreSQL, MySQL/MariaDB, SQLite.

URLs are Celery's: ``db+`` and an SQLAlchemy URL (``db+postgresql://user@host/db``,
``db+postgresql+psycopg://...``, ``db+mysql+pymysql://...``, ``db+sqlite:///results.sqlite3``).
Install ``celeriac[sql]`` and a driver. Tables and settings: :mod:`.sql_schema`
and docs/results.md.

* ``store`` writes a batch of records in one transaction and one round trip: an
  upsert (``ON CONFLICT`` on PostgreSQL and SQLite, ``ON DUPLICATE KEY UPDATE`` on
  MySQL) executed with every row at once (one multi-row statement with pymysql,
  one pipeline with psycopg).
* The chord join locks the chord's counter row (created by the first part), adds
  the part to a table keyed by (chord, index) so a redelivered part counts once,
  and counts it in the locked row: exactly one call sees the last part arrive.
* ``wait`` on PostgreSQL with psycopg 3 listens for ``NOTIFY`` from the
  transaction that stores the record (:mod:`.sql_notify`); elsewhere it polls,
  starting at 1 ms and backing off to ``max_poll_interval``.
* Every row carries ``expires_at`` (indexed). Reads ignore expired rows, and
  writers delete them now and then, a bounded batch at a time (:mod:`.sql_expiry`):
  no cleanup task to schedule.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from ..backends.base import DEFAULT_RESULT_EXPIRES, Backend, TaskMeta
from ..backoff import exponential
from ..exceptions import BackendError, TimeoutError
from ..serialization import Codec
from ..urls import redact
from .expiry import Sweeper
from .notify import Listener, can_listen, channel_name, notify_statement
from .rows import RowCodec, chunks, is_ready, is_transient, utcnow
from .schema import (
    DEFAULT_TABLE_PREFIX,
    TableNames,
    Tables,
    create_engine,
    engine_url,
    sa,
)
from .statements import insert_new, insert_or_lock, upsert

if TYPE_CHECKING:
    from ..config import Settings

logger = logging.getLogger("celeriac.sql.backend")
T = TypeVar("T")

RETRIES = 5  # attempts of a transaction that hit a deadlock or lock timeout
RECHECK_SECONDS = 5.0  # a listening waiter reads the record again this often anyway
_created: set[tuple[str, str]] = set()  # (engine URL, tables) this process made sure exist


class SQLBackend(Backend):
    """A result store in a SQL database; one object per thread or process."""

    max_poll_interval = 0.1  # where the database cannot notify: each poll is a query

    def __init__(
        self,
        codec: Codec,
        url: str,
        expires: float = DEFAULT_RESULT_EXPIRES,
        *,
        table_prefix: str = DEFAULT_TABLE_PREFIX,
        table_names: dict[str, str] | None = None,
        table_schemas: dict[str, str] | None = None,
        engine_options: dict[str, Any] | None = None,
        create_tables_at_setup: bool = True,
        short_lived_sessions: bool = False,
    ) -> None:
        super().__init__(codec)
        self.url = url
        self.expires = float(expires)
        self.tables = Tables(TableNames.build(table_prefix, table_names, table_schemas))
        self._engine = create_engine(
            engine_url(url), dict(engine_options or {}), short_lived_sessions
        )
        self._dialect = dialect = self._engine.dialect.name
        # Statements built once, so SQLAlchemy compiles each once.
        self._upsert_tasks = upsert(dialect, self.tables.task)
        self._upsert_group = upsert(dialect, self.tables.group)
        self._open_chord = insert_or_lock(dialect, self.tables.chord, "done")
        self._add_part = insert_new(dialect, self.tables.chord_parts)
        self._rows = RowCodec(codec)
        self._tables_ready = False
        self._created_key = (
            self._engine.url.render_as_string(),
            repr(sorted(table.fullname for table in self.tables.all)),
        )
        self._listens = can_listen(self._engine)
        self._channel = channel_name(self.tables.task)
        self._listener: Listener | None = None
        self._pid = os.getpid()
        self._inherited: list[Any] = []  # a parent's connections, kept from being closed
        self._sweeper = Sweeper(self.tables, self._transaction, self._reading)
        if create_tables_at_setup:
            try:
                self._ensure_tables()
            except BackendError as exc:  # an outage at start is not fatal: first use retries
                logger.warning("%s; the tables will be created on first use", exc)

    @classmethod
    def options_from(cls, conf: Settings) -> dict[str, Any]:
        """Keyword arguments from an app's ``database_*`` settings."""
        return {
            "table_prefix": conf.database_table_prefix,
            "table_names": conf.database_table_names,
            "table_schemas": conf.database_table_schemas,
            "engine_options": conf.database_engine_options,
            "create_tables_at_setup": conf.database_create_tables_at_setup,
            "short_lived_sessions": conf.database_short_lived_sessions,
        }

    @property
    def engine(self) -> sa.Engine:
        """The SQLAlchemy engine, owned by this backend (``close`` disposes of it)."""
        return self._engine

    # -- plumbing --------------------------------------------------------------
    def _error(self, exc: Exception) -> BackendError:
        reason = getattr(exc, "orig", None) or exc
        return BackendError(f"SQL result backend {redact(self.url)}: {reason}")

    def _forked(self) -> None:
        """In a child process, leave the parent's connections to the parent."""
        if self._pid == os.getpid():
            return
        self._pid = os.getpid()
        # close=False: closing would end the parent's sessions on the shared sockets
        self._engine.dispose(close=False)
        if self._listener is not None:
            self._inherited.append(self._listener)
            self._listener = None

    def _ensure_tables(self) -> None:
        self._forked()
        if self._tables_ready:
            return
        if self._created_key not in _created:
            try:
                self.tables.create(self._engine)
            except sa.exc.SQLAlchemyError as exc:
                raise self._error(exc) from exc
            _created.add(self._created_key)
        self._tables_ready = True

    def _transaction(self, work: Callable[[sa.Connection], T]) -> T:
        """Run ``work`` in a transaction, again after a deadlock (it was rolled back)."""
        self._ensure_tables()
        for attempt in range(RETRIES):
            try:
                with self._engine.begin() as conn:
                    return work(conn)
            except sa.exc.DBAPIError as exc:
                if attempt == RETRIES - 1 or not is_transient(exc):
                    raise self._error(exc) from exc
                time.sleep(exponential(attempt, first=0.01))
            except sa.exc.SQLAlchemyError as exc:
                raise self._error(exc) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    @contextmanager
    def _reading(self) -> Iterator[sa.Connection]:
        self._ensure_tables()
        try:
            with self._engine.connect() as conn:
                yield conn
        except sa.exc.SQLAlchemyError as exc:
            raise self._error(exc) from exc

    def _expires_at(self) -> datetime:
        return utcnow() + timedelta(seconds=self.expires)

    # -- records ---------------------------------------------------------------
    def store(self, metas: Sequence[TaskMeta]) -> None:
        if not metas:
            return
        rows = self._rows.rows(metas, self._expires_at())
        ready = [row["task_id"] for row in rows if is_ready(row)]

        def write(conn: sa.Connection) -> None:
            for chunk in chunks(rows):
                conn.execute(self._upsert_tasks, chunk)
            if ready and self._dialect == "postgresql":
                conn.execute(notify_statement(), {"channel": self._channel, "ids": ready})

        self._transaction(write)
        self._sweeper.wrote(len(rows))

    def get_many(self, task_ids: Sequence[str]) -> dict[str, TaskMeta]:
        table, found = self.tables.task, {}
        now = utcnow()
        with self._reading() as conn:
            for chunk in chunks(list(dict.fromkeys(task_ids))):
                query = sa.select(table).where(
                    table.c.task_id.in_(chunk), table.c.expires_at >= now
                )
                for row in conn.execute(query):
                    found[row.task_id] = self._rows.meta(row)
        return found

    def forget(self, task_ids: Sequence[str]) -> None:
        if not task_ids:
            return
        table = self.tables.task

        def delete(conn: sa.Connection) -> None:
            for chunk in chunks(list(task_ids)):
                conn.execute(sa.delete(table).where(table.c.task_id.in_(chunk)))

        self._transaction(delete)

    def wait(self, task_id: str, timeout: float | None = None) -> TaskMeta:
        """Block until the task is ready: told by NOTIFY on PostgreSQL, by polling elsewhere."""
        if not self._listens:
            return super().wait(task_id, timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            listener = self._listening()  # listening before the read: no wake-up is missed
            meta = self.get(task_id)
            if meta.ready:
                return meta
            pause = RECHECK_SECONDS
            if deadline is not None:
                pause = min(pause, deadline - time.monotonic())
                if pause <= 0:
                    raise TimeoutError(f"task {task_id} not ready after {timeout}s")
            if listener is None:
                time.sleep(min(pause, 0.5))  # listening failed: poll until it works again
                continue
            try:
                listener.heard(task_id, pause)
            except Exception:
                logger.warning("SQL result backend: LISTEN connection lost", exc_info=True)
                self._stop_listening()

    def _listening(self) -> Listener | None:
        self._forked()
        if self._listener is None:
            try:
                self._listener = Listener(self._engine, self._channel)
            except Exception:
                logger.warning("SQL result backend: cannot LISTEN, polling", exc_info=True)
        return self._listener

    def _stop_listening(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    # -- groups and chords -----------------------------------------------------
    def save_group(self, group_id: str, task_ids: Sequence[str]) -> None:
        row = {
            "group_id": group_id,
            "task_ids": json.dumps(list(task_ids)),
            "date_done": utcnow(),
            "expires_at": self._expires_at(),
        }
        self._transaction(lambda conn: conn.execute(self._upsert_group, row))
        self._sweeper.wrote(1)

    def get_group(self, group_id: str) -> list[str] | None:
        table = self.tables.group
        query = sa.select(table.c.task_ids).where(
            table.c.group_id == group_id, table.c.expires_at >= utcnow()
        )
        with self._reading() as conn:
            members = conn.execute(query).scalar()
        return None if members is None else list(json.loads(members))

    def chord_part_done(self, group_id: str, index: int, size: int) -> bool:
        chord = self.tables.chord
        new_chord = {"group_id": group_id, "done": 0, "fired": False}
        this_chord = chord.c.group_id == group_id

        def join(conn: sa.Connection) -> bool:
            # Every call for this chord queues on the lock of its row, taken first.
            row = {**new_chord, "expires_at": self._expires_at()}
            conn.execute(self._open_chord, row)
            part = {"group_id": group_id, "part": index}
            if conn.execute(self._add_part, part).rowcount != 1:
                return False  # a redelivered part: it was counted the first time
            conn.execute(sa.update(chord).where(this_chord).values(done=chord.c.done + 1))
            done, fired = conn.execute(
                sa.select(chord.c.done, chord.c.fired).where(this_chord)
            ).one()
            if fired or done < size:
                return False
            conn.execute(sa.update(chord).where(this_chord).values(fired=True))
            return True

        completed = self._transaction(join)
        self._sweeper.wrote(1)
        return completed

    def sweep(self) -> int:
        """Delete expired rows now (writes also do it now and then); returns how many."""
        return self._sweeper.sweep()

    def drop_tables(self) -> None:
        """Drop this backend's tables and every record in them."""
        try:
            self.tables.drop(self._engine)
        except sa.exc.SQLAlchemyError as exc:
            raise self._error(exc) from exc
        _created.discard(self._created_key)
        self._tables_ready = False

    def close(self) -> None:
        self._forked()
        self._stop_listening()
        self._engine.dispose()

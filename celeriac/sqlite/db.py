"""One SQLite database file as the embedded broker and result backend use it.

Many worker processes on one machine share the file, so every connection runs
in WAL mode (readers never block the writer) with ``synchronous=NORMAL`` (a
commit survives a process crash; only a power loss may drop the last few) and a
``busy_timeout``; writes are short ``BEGIN IMMEDIATE`` transactions, which take
the write lock up front so two writers never deadlock upgrading a read lock.

This module is also the boundary where ``sqlite3`` exceptions become
celeriac's: a lock held past the busy timeout is "unavailable" (the caller may
retry), anything else a plain error naming the file.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..backoff import Backoff
from ..exceptions import CeleriacError, ConfigurationError
from ..urls import redact

DEFAULT_BUSY_TIMEOUT = 10.0

# A forked child must neither use nor close its parent's connections (closing one
# may checkpoint or unlock behind the parent's back), so after a fork they are
# parked here for good, and each Database opens its own.
_open_databases: weakref.WeakSet[Database] = weakref.WeakSet()
_inherited: list[sqlite3.Connection] = []


def _after_fork_in_child() -> None:
    for db in list(_open_databases):
        db.lock = threading.RLock()  # another thread of the parent may have held it
        if db._conn is not None:
            _inherited.append(db._conn)
            db._conn = None


os.register_at_fork(after_in_child=_after_fork_in_child)
_SCHEMA_TABLE = (
    "CREATE TABLE IF NOT EXISTS celeriac_schema ("
    " component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
)


def path_from_url(url: str) -> str:
    """The file of ``sqlite:///relative/path`` or ``sqlite:////absolute/path``."""
    scheme, sep, rest = url.partition("://")
    if scheme.lower() != "sqlite" or not sep or not rest.startswith("/") or len(rest) < 2:
        raise ConfigurationError(
            f"{redact(url)!r} is not a SQLite URL: use sqlite:///relative/path.sqlite3 "
            "(relative to the working directory) or sqlite:////absolute/path.sqlite3"
        )
    path = rest[1:].partition("?")[0]
    if path == ":memory:":
        raise ConfigurationError(
            "sqlite:///:memory: cannot be shared between connections or processes: "
            "use memory:// for an in-process broker, or a file path"
        )
    return path


@dataclass(frozen=True)
class Schema:
    """The tables of one component, created on first use; ``version`` names their shape."""

    component: str
    version: int
    statements: Sequence[str]


@dataclass(frozen=True)
class Errors:
    """Which celeriac exceptions a component raises for driver errors."""

    what: str  # "broker" or "result backend", for messages
    error: type[CeleriacError]
    unavailable: type[CeleriacError]


class Database:
    """A lazily opened connection to one file, shared safely by the threads of a process.

    The connection is opened by the first thread that uses it and opened again
    in a forked child (SQLite connections must not cross ``fork``). A lock
    serialises its use, so one object may serve several threads, though each
    thread having its own is faster.
    """

    def __init__(
        self, path: str, schema: Schema, errors: Errors, busy_timeout: float = DEFAULT_BUSY_TIMEOUT
    ) -> None:
        if busy_timeout <= 0:
            raise ConfigurationError(f"busy_timeout must be > 0 seconds, not {busy_timeout!r}")
        self.path = os.path.abspath(path)  # relative to the working directory of now
        self.schema = schema
        self.errors = errors
        self.busy_timeout = busy_timeout
        self.lock = threading.RLock()
        self.commits = 0  # our own commits: PRAGMA data_version only counts other connections'
        self._conn: sqlite3.Connection | None = None

    # -- connecting ------------------------------------------------------------
    def connection(self) -> sqlite3.Connection:
        """The open connection (call with ``lock`` held)."""
        if self._conn is None:
            self._conn = self._connect()
            _open_databases.add(self)
        return self._conn

    def _connect(self) -> sqlite3.Connection:
        parent = Path(self.path).parent
        if not parent.is_dir():
            raise ConfigurationError(
                f"cannot create the SQLite {self.errors.what} file {self.path}: "
                f"directory {parent} does not exist; create it or change the URL"
            )
        try:
            conn = sqlite3.connect(
                self.path,
                timeout=self.busy_timeout,
                isolation_level=None,
                check_same_thread=False,
            )
            try:
                self._enable_wal(conn)
                conn.execute("PRAGMA synchronous=NORMAL")
                self._ensure_schema(conn)
            except BaseException:
                conn.close()
                raise
        except sqlite3.Error as exc:
            raise self.translate(exc) from exc
        return conn

    def _enable_wal(self, conn: sqlite3.Connection) -> None:
        """Switch a file to WAL, retrying while another process switches it too.

        SQLite answers "database is locked" at once, without its busy handler,
        when two connections change the journal mode of a new file together
        (two workers starting on a fresh file), so wait here as busy_timeout would.
        """
        deadline = time.monotonic() + self.busy_timeout
        pauses = Backoff(0.001, cap=0.05)
        while True:
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
            pauses.sleep()

    def _ensure_schema(self, conn: sqlite3.Connection) -> None:
        """Create this component's tables once; safe when many processes start at once."""
        schema = self.schema
        if self._schema_version(conn) == schema.version:
            return  # the common case: no write lock needed
        conn.execute("BEGIN IMMEDIATE")  # one process creates, the others wait, then see it
        try:
            found = self._schema_version(conn)
            if found is not None and found > schema.version:
                raise ConfigurationError(
                    f"{self.path} holds {schema.component} tables of version {found}, made by "
                    f"a newer celeriac (this one knows {schema.version}): upgrade celeriac"
                )
            if found != schema.version:
                for statement in schema.statements:
                    conn.execute(statement)
                conn.execute(
                    "INSERT OR REPLACE INTO celeriac_schema (component, version) VALUES (?, ?)",
                    (schema.component, schema.version),
                )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _schema_version(self, conn: sqlite3.Connection) -> int | None:
        conn.execute(_SCHEMA_TABLE)  # a no-op once it exists; takes no lock then
        row = conn.execute(
            "SELECT version FROM celeriac_schema WHERE component = ?", (self.schema.component,)
        ).fetchone()
        return None if row is None else int(row[0])

    # -- using -------------------------------------------------------------------
    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: ``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back on error."""
        with self.lock:
            conn = self.connection()
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise self.translate(exc) from exc
            self.commits += 1

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """The connection for reads outside a transaction (each statement sees a snapshot)."""
        with self.lock:
            conn = self.connection()
            try:
                yield conn
            except sqlite3.Error as exc:
                raise self.translate(exc) from exc

    @contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """Several reads that see one moment (a read transaction: no write lock taken)."""
        with self.lock:
            conn = self.connection()
            try:
                conn.execute("BEGIN")
                try:
                    yield conn
                finally:
                    conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise self.translate(exc) from exc

    def version(self) -> tuple[int, int]:
        """Changes whenever anyone commits: a cheap test of "is there anything new?"."""
        with self.read() as conn:
            return int(conn.execute("PRAGMA data_version").fetchone()[0]), self.commits

    def translate(self, exc: sqlite3.Error) -> CeleriacError:
        """The celeriac exception for a driver error."""
        message = str(exc)
        errors = self.errors
        if isinstance(exc, sqlite3.OperationalError) and ("locked" in message or "busy" in message):
            return errors.unavailable(
                f"SQLite {errors.what} {self.path} stayed locked for more than "
                f"{self.busy_timeout:g}s ({message}): another process holds a long write "
                "transaction; raise the busy_timeout option, or use a server broker "
                "(Redis, RabbitMQ) for this load"
            )
        if isinstance(exc, sqlite3.OperationalError) and "unable to open" in message:
            return errors.error(
                f"cannot open the SQLite {errors.what} file {self.path} ({message}): "
                "check that its directory exists and is writable"
            )
        return errors.error(f"SQLite {errors.what} {self.path} failed: {message}")

    def close(self) -> None:
        """Close the connection (only in the process that opened it)."""
        with self.lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                conn.close()

"""Connections to the store's database, all through SQLAlchemy 2 Core.

SQLite through the pysqlite dialect (the standard library's ``sqlite3``, nothing
more to install); PostgreSQL and MySQL/MariaDB with a driver (psycopg, pymysql).
A URL that names no driver gets the one the tests use: ``postgresql://`` means
``postgresql+psycopg://`` and ``mysql://`` / ``mariadb://`` mean ``+pymysql``.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import URL
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql.compiler import SQLCompiler

from ..exceptions import ConfigurationError
from ..urls import redact

Row = dict[str, Any]
DEFAULT_PATH = "celeriac-dashboard.sqlite3"
#: the driver used when a URL names none, and the pip package that provides it
DEFAULT_DRIVERS = {
    "postgresql": ("psycopg", "psycopg[binary]"),
    "mysql": ("pymysql", "pymysql"),
    "mariadb": ("pymysql", "pymysql"),
}
_DRIVER_MODULES = {"psycopg": "psycopg", "psycopg2": "psycopg2", "pymysql": "pymysql"}


class Database:
    """One store's database on a server: a pool of connections, so the collector writes
    in one while each page reads in another."""

    def __init__(self, engine: sa.Engine, description: str) -> None:
        self.engine, self.description = engine, description
        #: "sqlite", "postgresql" or "mysql" (MariaDB too): what the store's SQL differs by
        self.kind = "mysql" if engine.dialect.name == "mariadb" else engine.dialect.name

    @contextmanager
    def transaction(self) -> Iterator[sa.Connection]:
        """A connection in a transaction, committed when the block ends without error."""
        with self.engine.begin() as connection:
            yield connection

    @contextmanager
    def reading(self) -> Iterator[sa.Connection]:
        """A connection for reads, outside the writer's transaction."""
        with self.engine.connect() as connection:
            yield connection

    def rows(self, statement: sa.Executable, params: Mapping[str, Any] | None = None) -> list[Row]:
        """The rows a read returns, as dicts."""
        with self.reading() as connection:
            return dicts(connection.execute(statement, params))

    def close(self) -> None:
        self.engine.dispose()


class SQLiteDatabase(Database):
    """One connection shared by the collector and the web threads, behind a lock: SQLite
    serialises writers anyway, and reads here are short indexed queries.

    The connection runs in autocommit mode and a transaction starts with ``BEGIN
    IMMEDIATE``: the writer takes the write lock before it reads the rows it merges, so
    it never has to upgrade a read lock another process could be holding."""

    def __init__(self, path: str | Path) -> None:
        engine = sa.create_engine(
            URL.create("sqlite", database=str(path)),
            poolclass=StaticPool,
            connect_args={"check_same_thread": False},
            isolation_level="AUTOCOMMIT",
            paramstyle="named",  # rows go to sqlite3 as the dicts they are (BatchStatement)
        )
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        super().__init__(engine, str(path))
        self._lock = threading.RLock()
        # Kept open: checking a connection out of the pool for each query cost a tenth
        # of a page's query time.
        self._connection = engine.connect()

    @contextmanager
    def transaction(self) -> Iterator[sa.Connection]:
        with self._using() as connection:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                yield connection
                connection.exec_driver_sql("COMMIT")
            except BaseException:
                driver: Any = connection.connection.driver_connection
                if driver.in_transaction:  # a failed COMMIT (busy, disk full) leaves it open
                    connection.exec_driver_sql("ROLLBACK")
                raise

    @contextmanager
    def reading(self) -> Iterator[sa.Connection]:
        with self._using() as connection:
            yield connection

    @contextmanager
    def _using(self) -> Iterator[sa.Connection]:
        with self._lock:
            try:
                yield self._connection
            except BaseException:
                # Ends SQLAlchemy's side of a failed statement: a connection it found
                # broken is replaced at the next use.
                self._connection.rollback()
                raise

    def close(self) -> None:
        with self._lock:
            self._connection.close()
            super().close()


class BatchStatement:
    """A Core statement compiled once for one database and run with many rows by the
    driver's ``executemany``, each row a dict as it is: SQLAlchemy's own per-row parameter
    processing, which none of the store's column types (text, numbers) needs, would cost
    the collector about a tenth of its ingest. Every engine of the store has a named
    parameter style (``:name``, ``%(name)s``), so the rows need no reordering."""

    def __init__(self, statement: sa.ClauseElement, dialect: sa.Dialect) -> None:
        compiled = cast(SQLCompiler, statement.compile(dialect=dialect))
        if compiled.positiontup is not None:
            raise ValueError(f"{dialect.name}: the store's engines use named parameters")
        self.sql = compiled.string

    def run(self, connection: sa.Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Execute the statement once per row, in one call."""
        if rows:
            connection.exec_driver_sql(self.sql, list(rows))


def dicts(result: sa.Result[Any]) -> list[Row]:
    """A result's rows as dicts (faster than through its mappings)."""
    keys = list(result.keys())
    return [dict(zip(keys, row, strict=True)) for row in result.all()]


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.execute("PRAGMA journal_mode=WAL")
    dbapi_connection.execute("PRAGMA synchronous=NORMAL")


def sqlite_path(location: str) -> str:
    """The file of a ``sqlite:///relative`` or ``sqlite:////absolute`` URL (as SQLAlchemy)."""
    rest = location.partition("://")[2]
    if not rest:
        return ":memory:"
    return rest[1:] if rest.startswith("/") else rest


def engine_url(url: str) -> URL:
    """The SQLAlchemy URL, with the default driver when it names none; installed or said."""
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise ConfigurationError(f"dashboard database {redact(url)!r}: {exc}") from None
    backend = parsed.get_backend_name()
    driver = parsed.get_driver_name() if "+" in parsed.drivername else ""
    if not driver:
        driver, package = DEFAULT_DRIVERS[backend]
        parsed = parsed.set(drivername=f"{backend}+{driver}")
    else:
        package = driver
    module = _DRIVER_MODULES.get(driver)
    if module and importlib.util.find_spec(module) is None:
        raise ConfigurationError(
            f"dashboard database {redact(url)!r} needs the {module} driver: pip install '{package}'"
        )
    return parsed


def open_database(location: str | Path = DEFAULT_PATH) -> Database:
    """The database at ``location``: a SQLite file path (or ``sqlite:///`` URL), or an
    SQLAlchemy URL of PostgreSQL (``postgresql+psycopg://``) or MySQL/MariaDB
    (``mysql+pymysql://``)."""
    text = str(location)
    if "://" not in text:
        return SQLiteDatabase(text)
    scheme = text.partition("://")[0].partition("+")[0].lower()
    if scheme == "sqlite":
        return SQLiteDatabase(sqlite_path(text))
    if scheme not in DEFAULT_DRIVERS:
        raise ConfigurationError(
            f"dashboard database {redact(text)!r}: give a SQLite file path or a URL of "
            "PostgreSQL (postgresql+psycopg://user@host/db) or MySQL/MariaDB "
            "(mysql+pymysql://user@host/db)"
        )
    engine = sa.create_engine(engine_url(text), pool_pre_ping=True)
    return Database(engine, redact(text))

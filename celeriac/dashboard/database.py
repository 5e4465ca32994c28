"""Connections to the store's database: SQLite through ``sqlite3``, others through SQLAlchemy.

Both run the same SQL text (``:name`` parameters, pieces that differ from the
:class:`~.dialects.Dialect`), so the store and its queries are written once.
SQLite needs nothing beyond the standard library; PostgreSQL and MySQL/MariaDB
need the ``sql`` extra and a driver (psycopg, pymysql).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Protocol

from ..exceptions import ConfigurationError
from ..urls import redact
from .dialects import SQLITE, Dialect

Row = Mapping[str, Any]
Params = Mapping[str, Any]
NO_PARAMS: Params = {}
DEFAULT_PATH = "celeriac-dashboard.sqlite3"
SQL_SCHEMES = ("postgresql", "mysql", "mariadb")


class Session(Protocol):
    """Statements inside one transaction."""

    def rows(self, sql: str, params: Params = NO_PARAMS) -> list[Row]: ...

    def run(self, sql: str, params: Params = NO_PARAMS) -> int:
        """Execute one statement; how many rows it changed."""
        ...

    def run_many(self, sql: str, params: Sequence[Params]) -> None: ...


class Database(Protocol):
    """One store's database: transactions for the writer, reads for everyone."""

    dialect: Dialect
    description: str  # where it is, without a password

    def transaction(self) -> AbstractContextManager[Session]: ...

    def rows(self, sql: str, params: Params = NO_PARAMS) -> list[Row]: ...

    def close(self) -> None: ...


def _dict_row(cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> dict[str, Any]:
    return {column[0]: value for column, value in zip(cursor.description, row, strict=True)}


class SQLiteDatabase:
    """One ``sqlite3`` connection shared by the collector and the web threads, behind a
    lock: SQLite serialises writers anyway, and reads here are short indexed queries."""

    dialect = SQLITE

    def __init__(self, path: str | Path) -> None:
        self.description = str(path)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.row_factory = _dict_row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:  # a failed COMMIT (busy, disk full) leaves it open
                    self._db.execute("ROLLBACK")
                raise

    def rows(self, sql: str, params: Params = NO_PARAMS) -> list[Row]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def run(self, sql: str, params: Params = NO_PARAMS) -> int:
        with self._lock:
            return self._db.execute(sql, params).rowcount

    def run_many(self, sql: str, params: Sequence[Params]) -> None:
        with self._lock:
            self._db.executemany(sql, params)

    def close(self) -> None:
        with self._lock:
            self._db.close()


def sqlite_path(location: str) -> str:
    """The file of a ``sqlite:///relative`` or ``sqlite:////absolute`` URL (as SQLAlchemy)."""
    rest = location.partition("://")[2]
    if not rest:
        return ":memory:"
    return rest[1:] if rest.startswith("/") else rest


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
    if scheme not in SQL_SCHEMES:
        raise ConfigurationError(
            f"dashboard database {redact(text)!r}: give a SQLite file path or a URL of "
            "PostgreSQL (postgresql+psycopg://user@host/db) or MySQL/MariaDB "
            "(mysql+pymysql://user@host/db)"
        )
    from .sqlalchemy_db import SQLAlchemyDatabase

    return SQLAlchemyDatabase(text)

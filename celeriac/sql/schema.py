"""The SQL result backend's URL, engine and tables (SQLAlchemy 2, ``celeriac[sql]``).

A URL is Celery's ``db+`` followed by an SQLAlchemy URL. When it names no driver
(``db+postgresql://``, ``db+mysql://``) the first installed driver of the dialect
is used, so ``pip install 'celeriac[sql]' psycopg`` is enough for PostgreSQL.

Tables (``P`` is the prefix, ``celeriac_`` unless ``database_table_prefix`` says
otherwise; ``database_table_names`` renames any of them)::

    P taskmeta      one row per task: Celery's columns, plus expires_at (indexed)
    P groupmeta     the members of a group, in order (JSON text), plus expires_at
    P chord         one row per chord being joined: parts done, fired, expires_at
    P chord_parts   (group id, index) of each finished header task: dedupes redeliveries
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..config import table_map
from ..exceptions import ConfigurationError, MissingExtraError
from ..urls import redact

try:
    import sqlalchemy as sa
    from sqlalchemy.dialects import mysql, postgresql, sqlite
    from sqlalchemy.engine import URL, Engine, make_url
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise MissingExtraError("sql", "SQLAlchemy") from exc

# Re-exported to the sibling modules, which so import SQLAlchemy only after the check above.
__all__ = ["Engine", "mysql", "postgresql", "sa", "sqlite"]

PREFIX = "db+"
DIALECTS = ("postgresql", "mysql", "mariadb", "sqlite")
#: drivers to try, in order, when a URL names none; pip package names for the error
DRIVERS: dict[str, tuple[tuple[str, str], ...]] = {
    "postgresql": (("psycopg", "psycopg[binary]"), ("psycopg2", "psycopg2-binary")),
    "mysql": (("pymysql", "pymysql"), ("mysqldb", "mysqlclient")),
    "mariadb": (("pymysql", "pymysql"), ("mysqldb", "mysqlclient")),
    "sqlite": (("pysqlite", "(the standard library's sqlite3)"),),
}
DEFAULT_TABLE_PREFIX = "celeriac_"
_DEFAULT_TABLES = {"task": "taskmeta", "group": "groupmeta", "chord": "chord"}
SQLITE_BUSY_TIMEOUT = 30.0  # seconds a SQLite writer waits for another one

# MySQL's BLOB and TEXT stop at 64 KiB and its DATETIME at whole seconds by default.
_Blob = sa.LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb")
LONG_TEXT = sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")
_Time = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
ID_LENGTH = 255
LOCK = "celeriac_sql_backend_tables"  # the advisory lock held while creating tables


def engine_url(url: str) -> URL:
    """The SQLAlchemy URL of a ``db+...`` result backend URL, with an installed driver."""
    if not url.startswith(PREFIX):
        raise ConfigurationError(
            f"SQL result backend URLs start with {PREFIX!r} (as in Celery): "
            f"{PREFIX}postgresql://user@host/db, not {redact(url)!r}"
        )
    try:
        parsed = make_url(url[len(PREFIX) :])
    except sa.exc.ArgumentError as exc:
        raise ConfigurationError(
            f"result_backend {redact(url)!r} is not a valid URL: {exc}"
        ) from None
    dialect = parsed.get_backend_name()
    if dialect not in DIALECTS:
        raise ConfigurationError(
            f"result_backend {redact(url)!r}: the SQL backend supports "
            f"{', '.join(PREFIX + d + '://' for d in DIALECTS)}, not {dialect!r}"
        )
    if dialect == "sqlite" and parsed.database in (None, "", ":memory:"):
        raise ConfigurationError(
            f"result_backend {redact(url)!r}: an in-memory SQLite database is private to one "
            "connection; give a file path, db+sqlite:///results.sqlite3"
        )
    return parsed.set(drivername=_installed_driver(parsed, url))


def _installed_driver(parsed: URL, url: str) -> str:
    dialect = parsed.get_backend_name()
    if "+" in parsed.drivername:
        candidates: tuple[tuple[str, str], ...] = ((parsed.get_driver_name(), ""),)
    else:
        candidates = DRIVERS[dialect]
    for driver, _ in candidates:
        name = f"{dialect}+{driver}"
        try:
            parsed.set(drivername=name).get_dialect().import_dbapi()
        except sa.exc.NoSuchModuleError:
            raise ConfigurationError(
                f"result_backend {redact(url)!r}: SQLAlchemy has no driver {driver!r} for "
                f"{dialect}; name one it knows, e.g. {PREFIX}{dialect}+{DRIVERS[dialect][0][0]}://"
            ) from None
        except ImportError:
            continue
        return name
    if len(candidates) == 1 and candidates[0][1] == "":
        hint = f"install the {candidates[0][0]!r} package"
    else:
        hint = " or ".join(f"pip install '{package}'" for _, package in candidates)
    raise ConfigurationError(
        f"result_backend {redact(url)!r} needs a {dialect} driver that is not installed: {hint}"
    )


def create_engine(url: URL, options: dict[str, Any], short_lived_sessions: bool) -> Engine:
    """An engine with celeriac's defaults, then the user's ``database_engine_options``."""
    defaults: dict[str, Any] = {"pool_pre_ping": True}
    if url.get_backend_name() in ("mysql", "mariadb"):
        # Fewer gap locks between workers writing neighbouring rows.
        defaults["isolation_level"] = "READ COMMITTED"
    if url.get_backend_name() == "sqlite":
        defaults["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT}
    if short_lived_sessions:
        defaults["poolclass"] = sa.pool.NullPool
    try:
        return sa.create_engine(url, **{**defaults, **options})
    except TypeError as exc:
        raise ConfigurationError(f"database_engine_options is not accepted: {exc}") from exc


@dataclass(frozen=True)
class TableNames:
    """Where the backend's tables live: names and schemas, by key (task, group, chord)."""

    names: dict[str, str]
    schemas: dict[str, str | None]

    @classmethod
    def build(
        cls,
        prefix: str = DEFAULT_TABLE_PREFIX,
        names: dict[str, str] | None = None,
        schemas: dict[str, str] | None = None,
    ) -> TableNames:
        names = table_map("database_table_names", names)
        schemas = table_map("database_table_schemas", schemas)
        chosen = {key: prefix + default for key, default in _DEFAULT_TABLES.items()}
        chosen.update(names or {})
        return cls(chosen, {key: (schemas or {}).get(key) for key in _DEFAULT_TABLES})


class Tables:
    """The backend's four tables, in their own ``MetaData``."""

    def __init__(self, where: TableNames) -> None:
        self.metadata = sa.MetaData()
        names, schemas = where.names, where.schemas
        self.task = sa.Table(
            names["task"],
            self.metadata,
            sa.Column("task_id", sa.String(ID_LENGTH), primary_key=True),
            sa.Column("status", sa.String(50), nullable=False),
            sa.Column("result", _Blob),
            sa.Column("traceback", LONG_TEXT),
            sa.Column("date_done", _Time),
            sa.Column("name", sa.String(ID_LENGTH)),
            sa.Column("args", _Blob),
            sa.Column("kwargs", _Blob),
            sa.Column("worker", sa.String(ID_LENGTH)),
            sa.Column("retries", sa.Integer, nullable=False),
            sa.Column("queue", sa.String(ID_LENGTH)),
            sa.Column("parent_id", sa.String(ID_LENGTH)),
            sa.Column("root_id", sa.String(ID_LENGTH)),
            sa.Column("group_id", sa.String(ID_LENGTH)),
            sa.Column("children", LONG_TEXT),
            sa.Column("date_received", _Time),
            sa.Column("date_started", _Time),
            sa.Column("expires_at", _Time, nullable=False, index=True),
            schema=schemas["task"],
        )
        self.group = sa.Table(
            names["group"],
            self.metadata,
            sa.Column("group_id", sa.String(ID_LENGTH), primary_key=True),
            sa.Column("task_ids", LONG_TEXT, nullable=False),
            sa.Column("date_done", _Time, nullable=False),
            sa.Column("expires_at", _Time, nullable=False, index=True),
            schema=schemas["group"],
        )
        self.chord = sa.Table(
            names["chord"],
            self.metadata,
            sa.Column("group_id", sa.String(ID_LENGTH), primary_key=True),
            sa.Column("done", sa.Integer, nullable=False),
            sa.Column("fired", sa.Boolean, nullable=False),
            sa.Column("expires_at", _Time, nullable=False, index=True),
            schema=schemas["chord"],
        )
        self.chord_parts = sa.Table(
            names["chord"] + "_parts",
            self.metadata,
            sa.Column("group_id", sa.String(ID_LENGTH), primary_key=True),
            sa.Column("part", sa.Integer, primary_key=True, autoincrement=False),
            schema=schemas["chord"],
        )

    @property
    def all(self) -> tuple[sa.Table, ...]:
        return (self.task, self.group, self.chord, self.chord_parts)

    def create(self, engine: Engine, attempts: int = 5) -> None:
        """Create missing tables; safe when several processes start at once."""
        for attempt in range(attempts):
            try:
                with engine.begin() as conn, schema_lock(conn, LOCK):
                    self.metadata.create_all(conn, checkfirst=True)
                return
            except sa.exc.DBAPIError:
                # Another process created a table between our check and our CREATE
                # (where the database has no lock for it): look again.
                if attempt == attempts - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))

    def drop(self, engine: Engine) -> None:
        """Drop the tables and everything in them."""
        self.metadata.drop_all(engine, checkfirst=True)


@contextlib.contextmanager
def schema_lock(conn: sa.Connection, name: str) -> Iterator[None]:
    """Serialise table creation between processes, by the lock ``name`` (SQLite's write
    lock does it there)."""
    if conn.dialect.name == "postgresql":
        # PostgreSQL's DDL is transactional: this lock ends with the transaction.
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:name))"), {"name": name})
        yield
        return
    if conn.dialect.name in ("mysql", "mariadb"):
        got = conn.execute(sa.text("SELECT GET_LOCK(:name, 30)"), {"name": name}).scalar()
        try:
            yield
        finally:
            if got == 1:
                conn.execute(sa.text("SELECT RELEASE_LOCK(:name)"), {"name": name})
        return
    yield

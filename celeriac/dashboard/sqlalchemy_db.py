"""The store's database through SQLAlchemy 2 Core: PostgreSQL and MySQL/MariaDB.

The only module of the dashboard that imports SQLAlchemy (the ``sql`` extra).
A URL that names no driver gets the one the tests use: ``postgresql://`` means
``postgresql+psycopg://`` and ``mysql://`` / ``mariadb://`` mean ``+pymysql``.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from ..exceptions import ConfigurationError, MissingExtraError
from ..urls import redact
from .database import NO_PARAMS, Params, Row, Session
from .dialects import DIALECTS

try:
    import sqlalchemy as sa
    from sqlalchemy.engine import URL, Connection
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise MissingExtraError("sql", exc.name or "sqlalchemy") from exc

#: the driver used when a URL names none, and the pip package that provides it
DEFAULT_DRIVERS = {
    "postgresql": ("psycopg", "psycopg[binary]"),
    "mysql": ("pymysql", "pymysql"),
    "mariadb": ("pymysql", "pymysql"),
}
_DRIVER_MODULES = {"psycopg": "psycopg", "psycopg2": "psycopg2", "pymysql": "pymysql"}


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


class _Session:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def rows(self, sql: str, params: Params = NO_PARAMS) -> list[Row]:
        result = self._connection.execute(sa.text(sql), dict(params))
        return [dict(row) for row in result.mappings()]

    def run(self, sql: str, params: Params = NO_PARAMS) -> int:
        return int(self._connection.execute(sa.text(sql), dict(params)).rowcount)

    def run_many(self, sql: str, params: Sequence[Params]) -> None:
        if params:
            self._connection.execute(sa.text(sql), [dict(p) for p in params])


class SQLAlchemyDatabase:
    """A pool of connections: the collector writes in one, each page reads in another."""

    def __init__(self, url: str, **engine_options: Any) -> None:
        self.description = redact(url)
        self.engine = sa.create_engine(engine_url(url), pool_pre_ping=True, **engine_options)
        self.dialect = DIALECTS[self.engine.dialect.name]

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        with self.engine.begin() as connection:
            yield _Session(connection)

    def rows(self, sql: str, params: Params = NO_PARAMS) -> list[Row]:
        with self.engine.connect() as connection:
            return _Session(connection).rows(sql, params)

    def close(self) -> None:
        self.engine.dispose()

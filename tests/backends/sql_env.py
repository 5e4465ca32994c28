"""The SQL entries of the result backend suite's registry: SQLite, PostgreSQL, MariaDB.

Each test gets tables of its own (a unique table prefix), dropped when it ends.
The servers are the local ones (``CELERIAC_TEST_SQL_POSTGRES_URL`` and
``CELERIAC_TEST_SQL_MARIADB_URL`` point elsewhere); a missing server skips the
test locally and fails it when ``CI`` is set.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path

import pytest

from tests.needs import need_database, need_module

from .env import BackendEnv

POSTGRES_URL = os.environ.get(
    "CELERIAC_TEST_SQL_POSTGRES_URL", "db+postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
MARIADB_URL = os.environ.get(
    "CELERIAC_TEST_SQL_MARIADB_URL", "db+mysql+pymysql://root@127.0.0.1:3306/test"
)
FACTORY = "celeriac.sql.backend:SQLBackend"


def drop_tables(url: str, prefix: str) -> None:
    """Drop the tables of the backend at ``url`` whose names start with ``prefix``."""
    from celeriac.serialization import Codec
    from celeriac.sql.backend import SQLBackend

    backend = SQLBackend(Codec(), url, table_prefix=prefix, create_tables_at_setup=False)
    try:
        backend.drop_tables()
    finally:
        backend.close()


def fresh_sql_env(request: pytest.FixtureRequest, url: str) -> BackendEnv:
    """A SQL backend at ``url`` with tables no other test uses, dropped at teardown."""
    need_database(url.removeprefix("db+"))
    prefix = f"t{uuid.uuid4().hex[:10]}_"
    cleanup = contextlib.ExitStack()
    if "postgresql" in url:
        from tests.django.pg import server_lock

        cleanup.enter_context(server_lock())  # a Django test may restart the server
    cleanup.callback(drop_tables, url, prefix)
    request.addfinalizer(cleanup.close)
    return BackendEnv(FACTORY, url, options={"table_prefix": prefix})


def sql_sqlite_env(request: pytest.FixtureRequest, tmp_path: Path) -> BackendEnv:
    need_module("sqlalchemy", "sql")
    return BackendEnv(FACTORY, f"db+sqlite:///{tmp_path}/results.sqlite3")


def sql_postgresql_env(request: pytest.FixtureRequest, tmp_path: Path) -> BackendEnv:
    return fresh_sql_env(request, POSTGRES_URL)


def sql_mariadb_env(request: pytest.FixtureRequest, tmp_path: Path) -> BackendEnv:
    return fresh_sql_env(request, MARIADB_URL)

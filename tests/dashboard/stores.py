"""The dashboard store's databases for the tests: SQLite, PostgreSQL, MariaDB.

Each test gets tables of its own (a SQLite file in its tmp_path, or a unique
table prefix on the shared server), dropped when it ends. The servers are the
local ones (``CELERIAC_TEST_DASHBOARD_POSTGRES_URL`` and
``CELERIAC_TEST_DASHBOARD_MARIADB_URL`` point elsewhere); a missing server skips
the test locally and fails it when ``CI`` is set.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from celeriac.dashboard.store import Store
from tests.needs import need_database

POSTGRES_URL = os.environ.get(
    "CELERIAC_TEST_DASHBOARD_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
MARIADB_URL = os.environ.get(
    "CELERIAC_TEST_DASHBOARD_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test"
)
URLS = {"sqlite": "", "postgresql": POSTGRES_URL, "mariadb": MARIADB_URL}


@dataclass
class StoreEnv:
    """Where one test's store lives; every :meth:`open` reaches the same tables."""

    kind: str
    location: str | Path
    prefix: str = ""
    _opened: list[Store] = field(default_factory=list)

    def open(self, **options: Any) -> Store:
        store = Store(self.location, table_prefix=self.prefix, **options)
        self._opened.append(store)
        return store

    def close(self) -> None:
        for store in self._opened:
            store.close()
        self._opened.clear()
        if self.kind != "sqlite":
            store = Store(self.location, table_prefix=self.prefix)
            try:
                store.drop()
            finally:
                store.close()


@pytest.fixture(params=list(URLS))
def store_env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreEnv]:
    """A fresh, isolated store location on each database the dashboard supports."""
    kind: str = request.param
    if kind == "sqlite":
        env = StoreEnv(kind, tmp_path / "dash.sqlite3")
        yield env
        env.close()
        return
    url = URLS[kind]
    need_database(url)
    with contextlib.ExitStack() as cleanup:
        if kind == "postgresql":
            from tests.django.pg import server_lock

            cleanup.enter_context(server_lock())  # a Django test may restart the server
        env = StoreEnv(kind, url, prefix=f"t{uuid.uuid4().hex[:10]}_")
        cleanup.callback(env.close)
        yield env

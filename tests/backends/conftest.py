"""The result backend suite's registry: every backend listed here runs every backend test.

To add a backend, write a function ``(request, tmp_path) -> BackendEnv`` that
finds or starts its server (calling ``tests.needs.missing`` when there is none) and
add one line to ``BACKENDS``. Each env must be isolated: a fresh store, or task
ids no other test uses (the tests make unique ids).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from celeriac.backends.base import Backend
from tests.redis.contract_env import redis_backend_env

from .env import BackendEnv
from .sql_env import sql_mariadb_env, sql_postgresql_env, sql_sqlite_env


def memory_env(request: pytest.FixtureRequest, tmp_path: Path) -> BackendEnv:
    url = f"memory://backend-{uuid.uuid4().hex}"
    return BackendEnv("celeriac.backends.memory:MemoryBackend", url, spans_processes=False)


def sqlite_env(request: pytest.FixtureRequest, tmp_path: Path) -> BackendEnv:
    return BackendEnv("celeriac.sqlite.backend:SQLiteBackend", f"sqlite:///{tmp_path}/r.sqlite3")


@dataclass(frozen=True)
class BackendKind:
    open: Callable[[pytest.FixtureRequest, Path], BackendEnv]
    spans_processes: bool  # known before the server is found, to choose the process tests


BACKENDS: dict[str, BackendKind] = {
    "memory": BackendKind(memory_env, spans_processes=False),
    "sqlite": BackendKind(sqlite_env, spans_processes=True),
    "redis": BackendKind(redis_backend_env, spans_processes=True),
    "sql-sqlite": BackendKind(sql_sqlite_env, spans_processes=True),
    "sql-postgresql": BackendKind(sql_postgresql_env, spans_processes=True),
    "sql-mariadb": BackendKind(sql_mariadb_env, spans_processes=True),
}


def _open(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BackendEnv]:
    env = BACKENDS[request.param].open(request, tmp_path)
    try:
        yield env
    finally:
        env.close()


@pytest.fixture(params=list(BACKENDS))
def env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BackendEnv]:
    """A fresh result store of each registered kind."""
    yield from _open(request, tmp_path)


@pytest.fixture(params=[name for name, kind in BACKENDS.items() if kind.spans_processes])
def process_env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BackendEnv]:
    """A fresh result store of each kind that several processes can share."""
    yield from _open(request, tmp_path)


@pytest.fixture
def backend(env: BackendEnv) -> Backend:
    return env.connect()

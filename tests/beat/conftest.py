"""Broker URLs for beat tests: a SQLite file, and a private Redis server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.redis.servers import RedisServer, require_binaries


@pytest.fixture(scope="module")
def beat_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    require_binaries("redis-server")
    server = RedisServer(tmp_path_factory.mktemp("beat-redis"), "--appendonly", "no").start()
    yield server
    server.kill()


@pytest.fixture(params=["sqlite", "redis"])
def beat_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/beat.sqlite3"
    server: RedisServer = request.getfixturevalue("beat_redis")
    server.client().flushall()
    return server.url(0)

"""Fixtures: private Redis servers (standalone, with AOF; Cluster; Sentinel).

The standalone server and the Cluster and Sentinel set-ups live for the whole
session; each test gets empty databases. Tests that restart Redis start their
own server.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from celeriac.redis.broker import RedisBroker

from .servers import RedisServer, require_binaries, start_cluster, start_sentinel


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    require_binaries("redis-server")
    server = RedisServer(tmp_path_factory.mktemp("redis"), "--appendonly", "no").start()
    yield server
    server.kill()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """An empty database (0) on the session's private server; database 1 is empty too."""
    redis_server.client().flushall()
    return redis_server.url(0)


@pytest.fixture
def broker(redis_url: str) -> Iterator[RedisBroker]:
    b = RedisBroker(redis_url, lease_seconds=30.0, max_deliveries=3)
    yield b
    b.close()


@pytest.fixture
def aof_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A server of this test's own, every write fsynced to its AOF before the reply."""
    require_binaries("redis-server")
    server = RedisServer(tmp_path / "aof", "--appendonly", "yes", "--appendfsync", "always")
    server.start()
    yield server
    server.kill()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[RedisServer]]:
    servers = start_cluster(tmp_path_factory.mktemp("cluster"))
    yield servers
    for server in servers:
        server.kill()


@pytest.fixture(scope="session")
def redis_sentinel(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[RedisServer, RedisServer]]:
    """(master, sentinel): a Sentinel watching a master named ``mymaster``."""
    require_binaries("redis-server")
    directory = tmp_path_factory.mktemp("sentinel")
    master = RedisServer(directory / "master", "--appendonly", "no").start()
    sentinel = start_sentinel(directory, master)
    yield master, sentinel
    sentinel.kill()
    master.kill()

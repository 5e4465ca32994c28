"""Broker URLs for beat tests: a SQLite file, a private Redis server, a RabbitMQ vhost."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.redis.servers import RedisServer, require_binaries
from tests.vhosts import Vhosts, amqp_url


@pytest.fixture(scope="module")
def beat_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    require_binaries("redis-server")
    server = RedisServer(tmp_path_factory.mktemp("beat-redis"), "--appendonly", "no").start()
    yield server
    server.kill()


@pytest.fixture
def beat_amqp(rabbitmq_vhosts: Vhosts, request: pytest.FixtureRequest) -> str:
    """A RabbitMQ virtual host of this test's own (the beat's state is per vhost)."""
    return amqp_url(rabbitmq_vhosts.lend(request))


@pytest.fixture(params=["sqlite", "redis", "rabbitmq"])
def beat_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/beat.sqlite3"
    if request.param == "rabbitmq":
        return str(request.getfixturevalue("beat_amqp"))
    server: RedisServer = request.getfixturevalue("beat_redis")
    server.client().flushall()
    return server.url(0)

"""Broker URLs for beat tests: a SQLite file, a private Redis server, a RabbitMQ vhost."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.needs import missing
from tests.redis.servers import RedisServer, require_binaries

AMQP_HOST = os.environ.get("CELERIAC_TEST_AMQP_HOST", "127.0.0.1")
AMQP_PORT = int(os.environ.get("CELERIAC_TEST_AMQP_PORT", "5672"))


@pytest.fixture(scope="module")
def beat_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    require_binaries("redis-server")
    server = RedisServer(tmp_path_factory.mktemp("beat-redis"), "--appendonly", "no").start()
    yield server
    server.kill()


def _rabbitmqctl(*args: str) -> None:
    done = subprocess.run(
        ["rabbitmqctl", *args], capture_output=True, text=True, timeout=60, check=False
    )
    if done.returncode != 0:
        pytest.fail(f"rabbitmqctl {' '.join(args)} failed: {done.stderr or done.stdout}")


@pytest.fixture
def beat_amqp() -> Iterator[str]:
    """A RabbitMQ virtual host of this test's own (the beat's state is per vhost)."""
    try:
        socket.create_connection((AMQP_HOST, AMQP_PORT), timeout=2).close()
    except OSError as exc:
        missing(f"no RabbitMQ at {AMQP_HOST}:{AMQP_PORT} ({exc})")
    if shutil.which("rabbitmqctl") is None:
        missing("rabbitmqctl is not on PATH: the beat tests create a virtual host with it")
    vhost = f"celeriac-beat-{uuid.uuid4().hex[:8]}"
    _rabbitmqctl("add_vhost", vhost)
    _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    yield f"amqp://guest:guest@{AMQP_HOST}:{AMQP_PORT}/{vhost}"
    _rabbitmqctl("delete_vhost", vhost)


@pytest.fixture(params=["sqlite", "redis", "rabbitmq"])
def beat_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/beat.sqlite3"
    if request.param == "rabbitmq":
        return str(request.getfixturevalue("beat_amqp"))
    server: RedisServer = request.getfixturevalue("beat_redis")
    server.client().flushall()
    return server.url(0)

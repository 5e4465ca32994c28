"""The RabbitMQ entry of the broker contract suite (tests/contract/conftest.py).

One virtual host per test session, made on first use and deleted when the
session ends; each test gets a unique queue-name prefix inside it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.contract.env import BrokerEnv
from tests.needs import missing, need_module

HOST = os.environ.get("CELERIAC_TEST_AMQP_HOST", "127.0.0.1")
PORT = int(os.environ.get("CELERIAC_TEST_AMQP_PORT", "5672"))
_vhosts: dict[int, str] = {}  # pid -> this process's contract vhost


def _ctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", *args], capture_output=True, timeout=30, check=True)


def _vhost(request: pytest.FixtureRequest) -> str:
    if os.getpid() in _vhosts:
        return _vhosts[os.getpid()]
    try:
        socket.create_connection((HOST, PORT), timeout=2).close()
    except OSError as exc:
        missing(f"no RabbitMQ at {HOST}:{PORT} ({exc})")
    if shutil.which("rabbitmqctl") is None:
        missing("rabbitmqctl is not on PATH: the RabbitMQ contract tests make a vhost with it")
    name = f"celeriac-contract-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    _ctl("add_vhost", name)
    _ctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
    request.config.add_cleanup(lambda: _ctl("delete_vhost", name))
    _vhosts[os.getpid()] = name
    return name


def rabbitmq_env(request: pytest.FixtureRequest, tmp_path: Path) -> BrokerEnv:
    need_module("pika", "rabbitmq")
    vhost = _vhost(request)
    return BrokerEnv(
        "celeriac.rabbitmq.broker:AMQPBroker",
        f"amqp://guest:guest@{HOST}:{PORT}/{vhost}",
        prefix=f"t{uuid.uuid4().hex[:10]}-",
        features=frozenset({"browse_delayed", "browse_waiting", "wake"}),
    )

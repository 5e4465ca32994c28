"""RabbitMQ fixtures: a throwaway virtual host per session, unique queue names per test.

The server is the local RabbitMQ (``CELERIAC_TEST_AMQP_HOST``, default
127.0.0.1:5672, guest/guest) managed with ``rabbitmqctl``. Without it the tests
skip locally and fail when ``CI`` is set.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.e2e.workers import start_worker  # noqa: F401  (the fixture)
from tests.needs import missing, need_module

pika = need_module("pika", "rabbitmq", module_level=True)

from celeriac.rabbitmq.broker import AMQPBroker  # noqa: E402
from celeriac.rabbitmq.topology import dead_queue  # noqa: E402

HOST = os.environ.get("CELERIAC_TEST_AMQP_HOST", "127.0.0.1")
PORT = int(os.environ.get("CELERIAC_TEST_AMQP_PORT", "5672"))


def rabbitmqctl(*args: str, timeout: float = 30.0) -> str:
    """Run ``rabbitmqctl``; its output, or a failed test saying why."""
    done = subprocess.run(
        ["rabbitmqctl", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        pytest.fail(f"rabbitmqctl {' '.join(args)} failed: {done.stderr or done.stdout}")
    return done.stdout


@pytest.fixture(scope="session")
def rabbitmq() -> None:
    """The server is reachable and manageable."""
    try:
        socket.create_connection((HOST, PORT), timeout=2).close()
    except OSError as exc:
        missing(f"no RabbitMQ at {HOST}:{PORT} ({exc}); start it with rabbitmq-server -detached")
    if shutil.which("rabbitmqctl") is None:
        missing("rabbitmqctl is not on PATH: the tests create a virtual host with it")


@pytest.fixture(scope="session")
def vhost(rabbitmq: None) -> Iterator[str]:
    """A virtual host of this session's own, deleted with everything in it at the end."""
    name = f"celeriac-test-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    rabbitmqctl("add_vhost", name)
    rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
    yield name
    rabbitmqctl("delete_vhost", name)


@pytest.fixture(scope="session")
def amqp_url(vhost: str) -> str:
    return f"amqp://guest:guest@{HOST}:{PORT}/{vhost}"


@pytest.fixture
def queue(amqp_url: str, vhost: str) -> Iterator[str]:
    """A queue name of this test's own; the queue and its dead letters go afterwards."""
    name = f"q-{uuid.uuid4().hex[:10]}"
    yield name
    params = pika.URLParameters(amqp_url)
    params.virtual_host = vhost
    conn = pika.BlockingConnection(params)
    try:
        ch = conn.channel()
        for q in (name, dead_queue(name)):
            ch.queue_delete(q)
    finally:
        conn.close()


@pytest.fixture
def make_broker(amqp_url: str) -> Iterator[Callable[..., AMQPBroker]]:
    """Broker objects on the test vhost, closed after the test."""
    made: list[AMQPBroker] = []

    def make(**options: Any) -> AMQPBroker:
        broker = AMQPBroker(amqp_url, **options)
        made.append(broker)
        return broker

    yield make
    for broker in made:
        broker.close()


@pytest.fixture
def broker(make_broker: Callable[..., AMQPBroker]) -> AMQPBroker:
    return make_broker()


def wait_for(condition: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll ``condition`` until it is truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)

"""A small cluster for end-to-end tests: real ``celeriac worker`` processes on a broker
(SQLite in the test's directory, Redis under a key prefix of the test's own, or RabbitMQ
in a virtual host of the test's own with results in a SQLite file), and a client app in
the test process that sends tasks and uses ``app.control``. Every test runs on every
broker."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from celeriac import AsyncResult, Celeriac
from celeriac.events import dispatcher_for
from tests.e2e.workers import WorkerProcess, launch, wait_until
from tests.needs import missing
from tests.vhosts import Vhosts, amqp_url

APP = "e2e_app"
REDIS_URL = os.environ.get("CELERIAC_TEST_REDIS_URL", "redis://localhost:6379/0")

__all__ = ["APP", "Cluster", "cluster", "wait_until"]


@dataclass
class Cluster:
    dir: Path
    url: str
    env: dict[str, str]
    client: Celeriac
    workers: list[WorkerProcess] = field(default_factory=list)

    def start(self, name: str, *args: str) -> WorkerProcess:
        """``celeriac -A e2e_app worker -n NAME ARGS``, returned once it is ready."""
        worker = launch(APP, "-n", name, "-l", "WARNING", *args, cwd=self.dir, env=self.env)
        self.workers.append(worker)
        return worker

    def send(self, task: str, *args: Any, **options: Any) -> AsyncResult[Any]:
        return self.client.send_task(f"{APP}.{task}", list(args), **options)


def _redis_available() -> bool:
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except Exception:
        return False
    return True


def _sweep_redis(prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    for pattern in (f"{prefix}:*", f"{{{prefix}*"):
        keys = list(client.scan_iter(match=pattern, count=1000))
        if keys:
            client.delete(*keys)
    client.close()


def _rabbitmqctl(*args: str) -> None:
    done = subprocess.run(
        ["rabbitmqctl", *args], capture_output=True, text=True, timeout=60, check=False
    )
    if done.returncode != 0:
        pytest.fail(f"rabbitmqctl {' '.join(args)} failed: {done.stderr or done.stdout}")


def _urls(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest | None = None
) -> tuple[str, str, str]:
    """(broker URL, backend URL, what to clean up afterwards) for a broker kind.

    On RabbitMQ, a virtual host of this test's own (its queues, streams and tokens):
    from the session's pool when ``request`` is given (nothing to clean up: the pool
    deletes it after the test), else made now, and named to be deleted afterwards."""
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path}/broker.sqlite3"
        return url, url, ""
    if kind == "rabbitmq":
        results = f"sqlite:///{tmp_path}/results.sqlite3"
        if request is not None:
            vhosts: Vhosts = request.getfixturevalue("rabbitmq_vhosts")
            return amqp_url(vhosts.lend(request)), results, ""
        vhost = f"celeriac-e2e-{uuid.uuid4().hex[:10]}"
        Vhosts.check_server()
        _rabbitmqctl("add_vhost", vhost)
        _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        return amqp_url(vhost), results, vhost
    if not _redis_available():
        missing(f"Redis is not reachable at {REDIS_URL}")
    prefix = f"e2e{uuid.uuid4().hex[:12]}"  # this test's keys only, swept afterwards
    url = f"{REDIS_URL}?global_keyprefix={prefix}"
    return url, url, prefix


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis), "rabbitmq"])
def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cluster]:
    shutil.copy(Path(__file__).with_name(f"{APP}.py"), tmp_path / f"{APP}.py")
    url, backend, leftover = _urls(request.param, tmp_path, request)
    env = {"CELERIAC_BROKER_URL": url, "CELERIAC_RESULT_BACKEND": backend}
    client = Celeriac("client", broker=url, backend=backend, set_as_current=False)
    box = Cluster(tmp_path, url, env, client)
    yield box
    for worker in box.workers:
        worker.kill()
    from tests.control.conftest import FAILED

    if request.node.stash.get(FAILED, False):
        for worker in box.workers:
            print(f"--- log of {' '.join(worker.args[3:])}\n{worker.log}")
    dispatcher_for(client).close()
    client.close()
    if request.param == "redis":
        _sweep_redis(leftover)
    elif request.param == "rabbitmq" and leftover:
        _rabbitmqctl("delete_vhost", leftover)

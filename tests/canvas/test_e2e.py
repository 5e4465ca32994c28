"""Workflows through real worker processes, on SQLite and on Redis.

A client app in this process sends signatures by task name (it does not import
the tasks, as a web process that only sends would not); workers run
``canvas_app`` (``e2e_app.py``) in their own processes.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from celeriac import Celeriac, Signature, chain, chord, group, signature
from celeriac.exceptions import RemoteError
from tests.e2e.workers import StartWorker, WorkerProcess, launch, wait_until

pytestmark = pytest.mark.slow

APP_SOURCE = Path(__file__).with_name("e2e_app.py")


@dataclass
class Cluster:
    """The broker URL, the app directory and a client app sending by name."""

    dir: Path
    url: str
    client: Celeriac

    @property
    def env(self) -> dict[str, str]:
        return {"CELERIAC_BROKER_URL": self.url, "CELERIAC_RESULT_BACKEND": self.url}

    def sig(self, name: str, *args: Any, **kwargs: Any) -> Signature:
        return signature(f"canvas_app.{name}", args, kwargs, app=self.client)

    def lines(self, name: str) -> list[list[str]]:
        path = self.dir / name
        return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


def _redis_url(tmp: Path) -> Iterator[str]:
    from tests.redis.servers import RedisServer, require_binaries

    require_binaries("redis-server")
    server = RedisServer(tmp / "redis", "--appendonly", "no").start()
    try:
        yield server.url(0)
    finally:
        server.kill()


@pytest.fixture(scope="module", params=["sqlite", "redis"])
def broker_url(request: pytest.FixtureRequest, tmp_path_factory: Any) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp(f"canvas-{request.param}")
    if request.param == "sqlite":
        yield f"sqlite:///{tmp}/broker.sqlite3"
    else:
        yield from _redis_url(tmp)


def _cluster(directory: Path, url: str, **settings: Any) -> Cluster:
    shutil.copy(APP_SOURCE, directory / "canvas_app.py")
    client = Celeriac("client", broker=url, backend=url, set_as_current=False, **settings)
    return Cluster(directory, url, client)


@pytest.fixture(scope="module")
def shared(broker_url: str, tmp_path_factory: Any) -> Iterator[Cluster]:
    """One worker (prefork, two children) for the tests that do not stop it."""
    directory = tmp_path_factory.mktemp("shared")
    cluster = _cluster(directory, broker_url)
    worker = launch("canvas_app", "-c", "2", "-Q", "celeriac", cwd=directory, env=cluster.env)
    yield cluster
    worker.kill()
    cluster.client.close()


def test_chain(shared: Cluster) -> None:
    add, mul = shared.sig("add", 1, 2), shared.sig("mul", 3)
    assert chain(add, mul).apply_async().get(timeout=30) == 9
    assert (shared.sig("add", 1, 2) | shared.sig("mul", 3)).delay().get(timeout=30) == 9


def test_group_of_100_in_order(shared: Cluster) -> None:
    result = group(shared.sig("add", i, i) for i in range(100)).apply_async()
    assert result.get(timeout=60) == [2 * i for i in range(100)]


def test_chord_and_nesting(shared: Cluster) -> None:
    header = [chain(shared.sig("add", i, i), shared.sig("mul", 10)) for i in range(20)]
    sig = chain(chord(header, shared.sig("tsum")), shared.sig("add", 1))
    assert sig.delay().get(timeout=60) == sum(20 * i for i in range(20)) + 1


@pytest.mark.parametrize("form", ["task", "chain", "group", "chord"])
def test_a_failure_reaches_get(shared: Cluster, form: str) -> None:
    s = shared.sig
    workflows = {
        "task": s("fail", 1),
        "chain": s("add", 1, 2) | s("fail") | s("add", 1),
        "group": group(s("add", 1, 1), s("fail", 2)),
        "chord": chord([s("add", 1, 1), s("fail", 2)], s("tsum")),
    }
    # The client does not import the tasks, so the error comes back as a RemoteError
    # naming the type, with the worker's message
    with pytest.raises(RemoteError, match=r"canvas_app.Boom: boom \[\d"):
        workflows[form].delay().get(timeout=30)


def test_seed_routing_two_workers_each_gets_only_its_own(
    broker_url: str, tmp_path: Path, start_worker: StartWorker
) -> None:
    # Given the seed's set-up: task1 routed to queue1 and task2 to queue2 by
    # task_routes, task3 routed by the value of an argument
    def by_region(name: str, args: Any, kwargs: Any) -> Any:
        if name == "canvas_app.task3":
            return {"queue": "queue1" if kwargs.get("region") == "eu" else "queue2"}
        return None

    routes = [by_region, {"canvas_app.task1": {"queue": "queue1"}, "canvas_app.task2": "queue2"}]
    cluster = _cluster(tmp_path, _fresh(broker_url, tmp_path, 3), task_routes=routes)
    workers = [
        start_worker("canvas_app", "-Q", queue, "-n", f"{name}@%h", "-c", "1", env=cluster.env)
        for name, queue in (("w1", "queue1"), ("w2", "queue2"))
    ]
    host = os.uname().nodename
    # When each task is sent a few times
    sent = {
        "task1": group(cluster.sig("task1", i) for i in range(5)).delay(),
        "task2": group(cluster.sig("task2", i) for i in range(5)).delay(),
        "task3-eu": group(cluster.sig("task3", region="eu") for _ in range(3)).delay(),
        "task3-us": group(cluster.sig("task3", region="us") for _ in range(3)).delay(),
    }
    try:
        ran = {name: set(result.get(timeout=30)) for name, result in sent.items()}
    except TimeoutError:
        stats = [cluster.client.broker.stats(q) for q in ("queue1", "queue2")]
        raise AssertionError(
            f"not all ran: {stats}\n{workers[0].log[-3000:]}\n{workers[1].log[-3000:]}"
        ) from None
    # Expect: each ran only on the worker consuming its queue
    assert ran == {
        "task1": {f"w1@{host}"},
        "task2": {f"w2@{host}"},
        "task3-eu": {f"w1@{host}"},
        "task3-us": {f"w2@{host}"},
    }
    cluster.client.close()


def _fresh(broker_url: str, tmp_path: Path, db: int) -> str:
    """A store of this test's own: a new SQLite file, or another Redis database."""
    if broker_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path}/own-{db}.sqlite3"
    return f"{broker_url.rsplit('/', 1)[0]}/{db}"


def test_chord_of_1000_calls_back_once_through_a_kill_9(
    broker_url: str, tmp_path: Path, start_worker: StartWorker
) -> None:
    # Given a worker with two children and a chord of 1000 tasks taking a moment each
    cluster = _cluster(tmp_path, _fresh(broker_url, tmp_path, 4))
    worker: WorkerProcess = start_worker("canvas_app", "-c", "2", env=cluster.env)
    parts, calls = str(tmp_path / "parts"), str(tmp_path / "calls")
    header = [cluster.sig("slow_square", parts, i, 0.004) for i in range(1000)]
    result = chord(header, cluster.sig("count_callback", calls)).apply_async()
    # When a child is killed -9 once about a third of the header has run
    wait_until(lambda: len(cluster.lines("parts")) >= 300, 60, "300 chord parts to start")
    victim = worker.children()[0]
    os.kill(victim, 9)
    # Expect: the worker carries on, the chord completes with every result in
    # order, and the callback ran exactly once
    try:
        value = result.get(timeout=60)
    except TimeoutError:
        header_results = result.parent
        assert header_results is not None
        done = sum(m.ready for m in header_results._metas())
        raise AssertionError(
            f"chord not done: {done}/1000 parts ready, callbacks {cluster.lines('calls')}, "
            f"children {worker.children()}\n{worker.log[-5000:]}"
        ) from None
    assert value == sum(i * i for i in range(1000))
    callbacks = cluster.lines("calls")
    assert len(callbacks) == 1 and callbacks[0][:2] == ["callback", "1000"], callbacks
    started = [line[1] for line in cluster.lines("parts")]
    assert set(started) == {str(i) for i in range(1000)}
    print(f"{len(started) - 1000} parts ran twice after the kill")
    assert victim not in worker.children()
    cluster.client.close()

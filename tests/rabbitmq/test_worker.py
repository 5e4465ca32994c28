"""Real ``celeriac worker`` processes on RabbitMQ (results in a SQLite file)."""

from __future__ import annotations

import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from celeriac import AsyncResult, Celeriac
from tests.e2e.workers import StartWorker, wait_until

from .conftest import rabbitmqctl

APP = "amqp_seed_app"
APP_SOURCE = textwrap.dedent('''
    """The seed's tasks: each records its name in a file when it runs."""
    import os
    import time
    from pathlib import Path

    from celeriac import Celeriac

    DIR = Path(os.environ["SEED_DIR"])
    app = Celeriac(
        "seed",
        broker=os.environ["AMQP_URL"],
        backend=f"sqlite:///{DIR}/results.sqlite3",
        task_default_queue=os.environ["SEED_QUEUE"],
        task_acks_late=True,
        task_default_priority=5,
        worker_prefetch_multiplier=1,
        worker_concurrency=1,
    )


    def record(name):
        with open(DIR / "ran.txt", "a") as f:
            f.write(name + "\\n")


    @app.task
    def blocker():
        (DIR / "started").write_text("yes")
        deadline = time.monotonic() + 60
        while not (DIR / "go").exists() and time.monotonic() < deadline:
            time.sleep(0.01)


    @app.task
    def t1():
        record("t1")


    @app.task
    def t2():
        record("t2")


    @app.task
    def t3():
        record("t3")


    @app.task
    def add(a, b):
        return a + b


    @app.task(bind=True, max_retries=3)
    def flaky(self):
        marker = DIR / f"tried-{self.request.id}"
        if not marker.exists():
            marker.write_text("once")
            raise self.retry(countdown=0.5)
        return self.request.retries
''')


@dataclass
class Seed:
    dir: Path
    env: dict[str, str]
    app: Celeriac

    def send(self, task: str, *args: Any, **options: Any) -> AsyncResult[Any]:
        return self.app.send_task(f"{APP}.{task}", list(args), **options)

    def ran(self) -> list[str]:
        path = self.dir / "ran.txt"
        return path.read_text().split() if path.exists() else []


@pytest.fixture
def seed(tmp_path: Path, amqp_url: str, queue: str) -> Iterator[Seed]:
    (tmp_path / f"{APP}.py").write_text(APP_SOURCE)
    env = {"AMQP_URL": amqp_url, "SEED_DIR": str(tmp_path), "SEED_QUEUE": queue}
    client = Celeriac(
        "client",
        broker=amqp_url,
        backend=f"sqlite:///{tmp_path}/results.sqlite3",
        task_default_queue=queue,
        set_as_current=False,
        worker_send_task_events=False,
    )
    yield Seed(tmp_path, env, client)
    client.close()


def test_seed_priorities_with_one_real_worker(seed: Seed, start_worker: StartWorker) -> None:
    """Given ``worker -c 1 --prefetch-multiplier 1`` busy with a task, when t2(5), t1(6),
    t3(9), t2(5), t1(6), t3(9) are sent, expect them to run t3, t3, t1, t1, t2, t2."""
    worker = start_worker(APP, "-c", "1", "--prefetch-multiplier", "1", env=seed.env)
    seed.send("blocker")
    wait_until(lambda: (seed.dir / "started").exists(), 30, "the blocker to start")
    for name, priority in [("t2", 5), ("t1", 6), ("t3", 9), ("t2", 5), ("t1", 6), ("t3", 9)]:
        seed.send(name, priority=priority)
    (seed.dir / "go").write_text("go")
    wait_until(lambda: len(seed.ran()) == 6, 30, "six tasks to run")
    assert seed.ran() == ["t3", "t3", "t1", "t1", "t2", "t2"]
    assert worker.stop() == 0


def test_results_countdown_and_retries_through_a_real_worker(
    seed: Seed, start_worker: StartWorker
) -> None:
    worker = start_worker(APP, "-c", "2", env=seed.env)
    assert seed.send("add", 2, 3).get(timeout=20) == 5
    sent = time.time()
    assert seed.send("add", 1, 1, countdown=1).get(timeout=20) == 2
    assert time.time() - sent >= 1.0
    assert seed.send("flaky").get(timeout=20) == 1  # ran again after its backoff
    assert worker.stop() == 0


def test_a_worker_resumes_by_itself_after_its_connections_are_closed(
    seed: Seed, start_worker: StartWorker, vhost: str
) -> None:
    worker = start_worker(APP, "-c", "1", env=seed.env)
    assert seed.send("add", 1, 2).get(timeout=20) == 3
    rabbitmqctl("close_all_connections", "-p", vhost, "celeriac test: outage")
    assert seed.send("add", 2, 2).get(timeout=30) == 4
    assert worker.stop() == 0

"""Unique tasks across processes, on every broker that spans them (SQLite, Redis, RabbitMQ).

Given 2 producer processes of 4 threads each sending the same unique key 1,000 times in
all, at once, expect every send to return the same task id, one message in the queue,
and one run on a real worker; once it finished, the key is free and a new send runs.
Debounced, 200 such sends run once, one of the sends' arguments, and every other send
is recorded as skipped.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from celeriac import Celeriac
from tests.contract.helpers import SPAWN
from tests.e2e.workers import StartWorker, wait_until

from .conftest import imported_app
from .unique_child import send_same_key

APP = """
import os, time
from celeriac import Celeriac

app = Celeriac("unique_app", worker_send_task_events=False)

from celeriac.middleware import Middleware

HERE = os.path.dirname(__file__)

def note(name, line):
    with open(os.path.join(HERE, name), "a") as file:
        file.write(line + "\\n")

class NoteSkips(Middleware):
    def after_ack(self, job):
        if job.skipped is not None:
            note("skips.txt", job.message.id)

app.middleware.add(NoteSkips())

@app.task(bind=True)
def once(self, n, i):
    note("runs.txt", f"{self.request.id} {n} {i}")
"""
PRODUCERS, THREADS, SENDS = 2, 4, 125  # 2 x 4 x 125 = 1,000 sends


@pytest.fixture
def client(broker_url: str, tmp_path: Path) -> Iterator[Celeriac]:
    with imported_app("unique_app", APP, broker_url, tmp_path) as app:
        yield app


def _runs(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_one_run_for_a_thousand_concurrent_sends_of_one_key(
    client: Celeriac, broker_url: str, tmp_path: Path, start_worker: StartWorker
) -> None:
    queue, key = f"unique-{uuid.uuid4().hex[:10]}", f"k-{uuid.uuid4().hex}"
    go, out = SPAWN.Event(), SPAWN.Queue()
    producers = [
        SPAWN.Process(
            target=send_same_key,
            args=(str(tmp_path), broker_url, queue, key, THREADS, SENDS, go, out),
        )
        for _ in range(PRODUCERS)
    ]
    for producer in producers:
        producer.start()
    go.set()
    ids = [task_id for _ in producers for task_id in out.get(timeout=120)[0]]
    for producer in producers:
        producer.join(30)

    assert len(ids) == PRODUCERS * THREADS * SENDS
    assert len(set(ids)) == 1, f"{len(set(ids))} distinct task ids"
    assert client.broker.stats(queue).total_waiting == 1

    start_worker("unique_app", "-c", "2", "-Q", queue, env={"CELERIAC_BROKER_URL": broker_url})
    runs = tmp_path / "runs.txt"
    wait_until(lambda: len(_runs(runs)) >= 1, timeout=30, what="the unique task's run")

    # finished: the key is free again, so the next send is a new task that runs too
    once = sys.modules["unique_app"].once
    wait_until(
        lambda: once.apply_async((9, 9), queue=queue, unique_key=key).id != ids[0],
        timeout=30,
        what="the key to be freed once its task finished",
    )
    wait_until(lambda: len(_runs(runs)) >= 2, timeout=30, what="the next send's run")
    assert len(_runs(runs)) == 2


def test_debounced_concurrent_sends_run_once(
    client: Celeriac, broker_url: str, tmp_path: Path, start_worker: StartWorker
) -> None:
    """2 processes x 4 threads x 25 = 200 sends of one key, debounced by 4 s (10 s on
    RabbitMQ, where a debounced send is a few round trips: 200 took 8 s on a loaded
    machine, and the sends must all fall inside the debounce)."""
    debounce, sends = (10.0 if broker_url.startswith("amqp") else 4.0), 25
    queue, key = f"debounce-{uuid.uuid4().hex[:10]}", f"k-{uuid.uuid4().hex}"
    start_worker("unique_app", "-c", "2", "-Q", queue, env={"CELERIAC_BROKER_URL": broker_url})
    go, out = SPAWN.Event(), SPAWN.Queue()
    producers = [
        SPAWN.Process(
            target=send_same_key,
            args=(str(tmp_path), broker_url, queue, key, THREADS, sends, go, out, debounce),
        )
        for _ in range(PRODUCERS)
    ]
    for producer in producers:
        producer.start()
    go.set()
    reports = [out.get(timeout=120) for _ in producers]
    for producer in producers:
        producer.join(30)
    ids = [task_id for report in reports for task_id in report[0]]
    burst = max(r[2] for r in reports) - min(r[1] for r in reports)
    assert burst < debounce, f"the sends took {burst:.1f}s, longer than the debounce"
    assert len(set(ids)) == PRODUCERS * THREADS * sends

    runs, skips = tmp_path / "runs.txt", tmp_path / "skips.txt"
    wait_until(
        lambda: len(_runs(runs)) + len(_runs(skips)) >= len(ids),
        timeout=60,
        what="every debounced send to be run or skipped",
    )
    assert len(_runs(runs)) == 1, _runs(runs)
    ran_id = _runs(runs)[0].split()[0]
    assert ran_id in ids
    assert sorted(_runs(skips)) == sorted(i for i in ids if i != ran_id)


HOLD_APP = """
import os, time
from celeriac import Celeriac

app = Celeriac("unique_hold_app", worker_send_task_events=False,
               broker_transport_options={"visibility_timeout": 1.0})
HERE = os.path.dirname(__file__)

@app.task(unique="order")
def hold(order):
    first = not os.path.exists(os.path.join(HERE, "started"))
    with open(os.path.join(HERE, "started" if first else "ran"), "a") as file:
        file.write(f"{os.getpid()}\\n")
    if first:
        time.sleep(60)  # killed here
"""


def test_a_key_outlives_a_killed_worker_until_its_task_runs_elsewhere(
    tmp_path: Path, start_worker: StartWorker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given a unique task held until it finishes and its worker killed with SIGKILL while
    running it, expect the key to stay held (sends return the same id) until the message,
    recovered after its 1 s lease, runs on another worker; then a send is a new task."""
    (tmp_path / "unique_hold_app.py").write_text(HOLD_APP)
    url = f"sqlite:///{tmp_path}/broker.sqlite3"
    env = {"CELERIAC_BROKER_URL": url}
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("CELERIAC_BROKER_URL", url)
    import unique_hold_app  # type: ignore[import-not-found]

    try:
        hold = unique_hold_app.hold
        doomed = start_worker("unique_hold_app", "-c", "1", "-n", "doomed@test", env=env)
        first = hold.delay("o-1")
        wait_until((tmp_path / "started").exists, timeout=30, what="the task to start")
        assert hold.delay("o-1").id == first.id

        doomed.kill()  # SIGKILL, the whole process group
        assert hold.delay("o-1").id == first.id  # no worker runs it: still held

        start_worker("unique_hold_app", "-c", "1", "-n", "heir@test", env=env)
        wait_until((tmp_path / "ran").exists, timeout=30, what="the recovered task's run")
        wait_until(
            lambda: hold.delay("o-1").id != first.id,
            timeout=30,
            what="the key to be freed once the recovered task finished",
        )
    finally:
        unique_hold_app.app.close()
        sys.modules.pop("unique_hold_app", None)

"""A worker's own Prometheus metrics (``--metrics-port``), scraped from a real prefork worker.

Given a worker of 2 prefork children replaced every 5 tasks, expect its ``/metrics``,
scraped while a task runs and after, to agree with what the tasks did: counts by
task and state summed over every child (replaced ones too), runtimes and queue waits
observed once per run, retries counted, and the running gauge 1 during the slow task.
"""

from __future__ import annotations

import re
import sys
import urllib.request
from collections import defaultdict
from pathlib import Path

import pytest

from tests.e2e.workers import StartWorker, WorkerProcess, wait_until
from tests.needs import need_module

need_module("prometheus_client", "metrics")

from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

APP = """
import os, time
from celeriac import Celeriac

app = Celeriac("metrics_app", worker_send_task_events=False)
HERE = os.path.dirname(__file__)

@app.task
def ok(i):
    return i

@app.task
def boom():
    raise ValueError("boom")

@app.task(bind=True, max_retries=1)
def flaky(self):
    if self.request.retries == 0:
        raise self.retry(countdown=0)

@app.task
def slow():
    deadline = time.monotonic() + 30
    while not os.path.exists(os.path.join(HERE, "release")) and time.monotonic() < deadline:
        time.sleep(0.01)
"""

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    found: Samples = defaultdict(float)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = tuple(sorted((k, v) for k, v in sample.labels.items() if k != "pid"))
            found[(sample.name, labels)] += sample.value
    return found


def tasks(samples: Samples, task: str, state: str) -> float:
    return samples.get(
        ("celeriac_tasks_total", (("state", state), ("task", f"metrics_app.{task}"))), 0.0
    )


def _port(worker: WorkerProcess) -> int:
    wait_until(lambda: "metrics on http" in worker.log, timeout=10, what="the metrics address")
    found = re.search(r"metrics on http://[^:]+:(\d+)/metrics", worker.log)
    assert found is not None, worker.log
    return int(found.group(1))


def test_metrics_agree_with_what_the_tasks_did(
    tmp_path: Path, start_worker: StartWorker, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "metrics_app.py").write_text(APP)
    url = f"sqlite:///{tmp_path}/broker.sqlite3"
    worker = start_worker(
        "metrics_app",
        *("-c", "2", "--max-tasks-per-child", "5"),
        *("--metrics-port", "0", "--metrics-address", "127.0.0.1"),
        env={"CELERIAC_BROKER_URL": url},
    )
    port = _port(worker)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("CELERIAC_BROKER_URL", url)
    try:
        import metrics_app  # type: ignore[import-not-found]

        for i in range(20):
            metrics_app.ok.delay(i)
        for _ in range(3):
            metrics_app.boom.delay()
        for _ in range(2):
            metrics_app.flaky.delay()

        def settled() -> bool:
            s = scrape(port)
            return (
                tasks(s, "ok", "SUCCESS") == 20
                and tasks(s, "flaky", "SUCCESS") == 2
                and tasks(s, "boom", "FAILURE") == 3
            )

        wait_until(settled, timeout=60, what="the fast tasks' counts")
        # during a run: the slow task is running, and counted once it finished
        metrics_app.slow.delay()
        wait_until(
            lambda: scrape(port)[("celeriac_worker_running_tasks", ())] == 1,
            timeout=30,
            what="the running gauge to show the slow task",
        )
        assert tasks(scrape(port), "slow", "SUCCESS") == 0

        (tmp_path / "release").touch()
        wait_until(
            lambda: tasks(scrape(port), "slow", "SUCCESS") == 1,
            timeout=30,
            what="the slow task's count",
        )
        after = scrape(port)
        metrics_app.app.close()
    finally:
        sys.modules.pop("metrics_app", None)

    assert tasks(after, "flaky", "RETRY") == 2
    assert after[("celeriac_task_retries_total", (("task", "metrics_app.flaky"),))] == 2
    ok = (("task", "metrics_app.ok"),)
    assert after[("celeriac_task_runtime_seconds_count", ok)] == 20
    waits = (("queue", "celeriac"), ("task", "metrics_app.ok"))
    assert after[("celeriac_task_queue_wait_seconds_count", waits)] == 20
    assert after[("celeriac_worker_running_tasks", ())] == 0
    assert after[("celeriac_worker_processed_total", ())] == 28  # 20 + 3 + 2 x 2 + 1
    # every finished delivery was acked, alone or with its result, and each call timed
    trips = {
        op: after.get(("celeriac_broker_roundtrip_seconds_count", (("operation", op),)), 0)
        for op in ("fetch", "ack", "complete")
    }
    assert trips["fetch"] >= 1
    assert trips["ack"] + trips["complete"] >= 28, trips
    assert worker.stop() == 0

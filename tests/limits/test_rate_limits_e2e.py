"""Rate limits hold for the whole cluster: real workers, real processes, one SQLite broker.

Given two workers with four child processes each, expect a task limited to 10/s to run at
10/s across both (not 10/s per process, as in Celery), per-key limits to hold per key, and
an unlimited task never to wait behind limited ones.
"""

from __future__ import annotations

import itertools
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from celeriac import Celeriac
from tests.e2e.workers import StartWorker, wait_until

APP = """
import os, time
from celeriac import Celeriac

app = Celeriac("limits_app", worker_send_task_events=False)

def note(path, *words):
    with open(path, "a") as file:
        file.write(" ".join(str(w) for w in (time.time(), os.getpid(), *words)) + "\\n")

@app.task(rate_limit="10/s")
def limited(path, i):
    note(path, "limited", i)

@app.task(rate_limit="5/s", rate_limit_key="customer")
def per_customer(path, customer, i):
    note(path, customer, i)

@app.task
def free(path):
    note(path, "free")

@app.task(autoretry_for=(OSError,), retry_backoff=0.25, retry_backoff_max=0.6,
          retry_jitter=False, max_retries=4)
def backoff(path):
    note(path, "backoff")
    raise OSError("still down")

@app.task(bind=True, max_retries=2)
def explicit(self, path):
    note(path, "explicit")
    if self.request.retries < 2:
        raise self.retry(countdown=0.5)
    return self.request.retries
"""


@pytest.fixture
def cluster(tmp_path: Path, start_worker: StartWorker) -> Iterator[tuple[Celeriac, Path]]:
    """Two workers of four prefork children on one SQLite broker, and a client app."""
    (tmp_path / "limits_app.py").write_text(APP)
    url = f"sqlite:///{tmp_path}/broker.sqlite3"
    env = {"CELERIAC_BROKER_URL": url}
    for name in ("a", "b"):
        start_worker("limits_app", "-c", "4", "-n", f"{name}@test", env=env)
    sys.path.insert(0, str(tmp_path))
    os.environ["CELERIAC_BROKER_URL"] = url
    try:
        import limits_app  # type: ignore[import-not-found]

        yield limits_app.app, tmp_path / "runs.txt"
    finally:
        os.environ.pop("CELERIAC_BROKER_URL", None)
        sys.path.remove(str(tmp_path))
        sys.modules.pop("limits_app", None)


def runs(path: Path, label: str | None = None) -> list[tuple[float, int]]:
    """(time, pid) of every recorded run, with that label, in time order."""
    rows = [line.split() for line in path.read_text().splitlines()] if path.exists() else []
    return sorted((float(r[0]), int(r[1])) for r in rows if label is None or r[2] == label)


def most_in_one_second(times: list[float]) -> int:
    return max(sum(1 for t in times if start <= t < start + 1.0) for start in times)


def test_a_10_per_second_limit_holds_across_two_workers_of_four_processes(
    cluster: tuple[Celeriac, Path],
) -> None:
    app, path = cluster
    limited = app.tasks["limits_app.limited"]
    results = [limited.delay(str(path), i) for i in range(200)]
    for result in results:
        result.get(timeout=60)
    done = runs(path, "limited")
    times = [t for t, _ in done]
    assert len(times) == 200
    rate = (len(times) - 1) / (times[-1] - times[0])
    assert 9.0 <= rate <= 11.0, f"ran at {rate:.2f}/s"
    assert most_in_one_second(times) <= 11  # 10 per second; a window may catch both ends
    assert len({pid for _, pid in done}) >= 4  # the work really was spread over processes


def test_per_key_limits_hold_for_each_key(cluster: tuple[Celeriac, Path]) -> None:
    app, path = cluster
    task = app.tasks["limits_app.per_customer"]
    results = [
        task.delay(str(path), customer, i) for i in range(30) for customer in ("acme", "zeta")
    ]
    for result in results:
        result.get(timeout=60)
    for customer in ("acme", "zeta"):
        times = [t for t, _ in runs(path, customer)]
        assert len(times) == 30
        rate = (len(times) - 1) / (times[-1] - times[0])
        assert 4.5 <= rate <= 5.5, f"{customer} ran at {rate:.2f}/s"
        assert most_in_one_second(times) <= 6


def test_a_limited_task_never_delays_an_unlimited_one(cluster: tuple[Celeriac, Path]) -> None:
    app, path = cluster
    limited, free = app.tasks["limits_app.limited"], app.tasks["limits_app.free"]
    backlog = [limited.delay(str(path), i) for i in range(60)]  # six seconds of limited work
    wait_until(lambda: runs(path, "limited"), 10, "the first limited task to run")
    sent = time.time()
    free.delay(str(path)).get(timeout=10)
    ran_at = runs(path, "free")[0][0]
    assert ran_at - sent < 1.0, f"the unlimited task waited {ran_at - sent:.2f}s"
    assert len(runs(path, "limited")) < 60  # the limited backlog was still waiting
    for result in backlog:
        result.get(timeout=60)


def test_retries_follow_the_backoff_schedule_then_fail(cluster: tuple[Celeriac, Path]) -> None:
    """Given backoff 0.25 s doubling, capped at 0.6 s, and four retries, expect runs
    0.25, 0.5, 0.6 and 0.6 s apart (never sooner), then FAILURE with the last error."""
    app, path = cluster
    result = app.tasks["limits_app.backoff"].delay(str(path))
    with pytest.raises(OSError, match="still down"):
        result.get(timeout=30)
    times = [t for t, _ in runs(path, "backoff")]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert len(times) == 5
    for gap, scheduled in zip(gaps, [0.25, 0.5, 0.6, 0.6], strict=True):
        assert scheduled <= gap < scheduled + 0.5, f"gaps {gaps}"
    assert result.retries == 4


def test_self_retry_with_countdown(cluster: tuple[Celeriac, Path]) -> None:
    app, path = cluster
    result = app.tasks["limits_app.explicit"].delay(str(path))
    assert result.get(timeout=30) == 2
    times = [t for t, _ in runs(path, "explicit")]
    assert len(times) == 3
    assert all(b - a >= 0.5 for a, b in itertools.pairwise(times))

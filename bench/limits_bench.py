"""What each limit costs: tasks/s with and without unique, rate limit and concurrency limit.

    python bench/limits_bench.py [--tasks 2000] [--rounds 3] [--broker sqlite]
                                 [--broker redis://localhost:6379/15]
                                 [--broker amqp://guest:guest@localhost:5672//]

Part a, the hot path: no-op tasks are sent one at a time (``apply_async``), then run
through the worker's executor in this process (fetch, middleware, task, result, ack),
once for each task: with no limit; ``unique=True`` (a claim at send, a release when
done); ``rate_limit`` so high that no task waits (one reservation each); and
``concurrency_limit`` so high that no task waits (a hold taken and freed each). Prints
tasks/s end to end (send + run) and its ratio to the unlimited task.

Part b, waiting for a slot: ``--consumers`` threads, each with its own executor and
connections, drain tasks of ``concurrency_limit=2`` over 4 keys, so that most tasks are
parked and promoted once; and the same tasks without a limit. Prints tasks/s.

Each figure is the best of ``--rounds``, each round on a fresh queue (and fresh keys).
The machine the figures come from matters: run both sides in one run and read the ratios.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import threading
import time
import uuid
from typing import Any

from celeriac import Celeriac
from celeriac.worker.job import Executor


def _noop(i: int, key: str = "") -> int:
    return i


def _app(url: str) -> tuple[Celeriac, dict[str, Any]]:
    app = Celeriac("limitsbench", broker=url, set_as_current=False)
    tasks = {
        "none": app.task(name="limitsbench.none")(_noop),
        "unique": app.task(name="limitsbench.unique", unique=True)(_noop),
        "rate": app.task(name="limitsbench.rate", rate_limit=1e9)(_noop),
        "concurrency": app.task(name="limitsbench.concurrency", concurrency_limit=1_000_000)(_noop),
        "concurrency=2": app.task(
            name="limitsbench.concurrency2", concurrency_limit=2, concurrency_key="key"
        )(_noop),
        "none/keys": app.task(name="limitsbench.keys")(_noop),
    }
    return app, tasks


def _drain(app: Celeriac, queue: str, consumer: str, until: list[int], total: int) -> None:
    executor = Executor(app, "bench@host", consumer, app.connect_broker(), app.connect_backend())
    broker = executor.broker
    assert broker is not None
    while until[0] < total:
        for delivery in broker.fetch([queue], consumer, 10, 0.2):
            job = executor.process(delivery)
            if job is not None and not (job.skipped is not None and job.skipped.waits):
                with _LOCK:
                    until[0] += 1
    executor.close()
    broker.close()  # RabbitMQ: stop consuming, so nothing is pushed to a finished thread


_LOCK = threading.Lock()


def _hot_path(url: str, tasks: int, kind: str) -> float:
    app, found = _app(url)
    task = found[kind]
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    start = time.perf_counter()
    for i in range(tasks):
        task.apply_async((i,), queue=queue)
    done = [0]
    _drain(app, queue, "c1", done, tasks)
    elapsed = time.perf_counter() - start
    app.close()
    return tasks / elapsed


def _waiting(url: str, tasks: int, kind: str, consumers: int) -> float:
    app, found = _app(url)
    task = found[kind]
    run = uuid.uuid4().hex[:8]
    queue = f"bench-{run}"  # a fresh queue and fresh keys for each round
    messages = [task.build_message((i, f"k{i % 4}-{run}"), {}, queue=queue) for i in range(tasks)]
    app.publish(messages)
    done = [0]
    threads = [
        threading.Thread(target=_drain, args=(app, queue, f"c{n}", done, tasks))
        for n in range(consumers)
    ]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    app.close()
    return tasks / elapsed


def _measure(url: str, tasks: int, rounds: int, consumers: int) -> None:
    print(f"broker {url.split('@')[-1]}, {tasks} tasks, best of {rounds}")
    hot = dict.fromkeys(("none", "unique", "rate", "concurrency"), 0.0)
    for _ in range(rounds):
        for kind in hot:
            hot[kind] = max(hot[kind], _hot_path(url, tasks, kind))
    for kind, value in hot.items():
        print(f"a) send+run {kind:13} {value:8.0f} tasks/s  {value / hot['none']:6.1%}")
    waits = dict.fromkeys(("none/keys", "concurrency=2"), 0.0)
    for _ in range(rounds):
        for kind in waits:
            waits[kind] = max(waits[kind], _waiting(url, tasks, kind, consumers))
    for kind, value in waits.items():
        print(
            f"b) {consumers} consumers, {kind:13} {value:8.0f} tasks/s  "
            f"{value / waits['none/keys']:6.1%}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--consumers", type=int, default=4)
    parser.add_argument("--broker", default="sqlite", help="sqlite (a temporary file) or a URL")
    args = parser.parse_args()
    url, directory = args.broker, None
    if url == "sqlite":
        directory = tempfile.mkdtemp(prefix="limitsbench-")
        url = f"sqlite:///{directory}/bench.sqlite3"
    prefix = f"limitsbench{os.getpid()}"
    if url.startswith("redis") and "global_keyprefix" not in url:  # keys of our own
        url = f"{url}{'&' if '?' in url else '?'}global_keyprefix={prefix}"
    try:
        _measure(url, args.tasks, args.rounds, args.consumers)
    finally:
        if url.startswith("redis"):
            _forget_redis_keys(url, prefix)
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)


def _forget_redis_keys(url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(url.partition("?")[0])
    for key in client.scan_iter(match=f"*{prefix}*", count=1000):
        client.delete(key)
    client.close()


if __name__ == "__main__":
    main()
